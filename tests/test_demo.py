"""Tests for the synthetic demo pair generator (normbt_viz.data.demo)."""

from __future__ import annotations

import difflib
import math
import re

import pandas as pd
import pytest

from normbt_viz.data.demo import DEMO_CATEGORIES, DEMO_MAX_DISTINCT, generate_demo_pairs
from normbt_viz.errors import SpecError

COLUMNS = ["pair_id", "prompt", "chosen", "rejected", "category", "flipped"]
PAIR_ID = re.compile(r"^demo-(reasoning|chat|chat_hard|safety)-\d{5}$")
NUMBER = re.compile(r"\d+")


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    return generate_demo_pairs(DEMO_MAX_DISTINCT, noise_rate=0.0, seed=0)


def _mean_ratio(frame: pd.DataFrame) -> float:
    ratios = [difflib.SequenceMatcher(None, c, r).ratio() for c, r in zip(frame["chosen"], frame["rejected"])]
    return sum(ratios) / len(ratios)


def test_contract_constants():
    assert DEMO_CATEGORIES == ("reasoning", "chat", "chat_hard", "safety")
    assert isinstance(DEMO_MAX_DISTINCT, int) and DEMO_MAX_DISTINCT >= 2000


def test_columns_and_types():
    df = generate_demo_pairs(40, noise_rate=0.1, seed=3)
    assert list(df.columns) == COLUMNS
    assert len(df) == 40
    assert df["flipped"].dtype == bool
    for col in ["pair_id", "prompt", "chosen", "rejected", "category"]:
        assert all(isinstance(v, str) and v.strip() for v in df[col]), col
    assert set(df["category"]) <= set(DEMO_CATEGORIES)
    assert df["pair_id"].is_unique
    for pid, cat in zip(df["pair_id"], df["category"]):
        m = PAIR_ID.match(pid)
        assert m and m.group(1) == cat, pid


def test_deterministic_and_seed_sensitive():
    a = generate_demo_pairs(300, noise_rate=0.2, seed=11)
    b = generate_demo_pairs(300, noise_rate=0.2, seed=11)
    pd.testing.assert_frame_equal(a, b)
    c = generate_demo_pairs(300, noise_rate=0.2, seed=12)
    assert not a.equals(c)
    # Different content, not just a different order.
    triples = lambda f: set(zip(f["prompt"], f["chosen"], f["rejected"]))  # noqa: E731
    assert triples(a) != triples(c)


def test_global_random_state_is_not_used():
    import random

    random.seed(1)
    a = generate_demo_pairs(100, seed=5)
    random.seed(2)
    b = generate_demo_pairs(100, seed=5)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 401, 1002])
def test_categories_balanced(n):
    df = generate_demo_pairs(n, seed=1)
    counts = df["category"].value_counts().reindex(DEMO_CATEGORIES, fill_value=0)
    assert counts.sum() == n
    assert counts.max() - counts.min() <= 1
    if n >= len(DEMO_CATEGORIES):
        assert (counts > 0).all()


def test_rows_are_shuffled_not_blocked():
    df = generate_demo_pairs(400, seed=0)
    first = df["category"].iloc[:40]
    assert first.nunique() > 1


def test_max_distinct_pairs_are_distinct(full):
    assert len(full) == DEMO_MAX_DISTINCT >= 2000
    triples = list(zip(full["prompt"], full["chosen"], full["rejected"]))
    assert len(set(triples)) == len(triples)
    assert (full["chosen"] != full["rejected"]).all()
    for col in ["prompt", "chosen", "rejected"]:
        assert (full[col].str.strip().str.len() > 0).all(), col
    counts = full["category"].value_counts()
    assert counts.max() - counts.min() <= 1
    # Variety within categories, not just distinct strings from a handful of templates.
    assert full.loc[full["category"] == "chat", "prompt"].nunique() >= 60
    assert full.loc[full["category"] == "safety", "prompt"].nunique() >= 60


def test_texts_are_short(full):
    # A small encoder at 128 tokens should see prompt and answer whole.
    for col in ["prompt", "chosen", "rejected"]:
        words = full[col].str.split().str.len()
        assert words.max() <= 90, (col, full.loc[words.idxmax(), col])


def test_prefix_stable_across_n():
    small = generate_demo_pairs(200, seed=4).set_index("pair_id").sort_index()
    big = generate_demo_pairs(800, seed=4).set_index("pair_id")
    pd.testing.assert_frame_equal(small, big.loc[small.index])


@pytest.mark.parametrize("n,rate", [(1000, 0.0), (1000, 0.1), (1000, 0.2), (37, 0.1), (37, 0.5), (1, 0.5)])
def test_exact_flip_count(n, rate):
    df = generate_demo_pairs(n, noise_rate=rate, seed=2)
    assert int(df["flipped"].sum()) == round(rate * n)


