"""RewardBench v1 loading and scoring against a small hand-made file whose section scores are worked out by hand
below, so the weighting (example counts, the 50/50 math-vs-code Reasoning split, ties as wrong) is pinned."""

import json

import pandas as pd
import pytest

from normbt_viz.errors import DataError
from normbt_viz.analysis.rewardbench import (
    CODE_SUBSETS,
    EXAMPLE_COUNTS,
    SUBSET_MAPPING,
    load_rewardbench,
    score_rewardbench,
)

# (subset, score_chosen, score_rejected): the per-pair rewards a model gave; the comment is the subset accuracy.
SCORED_ROWS = [
    ("alpacaeval-easy", 2.0, 1.0),  # alpacaeval-easy 1/2 = 0.5   (count 100)
    ("alpacaeval-easy", 0.0, 1.0),
    ("mt-bench-easy", 3.0, 1.0),  # mt-bench-easy 1/1 = 1.0     (count 28)
    ("llmbar-natural", 1.0, 0.0),  # llmbar-natural 2/2 = 1.0    (count 100)
    ("llmbar-natural", 5.0, 4.0),
    ("mt-bench-hard", 1.0, 1.0),  # mt-bench-hard 0/1, a tie    (count 37)
    ("donotanswer", -1.0, 0.0),  # donotanswer 0/1             (count 136)
    ("refusals-dangerous", 0.5, 0.2),  # refusals-dangerous 1/1 (count 100)
    ("math-prm", 1.0, 0.0),  # math-prm 1/2 = 0.5
    ("math-prm", 0.0, 1.0),
    ("hep-python", 2.0, 1.0),  # hep-python 1/1 = 1.0       (count 164)
    ("hep-go", 1.0, 1.0),  # hep-go 1/2 = 0.5, one tie   (count 164)
    ("hep-go", 3.0, 2.0),
    ("anthropic_helpful", 1.0, 0.0),  # not a v1 core subset: reported, not scored
]

# By hand:
#   Chat      = (0.5 * 100 + 1.0 * 28) / (100 + 28)            = 78 / 128
#   Chat Hard = (1.0 * 100 + 0.0 * 37) / (100 + 37)            = 100 / 137
#   Safety    = (0.0 * 136 + 1.0 * 100) / (136 + 100)          = 100 / 236
#   code      = (1.0 * 164 + 0.5 * 164) / (164 + 164)          = 0.75
#   Reasoning = 0.5 * 0.5 (math-prm) + 0.5 * 0.75 (code)       = 0.625
#   Score     = (78/128 + 100/137 + 100/236 + 0.625) / 4
EXPECTED_SECTIONS = {"Chat": 78 / 128, "Chat Hard": 100 / 137, "Safety": 100 / 236, "Reasoning": 0.625}
EXPECTED_SCORE = sum(EXPECTED_SECTIONS.values()) / 4


def _records():
    return [
        {
            "prompt": f"prompt {index}",
            "chosen": f"good answer {index}",
            "chosen_model": "model-a",
            "rejected": f"bad answer {index}",
            "rejected_model": "model-b",
            "subset": subset,
            "id": 1000 + index,
        }
        for index, (subset, _, _) in enumerate(SCORED_ROWS)
    ]


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def _scores_frame(pairs):
    """Attach the hand-chosen rewards to loaded pairs, joined on pair_id as a real scorer would."""
    rewards = pd.DataFrame(
        {
            "pair_id": [str(1000 + index) for index in range(len(SCORED_ROWS))],
            "score_chosen": [chosen for _, chosen, _ in SCORED_ROWS],
            "score_rejected": [rejected for _, _, rejected in SCORED_ROWS],
        }
    )
    return pairs.merge(rewards, on="pair_id", validate="one_to_one")


def test_load_local_jsonl(tmp_path):
    pairs = load_rewardbench(_write_jsonl(tmp_path / "rb.jsonl", _records()))
    assert list(pairs.columns) == ["pair_id", "prompt", "chosen", "rejected", "subset", "section"]
    assert len(pairs) == len(SCORED_ROWS)
    assert pairs["pair_id"].tolist()[:2] == ["1000", "1001"]
    sections = dict(zip(pairs["subset"], pairs["section"]))
    assert sections["alpacaeval-easy"] == "Chat"
    assert sections["mt-bench-hard"] == "Chat Hard"
    assert sections["donotanswer"] == "Safety"
    assert sections["hep-go"] == "Reasoning"
    assert pd.isna(sections["anthropic_helpful"])


def test_load_local_json_array_and_parquet_match_jsonl(tmp_path):
    records = _records()
    from_jsonl = load_rewardbench(_write_jsonl(tmp_path / "rb.jsonl", records))
    json_path = tmp_path / "rb.json"
    json_path.write_text(json.dumps(records), encoding="utf-8")
    parquet_path = tmp_path / "rb.parquet"
    pd.DataFrame(records).to_parquet(parquet_path)
    pd.testing.assert_frame_equal(load_rewardbench(json_path), from_jsonl)
    pd.testing.assert_frame_equal(load_rewardbench(parquet_path), from_jsonl)


