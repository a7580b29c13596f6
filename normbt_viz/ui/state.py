"""Every session-state key the app uses, initialised in one place.

Widget values that must survive a page switch are kept here under their widget keys and re-assigned on
every run: Streamlit drops a widget's state when a page without that widget runs, unless the key is
written by the script itself.
"""

from __future__ import annotations

import streamlit as st

from normbt_viz.runs.rundir import default_runs_root

DEFAULTS = {
    # data source (Data page; read by Train when launching)
    "source_kind": "Demo",
    "demo_size": 1000,
    "demo_noise": 0.1,
    "hf_id": "",
    "hf_config": "",
    "hf_split": "train",
    "local_path": "",
    "upload_path": "",
    "column_mapping": None,
    "strict": False,
    "backbone": "minilm",
    "max_length": 128,
    # training settings (Train page)
    "scope": "head",
    "top_k": 1,
    "arms": ["bt", "normbt"],
    "seeds": 1,
    "epochs": 3.0,
    "max_steps": 0,
    "batch_size": 32,
    "lr": 0.0,
    # views
    "smoothing": 0.6,
    "projection_method": "PCA",
    "projection_what": "difference h_c − h_r",
}
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
