"""Pure figure builders: DataFrames in, `plotly.graph_objects.Figure` out, no Streamlit.

Every point that stands for a pair carries the pair id as the first element of its customdata, so a
selection event maps back to pairs (see selection.py). Scatters above SCATTERGL_THRESHOLD points use WebGL.

Per-pair scatters draw at most SCATTER_MAX_PAIRS pairs (the embedding map, whose points carry their texts for
hover, MAP_MAX_POINTS markers): above that they draw a fixed sample and say so in the title. The sample is the pairs
whose ids hash lowest, so two runs over the same pairs (BT and NormBT side by side), every step of a run and
every colouring show the same pairs. Strings in customdata cost per point (plotly deep-copies and JSON-encodes
each one), so the cap is what keeps a 50,000-pair figure under half a second to build and serialise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from normbt_viz.numeric import pearson_r
from normbt_viz.analysis.toy import head_gradient, synthetic_pairs
from normbt_viz.spec import ARMS

SCATTERGL_THRESHOLD = 2000
SCATTER_MAX_PAIRS = 20_000
MAP_MAX_POINTS = 10_000  # markers carrying texts: 10,000 pairs as difference vectors, 5,000 as joined pairs
PALETTE = qualitative.Plotly
CONTINUOUS_SCALE = "Viridis"
_LAYOUT = dict(template="plotly_white", margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.2))


def _scatter_class(n_points: int):
    return go.Scattergl if n_points > SCATTERGL_THRESHOLD else go.Scatter


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


# One colour per arm on every page and figure: BT blue, NormBT red, the other arms the palette's next colours.
ARM_COLORS = {arm: PALETTE[i % len(PALETTE)] for i, arm in enumerate(ARMS)}


# Colours with a meaning of their own, kept apart from the arms' so that no chart reads as BT vs NormBT by accident.
CHOSEN_COLOR, REJECTED_COLOR, NEUTRAL_COLOR = "#2ca02c", "#8c564b", "#5b6770"
BOOLEAN_COLORS = {True: "#009e73", False: "#e69f00"}  # correct / flipped: yes green, no orange


def arm_color(arm: str) -> str:
    """The arm's colour (an unknown arm gets grey, never another arm's colour)."""
    return ARM_COLORS.get(arm, "#7f7f7f")


def _trace_color(label: str, i: int, arms: dict[str, str] | None) -> str:
    """The colour of a per-run trace: its arm's (from `arms`, label -> arm, or the label itself when it names an
    arm), else the i-th palette colour."""
    arm = (arms or {}).get(label, label)
    return arm_color(arm) if arm in ARM_COLORS else _color(i)


def _layout(fig: go.Figure, title: str, x: str, y: str, **extra) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, **_LAYOUT, **extra)
    return fig


def shorten(text, limit: int = 90) -> str:
    """One line of at most `limit` characters, for hover labels."""
    text = str(text)
    window = 2 * limit
    if len(text) > window:
        # Whitespace runs collapsed in a head of the text are a prefix of those in the whole text, so when the
        # head alone is already too long the answer is the same, without splitting a long answer in full.
        flat = " ".join(text[:window].split())
        if len(flat) > limit:
            return flat[: limit - 1] + "…"
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _shorten_column(values: pd.Series) -> np.ndarray:
    """`shorten` of every value, computed once per distinct value (categories repeat, and so do prompts); a
    missing value (None or NaN) reads "nan"."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return np.array([shorten(value) for value in uniques], dtype=object)[codes]


def display_sample(pairs: pd.DataFrame, max_pairs: int) -> tuple[pd.DataFrame, str]:
    """(at most `max_pairs` rows of `pairs`, a note saying so or ""). The rows kept are those whose pair_id hashes
    lowest, in their original order: the same pairs for any frame over the same pair ids."""
    n = len(pairs)
    if n <= max_pairs:
        return pairs, ""
    hashes = pd.util.hash_pandas_object(pairs["pair_id"], index=False).to_numpy()
    keep = np.sort(np.argpartition(hashes, max_pairs - 1)[:max_pairs])
    return pairs.iloc[keep], f"showing {max_pairs:,} of {n:,} pairs (a fixed sample by pair id)"


def _with_note(title: str, note: str) -> str:
    return f"{title} — {note}" if title and note else (title or note)


