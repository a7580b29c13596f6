"""The audit's trust on real-shaped data: antisymmetric pair features beside h, a preference that follows length
learnt in either direction, the self-check against a length rule and cleanlab, a reason on every flag, and the
summary opening with how far to trust the flags. Real HH-RLHF rows where ../shared/data exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from normbt_viz.audit.pair_features import pair_feature_frame, refusal_marker
from normbt_viz.audit.scoring import audit_pairs, auroc
from normbt_viz.audit.selfcheck import cleanlab_scores, length_rule
from normbt_viz.audit.spec import AuditConfig
from normbt_viz.audit.summary import audit_markdown

HH = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh_rlhf_harmless_base_test.jsonl"
WORDS = "the quick answer names each step and gives a reason with an example for the user".split()


def length_world(n: int, prefers_longer: bool, flip_rate: float, seed: int = 0):
    """Pairs whose only signal is length (h is noise), labelled by the side the raters prefer, with known flips."""
    rng = np.random.default_rng(seed)
    long_n, short_n = rng.integers(25, 60, n), rng.integers(3, 15, n)
    long_text = [" ".join(rng.choice(WORDS, k)) for k in long_n]
    short_text = [" ".join(rng.choice(WORDS, k)) for k in short_n]
    chosen, rejected = (long_text, short_text) if prefers_longer else (short_text, long_text)
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.choice(n, int(flip_rate * n), replace=False)] = True
    chosen, rejected = np.where(flipped, rejected, chosen), np.where(flipped, chosen, rejected)
    pairs = pd.DataFrame({"pair_id": [f"p{i}" for i in range(n)], "source_row": np.arange(n), "category": "all",
                          "prompt": "Explain it.", "chosen": chosen, "rejected": rejected,
                          "identical": False, "flipped": flipped})
    h_c, h_r = torch.randn(n, 16, generator=torch.Generator().manual_seed(seed)), torch.randn(n, 16)
    return pairs, h_c, h_r


def test_pair_features_are_antisymmetric_and_constant_columns_are_dropped():
    pairs, _, _ = length_world(60, True, 0.0)
    swapped = pairs.rename(columns={"chosen": "rejected", "rejected": "chosen"})
    forward, backward = pair_feature_frame(pairs), pair_feature_frame(swapped)
    assert "log_words_ratio" in forward and "refusal_diff" not in forward  # no refusals: nothing to fit
    np.testing.assert_allclose(forward.to_numpy(), -backward[forward.columns].to_numpy())
    assert refusal_marker(pd.Series(["I'm sorry, I can't help with that.", "Sure: step one."])).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("prefers_longer", [True, False])
def test_a_preference_that_follows_length_is_learnt_either_way_and_explained(prefers_longer):
    pairs, h_c, h_r = length_world(300, prefers_longer, 0.1)
    config = AuditConfig(dataset="x", seeds=2)
    frame, meta = audit_pairs(pairs, h_c, h_r, config, pair_features=pair_feature_frame(pairs), backbone_name="noise")
    h_only, _ = audit_pairs(pairs, h_c, h_r, AuditConfig(dataset="x", seeds=2, self_check_rate=0))
    truth = pairs["flipped"].to_numpy()
    assert auroc(frame["label_issue_score"], truth) > 0.95
    assert auroc(h_only["label_issue_score"], truth) < 0.7  # h is noise: without the pair features, nothing
    assert meta["length_prefers"] == ("longer" if prefers_longer else "shorter")
    assert meta["length_share"] > 0.5
    check = meta["self_check"]
    assert check["n_flipped"] == 15 and check["methods"]["audit"]["auroc"] > 0.8  # its negatives include the 10% flips
    assert set(check["methods"]) == {"audit", "length rule", "cleanlab"}
    flagged = frame[frame["flag_label_issue"]]
    assert len(flagged) > 10
    assert flagged["reason"].str.contains("scored against its label out of fold").all()
    assert flagged["reason"].str.contains("by the linear out-of-fold model on noise's h and").all()
    assert flagged["reason"].str.contains(f"this dataset prefers {meta['length_prefers']} answers").mean() > 0.8
    assert (frame.loc[frame["n_flags"] == 0, "reason"] == "").all()


def test_the_summary_opens_with_how_far_to_trust_the_flags():
    pairs, h_c, h_r = length_world(200, True, 0.1)
    frame, found = audit_pairs(pairs, h_c, h_r, AuditConfig(dataset="x", seeds=2), pair_features=pair_feature_frame(pairs))
    meta = {"source": "x", "format": "jsonl", "n_skipped_rows": 0, "notes": [], "feature_chunks": 1,
            "feature_chunks_cached": 0, "timings": {"features_s": 0.0, "audit_s": 0.0}, "peak_rss_mb": 1.0,
            "config": {"backbone": "noise", "max_length": 64, "folds": 5, "seeds": 2}, **found}
    text = audit_markdown(frame, meta)
    assert text.index("## How far to trust these flags on this dataset") < text.index("## Flags")
    assert "| length rule |" in text and "| cleanlab |" in text and "Verdict: the audit" in text
    assert "this dataset prefers longer answers" in text


def test_cleanlab_ranks_the_pairs_the_model_disagrees_with_first():
    p_chosen = np.array([0.9] * 20 + [0.05, 0.1])
    score = cleanlab_scores(p_chosen)
    assert set(np.argsort(-score)[:2]) == {20, 21}


@pytest.mark.skipif(not HH.is_file(), reason="../shared/data is absent (a user's clone)")
def test_real_hh_pairs_prefer_shorter_answers_and_chosen_answers_refuse_more():
    from normbt_viz.data.sources import load_pairs

    pairs = load_pairs(str(HH)).pairs
    features = pair_feature_frame(pairs)
    assert len(pairs) > 2000
    assert length_rule(features["log_words_ratio"].to_numpy())[1] == "shorter"  # the data README: 56% of pairs
    assert features["refusal_diff"].mean() > 0  # deflections are often chosen


def test_the_verdict_says_when_the_audit_is_no_better_than_a_length_rule():
    from normbt_viz.audit.summary import trust_lines

    pairs, h_c, h_r = length_world(200, False, 0.1)
    _, found = audit_pairs(pairs, h_c, h_r, AuditConfig(dataset="x", seeds=1, pair_features=False))  # h is noise
    verdict = [line for line in trust_lines(found) if line.startswith("Verdict:")]
    assert verdict and "no better than the length rule on this data" in verdict[0]
    assert "this dataset prefers shorter answers" in "\n".join(trust_lines(found))


def test_a_judge_exported_by_this_project_scores_both_answers_beside_h(tmp_path, small_decoder):
    from normbt_viz.audit.judge import judge_margins
    from normbt_viz.data.sources import load_pairs
    from normbt_viz.runs.launcher import new_run_dir
    from normbt_viz.spec import RunSpec
    from normbt_viz.train.loop import run_training

    # SmolLM2's first two blocks (real weights) as the backbone: the same export path as the whole model, in seconds.
    run = new_run_dir(tmp_path, RunSpec(backbone=str(small_decoder), demo_size=40, max_steps=2, eval_every=2, batch_size=16,
                                        max_length=64))
    assert run_training(run.spec(), run)["state"] == "done"
    export = str(run.path / "model" / "sequence_classification")
    pairs = load_pairs("demo", demo_size=30, demo_noise=0.0, demo_seed=4).pairs
    margins, cached = judge_margins(export, pairs, 64, batch_size=8)
    swapped_pairs = pairs.rename(columns={"chosen": "rejected", "rejected": "chosen"})
    # The flipped copy is served from the cache (stored in the canonical order), with each gap's sign turned.
    swapped, swapped_cached = judge_margins(export, swapped_pairs, 64, batch_size=8)
    assert not cached and swapped_cached
    np.testing.assert_allclose(margins, -swapped, atol=1e-12)
    # Scored again for real (another dtype is another cache entry): one reward per answer, the gap is antisymmetric.
    rescored, rescored_cached = judge_margins(export, swapped_pairs, 64, batch_size=8, dtype="float64")
    assert not rescored_cached
    np.testing.assert_allclose(margins, -rescored, atol=1e-4)
    assert np.abs(margins).max() > 0
    features = pair_feature_frame(pairs).assign(judge_margin=margins)
    h_c, h_r = torch.randn(30, 8), torch.randn(30, 8)
    frame, meta = audit_pairs(pairs, h_c, h_r, AuditConfig(dataset="demo", judge=export, seeds=1, folds=3,
                                                           self_check_rate=0.2), pair_features=features)
    assert "judge" in meta["scorer"] and "judge alone" in meta["self_check"]["methods"]
    np.testing.assert_allclose(frame["judge_margin"], margins)
    flagged = frame[frame["flag_label_issue"]]
    assert flagged["reason"].str.contains("the judge alone").all()


def test_the_auroc_ceiling_is_what_a_normal_margin_scorer_of_that_accuracy_reaches():
    """The self-check's ceiling Φ(√2·Φ⁻¹(a)) against a simulated scorer: margins toward each pair's true preference
    drawn normal with accuracy a, 10% of labels flipped, AUROC of "scored against its label" on the flips."""
    from normbt_viz.audit.selfcheck import auroc_ceiling

    rng = np.random.default_rng(0)
    for accuracy, mean in ((0.68, 0.4677), (0.724, 0.5948), (0.9, 1.2816)):
        margin = rng.normal(mean, 1.0, 200_000)  # Φ(mean) = accuracy
        flipped = rng.random(len(margin)) < 0.1
        score = np.where(flipped, margin, -margin)  # a flip's label disagrees with the true preference
        assert abs(auroc(score, flipped) - auroc_ceiling(accuracy)) < 0.005
    assert abs(auroc_ceiling(0.68) - 0.746) < 0.001 and abs(auroc_ceiling(0.724) - 0.800) < 0.001
    assert auroc_ceiling(0.5) == 0.5 and auroc_ceiling(1.0) > 0.999
