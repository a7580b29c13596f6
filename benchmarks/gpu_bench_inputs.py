"""gpu_bench.py's inputs: the tokenizer (SmolLM2's shipped asset, the embedded one, or a generated word-level
one), a decoder of a named shape with random weights saved into a folder both engines load, and synthetic pairs
of one-token words of a chosen length."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from gpu_bench_kit import log, one_line

HERE = Path(__file__).resolve().parent
ASSET_TOKENIZER = HERE / "assets" / "smollm2-tokenizer"
ASSET_LIMIT_BYTES = 5 * 1024 * 1024
SHAPES = {
    # Qwen2.5-0.5B's shape with the shipped tokenizer's vocabulary.
    "qwen2.5-0.5b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                         intermediate_size=4864),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128),
}


def save_tokenizer_asset() -> int:
    """Copy SmolLM2's tokenizer (from the embedded backbone) into benchmarks/assets/ if it is under 5 MB."""
    from transformers import AutoTokenizer

    from normbt_viz.model.backbones import resolve_backbone

    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("smollm2"))
    shutil.rmtree(ASSET_TOKENIZER, ignore_errors=True)
    tokenizer.save_pretrained(ASSET_TOKENIZER)
    config_path = ASSET_TOKENIZER / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    for key in ("is_local", "local_files_only"):  # where it was loaded from, not what it is
        config.pop(key, None)
    # transformers 5 writes its own class name; PreTrainedTokenizerFast loads in 4.x and 5.x alike.
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    size = sum(p.stat().st_size for p in ASSET_TOKENIZER.iterdir())
    if size > ASSET_LIMIT_BYTES:
        shutil.rmtree(ASSET_TOKENIZER)
        log(f"SmolLM2's tokenizer is {size / 2**20:.1f} MiB (> 5 MiB): not kept; the benchmark will generate one")
        return 1
    log(f"saved {ASSET_TOKENIZER} ({size / 2**20:.2f} MiB): {', '.join(sorted(p.name for p in ASSET_TOKENIZER.iterdir()))}")
    return 0


def generated_tokenizer(folder: Path, vocab_size: int = 8192):
    """A word-level tokenizer over w0..wN (no chat template): the fallback when no real tokenizer is at hand."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<pad>", "<s>", "</s>"]
    vocab = {token: i for i, token in enumerate(specials + [f"w{i}" for i in range(vocab_size - len(specials))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    tokenizer.save_pretrained(folder)
    return tokenizer


def load_tokenizer(choice: str | None, scratch: Path):
    """(tokenizer, where it came from): --tokenizer DIR, the shipped asset, the embedded smollm2, else generated."""
    from transformers import AutoTokenizer

    candidates = [("--tokenizer", choice)] if choice else []
    candidates.append(("asset", str(ASSET_TOKENIZER)))
    for source, folder in candidates:
        if folder and Path(folder).is_dir():
            try:
                return AutoTokenizer.from_pretrained(folder), f"{source} {folder}"
            except Exception as exc:
                log(f"!! tokenizer {folder}: {one_line(exc)}")
    try:
        from normbt_viz.model.backbones import resolve_backbone

        folder = resolve_backbone("smollm2")
        return AutoTokenizer.from_pretrained(folder), f"embedded smollm2 {folder}"
    except Exception as exc:
        log(f"!! embedded smollm2 tokenizer: {one_line(exc)}; generating a word-level one")
    return generated_tokenizer(scratch / "generated-tokenizer"), "generated word-level"


def build_model_folder(folder: Path, tokenizer, shape: dict, dtype: torch.dtype, seed: int, device: str = "cpu") -> dict:
    """Save a randomly initialised Qwen2ForCausalLM of `shape` (and the tokenizer) into `folder`."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = Qwen2Config(vocab_size=len(tokenizer), max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=True, use_cache=False, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **shape)
    if not getattr(config, "rope_parameters", None):
        config.rope_parameters = {"rope_type": "default", "rope_theta": 1_000_000.0}
    torch.manual_seed(seed)
    with torch.device(device):  # initialising 0.5 B parameters is seconds on a GPU, longer on a few CPU cores
        model = Qwen2ForCausalLM(config)
    model = model.to(dtype).cpu()
    total = sum(p.numel() for p in model.parameters())  # tied: the embedding once
    embedding = model.get_input_embeddings().weight.numel()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding,
            "layers": config.num_hidden_layers, "hidden": config.hidden_size, "vocab": config.vocab_size}


def single_token_words(tokenizer, limit: int = 4000) -> list[str]:
    """Lower-case words that are one token after a space, so a text of k words is about k tokens."""
    words = []
    for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        if token.startswith("Ġ"):  # byte-level BPE: a word after a space
            word = token[1:]
            if word.isascii() and word.isalpha() and word.islower() and 3 <= len(word) <= 9:
                words.append(word)
        elif re.fullmatch(r"w\d+", token):  # the generated word-level tokenizer
            words.append(token)
        if len(words) >= limit * 2:
            break
    kept = [w for w in words if len(tokenizer(" " + w, add_special_tokens=False)["input_ids"]) == 1][:limit]
    if len(kept) < 50:
        raise RuntimeError(f"the tokenizer has only {len(kept)} single-token words")
    return kept


def pair_encoder(tokenizer):
    """Token ids of (prompt, response) exactly as the engine encodes them (its encode_response), or a stand-in."""
    try:
        from normbt_viz.model.features import encode_response

        stand_in = SimpleNamespace(tokenizer=tokenizer, is_decoder=True)
        return lambda prompt, response: list(encode_response(stand_in, prompt, response).input_ids), "normbt_viz encode_response"
    except Exception as exc:
        log(f"!! engine encoder unavailable ({one_line(exc)}); using the chat template directly")

    def encode(prompt, response):
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False)
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])
        return list(tokenizer(f"{prompt}\n\n{response}")["input_ids"])

    return encode, "chat template"


def make_pairs(tokenizer, n_pairs: int, seq_len: int, answer_len: int, seed: int) -> tuple[list[dict], list[list[int]], list[list[int]], str]:
    """Synthetic pairs whose both sides are at most seq_len tokens (most within a few tokens of it)."""
    encode, how = pair_encoder(tokenizer)
    words = single_token_words(tokenizer)
    rng = np.random.default_rng(seed)

    def text(n):
        return " ".join(words[i] for i in rng.integers(0, len(words), n))

    probe_prompt, probe_answer = text(20), text(10)
    overhead = len(encode(probe_prompt, probe_answer)) - 30
    prompt_words = max(4, seq_len - answer_len - overhead - 2)
    rows, chosen_ids, rejected_ids = [], [], []
    for _ in range(n_pairs):
        prompt_len = prompt_words
        prompt = rng.integers(0, len(words), prompt_len)
        chosen, rejected = text(answer_len - int(rng.integers(0, 6))), text(answer_len - int(rng.integers(0, 6)))
        while True:
            prompt_text = " ".join(words[i] for i in prompt[:prompt_len])
            ids_c, ids_r = encode(prompt_text, chosen), encode(prompt_text, rejected)
            if max(len(ids_c), len(ids_r)) <= seq_len or prompt_len <= 1:
                break
            prompt_len -= max(len(ids_c), len(ids_r)) - seq_len
        rows.append({"prompt": prompt_text, "chosen": chosen, "rejected": rejected})
        chosen_ids.append(ids_c)
        rejected_ids.append(ids_r)
    return rows, chosen_ids, rejected_ids, how


# -- measurements ------------------------------------------------------------------------------------
