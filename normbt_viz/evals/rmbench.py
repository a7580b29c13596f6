"""RM-Bench: load the style-controlled pairs and score per-response rewards the way THU-KEG/RM-Bench does.

Data: the HF dataset `THU-KEG/RM-Bench` (split `train`), or a local .jsonl / .json / .parquet file with its
columns: id, prompt, chosen (3 texts), rejected (3 texts), domain. The three responses are in the styles
concise, detailed (plain text), detailed with markdown, in that order (RM-Bench README).

Scoring (RM-Bench README `compute_accuracy`): per prompt, a 3 x 3 matrix whose entry [i][j] is 1 when the
chosen response in style i scores strictly above the rejected response in style j; averaged over prompts. Rows
are the chosen style, columns the rejected style. hard = mean of the upper triangle (i < j: a plainer chosen
against a fancier rejected), normal = mean of the diagonal (same style), easy = mean of the lower triangle.

Per domain (chat, math, code, safety; `safety-refuse` and `safety-response` are pooled into safety): that
domain's matrix, hard, normal, easy, and its score, the mean of the nine entries (= the mean of hard, normal and
easy). Overall: "average" = mean of the four domain scores, and hard / normal / easy = the means of the domain
values over the four domains, so that average = mean(hard, normal, easy). The matrix pooled over all prompts
(what `compute_accuracy` prints on total_dataset.json) is reported as "pooled". Nothing is rounded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from normbt_viz.evals.rewardbench import (
    check_columns,
    check_missing_policy,
    check_text,
    read_benchmark_table,
    unique_ids,
    text_lists,
)
from normbt_viz.errors import DataError

DOMAINS: tuple[str, ...] = ("chat", "math", "code", "safety")
STYLES: tuple[str, ...] = ("concise", "detailed", "markdown")
LEVELS: tuple[str, ...] = ("hard", "normal", "easy")
REQUIRED_COLUMNS: tuple[str, ...] = ("id", "prompt", "chosen", "rejected", "domain")
_UPPER, _DIAG, _LOWER = np.triu(np.ones((3, 3), bool), 1), np.eye(3, dtype=bool), np.tril(np.ones((3, 3), bool), -1)
_LEVEL_MASK = {"hard": _UPPER, "normal": _DIAG, "easy": _LOWER}


def domain_of(domain: str) -> str | None:
    """The scored domain of a data row's `domain` value (safety-refuse / safety-response -> safety)."""
    name = str(domain).lower()
    if name.startswith("safety"):
        return "safety"
    return name if name in DOMAINS else None


def _three_texts(value) -> list | None:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(isinstance(item, str) for item in value):
        return list(value)
    return None


def load_rmbench(source="THU-KEG/RM-Bench", split: str = "train") -> pd.DataFrame:
    """RM-Bench prompts: prompt_id (str, unique), prompt, chosen and rejected (three texts each, in `STYLES`
    order), domain (as in the data) and section (one of `DOMAINS`, missing for a domain RM-Bench does not score).
    Raises DataError naming the file, row and column at fault."""
    source_text, raw = read_benchmark_table(source, split)
    check_columns(raw, source_text, REQUIRED_COLUMNS)
    check_text(raw, source_text, ("prompt", "domain"))
    prompt_id = unique_ids(raw, source_text)
    lists = text_lists(raw, source_text, _three_texts, f"a list of 3 texts ({', '.join(STYLES)})")
    return pd.DataFrame(
        {
            "prompt_id": prompt_id.to_numpy(),
            "prompt": raw["prompt"].to_numpy(),
            "chosen": lists["chosen"],
            "rejected": lists["rejected"],
            "domain": raw["domain"].to_numpy(),
            "section": raw["domain"].map(domain_of).to_numpy(),
        }
    )


def _matrices(scored: pd.DataFrame) -> np.ndarray:
    """(prompts, 3, 3) array: [p, i, j] = 1.0 when chosen style i beats rejected style j strictly."""
    for column in ("prompt_id", "domain", "scores_chosen", "scores_rejected"):
        if column not in scored.columns:
            raise DataError(f"scores: missing column {column!r} (found: {list(scored.columns)})")
    if len(scored) == 0:
        raise DataError("scores: no rows")
    arrays = {}
    for column in ("scores_chosen", "scores_rejected"):
        try:
            array = np.array([np.asarray(v, dtype=float) for v in scored[column]])
        except (TypeError, ValueError):
            raise DataError(f"scores: column {column!r} must hold 3 numbers per row") from None
        if array.ndim != 2 or array.shape[1] != 3:
            raise DataError(f"scores: column {column!r} must hold 3 numbers per row; got shape {array.shape}")
        nan_rows = np.flatnonzero(np.isnan(array).any(axis=1))
        if nan_rows.size:
            raise DataError(f"scores: row {int(nan_rows[0])} has NaN in column {column!r}")
        arrays[column] = array
    return (arrays["scores_chosen"][:, :, None] > arrays["scores_rejected"][:, None, :]).astype(float)


