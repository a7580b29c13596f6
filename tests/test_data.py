"""Preference-data layer: every format and source kind loads into the canonical table, ids are stable, and
every bad input gives one line naming the file, the row or line, the column and the value."""

import hashlib
import json
import math
import subprocess
import sys
import types

import datasets
import numpy as np
import pandas as pd
import pytest

from normbt_viz.data.sources import (
    CANONICAL_COLUMNS,
    ColumnMapping,
    load_pairs,
    render_messages,
    sample_pairs,
    split_pairs,
)
from normbt_viz.errors import DataError, SpecError

HH_CHOSEN = "\n\nHuman: What is 2+2?\n\nAssistant: It is 4."
HH_REJECTED = "\n\nHuman: What is 2+2?\n\nAssistant: It is 5."
EXPLICIT_ROWS = [
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
    {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
    {"prompt": "Colour of the sky?", "chosen": "Blue.", "rejected": "Green."},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def data_error(*args, **kwargs) -> str:
    """The message of the DataError that load_pairs raises; it must be one line."""
    with pytest.raises(DataError) as info:
        load_pairs(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


def row_error(*args, **kwargs) -> str:
    """A bad row: `strict=True` raises its one-line message; the default lenient load leaves that row out and
    lists the same message in `skipped` (or, when no valid row remains, raises a message starting with it)."""
    message = data_error(*args, strict=True, **kwargs)
    try:
        table = load_pairs(*args, **kwargs)
    except DataError as exc:
        assert str(exc).startswith(message) and "no valid row" in str(exc), str(exc)
        return message
    skipped = table.skipped
    assert message in skipped["message"].tolist()
    assert not set(skipped["row"].dropna().astype(int)) & set(table.pairs["source_row"])
    assert table.n_skipped == len(skipped) >= 1
    return message


# ---------------------------------------------------------------------------------------------------------
# Formats


def test_explicit_jsonl(tmp_path):
    table = load_pairs(write_jsonl(tmp_path / "pairs.jsonl", EXPLICIT_ROWS))
    assert table.format == "explicit"
    assert tuple(table.pairs.columns) == CANONICAL_COLUMNS
    assert table.pairs["prompt"].tolist() == ["Capital of France?", "2+2?", "Colour of the sky?"]
    assert table.pairs["chosen"].tolist() == ["Paris.", "4", "Blue."]
    assert table.pairs["rejected"].tolist() == ["Lyon.", "5", "Green."]
    assert table.pairs["source_row"].tolist() == [1, 2, 3]
    assert table.pairs["category"].tolist() == ["all"] * 3
    assert table.pairs["margin"].isna().all()
    assert table.pairs["prompt_messages"].tolist() == [""] * 3
    assert not table.pairs["identical"].any() and table.n_identical == 0
    assert table.mapping == ColumnMapping(prompt="prompt", chosen="chosen", rejected="rejected")
    assert table.source == str(tmp_path / "pairs.jsonl")


def test_explicit_aliases_are_detected():
    frame = pd.DataFrame({"question": ["q"], "chosen_response": ["good"], "rejected_response": ["bad"]})
    table = load_pairs(frame)
    assert table.format == "explicit"
    assert table.mapping.prompt == "question"
    assert table.pairs.loc[0, ["prompt", "chosen", "rejected"]].tolist() == ["q", "good", "bad"]


def test_ambiguous_aliases_ask_for_a_mapping():
    frame = pd.DataFrame({"prompt": ["p"], "question": ["q"], "chosen": ["a"], "rejected": ["b"]})
    message = data_error(frame)
    assert "uploaded table" in message and "prompt, question" in message and "mapping" in message
    assert load_pairs(frame, mapping={"prompt": "question"}).pairs.loc[0, "prompt"] == "q"


def test_implicit_hh_prompt_is_cut_after_the_last_assistant_marker():
    multi_turn_chosen = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit.\n\nAssistant: Apple."
    multi_turn_rejected = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit.\n\nAssistant: Anvil."
    frame = pd.DataFrame({"chosen": [HH_CHOSEN, multi_turn_chosen], "rejected": [HH_REJECTED, multi_turn_rejected]})
    table = load_pairs(frame)
    assert table.format == "implicit"
    assert table.mapping.prompt is None
    # The common prefix runs into the answer ("It is "), but the cut stays at the turn boundary.
    assert table.pairs.loc[0, ["prompt", "chosen", "rejected"]].tolist() == [
        "\n\nHuman: What is 2+2?\n\nAssistant:", "It is 4.", "It is 5."]
    assert table.pairs.loc[1, "prompt"] == "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a fruit.\n\nAssistant:"
    assert table.pairs.loc[1, ["chosen", "rejected"]].tolist() == ["Apple.", "Anvil."]


def test_implicit_without_marker_cuts_at_a_word_boundary():
    frame = pd.DataFrame({"chosen": ["Summarise: the cat sat", "Totally different"],
                          "rejected": ["Summarise: the cow ran", "Nothing shared"]})
    pairs = load_pairs(frame).pairs
    assert pairs.loc[0, ["prompt", "chosen", "rejected"]].tolist() == ["Summarise: the", "cat sat", "cow ran"]
    assert pairs.loc[1, ["prompt", "chosen", "rejected"]].tolist() == ["", "Totally different", "Nothing shared"]


def test_conversational_implicit_prompt_is_the_shared_leading_messages():
    shared = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "2+2?"}]
    frame = pd.DataFrame({"chosen": [shared + [{"role": "assistant", "content": "4"}]],
                          "rejected": [shared + [{"role": "assistant", "content": "5"}]]})
    table = load_pairs(frame)
    assert table.format == "conversational"
    row = table.pairs.loc[0]
    assert (row["chosen"], row["rejected"]) == ("4", "5")
    assert json.loads(row["prompt_messages"]) == shared
    assert row["prompt"] == "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello\n\nUser: 2+2?"


def test_conversational_trl_prompt_list():
    frame = pd.DataFrame({
        "prompt": [[{"role": "user", "content": "Capital of France?"}]],
        "chosen": [[{"role": "assistant", "content": "Paris."}]],
        "rejected": [[{"role": "assistant", "content": "Lyon."}]],
    })
    table = load_pairs(frame)
    assert table.format == "conversational"
    assert table.pairs.loc[0, ["prompt", "chosen", "rejected"]].tolist() == [
        "User: Capital of France?", "Paris.", "Lyon."]
    assert json.loads(table.pairs.loc[0, "prompt_messages"]) == [{"role": "user", "content": "Capital of France?"}]


def test_conversational_responses_repeating_a_text_prompt_lose_it():
    user = {"role": "user", "content": "Capital of France?"}
    frame = pd.DataFrame({"prompt": ["Capital of France?"],
                          "chosen": [[user, {"role": "assistant", "content": "Paris."}]],
                          "rejected": [[user, {"role": "assistant", "content": "Lyon."}]]})
    pairs = load_pairs(frame).pairs
    assert pairs.loc[0, ["prompt", "chosen", "rejected"]].tolist() == ["User: Capital of France?", "Paris.", "Lyon."]


def test_sharegpt(tmp_path):
    frame = pd.DataFrame({
        "conversations": [[{"from": "system", "value": "Be brief."}, {"from": "human", "value": "2+2?"}]],
        "chosen": [{"from": "gpt", "value": "4"}],
        "rejected": [{"from": "gpt", "value": "5"}],
    })
    frame.to_parquet(tmp_path / "sharegpt.parquet")
    table = load_pairs(tmp_path / "sharegpt.parquet")
    assert table.format == "sharegpt"
    assert table.mapping.prompt == "conversations"
    assert table.pairs.loc[0, ["prompt", "chosen", "rejected"]].tolist() == [
        "System: Be brief.\n\nUser: 2+2?", "4", "5"]
    assert json.loads(table.pairs.loc[0, "prompt_messages"]) == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]


