"""Real-browser test: upload a zip on the own-images page, see the validation report, close the tab, and watch the
server's reaper remove the session's private temp folder.

Starts `streamlit run app.py` on a free port with its own TMPDIR (so its session folders are the only ones there),
an empty TORCH_HOME, and a short clean-up grace period, then drives Debian's chromium through Playwright (never
`playwright install`). Without /usr/bin/chromium the test is skipped, unless TLP_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 90  # a cold streamlit start on two busy cores
CLEANUP_S = 60  # how long the reaper may take to remove a closed session's folder (grace 1 s, checks every 0.5 s)
COLOURS = {"cats": (220, 30, 30), "dogs": (30, 60, 220), "fish": (30, 170, 60)}


@dataclass
class Server:
    url: str  # where the app is served
    proc: subprocess.Popen  # the streamlit process
    sessions: Path  # the folder that holds its per-session temp folders
    log: Path  # its output


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the browser test."
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


def _alive_for(server: Server, seconds: float) -> None:
    """Wait up to `seconds` on the server process; it must not exit meanwhile (this is the polls' pace)."""
    try:
        code = server.proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return
    pytest.fail(f"streamlit exited with {code}:\n{server.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app served by a real streamlit process with its own temp folder."""
    _require_chromium()
    base = tmp_path_factory.mktemp("upload_server")
    tmpdir = base / "tmp"
    tmpdir.mkdir(mode=0o700)
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmpdir), "TORCH_HOME": str(base / "torch"), "TLP_SESSION_GRACE_S": "1",
           "TLP_REAP_EVERY_S": "0.5"}
    log_path = base / "streamlit.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    srv = Server(f"http://127.0.0.1:{port}", proc, tmpdir / "tl-playbook", log_path)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _port_open(port):
            _alive_for(srv, 0.5)
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not open port {port} in {SERVER_START_S} s:\n{log_path.read_text()[-3000:]}")
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _zip(path: Path) -> Path:
    """cats/, dogs/ and fish/ with 5, 4 and 3 small pictures."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for (cls, rgb), n in zip(COLOURS.items(), (5, 4, 3)):
            for i in range(n):
                im = Image.new("RGB", (48, 48), (240, 240, 235 - 3 * i))
                ImageDraw.Draw(im).ellipse([4 + i, 6, 34 + i, 36], fill=rgb)
                png = io.BytesIO()
                im.save(png, "PNG")
                zf.writestr(f"pets/{cls}/{cls}{i}.png", png.getvalue())
    path.write_bytes(buf.getvalue())
    return path


def test_upload_shows_the_report_and_the_closed_session_is_cleaned_up(server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    upload = _zip(tmp_path / "pets.zip")
    expect.set_options(timeout=60_000)  # two busy shared cores: pages can take a while
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(server.url)
            page.locator('[data-testid="stSidebarNavLink"]').filter(has_text="Your own images").click()
            expect(page.get_by_role("heading", name="Your own images")).to_be_visible()

            page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(upload))
            report = page.get_by_text("12 images in 3 classes (cats 5, dogs 4, fish 3), ready to train")
            expect(report).to_be_visible()
            chart = page.locator(".js-plotly-plot").filter(has_text="Usable images per class")
            expect(chart).to_be_visible()
            for label in ("cats", "dogs", "fish"):
                expect(chart.locator(".xtick text", has_text=label)).to_have_count(1)
            expect(page.get_by_text("Takeaway: cats has the most images (5), fish the fewest (3)")).to_be_visible()
            page.screenshot(path=str(tmp_path / "own_data_report.png"), full_page=True)

            folders = [p for p in server.sessions.iterdir()] if server.sessions.exists() else []
            assert len(folders) == 1, folders  # this session's private folder (the zip was unpacked inside it)
            assert not any(folders[0].iterdir())  # and emptied again once the images were in memory
            assert oct(folders[0].stat().st_mode & 0o777) == "0o700"
            page.close()  # the learner closes the tab: the session ends
        finally:
            browser.close()

    deadline = time.monotonic() + CLEANUP_S
    while folders[0].exists():
        assert time.monotonic() < deadline, f"{folders[0]} was not removed {CLEANUP_S} s after the tab closed"
        _alive_for(server, 0.25)
