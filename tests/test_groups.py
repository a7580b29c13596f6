"""Which runs compare: groups by data, backbone and eval split, newest first, and each run's partner."""

from __future__ import annotations

import dataclasses

from normbt_viz.analysis.groups import group_key, partner_of, run_groups
from normbt_viz.runs.launcher import new_run_dir
from normbt_viz.runs.rundir import list_runs
from normbt_viz.spec import RunSpec


def queue(root, spec: RunSpec, arm: str, seed: int):
    return new_run_dir(root, dataclasses.replace(spec, seed=seed).with_arm(arm))


def test_runs_group_by_data_backbone_and_eval_split_newest_group_first(tmp_path):
    first = RunSpec(demo_size=200, demo_noise=0.1)
    second = RunSpec(dataset="pairs.jsonl", limit=300)
    old = {(arm, seed): queue(tmp_path, first, arm, seed) for seed in (0, 1) for arm in ("bt", "normbt")}
    new = {arm: queue(tmp_path, second, arm, 0) for arm in ("bt", "normbt")}
    groups = run_groups(list_runs(tmp_path))
    assert [len(g.runs) for g in groups] == [2, 4]  # the newest experiment first
    assert {r.name for r in groups[0].runs} == {r.name for r in new.values()}
    assert groups[0].label.startswith("pairs.jsonl (limit 300) · minilm · 2 run(s): bt, normbt")
    assert groups[1].label.startswith("demo 200 pairs, noise 10% · minilm · 4 run(s)")
    # Another eval split or backbone is another experiment; the arm and the seed are not.
    assert group_key(first) == group_key(first.with_arm("normbt")) == group_key(dataclasses.replace(first, seed=3))
    assert group_key(first) != group_key(dataclasses.replace(first, split_seed=1))
    assert group_key(first) != group_key(dataclasses.replace(first, backbone="smollm2"))
    assert len(old) == 4


def test_partner_is_the_other_arm_of_the_same_group_and_seed(tmp_path):
    spec = RunSpec(demo_size=200)
    runs = {(arm, seed): queue(tmp_path, spec, arm, seed) for seed in (0, 1) for arm in ("bt", "normbt", "bt_layernorm")}
    # A newer, unrelated experiment must not be picked (it was, as "the newest NormBT run").
    queue(tmp_path, RunSpec(demo_size=300), "normbt", 1)
    every = list_runs(tmp_path)
    assert partner_of(runs[("bt", 1)], every).path == runs[("normbt", 1)].path
    assert partner_of(runs[("normbt", 0)], every).path == runs[("bt", 0)].path
    assert partner_of(runs[("bt_layernorm", 1)], every).path == runs[("bt", 1)].path
    alone = queue(tmp_path, RunSpec(demo_size=500), "bt", 0)
    assert partner_of(alone, list_runs(tmp_path)) is None
