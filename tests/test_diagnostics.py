"""Per-pair gradient norms from one batched backward against one backward per pair, on the embedded MiniLM and
SmolLM2 backbones (top-k and full scopes, pairs of different lengths so batches carry padding) and on toy
models that reach the edge cases (a module called twice, repeated token ids, tied or hidden weights)."""

import copy
import dataclasses
import re
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normbt_viz.model.backbones import load_backbone
from normbt_viz.model.features import (
    Sequence,
    collate,
    compute_block_inputs,
    encode_response,
    join_prompt_response,
    truncate_from_start,
)
from normbt_viz.model.reward_model import FullScope, ScoreHead, TopKScope
from normbt_viz.train import diagnostics
from normbt_viz.train.diagnostics import (
    UnsupportedModules,
    delta_grad_norm_plan,
    margins_and_delta_grad_norms,
    per_pair_full_grad_norms,
    per_pair_grad_norms_loop,
)

MAX_LENGTH = 32
# (prompt, chosen, rejected): lengths differ within and across pairs, and the last pair is cut to MAX_LENGTH.
TEXTS = [
    ("What is 2 + 2?", "Four.", "It is five, or maybe six; arithmetic is hard to be sure about."),
    ("Name a colour.", "Blue, like the sky on a clear day.", "Blue."),
    ("", "The cat sat on the mat.", "A dog."),
    (
        "Summarise the plot of a long novel about a whale and a captain who hunts it across the oceans.",
        "A captain's obsession with a white whale destroys his ship and crew; one sailor survives to tell it.",
        "It is about fishing.",
    ),
]


@pytest.fixture(scope="module", params=["minilm", "smollm2"])
def loaded(request):
    return load_backbone(request.param, device="cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine, two threads waiting on each other slow every op ~10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _encode(backbone, prompt, response):
    if backbone.is_decoder:  # plain text: SmolLM2's chat template adds a system prompt that fills MAX_LENGTH
        return Sequence(backbone.tokenizer(join_prompt_response(prompt, response))["input_ids"], None)
    return encode_response(backbone, prompt, response)


def _sequences(backbone):
    special = set(backbone.tokenizer.all_special_ids)
    chosen, rejected = [], []
    for prompt, good, bad in TEXTS:
        chosen.append(truncate_from_start(_encode(backbone, prompt, good), MAX_LENGTH, special)[0])
        rejected.append(truncate_from_start(_encode(backbone, prompt, bad), MAX_LENGTH, special)[0])
    return chosen, rejected


def _scope(loaded, scope_name):
    """A fresh copy of the backbone per scope: TopKScope swaps the lower blocks for pass-throughs."""
    backbone = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
    chosen, rejected = _sequences(backbone)
    if scope_name == "full":
        return FullScope(backbone, chosen, rejected)
    k = int(scope_name.removeprefix("top"))
    pieces = compute_block_inputs(backbone, chosen + rejected, backbone.num_layers - k)
    return TopKScope(backbone, k, pieces[: len(chosen)], pieces[len(chosen) :])


@pytest.mark.parametrize("scope_name", ["top1", "top2", "full"])
def test_batched_norms_match_one_backward_per_pair(loaded, scope_name):
    scope = _scope(loaded, scope_name)
    lengths = [len(s.input_ids) for s in _sequences(loaded)[0] + _sequences(loaded)[1]]
    assert len(set(lengths)) > 4 and max(lengths) == MAX_LENGTH  # the batch is padded, and one pair truncated
    torch.manual_seed(0)
    head = ScoreHead(loaded.hidden_size, layernorm=True)
    params = list(head.parameters()) + scope.trainable_parameters()
    covered = {id(getattr(e.module, name)) for e in delta_grad_norm_plan(head, scope) for name in e.names}
    assert covered == {id(p) for p in params}  # every trainable parameter has a rule; none skipped
    indices = list(range(len(TEXTS)))

    _, delta_norms = margins_and_delta_grad_norms(head, scope, indices)
    reference = per_pair_grad_norms_loop(head, scope, indices, params, of="margin")
    np.testing.assert_allclose(delta_norms, reference, rtol=1e-4)

    with np.errstate(all="raise"):
        bt = per_pair_full_grad_norms(head, scope, indices, params)
    np.testing.assert_allclose(bt, per_pair_grad_norms_loop(head, scope, indices, params), rtol=1e-4)
    assert all(p.grad is None for p in params)  # diagnostics leave the optimizer's gradients alone


def test_padding_tokens_get_exactly_zero_gradient(loaded):
    """Right padding in a batch of mixed lengths: no gradient of Σ Δ reaches a pad position, so padding adds
    nothing to any pair's norm (and the batched path may drop those positions)."""
    scope = _scope(loaded, "full")
    torch.manual_seed(0)
    head = ScoreHead(loaded.hidden_size)
    indices = list(range(len(TEXTS)))
    embeddings = scope.backbone.model.get_input_embeddings()
    captured = {}
    handle = embeddings.register_forward_hook(lambda _m, _a, out: captured.setdefault("out", out))
    try:
        h_chosen, h_rejected = scope.represent(indices)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad((head(h_chosen) - head(h_rejected)).sum(), captured["out"])
    mask = collate([scope.chosen[i] for i in indices] + [scope.rejected[i] for i in indices], 0)["attention_mask"]
    assert (mask == 0).any()
    assert torch.count_nonzero(grad[mask == 0]) == 0
    assert bool((grad[mask == 1].abs().sum(-1) > 0).all())  # ...while every real token gets one


# -- toy models: edge cases without a Hugging Face backbone ------------------------------------------------------


class ToyScope:
    """Represents pair i by the masked mean of model(ids) over its real (non-zero) tokens."""

    def __init__(self, model, ids_chosen, ids_rejected):
        self.backbone = types.SimpleNamespace(model=model)
        self.ids_chosen, self.ids_rejected = ids_chosen, ids_rejected

    def trainable_parameters(self):
        return [p for p in self.backbone.model.parameters() if p.requires_grad]

    def represent(self, indices):
        ids = torch.cat([self.ids_chosen[indices], self.ids_rejected[indices]])
        mask = (ids != 0).unsqueeze(-1).float()
        h = (self.backbone.model(ids) * mask).sum(1) / mask.sum(1)
        return h[: len(indices)], h[len(indices) :]


class Toy(torch.nn.Module):
    """Embedding (padding_idx 0) -> LayerNorm -> one Linear applied twice -> RMSNorm -> Linear."""

    def __init__(self, vocab=7, width=5):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width, padding_idx=0)
        self.norm = torch.nn.LayerNorm(width)
        self.twice = torch.nn.Linear(width, width)
        self.rms = torch.nn.RMSNorm(width)
        self.out = torch.nn.Linear(width, 3 * width)
        with torch.no_grad():  # move the norms' affine parameters off their identity initialisation
            for p in (self.norm.weight, self.norm.bias, self.rms.weight):
                p.add_(0.3 * torch.randn_like(p))

    def forward(self, ids):
        x = self.norm(self.embed(ids))
        return self.out(self.rms(torch.tanh(self.twice(torch.tanh(self.twice(x))))))


