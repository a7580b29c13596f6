"""The audit: every pair scored out of fold with real MiniLM features, flags on planted problems, the files it
writes (audit.parquet, summary.md, the cleaned copy in the source's format), and resumable featurisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from normbt_viz.audit import scoring as A
from normbt_viz.audit.spec import FLAG_COLUMNS
from normbt_viz.cli import main
from normbt_viz.data.demo import generate_demo_pairs, hh_transcripts
from normbt_viz.data.sources import load_pairs, write_like_source
from normbt_viz.model.backbones import load_backbone
from normbt_viz.model.features import cached_representations, chunked_representations, tokenize_pairs


@pytest.fixture(autouse=True)
def cache_env(feature_cache, monkeypatch):
    monkeypatch.setenv("NORMBT_VIZ_CACHE", str(feature_cache))


def hh_file(path: Path, n: int = 120, noise: float = 0.1) -> Path:
    """An HH-RLHF-shaped JSONL file from the demo generator's text, with planted problems at the end: an
    empty last assistant turn (skipped), an exact duplicate, a copy with the opposite label, an empty-looking
    answer and an identical pair."""
    demo = generate_demo_pairs(n, noise, seed=3)
    demo = demo[demo["category"] != "reasoning"].reset_index(drop=True)  # keep it learnable at this size
    frame = hh_transcripts(demo, seed=3)
    rows = frame[["chosen", "rejected", "flipped"]].to_dict("records")
    first = dict(rows[0])
    rows.append({"chosen": "\n\nHuman: Say nothing.\n\nAssistant:", "rejected": "\n\nHuman: Say nothing.\n\nAssistant: Ok.",
                 "flipped": False})
    rows.append(dict(first))
    rows.append({"chosen": first["rejected"], "rejected": first["chosen"], "flipped": not first["flipped"]})
    rows.append({"chosen": "\n\nHuman: Any tips for sleep?\n\nAssistant: Keep a regular bedtime and a dark room.",
                 "rejected": "\n\nHuman: Any tips for sleep?\n\nAssistant: N/A", "flipped": False})
    rows.append({"chosen": "\n\nHuman: Echo this.\n\nAssistant: Echo.", "rejected": "\n\nHuman: Echo this.\n\nAssistant: Echo.",
                 "flipped": False})
    path.write_text("".join(json.dumps({"chosen": r["chosen"], "rejected": r["rejected"]}) + "\n" for r in rows))
    (path.parent / "truth.json").write_text(json.dumps([bool(r["flipped"]) for r in rows]))
    return path


def test_ranking_metrics_match_sklearn_and_count_ties_half():
    rng = np.random.default_rng(0)
    truth = rng.random(300) < 0.2
    score = np.round(rng.random(300) + truth * 0.5, 1)  # rounding makes ties
    assert A.auroc(score, truth) == pytest.approx(roc_auc_score(truth, score))
    assert A.precision_at_k(np.array([0.9, 0.8, 0.1, 0.7]), np.array([True, False, False, True]), 2) == 0.5
    assert np.isnan(A.auroc(score, np.zeros(300, dtype=bool)))


def test_folds_are_balanced_and_every_pair_is_scored_by_a_model_that_never_saw_it():
    ids = A.fold_ids(103, 5, seed=1)
    assert sorted(np.bincount(ids)) == [20, 20, 21, 21, 21]
    # Pure-noise features in more dimensions than pairs: a model fits the pairs it saw perfectly, while
    # out of fold the margins are at chance.
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(80, 100))).float()
    margins = A.oof_margins(x, folds=5, seeds=2, l2=1e-4)
    assert margins.shape == (80, 2)
    in_sample = x @ A.fit_linear_bt(x, 1e-4)
    assert (in_sample > 0).all() and 0.25 < (margins > 0).mean() < 0.75


def test_label_issue_score_finds_flips_in_a_linear_world():
    rng = np.random.default_rng(1)
    w = rng.normal(size=20)
    d = rng.normal(size=(600, 20))
    d *= np.sign(d @ w)[:, None]  # every pair correctly labelled ...
    flipped = rng.random(600) < 0.1
    d[flipped] *= -1  # ... then 10% flipped
    margins = A.oof_margins(torch.from_numpy(d).float(), folds=5, seeds=3, l2=0.01)
    score, misranked = A.label_issue_scores(margins)
    assert A.auroc(score, flipped) > 0.95
    assert misranked.shape == (600,) and set(np.unique(misranked)) <= {0, 1 / 3, 2 / 3, 1}


def test_text_flags():
    texts = pd.Series(["N/A", "  <p></p> ", "ok.", "Keep a regular bedtime.", "Yes"])
    assert A.empty_looking(texts).tolist() == [True, True, True, False, True]
    pairs = pd.DataFrame({"pair_id": ["a", "b", "c", "d"], "prompt": ["p", "p", "p", "q"],
                          "chosen": ["x", "x", "y", "x"], "rejected": ["y", "y", "x", "y"]})
    duplicate, conflict, duplicate_of = A.duplicate_flags(pairs)
    assert duplicate.tolist() == [False, True, False, False]
    assert conflict.tolist() == [True, True, True, False]
    assert duplicate_of == ["", "a", "", ""]


def test_audit_command_writes_every_file_for_an_hh_file(tmp_path, capsys):
    data = hh_file(tmp_path / "harmless-base.jsonl")
    truth = json.loads((tmp_path / "truth.json").read_text())
    out = tmp_path / "audit"
    # In-process (the CLI's own entry point) so the test does not pay for a second torch import.
    assert main(["audit", "--dataset", str(data), "--out", str(out), "--folds", "4", "--seeds", "2", "--max-length", "64"]) == 0
    result = capsys.readouterr()
    assert "skipped: 1 row(s): empty or whitespace-only response" in result.err  # the load's story
    assert f"data: {len(truth) - 1} pair(s) from {len(truth)} row(s)" in result.err
    assert f"audited {len(truth) - 1} pairs" in result.out

    frame = pd.read_parquet(out / "audit.parquet")
    n = len(truth)
    assert len(frame) == n - 1 and frame["source_row"].tolist() == [r for r in range(1, n + 1) if r != n - 4]
    for column in ("pair_id", "category", "oof_margin", "oof_margin_std", "label_issue_score", "rep_distance", *FLAG_COLUMNS):
        assert column in frame, column
    assert frame["oof_margin_std"].gt(0).any() and frame["label_issue_score"].between(0, 1).all()
    by_row = frame.set_index("source_row")
    assert by_row.loc[n - 3, "flag_duplicate"] and by_row.loc[n - 3, "duplicate_of"] == by_row.loc[1, "pair_id"]
    assert by_row.loc[n - 2, "flag_conflict"] and by_row.loc[1, "flag_conflict"]
    assert by_row.loc[n - 1, "flag_empty_looking"] and by_row.loc[n, "flag_identical"]
    flipped = np.array([truth[r - 1] for r in frame["source_row"]])
    assert A.auroc(frame["label_issue_score"].to_numpy(), flipped) > 0.8

    skipped = pd.read_csv(out / "skipped_rows.csv")
    assert skipped[["row", "column"]].values.tolist() == [[n - 4, "chosen"]]
    summary = (out / "summary.md").read_text()
    assert "## Flags" in summary and "## Top 20 likely label issues" in summary and "peak memory" in summary
    meta = json.loads((out / "audit.json").read_text())
    assert meta["n_skipped_rows"] == 1 and meta["config"]["folds"] == 4

    # The cleaned copy keeps the source's layout: HH transcripts, fewer rows, loadable again.
    cleaned = out / meta["cleaned"]["file"]
    assert cleaned.name == "cleaned.jsonl"
    again = load_pairs(cleaned)
    assert again.format == "implicit" and len(again.pairs) == meta["cleaned"]["n_pairs"] < n - 1
    assert set(json.loads(cleaned.read_text().splitlines()[0])) == {"chosen", "rejected"}


def test_flipping_labels_in_a_judgment_file_swaps_the_verdict(tmp_path):
    rows = [{"instruction": "A?", "output_1": "yes", "output_2": "no", "preference": 1},
            {"instruction": "B?", "output_1": "fine", "output_2": "great", "preference": 2},
            {"instruction": "C?", "output_1": "x", "output_2": "y", "preference": 0}]
    path = tmp_path / "alpaca.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = load_pairs(path)
    written = write_like_source(table, keep_rows=[1, 2], flip_rows=[2], stem=tmp_path / "cleaned")
    assert [json.loads(line)["preference"] for line in written.read_text().splitlines()] == [1, 1]
    assert load_pairs(written).pairs["chosen"].tolist() == ["yes", "fine"]
    as_jsonl = write_like_source(table, keep_rows=[1, 2], flip_rows=[1], stem=tmp_path / "plain", like_source=False)
    assert [json.loads(line)["chosen"] for line in as_jsonl.read_text().splitlines()] == ["no", "great"]


def test_featurisation_resumes_after_an_interruption():
    pairs = load_pairs(hh_transcripts(generate_demo_pairs(24, 0.0, seed=5))).pairs
    backbone = load_backbone("minilm")
    seen = []

    def stop_after_first_chunk(done, total, hit):
        if hit is not None:  # a chunk is done (None: a batch inside one)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        chunked_representations(backbone, pairs, 64, chunk_size=10, progress=stop_after_first_chunk)
    seen.clear()
    h_chosen, h_rejected, hits = chunked_representations(backbone, pairs, 64, chunk_size=10, batch_size=8,
                                                         progress=lambda done, total, hit: seen.append((done, hit)))
    assert [(done, hit) for done, hit in seen if hit is not None] == [(10, True), (20, False), (24, False)] and hits == 1
    assert (14, None) in seen  # progress moves inside a chunk being computed (8 sequences a batch: 4 pairs)
    whole_c, whole_r, _ = cached_representations(backbone, pairs, tokenize_pairs(backbone, pairs, 64), 64)
    torch.testing.assert_close(h_chosen, whole_c, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h_rejected, whole_r, atol=1e-5, rtol=1e-4)


def test_audit_dir_owns_its_progress_and_lists_audits(tmp_path):
    """progress.json is merged and rewritten whole (the app polls it while the audit writes), an audit is
    finished only with its table and no live state, and list_audits finds folders by their files."""
    from normbt_viz.audit.auditdir import AuditDir, audits_root, list_audits, new_audit_dir

    root = audits_root(tmp_path)
    folder = new_audit_dir(root).create()
    folder.write_progress(state="running", phase="features", done=1, total=4)
    folder.write_progress(done=3)
    assert folder.progress()["phase"] == "features" and folder.progress()["done"] == 3
    assert not folder.is_finished() and [a.name for a in list_audits(root)] == [folder.name]
    assert [p.name for p in folder.path.iterdir()] == ["progress.json"]  # no temporary file left behind
    folder.write_frame(pd.DataFrame({"pair_id": ["a"], "prompt": ["p"], "chosen": ["c"], "rejected": ["r"], "score": [0.5]}))
    folder.write_progress(state="done")
    assert folder.is_finished() and list(folder.frame().columns) == ["pair_id", "score"]
    assert folder.pair_texts("a") == {"pair_id": "a", "prompt": "p", "chosen": "c", "rejected": "r"}
    assert folder.cleaned_copy() is None and AuditDir(tmp_path / "elsewhere").progress() == {}