def test_chat_template_tokenizer_renders_conversational_prompts():
    frame = pd.DataFrame({"prompt": [[{"role": "user", "content": "Hi"}]],
                          "chosen": [[{"role": "assistant", "content": "Hello"}]],
                          "rejected": [[{"role": "assistant", "content": "Go"}]]})
    with_template = load_pairs(frame, chat_template_tokenizer=FakeTokenizer())
    plain = load_pairs(frame)
    assert with_template.pairs.loc[0, "prompt"] == "<|user|>Hi"
    # Ids hash the messages, not their rendering, so runs with different tokenizers stay comparable.
    assert with_template.pairs.loc[0, "pair_id"] == plain.pairs.loc[0, "pair_id"]


# ---------------------------------------------------------------------------------------------------------
# Source kinds


def test_json_list_and_json_lines(tmp_path):
    (tmp_path / "list.json").write_text(json.dumps(EXPLICIT_ROWS, indent=2))
    write_jsonl(tmp_path / "lines.json", EXPLICIT_ROWS)
    from_list = load_pairs(tmp_path / "list.json")
    from_lines = load_pairs(str(tmp_path / "lines.json"))
    assert from_list.pairs["chosen"].tolist() == from_lines.pairs["chosen"].tolist() == ["Paris.", "4", "Blue."]
    assert from_list.fingerprint() == from_lines.fingerprint()


def test_jsonl_source_rows_are_line_numbers(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(EXPLICIT_ROWS[0]) + "\n\n" + json.dumps(EXPLICIT_ROWS[1]) + "\n")
    assert load_pairs(path).pairs["source_row"].tolist() == [1, 3]


def test_csv_keeps_text_as_text(tmp_path):
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"prompt": ["", "q"], "chosen": ["NA", "42"], "rejected": ["None", "43"]}).to_csv(path, index=False)
    pairs = load_pairs(path).pairs
    assert pairs["prompt"].tolist() == ["", "q"]
    assert pairs["chosen"].tolist() == ["NA", "42"]
    assert pairs["rejected"].tolist() == ["None", "43"]


def test_parquet_and_dataframe_give_the_same_table(tmp_path):
    frame = pd.DataFrame(EXPLICIT_ROWS)
    frame.to_parquet(tmp_path / "pairs.parquet")
    from_parquet = load_pairs(tmp_path / "pairs.parquet")
    from_frame = load_pairs(frame)
    assert from_frame.source == "uploaded table"
    pd.testing.assert_frame_equal(from_parquet.pairs, from_frame.pairs)
    assert from_parquet.fingerprint() == from_frame.fingerprint()


def test_conversational_parquet_round_trip(tmp_path):
    frame = pd.DataFrame({"chosen": [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]],
                          "rejected": [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go"}]]})
    frame.to_parquet(tmp_path / "conv.parquet")
    from_parquet = load_pairs(tmp_path / "conv.parquet")
    assert from_parquet.format == "conversational"
    pd.testing.assert_frame_equal(from_parquet.pairs, load_pairs(frame).pairs)


def test_saved_dataset_directory(tmp_path):
    dataset = datasets.Dataset.from_pandas(pd.DataFrame(EXPLICIT_ROWS), preserve_index=False)
    dataset.save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"test": dataset}).save_to_disk(str(tmp_path / "saved_dict"))
    table = load_pairs(str(tmp_path / "saved"))
    assert table.pairs["chosen"].tolist() == ["Paris.", "4", "Blue."]
    assert load_pairs(tmp_path / "saved_dict", split="test").fingerprint() == table.fingerprint()
    message = data_error(tmp_path / "saved_dict", split="train")
    assert "saved_dict" in message and "'train'" in message and "test" in message


