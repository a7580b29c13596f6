"""What the launch forms offer for the backbone: the embedded ones, those already downloaded to this machine's
Hugging Face cache, and those recent runs used. The form still takes any other id or folder."""

from __future__ import annotations

from pathlib import Path

from normbt_viz.model.backbones import EMBEDDED_BACKBONES
from normbt_viz.runs.rundir import RunDir


def hub_cached_models() -> list[str]:
    """Model ids with a snapshot in the local Hugging Face hub cache (no network)."""
    from huggingface_hub.constants import HF_HUB_CACHE

    folder = Path(HF_HUB_CACHE)
    if not folder.is_dir():
        return []
    return sorted(p.name.removeprefix("models--").replace("--", "/") for p in folder.glob("models--*")
                  if (p / "snapshots").is_dir() and any((p / "snapshots").iterdir()))


def backbone_choices(runs: list[RunDir], current: str = "") -> list[str]:
    """Embedded, then recently used (newest first), then hub-cached backbones, each once; `current` (what the
    user typed last) is kept so the picker can show it."""
    recent = []
    for run in runs:
        try:
            recent.append(run.spec().backbone)
        except Exception:  # a broken spec names no backbone
            continue
    choices = [*EMBEDDED_BACKBONES, *recent, *hub_cached_models()]
    if current:
        choices.append(current)
    return list(dict.fromkeys(c for c in choices if c))
