"""Does the audit scale to a 100,000-pair HH-RLHF-sized file? Time and peak memory per stage.

    python benchmarks/bench_audit_scale.py [--pairs 100000] [--feature-sample 1000] [--full]

1. writes an HH-RLHF-shaped JSONL of N pairs (our own text: the demo generator's pairs under 1-3 turns of
   small talk, so transcripts are HH-sized), and loads it with `load_pairs` (implicit prompt);
2. featurises `--feature-sample` pairs with MiniLM in cached chunks and reports the rate, from which the time
   for all N pairs follows (on a 2-core CPU a full run takes hours; `--full` runs `python -m normbt_viz audit`
   on the whole file instead, for a machine with a GPU or time to spare);
3. runs the audit's scoring stage (`audit_pairs`: L2 choice, K folds x seeds, refit, flags, exact
   near-duplicate search) on N pairs with synthetic 384-d features of a planted linear preference, which
   costs the same as real ones.

Peak memory is the process's maximum resident set size after each stage.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from normbt_viz.audit.scoring import audit_pairs
from normbt_viz.audit.spec import AuditConfig
from normbt_viz.data.demo import DEMO_MAX_DISTINCT, generate_demo_pairs
from normbt_viz.data.sources import load_pairs

SMALL_TALK = [
    ("Hi, I hope you're having a good day. I have a few questions if that's alright.",
     "Of course! I'm happy to help with whatever you need. What's on your mind?"),
    ("I've been thinking about this for a while and couldn't find a clear answer anywhere online.",
     "That happens a lot with practical questions. Tell me more and we can work through it together."),
    ("Before my real question: can you keep answers fairly short and practical?",
     "Sure. I'll keep things concise and focus on what you can actually do."),
    ("My friend said you might be useful for this kind of thing, so here goes.",
     "I'll do my best. Ask away, and let me know if anything I say is unclear."),
]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_hh_file(path: Path, n: int) -> None:
    rng = random.Random(0)
    with open(path, "w") as handle:
        written, seed = 0, 0
        while written < n:
            demo = generate_demo_pairs(min(DEMO_MAX_DISTINCT, n - written), 0.0, seed=seed)
            for prompt, chosen, rejected in zip(demo["prompt"], demo["chosen"], demo["rejected"]):
                turns = rng.sample(SMALL_TALK, rng.randint(1, 3))
                prefix = "".join(f"\n\nHuman: {h}\n\nAssistant: {a}" for h, a in turns)
                shared = f"{prefix}\n\nHuman: {prompt} (case {written})\n\nAssistant:"
                handle.write(json.dumps({"chosen": f"{shared} {chosen}", "rejected": f"{shared} {rejected}"}) + "\n")
                written += 1
            seed += 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--feature-sample", type=int, default=1000)
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="normbt-scale-"))
    data = folder / "hh-100k.jsonl"

    started = time.time()
    write_hh_file(data, args.pairs)
    print(f"wrote {args.pairs:,} pairs, {data.stat().st_size / 1e6:.0f} MB, in {time.time() - started:.1f} s")

    started = time.time()
    table = load_pairs(data)
    pairs = table.pairs
    chars = (pairs["prompt"].str.len() + pairs["chosen"].str.len()).mean()
    print(f"load_pairs: {len(pairs):,} pairs ({table.format}, mean prompt+answer {chars:.0f} characters) in "
          f"{time.time() - started:.1f} s; peak memory {peak_mb():.0f} MB")

    if args.full:
        import subprocess
        import sys

        started = time.time()
        subprocess.run([sys.executable, "-m", "normbt_viz", "audit", "--dataset", str(data), "--out", str(folder / "audit")],
                       check=True)
        print(f"full audit in {time.time() - started:.0f} s; see {folder / 'audit' / 'summary.md'}")
        return 0

    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.model.features import chunked_representations

    backbone = load_backbone("minilm")
    sample = pairs.iloc[: args.feature_sample]
    started = time.time()
    chunked_representations(backbone, sample, 128, chunk_size=500)
    rate = len(sample) / (time.time() - started)
    print(f"features: {len(sample):,} pairs ({2 * len(sample):,} sequences, max length 128) at {rate:.1f} pairs/s on "
          f"{torch.get_num_threads()} thread(s): all {len(pairs):,} would take {len(pairs) / rate / 60:.0f} min here; "
          f"peak memory {peak_mb():.0f} MB")

    rng = np.random.default_rng(0)
    w = rng.normal(size=384)
    h_r = torch.from_numpy(rng.normal(size=(len(pairs), 384))).float()
    step = torch.from_numpy(rng.normal(size=(len(pairs), 384)) * 0.5).float()
    step *= torch.from_numpy(np.sign(step.double().numpy() @ w))[:, None].float()
    h_c = h_r + step
    started = time.time()
    frame, meta = audit_pairs(pairs, h_c, h_r, AuditConfig())
    print(f"audit stage on {len(pairs):,} pairs: {time.time() - started:.0f} s (L2 {meta['l2']:g}, near duplicates "
          f"searched in {meta['near_duplicate_searched']:,}); peak memory {peak_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
