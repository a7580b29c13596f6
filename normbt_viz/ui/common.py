"""Small Streamlit pieces the pages share: run pickers, cached loaders, the data source of the session, and
widget limits read from the options' declarations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import streamlit as st

from normbt_viz.data.source import DataSource
from normbt_viz.model.backbones import load_backbone
from normbt_viz.params import expected_text, field_named
from normbt_viz.runs.rundir import RunDir, list_runs
from normbt_viz.spec import RunSpec


def md_text(value) -> str:
    """Text from a dataset or a file, safe inside st.markdown/st.caption: markdown and HTML characters are
    backslash-escaped, so a category like `[x](javascript:...)` or `<b>` shows as itself, not as a link or markup.
    Only characters that open markup are escaped (no '[' means no link), so file names and numbers read as typed."""
    return "".join("\\" + ch if ch in "\\`*_[]<>#|~$" else ch for ch in str(value))


def jsonl_text(frame: pd.DataFrame) -> str:
    """The rows as JSON lines, for a download."""
    import json

    return "".join(json.dumps(record, default=str) + "\n" for record in frame.to_dict("records"))


def runs_root() -> Path:
    return Path(st.session_state["runs_root"])


def runs_with_pairs() -> list[RunDir]:
    """Runs (newest first) that have written per-pair diagnostics."""
    return [run for run in list_runs(runs_root()) if run.pair_steps()]


def arm_of(run: RunDir) -> str:
    try:
        return run.spec().arm_name
    except Exception:  # a broken spec.json is shown as such on the Train page
        return "?"


def latest_of_arm(runs: list[RunDir], loss_prefix: str) -> RunDir | None:
    """The newest run whose arm is `loss_prefix` exactly, else the newest whose arm starts with it."""
    exact = [r for r in runs if arm_of(r) == loss_prefix]
    close = [r for r in runs if arm_of(r).startswith(loss_prefix)]
    return (exact or close or [None])[0]


def pick_run(label: str, runs: list[RunDir], key: str, default: RunDir | None = None) -> RunDir:
    names = [r.name for r in runs]
    index = names.index(default.name) if default is not None and default.name in names else 0
    name = st.selectbox(label, names, index=index, key=key)
    return runs[names.index(name)]


def no_runs_message() -> None:
    st.info("No finished diagnostics yet. Start a run on the **Train** page, then come back here.")


def run_and_step_header(key: str, widths: list[int]) -> tuple[RunDir, int, list]:
    """The header of the one-run pages: a run picker (default: the newest BT run) and a step slider in the
    first two of `widths` columns. Stops the page with a hint when no run has diagnostics yet; returns the
    run, the step and the remaining columns for the page's own controls."""
    runs = runs_with_pairs()
    if not runs:
        no_runs_message()
        st.stop()
    columns = st.columns(widths)
    with columns[0]:
        run = pick_run("Run", runs, f"{key}_run", latest_of_arm(runs, "bt"))
    steps = run.pair_steps()
    if not steps:  # removed (or emptied) since the list was read
        st.error(f"{run.name}: its run directory is gone or has no diagnostics any more")
        st.stop()
    step = columns[1].select_slider("Step", steps, value=steps[-1], key=f"{key}_step")
    return run, step, columns[2:]


@st.cache_resource(show_spinner="Loading backbone…")
def cached_backbone(name: str, pooling: str = "auto", device: str = "auto", dtype: str = "float32"):
    return load_backbone(name, pooling=pooling, device=device, dtype=dtype)


def cached_run_backbone(run: RunDir):
    """The backbone `run` trained on, loaded once per app process."""
    spec = run.spec()
    return cached_backbone(spec.backbone, spec.pooling, spec.device, spec.dtype)


@st.cache_data(show_spinner=False, max_entries=64)
def load_pairs_at(run_path: str, step: int, _mtime: float) -> pd.DataFrame:
    """Per-pair diagnostics of a run at a step (cached; `_mtime` invalidates on rewrite)."""
    return RunDir(run_path).pairs(step)


def pairs_at(run: RunDir, step: int, stop: bool = True) -> pd.DataFrame | None:
    """The snapshot, or one error line and the page stops there (a corrupted or vanished file; other pages and
    runs are unaffected); with `stop=False` the error line and None, for a view the rest of the page does not need."""
    try:
        return load_pairs_at(str(run.path), step, run.pairs_mtime(step))
    except Exception as exc:  # pyarrow's ArrowInvalid, OSError, ...: the file, not the app, is broken
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        st.error(f"{run.name}: cannot read {run.pairs_path(step).relative_to(run.path)}: {type(exc).__name__}: {first}")
        if stop:
            st.stop()
        return None


