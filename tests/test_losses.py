"""Loss values and gradients against hand computation, the head-gradient formula against autograd, and the
NormBT EMA semantics (first step, update order, gradient accumulation)."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from normbt_viz.train.losses import LOSSES, NormBT, PairLoss, build_loss, pair_distance, weighted_loss
from normbt_viz.model.reward_model import HeadScope, ScoreHead
from normbt_viz.runs.rundir import RunDir
from normbt_viz.spec import ARMS, RunSpec
from normbt_viz.train.diagnostics import per_pair_full_grad_norms
from normbt_viz.train.loop import Trainer


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_bt_loss_and_gradient_match_hand_computation():
    margin = torch.tensor([2.0, 0.0, -1.0], requires_grad=True)
    loss = build_loss(RunSpec(loss="bt")).per_pair(margin)
    expected = [-math.log(sigmoid(2.0)), math.log(2.0), -math.log(sigmoid(-1.0))]
    assert loss.tolist() == pytest.approx(expected, rel=1e-6)
    loss.sum().backward()
    # d/dΔ of -log σ(Δ) is -σ(-Δ)
    assert margin.grad.tolist() == pytest.approx([-sigmoid(-2.0), -0.5, -sigmoid(1.0)], rel=1e-6)


def test_label_smoothing_and_margin_losses_match_hand_computation():
    margin = torch.tensor([1.5, -0.5])
    smooth = build_loss(RunSpec(loss="bt_smooth", label_smoothing=0.1)).per_pair(margin)
    expected = [-(0.9 * math.log(sigmoid(m)) + 0.1 * math.log(sigmoid(-m))) for m in (1.5, -0.5)]
    assert smooth.tolist() == pytest.approx(expected, rel=1e-6)
    with_margin = build_loss(RunSpec(loss="bt_margin")).per_pair(margin, torch.tensor([1.0, 2.0]))
    assert with_margin.tolist() == pytest.approx([-math.log(sigmoid(0.5)), -math.log(sigmoid(-2.5))], rel=1e-6)
    with pytest.raises(ValueError, match="margin column"):
        build_loss(RunSpec(loss="bt_margin")).per_pair(margin)


def test_normbt_weights_and_loss_match_hand_computation():
    h_c = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    h_r = torch.tensor([[0.0, 0.0], [0.0, 0.0]])  # distances 3 and 1
    loss = NormBT(RunSpec(loss="normbt", normbt_eps=1e-6))
    loss.begin(h_c, h_r)
    assert loss.mu == pytest.approx(2.0)  # μ₀ = mean distance of the first batch
    margin = torch.tensor([0.5, -0.5])
    per_pair, weight = weighted_loss(loss, margin, h_c, h_r)
    assert weight.tolist() == pytest.approx([2.0 / 3.0, 2.0], rel=1e-5)
    expected = [2.0 / 3.0 * -math.log(sigmoid(0.5)), 2.0 * -math.log(sigmoid(-0.5))]
    assert per_pair.tolist() == pytest.approx(expected, rel=1e-5)
    assert not weight.requires_grad


def test_normbt_weight_is_detached_from_the_representation():
    h_c = torch.tensor([[3.0, 0.0]], requires_grad=True)
    h_r = torch.zeros(1, 2)
    loss = NormBT(RunSpec(loss="normbt"))
    loss.begin(h_c, h_r)
    head_w = torch.tensor([1.0, 0.0])
    margin = (h_c @ head_w) - (h_r @ head_w)
    per_pair, weight = weighted_loss(loss, margin, h_c, h_r)
    per_pair.sum().backward()
    # With a stop-gradient weight, ∂/∂h_c = w · ∂ℓ/∂Δ · head_w (no term from differentiating 1/d).
    expected = float(weight) * -sigmoid(-3.0)
    assert h_c.grad[0].tolist() == pytest.approx([expected, 0.0], rel=1e-5)


def test_cosine_distance_and_weight_clip():
    h_c = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    h_r = torch.tensor([[0.0, 1.0], [1.0, 0.01]])
    cosine = pair_distance(h_c, h_r, "cosine")
    assert cosine[0] == pytest.approx(1.0)
    assert 0 < float(cosine[1]) < 1e-3
    loss = NormBT(RunSpec(loss="normbt", normbt_distance="cosine", normbt_weight_clip=3.0))
    loss.begin(h_c, h_r)
    weight = loss.weights(h_c, h_r)
    assert float(weight.max()) == pytest.approx(3.0)  # the near-identical pair's weight is clipped


def test_head_gradient_formula_matches_autograd():
    torch.manual_seed(0)
    head = ScoreHead(8)
    h_c, h_r = torch.randn(5, 8), torch.randn(5, 8)
    for i in range(5):
        head.zero_grad()
        margin = head(h_c[i : i + 1]) - head(h_r[i : i + 1])
        (-F.logsigmoid(margin)).sum().backward()
        autograd_norm = head.score.weight.grad.norm().item()
        formula = torch.sigmoid(-margin).item() * (h_c[i] - h_r[i]).norm().item()
        assert autograd_norm == pytest.approx(formula, rel=1e-5)
        assert head.score.bias.grad.abs().item() == pytest.approx(0.0, abs=1e-7)  # the bias cancels


def _head_grad_norms(loss_name, h_c, h_r, head):
    spec = RunSpec(loss=loss_name)
    loss = build_loss(spec)
    loss.begin(h_c, h_r)
    norms = []
    for i in range(h_c.shape[0]):
        head.zero_grad()
        margin = head(h_c[i : i + 1]) - head(h_r[i : i + 1])
        per_pair, _ = weighted_loss(loss, margin, h_c[i : i + 1], h_r[i : i + 1])
        per_pair.sum().backward()
        norms.append(head.score.weight.grad.norm().item())
    return np.array(norms)


def test_normbt_equalises_head_gradients_of_equal_error_pairs_bt_scales_with_distance():
    # Three pairs with the same margin (Δ = 0, error 0.5) but distances 0.1, 1 and 10 along a direction
    # orthogonal to w, so the margin stays 0 whatever the distance.
    head = ScoreHead(2)
    with torch.no_grad():
        head.score.weight.copy_(torch.tensor([[1.0, 0.0]]))
    distances = torch.tensor([0.1, 1.0, 10.0])
    h_c = torch.stack([torch.tensor([0.0, d]) for d in distances])
    h_r = torch.zeros(3, 2)
    bt = _head_grad_norms("bt", h_c, h_r, head)
    normbt = _head_grad_norms("normbt", h_c, h_r, head)
    assert bt == pytest.approx((0.5 * distances).tolist(), rel=1e-5)  # grows 100x with distance
    assert normbt.max() / normbt.min() == pytest.approx(1.0, abs=1e-4)  # the same for all three
    assert normbt[0] == pytest.approx(0.5 * float(distances.mean()), rel=1e-4)  # ≈ μ · σ(-Δ)


def test_ema_update_order():
    loss = NormBT(RunSpec(loss="normbt", normbt_beta=0.9))
    first_c, zero = torch.tensor([[2.0, 0.0]]), torch.zeros(1, 2)
    loss.begin(first_c, zero)
    assert loss.mu == 2.0
    # Step 0's weights use μ₀; the update happens after the step with that step's mean distance.
    assert float(loss.weights(first_c, zero)) == pytest.approx(1.0, rel=1e-5)
    loss.end_step(first_c, zero)
    assert loss.mu == pytest.approx(2.0)  # μ₁ = 0.9·2 + 0.1·2
    second_c = torch.tensor([[12.0, 0.0]])
    assert float(loss.weights(second_c, zero)) == pytest.approx(2.0 / 12.0, rel=1e-5)  # still μ₁ = 2
    loss.end_step(second_c, zero)
    assert loss.mu == pytest.approx(0.9 * 2.0 + 0.1 * 12.0)
    with pytest.raises(RuntimeError):
        NormBT(RunSpec(loss="normbt")).weights(first_c, zero)


def _synthetic_trainer(tmp_path, grad_accum, batch_size):
    """A Trainer over fixed synthetic features (head scope), without data loading or a backbone."""
    torch.manual_seed(0)
    n, hidden = 32, 6
    h_c, h_r = torch.randn(n, hidden) * torch.linspace(0.2, 3.0, n)[:, None], torch.randn(n, hidden)
    spec = RunSpec(loss="normbt", batch_size=batch_size, grad_accum=grad_accum, lr=1e-2, max_steps=4, warmup_ratio=0.0).resolve()
    trainer = Trainer.from_features(spec, RunDir(tmp_path), h_c, h_r)
    trainer.begin()
    return trainer


def test_gradient_accumulation_matches_one_large_batch(tmp_path):
    whole = _synthetic_trainer(tmp_path / "a", grad_accum=1, batch_size=8)
    accumulated = _synthetic_trainer(tmp_path / "b", grad_accum=4, batch_size=2)
    for step in range(4):
        row_whole = whole.train_step(step)
        row_accum = accumulated.train_step(step)
        assert row_accum["normbt_mu"] == pytest.approx(row_whole["normbt_mu"], rel=1e-6)
        assert row_accum["loss"] == pytest.approx(row_whole["loss"], rel=1e-5)
        assert row_accum["grad_norm"] == pytest.approx(row_whole["grad_norm"], rel=1e-4)
    assert torch.allclose(whole.head.score.weight, accumulated.head.score.weight, atol=1e-6)
    assert whole.state.loss.mu == pytest.approx(accumulated.state.loss.mu, rel=1e-6)


def test_full_grad_norm_vmap_matches_one_pair_at_a_time():
    torch.manual_seed(0)
    head = ScoreHead(16, layernorm=True)
    h_c, h_r = torch.randn(12, 16), torch.randn(12, 16)
    scope = HeadScope(h_c, h_r, torch.device("cpu"))
    fast = per_pair_full_grad_norms(head, scope, list(range(12)), list(head.parameters()))
    reference = []
    for i in range(12):
        head.zero_grad()
        margin = head(head.head_input(h_c[i : i + 1])) - head(head.head_input(h_r[i : i + 1]))
        (-F.logsigmoid(margin)).sum().backward()
        reference.append(math.sqrt(sum(float(p.grad.pow(2).sum()) for p in head.parameters())))
    assert fast == pytest.approx(reference, rel=1e-5)


def test_every_arm_resolves_to_a_valid_spec_and_registered_loss():
    for arm in ARMS:
        spec = RunSpec().with_arm(arm).resolve()
        assert spec.loss in LOSSES and spec.arm == arm
    assert isinstance(build_loss(RunSpec()), PairLoss)
    assert dataclasses.replace(RunSpec(), loss="bt").with_arm("bt_layernorm").head_layernorm is True


@pytest.mark.parametrize("arm", sorted(ARMS))
def test_each_arm_loss_matches_hand_computation_on_a_tiny_batch(arm):
    spec = RunSpec().with_arm(arm).resolve()
    torch.manual_seed(0)
    head = ScoreHead(3, layernorm=spec.head_layernorm)
    h_c = torch.tensor([[1.0, 2.0, 0.5], [0.2, -1.0, 0.3]])
    h_r = torch.tensor([[0.5, 1.0, 0.0], [0.2, -0.9, 0.3]])
    target = torch.tensor([0.5, 1.0])
    in_c, in_r = head.head_input(h_c), head.head_input(h_r)
    loss = build_loss(spec)
    loss.begin(in_c, in_r)
    per_pair, _ = weighted_loss(loss, head(in_c) - head(in_r), in_c, in_r, target)

    def by_hand(hc, hr):
        if spec.head_layernorm:  # LayerNorm without affine: (x - mean) / sqrt(var + 1e-5), biased variance
            hc, hr = ((x - x.mean()) / math.sqrt(float(x.var(unbiased=False)) + 1e-5) for x in (hc, hr))
        w, b = head.score.weight[0].detach(), float(head.score.bias.detach())
        delta = float(hc @ w + b - (hr @ w + b))
        return hc, hr, delta

    expected = []
    rows = [by_hand(h_c[i], h_r[i]) for i in range(2)]
    if spec.loss == "normbt":
        dist = [float((hc - hr).norm()) if spec.normbt_distance == "l2" else 1 - float(F.cosine_similarity(hc, hr, dim=0)) for hc, hr, _ in rows]
        mu = sum(dist) / 2
        weights = [mu / (d + spec.normbt_eps) for d in dist]
        if spec.normbt_weight_clip:
            weights = [min(w, spec.normbt_weight_clip) for w in weights]
    else:
        weights = [1.0, 1.0]
    for i, (_, _, delta) in enumerate(rows):
        if spec.loss == "bt_smooth":
            base = -(1 - spec.label_smoothing) * math.log(sigmoid(delta)) - spec.label_smoothing * math.log(sigmoid(-delta))
        elif spec.loss == "bt_margin":
            base = -math.log(sigmoid(delta - float(target[i])))
        else:
            base = -math.log(sigmoid(delta))
        expected.append(weights[i] * base)
    assert per_pair.tolist() == pytest.approx(expected, rel=1e-4)
