"""Our full-scope training step against the least a TRL step can cost, on the same batch in one process.

    python benchmarks/bench_step_same_batch.py [--threads 1] [--repeats 7] [--check]

bench_peers.py runs TRL's RewardTrainer itself, but on a shared 2-core CPU its repeats disagree by up to 4x.
This script removes everything but the arithmetic: the same 16 MiniLM pairs (32 sequences, padded as both
pad them), alternating, median of --repeats:
- ours: one `Trainer.train_step` (full scope, fp32, per-pair records on, gradient clipping, fused AdamW);
- peer floor: MiniLM as AutoModelForSequenceClassification (what TRL trains; dropout 0), forward of the 32
  sequences, BT loss, backward, clip, fused AdamW step: what any RewardTrainer step must do at least, before
  its data loader, collator and logging.
Prints both and the ratio peer/ours (pairs/s ours over pairs/s peer); --check exits 1 when it is below 1.0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import AutoModelForSequenceClassification

    from normbt_viz.model.backbones import resolve_backbone
    from normbt_viz.model.features import collate
    from normbt_viz.runs.rundir import RunDir
    from normbt_viz.spec import RunSpec
    from normbt_viz.train.loop import Trainer

    spec = RunSpec(scope="full", batch_size=16, lr=1e-4, max_grad_norm=1.0, demo_size=200, max_steps=1000,
                   num_threads=args.threads).resolve()
    trainer = Trainer.from_spec(spec, RunDir(Path(tempfile.mkdtemp()) / "run").create(spec))
    trainer.begin()

    peer = AutoModelForSequenceClassification.from_pretrained(resolve_backbone("minilm"), num_labels=1)
    for module in peer.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    peer.train()
    peer_optimizer = torch.optim.AdamW(peer.parameters(), lr=1e-4, weight_decay=0.0, fused=True)
    steps = {"n": 0}

    def ours() -> None:
        trainer.train_step(steps["n"] % trainer.plan.total_steps)

    def peer_step() -> None:
        # The same pairs ours trains at this step, tokenized as ours tokenizes them.
        indices = trainer.step_indices(steps["n"] % trainer.plan.total_steps)[0]
        batch = collate([trainer.scope.chosen[i] for i in indices] + [trainer.scope.rejected[i] for i in indices],
                        trainer.backbone.tokenizer.pad_token_id)
        peer_optimizer.zero_grad(set_to_none=True)
        rewards = peer(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
        (-F.logsigmoid(rewards[: len(indices)] - rewards[len(indices):])).mean().backward()
        torch.nn.utils.clip_grad_norm_(peer.parameters(), 1.0)
        peer_optimizer.step()

    times = {"ours": [], "peer": []}
    ours(), peer_step()  # warm-up
    for repeat in range(args.repeats):
        steps["n"] += 1
        order = (("ours", ours), ("peer", peer_step)) if repeat % 2 == 0 else (("peer", peer_step), ("ours", ours))
        for name, fn in order:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    ours_s, peer_s = statistics.median(times["ours"]), statistics.median(times["peer"])
    ratio = peer_s / ours_s
    print(f"threads {args.threads}, 16 pairs/step, median of {args.repeats}, alternating")
    print(f"ours  Trainer.train_step:                      {ours_s:.3f} s/step = {16 / ours_s:.2f} pairs/s")
    print(f"peer  SequenceClassification fwd+bwd+clip+step: {peer_s:.3f} s/step = {16 / peer_s:.2f} pairs/s")
    print(f"ours / peer pairs/s: {ratio:.3f}x (target >= 1.0x): {'PASS' if ratio >= 1.0 else 'MISS'}")
    return 1 if args.check and ratio < 1.0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
