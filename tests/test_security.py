"""Security checks: remote code stays off unless asked, nothing user-provided is unpickled, names from the UI or a
spec cannot leave the runs root, and the server config binds to localhost with XSRF protection and an upload cap."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from normbt_viz.errors import BackboneError
from normbt_viz.runs.launcher import new_run_dir
from normbt_viz.runs.rundir import safe_name, safe_upload_name, store_upload
from normbt_viz.spec import RunSpec

ROOT = Path(__file__).resolve().parent.parent
REMOTE_CODE_MODEL = ROOT / "tests" / "bad_inputs" / "files" / "remote_code_model"


def test_trust_remote_code_is_off_unless_asked():
    from normbt_viz.cli import build_parser, spec_from_args

    assert RunSpec().trust_remote_code is False
    assert spec_from_args(build_parser().parse_args(["train"])).trust_remote_code is False
    assert spec_from_args(build_parser().parse_args(["train", "--trust-remote-code"])).trust_remote_code is True


def test_model_needing_its_own_code_is_refused_without_running_it(tmp_path, monkeypatch):
    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.train.preflight import preflight

    marker = tmp_path / "ran"
    monkeypatch.setenv("NORMBT_REMOTE_CODE_MARKER", str(marker))
    with pytest.raises(BackboneError) as raised:
        load_backbone(str(REMOTE_CODE_MODEL), device="cpu")
    assert "\n" not in str(raised.value) and "custom code" in str(raised.value)
    with pytest.raises(BackboneError, match="needs code shipped with it, which was not run"):
        preflight(RunSpec(backbone=str(REMOTE_CODE_MODEL), demo_size=20))
    assert not marker.exists()


UNSAFE_LOADS = [
    (re.compile(r"\bimport pickle\b|\bpickle\.loads?\(|\bcloudpickle\b|\bdill\b|\bjoblib\.load\("), "pickle"),
    (re.compile(r"read_pickle\("), "pandas read_pickle"),
    (re.compile(r"torch\.load\((?!.*weights_only=True)"), "torch.load without weights_only=True"),
    (re.compile(r"np\.load\((?!.*allow_pickle=False)"), "np.load without allow_pickle=False"),
    (re.compile(r"allow_pickle=True"), "allow_pickle=True"),
]


def test_nothing_is_unpickled():
    """Every load in the package and the pages is pickle-free: safetensors for weights, JSON/Parquet/CSV for data,
    npy/npz with allow_pickle=False. (Accelerate's load_state on --resume reads checkpoints this tool wrote.)"""
    found = []
    for path in [*(ROOT / "normbt_viz").rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"]:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for pattern, what in UNSAFE_LOADS:
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {what}")
    assert found == []


@pytest.mark.parametrize("name", ["../../etc/x.jsonl", "a/b", "..", ".", "", "/etc/passwd", "..\\..\\x", "<script>", "a" * 300])
def test_names_stay_one_harmless_component(name):
    for cleaned in (safe_name(name), safe_upload_name(name)):
        assert cleaned and "/" not in cleaned and "\\" not in cleaned and not cleaned.startswith(".")
        assert len(cleaned) <= 90 and re.fullmatch(r"[A-Za-z0-9._-]+", cleaned)


def test_upload_names_keep_only_data_extensions():
    assert safe_upload_name("../../etc/x.jsonl") == "x.jsonl"
    assert safe_upload_name("My Pairs (1).CSV") == "My_Pairs_1_.csv"
    assert safe_upload_name("evil.sh") == "evil.sh" and safe_upload_name("x.parquet/..") == "upload"


def test_an_upload_is_stored_once_inside_the_uploads_folder(tmp_path):
    root = tmp_path / "runs"
    first = store_upload(root, "../../etc/pairs.jsonl", b'{"chosen": "a", "rejected": "b"}\n')
    assert first.parent == root / "_uploads" and first.name.endswith("-pairs.jsonl") and first.read_bytes().startswith(b"{")
    assert store_upload(root, "other name.jsonl", first.read_bytes()).name.split("-")[0] == first.name.split("-")[0]
    assert sorted(p.name for p in first.parent.iterdir() if p.name.startswith(".")) == []  # no temporary file left


@pytest.mark.parametrize("name", ["../../etc/x", "a/b", "..", "/tmp/escape"])
def test_run_names_cannot_leave_the_runs_root_or_overwrite(tmp_path, name):
    root = tmp_path / "runs"
    first = new_run_dir(root, RunSpec(name=name))
    second = new_run_dir(root, RunSpec(name=name))
    for run in (first, second):
        assert run.path.resolve().parent == root.resolve()
    assert first.path != second.path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_server_binds_localhost_with_xsrf_and_an_upload_cap():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert config["address"] in ("localhost", "127.0.0.1")
    assert config.get("enableXsrfProtection", True) is True
    assert config.get("enableCORS", True) is True
    page_cap = int(re.search(r"MAX_UPLOAD_MB = (\d+)", (ROOT / "pages" / "2_Data.py").read_text()).group(1))
    assert 0 < config["maxUploadSize"] <= 200 and config["maxUploadSize"] == page_cap