def ema(values, smoothing: float) -> np.ndarray:
    """Exponential moving average s_t = a·s_(t-1) + (1-a)·x_t with s_0 = x_0 (a = smoothing in [0, 1))."""
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    for i, value in enumerate(values):
        out[i] = value if i == 0 else smoothing * out[i - 1] + (1.0 - smoothing) * value
    return out


def error_vs_distance(pairs: pd.DataFrame, color: str = "head_grad_norm", title: str = "",
                      color_range: tuple[float, float] | None = None) -> go.Figure:
    """Prediction error σ(-Δ) against representation distance, one point per pair, coloured by `color`.

    BT's head-gradient norm is the product of the two axes, so the colour grows toward the top right;
    `color_range` fixes the colour scale so two panels compare. Above SCATTER_MAX_PAIRS pairs it draws a fixed
    sample (see display_sample) and says so in the title."""
    pairs, note = display_sample(pairs, SCATTER_MAX_PAIRS)
    scatter = _scatter_class(len(pairs))
    low, high = color_range if color_range else (None, None)
    fig = go.Figure(
        scatter(
            x=pairs["rep_distance"],
            y=pairs["pred_error"],
            mode="markers",
            marker=dict(color=pairs[color], colorscale=CONTINUOUS_SCALE, cmin=low, cmax=high, size=7, opacity=0.8,
                        colorbar=dict(title=color, thickness=12)),
            # Strings only: the colour value is read from marker.color, not carried a second time per point.
            customdata=np.column_stack([pairs["pair_id"].to_numpy(dtype=object), pairs["category"].to_numpy(dtype=object)]),
            hovertemplate="%{customdata[0]}<br>category %{customdata[1]}<br>distance %{x:.3f}<br>error %{y:.3f}"
            f"<br>{color} %{{marker.color:.4g}}<extra></extra>",
            name="pairs",
        )
    )
    return _layout(fig, _with_note(title, note), "representation distance ‖h_c − h_r‖", "prediction error σ(−Δ)")


def update_share_bars(shares_by_run: dict[str, pd.DataFrame], arms: dict[str, str] | None = None) -> go.Figure:
    """Share of the total update per distance decile (from stats.update_share_by_decile), one bar group per
    run in its arm's colour (`arms`: label -> arm); the dashed line is the even share 1/n every decile would get
    if distance did not matter, named in the legend rather than over the bars."""
    fig = go.Figure()
    n_bins = 10
    for i, (label, shares) in enumerate(shares_by_run.items()):
        n_bins = len(shares)
        fig.add_trace(go.Bar(
            x=shares["decile"], y=shares["update_share"], name=label, marker_color=_trace_color(label, i, arms),
            customdata=np.column_stack([shares["distance_low"], shares["distance_high"], shares["n"]]),
            hovertemplate="decile %{x}<br>distance %{customdata[0]:.3f}–%{customdata[1]:.3f}<br>"
                          "%{customdata[2]} pairs<br>share %{y:.1%}<extra>" + label + "</extra>",
        ))
    even = 1.0 / max(n_bins, 1)
    fig.add_trace(go.Scatter(x=[0.5, n_bins + 0.5], y=[even, even], mode="lines", line=dict(color="grey", dash="dash"),
                             name=f"even share (1/{n_bins})", hoverinfo="skip"))
    fig.update_xaxes(dtick=1, range=[0.5, n_bins + 0.5])
    fig.update_yaxes(tickformat=".0%")
    return _layout(fig, "Share of the update per distance decile (1 = closest pairs)", "distance decile",
                   "share of total update norm", barmode="group")


def grad_norm_histogram(pairs_by_run: dict[str, pd.DataFrame], column: str = "update_norm", nbins: int = 40,
                        arms: dict[str, str] | None = None) -> go.Figure:
    """Overlaid histograms of a per-pair gradient-norm column, one per run in its arm's colour."""
    fig = go.Figure()
    for i, (label, pairs) in enumerate(pairs_by_run.items()):
        fig.add_trace(go.Histogram(x=pairs[column], name=label, nbinsx=nbins, opacity=0.6, marker_color=_trace_color(label, i, arms)))
    return _layout(fig, f"Distribution of {column}", column, "pairs", barmode="overlay")


