"""Peer benchmarks of the training issue: each figure against a named peer measured side by side in this run.

    python benchmarks/bench_peers.py            # the issue's configuration (a few minutes on 2 CPU cores)
    python benchmarks/bench_peers.py --check    # the same, exit status 1 when a target is missed
    python benchmarks/bench_peers.py --quick    # a tiny smoke configuration (figures meaningless)
    python benchmarks/bench_peers.py --only head,diagnostics   # parts: train, encode, head, diagnostics, runs
    python benchmarks/bench_peers.py --only runs --kinds uniform   # the runs part on one kind of data: uniform, ragged

The peers (trl, sentence-transformers) are benchmark-only: pip install -r benchmarks/requirements-bench.txt
torch==2.13.0. A part whose peer is missing is reported as SKIP, never as a miss.

Parts (each repeated, ours and the baseline alternating, median reported; threads pinned with --threads):
  train        full-scope optimizer step, MiniLM, batch 16 pairs, max length 128, fp32, dropout off, lr 1e-4,
               grad clip 1.0, no weight decay. Ours: `Trainer.train_step` (normbt_viz/train/loop.py). Baseline:
               TRL `RewardTrainer` on AutoModelForSequenceClassification(num_labels=1) of the same MiniLM
               folder, fed the very token ids our Trainer visits, in the same order (a sequential sampler),
               padded the same way (right, to the longest of the 2x16 sequences). Made equivalent on purpose:
               TRL's config defaults bf16=True and gradient_checkpointing=True are turned off, and the
               model's dropout probabilities are set to 0 (HF's Trainer puts the model in train mode; ours
               stays in eval mode). TRL logs every 10 000 steps, ours returns its metrics row without
               writing it: neither writes logs inside the timed window. Only steady-state steps count: the
               first --warmup steps of every repeat are excluded, then --steps steps are timed.
               Remaining differences, same cost: TRL reads the [CLS] pooler + a linear classifier, ours the
               mean over tokens + a linear head; TRL gets no token_type_ids (zeros), ours the segment ids.
  encode       representation extraction of the same 1,000 texts: ours = tokenize (encode_response) +
               `compute_representations(batch_size=32)`; baseline = sentence-transformers
               `SentenceTransformer(<minilm folder>).encode(texts, batch_size=32)` with max_seq_length 128.
               The vectors are checked to match (ours L2-normalised, since the packaged pipeline ends in
               Normalize).
  head         one head-scope epoch over 10,000 training pairs with cached features, batch 32, NormBT, via
               `Trainer.train_step` of a `Trainer.from_spec`. The features are random [n, 384] tensors put
               in the feature cache in place of a MiniLM forward (the epoch's cost does not depend on them).
  diagnostics  the same short default full-scope CLI run, `python -m normbt_viz train ...` with and without
               `--diagnostics off`, total wall per process. Skipped while the CLI lacks that flag.
  runs         whole runs, diagnostics on, against TRL `RewardTrainer` as people run it (its random order,
               padding to each batch's longest, no evaluation), on (a) uniform demo pairs, max length 128, and
               (b) HH-shaped ragged pairs, max length 256: HH-RLHF harmless from ../shared/data when present,
               else generated with its length shape. Ours: `Trainer.fit()` of the default full-scope NormBT run
               (its defaults: length-grouped batches, evaluations, exact-norm samples, per-pair records, the
               model saved); TRL: `train()` on the token ids of our run's training pairs. Same steps, batch 16,
               fp32, lr 1e-4, grad clip 1.0. Pairs/s = steps x batch / wall of the training call (model loading
               excluded on both sides); a warm-up run of each side first, then alternating repeats, medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

PARTS = ("train", "encode", "head", "diagnostics", "runs")


@dataclass
class Row:
    what: str
    ours: str
    baseline: str
    ratio: float | None  # None: skipped or not applicable
    target: str
    ok: bool | None  # None: skipped
    note: str = ""

    @property
    def verdict(self) -> str:
        return "SKIP" if self.ok is None else ("PASS" if self.ok else "MISS")


def log(message: str) -> None:
    print(message, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    return "[" + ", ".join(fmt.format(v) for v in values) + "]"


def have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# -- (a) full-scope training step: ours vs TRL RewardTrainer -------------------------------------------------
def our_full_trainer(args, work: Path, total_steps: int):
    from normbt_viz.runs.rundir import RunDir
    from normbt_viz.spec import RunSpec
    from normbt_viz.train.loop import Trainer

    spec = RunSpec(
        dataset="demo", demo_size=args.train_pairs, scope="full", batch_size=args.batch, lr=1e-4, max_grad_norm=1.0,
        weight_decay=0.0, max_length=128, dtype="float32", device="cpu", num_threads=args.threads,
        max_steps=total_steps, seed=0, loss="bt",
    ).resolve()
    trainer = Trainer.from_spec(spec, RunDir(work / "ours").create(spec))
    trainer.begin()  # as fit() does before step 0 (a no-op for BT; kept so any loss works)
    assert not trainer.backbone.model.training, "our backbone should be in eval mode (dropout off)"
    return trainer


def time_our_steps(trainer, first_step: int, warmup: int, steps: int) -> float:
    """Pairs per second over `steps` steady-state steps, after `warmup` untimed ones."""
    for step in range(first_step, first_step + warmup):
        trainer.train_step(step)
    start = time.perf_counter()
    for step in range(first_step + warmup, first_step + warmup + steps):
        trainer.train_step(step)
    return steps * trainer.spec.batch_size / (time.perf_counter() - start)


def trl_runner(args, work: Path, folder: str, trainer):
    """A function (first_step) -> pairs/s that trains TRL on exactly the pairs our Trainer visits from there."""
    import datasets
    import transformers
    from torch.utils.data import SequentialSampler
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=1, dtype=torch.float32,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0,
    )
    model.config.pad_token_id = tokenizer.pad_token_id

    class Clock(TrainerCallback):
        def __init__(self):
            self.ends: list[float] = []

        def on_step_end(self, _args, _state, control, **_kwargs):
            self.ends.append(time.perf_counter())
            return control

    class InOrder(RewardTrainer):
        """Visit the dataset in its stored order: the order our Trainer's steps visit the pairs."""

        def _get_train_sampler(self, train_dataset=None):
            return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

    per_step = args.batch
    n_steps = args.warmup + args.steps

    def run(first_step: int) -> float:
        order = trainer.plan.order[first_step * per_step : (first_step + n_steps) * per_step].tolist()
        assert len(order) == n_steps * per_step
        rows = {
            "chosen_ids": [trainer.scope.chosen[i].input_ids for i in order],
            "rejected_ids": [trainer.scope.rejected[i].input_ids for i in order],
        }
        config = RewardConfig(
            output_dir=str(work / "trl"), per_device_train_batch_size=per_step, learning_rate=1e-4, max_grad_norm=1.0,
            weight_decay=0.0, max_steps=n_steps, lr_scheduler_type="linear", warmup_steps=0, max_length=128,
            bf16=False, fp16=False, activation_checkpointing=False, use_cpu=True, dataloader_num_workers=0,
            logging_steps=10_000, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
            seed=0, dataset_num_proc=None,
        )
        clock = Clock()
        runner = InOrder(model=model, args=config, train_dataset=datasets.Dataset.from_dict(rows),
                         processing_class=tokenizer, callbacks=[clock])
        runner.train()
        assert len(clock.ends) == n_steps, f"TRL ran {len(clock.ends)} steps, expected {n_steps}"
        assert model.training and model.config.hidden_dropout_prob == 0.0 and not model.is_gradient_checkpointing
        run.optimizer_name = str(config.optim)
        elapsed = clock.ends[-1] - clock.ends[args.warmup - 1]
        return args.steps * per_step / elapsed

    run.optimizer_name = "?"
    return run