def test_local_parquet_through_load_dataset(tmp_path):
    pd.DataFrame(EXPLICIT_ROWS).to_parquet(tmp_path / "pairs.parquet")
    dataset = datasets.load_dataset("parquet", data_files=str(tmp_path / "pairs.parquet"), split="train",
                                    cache_dir=str(tmp_path / "cache"))
    dataset.save_to_disk(str(tmp_path / "from_hub_loader"))
    assert load_pairs(tmp_path / "from_hub_loader").pairs["rejected"].tolist() == ["Lyon.", "5", "Green."]


@pytest.fixture
def hub_reachable(monkeypatch):
    """The hub as these tests fake it (through datasets.load_dataset) also answers the metadata request that
    check_hub_repo makes first; there is no network here, so that request is faked as answered."""
    monkeypatch.setattr("normbt_viz.data.sources.check_hub_repo", lambda *args, **kwargs: None)


def test_hub_id_goes_through_load_dataset(monkeypatch, hub_reachable):
    calls = []

    def fake_load_dataset(name, config, split):
        calls.append((name, config, split))
        return datasets.Dataset.from_pandas(pd.DataFrame(EXPLICIT_ROWS), preserve_index=False)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    table = load_pairs("org/prefs-v0.2", config="default", split="test")
    assert calls == [("org/prefs-v0.2", "default", "test")]
    assert table.source == "Hugging Face dataset 'org/prefs-v0.2' (config 'default', split 'test')"
    assert table.pairs["chosen"].tolist() == ["Paris.", "4", "Blue."]


def test_hub_failure_is_one_line_naming_the_id(monkeypatch, hub_reachable):
    def failing_load_dataset(name, config, split):
        raise ConnectionError("Couldn't reach 'org/prefs' on the Hub\nsecond line of detail")

    monkeypatch.setattr(datasets, "load_dataset", failing_load_dataset)
    message = data_error("org/prefs")
    assert message == ("cannot load Hugging Face dataset 'org/prefs' (split 'train'): "
                       "Couldn't reach 'org/prefs' on the Hub")


def test_hub_rows_are_named_in_errors(monkeypatch, hub_reachable):
    rows = [dict(EXPLICIT_ROWS[0]), dict(EXPLICIT_ROWS[1], chosen=" ")]
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config, split: datasets.Dataset.from_list(rows))
    assert row_error("org/prefs") == "org/prefs[train] row 2, column 'chosen': empty or whitespace-only response"


def test_demo_source(monkeypatch):
    def generate_demo_pairs(n_pairs, noise_rate, seed):
        return pd.DataFrame({"pair_id": [f"d{i}" for i in range(n_pairs)], "prompt": ["2+2?"] * n_pairs,
                             "chosen": ["4"] * n_pairs, "rejected": ["5"] * n_pairs, "category": ["math"] * n_pairs,
                             "flipped": [i < n_pairs * noise_rate for i in range(n_pairs)]})

    monkeypatch.setitem(sys.modules, "normbt_viz.data.demo", types.SimpleNamespace(generate_demo_pairs=generate_demo_pairs))
    table = load_pairs("demo", demo_size=4, demo_noise=0.5, demo_seed=3)
    assert table.format == "demo"
    assert list(table.pairs.columns) == [*CANONICAL_COLUMNS, "flipped"]
    assert table.pairs["pair_id"].tolist() == ["d0", "d1", "d2", "d3"]
    assert table.pairs["flipped"].tolist() == [True, True, False, False]
    assert table.pairs["category"].tolist() == ["math"] * 4


def test_real_demo_generator_fits_the_contract():
    pytest.importorskip("normbt_viz.data.demo")
    table = load_pairs("demo", demo_size=20, demo_noise=0.1, demo_seed=1)
    assert table.format == "demo" and len(table.pairs) == 20
    assert list(table.pairs.columns) == [*CANONICAL_COLUMNS, "flipped"]


# ---------------------------------------------------------------------------------------------------------
# Mappings and optional columns


def test_explicit_mapping_overrides_detection(tmp_path):
    path = write_jsonl(tmp_path / "odd.jsonl", [{"q": "2+2?", "good": "4", "bad": "5", "chosen": "x", "grp": "math"}])
    mapping = ColumnMapping(prompt="q", chosen="good", rejected="bad", category="grp")
    table = load_pairs(path, mapping=mapping)
    assert table.pairs.loc[0, ["prompt", "chosen", "rejected", "category"]].tolist() == ["2+2?", "4", "5", "math"]
    assert table.mapping == mapping
    assert load_pairs(path, mapping=mapping.to_dict()).fingerprint() == table.fingerprint()
    assert ColumnMapping.from_dict(mapping.to_dict()) == mapping


def test_empty_string_in_mapping_means_no_such_column():
    frame = pd.DataFrame({"prompt": ["p"], "chosen": ["a b"], "rejected": ["a c"], "id": ["x"]})
    table = load_pairs(frame, mapping={"prompt": "", "pair_id": ""})
    assert table.format == "implicit"
    assert table.pairs.loc[0, "pair_id"].startswith("p")
    assert table.pairs.loc[0, ["prompt", "chosen", "rejected"]].tolist() == ["a", "b", "c"]


def test_bad_mapping_keys_and_columns():
    with pytest.raises(SpecError, match="unknown key 'promt'"):
        ColumnMapping.from_dict({"promt": "q"})
    frame = pd.DataFrame(EXPLICIT_ROWS)
    message = data_error(frame, mapping={"prompt": "question"})
    assert message == ("uploaded table: mapped column 'question' for prompt not found "
                       "(found columns: prompt, chosen, rejected)")


