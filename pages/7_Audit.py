"""Audit: every pair of the dataset scored out of fold for likely label errors, plus outlier flags; browse the
flagged pairs with their texts side by side and download a cleaned copy."""

import streamlit as st

from normbt_viz.audit.auditdir import audits_root, list_audits, new_audit_dir
from normbt_viz.audit.run import estimate_seconds, launch_audit
from normbt_viz.audit.scoring import category_rates, flag_counts
from normbt_viz.audit.spec import CLEAN_MODES, FLAGS, AuditConfig
from normbt_viz.audit.summary import trust_lines
from normbt_viz.errors import NormBTError
from normbt_viz.ui.audit_view import DISPLAY_LIMIT, REASONS, SORTS, audit_view, length_figure, readable_pairs, reason_mask
from normbt_viz.ui.common import param_widget, read_source, runs_root, session_source, source_fields
from normbt_viz.ui.state import init_state

init_state()
state = st.session_state
root = audits_root(runs_root())

st.title("Audit")
st.caption("Scores **every** pair with reward models that never trained on it (K folds × seeds on cached backbone "
           "features), and flags likely label errors, identical or near-identical answers, duplicates, extreme "
           "length ratios and empty-looking answers.")

with st.expander("Start an audit", expanded=not list_audits(root)):
    source = session_source()
    st.write(f"Data: **{source.describe()}** (choose it on the Data page)")
    a, b, c = st.columns(3)
    a.selectbox("Backbone", list(dict.fromkeys(["minilm", "smollm2", state["backbone"], state["audit_backbone"]])),
                key="audit_backbone",
                help=param_widget("backbone", of=AuditConfig)["help"])
    b.number_input("Max length (tokens)", step=8, key="audit_max_length", **param_widget("max_length", of=AuditConfig))
    c.number_input("Pair limit (0: every pair)", min_value=0, step=500, key="audit_limit",
                   help=param_widget("limit", of=AuditConfig)["help"])
    a, b, c = st.columns(3)
    a.number_input("Folds", step=1, key="audit_folds", **param_widget("folds", of=AuditConfig))
    b.number_input("Seeds", step=1, key="audit_seeds", **param_widget("seeds", of=AuditConfig))
    c.selectbox("Cleaned copy", CLEAN_MODES, key="audit_clean", help=param_widget("clean", of=AuditConfig)["help"])
    st.text_input("Judge (optional)", key="audit_judge", placeholder="a reward model folder or hub id",
                  help=param_widget("judge", of=AuditConfig)["help"])
    if source.dataset:
        try:
            n_source = len(read_source(source)[0])
            n_audit = min(n_source, int(state["audit_limit"]) or n_source)
            seconds, basis = estimate_seconds(n_audit, state["audit_backbone"], int(state["audit_max_length"]),
                                              [f.meta() for f in list_audits(root) if f.has_meta()])
            st.caption(f"Estimate: {n_audit:,} pairs × {state['audit_backbone']} at {int(state['audit_max_length'])} tokens "
                       f"≈ {seconds / 60:.1f} min cold ({basis}); seconds when its features are cached.")
        except NormBTError as exc:
            st.error(str(exc))
    if st.button("Audit every pair", key="start_audit", type="primary"):
        if not source.dataset:
            st.error("Choose a data source on the Data page first.")
        else:
            try:
                config = AuditConfig(**{**source_fields(source), "limit": int(state["audit_limit"]) or None,
                                        "max_length": int(state["audit_max_length"])},
                                     backbone=state["audit_backbone"], folds=int(state["audit_folds"]),
                                     seeds=int(state["audit_seeds"]), clean=state["audit_clean"],
                                     judge=state["audit_judge"].strip()).validate()
                folder = new_audit_dir(root)  # only once the options are checked: a refused audit leaves no folder
                launch_audit(config, folder.path)
                state["audit_dir"] = folder.name
                st.success(f"Audit started in the background: `{folder.path}`")
            except NormBTError as exc:
                st.error(str(exc))

folders = list_audits(root)
if not folders:
    st.info(f"No audits yet: start one above, or run `python -m normbt_viz audit --dataset ... --out {root}/NAME`.")
    st.stop()
