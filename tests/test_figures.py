"""The pure figure builders, the selection mapping and the app's table functions, on small synthetic frames."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from normbt_viz.analysis import outliers as analysis
from normbt_viz.analysis.comparison import config_diff
from normbt_viz.ui import figures
from normbt_viz.ui.selection import selected_pair_ids, selected_pairs
from normbt_viz.spec import RunSpec
from normbt_viz.analysis.stats import update_share_by_decile
from normbt_viz.analysis.toy import head_gradient, synthetic_pairs


def make_pairs(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    distance = rng.uniform(0.01, 3.0, n)
    margin = rng.normal(size=n)
    error = 1.0 / (1.0 + np.exp(margin))
    full = np.where(np.arange(n) < 10, error * distance, np.nan)
    return pd.DataFrame({
        "pair_id": [f"p{i}" for i in range(n)],
        "split": "eval",
        "category": np.array(["chat", "reasoning"])[np.arange(n) % 2],
        "margin": margin,
        "pred_error": error,
        "rep_distance": distance,
        "head_grad_norm": error * distance,
        "weight": 1.0 / distance,
        "update_norm": error,
        "correct": margin > 0,
        "flipped": np.arange(n) % 5 == 0,
        "len_chosen": rng.integers(10, 100, n),
        "len_rejected": rng.integers(10, 100, n),
        "full_grad_norm": full,
    })


def test_error_vs_distance_carries_pair_ids_and_colour():
    pairs = make_pairs()
    fig = figures.error_vs_distance(pairs, color="head_grad_norm", title="BT", color_range=(0.0, 1.0))
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Scatter)
    trace = fig.data[0]
    assert [row[0] for row in trace.customdata] == pairs["pair_id"].tolist()
    assert [row[1] for row in trace.customdata] == pairs["category"].tolist()
    assert "customdata[1]" in trace.hovertemplate
    np.testing.assert_allclose(trace.marker.color, pairs["head_grad_norm"])
    assert (trace.marker.cmin, trace.marker.cmax) == (0.0, 1.0)
    assert fig.layout.title.text == "BT"


def test_scatters_switch_to_webgl_above_threshold():
    big = make_pairs(figures.SCATTERGL_THRESHOLD + 1)
    assert isinstance(figures.error_vs_distance(big).data[0], go.Scattergl)
    assert isinstance(figures.error_vs_distance(make_pairs(figures.SCATTERGL_THRESHOLD)).data[0], go.Scatter)
    coords = big.assign(x=big["rep_distance"], y=big["margin"])
    assert all(isinstance(t, go.Scattergl) for t in figures.embedding_map(coords, "margin").data)


def test_update_share_bars_one_grouped_trace_per_run():
    pairs = make_pairs(100)
    shares = {
        "bt": update_share_by_decile(pairs["rep_distance"], pairs["head_grad_norm"]),
        "normbt": update_share_by_decile(pairs["rep_distance"], pairs["update_norm"]),
    }
    fig = figures.update_share_bars(shares)
    assert [t.type for t in fig.data] == ["bar", "bar", "scatter"]
    assert [t.name for t in fig.data[:2]] == ["bt", "normbt"]
    assert fig.layout.barmode == "group"
    assert list(fig.data[0].x) == list(range(1, 11))
    assert sum(fig.data[0].y) == pytest.approx(1.0)
    even = fig.data[2]  # the even-share line: a legend entry, not a label drawn over the bars
    assert even.name == "even share (1/10)" and list(even.y) == pytest.approx([0.1, 0.1])


def test_grad_norm_histogram_overlays_runs():
    fig = figures.grad_norm_histogram({"a": make_pairs(), "b": make_pairs(seed=1)}, "head_grad_norm")
    assert [t.type for t in fig.data] == ["histogram", "histogram"]
    assert fig.layout.barmode == "overlay"


def test_proxy_scatter_reports_pearson_r_of_sampled_pairs():
    pairs = make_pairs()
    fig = figures.proxy_scatter(pairs)
    graded = pairs.dropna(subset=["full_grad_norm"])
    r = np.corrcoef(graded["rep_distance"], graded["full_grad_norm"])[0, 1]
    assert len(fig.data[0].x) == 10
    assert f"r = {r:.3f}" in fig.layout.title.text
    empty = figures.proxy_scatter(pairs.assign(full_grad_norm=np.nan))
    assert "undefined" in empty.layout.title.text


def test_training_curves_smoothed_over_faint_raw_same_colour():
    steps = np.arange(50)
    noisy = pd.DataFrame({"step": steps, "loss": np.sin(steps) + 1.0})
    other = pd.DataFrame({"step": steps, "accuracy": steps / 50})
    fig = figures.training_curves({"bt": noisy, "no-loss": other}, "loss", smoothing=0.9)
    assert len(fig.data) == 2  # runs without the metric are skipped
    raw, smooth = fig.data
    assert raw.opacity < 1 and raw.line.color == smooth.line.color
    np.testing.assert_allclose(raw.y, noisy["loss"])
    assert not np.allclose(smooth.y, raw.y)
    assert np.std(np.diff(smooth.y)) < np.std(np.diff(raw.y))
    unsmoothed = figures.training_curves({"bt": noisy}, "loss", smoothing=0.0)
    np.testing.assert_allclose(unsmoothed.data[1].y, noisy["loss"])


def test_ema_known_values():
    np.testing.assert_allclose(figures.ema([0.0, 1.0, 1.0], 0.5), [0.0, 0.5, 0.75])


def test_accuracy_with_intervals_error_bars_per_arm():
    table = pd.DataFrame({
        "arm": ["bt", "bt", "normbt", "normbt"], "distance_bin": [0, 1, 0, 1],
        "distance_low": [None, 0.5, None, 0.5], "distance_high": [0.5, None, 0.5, None],
        "mean": [0.6, 0.8, 0.7, 0.8], "low": [0.5, 0.7, 0.6, 0.8], "high": [0.7, 0.9, 0.8, 0.8], "n": [3, 3, 3, 3],
    })
    fig = figures.accuracy_with_intervals(table, "distance_bin")
    assert [t.name for t in fig.data] == ["bt", "normbt"]
    np.testing.assert_allclose(fig.data[0].error_y.array, [0.1, 0.1])
    np.testing.assert_allclose(fig.data[0].error_y.arrayminus, [0.1, 0.1])
    assert list(fig.data[0].x) == ["0: < 0.50", "1: ≥ 0.50"]  # open-ended outer bins, never "∞–0.50"
    by_category = figures.accuracy_with_intervals(table.assign(category=["a", "b", "a", "b"]), "category")
    assert list(by_category.data[1].x) == ["a", "b"]


def test_distance_histogram_one_trace_per_category():
    fig = figures.distance_histogram(make_pairs())
    assert sorted(t.name for t in fig.data) == ["chat", "reasoning"]


def test_embedding_map_categorical_numeric_and_segments():
    pairs = make_pairs(12)
    coords = pairs.assign(x=np.arange(12.0), y=np.arange(12.0) ** 2, prompt="a very long prompt " * 20,
                          chosen="yes", rejected="no", x_rejected=np.arange(12.0) + 0.5, y_rejected=0.0)
    by_category = figures.embedding_map(coords, "category")
    assert len(by_category.data) == 2
    ids = [row[0] for trace in by_category.data for row in trace.customdata]
    assert sorted(ids) == sorted(pairs["pair_id"])
    assert all(len(row[2]) <= 90 for row in by_category.data[0].customdata)  # shortened prompt
    numeric = figures.embedding_map(coords, "margin")
    assert len(numeric.data) == 1 and numeric.data[0].marker.colorscale is not None
    joined = figures.embedding_map(coords, "category", segments=True)
    lines, rejected = joined.data[0], joined.data[1]
    assert lines.mode == "lines" and lines.customdata is None
    assert len(lines.x) == 3 * 12  # chosen, rejected, gap per pair
    assert rejected.marker.symbol == "x" and len(rejected.customdata) == 12


def test_toy_gradient_norms_follow_the_formula():
    grad = head_gradient([1.0, 0.0], [0.0, 0.0], [1.0, 0.0], mu=2.0)
    error = 1.0 / (1.0 + np.exp(1.0))
    assert grad["bt_norm"] == pytest.approx(error)
    assert grad["normbt_norm"] == pytest.approx(2.0 * error, rel=1e-5)
    np.testing.assert_allclose(grad["bt_grad"], [-error, 0.0])
    h_c, h_r = synthetic_pairs(100)
    many = head_gradient(h_c, h_r, [0.0, 0.0])  # w = 0: error 0.5 everywhere
    np.testing.assert_allclose(many["bt_norm"], 0.5 * many["rep_distance"])
    np.testing.assert_allclose(many["normbt_norm"], 0.5, rtol=1e-4)


def test_toy_figures_build():
    fig = figures.toy_gradient_figure([1.0, 0.5], [0.2, 0.1], [1.0, -0.5])
    assert {"chosen h_c", "rejected h_r", "head weight w"} <= {t.name for t in fig.data}
    assert {"BT update −∂ℓ/∂w", "NormBT update"} <= {t.name.split(" (")[0] for t in fig.data}
    many = figures.toy_distance_figure(n_pairs=50)
    assert [t.name for t in many.data] == ["BT", "NormBT"] and len(many.data[0].x) == 50


def test_selected_pair_ids_from_streamlit_events():
    event = {"selection": {"points": [
        {"customdata": ["p3", "chat"], "x": 1}, {"customdata": "p7"}, {"x": 2}, {"customdata": ["p3", "chat"]},
    ], "box": [], "lasso": []}}
    assert selected_pair_ids(event) == ["p3", "p7"]
    assert selected_pair_ids({"selection": {"points": []}}) == []
    assert selected_pair_ids({"selection": {}}) == []
    assert selected_pair_ids(None) == []


def test_selected_pairs_keeps_selection_order():
    pairs = make_pairs(10)
    chosen = selected_pairs(pairs, ["p4", "p1"])
    assert chosen["pair_id"].tolist() == ["p4", "p1"]
    assert selected_pairs(pairs, []).empty


def test_outlier_tables():
    pairs = make_pairs(50)
    assert analysis.near_identical(pairs, 5)["rep_distance"].is_monotonic_increasing
    wrong = analysis.misranked(pairs, 5)
    assert (wrong["margin"] < 0).all() and wrong["margin"].is_monotonic_increasing
    found = analysis.flip_recovery(pairs, 5)
    assert found["n_flipped"] == 10 and found["n_listed"] == 5
    assert found["precision"] == found["found"] / 5 and found["recall"] == found["found"] / 10
    other = pairs.assign(margin=pairs["margin"] + np.linspace(0, 1, 50))
    diff = analysis.disagreement(pairs, other, "bt", "normbt")
    assert diff["pair_id"].iloc[0] == "p49"
    assert diff["margin_diff"].iloc[0] == pytest.approx(1.0)


def test_length_bias_detects_length_following_reward():
    pairs = make_pairs(60)
    pairs["margin"] = (pairs["len_chosen"] - pairs["len_rejected"]) / 10.0
    pairs["correct"] = pairs["margin"] > 0
    bias = analysis.length_bias(pairs)
    assert bias["corr"] == pytest.approx(1.0)
    assert bias["accuracy_chosen_longer"] == 1.0 and bias["accuracy_chosen_shorter"] == 0.0


def test_config_diff_shows_only_differing_fields():
    base = RunSpec(demo_size=200)
    diff = config_diff({"a": base.with_arm("bt"), "b": base.with_arm("normbt")})
    assert diff.columns.tolist() == ["run", "arm", "loss"]
    same = config_diff({"a": base, "b": RunSpec(demo_size=200)})
    assert same.columns.tolist() == ["run"]


def test_metrics_long_and_length_stats():
    stacked = analysis.metrics_long({"a": pd.DataFrame({"step": [1, 2], "loss": [1.0, 0.5]}), "b": pd.DataFrame()})
    assert stacked.columns.tolist() == ["run", "step", "loss"] and len(stacked) == 2
    texts = pd.DataFrame({"category": ["x", "x"], "chosen": ["a b c", "a"], "rejected": ["a", "a b"]})
    stats = analysis.length_stats(texts)
    assert stats.loc[0, "share_chosen_longer"] == 0.5 and stats.loc[0, "pairs"] == 2


def test_pair_history_draws_margin_and_update_per_step():
    records = pd.DataFrame({"step": [3, 1, 2], "margin": [0.5, -0.2, 0.1], "update_norm": [0.1, 0.4, 0.2]})
    fig = figures.pair_history(records)
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].y) == [-0.2, 0.1, 0.5]
    assert fig.data[1].yaxis == "y2"


def test_proxy_over_training_draws_both_correlations_per_run():
    metrics = pd.DataFrame({"step": [0, 1, 5, 10], "eval_proxy_corr": [0.9, np.nan, 0.5, -0.2],
                            "eval_proxy_corr_per_error": [0.95, np.nan, 0.9, 0.85]})
    fig = figures.proxy_over_training({"bt": metrics, "normbt": metrics})
    assert len(fig.data) == 4
    assert list(fig.data[0].x) == [0, 5, 10] and fig.data[1].line.dash == "dot"
    assert [t.line.color for t in fig.data] == [figures.arm_color("bt")] * 2 + [figures.arm_color("normbt")] * 2
    assert max(len(t.name) for t in fig.data) <= 30  # short legend entries
    low, high = fig.layout.yaxis.range  # the axis spans the data (-0.2 .. 0.95), not all of [-1, 1]
    assert -0.4 < low < -0.2 and 0.95 < high < 1.06
    close = figures.proxy_over_training({"bt": metrics.assign(eval_proxy_corr=0.99, eval_proxy_corr_per_error=0.98)})
    assert close.layout.yaxis.range[0] > 0.9  # r near 1 throughout: the axis zooms in on it


def test_large_scatters_draw_a_fixed_sample_by_pair_id_and_say_so(monkeypatch):
    monkeypatch.setattr(figures, "SCATTER_MAX_PAIRS", 30)
    monkeypatch.setattr(figures, "MAP_MAX_POINTS", 20)
    pairs = make_pairs(100)
    shown = figures.error_vs_distance(pairs, title="BT")
    ids = [row[0] for row in shown.data[0].customdata]
    assert len(ids) == 30 and set(ids) <= set(pairs["pair_id"])
    assert shown.layout.title.text == "BT — showing 30 of 100 pairs (a fixed sample by pair id)"
    # The same pairs whatever the frame's order or values: BT and NormBT panels show the same pairs.
    other = make_pairs(100, seed=3).iloc[::-1]
    assert sorted(row[0] for row in figures.error_vs_distance(other).data[0].customdata) == sorted(ids)
    assert figures.error_vs_distance(pairs.head(30), title="BT").layout.title.text == "BT"
    coords = pairs.assign(x=pairs["rep_distance"], y=pairs["margin"], x_rejected=0.0, y_rejected=0.0)
    by_category = figures.embedding_map(coords, "category")
    assert sum(len(t.customdata) for t in by_category.data) == 20
    assert by_category.layout.title.text == "showing 20 of 100 pairs (a fixed sample by pair id)"
    joined = figures.embedding_map(coords, "category", segments=True)
    assert len(joined.data[1].customdata) == 10  # 20 markers: 10 chosen, 10 rejected
    assert not figures.embedding_map(coords.head(20), "category").layout.title.text


def test_error_vs_distance_hover_reads_the_colour_from_the_marker():
    fig = figures.error_vs_distance(make_pairs(), color="weight")
    assert "weight %{marker.color:.4g}" in fig.data[0].hovertemplate
    assert all(len(row) == 2 for row in fig.data[0].customdata)  # strings only: no float column per point


def test_shorten_reads_a_head_of_long_texts_with_the_same_result():
    def reference(text, limit=90):
        flat = " ".join(str(text).split())
        return flat if len(flat) <= limit else flat[: limit - 1] + "…"

    texts = ["word " * 500, " " * 400 + "late start", "a\n\n\tb " * 60, "x" * 89, "x" * 91, "é\u3000" * 200, 42, None, ""]
    for text in texts:
        assert figures.shorten(text) == reference(text)
        assert figures.shorten(text, 10) == reference(text, 10)


def axis_titles(fig: go.Figure) -> tuple[str, str]:
    return fig.layout.xaxis.title.text, fig.layout.yaxis.title.text


def test_every_figure_builder_titles_both_axes():
    pairs = make_pairs()
    texts = pairs.assign(chosen="a longer chosen answer here", rejected="short one", x=np.arange(40.0), y=np.arange(40.0) % 7)
    metrics = pd.DataFrame({"step": [0, 5], "loss": [0.7, 0.5], "eval_proxy_corr": [0.9, 0.5]})
    table = pd.DataFrame({"arm": ["bt"], "distance_bin": [0], "distance_low": [None], "distance_high": [None],
                          "mean": [0.6], "low": [0.5], "high": [0.7], "n": [1]})
    built = [
        figures.error_vs_distance(pairs),
        figures.update_share_bars({"bt": update_share_by_decile(pairs["rep_distance"], pairs["head_grad_norm"])}),
        figures.grad_norm_histogram({"bt": pairs}),
        figures.proxy_scatter(pairs),
        figures.training_curves({"bt": metrics}, "loss"),
        figures.accuracy_with_intervals(table, "distance_bin"),
        figures.distance_histogram(pairs),
        figures.category_counts(texts),
        figures.answer_lengths(texts),
        figures.embedding_map(texts, "correct", method="UMAP"),
        figures.toy_gradient_figure([1.0, 0.5], [0.6, 0.8], [-1.0, 1.0]),
        figures.toy_distance_figure(n_pairs=20),
        figures.pair_history(pd.DataFrame({"step": [1], "margin": [0.1], "update_norm": [0.2]})),
        figures.proxy_over_training({"bt": metrics}),
    ]
    for fig in built:
        x_title, y_title = axis_titles(fig)
        assert x_title and y_title, fig.layout.title.text
    assert axis_titles(built[9]) == ("UMAP component 1 (no unit)", "UMAP component 2 (no unit)")
    assert axis_titles(built[4])[1] == "training loss (nats per pair)"


def test_each_arm_has_one_colour_in_every_figure():
    pairs = make_pairs()
    shares = update_share_by_decile(pairs["rep_distance"], pairs["head_grad_norm"])
    metrics = pd.DataFrame({"step": [0, 5], "loss": [0.7, 0.5]})
    labels = {"run-b": "bt", "run-n": "normbt"}
    bt, normbt = figures.arm_color("bt"), figures.arm_color("normbt")
    assert bt != normbt
    # Listed NormBT first: the colour follows the arm, not the order.
    curves = figures.training_curves({"run-n": metrics, "run-b": metrics}, "loss", arms=labels)
    assert [t.line.color for t in curves.data if t.showlegend is not False] == [normbt, bt]
    bars = figures.update_share_bars({"run-n": shares, "run-b": shares}, arms=labels)
    assert [t.marker.color for t in bars.data[:2]] == [normbt, bt]
    histogram = figures.grad_norm_histogram({"run-b": pairs, "run-n": pairs}, arms=labels)
    assert [t.marker.color for t in histogram.data] == [bt, normbt]
    table = pd.DataFrame({"arm": ["normbt", "bt"], "category": ["a", "a"], "mean": [0.6, 0.5], "low": [0.5, 0.4],
                          "high": [0.7, 0.6], "n": [1, 1]})
    assert [t.marker.color for t in figures.accuracy_with_intervals(table, "category").data] == [normbt, bt]
    toy = {t.name.split(" ")[0]: t for t in figures.toy_gradient_figure([1.0, 0.5], [0.6, 0.8], [-1.0, 1.0]).data}
    assert toy["BT"].line.color == bt and toy["NormBT"].line.color == normbt
    assert [t.marker.color for t in figures.toy_distance_figure(n_pairs=20).data] == [bt, normbt]
    # Two seeds of one arm share its colour and differ in dash.
    seeds = figures.training_curves({"s0": metrics, "s1": metrics}, "loss", arms={"s0": "bt", "s1": "bt"})
    shown = [t for t in seeds.data if t.showlegend is not False]
    assert {t.line.color for t in shown} == {bt} and shown[0].line.dash != shown[1].line.dash


def test_toy_updates_stay_visible_side_by_side_when_bt_is_tiny():
    # h_r almost on h_c: BT's update is tiny, NormBT's keeps the length mu * error.
    fig = figures.toy_gradient_figure([1.0, 0.5], [0.99, 0.51], [-1.0, 1.0])
    bt = next(t for t in fig.data if t.name.startswith("BT"))
    normbt = next(t for t in fig.data if t.name.startswith("NormBT"))
    assert (bt.x[0], bt.y[0]) != (normbt.x[0], normbt.y[0])  # drawn from two origins, not on top of each other
    assert "length 0.0" in bt.name


def test_bin_labels_read_as_open_ended_ranges():
    assert figures.bin_label(0, -np.inf, 2.33) == "0: < 2.33"
    assert figures.bin_label(2, 2.33, 2.8) == "2: 2.33–2.80"
    assert figures.bin_label(4, 3.1, np.inf) == "4: ≥ 3.10"


def test_flags_on_the_map_read_yes_no_in_colours_no_arm_uses():
    coords = make_pairs().assign(x=np.arange(40.0), y=np.arange(40.0) % 7)
    fig = figures.embedding_map(coords, "correct")
    assert sorted(t.name for t in fig.data) == ["correct: no", "correct: yes"]
    assert {t.marker.color for t in fig.data}.isdisjoint(figures.ARM_COLORS.values())