def proxy_scatter(pairs: pd.DataFrame, title: str = "") -> go.Figure:
    """Representation distance against the true per-pair gradient norm (the sampled pairs), Pearson r in the
    title: the paper's check that distance is what drives the gradient."""
    graded = pairs.dropna(subset=["full_grad_norm"])
    corr = pearson_r(graded["rep_distance"], graded["full_grad_norm"])
    r_text = "r undefined (fewer than 3 varied sampled pairs)" if corr is None else f"r = {corr:.3f}"
    fig = go.Figure(_scatter_class(len(graded))(
        x=graded["rep_distance"], y=graded["full_grad_norm"], mode="markers",
        marker=dict(color=graded["pred_error"], colorscale=CONTINUOUS_SCALE, size=8, colorbar=dict(title="σ(−Δ)", thickness=12)),
        customdata=np.column_stack([graded["pair_id"], graded["category"]]),
        hovertemplate="%{customdata[0]}<br>%{customdata[1]}<br>distance %{x:.3f}<br>grad norm %{y:.4g}<extra></extra>",
        name="sampled pairs",
    ))
    full_title = f"{title} — {r_text}" if title else f"Distance vs full gradient norm: {r_text}"
    return _layout(fig, full_title, "representation distance ‖h_c − h_r‖", "per-pair gradient norm (all trained parameters)")


def training_curves(metrics_by_run: dict[str, pd.DataFrame], metric: str, smoothing: float = 0.6,
                    arms: dict[str, str] | None = None) -> go.Figure:
    """`metric` against step for each run: the EMA-smoothed line over the raw one drawn faint, in the run's arm
    colour (`arms`: label -> arm; seeds of one arm share it and differ in dash). Runs without the metric are
    skipped (normbt_mu exists only for NormBT runs)."""
    fig = go.Figure()
    for i, (label, metrics) in enumerate(metrics_by_run.items()):
        if metric not in metrics:
            continue
        series = metrics[["step", metric]].dropna()
        if series.empty:
            continue
        color = _trace_color(label, i, arms)
        dash = DASHES[sum(_trace_color(other, j, arms) == color for j, other in enumerate(list(metrics_by_run)[:i])) % len(DASHES)]
        fig.add_trace(go.Scatter(x=series["step"], y=series[metric], mode="lines", line=dict(color=color, width=1, dash=dash),
                                 opacity=0.3, name=f"{label} (raw)", showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=series["step"], y=ema(series[metric], smoothing), mode="lines",
                                 line=dict(color=color, width=2, dash=dash), name=label))
    return _layout(fig, metric, "step", METRIC_TITLES.get(metric, metric))


DASHES = ("solid", "dash", "dot", "dashdot")
# Axis titles with their units, for the curves the Runs page draws.
METRIC_TITLES = {"loss": "training loss (nats per pair)", "accuracy": "training batch accuracy (share of pairs)",
                 "eval_accuracy": "eval accuracy (share of pairs)", "normbt_mu": "μ, running mean distance ‖h_c − h_r‖",
                 "grad_norm": "global gradient norm"}


def accuracy_with_intervals(table: pd.DataFrame, x: str) -> go.Figure:
    """Mean accuracy over seeds per `x` group (category or distance_bin), one bar trace per arm, with error
    bars from the table's low/high (a 95% t-interval; none with a single seed)."""
    fig = go.Figure()
    for i, (arm, rows) in enumerate(table.groupby("arm", sort=False)):
        rows = rows.sort_values(x)
        labels = rows[x].astype(str)
        if x == "distance_bin" and {"distance_low", "distance_high"} <= set(rows.columns):
            labels = [bin_label(b, lo, hi) for b, lo, hi in zip(rows[x], rows["distance_low"], rows["distance_high"])]
        fig.add_trace(go.Bar(
            x=labels, y=rows["mean"], name=str(arm), marker_color=_trace_color(str(arm), i, None),
            error_y=dict(type="data", symmetric=False, array=(rows["high"] - rows["mean"]).clip(lower=0),
                         arrayminus=(rows["mean"] - rows["low"]).clip(lower=0)),
            customdata=rows["n"], hovertemplate="%{x}<br>accuracy %{y:.3f}<br>%{customdata} seed(s)<extra>" + str(arm) + "</extra>",
        ))
    fig.update_yaxes(range=[0, 1.05])
    x_title = "distance bin: ‖h_c − h_r‖ at step 0 (0 = closest pairs)" if x == "distance_bin" else x.replace("_", " ")
    return _layout(fig, f"Eval accuracy per {x.replace('_', ' ')} (mean, 95% interval over seeds)", x_title,
                   "eval accuracy (share of pairs)", barmode="group")