names = [f.name for f in folders]
default = names.index(state["audit_dir"]) if state["audit_dir"] in names else 0
folder = folders[names.index(st.selectbox("Audit", names, index=default, key="audit_pick"))]



@st.fragment(run_every=2)
def audit_progress(folder) -> None:
    """Redraws itself every 2 s while the audit runs; reruns the page when it is done."""
    if folder.is_finished():
        st.rerun()
    progress = folder.progress()
    phase, done, total = progress.get("phase", "starting"), progress.get("done", 0), max(progress.get("total", 1), 1)
    if progress.get("state") in ("failed", "cancelled"):
        st.error(f"Audit {progress['state']}: {progress.get('error')}. Start it again into a new folder; cached "
                 "feature chunks are reused, so it continues where it stopped.")
    else:
        st.progress(min(done / total, 1.0), text=f"{phase}: {done:,}/{total:,}")


if not folder.is_finished():
    audit_progress(folder)
    st.stop()

frame = folder.frame()
meta = folder.meta() if folder.has_meta() else {}
if meta.get("self_check"):
    trust = trust_lines(meta)  # "", "## heading", "", then the section's text
    st.subheader(trust[1].lstrip("# "))
    st.markdown("\n".join(trust[3:]))
    if meta.get("pair_features"):
        st.plotly_chart(length_figure(frame), width="stretch")
a, b, c, d = st.columns(4)
a.metric("Pairs audited", f"{len(frame):,}")
b.metric("Flagged (any)", f"{int((frame['n_flags'] > 0).sum()):,}")
c.metric("Likely label errors", f"{int(frame['flag_label_issue'].sum()):,}")
d.metric("Near-identical for the backbone", f"{int(frame['flag_near_identical'].sum() + frame['flag_identical'].sum()):,}")
if folder.has_skipped_rows():
    st.caption(f"Source rows skipped as invalid are listed in `{folder.skipped_path}`.")

left, right = st.columns([2, 3])
left.dataframe(flag_counts(frame)[["flag", "pairs"]], hide_index=True)
right.dataframe(category_rates(frame), hide_index=True)

st.subheader("Flagged pairs")
a, b, c, d = st.columns([2, 2, 2, 2])
flags = a.multiselect("Any of the flags", list(FLAGS), default=["label_issue"], key="audit_flags",
                      help="\n".join(f"- **{k}**: {v}" for k, v in FLAGS.items()))
reasons = b.multiselect("Reasons (all of)", list(REASONS), key="audit_reasons",
                        help="keep the pairs whose one-line reason says all of these")
categories = c.multiselect("Categories", sorted(frame["category"].unique()), key="audit_categories")
sort = d.selectbox("Sort by", list(SORTS), key="audit_sort")
if "reason" in frame:
    frame = frame[reason_mask(frame, reasons)]
view, matched = audit_view(frame, flags, categories, sort)
if "reason" in view:
    st.dataframe(readable_pairs(view, folder.texts_of(view["pair_id"].tolist())), hide_index=True,
                 column_config={name: st.column_config.TextColumn(width="large") for name in
                                ("reason", "chosen (as labelled)", "rejected (as labelled)")})
else:  # an audit written before flags carried reasons
    shown = ["pair_id", "category", "label_issue_score", "oof_margin", "oof_margin_std", "rep_distance",
             "length_ratio", "n_flags", *[f"flag_{f}" for f in FLAGS]]
    st.dataframe(view[[c for c in shown if c in view]], hide_index=True)
if matched > DISPLAY_LIMIT:
    st.caption(f"Showing the first {DISPLAY_LIMIT:,} of {matched:,} matching pairs in this order (sort or filter to see others).")
else:
    st.caption(f"{matched:,} matching pair(s).")

cleaned = folder.cleaned_copy()
if cleaned:
    name, content = cleaned
    st.download_button(f"Download the cleaned copy ({name})", content, file_name=name, key="audit_download")
summary = folder.summary()
if summary:
    with st.expander("Summary"):
        st.markdown(summary)