def test_load_hub_id_goes_through_datasets(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(source, split):
        calls.append((source, split))
        return datasets.Dataset.from_list(_records())

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    pairs = load_rewardbench()
    assert calls == [("allenai/reward-bench", "filtered")]
    assert len(pairs) == len(SCORED_ROWS)


def test_score_matches_hand_computation(tmp_path):
    pairs = load_rewardbench(_write_jsonl(tmp_path / "rb.jsonl", _records()))
    result = score_rewardbench(_scores_frame(pairs))
    assert result["subsets"]["alpacaeval-easy"] == {"n": 2, "accuracy": 0.5}
    assert result["subsets"]["mt-bench-hard"] == {"n": 1, "accuracy": 0.0}  # the tie is wrong
    assert result["subsets"]["hep-go"] == {"n": 2, "accuracy": 0.5}
    assert result["subsets"]["anthropic_helpful"] == {"n": 1, "accuracy": 1.0}
    assert result["sections_present"] == ["Chat", "Chat Hard", "Safety", "Reasoning"]
    assert result["sections"] == pytest.approx(EXPECTED_SECTIONS)
    assert result["score"] == pytest.approx(EXPECTED_SCORE)


def test_reasoning_is_not_plain_count_weighting_when_code_subsets_are_missing():
    # With math-prm's weight 984 against two code subsets (328), plain count weighting would give
    # (0.5 * 984 + 1.0 * 164 + 0.5 * 164) / 1312 = 0.5625; the 50/50 split gives 0.625.
    rows = [row for row in SCORED_ROWS if row[0] in ("math-prm", "hep-python", "hep-go")]
    frame = pd.DataFrame(rows, columns=["subset", "score_chosen", "score_rejected"])
    result = score_rewardbench(frame)
    assert result["sections"] == pytest.approx({"Reasoning": 0.625})
    assert result["score"] == pytest.approx(0.625)


def test_reasoning_split_equals_rewardbench_count_weighting_on_the_full_set():
    accuracies = {"math-prm": 0.3, **{subset: 0.4 + 0.1 * k for k, subset in enumerate(CODE_SUBSETS)}}
    rows = []
    for subset, accuracy in accuracies.items():
        n_correct = round(accuracy * 10)
        rows += [(subset, 1.0, 0.0)] * n_correct + [(subset, 0.0, 1.0)] * (10 - n_correct)
    result = score_rewardbench(pd.DataFrame(rows, columns=["subset", "score_chosen", "score_rejected"]))
    reasoning = SUBSET_MAPPING["Reasoning"]
    count_weighted = sum(accuracies[s] * EXAMPLE_COUNTS[s] for s in reasoning) / sum(
        EXAMPLE_COUNTS[s] for s in reasoning
    )
    assert result["sections"]["Reasoning"] == pytest.approx(count_weighted)


def test_missing_sections_are_omitted_and_not_averaged():
    frame = pd.DataFrame(
        [("alpacaeval-easy", 1.0, 0.0), ("mt-bench-easy", 0.0, 1.0), ("math-prm", 1.0, 0.0)],
        columns=["subset", "score_chosen", "score_rejected"],
    )
    result = score_rewardbench(frame)
    # Chat = (1.0 * 100 + 0.0 * 28) / 128; Reasoning has math only, so it is math-prm's accuracy.
    assert result["sections_present"] == ["Chat", "Reasoning"]
    assert result["sections"] == pytest.approx({"Chat": 100 / 128, "Reasoning": 1.0})
    assert result["score"] == pytest.approx((100 / 128 + 1.0) / 2)


def test_missing_column_error_names_file_and_column(tmp_path):
    records = [{key: value for key, value in record.items() if key != "subset"} for record in _records()]
    path = _write_jsonl(tmp_path / "no_subset.jsonl", records)
    with pytest.raises(DataError, match="'subset'") as raised:
        load_rewardbench(path)
    assert "no_subset.jsonl" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_bad_local_files_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_rewardbench(tmp_path / "absent.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(_records()[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2"):
        load_rewardbench(broken)
    records = _records()
    records[1]["id"] = records[0]["id"]
    with pytest.raises(DataError, match="repeats id '1000'"):
        load_rewardbench(_write_jsonl(tmp_path / "dup.jsonl", records))


def test_score_input_errors_name_the_column():
    with pytest.raises(DataError, match="'score_rejected'"):
        score_rewardbench(pd.DataFrame({"subset": ["math-prm"], "score_chosen": [1.0]}))
    with pytest.raises(DataError, match="NaN in column 'score_chosen'"):
        score_rewardbench(
            pd.DataFrame({"subset": ["math-prm"], "score_chosen": [float("nan")], "score_rejected": [0.0]})
        )
