"""The audit's options: a data source plus how the pairs are scored, flagged and cleaned, declared with `param()`
so the `audit` command's flags and help, the Audit page's widgets and validation all come from here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from normbt_viz.data.source import DataSource
from normbt_viz.errors import SpecError
from normbt_viz.params import check_fields, param
from normbt_viz.spec import DTYPES, POOLINGS

FLAGS: dict[str, str] = {
    "label_issue": "likely mislabeled: misranked out of fold by every seed, with P(label wrong) above the threshold",
    "identical": "chosen and rejected are the same text (or the same input for the backbone): no label can be learnt",
    "near_identical": "the backbone barely tells the answers apart (representation distance under a small share of "
                      "the median): BT's update is weakest here and NormBT's weight largest",
    "duplicate": "the same prompt and answers as another pair (every copy after the first)",
    "conflict": "the same prompt and answers as another pair with the opposite label",
    "near_duplicate": "nearly the same prompt and answers as another pair (cosine of the pair embedding above the "
                      "threshold), yet not an exact copy",
    "length_ratio": "one answer is many times longer than the other (in words)",
    "empty_looking": "an answer with almost no words, or a placeholder such as 'N/A' or '...'",
}
FLAG_COLUMNS = [f"flag_{name}" for name in FLAGS]
CLEAN_MODES = ("remove", "flip", "none")
CLEAN_FORMATS = ("source", "jsonl")
DEFAULT_REMOVE = ("label_issue", "identical", "duplicate", "conflict", "empty_looking")


@dataclass
class AuditConfig(DataSource):
    """A data source (DataSource's fields) and the audit's own options."""

    # SmolLM2 by default: on HH-RLHF harmless with 10% injected flips its features found them at AUROC 0.69-0.74
    # against MiniLM's 0.64 (benchmarks/bench_audit.py), and the packed, bf16 read keeps it inside 15 minutes here.
    backbone: str = param("smollm2", "'minilm' or 'smollm2' (embedded), a local model folder, or a Hugging Face id", group="backbone")
    # The data source's own declaration with the audit's default: HH-RLHF's transcripts run past 128 tokens.
    max_length: int = field(default=256, metadata=DataSource.__dataclass_fields__["max_length"].metadata)
    dtype: str = param("auto", "the frozen forward's dtype: auto is bfloat16 where the device has native bf16 kernels (recent CPUs, most GPUs), else float32", choices=("auto", *DTYPES), group="backbone")
    answer_block: bool = param(True, "for a decoder: read both answers of a pair in one row after their shared prompt, and fit each answer's mean state at two-thirds depth beside h", group="backbone")
    pooling: str = param("auto", "how h is read: last token (decoders), first token or mean (encoders); auto picks per backbone", choices=POOLINGS, group="backbone")
    device: str = param("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps", group="backbone")
    chunk_size: int = param(2048, "pairs per cached feature chunk (an interrupted audit resumes from the chunks it cached)", low=1, group="backbone")
    batch_size: int = param(32, "sequences per forward when featurising", low=1, group="backbone")
    num_threads: int | None = param(None, "torch CPU threads (default: torch's choice)", low=1, group="backbone")
    folds: int = param(5, "K of the K-fold out-of-fold margins: every pair is scored by models that never saw it", low=2, high=20, group="scoring")
    seeds: int = param(3, "fold assignments (seeds); the margin's spread over them says how stable a verdict is", low=1, high=20, group="scoring")
    l2: float | None = param(None, "L2 penalty of the linear BT fit (default: chosen per dataset by out-of-fold log-loss)", low=0.0, low_open=True, group="scoring")
    # Measured: +0.005 AUROC on the demo at 20% flips, -0.008 on HH-shaped data, so it is off by default.
    # Measured on HH-RLHF harmless at 10% flips: AUROC 0.59-0.62 without them, 0.61-0.65 with them (MiniLM).
    pair_features: bool = param(True, "fit the answers' log length ratios, lexical overlap and refusal/empty markers (and the data's score gap) beside h, so a preference that follows length is learnt", group="scoring")
    judge: str = param("", "a sequence-classification reward model (local folder, e.g. a run's model/sequence_classification, or a hub id): its score gap sits beside h as one more pair feature and is scored alone in the self-check ('' for none)", group="scoring")
    self_check_rate: float = param(0.05, "self-check: flip this share of a copy of the pairs and report how well the scorer, a length rule and cleanlab find those flips (0: no self-check)", low=0.0, high=0.5, group="scoring")
    self_check_seed: int = param(0, "seed of the self-check's flips", low=0, group="scoring")
    prune_refit: bool = param(False, "refit once without the pairs the first pass misranks (in training folds only)", flag="refit", group="scoring")
    label_issue_threshold: float = param(0.65, "flag label_issue above this P(label wrong) when every seed misranks the pair", low=0.0, high=1.0, low_open=True, high_open=True, group="flags")
    near_identical_ratio: float = param(0.05, "flag near_identical under this share of the median representation distance", low=0.0, high=1.0, high_open=True, group="flags")
    length_ratio: float = param(8.0, "flag length_ratio when one answer has this many times the other's words", low=1.0, low_open=True, group="flags")
    near_duplicate_similarity: float = param(0.995, "flag near_duplicate above this cosine of the pair embeddings", low=0.0, high=1.0, low_open=True, group="flags")
    max_near_duplicate_pairs: int = param(200_000, "above this many pairs, near duplicates are looked for in a random sample of this size", low=2, group="flags")
    clean: str = param("remove", "cleaned copy: remove flagged pairs, flip the labels of label issues, or none", choices=CLEAN_MODES, group="cleaned copy")
    clean_format: str = param("source", "the cleaned copy's format: the source's own, or JSON lines", choices=CLEAN_FORMATS, group="cleaned copy")
    remove_flags: tuple[str, ...] = param(DEFAULT_REMOVE, "flags whose pairs --clean remove drops", choices=tuple(FLAGS), group="cleaned copy")

    def validate(self) -> "AuditConfig":
        check_fields(self, prefix="audit ")
        if not self.dataset:
            raise SpecError("audit dataset='' is invalid: expected a local file or folder, a hub id, or 'demo'")
        judge = Path(self.judge).expanduser()
        # A hub id is "name" or "owner/name"; anything else is a path, and a path must hold a model already (the
        # audit would otherwise featurise every pair first and fail only when it reaches the judge).
        looks_local = self.judge.startswith(("/", ".", "~")) or self.judge.count("/") > 1 or judge.exists()
        if self.judge and looks_local and not (judge / "config.json").is_file():
            raise SpecError(f"audit judge={self.judge!r} is not a model folder (no config.json in it): give a run's "
                            "model/sequence_classification folder or a hub id such as owner/name")
        return self
