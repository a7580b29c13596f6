"""The data-parallel context of one training process: Accelerate's accelerator, this process's rank among how
many, and the main-process writer.

One process, torchrun or accelerate launch: every process runs the same loop on its share of each batch, and
only the main process writes the run directory. That rule is said at every write (`processes.main_writes(
run.append_metrics, rows)`), not guessed from a method's name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from normbt_viz.errors import SpecError
from normbt_viz.model.backbones import accelerate_on_cpu
from normbt_viz.spec import RunSpec


class Processes:
    def __init__(self, spec: RunSpec):
        """Accelerate decides the device and the process group (one process, torchrun, or accelerate launch)."""
        from accelerate import Accelerator

        self.accelerator = Accelerator(mixed_precision=spec.mixed_precision, cpu=accelerate_on_cpu(spec.device))
        self.world, self.rank = self.accelerator.num_processes, self.accelerator.process_index
        self.is_main = self.accelerator.is_main_process
        if torch.cuda.is_available():
            # TF32 matmuls on GPUs that have them: the master weights, the distance and the loss stay fp32.
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise SpecError(f"batch_size={batch_size} is invalid: it is the global batch and must divide among the {self.world} processes")

    def main_writes(self, write: Callable, *args, **kwargs):
        """Call `write` (a RunDir method) on the main process only; the others get None."""
        return write(*args, **kwargs) if self.is_main else None

    def local(self, indices: list[int]) -> list[int]:
        """This process's share of a micro-batch: the same global order, cut into `world` equal pieces."""
        share = len(indices) // self.world
        return indices[self.rank * share : (self.rank + 1) * share]

    def global_mean(self, values: torch.Tensor) -> float:
        """Mean over every process's pairs (sum and count all-reduced), so mu is the same on every rank."""
        if self.world == 1:
            return float(values.float().mean())
        total = torch.stack([values.float().sum(), torch.tensor(float(values.numel()), device=values.device)])
        total = self.accelerator.reduce(total, reduction="sum")
        return float(total[0] / total[1])

    def any(self, flag: bool) -> bool:
        """True on every process when it is true on one (so all stop at the same step)."""
        if self.world == 1:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.accelerator.device)
        return bool(self.accelerator.reduce(value, reduction="sum").item() > 0)

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.accelerator.gather(tensor) if self.world > 1 else tensor

    def sharded_arrays(self, indices: list[int], compute: Callable[[list[int]], np.ndarray]) -> np.ndarray:
        """`compute` over `indices` (one array row per index), each process taking every world-th one, gathered back
        in the order of `indices`."""
        if self.world == 1 or not indices:
            return compute(indices)
        from accelerate.utils import gather_object

        positions = list(range(self.rank, len(indices), self.world))
        gathered = gather_object([(positions, compute([indices[i] for i in positions]))])
        order = np.argsort(np.concatenate([p for p, _ in gathered]))
        return np.concatenate([values for _, values in gathered])[order]