def _toy_ids(n=5, length=6, vocab=7):
    """Few token ids so tokens repeat within a pair; trailing zeros are padding of varying length."""
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(1, vocab, (2 * n, length), generator=generator)
    for row in range(2 * n):
        ids[row, length - row % 3 :] = 0
    return ids[:n], ids[n:]


def test_toy_model_with_reused_module_and_repeated_tokens_matches_loop():
    torch.manual_seed(0)
    model = Toy()
    scope = ToyScope(model, *_toy_ids())
    scope.ids_rejected[2] = scope.ids_chosen[2]  # identical inputs: Δ and ∇Δ are exactly 0
    head = ScoreHead(15, layernorm=True)
    params = list(head.parameters()) + scope.trainable_parameters()
    indices = [4, 0, 2, 1]
    margins, batched = margins_and_delta_grad_norms(head, scope, indices)
    reference = per_pair_grad_norms_loop(head, scope, indices, params, of="margin")
    assert margins[2] == 0 and batched[2] < 1e-5 * batched.max() and reference[2] < 1e-5 * reference.max()
    np.testing.assert_allclose(batched, reference, rtol=1e-5, atol=1e-5 * reference.max())
    np.testing.assert_allclose(
        per_pair_full_grad_norms(head, scope, indices, params),
        per_pair_grad_norms_loop(head, scope, indices, params),
        rtol=1e-5,
        atol=1e-5 * reference.max(),
    )


