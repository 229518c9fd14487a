"""Benchmark: seconds from `streamlit run app.py` starting to the welcome page's title showing in a real browser.

Run `python bench/bench_startup.py` from the repository root; it prints one JSON line per record. `run()` returns the
same records for bench/run_all.py. Each cold start is a fresh server process and a fresh browser page (the browser
itself is launched beforehand and not counted). Needs Debian's chromium; without it the figure is skipped, with why.
"""

from __future__ import annotations

import json
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
GOAL_S = 2.0
WELCOME_TITLE = "What is transfer learning?"  # the first page's title (pages/welcome.py)


def _cold_start(browser) -> tuple[float, float]:
    """(seconds until the port opens, seconds until the welcome title shows), both from the server's start."""
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
        return port_s, time.perf_counter() - start
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
    return [{"figure": "first_page_render_s", "value": round(statistics.median(r[1] for r in runs), 2), "unit": "s",
             "goal": f"<= {GOAL_S}", "runs": [round(r[1], 2) for r in runs],
             "port_open_s": round(statistics.median(r[0] for r in runs), 2),
             "meaning": "from starting `streamlit run app.py` to the welcome page's title showing in Chromium "
                        "(median of fresh servers; the browser was already open)"}]


if __name__ == "__main__":
    for record in run():
        print(json.dumps(record))
