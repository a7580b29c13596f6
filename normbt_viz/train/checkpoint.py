"""The trainer's checkpoints and its final model: Accelerate's save_state / load_state for the weights, the
optimizer and the RNG states, plus the loop's own `TrainingState`, all through the run directory's staging and
commit so a checkpoint or a model folder either is complete or does not exist."""

from __future__ import annotations

from typing import TYPE_CHECKING

from normbt_viz.errors import SpecError

if TYPE_CHECKING:
    from normbt_viz.train.loop import Trainer


class Checkpointer:
    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def save(self, step: int) -> None:
        """Checkpoint step `step`; the last `save_total_limit` are kept."""
        trainer = self.trainer
        run, processes = trainer.run, trainer.processes
        accelerator = processes.accelerator
        trainer.flush_records()  # record chunks end at the checkpoint, so a resume can drop what came after
        processes.main_writes(run.clear_checkpoint_staging, step)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(run.checkpoint_staging_path(step)))
        accelerator.wait_for_everyone()
        trainer.state.step = step
        processes.main_writes(run.commit_checkpoint, step, trainer.state.loop_state(), trainer.state.initial_distance)
        processes.main_writes(run.prune_checkpoints, trainer.spec.save_total_limit)
        processes.main_writes(run.write_status, last_checkpoint=step, step=step)  # a kill right after still shows the step it kept
        accelerator.wait_for_everyone()

    def restore(self) -> None:
        """Continue from the newest complete checkpoint; what the run wrote after it is dropped first."""
        trainer = self.trainer
        run, processes = trainer.run, trainer.processes
        steps = run.checkpoint_steps()
        if not steps:
            raise SpecError(f"run {run.name} has no checkpoint to resume from (train with --save-every N)")
        processes.accelerator.load_state(str(run.checkpoint_path(steps[-1])))
        trainer.state.restore(*run.checkpoint_state(steps[-1]))
        processes.main_writes(run.truncate_after, trainer.state.step)
        processes.main_writes(run.write_status, resumed_from=trainer.state.step, step=trainer.state.step)
        processes.accelerator.wait_for_everyone()

    def save_model(self) -> None:
        """The trained reward model and, where it reads the same h, its sequence-classifier export (main process)."""
        from normbt_viz.model.export import export_sequence_classifier
        from normbt_viz.model.reward_model import save_reward_model

        trainer = self.trainer
        staging = trainer.run.model_staging()
        trainable = {id(p) for p in trainer.scope.trainable_parameters()}
        names = [n for n, p in trainer.backbone.model.named_parameters() if id(p) in trainable]
        save_reward_model(staging, trainer.spec, trainer.backbone, trainer.head, names)
        export_sequence_classifier(staging, trainer.backbone, trainer.head, trainer.spec)
        trainer.run.commit_model()
