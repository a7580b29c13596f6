"""Per-pair diagnostics: pure functions the training loop calls to describe what each pair did.

Distance bins (fixed per pair from the initial model), and exact per-pair gradient norms over every trainable
parameter. Nothing here writes files or knows where runs live.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from normbt_viz.errors import SpecError
from normbt_viz.model.reward_model import ScoreHead
from normbt_viz.numeric import as_finite_array, check_positive_int


def distance_bin_edges(rep_distance, n_bins: int = 5) -> np.ndarray:
    """Quantile edges that split pairs by representation distance ‖h_c - h_r‖ into about equal-count bins.

    Returns a strictly increasing float array of length n_bins + 1 whose first edge is -inf and last is +inf, so
    any later distance (another run, another checkpoint) falls into some bin. Where quantiles tie (many pairs at
    one distance) the repeated edges are dropped, so fewer than n_bins bins can come back; callers should read the
    bin count from the edges, not assume n_bins.
    """
    n_bins = check_positive_int(n_bins, "n_bins")
    distances = as_finite_array(rep_distance, "rep_distance")
    interior = np.unique(np.quantile(distances, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    return np.concatenate([[-np.inf], interior, [np.inf]])


def assign_bins(rep_distance, edges) -> np.ndarray:
    """Bin index (0 .. len(edges) - 2) of each distance, bins closed on the left: [edges[k], edges[k+1]).

    A distance equal to an interior edge goes to the bin above it, as with `np.digitize`; a distance equal to a
    finite last edge goes to the last bin, as with `np.histogram`. Distances outside [edges[0], edges[-1]] raise,
    because silently clipping them would put them in a bin whose label does not describe them.
    """
    distances = as_finite_array(rep_distance, "rep_distance")
    try:
        edges = np.asarray(edges, dtype=float)
    except (TypeError, ValueError):
        raise SpecError(f"edges must be numeric; got {type(edges).__name__}") from None
    if edges.ndim != 1 or edges.size < 2:
        raise SpecError(f"edges must be a 1-D array of at least 2 values; got shape {edges.shape}")
    if np.isnan(edges).any() or not np.all(np.diff(edges) > 0):
        raise SpecError(f"edges must be strictly increasing; got {edges.tolist()}")
    outside = np.flatnonzero((distances < edges[0]) | (distances > edges[-1]))
    if outside.size:
        raise SpecError(
            f"rep_distance[{outside[0]}]={distances[outside[0]]!r} is outside the edges [{edges[0]}, {edges[-1]}]"
        )
    n_bins = edges.size - 1
    bins = np.searchsorted(edges, distances, side="right") - 1
    return np.minimum(bins, n_bins - 1).astype(int)


# -- exact per-pair gradient norms -------------------------------------------------------------------------------
#
# Every pairwise loss has ∇_θ ℓ_i = (∂ℓ_i/∂Δ_i)·∇_θ Δ_i with Δ_i = r(chosen_i) − r(rejected_i), so one number per pair,
# ‖∇_θ Δ_i‖, gives the gradient norm of any of them. Pairs do not interact in the forward (no batch norm, dropout
# off), so the gradient of Σ_i Δ_i at a module's output, split by the rows that belong to pair i, is exactly pair
# i's own output gradient. For the module types below the parameter gradient is a sum over the module's tokens of
# a term built from that token's input (or normalized input, or id) and output gradient, so each pair's gradient
# norm follows from one batched forward and one backward (to the module outputs only: no weight gradients).

LINEAR_CHUNK_ELEMENTS = 1 << 24  # per-pair weight gradients (or Gram matrices) materialised at once, in floats


class UnsupportedModules(NotImplementedError):
    """A trainable parameter has no per-pair rule here (unknown module type, tied, or used outside its module)."""


def _rms_norm_types() -> tuple[type, ...]:
    types: list[type] = [torch.nn.RMSNorm] if hasattr(torch.nn, "RMSNorm") else []
    try:
        from transformers.models.llama.modeling_llama import LlamaRMSNorm
    except ImportError:  # pragma: no cover - transformers is a dependency
        return tuple(types)
    return (*types, LlamaRMSNorm)


def _rule(module: torch.nn.Module) -> str | None:
    """Which per-pair rule computes this module's parameter gradients; exact types only, because a subclass may
    override forward (or, like MultiheadAttention's out_proj, have its weight used without calling forward)."""
    kind = type(module)
    if kind is torch.nn.Linear:
        return "linear"
    if kind is torch.nn.LayerNorm and len(module.normalized_shape) == 1:
        return "layernorm"
    if kind is torch.nn.Embedding and module.max_norm is None and not module.scale_grad_by_freq and not module.sparse:
        return "embedding"
    if kind in _rms_norm_types() and module.weight is not None and module.weight.ndim == 1:
        return "rmsnorm"
    return None


_RULE_PARAMS = {"linear": {"weight", "bias"}, "layernorm": {"weight", "bias"}, "embedding": {"weight"}, "rmsnorm": {"weight"}}


class _Captured:
    """One trainable module: which of its parameters count, and per forward call its (input statistic, output)."""

    def __init__(self, name: str, module: torch.nn.Module, rule: str, names: set[str]):
        self.name, self.module, self.rule, self.names = name, module, rule, names
        self.calls: list[tuple[torch.Tensor, torch.Tensor, int]] = []

    def hook(self, module, args, kwargs, output):
        if not isinstance(output, torch.Tensor) or not output.requires_grad:
            return None  # no gradient reaches these parameters through this call
        x = (args[0] if args else next(iter(kwargs.values()))).detach()
        with torch.no_grad():
            if self.rule == "layernorm":
                x = F.layer_norm(x.float(), module.normalized_shape, eps=module.eps)
            elif self.rule == "rmsnorm":
                x = _rms_normalize(module, x)
        self.calls.append((x, output, output._version))
        return None  # returning None keeps the module's output as it is


def _rms_normalize(module, x: torch.Tensor) -> torch.Tensor:
    """x / rms(x) exactly as the module computes it before multiplying by its weight."""
    if type(module) is getattr(torch.nn, "RMSNorm", None):
        eps = module.eps if module.eps is not None else torch.finfo(x.dtype).eps
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    xf = x.float()  # LlamaRMSNorm: normalize in fp32, cast back, then scale
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + module.variance_epsilon)).to(x.dtype)


