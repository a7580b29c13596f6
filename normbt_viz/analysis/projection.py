"""2-D maps of pair representations (UMAP or PCA) for the Embeddings page, cached in the run directory.

The vectors are the frozen backbone's pooled h, read back through the feature cache the run built (so a
head-scope run costs no backbone pass): for head-scope runs these are exactly the h the head was trained
on; for top-k and full runs they are the pre-training h. Backbone-scope runs also record the h the head read
at each evaluation, and `shared_projection` maps two such runs at one step in one projection, so BT's and
NormBT's representations can be set side by side as training moves them.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from normbt_viz.model.backbones import Backbone, load_backbone
from normbt_viz.model.features import ProgressFn, cached_representations, tokenize_pairs
from normbt_viz.runs.rundir import RunDir
from normbt_viz.data.run_data import load_run_data

METHODS = ("pca", "umap")
WHATS = ("diff", "pairs")
MAPPED_SPLITS = ("eval", "train")


def project(vectors: np.ndarray, method: str = "umap", seed: int = 0) -> np.ndarray:
    """[n, d] -> [n, 2]. UMAP is imported here, not at module load: numba compiles it on first use (20-30 s)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if method not in METHODS:
        raise ValueError(f"method={method!r} is invalid: expected one of {', '.join(METHODS)}")
    if len(vectors) < 3:
        raise ValueError(f"need at least 3 vectors to project, got {len(vectors)}")
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    # One BLAS / OpenMP thread: the app shares its CPUs with a training worker, and on a busy 2-core machine a
    # two-thread pool keeps waiting on a descheduled thread. Measured here (shared 2-core CPU, load ~7): PCA of
    # 20,000 x 384 took 1.8-5.9 s with two threads, 0.14-0.21 s with one; UMAP of 5,000 up to 61 s against 9-12 s.
    with threadpool_limits(limits=1):
        if method == "pca":
            from sklearn.decomposition import PCA

            coords = PCA(n_components=2, random_state=seed).fit_transform(vectors)
        else:
            import umap

            coords = umap.UMAP(n_components=2, n_neighbors=min(15, len(vectors) - 1), random_state=seed).fit_transform(vectors)
    return np.asarray(coords, dtype=np.float32)


def run_backbone(run: RunDir) -> Backbone:
    spec = run.spec()
    return load_backbone(spec.backbone, pooling=spec.pooling, device=spec.device, dtype=spec.dtype,
                         trust_remote_code=spec.trust_remote_code)


def pair_representations(run: RunDir, backbone: Backbone | None = None,
                         progress: ProgressFn | None = None) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """(pair ids, h_chosen, h_rejected) for every pair of the run, in the trainer's order, so the feature
    cache key matches the run's and the backbone is not run again."""
    spec = run.spec()
    backbone = backbone or run_backbone(run)
    train_pairs, eval_pairs, *_ = load_run_data(spec)
    pairs = pd.concat([train_pairs.assign(split="train"), eval_pairs.assign(split="eval")], ignore_index=True)
    tokenized = tokenize_pairs(backbone, pairs, spec.max_length)
    h_chosen, h_rejected, _ = cached_representations(backbone, pairs, tokenized, spec.max_length,
                                                     spec.feature_batch_size, progress)
    return pd.Index(pairs["pair_id"]), h_chosen.numpy(), h_rejected.numpy()


def mapped_pair_ids(run: RunDir, step: int) -> list[str]:
    """The pairs a map shows: the eval and sampled train pairs diagnosed at `step`, each once."""
    pairs = run.pairs(step)
    return pairs[pairs["split"].isin(MAPPED_SPLITS)].drop_duplicates("pair_id")["pair_id"].tolist()


