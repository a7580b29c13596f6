"""A compiled backbone forward for training steps, with a fallback to eager when the backbone does not compile.

Only the training step's forward runs compiled (`with compiled.active(): ...`). Evaluation and the exact
per-pair gradient norms stay eager: they register module hooks after the fact, and a compiled graph does not
see hooks added once it is traced (torch._dynamo skips those guards), so their figures would silently be wrong.
Sequences are padded to a multiple of `PAD_MULTIPLE` so that, with length-grouped batches, few shapes repeat
and the graph is reused instead of recompiled.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from normbt_viz.errors import first_line

PAD_MULTIPLE = 8


class CompiledForward:
    """`backbone.forward_hidden` compiled with `torch.compile`, swapped in only inside `active()`.

    `note` says why the eager forward is used instead: set up front for a scope whose forward cannot be
    compiled safely, or on the first call that fails to compile (the call is then redone eagerly)."""

    def __init__(self, backbone, scope_name: str, backend: str | object = "inductor"):
        self.backbone = backbone
        self.eager = backbone.forward_hidden
        self.note: str | None = None
        if scope_name not in ("full", "lora"):
            # top-k injects cached block inputs through a forward pre-hook whose tensor changes every call;
            # head runs no backbone at all.
            self.note = f"--compile has no effect with --scope {scope_name}: the training step runs eagerly"
            self.compiled = None
        else:
            self.compiled = torch.compile(self.eager, backend=backend, dynamic=None)

    @property
    def in_use(self) -> bool:
        return self.compiled is not None and self.note is None

    @contextmanager
    def active(self):
        """Inside, the backbone's forward is the compiled one (unless compiling failed or does not apply)."""
        if not self.in_use:
            yield
            return
        self.backbone.forward_hidden = self._call
        try:
            yield
        finally:
            del self.backbone.forward_hidden  # the instance attribute goes; the class's eager method is back

    def _call(self, *args, **kwargs):
        if self.note is not None:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as exc:  # any failure to trace or build the graph: train on, eagerly, and say so
            # A backend's failure arrives wrapped (BackendCompilerFailed, "backend=... raised:"); name the cause.
            cause = getattr(exc, "inner_exception", None) or exc.__cause__ or exc
            self.note = f"torch.compile failed for backbone {self.backbone.name!r}, trained eagerly: {type(cause).__name__}: {first_line(cause)}"
            return self.eager(*args, **kwargs)

    def status(self) -> dict:
        """What status.json records about compilation."""
        return {"compiled": self.in_use, "compile_note": self.note}
