"""How well does the audit's label-issue score find flipped labels? Against cleanlab, on the same probabilities.

    pip install -r benchmarks/requirements-bench.txt   # cleanlab: a benchmark-only peer, not a dependency
    python benchmarks/bench_audit.py [--pairs 2000] [--seeds 5] [--check]

Two datasets of 2,000 pairs, featurised once with MiniLM (max length 128): the demo data, and the demo's
text rendered as HH-RLHF transcripts (implicit prompt, half of them multi-turn). Labels are clean, then for
each seed a fresh 10% or 20% of pairs is flipped; a flip only negates the pair's feature difference, so no
re-featurisation is needed. For each (dataset, rate, seed) the audit's margin passes run exactly as
`python -m normbt_viz audit` runs them (5 folds x 3 fold seeds, L2 by out-of-fold log-loss; `--refit` adds
the prune-and-refit pass, off by default as in the audit).

Compared, all scored against the injected flips:
- ours: the label-issue score (mean over fold seeds of P(label wrong) = σ(-margin)), and the `label_issue`
  flag for precision/recall of a set;
- cleanlab find_label_issues (confident learning, default prune_by_noise_rate, ranked by self_confidence)
  given the same out-of-fold probabilities (P(labelled chosen wins), the mean over fold seeds). A pair is a
  two-class example with symmetric classes: for a seeded half of the pairs the answers are presented as
  (A=rejected, B=chosen) with label "B"; the rest as (A=chosen, B=rejected) with label "A". Its AUROC and
  precision@k use its ranked output (flagged pairs by rank, then the unflagged tied).

Prints medians over seeds. `--check` exits 1 if ours has AUROC < 0.90 at 10% on the demo data, or if ours is
below cleanlab on AUROC or precision@k in any (dataset, rate).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
import torch

from normbt_viz.audit.scoring import auroc, label_issue_scores, margin_passes, precision_at_k
from normbt_viz.audit.spec import AuditConfig
from normbt_viz.data.demo import generate_demo_pairs, hh_transcripts
from normbt_viz.data.sources import load_pairs
from normbt_viz.model.backbones import load_backbone
from normbt_viz.model.features import chunked_representations

try:
    from cleanlab.filter import find_label_issues
except ImportError:
    sys.exit("bench_audit needs cleanlab (a benchmark-only peer): pip install -r benchmarks/requirements-bench.txt")


def clean_features(name: str, n: int, backbone) -> tuple[torch.Tensor, np.ndarray]:
    """(h_c - h_r with every label correct, identical mask) for the named dataset."""
    if name == "demo":
        table = load_pairs("demo", demo_size=n, demo_noise=0.1, demo_seed=0)  # cached by earlier audits
        pairs = table.pairs
        h_c, h_r, _ = chunked_representations(backbone, pairs, 128)
        sign = np.where(pairs["flipped"].to_numpy(), -1.0, 1.0)  # undo the demo's own flips
    else:
        pairs = load_pairs(hh_transcripts(generate_demo_pairs(n, 0.0, seed=1), seed=1)).pairs
        h_c, h_r, _ = chunked_representations(backbone, pairs, 128)
        sign = np.ones(len(pairs))
    d = (h_c - h_r) * torch.from_numpy(sign).float()[:, None]
    identical = pairs["identical"].to_numpy() | (d.norm(dim=1).numpy() <= 1e-6)
    return d, identical


def cleanlab_scores(p_chosen: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a score ranking find_label_issues' output, its boolean mask) for pairs whose labelled-chosen answer
    wins with probability `p_chosen`, posed as symmetric two-class examples."""
    n = len(p_chosen)
    chosen_is_b = np.random.default_rng(1000 + seed).random(n) < 0.5
    labels = chosen_is_b.astype(int)
    p_b = np.where(chosen_is_b, p_chosen, 1 - p_chosen)
    pred_probs = np.column_stack([1 - p_b, p_b])
    ranked = find_label_issues(labels, pred_probs, return_indices_ranked_by="self_confidence")
    score = np.zeros(n)
    score[ranked] = len(ranked) - np.arange(len(ranked))
    mask = np.zeros(n, dtype=bool)
    mask[ranked] = True
    return score, mask