def _finite(value) -> bool:
    return value is not None and not (isinstance(value, float) and not np.isfinite(value))


def bin_label(b, low, high) -> str:
    """'0: < 2.33', '1: 2.33–2.80', '4: ≥ 3.10': the outer bins are open-ended (their edges are ±inf)."""
    if not _finite(low) and not _finite(high):
        return f"{int(b)}: all"
    if not _finite(low):
        return f"{int(b)}: < {high:.2f}"
    if not _finite(high):
        return f"{int(b)}: ≥ {low:.2f}"
    return f"{int(b)}: {low:.2f}–{high:.2f}"


def distance_histogram(pairs: pd.DataFrame, column: str = "rep_distance", nbins: int = 40) -> go.Figure:
    """Representation distance per category, overlaid: which categories' pairs the model sees as alike."""
    fig = go.Figure()
    for i, (category, rows) in enumerate(pairs.groupby("category")):
        fig.add_trace(go.Histogram(x=rows[column], name=str(category), nbinsx=nbins, opacity=0.6, marker_color=_color(i)))
    return _layout(fig, "Representation distance per category", "representation distance ‖h_c − h_r‖", "pairs", barmode="overlay")


def category_counts(pairs: pd.DataFrame) -> go.Figure:
    """Pairs per category, largest first: how much each category's accuracy can be trusted."""
    counts = pairs["category"].astype(str).value_counts()
    fig = go.Figure(go.Bar(x=counts.index.tolist(), y=counts.to_numpy(), marker_color=NEUTRAL_COLOR,
                           hovertemplate="%{x}<br>%{y} pairs<extra></extra>", name="pairs"))
    return _layout(fig, "", "category", "pairs", height=320)


def answer_lengths(pairs: pd.DataFrame, nbins: int = 40) -> go.Figure:
    """Word counts of the chosen and the rejected answers, overlaid: a chosen side that is nearly always longer
    lets a reward model score length instead of quality."""
    fig = go.Figure()
    for side, colour in (("chosen", CHOSEN_COLOR), ("rejected", REJECTED_COLOR)):
        words = pairs[side].astype(str).str.split().str.len()
        fig.add_trace(go.Histogram(x=words, name=side, nbinsx=nbins, opacity=0.6, marker_color=colour))
    _layout(fig, "", "answer length (words)", "answers", barmode="overlay", height=320)
    fig.update_layout(legend=dict(orientation="h", x=1, y=1.02, xanchor="right", yanchor="bottom"))
    return fig


def embedding_map(coords: pd.DataFrame, color: str, segments: bool = False, method: str = "PCA") -> go.Figure:
    """A 2-D map of pairs. `coords` has pair_id, x, y, the `color` column and optionally category, prompt,
    chosen, rejected (for hover); with `segments`, also x_rejected, y_rejected: (x, y) is then the chosen
    answer, drawn as a circle, joined by a grey segment to the rejected answer, drawn as a cross.

    A numeric `color` gives one trace on a continuous scale, anything else one trace per value. Above
    MAP_MAX_POINTS markers (half as many pairs with `segments`) it draws a fixed sample (see display_sample) and
    says so in the title. The axes are the projection's (`method`) two components: positions, not units."""
    coords, note = display_sample(coords, MAP_MAX_POINTS // (2 if segments else 1))
    scatter = _scatter_class(len(coords) * (2 if segments else 1))
    hover_columns = [c for c in ("category", "prompt", "chosen", "rejected") if c in coords]
    custom = pd.DataFrame({"pair_id": coords["pair_id"]})
    for column in hover_columns:
        custom[column] = _shorten_column(coords[column])
    template = "%{customdata[0]}" + "".join(f"<br><b>{c}</b>: %{{customdata[{i + 1}]}}" for i, c in enumerate(hover_columns))
    fig = go.Figure()
    if segments:
        xs = np.column_stack([coords["x"], coords["x_rejected"], np.full(len(coords), np.nan)]).ravel()
        ys = np.column_stack([coords["y"], coords["y_rejected"], np.full(len(coords), np.nan)]).ravel()
        fig.add_trace(scatter(x=xs, y=ys, mode="lines", line=dict(color="rgba(120,120,120,0.35)", width=1),
                              hoverinfo="skip", name="chosen–rejected", showlegend=True))
        fig.add_trace(scatter(x=coords["x_rejected"], y=coords["y_rejected"], mode="markers", name="rejected",
                              marker=dict(symbol="x", size=6, color="rgba(90,90,90,0.7)"),
                              customdata=custom.to_numpy(), hovertemplate=template + "<extra>rejected</extra>"))
    numeric = pd.api.types.is_numeric_dtype(coords[color]) and not pd.api.types.is_bool_dtype(coords[color])
    groups = [(color, coords.index)] if numeric else [(value, rows.index) for value, rows in coords.groupby(color, sort=True)]
    for i, (value, index) in enumerate(groups):
        rows = coords.loc[index]
        marker = dict(size=7, opacity=0.85)
        if numeric:
            marker.update(color=rows[color], colorscale=CONTINUOUS_SCALE, colorbar=dict(title=color, thickness=12))
        elif isinstance(value, (bool, np.bool_)):
            marker.update(color=BOOLEAN_COLORS[bool(value)])
        else:
            marker.update(color=_color(i))
        name = ("chosen" if segments else "pairs") if numeric else _group_name(color, value)
        fig.add_trace(scatter(x=rows["x"], y=rows["y"], mode="markers", marker=marker, name=name,
                              customdata=custom.loc[index].to_numpy(),
                              hovertemplate=template + "<extra>" + ("chosen" if segments else "") + "</extra>"))
    fig.update_layout(dragmode="lasso")
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, scaleanchor="x")
    return _layout(fig, note, f"{method} component 1 (no unit)", f"{method} component 2 (no unit)", height=600)


