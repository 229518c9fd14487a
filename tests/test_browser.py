"""Real-browser test: a learner's path through the running app (Matrix → Quadrant → Use this plan → Train → Start).

Starts `streamlit run app.py` on a free port and drives Debian's chromium through Playwright (never
`playwright install`). Screenshots go to a temporary folder and, if the environment variable TLP_SCREENSHOTS names
a folder, there too. Without /usr/bin/chromium the test is skipped, unless TLP_REQUIRE_BROWSER=1 (as in CI).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 90  # a cold streamlit start on two busy cores
TRAIN_S = 120_000  # ms to wait for the trained run's charts


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) for the browser test."
        if os.environ.get("TLP_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app served by a real streamlit process; yields its URL."""
    _require_chromium()
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    # One torch thread in the server: the headless browser shares the machine's cores, and two torch threads
    # that wait for each other at every operation stall badly next to a busy neighbour (bench/bench_ui.py,
    # default_run_wall_s_busy_neighbour). This test checks the learner's path, not the speed.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _port_open(port):
            try:  # waits up to 0.5 s for the process: it must not have died
                code = proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None:
                pytest.fail(f"streamlit exited with {code}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not open port {port} in {SERVER_START_S} s:\n"
                            f"{log_path.read_text()[-3000:]}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def test_learner_goes_from_the_matrix_to_a_trained_model(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    extra = os.environ.get("TLP_SCREENSHOTS")
    shots: list[Path] = []

    def shot(page, name: str) -> None:
        path = tmp_path / f"{len(shots) + 1:02d}_{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
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