def _trainable_set(head: ScoreHead, scope, params) -> list[torch.nn.Parameter]:
    return list(params) if params is not None else list(head.parameters()) + list(scope.trainable_parameters())


def delta_grad_norm_plan(head: ScoreHead, scope, params=None) -> list[_Captured]:
    """Each module that holds a trainable parameter, with its per-pair rule.

    Raises UnsupportedModules naming every trainable parameter that no rule covers: one held by a module type
    without a rule, one held by two modules (tied weights), or one not held by the head or the backbone."""
    wanted = {id(p): p for p in _trainable_set(head, scope, params)}
    roots = [("head", head)]
    if getattr(scope, "backbone", None) is not None:
        roots.append(("backbone", scope.backbone.model))
    holders: dict[int, list[tuple[str, str, torch.nn.Module]]] = {}
    for root_name, root in roots:
        for module_name, module in root.named_modules():
            for param_name, p in module.named_parameters(recurse=False):
                if id(p) in wanted:
                    holders.setdefault(id(p), []).append((f"{root_name}.{module_name}".rstrip("."), param_name, module))
    problems, entries = [], {}
    for key, p in wanted.items():
        held = holders.get(key, [])
        if not held:
            problems.append(f"a parameter of shape {tuple(p.shape)} held by neither the head nor the backbone")
            continue
        if len({id(m) for _, _, m in held}) > 1:
            problems.append(f"{held[0][0]}.{held[0][1]} (shared by {', '.join(n for n, _, _ in held)})")
            continue
        module_name, param_name, module = held[0]
        rule = _rule(module)
        if rule is None or param_name not in _RULE_PARAMS[rule]:
            problems.append(f"{module_name}.{param_name} ({type(module).__name__})")
            continue
        entry = entries.setdefault(id(module), _Captured(module_name, module, rule, set()))
        entry.names.add(param_name)
    if problems:
        raise UnsupportedModules("no per-pair gradient rule for: " + "; ".join(problems))
    return list(entries.values())


def _by_pair(x: torch.Tensor, n: int, name: str, trailing: int) -> torch.Tensor:
    """[B, *tokens, *feature] -> [n, L, *feature]: rows j and n + j (chosen, rejected) are pair j's, B = 2n;
    a module run once per side (the head) has B = n and its calls are joined later."""
    batch = x.shape[0]
    flat = x.reshape(batch, -1, *x.shape[x.ndim - trailing :]) if trailing else x.reshape(batch, -1)
    if batch == 2 * n:
        return torch.cat([flat[:n], flat[n:]], dim=1)
    if batch == n:
        return flat
    raise UnsupportedModules(f"{name}: batch of {batch} rows in a forward of {n} pairs; cannot tell which pair a row is")


