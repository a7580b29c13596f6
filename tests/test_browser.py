"""Real-browser test: serve the app, start two small BT-vs-NormBT experiments on different data from the Train
page, wait for the runs to finish, then check that every page's default view draws its plotly charts, each with
both axis titles, with no error box and no refusal to compare. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from normbt_viz.runs.launcher import cancel
from normbt_viz.runs.rundir import LIVE_STATES, list_runs
from normbt_viz.ui.serve import start_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
ERROR_BOXES = '[data-testid="stException"], [data-testid="stAlertContentError"]'

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install -y chromium)")


@pytest.fixture
def app_url(tmp_path, feature_cache):
    runs_root = tmp_path / "runs"
    env = {**os.environ, "NORMBT_VIZ_RUNS": str(runs_root), "NORMBT_VIZ_CACHE": str(feature_cache), "PYTHONPATH": str(ROOT)}
    server, url = start_app(env, tmp_path / "streamlit.log")
    try:
        yield url, runs_root
    finally:
        for run in list_runs(runs_root):
            if run.status().get("state") in LIVE_STATES:
                cancel(run)
        server.terminate()
        server.wait(timeout=20)


def assert_no_error_box(page) -> None:
    boxes = page.locator(ERROR_BOXES)
    assert boxes.count() == 0, boxes.first.inner_text()


def settle_and_shoot(page, name: str) -> None:
    """Let the page finish drawing, check it shows no error, and save `test-artifacts/<name>.png`."""
    page.wait_for_timeout(1500)
    assert_no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_for_charts(page, n: int, timeout_s: float = 90) -> None:
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {n}", timeout=timeout_s * 1000)


# (title, x axis title, y axis title) of every plotly chart on the page, read from the drawn figures themselves.
AXIS_TITLES = """Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
    const text = t => typeof t === 'string' ? t : ((t && t.text) || '');
    const layout = gd.layout || {};
    return [text(layout.title), text((layout.xaxis || {}).title), text((layout.yaxis || {}).title)];
})"""
REFUSALS = ("cannot compare", "has no diagnostics", "no diagnosed step in common")


def assert_readable_default_view(page, name: str) -> None:
    """No refusal on the page, and both axes of every chart titled."""
    body = page.inner_text("body")
    assert not [r for r in REFUSALS if r in body], (name, body[:2000])
    untitled = [chart for chart in page.evaluate(AXIS_TITLES) if not (chart[1] and chart[2])]
    assert untitled == [], (name, untitled)


def launch_from_custom_runs(page, demo_size: int) -> None:
    """Fill the Custom runs form (its expander open) with a small demo run and press Launch."""
    for label, value in (("Demo size (pairs)", str(demo_size)), ("Max steps (0 = use epochs)", "20")):
        field = page.get_by_role("spinbutton", name=label)  # the input itself, not its help tooltip
        field.fill(value)
        field.press("Enter")
        page.wait_for_timeout(800)
    page.get_by_role("button", name="Launch", exact=True).click()
    page.get_by_text("Started 2 run(s)").wait_for(timeout=30_000)


def wait_until_finished(runs_root: Path, n_runs: int, timeout_s: float = 180) -> list:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        states = [run.status().get("state") for run in list_runs(runs_root)]
        if len(states) == n_runs and all(s not in LIVE_STATES for s in states):
            break
        time.sleep(2)
    assert states == ["done"] * n_runs, states
    return states


def test_small_run_from_train_page_then_gradients_and_embeddings(app_url):
    from playwright.sync_api import sync_playwright

    url, runs_root = app_url
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        outside = []  # the app must make no request off this machine (fonts, icons, telemetry)
        page.on("request", lambda request: outside.append(request.url)
                if not request.url.startswith((url, "data:", "blob:", "about:")) else None)
        try:
            walk_through_the_app(page, url, runs_root)
            assert outside == [], outside
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def walk_through_the_app(page, url: str, runs_root: Path) -> None:
    """Train page: start two small BT-vs-NormBT experiments (200 and 120 demo pairs) and wait for them; then visit
    every other page."""
    page.goto(f"{url}/train")  # the default page answers at its own path too
    page.get_by_role("button", name="Start BT vs NormBT on the demo data").wait_for(timeout=60_000)
    page.goto(url)
    page.get_by_role("button", name="Start BT vs NormBT on the demo data").wait_for(timeout=60_000)

    page.get_by_text("Custom runs").click()
    launch_from_custom_runs(page, 200)
    wait_until_finished(runs_root, 2)
    specs = [run.spec() for run in list_runs(runs_root)]
    assert sorted(s.arm for s in specs) == ["bt", "normbt"]
    assert all(s.demo_size == 200 and s.max_steps == 20 for s in specs)
    # The job list refreshes itself every 2 s while runs are live.
    page.wait_for_function("document.body.innerText.split('· done ·').length - 1 >= 2", timeout=30_000)
    page.wait_for_timeout(2500)  # let the last fragment run replace its stale elements
    assert_no_error_box(page)

    # A second experiment on other data: the comparison pages must open on one experiment, not refuse a mix.
    launch_from_custom_runs(page, 120)
    wait_until_finished(runs_root, 4)
    page.wait_for_function("document.body.innerText.split('· done ·').length - 1 >= 4", timeout=30_000)
    page.wait_for_timeout(2500)
    assert_no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "train.png"), full_page=True)

    page.goto(url)  # a fresh session: the estimate before Launch comes from the four runs just measured
    page.get_by_text("Estimated time").first.wait_for(timeout=60_000)
    assert_readable_default_view(page, "train")

    for path, n_charts in (("gradients", 6), ("embeddings", 1), ("runs", 7), ("learn", 2)):
        page.goto(f"{url}/{path}")
        wait_for_charts(page, n_charts)
        settle_and_shoot(page, path)
        assert_readable_default_view(page, path)

    page.goto(f"{url}/pairs")
    page.get_by_text("Inspect one pair").wait_for(timeout=60_000)
    settle_and_shoot(page, "pairs")
    page.get_by_role("tab", name="BT vs NormBT").click()
    page.wait_for_timeout(2000)
    assert_readable_default_view(page, "pairs")

    page.goto(f"{url}/audit")
    page.get_by_text("Start an audit").wait_for(timeout=60_000)
    settle_and_shoot(page, "audit")

    # The Data page in the session that chose 120 demo pairs on the Train page: the choice carries over, and the
    # distances come from the feature cache the second experiment filled (1000 fresh pairs take minutes on a
    # busy 2-core machine).
    page.goto(url)
    page.get_by_text("Custom runs").click()
    field = page.get_by_role("spinbutton", name="Demo size (pairs)")
    field.fill("120")
    field.press("Enter")
    page.wait_for_timeout(800)
    page.get_by_role("link", name="Data").click()
    page.get_by_text("120 pairs from demo").wait_for(timeout=60_000)
    wait_for_charts(page, 2)  # pairs per category, answer lengths
    page.get_by_role("button", name="Compute representation distances").click()
    wait_for_charts(page, 3, timeout_s=150)
    settle_and_shoot(page, "data")
    assert_readable_default_view(page, "data")

    # An audit of those 120 pairs on the audit's default backbone (SmolLM2, packed pairs), started from its page in
    # the same session: the progress line redraws itself and the finished audit replaces it, with no click after Start.
    page.get_by_role("link", name="Audit").click()
    page.get_by_role("button", name="Audit every pair").click()
    page.get_by_text("Audit started in the background").wait_for(timeout=30_000)
    progress_seen = watch_progress_until(page, "Pairs audited", timeout_s=300)
    assert progress_seen, "no progress line was drawn while the audit ran"
    for phase in {phase for phase, _ in progress_seen}:  # within a phase the count never moves backwards
        counts = [done for seen_phase, done in progress_seen if seen_phase == phase]
        assert counts == sorted(counts), progress_seen
    settle_and_shoot(page, "audit_done")
    assert_readable_default_view(page, "audit")


def watch_progress_until(page, finished_text: str, timeout_s: float) -> list[tuple[str, int]]:
    """Read the page's progress bar ("phase: done/total") once a second, without touching the page, until
    `finished_text` shows; returns the (phase, done) pairs it read."""
    seen = []
    deadline = time.time() + timeout_s
    while finished_text not in page.inner_text("body"):
        assert time.time() < deadline, f"{finished_text!r} did not appear in {timeout_s:.0f} s; progress read: {seen}"
        for text in page.locator('[data-testid="stProgress"]').all_inner_texts():
            match = re.search(r"(.+): ([\d,]+)/[\d,]+", text)
            if match:
                seen.append((match[1].strip(), int(match[2].replace(",", ""))))
        page.wait_for_timeout(1000)
    return seen
