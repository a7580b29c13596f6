"""Engine speed figures, each against a named baseline measured in the same run.

    python benchmarks/bench_engine.py [--pairs 400]

1. Feature cache: a `head` run's representations, computed cold (baseline: a forward of every sequence)
   vs loaded from the disk cache.
2. Per-pair full gradient norms for the head: torch.func vmap (ours) vs one backward per pair (baseline).
3. One optimizer step, `top-k` (k=1) with the cached lower blocks (ours) vs the same step through the
   whole backbone (`full` forward, baseline).
"""

import argparse
import os
import tempfile
import time

import torch
import torch.nn.functional as F


def timed(fn, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=400)
    args = parser.parse_args()
    os.environ["NORMBT_VIZ_CACHE"] = tempfile.mkdtemp(prefix="normbt-bench-")
    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.data.sources import load_pairs
    from normbt_viz.model.features import cached_block_inputs, cached_representations, tokenize_pairs
    from normbt_viz.model.reward_model import FullScope, HeadScope, ScoreHead, TopKScope
    from normbt_viz.train.diagnostics import per_pair_full_grad_norms

    torch.manual_seed(0)
    pairs = load_pairs("demo", demo_size=args.pairs).pairs
    backbone = load_backbone("minilm", device="cpu")
    tokenized = tokenize_pairs(backbone, pairs, 128)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, MiniLM, {len(pairs)} demo pairs")

    cold = timed(lambda: cached_representations(backbone, pairs, tokenized, 128))
    warm = timed(lambda: cached_representations(backbone, pairs, tokenized, 128), repeat=3)
    print(f"1. representations: cold {cold:.2f} s (baseline), cached {warm * 1000:.1f} ms -> {cold / warm:.0f}x")

    h_c, h_r, _ = cached_representations(backbone, pairs, tokenized, 128)
    head = ScoreHead(backbone.hidden_size)
    scope = HeadScope(h_c, h_r, torch.device("cpu"))
    index = list(range(len(pairs)))

    def loop():
        for i in index:
            head.zero_grad()
            margin = head(h_c[i : i + 1]) - head(h_r[i : i + 1])
            (-F.logsigmoid(margin)).sum().backward()
            torch.sqrt(sum(p.grad.pow(2).sum() for p in head.parameters()))

    slow = timed(loop, repeat=2)
    fast = timed(lambda: per_pair_full_grad_norms(head, scope, index, list(head.parameters())), repeat=3)
    print(f"2. per-pair grad norms ({len(index)} pairs): loop {slow * 1000:.1f} ms (baseline), vmap {fast * 1000:.1f} ms -> {slow / fast:.1f}x")

    batch = list(range(16))
    full = FullScope(backbone, tokenized.chosen, tokenized.rejected)

    def step(scope_obj):
        h1, h2 = scope_obj.represent(batch)
        loss = -F.logsigmoid(head(h1) - head(h2)).mean()
        loss.backward()

    full_s = timed(lambda: step(full), repeat=3)
    inputs_c, inputs_r, _ = cached_block_inputs(backbone, pairs, tokenized, 128, backbone.num_layers - 1)
    topk = TopKScope(backbone, 1, inputs_c, inputs_r)
    topk_s = timed(lambda: step(topk), repeat=3)
    print(f"3. one step, 16 pairs: full forward+backward {full_s * 1000:.0f} ms (baseline), top-1 on cached inputs {topk_s * 1000:.0f} ms -> {full_s / topk_s:.1f}x")


if __name__ == "__main__":
    main()
