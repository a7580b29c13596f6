"""How well does the audit find flipped labels on real data? Against a length rule and cleanlab, on the same data.

    pip install -r benchmarks/requirements-bench.txt   # cleanlab, the named peer for label issues
    python benchmarks/bench_audit.py [--hh ../shared/data/hh_rlhf_harmless_base_test.jsonl] [--seeds 3] [--check]
                                     [--backbone smollm2] [--max-length 256]

Data, featurised once as the default audit reads it (`python -m normbt_viz audit`: SmolLM2 at max length 256, both
answers of a pair in one row after their shared prompt, h and each answer's mean state at two-thirds depth, bf16
where the CPU has native bf16; features come from the shared cache when an audit already read them; `--backbone
minilm --max-length 128` measures the audit as it was before):
- hh: the real HH-RLHF harmless test file (human labels, raters prefer the shorter answer in 56% of pairs);
- hh-longer: the same pairs with the sides chosen by length (the longer answer is chosen), a data set where
  the preference follows length the other way, which must not fool the audit;
- demo: 2,000 demo pairs with the demo's own flips undone.
For each (data, rate in 5/10/20%, flip seed) a fresh share of pairs is flipped (a flip negates the pair's row,
so nothing is featurised again) and every method scores the same flipped copy:
- audit: the default scorer: linear out-of-fold BT on the backbone's features and the pair features,
  5 folds x 3 fold seeds, L2 by out-of-fold log-loss;
- audit, backbone only: the same without pair features;
- length rule: flag the pairs whose chosen answer has the length the data's pairs disfavour;
- cleanlab: find_label_issues on the audit's out-of-fold probabilities.
Also the audit's self-check (5% more flips on the flipped copy, the figure the Audit page shows) beside the
AUROC on the injected flips, which it must predict within 0.05.

Prints medians over flip seeds. `--check` exits 1 when the audit's AUROC is not at least 0.03 above the better
of the length rule and cleanlab on hh and demo at any rate, falls below either by more than 0.01 on hh-longer
(where the length rule is right by construction), or when its median self-check misses the injected-flip AUROC
on the real file at 10% flips (the issue's criterion) by more than 0.05; at 5% and 20% the gap is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere, like the other benchmarks
    sys.path.insert(0, str(REPO))

from normbt_viz.audit.pair_features import answer_token_counts, pair_feature_frame
from normbt_viz.audit.run import audit_features
from normbt_viz.audit.scoring import label_issue_scores, margin_passes
from normbt_viz.audit.selfcheck import detection_table, method_scores, self_check
from normbt_viz.audit.spec import AuditConfig
from normbt_viz.data.sources import load_pairs
from normbt_viz.model.backbones import inference_dtype, load_backbone, select_device
from normbt_viz.model.features import packs_prompt

try:
    import cleanlab  # noqa: F401
except ImportError:
    sys.exit("bench_audit needs cleanlab (the peer): pip install -r benchmarks/requirements-bench.txt")

HH_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh_rlhf_harmless_base_test.jsonl"
RATES = (0.05, 0.1, 0.2)


def clean_data(name: str, args, backbone) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, np.ndarray]:
    """(h_c - h_r, the answer block's difference or None, pair features, trainable mask) with every label as
    the data's clean reference."""
    if name == "demo":
        pairs = load_pairs("demo", demo_size=args.demo_pairs, demo_noise=0.1, demo_seed=0).pairs
        sign = np.where(pairs["flipped"].to_numpy(), -1.0, 1.0)  # undo the demo's own flips
    else:
        pairs = load_pairs(str(args.hh)).pairs
        sign = np.ones(len(pairs))
    h_c, h_r, answer, _ = audit_features(backbone, pairs, AuditConfig(dataset=name, max_length=args.max_length))
    answer_d = None if answer is None else answer[0] - answer[1]
    features = pair_feature_frame(pairs, answer_token_counts(backbone.tokenizer, pairs["chosen"]),
                                  answer_token_counts(backbone.tokenizer, pairs["rejected"]))
    if name == "hh-longer":  # the longer answer (in words) is chosen; equal lengths keep the human label
        sign = np.where(features["log_words_ratio"].to_numpy() < 0, -1.0, 1.0)
    flip = torch.from_numpy(sign).float()[:, None]
    d = (h_c - h_r) * flip
    answer_d = None if answer_d is None else answer_d * flip
    extra = torch.tensor(features.to_numpy(), dtype=torch.float32) * flip
    trainable = ~(pairs["identical"].to_numpy() | (d.norm(dim=1).numpy() <= 1e-6))
    return d, answer_d, extra, trainable


def one(d: torch.Tensor, answer_d: torch.Tensor | None, extra: torch.Tensor, trainable: np.ndarray, rate: float,
        seed: int, config: AuditConfig) -> list[dict]:
    candidates = np.flatnonzero(trainable)
    flipped = np.zeros(len(trainable), dtype=bool)
    flipped[np.random.default_rng(seed).choice(candidates, round(rate * len(candidates)), replace=False)] = True
    sign = torch.from_numpy(np.where(flipped, -1.0, 1.0)).float()[:, None]
    d, extra = d * sign, extra * sign
    answer_d = None if answer_d is None else answer_d * sign
    log_words_ratio = extra[:, 0].double().numpy()  # the first pair feature
    _, margins, l2, _, x = margin_passes(d, trainable, config, pair_features=extra, answer_d=answer_d)
    table = detection_table(method_scores(margins, log_words_ratio, seed), flipped, trainable)
    _, backbone_only, _, _, _ = margin_passes(d, trainable, config, answer_d=answer_d)
    table["audit, backbone only"] = detection_table({"s": label_issue_scores(backbone_only)[0]}, flipped, trainable)["s"]
    check = self_check(x, trainable, log_words_ratio, config.folds,
                       config.seeds, l2, config.self_check_rate, 100 + seed)
    rows = [{"method": name, **figures} for name, figures in table.items()]
    rows.append({"method": "audit self-check (5% more flips)", **check["methods"]["audit"]})
    return rows


def markdown_table(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(t) else "---" for t in table.dtypes) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hh", type=Path, default=HH_DEFAULT, help="the HH-RLHF harmless test file (JSON lines)")
    parser.add_argument("--demo-pairs", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3, help="flip-injection seeds (medians are reported)")
    parser.add_argument("--backbone", default=AuditConfig.backbone, help="the audit's backbone (default: the audit's)")
    parser.add_argument("--max-length", type=int, default=AuditConfig.max_length, help="tokens per sequence (default: the audit's)")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if not args.hh.is_file():
        sys.exit(f"bench_audit: {args.hh} not found; pass --hh PATH to the HH-RLHF harmless test file")
    config = AuditConfig(dataset="benchmark")
    backbone = load_backbone(args.backbone, dtype=inference_dtype(AuditConfig.dtype, select_device("auto")))
    results = []
    for name in ("hh", "hh-longer", "demo"):
        started = time.time()
        d, answer_d, extra, trainable = clean_data(name, args, backbone)
        print(f"{name}: {len(d)} pairs featurised or read from the cache in {time.time() - started:.0f} s",
              file=sys.stderr)
        for seed in range(args.seeds):  # seeds outermost, so every rate's runs alternate with the others'
            for rate in RATES:
                for row in one(d, answer_d, extra, trainable, rate, seed, config):
                    results.append({"data": name, "flips": f"{rate:.0%}", "seed": seed, **row})
    frame = pd.DataFrame(results)
    table = frame.groupby(["data", "flips", "method"], sort=False)[["auroc", "precision_at_k"]].median().reset_index()
    print(f"Medians over {args.seeds} flip seeds; {args.backbone} ({backbone.dtype}, max length {args.max_length}"
          f"{', packed, with the answer block' if packs_prompt(backbone) else ''}), 5 folds x 3 fold seeds.\n")
    print(markdown_table(table))

    failures = []
    wide = table.pivot_table(index=["data", "flips"], columns="method", values="auroc")
    for (name, flips), row in wide.iterrows():
        best = max(row["length rule"], row["cleanlab"])
        margin = 0.03 if name in ("hh", "demo") else -0.01
        if row["audit"] < best + margin:
            failures.append(f"{name} {flips}: audit AUROC {row['audit']:.3f} < best baseline {best:.3f} {margin:+.2f}")
        # Only on the real file at the issue's 10% rate. Elsewhere the copy's wrong labels are many (the injected
        # flips, plus HH's own at 20%), and a self-check flip that lands on one restores it, so the self-check
        # reads about A(1 - 2η) + η there (η: the share of wrong labels): printed, not checked.
        gap = abs(row["audit self-check (5% more flips)"] - row["audit"])
        if name == "hh" and flips != "10%" and gap > 0.05:
            print(f"note: {name} {flips}: self-check {row['audit self-check (5% more flips)']:.3f} is {gap:.3f} from "
                  f"the injected-flip AUROC {row['audit']:.3f} (η above 20%: read low by the rule)", file=sys.stderr)
        if name == "hh" and flips == "10%" and gap > 0.05:
            failures.append(f"{name} {flips}: self-check {row['audit self-check (5% more flips)']:.3f} is more than "
                            f"0.05 from the injected-flip AUROC {row['audit']:.3f}")
    for failure in failures:
        print(f"{'CHECK FAILED' if args.check else 'target missed'}: {failure}", file=sys.stderr)
    return 1 if args.check and failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
