"""The audit's algorithm: out-of-fold reward margins, a label-issue score, and flags for pairs that are
suspicious for other reasons (identical or near-identical answers, duplicates, extreme length ratios,
empty-looking answers).

Why this model: on frozen backbone features the head scope *is* a linear Bradley-Terry model,
r(x) = w·h(x), so a pair's margin is w·(h_c - h_r). Each fold fits that model by full-batch L-BFGS on
the L2-regularised BT loss (convex, so the fit is deterministic and needs no learning-rate schedule, and
100k pairs take seconds), instead of the head scope's minibatch AdamW whose result depends on step
counts. Every pair is scored by models that never saw it (K folds), over several seeds (fold
assignments), so the margin's spread says how stable the verdict is.

Label-issue score: the mean over seeds of P(label wrong) = σ(-margin). Optionally (`prune_refit`, the
CLI's --refit) a second pass leaves the pairs the first pass misranks out of the training folds (not out of
scoring), so suspicious pairs do not train the model that judges them; on the benchmark data it helped a
little on the demo and hurt a little on HH-shaped transcripts, so it is off by default.

Every function here is pure (arrays and DataFrames in and out); `audit.run` loads the data, runs the backbone
and writes the folder.
"""

from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from normbt_viz.audit.spec import FLAG_COLUMNS, FLAGS, AuditConfig
from normbt_viz.errors import SpecError

ProgressFn = Callable[[str, int, int], None]
_PLACEHOLDERS = {"", "n/a", "na", "none", "null", "nan", "...", "-", "--", "?", ".", "ok", "no answer", "no response",
                 "[deleted]", "[removed]", "tbd", "todo"}
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_TAG = re.compile(r"<[^>]{0,200}>")

L2_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


# ---------------------------------------------------------------------------------------------------------
# Out-of-fold margins


def fit_linear_bt(x: torch.Tensor, l2: float, max_iter: int = 100) -> torch.Tensor:
    """w minimising mean(softplus(-x·w)) + l2/2·|w|² for rows x = h_c - h_r (chosen preferred): the linear
    Bradley-Terry model without a bias (a bias cancels in every margin)."""
    w = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        optimizer.zero_grad()
        loss = F.softplus(-(x @ w)).mean() + 0.5 * l2 * (w @ w)
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach()


def fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold of each pair: a seeded permutation dealt round-robin, so folds differ in size by at most one."""
    ids = np.empty(n, dtype=np.int64)
    ids[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return ids


def oof_margins(x: torch.Tensor, folds: int, seeds: int, l2: float, trainable: np.ndarray | None = None,
                progress: ProgressFn | None = None, phase: str = "folds") -> np.ndarray:
    """[n, seeds] margins where pair i's margin in seed s comes from the model fit on the other folds of that
    seed's split. Only `trainable` pairs are fit on; every pair is scored."""
    n = x.shape[0]
    trainable = np.ones(n, dtype=bool) if trainable is None else trainable
    margins = np.zeros((n, seeds), dtype=np.float64)
    total, done = folds * seeds, 0
    for seed in range(seeds):
        ids = fold_ids(n, folds, seed)
        for fold in range(folds):
            held_out = ids == fold
            train = ~held_out & trainable
            if train.sum() == 0:
                continue
            w = fit_linear_bt(x[torch.from_numpy(train)], l2)
            margins[held_out, seed] = (x[torch.from_numpy(held_out)] @ w).double().numpy()
            done += 1
            if progress:
                progress(phase, done, total)
    return margins


def choose_l2(x: torch.Tensor, folds: int, trainable: np.ndarray, grid=L2_GRID) -> tuple[float, float]:
    """(the L2 strength of `grid` with the lowest out-of-fold BT log-loss over one seed, that log-loss). The
    labels are noisy, but the noise is the same for every candidate, so the ordering holds."""
    losses = {}
    for l2 in grid:
        margins = oof_margins(x, folds, 1, l2, trainable)[:, 0]
        losses[l2] = float(np.logaddexp(0.0, -margins[trainable]).mean())
    best = min(losses, key=losses.get)
    return best, losses[best]


