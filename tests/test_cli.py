"""The command line in-process (`main(argv)`): bad input exits 2 with one line and leaves no run directory,
and `--help` documents every RunSpec field with its choices."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from normbt_viz.cli import main
from normbt_viz.model.backbones import resolve_backbone
from normbt_viz.params import flag_fields
from normbt_viz.spec import RunSpec


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def weightless_backbone(tmp_path):
    """A local model folder with MiniLM's config and tokenizer but no weight file."""
    folder = tmp_path / "no_weights"
    shutil.copytree(resolve_backbone("minilm"), folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx", "onnx", "openvino", "*.h5"))
    return folder


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backbone", "./no/such/model"], "no such backbone folder: ./no/such/model"),
        (["--dataset", "missing.jsonl"], "no such file"),
        (["--lr", "-1"], "lr=-1.0 is invalid"),
        (["--lr", "nan"], "lr=nan is invalid"),
        (["--batch-size", "0"], "batch_size=0 is invalid"),
        (["--max-steps", "-3"], "max_steps=-3 is invalid"),
        (["--scope", "middle"], "argument --scope: invalid choice: 'middle'"),
        (["--epochs", "many"], "argument --epochs: invalid float value: 'many'"),
        (["--spec", "nope.json"], "no such spec file: nope.json"),
        (["--pooling", "weird"], "argument --pooling: invalid choice: 'weird'"),
        (["--dtype", "float8"], "argument --dtype: invalid choice: 'float8'"),
        (["--device", "cuda"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"], "device"),
        (["--scope", "top-k", "--top-k", "99"], "top_k=99 is invalid: backbone 'minilm' has 6 blocks"),
        (["--column-mapping", "{not json"], "argument --column-mapping: invalid JSON"),
        (["--column-mapping", "[1, 2]"], "argument --column-mapping: expected a JSON object"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_run_directory(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(["train", *args, "--runs", str(tmp_path / "runs")], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # no half-made run directory for bad input


def test_backbone_folder_without_weights_is_one_line(tmp_path, monkeypatch, capsys, weightless_backbone):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(["train", "--backbone", str(weightless_backbone), "--runs", str(tmp_path / "runs")], capsys)
    assert code == 2, err
    assert err.strip().count("\n") == 0 and "has a config but no weights" in err
    assert not (tmp_path / "runs").exists()


def test_bad_data_row_names_file_row_and_column(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": "  ", "rejected": "b"}\n')
    code, _, err = run_main(["train", "--strict", "--dataset", str(data), "--runs", str(tmp_path / "runs")], capsys)
    assert code == 2
    assert "pairs.jsonl" in err and "2" in err and "chosen" in err


def test_help_documents_every_spec_field_with_choices(capsys):
    code, out, _ = run_main(["train", "--help"], capsys)
    assert code == 0
    for spec_field in flag_fields(RunSpec):
        flag = f"--{spec_field.name.replace('_', '-')}"
        assert flag in out, flag
        assert spec_field.metadata["help"], f"{spec_field.name} has no help text"
    assert "--loss {bt,normbt,bt_smooth,bt_margin}" in out
    for flag in ("--column-mapping", "--demo-seed", "--split-seed", "--n-distance-bins", "--diagnose-train-pairs", "--feature-batch-size"):
        assert flag in out


def test_every_field_but_bookkeeping_is_a_flag():
    bookkeeping = {"schema_version", "created_at", "package_versions", "dataset_fingerprint"}
    assert {f.name for f in dataclasses.fields(RunSpec)} - {f.name for f in flag_fields(RunSpec)} == bookkeeping


@pytest.mark.parametrize(
    "field, value",
    [("top_k", 1.5), ("batch_size", True), ("pooling", "weird"), ("dtype", "float8"), ("lr", float("nan")),
     ("epochs", 0), ("seed", -1), ("device", "gpu"), ("n_distance_bins", 50), ("demo_noise", 0.9)],
)
def test_validate_checks_every_field(field, value):
    from normbt_viz.errors import SpecError

    with pytest.raises(SpecError, match=f"{field}="):
        dataclasses.replace(RunSpec(), **{field: value}).validate()


def _subcommands():
    from normbt_viz.cli import build_parser

    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    return {name: sub for name, sub in choices.items() if name != "worker"}


@pytest.mark.parametrize("command", ["train", "compare", "runs", "report", "rewardbench", "audit", "data", "app", "export"])
def test_help_of_every_command_documents_every_flag(command):
    """Every flag of every user-facing command has help text (the generated ones say their range and default)."""
    import argparse

    sub = _subcommands()[command]
    undocumented = [action.option_strings for action in sub._actions
                    if action.option_strings and action.help != argparse.SUPPRESS and not (action.help or "").strip()]
    assert undocumented == []


def test_runs_and_out_mean_the_same_in_every_command():
    """--runs is always a runs folder, --out always the command's own product; no command uses --out for runs."""
    for name, sub in _subcommands().items():
        flags = {flag: action for action in sub._actions for flag in action.option_strings}
        if "--out" in flags:
            assert "runs" not in flags["--out"].help.split("(")[0], (name, flags["--out"].help)
        if name in ("train", "compare", "runs", "report"):
            assert "--runs" in flags and "runs folder" in flags["--runs"].help, name


def test_the_run_spec_and_the_audit_declare_the_data_source_once():
    """RunSpec and AuditConfig take their data fields from DataSource (one declaration: same help, same range;
    the audit's max length alone has its own default, 256), and both commands generate the same data flags."""
    from normbt_viz.audit.spec import AuditConfig
    from normbt_viz.data.source import DataSource

    source_fields = {f.name: f for f in dataclasses.fields(DataSource)}
    for options in (RunSpec, AuditConfig):
        fields = {f.name: f for f in dataclasses.fields(options)}
        for name, declared in source_fields.items():
            assert dict(fields[name].metadata) == dict(declared.metadata), (options.__name__, name)
            same_default = fields[name].default == declared.default
            assert same_default or (options, name) == (AuditConfig, "max_length"), (options.__name__, name)
    spec = RunSpec(dataset="pairs.jsonl", limit=50, strict=True, max_length=64)
    assert spec.source == DataSource(dataset="pairs.jsonl", limit=50, strict=True, max_length=64)
    helps = {name: {a.dest: a.help for a in sub._actions} for name, sub in _subcommands().items() if name in ("train", "audit", "data")}
    for name in source_fields:
        without_default = {command: helps[command][name].split("; default ")[0] for command in helps}
        assert without_default["train"] == without_default["audit"] == without_default["data"], name


def test_audit_options_round_trip_through_their_flags():
    """The flags `launch_audit` passes to the background `audit` command rebuild exactly the same options."""
    from normbt_viz.audit.spec import AuditConfig
    from normbt_viz.cli import build_parser, options_from_args
    from normbt_viz.params import flags_for

    config = AuditConfig(dataset="hh.jsonl", column_mapping={"chosen": "good"}, strict=True, folds=4, seeds=2,
                         prune_refit=True, remove_flags=("label_issue", "duplicate"), clean="flip", max_length=64)
    args = build_parser().parse_args(["audit", "--out", "x", *flags_for(config)])
    assert options_from_args(args, AuditConfig()) == config


@pytest.mark.parametrize("argv, named", [
    (["--folds", "1"], "audit folds=1 is invalid: expected an integer in [2, 20]"),
    (["--remove-flags", "label_issue,nope"], "'nope'"),
    (["--clean", "burn"], "argument --clean: invalid choice: 'burn'"),
])
def test_audit_flags_are_checked_against_their_declaration(tmp_path, capsys, argv, named):
    code, _, err = run_main(["audit", "--out", str(tmp_path / "a"), *argv], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and named in err, err
    assert not (tmp_path / "a").exists()


def test_the_commands_for_another_machine_parse_with_this_cli():
    """The Train page's "run it elsewhere" commands use the flags this parser declares (they cannot drift)."""
    import shlex

    from normbt_viz.cli import build_parser
    from normbt_viz.runs.launcher import cluster_commands

    parser = build_parser()
    train = parser.parse_args(shlex.split(cluster_commands("run.json", runs_root="/shared/runs")["one GPU"])[3:])
    assert (train.command, str(train.spec), str(train.runs)) == ("train", "run.json", "/shared/runs")
    commands = cluster_commands("run.json", 4, "/shared/runs", arms=["bt", "normbt_clip"], seeds=[0, 1])
    compare = parser.parse_args(shlex.split(commands["one GPU"])[3:])
    assert compare.command == "compare" and str(compare.runs) == "/shared/runs" and compare.out is None
    assert compare.losses == ("bt", "normbt_clip") and compare.seeds == (0, 1)
    assert "--num_processes 4 -m normbt_viz compare" in commands["every GPU of one box"]