def _levels(matrix: np.ndarray) -> dict:
    return {level: float(matrix[mask].mean()) for level, mask in _LEVEL_MASK.items()}


def score_rmbench(scored: pd.DataFrame, missing_sections: str = "zero") -> dict:
    """RM-Bench scores from per-response rewards (see the module docstring).

    `scored` has one row per prompt with prompt_id, domain, scores_chosen and scores_rejected (three rewards
    each, in `STYLES` order). Returns {"benchmark", "domains": {domain: {"n", "matrix", "hard", "normal", "easy",
    "score"}}, "sections": the four domain scores and hard / normal / easy, "pooled", "sections_present",
    "sections_missing", "missing_sections", "score" (the average), "notes"}. A domain with no prompts counts 0
    in the averages by default ("zero"); "omit" leaves it out.
    """
    missing_sections = check_missing_policy(missing_sections)
    per_prompt = _matrices(scored)
    domain = scored["domain"].map(domain_of).to_numpy()
    domains = {}
    for name in DOMAINS:
        rows = domain == name
        if rows.any():
            matrix = per_prompt[rows].mean(axis=0)
            domains[name] = {"n": int(rows.sum()), "matrix": matrix.tolist(), **_levels(matrix), "score": float(matrix.mean())}
    present = [d for d in DOMAINS if d in domains]
    missing = [d for d in DOMAINS if d not in domains]
    counted = DOMAINS if missing_sections == "zero" else present

    def over_domains(key: str) -> float:
        return float(np.mean([domains[d][key] if d in domains else 0.0 for d in counted])) if counted else float("nan")

    sections = {d: (domains[d]["score"] if d in domains else 0.0) for d in counted}
    sections.update({level: over_domains(level) for level in LEVELS})
    scored_rows = np.isin(domain, DOMAINS)
    pooled_matrix = per_prompt[scored_rows].mean(axis=0) if scored_rows.any() else np.full((3, 3), np.nan)
    notes = []
    if missing:
        how = "counted as 0 in the averages" if missing_sections == "zero" else "left out of the averages"
        notes.append(f"no data for domain(s) {', '.join(missing)}: {how}")
    return {
        "benchmark": "rm-bench",
        "domains": domains,
        "sections": sections,
        "pooled": {"n": int(scored_rows.sum()), "matrix": pooled_matrix.tolist(), **_levels(pooled_matrix)},
        "sections_present": present,
        "sections_missing": missing,
        "missing_sections": missing_sections,
        "score": over_domains("score"),
        "notes": notes,
    }


def rmbench_contributions(scored: pd.DataFrame, missing_sections: str = "zero") -> pd.DataFrame:
    """Per-prompt contributions (example_id, section, value, weight; sum(weight * value) per section is the
    score): each domain's score, hard / normal / easy and the average."""
    missing_sections = check_missing_policy(missing_sections)
    per_prompt = _matrices(scored)
    domain = scored["domain"].map(domain_of).to_numpy()
    ids = scored["prompt_id"].astype(str).to_numpy()
    present = [d for d in DOMAINS if (domain == d).any()]
    n_counted = len(DOMAINS) if missing_sections == "zero" else len(present)
    values = {"all": per_prompt.mean(axis=(1, 2)), **{level: per_prompt[:, mask].mean(axis=1) for level, mask in _LEVEL_MASK.items()}}
    frames = []
    for name in present:
        rows = domain == name
        n = int(rows.sum())
        frames.append(pd.DataFrame({"example_id": ids[rows], "section": name, "value": values["all"][rows], "weight": 1.0 / n}))
        for level in LEVELS:
            frames.append(pd.DataFrame({"example_id": ids[rows], "section": level, "value": values[level][rows], "weight": 1.0 / n / n_counted}))
        frames.append(pd.DataFrame({"example_id": ids[rows], "section": "score", "value": values["all"][rows], "weight": 1.0 / n / n_counted}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["example_id", "section", "value", "weight"])
