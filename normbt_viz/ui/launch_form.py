"""The parts of a launch form the Train page draws: the backbone picker, the time estimate shown before Launch,
and the progress line of each run in the job list."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import streamlit as st

from normbt_viz.errors import NormBTError
from normbt_viz.runs.choices import backbone_choices
from normbt_viz.runs.estimate import Estimate, estimate_launch, format_duration, tokens_per_pair, update_rates
from normbt_viz.runs.rundir import list_runs
from normbt_viz.spec import RunSpec
from normbt_viz.ui.common import read_source, runs_root


def backbone_picker(help_text: str = "") -> str:
    """A picker over the embedded, recently used and locally cached backbones that also takes a typed id or
    folder; it writes the session's "backbone"."""
    state = st.session_state
    options = backbone_choices(list_runs(runs_root()), state["backbone"])
    return st.selectbox("Backbone", options, key="backbone", accept_new_options=True,
                        help=help_text or "minilm or smollm2 (embedded), one used before or cached here, or type a "
                                          "Hugging Face id / local folder")


def data_of(spec: RunSpec) -> tuple[int, float | None] | None:
    """(the number of pairs `spec` trains on, their approximate tokens a pair) when the texts are at hand without
    the network: the demo's or a local file's, read once through the Data page's cached reader of the spec's data
    source. A hub id would need the network, so None; so does a file that does not load (the launch says why)."""
    if spec.dataset != "demo" and not Path(spec.dataset).expanduser().exists():
        return None
    try:
        pairs = read_source(spec.source)[0]
    except NormBTError:
        return None
    return min(len(pairs), spec.limit or len(pairs)), tokens_per_pair(pairs, spec.max_length)


def launch_estimate(specs: list[RunSpec]) -> Estimate:
    """The estimate for training `specs` one after another, from the runs finished on this machine so far."""
    if not specs:
        return Estimate(None, "no run selected")
    resolved = [dataclasses.replace(s).resolve() for s in specs]
    data = data_of(resolved[0])
    if data is None:
        return Estimate(None, "no estimate: the number of pairs is known once the data is a local file that loads")
    n_pairs, pair_tokens = data
    return estimate_launch(resolved, n_pairs, update_rates(list_runs(runs_root())), pair_tokens)


def show_estimate(estimate: Estimate) -> None:
    """One line before the Launch button; a warning when the launch will take long."""
    if estimate.seconds is None:
        st.caption(f":material/schedule: {estimate.note}.")
    elif estimate.long:
        st.warning(f":material/schedule: Estimated time: **{format_duration(estimate.seconds)}** ({estimate.note}). That is long for a "
                   "first look: fewer steps, fewer pairs or a frozen backbone (scope head) is much quicker.")
    else:
        st.caption(f":material/schedule: Estimated time: **{format_duration(estimate.seconds)}** ({estimate.note}).")


def job_progress(state: str | None, step, total_steps) -> tuple[float, str]:
    """(bar fraction, 'step 12/72' text) for a run's line in the job list: a queued run (or one whose total is
    not known yet) has an empty bar and no total; steps are whole numbers."""
    def whole(value) -> int | None:
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)

    done, total = whole(step) or 0, whole(total_steps)
    if state == "queued" or not total:
        return 0.0, f"step {done}/?" if state != "queued" else "waiting to start"
    return min(1.0, done / total), f"step {done}/{total}"
