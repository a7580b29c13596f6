"""Do the per-pair plots stay responsive at 10,000 pairs? Figures against a named baseline, same run.

    python benchmarks/bench_figures.py [--pairs 10000]

Builds the Gradients page's error-vs-distance scatter for N synthetic pairs twice: with the WebGL trace the
builder picks above SCATTERGL_THRESHOLD (ours) and with the SVG `go.Scatter` trace (baseline). For each it
prints the Python build time and payload size, then, in headless Chromium (Debian's /usr/bin/chromium via
Playwright), the time to first draw and the mean time of a zoom (relayout) over 5 zooms.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from normbt_viz.ui import figures

CHROMIUM = "/usr/bin/chromium"


def synthetic_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    distance = rng.gamma(2.0, 0.8, n)
    error = 1 / (1 + np.exp(rng.normal(0.5, 1.0, n)))
    return pd.DataFrame({"pair_id": [f"p{i}" for i in range(n)], "category": rng.choice(["chat", "reasoning"], n),
                         "rep_distance": distance, "pred_error": error, "head_grad_norm": distance * error})


def browser_timings(fig: go.Figure, page) -> tuple[float, float]:
    html = fig.to_html(include_plotlyjs=True, full_html=True, div_id="plot")
    page.set_content(html.replace("<body>", "<body><script>window.__t0 = performance.now();</script>", 1))
    page.wait_for_function("document.querySelector('#plot') && document.querySelector('#plot')._fullLayout")
    first_draw = page.evaluate("performance.now() - window.__t0")
    zooms = []
    for k in range(5):
        zooms.append(page.evaluate(
            """async (k) => { const t = performance.now();
                 await Plotly.relayout('plot', {'xaxis.range': [0, 6 - k], 'yaxis.range': [0, 1 - k * 0.1]});
                 return performance.now() - t; }""", k))
    return first_draw, float(np.mean(zooms))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=10_000)
    args = parser.parse_args()
    pairs = synthetic_pairs(args.pairs)
    started = time.perf_counter()
    ours = figures.error_vs_distance(pairs)
    build_ours = time.perf_counter() - started
    baseline = go.Figure(ours)
    baseline.data = []
    baseline.add_trace(go.Scatter(ours.data[0].to_plotly_json()))
    assert type(ours.data[0]).__name__ == "Scattergl"
    size = len(ours.to_json())
    print(f"{args.pairs} pairs: builder {build_ours * 1000:.0f} ms, payload {size / 1e6:.2f} MB, trace {type(ours.data[0]).__name__}")
    if not Path(CHROMIUM).exists():
        print("browser timings skipped: /usr/bin/chromium not installed (apt-get install chromium)")
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        svg_draw, svg_zoom = browser_timings(baseline, page)
        gl_draw, gl_zoom = browser_timings(ours, page)
        browser.close()
    print(f"first draw: SVG Scatter {svg_draw:.0f} ms (baseline), WebGL Scattergl {gl_draw:.0f} ms -> {svg_draw / gl_draw:.1f}x")
    print(f"zoom (mean of 5): SVG Scatter {svg_zoom:.0f} ms (baseline), WebGL Scattergl {gl_zoom:.0f} ms -> {svg_zoom / gl_zoom:.1f}x")


if __name__ == "__main__":
    main()
