"""Per-pair diagnostics: pure functions the training loop calls to describe what each pair did.

Distance bins (fixed per pair from the initial model), and exact per-pair gradient norms over every trainable
parameter. Nothing here writes files or knows where runs live.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext

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


# RMSNorm classes that compute exactly weight * x / sqrt(mean(x²) + eps), as LlamaRMSNorm does (Gemma's, which
# scales by 1 + weight, is deliberately not here).
_LLAMA_STYLE_RMS_NORMS = (("llama", "LlamaRMSNorm"), ("qwen2", "Qwen2RMSNorm"), ("qwen3", "Qwen3RMSNorm"),
                          ("mistral", "MistralRMSNorm"))


def _rms_norm_types() -> tuple[type, ...]:
    import importlib

    types: list[type] = [torch.nn.RMSNorm] if hasattr(torch.nn, "RMSNorm") else []
    for model_type, name in _LLAMA_STYLE_RMS_NORMS:
        try:
            module = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
        except ImportError:  # an older transformers without that architecture
            continue
        if hasattr(module, name):
            types.append(getattr(module, name))
    return tuple(types)


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
        self.sources: list[torch.Tensor] = []  # each call's input as passed, to spot modules that share an input

    def hook(self, module, args, kwargs, output):
        if not isinstance(output, torch.Tensor) or not output.requires_grad:
            return None  # no gradient reaches these parameters through this call
        source = args[0] if args else next(iter(kwargs.values()))
        x = source.detach()
        with torch.no_grad():
            if self.rule == "layernorm":
                x = F.layer_norm(x.float(), module.normalized_shape, eps=module.eps)
            elif self.rule == "rmsnorm":
                x = _rms_normalize(module, x)
        self.calls.append((x, output, output._version))
        self.sources.append(source)
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


def _segments(x: torch.Tensor, n: int, name: str, trailing: int) -> list[torch.Tensor]:
    """[B, *tokens, *feature] -> pair-aligned views [n, T, *feature]: rows j and n + j (chosen, rejected) are pair
    j's when B = 2n (two segments); a module run once per side (the head) has B = n (one segment per call)."""
    batch = x.shape[0]
    flat = x.reshape(batch, -1, *x.shape[x.ndim - trailing :]) if trailing else x.reshape(batch, -1)
    if batch == 2 * n:
        return [flat[:n], flat[n:]]
    if batch == n:
        return [flat]
    raise UnsupportedModules(f"{name}: batch of {batch} rows in a forward of {n} pairs; cannot tell which pair a row is")


