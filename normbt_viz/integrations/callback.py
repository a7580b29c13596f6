"""A TRL reward training written as one of this project's run directories, so the app shows it like its own runs.

`NormBTRunCallback` is added by `NormBTRewardTrainer` (integrations/trl.py), which hands it what TRL's hooks do
not carry: every trained pair's reward, distance, weight and update from the training forward itself, and the
eval pairs' values from TRL's own evaluation forward. It writes, on the main process:

- spec.json: the spec as far as TRL's arguments map onto it (backbone, loss arm and options, learning rate,
  batch, steps, seed); status.json lists in `missing` what does not map (left at the spec's default) and what
  TRL cannot provide (exact full-gradient norms, the re-scored train sample, a `model/` folder: TRL saves its own
  checkpoints in its output_dir);
- metrics.jsonl: one row per optimizer step (TRL's metric names, exact per step, with `normbt_mu` the μ the step's
  weights used; `grad_norm` and `learning_rate` where TRL logged that step) and one row per evaluation;
- records/: every trained pair once per step; pairs/step_N.parquet and representations/step_N.npz at each
  evaluation (step 0 included), with distance bins fixed from the step-0 eval distances, as the trainer does.

The user can stop the run from the app (its cancel file): training stops at the next step and reads cancelled.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import TrainerCallback

from normbt_viz.params import field_problem
from normbt_viz.runs.launcher import new_run_dir
from normbt_viz.runs.rundir import RunDir, default_runs_root, safe_name
from normbt_viz.spec import TRACKERS, spec_field
from normbt_viz.train.diagnostics import assign_bins, distance_bin_edges

MAP_SAMPLE = 1000  # eval pairs whose h is kept at each evaluation (fp16), as the trainer keeps for backbone scopes
NOT_FROM_TRL = ["full_grad_norm (exact per-pair gradient norms)", "train-split re-scoring at evaluations", "model/ (TRL saves to its output_dir)"]


def _text(value) -> str:
    """A dataset cell as text: plain text as is, a conversation as 'role: content' lines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in value if isinstance(m, dict))
    return ""


def pair_table(dataset, split: str, tokenizer) -> pd.DataFrame:
    """pair_id, split, category, prompt, chosen, rejected, lengths and flags of every pair of a prepared TRL dataset.

    The dataset's own `id`, `category` and `flipped` columns are used when it has them; otherwise ids are
    '<split>-<row>' and the category reads '(none)'. Texts come from the text columns, or are decoded from the
    token ids when the dataset arrived tokenized."""
    columns = dataset.column_names
    n = len(dataset)
    chosen_ids, rejected_ids = dataset["chosen_ids"], dataset["rejected_ids"]

    def texts(name: str, ids) -> list[str]:
        if name in columns:
            return [_text(v) for v in dataset[name]]
        return tokenizer.batch_decode(ids, skip_special_tokens=True) if ids is not None else [""] * n

    prompt = texts("prompt", None)
    chosen, rejected = texts("chosen", chosen_ids), texts("rejected", rejected_ids)
    # TRL writes prompt + answer back into the answer columns when it tokenizes; show the answer alone.
    chosen = [c[len(p):].lstrip("\n") if p and c.startswith(p) else c for p, c in zip(prompt, chosen)]
    rejected = [r[len(p):].lstrip("\n") if p and r.startswith(p) else r for p, r in zip(prompt, rejected)]
    ids = [str(v) for v in dataset["id"]] if "id" in columns else []
    if len(set(ids)) != n:
        ids = [f"{split}-{row}" for row in range(n)]
    frame = pd.DataFrame({
        "pair_id": ids,
        "split": split,
        "category": [str(v) for v in dataset["category"]] if "category" in columns else "(none)",
        "prompt": prompt, "chosen": chosen, "rejected": rejected,
        "len_chosen": [len(x) for x in chosen_ids], "len_rejected": [len(x) for x in rejected_ids],
        "identical_input": [list(c) == list(r) for c, r in zip(chosen_ids, rejected_ids)],
    })
    frame["flipped"] = np.asarray(dataset["flipped"], dtype=bool) if "flipped" in columns else False
    return frame


