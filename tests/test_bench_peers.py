"""benchmarks/bench_peers.py --quick still runs: the parts without optional peers always, the TRL and
sentence-transformers parts only where those benchmark-only packages are installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_peers.py"


def run_quick(parts: str) -> str:
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--only", parts], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "| what" in result.stdout and "| result" in result.stdout, result.stdout[-2000:]
    return result.stdout


def test_bench_peers_quick_without_peers():
    out = run_quick("head,diagnostics")
    assert "head-scope epoch, 200 cached pairs" in out
    row = next(line for line in out.splitlines() if line.startswith("| default full-scope run"))
    assert row.rstrip(" |").endswith(("PASS", "MISS", "SKIP"))


def test_bench_peers_quick_with_peers():
    pytest.importorskip("trl")
    pytest.importorskip("sentence_transformers")
    out = run_quick("train,encode")
    assert "TRL RewardTrainer" in out and "sentence-transformers encode" in out
    diff = float(out.split("max abs diff ")[1].split()[0])
    assert diff < 1e-4, "our representations no longer match sentence-transformers'"
