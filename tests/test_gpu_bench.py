"""benchmarks/gpu_bench.py in its tiny CPU configuration, so the GPU benchmark does not rot between GPU runs.

It runs as users run it (a subprocess), trains this engine with diagnostics off and on through `train_inline`,
times the per-pair norms, and runs the TRL peer where trl and datasets import (else it must say so in one
line and go on). NormBT arms are left out to keep the test short; they differ from BT only in the loss.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_bench_tiny_cpu(tmp_path):
    out = tmp_path / "gpu_bench.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NORMBT_VIZ_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), "--tiny", "--device", "cpu", "--threads", "1",
               "--skip", "normbt", "--budget-s", "100", "--out", str(out)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    data = json.loads(out.read_text())

    assert "setup" not in data["errors"], data["errors"]
    assert data["params"]["layers"] == 2 and data["params"]["hidden"] == 64
    assert data["params"]["non_embedding"] + data["params"]["embedding"] == data["params"]["total"]
    assert data["data"]["max"] <= 64 and data["data"]["min"] >= 32, data["data"]
    for name in ("ours/bt/off", "ours/bt/full"):
        assert name not in data["errors"], data["errors"]
        part = data["parts"][name]
        assert part["state"] == "done" and part["trained_steps"] == 4, part
        assert part["steady_steps"] >= 1 and part["pairs_per_s"] > 0 and part["tokens_per_s"] > 0, part
        assert part["pairs_per_s_incl_eval"] > 0 and part["evaluations"] >= 2, part
    assert "ours/normbt/off" not in data["parts"]

    norms = data["parts"]["norms"]
    assert norms["pairs"] == 8 and norms["dtype"] == "float32"
    assert norms["max_rel_diff"] < 1e-4, norms  # the same exact norms, whichever path computes them
    assert norms["speedup"] > 0

    trl_importable = importlib.util.find_spec("trl") is not None and importlib.util.find_spec("datasets") is not None
    if trl_importable:
        assert data["parts"]["trl"]["pairs_per_s"] > 0, data["errors"].get("trl")
        assert data["summary"]["off_vs_trl_pairs_per_s"] > 0
    else:
        assert "TRL peer unavailable" in data["errors"]["trl"]
    assert set(data["summary"]["targets"]) == {"off >= 1.0x TRL pairs/s", "full <= 1.2x TRL time (steady)", "batched norms >= 5x loop"}
    assert "target batched norms >= 5x loop:" in log and "wrote" in log
