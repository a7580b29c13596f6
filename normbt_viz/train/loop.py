"""The training loop: one spec in, one run directory out.

Read top to bottom: load pairs, load the backbone, build the scope that produces h, then for each optimizer
step: forward both sides, score, loss, backward, step, update the loss's state, record each pair; at the
scheduled evaluation steps diagnose the eval slice. BT and NormBT runs with the same seed see the same pairs in the same order.

A `Trainer` is built one way, from its parts (`Trainer(spec, run, data, scope, head, processes)`), by one of two
factories: `Trainer.from_spec` (the spec's data and backbone, as a run does) or `Trainer.from_features` (fixed
representations, for tests and benchmarks). Evaluation (`train/evaluation.py`) and checkpoints
(`train/checkpoint.py`) are its collaborators; the state a checkpoint carries is one `TrainingState`.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import torch

from normbt_viz.data.run_data import load_run_data
from normbt_viz.errors import DivergedError, SpecError, first_line
from normbt_viz.model.backbones import Backbone, load_backbone
from normbt_viz.model.compiled import PAD_MULTIPLE, CompiledForward
from normbt_viz.model.distance import pair_distance
from normbt_viz.model.features import cached_block_inputs, cached_representations, tokenize_pairs
from normbt_viz.model.reward_model import FullScope, HeadScope, LoraScope, PairScorer, ScoreHead, TopKScope
from normbt_viz.spec import RunSpec, package_versions
from normbt_viz.train.batching import token_counts
from normbt_viz.train.checkpoint import Checkpointer
from normbt_viz.train.evaluation import Evaluator
from normbt_viz.train.losses import PairLoss, build_loss, weighted_loss
from normbt_viz.train.processes import Processes
from normbt_viz.train.state import StepPlan, TrainingData, TrainingState, lr_factor
from normbt_viz.train.trackers import track

if TYPE_CHECKING:  # the loop writes through the RunDir it is handed; it never imports the runs part
    from normbt_viz.runs.rundir import RunDir

ProgressFn = Callable[[str, int, int], None]
RECORD_FLUSH_STEPS = 500  # steps of per-pair records held in memory at most, so a killed run loses few


class Cancelled(Exception):
    """The user asked the run to stop (cancel file or SIGTERM)."""


def _sigterm(_signum, _frame):
    raise Cancelled("terminated by signal")


class Trainer:
    """One run's training: the spec, the run directory it writes through, the pairs (`data`), the scope that
    produces h, the score head, the data-parallel `processes`, and what it builds from them: the optimizer and the
    loss in one `TrainingState`, the `StepPlan`, the `Evaluator` and the `Checkpointer`."""

    def __init__(self, spec: RunSpec, run: RunDir, data: TrainingData, scope, head: ScoreHead, processes: Processes,
                 backbone: Backbone | None = None, progress: ProgressFn | None = None, feature_cache_hit: bool = False,
                 compiled: CompiledForward | None = None):
        """The one constructor: every part already built (see `from_spec` and `from_features`)."""
        self.spec, self.run, self.data, self.scope, self.head = spec, run, data, scope, head
        self.processes, self.backbone, self.feature_cache_hit = processes, backbone, feature_cache_hit
        self.compiled = compiled  # the training step's compiled forward (--compile), else None
        processes.check_batch_size(spec.batch_size)
        self.progress = progress or (lambda *_: None)
        self.record_batches = spec.diagnostics != "off"
        self.records: list[dict] = []  # per-pair records of the steps since the last flush, as tensors
        self.params = list(head.parameters()) + scope.trainable_parameters()
        # One module holding every trainable parameter: Accelerate wraps it for data parallelism and autocast.
        self.model, optimizer = processes.accelerator.prepare(PairScorer(scope, head), self._build_optimizer())
        loss = build_loss(spec)
        loss.global_mean = processes.global_mean
        self.state = TrainingState(optimizer=optimizer, loss=loss)
        self.plan = StepPlan.for_run(spec, data)
        self.evaluator = Evaluator(self)
        self.checkpointer = Checkpointer(self)

    @classmethod
    def from_spec(cls, spec: RunSpec, run: RunDir, progress: ProgressFn | None = None,
                  processes: Processes | None = None, compile_backend: str = "inductor") -> "Trainer":
        """Load the spec's pairs and backbone, tokenize, build the scope that produces h (from the feature cache
        where it can) and a freshly seeded score head. The spec is recorded with the dataset's fingerprint.
        `compile_backend` is torch.compile's backend under --compile ("aot_eager" traces the same graphs without
        generating code: minutes faster on a CPU, for tests)."""
        if spec.num_threads:
            torch.set_num_threads(spec.num_threads)
        processes = processes or Processes(spec)
        torch.manual_seed(spec.seed)
        train_pairs, eval_pairs, fingerprint, load_report = load_run_data(spec)
        spec.dataset_fingerprint, spec.package_versions = fingerprint, package_versions()
        processes.main_writes(run.write_spec, spec)
        pairs = pd.concat([train_pairs.assign(split="train"), eval_pairs.assign(split="eval")], ignore_index=True)
        device = str(processes.accelerator.device) if spec.device == "auto" else spec.device
        backbone = load_backbone(spec.backbone, pooling=spec.pooling, device=device, dtype=spec.dtype, trust_remote_code=spec.trust_remote_code)
        tokenized = tokenize_pairs(backbone, pairs, spec.max_length)
        load_report.max_length, load_report.truncated = spec.max_length, int(tokenized.n_truncated)
        # A pair whose two inputs tokenize identically (e.g. answers differing only in case under an uncased
        # tokenizer) has h_c = h_r: zero gradient under every loss, yet a NormBT weight of μ/ε that would
        # swamp the reported loss. Such pairs carry no signal the model can see, so they are evaluated and
        # flagged but not trained on.
        identical_input = np.array([c.input_ids == r.input_ids for c, r in zip(tokenized.chosen, tokenized.rejected)])
        if not (~identical_input[: len(train_pairs)]).any():
            raise SpecError(f"every training pair of {spec.dataset!r} has identical chosen and rejected inputs for backbone {spec.backbone!r}")
        target = pairs["margin"].to_numpy(dtype=np.float32) if "margin" in pairs else np.full(len(pairs), np.nan, np.float32)
        data = TrainingData(
            pairs=pairs, n_train=len(train_pairs), identical_input=identical_input,
            token_lengths=(np.array([len(s.input_ids) for s in tokenized.chosen]), np.array([len(s.input_ids) for s in tokenized.rejected])),
            target_margin=torch.tensor(target).to(backbone.device), n_truncated=tokenized.n_truncated, load_report=load_report,
        )
        with processes.accelerator.main_process_first():  # one process fills the feature cache, the others read it
            scope, cache_hit = build_scope(spec, backbone, pairs, tokenized, progress)
        if spec.scope == "head" and not spec.num_threads:
            # A head step is a few small matmuls: a second thread only waits on the first (18.8 s vs 0.36 s for a
            # 10,000-pair epoch on a busy 2-core machine, benchmarks/bench_scaling.py). Features are computed above.
            torch.set_num_threads(1)
        if spec.gradient_checkpointing and scope.trainable_parameters():
            enable_gradient_checkpointing(backbone.model)
        compiled = CompiledForward(backbone, spec.scope, compile_backend) if spec.compile else None
        if compiled is not None and compiled.in_use:
            scope.pad_multiple = PAD_MULTIPLE
        torch.manual_seed(spec.seed)
        head = ScoreHead(backbone.hidden_size, spec.head_layernorm).to(backbone.device)
        return cls(spec, run, data, scope, head, processes, backbone, progress, feature_cache_hit=cache_hit, compiled=compiled)

    @classmethod
    def from_features(cls, spec: RunSpec, run: RunDir, h_chosen: torch.Tensor, h_rejected: torch.Tensor) -> "Trainer":
        """A head-scope trainer on fixed representations (rows are pairs, all of them training pairs), with no
        data loading and no backbone: the training step itself, for tests and benchmarks."""
        processes = Processes(spec)
        n = len(h_chosen)
        data = TrainingData(
            pairs=pd.DataFrame({"pair_id": [f"p{i}" for i in range(n)], "category": "all", "split": "train"}), n_train=n,
            identical_input=np.zeros(n, dtype=bool), token_lengths=(np.zeros(n, dtype=int), np.zeros(n, dtype=int)),
            target_margin=torch.full((n,), float("nan"), device=processes.accelerator.device),
        )
        scope = HeadScope(h_chosen, h_rejected, processes.accelerator.device)
        torch.manual_seed(spec.seed)
        head = ScoreHead(h_chosen.shape[1], spec.head_layernorm).to(processes.accelerator.device)
        return cls(spec, run, data, scope, head, processes)

    def _build_optimizer(self) -> torch.optim.Optimizer:
        decay = [p for p in self.params if p.ndim >= 2]
        no_decay = [p for p in self.params if p.ndim < 2]
        # Fused AdamW (as TRL uses): one kernel over all tensors instead of a loop per tensor, 15x faster on a
        # 2-core CPU for MiniLM's 105 tensors (benchmarks/profile_train_step.py).
        return torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=self.spec.lr,
            fused=True,
        )

    def step_indices(self, step: int) -> list[list[int]]:
        """The micro-batches of optimizer step `step` (global pair indices)."""
        return self.plan.step_indices(step, self.spec.batch_size, self.spec.grad_accum)

    def score(self, indices: list[int]):
        """(h_c, h_r, r_c, r_r) from the unwrapped model (no data-parallel hooks, so one process may call it
        alone), under the run's autocast."""
        accelerator = self.processes.accelerator
        with accelerator.autocast():
            return accelerator.unwrap_model(self.model)(indices)

    def begin(self) -> None:
        """Start the loss's state from the first step's batch (NormBT's μ₀), before any weight is computed; a
        loss that reads nothing there (BT) costs no forward."""
        if type(self.state.loss).begin is PairLoss.begin:  # the base class's begin reads nothing
            return
        first = self.processes.local([i for m in self.step_indices(0) for i in m])
        with torch.no_grad():
            in_c, in_r, _, _ = self.score(first)
        self.state.loss.begin(in_c, in_r)

    # -- the loop ----------------------------------------------------------------------------------
    def train_step(self, step: int) -> dict:
        """One optimizer step: forward both sides, score, loss, backward, clip, step, update the loss's state.

        Each process takes its share of every micro-batch of the global batch; gradients are averaged across
        processes (synchronised once, at the last micro-batch), so a run's numbers do not depend on how many
        processes share it. Each pair's record (rewards, distance, weight, update) comes from this very forward,
        so every trained pair has a history without a second pass. Scalars are gathered into one tensor and read
        once, so the step makes a single host sync."""
        from contextlib import nullcontext

        spec, processes, loss, optimizer = self.spec, self.processes, self.state.loss, self.state.optimizer
        accelerator = processes.accelerator
        micro_batches = self.step_indices(step)
        n_pairs = sum(len(m) for m in micro_batches)
        for group in optimizer.param_groups:
            group["lr"] = spec.lr * lr_factor(step, self.plan.total_steps, self.plan.warmup)
        optimizer.zero_grad(set_to_none=True)
        mu_used = loss.scale
        seen_c, seen_r, margins, rewards, losses, records, trained = [], [], [], [], [], [], []
        for k, indices in enumerate(micro_batches):
            local = processes.local(indices)
            last = k == len(micro_batches) - 1
            with nullcontext() if last else accelerator.no_sync(self.model):
                with self.compiled.active() if self.compiled else nullcontext():
                    in_c, in_r, r_c, r_r = self.model(local)
                margin = r_c - r_r
                per_pair, weight = weighted_loss(loss, margin, in_c, in_r, self.data.target_margin[local])
                if self.record_batches:
                    # ∂(w ℓ)/∂Δ per pair; every loss reaches the head only through Δ, so this times ‖h_c − h_r‖
                    # is the exact head-gradient norm of the update the pair received.
                    (dloss_dmargin,) = torch.autograd.grad(per_pair.sum(), margin, retain_graph=True)
                    records.append(torch.stack([r_c.detach(), r_r.detach(), pair_distance(in_c.detach(), in_r.detach()),
                                                weight.float(), dloss_dmargin.abs()], dim=1))
                    trained.append(torch.tensor(local, device=margin.device))
                # Sum over the pairs of the whole step (all processes, all micro-batches), times the number of
                # processes because data parallelism averages their gradients: the gradient of one batch of k·b.
                accelerator.backward(per_pair.sum() * processes.world / n_pairs)
            seen_c.append(in_c.detach())
            seen_r.append(in_r.detach())
            margins.append(margin.detach())
            rewards.append(torch.cat([r_c, r_r]).detach())
            losses.append(per_pair.detach())
        grad_norm = accelerator.clip_grad_norm_(self.params, spec.max_grad_norm or float("inf"))
        optimizer.step()
        loss.end_step(torch.cat(seen_c), torch.cat(seen_r))
        gather = processes.gather
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
            "learning_rate": optimizer.param_groups[0]["lr"],
            "epoch": (step + 1) * n_pairs / len(self.data.trainable_index),
        }
        if mu_used is not None:
            row["normbt_mu"] = mu_used
        return row

    def padding_status(self) -> dict:
        """Real and padded tokens of the run's training forwards (none for the head scope, which reads cached
        h), and the padded count the same pairs would cost in ungrouped batches, for status.json."""
        if self.spec.scope == "head":
            return {"group_by_length": False}
        spec, lengths = self.spec, self.data.token_lengths
        multiple = getattr(self.scope, "pad_multiple", 1)
        counts = token_counts(self.plan.micro_batches(spec.batch_size), lengths, multiple)
        ungrouped = StepPlan.for_run(dataclasses.replace(spec, group_by_length=False), self.data)
        counts["padded_tokens_ungrouped"] = token_counts(ungrouped.micro_batches(spec.batch_size), lengths, multiple)["padded_tokens"]
        return {"group_by_length": bool(spec.group_by_length), "training_tokens": counts}

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
        self.processes.main_writes(self.run.write_records, pd.DataFrame({
            "step": steps.astype(np.int32),
            "pair_id": self.data.pairs["pair_id"].to_numpy()[index],
            "reward_chosen": reward_chosen.astype(np.float32),
            "reward_rejected": reward_rejected.astype(np.float32),
            "margin": margin.astype(np.float32),
            "rep_distance": rep_distance.astype(np.float32),
            "weight": weight.astype(np.float32),
            "update_norm": (dloss_dmargin * rep_distance).astype(np.float32),
            "head_grad_norm": (rep_distance / (1.0 + np.exp(margin))).astype(np.float32),
        }))

    def fit(self, resume: bool = False, started: float | None = None) -> None:
        """Train to the end (or from the last checkpoint with `resume`), evaluating on schedule, then save the model."""
        started = started or time.time()
        data, plan, state, write = self.data, self.plan, self.state, self.processes.main_writes
        write(self.run.write_status, total_steps=plan.total_steps, n_train=data.n_train, n_eval=len(data.eval_index),
              n_truncated=data.n_truncated, n_identical_input=int(data.identical_input.sum()),
              n_trained_pairs=len(data.trainable_index), feature_cache_hit=self.feature_cache_hit,
              eval_steps=sorted(plan.eval_steps), n_processes=self.processes.world,
              n_skipped_rows=data.load_report.rows_skipped if data.load_report else 0, **self.padding_status())
        if data.load_report:
            write(self.run.write_load_report, data.load_report.to_dict())
        write(self.run.write_pair_texts,
              data.pairs[["pair_id", "split", "category", "prompt", "chosen", "rejected"] + [c for c in ("flipped", "identical") if c in data.pairs]])
        if resume:
            self.checkpointer.restore()
        else:
            self.begin()
            initial = self.evaluator.diagnose_eval(0)
            train_sample = self.evaluator.fix_bins(initial)
            write(self.run.append_metrics, [{**self.evaluator.evaluate(0, [], initial, train_sample), "elapsed_s": round(time.time() - started, 3)}])
        last_status = time.time()
        for step in range(state.step, plan.total_steps):
            if self.processes.any(self.run.cancel_requested):  # every process stops at the same step
                raise Cancelled("cancel requested")
            rows = [self.train_step(step)]
            done = state.step = step + 1
            if done in plan.eval_steps or len(self.records) >= RECORD_FLUSH_STEPS:
                self.flush_records()
            if done in plan.eval_steps:
                rows.append(self.evaluator.evaluate(done, [i for m in self.step_indices(step) for i in m]))
            for row in rows:
                row["elapsed_s"] = round(time.time() - started, 3)
            write(self.run.append_metrics, rows)
            if not math.isfinite(rows[0]["loss"]):  # the metrics so far stay; the run ends failed with this line
                raise DivergedError(f"diverged at step {done}: loss is {rows[0]['loss']}")
            if self.spec.save_every and done % self.spec.save_every == 0 and done < plan.total_steps:
                self.checkpointer.save(done)
            # status.json is rewritten atomically (with an fsync); once a second is enough for a progress bar.
            if time.time() - last_status >= 1.0 or done == plan.total_steps:
                write(self.run.write_status, step=done)
                last_status = time.time()
            self.progress("train", done, plan.total_steps)
        self.flush_records()
        if self.compiled:
            write(self.run.write_status, **self.compiled.status())
        write(self.checkpointer.save_model)
        self.processes.accelerator.wait_for_everyone()


