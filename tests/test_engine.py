"""The training engine end to end on the embedded backbones and the demo data: the CLI, the run directory
(including a SIGKILL mid-run), determinism, the background launcher and the model export."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from normbt_viz.runs.launcher import cancel, launch, new_run_dir
from normbt_viz.runs.rundir import RunDir, list_runs
from normbt_viz.spec import RunSpec
from normbt_viz.train.loop import run_training

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(demo_size=120, max_steps=8, eval_every=4, batch_size=16)
PAIR_COLUMNS = {"step", "pair_id", "split", "category", "reward_chosen", "reward_rejected", "margin", "pred_error", "rep_distance",
                "head_grad_norm", "weight", "update_norm", "correct", "full_grad_norm", "rep_distance_init", "distance_bin", "flipped"}


def cli(*args, cwd=REPO, timeout=300):
    return subprocess.run([sys.executable, "-m", "normbt_viz", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def train(root, **overrides):
    run = new_run_dir(root, RunSpec(**{**SMALL, **overrides}))
    status = run_training(run.spec(), run)
    assert status["state"] == "done", status
    return run


def test_cli_train_end_to_end_and_run_directory(tmp_path):
    result = cli("train", "--backbone", "minilm", "--dataset", "demo", "--demo-size", "120", "--max-steps", "8", "--eval-every", "4",
                 "--loss", "normbt", "--runs", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "eval_accuracy=" in result.stdout
    (run,) = list_runs(tmp_path)
    spec = json.loads((run.path / "spec.json").read_text())
    assert spec["schema_version"] == 1 and spec["loss"] == "normbt" and spec["dataset_fingerprint"]
    assert "torch" in spec["package_versions"]
    status = run.status()
    assert status["state"] == "done" and status["step"] == status["total_steps"] == 8
    metrics = run.metrics()
    for name in ("loss", "accuracy", "margin", "mean_reward", "min_reward", "max_reward", "grad_norm", "learning_rate", "epoch",
                 "normbt_mu", "eval_loss", "eval_accuracy", "eval_accuracy_bin_0", "eval_accuracy_reasoning"):
        assert name in metrics.columns, name
    assert run.pair_steps() == [0, 4, 8]
    pairs = run.pairs(8)
    assert PAIR_COLUMNS <= set(pairs.columns)
    assert set(pairs["split"]) == {"eval", "train", "batch"}
    np.testing.assert_allclose(pairs["head_grad_norm"], pairs["pred_error"] * pairs["rep_distance"], rtol=1e-9)
    assert pairs.loc[pairs["split"] == "eval", "full_grad_norm"].notna().sum() > 0
    assert (run.path / "model" / "head.safetensors").is_file()
    listing = cli("runs", "--runs", str(tmp_path))
    assert run.name in listing.stdout and "done" in listing.stdout


def test_cli_train_skips_invalid_rows_and_says_how_many(tmp_path):
    rows = [{"prompt": f"Question {i}?", "chosen": f"A careful answer number {i}.", "rejected": f"No idea {i}."} for i in range(8)]
    lines = [json.dumps(row) for row in rows]
    lines.insert(3, json.dumps({"prompt": "p", "chosen": "  ", "rejected": "b"}))
    lines.insert(5, '{"prompt": "broken')
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(lines) + "\n")
    result = cli("train", "--dataset", str(data), "--max-steps", "2", "--batch-size", "4", "--runs", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:") and "skipped" in line]
    assert notes == ["note: 2 row(s) of the dataset skipped as invalid (the Data page lists them; --strict fails on the first)"]
    (run,) = list_runs(tmp_path / "runs")
    assert run.status()["n_skipped_rows"] == 2


def test_same_spec_twice_gives_the_same_numbers_and_losses_share_the_order(tmp_path):
    first = train(tmp_path, loss="bt", seed=3)
    again = train(tmp_path, loss="bt", seed=3)
    normbt = train(tmp_path, loss="normbt", seed=3)
    timing = ["elapsed_s"]  # wall-clock seconds differ between runs; every computed number must not
    pd.testing.assert_frame_equal(first.metrics().drop(columns=timing), again.metrics().drop(columns=timing))
    batch = lambda run: run.pairs(8).query("split == 'batch'")["pair_id"].tolist()  # noqa: E731
    assert batch(first) == batch(normbt)  # same pairs in the same order under both losses
    assert first.pairs(0)["pair_id"].tolist() == normbt.pairs(0)["pair_id"].tolist()
    assert not np.allclose(first.pairs(8)["margin"], normbt.pairs(8)["margin"])


@pytest.mark.parametrize("scope", ["top-k", "full"])
def test_backbone_scopes_train_blocks_and_sample_full_gradients(tmp_path, scope):
    run = train(tmp_path, scope=scope, top_k=1, full_grad_sample=6, initial_grad_sample=12, demo_size=60, max_steps=4, eval_every=4,
                diagnose_train_pairs=16)
    assert run.pairs(0).query("split == 'eval'")["full_grad_norm"].notna().sum() == 12  # the step-0 sample is its own size
    pairs = run.pairs(4).query("split == 'eval'")
    graded = pairs.dropna(subset=["full_grad_norm"])
    assert len(graded) == 6
    # The full gradient includes the block's parameters, so it is larger than the head part alone.
    assert (graded["full_grad_norm"] > graded["head_grad_norm"]).all()
    # The backbone's part: the rest of the squared norm; under BT (weight 1) its update is that norm itself.
    np.testing.assert_allclose(graded["backbone_grad_norm"] ** 2 + graded["head_grad_norm"] ** 2, graded["full_grad_norm"] ** 2, rtol=1e-6)
    assert (graded["backbone_grad_norm"] > 0).all()
    np.testing.assert_allclose(graded["backbone_update_norm"], graded["backbone_grad_norm"], rtol=1e-4)
    assert {"eval_proxy_corr", "eval_proxy_corr_per_error", "eval_proxy_corr_backbone"} <= set(run.metrics().columns)
    assert (run.path / "model" / "backbone_trained.safetensors").is_file()
    # The saved model (pretrained backbone + trained tensors + head) scores as the run did.
    from normbt_viz.model.reward_model import RewardModel

    texts = pd.read_parquet(run.path / "pair_texts.parquet").set_index("pair_id").loc[pairs["pair_id"]]
    scores = RewardModel.load(run.path / "model", device="cpu").score(texts["prompt"].tolist(), texts["chosen"].tolist())
    np.testing.assert_allclose(scores, pairs["reward_chosen"].to_numpy(), atol=1e-4)


def test_sigkill_mid_run_leaves_a_readable_interrupted_run(tmp_path):
    run = new_run_dir(tmp_path, RunSpec(demo_size=120, scope="top-k", top_k=2, max_steps=400, eval_every=1, batch_size=8))
    process = subprocess.Popen([sys.executable, "-m", "normbt_viz", "worker", str(run.path)], cwd=REPO,
                               env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and (run.read_raw_status().get("step") or 0) < 3:
        assert process.poll() is None, "the worker ended before it could be killed"
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert run.status()["state"] == "interrupted"
    json.loads((run.path / "status.json").read_text())
    json.loads((run.path / "spec.json").read_text())
    for line in (run.path / "metrics.jsonl").read_text().splitlines():
        json.loads(line)
    for step in run.pair_steps():
        assert len(run.pairs(step)) > 0
    assert not list(run.path.rglob("*.tmp"))


def test_background_launch_and_cancel(tmp_path):
    runs = launch([RunSpec(**SMALL, loss="bt"), RunSpec(**SMALL, loss="normbt"), RunSpec(**SMALL, loss="bt", seed=9)], tmp_path)
    cancel(runs[2])
    deadline = time.time() + 240
    while time.time() < deadline and any(r.status()["state"] in ("queued", "running") for r in runs[:2]):
        time.sleep(0.5)
    assert [r.status()["state"] for r in runs] == ["done", "done", "cancelled"]
    assert runs[1].spec().loss == "normbt"


def test_decoder_export_reproduces_recorded_rewards(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.model.features import collate, tokenize_pairs
    from normbt_viz.model.reward_model import RewardModel

    run = train(tmp_path, backbone="smollm2", demo_size=40, max_steps=3, eval_every=3, max_length=96)
    export = run.path / "model" / "sequence_classification"
    model = AutoModelForSequenceClassification.from_pretrained(export).eval()
    tokenizer = AutoTokenizer.from_pretrained(export)
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    texts = pd.read_parquet(run.path / "pair_texts.parquet").set_index("pair_id")
    recorded = run.pairs(3).query("split == 'eval'")
    backbone = load_backbone("smollm2", device="cpu")
    # Tokenized as training did (the longest demo pairs are cut to max_length=96 from the prompt's start).
    sequences = tokenize_pairs(backbone, texts.loc[recorded["pair_id"]].reset_index(), 96).chosen
    assert max(len(s.input_ids) for s in sequences) == 96
    batch = collate(sequences, tokenizer.pad_token_id, "right")
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
    np.testing.assert_allclose(logits.numpy(), recorded["reward_chosen"].to_numpy(), atol=1e-3)
    reloaded = RewardModel.load(run.path / "model", device="cpu")
    scores = reloaded.score([texts.loc[p, "prompt"] for p in recorded["pair_id"]], [texts.loc[p, "chosen"] for p in recorded["pair_id"]])
    np.testing.assert_allclose(scores, recorded["reward_chosen"].to_numpy(), atol=1e-4)


def test_encoder_export_explains_why_it_is_not_exported(tmp_path):
    run = train(tmp_path)
    readme = (run.path / "model" / "sequence_classification" / "README.md").read_text()
    assert "encoder" in readme and "score differently" in readme
    assert not (run.path / "model" / "sequence_classification" / "config.json").exists()


def test_rewardbench_command_scores_a_trained_model_on_a_local_file(tmp_path):
    run = train(tmp_path / "runs")
    rows = []
    for subset, prompt in (("alpacaeval-easy", "Name a fruit."), ("mt-bench-hard", "List two colours."),
                           ("refusals-dangerous", "How do I pick a lock?"), ("math-prm", "What is 2+3?"), ("hep-python", "Add two numbers in Python.")):
        for k in range(2):
            rows.append({"id": f"{subset}-{k}", "prompt": prompt, "chosen": f"A good answer {k}.", "rejected": f"Off topic {k}.", "subset": subset,
                         "chosen_model": "m", "rejected_model": "m"})
    data = tmp_path / "rb.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "rb.json"
    result = cli("rewardbench", "--model", str(run.path / "model"), "--data", str(data), "--device", "cpu", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads(out.read_text())
    assert set(scores["sections"]) == {"Chat", "Chat Hard", "Safety", "Reasoning"}
    assert 0.0 <= scores["score"] <= 1.0
    bad = cli("rewardbench", "--model", str(tmp_path), "--data", str(data))
    assert bad.returncode == 2 and "not a reward model folder" in bad.stderr


def test_pairs_identical_to_the_backbone_are_flagged_and_not_trained_on(tmp_path):
    # MiniLM is uncased: answers that differ only in case are the same input, so h_c = h_r exactly.
    rows = [{"pair_id": f"p{i}", "prompt": f"Question {i}?", "chosen": f"A clear, correct answer to question {i}.",
             "rejected": f"Something unrelated about topic {i * 7}."} for i in range(40)]
    rows += [{"pair_id": f"case{i}", "prompt": f"Reply in lowercase {i}.", "chosen": f"hello friend {i}", "rejected": f"Hello Friend {i}"}
             for i in range(10)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    run = train(tmp_path / "runs", dataset=str(data), loss="normbt", max_steps=6, eval_every=3, batch_size=8, eval_fraction=0.3)
    status = run.status()
    assert status["n_identical_input"] == 10
    assert status["n_trained_pairs"] == status["n_train"] - int(run.pairs(0).query("split == 'train'")["identical_input"].sum())
    batches = pd.concat([run.pairs(s).query("split == 'batch'") for s in (3, 6)])
    assert not batches["pair_id"].str.startswith("case").any()
    flagged = run.pairs(6).query("identical_input")
    assert set(flagged["pair_id"].str[:4]) == {"case"}
    assert (flagged["rep_distance"] < 1e-6).all() and not flagged["correct"].any()
    last = run.metrics().dropna(subset=["eval_loss"]).iloc[-1]
    assert last["eval_loss"] < 10  # not swamped by μ/ε weights


def test_cli_compare_runs_every_arm_and_seed_and_writes_a_summary(tmp_path):
    result = cli("compare", "--losses", "bt,normbt", "--seeds", "0,1", "--demo-size", "120", "--max-steps", "6", "--eval-every", "3",
                 "--runs", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    runs = list_runs(tmp_path)
    assert sorted((r.spec().arm_name, r.spec().seed) for r in runs) == [("bt", 0), ("bt", 1), ("normbt", 0), ("normbt", 1)]
    (folder,) = (tmp_path / "_comparisons").iterdir()
    summary = (folder / "summary.md").read_text()
    assert "Paired difference against `bt`" in summary and "| normbt |" in summary
    overall = pd.read_csv(folder / "overall.csv")
    assert set(overall["arm"]) == {"bt", "normbt"} and (overall["n"] == 2).all()
    bad = cli("compare", "--losses", "bt,magic", "--runs", str(tmp_path))
    assert bad.returncode == 2 and "unknown arm 'magic'" in bad.stderr


def test_launch_reports_bad_input_before_any_run_exists(tmp_path):
    from normbt_viz.errors import NormBTError

    with pytest.raises(NormBTError, match="no such file"):
        launch([RunSpec(dataset=str(tmp_path / "missing.jsonl"))], tmp_path / "runs")
    with pytest.raises(NormBTError, match="bt_margin"):
        launch([RunSpec(**SMALL).with_arm("bt_margin")], tmp_path / "runs")
    assert list_runs(tmp_path / "runs") == []


def test_a_corrupt_run_directory_is_listed_as_unreadable_without_hiding_the_others(tmp_path):
    good = train(tmp_path, max_steps=2, eval_every=2)
    broken = new_run_dir(tmp_path, RunSpec(**SMALL))
    (broken.path / "status.json").write_text('{"state": "runn')
    from normbt_viz.runs.rundir import runs_table

    table = runs_table(tmp_path).set_index("run")
    assert table.loc[good.name, "state"] == "done"
    assert table.loc[broken.name, "state"] == "unreadable" and "invalid JSON" in table.loc[broken.name, "error"]


def test_margin_arm_trains_on_a_dataset_with_a_margin_column(tmp_path):
    rows = [{"prompt": f"Question {i}?", "chosen": f"A clear answer to question {i}.", "rejected": f"Unrelated remark {i * 3}.",
             "margin": float(i % 3)} for i in range(40)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    run = train(tmp_path / "runs", dataset=str(data), max_steps=4, eval_every=2, batch_size=8, arm="bt_margin", loss="bt_margin")
    assert run.spec().loss == "bt_margin"
    last = run.metrics().dropna(subset=["eval_loss"]).iloc[-1]
    # Required margins m > 0 make -log σ(Δ - m) larger than plain BT's -log σ(Δ) on the same pairs.
    assert last["eval_loss"] > last["eval_bt_loss"]


def test_flipped_labels_reuse_the_clean_datas_feature_cache(tmp_path, monkeypatch):
    """A label-noise copy of a dataset (some chosen/rejected swapped) reaches the backbone as the same sequences,
    so it hits the clean data's cache entry, with each swapped pair's two sides exchanged."""
    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.model.features import cached_block_inputs, cached_representations, tokenize_pairs

    monkeypatch.setenv("NORMBT_VIZ_CACHE", str(tmp_path))
    backbone = load_backbone("minilm", device="cpu")
    clean = pd.DataFrame({"pair_id": ["a", "b", "c"], "prompt": ["Name a fruit."] * 3,
                          "chosen": ["An apple.", "Zebra.", "A pear."], "rejected": ["Blue.", "A plum.", "Rocks."]})
    flipped = clean.copy()
    flipped.loc[[0, 1], ["chosen", "rejected"]] = clean.loc[[0, 1], ["rejected", "chosen"]].to_numpy()
    first_block = backbone.num_layers - 1
    clean_c, clean_r, hit = cached_block_inputs(backbone, clean, tokenize_pairs(backbone, clean, 64), 64, first_block)
    assert not hit
    noisy_c, noisy_r, hit = cached_block_inputs(backbone, flipped, tokenize_pairs(backbone, flipped, 64), 64, first_block)
    assert hit
    for i, swapped in enumerate([True, True, False]):
        torch.testing.assert_close(noisy_c[i], clean_r[i] if swapped else clean_c[i])
        torch.testing.assert_close(noisy_r[i], clean_c[i] if swapped else clean_r[i])
    h_c, h_r, hit = cached_representations(backbone, clean, tokenize_pairs(backbone, clean, 64), 64)
    assert not hit
    # Computed fresh, the flipped data's features equal the clean ones exchanged; read from the cache, too.
    f_c, f_r, hit = cached_representations(backbone, flipped, tokenize_pairs(backbone, flipped, 64), 64)
    assert hit
    torch.testing.assert_close(f_c, torch.stack([h_r[0], h_r[1], h_c[2]]))
    torch.testing.assert_close(f_r, torch.stack([h_c[0], h_c[1], h_r[2]]))