def cached_projection(run: RunDir, step: int, method: str = "pca", what: str = "diff", backbone: Backbone | None = None,
                      progress: ProgressFn | None = None) -> np.ndarray:
    """2-D coordinates of `mapped_pair_ids(run, step)`, in that order: [n, 2] for `what="diff"` (h_c - h_r),
    [2n, 2] for `what="pairs"` (the n chosen answers, then the n rejected ones). Cached as .npy in the run."""
    if what not in WHATS:
        raise ValueError(f"what={what!r} is invalid: expected one of {', '.join(WHATS)}")
    ids = mapped_pair_ids(run, step)
    # One file per run, method and view, not per step: the vectors are the frozen backbone's h and the mapped
    # pairs are the same at every diagnosed step, so points stay put while a step slider recolours them.
    coords = run.read_projection(method, what)
    if coords is not None and len(coords) == len(ids) * (1 if what == "diff" else 2):
        return coords
    all_ids, h_chosen, h_rejected = pair_representations(run, backbone, progress)
    rows = all_ids.get_indexer(ids)
    if (rows < 0).any():
        raise ValueError(f"run {run.name}: {int((rows < 0).sum())} diagnosed pair(s) are not in its data any more")
    vectors = h_chosen[rows] - h_rejected[rows] if what == "diff" else np.concatenate([h_chosen[rows], h_rejected[rows]])
    coords = project(vectors, method, seed=run.spec().seed)
    run.write_projection(method, what, coords)
    return coords


def projection_frame(run: RunDir, step: int, method: str = "pca", what: str = "diff", backbone: Backbone | None = None,
                     progress: ProgressFn | None = None) -> pd.DataFrame:
    """One row per mapped pair: its diagnostics at `step`, its texts, and x, y (plus x_rejected, y_rejected
    when `what="pairs"`, where x, y is the chosen answer)."""
    ids = mapped_pair_ids(run, step)
    coords = cached_projection(run, step, method, what, backbone, progress)
    pairs = run.pairs(step)
    pairs = pairs[pairs["split"].isin(MAPPED_SPLITS)].drop_duplicates("pair_id").set_index("pair_id").loc[ids]
    texts = run.pair_texts().set_index("pair_id")
    frame = pairs.join(texts[["prompt", "chosen", "rejected"]]).reset_index()
    frame["x"], frame["y"] = coords[: len(ids), 0], coords[: len(ids), 1]
    if what == "pairs":
        frame["x_rejected"], frame["y_rejected"] = coords[len(ids):, 0], coords[len(ids):, 1]
    return frame


def shared_projection(runs: list[RunDir], step: int, method: str = "pca", what: str = "diff") -> pd.DataFrame:
    """One projection fitted once on the recorded h of every run in `runs` at `step` (the eval pairs all of
    them recorded), returned as one frame with a `run` column, the run's diagnostics at that step and the
    texts, so the maps share their axes and a move in one run's map is a move in h, not in the projection."""
    if what not in WHATS:
        raise ValueError(f"what={what!r} is invalid: expected one of {', '.join(WHATS)}")
    recorded = {}
    for run in runs:
        if step not in run.representation_steps():
            raise ValueError(f"run {run.name} recorded no representations at step {step} (steps: {run.representation_steps()})")
        recorded[run.name] = run.representations(step)
    common = sorted(set.intersection(*(set(ids) for ids, _, _ in recorded.values())))
    if len(common) < 3:
        raise ValueError(f"the runs share {len(common)} recorded eval pairs at step {step}; a map needs at least 3")
    blocks = []
    for ids, h_c, h_r in recorded.values():
        rows = pd.Index(ids).get_indexer(common)
        blocks.append(h_c[rows] - h_r[rows] if what == "diff" else np.concatenate([h_c[rows], h_r[rows]]))
    coords = project(np.concatenate(blocks), method, seed=0)
    frames, size = [], len(blocks[0])
    for k, run in enumerate(runs):
        mine = coords[k * size : (k + 1) * size]
        pairs = run.pairs(step)
        pairs = pairs[pairs["split"] == "eval"].drop_duplicates("pair_id").set_index("pair_id").loc[common]
        frame = pairs.join(run.pair_texts().set_index("pair_id")[["prompt", "chosen", "rejected"]]).reset_index()
        frame["run"] = run.name
        n = len(common)
        frame["x"], frame["y"] = mine[:n, 0], mine[:n, 1]
        if what == "pairs":
            frame["x_rejected"], frame["y_rejected"] = mine[n:, 0], mine[n:, 1]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
