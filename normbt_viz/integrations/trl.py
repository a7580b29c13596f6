"""NormBT (and every other loss arm of this project) inside TRL's `RewardTrainer`, on TRL's own model and batches.

A TRL script changes one import and adds one argument:

    from normbt_viz.integrations.trl import NormBTRewardTrainer as RewardTrainer
    trainer = RewardTrainer(model=..., args=RewardConfig(...), train_dataset=..., eval_dataset=..., arm="normbt")

h is the vector TRL's score layer reads at the pooled token: the last non-pad token's final hidden state for a
decoder (`AutoModelForSequenceClassification`'s own rule, from `config.pad_token_id`), the pooler output for a
BERT-style encoder. It is caught by a hook on the score layer, so the loss, the distance and the reward come
from one forward. The loss is this project's (`train/losses.py`): NormBT's weight sg(μ/(d+ε)) with the same
choices as the project's trainer — μ₀ is the mean distance of the first optimizer step (all its micro-batches),
a step's weights use the μ from before it, μ is updated once per optimizer step with the mean over every pair
of the step, all-reduced across processes so it is the same on every rank. μ is saved beside each TRL
checkpoint (`normbt_loss_state.json`) and restored by `train(resume_from_checkpoint=...)`.

By default the run is also written as one of this project's run directories (`callback.py`), so the app's
Runs, Gradients, Embeddings and Pairs pages show it; `run_dir=False` turns that off.

TRL is an optional dependency (`pip install 'normbt-viz[trl]'`): importing the project never imports it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from normbt_viz.errors import SpecError
from normbt_viz.model.distance import pair_distance
from normbt_viz.spec import ARMS, RunSpec
from normbt_viz.train.losses import all_reduced_mean, build_loss, weighted_loss

try:
    from transformers import TrainerCallback
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
    from trl import RewardTrainer
except ImportError as exc:  # the integration is an extra; the rest of the project works without it
    raise ImportError("normbt_viz.integrations.trl needs TRL: pip install 'normbt-viz[trl]'") from exc

LOSS_STATE = "normbt_loss_state.json"  # the loss's state (μ) beside each TRL checkpoint
PAIR_INDEX = "normbt_pair_index"  # the row of each pair in its (prepared) dataset, carried through the collator
# Arms that change the model or the optimiser, not the loss: TRL has its own switches for those.
NOT_A_LOSS = {"bt_layernorm": "a LayerNorm before the score head changes TRL's model; add it to the model instead",
              "bt_gradclip": "gradient clipping is TRL's own option: RewardConfig(max_grad_norm=0.1) with arm='bt'"}
LOSS_OPTIONS = ("normbt_beta", "normbt_eps", "normbt_weight_clip", "normbt_distance", "label_smoothing")


def loss_spec(arm: str, options: dict | None = None) -> RunSpec:
    """The run spec's loss fields for `arm` with `options` (NormBT's beta, eps, weight clip, distance; label
    smoothing) applied and validated, so a bad value fails here with the field's name."""
    if arm in NOT_A_LOSS:
        raise SpecError(f"arm={arm!r} is not available in TRL: {NOT_A_LOSS[arm]}")
    if arm not in ARMS:
        raise SpecError(f"arm={arm!r} is invalid: expected one of {', '.join(a for a in ARMS if a not in NOT_A_LOSS)}")
    options = dict(options or {})
    unknown = sorted(set(options) - set(LOSS_OPTIONS))
    if unknown:
        raise SpecError(f"loss option(s) {', '.join(unknown)} unknown: expected {', '.join(LOSS_OPTIONS)}")
    return dataclasses.replace(RunSpec().with_arm(arm), **options).validate()


def score_layer(model: torch.nn.Module) -> torch.nn.Linear:
    """The linear layer whose output is the reward: the last `nn.Linear` with one output in the model (a
    decoder's `score`, BERT's `classifier`, RoBERTa's `classifier.out_proj`, PEFT's trainable copy of either)."""
    found = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1]
    if not found:
        raise ValueError(f"{type(model).__name__} has no linear layer with one output to read h from (num_labels must be 1)")
    return found[-1]


