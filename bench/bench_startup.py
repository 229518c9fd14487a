"""Benchmark: a fresh server's first page, and the first visit to every other page, in a real browser.

`first_page_render_s`: seconds from `streamlit run app.py` starting to the welcome page's title showing.
`first_visit_title_s_max`: then, on that same fresh server, the learner clicks through every page of the sidebar in
turn (each page's first visit on this server, while torch and the models still import in the background, ui.warm),
and the slowest click-to-title is reported (each page is let finish before the next click).

Run `python bench/bench_startup.py` from the repository root; it prints one JSON line per record. `run()` returns the
same records for bench/run_all.py. Each cold start is a fresh server process and a fresh browser page (the browser
itself is launched beforehand and not counted). Needs Debian's chromium; without it the figure is skipped, with why.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CHROMIUM, CHROMIUM_ARGS, _free_port, _port_open  # noqa: E402

COLD_STARTS = 3
GOAL_S = 1.5
VISIT_GOAL_S = 1.0
WELCOME_TITLE = "What is transfer learning?"  # the first page's title (pages/welcome.py)


def _pages() -> list[str]:
    """The sidebar's page titles after the first one, in order (app.PAGES, read without running app.py)."""
    import ast

    tree = ast.parse((ROOT / "app.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "PAGES":
            return [t[2] for t in ast.literal_eval(node.value)][1:]
    raise RuntimeError("app.py has no PAGES list")


def _tour(page) -> dict[str, float]:
    """Click every other page of the sidebar once; seconds from each click to that page's title (an h1 that
    contains the title's words), then wait for the page to finish before the next click."""
    times = {}
    nav = page.locator('[data-testid="stSidebarNavLink"]')
    for title in _pages():
        first_last = title.split()[:1] + title.split()[1:][-1:]
        words = re.compile(".*".join(re.escape(w) for w in first_last))
        t0 = time.perf_counter()
        nav.filter(has_text=title).first.click()
        page.get_by_role("heading", level=1, name=words).first.wait_for(timeout=60_000)
        times[title] = round(time.perf_counter() - t0, 3)
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=120_000)
    return times


def _cold_start(browser) -> tuple[float, float, dict[str, float]]:
    """(seconds until the port opens, seconds until the welcome title shows, both from the server's start; and
    each other page's first-visit click-to-title seconds)."""
    port = _free_port()
    page = browser.new_page()
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _port_open(port):
            if server.poll() is not None or time.perf_counter() - start > 60:
                raise RuntimeError(f"streamlit did not open port {port}")
            time.sleep(0.02)
        port_s = time.perf_counter() - start
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text(WELCOME_TITLE).first.wait_for(timeout=60_000)
        first = time.perf_counter() - start
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)
        return port_s, first, _tour(page)
    finally:
        page.close()
        server.terminate()
        server.wait(timeout=15)


def run() -> list[dict]:
    if not Path(CHROMIUM).exists():
        return [{"figure": "first_page_render_s_skipped", "value": 1, "unit": "note", "why": f"{CHROMIUM} is missing"}]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            _cold_start(browser)  # warm the disk cache and the browser; not counted
            runs = [_cold_start(browser) for _ in range(COLD_STARTS)]
        finally:
            browser.close()
    slowest = [max(r[2].values()) for r in runs]
    worst = max(runs, key=lambda r: max(r[2].values()))[2]
    return [{"figure": "first_page_render_s", "value": round(statistics.median(r[1] for r in runs), 2), "unit": "s",
             "goal": f"<= {GOAL_S}", "runs": [round(r[1], 2) for r in runs],
             "port_open_s": round(statistics.median(r[0] for r in runs), 2),
             "meaning": "from starting `streamlit run app.py` to the welcome page's title showing in Chromium "
                        "(median of fresh servers; the browser was already open)"},
            {"figure": "first_visit_title_s_max", "value": round(statistics.median(slowest), 2), "unit": "s",
             "goal": f"<= {VISIT_GOAL_S}", "runs": [round(x, 2) for x in slowest],
             "slowest_run_per_page_s": worst,
             "meaning": "the slowest first visit to any page of a fresh server, from the click in the sidebar to "
                        "the page's title (median over fresh servers of each one's slowest page; the learner clicks "
                        "through every page right after the welcome page, while torch still loads)"}]


if __name__ == "__main__":
    for record in run():
        print(json.dumps(record))