def trl_spec(trainer, dataset_name: str) -> tuple[object, list[str]]:
    """(the run spec as far as TRL's arguments map, the spec fields that do not map and keep their default)."""
    args, model = trainer.args, trainer.accelerator.unwrap_model(trainer.model)
    world = trainer.accelerator.num_processes
    peft = hasattr(model, "peft_config")
    config = model.config
    mapped = {
        "dataset": dataset_name,
        "backbone": getattr(config, "_name_or_path", "") or type(model).__name__,
        "pooling": "last" if _is_decoder(config) else "first",
        "scope": "lora" if peft else "full",
        "max_length": args.max_length,
        "mixed_precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "no",
        "gradient_checkpointing": bool(args.gradient_checkpointing),
        "lr": args.learning_rate,
        "warmup_ratio": getattr(args, "warmup_ratio", None),
        "weight_decay": args.weight_decay,
        "batch_size": args.per_device_train_batch_size * world,
        "grad_accum": args.gradient_accumulation_steps,
        "epochs": float(args.num_train_epochs),
        "max_steps": args.max_steps if args.max_steps and args.max_steps > 0 else None,
        "max_grad_norm": args.max_grad_norm if args.max_grad_norm and args.max_grad_norm > 0 else None,
        "seed": args.seed,
        "diagnostics": "eval",
        "eval_every": args.eval_steps if str(args.eval_strategy).endswith("steps") and args.eval_steps else None,
        "full_grad_sample": 0,
        "diagnose_train_pairs": 0,
        "report_to": ",".join(t for t in (args.report_to or []) if t in TRACKERS),
        "name": safe_name(args.run_name or Path(args.output_dir).name, "trl"),
        "dataset_fingerprint": getattr(trainer.train_dataset, "_fingerprint", "") or "",
    }
    kept, missing = {}, []
    for name, value in mapped.items():
        if value is None and field_problem(spec_field(name), None):
            missing.append(name)
        elif field_problem(spec_field(name), value):
            missing.append(name)
        else:
            kept[name] = value
    spec = dataclasses.replace(trainer.pair_spec, **kept)
    from normbt_viz.spec import package_versions

    spec.package_versions = {**package_versions(), **_versions("trl")}
    return spec, missing


def _is_decoder(config) -> bool:
    """Whether the score reads the last token (a decoder), as the project's backbones decide it; an encoder's
    score reads its pooler output over the first token, which the spec can only call "first"."""
    from normbt_viz.model.backbones import is_decoder_config

    try:
        return is_decoder_config(config)
    except Exception:  # an encoder-decoder model: neither of the spec's poolings
        return False