def bench_train(args, work: Path) -> list[Row]:
    if not have("trl"):
        return [Row(f"full-scope step, MiniLM, batch {args.batch}", "-", "TRL not installed", None, ">= 1.0x", None,
                    "pip install -r benchmarks/requirements-bench.txt torch==2.13.0")]
    from normbt_viz.model.backbones import resolve_backbone

    per_repeat = args.warmup + args.steps
    trainer = our_full_trainer(args, work, per_repeat * args.repeats)
    trl = trl_runner(args, work, resolve_backbone("minilm"), trainer)
    ours, theirs = [], []
    for r in range(args.repeats):
        first = r * per_repeat
        # Alternate who goes first; both sides train on the same slice of our Trainer's visiting order.
        if r % 2 == 0:
            ours.append(time_our_steps(trainer, first, args.warmup, args.steps))
            theirs.append(trl(first))
        else:
            theirs.append(trl(first))
            ours.append(time_our_steps(trainer, first, args.warmup, args.steps))
        log(f"  train repeat {r + 1}: ours {ours[-1]:.1f} pairs/s, TRL {theirs[-1]:.1f} pairs/s")
    ours_fused = getattr(trainer.state.optimizer, "optimizer", trainer.state.optimizer).defaults.get("fused")
    log(f"  threads after TRL: {torch.get_num_threads()}; TRL optimizer {trl.optimizer_name}; ours torch.optim.AdamW fused={ours_fused}")
    o, t = median(ours), median(theirs)
    return [Row(f"full-scope step, MiniLM, batch {args.batch}", f"{o:.1f} pairs/s {spread(ours)}", f"TRL RewardTrainer {t:.1f} pairs/s {spread(theirs)}",
                o / t, ">= 1.0x", o / t >= 1.0)]


