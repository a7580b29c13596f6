"""Which runs compare: groups of runs on the same data, backbone and eval split, and each run's partner.

Runs of one group are seeds and arms of one experiment, so their accuracies pool into intervals and their
per-pair diagnostics line up pair by pair (compare_runs refuses anything else). The app opens its comparison
views on the newest group, and pairs a run with its partner (same group, same seed, the other arm) instead of
whatever run happens to be newest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from normbt_viz.runs.rundir import RunDir
from normbt_viz.spec import RunSpec

# The arm a run is compared with by default: BT with NormBT and every other arm with BT.
REFERENCE_PARTNER = {"bt": "normbt"}
DEFAULT_PARTNER = "bt"


def group_key(spec: RunSpec) -> tuple:
    """What must be equal for two runs to be one experiment: the data (its fingerprint once the run has read
    it, else the fields that choose it), the backbone and the eval split (its share, seed and the sample size)."""
    data = spec.dataset_fingerprint or (spec.dataset, spec.dataset_config, spec.dataset_split, str(spec.column_mapping),
                                        spec.demo_size, spec.demo_noise, spec.demo_seed)
    return (data, spec.backbone, spec.eval_fraction, spec.split_seed, spec.limit)


@dataclass
class RunGroup:
    key: tuple
    label: str  # what the group picker shows: data, backbone, how many runs
    runs: list[RunDir] = field(default_factory=list)  # newest first


def _specs(runs: list[RunDir]) -> list[tuple[RunDir, RunSpec]]:
    readable = []
    for run in runs:
        try:
            readable.append((run, run.spec()))
        except Exception:  # a broken spec.json is listed as such on the Train page; it belongs to no group
            continue
    return readable


def _data_label(spec: RunSpec) -> str:
    if spec.dataset == "demo":
        return f"demo {spec.demo_size} pairs, noise {spec.demo_noise:.0%}"
    name = spec.dataset.rstrip("/").rsplit("/", 1)[-1]
    return name + (f" (limit {spec.limit})" if spec.limit else "")


def run_groups(runs: list[RunDir]) -> list[RunGroup]:
    """The runs (newest first, as list_runs gives them) grouped by group_key, the group of the newest run
    first; each group's runs keep their order."""
    groups: dict[tuple, RunGroup] = {}
    for run, spec in _specs(runs):
        key = group_key(spec)
        if key not in groups:
            groups[key] = RunGroup(key, "")
        groups[key].runs.append(run)
    for group in groups.values():
        spec = group.runs[0].spec()
        arms = sorted({s.arm_name for _, s in _specs(group.runs)})
        group.label = f"{_data_label(spec)} · {spec.backbone} · {len(group.runs)} run(s): {', '.join(arms)}"
    seen: dict[str, int] = {}
    for group in groups.values():  # two groups that read alike (same file name, other contents) stay apart
        seen[group.label] = seen.get(group.label, 0) + 1
        if seen[group.label] > 1:
            group.label += f" ({seen[group.label]})"
    return list(groups.values())


def group_of(run: RunDir, groups: list[RunGroup]) -> RunGroup | None:
    return next((g for g in groups if any(r.path == run.path for r in g.runs)), None)


def partner_of(run: RunDir, candidates: list[RunDir]) -> RunDir | None:
    """The run to put beside `run`: among `candidates`, one of the same group and seed on the partner arm
    (NormBT for BT, BT for any other arm), else the same group and seed on any other arm, else the same group on
    the partner arm; the newest such run. None when no candidate is of the run's group."""
    try:
        spec = run.spec()
    except Exception:
        return None
    key, arm = group_key(spec), spec.arm_name
    wanted = REFERENCE_PARTNER.get(arm, DEFAULT_PARTNER)
    same_group = [(r, s) for r, s in _specs(candidates) if r.path != run.path and group_key(s) == key]
    for test in (lambda s: s.seed == spec.seed and s.arm_name == wanted,
                 lambda s: s.seed == spec.seed and s.arm_name != arm,
                 lambda s: s.arm_name == wanted):
        match = next((r for r, s in same_group if test(s)), None)
        if match is not None:
            return match
    return None