def test_category_subset_margin_and_id_are_carried(tmp_path):
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"id": ["a", "b"], "subset": ["math", ""], "margin": ["1.5", ""], "prompt": ["p", "q"],
                  "chosen": ["x", "y"], "rejected": ["z", "w"]}).to_csv(path, index=False)
    table = load_pairs(path)
    assert table.mapping.category == "subset" and table.mapping.margin == "margin" and table.mapping.pair_id == "id"
    assert table.pairs["pair_id"].tolist() == ["a", "b"]
    assert table.pairs["category"].tolist() == ["math", "all"]
    assert table.pairs.loc[0, "margin"] == 1.5 and math.isnan(table.pairs.loc[1, "margin"])

    numeric = pd.DataFrame({"id": [10, 11], "category": ["c1", "c2"], "subset": ["s", "s"], "margin": [2, 0.5],
                            "prompt": ["p", "q"], "chosen": ["x", "y"], "rejected": ["z", "w"]})
    pairs = load_pairs(numeric).pairs
    assert pairs["pair_id"].tolist() == ["10", "11"]
    assert pairs["category"].tolist() == ["c1", "c2"]
    assert pairs["margin"].tolist() == [2.0, 0.5]


# ---------------------------------------------------------------------------------------------------------
# Ids, fingerprint, identical pairs


def test_generated_ids_are_stable_and_follow_the_formula(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", EXPLICIT_ROWS)
    first, second = load_pairs(path), load_pairs(path)
    assert first.pairs["pair_id"].tolist() == second.pairs["pair_id"].tolist()
    assert first.fingerprint() == second.fingerprint()
    expected = "p" + hashlib.sha1("Capital of France?\x1fParis.\x1fLyon.".encode()).hexdigest()[:12]
    assert first.pairs.loc[0, "pair_id"] == expected
    assert len(first.fingerprint()) == 16


def test_fingerprint_is_the_same_in_another_process(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", EXPLICIT_ROWS)
    code = f"from normbt_viz.data.sources import load_pairs; print(load_pairs({str(path)!r}).fingerprint())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == load_pairs(path).fingerprint()


def test_ids_and_fingerprint_change_when_a_text_changes(tmp_path):
    original = load_pairs(pd.DataFrame(EXPLICIT_ROWS))
    edited_rows = [dict(row) for row in EXPLICIT_ROWS]
    edited_rows[1]["rejected"] = "22"
    edited = load_pairs(pd.DataFrame(edited_rows))
    assert edited.pairs.loc[1, "pair_id"] != original.pairs.loc[1, "pair_id"]
    assert edited.pairs.loc[0, "pair_id"] == original.pairs.loc[0, "pair_id"]
    assert edited.fingerprint() != original.fingerprint()


def test_exact_duplicate_rows_get_numbered_ids():
    pairs = load_pairs(pd.DataFrame([EXPLICIT_ROWS[0]] * 3 + [EXPLICIT_ROWS[1]])).pairs
    base = pairs.loc[0, "pair_id"]
    assert pairs["pair_id"].tolist()[:3] == [base, f"{base}-2", f"{base}-3"]


def test_identical_pairs_are_kept_and_flagged():
    frame = pd.DataFrame({"prompt": ["p", "q", "r"], "chosen": ["same", "a", "x"], "rejected": ["same", "b", "x"]})
    table = load_pairs(frame)
    assert len(table.pairs) == 3
    assert table.pairs["identical"].tolist() == [True, False, True]
    assert table.n_identical == 2
    hh = load_pairs(pd.DataFrame({"chosen": [HH_CHOSEN], "rejected": [HH_CHOSEN]}))
    assert hh.n_identical == 1 and hh.pairs.loc[0, "chosen"] == "It is 4."


# ---------------------------------------------------------------------------------------------------------
# Bad input: one line naming file, row or line, column and value


def test_malformed_jsonl_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps(row) for row in EXPLICIT_ROWS] * 2 + ['{"prompt": "p" "chosen": "c"}']
    path.write_text("\n".join(lines) + "\n")
    assert row_error(path) == "pairs.jsonl line 7: malformed JSON (Expecting ',' delimiter)"


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(EXPLICIT_ROWS[0]) + "\n[1, 2]\n")
    assert row_error(path) == "pairs.jsonl line 2: expected a JSON object, got [1, 2]"


def test_malformed_json_file(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text('[\n  {"prompt": "p",\n   "chosen": }\n]')
    message = data_error(path)
    assert message.startswith("pairs.json line 3: malformed JSON (")


def test_missing_column(tmp_path):
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"prompt": ["p"], "chosen": ["c"], "answer": ["a"]}).to_csv(path, index=False)
    assert data_error(path) == "pairs.csv: missing column 'rejected' (found columns: prompt, chosen, answer)"


def test_unrecognised_format(tmp_path):
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"a": ["x"], "b": ["y"]}).to_csv(path, index=False)
    assert data_error(path) == ("pairs.csv: cannot recognise the format (columns: a, b); map the roles with "
                                "--column-mapping '{\"prompt\": ..., \"chosen\": ..., \"rejected\": ...}' "
                                "(the spec's column_mapping field)")


