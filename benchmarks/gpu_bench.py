#!/usr/bin/env python3
"""The GPU path measured: this engine's full-scope training against TRL's RewardTrainer on the same model and data.

    python benchmarks/gpu_bench.py --out $OUT/gpu_bench.json --budget-s 300      # on a GPU box
    python benchmarks/gpu_bench.py --tiny --device cpu --out /tmp/gpu_bench.json  # the CPU smoke configuration
    python benchmarks/gpu_bench.py --save-tokenizer-asset                          # once, where smollm2 is installed

Model: a Qwen2 decoder with Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate
4864, rope theta 1e6, tied embeddings) built from its config with random weights, and the vocabulary of the
tokenizer shipped with it (SmolLM2's, 49152 tokens, from benchmarks/assets/smollm2-tokenizer). The weights are
saved once (bf16 on a GPU) into a temporary folder that both engines load.

Data: synthetic pairs of one-token words, each side about --seq-len tokens after the chat template (prompt
about 400 tokens, answer about 100), written as a .jsonl with prompt/chosen/rejected columns. TRL is given
exactly the token ids our loader produces (pre-tokenized `chosen_ids`/`rejected_ids`), so both see the same
sequences; only the order in which pairs are drawn differs.

Measured parts (each in its own try/except: a failure prints one line and the rest go on):
  ours/bt/off, ours/bt/full, ours/normbt/off, ours/normbt/full
        `train_inline(RunSpec(scope="full", ...))`, the entry users run. Steady-state rate from the run's
        metrics.jsonl: per-step intervals of `elapsed_s` after the first --skip steps, leaving out the steps
        followed by an evaluation (their interval holds the evaluation). The rate over the whole training
        loop, evaluations included, is reported beside it.
  trl   `trl.RewardTrainer` (AutoModelForSequenceClassification, num_labels=1, same folder, same batch size,
        bf16, lr 2e-5, max_grad_norm 1.0, no gradient checkpointing), timed with a TrainerCallback at each
        step end after a device sync; the same steady-state rule.
  norms exact per-pair gradient norms of 32 pairs over every parameter: the module's
        `per_pair_full_grad_norms` (batched where it is) against one backward per pair
        (the engine's `per_pair_grad_norms_loop`); time ratio and max relative
        difference, in the training dtype, and in fp32 on a few pairs when time is left.

MFU = tokens/s x (6 N + 12 L d s) / peak, where N is the non-embedding parameter count (the reward model has no
LM head, so the embedding is a lookup, not a matmul), L the layers, d the hidden size and s the mean real
tokens per sequence (12 L d s per token = 12 L d s^2 per sequence: QK^T and AV, forward and backward, without
discounting the causal mask). tokens/s counts real (non-pad) tokens. Peak: dense bf16 of the detected GPU
(H100 SXM / H200: 989 TFLOP/s); --peak-tflops overrides.

--budget-s scales the step counts down so the whole script fits; a watchdog cancels a run that overruns (the run
directory's cancel file), and the JSON is rewritten after every part, so a killed script still leaves results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

for _key, _value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                     "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error",
                     "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}.items():
    os.environ.setdefault(_key, _value)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gpu_bench_inputs import SHAPES, build_model_folder, load_tokenizer, make_pairs, save_tokenizer_asset  # noqa: E402
from gpu_bench_kit import Budget, Results, Watchdog, log, one_line, sync  # noqa: E402

# Dense bf16 peaks (no sparsity), by a substring of torch.cuda.get_device_name(); first match wins.
PEAK_BF16 = [("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12), ("H800", 989e12), ("GH200", 989e12),
             ("B200", 2250e12), ("A100", 312e12), ("L40S", 362e12), ("A10G", 70e12)]



def steady_rate(intervals: list[float], pairs_per_step: int) -> dict:
    """Rates from per-step seconds (already stripped of warm-up and evaluation steps)."""
    if not intervals:
        return {"steady_steps": 0}
    mean = float(np.mean(intervals))
    return {"steady_steps": len(intervals), "step_s": round(mean, 5), "step_s_median": round(float(np.median(intervals)), 5),
            "pairs_per_s": round(pairs_per_step / mean, 3) if mean > 0 else None}


def mfu_fields(pairs_per_s: float | None, mean_tokens: float, params: dict, peak: float | None) -> dict:
    if not pairs_per_s:
        return {}
    tokens_per_s = pairs_per_s * 2 * mean_tokens
    flops_per_token = 6 * params["non_embedding"] + 12 * params["layers"] * params["hidden"] * mean_tokens
    out = {"tokens_per_s": round(tokens_per_s, 1), "tflops": round(tokens_per_s * flops_per_token / 1e12, 3)}
    if peak:
        out["mfu"] = round(tokens_per_s * flops_per_token / peak, 4)
    return out


def engine_timings(metrics, batch_size: int, skip: int) -> dict:
    """Steady-state step time from metrics.jsonl rows: training rows carry `loss`, evaluation rows `eval_*` keys.

    A training row's elapsed_s is stamped after that step's evaluation (if any), so the interval ending at a
    step followed by an evaluation holds the evaluation and is left out."""
    if metrics is None or len(metrics) == 0 or "elapsed_s" not in metrics or "step" not in metrics:
        return {"note": "no elapsed_s/step in metrics"}
    eval_columns = [c for c in metrics.columns if str(c).startswith("eval_")]
    is_eval = metrics[eval_columns].notna().any(axis=1) if eval_columns else metrics["step"] != metrics["step"]
    is_train = ~is_eval & (metrics["loss"].notna() if "loss" in metrics else True)
    train = metrics[is_train].sort_values("step")
    eval_steps = set(metrics.loc[is_eval, "step"].astype(int))
    steps = train["step"].astype(int).to_numpy()
    elapsed = train["elapsed_s"].astype(float).to_numpy()
    intervals = [float(elapsed[i] - elapsed[i - 1]) for i in range(1, len(steps))
                 if steps[i] > skip and steps[i] - steps[i - 1] == 1 and int(steps[i]) not in eval_steps]
    out = steady_rate(intervals, batch_size)
    start_rows = metrics[is_eval & (metrics["step"] == 0)]
    loop_start = float(start_rows["elapsed_s"].iloc[0]) if len(start_rows) else 0.0
    if len(train):
        loop_s = float(elapsed[-1]) - loop_start
        out.update({"trained_steps": int(steps[-1]), "setup_and_first_eval_s": round(loop_start, 3), "loop_s": round(loop_s, 3),
                    "evaluations": len(eval_steps),
                    "pairs_per_s_incl_eval": round(batch_size * int(steps[-1]) / loop_s, 3) if loop_s > 0 else None})
    return out


def run_ours(loss: str, diagnostics: str, *, folder: Path, data_path: Path, runs_root: Path, cfg: SimpleNamespace,
             steps: int, n_eval: int, n_total: int) -> dict:
    from normbt_viz.runs.launcher import train_inline
    from normbt_viz.spec import RunSpec

    fields = {f.name: f for f in dataclasses.fields(RunSpec)}
    wanted = dict(backbone=str(folder), dataset=str(data_path), scope="full", loss=loss, batch_size=cfg.batch_size,
                  max_length=cfg.seq_len, max_steps=steps, diagnostics=diagnostics, eval_fraction=n_eval / n_total,
                  full_grad_sample=cfg.full_grad_sample, lr=2e-5, max_grad_norm=1.0, warmup_ratio=0.0, device=cfg.device,
                  seed=0, name=f"{loss}-{diagnostics}", num_threads=cfg.threads)
    precision = cfg.dtype_name
    if "mixed_precision" in fields and cfg.dtype_name == "bfloat16":
        field = fields["mixed_precision"]
        if isinstance(field.default, bool):
            wanted["mixed_precision"] = True
        else:
            choices = field.metadata.get("choices") or ("bf16",)
            wanted["mixed_precision"] = next((c for c in choices if "bf" in str(c)), "bf16")
        wanted["dtype"] = "float32"
        precision = f"mixed_precision={wanted['mixed_precision']}"
    else:
        wanted["dtype"] = cfg.dtype_name
    missing = sorted(k for k in wanted if k not in fields)
    spec = RunSpec(**{k: v for k, v in wanted.items() if k in fields})
    started = time.time()
    run, status = train_inline(spec, runs_root)
    wall = time.time() - started
    out = {"loss": loss, "diagnostics": diagnostics, "precision": precision, "steps": steps, "wall_s": round(wall, 2),
           "state": (run.status() or status or {}).get("state"), "run_dir": run.name}
    if missing:
        out["spec_fields_missing"] = missing
    out.update(engine_timings(run.metrics(), cfg.batch_size, cfg.skip))
    shutil.rmtree(run.path, ignore_errors=True)  # two copies of the model per run: keep the disk free
    return out


def run_trl(*, folder: Path, chosen_ids, rejected_ids, cfg: SimpleNamespace, steps: int, work: Path, precision: str,
            deadline: float = math.inf) -> dict:
    try:
        import datasets
        import trl
        from trl import RewardConfig, RewardTrainer
    except Exception as exc:
        raise ImportError(f"TRL peer unavailable ({one_line(exc)})") from None
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback

    device = torch.device(cfg.device_resolved)
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            sync(device)
            times.append(time.perf_counter())
            if time.time() > deadline:  # the budget's backstop, as the watchdog is for our runs
                control.should_training_stop = True

    need = steps * cfg.batch_size
    dataset = datasets.Dataset.from_dict({"chosen_ids": (chosen_ids * math.ceil(need / len(chosen_ids)))[:need],
                                          "rejected_ids": (rejected_ids * math.ceil(need / len(rejected_ids)))[:need]})
    # Mirror our engine's weights: bf16 weights when it trains in bf16, fp32 weights + autocast under mixed precision.
    model_dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, dtype=model_dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    on_gpu = device.type == "cuda"
    wanted = dict(output_dir=str(work / "trl"), per_device_train_batch_size=cfg.batch_size, max_length=cfg.seq_len,
                  bf16=on_gpu and precision != "float32", fp16=False, learning_rate=2e-5, max_grad_norm=1.0,
                  logging_steps=max(1, steps // 2), report_to=[], gradient_checkpointing=False, dataloader_num_workers=0,
                  max_steps=steps, save_strategy="no", eval_strategy="no", seed=0, use_cpu=not on_gpu, disable_tqdm=True,
                  log_level="warning")
    names = {f.name for f in dataclasses.fields(RewardConfig)}
    args = RewardConfig(**{k: v for k, v in wanted.items() if k in names})
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=[StepTimer()])
    started = time.time()
    trainer.train()
    wall = time.time() - started
    intervals = [b - a for i, (a, b) in enumerate(zip(times, times[1:]), start=2) if i > cfg.skip]
    out = {"trl": trl.__version__, "datasets": datasets.__version__, "model_dtype": str(model_dtype).replace("torch.", ""),
           "bf16_autocast": bool(args.bf16), "steps": len(times), "train_wall_s": round(wall, 2),
           "optimizer": str(getattr(args, "optim", "")), "attn_implementation": getattr(model.config, "_attn_implementation", None)}
    out.update(steady_rate(intervals, cfg.batch_size))
    del trainer, model
    return out


def run_norms(*, folder: Path, rows: list[dict], cfg: SimpleNamespace, n_pairs: int, dtype_name: str, repeat: int = 2) -> dict:
    import pandas as pd

    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.model.features import tokenize_pairs
    from normbt_viz.model.reward_model import FullScope, ScoreHead
    from normbt_viz.train import diagnostics

    backbone = load_backbone(str(folder), device=cfg.device, dtype=dtype_name)
    frame = pd.DataFrame(rows[:n_pairs])
    frame.insert(0, "pair_id", [f"p{i}" for i in range(len(frame))])
    tokenized = tokenize_pairs(backbone, frame, cfg.seq_len)
    scope = FullScope(backbone, tokenized.chosen, tokenized.rejected)
    torch.manual_seed(0)
    head = ScoreHead(backbone.hidden_size).to(backbone.device)
    params = list(head.parameters()) + scope.trainable_parameters()
    index = list(range(len(frame)))
    batched = diagnostics.per_pair_full_grad_norms
    loop = diagnostics.per_pair_grad_norms_loop  # the engine's own one-backward-per-pair reference

    def timed(fn):
        sync(backbone.device)
        start = time.perf_counter()
        values = np.asarray(fn(head, scope, index, params), dtype=float)
        sync(backbone.device)
        return values, time.perf_counter() - start

    batched(head, scope, index[:2], params)  # warm-up: kernels, allocator
    loop(head, scope, index[:2], params)
    (fast, fast_s), (slow, slow_s) = timed(batched), timed(loop)
    if repeat > 1:  # best of two, alternating, so a noisy neighbour does not decide the ratio
        fast_s, slow_s = min(fast_s, timed(batched)[1]), min(slow_s, timed(loop)[1])
    rel = np.abs(fast - slow) / np.maximum(np.abs(slow), 1e-12)
    out = {"pairs": len(index), "dtype": dtype_name, "batched_s": round(fast_s, 4), "loop_s": round(slow_s, 4),
           "speedup": round(slow_s / fast_s, 3) if fast_s > 0 else None, "max_rel_diff": float(rel.max()),
           "baseline": "diagnostics.per_pair_grad_norms_loop",
           "norm_range": [float(slow.min()), float(slow.max())]}
    del scope, head, backbone, params
    return out


# -- main --------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="the CPU smoke configuration: 2 layers, hidden 64, ~64 tokens, 4 steps")
    parser.add_argument("--out", default=None, help="the JSON results file (default $OUT/gpu_bench.json, else ./gpu_bench.json)")
    parser.add_argument("--budget-s", type=float, default=300.0, help="wall-clock budget for the whole script; step counts scale down to fit")
    parser.add_argument("--tokenizer", default=None, help="a tokenizer folder (default: benchmarks/assets/smollm2-tokenizer)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per step (default 8; tiny 4)")
    parser.add_argument("--steps", type=int, default=None, help="steps per training part at most (default 80; tiny 4)")
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per sequence at most (default 512; tiny 64)")
    parser.add_argument("--norm-pairs", type=int, default=None, help="pairs for the per-pair norms (default 32; tiny 8)")
    parser.add_argument("--dtype", choices=("auto", "bfloat16", "float32"), default="auto", help="training dtype (auto: bfloat16 on a GPU, float32 on CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (the spec's num_threads too)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the accelerator's dense bf16 peak, overriding detection")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: ours,trl,norms,normbt,full")
    parser.add_argument("--keep-workdir", action="store_true")
    parser.add_argument("--save-tokenizer-asset", action="store_true", help="copy SmolLM2's tokenizer into benchmarks/assets and exit")
    return parser.parse_args(argv)


def configure(args) -> SimpleNamespace:
    tiny = args.tiny
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    on_gpu = device.startswith("cuda")
    return SimpleNamespace(
        tiny=tiny, device=device, device_resolved=device, on_gpu=on_gpu,
        shape=SHAPES["tiny" if tiny else "qwen2.5-0.5b"],
        batch_size=args.batch_size or (4 if tiny else 8),
        max_steps=args.steps or (4 if tiny else 80),
        seq_len=args.seq_len or (64 if tiny else 512),
        answer_len=12 if tiny else 100,
        norm_pairs=args.norm_pairs or (8 if tiny else 32),
        skip=1 if tiny else 5,  # warm-up steps left out of steady-state rates
        n_eval=8 if tiny else 32,
        full_grad_sample=4 if tiny else 8,
        dtype_name=args.dtype if args.dtype != "auto" else ("bfloat16" if on_gpu else "float32"),
        skip_parts={s.strip() for s in args.skip.split(",") if s.strip()},
        threads=args.threads,
    )


def detect_peak(cfg, override: float | None) -> tuple[float | None, str]:
    if override:
        return override * 1e12, f"--peak-tflops {override}"
    if not cfg.on_gpu:
        return None, "cpu: no peak assumed, MFU not reported"
    name = torch.cuda.get_device_name(torch.device(cfg.device))
    for key, peak in PEAK_BF16:
        if key in name:
            return peak, f"{name}: dense bf16 {peak / 1e12:.0f} TFLOP/s ({key})"
    return None, f"{name}: unknown peak, MFU not reported (pass --peak-tflops)"


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "accelerate", "peft", "trl", "datasets", "tokenizers", "pandas", "pyarrow", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    out["cuda"] = torch.version.cuda
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.save_tokenizer_asset:
        return save_tokenizer_asset()
    budget = Budget(args.budget_s)
    out_path = Path(args.out or Path(os.environ.get("OUT", ".")) / "gpu_bench.json")
    results = Results(out_path)
    cfg = configure(args)
    work = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    os.environ["NORMBT_VIZ_CACHE"] = str(work / "cache")
    os.environ["NORMBT_VIZ_RUNS"] = str(work / "runs")
    runs_root = work / "runs"
    runs_root.mkdir()
    watchdog = Watchdog(runs_root, budget.start + args.budget_s + 20)
    watchdog.start()
    try:
        peak, peak_note = detect_peak(cfg, args.peak_tflops)
    except Exception as exc:
        peak, peak_note = None, f"peak detection failed: {one_line(exc)}"
    data = results.data
    data["config"] = {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(cfg).items()}
    data["versions"] = versions()
    data["peak_flops"], data["peak_note"] = peak, peak_note
    data["mfu_formula"] = "tokens/s * (6*N_non_embedding + 12*layers*hidden*mean_tokens_per_sequence) / peak; tokens are real (non-pad) tokens"
    log(f"gpu_bench: {'tiny' if cfg.tiny else 'Qwen2.5-0.5B shape'} on {cfg.device}, budget {args.budget_s:.0f} s, out {out_path}")
    log(f"versions: {json.dumps(data['versions'])}")
    log(f"peak: {peak_note}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.on_gpu:  # TF32 stays at torch's default (off for matmuls), so the fp32 norm check is plain fp32
        try:
            gpu = torch.device(cfg.device)
            data["gpu"] = {"name": torch.cuda.get_device_name(gpu),
                           "memory_gib": round(torch.cuda.get_device_properties(gpu).total_memory / 2**30, 1),
                           "capability": ".".join(map(str, torch.cuda.get_device_capability(gpu)))}
            log(f"gpu: {json.dumps(data['gpu'])}")
        except Exception as exc:
            log(f"!! gpu properties: {one_line(exc)}")

    folder = work / "model"
    setup = SimpleNamespace(ok=False)
    with results.part("setup"):
        tokenizer, source = load_tokenizer(args.tokenizer, work)
        log(f"tokenizer: {source} ({len(tokenizer)} tokens)")
        dtype = torch.bfloat16 if cfg.dtype_name == "bfloat16" else torch.float32
        params = build_model_folder(folder, tokenizer, cfg.shape, dtype, seed=0, device=cfg.device)
        log(f"model: Qwen2 {cfg.shape}, vocab {params['vocab']}: N total {params['total'] / 1e6:.2f} M, "
            f"non-embedding {params['non_embedding'] / 1e6:.2f} M (MFU uses non-embedding), saved {cfg.dtype_name} in {folder}")
        n_total = cfg.max_steps * cfg.batch_size + cfg.n_eval
        rows, chosen_ids, rejected_ids, how = make_pairs(tokenizer, max(n_total, cfg.norm_pairs), cfg.seq_len, cfg.answer_len, seed=0)
        n_total = len(rows)
        data_path = work / "pairs.jsonl"
        data_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        lengths = np.array([len(x) for x in chosen_ids + rejected_ids])
        mean_tokens = float(lengths.mean())
        data["tokenizer"] = source
        data["params"] = params
        data["data"] = {"pairs": n_total, "tokens_per_sequence_mean": round(mean_tokens, 1), "min": int(lengths.min()),
                        "max": int(lengths.max()), "encoded_with": how, "path": str(data_path)}
        log(f"data: {n_total} pairs, tokens per sequence mean {mean_tokens:.1f} (min {lengths.min()}, max {lengths.max()}), encoded with {how}")
        setup.ok = True
    if not setup.ok:
        log("setup failed: nothing to measure")
        data["summary"] = {}
        results.save()
        return 1

    parts = data["parts"]
    plan = [("ours/bt/off", 1.0), ("trl", 1.4), ("ours/bt/full", 1.4), ("norms", 0.6), ("ours/normbt/off", 1.0), ("ours/normbt/full", 1.4)]
    if cfg.on_gpu:
        plan.append(("norms/fp32", 0.3))
    skip_words = cfg.skip_parts
    plan = [(n, w) for n, w in plan if not any(word in n.split("/") for word in skip_words)]
    estimate = SimpleNamespace(step_s=None, overhead_s=None)
    min_steps = cfg.skip + (2 if cfg.tiny else 5)

    def steps_for(name: str, weight: float, weights_left: float, factor: float = 1.0) -> int | None:
        """Steps that fit this part's share of the budget left (None: not even the minimum fits)."""
        if estimate.step_s is None:
            return cfg.max_steps if budget.left > 0 else None
        share = budget.share(weight, weights_left)
        fit = int((share - estimate.overhead_s) / (estimate.step_s * factor))
        if fit < min_steps:
            return None if budget.left < estimate.overhead_s + min_steps * estimate.step_s * factor else min_steps
        return min(cfg.max_steps, fit)

    for position, (name, weight) in enumerate(plan):
        weights_left = sum(w for _, w in plan[position:])
        if budget.left <= 0:
            results.skip(name, "budget exhausted")
            continue
        if name.startswith("ours/"):
            _, loss, diag = name.split("/")
            steps = steps_for(name, weight, weights_left, 1.3 if diag == "full" else 1.0)
            if steps is None:
                results.skip(name, "budget")
                continue
            with results.part(name):
                result = run_ours(loss, diag, folder=folder, data_path=data_path, runs_root=runs_root, cfg=cfg, steps=steps,
                                  n_eval=cfg.n_eval, n_total=n_total)
                result.update(mfu_fields(result.get("pairs_per_s"), mean_tokens, params, peak))
                parts[name] = result
                if result.get("step_s") and estimate.step_s is None:
                    estimate.step_s = result["step_s"]
                    estimate.overhead_s = max(1.0, result["wall_s"] - steps * result["step_s"])
                log(f"   {name}: {_brief(result)}")
        elif name == "trl":
            steps = steps_for(name, weight, weights_left, 1.0)
            if steps is None:
                results.skip(name, "budget")
                continue
            with results.part(name):
                precision = parts.get("ours/bt/off", {}).get("precision", cfg.dtype_name)
                result = run_trl(folder=folder, chosen_ids=chosen_ids, rejected_ids=rejected_ids, cfg=cfg, steps=steps,
                                 work=work, precision="bfloat16" if precision == "bfloat16" else ("float32" if precision == "float32" else "mixed"),
                                 deadline=watchdog.deadline)
                result.update(mfu_fields(result.get("pairs_per_s"), mean_tokens, params, peak))
                parts[name] = result
                log(f"   {name}: {_brief(result)}")
        elif name.startswith("norms"):
            fp32 = name.endswith("fp32")
            if fp32 and budget.left < 30:
                results.skip(name, "budget")
                continue
            with results.part(name):
                result = run_norms(folder=folder, rows=rows, cfg=cfg, n_pairs=min(8, cfg.norm_pairs) if fp32 else cfg.norm_pairs,
                                   dtype_name="float32" if fp32 else cfg.dtype_name, repeat=1 if fp32 or cfg.tiny else 2)
                parts[name] = result
                log(f"   {name}: batched {result['batched_s']:.3f} s, loop {result['loop_s']:.3f} s -> {result['speedup']}x, "
                    f"max rel diff {result['max_rel_diff']:.2e} ({result['baseline']})")
    data["summary"] = summarize(parts)
    data["watchdog_fired"] = watchdog.fired
    data["total_s"] = round(time.time() - budget.start, 1)
    results.save()
    print_table(data)
    if not args.keep_workdir:
        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {out_path} ({data['total_s']} s)")
    return 0