def _group_name(column: str, value) -> str:
    """The legend entry of one value of a colouring column: 'correct: yes' for a flag, the value otherwise."""
    return f"{column}: {'yes' if value else 'no'}" if isinstance(value, (bool, np.bool_)) else str(value)


def toy_gradient_figure(h_chosen, h_rejected, w, mu: float = 1.0) -> go.Figure:
    """The two representations, the head's weight vector w and the BT and NormBT update directions -∂ℓ/∂w in
    the plane.

    Both updates are parallel to h_c - h_r; BT's is as long as σ(-Δ)·‖h_c - h_r‖, NormBT's ≈ μ·σ(-Δ). Drawn from
    the origin they would lie on one line, the shorter hidden under the longer, so each is shifted sideways by a
    few percent of the plot's extent, in its arm's colour, with its length in the legend."""
    h_chosen, h_rejected, w = (np.asarray(v, dtype=float) for v in (h_chosen, h_rejected, w))
    grad = head_gradient(h_chosen, h_rejected, w, mu=mu)
    update_bt = -grad["bt_grad"]
    update_normbt = update_bt * grad["normbt_weight"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[h_chosen[0]], y=[h_chosen[1]], mode="markers+text", text=["h_c"], textposition="top center",
                             marker=dict(size=14, color=CHOSEN_COLOR), name="chosen h_c"))
    fig.add_trace(go.Scatter(x=[h_rejected[0]], y=[h_rejected[1]], mode="markers+text", text=["h_r"], textposition="top center",
                             marker=dict(size=14, color=REJECTED_COLOR), name="rejected h_r"))
    fig.add_trace(go.Scatter(x=[h_rejected[0], h_chosen[0]], y=[h_rejected[1], h_chosen[1]], mode="lines",
                             line=dict(color="grey", dash="dot"), name="h_c − h_r"))
    extent = max(float(np.abs(np.concatenate([h_chosen, h_rejected, w, update_bt, update_normbt])).max()), 1e-6)
    length = float(np.linalg.norm(update_bt))
    side = np.array([-update_bt[1], update_bt[0]]) / length if length > 0 else np.array([0.0, 0.0])
    shift = 0.04 * extent * side
    for vector, origin, name, color in ((w, np.zeros(2), "head weight w", "black"),
                                        (update_bt, shift, f"BT update −∂ℓ/∂w (length {grad['bt_norm']:.3f})", arm_color("bt")),
                                        (update_normbt, -shift, f"NormBT update (length {grad['normbt_norm']:.3f})", arm_color("normbt"))):
        tip = origin + vector
        fig.add_trace(go.Scatter(x=[origin[0], tip[0]], y=[origin[1], tip[1]], mode="lines+markers", name=name,
                                 line=dict(color=color, width=3),
                                 marker=dict(symbol=["circle", "arrow"], angleref="previous", size=[5, 14],
                                             line=dict(color="white", width=1))))
    fig.update_yaxes(scaleanchor="x")
    return _layout(fig, f"Δ = {grad['margin']:.2f}, error σ(−Δ) = {grad['pred_error']:.3f}, distance = {grad['rep_distance']:.3f}",
                   "dimension 1 of h", "dimension 2 of h", height=450)


