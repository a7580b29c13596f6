"""How does NormBT Viz scale with the number of pairs? Times and memory against the targets of the scaling issue.

    python benchmarks/bench_scaling.py            # the full table (about 5 minutes on a 2-core CPU)
    python benchmarks/bench_scaling.py --check    # the same; exits 1 when a target is missed
    python benchmarks/bench_scaling.py --quick --no-browser   # tiny sizes, no UMAP, no browser: a smoke run

Prints one table: what, size, time / memory, target, PASS / MISS (rows without a target say "info").

- figure builds: each builder the Gradients page calls (error_vs_distance, update_share_bars, grad_norm_histogram,
  proxy_scatter) and the Embeddings page's embedding_map (difference view coloured by category and by a number,
  and the chosen-rejected segment view), built from synthetic per-pair frames with the columns the trainer writes
  and texts of realistic length, then serialised with `fig.to_json()` as Streamlit does. Target: < 0.5 s each and
  a payload under 10 MB, at every size. Median of 5 builds, builders alternated.
- head-scope epoch: `Trainer.train_step` over one epoch (batch 32, NormBT, per-pair records on as in a real run)
  on cached synthetic 384-d features, built the way tests/test_losses.py builds its synthetic trainer; the
  records flush at the end of the epoch is a row of its own. Target: < 1 s at 10,000 pairs.
- projection: `analysis.projection.project` with PCA and UMAP on clustered synthetic 384-d vectors (MiniLM's
  width; real MiniLM vectors for 20,000 pairs would take minutes to compute here). UMAP's first call, which
  compiles it with numba, is a row of its own. No target: the app caches each map in the run directory.
- app memory: a run directory with a 20,000-pair snapshot (the trainer's columns, texts, bins, a cached PCA map)
  served by `streamlit run app.py`; headless Chromium opens Gradients, Embeddings and Pairs; the row is the
  streamlit process's peak RSS (VmHWM). Needs /usr/bin/chromium and Playwright.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
FIGURE_SECONDS = 0.5
PAYLOAD_MB = 10.0
EPOCH_SECONDS = 1.0
EPOCH_TARGET_SIZE = 10_000
HIDDEN = 384  # MiniLM's width
CATEGORIES = np.array(["chat", "chat_hard", "safety", "reasoning"])
ERROR_BOXES = '[data-testid="stException"], [data-testid="stAlertContentError"]'


# -- the table ------------------------------------------------------------------------------------------
class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, what: str, size, value: str, target: str = "—", passed: bool | None = None) -> None:
        result = "info" if passed is None else ("PASS" if passed else "MISS")
        size_text = f"{size:,}" if isinstance(size, int) else str(size)
        self.rows.append((what, size_text, value, target, result))
        print(f"  {what} @ {size_text}: {value} [{result}]", flush=True)

    @property
    def missed(self) -> list[tuple]:
        return [r for r in self.rows if r[4] == "MISS"]

    def render(self) -> str:
        header = ("what", "pairs", "time / memory", "target", "result")
        widths = [max(len(str(r[i])) for r in [header, *self.rows]) for i in range(5)]
        line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
        return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, self.rows)])


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


# -- synthetic data ---------------------------------------------------------------------------------------
_WORDS = ("the model answer step value first check result number reason list item because total case explain "
          "write short long user asks please given example about which when where would should could").split()


def _texts(n: int, words: int, rng: np.random.Generator, tag: str) -> np.ndarray:
    """n texts of about `words` words: a pool of 400 sentences, each text made unique by its index."""
    pool = [" ".join(rng.choice(_WORDS, words)) for _ in range(400)]
    return np.array([f"{pool[i % 400]} ({tag} {i})" for i in range(n)], dtype=object)


def synthetic_pairs(n: int, seed: int = 0, texts: bool = True) -> pd.DataFrame:
    """A per-pair frame with the columns Trainer.evaluate writes (plus prompt, chosen, rejected and map
    coordinates when `texts`): gamma distances, errors from normal margins, 32 pairs with a full gradient norm."""
    rng = np.random.default_rng(seed)
    distance = rng.gamma(2.0, 0.8, n)
    margin = rng.normal(0.5, 1.2, n)
    error = 1.0 / (1.0 + np.exp(margin))
    weight = distance.mean() / distance
    frame = pd.DataFrame({
        "step": 100,
        "pair_id": np.array([f"demo-{i:06d}" for i in range(n)], dtype=object),
        "split": "eval",
        "category": CATEGORIES[rng.integers(0, len(CATEGORIES), n)],
        "reward_chosen": margin / 2,
        "reward_rejected": -margin / 2,
        "margin": margin,
        "pred_error": error,
        "rep_distance": distance,
        "head_grad_norm": error * distance,
        "weight": weight,
        "update_norm": error * distance * weight,
        "correct": margin > 0,
        "len_chosen": rng.integers(20, 300, n),
        "len_rejected": rng.integers(20, 300, n),
        "flipped": rng.random(n) < 0.1,
        "identical": False,
        "identical_input": False,
        "full_grad_norm": np.where(np.arange(n) < 32, error * distance, np.nan),
        "rep_distance_init": distance,
        "distance_bin": np.minimum((distance / distance.max() * 5).astype(int), 4),
    })
    if texts:
        frame["prompt"] = _texts(n, 40, rng, "prompt")
        frame["chosen"] = _texts(n, 120, rng, "chosen")
        frame["rejected"] = _texts(n, 120, rng, "rejected")
        frame["x"], frame["y"] = rng.normal(size=n), rng.normal(size=n)
        frame["x_rejected"], frame["y_rejected"] = frame["x"] + rng.normal(0, 0.1, n), frame["y"] + rng.normal(0, 0.1, n)
    return frame


def clustered_vectors(n: int, dim: int = HIDDEN, seed: int = 0) -> np.ndarray:
    """Vectors around 24 centres, like sentence embeddings of a few topics (not uniform noise, UMAP's worst case)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(24, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 24, n)] + rng.normal(0, 0.6, (n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# -- figure builds --------------------------------------------------------------------------------------------
def bench_figures(table: Table, sizes: list[int], repeats: int) -> None:
    from normbt_viz.analysis.stats import update_share_by_decile
    from normbt_viz.ui import figures

    warm = synthetic_pairs(50)  # plotly loads its templates and validators on first use: not a per-figure cost
    figures.error_vs_distance(warm).to_json()
    figures.embedding_map(warm, "category").to_json()
    for n in sizes:
        pairs = synthetic_pairs(n)
        other = synthetic_pairs(n, seed=1, texts=False)
        shares = {"bt": update_share_by_decile(pairs["rep_distance"], pairs["head_grad_norm"]),
                  "normbt": update_share_by_decile(pairs["rep_distance"], pairs["update_norm"])}
        builders = {
            "figure error_vs_distance (Gradients, per panel)": lambda: figures.error_vs_distance(pairs, "update_norm", "bt: run", (0.0, 1.0)),
            "figure update_share_bars (Gradients)": lambda: figures.update_share_bars(shares),
            "figure grad_norm_histogram (Gradients, 2 runs)": lambda: figures.grad_norm_histogram({"a": pairs, "b": other}),
            "figure proxy_scatter (Gradients)": lambda: figures.proxy_scatter(pairs, "Proxy check (bt)"),
            "figure embedding_map, by category (Embeddings)": lambda: figures.embedding_map(pairs, "category"),
            "figure embedding_map, by margin (Embeddings)": lambda: figures.embedding_map(pairs, "margin"),
            "figure embedding_map, chosen–rejected segments": lambda: figures.embedding_map(pairs, "category", segments=True),
        }
        times: dict[str, list[float]] = {name: [] for name in builders}
        payload: dict[str, int] = {}
        for _ in range(repeats):  # builders alternated, so a burst of load on the shared machine hits all alike
            for name, build in builders.items():
                started = time.perf_counter()
                spec = build().to_json()
                times[name].append(time.perf_counter() - started)
                payload[name] = len(spec)
        for name in builders:
            median = statistics.median(times[name])
            mb = payload[name] / 1e6
            table.add(name, n, f"{seconds(median)}, {mb:.2f} MB", f"< {FIGURE_SECONDS} s, < {PAYLOAD_MB:.0f} MB",
                      median < FIGURE_SECONDS and mb < PAYLOAD_MB)


# -- head-scope epoch ---------------------------------------------------------------------------------------
def synthetic_trainer(n: int, run_path: Path, loss: str = "normbt", seed: int = 0):
    """A Trainer on cached synthetic features (head scope), without data loading or a backbone, planned for
    one epoch of batch 32."""
    import torch

    from normbt_viz.runs.rundir import RunDir
    from normbt_viz.spec import RunSpec
    from normbt_viz.train.loop import Trainer

    spec = RunSpec(loss=loss, batch_size=32, epochs=1.0, seed=seed).resolve()
    generator = torch.Generator().manual_seed(seed)
    h_chosen = torch.randn(n, HIDDEN, generator=generator)
    h_rejected = h_chosen + torch.randn(n, HIDDEN, generator=generator) * torch.rand(n, 1, generator=generator)
    trainer = Trainer.from_features(spec, RunDir(run_path).create(spec), h_chosen, h_rejected)
    trainer.begin()
    return trainer


def _time_epoch(n: int, path: Path, threads: int, max_steps: int | None = None) -> tuple[float, int, float]:
    """(seconds for the epoch's train_step calls, steps timed, seconds for the records flush) under `threads`
    torch threads, as RunSpec.num_threads would set them."""
    import torch

    default = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        trainer = synthetic_trainer(n, path)
        steps = min(trainer.plan.total_steps, max_steps or trainer.plan.total_steps)
        started = time.perf_counter()
        for step in range(steps):
            trainer.train_step(step)
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        trainer.flush_records()
        return elapsed, steps, time.perf_counter() - started
    finally:
        torch.set_num_threads(default)


def bench_epoch(table: Table, sizes: list[int], repeats: int, workdir: Path) -> None:
    """One epoch under torch's default threads (what a run gets unless its spec sets num_threads) and under
    num_threads=1, alternated. Above EPOCH_TARGET_SIZE one run each, and the default-threads epoch is timed over
    its first 500 steps and extrapolated (on a loaded 2-core machine a whole one takes minutes)."""
    import torch

    default_threads = torch.get_num_threads()
    warm = synthetic_trainer(64, workdir / "epoch_warm-up")  # torch's first backward and AdamW step set up lazily
    for step in range(warm.plan.total_steps):
        warm.train_step(step)
    for n in sizes:
        reps = repeats if n <= EPOCH_TARGET_SIZE else 1
        runs: dict[int, list] = {default_threads: [], 1: []}
        for r in range(reps):
            for threads in runs:
                partial = 500 if n > EPOCH_TARGET_SIZE and threads != 1 else None
                runs[threads].append(_time_epoch(n, workdir / f"epoch_{n}_{threads}_{r}", threads, partial))
        total_steps = math.ceil(n / 32)
        for threads, results in runs.items():
            per_step = statistics.median(t / steps for t, steps, _ in results)
            epoch = per_step * total_steps
            timed = results[0][1]
            how = (f"{per_step * 1000:.2f} ms/step x {total_steps} steps"
                   + (f", extrapolated from {timed} steps" if timed < total_steps else "")
                   + (", 1 run" if reps == 1 else f", median of {reps}"))
            label = ("head-scope epoch, torch default threads" + f" ({default_threads})" if threads == default_threads
                     else "head-scope epoch, num_threads=1")
            if n == EPOCH_TARGET_SIZE:
                table.add(label, n, f"{seconds(epoch)} ({how})", f"< {EPOCH_SECONDS:.0f} s", epoch < EPOCH_SECONDS)
            else:
                table.add(label, n, f"{seconds(epoch)} ({how})")
        table.add("  per-pair records flush of the epoch (Parquet)", n, seconds(statistics.median(f for _, _, f in runs[1])))


# -- projections --------------------------------------------------------------------------------------------
def bench_projection(table: Table, sizes: list[int], repeats: int, with_umap: bool) -> None:
    """PCA and UMAP at each size, in rounds over all sizes (so a burst of load on the shared machine does not land
    on one size only); medians over the rounds."""
    import warnings

    from normbt_viz.analysis.projection import project

    warnings.filterwarnings("ignore", category=UserWarning, module="umap")  # n_jobs overridden by random_state, etc.
    project(clustered_vectors(50, seed=8), "pca")  # imports scikit-learn
    if with_umap:
        started = time.perf_counter()
        project(clustered_vectors(300, seed=9), "umap")
        table.add("UMAP first call (import + numba compile)", 300, seconds(time.perf_counter() - started))
    methods = ("pca", "umap") if with_umap else ("pca",)
    vectors = {n: clustered_vectors(n) for n in sizes}
    times = {(method, n): [] for method in methods for n in sizes}
    for _ in range(repeats):
        for n in sizes:
            for method in methods:
                started = time.perf_counter()
                project(vectors[n], method)
                times[method, n].append(time.perf_counter() - started)
    for n in sizes:
        for method in methods:
            how = f"median of {repeats}" if repeats > 1 else "1 run"
            table.add(f"{method.upper()} projection ({HIDDEN}-d)", n, f"{seconds(statistics.median(times[method, n]))} ({how})")


# -- app memory ----------------------------------------------------------------------------------------------
def write_run(root: Path, n: int) -> Path:
    """A finished BT run directory with a `n`-pair eval snapshot at steps 0 and 100, its texts, bins and a cached
    PCA map of the difference vectors (so the Embeddings page reads it instead of loading a backbone)."""
    from normbt_viz.analysis.projection import mapped_pair_ids
    from normbt_viz.runs.rundir import RunDir
    from normbt_viz.spec import RunSpec

    spec = RunSpec(demo_size=4000, max_steps=100).with_arm("bt").resolve()
    run = RunDir(root / "bt-s0").create(spec)
    pairs = synthetic_pairs(n)
    texts = pairs[["pair_id", "split", "category", "prompt", "chosen", "rejected", "flipped", "identical"]]
    diagnostics = pairs.drop(columns=["prompt", "chosen", "rejected", "x", "y", "x_rejected", "y_rejected"])
    last_batch = diagnostics.sample(32, random_state=0).assign(split="batch")
    run.write_pair_texts(texts)
    for step in (0, 100):
        run.write_pairs(step, pd.concat([diagnostics.assign(step=step), last_batch.assign(step=step)], ignore_index=True))
    run.write_bins([0.8, 1.2, 1.6, 2.2], "eval slice, initial model")
    run.append_metrics([{"step": s, "loss": 0.69 - s / 1000, "eval_accuracy": 0.5 + s / 1000} for s in (0, 50, 100)])
    run.write_projection("pca", "diff", pairs[["x", "y"]].to_numpy(np.float32)[: len(mapped_pair_ids(run, 100))])
    run.write_status(state="done", step=100, total_steps=100, started_at=time.time() - 60)
    return run.path


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def bench_app(table: Table, n: int, workdir: Path) -> None:
    if not CHROMIUM.exists():
        table.add("app peak RSS", n, f"skipped: {CHROMIUM} not installed")
        return
    from playwright.sync_api import sync_playwright

    from normbt_viz.ui.serve import start_app

    root = workdir / "runs"
    write_run(root, n)
    env = {**os.environ, "NORMBT_VIZ_RUNS": str(root), "NORMBT_VIZ_CACHE": str(workdir / "cache"), "PYTHONPATH": str(ROOT)}
    server, url = start_app(env, workdir / "streamlit.log", timeout=90)
    try:
        idle = _kib(server.pid, "VmRSS")
        page_times = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            for path, ready in (("gradients", "document.querySelectorAll('.js-plotly-plot').length >= 5"),
                                ("embeddings", "document.querySelectorAll('.js-plotly-plot').length >= 1"),
                                ("pairs", "document.body.innerText.includes('Inspect one pair')")):
                started = time.perf_counter()
                page.goto(f"{url}/{path}")
                page.wait_for_function(ready, timeout=180_000)
                page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=180_000)
                page_times[path] = time.perf_counter() - started
                page.wait_for_timeout(1000)
                errors = page.locator(ERROR_BOXES)
                if errors.count():
                    raise RuntimeError(f"{path} page shows an error: {errors.first.inner_text()[:200]}")
            browser.close()
        peak = _kib(server.pid, "VmHWM")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    for path, elapsed in page_times.items():
        table.add(f"app: {path.title()} page drawn (browser, first visit)", n, seconds(elapsed))
    table.add("app (streamlit) RSS after start, before any page", n, f"{idle / 1024:.0f} MB")
    table.add("app (streamlit) peak RSS after Gradients, Embeddings, Pairs", n, f"{peak / 1024:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when a row misses its target")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no UMAP: a smoke run of every part")
    parser.add_argument("--no-browser", action="store_true", help="skip the app memory part (streamlit + chromium)")
    parser.add_argument("--only", default="figures,epoch,projection,app", help="comma-separated parts to run (default: all)")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    if args.quick:
        figure_sizes, epoch_sizes, projection_sizes, app_size, repeats = [500], [320], [200], 500, 2
    else:
        figure_sizes, epoch_sizes, projection_sizes, app_size, repeats = [10_000, 50_000], [1_000, 10_000, 100_000], [1_000, 5_000, 20_000], 20_000, 5
    import torch

    print(f"bench_scaling: {os.cpu_count()} CPU(s), torch {torch.__version__} with {torch.get_num_threads()} thread(s), "
          f"load average {os.getloadavg()[0]:.1f} at start{' (quick)' if args.quick else ''}", flush=True)
    table = Table()
    with tempfile.TemporaryDirectory(prefix="normbt_scaling_") as tmp:
        workdir = Path(tmp)
        steps = {
            "figures": lambda: bench_figures(table, figure_sizes, repeats),
            "epoch": lambda: bench_epoch(table, epoch_sizes, 1 if args.quick else 3, workdir),
            "projection": lambda: bench_projection(table, projection_sizes, 1 if args.quick else 3, with_umap=not args.quick),
            "app": lambda: None if args.no_browser else bench_app(table, app_size, workdir),
        }
        for name, step in steps.items():
            if name in parts:
                started = time.perf_counter()
                print(f"{name}:", flush=True)
                step()
                print(f"  ({name} took {time.perf_counter() - started:.1f} s)", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (2-core machines shared with other work read high)\n")
    print(table.render())
    if table.missed:
        print(f"\n{len(table.missed)} target(s) missed: " + "; ".join(f"{r[0]} @ {r[1]}" for r in table.missed))
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
