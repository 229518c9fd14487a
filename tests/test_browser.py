"""Real-browser test: a learner's path through the running app (Matrix → Quadrant → Use this plan → Train → Start).

Serves the app with `streamlit run app.py` on a free port and drives Debian's chromium through Playwright (never
`playwright install`; see the `chromium` and `serve_app` fixtures in conftest.py). Screenshots go to a temporary
folder and, if the environment variable TLP_SCREENSHOTS names a folder, there too. Without /usr/bin/chromium the
test is skipped, unless TLP_REQUIRE_BROWSER=1 (as in CI).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

TRAIN_S = 180_000  # ms to wait for the trained run (the browser shares the cores; see bench_ui's busy neighbour)


def test_learner_goes_from_the_matrix_to_a_trained_model(chromium: dict[str, Any], serve_app: Callable,
                                                          tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    extra = os.environ.get("TLP_SCREENSHOTS")
    shots: list[Path] = []

    def shot(page, name: str) -> None:
        path = tmp_path / f"{len(shots) + 1:02d}_{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    with serve_app() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(**chromium)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(server)
            expect(page.get_by_role("heading", name="What is transfer learning")).to_be_visible()
            shot(page, "welcome")

            nav = page.locator('[data-testid="stSidebarNavLink"]')
            nav.filter(has_text="Domain & task matrix").click()
            expect(page.get_by_role("heading", name="Domain & task matrix")).to_be_visible()
            shot(page, "matrix")

            nav.filter(has_text="Size vs similarity").click()
            expect(page.get_by_role("heading", name="Size vs similarity")).to_be_visible()
            shot(page, "quadrant")

            page.get_by_role("button", name="Use this plan").click()
            expect(page.get_by_role("heading", name="Train live")).to_be_visible()
            expect(page.get_by_text("Fine-tune only the final layers · shapesnet").first).to_be_visible()
            shot(page, "train_before")

            page.get_by_role("button", name="Start").click()
            heat = page.locator(".js-plotly-plot").filter(has_text="Gradient norm per layer group and step")
            expect(heat.first).to_be_visible(timeout=TRAIN_S)
            expect(page.get_by_role("heading", name="Results")).to_be_visible(timeout=TRAIN_S)
            heat = page.locator(".js-plotly-plot").filter(has_text="Gradient norm per layer group and step")
            expect(heat.locator(".hm, .heatmaplayer image").first).to_be_attached()  # the heatmap itself is drawn
            for group in ("block1", "block4", "head"):
                expect(heat.locator(".ytick", has_text=group).first).to_be_attached()
            expect(heat.locator(".ytick", has_text="frozen")).to_have_count(3)
            heat.first.scroll_into_view_if_needed()
            shot(page, "trained")
            heat.first.screenshot(path=str(tmp_path / "gradient_heatmap.png"))
            shots.append(tmp_path / "gradient_heatmap.png")
        finally:
            browser.close()

    assert all(p.stat().st_size > 10_000 for p in shots)
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        for p in shots:
            shutil.copy(p, Path(extra) / p.name)


def test_a_reload_mid_race_on_a_class_link_keeps_the_runs_preset_data_seed_and_pick(chromium: dict[str, Any],
                                                                                     serve_app: Callable,
                                                                                     tmp_path: Path) -> None:
    """Issue 16 #1: after a reload the page shows the run's own preset, data and seed (and the learner's pick), not the
    defaults; and #14: the race's lane picker and "Add my plan" show every choice in full."""
    from playwright.sync_api import expect, sync_playwright

    with serve_app() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(**chromium)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(60_000)
            page.goto(f"{server}/race")  # a first visit: the title at once, the page once torch has loaded
            expect(page.get_by_role("heading", name="The race")).to_be_visible(timeout=60_000)
            expect(page.get_by_role("button", name="Start the race")).to_be_visible(timeout=120_000)
            chips = page.locator('[data-testid="stMultiSelect"] [data-tag] span[title]')
            expect(chips).to_have_count(4)
            cut = chips.evaluate_all("els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.title)")
            assert cut == []  # every lane's name in full
            own = page.locator('[data-testid="stCheckbox"]').filter(has_text="Add my plan (")
            assert own.evaluate("e => Array.from(e.querySelectorAll('p')).every(p => p.scrollWidth <= p.clientWidth "
                                "+ 1 && p.getBoundingClientRect().right <= window.innerWidth)")
            assert ")" in own.inner_text()  # the plan's whole description, closing bracket included

            page.goto(f"{server}/race?preset=lots_different&seed=3")
            expect(page.get_by_text("Class preset: Lots and different")).to_be_visible()
            expect(page.locator('[data-testid="stMultiSelect"]')).to_have_count(0)  # the preset's page, drawn
            prediction = page.locator('[data-testid="stRadio"]').filter(has_text="Before the start")
            prediction.get_by_text("Re-train from scratch", exact=True).click()
            expect(page.get_by_role("button", name="Start the race")).to_be_enabled()
            page.get_by_role("button", name="Start the race").click()
            expect(page).to_have_url(re.compile(r"[?&]run=\d+-"))
            expect(page.locator('[data-testid="stProgress"]').first).to_be_visible(timeout=TRAIN_S)
            run = re.search(r"run=([\w-]+)", page.url).group(1)
            page.reload()  # mid-run
            expect(page.get_by_text("Class preset: Lots and different")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("250 images per class at similarity 0.25 (seed 3)").first).to_be_visible()
            expect(page.get_by_role("spinbutton", name="Seed", exact=True)).to_have_value("3")
            expect(page.get_by_text("Your pick:").first).to_contain_text("Re-train from scratch")
            assert f"run={run}" in page.url  # the same run, taken over
            page.screenshot(path=str(tmp_path / "race_after_reload.png"), full_page=True)
            expect(page.get_by_role("heading", name="Lots and different: what this race showed")).to_be_visible(
                timeout=TRAIN_S)  # the run's own results, under its own preset
            expect(page.get_by_text("250 images per class at similarity 0.25, seed 3")).to_be_visible()
        finally:
            browser.close()