def one(d_clean: torch.Tensor, identical: np.ndarray, rate: float, seed: int, config: AuditConfig) -> list[dict]:
    n = d_clean.shape[0]
    rng = np.random.default_rng(seed)
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, round(rate * n), replace=False)] = True
    d = d_clean * torch.from_numpy(np.where(flipped, -1.0, 1.0)).float()[:, None]
    _, final, _, _ = margin_passes(d, ~identical, config)
    score, misranked = label_issue_scores(final)
    score[identical] = 0.5
    flag = ~identical & (misranked >= 1) & (score > config.label_issue_threshold)
    k = int(flipped.sum())
    p_chosen = (1 / (1 + np.exp(-np.clip(final, -50, 50)))).mean(axis=1)
    cl_score, cl_mask = cleanlab_scores(p_chosen, seed)
    rows = [("ours: label-issue score / flag", score, flag), ("cleanlab find_label_issues", cl_score, cl_mask)]
    return [{"method": method, "auroc": auroc(s, flipped), "precision_at_k": precision_at_k(s, flipped, k),
             "flagged": int(mask.sum()), "flag_precision": float(flipped[mask].mean()) if mask.any() else np.nan,
             "flag_recall": float(mask[flipped].mean())} for method, s, mask in rows]


def markdown_table(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "|".join("---" if not pd.api.types.is_numeric_dtype(t) else "---:" for t in table.dtypes) + "|"]
    for row in table.itertuples(index=False):
        cells = [f"{v:.3f}" if isinstance(v, float) and c != "flagged" else (f"{v:.0f}" if c == "flagged" else str(v))
                 for c, v in zip(table.columns, row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5, help="flip-injection seeds (medians are reported)")
    parser.add_argument("--refit", action="store_true", help="the audit's optional prune-and-refit pass")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    config = AuditConfig(prune_refit=args.refit)
    backbone = load_backbone("minilm")
    results = []
    for name in ("demo", "hh-shaped"):
        started = time.time()
        d, identical = clean_features(name, args.pairs, backbone)
        print(f"{name}: {len(d)} pairs featurised or read from the cache in {time.time() - started:.0f} s "
              f"({int(identical.sum())} identical for MiniLM)", file=sys.stderr)
        for rate in (0.1, 0.2):
            for seed in range(args.seeds):
                for row in one(d, identical, rate, seed, config):
                    results.append({"dataset": name, "flips": f"{rate:.0%}", "seed": seed, **row})
    frame = pd.DataFrame(results)
    table = frame.groupby(["dataset", "flips", "method"], sort=False)[
        ["auroc", "precision_at_k", "flagged", "flag_precision", "flag_recall"]].median().reset_index()
    print(f"Medians over {args.seeds} flip seeds, {args.pairs} pairs each, MiniLM features, 5 folds x 3 fold seeds"
          f"{', prune and refit' if args.refit else ''}.\n")
    print(markdown_table(table))

    failures = []
    ours = table[table["method"].str.startswith("ours")].set_index(["dataset", "flips"])
    demo10 = ours.loc[("demo", "10%"), "auroc"]
    if demo10 < 0.90:
        failures.append(f"AUROC {demo10:.3f} < 0.90 at 10% flips on the demo data")
    for row in table[~table["method"].str.startswith("ours")].itertuples(index=False):
        mine = ours.loc[(row.dataset, row.flips)]
        for metric in ("auroc", "precision_at_k"):
            if mine[metric] < getattr(row, metric) - 1e-12:
                failures.append(f"{row.dataset} {row.flips}: ours {metric} {mine[metric]:.3f} < {row.method} "
                                f"{getattr(row, metric):.3f}")
    if args.check:
        for failure in failures:
            print(f"CHECK FAILED: {failure}", file=sys.stderr)
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
