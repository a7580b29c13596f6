"""The bad-input corpus (tests/bad_inputs/): every case through the CLI in-process and every data file through the
Data page, plus the cases that need a direct look (100,000 pairs, a 5 MB answer, CSV quoting, a pad-less tokenizer).

Errors: exit 2, one `error:` line naming file/row/column/value, no traceback, no run directory (a diverged run
keeps its directory, status `failed` and its metrics). Lenient cases: exit 0, skipped rows counted."""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from normbt_viz.cli import main
from normbt_viz.data.sources import load_pairs
from normbt_viz.runs.rundir import list_runs

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "bad_inputs"
FILES = CORPUS / "files"
CASES = json.loads((CORPUS / "cases.json").read_text())
# Tiny training settings first; a case's own flags come later and win.
TINY = ["--demo-size", "20", "--max-steps", "2", "--batch-size", "4", "--diagnostics", "off", "--eval-every", "2"]

sys.path.insert(0, str(CORPUS))
import make_corpus  # noqa: E402


def expand(args: list[str], tmp: Path) -> list[str]:
    return [a.replace("{files}", str(FILES)).replace("{tmp}", str(tmp)) for a in args]


def prepare(case: dict, tmp: Path) -> None:
    if case.get("setup"):
        getattr(make_corpus, case["setup"])(tmp)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_cli_case(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "remote_code_ran"
    monkeypatch.setenv("NORMBT_REMOTE_CODE_MARKER", str(marker))
    prepare(case, tmp_path)
    runs = tmp_path / "runs"
    # transformers binds its log handler (and the handler's flush) to the sys.stderr of the test that imported it,
    # which capsys has since closed: point it at this test's captured stderr, as a fresh process would have it.
    for handler in logging.getLogger("transformers").handlers:
        if type(handler) is logging.StreamHandler:
            handler.stream = sys.stderr
            handler.__dict__.pop("flush", None)
    started = time.time()
    try:
        code = main(["train", "--runs", str(runs), *TINY, *expand(case["args"], tmp_path)])
    except SystemExit as exit_:  # argparse errors
        code = exit_.code
    elapsed = time.time() - started
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out, err
    assert code == case["exit"], err
    assert case["contains"] in out + err, err
    assert not marker.exists(), "a model's own code ran without --trust-remote-code"
    if case.get("max_seconds"):
        assert elapsed < case["max_seconds"], f"{elapsed:.1f} s"
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if code == 0:
        assert not errors and "done in" in out
        return
    assert len(errors) == 1 and case["contains"] in errors[0], err
    if case.get("diverged"):  # the run stays, failed, with the metrics up to the step that diverged
        (run,) = list_runs(runs)
        status = run.status()
        assert status["state"] == "failed" and case["contains"] in status["error"]
        metrics = run.metrics()
        assert metrics["step"].max() == 2 and metrics.loc[metrics["step"] == 1, "loss"].notna().all()
    else:
        assert [line for line in err.splitlines() if line.strip()] == errors  # nothing but the one line
        assert not runs.exists()


APP_CASES = [c for c in CASES if c.get("app")]


@pytest.mark.parametrize("case", APP_CASES, ids=[c["id"] for c in APP_CASES])
def test_data_page_case(case, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("NORMBT_VIZ_RUNS", str(tmp_path / "runs"))
    prepare(case, tmp_path)
    dataset = expand([a for a in case["args"] if "{" in a], tmp_path)[0]
    at = AppTest.from_file(str(ROOT / "pages" / "2_Data.py"), default_timeout=60)
    at.session_state["source_kind"] = "Local path"
    at.session_state["local_path"] = dataset
    at.session_state["strict"] = bool(case.get("strict"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if case["app"] == "error":
        shown = re.sub(r"\\(.)", r"\1", at.error[0].value)  # the page escapes markdown in the line
        assert len(at.error) == 1 and case["contains"] in shown, [e.value for e in at.error]
        assert "\n" not in shown
    else:
        assert not at.error, [e.value for e in at.error]
        assert at.success and "pairs from" in at.success[0].value and not at.exception
        labels = [e.label for e in at.expander]
        if case.get("skipped"):
            assert f"{case['skipped']} invalid row(s) skipped" in labels, labels
    # The page still works afterwards: back to the demo source.
    at.session_state["source_kind"] = "Demo"
    at.session_state["demo_size"] = 20
    at.run()
    assert not at.exception and not at.error
    assert at.success and "pairs from demo" in at.success[0].value


def test_100k_tiny_pairs_load_within_20_s(tmp_path):
    path = make_corpus.many_pairs(tmp_path)
    started = time.time()
    table = load_pairs(str(path))
    elapsed = time.time() - started
    assert len(table.pairs) == 100_000 and table.pairs["pair_id"].is_unique
    assert elapsed < 20, f"{elapsed:.1f} s"


def test_5mb_answer_loads_whole_and_training_truncates_it(tmp_path):
    path = make_corpus.large_answer(tmp_path)
    assert path.stat().st_size > 5_000_000
    table = load_pairs(str(path))
    assert len(table.pairs) == 10 and len(table.pairs["chosen"].iloc[0]) >= 5 * 1024 * 1024 - 5


def test_csv_with_embedded_newlines_and_quotes_keeps_the_text():
    pairs = load_pairs(str(FILES / "embedded_newlines.csv")).pairs
    assert len(pairs) == 6
    assert pairs["chosen"].iloc[1] == 'Line one,\nline "two", and\r\nline three.'
    assert pairs["rejected"].iloc[2] == '"quoted", with, commas'


@pytest.mark.parametrize("name", ["bom.jsonl", "bom.csv"])
def test_bom_is_not_part_of_the_first_column(name):
    table = load_pairs(str(FILES / name))
    assert table.format == "explicit" and table.mapping.prompt == "prompt" and len(table.pairs) == 12


def test_unknown_role_keeps_its_label_and_missing_content_is_skipped():
    text = load_pairs(str(FILES / "conversation_unknown_role.jsonl")).pairs["prompt"].tolist()
    assert any(t.startswith("Robot: hi 2") for t in text)
    table = load_pairs(str(FILES / "conversation_no_content.jsonl"))
    assert table.n_skipped == 1 and table.skipped["row"].tolist() == [4]


def test_decoder_tokenizer_without_pad_token_gets_eos(tmp_path):
    """A tiny random Llama whose tokenizer has an eos token and no pad token: the backbone pads with eos."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    from normbt_viz.model.backbones import load_backbone

    folder = tmp_path / "no_pad"
    words = ["<unk>", "</s>", "short", "a", "much", "longer", "answer", "here"]
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", eos_token="</s>")
    assert tokenizer.pad_token is None
    tokenizer.save_pretrained(folder)
    LlamaModel(LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                           num_attention_heads=2, num_key_value_heads=2)).save_pretrained(folder)
    backbone = load_backbone(str(folder), device="cpu")
    assert backbone.is_decoder and backbone.tokenizer.pad_token == "</s>"
    batch = backbone.tokenizer(["short", "a much longer answer here"], padding=True)
    assert len(set(map(len, batch["input_ids"]))) == 1
