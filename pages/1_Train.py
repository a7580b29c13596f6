"""Train: the one-click BT-vs-NormBT start, custom launches, and the live job list read from disk."""

import dataclasses

import streamlit as st

from normbt_viz.data.demo import DEMO_MAX_DISTINCT
from normbt_viz.errors import NormBTError
from normbt_viz.runs.launcher import cancel, cluster_commands, launch, local_gpu_count, resume
from normbt_viz.runs.rundir import LIVE_STATES, RunDir, runs_table
from normbt_viz.spec import ARM_DESCRIPTIONS, ARMS, SCOPES, RunSpec
from normbt_viz.ui.common import base_spec, param_widget, runs_root, session_source
from normbt_viz.ui.launch_form import backbone_picker, job_progress, launch_estimate, show_estimate
from normbt_viz.ui.state import init_state

init_state()
state = st.session_state
st.title("NormBT Viz")
st.markdown(
    "How a **Bradley-Terry** reward model learns from preference pairs, and how **NormBT** rebalances its "
    "updates: a BT pair's update is *prediction error × representation distance*, so pairs whose answers look "
    "alike barely move the model. NormBT divides that distance out."
)


def start(specs: list[RunSpec], processes: int = 1) -> None:
    try:
        runs = launch(specs, runs_root(), processes)
    except NormBTError as exc:
        st.error(str(exc))
        return
    state["last_launch"] = [r.name for r in runs]
    st.success(f"Started {len(runs)} run(s): {', '.join(r.name for r in runs)}. Watch them below, then open "
               "**Runs** and **Gradients**.")


with st.container(border=True):
    st.subheader("Quick start")
    st.caption("MiniLM backbone, frozen, score head only; 1000 demo pairs with 10% injected label flips; "
               "one BT and one NormBT run with the same seed.")
    quick = RunSpec(dataset="demo", demo_size=1000, demo_noise=0.1)
    show_estimate(launch_estimate([quick.with_arm("bt"), quick.with_arm("normbt")]))
    if st.button("Start BT vs NormBT on the demo data", type="primary", key="quick_start"):
        start([quick.with_arm("bt"), quick.with_arm("normbt")])

with st.expander("Custom runs", expanded=False):
    st.caption(f"Data: **{session_source().describe()}** (choose it on the **Data** page).")
    left, middle, right = st.columns(3)
    with left:
        backbone_picker()
        st.selectbox("What trains", SCOPES, key="scope", help="head: frozen backbone; top-k: last k blocks too; full: everything")
        st.number_input("Top-k blocks", step=1, key="top_k", disabled=state["scope"] != "top-k", **param_widget("top_k"))
        st.number_input("Max length (tokens)", step=8, key="max_length", **param_widget("max_length"))
    with middle:
        st.multiselect("Arms", list(ARMS), key="arms", format_func=lambda a: f"{a}: {ARM_DESCRIPTIONS[a]}")
        st.number_input("Seeds", min_value=1, max_value=10, step=1, key="seeds", help="runs per arm, seeds 0..n-1")
        st.number_input("Learning rate (0 = default for the scope)", min_value=0.0, format="%g", key="lr")
    with right:
        st.number_input("Epochs", step=0.5, key="epochs", **param_widget("epochs", min_value=0.1))
        st.number_input("Max steps (0 = use epochs)", min_value=0, step=10, key="max_steps")
        st.number_input("Batch size", step=8, key="batch_size", **param_widget("batch_size", max_value=1024))
    if state["source_kind"] == "Demo":
        a, b = st.columns(2)
        a.number_input("Demo size (pairs)", step=100, key="demo_size", **param_widget("demo_size", min_value=20, max_value=DEMO_MAX_DISTINCT))
        b.number_input("Demo label noise", step=0.05, key="demo_noise", **param_widget("demo_noise"))
    gpus = local_gpu_count()
    processes = st.number_input("GPUs per run (data parallel)", 1, gpus, gpus, key="gpus") if gpus > 1 else 1
    seeds = list(range(int(state["seeds"])))
    try:
        base = base_spec()
        specs = [dataclasses.replace(base, seed=seed).with_arm(arm) for seed in seeds for arm in state["arms"]]
        show_estimate(launch_estimate(specs))
    except NormBTError as exc:
        base, specs = None, []
        st.error(str(exc))
    if st.button("Launch", key="launch_custom", disabled=not specs):
        start(specs, int(processes))
    with st.popover("Run it elsewhere (a GPU box, a cluster)"):
        if base is not None and specs:
            remote_gpus = st.number_input("GPUs on that machine", 1, 64, key="remote_gpus")
            st.caption(f"Save this spec as `run.json` there, then run one of these: it trains every selected arm and seed "
                       f"({len(specs)} run(s)); the app reads the run directories it writes like any other (point "
                       "`NORMBT_VIZ_RUNS` at the shared folder).")
            st.code(dataclasses.replace(base).resolve().to_json(), language="json")
            for label, command in cluster_commands("run.json", int(remote_gpus), arms=state["arms"], seeds=seeds).items():
                st.markdown(f"**{label}**")
                st.code(command, language="bash")
        else:
            st.caption("Choose at least one arm.")

table = runs_table(runs_root())
live = not table.empty and table["state"].isin(LIVE_STATES).any()


@st.fragment(run_every=2 if live else None)
def job_list() -> None:
    st.subheader("Runs")
    jobs = runs_table(runs_root())
    if jobs.empty:
        st.info(f"No runs yet under `{runs_root()}`.")
        return
    for row in jobs.head(30).itertuples():
        cols = st.columns([4, 2, 1])
        fraction, steps = job_progress(row.state, row.step, row.total_steps)
        label = f"**{row.run}** · {row.state} · {steps}"
        if row.elapsed_s is not None and row.elapsed_s == row.elapsed_s:
            label += f" · {row.elapsed_s:.0f} s"
        cols[0].progress(fraction, text=label)
        if row.state == "done" and row.eval_accuracy == row.eval_accuracy and row.eval_accuracy is not None:
            cols[1].markdown(f"eval accuracy **{row.eval_accuracy:.3f}**")
        elif row.state == "failed":
            cols[1].error(row.error or "failed", icon="⚠️")
        if row.state in LIVE_STATES and cols[2].button("Cancel", key=f"cancel_{row.run}"):
            cancel(RunDir(runs_root() / row.run))
            st.rerun(scope="fragment")
        elif row.state in ("interrupted", "cancelled") and RunDir(runs_root() / row.run).checkpoint_steps():
            if cols[2].button("Resume", key=f"resume_{row.run}", help="continue from the last checkpoint, in the same run directory"):
                resume(RunDir(runs_root() / row.run))
                st.rerun()
    still_live = jobs["state"].isin(LIVE_STATES).any()
    if live and not still_live:
        st.rerun()


job_list()
st.caption("Read from the run directories on disk: runs keep going when you close the page.")
