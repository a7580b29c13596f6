"""benchmarks/bench_scaling.py does not rot: its quick mode runs every part but the browser, and the run directory
it serves for the app-memory part is one the Embeddings page reads without a backbone. No timing is asserted."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_scaling.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_scaling", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_the_table_of_every_part():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--no-browser"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    table = done.stdout.split("| what")[1]
    for row in ("figure error_vs_distance", "figure embedding_map, chosen–rejected segments", "head-scope epoch, num_threads=1",
                "per-pair records flush", "PCA projection"):
        assert row in table, row
    assert all(line.rstrip().endswith(("PASS   |", "MISS   |", "info   |")) for line in table.splitlines()[2:] if line.startswith("|"))


def test_app_run_directory_reads_back_on_every_page_path(tmp_path):
    from normbt_viz.analysis.outliers import unique_pairs
    from normbt_viz.analysis.projection import projection_frame
    from normbt_viz.runs.rundir import list_runs

    bench = load_bench()
    bench.write_run(tmp_path, 300)
    (run,) = list_runs(tmp_path)
    assert run.pair_steps() == [0, 100] and run.status()["state"] == "done"
    pairs = run.pairs(100)
    assert len(unique_pairs(pairs[pairs["split"] == "eval"])) == 300
    frame = projection_frame(run, 100, "pca", "diff")  # the cached map: no backbone is loaded
    assert len(frame) == 300 and {"x", "y", "prompt", "chosen", "rejected"} <= set(frame.columns)
