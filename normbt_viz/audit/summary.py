"""The audit's summary.md: what was audited, the flags, the known flips, the per-category rates and the top label
issues, as Markdown built from the audit frame and its meta."""

from __future__ import annotations

import pandas as pd

from normbt_viz.audit.scoring import category_rates, flag_counts
from normbt_viz.audit.selfcheck import auroc_ceiling
from normbt_viz.audit.spec import FLAGS


def _snippet(text: str, width: int = 60) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def trust_lines(meta: dict) -> list[str]:
    """The summary's opening section, "how far to trust these flags on this dataset": the self-check on injected
    flips (the audit against the length rule and cleanlab), the ceiling the out-of-fold accuracy implies, and the
    share of the score that answer length explains."""
    check = meta.get("self_check")
    lines = ["", "## How far to trust these flags on this dataset", ""]
    if not check:
        return lines + ["No self-check ran (self_check_rate 0, or too few pairs)."]
    methods = check["methods"]
    lines += [f"Self-check: {check['n_flipped']} pairs ({check['rate']:.0%}) of a copy were flipped at random (seed "
              f"{check['seed']}) and scored by the same out-of-fold model; how well each method finds those flips:", "",
              "| method | AUROC | precision at k |", "|---|---:|---:|"]
    for name, figures in methods.items():
        lines.append(f"| {name} | {figures['auroc']:.3f} | {figures['precision_at_k']:.3f} |")
    if not check["cleanlab_available"]:
        lines.append("| cleanlab | not installed | |")
    audit = methods["audit"]["auroc"]
    best_name, best = max(((name, f["auroc"]) for name, f in methods.items() if name != "audit"), key=lambda item: item[1])
    best_name = {"length rule": "the length rule"}.get(best_name, best_name)
    verdict = (f"the audit is no better than {best_name} on this data (AUROC {audit:.3f} vs {best:.3f}): its flags "
               f"carry no more evidence than {best_name}'s" if audit < best + 0.01 else
               f"the audit beats {best_name}, the better baseline, by {audit - best:.3f} AUROC")
    lines += ["", f"Verdict: {verdict}. AUROC 0.5 is chance, 1.0 finds every flip first.",
              f"Ceiling: the scorer ranks {check['oof_accuracy']:.1%} of the copy's unflipped pairs as labelled out of "
              f"fold, so at a {check['rate']:.0%} flip rate about {check['flag_purity_ceiling']:.1%} of the pairs "
              f"it scores against their label are flips, and no better fit on the same features finds the flips much "
              f"above AUROC {auroc_ceiling(check['oof_accuracy']):.2f} (what a scorer right on {check['oof_accuracy']:.0%} of pairs "
              f"reaches when its margins are normal); past that only a scorer that knows the preference better, "
              f"such as a judge, helps.",
              f"Length: this dataset prefers {meta['length_prefers']} answers; a line in the log word ratio explains "
              f"{meta['length_share']:.0%} of the out-of-fold margin's variance. Scorer: {meta['scorer']}."]
    return lines


def audit_markdown(frame: pd.DataFrame, meta: dict, top: int = 20) -> str:
    lines = [f"# Audit of {meta['source']}", ""]
    lines.append(f"{len(frame)} pairs audited (format {meta['format']}; {meta['n_skipped_rows']} source row(s) "
                 f"skipped as invalid). Backbone `{meta['config']['backbone']}`"
                 f"{' (' + meta['dtype'] + ')' if meta.get('dtype') else ''}, max length "
                 f"{meta['config']['max_length']}, {meta['config']['folds']}-fold out-of-fold margins over "
                 f"{meta['config']['seeds']} seed(s), L2 {meta['l2']:g}.")
    for note in meta.get("notes", []):
        lines.append(f"- note: {note}")
    lines += trust_lines(meta)
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
              f"{meta['timings']['audit_s']:.1f} s{_judge_time(meta['timings'])}; peak memory {meta['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines) + "\n"


def _judge_time(timings: dict) -> str:
    if "judge_s" not in timings:
        return ""
    return f" (the judge's scores {'from the cache' if timings['judge_cached'] else 'computed'} in {timings['judge_s']:.1f} s of it)"
