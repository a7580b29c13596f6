"""Runs: training curves of several runs overlaid, what differs in their configs, benchmark scores side by side
with paired differences against BT, and accuracy per category and per distance bin with intervals over seeds."""

import streamlit as st

from normbt_viz.evals.scoring import OVERALL, runs_benchmark_view
from normbt_viz.analysis.outliers import metrics_long
from normbt_viz.analysis.comparison import compare_runs, config_diff
from normbt_viz.analysis.groups import run_groups
from normbt_viz.ui.figures import accuracy_with_intervals, training_curves
from normbt_viz.runs.rundir import list_runs, runs_table
from normbt_viz.ui.common import arm_of, run_load_lines, runs_root
from normbt_viz.ui.state import init_state, selected_runs_key

init_state()
st.title("Runs")
CURVES = ("loss", "accuracy", "eval_accuracy", "normbt_mu", "grad_norm")

runs = list_runs(runs_root())
if not runs:
    st.info("No runs yet. Start one on the **Train** page.")
    st.stop()
by_name = {r.name: r for r in runs}
table = runs_table(runs_root())
done = table.loc[table["state"] == "done", "run"].tolist()
# Open on the newest group of comparable runs (same data, backbone and eval split); the user may mix groups.
groups = run_groups(runs)
if not groups:
    st.error("No run here has a readable run spec: the Train page lists what is wrong with each.")
    st.stop()
labels = [g.label for g in groups]
group = groups[labels.index(st.selectbox("Experiment (runs on the same data, backbone and eval split)", labels, key="runs_group"))]
in_group = [r.name for r in group.runs]
default = [name for name in in_group if name in done] or in_group
chosen = st.multiselect("Runs", list(by_name), default=default[:8], key=selected_runs_key(group.key))
if not chosen:
    st.stop()
selected = [by_name[name] for name in chosen]

st.slider("Smoothing (EMA)", 0.0, 0.99, step=0.01, key="smoothing")
metrics = {r.name: r.metrics() for r in selected}
arms = {r.name: arm_of(r) for r in selected}
columns = st.columns(2)
for i, metric in enumerate(CURVES):
    with columns[i % 2]:
        st.plotly_chart(training_curves(metrics, metric, st.session_state["smoothing"], arms), key=f"curve_{metric}")
st.caption("Faint lines are the raw values, bold ones their moving average. NormBT's loss is weighted by μ/d, "
           "so compare its eval_accuracy, not its loss, with BT's; normbt_mu is the running mean distance μ.")
st.download_button("Download the series (CSV)", metrics_long(metrics).to_csv(index=False), "normbt_series.csv", "text/csv")

st.subheader("Runs and what differs between them")
st.dataframe(table[table["run"].isin(chosen)], hide_index=True)
diff = config_diff({r.name: r.spec() for r in selected})
if diff.shape[1] > 1:
    st.dataframe(diff, hide_index=True)
    st.caption("Only the run-spec fields whose values differ are shown.")
else:
    st.caption("The selected runs share every setting.")

st.subheader("The data each run saw")
for run in selected:
    with st.expander(f"{run.name}: data", expanded=len(selected) == 1):
        st.text("\n".join(run_load_lines(run)))  # plain text: the lines quote the file's own values

benchmark_view = runs_benchmark_view(selected, dict(zip(table["run"], table["arm"])) if "arm" in table else {})
for error in benchmark_view["errors"]:
    st.warning(error)
if not benchmark_view["scores"].empty:
    st.subheader("Benchmark scores")
    st.dataframe(benchmark_view["scores"], hide_index=True)
    st.caption("Points (x100), as the benchmarks print them, from `python -m normbt_viz rewardbench` "
               "(`<run>/scores/<benchmark>.json`). " + "; ".join(f"{name}: {how}" for name, how in OVERALL.items()) + ".")
    if not benchmark_view["diffs"].empty:
        st.markdown(f"**Paired difference against BT** (`{benchmark_view['baseline']}`; 95% bootstrap over prompts)")
        st.dataframe(benchmark_view["diffs"], hide_index=True)
        st.caption("a = the BT run, b = the other run, diff = b − a in points, over the n prompts both scored. "
                   "RewardBench 2's Ties is resampled by question; its overall score shows the point difference only.")

finished = [by_name[name] for name in chosen if name in done]
st.subheader("Accuracy with intervals over seeds")
if not finished:
    st.info("Comparisons need finished runs.")
    st.stop()
try:
    comparison = compare_runs(finished)
except (ValueError, KeyError) as exc:
    st.error(f"cannot compare these runs: {exc}. Pick runs of one experiment above.")
    st.stop()
left, right = st.columns(2)
with left:
    st.plotly_chart(accuracy_with_intervals(comparison.per_category, "category"), key="acc_category")
    st.caption("Per category: the paper reports NormBT's gains in Reasoning, the category with the closest pairs.")
with right:
    st.plotly_chart(accuracy_with_intervals(comparison.per_bin, "distance_bin"), key="acc_bin")
    st.caption("Per distance bin (0 = closest pairs, bins fixed from the initial model): NormBT should help most on the left.")
st.markdown("**Overall** (mean, std and 95% t-interval over seeds)")
st.dataframe(comparison.overall, hide_index=True)
if not comparison.paired.empty:
    st.markdown("**Paired difference against BT** on the same eval pairs (bootstrap over pairs)")
    st.dataframe(comparison.paired, hide_index=True)
st.caption("With a single seed the intervals collapse to points: add seeds on the Train page before trusting a difference.")
