"""Embeddings: a 2-D map of the pairs' representations, coloured by any per-pair diagnostic; select a
region to read its pairs."""

import streamlit as st

from normbt_viz.errors import NormBTError
from normbt_viz.ui.figures import embedding_map
from normbt_viz.analysis.projection import projection_frame, shared_projection
from normbt_viz.runs.rundir import RunDir
from normbt_viz.ui.selection import selected_pair_ids, selected_pairs
from normbt_viz.ui.common import arm_of, cached_run_backbone, jsonl_text, run_and_step_header, runs_with_pairs
from normbt_viz.ui.pickers import pick_partner
from normbt_viz.ui.state import init_state

init_state()
state = st.session_state
st.title("Embeddings")
run, step, (c, d) = run_and_step_header("emb", [3, 2, 1, 2])
method_label = c.radio("Method", ["PCA", "UMAP"], key="projection_method")
what_label = d.radio("Show", ["difference h_c − h_r", "chosen and rejected, joined"], key="projection_what")
method = method_label.lower()
what = "diff" if what_label.startswith("difference") else "pairs"
COLOR_OPTIONS = ["correct", "flipped", "category", "margin", "pred_error", "rep_distance", "head_grad_norm",
                 "update_norm", "weight", "split", "distance_bin"]
# Right or wrong (and, on data with injected label noise, flipped) is what a reader looks for first.
color = st.selectbox("Colour by", COLOR_OPTIONS, key="emb_color")

spinner = "Running UMAP (the first time compiles it: 20-30 s)…" if method == "umap" else "Projecting…"


@st.cache_data(show_spinner=False, max_entries=16)
def cached_shared_projection(run_paths: tuple[str, ...], step: int, method: str, what: str, _stamp: tuple):
    return shared_projection([RunDir(p) for p in run_paths], step, method, what)


if run.representation_steps():
    # Backbone blocks trained: map the h the head read at this step, for this run and a partner, in one projection.
    partners = [r for r in runs_with_pairs() if r.name != run.name and r.representation_steps()]
    if not partners:
        st.info("This run trained backbone blocks and recorded its h at each evaluation; start a second arm (e.g. "
                "NormBT next to BT) with the same data to see both side by side. Showing this run alone.")
    partner = pick_partner("Compare with", run, partners, "emb_partner") if partners else None
    shown = [run] + ([partner] if partner is not None else [])
    try:
        with st.spinner(spinner):
            both = cached_shared_projection(tuple(str(r.path) for r in shown), step, method, what,
                                            tuple(r.pairs_mtime(step) for r in shown))
    except (NormBTError, ValueError, OSError) as exc:
        st.error(str(exc))
        st.stop()
    if color == "distance_bin":
        both["distance_bin"] = both["distance_bin"].astype(str)
    x_range = [float(both["x"].min()), float(both["x"].max())]
    y_range = [float(both["y"].min()), float(both["y"].max())]
    columns = st.columns(len(shown))
    events = []
    for column, shown_run in zip(columns, shown):
        part = both[both["run"] == shown_run.name]
        figure = embedding_map(part, color, segments=what == "pairs", method=method.upper())
        figure.update_layout(title=f"{arm_of(shown_run)} · {shown_run.name} · step {step}")
        figure.update_xaxes(range=x_range)
        figure.update_yaxes(range=y_range)
        events.append(column.plotly_chart(figure, key=f"emb_map_{shown_run.name}", on_select="rerun", selection_mode=("box", "lasso")))
    st.caption("Each map is the h the score head read at this step, for the same eval pairs, in one projection fitted "
               "on both runs together: move the step slider to watch BT and NormBT move the representation. "
               "Select points in either map to list them below.")
    event = events[0] if selected_pair_ids(events[0]) or len(events) == 1 else events[1]
    frame = both[both["run"] == (shown[0] if event is events[0] else shown[1]).name]
else:
    try:
        if run.read_projection(method, what) is None:
            with st.spinner(spinner):
                frame = projection_frame(run, step, method, what, backbone=cached_run_backbone(run))
        else:
            frame = projection_frame(run, step, method, what)
    except (NormBTError, ValueError) as exc:
        st.error(str(exc))
        st.stop()
    if color == "distance_bin":
        frame["distance_bin"] = frame["distance_bin"].astype(str)

    event = st.plotly_chart(embedding_map(frame, color, segments=what == "pairs", method=method.upper()), key="emb_map",
                            on_select="rerun", selection_mode=("box", "lasso"))
    st.caption(f"Each point is a pair ({'its difference vector' if what == 'diff' else 'chosen ● joined to rejected ✕'}), "
               f"{method.upper()} of the frozen backbone's h. Look for clusters of one colour: close, misranked pairs "
               f"are the ones BT neglects. Box- or lasso-select points to list them below.")

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
jsonl = jsonl_text(chosen.drop(columns=[c for c in ("x", "y", "x_rejected", "y_rejected") if c in chosen]))
b.download_button("Download selection (JSONL)", jsonl, "selected_pairs.jsonl", "application/jsonl")
