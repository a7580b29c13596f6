"""Every session-state key the app uses, initialised in one place.

Widget values that must survive a page switch are kept here under their widget keys and re-assigned on
every run: Streamlit drops a widget's state when a page without that widget runs, unless the key is
written by the script itself.
"""

from __future__ import annotations

import streamlit as st

from normbt_viz.audit.spec import AuditConfig
from normbt_viz.runs.launcher import CLUSTER_GPUS
from normbt_viz.runs.rundir import default_runs_root
from normbt_viz.spec import RunSpec

SPEC = RunSpec()
AUDIT = AuditConfig()
DEFAULTS = {
    # data source (Data page; read by Train and Audit when launching): the declared defaults, except the demo's
    # label noise, which the app starts at 10% so the first runs have flips to find
    "source_kind": "Demo",
    "demo_size": SPEC.demo_size,
    "demo_noise": 0.1,
    "hf_id": "",
    "hf_config": "",
    "hf_split": SPEC.dataset_split,
    "local_path": "",
    "upload_path": "",
    "column_mapping": SPEC.column_mapping,
    "strict": SPEC.strict,
    "backbone": SPEC.backbone,
    "max_length": SPEC.max_length,
    # training settings (Train page); 0 in max_steps and lr means "unset" (the spec's None)
    "scope": SPEC.scope,
    "top_k": SPEC.top_k,
    "arms": ["bt", "normbt"],
    "seeds": 1,
    "epochs": SPEC.epochs,
    "max_steps": 0,
    "batch_size": SPEC.batch_size,
    "lr": 0.0,
    "remote_gpus": CLUSTER_GPUS,  # GPUs of the other machine the "run it elsewhere" commands are for
    # audit settings (Audit page)
    "audit_folds": AUDIT.folds,
    "audit_seeds": AUDIT.seeds,
    "audit_clean": AUDIT.clean,
    "audit_backbone": AUDIT.backbone,
    "audit_max_length": AUDIT.max_length,  # its own: the audit reads longer texts than a quick training run
    "audit_limit": 0,  # 0 = every pair (the config's None)
    "audit_judge": AUDIT.judge,
    # views
    "smoothing": 0.6,
    "projection_method": "PCA",
    "projection_what": "difference h_c − h_r",
    "pairs_tab": "Near-identical",
}
# Not here: the Runs page's experiment picker ("runs_group") and run selection (`selected_runs_key`), and the
# partner pickers, whose defaults are computed from the runs on disk (the newest experiment, its finished runs, the
# chosen run's partner), so their pages create them; `follows_key` records which run a partner picker follows.

# Results computed on one page and shown again when the user comes back (not widget values).
RESULTS = {
    "last_launch": [],
    "distance_result": None,
    "length_survey": None,  # the Data page's token-length survey for the current source and backbone
    "audit_dir": "",
}


def init_state() -> None:
    """Create missing keys with their defaults; keep the others (see the module docstring)."""
    if "runs_root" not in st.session_state:
        st.session_state["runs_root"] = str(default_runs_root())
    for key, value in {**DEFAULTS, **RESULTS}.items():
        if key not in st.session_state:
            st.session_state[key] = value
        elif key in DEFAULTS:
            st.session_state[key] = st.session_state[key]


def selected_runs_key(group_key: tuple) -> str:
    """The Runs page's run selection for one experiment: each experiment keeps its own."""
    return f"runs_selected_{group_key}"


def follows_key(picker_key: str) -> str:
    """Which run the partner picker `picker_key` last chose a default for (ui/pickers.py)."""
    return f"{picker_key}_follows"