def session_source() -> DataSource:
    """The data source the Data page chose (with the session's max length)."""
    state = st.session_state
    kind = state["source_kind"]
    fields = {"max_length": int(state["max_length"]), "strict": bool(state["strict"]), "column_mapping": state["column_mapping"]}
    if kind == "Demo":  # the demo has its own columns: no mapping
        return DataSource(dataset="demo", demo_size=int(state["demo_size"]), demo_noise=float(state["demo_noise"]),
                          **{**fields, "column_mapping": None})
    if kind == "Hugging Face":
        return DataSource(dataset=state["hf_id"].strip(), dataset_split=state["hf_split"].strip() or "train",
                          dataset_config=state["hf_config"].strip() or None, **fields)
    if kind == "Local path":
        return DataSource(dataset=state["local_path"].strip(), **fields)
    return DataSource(dataset=state["upload_path"], **fields)


@st.cache_data(show_spinner="Reading pairs…", max_entries=8)
def _read_pairs(dataset: str, load_options: dict) -> tuple[pd.DataFrame, str, dict, str, int, pd.DataFrame, list]:
    from normbt_viz.data.sources import load_pairs

    table = load_pairs(dataset, **load_options)
    return table.pairs, table.format, table.mapping.to_dict(), table.source, table.n_identical, table.skipped, table.notes


def read_source(source: DataSource) -> tuple[pd.DataFrame, str, dict, str, int, pd.DataFrame, list]:
    """(pairs, format, the column mapping used, description, identical pairs, skipped rows, notes) of `source`,
    cached by what selects the rows (not the max length, which only tokenisation reads)."""
    return _read_pairs(source.dataset, source.load_options())


ROLES = ("prompt", "chosen", "rejected", "category", "margin", "pair_id")
JUDGMENT_ROLES = ("response_a", "response_b", "winner", "a_wins", "b_wins")
_VALUE_LISTS = ("a_wins", "b_wins")  # the winner values meaning each side won: comma-separated in the form


def mapping_texts(mapping: dict) -> dict[str, str]:
    """The column-mapping form's text per role, from a mapping (as `load_pairs` reports the one it used)."""
    texts = {}
    for role in (*ROLES, *JUDGMENT_ROLES):
        value = mapping.get(role)
        texts[role] = ",".join(map(str, value)) if isinstance(value, list) else str(value or "")
    return texts


def mapping_from_texts(texts: dict[str, str]) -> dict:
    """The column mapping the form's texts mean: empty = detect automatically, `-` = no such column, a_wins and
    b_wins comma-separated."""
    from normbt_viz.data.sources import ColumnMapping

    values = {role: ("" if text.strip() == "-" else (text.strip() or None)) for role, text in texts.items()}
    for role in _VALUE_LISTS:
        values[role] = [v.strip() for v in values[role].split(",") if v.strip()] if values[role] else None
    return ColumnMapping(**values).to_dict()


def source_fields(source: DataSource) -> dict:
    """The source's fields, to build a RunSpec or an AuditConfig on it."""
    return dataclasses.asdict(source)


def base_spec(**overrides) -> RunSpec:
    """A RunSpec from the session's data source, backbone and training settings."""
    state = st.session_state
    fields = {
        **source_fields(session_source()),
        "backbone": state["backbone"],
        "scope": state["scope"],
        "top_k": int(state["top_k"]),
        "epochs": float(state["epochs"]),
        "max_steps": int(state["max_steps"]) or None,
        "batch_size": int(state["batch_size"]),
        "lr": float(state["lr"]) or None,
    }
    fields.update(overrides)
    return RunSpec(**fields)


def param_widget(name: str, of=RunSpec, **overrides) -> dict:
    """min_value, max_value and help for the widget that sets field `name` of `of` (RunSpec, AuditConfig), read
    from the field's own declaration, so the app, the CLI and validation agree on what is allowed. Open ends are
    left to validation."""
    field = field_named(of, name)
    meta = field.metadata
    limits = {"help": f"{meta['help']} ({expected_text(field)})"}
    if meta.get("low") is not None and not meta["low_open"]:
        limits["min_value"] = meta["low"]
    if meta.get("high") is not None and not meta["high_open"]:
        limits["max_value"] = meta["high"]
    limits.update(overrides)
    return limits