def toy_distance_figure(n_pairs: int = 200, seed: int = 0, w=(1.0, 0.5), mu: float | None = None) -> go.Figure:
    """Head-gradient norm against distance for random 2-D pairs: BT's grows with distance, NormBT's follows
    the error alone. μ defaults to the mean distance, as NormBT's running mean would settle."""
    h_chosen, h_rejected = synthetic_pairs(n_pairs, seed)
    distance = np.linalg.norm(h_chosen - h_rejected, axis=1)
    grad = head_gradient(h_chosen, h_rejected, np.asarray(w, dtype=float), mu=float(distance.mean()) if mu is None else mu)
    fig = go.Figure()
    for key, name, arm in (("bt_norm", "BT", "bt"), ("normbt_norm", "NormBT", "normbt")):
        fig.add_trace(go.Scatter(x=grad["rep_distance"], y=grad[key], mode="markers", name=name,
                                 marker=dict(color=arm_color(arm), size=6, opacity=0.7),
                                 customdata=grad["pred_error"], hovertemplate="distance %{x:.3f}<br>norm %{y:.3f}<br>error %{customdata:.3f}"))
    fig.update_xaxes(type="log")
    return _layout(fig, f"{n_pairs} random 2-D pairs: update norm against distance", "distance ‖h_c − h_r‖ (log)",
                   "head-gradient norm")


def pair_history(records: pd.DataFrame, title: str = "") -> go.Figure:
    """One pair's course through training, from the per-pair record stream: its margin r_c − r_r at each step
    it was trained on (left axis) and the update it received there (right axis)."""
    records = records.sort_values("step")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=records["step"], y=records["margin"], mode="lines+markers", name="margin r_c − r_r",
                             line={"color": _color(0)}))
    fig.add_trace(go.Bar(x=records["step"], y=records["update_norm"], name="update (head-gradient norm)", yaxis="y2",
                         marker={"color": _color(1)}, opacity=0.5))
    fig.add_hline(y=0, line={"dash": "dot", "color": "grey"})
    return _layout(fig, title or "This pair during training", "step", "margin",
                   yaxis2={"title": "update", "overlaying": "y", "side": "right", "showgrid": False})


PROXY_CURVES = {"eval_proxy_corr": "‖∇θ ℓ‖", "eval_proxy_corr_per_error": "‖∇θ ℓ‖ / σ(−Δ)",
                "eval_proxy_corr_backbone": "‖∇blocks ℓ‖ / σ(−Δ)"}


def proxy_over_training(metrics_by_run: dict[str, pd.DataFrame], arms: dict[str, str] | None = None) -> go.Figure:
    """The proxy correlations r(distance, norm) at each evaluation, one colour per run's arm (`arms`: label ->
    arm), one dash per correlation: how well the representation distance predicts the exact per-pair gradient
    norm as training goes on. The y axis spans the data, not the whole [-1, 1]."""
    fig = go.Figure()
    values = []
    for i, (name, metrics) in enumerate(metrics_by_run.items()):
        for dash, (column, label) in zip(("solid", "dot", "dash"), PROXY_CURVES.items()):
            if column not in metrics:
                continue
            rows = metrics.dropna(subset=[column])
            values += rows[column].tolist()
            fig.add_trace(go.Scatter(x=rows["step"], y=rows[column], mode="lines+markers", name=f"{shorten(name, 24)}: {label}",
                                     line={"color": _trace_color(name, i, arms), "dash": dash}))
    low, high = (max(-1.0, min(values)), min(1.0, max(values))) if values else (-1.0, 1.0)
    if low <= 0 <= high:
        fig.add_hline(y=0, line={"color": "grey", "dash": "dot"})
    pad = max(0.02, 0.08 * (high - low))
    return _layout(fig, "Distance as a proxy for the gradient, over training", "step",
                   "Pearson r(‖h_c − h_r‖, gradient norm)", yaxis={"range": [max(-1.05, low - pad), min(1.05, high + pad)]})
