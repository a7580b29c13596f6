"""How close the Train page's time estimate comes to the time a launch actually takes on this machine.

    python benchmarks/bench_estimate.py [--calibrate 600] [--pairs 1500] [--hh PATH] [--check]

In a fresh runs folder and a fresh cache (so every first featurisation is cold): one calibration launch (BT and
NormBT on --calibrate demo pairs, no estimate possible yet), then launches estimated from the runs finished so
far exactly as the app does (`runs/estimate.py`: rates of this machine, scaled by the texts' tokens per pair and
by the load at that moment), each
timed from the launch() call, preflight included, until its last run is done: BT and NormBT on --pairs new demo
pairs (cold), the same again (warm feature cache) and, with --hh, on that many pairs of a real JSONL file (longer
texts than the demo's). Prints estimate, actual and their ratio per launch with the load average; --check exits 1
when a ratio is outside [1/--factor, --factor].
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere, like the other benchmarks
    sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calibrate", type=int, default=600, help="demo pairs of the calibration launch")
    parser.add_argument("--pairs", type=int, default=1500, help="demo pairs of the estimated launches")
    parser.add_argument("--hh", type=Path, default=None, help="a local preference file to estimate a launch on too")
    parser.add_argument("--factor", type=float, default=2.0)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="normbt-bench-estimate-"))
    os.environ["NORMBT_VIZ_CACHE"] = str(work / "cache")
    from normbt_viz.data.sources import load_pairs
    from normbt_viz.runs.estimate import estimate_launch, tokens_per_pair, update_rates
    from normbt_viz.runs.launcher import launch
    from normbt_viz.runs.rundir import LIVE_STATES, list_runs
    from normbt_viz.spec import RunSpec

    root = work / "runs"
    ratios = []

    def timed(label: str, base: RunSpec, n_pairs: int) -> None:
        specs = [base.with_arm("bt"), base.with_arm("normbt")]
        time.sleep(6)  # the worker writes a run's CPU time just after it is done
        resolved = [s.resolve() for s in specs]
        texts = load_pairs(resolved[0].dataset, **resolved[0].source.load_options()).pairs  # as the Train page reads them
        estimate = estimate_launch(resolved, n_pairs, update_rates(list_runs(root)), tokens_per_pair(texts, resolved[0].max_length))
        load = os.getloadavg()[0]
        started = time.time()
        launch(specs, root)
        while any(r.status().get("state") in LIVE_STATES for r in list_runs(root)):
            time.sleep(0.5)
        actual = time.time() - started
        if estimate.seconds is None:
            print(f"{label}: actual {actual:.1f} s, no estimate ({estimate.note})", flush=True)
            return
        ratios.append(actual / estimate.seconds)
        print(f"{label}: estimate {estimate.seconds:.1f} s, actual {actual:.1f} s, actual/estimate {ratios[-1]:.2f} "
              f"(load {load:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)

    demo = lambda n, seed: RunSpec(dataset="demo", demo_size=n, demo_noise=0.1, demo_seed=seed)
    timed(f"calibration: demo {args.calibrate} pairs, bt+normbt, 3 epochs (cold)", demo(args.calibrate, 7), args.calibrate)
    timed(f"demo {args.pairs} pairs, bt+normbt, 3 epochs (cold)", demo(args.pairs, 8), args.pairs)
    timed("the same again (warm feature cache)", demo(args.pairs, 8), args.pairs)
    if args.hh:
        timed(f"{args.hh.name} {args.pairs} pairs, bt+normbt, 60 steps (cold)",
              RunSpec(dataset=str(args.hh), limit=args.pairs, max_steps=60), args.pairs)
    missed = [r for r in ratios if not 1 / args.factor <= r <= args.factor]
    print(f"{len(ratios) - len(missed)}/{len(ratios)} launches within {args.factor:g}x of the estimate")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