# -- (b) representation extraction: ours vs sentence-transformers encode -------------------------------------
def bench_encode(args, work: Path) -> list[Row]:
    what = f"representation extraction, {args.texts} texts"
    if not have("sentence_transformers"):
        return [Row(what, "-", "sentence-transformers not installed", None, ">= 1.0x", None)]
    import torch.nn.functional as F
    from sentence_transformers import SentenceTransformer

    from normbt_viz.data.sources import load_pairs
    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.model.features import compute_representations, encode_response, truncate_from_start

    pairs = load_pairs("demo", demo_size=max(2, (args.texts + 1) // 2)).pairs
    texts = (pairs["chosen"].tolist() + pairs["rejected"].tolist())[: args.texts]
    backbone = load_backbone("minilm", device="cpu")
    peer = SentenceTransformer(backbone.path, device="cpu")
    peer.max_seq_length = 128
    special = set(backbone.tokenizer.all_special_ids)

    def ours_run():
        sequences = [truncate_from_start(encode_response(backbone, "", t), 128, special)[0] for t in texts]
        return compute_representations(backbone, sequences, batch_size=32), sequences

    def peer_run():
        return peer.encode(texts, batch_size=32, convert_to_tensor=True, show_progress_bar=False)

    ours_rates, peer_rates, compute_only = [], [], []
    ours_out = peer_out = None
    for r in range(args.repeats):
        for side in (("ours", "peer") if r % 2 == 0 else ("peer", "ours")):
            start = time.perf_counter()
            if side == "ours":
                ours_out, sequences = ours_run()
                ours_rates.append(len(texts) / (time.perf_counter() - start))
                start = time.perf_counter()
                compute_representations(backbone, sequences, batch_size=32)
                compute_only.append(len(texts) / (time.perf_counter() - start))
            else:
                peer_out = peer_run()
                peer_rates.append(len(texts) / (time.perf_counter() - start))
        log(f"  encode repeat {r + 1}: ours {ours_rates[-1]:.0f} seq/s (compute only {compute_only[-1]:.0f}), sentence-transformers {peer_rates[-1]:.0f} seq/s")
    n_truncated = sum(len(backbone.tokenizer(t)["input_ids"]) > 128 for t in texts)
    diff = float((F.normalize(ours_out, dim=-1) - peer_out.float().cpu()).abs().max())
    log(f"  encode: max |ours/||ours|| - sentence-transformers| = {diff:.2e} over {len(texts)} texts ({n_truncated} longer than 128 tokens)")
    o, p = median(ours_rates), median(peer_rates)
    same = diff < 1e-4
    return [Row(what, f"{o:.0f} seq/s {spread(ours_rates, '{:.0f}')} (compute only {median(compute_only):.0f})",
                f"sentence-transformers encode {p:.0f} seq/s {spread(peer_rates, '{:.0f}')}", o / p, ">= 1.0x, vectors match",
                o / p >= 1.0 and same, f"max abs diff {diff:.1e}")]


# -- (c) head-scope epoch over cached features --------------------------------------------------------------
def bench_head(args, work: Path) -> list[Row]:
    import pandas as pd

    import normbt_viz.model.features as features
    from normbt_viz.runs.rundir import RunDir
    from normbt_viz.spec import RunSpec
    from normbt_viz.train.loop import Trainer

    n_train, batch = args.head_pairs, 32
    n_total = int(round(n_train / 0.8))
    # Distinct short pairs (the demo generator stops at 4,000); their texts only feed tokenization.
    path = work / "head_pairs.parquet"
    pd.DataFrame({
        "prompt": [f"question {i}" for i in range(n_total)],
        "chosen": [f"a helpful answer number {i}" for i in range(n_total)],
        "rejected": [f"an unhelpful answer number {i}" for i in range(n_total)],
    }).to_parquet(path, index=False)
    steps_per_epoch = -(-n_train // batch)
    epochs = args.repeats + 1  # per thread count; the first warms up
    spec = RunSpec(dataset=str(path), scope="head", batch_size=batch, eval_fraction=0.2, loss="normbt", device="cpu",
                   num_threads=args.threads, max_steps=steps_per_epoch * 2 * epochs, seed=0).resolve()

    real = features.compute_representations
    generator = torch.Generator().manual_seed(0)
    features.compute_representations = lambda backbone, sequences, *a, **k: torch.randn(len(sequences), backbone.hidden_size, generator=generator)
    try:
        trainer = Trainer.from_spec(spec, RunDir(work / "head").create(spec))
    finally:
        features.compute_representations = real
    data = trainer.data
    assert data.n_train == n_train and len(data.trainable_index) == n_train, (data.n_train, len(data.trainable_index))
    trainer.begin()
    # Also one thread, alternating with the pinned count: a [32, 384] step is far below the size where a
    # second thread pays, and on a busy machine waiting for it costs more than the arithmetic.
    seconds: dict[int, list[float]] = {args.threads: [], 1: []}
    step = 0
    for epoch in range(2 * epochs):
        threads = args.threads if (epoch // 2 + epoch) % 2 == 0 else 1
        torch.set_num_threads(threads)
        start = time.perf_counter()
        for _ in range(steps_per_epoch):
            trainer.train_step(step % trainer.plan.total_steps)
            step += 1
        if epoch >= 2:  # one epoch at each thread count warms up
            seconds[threads].append(time.perf_counter() - start)
    torch.set_num_threads(args.threads)
    pinned, single = seconds[args.threads], seconds[1]
    log(f"  head: {steps_per_epoch} steps per epoch; {args.threads} threads {spread(pinned, '{:.3f}')} s, 1 thread {spread(single, '{:.3f}')} s")
    s = median(pinned)
    return [Row(f"head-scope epoch, {n_train:,} cached pairs", f"{s:.3f} s {spread(pinned, '{:.3f}')}", "-", None, "< 1 s", s < 1.0,
                f"{args.threads} threads; {steps_per_epoch} steps of {batch}, NormBT, {steps_per_epoch * batch / s:.0f} pairs/s;"
                f" 1 thread: {median(single):.3f} s")]


# -- (d) diagnostics on vs off, through the CLI -------------------------------------------------------------
def cli_has_diagnostics_flag() -> bool:
    result = subprocess.run([sys.executable, "-m", "normbt_viz", "train", "--help"], cwd=REPO, capture_output=True, text=True)
    return "--diagnostics" in result.stdout


def bench_diagnostics(args, work: Path) -> list[Row]:
    what = "default full-scope run, diagnostics on"
    if not cli_has_diagnostics_flag():
        message = "`python -m normbt_viz train` has no --diagnostics flag yet (it is being added in main): row skipped"
        log(f"  diagnostics: {message}")
        return [Row(what, "-", "same run, --diagnostics off", None, "wall <= 1.15x", None, message)]
    base = [sys.executable, "-m", "normbt_viz", "train", "--scope", "full", "--device", "cpu", "--num-threads", str(args.threads),
            "--demo-size", str(args.cli_pairs), "--max-steps", str(args.cli_steps), "--batch-size", str(args.cli_batch)]
    env = {**os.environ, "NORMBT_VIZ_CACHE": str(work / "cache")}
    on, off = [], []

    def wall(extra: list[str], tag: str) -> float:
        out = work / f"cli-{tag}-{len(on) + len(off)}"
        start = time.perf_counter()
        result = subprocess.run(base + ["--runs", str(out)] + extra, cwd=REPO, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(base + extra)} exited {result.returncode}: {result.stderr.strip()[-500:]}")
        return seconds

    for r in range(args.cli_repeats):
        for tag in (("on", "off") if r % 2 == 0 else ("off", "on")):
            (on if tag == "on" else off).append(wall([] if tag == "on" else ["--diagnostics", "off"], tag))
        log(f"  diagnostics repeat {r + 1}: on {on[-1]:.1f} s, off {off[-1]:.1f} s")
    a, b = median(on), median(off)
    return [Row(what, f"{a:.1f} s {spread(on)}", f"--diagnostics off {b:.1f} s {spread(off)}", a / b, "wall <= 1.15x", a / b <= 1.15,
                f"{args.cli_pairs} demo pairs, {args.cli_steps} steps of {args.cli_batch}, wall per process")]


# -- (e) whole runs with diagnostics on: ours vs TRL, uniform and ragged pairs ------------------------------
HH_FILE = REPO.parent / "shared" / "data" / "hh_rlhf_harmless_base_test.jsonl"


def ragged_pairs(path: Path, n: int, hh_file: Path, seed: int = 0) -> str:
    """HH-RLHF harmless pairs when ../shared/data has them, else a generated file with the same shape of lengths
    (HH's answers: mostly short, a long tail; a shared multi-turn prompt): what `--dataset` reads."""
    if hh_file.is_file():
        return str(hh_file)
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    words = lambda mean: " ".join(f"w{int(k)}" for k in rng.integers(0, 500, int(min(300, rng.lognormal(mean, 0.9)))))  # noqa: E731
    pd.DataFrame({"prompt": [words(3.2) for _ in range(n)], "chosen": [words(3.0) for _ in range(n)],
                  "rejected": [words(3.1) for _ in range(n)]}).to_json(path, orient="records", lines=True)
    return str(path)


def our_whole_run(args, work: Path, dataset: str, max_length: int, tag: str, **fields):
    """A Trainer of the default full-scope NormBT run with diagnostics on, ready to `fit` (setup untimed)."""
    from normbt_viz.runs.rundir import RunDir
    from normbt_viz.spec import RunSpec
    from normbt_viz.train.loop import Trainer

    spec = RunSpec(dataset=dataset, demo_size=args.run_pairs, limit=args.run_pairs, scope="full", batch_size=args.batch,
                   lr=1e-4, max_grad_norm=1.0, max_length=max_length, device="cpu", num_threads=args.threads,
                   max_steps=args.run_steps, seed=0, loss="normbt", diagnostics="full", **fields).resolve()
    folder = work / f"run-{tag}-{time.monotonic_ns()}"
    return Trainer.from_spec(spec, RunDir(folder).create(spec)), folder


def trl_whole_run(args, work: Path, trainer):
    """A function () -> pairs/s: TRL's RewardTrainer, as people run it (its default random order and padding
    to each batch's longest), on the token ids of our run's training pairs, the same steps and batch size."""
    import datasets
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    folder = trainer.backbone.path
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=1, dtype=torch.float32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    model.config.pad_token_id = tokenizer.pad_token_id
    train = trainer.data.trainable_index
    rows = datasets.Dataset.from_dict({"chosen_ids": [trainer.scope.chosen[i].input_ids for i in train],
                                       "rejected_ids": [trainer.scope.rejected[i].input_ids for i in train]})

    class Clock(TrainerCallback):
        def on_train_begin(self, _args, _state, control, **_kwargs):
            self.start = time.perf_counter()
            return control

        def on_train_end(self, _args, state, control, **_kwargs):
            self.seconds, self.steps = time.perf_counter() - self.start, state.global_step
            return control

    def run() -> float:
        config = RewardConfig(
            output_dir=str(work / "trl-run"), per_device_train_batch_size=args.batch, learning_rate=1e-4, max_grad_norm=1.0,
            weight_decay=0.0, max_steps=args.run_steps, lr_scheduler_type="linear", warmup_steps=int(0.1 * args.run_steps),
            max_length=trainer.spec.max_length, bf16=False, fp16=False, activation_checkpointing=False, use_cpu=True,
            dataloader_num_workers=0, logging_steps=10, save_strategy="no", eval_strategy="no", report_to="none",
            disable_tqdm=True, seed=0, dataset_num_proc=None)
        clock = Clock()
        RewardTrainer(model=model, args=config, train_dataset=rows, processing_class=tokenizer, callbacks=[clock]).train()
        assert clock.steps == args.run_steps, (clock.steps, args.run_steps)
        return args.run_steps * args.batch / clock.seconds

    return run


def bench_runs(args, work: Path) -> list[Row]:
    import json

    wanted = {kind.strip() for kind in args.kinds.split(",")}
    kinds = {}
    if "uniform" in wanted:
        kinds["uniform demo pairs"] = ("demo", 128, 1.0)
    if "ragged" in wanted:
        kinds["HH-shaped ragged pairs"] = (ragged_pairs(work / "ragged.jsonl", args.run_pairs, args.ragged_data), 256, 1.2)
    if not args.ragged_data.is_file():
        log(f"  {args.ragged_data} absent: the ragged pairs are generated with HH's length shape")
    rows = []
    for what, (dataset, max_length, target) in kinds.items():
        label = f"whole run, {what}, diagnostics on ({args.run_steps} steps of {args.batch}, max length {max_length})"
        if not have("trl"):
            rows.append(Row(label, "-", "TRL not installed", None, f">= {target}x", None, "pip install -r benchmarks/requirements-bench.txt torch==2.13.0"))
            continue
        tag = what.split()[0]
        trl = trl_whole_run(args, work, our_whole_run(args, work, dataset, max_length, tag)[0])
        ours, theirs, padding = [], [], None

        def ours_once() -> float:
            nonlocal padding
            trainer, folder = our_whole_run(args, work, dataset, max_length, tag)
            start = time.perf_counter()
            trainer.fit()
            seconds = time.perf_counter() - start
            padding = json.loads((folder / "status.json").read_text()).get("training_tokens")
            return args.run_steps * args.batch / seconds

        ours_once(), trl()  # warm-up: first-call costs (allocator, kernels, dataset mapping) on both sides
        for r in range(args.repeats):
            for side in (("ours", "trl") if r % 2 == 0 else ("trl", "ours")):
                (ours if side == "ours" else theirs).append(ours_once() if side == "ours" else trl())
            log(f"  {tag} repeat {r + 1}: ours {ours[-1]:.1f} pairs/s, TRL {theirs[-1]:.1f} pairs/s")
        o, t = median(ours), median(theirs)
        note = f"padding share {padding['padding_share']:.0%} grouped vs {1 - padding['real_tokens'] / padding['padded_tokens_ungrouped']:.0%} ungrouped" if padding else ""
        rows.append(Row(label, f"{o:.1f} pairs/s {spread(ours)}", f"TRL RewardTrainer {t:.1f} pairs/s {spread(theirs)}", o / t,
                        f">= {target}x", o / t >= target, note))
    return rows


# -- the table ---------------------------------------------------------------------------------------------
def print_table(rows: list[Row]) -> None:
    header = ("what", "ours", "baseline", "ratio", "target", "result")
    cells = [header] + [(r.what, r.ours, r.baseline, "-" if r.ratio is None else f"{r.ratio:.2f}x", r.target, r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    line = lambda c: "| " + " | ".join(v.ljust(w) for v, w in zip(c, widths)) + " |"  # noqa: E731
    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells[1:]:
        print(line(c))
    for r in rows:
        if r.note:
            print(f"  {r.what}: {r.note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny configuration for a smoke test (figures meaningless)")
    parser.add_argument("--check", action="store_true", help="exit 1 when any measured target is missed")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default 2; 1 with --quick, which is faster on a busy machine)")
    parser.add_argument("--repeats", type=int, default=None, help="alternating repeats per part (default 3; 1 with --quick)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed training steps per repeat (default 2; 1 with --quick)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per repeat (default 8; 1 with --quick)")
    parser.add_argument("--run-steps", type=int, default=None, help="optimizer steps per whole run in the runs part (default 25; 3 with --quick)")
    parser.add_argument("--run-pairs", type=int, default=None, help="pairs loaded for each whole run (default 500; 40 with --quick)")
    parser.add_argument("--ragged-data", type=Path, default=HH_FILE, help=f"HH-RLHF pairs for the runs part (default {HH_FILE})")
    parser.add_argument("--kinds", default="uniform,ragged", help="the runs part's data: uniform (demo pairs), ragged (HH-shaped), or both")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    quick = args.quick
    args.repeats = args.repeats or (1 if quick else 3)
    args.threads = args.threads or (1 if quick else 2)
    args.warmup = args.warmup or (1 if quick else 2)
    args.steps = args.steps or (1 if quick else 8)
    args.batch = 4 if quick else 16
    args.train_pairs = 40 if quick else 400
    args.texts = 32 if quick else 1000
    args.head_pairs = 200 if quick else 10_000
    args.cli_pairs, args.cli_steps, args.cli_batch, args.cli_repeats = (20, 2, 4, 1) if quick else (200, 20, 16, 3)
    args.run_pairs = args.run_pairs or (40 if quick else 500)
    args.run_steps = args.run_steps or (3 if quick else 25)

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="normbt-bench-peers-"))
    os.environ["NORMBT_VIZ_CACHE"] = str(work / "cache")  # never read or fill the user's feature cache
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight-loading bars would drown the figures
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {'quick' if quick else 'full'} configuration, parts: {', '.join(parts)}")
    log(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start (others' processes make every figure noisier)")
    benches = {"train": bench_train, "encode": bench_encode, "head": bench_head, "diagnostics": bench_diagnostics, "runs": bench_runs}
    rows: list[Row] = []
    for part in parts:
        log(f"[{part}]")
        started = time.perf_counter()
        rows.extend(benches[part](args, work))
        log(f"  ({time.perf_counter() - started:.0f} s)")
    print()
    log(f"load average {os.getloadavg()[0]:.1f} at the end")
    print_table(rows)
    missed = [r.what for r in rows if r.ok is False]
    if args.check and missed:
        print(f"targets missed: {'; '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