def _linear_weight_sq_norms(
    gs: list[torch.Tensor], xs: list[torch.Tensor], ghost: bool | None = None, input_grams: list | None = None
) -> tuple[torch.Tensor, list | None]:
    """‖Σ_t g_t a_tᵀ‖²_F per pair, the tokens t of a pair spread over segments gs[k] [n, T_k, d_out] and xs[k]
    [n, T_k, d_in] (padding has g_t = 0 and adds nothing). Also returns the input Gram blocks x_k·x_lᵀ it used
    (ghost path), which another module reading the same input can pass back as `input_grams`.

    Materialising the per-pair gradient costs L·d_in·d_out per pair (L = Σ T_k), the ghost norm
    Σ_{t,s}(g_t·g_s)(a_t·a_s) costs L²·(d_in + d_out) (L²·d_out with the input Gram given): take the cheaper unless
    `ghost` says which (as in ghost clipping), chunked over pairs to bound memory."""
    n, d_out, d_in = gs[0].shape[0], gs[0].shape[2], xs[0].shape[2]
    length = sum(g.shape[1] for g in gs)
    if ghost is None:
        ghost = length * ((0 if input_grams is not None else d_in) + d_out) < d_in * d_out
    chunk = max(1, LINEAR_CHUNK_ELEMENTS // max(length * length if ghost else d_in * d_out, 1))
    out, grams = [], []
    for c, start in enumerate(range(0, n, chunk)):
        g = [t[start : start + chunk] for t in gs]
        x = [t[start : start + chunk] for t in xs]
        if ghost:
            blocks = input_grams[c] if input_grams is not None else {}
            total = 0
            for k in range(len(g)):
                for m in range(k, len(g)):
                    if (k, m) not in blocks:
                        blocks[(k, m)] = torch.bmm(x[k], x[m].transpose(1, 2))
                    term = (torch.bmm(g[k], g[m].transpose(1, 2)) * blocks[(k, m)]).sum((1, 2))
                    total = total + (term if k == m else 2 * term)
            grams.append(blocks)
            out.append(total)
        else:
            weight_grad = torch.bmm(g[0].transpose(1, 2), x[0])
            for k in range(1, len(g)):
                weight_grad.baddbmm_(g[k].transpose(1, 2), x[k])
            out.append(weight_grad.pow(2).sum((1, 2)))
    return torch.cat(out), (grams if ghost else None)


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


def _entry_sq_norms(entry: _Captured, stats, grads, sources, n: int, gram_cache: dict) -> torch.Tensor:
    trailing = 0 if entry.rule == "embedding" else 1
    gs = [seg for gr in grads for seg in _segments(gr.float(), n, entry.name, 1)]
    xs = [seg for st in stats for seg in _segments(st if not trailing else st.float(), n, entry.name, trailing)]
    total = torch.zeros(n, dtype=torch.float32, device=gs[0].device)
    if "bias" in entry.names:
        total += sum(g.sum(1) for g in gs).pow(2).sum(1)
    if "weight" in entry.names:
        if entry.rule == "linear":
            # q, k and v (and gate/up) read one input tensor: its Gram blocks are computed once.
            key = id(sources[0]) if len(sources) == 1 else None
            sq, grams = _linear_weight_sq_norms(gs, xs, input_grams=gram_cache.get(key))
            total += sq
            if key is not None and grams is not None:
                gram_cache[key] = grams
        elif entry.rule == "embedding":
            total += _embedding_sq_norms(torch.cat(gs, 1), torch.cat(xs, 1), entry.module)
        else:  # layernorm / rmsnorm: weight gradient Σ_t g_t ⊙ x̂_t
            total += sum((g * x).sum(1) for g, x in zip(gs, xs)).pow(2).sum(1)
    return total


def _pair_lengths(scope, indices: list[int]) -> list[int] | None:
    """Each pair's longer side in tokens, where the scope says (full: token ids; top-k: cached block inputs)."""
    if hasattr(scope, "chosen") and hasattr(scope, "rejected"):
        return [max(len(scope.chosen[i].input_ids), len(scope.rejected[i].input_ids)) for i in indices]
    if hasattr(scope, "inputs_chosen") and hasattr(scope, "inputs_rejected"):
        return [max(scope.inputs_chosen[i].shape[0], scope.inputs_rejected[i].shape[0]) for i in indices]
    return None


def length_groups(lengths: list[int] | None, slack: float = 1.3, min_pairs: int = 4) -> list[list[int] | None]:
    """Positions grouped for batched forwards: longest first, a group grows while its padded size (pairs × its
    longest) stays within `slack` × the sum of its pairs' own lengths, or while it has fewer than `min_pairs`.
    One group when lengths are unknown. Padding costs real work on every layer; this keeps it near what one
    pair at a time pads."""
    if lengths is None:
        return [None]  # type: ignore[list-item]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    for position in order:
        if groups:
            group = groups[-1]
            longest = lengths[group[0]]
            if len(group) < min_pairs or (len(group) + 1) * longest <= slack * (sum(lengths[i] for i in group) + lengths[position]):
                group.append(position)
                continue
        groups.append([position])
    return groups


def margins_and_delta_grad_norms(head: ScoreHead, scope, indices: list[int], params=None) -> tuple[np.ndarray, np.ndarray]:
    """(Δ_i, ‖∇_θ Δ_i‖) for each pair, θ = `params` (default: the head's and the scope's trainable parameters),
    from one batched forward and one backward of Σ_i Δ_i per group of similar-length pairs (`length_groups`).

    Raises UnsupportedModules (before running anything, except for an unexpected batch layout) when some
    trainable parameter has no per-pair rule; `per_pair_grad_norms_loop` is the exact fallback."""
    n = len(indices)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    entries = delta_grad_norm_plan(head, scope, params)
    margins, norms = np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32)
    for group in length_groups(_pair_lengths(scope, indices)):
        positions = list(range(n)) if group is None else group
        margins[positions], norms[positions] = _one_batch(head, scope, entries, [indices[p] for p in positions])
    return margins, norms


