"""The report command end to end on its minimal configuration."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def test_report_quick_writes_summary_figures_and_csv(tmp_path):
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, "-m", "normbt_viz", "report", "--quick", "--out", str(out), "--runs", str(tmp_path / "runs")],
                            cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    summary = (out / "summary.md").read_text()
    for heading in ("Accuracy overall", "Paired difference against `bt`", "Accuracy per category", "Accuracy per distance bin",
                    "Update share per distance decile", "Label-noise study", "Weight on flipped"):
        assert heading in summary, heading
    for png in ("error_vs_distance.png", "update_share_by_decile.png", "accuracy_per_distance_bin.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    overall = pd.read_csv(out / "overall.csv")
    assert set(overall["arm"]) == {"bt", "normbt", "bt_layernorm"} and (overall["n"] == 2).all()
    assert ((overall["low"] <= overall["mean"]) & (overall["mean"] <= overall["high"])).all()
    shares = pd.read_csv(out / "update_share_by_decile.csv")
    for arm, table in shares.groupby("arm"):
        assert abs(table["update_share"].sum() - 1.0) < 1e-6
    bt, normbt = (shares[shares["arm"] == a].set_index("decile")["update_share"] for a in ("bt", "normbt"))
    # The rebalancing: under BT the closest decile gets far less than its tenth; NormBT gives it much more.
    assert bt.loc[1] < 0.05 and normbt.loc[1] > 2 * bt.loc[1]
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired["arm"]) == {"normbt", "bt_layernorm"} and ((paired["low"] <= paired["diff"]) & (paired["diff"] <= paired["high"])).all()
    noise = pd.read_csv(out / "noise_clean_accuracy.csv")
    assert set(noise["noise"]) == {0.0, 0.2}
