"""Learners in real Chromium sessions racing through the balancer of deploy/cluster.py (for tests/test_replicas.py and
bench/replicas.py).

Each learner is a separate browser context (its own cookies, so its own Streamlit session) with its own User-Agent,
which HAProxy's log records next to the replica of every request: that is how a test tells that a session stayed on
one replica from its first request to its result. The race's widgets are found by their keys (Streamlit's
st-key-<key> classes), not by words that other sections of the page may repeat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

RACE_PATH = "/race"
PREDICTION = "Fine-tune only the final layers"  # every learner's pick (any lane would do)
LOAD_MS = 120_000  # a page on a replica busy with other learners' pages, on two shared cores
RESULTS_MS = 420_000  # four default races on a 2-CPU Ray head, two at a time, workers starting cold


@dataclass
class Learner:
    """One browser session and what happened to it."""

    index: int
    context: Any  # playwright BrowserContext
    page: Any  # playwright Page
    started_at: float | None = None  # time.monotonic() when Start was clicked
    click_to_results_s: float | None = None
    error: str | None = None

    @property
    def user_agent(self) -> str:
        return user_agent(self.index)

    def replica(self) -> str | None:
        """The replica named by the balancer's cookie in this browser now."""
        return next((c["value"] for c in self.context.cookies() if c["name"] == "TLP_REPLICA"), None)


def user_agent(i: int) -> str:
    return f"Mozilla/5.0 (X11; Linux x86_64) tlp-learner-{i}"


def open_race(browser: Any, url: str, i: int, path: str = RACE_PATH) -> Learner:
    """A new learner opens the race page (or a class link to it) through the balancer and predicts the winner."""
    from playwright.sync_api import expect

    context = browser.new_context(user_agent=user_agent(i), viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(LOAD_MS)
    page.goto(url + path)
    page.locator(".st-key-race-prediction").get_by_text(PREDICTION, exact=True).click(timeout=LOAD_MS)
    expect(start_button(page)).to_be_enabled(timeout=LOAD_MS)
    return Learner(i, context, page)


def start_button(page: Any) -> Any:
    """The race's own Start button (widget key race.start: Streamlit gives its element the class st-key-race-start),
    not another button of the page with the same words."""
    return page.locator(".st-key-race-start").get_by_role("button", name="Start the race").first  # one; a rerun may
    # briefly show the stale copy beside the new one


def start(learner: Learner) -> None:
    start_button(learner.page).click()
    learner.started_at = time.monotonic()


def wait_results(learner: Learner, timeout_ms: int = RESULTS_MS) -> None:
    """Wait for the race's results on the learner's page; record the time or the error."""
    from playwright.sync_api import expect

    try:
        expect(learner.page.get_by_role("heading", name="Results")).to_be_visible(timeout=timeout_ms)
        learner.click_to_results_s = time.monotonic() - (learner.started_at or time.monotonic())
        if learner.page.locator('[data-testid="stException"]').count():
            learner.error = "the page shows an exception"
    except AssertionError as e:
        learner.error = f"no results: {str(e)[:300]}"


def race_in_browsers(browser: Any, url: str, n: int) -> list[Learner]:
    """n learners open the race, predict, press Start one right after another, and wait for their results."""
    learners = [open_race(browser, url, i) for i in range(n)]
    for learner in learners:
        start(learner)
    for learner in learners:
        wait_results(learner)
    return learners


def sticky_violations(routes: dict[str, list[str]], learners: list[Learner]) -> list[str]:
    """Learners whose requests reached more than one replica, or none (from Cluster.routes())."""
    out = []
    for learner in learners:
        seen = routes.get(learner.user_agent, [])
        if len(set(seen)) != 1:
            out.append(f"learner {learner.index}: replicas {sorted(set(seen)) or 'none'}")
    return out
