"""Checks a spec against what it names (the dataset, the backbone) before any run directory exists.

Everything `RunSpec.validate` cannot see without loading something lives here, so that bad input exits with one
line and leaves nothing behind.
"""

from __future__ import annotations

from normbt_viz.data.run_data import load_run_data
from normbt_viz.errors import BackboneError, first_line
from normbt_viz.spec import RunSpec


def preflight(spec: RunSpec) -> None:
    """Fail fast, before a run directory exists, on a dataset or backbone that cannot load."""
    from transformers import AutoConfig

    from normbt_viz.model.backbones import resolve_backbone
    from normbt_viz.errors import BackboneError, first_line

    spec.resolve()
    load_run_data(spec)
    try:
        AutoConfig.from_pretrained(resolve_backbone(spec.backbone), trust_remote_code=spec.trust_remote_code)
    except BackboneError:
        raise
    except Exception as exc:
        reason = first_line(exc)
        raise BackboneError(f"cannot load backbone {spec.backbone!r}: {reason}") from exc
