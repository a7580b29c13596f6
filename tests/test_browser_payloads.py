"""Real-browser test: HTML, script and markdown payloads inside a dataset's texts are shown as text, never run.

Trains a tiny head-scope run on 40 pairs whose prompts, answers and categories carry payloads, serves the app on
that runs root, visits every page and asserts that no dialog fired, that no injected <img>/<script>/javascript:
link exists in the DOM, and that the payload text is visible as text in the Pairs page's inspector."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from normbt_viz.runs.launcher import train_inline
from normbt_viz.ui.serve import start_app  # one way to start and wait for the app, shared with the benchmark
from normbt_viz.spec import RunSpec

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
PAGES = ("home", "data", "runs", "gradients", "embeddings", "pairs", "learn", "audit")
SCRIPT = "<script>alert('xss-script')</script>"
IMG = "<img src=x onerror=alert('xss-img')>"
LINK = "[click me](javascript:alert('xss-link'))"
# Injected elements, if any payload were parsed as HTML (or a markdown link kept its javascript: URL).
INJECTED = ("img[src='x']", "img[onerror]", "a[href^='javascript:']", "svg[onload]")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install -y chromium)")


def payload_pairs(n: int = 40) -> list[dict]:
    """Half the pairs carry a payload in the prompt, the other half in the chosen answer; every fourth in the
    rejected answer and the category too."""
    rows = []
    for i in range(n):
        payload = (SCRIPT, IMG, LINK)[i % 3]
        rows.append({
            "prompt": f"{payload} Question {i}: what is {i} plus {i}?" if i % 2 else f"Question {i}: what is {i} plus {i}?",
            "chosen": f"It is {2 * i}. {payload}" if i % 2 == 0 else f"It is {2 * i}.",
            "rejected": f"It is {2 * i + 1}. {IMG}" if i % 4 == 0 else f"It is {2 * i + 1}.",
            "category": LINK if i % 4 == 0 else ("math" if i % 2 else "<b>bold</b>"),
        })
    return rows


def test_payloads_in_data_are_shown_as_text(tmp_path, feature_cache):
    from playwright.sync_api import sync_playwright

    data = tmp_path / "payloads.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in payload_pairs()))
    runs_root = tmp_path / "runs"
    run, status = train_inline(RunSpec(dataset=str(data), scope="head", max_steps=4, batch_size=8, eval_every=2), runs_root)
    assert status["state"] == "done", status

    env = {**os.environ, "NORMBT_VIZ_RUNS": str(runs_root), "NORMBT_VIZ_CACHE": str(feature_cache), "PYTHONPATH": str(ROOT)}
    server, url = start_app(env, tmp_path / "streamlit.log")
    dialogs: list[str] = []
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            try:
                for name in PAGES:
                    page.goto(f"{url}/{name}")
                    page.locator('[data-testid="stMain"]').wait_for(timeout=60_000)
                    page.wait_for_function(  # the script run has finished: no "Running..." status widget
                        "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
                    page.wait_for_timeout(1500)
                    for selector in INJECTED:
                        assert page.locator(selector).count() == 0, (name, selector)
                    scripts = page.eval_on_selector_all("script", "els => els.map(e => e.textContent)")
                    assert not any("xss-" in text for text in scripts), name
                    assert dialogs == [], (name, dialogs)
                page.goto(f"{url}/pairs")
                page.get_by_text("Inspect one pair").wait_for(timeout=60_000)
                page.wait_for_timeout(2000)
                assert "<b>bold</b>" in page.inner_text("body")  # a category with HTML, shown as its text
                # Inspect an eval pair whose category (drawn with st.markdown) is the javascript: link.
                texts = run.pair_texts()
                linked = texts[(texts["split"] == "eval") & (texts["category"] == LINK)]["pair_id"].iloc[0]
                page.locator('[data-testid="stSelectbox"]').filter(has_text="Pair").last.click()
                page.get_by_role("option", name=linked).click()
                page.get_by_text(f"{linked} ·").first.wait_for(timeout=30_000)
                page.wait_for_timeout(1500)
                header = page.get_by_text(f"{linked} ·").first.inner_text()
                assert LINK in header and page.get_by_role("link", name="click me").count() == 0, header
                # The prompt and the two answers, in their bordered boxes: shown as text, never as markup.
                shown = page.eval_on_selector_all('[data-testid="stVerticalBlock"]', "els => els.filter(e => "
                                                  "getComputedStyle(e).borderStyle !== 'none').map(e => e.innerText)")
                assert any(payload in text for text in shown for payload in (SCRIPT, IMG, LINK)), shown
                page.screenshot(path=str(ARTIFACTS / "payloads-pairs.png"), full_page=True)
                assert dialogs == [] and all(page.locator(s).count() == 0 for s in INJECTED)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "payloads-failure.png"), full_page=True)
                raise
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