def test_ghost_and_materialised_linear_norms_agree():
    """A pair's tokens in two segments (chosen rows, rejected rows), both paths, and a shared input Gram."""
    torch.manual_seed(0)
    g, a = torch.randn(4, 9, 3), torch.randn(4, 9, 6)
    direct = torch.stack([(g[i].T @ a[i]).pow(2).sum() for i in range(4)])
    segments = ([g[:, :5], g[:, 5:]], [a[:, :5], a[:, 5:]])
    for ghost in (True, False):
        torch.testing.assert_close(diagnostics._linear_weight_sq_norms(*segments, ghost=ghost)[0], direct, rtol=1e-5, atol=0)
    _, grams = diagnostics._linear_weight_sq_norms(*segments, ghost=True)
    g2 = torch.randn(4, 9, 2)
    shared, _ = diagnostics._linear_weight_sq_norms([g2[:, :5], g2[:, 5:]], segments[1], input_grams=grams)
    torch.testing.assert_close(shared, torch.stack([(g2[i].T @ a[i]).pow(2).sum() for i in range(4)]), rtol=1e-5, atol=0)


def test_length_groups_bound_padding_and_cover_every_pair_once():
    lengths = [80, 12, 75, 30, 31, 29, 8, 78, 33, 10, 11, 9]
    groups = diagnostics.length_groups(lengths, slack=1.3, min_pairs=2)
    assert sorted(p for g in groups for p in g) == list(range(len(lengths)))
    for group in groups:
        padded = len(group) * max(lengths[p] for p in group)
        assert len(group) <= 2 or padded <= 1.3 * sum(lengths[p] for p in group)
    assert len(groups) == 3  # the long, the middle and the short pairs
    assert diagnostics.length_groups(None) == [None]


def test_frozen_parameters_are_left_out():
    torch.manual_seed(0)
    model = Toy()
    model.embed.weight.requires_grad_(False)
    model.twice.bias.requires_grad_(False)
    scope = ToyScope(model, *_toy_ids())
    head = ScoreHead(15)
    params = list(head.parameters()) + scope.trainable_parameters()
    _, batched = margins_and_delta_grad_norms(head, scope, [0, 1, 2])
    np.testing.assert_allclose(batched, per_pair_grad_norms_loop(head, scope, [0, 1, 2], params, of="margin"), rtol=1e-5)


class _Tied(Toy):
    def __init__(self):
        super().__init__(vocab=5, width=5)
        self.out = torch.nn.Linear(5, 5, bias=False)
        self.out.weight = self.embed.weight


class _HiddenWeight(Toy):
    """Uses `out`'s weight through F.linear without calling `out` (as MultiheadAttention does with out_proj)."""

    def forward(self, ids):
        return F.linear(torch.tanh(self.twice(self.norm(self.embed(ids)))), self.out.weight)


class _Conv(Toy):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(5, 5, 1)

    def forward(self, ids):
        return self.out(self.conv(self.embed(ids).transpose(1, 2)).transpose(1, 2))


@pytest.mark.parametrize(
    "model_type, named",
    [(_Tied, "shared by"), (_HiddenWeight, "outside its module's forward"), (_Conv, "conv.weight (Conv1d)")],
)
def test_parameters_without_a_rule_fail_loudly_and_fall_back_to_the_loop(model_type, named):
    torch.manual_seed(0)
    model = model_type()
    scope = ToyScope(model, *_toy_ids(vocab=model.embed.num_embeddings))
    head = ScoreHead(model(torch.ones(1, 1, dtype=torch.long)).shape[-1])
    params = list(head.parameters()) + scope.trainable_parameters()
    with pytest.raises(UnsupportedModules, match=re.escape(named)):
        margins_and_delta_grad_norms(head, scope, [0, 1])
    with pytest.warns(UserWarning, match="one backward per pair"):
        fallback = per_pair_full_grad_norms(head, scope, [0, 1], params)
    np.testing.assert_allclose(fallback, per_pair_grad_norms_loop(head, scope, [0, 1], params), rtol=1e-6)


def test_results_come_back_in_the_callers_order_across_length_groups(monkeypatch):
    torch.manual_seed(0)
    scope = ToyScope(Toy(), *_toy_ids())
    head = ScoreHead(15)
    indices = [3, 1, 4, 0]
    whole = margins_and_delta_grad_norms(head, scope, indices)
    monkeypatch.setattr(diagnostics, "length_groups", lambda lengths: [[2, 0], [3], [1]])
    grouped = margins_and_delta_grad_norms(head, scope, indices)
    for a, b in zip(whole, grouped):
        np.testing.assert_allclose(a, b, rtol=1e-5)