def test_flipped_pairs_are_swapped_relative_to_clean():
    clean = generate_demo_pairs(1000, noise_rate=0.0, seed=9)
    noisy = generate_demo_pairs(1000, noise_rate=0.2, seed=9)
    assert not clean["flipped"].any()
    assert list(clean["pair_id"]) == list(noisy["pair_id"])
    clean, noisy = clean.set_index("pair_id"), noisy.set_index("pair_id")
    flipped = noisy["flipped"]
    assert flipped.sum() == 200
    f, k = flipped[flipped].index, flipped[~flipped].index
    assert (noisy.loc[f, "chosen"] == clean.loc[f, "rejected"]).all()
    assert (noisy.loc[f, "rejected"] == clean.loc[f, "chosen"]).all()
    assert (noisy.loc[k, ["prompt", "chosen", "rejected", "category"]]
            == clean.loc[k, ["prompt", "chosen", "rejected", "category"]]).all().all()
    assert (noisy["prompt"] == clean["prompt"]).all()
    # The noise picks pairs from every category, not one block.
    assert noisy.loc[f, "category"].nunique() == len(DEMO_CATEGORIES)


def test_reasoning_pairs_closer_than_chat():
    df = generate_demo_pairs(800, seed=0)
    by_cat = {c: _mean_ratio(df[df["category"] == c]) for c in DEMO_CATEGORIES}
    assert by_cat["reasoning"] > by_cat["chat"] + 0.3
    assert by_cat["reasoning"] > by_cat["chat_hard"]
    assert by_cat["reasoning"] > by_cat["safety"]
    assert by_cat["reasoning"] > 0.9


def test_reasoning_rejected_changes_one_step_only():
    df = generate_demo_pairs(800, seed=6)
    reasoning = df[df["category"] == "reasoning"]
    for chosen, rejected in zip(reasoning["chosen"], reasoning["rejected"]):
        a, b = NUMBER.findall(chosen), NUMBER.findall(rejected)
        assert len(a) == len(b)
        diffs = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        # Either only the stated result is wrong, or the last step and the result that follows it.
        assert len(diffs) in (1, 2), (chosen, rejected)
        assert diffs[-1] == len(a) - 1
        # Words are untouched: only numbers differ.
        assert NUMBER.sub("#", chosen) == NUMBER.sub("#", rejected)


def test_chat_hard_constraints_hold(full):
    hard = full[full["category"] == "chat_hard"]
    seen = set()
    for prompt, chosen, rejected in zip(hard["prompt"], hard["chosen"], hard["rejected"]):
        if "bullet" in prompt:
            seen.add("bullets")
            count = lambda t: sum(1 for line in t.splitlines() if line[:2] in ("- ", "* ", "• "))  # noqa: E731
            assert count(chosen) == 3 and count(rejected) != 3, (prompt, chosen, rejected)
        elif "lowercase" in prompt:
            seen.add("lowercase")
            assert chosen == chosen.lower() and rejected != rejected.lower()
        elif m := re.search(r"(?:under|fewer than|less than) (\d+) words", prompt):
            seen.add("length")
            k = int(m.group(1))
            assert len(chosen.split()) < k < len(rejected.split()), (prompt, chosen, rejected)
        elif "French" in prompt or "français" in prompt:
            seen.add("french")
            # The French answer shares no sentence with the one that drifted into English.
            assert chosen.split(". ")[-1] != rejected.split(". ")[-1]
        elif "year" in prompt:
            seen.add("year")
            assert re.search(r"\b\d{4}\b", chosen) and not re.search(r"\b\d{4}\b", rejected)
        else:
            pytest.fail(f"unrecognised chat_hard prompt: {prompt}")
    assert seen == {"bullets", "lowercase", "length", "year", "french"}


@pytest.mark.parametrize("kwargs,param", [
    ({"n_pairs": 0}, "n_pairs"),
    ({"n_pairs": -5}, "n_pairs"),
    ({"n_pairs": DEMO_MAX_DISTINCT + 1}, "n_pairs"),
    ({"n_pairs": 10.5}, "n_pairs"),
    ({"n_pairs": True}, "n_pairs"),
    ({"n_pairs": "100"}, "n_pairs"),
    ({"noise_rate": -0.01}, "noise_rate"),
    ({"noise_rate": 0.51}, "noise_rate"),
    ({"noise_rate": math.nan}, "noise_rate"),
    ({"noise_rate": math.inf}, "noise_rate"),
    ({"noise_rate": "0.1"}, "noise_rate"),
    ({"noise_rate": True}, "noise_rate"),
    ({"seed": 1.5}, "seed"),
    ({"seed": "abc"}, "seed"),
])
def test_bad_arguments_raise_spec_error(kwargs, param):
    with pytest.raises(SpecError) as info:
        generate_demo_pairs(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{param}=")
    assert "\n" not in message
    assert "expected" in message


def test_boundary_arguments_accepted():
    assert len(generate_demo_pairs(1, noise_rate=0.5, seed=0)) == 1
    df = generate_demo_pairs(10, noise_rate=0.5, seed=-3)
    assert int(df["flipped"].sum()) == 5