class ScoreInputProbe:
    """Catches the input of the score layer at every forward; `h(input_ids)` returns it at the pooled token.

    A decoder's score layer runs on every position and the model then picks the last non-pad token by
    `config.pad_token_id`; the same pick here gives the h behind each reward. An encoder's runs on one pooled
    vector per sequence already."""

    def __init__(self, model: torch.nn.Module):
        self.pad_token_id = model.config.get_text_config().pad_token_id
        self.seen: torch.Tensor | None = None
        self.handle = score_layer(model).register_forward_pre_hook(self._keep)

    def _keep(self, _module, args):
        self.seen = args[0]

    def h(self, input_ids: torch.Tensor) -> torch.Tensor:
        seen, self.seen = self.seen, None
        if seen is None:
            raise RuntimeError("the score layer did not run in this forward")
        if seen.dim() == 2:
            return seen
        if self.pad_token_id is None:
            return seen[:, -1]
        not_pad = (input_ids != self.pad_token_id).to(torch.int32)
        positions = torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32)
        last = (positions * not_pad).argmax(-1)
        return seen[torch.arange(seen.shape[0], device=seen.device), last.to(seen.device)]


class _KeepPairIndex:
    """Wraps TRL's collator so each batch also says which dataset rows it holds (records need pair ids)."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, examples):
        batch = self.collator(examples)
        batch[PAIR_INDEX] = torch.tensor([int(example[PAIR_INDEX]) for example in examples])
        return batch


class _EndOfStep(TrainerCallback):
    """Tells the trainer an optimizer step finished (before any other callback sees that step), and keeps the
    loss's state (μ) in each checkpoint TRL saves, so a resumed training continues with it."""

    def __init__(self, trainer: "NormBTRewardTrainer"):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer._end_pair_step()

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            (folder / LOSS_STATE).write_text(json.dumps(self.trainer.pair_loss.state_dict()))


