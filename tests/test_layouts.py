"""Public preference layouts as they ship (../shared/FORMATS.md), each written by the test in its exact shape:
column names, nesting, value encodings, compression. For every pair, `chosen` is the answer the verdict names
and the prompt is not repeated inside the answers."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import random

import pandas as pd
import pytest

from normbt_viz.data.sources import load_pairs
from normbt_viz.errors import DataError

QUESTIONS = ["How do I boil an egg?", "What is the capital of Peru?", "Name a prime above 10.", "Why is the sky blue?"]
GOOD = ["Simmer it for nine minutes.", "Lima is the capital.", "Eleven is prime.", "Rayleigh scattering."]
BAD = ["Microwave it whole.", "Cusco, I think.", "Twelve.", "Because it reflects the sea."]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def assert_right(table, expected_pairs):
    """Every pair as expected (prompt fragment, chosen, rejected), and no answer repeats its prompt."""
    got = table.pairs[["prompt", "chosen", "rejected"]].values.tolist()
    assert len(got) == len(expected_pairs), got
    for (prompt, chosen, rejected), (question, good, bad) in zip(got, expected_pairs):
        assert question in prompt, (prompt, question)
        assert chosen == good and rejected == bad, (chosen, rejected)
        assert question not in chosen and question not in rejected


def user(text):
    return {"role": "user", "content": text}


def bot(text):
    return {"role": "assistant", "content": text}


EXPECTED = list(zip(QUESTIONS, GOOD, BAD))


def test_hh_rlhf_gzip_transcripts(tmp_path):
    rows = [{"chosen": f"\n\nHuman: {q}\n\nAssistant: {g}", "rejected": f"\n\nHuman: {q}\n\nAssistant: {b}"}
            for q, g, b in EXPECTED]
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    table = load_pairs(path)
    assert table.format == "implicit"
    assert_right(table, EXPECTED)


def test_ultrafeedback_binarized_repeats_the_prompt_and_scores_ties(tmp_path):
    rows = [{"prompt": q, "prompt_id": f"id{i}", "chosen": [user(q), bot(g)], "rejected": [user(q), bot(b)],
             "messages": [user(q), bot(g)], "score_chosen": 8.0, "score_rejected": 8.0 if i == 3 else 3.0}
            for i, (q, g, b) in enumerate(EXPECTED)]
    pd.DataFrame(rows).to_parquet(tmp_path / "train_prefs-00000-of-00001.parquet")
    table = load_pairs(tmp_path / "train_prefs-00000-of-00001.parquet")
    assert_right(table, EXPECTED[:3])
    assert table.pairs["margin"].tolist() == [5.0, 5.0, 5.0]
    assert table.report.ties_dropped == 1 and "equal scores are ties, dropped (1)" in " ".join(table.notes)


def test_skywork_and_argilla_hyphenated_ratings(tmp_path):
    sky = [{"chosen": [user(q), bot(g)], "rejected": [user(q), bot(b)], "source": "s"} for q, g, b in EXPECTED]
    assert_right(load_pairs(write_jsonl(tmp_path / "sky.jsonl", sky)), EXPECTED)
    argilla = [{"prompt": q, "chosen": [user(q), bot(g)], "rejected": [user(q), bot(b)], "chosen-rating": 5,
                "rejected-rating": 2, "chosen-model": "m1", "rejected-model": "m2", "source": "s"} for q, g, b in EXPECTED]
    table = load_pairs(write_jsonl(tmp_path / "argilla.jsonl", argilla))
    assert_right(table, EXPECTED)
    assert table.mapping.score_chosen == "chosen-rating" and table.pairs["margin"].tolist() == [3.0] * 4


def test_rewardbench_filtered_and_llama_factory_sharegpt(tmp_path):
    rb = [{"prompt": q, "chosen": g, "rejected": b, "chosen_model": "x", "rejected_model": "y", "subset": "alpacaeval-easy",
           "id": i} for i, (q, g, b) in enumerate(EXPECTED)]
    table = load_pairs(write_jsonl(tmp_path / "rb.jsonl", rb))
    assert_right(table, EXPECTED)
    assert set(table.pairs["category"]) == {"alpacaeval-easy"}
    share = [{"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": q}],
              "chosen": {"from": "gpt", "value": g}, "rejected": {"from": "gpt", "value": b}} for q, g, b in EXPECTED]
    table = load_pairs(write_jsonl(tmp_path / "dpo_en_demo.json", share))
    assert table.format == "sharegpt"
    assert_right(table, EXPECTED)


def test_llama_factory_v1_content_parts_keyed_value(tmp_path):
    def conv(q, a):
        return [{"role": "user", "content": [{"type": "text", "value": q}]},
                {"role": "assistant", "content": [{"type": "text", "value": a}]}]
    rows = [{"chosen_messages": conv(q, g), "rejected_messages": conv(q, b), "loss_weight": 1.0} for q, g, b in EXPECTED]
    table = load_pairs(write_jsonl(tmp_path / "dpo_v1_demo.jsonl", rows))
    assert_right(table, EXPECTED)


def test_llama_factory_ranking_best_vs_each_adjacent_and_all(tmp_path):
    rows = [{"instruction": "Rank these.", "input": QUESTIONS[0], "output": ["A best", "B mid", "C worst"],
             "history": [["Hello", "Hi there."]]},
            {"instruction": QUESTIONS[1], "input": "", "output": [GOOD[1], BAD[1]], "history": []}]
    path = write_jsonl(tmp_path / "oaast_rm.json", rows)
    table = load_pairs(path)
    assert table.pairs[["chosen", "rejected"]].values.tolist() == [["A best", "B mid"], ["A best", "C worst"],
                                                                   [GOOD[1], BAD[1]]]
    assert table.pairs["prompt"].iloc[0] == f"User: Hello\n\nAssistant: Hi there.\n\nUser: Rank these.\n{QUESTIONS[0]}"
    assert table.pairs["prompt"].iloc[2] == f"User: {QUESTIONS[1]}"
    assert any("best vs each other answer (ranking_pairs: best)" in note for note in table.notes)
    adjacent = load_pairs(path, mapping={"ranking_pairs": "adjacent"})
    assert adjacent.pairs[["chosen", "rejected"]].values.tolist()[:2] == [["A best", "B mid"], ["B mid", "C worst"]]
    assert len(load_pairs(path, mapping={"ranking_pairs": "all"}).pairs) == 4


def test_rm_bench_style_variants_matched_or_all(tmp_path):
    rows = [{"id": i, "subset": "chat", "prompt": q, "chosen": [g, g + " (detailed)", g + " **md**"],
             "rejected": [b, b + " (detailed)", b + " **md**"], "error_key": "", "error": ""}
            for i, (q, g, b) in enumerate(EXPECTED)]
    path = write_jsonl(tmp_path / "chat_filtered.json", rows)
    table = load_pairs(path)
    assert len(table.pairs) == 12 and table.pairs["pair_id"].is_unique
    for row in table.pairs.itertuples():
        index = QUESTIONS.index(row.prompt)
        assert row.chosen.startswith(GOOD[index]) and row.rejected.startswith(BAD[index])
        assert row.chosen[len(GOOD[index]):] == row.rejected[len(BAD[index]):]  # matched styles
    assert len(load_pairs(path, mapping={"variant_pairs": "all"}).pairs) == 36


def test_rewardbench_2_one_chosen_against_each_rejected(tmp_path):
    rows = [{"id": str(i), "prompt": q, "chosen": [g], "rejected": [b, b + " v2", b + " v3"], "num_correct": 1,
             "num_incorrect": 3, "total_completions": 4, "models": [], "subset": "Factuality", "additional_metadata": {}}
            for i, (q, g, b) in enumerate(EXPECTED)]
    table = load_pairs(write_jsonl(tmp_path / "rb2.jsonl", rows))
    assert len(table.pairs) == 12 and set(table.pairs["chosen"]) == set(GOOD)
    assert all(r.startswith(BAD[GOOD.index(c)]) for c, r in zip(table.pairs["chosen"], table.pairs["rejected"]))


def test_rmb_answers_nested_with_a_reject_column(tmp_path):
    rows = [{"pair_uid": f"u{i}", "conversation_input": [{"role": "user", "content": q, "language": "English"}],
             "chosen": {"llm_name": "m1", "answer": g}, "reject": {"llm_name": "m2", "answer": b},
             "category_path": "Pairwise/Helpfulness"} for i, (q, g, b) in enumerate(EXPECTED)]
    table = load_pairs(write_jsonl(tmp_path / "rmb.json", rows))
    assert_right(table, EXPECTED)
    assert "read nested fields: chosen from 'chosen.answer', rejected from 'reject.answer'" in table.notes
    explicit = load_pairs(tmp_path / "rmb.json", mapping={"chosen": "chosen.answer", "rejected": "reject.answer"})
    assert_right(explicit, EXPECTED)


def test_judgebench_label_strings_with_a_tie(tmp_path):
    labels = ["A>B", "B>A", "A>B", "A=B"]
    rows = [{"pair_id": f"j{i}", "question": q, "response_A": g if label != "B>A" else b,
             "response_B": b if label != "B>A" else g, "label": label, "source": "mmlu"}
            for i, ((q, g, b), label) in enumerate(zip(EXPECTED, labels))]
    table = load_pairs(write_jsonl(tmp_path / "judgebench.jsonl", rows))
    assert_right(table, EXPECTED[:3])
    assert "a>b → response_A wins (2), b>a → response_B wins (1), a=b → tie, dropped (1)" in table.notes[0]


def test_auto_j_numeric_labels_json_lines_under_a_json_name(tmp_path):
    labels = [0, 1, 0, 2]
    rows = [{"scenario": "chat", "prompt": q, "response 1": g if label != 1 else b,
             "response 2": b if label != 1 else g, "label": label} for (q, g, b), label in zip(EXPECTED, labels)]
    path = write_jsonl(tmp_path / "testdata_pairwise.json", rows)
    table = load_pairs(path)
    assert_right(table, EXPECTED[:3])
    assert ("label 0 → response 1 wins (2), 1 → response 2 wins (1), 2 → tie, dropped (1)") in table.notes[0]
    # The obvious-looking mapping reads the same convention, never "1 = first, 2 = second".
    assert_right(load_pairs(path, mapping={"winner": "label"}), EXPECTED[:3])


def test_ultrafeedback_flattened_scores_under_metadata(tmp_path):
    rows = [{"prompt": q, "chosen": g, "rejected": b,
             "metadata": {"score_chosen": 9, "score_rejected": 9 if i == 0 else 4, "source": "x"}}
            for i, (q, g, b) in enumerate(EXPECTED)]
    table = load_pairs(write_jsonl(tmp_path / "uf_flat.jsonl", rows))
    assert_right(table, EXPECTED[1:])
    assert table.mapping.score_chosen == "metadata.score_chosen" and table.report.ties_dropped == 1
    assert table.pairs["margin"].tolist() == [5.0, 5.0, 5.0]


def test_arena_csv_export_with_python_literals_judged_turn_and_two_judges(tmp_path):
    def conv(q, first, second):
        return str([{"content": q, "role": "user"}, {"content": first, "role": "assistant"},
                    {"content": "And why?\nExplain.", "role": "user"}, {"content": second, "role": "assistant"}])
    rows = pd.DataFrame({
        "question_id": [1, 2, 3],
        "model_a": ["a", "b", "c"], "model_b": ["d", "e", "f"],
        "conversation_a": [conv(QUESTIONS[0], GOOD[0], "Heat.\nThat's all."), conv(QUESTIONS[1], BAD[1], "Because."),
                           str([(  "USER", QUESTIONS[2]), ("ASSISTANT", GOOD[2])])],
        "conversation_b": [conv(QUESTIONS[0], BAD[0], "No idea."), conv(QUESTIONS[1], GOOD[1], "It is so.\nTruly."),
                           str([("USER", QUESTIONS[2]), ("ASSISTANT", BAD[2])])],
        "winner": ["model_a", "model_b", "model_a"], "judge": ["expert", "expert", "gpt4"], "turn": [1, 2, 1],
    })
    rows.to_csv(tmp_path / "mt_bench.csv", index=False)
    table = load_pairs(tmp_path / "mt_bench.csv")
    assert table.pairs["prompt"].tolist() == [f"User: {QUESTIONS[0]}", f"User: {QUESTIONS[1]}", f"User: {QUESTIONS[2]}"]
    assert table.pairs["chosen"].iloc[0] == GOOD[0]  # turn 1 judged: the second turn is cut
    assert table.pairs["chosen"].iloc[1] == f"Assistant: {GOOD[1]}\n\nUser: And why?\nExplain.\n\nAssistant: It is so.\nTruly."
    assert table.pairs[["chosen", "rejected"]].iloc[2].tolist() == [GOOD[2], BAD[2]]
    assert "\\n" not in "".join(table.pairs["chosen"]) and "('USER'" not in "".join(table.pairs["prompt"])
    merged = rows.rename(columns={"winner": "winner_x"}).assign(winner_y=["model_b", "model_b", "tie"])
    merged.to_csv(tmp_path / "merged.csv", index=False)
    with pytest.raises(DataError, match="several: winner_x, winner_y.*--column-mapping '\\{\"winner\": \"winner_x\"\\}'"):
        load_pairs(tmp_path / "merged.csv")
    second_judge = load_pairs(tmp_path / "merged.csv", mapping={"winner": "winner_y"})
    assert second_judge.pairs["chosen"].tolist() == [BAD[0], f"Assistant: {GOOD[1]}\n\nUser: And why?\nExplain.\n\n"
                                                              "Assistant: It is so.\nTruly."]
    assert second_judge.report.ties_dropped == 1


def test_openai_content_parts_and_spaces_in_column_names(tmp_path):
    rows = [{"the question": q, "good answer": [{"role": "assistant", "content": [{"type": "text", "text": g}]}],
             "bad answer": [{"role": "assistant", "content": [{"type": "text", "text": b}]}]} for q, g, b in EXPECTED]
    path = write_jsonl(tmp_path / "openai.jsonl", rows)
    table = load_pairs(path, mapping={"prompt": "the question", "chosen": "good answer", "rejected": "bad answer"})
    assert_right(table, EXPECTED)


# ---------------------------------------------------------------------------------------------------------
# Never a silent side


def test_numeric_verdicts_without_a_convention_are_refused_with_counts(tmp_path):
    rows = [{"q": q, "left": g, "right": b, "label": v} for (q, g, b), v in zip(EXPECTED * 3, [0, 1, 2] * 4)]
    path = write_jsonl(tmp_path / "judged.jsonl", rows)
    with pytest.raises(DataError) as caught:
        load_pairs(path, mapping={"prompt": "q", "response_a": "left", "response_b": "right", "winner": "label"})
    message = str(caught.value)
    assert "\n" not in message and "values: 0: 4, 1: 4, 2: 4" in message
    assert '"a_wins": 0, "b_wins": 1, "tie": 2' in message and "--column-mapping" in message


@pytest.mark.parametrize("seed", range(12))
def test_random_verdict_encodings_never_put_a_pair_on_the_wrong_side(tmp_path, seed):
    rng = random.Random(seed)
    spellings = rng.choice([(0, 1, 2), (1, 2, 0), (2, 1, 0), ("x", "y", "z"), (1, 0, 3), (7, 3, 5), ("1", "2", "0")])
    a_value, b_value, tie_value = spellings
    rows, truth = [], []
    for i in range(30):
        q, g, b = f"question {i}?", f"good {i}", f"bad {i}"
        outcome = rng.choice("abt")
        if outcome == "a":
            rows.append({"q": q, "first": g, "second": b, "verdict": a_value})
        elif outcome == "b":
            rows.append({"q": q, "first": b, "second": g, "verdict": b_value})
        else:
            rows.append({"q": q, "first": g, "second": b, "verdict": tie_value})
        truth.append(outcome)
    path = write_jsonl(tmp_path / "v.jsonl", rows)
    base = {"prompt": "q", "response_a": "first", "response_b": "second", "winner": "verdict"}
    table = load_pairs(path, mapping={**base, "a_wins": a_value, "b_wins": b_value, "tie": tie_value})
    assert len(table.pairs) == sum(t != "t" for t in truth)
    assert all(c.startswith("good") and r.startswith("bad") for c, r in zip(table.pairs["chosen"], table.pairs["rejected"]))
    if all(isinstance(v, int) or str(v).isdigit() for v in spellings):
        with pytest.raises(DataError, match="values: "):
            load_pairs(path, mapping=base)


def test_a_user_verdict_column_drops_the_conventions_values(tmp_path):
    rows = [{"output_1": g, "output_2": b, "preference": 1, "my_label": 0, "instruction": q} for q, g, b in EXPECTED]
    path = write_jsonl(tmp_path / "alpaca.jsonl", rows)
    with pytest.raises(DataError, match="my_label"):
        load_pairs(path, mapping={"winner": "my_label"})


# ---------------------------------------------------------------------------------------------------------
# Files people download (issue 20): each loads to the same pairs as its plain JSON lines twin


PLAIN = [{"prompt": q, "chosen": g, "rejected": b} for q, g, b in EXPECTED]


def plain_pairs(tmp_path):
    return load_pairs(write_jsonl(tmp_path / "plain.jsonl", PLAIN)).pairs[["pair_id", "prompt", "chosen", "rejected"]]


@pytest.mark.parametrize("name,compress", [("p.jsonl.gz", gzip.compress), ("p.jsonl.bz2", bz2.compress),
                                           ("p.json.xz", lzma.compress), ("p.csv.gz", gzip.compress)])
def test_compressed_files_load_like_the_plain_file(tmp_path, name, compress):
    if ".csv" in name:
        raw = pd.DataFrame(PLAIN).to_csv(index=False).encode()
    elif ".json." in name:
        raw = json.dumps(PLAIN).encode()
    else:
        raw = "".join(json.dumps(r) + "\n" for r in PLAIN).encode()
    (tmp_path / name).write_bytes(compress(raw))
    pd.testing.assert_frame_equal(load_pairs(tmp_path / name).pairs[["pair_id", "prompt", "chosen", "rejected"]],
                                  plain_pairs(tmp_path))


def test_tsv_wrapped_json_null_prompts_and_shards(tmp_path):
    expected = plain_pairs(tmp_path)
    pd.DataFrame(PLAIN).to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    pd.testing.assert_frame_equal(load_pairs(tmp_path / "p.tsv").pairs[expected.columns], expected)
    for key in ("data", "train", "rows"):
        (tmp_path / f"{key}.json").write_text(json.dumps({key: PLAIN, "version": 2}))
        table = load_pairs(tmp_path / f"{key}.json")
        pd.testing.assert_frame_equal(table.pairs[expected.columns], expected)
        assert f"read the rows under the JSON object's key {key!r} (4 rows)" in table.report.notes
    shards = tmp_path / "repo" / "data"
    shards.mkdir(parents=True)
    for i in range(2):
        pd.DataFrame(PLAIN[2 * i:2 * i + 2]).to_parquet(shards / f"train-0000{i}-of-00002.parquet")
    pd.DataFrame(PLAIN[:1]).to_parquet(shards / "test-00000-of-00001.parquet")
    for source in (tmp_path / "repo", str(shards / "train-*.parquet")):
        table = load_pairs(source)
        pd.testing.assert_frame_equal(table.pairs[expected.columns], expected)
    nulls = [dict(r, prompt=None) for r in PLAIN]
    table = load_pairs(write_jsonl(tmp_path / "nulls.jsonl", nulls))
    assert table.pairs["prompt"].tolist() == [""] * 4 and table.n_skipped == 0


def test_corrupt_gzip_and_two_lists_are_one_line_errors(tmp_path):
    (tmp_path / "bad.jsonl.gz").write_bytes(gzip.compress(b'{"prompt": "x"}\n')[:15])
    with pytest.raises(DataError, match=r"^bad.jsonl.gz: corrupt or truncated gz file"):
        load_pairs(tmp_path / "bad.jsonl.gz")
    (tmp_path / "two.json").write_text(json.dumps({"train": PLAIN, "test": PLAIN}))
    with pytest.raises(DataError, match=r"^two.json: the JSON object holds several lists of rows \('train', 'test'\)"):
        load_pairs(tmp_path / "two.json")


# ---------------------------------------------------------------------------------------------------------
# Errors that teach


def test_unrecognised_judgment_columns_propose_the_mapping(tmp_path):
    rows = [{"query": q, "answer_1": g, "answer_2": b, "choice": 1} for q, g, b in EXPECTED]
    with pytest.raises(DataError) as caught:
        load_pairs(write_jsonl(tmp_path / "j.jsonl", rows))
    message = str(caught.value)
    assert "columns: query, answer_1, answer_2, choice" in message
    assert '"prompt": "query", "response_a": "answer_1", "response_b": "answer_2", "winner": "choice"' in message
    assert "--column-mapping" in message and "column_mapping" in message


def test_unknown_mapping_key_lists_the_valid_keys_and_id_is_accepted(tmp_path):
    from normbt_viz.data.sources import ColumnMapping
    from normbt_viz.errors import SpecError

    with pytest.raises(SpecError, match="valid keys: prompt, chosen, rejected, category, margin, pair_id"):
        ColumnMapping.from_dict({"answer": "x"})
    assert ColumnMapping.from_dict({"id": "uid"}).pair_id == "uid"


def test_a_mapped_column_the_demo_lacks_is_an_error():
    with pytest.raises(DataError, match="demo data: mapped column 'question' for prompt not found"):
        load_pairs("demo", demo_size=20, mapping={"prompt": "question"})


# ---------------------------------------------------------------------------------------------------------
# The load's story: printed by train, kept in the run directory, shown on the Data and Runs pages


def test_train_prints_the_load_report_and_keeps_it_in_the_run(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from normbt_viz.cli import main
    from normbt_viz.runs.rundir import list_runs

    labels = [0, 1, 2, 0, 1, 0, 1, 0]
    rows = [{"scenario": "chat", "prompt": f"question {i}?", "response 1": f"first answer {i}",
             "response 2": f"second answer {i}", "label": label} for i, label in enumerate(labels)]
    path = write_jsonl(tmp_path / "autoj.json", rows)
    runs = tmp_path / "runs"
    code = main(["train", "--dataset", str(path), "--runs", str(runs), "--max-steps", "2", "--batch-size", "2",
                 "--diagnostics", "off", "--eval-every", "2"])
    err = capsys.readouterr().err
    assert code == 0
    assert "data: 7 pair(s) from 8 row(s)" in err
    assert "label 0 → response 1 wins (4), 1 → response 2 wins (3), 2 → tie, dropped (1)" in err
    assert "max length: 16 tokens, chosen to cover 95% of the pairs (0 still truncated" in err
    assert "truncation: 0 of 7 pair(s) exceed max length 16" in err
    (run,) = list_runs(runs)
    saved = run.load_report()
    assert saved["pairs_formed"] == 7 and saved["ties_dropped"] == 1 and saved["truncated"] == 0

    root = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("NORMBT_VIZ_RUNS", str(runs))
    at = AppTest.from_file(str(root / "pages" / "3_Runs.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = "\n".join(t.value for t in at.text)
    assert "label 0 → response 1 wins (4)" in shown and "ties: 1 row(s) with no winner dropped" in shown

    at = AppTest.from_file(str(root / "pages" / "2_Data.py"), default_timeout=60)
    at.session_state["source_kind"] = "Local path"
    at.session_state["local_path"] = str(path)
    at.run()
    assert not at.exception and not at.error
    shown = "\n".join(t.value for t in at.text)
    assert "data: 7 pair(s) from 8 row(s)" in shown and "2 → tie, dropped (1)" in shown


# ---------------------------------------------------------------------------------------------------------
# Bad input refused before a run directory exists


@pytest.mark.parametrize("case", ["identical for the backbone", "mapping on demo", "corrupt gz", "two lists"])
def test_refused_before_any_run_directory(tmp_path, capsys, case):
    from normbt_viz.cli import main

    args = []
    if case == "identical for the backbone":  # MiniLM is uncased: answers that differ only in case are one input
        rows = [{"prompt": q, "chosen": g.upper(), "rejected": g.lower()} for q, g, _ in EXPECTED]
        args = ["--dataset", str(write_jsonl(tmp_path / "cased.jsonl", rows))]
        expected = "has identical chosen and rejected inputs for backbone 'minilm': nothing to train on"
    elif case == "mapping on demo":
        args = ["--dataset", "demo", "--demo-size", "20", "--column-mapping", '{"prompt": "question"}']
        expected = "demo data: mapped column 'question' for prompt not found"
    elif case == "corrupt gz":
        (tmp_path / "bad.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
        args = ["--dataset", str(tmp_path / "bad.jsonl.gz")]
        expected = "bad.jsonl.gz: corrupt or truncated gz file"
    else:
        (tmp_path / "two.json").write_text(json.dumps({"a": PLAIN, "b": PLAIN}))
        args = ["--dataset", str(tmp_path / "two.json")]
        expected = "two.json: the JSON object holds several lists of rows ('a', 'b')"
    runs = tmp_path / "runs"
    code = main(["train", "--runs", str(runs), "--max-steps", "2", "--batch-size", "2", *args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and expected in lines[0], err
    assert not runs.exists()


def test_the_data_command_prints_the_story_and_writes_trl_pairs(tmp_path, capsys):
    from normbt_viz.cli import main

    rows = [{"scenario": "chat", "prompt": q, "response 1": b, "response 2": g, "label": 1} for q, g, b in EXPECTED]
    path = write_jsonl(tmp_path / "autoj.json", rows)
    out = tmp_path / "pairs.jsonl"
    assert main(["data", "--dataset", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "data: 4 pair(s) from 4 row(s)" in printed and "1 → response 2 wins (4)" in printed
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in written] == EXPECTED
    assert set(written[0]) == {"prompt", "chosen", "rejected", "pair_id", "category"}  # scenario is the category
    assert_right(load_pairs(out), EXPECTED)  # the written file loads back to the same pairs
    assert main(["data", "--dataset", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: no such file: {tmp_path / 'missing.jsonl'}"


def test_lmsys_arena_55k_one_hot_winners_and_json_list_turns(tmp_path):
    rows = [{"id": i, "model_a": "m1", "model_b": "m2", "prompt": json.dumps([q]),
             "response_a": json.dumps([g if won == "a" else b]), "response_b": json.dumps([b if won == "a" else g]),
             "winner_model_a": int(won == "a"), "winner_model_b": int(won == "b"), "winner_tie": int(won == "t")}
            for i, ((q, g, b), won) in enumerate(zip(EXPECTED, "abat"))]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    table = load_pairs(tmp_path / "train.csv")
    assert_right(table, EXPECTED[:3])
    assert table.report.ties_dropped == 1 and "one-hot verdict columns" in " ".join(table.notes)
    assert not any(ch in "".join(table.pairs["chosen"]) for ch in '[]"')


def test_merged_judges_propose_sibling_columns(tmp_path):
    rows = [{"conversation_a_x": "x", "conversation_a_y": "y", "conversation_b_x": "x2", "winner_x": "model_a"}]
    with pytest.raises(DataError, match='"response_a": "conversation_a_x", "response_b": "conversation_b_x"'):
        load_pairs(write_jsonl(tmp_path / "m.jsonl", rows))


# ---------------------------------------------------------------------------------------------------------
# Real data (../shared/data, beside the repository; absent in a user's clone)


def shared_data_file(name):
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / name
    if not path.is_file():
        pytest.skip(f"real data not present ({path})")
    return path


def test_real_hh_rlhf_harmless_base_loads_with_its_story():
    from normbt_viz.model.lengths import survey_lengths

    table = load_pairs(shared_data_file("hh_rlhf_harmless_base_test.jsonl"))
    report = table.report
    assert (table.format, report.rows_read, report.pairs_formed, report.rows_skipped) == ("implicit", 2312, 2308, 4)
    assert report.skip_reasons == {"empty or whitespace-only response after splitting off the shared prompt": 4}
    assert table.pairs["prompt"].str.endswith("\n\nAssistant:").all()
    survey = survey_lengths(table.pairs, "minilm")
    assert survey.truncated_at(128) == 1266  # README: 55% of the pairs exceed 128 MiniLM tokens


def test_data_page_offers_the_mapping_under_an_ambiguous_verdict(tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("NORMBT_VIZ_RUNS", str(tmp_path / "runs"))
    rows = [{"q": q, "left": g if v == 0 else b, "right": b if v == 0 else g, "label": v}
            for (q, g, b), v in zip(EXPECTED, [0, 1, 0, 1])]
    path = write_jsonl(tmp_path / "judged.jsonl", rows)
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "2_Data.py"), default_timeout=60)
    at.session_state["source_kind"] = "Local path"
    at.session_state["local_path"] = str(path)
    at.session_state["column_mapping"] = {"prompt": "q", "response_a": "left", "response_b": "right", "winner": "label"}
    at.run()
    assert len(at.error) == 1 and "values: 0: 2, 1: 2" in at.error[0].value
    at.text_input(key="map_a_wins").input("0")
    at.text_input(key="map_b_wins").input("1")
    at.button[0].click()
    at.run()
    assert not at.error and not at.exception, [e.value for e in at.error]
    assert "label 0 → left wins (2), 1 → right wins (2)" in "\n".join(t.value for t in at.text)


def test_every_mapping_key_has_help_and_the_spec_names_them_all():
    import dataclasses

    from normbt_viz.data.formats.mapping import MAPPING_KEYS, ColumnMapping
    from normbt_viz.spec import RunSpec

    assert [f.name for f in dataclasses.fields(ColumnMapping)] == list(MAPPING_KEYS)
    assert all(MAPPING_KEYS.values())
    spec_help = next(f for f in dataclasses.fields(RunSpec) if f.name == "column_mapping").metadata["help"]
    assert all(key in spec_help for key in MAPPING_KEYS)


def test_alpacaeval_fractional_preferences_lean_to_the_nearer_side_and_say_so(tmp_path):
    rows = [{"instruction": q, "output_1": g if p < 1.5 else b, "output_2": b if p < 1.5 else g, "preference": p}
            for (q, g, b), p in zip(EXPECTED, [1.2, 1.9, 1.0, 2.0])]
    table = load_pairs(write_jsonl(tmp_path / "alpaca_eval.json", rows))
    assert_right(table, EXPECTED)
    assert "(2 fractional value(s) between 1 and 2 counted on the nearer side)" in table.notes[0]


def test_data_page_counts_truncated_pairs_per_max_length_before_training(tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("NORMBT_VIZ_RUNS", str(tmp_path / "runs"))
    rows = [{"prompt": "word " * (20 * (i + 1)), "chosen": g, "rejected": b} for i, (_, g, b) in enumerate(EXPECTED * 5)]
    path = write_jsonl(tmp_path / "long.jsonl", rows)
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "2_Data.py"), default_timeout=60)
    at.session_state["source_kind"] = "Local path"
    at.session_state["local_path"] = str(path)
    at.run()
    at.button(key="survey_lengths").click().run()
    assert not at.exception and not at.error
    table = next(frame.value for frame in at.dataframe if "pairs_truncated" in frame.value.columns)
    counts = dict(zip(table["max_length"], table["pairs_truncated"]))
    assert counts[64] > counts[128] > counts[256] >= 0 and counts[512] == 0
    at.button(key="use_suggested_length").click().run()
    assert at.session_state["max_length"] == at.session_state["length_survey"]["suggested"] > 128


def test_a_tie_value_alone_keeps_the_spelled_sides_strict(tmp_path):
    rows = [{"q": q, "left": g, "right": b, "verdict": v} for (q, g, b), v in zip(EXPECTED, ["A", "A", "even", "?"])]
    path = write_jsonl(tmp_path / "j.jsonl", rows)
    base = {"prompt": "q", "response_a": "left", "response_b": "right", "winner": "verdict"}
    with pytest.raises(DataError, match=r"value\(s\) \? of 'verdict' have no known side"):
        load_pairs(path, mapping={**base, "tie": "even"})
    table = load_pairs(path, mapping={**base, "tie": ["even", "?"]})
    assert_right(table, EXPECTED[:2])
    assert table.report.ties_dropped == 2
