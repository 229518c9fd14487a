"""Real-browser test: the decision pages can be read at 1366×768 without zooming (issue 16, items 11, 12 and 16).

Serves the app (conftest's `serve_app`) and opens it in Debian's chromium (conftest's `chromium`; never
`playwright install`). It measures what the browser really draws:
- the matrix's decision tree: every SVG text's rendered size (its computed font size times the drawing's scale on
  screen), at least MIN_PX; the Pan & Yang table inside the page's width;
- the quadrant chart, at 1366 and 1500 px: every text at least MIN_PX; the title inside the chart; the axis titles
  clear of their tick labels; each cell's text inside its cell; the star clear of every cell's text;
- the welcome page's diagram: traditional ML above transfer learning, their columns aligned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MIN_PX = 11.0  # smallest readable text, in CSS px
VIEWPORT = {"width": 1366, "height": 768}

# Rendered size of every non-empty SVG text under `root`: computed font size times the on-screen scale of its SVG.
_TEXT_SIZES_JS = """(root) => Array.from(root.querySelectorAll('svg text')).filter(t => t.textContent.trim()).map(t => {
    const m = t.getScreenCTM();
    return [t.textContent.trim(), parseFloat(getComputedStyle(t).fontSize) * (m ? Math.hypot(m.a, m.b) : 1)];
})"""

_BOX_JS = "(el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"


def _boxes(locator) -> list[tuple[float, float, float, float]]:
    return [tuple(locator.nth(i).evaluate(_BOX_JS)) for i in range(locator.count())]


def _overlap(a: tuple, b: tuple, slack: float = 0.5) -> bool:
    return a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack


def _inside(inner: tuple, outer: tuple, slack: float = 1.0) -> bool:
    return (inner[0] >= outer[0] - slack and inner[1] >= outer[1] - slack and inner[2] <= outer[2] + slack
            and inner[3] <= outer[3] + slack)


def _small(sizes: list[list[Any]]) -> list[list[Any]]:
    return [s for s in sizes if s[1] < MIN_PX]


def _open(page, url: str, heading: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_role("heading", name=heading).first).to_be_visible()  # app.py may show it early too


def _check_quadrant_chart(page) -> None:
    from playwright.sync_api import expect

    chart = page.locator(".js-plotly-plot").filter(has_text="Your problem on the course's size-vs-similarity grid")
    expect(chart.locator(".scatterlayer .point").first).to_be_attached(timeout=60_000)
    chart.first.scroll_into_view_if_needed()
    sizes = chart.first.evaluate(_TEXT_SIZES_JS)
    assert len(sizes) >= 19 and not _small(sizes), _small(sizes)  # 12 ticks, 3 titles, 4 cells
    outer = chart.first.evaluate(_BOX_JS)
    title = _boxes(chart.locator(".gtitle"))[0]
    assert _inside(title, outer), (title, outer)  # the title was cut off at 1500 px
    for axis in ("x", "y"):
        name = _boxes(chart.locator(f".{axis}title"))[0]
        assert _inside(name, outer), (axis, name, outer)  # axis titles were clipped
        ticks = _boxes(chart.locator(f".{axis}tick text"))
        assert ticks and not [t for t in ticks if _overlap(name, t)], axis  # and overlapped the tick labels
    cells = _boxes(chart.locator(".shapelayer path"))  # the four cells (plotly draws them under the subplot)
    texts = _boxes(chart.locator(".annotation-text-g"))
    assert len(cells) == 4 and len(texts) == 4
    for text in texts:
        assert any(_inside(text, cell) for cell in cells), text  # cell text ran across the cell borders
    star = _boxes(chart.locator(".scatterlayer .point"))[0]
    assert not [t for t in texts if _overlap(star, t)]  # the star covered "similar"


def test_decision_pages_are_readable_at_1366(chromium: dict[str, Any], serve_app: Callable) -> None:
    from playwright.sync_api import expect, sync_playwright

    with serve_app() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(**chromium)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(60_000)

            # The matrix: the decision tree and Pan & Yang's table.
            _open(page, f"{server}/matrix", "Domain & task matrix")
            tree = page.locator('[data-testid="stGraphVizChart"]').first
            expect(tree.locator("svg text").first).to_be_attached(timeout=60_000)
            tree.scroll_into_view_if_needed()
            sizes = tree.evaluate(_TEXT_SIZES_JS)
            assert len(sizes) > 30 and not _small(sizes), _small(sizes)  # was about 5.8 px in a 553 px column
            main = page.locator('[data-testid="stMainBlockContainer"]').evaluate(_BOX_JS)
            table = page.locator('[data-testid="stMarkdownContainer"] table').filter(has_text="Learning strategy").first
            table.scroll_into_view_if_needed()
            assert _inside(table.evaluate(_BOX_JS), main)  # its last columns were off-screen
            assert table.evaluate("(el) => el.scrollWidth <= el.clientWidth + 1")  # nothing to scroll sideways
            cells = _boxes(table.locator("td, th"))
            assert cells and all(c[2] <= main[2] + 1 for c in cells)

            # The quadrant chart, at 1366 px and at the 1500 px where the issue was seen.
            _open(page, f"{server}/quadrant", "Size vs similarity")
            _check_quadrant_chart(page)
            page.set_viewport_size({"width": 1500, "height": 900})
            page.wait_for_timeout(1000)  # plotly redraws on resize
            _check_quadrant_chart(page)
            page.set_viewport_size(VIEWPORT)

            # The welcome page's diagram: in the heading's order, columns aligned.
            _open(page, server, "What is transfer learning")
            diagram = page.locator('[data-testid="stGraphVizChart"]').first
            expect(diagram.locator("svg text").first).to_be_attached(timeout=60_000)
            labels = {t: diagram.locator("svg text", has_text=t) for t in ("Traditional ML", "Transfer learning",
                                                                            "Dataset 1")}
            trad, transfer = _boxes(labels["Traditional ML"])[0], _boxes(labels["Transfer learning"])[0]
            assert trad[1] < transfer[1]  # traditional first, as in the heading
            upper, lower = sorted(_boxes(labels["Dataset 1"]), key=lambda box: box[1])
            assert abs(upper[0] - lower[0]) < 2  # traditional's and transfer's datasets in one column
            assert trad[3] < upper[1] < transfer[1] < lower[1]  # each under its own panel's title
            sizes = diagram.evaluate(_TEXT_SIZES_JS)
            assert not _small(sizes), _small(sizes)
        finally:
            browser.close()