@pytest.mark.parametrize("name, content", [("pairs.csv", ""), ("pairs.jsonl", "\n\n"), ("pairs.json", "[]")])
def test_empty_file(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    assert data_error(tmp_path / name) == f"{name}: empty file, no rows"


def test_header_only_csv_and_empty_table(tmp_path):
    (tmp_path / "pairs.csv").write_text("prompt,chosen,rejected\n")
    assert data_error(tmp_path / "pairs.csv") == "pairs.csv: empty file, no rows"
    assert data_error(pd.DataFrame(columns=["prompt", "chosen", "rejected"])) == "uploaded table: no rows"


def test_nan_in_a_text_column(tmp_path):
    frame = pd.DataFrame(EXPLICIT_ROWS * 2)
    frame.loc[4, "chosen"] = float("nan")
    frame.to_parquet(tmp_path / "pairs.parquet")
    expected = "row 5, column 'chosen': NaN or missing (expected text)"
    assert row_error(tmp_path / "pairs.parquet") == f"pairs.parquet {expected}"
    assert row_error(frame) == f"uploaded table {expected}"


def test_number_in_a_text_column(tmp_path):
    rows = [dict(row) for row in EXPLICIT_ROWS]
    rows[1]["chosen"] = 42
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    assert row_error(tmp_path / "pairs.jsonl") == "pairs.jsonl line 2, column 'chosen': expected text, got int 42"
    frame = pd.DataFrame({"prompt": ["p", "q"], "chosen": [1, 42], "rejected": [2, 3]})
    frame.to_parquet(tmp_path / "numbers.parquet")
    assert row_error(tmp_path / "numbers.parquet") == (
        "numbers.parquet row 1, column 'chosen': expected text, got int 1")


def test_none_in_a_text_column(tmp_path):
    rows = [dict(row) for row in EXPLICIT_ROWS]
    rows[2]["rejected"] = None
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    assert row_error(tmp_path / "pairs.jsonl") == "pairs.jsonl line 3, column 'rejected': expected text, got None"
    del rows[2]["rejected"]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    assert row_error(tmp_path / "pairs.jsonl") == (
        "pairs.jsonl line 3, column 'rejected': NaN or missing (expected text)")


@pytest.mark.parametrize("response", ["", "   \n\t"])
def test_empty_or_whitespace_response(tmp_path, response):
    path = tmp_path / "pairs.csv"
    rows = [dict(row) for row in EXPLICIT_ROWS]
    rows[2]["chosen"] = response
    pd.DataFrame(rows).to_csv(path, index=False)
    assert row_error(path) == "pairs.csv row 3, column 'chosen': empty or whitespace-only response"


def test_implicit_response_empty_after_the_prompt_is_split_off():
    frame = pd.DataFrame({"chosen": [HH_CHOSEN, "\n\nHuman: Hi\n\nAssistant:"],
                          "rejected": [HH_REJECTED, "\n\nHuman: Hi\n\nAssistant: Hello"]})
    assert row_error(frame) == ("uploaded table row 2, column 'chosen': empty or whitespace-only response "
                                 "after splitting off the shared prompt")


def test_bad_conversational_messages():
    good = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    no_content = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}]
    assert row_error(pd.DataFrame({"chosen": [good, good], "rejected": [good, no_content]})) == (
        "uploaded table row 2, column 'rejected', message 2: expected text, got None")
    assert row_error(pd.DataFrame({"chosen": [good, "plain"], "rejected": [good, 7]})) == (
        "uploaded table row 2, column 'rejected': expected a list of messages, got int 7")
    assert row_error(pd.DataFrame({"chosen": [good], "rejected": [[{"content": "x"}]]})) == (
        "uploaded table row 1, column 'rejected', message 1: no 'role' (or 'from') in {'content': 'x'}")


def test_unknown_extension(tmp_path):
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    expected = ("data.xlsx: unknown format '.xlsx' (expected .jsonl, .json, .csv, .tsv or .parquet, optionally "
                "compressed as .gz, .bz2, .xz or .zst)")
    assert data_error(tmp_path / "data.xlsx") == expected
    assert data_error("data.xlsx") == expected


def test_no_such_file(tmp_path):
    missing = tmp_path / "missing.jsonl"
    assert data_error(str(missing)) == f"no such file: {missing}"


def test_margin_that_is_not_a_number(tmp_path):
    path = tmp_path / "pairs.csv"
    pd.DataFrame({"prompt": ["p", "q"], "chosen": ["a", "b"], "rejected": ["c", "d"],
                  "margin": ["1.0", "high"]}).to_csv(path, index=False)
    assert row_error(path) == "pairs.csv row 2, column 'margin': expected a number, got str 'high'"


def test_duplicate_ids_name_both_rows(tmp_path):
    rows = [dict(row, id=pair_id) for row, pair_id in zip(EXPLICIT_ROWS, ["a", "b", "a"])]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    message = data_error(tmp_path / "pairs.jsonl", strict=True)
    assert message.startswith("pairs.jsonl: duplicate id 'a' in column 'id' (lines 1 and 3)")
    lenient = load_pairs(tmp_path / "pairs.jsonl")
    assert lenient.pairs["pair_id"].tolist() == ["a", "b"]
    assert lenient.skipped["message"].tolist() == ["pairs.jsonl line 3, column 'id': duplicate id 'a' (first at line 1)"]
    assert len(load_pairs(tmp_path / "pairs.jsonl", mapping={"pair_id": ""}).pairs) == 3


