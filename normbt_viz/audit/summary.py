"""The audit's summary.md: what was audited, the flags, the known flips, the per-category rates and the top label
issues, as Markdown built from the audit frame and its meta."""

from __future__ import annotations

import pandas as pd

from normbt_viz.audit.scoring import category_rates, flag_counts
from normbt_viz.audit.spec import FLAGS


def _snippet(text: str, width: int = 60) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def audit_markdown(frame: pd.DataFrame, meta: dict, top: int = 20) -> str:
    lines = [f"# Audit of {meta['source']}", ""]
    lines.append(f"{len(frame)} pairs audited (format {meta['format']}; {meta['n_skipped_rows']} source row(s) "
                 f"skipped as invalid). Backbone `{meta['config']['backbone']}`, max length "
                 f"{meta['config']['max_length']}, {meta['config']['folds']}-fold out-of-fold margins over "
                 f"{meta['config']['seeds']} seed(s), L2 {meta['l2']:g}.")
    for note in meta.get("notes", []):
        lines.append(f"- note: {note}")
    lines += ["", "## Flags", "", "| flag | pairs | share | meaning |", "|---|---:|---:|---|"]
    for row in flag_counts(frame).itertuples(index=False):
        lines.append(f"| {row.flag} | {row.pairs} | {row.pairs / max(len(frame), 1):.1%} | {row.meaning} |")
    lines.append(f"\n{int((frame['n_flags'] > 0).sum())} pair(s) carry at least one flag.")
    metrics = meta.get("detection")
    if metrics:
        lines += ["", "## Known flips", "",
                  f"{metrics['n_flipped']} pairs have known flipped labels: label-issue score AUROC "
                  f"{metrics['auroc']:.3f}, precision at k={metrics['n_flipped']} {metrics['precision_at_k']:.3f}; "
                  f"the label_issue flag has precision {metrics['flag_precision']:.3f} and recall "
                  f"{metrics['flag_recall']:.3f}."]
    lines += ["", "## Per category", "", "| category | pairs | mean label-issue score | median rep distance | "
              + " | ".join(FLAGS) + " |", "|---|---:|---:|---:|" + "---:|" * len(FLAGS)]
    for row in category_rates(frame).to_dict("records"):
        rates = " | ".join(f"{row[name]:.1%}" for name in FLAGS)
        lines.append(f"| {row['category']} | {row['pairs']} | {row['mean_label_issue_score']:.3f} | "
                     f"{row['median_rep_distance']:.3f} | {rates} |")
    lines += ["", f"## Top {top} likely label issues", "",
              "| pair_id | category | score | oof margin ± sd | rep distance | prompt | chosen | rejected |",
              "|---|---|---:|---:|---:|---|---|---|"]
    for row in frame.nlargest(top, "label_issue_score").itertuples(index=False):
        lines.append(f"| {row.pair_id} | {row.category} | {row.label_issue_score:.3f} | {row.oof_margin:+.2f} ± "
                     f"{row.oof_margin_std:.2f} | {row.rep_distance:.3f} | {_snippet(row.prompt)} | "
                     f"{_snippet(row.chosen)} | {_snippet(row.rejected)} |")
    cleaned = meta.get("cleaned")
    if cleaned:
        lines += ["", "## Cleaned copy", "", f"`{cleaned['file']}`: {cleaned['description']}"]
    lines += ["", f"Featurised {len(frame)} pairs in {meta['timings']['features_s']:.1f} s "
              f"({meta['feature_chunks_cached']} of {meta['feature_chunks']} chunk(s) from the cache), audited in "
              f"{meta['timings']['audit_s']:.1f} s; peak memory {meta['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines) + "\n"
