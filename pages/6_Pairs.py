"""Pairs: the outliers worth reading: near-identical pairs, confident mistakes (and the label flips among
them), BT-vs-NormBT disagreements, and length bias."""

import streamlit as st

from normbt_viz.analysis.outliers import disagreement, flip_recovery, length_bias, misranked, near_identical, unique_pairs
from normbt_viz.ui.figures import pair_history
from normbt_viz.ui.common import md_text, pairs_at, run_and_step_header, runs_with_pairs
from normbt_viz.ui.pickers import pick_partner
from normbt_viz.ui.state import init_state

init_state()
st.title("Pairs")
run, step, (c, d) = run_and_step_header("pairs", [3, 2, 1, 1])
split = c.radio("Pairs", ["eval", "train"], key="pairs_split")
top_n = d.number_input("Top N", 5, 500, 20, step=5, key="pairs_top_n")
frame = pairs_at(run, step)
frame = unique_pairs(frame[frame["split"] == split])
categories = sorted(frame["category"].unique())
picked = st.multiselect("Categories", categories, default=categories, key="pairs_categories")
frame = frame[frame["category"].isin(picked)]
COLUMNS = ["pair_id", "category", "margin", "pred_error", "rep_distance", "weight", "update_norm", "correct", "flipped",
           "len_chosen", "len_rejected"]

TABS = {"Near-identical": "near", "Confidently misranked": "wrong", "BT vs NormBT": "disagree", "Length bias": "length"}
near, wrong, disagree, length = st.tabs(list(TABS), key="pairs_tab", on_change="rerun")
listed = {}
with near:
    listed["near"] = near_identical(frame, int(top_n))
    st.dataframe(listed["near"][COLUMNS], hide_index=True)
    st.caption("Smallest ‖h_c − h_r‖: the backbone barely tells the two answers apart, so BT's update for them is tiny "
               "whatever the error, and NormBT's weight μ/d is huge.")
with wrong:
    listed["wrong"] = misranked(frame, int(top_n))
    st.dataframe(listed["wrong"][COLUMNS], hide_index=True)
    if "flipped" in frame and frame["flipped"].any():
        found = flip_recovery(frame, int(top_n))
        x, y, z = st.columns(3)
        x.metric("Injected flips found", f"{found['found']} / {found['n_flipped']}")
        y.metric("Precision", f"{found['precision']:.2f}")
        z.metric("Recall", f"{found['recall']:.2f}")
    st.caption("Most negative margins first. On demo data `flipped` marks injected label noise: a flipped pair "
               "ranked 'wrong' is one the model got right despite its label.")
with disagree:
    runs = runs_with_pairs()
    others = [r for r in runs if r.name != run.name] or runs
    other = pick_partner("Compare with", run, others, "pairs_other")  # same data and seed, the other arm
    theirs = pairs_at(other, step, stop=False) if step in other.pair_steps() else None  # None: one error line above
    if theirs is not None:
        theirs = unique_pairs(theirs[theirs["split"] == split])
        table = disagreement(frame, theirs, "a", "b").head(int(top_n))
        listed["disagree"] = table
        st.dataframe(table, hide_index=True)
        st.caption(f"Same pairs, margin of b ({other.spec().arm_name}) minus a ({run.spec().arm_name}), largest first.")
    elif step not in other.pair_steps():
        st.info(f"{other.name} has no diagnostics at step {step}.")
with length:
    bias = length_bias(frame)
    x, y, z = st.columns(3)
    x.metric("corr(reward diff, length diff)", f"{bias['corr']:.2f}")
    y.metric(f"Accuracy, chosen longer ({bias['n_chosen_longer']})", f"{bias['accuracy_chosen_longer']:.2f}")
    z.metric(f"Accuracy, chosen shorter ({bias['n_chosen_shorter']})", f"{bias['accuracy_chosen_shorter']:.2f}")
    st.caption("A strong positive correlation, or much higher accuracy when the chosen answer is longer, means the "
               "reward partly measures length (token counts).")

st.subheader("Inspect one pair")
# The pairs of the open tab (its list, else every list's) so the inspector reads what the user is looking at.
open_list = listed.get(TABS.get(st.session_state.get("pairs_tab"), ""))
candidates = (list(open_list["pair_id"]) if open_list is not None and len(open_list) else
              list(dict.fromkeys(p for t in listed.values() for p in t["pair_id"]))) or frame["pair_id"].tolist()
pair_id = st.selectbox("Pair", candidates, key="pairs_inspect")
if pair_id:
    text = run.pair_texts().set_index("pair_id").loc[pair_id]
    row = frame.set_index("pair_id").loc[pair_id]
    st.markdown(f"**{md_text(pair_id)}** · {md_text(row['category'])} · margin {row['margin']:.3f} · distance {row['rep_distance']:.3f}"
                + (" · **label flipped**" if bool(row.get("flipped", False)) else ""))
    # Bordered, scrolling boxes in the body's own colour: a disabled text area greys the very text to be read.
    st.markdown("**Prompt**")
    st.container(border=True, height=120).markdown(md_text(text["prompt"]).replace("\n", "  \n"))
    left, right = st.columns(2)
    for column, side in ((left, "chosen"), (right, "rejected")):
        column.markdown(f"**{side.capitalize()}**")
        column.container(border=True, height=240).markdown(md_text(text[side]).replace("\n", "  \n"))
    history = run.records([pair_id])
    if len(history):
        st.plotly_chart(pair_history(history), key="pair_history")
        st.caption(f"Read from the run's per-pair record stream: every step at which this pair was in a training batch "
                   f"({len(history)} here), with the margin and the update it got in that very forward.")
    elif row.get("split") == "train":
        st.caption("No training record for this pair (it was never in a batch, or the run had diagnostics off).")
st.download_button("Download these pairs (CSV)", frame.to_csv(index=False), f"pairs_{run.name}_step{step}.csv", "text/csv")
