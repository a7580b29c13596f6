"""The training loop: one spec in, one run directory out.

Read top to bottom: load pairs, load the backbone, build the scope that produces h, then for each optimizer
step: forward both sides, score, loss, backward, step, update the loss's state, record each pair; at the
scheduled evaluation steps diagnose the eval slice. BT and NormBT runs with the same seed see the same pairs in the same order.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import torch

from normbt_viz.model.backbones import accelerate_on_cpu, load_backbone
from normbt_viz.errors import DivergedError, SpecError, first_line
from normbt_viz.model.features import cached_block_inputs, cached_representations, tokenize_pairs
from normbt_viz.model.distance import pair_distance
from normbt_viz.train.losses import all_reduced_mean, build_loss, weighted_loss
from normbt_viz.model.reward_model import FullScope, HeadScope, LoraScope, PairScorer, ScoreHead, TopKScope, save_reward_model
from normbt_viz.numeric import pearson_r
from normbt_viz.spec import RunSpec, package_versions
from normbt_viz.train.trackers import track
from normbt_viz.train.diagnostics import assign_bins, distance_bin_edges, evaluation_steps, per_pair_full_grad_norms
from normbt_viz.data.run_data import load_run_data

if TYPE_CHECKING:  # the loop writes through the RunDir it is handed; it never imports the runs part
    from normbt_viz.runs.rundir import RunDir

ProgressFn = Callable[[str, int, int], None]
DIAGNOSTIC_CHUNK = 64
MAP_SAMPLE = 1000  # eval pairs whose h is kept at each evaluation of a backbone scope (fp16)
RECORD_FLUSH_STEPS = 500  # steps of per-pair records held in memory at most, so a killed run loses few


class Cancelled(Exception):
    """The user asked the run to stop (cancel file or SIGTERM)."""


def _sigterm(_signum, _frame):
    raise Cancelled("terminated by signal")


def total_steps_for(spec: RunSpec, n_train: int) -> int:
    if spec.max_steps:
        return spec.max_steps
    return max(1, math.ceil(spec.epochs * n_train / (spec.batch_size * spec.grad_accum)))


def batch_order(n_train: int, pairs_needed: int, seed: int) -> np.ndarray:
    """The training pair indices in visiting order: one seeded permutation per epoch, concatenated."""
    rng = np.random.default_rng(seed)
    epochs = math.ceil(pairs_needed / n_train)
    return np.concatenate([rng.permutation(n_train) for _ in range(epochs)])[:pairs_needed]


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then linear decay to zero (TRL's default schedule)."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


class _MainWritesOnly:
    """The run directory as a non-main process sees it: reads pass through, writes do nothing, so only the
    main process writes the run directory, its status and its metrics."""

    def __init__(self, run: RunDir):
        self._run = run

    def __getattr__(self, name):
        if name.startswith(("write", "append", "mark", "request")):
            return lambda *args, **kwargs: None
        return getattr(self._run, name)


class Trainer:
    def __init__(self, spec: RunSpec, run: RunDir, progress: ProgressFn | None = None, resume: bool = False):
        self.spec, self.run, self.progress, self.resume = spec, run, progress or (lambda *_: None), resume
        self.start_step = 0
        self.accelerator = None  # started by fit() (or by _setup / the first step when a caller drives the loop)
        self.model = None
        self.record_batches = spec.diagnostics != "off"
        self.records: list[dict] = []  # per-pair records of the steps since the last flush, as tensors

    # -- set-up ------------------------------------------------------------------------------------
    def _setup(self) -> None:
        spec = self.spec
        if spec.num_threads:
            torch.set_num_threads(spec.num_threads)
        if self.accelerator is None:
            self._start_accelerator()
        torch.manual_seed(spec.seed)
        self._load_data()
        device = str(self.accelerator.device) if spec.device == "auto" else spec.device
        self.backbone = load_backbone(spec.backbone, pooling=spec.pooling, device=device, dtype=spec.dtype, trust_remote_code=spec.trust_remote_code)
        tokenized = self._tokenize()
        with self.accelerator.main_process_first():  # one process fills the feature cache, the others read it
            self.scope, self.cache_hit = self._build_scope(tokenized)
        if spec.scope == "head" and not spec.num_threads:
            # A head step is a few small matmuls: a second thread only waits on the first (18.8 s vs 0.36 s for a
            # 10,000-pair epoch on a busy 2-core machine, benchmarks/bench_scaling.py). Features are computed above.
            torch.set_num_threads(1)
        if spec.gradient_checkpointing and self.scope.trainable_parameters():
            enable_gradient_checkpointing(self.backbone.model)
        torch.manual_seed(spec.seed)
        self.head = ScoreHead(self.backbone.hidden_size, spec.head_layernorm).to(self.backbone.device)
        self.params = list(self.head.parameters()) + self.scope.trainable_parameters()
        # One module holding every trainable parameter: Accelerate wraps it for data parallelism and autocast.
        self.model, self.optimizer = self.accelerator.prepare(PairScorer(self.scope, self.head), self._build_optimizer())
        self.loss = build_loss(spec)
        self.loss.global_mean = self._global_mean
        self._plan_steps()

    def _start_accelerator(self) -> None:
        """Accelerate decides the device and the process group (one process, torchrun, or accelerate launch)."""
        from accelerate import Accelerator

        spec = self.spec
        self.accelerator = Accelerator(mixed_precision=spec.mixed_precision, cpu=accelerate_on_cpu(spec.device))
        self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index
        self.is_main = self.accelerator.is_main_process
        if not self.is_main:
            self.run = _MainWritesOnly(self.run)
        if spec.batch_size % self.world:
            raise SpecError(f"batch_size={spec.batch_size} is invalid: it is the global batch and must divide among the {self.world} processes")
        if torch.cuda.is_available():
            # TF32 matmuls on GPUs that have them: the master weights, the distance and the loss stay fp32.
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    def _global_mean(self, values: torch.Tensor) -> float:
        """Mean over every process's pairs (sum and count all-reduced), so mu is the same on every rank."""
        return all_reduced_mean(values, self.accelerator)

    def _local(self, indices: list[int]) -> list[int]:
        """This process's share of a micro-batch: the same global order, cut into `world` equal pieces."""
        share = len(indices) // self.world
        return indices[self.rank * share : (self.rank + 1) * share]

    def _load_data(self) -> None:
        """The run's pairs (train rows first, then eval rows), recorded with the dataset fingerprint in spec.json."""
        spec = self.spec
        self.train_pairs, self.eval_pairs, fingerprint = load_run_data(spec)
        spec.dataset_fingerprint, spec.package_versions = fingerprint, package_versions()
        self.run.write_spec(spec)
        self.pairs = pd.concat([self.train_pairs.assign(split="train"), self.eval_pairs.assign(split="eval")], ignore_index=True)
        self.n_train = len(self.train_pairs)
        self.eval_index = list(range(self.n_train, len(self.pairs)))
        target = self.pairs["margin"].to_numpy(dtype=np.float32) if "margin" in self.pairs else np.full(len(self.pairs), np.nan, np.float32)
        self.target_margin = torch.tensor(target)

    def _tokenize(self):
        """Tokenize every pair; find the pairs whose two inputs are identical and so cannot train."""
        spec = self.spec
        tokenized = tokenize_pairs(self.backbone, self.pairs, spec.max_length)
        self.n_truncated = tokenized.n_truncated
        # A pair whose two inputs tokenize identically (e.g. answers differing only in case under an uncased
        # tokenizer) has h_c = h_r: zero gradient under every loss, yet a NormBT weight of μ/ε that would
        # swamp the reported loss. Such pairs carry no signal the model can see, so they are evaluated and
        # flagged but not trained on.
        self.identical_input = np.array([c.input_ids == r.input_ids for c, r in zip(tokenized.chosen, tokenized.rejected)])
        self.trainable_index = np.flatnonzero(~self.identical_input[: self.n_train])
        if len(self.trainable_index) == 0:
            raise SpecError(f"every training pair of {spec.dataset!r} has identical chosen and rejected inputs for backbone {spec.backbone!r}")
        self.token_lengths = (
            np.array([len(s.input_ids) for s in tokenized.chosen]),
            np.array([len(s.input_ids) for s in tokenized.rejected]),
        )
        self.target_margin = self.target_margin.to(self.backbone.device)
        return tokenized

    def _build_scope(self, tokenized):
        """(the scope that produces h for a pair index, whether its features came from the cache)."""
        spec = self.spec
        feature_progress = lambda done, total: self.progress("features", done, total)  # noqa: E731
        if spec.scope == "head":
            h_chosen, h_rejected, cache_hit = cached_representations(
                self.backbone, self.pairs, tokenized, spec.max_length, spec.feature_batch_size, feature_progress
            )
            return HeadScope(h_chosen, h_rejected, self.backbone.device), cache_hit
        if spec.scope == "top-k":
            if spec.top_k > self.backbone.num_layers:
                raise SpecError(f"top_k={spec.top_k} exceeds the {self.backbone.num_layers} blocks of backbone {spec.backbone!r}")
            inputs_c, inputs_r, cache_hit = cached_block_inputs(
                self.backbone, self.pairs, tokenized, spec.max_length, self.backbone.num_layers - spec.top_k, spec.feature_batch_size, feature_progress
            )
            return TopKScope(self.backbone, spec.top_k, inputs_c, inputs_r), cache_hit
        if spec.scope == "lora":
            return LoraScope(self.backbone, tokenized.chosen, tokenized.rejected, r=spec.lora_r, alpha=spec.lora_alpha,
                             dropout=spec.lora_dropout, target_modules=spec.lora_target_modules), False
        return FullScope(self.backbone, tokenized.chosen, tokenized.rejected), False

    def _build_optimizer(self) -> torch.optim.Optimizer:
        decay = [p for p in self.params if p.ndim >= 2]
        no_decay = [p for p in self.params if p.ndim < 2]
        # Fused AdamW (as TRL uses): one kernel over all tensors instead of a loop per tensor, 15x faster on a
        # 2-core CPU for MiniLM's 105 tensors (benchmarks/profile_train_step.py).
        return torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=self.spec.lr,
            fused=True,
        )

    def _plan_steps(self) -> None:
        """How many steps, which pairs each step visits, when to evaluate, and which pairs to diagnose."""
        spec = self.spec
        self.total_steps = total_steps_for(spec, len(self.trainable_index))
        self.warmup = int(spec.warmup_ratio * self.total_steps)
        per_step = spec.batch_size * spec.grad_accum
        self.order = self.trainable_index[batch_order(len(self.trainable_index), self.total_steps * per_step, spec.seed)]
        if spec.diagnostics == "off":
            self.eval_steps = {0, self.total_steps}
        else:
            # Under the head scope an evaluation reads cached features: nearly free, so the schedule may be dense.
            budget = 1.0 if spec.scope == "head" else 0.1
            n_grad = min(spec.full_grad_sample, len(self.eval_index)) if spec.diagnostics == "full" and spec.scope != "head" else 0
            self.eval_steps = set(evaluation_steps(self.total_steps, per_step, len(self.eval_index), spec.eval_every, budget,
                                                   n_grad_pairs=n_grad))
        watch_all = spec.diagnostics == "full"
        rng = np.random.default_rng(spec.seed + 1)
        n_sample = spec.diagnose_train_pairs if watch_all else 0
        self.diag_train_index = sorted(rng.permutation(self.n_train)[:n_sample].tolist())
        self.grad_sample_index = self.eval_index[: spec.full_grad_sample] if watch_all else []
        initial = spec.full_grad_sample if spec.initial_grad_sample is None else spec.initial_grad_sample
        self.initial_grad_sample_index = self.eval_index[:initial] if watch_all else []

    def _step_indices(self, step: int) -> list[list[int]]:
        per_step = self.spec.batch_size * self.spec.grad_accum
        chunk = self.order[step * per_step : (step + 1) * per_step].tolist()
        return [chunk[i : i + self.spec.batch_size] for i in range(0, len(chunk), self.spec.batch_size)]

    def _score(self, indices: list[int]):
        """The unwrapped model (no data-parallel hooks, so one process may call it alone), under the run's autocast."""
        with self.accelerator.autocast():
            return self.accelerator.unwrap_model(self.model)(indices)

    def _diagnose_all(self, indices: list[int], split: str, step: int, keep_h: int = 0) -> pd.DataFrame:
        """`diagnose` over `indices`, sharded across the processes and gathered back in the order of `indices`."""
        if self.world == 1 or not indices:
            return self.diagnose(indices, split, step, keep_h)
        from accelerate.utils import gather_object

        positions = list(range(self.rank, len(indices), self.world))
        local = self.diagnose([indices[i] for i in positions], split, step, keep_h).assign(_position=positions)
        kept = [(positions, self.kept_h)] if keep_h else []
        frame = pd.concat(gather_object([local]), ignore_index=True).sort_values("_position").drop(columns="_position")
        if keep_h:
            order = np.argsort(np.concatenate([p for p, _ in gather_object(kept)]))
            pieces = [h for _, h in gather_object(kept)]
            self.kept_h = tuple(np.concatenate([piece[side] for piece in pieces])[order][:keep_h] for side in (0, 1))
        return frame.reset_index(drop=True)

    def _grad_norms_all(self, indices: list[int]) -> np.ndarray:
        """Exact per-pair gradient norms of `indices`, sharded across the processes like `_diagnose_all`."""
        model = self.accelerator.unwrap_model(self.model)
        if self.world == 1 or not indices:
            return per_pair_full_grad_norms(model.head, model.scope, indices, self.params)
        from accelerate.utils import gather_object

        positions = list(range(self.rank, len(indices), self.world))
        norms = per_pair_full_grad_norms(model.head, model.scope, [indices[i] for i in positions], self.params)
        gathered = gather_object([(positions, norms)])
        order = np.argsort(np.concatenate([p for p, _ in gathered]))
        return np.concatenate([n for _, n in gathered])[order]

    # -- diagnostics -------------------------------------------------------------------------------
    def diagnose(self, indices: list[int], split: str, step: int, keep_h: int = 0) -> pd.DataFrame:
        """Per-pair diagnostics for `indices` with the current model (see the README's column list).

        With `keep_h`, the h the head read for the first `keep_h` pairs is kept in `self.kept_h` (for maps)."""
        columns: dict[str, list] = {k: [] for k in ("reward_chosen", "reward_rejected", "rep_distance", "weight", "update_norm")}
        kept_c, kept_r = [], []
        for start in range(0, len(indices), DIAGNOSTIC_CHUNK):
            chunk = indices[start : start + DIAGNOSTIC_CHUNK]
            with torch.no_grad():
                in_c, in_r, r_c, r_r = self._score(chunk)
                rep_distance = pair_distance(in_c, in_r)
            if start < keep_h:
                kept_c.append(in_c[: keep_h - start].half().cpu())
                kept_r.append(in_r[: keep_h - start].half().cpu())
            margin = (r_c - r_r).detach().requires_grad_(True)
            per_pair, weight = weighted_loss(self.loss, margin, in_c, in_r, self.target_margin[chunk])
            # Every loss depends on h only through Δ, so ‖∂(w ℓ)/∂w_head‖ = |∂(w ℓ)/∂Δ| · ‖h_c - h_r‖ exactly.
            (dloss_dmargin,) = torch.autograd.grad(per_pair.sum(), margin)
            columns["reward_chosen"].append(r_c.cpu())
            columns["reward_rejected"].append(r_r.cpu())
            columns["rep_distance"].append(rep_distance.cpu())
            columns["weight"].append(weight.cpu())
            columns["update_norm"].append((dloss_dmargin.abs() * rep_distance).detach().cpu())
        if keep_h:
            self.kept_h = (torch.cat(kept_c).numpy(), torch.cat(kept_r).numpy())
        values = {k: torch.cat(v).double().numpy() for k, v in columns.items()}
        margin = values["reward_chosen"] - values["reward_rejected"]
        pred_error = 1.0 / (1.0 + np.exp(margin))
        meta = self.pairs.iloc[indices]
        frame = pd.DataFrame(
            {
                "step": step,
                "pair_id": meta["pair_id"].to_numpy(),
                "split": split,
                "category": meta["category"].to_numpy(),
                "reward_chosen": values["reward_chosen"],
                "reward_rejected": values["reward_rejected"],
                "margin": margin,
                "pred_error": pred_error,
                "rep_distance": values["rep_distance"],
                "head_grad_norm": pred_error * values["rep_distance"],
                # Left out of training, an identical-input pair has no weight (its formula value μ/ε means nothing).
                "weight": np.where(self.identical_input[indices], np.nan, values["weight"]),
                "update_norm": values["update_norm"],
                "correct": margin > 0,
                "len_chosen": self.token_lengths[0][indices],
                "len_rejected": self.token_lengths[1][indices],
                "flipped": meta["flipped"].to_numpy() if "flipped" in meta else False,
                "identical": meta["identical"].to_numpy() if "identical" in meta else False,
                "identical_input": self.identical_input[indices],
            }
        )
        frame["full_grad_norm"] = np.nan
        return frame

    def evaluate(self, step: int, last_batch: list[int]) -> dict:
        spec = self.spec
        # Backbone scopes move h: keep the eval slice's h (a fixed sample, fp16) so maps can follow training.
        keep_h = MAP_SAMPLE if spec.scope != "head" and spec.diagnostics != "off" else 0
        eval_rows = self._diagnose_all(self.eval_index, "eval", step, keep_h=keep_h)
        if keep_h:
            self.run.write_representations(step, eval_rows["pair_id"].to_numpy()[:keep_h], *self.kept_h)
        if step == 0:
            # Bins are a property of each pair, fixed from the initial model's distances on the eval slice.
            self.bin_edges = distance_bin_edges(eval_rows["rep_distance"].to_numpy(), spec.n_distance_bins)
            # With a frozen backbone every train pair's initial distance is free; otherwise it would cost a
            # forward over the whole train set, so only the diagnosed sample gets one (batch rows may lack it).
            known = list(range(self.n_train)) if self.spec.scope == "head" else self.diag_train_index
            self.initial_distance = np.full(len(self.pairs), np.nan)
            if known:
                self.initial_distance[known] = self._diagnose_all(known, "train", 0)["rep_distance"].to_numpy()
            self.initial_distance[self.eval_index] = eval_rows["rep_distance"].to_numpy()
            self.run.write_bins(self.bin_edges.tolist(), "eval slice, initial model")
        parts = [eval_rows]
        if self.diag_train_index:
            parts.append(self._diagnose_all(self.diag_train_index, "train", step))
        if last_batch and self.record_batches:
            parts.append(self._diagnose_all(last_batch, "batch", step))
        frame = pd.concat(parts, ignore_index=True)
        index_of = {pid: i for i, pid in enumerate(self.pairs["pair_id"])}
        positions = frame["pair_id"].map(index_of).to_numpy()
        frame["rep_distance_init"] = self.initial_distance[positions]
        known = np.isfinite(frame["rep_distance_init"].to_numpy())
        frame["distance_bin"] = -1  # -1: initial distance not computed (a batch pair outside the diagnosed sample)
        frame.loc[known, "distance_bin"] = assign_bins(frame.loc[known, "rep_distance_init"].to_numpy(), self.bin_edges)
        grad_sample = self.initial_grad_sample_index if step == 0 else self.grad_sample_index
        sampled = self._grad_norms_all(grad_sample)
        sample_mask = (frame["split"] == "eval") & frame["pair_id"].isin(self.pairs["pair_id"].iloc[grad_sample])
        frame.loc[sample_mask, "full_grad_norm"] = sampled
        # The head's part of that norm is σ(−Δ)·‖x_c − x_r‖ exactly (a linear score), and the head's and the
        # backbone's parameters are disjoint, so the backbone's part is what is left: ‖∇_bb‖² = ‖∇‖² − ‖∇_head‖².
        # Scaled by the arm's |∂(wℓ)/∂Δ| instead of σ(−Δ) it is the pair's update to the backbone under this arm.
        if self.scope.trainable_parameters():
            backbone_sq = frame["full_grad_norm"] ** 2 - frame["head_grad_norm"] ** 2
            frame["backbone_grad_norm"] = np.sqrt(backbone_sq.clip(lower=0.0))
            frame["backbone_update_norm"] = frame["backbone_grad_norm"] * frame["update_norm"] / frame["head_grad_norm"]
        self.run.write_pairs(step, frame)

        ev = frame[frame["split"] == "eval"]
        # The weighted loss and weights leave out identical-input pairs (weight μ/ε, no gradient), as training does.
        seen = ev[~ev["identical_input"]]
        weights = seen["weight"].to_numpy()
        bt_loss = np.logaddexp(0.0, -ev["margin"].to_numpy())
        rewards = np.concatenate([ev["reward_chosen"], ev["reward_rejected"]])
        metrics = {
            "step": step,
            "eval_loss": float(np.mean(weights * self._per_pair_loss_numpy(seen))) if len(seen) else float("nan"),
            "eval_bt_loss": float(bt_loss.mean()),
            "eval_accuracy": float(ev["correct"].mean()),
            "eval_margin": float(ev["margin"].mean()),
            "eval_mean_reward": float(rewards.mean()),
            "eval_min_reward": float(rewards.min()),
            "eval_max_reward": float(rewards.max()),
            "eval_mean_weight": float(weights.mean()),
        }
        for b, acc in ev.groupby("distance_bin")["correct"].mean().items():
            metrics[f"eval_accuracy_bin_{int(b)}"] = float(acc)
        for category, acc in ev.groupby("category")["correct"].mean().items():
            metrics[f"eval_accuracy_{category}"] = float(acc)
        # The proxy over training: distance against the exact gradient norm, and against that norm divided by the
        # prediction error σ(−Δ) — the factor the paper's argument is about, with the fitted pairs' small errors
        # taken out (a far pair that is fitted late in training has a small gradient for that reason alone).
        proxy_corr = pearson_r(ev["rep_distance"], ev["full_grad_norm"])
        if proxy_corr is not None:
            metrics["eval_proxy_corr"] = proxy_corr
        per_error = pearson_r(ev["rep_distance"], ev["full_grad_norm"] / ev["pred_error"])
        if per_error is not None:
            metrics["eval_proxy_corr_per_error"] = per_error
        # The same for the trainable blocks alone: the head's part of ‖∇Δ‖ is the distance itself (a linear score),
        # so with few blocks training the line above is close to 1 by construction; this one is not.
        if "backbone_grad_norm" in ev:
            backbone = pearson_r(ev["rep_distance"], ev["backbone_grad_norm"] / ev["pred_error"])
            if backbone is not None:
                metrics["eval_proxy_corr_backbone"] = backbone
        if self.loss.scale is not None:
            metrics["normbt_mu"] = self.loss.scale
        return metrics

    def _per_pair_loss_numpy(self, rows: pd.DataFrame) -> np.ndarray:
        margin = torch.tensor(rows["margin"].to_numpy(), dtype=torch.float32)
        index_of = {pid: i for i, pid in enumerate(self.pairs["pair_id"])}
        target = self.target_margin.cpu()[[index_of[p] for p in rows["pair_id"]]]
        return self.loss.per_pair(margin, target).numpy()

    # -- the loop ----------------------------------------------------------------------------------
    def train_step(self, step: int) -> dict:
        """One optimizer step: forward both sides, score, loss, backward, clip, step, update the loss's state.

        Each process takes its share of every micro-batch of the global batch; gradients are averaged across
        processes (synchronised once, at the last micro-batch), so a run's numbers do not depend on how many
        processes share it. Each pair's record (rewards, distance, weight, update) comes from this very forward,
        so every trained pair has a history without a second pass. Scalars are gathered into one tensor and read
        once, so the step makes a single host sync."""
        from contextlib import nullcontext

        spec = self.spec
        if self.model is None:  # a caller that assembled the trainer from features (tests, benchmarks)
            if self.accelerator is None:
                self._start_accelerator()
            self.model = PairScorer(self.scope, self.head)
            self.loss.global_mean = self._global_mean
        micro_batches = self._step_indices(step)
        n_pairs = sum(len(m) for m in micro_batches)
        for group in self.optimizer.param_groups:
            group["lr"] = spec.lr * lr_factor(step, self.total_steps, self.warmup)
        self.optimizer.zero_grad(set_to_none=True)
        mu_used = self.loss.scale
        seen_c, seen_r, margins, rewards, losses, records, trained = [], [], [], [], [], [], []
        for k, indices in enumerate(micro_batches):
            local = self._local(indices)
            last = k == len(micro_batches) - 1
            with nullcontext() if last else self.accelerator.no_sync(self.model):
                in_c, in_r, r_c, r_r = self.model(local)
                margin = r_c - r_r
                per_pair, weight = weighted_loss(self.loss, margin, in_c, in_r, self.target_margin[local])
                if self.record_batches:
                    # ∂(w ℓ)/∂Δ per pair; every loss reaches the head only through Δ, so this times ‖h_c − h_r‖
                    # is the exact head-gradient norm of the update the pair received.
                    (dloss_dmargin,) = torch.autograd.grad(per_pair.sum(), margin, retain_graph=True)
                    records.append(torch.stack([r_c.detach(), r_r.detach(), pair_distance(in_c.detach(), in_r.detach()),
                                                weight.float(), dloss_dmargin.abs()], dim=1))
                    trained.append(torch.tensor(local, device=margin.device))
                # Sum over the pairs of the whole step (all processes, all micro-batches), times the number of
                # processes because data parallelism averages their gradients: the gradient of one batch of k·b.
                self.accelerator.backward(per_pair.sum() * self.world / n_pairs)
            seen_c.append(in_c.detach())
            seen_r.append(in_r.detach())
            margins.append(margin.detach())
            rewards.append(torch.cat([r_c, r_r]).detach())
            losses.append(per_pair.detach())
        grad_norm = self.accelerator.clip_grad_norm_(self.params, spec.max_grad_norm or float("inf"))
        self.optimizer.step()
        self.loss.end_step(torch.cat(seen_c), torch.cat(seen_r))
        gather = self.accelerator.gather if self.world > 1 else (lambda t: t)
        margin, reward, loss_values = gather(torch.cat(margins)), gather(torch.cat(rewards)), gather(torch.cat(losses))
        loss, accuracy, mean_margin, mean_reward, min_reward, max_reward, grad_norm = torch.stack([
            loss_values.mean(), (margin > 0).float().mean(), margin.mean(), reward.mean(), reward.min(), reward.max(),
            torch.as_tensor(grad_norm, device=margin.device).float(),
        ]).tolist()
        if records:
            self.records.append({"step": step + 1, "index": gather(torch.cat(trained)).cpu().numpy(), "values": gather(torch.cat(records))})
        row = {
            "step": step + 1,
            "loss": loss,
            "accuracy": accuracy,
            "margin": mean_margin,
            "mean_reward": mean_reward,
            "min_reward": min_reward,
            "max_reward": max_reward,
            "grad_norm": grad_norm,
            "learning_rate": self.optimizer.param_groups[0]["lr"],
            "epoch": (step + 1) * n_pairs / len(self.trainable_index),
        }
        if mu_used is not None:
            row["normbt_mu"] = mu_used
        return row

    def flush_records(self) -> None:
        """Write the buffered per-pair records as one chunk of the run's record stream."""
        if not self.records:
            return
        values = torch.cat([r["values"] for r in self.records]).double().cpu().numpy()
        index = np.concatenate([r["index"] for r in self.records]).astype(int)
        steps = np.concatenate([np.full(len(r["index"]), r["step"]) for r in self.records])
        self.records = []
        reward_chosen, reward_rejected, rep_distance, weight, dloss_dmargin = values.T
        margin = reward_chosen - reward_rejected
        self.run.write_records(pd.DataFrame({
            "step": steps.astype(np.int32),
            "pair_id": self.pairs["pair_id"].to_numpy()[index],
            "reward_chosen": reward_chosen.astype(np.float32),
            "reward_rejected": reward_rejected.astype(np.float32),
            "margin": margin.astype(np.float32),
            "rep_distance": rep_distance.astype(np.float32),
            "weight": weight.astype(np.float32),
            "update_norm": (dloss_dmargin * rep_distance).astype(np.float32),
            "head_grad_norm": (rep_distance / (1.0 + np.exp(margin))).astype(np.float32),
        }))

    def fit(self) -> None:
        self.progress("setup", 0, 1)
        started = time.time()
        self._start_accelerator()
        self.run.mark_running()
        self._setup()
        self.run.write_status(total_steps=self.total_steps, n_train=self.n_train, n_eval=len(self.eval_index), n_truncated=self.n_truncated,
                              n_identical_input=int(self.identical_input.sum()), n_trained_pairs=len(self.trainable_index), feature_cache_hit=self.cache_hit,
                              eval_steps=sorted(self.eval_steps), n_processes=self.world,
                              n_skipped_rows=int(self.train_pairs.attrs.get("n_skipped_rows", 0)))
        self.run.write_pair_texts(
            self.pairs[["pair_id", "split", "category", "prompt", "chosen", "rejected"] + [c for c in ("flipped", "identical") if c in self.pairs]]
        )
        if self.resume:
            self._load_checkpoint()
        else:
            first = self._local([i for m in self._step_indices(0) for i in m])
            with torch.no_grad():
                in_c, in_r, _, _ = self._score(first)
            self.loss.begin(in_c, in_r)
            self.run.append_metrics([{**self.evaluate(0, []), "elapsed_s": round(time.time() - started, 3)}])
        last_status = time.time()
        for step in range(self.start_step, self.total_steps):
            if self._cancel_requested():
                raise Cancelled("cancel requested")
            rows = [self.train_step(step)]
            done = step + 1
            if done in self.eval_steps or len(self.records) >= RECORD_FLUSH_STEPS:
                self.flush_records()
            if done in self.eval_steps:
                rows.append(self.evaluate(done, [i for m in self._step_indices(step) for i in m]))
            for row in rows:
                row["elapsed_s"] = round(time.time() - started, 3)
            self.run.append_metrics(rows)
            if not math.isfinite(rows[0]["loss"]):  # the metrics so far stay; the run ends failed with this line
                raise DivergedError(f"diverged at step {done}: loss is {rows[0]['loss']}")
            if self.spec.save_every and done % self.spec.save_every == 0 and done < self.total_steps:
                self._save_checkpoint(done)
            # status.json is rewritten atomically (with an fsync); once a second is enough for a progress bar.
            if time.time() - last_status >= 1.0 or done == self.total_steps:
                self.run.write_status(step=done)
                last_status = time.time()
            self.progress("train", done, self.total_steps)
        self.flush_records()
        if self.is_main:
            self._save_model()
        self.accelerator.wait_for_everyone()

    def _cancel_requested(self) -> bool:
        """Every process stops at the same step: the cancel file is read once and the answer all-reduced."""
        asked = self.run.cancel_requested
        if self.world == 1:
            return asked
        flag = torch.tensor([1.0 if asked else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)

    # -- checkpoints -------------------------------------------------------------------------------
    def _save_checkpoint(self, step: int) -> None:
        """Model, optimizer and RNG states through Accelerate's save_state, plus what the loop itself carries
        (the step, the loss's state such as mu, the distance bins), written to a temporary folder and renamed,
        so a checkpoint folder either is complete or does not exist. The last `save_total_limit` are kept."""
        self.flush_records()  # record chunks end at the checkpoint, so a resume can drop what came after
        final = self.run.checkpoint_path(step)
        staging = final.with_name(final.name + ".tmp")
        if self.is_main:
            shutil.rmtree(staging, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(staging))
        self.accelerator.wait_for_everyone()
        if self.is_main:
            state = {"step": step, "loss": self.loss.state_dict(), "bin_edges": self.bin_edges.tolist()}
            (staging / "trainer_state.json").write_text(json.dumps(state))
            np.save(staging / "initial_distance.npy", self.initial_distance)
            os.replace(staging, final)
            self.run.prune_checkpoints(self.spec.save_total_limit)
            self.run.write_status(last_checkpoint=step, step=step)  # a kill right after still shows the step it kept
        self.accelerator.wait_for_everyone()

    def _load_checkpoint(self) -> None:
        """Continue from the newest complete checkpoint; what the run wrote after it is dropped first."""
        steps = self.run.checkpoint_steps()
        if not steps:
            raise SpecError(f"run {self.run.name} has no checkpoint to resume from (train with --save-every N)")
        folder = self.run.checkpoint_path(steps[-1])
        self.accelerator.load_state(str(folder))
        state = json.loads((folder / "trainer_state.json").read_text())
        self.start_step = int(state["step"])
        self.loss.load_state_dict(state["loss"])
        self.bin_edges = np.array(state["bin_edges"])
        self.initial_distance = np.load(folder / "initial_distance.npy", allow_pickle=False)
        if self.is_main:
            self.run.truncate_after(self.start_step)
            self.run.write_status(resumed_from=self.start_step, step=self.start_step)
        self.accelerator.wait_for_everyone()

    def _save_model(self) -> None:
        from normbt_viz.model.export import export_sequence_classifier

        spec = self.spec
        final = self.run.model_path
        staging = final.with_name(final.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        trainable = {id(p) for p in self.scope.trainable_parameters()}
        names = [n for n, p in self.backbone.model.named_parameters() if id(p) in trainable]
        save_reward_model(staging, spec, self.backbone, self.head, names)
        export_sequence_classifier(staging, self.backbone, self.head, spec, load_report=self.run.read_raw_status(), final_mu=self.loss.scale)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)


OOM_ADVICE = ("out of GPU memory: try a smaller --batch-size (with --grad-accum to keep the batch), a shorter "
              "--max-length, --gradient-checkpointing, --mixed-precision bf16, or --scope lora")


def run_training(spec: RunSpec, run: RunDir, progress: ProgressFn | None = None, resume: bool = False) -> dict:
    """Train `spec` into `run` (or continue it from its last checkpoint), recording the outcome in status.json;
    returns the final status."""
    previous = signal.signal(signal.SIGTERM, _sigterm) if _main_thread() else None
    started = time.time()
    trainer = trackers = None
    try:
        spec.resolve()
        tracked_run, trackers = track(run, spec)
        trainer = Trainer(spec, tracked_run, progress, resume=resume)
        threads = torch.get_num_threads()
        try:
            trainer.fit()
        finally:
            torch.set_num_threads(threads)  # the trainer may pin threads; a process that trains again gets them back
        # A non-main process writes nothing; it answers with the state it reached.
        return trainer.run.write_status(state="done", finished_at=time.time(), wall_s=round(time.time() - started, 2)) or {"state": "done"}
    except Cancelled as exc:
        return _writer(trainer, run).write_status(state="cancelled", finished_at=time.time(), error=str(exc)) or {"state": "cancelled", "error": str(exc)}
    except torch.OutOfMemoryError as exc:
        _writer(trainer, run).write_status(state="failed", finished_at=time.time(), error=OOM_ADVICE)
        raise SpecError(f"run {run.name}: {OOM_ADVICE}") from exc
    except Exception as exc:
        _writer(trainer, run).write_status(state="failed", finished_at=time.time(), error=f"{type(exc).__name__}: {first_line(exc)}")
        raise
    finally:
        if trackers is not None:
            trackers.finish()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _writer(trainer: "Trainer | None", run: RunDir):
    """The run as the trainer's process may write it (only the main process writes under data parallelism)."""
    return trainer.run if trainer is not None else run


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """Turn on Hugging Face gradient checkpointing without turning dropout on.

    Transformers recompute activations only in training mode, which would also enable dropout; this tool
    trains with dropout off (deterministic runs), so every dropout is set to zero first."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        for name in ("attention_dropout", "dropout_prob", "dropout_p"):
            if isinstance(getattr(module, name, None), float):
                setattr(module, name, 0.0)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
