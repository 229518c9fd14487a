"""Real-browser test: upload a zip on the own-images page, see the validation report (a class folder named like a
Markdown link shows as its characters, never as a link), close the tab, and watch the server's reaper remove the
session's private temp folder.

Starts `streamlit run app.py` (conftest's `serve_app`) with its own TMPDIR (so its session folders are the only ones
there), an empty TORCH_HOME, and a short clean-up grace period, then drives Debian's chromium through Playwright (the
`chromium` fixture; never `playwright install`). Without /usr/bin/chromium the test is skipped, unless
TLP_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

CLEANUP_S = 60  # how long the reaper may take to remove a closed session's folder (grace 1 s, checks every 0.5 s)
EVIL = "[go](javascript:alert(1))"  # a class folder named like a Markdown link
COLOURS = {"cats": (220, 30, 30), "dogs": (30, 60, 220), "fish": (30, 170, 60), EVIL: (200, 200, 30)}


def _zip(path: Path) -> Path:
    """cats/, dogs/, fish/ and [go](javascript:alert(1))/ with 5, 4, 3 and 3 small pictures."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for (cls, rgb), n in zip(COLOURS.items(), (5, 4, 3, 3)):
            for i in range(n):
                im = Image.new("RGB", (48, 48), (240, 240, 235 - 3 * i))
                ImageDraw.Draw(im).ellipse([4 + i, 6, 34 + i, 36], fill=rgb)
                png = io.BytesIO()
                im.save(png, "PNG")
                zf.writestr(f"pets/{cls}/{cls}{i}.png", png.getvalue())
    path.write_bytes(buf.getvalue())
    return path


def test_upload_shows_the_report_and_the_closed_session_is_cleaned_up(chromium: dict[str, Any], serve_app: Callable,
                                                                     tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    upload = _zip(tmp_path / "pets.zip")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(mode=0o700)
    sessions = tmpdir / "tl-playbook"  # where this server keeps its per-session folders
    env = {"TMPDIR": str(tmpdir), "TORCH_HOME": str(tmp_path / "torch"), "TLP_SESSION_GRACE_S": "1",
           "TLP_REAP_EVERY_S": "0.5"}
    expect.set_options(timeout=60_000)  # two busy shared cores: pages can take a while
    with serve_app(env) as server:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(**chromium)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                page.set_default_timeout(60_000)
                page.goto(server)
                page.locator('[data-testid="stSidebarNavLink"]').filter(has_text="Your own images").click()
                expect(page.get_by_role("heading", name="Your own images")).to_be_visible()

                page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(upload))
                expect(page.get_by_text("15 images in 4 classes")).to_be_visible()
                chart = page.locator(".js-plotly-plot").filter(has_text="Usable images per class")
                expect(chart).to_be_visible()
                for label in ("cats", "dogs", "fish", EVIL):
                    expect(chart.locator(".xtick text", has_text=label)).to_have_count(1)
                expect(page.get_by_text("Takeaway: cats has the most images (5)")).to_be_visible()
                shown = page.locator('[data-testid="stMain"] :is([data-testid="stMarkdownContainer"], '
                                     '[data-testid="stCaptionContainer"])')
                texts = [t.replace("\u2060", "") for t in shown.all_inner_texts()]  # the joiners that stop autolinks
                assert f"15 images in 4 classes ({EVIL} 3, cats 5, dogs 4 and fish 3), ready to train." in texts
                assert f"Takeaway: cats has the most images (5), {EVIL} the fewest (3): 1.7x apart, close enough to " \
                       f"balanced." in texts
                assert page.locator('[data-testid="stMain"] a[href*="javascript"]').count() == 0
                # no name of the learner's became a link (only the headings' own "#" anchors are links)
                assert shown.locator('a:not([href^="#"])').count() == 0
                page.screenshot(path=str(tmp_path / "own_data_report.png"), full_page=True)

                folders = [p for p in sessions.iterdir()] if sessions.exists() else []
                assert len(folders) == 1, folders  # this session's private folder (the zip was unpacked inside it)
                assert not any(folders[0].iterdir())  # and emptied again once the images were in memory
                assert oct(folders[0].stat().st_mode & 0o777) == "0o700"
                page.close()  # the learner closes the tab: the session ends
            finally:
                browser.close()

        deadline = time.monotonic() + CLEANUP_S
        while folders[0].exists():
            assert time.monotonic() < deadline, f"{folders[0]} was not removed {CLEANUP_S} s after the tab closed"
            server.alive_for(0.25)
