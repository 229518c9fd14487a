"""Real-browser test: a learner answers one scenario question on the race page, reads its explanation, runs its answer
(the BatchNorm trap race) and sees what the run measured next to the question; the answer is in the URL and the
sidebar counts it.

Serves the app with `streamlit run app.py` on a free port and drives Debian's chromium through Playwright (the
`chromium` and `serve_app` fixtures in conftest.py; never `playwright install`). Screenshots go to a temporary folder
and, if the environment variable TLP_SCREENSHOTS names a folder, there too.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tl_core.teaching.questions import QUESTIONS, get_question

PAGE_MS = 120_000  # a fresh server's first race page (torch loads)
RUN_MS = 240_000  # the race trains two lanes while the browser and the server share the cores


def test_a_learner_answers_a_question_and_runs_its_answer(chromium: dict[str, Any], serve_app: Callable,
                                                          tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    q = get_question("r3")
    shots: list[Path] = []
    with serve_app() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(**chromium)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(server + "/race")
            # the race page first waits for torch to load on a fresh server
            expect(page.get_by_role("heading", name="Check your understanding")).to_be_visible(timeout=PAGE_MS)
            box = page.locator(".st-key-quiz-r3")
            box.scroll_into_view_if_needed()
            box.get_by_text(q.keyed.label).click()
            expect(box.get_by_text("only stops gradient steps on the weights")).to_be_visible(timeout=PAGE_MS)
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_text(f"1 of {len(QUESTIONS)} questions answered")).to_be_visible(timeout=PAGE_MS)
            expect(page).to_have_url(re.compile(r"[?&]quiz=1\.r3aa1\b"), timeout=PAGE_MS)
            path = tmp_path / "01_answered.png"
            page.screenshot(path=str(path), full_page=True)
            shots.append(path)

            box.get_by_role("button", name=re.compile("Measure it")).click()
            expect(page.get_by_role("heading", name="Results")).to_be_visible(timeout=RUN_MS)
            measured = page.locator(".st-key-quiz-r3").get_by_text(re.compile("Measured in the race \"BatchNorm trap\""))
            expect(measured).to_be_visible(timeout=60_000)
            expect(measured).to_contain_text("BatchNorm statistics changed by up to")
            measured.scroll_into_view_if_needed()
            path = tmp_path / "02_measured.png"
            page.screenshot(path=str(path), full_page=True)
            shots.append(path)
        finally:
            browser.close()
    assert all(p.stat().st_size > 10_000 for p in shots)
    extra = os.environ.get("TLP_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        for p in shots:
            shutil.copy(p, Path(extra) / p.name)