def _brief(result: dict) -> str:
    keys = ("steps", "steady_steps", "step_s", "pairs_per_s", "pairs_per_s_incl_eval", "tokens_per_s", "mfu", "wall_s", "train_wall_s", "state")
    return ", ".join(f"{k} {result[k]}" for k in keys if result.get(k) is not None)


def summarize(parts: dict) -> dict:
    """The issue's three targets, each with the numbers it is computed from (None where a part is missing)."""
    trl = parts.get("trl", {}).get("pairs_per_s")
    off = parts.get("ours/bt/off", {}).get("pairs_per_s")
    full = parts.get("ours/bt/full", {})
    norms = parts.get("norms", {})
    summary = {
        "off_vs_trl_pairs_per_s": round(off / trl, 3) if off and trl else None,
        "full_vs_trl_time": round(trl / full["pairs_per_s"], 3) if trl and full.get("pairs_per_s") else None,
        "full_vs_trl_time_incl_eval": round(trl / full["pairs_per_s_incl_eval"], 3) if trl and full.get("pairs_per_s_incl_eval") else None,
        "norms_speedup": norms.get("speedup"),
    }
    summary["targets"] = {
        "off >= 1.0x TRL pairs/s": None if summary["off_vs_trl_pairs_per_s"] is None else summary["off_vs_trl_pairs_per_s"] >= 1.0,
        "full <= 1.2x TRL time (steady)": None if summary["full_vs_trl_time"] is None else summary["full_vs_trl_time"] <= 1.2,
        "batched norms >= 5x loop": None if summary["norms_speedup"] is None else summary["norms_speedup"] >= 5.0,
    }
    return summary