def build_scope(spec: RunSpec, backbone: Backbone, pairs: pd.DataFrame, tokenized, progress: ProgressFn | None = None):
    """(the scope that produces h for a pair index, whether its features came from the cache)."""
    report = progress or (lambda *_: None)
    feature_progress = lambda done, total: report("features", done, total)  # noqa: E731
    if spec.scope == "head":
        h_chosen, h_rejected, cache_hit = cached_representations(
            backbone, pairs, tokenized, spec.max_length, spec.feature_batch_size, feature_progress
        )
        return HeadScope(h_chosen, h_rejected, backbone.device), cache_hit
    if spec.scope == "top-k":
        if spec.top_k > backbone.num_layers:
            raise SpecError(f"top_k={spec.top_k} exceeds the {backbone.num_layers} blocks of backbone {spec.backbone!r}")
        inputs_c, inputs_r, cache_hit = cached_block_inputs(
            backbone, pairs, tokenized, spec.max_length, backbone.num_layers - spec.top_k, spec.feature_batch_size, feature_progress
        )
        return TopKScope(backbone, spec.top_k, inputs_c, inputs_r), cache_hit
    if spec.scope == "lora":
        return LoraScope(backbone, tokenized.chosen, tokenized.rejected, r=spec.lora_r, alpha=spec.lora_alpha,
                         dropout=spec.lora_dropout, target_modules=spec.lora_target_modules), False
    return FullScope(backbone, tokenized.chosen, tokenized.rejected), False


