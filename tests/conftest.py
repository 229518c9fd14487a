"""Shared pytest fixtures: `app` (an AppTest of the whole app in steady navigation mode), `new_session` (another
one, as a second browser tab or a reload) with helpers to drive them (`go`, `finish_job`, `plotly_charts`,
`train_form`), and for real-browser tests `chromium` (launch arguments, or a skip) and `serve_app` (a
`streamlit run app.py` on a free port)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit.testing.v1.app_test as app_test_module
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

# One of two pytest-xdist workers on two cores (pytest.ini): one compute thread each, in this process and in the
# scripts and servers it starts; else four spinning OpenMP threads share two cores and every run takes 3-7x as long.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium; never `playwright install`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 90  # a cold streamlit start on two busy cores


# Why the shim: AppTest resets PagesManager.uses_pages_directory before every run, and because this app keeps
# its pages in a folder called pages/, it then runs the legacy pages/-directory mode: a switched-to page runs
# WITHOUT app.py (no init_state, no sidebar). A real server leaves that mode for good once any session has run
# app.py's st.navigation. The shim puts AppTest in that steady state, so the tests exercise the real router.
class _NavigationPagesManager(PagesManager):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


def _session(query: dict[str, str] | None = None) -> AppTest:
    """A new browser session (its URL's query parameters in `query`) after its first run."""
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture()
def steady_navigation(monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest runs the app as a warm server does (see _NavigationPagesManager)."""
    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationPagesManager)


@pytest.fixture()
def app(steady_navigation: None) -> AppTest:
    """The app after its first run (the default page), with a 60 s timeout per run."""
    return _session()


@pytest.fixture()
def new_session(steady_navigation: None) -> Callable[..., AppTest]:
    """new_session(query=None): a browser session of the app (a second tab, or a reload with the URL's query
    parameters as a dict), after its first run."""
    return _session


# ---- driving an AppTest ---------------------------------------------------------------------------------------
def _go(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _finish_job(at: AppTest, slot: str, timeout: float = 120.0) -> Any:
    """Wait for a ui.live slot's job to end, then re-run the page until it has picked the outcome up."""
    from tl_core.jobs.manager import get_manager

    job = get_manager().get(at.session_state[f"{slot}.job"])
    assert job is not None and job.wait(timeout), f"the {slot} job did not end in {timeout} s"
    deadline = time.monotonic() + 60
    while at.session_state[f"{slot}.done"] != job.id:
        assert time.monotonic() < deadline, "the page never picked up the finished job"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    return job


def _plotly_charts(at: AppTest) -> dict[str, dict]:
    """The plotly figures on the page (as JSON dicts), by title."""
    out = {}
    for el in at.get("plotly_chart"):
        fig = json.loads(el.proto.spec)
        out[fig["layout"]["title"]["text"]] = fig
    return out


def _train_form(at: AppTest, **values: Any) -> AppTest:
    """Set Train-page widgets by their key suffix (train.<name>) in the order given, running after each; the
    image count first, as changing it re-checks the plan."""
    for name, value in values.items():
        widget = at.slider(key=f"train.{name}") if name in ("n_per_class", "similarity") else None
        if widget is None:
            kind = {"strategy": at.selectbox, "arch": at.selectbox, "bn_policy": at.radio}.get(name, at.number_input)
            widget = kind(key=f"train.{name}")
        widget.set_value(value).run()
        assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture()
def train_form() -> Callable[..., AppTest]:
    """train_form(at, n_per_class=5, epochs=2, ...): set Train-page widgets by name, in order, running after each."""
    return _train_form


@pytest.fixture()
def go() -> Callable[[AppTest, str], AppTest]:
    """go(at, "pages/x.py"): switch page, run, and assert that nothing raised."""
    return _go


@pytest.fixture()
def finish_job() -> Callable[..., Any]:
    """finish_job(at, slot, timeout=120): wait for the slot's background job, re-run until the page shows it."""
    return _finish_job


@pytest.fixture()
def plotly_charts() -> Callable[[AppTest], dict[str, dict]]:
    """plotly_charts(at): the page's plotly figures as JSON dicts, keyed by title."""
    return _plotly_charts


@pytest.fixture()
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The data of every download button drawn, by widget key."""
    seen: dict[str, str] = {}
    original = DeltaGenerator.download_button

    def spy(self: DeltaGenerator, label: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        seen[kwargs.get("key")] = data() if callable(data) else data
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    return seen


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module of tiny batches: faster than two, and immune to a busy neighbour's spinning
    threads on a shared two-core machine. Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- real-browser tests -------------------------------------------------------------------------------------
@pytest.fixture()
def chromium() -> dict[str, Any]:
    """Keyword arguments for playwright's chromium.launch. Skips without /usr/bin/chromium, or fails if
    TLP_REQUIRE_BROWSER=1 (as in CI)."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) for browser tests."
        if os.environ.get("TLP_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return dict(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Served(str):
    """The served app's URL (use it as a str), with its server process for tests that watch the server itself."""

    proc: subprocess.Popen  # the `streamlit run` process
    log: Path  # its output

    def alive_for(self, seconds: float) -> None:
        """Wait up to `seconds` on the server process (a poll's pace, without sleeping); fail if it exits."""
        try:
            code = self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return
        pytest.fail(f"streamlit exited with {code}:\n{self.log.read_text()[-3000:]}")


@contextlib.contextmanager
def _serve(log_path: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    """`streamlit run app.py` on a free port (extra environment variables in env); yields its URL (a Served)."""
    port = _free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    served = Served(f"http://127.0.0.1:{port}")
    served.proc, served.log = proc, log_path
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _port_open(port):
            served.alive_for(0.5)  # the process must not have died
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not open port {port} in {SERVER_START_S} s:\n"
                            f"{log_path.read_text()[-3000:]}")
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture()
def serve_app(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[Served]]:
    """serve_app(env=None): a context manager that runs the app in a real streamlit server and yields its URL (a
    str, with `.proc` and `.alive_for(seconds)`; the server's output goes to tmp_path/streamlit.log)."""
    return lambda env=None: _serve(tmp_path / "streamlit.log", env)


# Files whose tests start servers, browsers or a Ray instance: under pytest-xdist (pytest.ini: two workers, one per
# core) they run one after another on one worker, so that two of them never share the machine's two cores; the
# library and AppTest tests fill the other worker meanwhile.
SERVER_FILES = {"test_browser.py", "test_browser_quiz.py", "test_browser_readable.py", "test_browser_upload.py",
                "test_ray.py", "test_replicas.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SERVER_FILES:
            item.add_marker(pytest.mark.xdist_group("servers"))
