"""Learn: why BT's update scales with representation distance, and what NormBT does about it, with a toy
you can move."""

import numpy as np
import streamlit as st

from normbt_viz.ui.figures import toy_distance_figure, toy_gradient_figure
from normbt_viz.analysis.toy import head_gradient
from normbt_viz.ui.state import init_state

init_state()
st.title("Learn: the distance in the BT gradient")
st.markdown("A reward model scores an answer with a linear head on a representation, $r = w^\\top h + b$. "
            "For a pair with chosen $h_c$ and rejected $h_r$, the margin and the BT loss are")
st.latex(r"\Delta = r_c - r_r = w^\top (h_c - h_r), \qquad \ell = -\log \sigma(\Delta)")
st.markdown("and the gradient with respect to the head (the bias cancels) is")
st.latex(r"\frac{\partial \ell}{\partial w} = -\sigma(-\Delta)\,(h_c - h_r) \quad\Rightarrow\quad "
         r"\Big\lVert \frac{\partial \ell}{\partial w} \Big\rVert = \underbrace{\sigma(-\Delta)}_{\text{prediction error}} "
         r"\cdot \underbrace{\lVert h_c - h_r \rVert}_{\text{distance } d}")
st.markdown("So a misranked pair whose answers look alike (a single wrong digit) gets a tiny update, and a pair with "
            "very different answers a large one, whatever its error. **NormBT** multiplies each pair's loss by a "
            "detached weight, with $\\mu$ a running mean of the batch distance so weights average about 1:")
st.latex(r"\omega_i = \mathrm{sg}\!\left(\frac{\mu}{d_i + \varepsilon}\right) \quad\Rightarrow\quad "
         r"\lVert \omega_i\, \partial \ell_i / \partial w \rVert \approx \mu \cdot \sigma(-\Delta_i)")

st.subheader("Try it")
controls, plot = st.columns([1, 2])
with controls:
    st.markdown("**Chosen** $h_c$")
    hc = np.array([st.slider("h_c x", -3.0, 3.0, 1.0, 0.1, key="toy_hc_x"), st.slider("h_c y", -3.0, 3.0, 0.5, 0.1, key="toy_hc_y")])
    st.markdown("**Rejected** $h_r$")
    hr = np.array([st.slider("h_r x", -3.0, 3.0, 0.6, 0.1, key="toy_hr_x"), st.slider("h_r y", -3.0, 3.0, 0.8, 0.1, key="toy_hr_y")])
    st.markdown("**Head** $w$")
    w = np.array([st.slider("w x", -3.0, 3.0, -1.0, 0.1, key="toy_w_x"), st.slider("w y", -3.0, 3.0, 1.0, 0.1, key="toy_w_y")])
    mu = st.slider("μ (running mean distance)", 0.1, 3.0, 1.0, 0.1, key="toy_mu")
grad = head_gradient(hc, hr, w, mu=mu)
with plot:
    a, b, c, d = st.columns(4)
    a.metric("error σ(−Δ)", f"{grad['pred_error']:.3f}")
    b.metric("distance d", f"{grad['rep_distance']:.3f}")
    c.metric("BT ‖∂ℓ/∂w‖", f"{grad['bt_norm']:.3f}")
    d.metric("NormBT ‖ω ∂ℓ/∂w‖", f"{grad['normbt_norm']:.3f}")
    st.plotly_chart(toy_gradient_figure(hc, hr, w, mu), key="toy_vectors")
    st.caption("Drag h_r toward h_c: the BT update shrinks with the distance even while the pair stays misranked; "
               "the NormBT update keeps the length μ·σ(−Δ).")

st.subheader("Many pairs at once")
n = st.slider("Random pairs", 50, 1000, 200, 50, key="toy_n")
st.plotly_chart(toy_distance_figure(n_pairs=n, w=w), key="toy_many")
st.caption("BT's update norm rises with distance (the scatter within a distance is the error); NormBT's depends on "
           "the error alone, so it is flat in distance.")
