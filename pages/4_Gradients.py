"""Gradients: where each run's update goes. BT's per-pair head gradient is error × distance; NormBT's
follows the error alone."""

import numpy as np
import pandas as pd
import streamlit as st

from normbt_viz.errors import NormBTError
from normbt_viz.ui.figures import error_vs_distance, grad_norm_histogram, proxy_over_training, proxy_scatter, update_share_bars
from normbt_viz.analysis.stats import update_share_by_decile
from normbt_viz.ui.common import arm_of, latest_of_arm, no_runs_message, pairs_at, pick_run, runs_with_pairs
from normbt_viz.ui.pickers import pick_partner
from normbt_viz.ui.state import init_state

init_state()
st.title("Gradients")
runs = runs_with_pairs()
if not runs:
    no_runs_message()
    st.stop()

left, right = st.columns(2)
with left:
    run_a = pick_run("Run A", runs, "grad_run_a", latest_of_arm(runs, "bt"))
with right:
    # Run A's partner (same data and seed, the other arm), so the two panels show the same pairs.
    run_b = pick_partner("Run B", run_a, runs, "grad_run_b")
common = sorted(set(run_a.pair_steps()) & set(run_b.pair_steps()))
if not common:
    st.warning("These two runs have no diagnosed step in common.")
    st.stop()
a, b, c = st.columns([3, 1, 1])
# Step 0 first: before training BT's neglect of close pairs is clearest; slide right to watch it change.
step = a.select_slider("Step (0 = before training)", common, value=common[0], key="grad_step")
split = b.radio("Pairs", ["eval", "train"], key="grad_split", horizontal=True)
# update_norm first: the head gradient each run actually applied (NormBT's weight included), so the two
# panels differ where the losses differ; head_grad_norm is plain BT's for both.
color = c.selectbox("Colour", ["update_norm", "head_grad_norm", "weight", "margin"], key="grad_color")


def rows(run) -> pd.DataFrame:
    frame = pairs_at(run, step)
    return frame[frame["split"] == split].reset_index(drop=True)


pairs_a, pairs_b = rows(run_a), rows(run_b)
both = pd.concat([pairs_a[color], pairs_b[color]])
color_range = (float(both.min()), float(both.quantile(0.98))) if color != "margin" else None
left, right = st.columns(2)
for side, column, run, frame in (("a", left, run_a, pairs_a), ("b", right, run_b, pairs_b)):
    with column:
        st.plotly_chart(error_vs_distance(frame, color, f"{run.spec().arm_name}: {run.name}", color_range), key=f"scatter_{side}")
st.caption("Each dot is a pair at this step, coloured by the head-gradient norm its run applied. Under BT it is the "
           "product of the two axes (error × distance), so pairs on the left, whose answers look alike, get almost "
           "nothing; under NormBT it follows the error alone.")

st.subheader("Rebalancing: share of the update per distance decile")
# Backbone scopes record each sampled pair's exact update to the trainable blocks too (backbone_update_norm).
parts = {"head": "update_norm"}
if all("backbone_update_norm" in f and f["backbone_update_norm"].notna().sum() >= 10 for f in (pairs_a, pairs_b)):
    parts["backbone (exact, sampled pairs)"] = "backbone_update_norm"
part = st.radio("Parameters", list(parts), key="grad_share_part", horizontal=True) if len(parts) > 1 else "head"
shares = {}
for run, frame in ((run_a, pairs_a), (run_b, pairs_b)):
    frame = frame.dropna(subset=[parts[part]])
    try:
        shares[f"{arm_of(run)} ({run.name})"] = update_share_by_decile(frame["rep_distance"], frame[parts[part]], n_bins=min(10, len(frame)))
    except NormBTError as exc:
        st.warning(f"{run.name}: {exc}")
if shares:
    st.plotly_chart(update_share_bars(shares, {f"{arm_of(r)} ({r.name})": arm_of(r) for r in (run_a, run_b)}), key="update_share")
st.caption("Under BT the far deciles take most of the update; under NormBT the bars flatten toward the even share."
           + (" Backbone: ‖∇_blocks ℓ‖ from the exact per-pair norms of the sampled eval pairs (the head's part taken out), "
              "times the run's weight." if part != "head" else ""))

left, right = st.columns(2)
with left:
    hist_column = st.radio("Histogram of", ["update_norm", "head_grad_norm"], key="grad_hist_column", horizontal=True)
    st.plotly_chart(grad_norm_histogram({run_a.name: pairs_a, run_b.name: pairs_b}, hist_column,
                                        arms={run_a.name: arm_of(run_a), run_b.name: arm_of(run_b)}), key="grad_hist")
    st.caption("update_norm is the head-gradient norm of the loss each run optimised (NormBT's weight included); "
               "head_grad_norm is the plain BT one.")
with right:
    graded = pairs_at(run_a, step)
    graded = graded[graded["split"] == "eval"]
    st.plotly_chart(proxy_scatter(graded, f"Proxy check ({run_a.spec().arm_name})"), key="proxy")
    scope = run_a.spec().scope
    note = " Under head scope the full gradient is the head gradient, so this is σ(−Δ)·d exactly." if scope == "head" else ""
    sampled = int(np.isfinite(graded["full_grad_norm"]).sum())
    st.caption(f"Distance against the true per-pair gradient norm of all trained parameters ({sampled} sampled eval pairs): "
               f"the paper reports r = 0.928 for full fine-tuning.{note}")

# Legend entries by arm (the run names are in the pickers above); the run's name too only when both share an arm.
same_arm = arm_of(run_a) == arm_of(run_b)
labelled = [(arm_of(run) + (f" {run.name}" if same_arm else ""), run) for run in (run_a, run_b)]
curves = {label: run.metrics() for label, run in labelled}
if any("eval_proxy_corr" in m for m in curves.values()):
    st.plotly_chart(proxy_over_training(curves, {label: arm_of(run) for label, run in labelled}), key="proxy_over_training")
    st.caption("Solid: the correlation of ‖h_c − h_r‖ with the exact per-pair gradient norm over all trained "
               "parameters, at each evaluation. Dotted: with that norm divided by the prediction error σ(−Δ), the part "
               "of the gradient the paper's argument says distance drives. At the start the two agree; as pairs are "
               "fitted, far pairs' errors shrink, so the solid curve can fall (even below zero) while the dotted one "
               "shows whether distance still scales what remains. Dashed (runs that train blocks): the same for the blocks' "
               "parameters alone, since the head's part of the norm is the distance itself.")
