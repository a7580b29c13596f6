"""Data: choose the preference pairs, check how they were read, and see how far apart the backbone puts
each pair's two answers."""

import streamlit as st

from normbt_viz.analysis.outliers import length_stats
from normbt_viz.data.demo import DEMO_MAX_DISTINCT
from normbt_viz.errors import NormBTError
from normbt_viz.model.distance import survey_distances
from normbt_viz.ui.figures import answer_lengths, category_counts, distance_histogram
from normbt_viz.ui.common import cached_backbone, md_text, read_source, runs_root, session_source
from normbt_viz.ui.data_panels import mapping_panel, token_length_panel
from normbt_viz.runs.rundir import store_upload
from normbt_viz.ui.state import init_state

init_state()
state = st.session_state
MAX_UPLOAD_MB = 50

st.title("Data")
st.radio("Source", ["Demo", "Hugging Face", "Local path", "Upload"], key="source_kind", horizontal=True)

if state["source_kind"] == "Demo":
    a, b = st.columns(2)
    a.slider("Demo size (pairs)", 20, DEMO_MAX_DISTINCT, step=20, key="demo_size")
    b.slider("Demo label noise", 0.0, 0.5, step=0.05, key="demo_noise", help="share of pairs whose labels are flipped")
    st.caption("Synthetic pairs in four categories; reasoning pairs differ by one wrong number, so they sit close together.")
elif state["source_kind"] == "Hugging Face":
    a, b, c = st.columns([3, 1, 1])
    a.text_input("Dataset id", key="hf_id", placeholder="e.g. trl-lib/ultrafeedback_binarized")
    b.text_input("Config", key="hf_config")
    c.text_input("Split", key="hf_split")
elif state["source_kind"] == "Local path":
    st.text_input("Path (.jsonl, .json, .csv, .tsv, .parquet, optionally .gz/.bz2/.xz/.zst; a folder or glob of "
                  "shards; or a save_to_disk folder)", key="local_path")
else:
    uploaded = st.file_uploader(f"Preference file (up to {MAX_UPLOAD_MB} MB)", type=["jsonl", "json", "csv", "tsv", "parquet", "gz", "bz2", "xz", "zst"])
    if uploaded is not None:
        state["upload_path"] = str(store_upload(runs_root(), uploaded.name, uploaded.getvalue()))
    if state["upload_path"]:
        st.caption(f"Stored as `{state['upload_path']}`: training runs read it from there.")


st.checkbox("Strict: refuse the data at its first invalid row (default: skip invalid rows and list them)", key="strict")


source = session_source()
if not source.dataset:
    st.info("Choose a data source above.")
    st.stop()
try:
    pairs, fmt, mapping, description, n_identical, skipped, report_lines = read_source(source)
except NormBTError as exc:
    st.error(md_text(exc))  # the line quotes the file's values: shown as text, never as markdown or HTML
    if source.dataset != "demo":
        mapping_panel(source.column_mapping or {}, expanded=True)
    st.stop()

st.success(f"{len(pairs)} pairs from {md_text(description)} · format **{fmt}** · {n_identical} pair(s) with identical answers")
with st.expander("What was read and assumed", expanded=True):
    st.text("\n".join(report_lines))  # plain text: the lines quote the file's own values
if len(skipped):
    with st.expander(f"{len(skipped)} invalid row(s) skipped", expanded=False):
        st.dataframe(skipped.drop(columns=["message"]), hide_index=True,
                     column_config={"reason": st.column_config.TextColumn(width="large")})

if fmt != "demo":
    mapping_panel(mapping, expanded=False)

st.subheader("Preview")
st.dataframe(pairs.drop(columns=[c for c in ("prompt_messages", "source_row") if c in pairs]).head(50), hide_index=True)

left, right = st.columns(2)
with left:
    st.subheader("Pairs per category")
    st.plotly_chart(category_counts(pairs), key="category_counts")
    st.caption("Accuracy per category is only as reliable as each category's count.")
with right:
    st.subheader("Answer lengths (words)")
    st.plotly_chart(answer_lengths(pairs), key="answer_lengths")
    st.dataframe(length_stats(pairs), hide_index=True)
    st.caption("If the chosen answer is nearly always longer, a reward model can score length instead of quality.")

st.subheader("Token lengths")
st.caption(f"How many pairs each max length would truncate with the **{state['backbone']}** tokenizer (no weights are "
           "loaded); the suggestion covers 95% of the pairs. Set the max length on the Train and Audit pages.")
token_length_panel(pairs, source, state["backbone"])

st.subheader("Representation distances")
st.caption(f"Runs the **{state['backbone']}** backbone over both answers of every pair (cached on disk for later runs).")
if st.button("Compute representation distances", key="compute_distances"):
    try:
        bar = st.progress(0.0, text="Featurising…")
        survey = survey_distances(
            cached_backbone(state["backbone"]), pairs, int(state["max_length"]),
            progress=lambda done, total: bar.progress(done / total, text=f"Featurising {done}/{total} answers"),
        )
        bar.empty()
        state["distance_result"] = {
            "key": (repr(source), state["backbone"]),
            "frame": survey.frame,
            "n_truncated": survey.n_truncated,
            "n_identical_input": survey.n_identical_input,
        }
    except NormBTError as exc:
        st.error(str(exc))
result = state["distance_result"]
if result and result["key"] == (repr(source), state["backbone"]):
    st.plotly_chart(distance_histogram(result["frame"]), key="distance_hist")
    st.caption("Categories piled up near zero are the pairs BT under-trains; NormBT up-weights them. "
               f"{result['n_truncated']} pair(s) were truncated to {state['max_length']} tokens.")
    if result.get("n_identical_input"):
        st.warning(f"{result['n_identical_input']} pair(s) are the same input for {state['backbone']} (identical tokens, "
                   "e.g. answers differing only in case under an uncased tokenizer): no model on this backbone can rank "
                   "them, so training evaluates but skips them.")