def standardise(d: torch.Tensor, trainable: np.ndarray) -> torch.Tensor:
    """Scale each dimension by its root mean square over the trainable pairs. No centring: the model is
    antisymmetric (swapping a pair's answers negates its row), and centring would break that."""
    scale = d[torch.from_numpy(trainable)].pow(2).mean(dim=0).sqrt().clamp_min(1e-8)
    return d / scale


def label_issue_scores(margins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean over seeds of P(label wrong) = σ(-margin), share of seeds that misrank the pair)."""
    p_wrong = 1.0 / (1.0 + np.exp(np.clip(margins, -50, 50)))
    return p_wrong.mean(axis=1), (margins < 0).mean(axis=1)


# The pair-feature block's weight after standardising (so its effective L2 is l2 / weight²): a handful of
# columns beside hundreds of h dimensions must not be regularised like one of them. The weight is chosen with
# the L2, by out-of-fold log-loss, from PAIR_FEATURE_WEIGHTS: how far the preference follows length differs
# by dataset. With a fixed weight of 3, SmolLM2's 1,152 feature columns held the audit at AUROC 0.979-0.992 on
# HH-RLHF with the longer answer chosen, where the length rule is exact (1.000).
PAIR_FEATURE_WEIGHT = 3.0
PAIR_FEATURE_WEIGHTS = (1.0, 3.0, 10.0, 30.0, 100.0)


def design_matrix(d: torch.Tensor, pair_features: torch.Tensor | None, trainable: np.ndarray,
                  answer_d: torch.Tensor | None = None, weight: float = PAIR_FEATURE_WEIGHT) -> torch.Tensor:
    """The out-of-fold model's rows: standardised h_c - h_r, the standardised answer-block difference beside it
    when the backbone gives one (`model.features.packed_representations`), and the standardised antisymmetric
    pair features (times `weight`) when there are any."""
    blocks = [standardise(d, trainable)]
    if answer_d is not None:
        blocks.append(standardise(answer_d.float(), trainable))
    if pair_features is not None and pair_features.shape[1]:
        blocks.append(weight * standardise(pair_features.float(), trainable))
    return torch.cat(blocks, dim=1) if len(blocks) > 1 else blocks[0]


def margin_passes(d: torch.Tensor, trainable: np.ndarray, config: AuditConfig, progress: ProgressFn | None = None,
                  pair_features: torch.Tensor | None = None, answer_d: torch.Tensor | None = None
                  ) -> tuple[np.ndarray, np.ndarray, float, int, torch.Tensor]:
    """(first-pass margins, final margins, the L2 used, pairs left out of the refit, the design matrix) for
    difference vectors d = h_c - h_r (with the answer block's difference and antisymmetric pair features beside
    them); both margin arrays are [n, seeds] and out of fold. Without `prune_refit` the two are the same array.
    The L2 and the pair features' weight are chosen together by out-of-fold log-loss unless `config.l2` is set."""
    has_features = pair_features is not None and pair_features.shape[1] > 0
    if config.l2 is not None:
        x, l2 = design_matrix(d, pair_features, trainable, answer_d), config.l2
    else:
        best = None
        for weight in PAIR_FEATURE_WEIGHTS if has_features else (PAIR_FEATURE_WEIGHT,):
            candidate = design_matrix(d, pair_features, trainable, answer_d, weight)
            l2, loss = choose_l2(candidate, config.folds, trainable)
            if best is None or loss < best[0]:
                best = (loss, l2, candidate)
        _, l2, x = best
    first = oof_margins(x, config.folds, config.seeds, l2, trainable, progress, "out-of-fold fits")
    if not config.prune_refit:
        return first, first, l2, 0, x
    first_score, _ = label_issue_scores(first)
    keep = trainable & (first_score < 0.5)
    if keep.sum() < config.folds:
        return first, first, l2, 0, x
    final = oof_margins(x, config.folds, config.seeds, l2, keep, progress, "refit without misranked pairs")
    return first, final, l2, int(trainable.sum() - keep.sum()), x


# ---------------------------------------------------------------------------------------------------------
# Flags from the texts and the representations


def word_count(texts: pd.Series) -> np.ndarray:
    return np.array([len(_WORD.findall(text)) for text in texts], dtype=np.int64)