def _versions(*names: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


class NormBTRunCallback(TrainerCallback):
    """Writes a `NormBTRewardTrainer`'s training as a run directory (see the module docstring)."""

    def __init__(self, trainer, run_dir: Path | None = None):
        self.trainer, self.requested_dir = trainer, run_dir
        self.run: RunDir | None = None
        self.pairs: pd.DataFrame | None = None  # every pair the run saw: train rows, then eval rows
        self.bin_edges: np.ndarray | None = None
        self.initial_distance: dict[str, float] = {}
        self.pending_row: dict | None = None  # the last step's metrics, until TRL's log of that step adds grad_norm
        self.records: list[pd.DataFrame] = []
        self.started = time.time()

    @property
    def writes(self) -> bool:
        return self.trainer.accelerator.is_main_process

    # -- set-up --------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        trainer = self.trainer
        tokenizer = trainer.processing_class
        train = pair_table(trainer.train_dataset, "train", tokenizer)
        eval_dataset = trainer.eval_dataset if not isinstance(trainer.eval_dataset, dict) else None
        evals = pair_table(eval_dataset, "eval", tokenizer) if eval_dataset is not None else train.iloc[:0]
        self.pairs = pd.concat([train, evals], ignore_index=True)
        self.train_ids, self.eval_ids = train["pair_id"].to_numpy(), evals["pair_id"].to_numpy()
        if not self.writes:
            return
        name = getattr(getattr(trainer.train_dataset, "info", None), "dataset_name", None) or "in-memory"
        spec, unmapped = trl_spec(trainer, f"trl:{name}")
        status = {"pid": os.getpid(), "host": socket.gethostname(), "source": "trl",
                  "h": "the input of the model's score layer at its pooled token" + ("" if _is_decoder(trainer.model.config) else " (the pooler output)"),
                  "missing": {"spec_fields_at_default": unmapped, "not_provided_by_trl": NOT_FROM_TRL
                              + ([] if eval_dataset is not None else ["evaluations (no single eval_dataset)"])}}
        if self.requested_dir is None:
            self.run = new_run_dir(default_runs_root(), spec, **status)
        else:
            self.run = RunDir(self.requested_dir).create(spec.resolve(), **status)
        self.run.mark_running()
        self.run.write_status(total_steps=state.max_steps, n_train=len(train), n_eval=len(evals), n_trained_pairs=len(train),
                              n_identical_input=int(self.pairs["identical_input"].sum()), n_processes=trainer.accelerator.num_processes)
        self.run.write_pair_texts(self.pairs[["pair_id", "split", "category", "prompt", "chosen", "rejected", "flipped"]])

    def before_first_step(self) -> None:
        """μ₀ exists now: evaluate at step 0 (every process takes part), which fixes the distance bins."""
        if self.trainer.eval_dataset is not None and not isinstance(self.trainer.eval_dataset, dict):
            self.trainer.evaluate()

    # -- each step -----------------------------------------------------------------------------
    def on_step_begin(self, args, state, control, **kwargs):
        self.step_learning_rate = self.trainer._get_learning_rate()  # the scheduler moves it before on_step_end

    def on_step_end(self, args, state, control, **kwargs):
        stats = self.trainer.step_stats
        if not self.writes or stats is None:
            return
        self._flush_row()
        step = state.global_step
        self.pending_row = {"step": step, **{k: stats[k] for k in ("loss", "accuracy", "margin", "mean_reward", "min_reward", "max_reward")},
                            "learning_rate": self.step_learning_rate, "epoch": state.epoch}
        if stats["normbt_mu"] is not None:
            self.pending_row["normbt_mu"] = stats["normbt_mu"]
        reward_chosen, reward_rejected, rep_distance, weight, dloss_dmargin = stats["records"].T
        margin = reward_chosen - reward_rejected
        self.records.append(pd.DataFrame({
            "step": np.full(len(margin), step, dtype=np.int32),
            "pair_id": self.train_ids[stats["index"].astype(int)],
            "reward_chosen": reward_chosen.astype(np.float32), "reward_rejected": reward_rejected.astype(np.float32),
            "margin": margin.astype(np.float32), "rep_distance": rep_distance.astype(np.float32),
            "weight": weight.astype(np.float32), "update_norm": (dloss_dmargin * rep_distance).astype(np.float32),
            "head_grad_norm": (rep_distance / (1.0 + np.exp(margin))).astype(np.float32),
        }))
        if self.run.cancel_requested:
            control.should_training_stop = True
        if time.time() - self.run.read_raw_status().get("updated_at", 0) >= 1.0 or step == state.max_steps:
            self.run.write_status(step=step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.writes and self.pending_row is not None and logs and "grad_norm" in logs and self.pending_row["step"] == state.global_step:
            self.pending_row["grad_norm"] = float(logs["grad_norm"])

    def _flush_row(self) -> None:
        if self.pending_row is not None:
            self.pending_row["elapsed_s"] = round(time.time() - self.started, 3)
            self.run.append_metrics([self.pending_row])
            self.pending_row = None

    def _flush_records(self) -> None:
        if self.records:
            self.run.write_records(pd.concat(self.records, ignore_index=True))
            self.records = []

    # -- evaluations ---------------------------------------------------------------------------
    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        trainer = self.trainer
        collected, trainer.eval_records = trainer.eval_records, []
        if not collected:
            return
        gather = trainer.accelerator.gather if trainer.accelerator.num_processes > 1 else (lambda t: t)
        index = gather(torch.cat([c["index"] for c in collected])).cpu().numpy().astype(int)
        values = gather(torch.cat([c["records"] for c in collected])).double().cpu().numpy()
        h_chosen = gather(torch.cat([c["h_chosen"] for c in collected]).float()).cpu()
        h_rejected = gather(torch.cat([c["h_rejected"] for c in collected]).float()).cpu()
        per_pair = gather(torch.cat([c["per_pair"] for c in collected]).float()).double().cpu().numpy()
        if not self.writes:
            return
        _, first = np.unique(index, return_index=True)  # an uneven last batch is padded with repeats across processes
        index, values, per_pair = index[first], values[first], per_pair[first]
        h_chosen, h_rejected = h_chosen[first], h_rejected[first]
        step = state.global_step
        self._flush_row()
        self._flush_records()
        frame = self._snapshot(step, index, values)
        self.run.write_pairs(step, frame)
        keep = min(MAP_SAMPLE, len(frame))
        self.run.write_representations(step, frame["pair_id"].to_numpy()[:keep], h_chosen[:keep].half().numpy(), h_rejected[:keep].half().numpy())
        row = {"step": step}
        for key, value in (metrics or {}).items():
            if isinstance(value, (int, float)) and not key.endswith(("_runtime", "_per_second")):
                row["normbt_mu" if key == "eval_normbt_mu" else key] = float(value)
        trained = frame[~frame["identical_input"]]
        row.update({"eval_bt_loss": float(np.logaddexp(0.0, -frame["margin"].to_numpy()).mean()),
                    "eval_accuracy": float(frame["correct"].mean()),
                    "eval_mean_weight": float(trained["weight"].mean()) if len(trained) else float("nan")})
        for b, acc in frame.groupby("distance_bin")["correct"].mean().items():
            row[f"eval_accuracy_bin_{int(b)}"] = float(acc)
        for category, acc in frame.groupby("category")["correct"].mean().items():
            row[f"eval_accuracy_{category}"] = float(acc)
        if trainer.pair_loss.scale is not None:
            row["normbt_mu"] = trainer.pair_loss.scale
        row["elapsed_s"] = round(time.time() - self.started, 3)
        self.run.append_metrics([row])
        self.run.write_status(step=step, eval_steps=sorted(set(self.run.read_raw_status().get("eval_steps", [])) | {step}))

    def _snapshot(self, step: int, index: np.ndarray, values: np.ndarray) -> pd.DataFrame:
        """The eval pairs' diagnostics in the trainer's snapshot layout (columns TRL cannot give are NaN)."""
        reward_chosen, reward_rejected, rep_distance, weight, dloss_dmargin = values.T
        margin = reward_chosen - reward_rejected
        pred_error = 1.0 / (1.0 + np.exp(margin))
        meta = self.pairs[self.pairs["split"] == "eval"].iloc[index]
        if self.bin_edges is None:
            self.bin_edges = distance_bin_edges(rep_distance, self.trainer.pair_spec.n_distance_bins)
            self.initial_distance = dict(zip(meta["pair_id"], rep_distance))
            self.run.write_bins(self.bin_edges.tolist(), "eval slice, initial model" if step == 0 else f"eval slice at step {step}")
        initial = np.array([self.initial_distance.get(pid, np.nan) for pid in meta["pair_id"]])
        known = np.isfinite(initial)
        bins = np.full(len(initial), -1)
        bins[known] = assign_bins(initial[known], self.bin_edges)
        identical = meta["identical_input"].to_numpy()
        return pd.DataFrame({
            "step": step, "pair_id": meta["pair_id"].to_numpy(), "split": "eval", "category": meta["category"].to_numpy(),
            "reward_chosen": reward_chosen, "reward_rejected": reward_rejected, "margin": margin, "pred_error": pred_error,
            "rep_distance": rep_distance, "head_grad_norm": pred_error * rep_distance,
            "weight": np.where(identical, np.nan, weight), "update_norm": dloss_dmargin * rep_distance,
            "correct": margin > 0, "len_chosen": meta["len_chosen"].to_numpy(), "len_rejected": meta["len_rejected"].to_numpy(),
            "flipped": meta["flipped"].to_numpy(), "identical": False, "identical_input": identical,
            "full_grad_norm": np.nan, "rep_distance_init": initial, "distance_bin": bins,
        })

    # -- the end -------------------------------------------------------------------------------
    def on_train_end(self, args, state, control, **kwargs):
        if not self.writes or self.run is None:
            return
        self._flush_row()
        self._flush_records()
        state_name = "cancelled" if self.run.cancel_requested else "done"
        self.run.write_status(state=state_name, step=state.global_step, finished_at=time.time(),
                              wall_s=round(time.time() - self.started, 2))