def _keep_nonzero_grad_tokens(grad: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Drop the token positions whose output gradient is exactly zero (padding, tokens no reward reads).

    Every rule's term is a product with the token's output gradient, so this changes no norm; it only shrinks L.
    Per pair the kept tokens move to the front; the positions past a pair's count keep a zero gradient."""
    keep = grad.ne(0).any(-1)
    width = int(keep.sum(1).max()) if keep.numel() else 0
    if width == grad.shape[1]:
        return (grad, *others)
    order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)[:, :width]
    out = []
    for t in (grad, *others):
        index = order.reshape(*order.shape, *([1] * (t.ndim - 2))).expand(*order.shape, *t.shape[2:])
        out.append(t.gather(1, index))
    return tuple(out)


def _linear_weight_sq_norms(g: torch.Tensor, a: torch.Tensor, ghost: bool | None = None) -> torch.Tensor:
    """‖Σ_t g_t a_tᵀ‖²_F per pair; g [n, L, d_out], a [n, L, d_in].

    Materialising the per-pair gradient costs L·d_in·d_out per pair, the ghost norm Σ_{t,s}(g_t·g_s)(a_t·a_s)
    costs L²·(d_in + d_out): take the cheaper unless `ghost` says which (as in ghost clipping), chunked over pairs
    to bound memory."""
    n, length, d_out = g.shape
    d_in = a.shape[2]
    if ghost is None:
        ghost = length * (d_in + d_out) < d_in * d_out
    per_pair = length * length if ghost else d_in * d_out
    chunk = max(1, LINEAR_CHUNK_ELEMENTS // max(per_pair, 1))
    out = []
    for start in range(0, n, chunk):
        gc, ac = g[start : start + chunk], a[start : start + chunk]
        if ghost:
            out.append((torch.bmm(gc, gc.transpose(1, 2)) * torch.bmm(ac, ac.transpose(1, 2))).sum((1, 2)))
        else:
            out.append(torch.bmm(gc.transpose(1, 2), ac).pow(2).sum((1, 2)))
    return torch.cat(out)


def _embedding_sq_norms(g: torch.Tensor, ids: torch.Tensor, module: torch.nn.Embedding) -> torch.Tensor:
    """‖scatter of g over ids‖² per pair: rows sharing a token id within a pair add up before squaring, and the
    padding_idx row gets no gradient (as in the embedding's own backward)."""
    n, _, d = g.shape
    if module.padding_idx is not None:
        g = g * (ids != module.padding_idx).unsqueeze(-1)
    keys = (torch.arange(n, device=ids.device).unsqueeze(1) * module.num_embeddings + ids).reshape(-1)
    unique, inverse = torch.unique(keys, return_inverse=True)
    rows = torch.zeros(unique.numel(), d, dtype=g.dtype, device=g.device).index_add_(0, inverse, g.reshape(-1, d))
    return torch.zeros(n, dtype=g.dtype, device=g.device).index_add_(0, unique // module.num_embeddings, rows.pow(2).sum(1))


def _entry_sq_norms(entry: _Captured, stats: list[torch.Tensor], grads: list[torch.Tensor], n: int) -> torch.Tensor:
    g = torch.cat([_by_pair(gr.float(), n, entry.name, 1) for gr in grads], dim=1)
    if entry.rule == "embedding":
        x = torch.cat([_by_pair(s, n, entry.name, 0) for s in stats], dim=1)
    else:
        x = torch.cat([_by_pair(s.float(), n, entry.name, 1) for s in stats], dim=1)
    g, x = _keep_nonzero_grad_tokens(g, x)
    total = torch.zeros(n, dtype=torch.float32, device=g.device)
    if "bias" in entry.names:
        total += g.sum(1).pow(2).sum(1)
    if "weight" in entry.names:
        if entry.rule == "linear":
            total += _linear_weight_sq_norms(g, x)
        elif entry.rule == "embedding":
            total += _embedding_sq_norms(g, x, entry.module)
        else:  # layernorm / rmsnorm: weight gradient Σ_t g_t ⊙ x̂_t
            total += (g * x).sum(1).pow(2).sum(1)
    return total


def margins_and_delta_grad_norms(head: ScoreHead, scope, indices: list[int], params=None) -> tuple[np.ndarray, np.ndarray]:
    """(Δ_i, ‖∇_θ Δ_i‖) for each pair, θ = `params` (default: the head's and the scope's trainable parameters),
    from one batched forward and one backward of Σ_i Δ_i.

    Raises UnsupportedModules (before running anything, except for an unexpected batch layout) when some
    trainable parameter has no per-pair rule; `per_pair_grad_norms_loop` is the exact fallback."""
    n = len(indices)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    entries = delta_grad_norm_plan(head, scope, params)
    handles = [e.module.register_forward_hook(e.hook, with_kwargs=True) for e in entries]
    try:
        with torch.enable_grad():
            h_chosen, h_rejected = scope.represent(indices)
            margins = head(head.head_input(h_chosen)) - head(head.head_input(h_rejected))
    finally:
        for handle in handles:
            handle.remove()
    outputs, uncalled = [], []
    for entry in entries:
        for _, output, version in entry.calls:
            if output._version != version:
                raise RuntimeError(f"{entry.name}: its output was modified in place after the module ran")
            outputs.append(output)
        if not entry.calls:
            uncalled.extend(getattr(entry.module, name) for name in sorted(entry.names))
    grads = torch.autograd.grad(margins.sum(), outputs + uncalled, allow_unused=True)
    for p, g in zip(uncalled, grads[len(outputs) :]):
        if g is not None and bool(g.ne(0).any()):  # a weight used without calling its module's forward
            raise UnsupportedModules(f"a parameter of shape {tuple(p.shape)} gets a gradient outside its module's forward")
    sq = torch.zeros(n, dtype=torch.float32, device=margins.device)
    position = 0
    with torch.no_grad():
        for entry in entries:
            calls = entry.calls
            call_grads = grads[position : position + len(calls)]
            position += len(calls)
            used = [(stat, g) for (stat, _, _), g in zip(calls, call_grads) if g is not None]
            if used:
                sq += _entry_sq_norms(entry, [s for s, _ in used], [g for _, g in used], n)
            entry.calls = []
    return margins.detach().float().cpu().numpy(), sq.sqrt().cpu().numpy()


def per_pair_delta_grad_norms(head: ScoreHead, scope, indices: list[int], params=None) -> np.ndarray:
    """‖∇_θ Δ_i‖ for each pair (see `margins_and_delta_grad_norms`)."""
    return margins_and_delta_grad_norms(head, scope, indices, params)[1]


def per_pair_grad_norms_loop(head: ScoreHead, scope, indices: list[int], params, of: str = "bt") -> np.ndarray:
    """Reference: one forward and one backward per pair. `of="bt"`: ‖∇_θ −log σ(Δ_i)‖; `of="margin"`: ‖∇_θ Δ_i‖."""
    if of not in ("bt", "margin"):
        raise ValueError(f"of must be 'bt' or 'margin'; got {of!r}")
    norms = []
    with torch.enable_grad():
        for i in indices:
            h_chosen, h_rejected = scope.represent([i])
            margin = head(head.head_input(h_chosen)) - head(head.head_input(h_rejected))
            objective = -F.logsigmoid(margin).sum() if of == "bt" else margin.sum()
            grads = torch.autograd.grad(objective, params, allow_unused=True)
            norms.append(float(torch.sqrt(sum(g.pow(2).sum() for g in grads if g is not None))))
    return np.array(norms)


def per_pair_full_grad_norms(head: ScoreHead, scope, indices: list[int], params: list[torch.nn.Parameter]) -> np.ndarray:
    """Exact ‖∇_θ ℓ_i‖ of the unweighted BT loss over all trainable parameters θ, one value per pair.

    With a frozen backbone the per-pair gradients are computed together with torch.func (vmap of grad). When
    backbone blocks train (HF attention code is not vmappable), ∇ℓ_i = −σ(−Δ_i)·∇Δ_i and ‖∇Δ_i‖ comes from one
    batched forward and backward (`margins_and_delta_grad_norms`); a backbone with a trainable module that has no
    per-pair rule falls back, with a warning, to one backward per pair (`per_pair_grad_norms_loop`)."""
    if not indices:
        return np.zeros(0)
    if not scope.trainable_parameters():
        from torch.func import functional_call, grad, vmap

        h_chosen, h_rejected = scope.represent(indices)
        head_params = {name: p.detach() for name, p in head.named_parameters()}

        def pair_loss(p, hc, hr):
            both = functional_call(head, p, (head.head_input(torch.stack([hc, hr])),))
            return -F.logsigmoid(both[0] - both[1])

        grads = vmap(grad(pair_loss), in_dims=(None, 0, 0))(head_params, h_chosen, h_rejected)
        return torch.sqrt(sum(g.reshape(len(indices), -1).pow(2).sum(1) for g in grads.values())).cpu().numpy()
    try:
        margins, norms = margins_and_delta_grad_norms(head, scope, indices, params)
    except UnsupportedModules as exc:
        warnings.warn(f"per-pair gradient norms: one backward per pair, because {exc}", stacklevel=2)
        return per_pair_grad_norms_loop(head, scope, indices, params)
    return torch.sigmoid(-torch.from_numpy(margins)).numpy() * norms