OOM_ADVICE = ("out of GPU memory: try a smaller --batch-size (with --grad-accum to keep the batch), a shorter "
              "--max-length, --gradient-checkpointing, --mixed-precision bf16, or --scope lora")


def run_training(spec: RunSpec, run: RunDir, progress: ProgressFn | None = None, resume: bool = False) -> dict:
    """Train `spec` into `run` (or continue it from its last checkpoint), recording the outcome in status.json;
    returns the final status."""
    previous = signal.signal(signal.SIGTERM, _sigterm) if _main_thread() else None
    started = time.time()
    processes = trackers = None

    def write_status(**fields) -> dict | None:
        # Only the main process writes under data parallelism; before the process group exists, this one does.
        return processes.main_writes(run.write_status, **fields) if processes else run.write_status(**fields)

    try:
        spec.resolve()
        if progress:
            progress("setup", 0, 1)
        processes = Processes(spec)
        processes.check_batch_size(spec.batch_size)  # before the run is marked running, as bad input is
        processes.main_writes(run.mark_running)
        threads = torch.get_num_threads()
        try:
            # The trainer writes through the tracked run: the metrics rows the main process appends also go to the
            # spec's trackers (report_to); the other processes never append, so never start a tracker.
            tracked_run, trackers = track(run, spec)
            Trainer.from_spec(spec, tracked_run, progress, processes).fit(resume=resume, started=started)
        finally:
            torch.set_num_threads(threads)  # the trainer may pin threads; a process that trains again gets them back
        # A non-main process writes nothing; it answers with the state it reached.
        return write_status(state="done", finished_at=time.time(), wall_s=round(time.time() - started, 2)) or {"state": "done"}
    except Cancelled as exc:
        return write_status(state="cancelled", finished_at=time.time(), error=str(exc)) or {"state": "cancelled", "error": str(exc)}
    except torch.OutOfMemoryError as exc:
        write_status(state="failed", finished_at=time.time(), error=OOM_ADVICE)
        raise SpecError(f"run {run.name}: {OOM_ADVICE}") from exc
    except Exception as exc:
        write_status(state="failed", finished_at=time.time(), error=f"{type(exc).__name__}: {first_line(exc)}")
        raise
    finally:
        if trackers is not None:
            trackers.finish()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


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