def print_table(data: dict) -> None:
    parts = data["parts"]
    header = f"{'part':<18} {'steps':>5} {'step s':>8} {'pairs/s':>9} {'incl eval':>9} {'tokens/s':>10} {'TFLOP/s':>8} {'MFU':>6}"
    log("")
    log(header)
    log("-" * len(header))
    for name in ("trl", "ours/bt/off", "ours/normbt/off", "ours/bt/full", "ours/normbt/full"):
        r = parts.get(name)
        if r is None:
            why = data["errors"].get(name) or data["skipped"].get(name) or "not run"
            log(f"{name:<18} {why}")
            continue
        cell = lambda key, fmt: format(r[key], fmt) if r.get(key) is not None else "-"  # noqa: E731
        log(f"{name:<18} {cell('steady_steps', '>5')} {cell('step_s', '>8.4f')} {cell('pairs_per_s', '>9.2f')} "
            f"{cell('pairs_per_s_incl_eval', '>9.2f')} {cell('tokens_per_s', '>10.0f')} {cell('tflops', '>8.1f')} {cell('mfu', '>6.1%')}")
    for name in ("norms", "norms/fp32"):
        r = parts.get(name)
        if r:
            log(f"{name:<18} {r['pairs']} pairs {r['dtype']}: batched {r['batched_s']:.3f} s, one backward per pair {r['loop_s']:.3f} s "
                f"-> {r['speedup']}x, max rel diff {r['max_rel_diff']:.2e}")
        elif name in data["errors"] or name in data["skipped"]:
            log(f"{name:<18} {data['errors'].get(name) or data['skipped'].get(name)}")
    log(f"params: {json.dumps(data.get('params'))}; peak: {data.get('peak_note')}")
    for target, met in data["summary"]["targets"].items():
        log(f"target {target}: {'met' if met else ('NOT met' if met is False else 'not measured')}")
    log(f"summary: {json.dumps({k: v for k, v in data['summary'].items() if k != 'targets'})}")


if __name__ == "__main__":
    sys.exit(main())