class NormBTRewardTrainer(RewardTrainer):
    """TRL's `RewardTrainer` with this project's pair loss (`arm`, default NormBT) and, unless `run_dir=False`,
    a run directory the app opens (default `$NORMBT_VIZ_RUNS` or `./runs`, named after `args.run_name` or the
    output folder). `loss_options` sets NormBT's `normbt_beta`, `normbt_eps`, `normbt_weight_clip`,
    `normbt_distance` or `label_smoothing`. Everything else is TRL's: model loading, data formats, PEFT,
    evaluation, checkpoints, `report_to`."""

    def __init__(self, *args, arm: str = "normbt", loss_options: dict | None = None, run_dir: str | Path | bool | None = None, **kwargs):
        self.pair_spec = loss_spec(arm, loss_options)
        if run_dir not in (None, True, False) and Path(run_dir).exists():
            raise SpecError(f"run_dir {run_dir} already exists: pass a new folder, or run_dir=None for a fresh one under the runs root")
        self.pair_loss = build_loss(self.pair_spec)
        self._pair_loss_started = False
        self._step: dict[str, list] = {}
        self.mu_used: float | None = None
        self.step_stats: dict | None = None  # the last optimizer step: its scalars and its per-pair records
        self.eval_records: list[dict] = []  # per-pair values of the evaluation in progress
        super().__init__(*args, **kwargs)
        self.pair_loss.global_mean = lambda values: all_reduced_mean(values, self.accelerator)
        self.probe = ScoreInputProbe(self.accelerator.unwrap_model(self.model))
        self.data_collator = _KeepPairIndex(self.data_collator)
        self.add_callback(_EndOfStep(self))
        self.run_callback = None
        if run_dir is not False:
            from normbt_viz.integrations.callback import NormBTRunCallback

            self.run_callback = NormBTRunCallback(self, None if run_dir in (None, True) else Path(run_dir))
            self.add_callback(self.run_callback)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        """TRL's train; resuming from a checkpoint restores μ from it (a checkpoint saved without it starts μ again)."""
        if resume_from_checkpoint:
            from transformers.trainer_utils import get_last_checkpoint

            folder = get_last_checkpoint(self.args.output_dir) if resume_from_checkpoint is True else resume_from_checkpoint
            saved = Path(folder or "") / LOSS_STATE
            if saved.is_file():
                self.pair_loss.load_state_dict(json.loads(saved.read_text()))
                self._pair_loss_started = True
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    # -- data: every pair keeps its row index through TRL's column pruning and collator -----------------
    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        return dataset.map(lambda _example, index: {PAIR_INDEX: index}, with_indices=True)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if PAIR_INDEX not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, PAIR_INDEX]

    # -- NormBT's mu across steps and processes ---------------------------------------------------
    def _forward(self, model, inputs: dict):
        """(rewards of the chosen, of the rejected, h of the chosen, of the rejected, the model's output) from one
        forward of TRL's batch (chosen rows first, then rejected)."""
        features = {k: v for k, v in inputs.items() if k not in (PAIR_INDEX, "margin")}
        outputs = model(**features, use_cache=False)
        rewards = outputs.logits.squeeze(-1)
        h = self.probe.h(features["input_ids"])
        reward_chosen, reward_rejected = torch.chunk(rewards, 2)
        h_chosen, h_rejected = torch.chunk(h, 2)
        return reward_chosen, reward_rejected, h_chosen, h_rejected, outputs

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """TRL fetches all the micro-batches of an optimizer step at once: the first step's set μ₀ (as the
        project's trainer does), before any weight exists, and then the step-0 evaluation runs."""
        batch_samples, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        if not self._pair_loss_started and batch_samples:
            self._pair_loss_started = True
            seen = []
            model = self.accelerator.unwrap_model(self.model)
            with torch.no_grad(), self.accelerator.autocast():
                for batch in batch_samples:
                    seen.append(self._forward(model, self._prepare_inputs(dict(batch)))[2:4])
            self.pair_loss.begin(torch.cat([c for c, _ in seen]), torch.cat([r for _, r in seen]))
            if self.run_callback is not None:
                self.run_callback.before_first_step()
        self.mu_used = self.pair_loss.scale
        return batch_samples, num_items

    def _end_pair_step(self) -> None:
        """After the optimizer step: update the loss's state (μ) with every pair of the step, gather the step's
        per-pair records across processes, and keep the step's scalars for the run directory."""
        step, self._step = self._step, {}
        if not step:
            return
        self.pair_loss.end_step(torch.cat(step["h_chosen"]), torch.cat(step["h_rejected"]))
        gather = self.accelerator.gather if self.accelerator.num_processes > 1 else (lambda t: t)
        records = gather(torch.cat(step["records"]))
        index = gather(torch.cat(step["index"]))
        reward_chosen, reward_rejected = records[:, 0], records[:, 1]
        margin = reward_chosen - reward_rejected
        rewards = torch.cat([reward_chosen, reward_rejected])
        losses = gather(torch.cat(step["loss"]))
        self.step_stats = {
            "loss": float(losses.mean()), "accuracy": float((margin > 0).float().mean()), "margin": float(margin.mean()),
            "mean_reward": float(rewards.mean()), "min_reward": float(rewards.min()), "max_reward": float(rewards.max()),
            "normbt_mu": self.mu_used, "index": index.cpu().numpy(), "records": records.double().cpu().numpy(),
        }

    # -- the loss ---------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        reward_chosen, reward_rejected, h_chosen, h_rejected, outputs = self._forward(model, inputs)
        margin = reward_chosen - reward_rejected
        target_margin = inputs.get("margin")
        if self.pair_spec.loss == "normbt" and self.pair_loss.scale is None:
            # An evaluation before the first step (trainer.evaluate() called alone): NormBT has no μ yet, so its
            # weights are missing (NaN) and the loss reported is BT's.
            per_pair, weight = self.pair_loss.per_pair(margin, target_margin), torch.full_like(margin, float("nan"))
        else:
            per_pair, weight = weighted_loss(self.pair_loss, margin, h_chosen, h_rejected, target_margin)
            if self.pair_spec.loss == "normbt":
                # A pair whose two inputs are identical has h_c = h_r: no gradient under any loss, but a weight μ/ε that
                # would swamp the reported loss. The project's trainer leaves such pairs out; here they weigh 0.
                chosen_ids, rejected_ids = torch.chunk(inputs["input_ids"], 2)
                trainable = ~(chosen_ids == rejected_ids).all(dim=-1)
                weight = weight * trainable
                per_pair = per_pair * trainable
        loss = per_pair.mean()
        if self.args.center_rewards_coefficient is not None:
            loss = loss + self.args.center_rewards_coefficient * torch.mean((reward_chosen + reward_rejected) ** 2)
        record = self._pair_record(margin, reward_chosen, reward_rejected, h_chosen, h_rejected, weight, target_margin)
        if mode == "train":
            self._step.setdefault("h_chosen", []).append(h_chosen.detach())
            self._step.setdefault("h_rejected", []).append(h_rejected.detach())
            self._step.setdefault("records", []).append(record)
            self._step.setdefault("index", []).append(inputs[PAIR_INDEX])
            self._step.setdefault("loss", []).append(per_pair.detach())
        elif self.run_callback is not None:
            self.eval_records.append({"index": inputs[PAIR_INDEX], "records": record, "h_chosen": h_chosen.detach(),
                                      "h_rejected": h_rejected.detach(), "per_pair": per_pair.detach()})
        self._log_pair_metrics(mode, inputs, outputs, margin, weight)
        return (loss, outputs) if return_outputs else loss

    def _pair_record(self, margin, reward_chosen, reward_rejected, h_chosen, h_rejected, weight, target_margin) -> torch.Tensor:
        """[pairs, 5]: reward_chosen, reward_rejected, ‖h_c − h_r‖, weight, |∂(wℓ)/∂Δ|. Every loss reaches the
        score layer only through Δ, so the last times the distance is the exact norm of the pair's update to it."""
        with torch.enable_grad():
            leaf = margin.detach().float().requires_grad_(True)
            weighted = torch.nan_to_num(weight.detach().float(), nan=1.0) * self.pair_loss.per_pair(leaf, target_margin)
            (dloss_dmargin,) = torch.autograd.grad(weighted.sum(), leaf)
        return torch.stack([reward_chosen.detach().float(), reward_rejected.detach().float(),
                            pair_distance(h_chosen.detach(), h_rejected.detach()), weight.detach().float(), dloss_dmargin.abs()], dim=1)

    def _log_pair_metrics(self, mode, inputs, outputs, margin, weight) -> None:
        """TRL's own metrics (same names and reductions as RewardTrainer.compute_loss), plus μ and the mean weight."""
        if mode == "train":
            num_tokens = self.accelerator.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
            self._total_train_tokens += num_tokens // self._tp_size
        metrics = self._metrics[mode]
        metrics["num_tokens"] = [self._total_train_tokens]
        with torch.no_grad():
            all_rewards = self.accelerator.gather(outputs.logits)
            metrics["min_reward"].append(all_rewards.min().item())
            metrics["mean_reward"].append(all_rewards.mean().item())
            metrics["max_reward"].append(all_rewards.max().item())
            metrics["accuracy"].append(self.accelerator.gather_for_metrics((margin > 0).float().mean()).mean().item())
            metrics["margin"].append(self.accelerator.gather_for_metrics(margin.mean()).mean().item())
            if self.pair_loss.scale is not None:
                metrics["normbt_mu"].append(self.pair_loss.scale)
                metrics["mean_weight"].append(self.accelerator.gather_for_metrics(weight.float().mean()).mean().item())
