"""The embedded backbones load offline and h is read from the right token whatever the padding."""

import pandas as pd
import pytest
import torch

from normbt_viz.model.backbones import load_backbone, pool_hidden, select_device
from normbt_viz.errors import BackboneError
from normbt_viz.model.features import Sequence, collate, compute_representations, encode_response, tokenize_pairs, truncate_from_start

SHORT = ("What is 2 + 2?", "It is 4.")
LONG = ("Please explain in detail how photosynthesis works in plants, step by step, with examples.",
        "Plants capture light with chlorophyll, split water, release oxygen, and use the energy to fix carbon dioxide into sugars through the Calvin cycle.")


@pytest.fixture(scope="module", params=["minilm", "smollm2"])
def backbone(request):
    return load_backbone(request.param, device="cpu")


def _h(backbone, sequences, padding_side, pad_id=None):
    batch = collate(sequences, backbone.tokenizer.pad_token_id if pad_id is None else pad_id, padding_side)
    with torch.no_grad():
        return backbone.represent(**batch)


def test_same_text_same_h_alone_batched_left_and_right_padding(backbone):
    short = encode_response(backbone, *SHORT)
    long = encode_response(backbone, *LONG)
    assert len(long.input_ids) > len(short.input_ids) + 5
    alone = _h(backbone, [short], "right")[0]
    for side in ("right", "left"):
        batched = _h(backbone, [long, short, long], side)[1]
        torch.testing.assert_close(batched, alone, atol=2e-4, rtol=1e-4)


def test_pad_equal_to_eos_does_not_move_the_read_token(backbone):
    eos = backbone.tokenizer.eos_token_id if backbone.tokenizer.eos_token_id is not None else backbone.tokenizer.sep_token_id
    short = encode_response(backbone, *SHORT)
    # End the sequence with the eos token itself, then pad with that same id: the mask, not the ids, decides.
    ending_in_eos = Sequence(short.input_ids + [eos], None if short.token_type_ids is None else short.token_type_ids + [short.token_type_ids[-1]])
    alone = _h(backbone, [ending_in_eos], "right", pad_id=eos)[0]
    long = encode_response(backbone, *LONG)
    for side in ("right", "left"):
        batched = _h(backbone, [long, ending_in_eos], side, pad_id=eos)[1]
        torch.testing.assert_close(batched, alone, atol=2e-4, rtol=1e-4)


def test_pooling_matches_architecture(backbone):
    expected = {"minilm": ("mean", False), "smollm2": ("last", True)}[backbone.name]
    assert (backbone.pooling, backbone.is_decoder) == expected
    assert backbone.model.training is False  # dropout off


def test_pool_hidden_reads_the_last_real_token_under_left_and_right_padding():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert pool_hidden(hidden, right, "last").flatten().tolist() == [1.0, 7.0]
    assert pool_hidden(hidden, left, "last").flatten().tolist() == [3.0, 7.0]
    assert pool_hidden(hidden, left, "first").flatten().tolist() == [2.0, 4.0]
    assert pool_hidden(hidden, right, "mean").flatten().tolist() == [0.5, 5.5]


def test_minilm_gives_a_real_representation():
    backbone = load_backbone("minilm", device="cpu")
    texts = ["A man is playing a guitar on stage.", "Someone performs a song with a guitar in a concert.",
             "The stock market fell sharply after the announcement."]
    h = compute_representations(backbone, [encode_response(backbone, "", t) for t in texts])
    paraphrase = torch.nn.functional.cosine_similarity(h[0], h[1], dim=0)
    unrelated = torch.nn.functional.cosine_similarity(h[0], h[2], dim=0)
    assert paraphrase > unrelated + 0.3


def test_truncation_keeps_the_end_of_the_response_and_is_counted():
    backbone = load_backbone("minilm", device="cpu")
    long_prompt = "word " * 300
    pairs = pd.DataFrame({"pair_id": ["a", "b"], "prompt": [long_prompt, "short"], "chosen": ["the final answer is 42", "yes"],
                          "rejected": ["the final answer is 41", "no"], "prompt_messages": ["", ""]})
    tokenized = tokenize_pairs(backbone, pairs, max_length=32)
    assert tokenized.n_truncated == 1
    kept = tokenized.chosen[0].input_ids
    assert len(kept) == 32
    assert kept[0] == backbone.tokenizer.cls_token_id
    assert backbone.tokenizer.decode(kept[-7:], skip_special_tokens=True).endswith("the final answer is 42")
    seq, cut = truncate_from_start(Sequence([1, 2, 3], None), 8, set())
    assert (seq.input_ids, cut) == ([1, 2, 3], False)


def test_bad_backbone_inputs_give_one_line_errors():
    with pytest.raises(BackboneError, match="no such backbone folder: ./missing/model"):
        load_backbone("./missing/model")
    with pytest.raises(BackboneError, match="pooling 'middle'"):
        load_backbone("minilm", pooling="middle")
    assert select_device("auto").type in ("cpu", "cuda", "mps")
