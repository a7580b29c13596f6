"""A finished run's exported model, made ready to share: its model card refreshed with what the run has now
(the load report, the final μ, the benchmark scores added since training), and an upload to the Hugging Face hub.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from normbt_viz.errors import SpecError, first_line
from normbt_viz.params import check_fields, param
from normbt_viz.model.card import model_card
from normbt_viz.model.export import EXPORT_DIR
from normbt_viz.runs.rundir import RunDir

REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclasses.dataclass
class ExportOptions:
    """`normbt-viz export`'s options: without a hub repo, the card is refreshed in place."""

    push_to_hub: str | None = param(None, "hub repo id (owner/name) to upload the export to, its card refreshed first", group="hub")
    private: bool = param(False, "create the hub repo private", group="hub")

    def validate(self) -> "ExportOptions":
        check_fields(self)
        return self


def exported_folder(run: RunDir) -> Path:
    """`<run>/model/sequence_classification/` when it holds a loadable model; else one line saying why not."""
    if not run.spec_path.is_file():
        raise SpecError(f"{run.path}: not a run directory (no spec.json)")
    folder = run.model_path / EXPORT_DIR
    if not folder.is_dir():
        raise SpecError(f"run {run.name} has no exported model ({folder} is missing; the run is {run.status().get('state')})")
    if not (folder / "config.json").is_file():
        raise SpecError(f"run {run.name} has no AutoModelForSequenceClassification export ({folder / 'README.md'} says why)")
    return folder


def refresh_model_card(run: RunDir) -> Path:
    """Rewrite the export's README.md from the run's spec, status, last μ and scores; returns its path."""
    exported_folder(run)  # refuses a run without a loadable export, with the reason
    metrics = run.metrics()
    mu = metrics["normbt_mu"].dropna() if "normbt_mu" in metrics else []
    return run.write_model_card(model_card(run.spec(), exported=True, load_report=run.read_raw_status(), scores=run.read_scores(),
                                           final_mu=float(mu.iloc[-1]) if len(mu) else None))


def push_to_hub(run: RunDir, repo_id: str, private: bool = False) -> str:
    """Upload the export (card refreshed first) to the hub repo `repo_id`; returns the repo's URL."""
    if not REPO_ID.fullmatch(repo_id):
        raise SpecError(f"--push-to-hub {repo_id!r} is invalid: expected owner/name")
    refresh_model_card(run)
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(exported_folder(run)),
                          commit_message=f"normbt-viz export of run {run.name}")
    except Exception as exc:  # the hub client raises many types (network, auth, permissions); the user needs one line
        raise SpecError(f"push to {repo_id} failed: {first_line(exc)} (log in with `hf auth login` or set HF_TOKEN)") from exc
    return str(url)
