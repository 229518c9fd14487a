"""Shared pytest fixtures: `app`, an AppTest of the whole app (router, sidebar, pages) in steady navigation mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


# Why the shim: AppTest resets PagesManager.uses_pages_directory before every run, and because this app keeps
# its pages in a folder called pages/, it then runs the legacy pages/-directory mode: a switched-to page runs
# WITHOUT app.py (no init_state, no sidebar). A real server leaves that mode for good once any session has run
# app.py's st.navigation. The shim puts AppTest in that steady state, so the tests exercise the real router.
class _NavigationPagesManager(PagesManager):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture()
def app(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The app after its first run (the default page), with a 60 s timeout per run."""
    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationPagesManager)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
