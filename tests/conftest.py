"""Shared fixtures: a runs root with one real BT and one real NormBT run (demo data, MiniLM head scope)."""

from __future__ import annotations

from pathlib import Path

import pytest

from normbt_viz.runs.rundir import RunDir
from normbt_viz.spec import RunSpec


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory) -> Path:
    """One feature cache for the whole session, so MiniLM featurises the demo pairs once."""
    return tmp_path_factory.mktemp("normbt_cache")


@pytest.fixture(scope="session", autouse=True)
def own_cache(feature_cache):
    """Every test reads and writes the session's own cache, never whatever NORMBT_VIZ_CACHE the shell has."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NORMBT_VIZ_CACHE", str(feature_cache))
        yield


@pytest.fixture(scope="session")
def small_decoder(tmp_path_factory) -> Path:
    """SmolLM2's embeddings and first two blocks (real pretrained weights) as a local model folder: a decoder small
    enough to fine-tune fully, three steps on both sides, in seconds."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from normbt_viz.model.backbones import resolve_backbone

    folder = tmp_path_factory.mktemp("smollm2_2_blocks")
    source = resolve_backbone("smollm2")
    AutoModel.from_pretrained(source, dtype=torch.float32, num_hidden_layers=2).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, feature_cache) -> dict[str, RunDir]:
    """{"bt": RunDir, "normbt": RunDir} trained for 20 steps on 200 demo pairs with 10% label flips, with
    NORMBT_VIZ_RUNS and NORMBT_VIZ_CACHE pointing at temporary folders for the rest of the session."""
    from normbt_viz.runs.launcher import new_run_dir
    from normbt_viz.train.loop import run_training

    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NORMBT_VIZ_RUNS", str(root))
        patch.setenv("NORMBT_VIZ_CACHE", str(feature_cache))
        runs = {}
        for arm in ("bt", "normbt"):
            run = new_run_dir(root, RunSpec(demo_size=200, demo_noise=0.1, max_steps=20, eval_every=5).with_arm(arm))
            status = run_training(run.spec(), run)
            assert status["state"] == "done", status
            runs[arm] = run
        yield runs