def _one_batch(head: ScoreHead, scope, entries: list[_Captured], indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
    n = len(indices)
    handles = [e.module.register_forward_hook(e.hook, with_kwargs=True) for e in entries]
    try:
        with torch.enable_grad():
            h_chosen, h_rejected = scope.represent(indices)
            margins = head(head.head_input(h_chosen)) - head(head.head_input(h_rejected))
    finally:
        for handle in handles:
            handle.remove()
    try:
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
        position, gram_cache = 0, {}
        with torch.no_grad():
            for entry in entries:
                call_grads = grads[position : position + len(entry.calls)]
                position += len(entry.calls)
                used = [(call[0], g, source) for call, g, source in zip(entry.calls, call_grads, entry.sources) if g is not None]
                if used:
                    stats, used_grads, sources = zip(*used)
                    sq += _entry_sq_norms(entry, stats, used_grads, sources, n, gram_cache)
    finally:
        for entry in entries:
            entry.calls, entry.sources = [], []
    # Clamped: for a pair whose two sides are identical inputs, ∇Δ is exactly 0 and rounding can go below it.
    return margins.detach().float().cpu().numpy(), sq.clamp(min=0).sqrt().cpu().numpy()


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
            # Squares summed in fp32, so a bf16 backbone's reference norm is not rounded at every addition.
            norms.append(float(torch.sqrt(sum(g.pow(2).sum(dtype=torch.float32) for g in grads if g is not None))))
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
    # A scope with stochastic parts in its training forward (LoRA dropout) turns them off for the exact norm.
    with getattr(scope, "deterministic", nullcontext)():
        try:
            margins, norms = margins_and_delta_grad_norms(head, scope, indices, params)
        except UnsupportedModules as exc:
            warnings.warn(f"per-pair gradient norms: one backward per pair, because {exc}", stacklevel=2)
            return per_pair_grad_norms_loop(head, scope, indices, params)
    return torch.sigmoid(-torch.from_numpy(margins)).numpy() * norms


# A forward without gradient costs about a third of a training step per pair (no backward, no optimizer).
EVAL_COST_PER_PAIR = 1 / 3


def evaluation_steps(total_steps: int, pairs_per_step: int, n_eval_pairs: int, eval_every: int | None = None,
                     budget: float = 0.1, most: int = 10, least: int = 1, n_grad_pairs: int = 0) -> list[int]:
    """The steps after which the eval slice is diagnosed (always including 0 and the last step).

    With `eval_every` given, every multiple of it. Otherwise as many evaluations as fit in `budget` (a share of
    the training compute, counting an eval pair as EVAL_COST_PER_PAIR of a trained pair and each of the
    `n_grad_pairs` exact-gradient pairs as one trained pair, a forward and a backward), between `least` and
    `most`, spaced on a power curve so they come more often early, where the picture changes fastest.
    """
    if eval_every:
        steps = list(range(eval_every, total_steps + 1, eval_every))
    else:
        per_evaluation = n_eval_pairs * EVAL_COST_PER_PAIR + n_grad_pairs
        affordable = budget * total_steps * pairs_per_step / max(1.0, per_evaluation)
        n = int(min(most, max(least, affordable)))
        steps = [max(1, round(total_steps * (i / n) ** 1.5)) for i in range(1, n + 1)]
    return sorted({0, *steps, total_steps})
