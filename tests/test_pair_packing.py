"""Pair packing (`model/pair_packing.py`): both answers of a pair in one row after their shared prompt must give
each answer the hidden state it has when read alone, on a real pretrained decoder (SmolLM2's first two blocks)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from normbt_viz.model.backbones import load_backbone
from normbt_viz.model.features import (answer_layer, chunked_packed_features, compute_representations,
                                       packed_representations, tokenize_pairs)
from normbt_viz.model.pair_packing import length_sorted_batches, pack_pair, packed_batch, shared_prefix_length


def _pairs() -> pd.DataFrame:
    prompts = ["\n\nHuman: How do I bake bread at home?\n\nAssistant:", "", "\n\nHuman: Tell me a joke.\n\nAssistant:",
               "\n\nHuman: What is the capital of France? Please answer briefly.\n\nAssistant:"]
    chosen = ["Mix flour, water, yeast and salt, knead it, let it rise for an hour, then bake at 230 C.", "Yes.",
              "Why did the scarecrow win an award? He was outstanding in his field.", "Paris."]
    rejected = ["I don't know.", "No, that is not right at all, and here is a much longer answer to show it.",
                "Why did the scarecrow win an award? He was outstanding in his field.", "The capital of France is Lyon."]
    return pd.DataFrame({"pair_id": [f"p{i}" for i in range(4)], "prompt": prompts, "chosen": chosen,
                         "rejected": rejected, "identical": [False, False, True, False]})


def test_shared_prefix_leaves_each_side_a_token_of_its_own():
    assert shared_prefix_length([1, 2, 3, 4], [1, 2, 5]) == 2
    assert shared_prefix_length([1, 2, 3], [1, 2, 3]) == 2  # identical: each side keeps its last token
    assert shared_prefix_length([7], [8, 9]) == 0


def test_pack_pair_cuts_the_shared_prompt_once_and_keeps_a_leading_special_token():
    row, cut = pack_pair([0, 1, 2, 3, 4, 10, 11], [0, 1, 2, 3, 4, 20], max_length=5, special_ids={0})
    assert cut and row.input_ids == [0, 3, 4, 10, 11, 20] and (row.prefix, row.chosen, row.rejected) == (3, 2, 1)
    row, cut = pack_pair([0, 1, 10, 11, 12, 13], [0, 1, 20], max_length=3, special_ids={0})
    assert cut and row.input_ids == [0, 12, 13, 20] and (row.prefix, row.chosen, row.rejected) == (1, 2, 1)
    row, cut = pack_pair([5, 6, 7], [5, 8], max_length=8, special_ids=set())
    assert not cut and row.input_ids == [5, 6, 7, 8]


def test_packed_mask_hides_each_answer_from_the_other():
    row, _ = pack_pair([1, 2, 3, 4], [1, 2, 5, 6, 7], max_length=16, special_ids=set())
    batch = packed_batch([row, pack_pair([1, 9], [1, 8], 16, set())[0]], pad_id=0)
    mask = batch["attention_mask"][0, 0]
    chosen, rejected = [2, 3], [4, 5, 6]
    assert not mask[rejected][:, chosen].any() and not mask[chosen][:, rejected].any()
    assert mask[rejected][:, :2].all() and mask[chosen][:, :2].all()
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 3, 2, 3, 4]
    assert (batch["last_chosen"].tolist(), batch["last_rejected"].tolist()) == ([3, 1], [6, 2])


def test_length_sorted_batches_respect_the_token_budget():
    rows = [pack_pair(list(range(n)), list(range(n - 1)) + [99], 512, set())[0] for n in (3, 40, 5, 200, 60)]
    batches = length_sorted_batches(rows, token_budget=250)
    assert sorted(i for batch in batches for i in batch) == list(range(5))
    assert all(len(batch) * max(len(rows[i]) for i in batch) <= 250 or len(batch) == 1 for batch in batches)


@pytest.fixture(scope="module")
def decoder(small_decoder):
    return load_backbone(str(small_decoder), device="cpu")


def test_packed_states_match_reading_each_side_alone(decoder):
    pairs = _pairs()
    packed, truncated = packed_representations(decoder, pairs, max_length=256)
    tokenized = tokenize_pairs(decoder, pairs, 256)
    alone = compute_representations(decoder, tokenized.chosen + tokenized.rejected, batch_size=3)
    assert truncated == 0 and tokenized.n_truncated == 0
    torch.testing.assert_close(packed["chosen"], alone[:4], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(packed["rejected"], alone[4:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(packed["chosen"][2], packed["rejected"][2], atol=1e-6, rtol=1e-6)  # identical answers


def test_answer_block_is_the_mean_state_of_the_answers_own_tokens(decoder):
    pairs = _pairs().iloc[[0]]
    packed, _ = packed_representations(decoder, pairs, max_length=256)
    tokenized = tokenize_pairs(decoder, pairs, 256)
    chosen, rejected = tokenized.chosen[0].input_ids, tokenized.rejected[0].input_ids
    shared = next(k for k in range(min(len(chosen), len(rejected))) if chosen[k] != rejected[k])
    with torch.no_grad():
        states = decoder.model(input_ids=torch.tensor([rejected]), output_hidden_states=True).hidden_states[answer_layer(decoder)]
    torch.testing.assert_close(packed["answer_rejected"][0], states[0, shared:].mean(0), atol=1e-5, rtol=1e-5)


def test_packed_features_are_cached_in_chunks_that_a_flipped_copy_reuses(decoder):
    pairs = _pairs()
    flipped = pairs.copy()
    flipped[["chosen", "rejected"]] = pairs[["rejected", "chosen"]].to_numpy()
    clean, hits = chunked_packed_features(decoder, pairs, 256, chunk_size=3)
    again, hits_flipped = chunked_packed_features(decoder, flipped, 256, chunk_size=3)
    assert (hits, hits_flipped) == (0, 2)  # the flipped copy reads the clean copy's chunks
    for side, other in (("chosen", "rejected"), ("answer_chosen", "answer_rejected")):
        torch.testing.assert_close(again[side], clean[other])
        torch.testing.assert_close(again[other], clean[side])
