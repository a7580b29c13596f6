"""Audit: every pair of the dataset scored out of fold for likely label errors, plus outlier flags; browse the
flagged pairs with their texts side by side and download a cleaned copy."""

import time

import streamlit as st

from normbt_viz.analysis.audit import (
    CLEAN_MODES, DISPLAY_LIMIT, FLAGS, SORTS, audit_view, category_rates, flag_counts, list_audits, read_audit,
    read_pair_texts, read_progress,
)
from normbt_viz.runs.launcher import launch_audit
from normbt_viz.ui.common import data_source_spec, describe_source, runs_root, spec_widget
from normbt_viz.ui.state import init_state

init_state()
state = st.session_state
audits_root = runs_root() / "_audits"

st.title("Audit")
st.caption("Scores **every** pair with reward models that never trained on it (K folds × seeds on cached backbone "
           "features), and flags likely label errors, identical or near-identical answers, duplicates, extreme "
           "length ratios and empty-looking answers.")

with st.expander("Start an audit", expanded=not list_audits(audits_root)):
    st.write(f"Data: **{describe_source()}** · backbone **{state['backbone']}** (choose both on the Data page)")
    a, b, c = st.columns(3)
    folds = a.number_input("Folds", 2, 20, 5, key="audit_folds")
    seeds = b.number_input("Seeds", 1, 10, 3, key="audit_seeds")
    clean = c.selectbox("Cleaned copy", CLEAN_MODES, key="audit_clean",
                        help="remove flagged pairs, flip the labels of likely label errors, or none")
    st.number_input("Max length (tokens)", step=8, key="max_length", **spec_widget("max_length"))
    if st.button("Audit every pair", key="start_audit", type="primary"):
        source = data_source_spec()
        if not source["dataset"]:
            st.error("Choose a data source on the Data page first.")
        else:
            options = {"backbone": state["backbone"], "max_length": int(state["max_length"]), "folds": int(folds),
                       "seeds": int(seeds), "clean": clean, "strict": bool(state["strict"]),
                       "column_mapping": source.get("column_mapping"), "dataset_config": source.get("dataset_config"),
                       "dataset_split": source.get("dataset_split"), "demo_size": source.get("demo_size"),
                       "demo_noise": source.get("demo_noise")}
            folder = audits_root / time.strftime("%Y%m%d-%H%M%S")
            launch_audit(folder, source["dataset"], options)
            state["audit_dir"] = str(folder)
            st.success(f"Audit started in the background: `{folder}`")

folders = list_audits(audits_root)
if not folders:
    st.info("No audits yet: start one above, or run `python -m normbt_viz audit --dataset ... --out "
            f"{audits_root}/NAME`.")
    st.stop()
names = [f.name for f in folders]
default = names.index(state["audit_dir"].rsplit("/", 1)[-1]) if state["audit_dir"].rsplit("/", 1)[-1] in names else 0
folder = folders[names.index(st.selectbox("Audit", names, index=default, key="audit_pick"))]

progress = read_progress(folder)
if not (folder / "audit.parquet").is_file() or progress.get("state") in ("queued", "running"):
    phase, done, total = progress.get("phase", "starting"), progress.get("done", 0), max(progress.get("total", 1), 1)
    if progress.get("state") in ("failed", "cancelled"):
        st.error(f"Audit {progress['state']}: {progress.get('error')}. Start it again into a new folder; cached "
                 "feature chunks are reused, so it continues where it stopped.")
    else:
        st.progress(min(done / total, 1.0), text=f"{phase}: {done}/{total}")
        st.button("Refresh", key="audit_refresh")
    st.stop()

frame = read_audit(folder)
summary = (folder / "summary.md").read_text() if (folder / "summary.md").is_file() else ""
a, b, c, d = st.columns(4)
a.metric("Pairs audited", f"{len(frame):,}")
b.metric("Flagged (any)", f"{int((frame['n_flags'] > 0).sum()):,}")
c.metric("Likely label errors", f"{int(frame['flag_label_issue'].sum()):,}")
d.metric("Near-identical for the backbone", f"{int(frame['flag_near_identical'].sum() + frame['flag_identical'].sum()):,}")
if (folder / "skipped_rows.csv").is_file():
    st.caption(f"Source rows skipped as invalid are listed in `{folder / 'skipped_rows.csv'}`.")

left, right = st.columns([2, 3])
left.dataframe(flag_counts(frame)[["flag", "pairs"]], hide_index=True)
right.dataframe(category_rates(frame), hide_index=True)

st.subheader("Flagged pairs")
a, b, c = st.columns([2, 2, 2])
flags = a.multiselect("Any of the flags", list(FLAGS), default=["label_issue"], key="audit_flags",
                      help="\n".join(f"- **{k}**: {v}" for k, v in FLAGS.items()))
categories = b.multiselect("Categories", sorted(frame["category"].unique()), key="audit_categories")
sort = c.selectbox("Sort by", list(SORTS), key="audit_sort")
view, matched = audit_view(frame, flags, categories, sort)
shown = ["pair_id", "category", "label_issue_score", "oof_margin", "oof_margin_std", "rep_distance", "length_ratio",
         "n_flags", *[f"flag_{f}" for f in FLAGS]]
st.dataframe(view[[c for c in shown if c in view]], hide_index=True)
if matched > DISPLAY_LIMIT:
    st.caption(f"Showing the first {DISPLAY_LIMIT:,} of {matched:,} matching pairs in this order (sort or filter to see others).")
else:
    st.caption(f"{matched:,} matching pair(s).")

if len(view):
    pair_id = st.selectbox("Pair", view["pair_id"].tolist(), key="audit_pair")
    texts = read_pair_texts(folder, pair_id)
    row = view[view["pair_id"] == pair_id].iloc[0]
    st.markdown(f"**Prompt**  \n{texts.get('prompt', '')[-2000:]}")
    left, right = st.columns(2)
    left.markdown("**Chosen** (as labelled)")
    left.text(texts.get("chosen", "")[:4000])
    right.markdown("**Rejected** (as labelled)")
    right.text(texts.get("rejected", "")[:4000])
    st.caption(f"Out-of-fold margin {row['oof_margin']:+.2f} ± {row['oof_margin_std']:.2f}; label-issue score "
               f"{row['label_issue_score']:.3f}; representation distance {row['rep_distance']:.3f}.")

cleaned = sorted(folder.glob("cleaned.*"))
if cleaned:
    st.download_button(f"Download the cleaned copy ({cleaned[0].name})", cleaned[0].read_bytes(), file_name=cleaned[0].name,
                       key="audit_download")
if summary:
    with st.expander("summary.md"):
        st.markdown(summary)