def test_skipped_rows_name_file_row_column_and_value(tmp_path):
    """HH-RLHF has rows whose last assistant turn is empty, and real files have the odd broken line: the
    lenient default keeps every other row and lists each skipped one in a table and a short summary."""
    path = tmp_path / "hh.jsonl"
    rows = [{"chosen": HH_CHOSEN.replace("4", str(i)), "rejected": HH_REJECTED} for i in range(6)]
    rows[2] = {"chosen": "\n\nHuman: Hi\n\nAssistant:", "rejected": "\n\nHuman: Hi\n\nAssistant: Hello"}
    lines = [json.dumps(row) for row in rows]
    lines[4] = '{"chosen": "broken'
    path.write_text("\n".join(lines) + "\n")
    table = load_pairs(path)
    assert table.pairs["source_row"].tolist() == [1, 2, 4, 6]
    assert table.n_skipped == 2
    first, second = table.skipped.to_dict("records")
    assert (first["file"], first["row"], first["column"], first["value"]) == (
        "hh.jsonl", 3, "chosen", repr("\n\nHuman: Hi\n\nAssistant:").replace("\n", " "))
    assert first["reason"] == "empty or whitespace-only response after splitting off the shared prompt"
    assert (second["row"], second["column"], second["reason"]) == (5, "", "malformed JSON (Unterminated string starting at)")
    assert table.skipped_summary(1) == [first["message"], "... and 1 more skipped row(s)"]
    assert table.notes == ["skipped 2 invalid row(s) of hh.jsonl"]
    # Strict reads the file before it validates rows, so the broken line is the first problem it meets.
    assert data_error(path, strict=True) == second["message"]


