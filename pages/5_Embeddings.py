"""Embeddings: a 2-D map of the pairs' representations, coloured by any per-pair diagnostic; select a
region to read its pairs."""

import json

import streamlit as st

from normbt_viz.errors import NormBTError
from normbt_viz.ui.figures import embedding_map
from normbt_viz.analysis.projection import projection_frame
from normbt_viz.ui.selection import selected_pair_ids, selected_pairs
from normbt_viz.ui.common import run_and_step_header, run_backbone
from normbt_viz.ui.state import init_state

init_state()
state = st.session_state
st.title("Embeddings")
run, step, (c, d) = run_and_step_header("emb", [3, 2, 1, 2])
method_label = c.radio("Method", ["PCA", "UMAP"], key="projection_method")
what_label = d.radio("Show", ["difference h_c − h_r", "chosen and rejected, joined"], key="projection_what")
method = method_label.lower()
what = "diff" if what_label.startswith("difference") else "pairs"
COLOR_OPTIONS = ["category", "correct", "flipped", "margin", "pred_error", "rep_distance", "head_grad_norm",
                 "update_norm", "weight", "split", "distance_bin"]
color = st.selectbox("Colour by", COLOR_OPTIONS, key="emb_color")

spinner = "Running UMAP (the first time compiles it: 20-30 s)…" if method == "umap" else "Projecting…"
try:
    if run.read_projection(method, what) is None:
        with st.spinner(spinner):
            frame = projection_frame(run, step, method, what, backbone=run_backbone(run))
    else:
        frame = projection_frame(run, step, method, what)
except (NormBTError, ValueError) as exc:
    st.error(str(exc))
    st.stop()
if color == "distance_bin":
    frame["distance_bin"] = frame["distance_bin"].astype(str)

event = st.plotly_chart(embedding_map(frame, color, segments=what == "pairs"), key="emb_map",
                        on_select="rerun", selection_mode=("box", "lasso"))
scope_note = "" if run.spec().scope == "head" else " This run also trained backbone blocks: the map shows the pre-training h."
st.caption(f"Each point is a pair ({'its difference vector' if what == 'diff' else 'chosen ● joined to rejected ✕'}), "
           f"{method.upper()} of the frozen backbone's h. Look for clusters of one colour: close, misranked pairs "
           f"are the ones BT neglects. Box- or lasso-select points to list them below.{scope_note}")

ids = selected_pair_ids(event)
st.subheader(f"Selected pairs ({len(ids)})")
if not ids:
    st.caption("Nothing selected yet: drag a box or a lasso over the map.")
    st.stop()
chosen = selected_pairs(frame, ids)
show = ["pair_id", "category", "split", "margin", "correct", "flipped", "rep_distance", "weight", "prompt", "chosen", "rejected"]
st.dataframe(chosen[show], hide_index=True)
a, b = st.columns(2)
a.download_button("Download selection (CSV)", chosen.to_csv(index=False), "selected_pairs.csv", "text/csv")
jsonl = "".join(json.dumps(record, default=str) + "\n" for record in chosen.drop(columns=[c for c in ("x", "y", "x_rejected", "y_rejected") if c in chosen]).to_dict("records"))
b.download_button("Download selection (JSONL)", jsonl, "selected_pairs.jsonl", "application/jsonl")
