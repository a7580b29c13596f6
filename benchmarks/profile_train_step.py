"""Where our full-scope step spends time next to TRL's, and what each candidate fix would save.

    python benchmarks/profile_train_step.py [--threads 2] [--steps 4] [--repeats 5]

1. torch.profiler over the same steady-state steps (same pairs, settings as bench_peers.py's `train` part):
   the ops with the largest self CPU time, ours and TRL's side by side.
2. Each suspected cost timed on its own, alternating variants, median of --repeats:
   - the optimizer step over MiniLM's parameters: torch.optim.AdamW defaults (ours; on CPU tensors this is the
     per-tensor loop) vs foreach=True vs fused=True (TRL's default optim "adamw_torch_fused");
   - collating 2x16 sequences: our `collate` vs TRL's DataCollatorForPreference;
   - the metrics row: the eight float(tensor) reads of `train_step`;
   - the per-step bookkeeping of `fit()`: rewriting metrics.jsonl (all rows, fsync) + status.json (fsync).
Nothing here changes normbt_viz; it measures the code as it is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import torch  # noqa: E402

import bench_peers  # noqa: E402


def alternate(variants: dict, repeats: int) -> dict[str, float]:
    """Median seconds per call of each variant, calling them in rotating order."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def top_ops(prof, n: int = 12) -> list[tuple[str, float, int]]:
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:n]
    return [(e.key, e.self_cpu_time_total / 1e3, e.count) for e in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    cli = parser.parse_args()
    torch.set_num_threads(cli.threads)
    work = Path(tempfile.mkdtemp(prefix="normbt-profile-"))
    import os

    os.environ["NORMBT_VIZ_CACHE"] = str(work / "cache")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from normbt_viz.model.backbones import resolve_backbone

    args = types.SimpleNamespace(threads=cli.threads, batch=16, train_pairs=400, warmup=1, steps=cli.steps, repeats=1)
    trainer = bench_peers.our_full_trainer(args, work, 4 * (args.warmup + args.steps))
    trl = bench_peers.trl_runner(args, work, resolve_backbone("minilm"), trainer)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")

    # 1. profiles over the same pairs -------------------------------------------------------------------
    from torch.profiler import ProfilerActivity, profile

    n = args.warmup + args.steps
    bench_peers.time_our_steps(trainer, 0, args.warmup, 1)  # warm
    trl(0)
    with profile(activities=[ProfilerActivity.CPU]) as ours_prof:
        start = time.perf_counter()
        for step in range(n, 2 * n):
            trainer.train_step(step)
        ours_wall = time.perf_counter() - start
    with profile(activities=[ProfilerActivity.CPU]) as trl_prof:
        start = time.perf_counter()
        trl(n)
        trl_wall = time.perf_counter() - start
    print(f"\n1. profiled {n} steps each (TRL's includes building its trainer): ours {ours_wall:.1f} s, TRL {trl_wall:.1f} s")
    for name, prof in (("ours", ours_prof), ("TRL", trl_prof)):
        print(f"   {name}: top ops by self CPU time (ms total, calls)")
        for key, ms, count in top_ops(prof):
            print(f"     {ms:9.1f}  {count:6d}  {key}")

    # 2. suspected costs on their own ---------------------------------------------------------------------
    print(f"\n2. suspected costs, median of {cli.repeats}, alternating")
    params = [p for p in trainer.params if p.grad is not None or True]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    optimizers = {
        "AdamW defaults (ours)": torch.optim.AdamW(params, lr=1e-6),
        "AdamW foreach=True": torch.optim.AdamW(params, lr=1e-6, foreach=True),
        "AdamW fused=True (TRL)": torch.optim.AdamW(params, lr=1e-6, fused=True),
    }
    for opt in optimizers.values():
        opt.step()  # allocate state
    result = alternate({k: opt.step for k, opt in optimizers.items()}, cli.repeats)
    print(f"   optimizer step over {len(params)} tensors ({sum(p.numel() for p in params) / 1e6:.1f} M values):")
    for k, v in result.items():
        print(f"     {v * 1000:8.1f} ms  {k}")
    clip = alternate({"clip_grad_norm_": lambda: torch.nn.utils.clip_grad_norm_(params, 1.0)}, cli.repeats)
    print(f"     {clip['clip_grad_norm_'] * 1000:8.1f} ms  clip_grad_norm_ (both do this)")
    for p in params:
        p.grad = None

    from trl.trainer.reward_trainer import DataCollatorForPreference

    from normbt_viz.model.features import collate

    index = trainer.step_indices(0)[0]
    seqs = [trainer.scope.chosen[i] for i in index] + [trainer.scope.rejected[i] for i in index]
    examples = [{"chosen_ids": trainer.scope.chosen[i].input_ids, "rejected_ids": trainer.scope.rejected[i].input_ids} for i in index]
    peer_collate = DataCollatorForPreference(pad_token_id=0)
    pad_id = trainer.backbone.tokenizer.pad_token_id
    res = alternate({"ours": lambda: collate(seqs, pad_id), "TRL": lambda: peer_collate(examples)}, cli.repeats * 4)
    width = max(len(s.input_ids) for s in seqs)
    print(f"   collate 2x16 sequences (width {width}): ours {res['ours'] * 1000:.2f} ms, TRL {res['TRL'] * 1000:.2f} ms")

    margin, reward, losses = torch.randn(16), torch.randn(32), torch.randn(16)
    grad_norm = torch.tensor(1.0)

    def row():
        return [float(losses.mean()), float((margin > 0).float().mean()), float(margin.mean()), float(reward.mean()),
                float(reward.min()), float(reward.max()), float(grad_norm)]

    res = alternate({"row": row}, cli.repeats * 20)
    print(f"   metrics row (seven float(tensor) reads; no device sync on CPU): {res['row'] * 1000:.3f} ms")

    from normbt_viz.runs.rundir import RunDir

    run = trainer.run
    sample = trainer.train_step(2 * n)
    res = {}
    for rows in (10, 100, 1000):
        metrics = [dict(sample, step=i) for i in range(rows)]
        res[rows] = alternate({"w": lambda: (run.write_metrics(metrics), run.write_status(step=rows))}, cli.repeats)["w"]
    print("   fit()'s per-step writes (metrics.jsonl rewrite + status.json, each fsynced): "
          + ", ".join(f"{res[k] * 1000:.1f} ms at {k} rows" for k in res))
    assert isinstance(run, RunDir)


if __name__ == "__main__":
    main()