def empty_looking(texts: pd.Series) -> np.ndarray:
    """True for an answer with fewer than two words once HTML tags are gone, or a placeholder."""
    out = np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        stripped = _TAG.sub(" ", text).strip()
        words = _WORD.findall(stripped)
        out[i] = len(words) < 2 or stripped.lower().strip(" .!") in _PLACEHOLDERS
    return out


def duplicate_flags(pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(duplicate: a later copy of an earlier pair; conflict: some other pair has the same prompt and answers
    with the opposite label; the pair id each duplicate repeats, else "")."""
    keys = pairs["prompt"] + "\x1f" + pairs["chosen"] + "\x1f" + pairs["rejected"]
    swapped = pairs["prompt"] + "\x1f" + pairs["rejected"] + "\x1f" + pairs["chosen"]
    duplicate = keys.duplicated(keep="first").to_numpy()
    first_id = dict(zip(keys[~duplicate], pairs["pair_id"][~duplicate]))
    duplicate_of = [first_id[key] if dup else "" for key, dup in zip(keys, duplicate)]
    key_set = set(keys)
    conflict = np.array([s in key_set and c != r for s, c, r in zip(swapped, pairs["chosen"], pairs["rejected"])])
    return duplicate, conflict, duplicate_of


def pair_embeddings(h_chosen: torch.Tensor, h_rejected: torch.Tensor) -> torch.Tensor:
    """A unit vector per pair, the normalised sum of its two normalised answers, for near-duplicate search.
    The pair's content decides it, not which answer is chosen (exact swapped copies are also `conflict`s);
    one hidden size wide, so the n² search costs half what a concatenation would. The answers are centred on
    their mean first: a decoder's last-token states share one large direction (SmolLM2 on HH-RLHF harmless: the
    median pair's nearest other pair at cosine 0.994, and 407 of 2,308 pairs above the 0.995 threshold though
    none repeats another; centred, the median is 0.865 and none is above)."""
    mean = torch.cat([h_chosen, h_rejected]).float().mean(dim=0) if len(h_chosen) > 1 else 0.0
    c, r = F.normalize(h_chosen.float() - mean, dim=1), F.normalize(h_rejected.float() - mean, dim=1)
    return F.normalize(c + r, dim=1)


def nearest_neighbours(embedding: torch.Tensor, exclude: np.ndarray, block: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(cosine similarity to the nearest other pair, its index) by blocked exact search; pairs in `exclude`
    (exact duplicates) are neither searched from nor found. Blocks hold at most 2**25 similarities
    (128 MB), so memory stays flat as n grows; time grows as n²."""
    n = embedding.shape[0]
    block = block or max(64, min(4096, 2**25 // max(n, 1)))
    best = np.full(n, -1.0)
    best_index = np.full(n, -1, dtype=np.int64)
    keep = torch.from_numpy(~exclude)
    candidates = embedding[keep]
    candidate_index = torch.arange(n)[keep]
    if candidates.shape[0] < 2:
        return best, best_index
    for start in range(0, candidates.shape[0], block):
        query = candidates[start : start + block]
        sims = query @ candidates.T
        rows = torch.arange(query.shape[0])
        sims[rows, rows + start] = -2.0  # not itself
        value, where = sims.max(dim=1)
        target = candidate_index[start : start + block].numpy()
        best[target] = value.double().numpy()
        best_index[target] = candidate_index[where].numpy()
    return best, best_index


def auroc(score: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN without both classes."""
    truth = np.asarray(truth, dtype=bool)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = pd.Series(np.asarray(score, dtype=float)).rank(method="average").to_numpy()
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_at_k(score: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Share of true positives among the k highest scores (stable order for ties)."""
    if k <= 0:
        return math.nan
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:k]
    return float(np.asarray(truth, dtype=bool)[top].mean())


# ---------------------------------------------------------------------------------------------------------
# The audit table


def audit_pairs(pairs: pd.DataFrame, h_chosen: torch.Tensor, h_rejected: torch.Tensor, config: AuditConfig,
                progress: ProgressFn | None = None, pair_features: pd.DataFrame | None = None,
                backbone_name: str | None = None, answer_block: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[pd.DataFrame, dict]:
    """One row per pair with out-of-fold margins, the label-issue score, the representation distance, a
    boolean column per flag and a one-line reason per flagged pair; and a dict of what was chosen along the way
    (l2, thresholds, counts, the self-check on injected flips, the share of the score length explains).
    `pair_features` (antisymmetric columns, `audit.pair_features`) and the answer block (each answer's mean
    state inside a decoder, chosen and rejected) sit beside h in the model when given; the distances and the
    near-duplicate search read h alone, the h that training reads."""
    from normbt_viz.audit.selfcheck import flag_reasons, length_rule, length_share, self_check  # builds on this module

    config.validate()
    n = len(pairs)
    d = (h_chosen - h_rejected).float()
    rep_distance = d.norm(dim=1).double().numpy()
    identical = pairs["identical"].to_numpy(dtype=bool) | (rep_distance <= 1e-6)
    trainable = ~identical
    if trainable.sum() < config.folds:
        raise SpecError(f"the audit needs at least {config.folds} pairs with different answers, found {int(trainable.sum())}")
    judge = pair_features["judge_margin"].to_numpy() if pair_features is not None and "judge_margin" in pair_features else None
    extra = None if pair_features is None else torch.tensor(pair_features.to_numpy(dtype=np.float64), dtype=torch.float32)
    answer_d = None if answer_block is None else (answer_block[0] - answer_block[1]).float()
    _, margins, l2, n_pruned, x = margin_passes(d, trainable, config, progress, extra, answer_d)
    score, misranked = label_issue_scores(margins)
    score[identical] = 0.5  # no model on this backbone can rank them: no evidence either way
    misranked[identical] = 0.0

    median_distance = float(np.median(rep_distance[trainable]))
    near_identical = ~identical & (rep_distance < config.near_identical_ratio * median_distance)
    duplicate, conflict, duplicate_of = duplicate_flags(pairs)
    if progress:
        progress("near duplicates", 0, 1)
    embedding = pair_embeddings(h_chosen, h_rejected)
    sample = np.arange(n)
    if n > config.max_near_duplicate_pairs:  # exact search is O(n²): keep it bounded and say so in the meta
        sample = np.sort(np.random.default_rng(0).choice(n, config.max_near_duplicate_pairs, replace=False))
    similarity, neighbour = np.full(n, np.nan), np.full(n, -1, dtype=np.int64)
    sims, found = nearest_neighbours(embedding[torch.from_numpy(sample)], duplicate[sample])
    similarity[sample] = sims
    neighbour[sample] = np.where(found >= 0, sample[np.clip(found, 0, None)], -1)
    ids = pairs["pair_id"].to_numpy()
    near_duplicate = ~duplicate & (np.nan_to_num(similarity, nan=-1.0) >= config.near_duplicate_similarity)
    near_duplicate &= ~np.isin(neighbour, np.flatnonzero(duplicate))
    if progress:
        progress("near duplicates", 1, 1)

    words_c, words_r = word_count(pairs["chosen"]), word_count(pairs["rejected"])
    ratio = np.maximum(words_c, words_r) / np.maximum(np.minimum(words_c, words_r), 1)
    empty = empty_looking(pairs["chosen"]) | empty_looking(pairs["rejected"])
    all_misranked = misranked >= 1.0
    label_issue = ~identical & all_misranked & (score > config.label_issue_threshold)

    frame = pd.DataFrame({
        "pair_id": ids,
        "source_row": pairs["source_row"].to_numpy(),
        "category": pairs["category"].to_numpy(),
        "oof_margin": margins.mean(axis=1),
        "oof_margin_std": margins.std(axis=1, ddof=1) if config.seeds > 1 else np.zeros(n),
        "label_issue_score": score,
        "misranked_share": misranked,
        "rep_distance": rep_distance,
        "words_chosen": words_c,
        "words_rejected": words_r,
        "length_ratio": ratio,
        "duplicate_of": duplicate_of,
        "near_duplicate_of": [ids[j] if flag else "" for j, flag in zip(neighbour, near_duplicate)],
        "near_duplicate_similarity": similarity,
        "flag_label_issue": label_issue,
        "flag_identical": identical,
        "flag_near_identical": near_identical,
        "flag_duplicate": duplicate,
        "flag_conflict": conflict,
        "flag_near_duplicate": near_duplicate,
        "flag_length_ratio": ratio >= config.length_ratio,
        "flag_empty_looking": empty,
    })
    frame["n_flags"] = frame[FLAG_COLUMNS].sum(axis=1)
    log_words_ratio = np.log1p(words_c) - np.log1p(words_r)
    _, prefers = length_rule(log_words_ratio[trainable])
    scorer = (f"the linear out-of-fold model on {backbone_name or 'the backbone'}'s h"
              + (" and its answers' mean states" if answer_d is not None else "")
              + (f" and {extra.shape[1]} pair features" if extra is not None and extra.shape[1] else "")
              + (f" (one is the judge {config.judge}'s score gap)" if judge is not None else ""))
    if judge is not None:
        frame["judge_margin"] = judge
    frame["log_words_ratio"] = log_words_ratio
    frame["reason"] = flag_reasons(frame, prefers, scorer)
    check = None
    if config.self_check_rate > 0:
        if progress:
            progress("self-check", 0, 1)
        check = self_check(x, trainable, log_words_ratio, config.folds,
                           config.seeds, l2, config.self_check_rate, config.self_check_seed, judge)
        if progress:
            progress("self-check", 1, 1)
    if "flipped" in pairs:
        frame["flipped"] = pairs["flipped"].to_numpy(dtype=bool)
    for column in ("prompt", "chosen", "rejected"):
        frame[column] = pairs[column].to_numpy()
    meta = {"l2": l2, "median_rep_distance": median_distance, "n_pruned_for_refit": n_pruned,
            "near_duplicate_searched": int(len(sample)), "scorer": scorer,
            "pair_features": [] if pair_features is None else list(pair_features.columns),
            "answer_block": answer_d is not None,
            "length_prefers": prefers, "length_share": length_share(frame["oof_margin"].to_numpy(), log_words_ratio, trainable),
            "oof_accuracy": float((frame["oof_margin"].to_numpy()[trainable] > 0).mean()), "self_check": check}
    return frame, meta


def flag_counts(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"flag": list(FLAGS), "pairs": [int(frame[f"flag_{name}"].sum()) for name in FLAGS],
                         "meaning": list(FLAGS.values())})


def category_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Per category: pair count, mean label-issue score and the share of pairs with each flag."""
    grouped = frame.groupby("category", sort=True)
    table = grouped.agg(pairs=("pair_id", "size"), mean_label_issue_score=("label_issue_score", "mean"),
                        median_rep_distance=("rep_distance", "median"))
    for name in FLAGS:
        table[name] = grouped[f"flag_{name}"].mean()
    return table.reset_index()


def detection_metrics(frame: pd.DataFrame) -> dict | None:
    """With known flips (the demo's `flipped`, or injected ones): how well the score and the flag find them."""
    if "flipped" not in frame or not frame["flipped"].any():
        return None
    truth = frame["flipped"].to_numpy(dtype=bool)
    score = frame["label_issue_score"].to_numpy()
    flagged = frame["flag_label_issue"].to_numpy(dtype=bool)
    k = int(truth.sum())
    return {"n_flipped": k, "auroc": auroc(score, truth), "precision_at_k": precision_at_k(score, truth, k),
            "flag_precision": float(truth[flagged].mean()) if flagged.any() else math.nan,
            "flag_recall": float(flagged[truth].mean())}


def cleaning_plan(frame: pd.DataFrame, config: AuditConfig) -> tuple[np.ndarray, np.ndarray, str]:
    """(keep, flip) masks over the audited pairs and a one-line description of what the cleaned copy is."""
    n = len(frame)
    if config.clean == "flip":
        flip = frame["flag_label_issue"].to_numpy(dtype=bool)
        return np.ones(n, dtype=bool), flip, f"all {n} pairs, the {int(flip.sum())} label issue(s) with labels flipped"
    if config.clean == "none":
        return np.ones(n, dtype=bool), np.zeros(n, dtype=bool), f"all {n} pairs, unchanged"
    drop = np.zeros(n, dtype=bool)
    for name in config.remove_flags:
        drop |= frame[f"flag_{name}"].to_numpy(dtype=bool)
    return ~drop, np.zeros(n, dtype=bool), (f"{int((~drop).sum())} of {n} pairs: removed {int(drop.sum())} with "
                                            f"flag(s) {', '.join(config.remove_flags)}")


