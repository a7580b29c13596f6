"""The trainer's evaluation: per-pair diagnostics of the eval slice (and a train sample, and the last batch) with
the current model, the distance bins fixed once from the initial model, and the eval metrics of a step.

A collaborator of `Trainer`: it reads the trainer's model, data, plan and state, and writes the run's per-pair
snapshots through the main-process writer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from normbt_viz.model.distance import pair_distance
from normbt_viz.numeric import length_chunks, pearson_r
from normbt_viz.train.batching import pair_lengths
from normbt_viz.train.diagnostics import assign_bins, distance_bin_edges, per_pair_full_grad_norms
from normbt_viz.train.losses import weighted_loss

if TYPE_CHECKING:
    from normbt_viz.train.loop import Trainer

DIAGNOSTIC_CHUNK = 128  # pairs per scoring forward at most: no graph is kept, so a larger batch costs little memory
# Padded tokens per side of a scoring forward at most (pairs × the chunk's longest). A GPU wants large forwards; a
# CPU is faster with small ones that stay in its caches: on this project's 2-core CPU the full-scope MiniLM run's
# 100 eval pairs took 1.9 s in chunks of 1,024 tokens against 2.7 s in chunks of 8,192 (medians of 4).
DIAGNOSTIC_TOKENS = {"cpu": 1024}
DIAGNOSTIC_TOKENS_ACCELERATOR = 128 * 64


def diagnostic_tokens(device: torch.device) -> int:
    """The most padded tokens per side of one scoring forward on `device`."""
    return DIAGNOSTIC_TOKENS.get(device.type, DIAGNOSTIC_TOKENS_ACCELERATOR)
MAP_SAMPLE = 1000  # eval pairs whose h is kept at each evaluation of a backbone scope (fp16)


class Evaluator:
    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.kept_h: tuple[np.ndarray, np.ndarray] | None = None

    # -- per-pair diagnostics -----------------------------------------------------------------------
    def diagnose(self, indices: list[int], split: str, step: int, keep_h: int = 0) -> pd.DataFrame:
        """Per-pair diagnostics for `indices` with the current model (see the README's column list).

        With `keep_h`, the h the head read for the first `keep_h` pairs is kept in `self.kept_h` (for maps)."""
        trainer = self.trainer
        data, loss = trainer.data, trainer.state.loss
        columns: dict[str, list] = {k: [] for k in ("reward_chosen", "reward_rejected", "rep_distance", "weight", "update_norm")}
        kept: list[tuple[np.ndarray, torch.Tensor, torch.Tensor]] = []
        # Chunks of similar lengths, sized by padded tokens: a forward pads every sequence to its chunk's longest,
        # and real data is ragged (HH-RLHF: most answers short, a long tail), so chunks of a fixed pair count in the
        # given order pad most pairs to the longest one. `positions` index `indices`; rows come back in its order.
        chunks = length_chunks(pair_lengths(data.token_lengths)[indices], DIAGNOSTIC_CHUNK,
                               diagnostic_tokens(trainer.backbone.device))
        for positions in chunks:
            chunk = [indices[i] for i in positions]
            # Under the run's autocast (bf16 where training is), with no autograd bookkeeping at all.
            with torch.inference_mode():
                in_c, in_r, r_c, r_r = trainer.score(chunk)
                rep_distance = pair_distance(in_c, in_r)
            keep = positions < keep_h
            if keep.any():
                mask = torch.from_numpy(keep).to(in_c.device)
                kept.append((positions[keep], in_c[mask].half().cpu(), in_r[mask].half().cpu()))
            # ∂(w ℓ)/∂Δ needs autograd: ordinary copies of the few [chunk] / [chunk, hidden] tensors it reads.
            in_c, in_r, r_c, r_r = in_c.clone(), in_r.clone(), r_c.clone(), r_r.clone()
            margin = (r_c - r_r).requires_grad_(True)
            per_pair, weight = weighted_loss(loss, margin, in_c, in_r, data.target_margin[chunk])
            # Every loss depends on h only through Δ, so ‖∂(w ℓ)/∂w_head‖ = |∂(w ℓ)/∂Δ| · ‖h_c - h_r‖ exactly.
            (dloss_dmargin,) = torch.autograd.grad(per_pair.sum(), margin)
            columns["reward_chosen"].append(r_c.cpu())
            columns["reward_rejected"].append(r_r.cpu())
            columns["rep_distance"].append(rep_distance.cpu())
            columns["weight"].append(weight.cpu())
            columns["update_norm"].append((dloss_dmargin.abs() * rep_distance).detach().cpu())
        if keep_h:
            kept_order = np.argsort(np.concatenate([p for p, _, _ in kept]))
            self.kept_h = tuple(torch.cat([piece[side] for piece in kept]).numpy()[kept_order] for side in (1, 2))
        unsort = np.argsort(np.concatenate(chunks))
        values = {k: torch.cat(v).double().numpy()[unsort] for k, v in columns.items()}
        margin = values["reward_chosen"] - values["reward_rejected"]
        pred_error = 1.0 / (1.0 + np.exp(margin))
        meta = data.pairs.iloc[indices]
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
                "weight": np.where(data.identical_input[indices], np.nan, values["weight"]),
                "update_norm": values["update_norm"],
                "correct": margin > 0,
                "len_chosen": data.token_lengths[0][indices],
                "len_rejected": data.token_lengths[1][indices],
                "flipped": meta["flipped"].to_numpy() if "flipped" in meta else False,
                "identical": meta["identical"].to_numpy() if "identical" in meta else False,
                "identical_input": data.identical_input[indices],
            }
        )
        frame["full_grad_norm"] = np.nan
        return frame

    def diagnose_all(self, indices: list[int], split: str, step: int, keep_h: int = 0) -> pd.DataFrame:
        """`diagnose` over `indices`, sharded across the processes and gathered back in the order of `indices`."""
        processes = self.trainer.processes
        if processes.world == 1 or not indices:
            return self.diagnose(indices, split, step, keep_h)
        from accelerate.utils import gather_object

        positions = list(range(processes.rank, len(indices), processes.world))
        local = self.diagnose([indices[i] for i in positions], split, step, keep_h).assign(_position=positions)
        kept = [(positions, self.kept_h)] if keep_h else []
        frame = pd.concat(gather_object([local]), ignore_index=True).sort_values("_position").drop(columns="_position")
        if keep_h:
            order = np.argsort(np.concatenate([p for p, _ in gather_object(kept)]))
            pieces = [h for _, h in gather_object(kept)]
            self.kept_h = tuple(np.concatenate([piece[side] for piece in pieces])[order][:keep_h] for side in (0, 1))
        return frame.reset_index(drop=True)

    def grad_norms_all(self, indices: list[int]) -> np.ndarray:
        """Exact per-pair gradient norms of `indices`, sharded across the processes like `diagnose_all`."""
        trainer = self.trainer
        model = trainer.processes.accelerator.unwrap_model(trainer.model)
        return trainer.processes.sharded_arrays(
            indices, lambda local: per_pair_full_grad_norms(model.head, model.scope, local, trainer.params))

    # -- the evaluation of a step -------------------------------------------------------------------
    def diagnose_eval(self, step: int) -> pd.DataFrame:
        """The eval slice's per-pair diagnostics; backbone scopes also keep its h (a fixed sample, fp16) so maps
        can follow training."""
        trainer = self.trainer
        spec = trainer.spec
        keep_h = MAP_SAMPLE if spec.scope != "head" and spec.diagnostics != "off" else 0
        eval_rows = self.diagnose_all(trainer.data.eval_index, "eval", step, keep_h=keep_h)
        if keep_h:
            trainer.processes.main_writes(trainer.run.write_representations, step, eval_rows["pair_id"].to_numpy()[:keep_h], *self.kept_h)
        return eval_rows

    def fix_bins(self, initial_eval_rows: pd.DataFrame) -> pd.DataFrame | None:
        """Fix the distance bins and each pair's initial distance from the initial model (step 0's eval rows).

        Bins are a property of each pair, fixed from the initial model's distances on the eval slice. With a
        frozen backbone every train pair's initial distance is free; otherwise it would cost a forward over the
        whole train set, so only the diagnosed sample gets one (batch rows may lack it). Returns the diagnosed
        train sample's step-0 rows, which the step-0 evaluation takes instead of scoring them again."""
        trainer = self.trainer
        data, state = trainer.data, trainer.state
        state.bin_edges = distance_bin_edges(initial_eval_rows["rep_distance"].to_numpy(), trainer.spec.n_distance_bins)
        known = list(range(data.n_train)) if trainer.spec.scope == "head" else trainer.plan.diag_train_index
        state.initial_distance = np.full(len(data.pairs), np.nan)
        sample_rows = None
        if known:
            known_rows = self.diagnose_all(known, "train", 0)
            state.initial_distance[known] = known_rows["rep_distance"].to_numpy()
            sample_rows = known_rows.set_axis(known).loc[trainer.plan.diag_train_index].reset_index(drop=True)
        state.initial_distance[data.eval_index] = initial_eval_rows["rep_distance"].to_numpy()
        trainer.processes.main_writes(trainer.run.write_bins, state.bin_edges.tolist(), "eval slice, initial model")
        return sample_rows

    def evaluate(self, step: int, last_batch: list[int], eval_rows: pd.DataFrame | None = None,
                 train_rows: pd.DataFrame | None = None) -> dict:
        """Diagnose the eval slice and the train sample (or take `eval_rows` / `train_rows` already diagnosed at
        this step) and the last batch; write the step's per-pair snapshot; return the step's eval metrics."""
        trainer = self.trainer
        data, plan, state = trainer.data, trainer.plan, trainer.state
        eval_rows = self.diagnose_eval(step) if eval_rows is None else eval_rows
        parts = [eval_rows]
        if plan.diag_train_index:
            parts.append(self.diagnose_all(plan.diag_train_index, "train", step) if train_rows is None else train_rows)
        if last_batch and trainer.record_batches:
            parts.append(self.diagnose_all(last_batch, "batch", step))
        frame = pd.concat(parts, ignore_index=True)
        index_of = {pid: i for i, pid in enumerate(data.pairs["pair_id"])}
        positions = frame["pair_id"].map(index_of).to_numpy()
        frame["rep_distance_init"] = state.initial_distance[positions]
        known = np.isfinite(frame["rep_distance_init"].to_numpy())
        frame["distance_bin"] = -1  # -1: initial distance not computed (a batch pair outside the diagnosed sample)
        frame.loc[known, "distance_bin"] = assign_bins(frame.loc[known, "rep_distance_init"].to_numpy(), state.bin_edges)
        grad_sample = plan.initial_grad_sample_index if step == 0 else plan.grad_sample_index
        sampled = self.grad_norms_all(grad_sample)
        sample_mask = (frame["split"] == "eval") & frame["pair_id"].isin(data.pairs["pair_id"].iloc[grad_sample])
        frame.loc[sample_mask, "full_grad_norm"] = sampled
        # The head's part of that norm is σ(−Δ)·‖x_c − x_r‖ exactly (a linear score), and the head's and the
        # backbone's parameters are disjoint, so the backbone's part is what is left: ‖∇_bb‖² = ‖∇‖² − ‖∇_head‖².
        # Scaled by the arm's |∂(wℓ)/∂Δ| instead of σ(−Δ) it is the pair's update to the backbone under this arm.
        if trainer.scope.trainable_parameters():
            backbone_sq = frame["full_grad_norm"] ** 2 - frame["head_grad_norm"] ** 2
            frame["backbone_grad_norm"] = np.sqrt(backbone_sq.clip(lower=0.0))
            frame["backbone_update_norm"] = frame["backbone_grad_norm"] * frame["update_norm"] / frame["head_grad_norm"]
        trainer.processes.main_writes(trainer.run.write_pairs, step, frame)
        return self.metrics(step, frame[frame["split"] == "eval"])

    def metrics(self, step: int, ev: pd.DataFrame) -> dict:
        """The eval metrics of a step from its eval rows."""
        loss = self.trainer.state.loss
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
        if loss.scale is not None:
            metrics["normbt_mu"] = loss.scale
        return metrics

    def _per_pair_loss_numpy(self, rows: pd.DataFrame) -> np.ndarray:
        data, loss = self.trainer.data, self.trainer.state.loss
        margin = torch.tensor(rows["margin"].to_numpy(), dtype=torch.float32)
        index_of = {pid: i for i, pid in enumerate(data.pairs["pair_id"])}
        target = data.target_margin.cpu()[[index_of[p] for p in rows["pair_id"]]]
        return loss.per_pair(margin, target).numpy()