def test_a_file_with_no_valid_row_is_still_an_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "p", "chosen": "", "rejected": "r"}\n{"oops\n')
    assert data_error(path) == ("bad.jsonl line 1, column 'chosen': empty or whitespace-only response "
                                "(and no valid row in bad.jsonl: all 2 skipped)")
    path.write_text('{"oops\n[1]\n')
    assert data_error(path).startswith("bad.jsonl line 1: malformed JSON (")


def test_long_values_are_truncated():
    frame = pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": [{"note": "x" * 200}]})
    message = row_error(frame)
    assert message.startswith("uploaded table row 1, column 'rejected': expected text, got dict {'note': '" + "x" * 27 + "...;")
    assert message.endswith("e.g. <column>.note")


# ---------------------------------------------------------------------------------------------------------
# render_messages


class FakeTokenizer:
    chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert tokenize is False
        text = "".join(f"<|{m['role']}|>{m['content']}" for m in messages)
        return text + ("<|assistant|>" if add_generation_prompt else "")


def test_render_messages_plain():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"}]
    assert render_messages(messages) == "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello"
    assert render_messages(messages[1:2], add_generation_prompt=True) == "User: Hi\n\nAssistant:"
    assert render_messages([]) == ""


def test_render_messages_uses_a_chat_template():
    messages = [{"role": "user", "content": "Hi"}]
    assert render_messages(messages, FakeTokenizer()) == "<|user|>Hi"
    assert render_messages(messages, FakeTokenizer(), add_generation_prompt=True) == "<|user|>Hi<|assistant|>"
    no_template = FakeTokenizer()
    no_template.chat_template = None
    assert render_messages(messages, no_template) == "User: Hi"


# ---------------------------------------------------------------------------------------------------------
# split_pairs and sample_pairs


def make_pairs(n: int, categories=("a",)) -> pd.DataFrame:
    return pd.DataFrame({"pair_id": [f"p{i}" for i in range(n)],
                         "category": [categories[i % len(categories)] for i in range(n)]})


def test_split_is_deterministic_disjoint_and_ordered():
    pairs = make_pairs(50)
    train, evaluation = split_pairs(pairs, 0.2, seed=7)
    again_train, again_eval = split_pairs(pairs, 0.2, seed=7)
    assert train["pair_id"].tolist() == again_train["pair_id"].tolist()
    assert evaluation["pair_id"].tolist() == again_eval["pair_id"].tolist()
    assert len(evaluation) == 10 and len(train) == 40
    assert set(train["pair_id"]).isdisjoint(evaluation["pair_id"])
    assert set(train["pair_id"]) | set(evaluation["pair_id"]) == set(pairs["pair_id"])
    order = {pair_id: i for i, pair_id in enumerate(pairs["pair_id"])}
    assert [order[p] for p in evaluation["pair_id"]] == sorted(order[p] for p in evaluation["pair_id"])
    assert split_pairs(pairs, 0.2, seed=8)[1]["pair_id"].tolist() != evaluation["pair_id"].tolist()


def test_split_is_stratified_by_category():
    pairs = make_pairs(100, categories=("a", "a", "a", "b"))
    _, evaluation = split_pairs(pairs, 0.2, seed=0)
    assert evaluation["category"].value_counts().to_dict() == {"a": 15, "b": 5}


def test_split_edge_sizes():
    assert [len(part) for part in split_pairs(make_pairs(2), 0.01, seed=0)] == [1, 1]
    assert [len(part) for part in split_pairs(make_pairs(3), 0.9, seed=0)] == [1, 2]
    assert [len(part) for part in split_pairs(make_pairs(10), 0.0, seed=0)] == [10, 0]
    assert [len(part) for part in split_pairs(make_pairs(1), 0.5, seed=0)] == [1, 0]
    assert [len(part) for part in split_pairs(make_pairs(7, ("a", "b", "c")), 0.5, seed=3)] == [3, 4]


@pytest.mark.parametrize("fraction", [-0.1, 0.95, 1.0, float("nan"), "0.2", True])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(SpecError, match="eval_fraction"):
        split_pairs(make_pairs(10), fraction, seed=0)


def test_sample_is_reproducible_and_keeps_order():
    pairs = make_pairs(100)
    sample = sample_pairs(pairs, 10, seed=1)
    assert sample["pair_id"].tolist() == sample_pairs(pairs, 10, seed=1)["pair_id"].tolist()
    assert len(sample) == 10
    positions = [int(p[1:]) for p in sample["pair_id"]]
    assert positions == sorted(positions)
    assert sample_pairs(pairs, 10, seed=2)["pair_id"].tolist() != sample["pair_id"].tolist()
    assert sample_pairs(pairs, None, seed=1)["pair_id"].tolist() == pairs["pair_id"].tolist()
    assert sample_pairs(pairs, 500, seed=1)["pair_id"].tolist() == pairs["pair_id"].tolist()
    assert len(sample_pairs(pairs, np.int64(5), seed=1)) == 5


@pytest.mark.parametrize("limit", [0, -3, 2.5, True])
def test_sample_rejects_bad_limits(limit):
    with pytest.raises(SpecError, match="limit"):
        sample_pairs(make_pairs(10), limit, seed=0)


# ---------------------------------------------------------------------------------------------------------
# Judgments: two responses and a verdict, in the shapes of public judgment datasets (our own text)


def _user(text):
    return {"role": "user", "content": text}


def _bot(text):
    return {"role": "assistant", "content": text}


def test_alpacaeval_annotations_are_recognised(tmp_path):
    rows = [
        {"instruction": "Name a primary colour.", "output_1": "Red.", "output_2": "Purple, probably.", "preference": 1},
        {"instruction": "What is 3*3?", "output_1": "6", "output_2": "9", "preference": 2.0},
        {"instruction": "Say hi.", "output_1": "Hi!", "output_2": "Hello!", "preference": 0},
        {"instruction": "Pick one.", "output_1": "This.", "output_2": "That.", "preference": 1.5},
    ]
    table = load_pairs(write_jsonl(tmp_path / "alpaca_eval.jsonl", rows))
    assert table.pairs[["prompt", "chosen", "rejected"]].values.tolist() == [
        ["Name a primary colour.", "Red.", "Purple, probably."], ["What is 3*3?", "9", "6"]]
    assert table.pairs["source_row"].tolist() == [1, 2]
    assert table.notes == ["read as judgments (AlpacaEval annotations): output_1 vs output_2; preference 1 → output_1 wins "
                           "(1), 2 → output_2 wins (1), 0 → tie, dropped (1), 1.5 → tie, dropped (1)"]
    assert table.n_skipped == 0 and table.mapping.winner == "preference"


def test_arena_and_mt_bench_conversations_with_content_parts(tmp_path):
    question = _user("How do I boil an egg?")
    rows = pd.DataFrame({
        "question_id": [81, 82, 83],
        "model_a": ["m1", "m2", "m3"], "model_b": ["m2", "m3", "m1"],
        "winner": ["model_b", "tie (bothbad)", "model_a"],
        "conversation_a": [[question, _bot("Put it in boiling water for 8 minutes.")],
                           [question, _bot("Boil.")],
                           [question, {"role": "assistant", "content": [{"type": "text", "text": "Simmer it"},
                                                                          {"type": "image_url", "image_url": {"url": "x"}},
                                                                          {"type": "text", "text": "for 9 minutes."}]}]],
        "conversation_b": [[question, _bot("Boil it for 9 minutes, then cool it in cold water.")],
                           [question, _bot("Fry.")],
                           [question, _bot("Microwave it whole.")]],
        "turn": [1, 1, 1],
    })
    rows.to_json(tmp_path / "mt_bench.jsonl", orient="records", lines=True)
    table = load_pairs(tmp_path / "mt_bench.jsonl")
    assert table.format == "conversational"
    assert table.pairs["prompt"].tolist() == ["User: How do I boil an egg?"] * 2
    assert table.pairs["chosen"].tolist() == ["Boil it for 9 minutes, then cool it in cold water.", "Simmer it\nfor 9 minutes."]
    assert table.pairs["rejected"].tolist() == ["Put it in boiling water for 8 minutes.", "Microwave it whole."]
    assert table.notes[0].startswith("read as judgments (Chatbot Arena / MT-Bench judgments): conversation_a vs "
                                     "conversation_b; winner model_a → conversation_a wins (1), model_b → conversation_b "
                                     "wins (1), tie (bothbad) → tie, dropped (1)")


def test_pku_safe_rlhf_csv_with_indices_as_text(tmp_path):
    path = tmp_path / "pku.csv"
    pd.DataFrame({"prompt": ["How do I pick a lock?", "Best way to store rice?"],
                  "response_0": ["I can't help with breaking into property.", "In an airtight container."],
                  "response_1": ["Use a tension wrench and rake the pins.", "In the fridge, open."],
                  "better_response_id": ["1", "0"], "safer_response_id": ["0", "0"],
                  "is_response_0_safe": [True, True], "is_response_1_safe": [False, True]}).to_csv(path, index=False)
    table = load_pairs(path)
    assert table.pairs["chosen"].tolist() == ["Use a tension wrench and rake the pins.", "In an airtight container."]
    assert "better_response_id 0 → response_0 wins (1), 1 → response_1 wins (1)" in table.notes[0]
    safer = load_pairs(path, mapping={"winner": "safer_response_id"})
    assert safer.pairs["chosen"].tolist() == ["I can't help with breaking into property.", "In an airtight container."]


def test_shp_uses_history_as_prompt_and_domain_as_category(tmp_path):
    rows = [{"post_id": "a1", "domain": "askculinary_train", "history": "Why does bread go stale?",
             "human_ref_A": "Starch retrogradation: the starch recrystallises.", "human_ref_B": "It gets old lol",
             "labels": 1, "score_A": 40, "score_B": 2},
            {"post_id": "a2", "domain": "askphysics_train", "history": "Why is the sky blue?",
             "human_ref_A": "Magic.", "human_ref_B": "Rayleigh scattering favours short wavelengths.",
             "labels": 0, "score_A": 1, "score_B": 55}]
    table = load_pairs(write_jsonl(tmp_path / "shp.jsonl", rows))
    assert table.pairs[["prompt", "chosen", "category"]].values.tolist() == [
        ["Why does bread go stale?", "Starch retrogradation: the starch recrystallises.", "askculinary_train"],
        ["Why is the sky blue?", "Rayleigh scattering favours short wavelengths.", "askphysics_train"]]


def test_helpsteer2_signed_strength_and_unified_feedback_ratings(tmp_path):
    helpsteer = [{"prompt": "Define entropy.", "response_1": "A measure of disorder.", "response_2": "A kind of heat.",
                  "preference_strength": -2},
                 {"prompt": "Define pH.", "response_1": "Acidity.", "response_2": "The negative log of H+ activity.",
                  "preference_strength": 3},
                 {"prompt": "Define mass.", "response_1": "Weight.", "response_2": "Heaviness.", "preference_strength": 0}]
    table = load_pairs(write_jsonl(tmp_path / "helpsteer2.jsonl", helpsteer))
    assert table.pairs["chosen"].tolist() == ["A measure of disorder.", "The negative log of H+ activity."]
    assert "preference_strength <0 → response_1 wins (1), >0 → response_2 wins (1), 0 → tie, dropped (1)" in table.notes[0]

    hello = _user("Write a haiku about rain.")
    unified = [{"conv_A": [hello, _bot("Soft rain on the roof")], "conv_B": [hello, _bot("Rain is wet.")],
                "conv_A_rating": 8, "conv_B_rating": 3, "num_turns": 1, "source": "ufb"},
               {"conv_A": [hello, _bot("Drops.")], "conv_B": [hello, _bot("Grey clouds whisper")],
                "conv_A_rating": "2", "conv_B_rating": "7", "num_turns": 1, "source": "ufb"},
               {"conv_A": [hello, _bot("A.")], "conv_B": [hello, _bot("B.")], "conv_A_rating": 5, "conv_B_rating": 5,
                "num_turns": 1, "source": "ufb"}]
    table = load_pairs(write_jsonl(tmp_path / "unified.jsonl", unified))
    assert table.pairs["chosen"].tolist() == ["Soft rain on the roof", "Grey clouds whisper"]
    assert table.notes[0].endswith("the higher of conv_A_rating and conv_B_rating wins (1 conv_A, 1 conv_B); equal ratings "
                                   "are ties, dropped (1)")


def test_judgment_through_a_column_mapping(tmp_path):
    rows = [{"q": "Capital of Peru?", "left": "Lima.", "right": "Cusco.", "verdict": "L"},
            {"q": "Largest planet?", "left": "Mars.", "right": "Jupiter.", "verdict": "R"},
            {"q": "Tallest animal?", "left": "Giraffe.", "right": "Elephant.", "verdict": "?"}]
    path = write_jsonl(tmp_path / "judged.jsonl", rows)
    mapping = {"prompt": "q", "response_a": "left", "response_b": "right", "winner": "verdict", "a_wins": "L", "b_wins": ["R"]}
    table = load_pairs(path, mapping=mapping)
    assert table.pairs[["prompt", "chosen", "rejected"]].values.tolist() == [
        ["Capital of Peru?", "Lima.", "Cusco."], ["Largest planet?", "Jupiter.", "Mars."]]
    assert table.notes == ["read as judgments (judgment by column mapping): left vs right; verdict l → left wins (1), "
                           "r → right wins (1), ? → not a listed value, dropped (1)"]
    # Without values: spellings that name a side are recognised; 0/1 alone is refused as ambiguous.
    rows01 = [dict(row, verdict=i % 2) for i, row in enumerate(rows)]
    message = data_error(write_jsonl(tmp_path / "judged01.jsonl", rows01), mapping={**mapping, "a_wins": None, "b_wins": None})
    assert message.startswith("judged01.jsonl: cannot tell which side each value of 'verdict' means (numbers mean "
                              "different sides in different datasets); values: 0: 2, 1: 1; say what they mean with "
                              "--column-mapping '{")
    rows_ab = [dict(row, verdict=v) for row, v in zip(rows, ["A", "b", "tie"])]
    table = load_pairs(write_jsonl(tmp_path / "judged_ab.jsonl", rows_ab), mapping={**mapping, "a_wins": None, "b_wins": None})
    assert table.pairs["chosen"].tolist() == ["Lima.", "Jupiter."]
    with pytest.raises(SpecError, match="a_wins must be a value or a list of values"):
        ColumnMapping.from_dict({"a_wins": {"x": 1}})


def test_bad_text_in_a_judgment_names_its_source_column(tmp_path):
    rows = [{"instruction": "A?", "output_1": "yes", "output_2": "no", "preference": 1},
            {"instruction": "B?", "output_1": "fine", "output_2": "  ", "preference": 2}]
    assert row_error(write_jsonl(tmp_path / "alpaca.jsonl", rows)) == (
        "alpaca.jsonl line 2, column 'output_2': empty or whitespace-only response")


def test_content_parts_in_chat_messages():
    parts = [_user([{"type": "text", "text": "Describe"}, {"type": "text", "text": "this."}]),
             {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]}]
    other = [parts[0], _bot("A dog.")]
    table = load_pairs(pd.DataFrame({"chosen": [parts], "rejected": [other]}))
    assert table.pairs.loc[0, ["prompt", "chosen", "rejected"]].tolist() == ["User: Describe\nthis.", "A cat.", "A dog."]
    image_only = [parts[0], {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]
    assert row_error(pd.DataFrame({"chosen": [parts, image_only], "rejected": [other, other]})).startswith(
        "uploaded table row 2, column 'chosen', message 2: no text part in content")


def test_chosen_and_rejected_columns_win_over_a_judgment_convention():
    frame = pd.DataFrame({"prompt": ["p"], "chosen": ["good"], "rejected": ["bad"], "response_0": ["x"],
                          "response_1": ["y"], "better_response_id": [1]})
    table = load_pairs(frame)
    assert table.format == "explicit" and table.notes == [] and table.pairs.loc[0, "chosen"] == "good"
