"""Exact per-pair gradient norms with trainable backbone blocks: one batched backward (ours) vs one backward per
pair (baseline), measured alternately in the same process.

    python benchmarks/bench_grad_norms.py [--pairs 32] [--scope full|top-K] [--backbone minilm] [--check]

Both sides compute the exact ‖∇_θ −log σ(Δ_i)‖ over every trainable parameter (head + backbone) for the same
pairs: `per_pair_full_grad_norms` (batched) and `per_pair_grad_norms_loop` (baseline). Prints the median time of
each over --repeat alternating rounds, the speed-up and the largest relative difference; identical-input pairs,
whose exact norm is 0, are held to rtol × the median norm instead. --check exits 1 when the speed-up is below
--min-speedup or the values differ by more than --rtol.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--scope", default="full", help="full or top-K, e.g. top-2")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--head-layernorm", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--min-speedup", type=float, default=1.5)
    parser.add_argument("--rtol", type=float, default=1e-4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("NORMBT_VIZ_CACHE", tempfile.mkdtemp(prefix="normbt-bench-"))
    from normbt_viz.data.sources import load_pairs
    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.model.features import compute_block_inputs, tokenize_pairs
    from normbt_viz.model.reward_model import FullScope, ScoreHead, TopKScope
    from normbt_viz.train.diagnostics import per_pair_full_grad_norms, per_pair_grad_norms_loop

    torch.manual_seed(0)
    pairs = load_pairs("demo", demo_size=args.pairs).pairs
    backbone = load_backbone(args.backbone, device="cpu")
    tokenized = tokenize_pairs(backbone, pairs, args.max_length)
    if args.scope == "full":
        scope = FullScope(backbone, tokenized.chosen, tokenized.rejected)
    else:
        k = int(args.scope.removeprefix("top-"))
        pieces = compute_block_inputs(backbone, tokenized.chosen + tokenized.rejected, backbone.num_layers - k)
        scope = TopKScope(backbone, k, pieces[: len(pairs)], pieces[len(pairs) :])
    head = ScoreHead(backbone.hidden_size, layernorm=args.head_layernorm)
    params = list(head.parameters()) + scope.trainable_parameters()
    index = list(range(len(pairs)))
    lengths = [len(s.input_ids) for s in tokenized.chosen + tokenized.rejected]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {args.backbone}, "
        f"scope {args.scope}, {len(index)} demo pairs, tokens per sequence {min(lengths)}-{max(lengths)}, "
        f"{sum(p.numel() for p in params) / 1e6:.1f}M trainable parameters"
    )

    per_pair_full_grad_norms(head, scope, index[:2], params)  # warm-up: first-call allocations and kernels
    loop_times, batched_times = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        reference = per_pair_grad_norms_loop(head, scope, index, params)
        loop_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        batched = per_pair_full_grad_norms(head, scope, index, params)
        batched_times.append(time.perf_counter() - start)
    loop_s, batched_s = statistics.median(loop_times), statistics.median(batched_times)
    speedup = loop_s / batched_s
    # A pair whose two sides are the same tokens has Δ ≡ 0 and ∇Δ ≡ 0: both sides return rounding noise there, so
    # those pairs are held to an absolute bound (relative to the median norm) instead of a relative one.
    identical = np.array(
        [c.input_ids == r.input_ids and c.token_type_ids == r.token_type_ids for c, r in zip(tokenized.chosen, tokenized.rejected)]
    )
    rel = float(np.max(np.abs(batched - reference)[~identical] / np.abs(reference)[~identical]))
    noise = float(np.max(np.abs(np.concatenate([batched[identical], reference[identical]])), initial=0.0))
    noise_ok = noise <= args.rtol * float(np.median(reference))
    print(f"one backward per pair (baseline): median {loop_s:.2f} s  ({', '.join(f'{t:.2f}' for t in loop_times)})")
    print(f"one batched backward (ours):      median {batched_s:.2f} s  ({', '.join(f'{t:.2f}' for t in batched_times)})")
    print(f"speed-up {speedup:.1f}x, max relative difference {rel:.2e} over {int((~identical).sum())} pairs")
    print(f"{int(identical.sum())} identical-input pairs (exact norm 0): largest value either side {noise:.1e}, median norm {np.median(reference):.2f}")
    if args.check and (speedup < args.min_speedup or not rel <= args.rtol or not noise_ok):
        print(f"CHECK FAILED: need speed-up >= {args.min_speedup} and relative difference <= {args.rtol}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
