"""Classroom load test: a class opens the instructor's link on one server and everyone starts the race within seconds.

Part 1, in this process: N simulated students (default 30), each a whole-app AppTest (its own session, its own owner in
the job manager) driven from its own thread: open the class link (`?preset=few_similar&seed=S`), go to the race,
predict, press Start at a random moment within START_WINDOW_S, then redraw like the browser's live fragment does (at
the page's own interval, ui.live.redraw_every: every 0.5 s while running, 2 s next in the queue and 2 s more per run
ahead, slower when many sessions redraw at once) until the results are drawn. Two scenarios: `class_link`, where
everyone has the same link and seed (identical races, which the job manager shares: one computation), and `distinct`,
where every student has their own seed (nothing can be shared: the fair queue serves them in turn). Seeds are fresh for
every scenario, so no result comes from an earlier one. All races go through the one process-wide job manager
(tl_core.jobs.manager.get_manager), exactly as on a server. AppTest's run() swaps process-wide globals (streamlit's
Runtime instance, config.get_option, PagesManager's mode), so two runs at once crash ("Runtime hasn't been created!"):
the students' page runs take turns through one lock, while their races train concurrently on the manager's worker
threads. (On a real server the scripts share one interpreter lock anyway.)

Part 2, a real server (skipped without Debian's chromium): `streamlit run app.py` as a subprocess; idle browser tabs
on the welcome page measure the server's memory per session; then the class poll: an instructor's Chromium opens a
class, asks the class about a preset's race, and at least 3 Chromium students open the class link and predict
different lanes; the instructor's page must show exactly their tally, then (once the students have raced) the reveal.

Run `python bench/classroom.py [--students 30] [--window 10] [--idle 12] [--browsers 3] [--no-browsers]`; each figure
prints as a JSON line. `bench/bench_classroom.py` runs a reduced version for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import streamlit.testing.v1.app_test as app_test_module  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from conftest import APP, CHROMIUM, CHROMIUM_ARGS, _NavigationPagesManager, _serve  # noqa: E402
from tl_core.jobs.manager import get_manager  # noqa: E402
from ui.live import LIVE_EVERY_S, redraw_every  # noqa: E402

RACE = "pages/race.py"
PRESET = "few_similar"  # the class link's preset (four lanes, about 2 s alone on two cores)
PREDICTION = "finetune_top"  # every student's pick (any lane would do)
LINK_SEED = 77  # the class_link scenario's seed; the solo races and the distinct scenario use others (fresh results)
START_WINDOW_S = 10.0  # students press Start at uniformly random moments within this many seconds
RUN_TIMEOUT_S = 120  # one AppTest page run
RACE_TIMEOUT_S = 600  # one student's whole race, queue included
_LOCK = threading.Lock()  # one AppTest run at a time (see the module docstring)


def _figure(name: str, value: float, unit: str, **extra) -> dict:
    return {"figure": name, "value": round(value, 4), "unit": unit, **extra}


def _rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc; this measurement needs Linux")


# ---- part 1: simulated students in this process ---------------------------------------------------------------
@dataclass
class Student:
    """One simulated student's race, as the job manager and the page saw it."""

    index: int
    owner: str | None = None  # its session id: the owner of its job in the shared manager
    error: str | None = None  # what went wrong, if anything
    wait_s: float | None = None  # queue wait: Start pressed (job submitted) -> the job started running
    exec_s: float | None = None  # the race's own execution time: job started running -> job ended
    click_to_results_s: float | None = None  # Start pressed -> the page has drawn the results
    reruns: int = 0  # page runs while the race was queued or running (the fragment's redraws)
    rerun_ms: list[float] = field(default_factory=list)  # duration of each of those page runs
    lock_wait_ms: list[float] = field(default_factory=list)  # time each of them waited for its turn
    job_id: int | None = None  # the job it watched (shared runs: the same for every identical race)


def _step(st: Student, fn: Callable[[], AppTest]) -> AppTest:
    """Run an AppTest action under the lock, timing it; raise if the page raised."""
    t = time.perf_counter()
    with _LOCK:
        got = time.perf_counter()
        at = fn()
    st.lock_wait_ms.append(1000 * (got - t))
    st.rerun_ms.append(1000 * (time.perf_counter() - got))
    if at.exception:
        raise RuntimeError(f"the page raised: {at.exception[0].value}")
    return at


def _student(st: Student, ready: threading.Barrier, go: threading.Event, go_at: Callable[[], float],
             seed: int) -> None:
    """Open the class link and predict; once everyone is ready and `go` is set, press Start at go_at() (monotonic),
    redraw as the fragment does, and check the results."""
    try:
        at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
        at.query_params["preset"], at.query_params["seed"] = PRESET, str(seed)
        _step(st, at.run)
        _step(st, lambda: at.switch_page(RACE).run())
        _step(st, lambda: at.radio(key="race.prediction").set_value(PREDICTION).run())
        st.rerun_ms.clear()
        st.lock_wait_ms.clear()
        ready.wait()
        go.wait()
        time.sleep(max(0.0, go_at() - time.monotonic()))
        t_click = time.monotonic()
        _step(st, lambda: at.button(key="race.start").click().run())
        job = get_manager().get(at.session_state["race.job"])
        if job is None:
            raise RuntimeError(f"Start queued nothing: {[e.value for e in at.error]}")
        st.owner = job.owner
        st.job_id = job.id
        while at.session_state["race.done"] != job.id:
            if time.monotonic() - t_click > RACE_TIMEOUT_S:
                raise TimeoutError(f"no results {RACE_TIMEOUT_S} s after Start (job {job.state})")
            time.sleep(redraw_every(job) or LIVE_EVERY_S)  # the page's own fragment timer (ui.live)
            _step(st, at.run)
            st.reruns += 1
        st.click_to_results_s = time.monotonic() - t_click
        st.wait_s, st.exec_s = job.started - job.submitted, job.finished - job.started
        outcome = at.session_state["race.result"]
        problems = [e.value for e in at.error]
        if job.state != "done" or not all(r.ok for r in outcome.results.values()) or problems:
            raise RuntimeError(f"job {job.state}, lanes {[r.status for r in outcome.results.values()]}, {problems}")
        if len(at.dataframe) != 1 or len(at.dataframe[0].value) != len(outcome.lanes):
            raise RuntimeError("the results table is missing or incomplete")
    except Exception as e:  # noqa: BLE001 - every failure is counted and reported
        st.error = f"{type(e).__name__}: {e}"
        with contextlib.suppress(threading.BrokenBarrierError):
            ready.abort()


def simulate(n: int, window_s: float = START_WINDOW_S, seed: int = 0,
             race_seed: Callable[[int], int] = lambda i: LINK_SEED) -> tuple[list[Student], dict]:
    """N students race at once (student i on the class link with seed race_seed(i)); returns each one's record and
    what the manager looked like meanwhile."""
    app_test_module.PagesManager = _NavigationPagesManager  # a warm server's navigation (see tests/conftest.py)
    mgr = get_manager()
    rng = random.Random(seed)
    students = [Student(i) for i in range(n)]
    ready = threading.Barrier(n + 1)
    go_at: list[float] = []
    peak = {"running": 0, "queued": 0}
    stop = threading.Event()

    def monitor() -> None:
        while not stop.wait(0.1):
            s = mgr.stats()
            peak["running"], peak["queued"] = max(peak["running"], s["running"]), max(peak["queued"], s["queued"])

    offsets = [rng.uniform(0, window_s) for _ in students]
    go = threading.Event()
    threads = [threading.Thread(target=_student, args=(s, ready, go, lambda o=o: go_at[0] + o, race_seed(s.index)),
                                name=f"student-{s.index}") for s, o in zip(students, offsets)]
    computed = mgr.counters()["computed"]
    watcher = threading.Thread(target=monitor, daemon=True)
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()  # everyone has the race page open with a prediction made
    go_at.append(time.monotonic() + 0.5)
    go.set()
    t0 = time.monotonic()
    watcher.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    owners = {s.owner for s in students if s.owner is not None}
    return students, {**peak, "limit": mgr.limit, "thread_cap": mgr.thread_cap, "wall_s": time.monotonic() - t0,
                      "owners": len(owners), "computations": mgr.counters()["computed"] - computed}


def _solo(repeats: int = 2) -> Student:
    """The class link's race run by one student alone, with a seed nobody else uses: the fastest of `repeats` (after a
    warm-up of the imports, the source model, the data and plotly)."""
    simulate(1, window_s=0, race_seed=lambda i: 900)
    runs = []
    for r in range(repeats):
        (st,), _ = simulate(1, window_s=0, seed=r, race_seed=lambda i, r=r: 901 + r)
        if st.error:
            raise RuntimeError(f"the solo race failed: {st.error}")
        runs.append(st)
    return min(runs, key=lambda st: st.click_to_results_s)


def _common(n: int, window_s: float, seen: dict, scenario: str) -> dict:
    return dict(students=n, start_window_s=window_s, limit=seen["limit"], torch_threads_per_job=seen["thread_cap"],
                scenario=scenario, link=f"?preset={PRESET}&seed=...")


def classroom_figures(n: int, window_s: float = START_WINDOW_S) -> list[dict]:
    """The classroom figures for n simulated students, in both scenarios (see the module docstring)."""
    solo = _solo()
    return _link_figures(n, window_s, solo) + _distinct_figures(n, window_s, solo)


def _link_figures(n: int, window_s: float, solo: Student) -> list[dict]:
    """Everyone on the same class link and seed: one race, shared."""
    students, seen = simulate(n, window_s, race_seed=lambda i: LINK_SEED)
    ok = [s for s in students if s.error is None]
    errors = [f"student {s.index}: {s.error}" for s in students if s.error]
    p, common = f"classroom_{n}_link", _common(n, window_s, seen, "class_link")
    out = [_figure(f"{p}_errors", len(errors), "sessions", goal="0", errors=errors[:5], **common,
                   meaning="sessions whose page raised, whose race failed or lost a lane, or whose results were not "
                           "drawn"),
           _figure(f"{p}_computations", seen["computations"], "races", goal="1", **common,
                   meaning="how many races actually trained for the whole class (identical races are shared)",
                   distinct_jobs=len({s.job_id for s in ok}))]
    if ok:
        clicks = [s.click_to_results_s for s in ok]
        out.insert(0, _figure(f"{p}_max_click_to_results_s", max(clicks), "s", goal=f"<= 3 x solo", **common,
                              meaning="the longest a student waited from pressing Start to seeing the results, "
                                      "against one student racing alone (solo: Start to results, and the race's own "
                                      "execution time)",
                              over_solo=round(max(clicks) / solo.click_to_results_s, 3),
                              over_solo_exec=round(max(clicks) / solo.exec_s, 3),
                              solo_click_to_results_s=round(solo.click_to_results_s, 2),
                              solo_exec_s=round(solo.exec_s, 2), median_s=round(statistics.median(clicks), 2),
                              all_done_after_s=round(seen["wall_s"], 1)))
    return out


def _distinct_figures(n: int, window_s: float, solo: Student) -> list[dict]:
    """Every student with their own seed: nothing can be shared, the fair queue serves them in turn."""
    students, seen = simulate(n, window_s, race_seed=lambda i: 100 + i)
    ok = [s for s in students if s.error is None]
    errors = [f"student {s.index}: {s.error}" for s in students if s.error]
    p, common = f"classroom_{n}_distinct", _common(n, window_s, seen, "distinct")
    out = [_figure(f"{p}_errors", len(errors), "sessions", goal="0", errors=errors[:5], **common,
                   meaning="sessions whose page raised, whose race failed or lost a lane, or whose results were not "
                           "drawn", computations=seen["computations"])]
    if not ok:
        return out
    execs = [s.exec_s for s in ok]
    waits = [s.wait_s for s in ok]
    clicks = [s.click_to_results_s for s in ok]
    reruns = [ms for s in ok for ms in s.rerun_ms]
    locks = [ms for s in ok for ms in s.lock_wait_ms]
    return [
        _figure(f"{p}_max_over_solo", max(execs) / solo.exec_s, "ratio", goal="<= 3", **common,
                meaning="the slowest session's race execution time (from the moment its job started running to "
                        "its end; queue wait excluded) divided by the same race run by one session alone on this "
                        "machine (fastest of 2 solo races)",
                slowest_exec_s=round(max(execs), 2), median_exec_s=round(statistics.median(execs), 2),
                solo_exec_s=round(solo.exec_s, 2), median_over_solo=round(statistics.median(execs) / solo.exec_s, 3)),
        _figure(f"{p}_median_click_to_results_s", statistics.median(clicks), "s", **common,
                meaning="the median student's wait from pressing Start to seeing the results: queue wait, "
                        "execution and the page's pickup", max_s=round(max(clicks), 2),
                all_done_after_s=round(seen["wall_s"], 1)),
        _figure(f"{p}_max_wait_s", max(waits), "s", **common,
                meaning="the longest queue wait: from pressing Start (job submitted) to the job starting to run",
                median_wait_s=round(statistics.median(waits), 2),
                peak_running=seen["running"], peak_queued=seen["queued"]),
        *out,
        _figure(f"{p}_page_run_ms_p95", statistics.quantiles(reruns, n=20)[-1] if len(reruns) > 1 else reruns[0],
                "ms", **common, meaning="95th percentile duration of a live redraw (a whole-page AppTest run) while "
                                        "the races ran", median_ms=round(statistics.median(reruns), 1),
                redraws=len(reruns), lock_wait_p95_ms=round(statistics.quantiles(locks, n=20)[-1], 1)
                if len(locks) > 1 else None),
    ]


def idle_sessions_apptest(n: int = 20) -> dict:
    """RSS growth per idle session: n AppTests opened on the welcome page in this process (client side included)."""
    from ui import warm

    app_test_module.PagesManager = _NavigationPagesManager
    AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()  # warm-up: imports and caches
    warm.wait(120)  # the app's one-time background import of torch and the models (ui.warm) is not a session's cost
    gc.collect()
    before = _rss_mb()
    sessions = []
    for _ in range(n):
        at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S).run()
        assert not at.exception, at.exception
        sessions.append(at)
    gc.collect()
    grown = _rss_mb() - before
    return _figure("idle_session_mb_apptest", grown / n, "MB", goal="<= 50", sessions=n,
                   meaning="resident-memory growth of this process per idle session: whole-app AppTests on the "
                           "welcome page (their client-side element trees included), after a warm-up session")


# ---- part 2: a real server and real browsers -----------------------------------------------------------------
def _settled_rss_mb(pid: int, quiet_s: float = 3.0, limit_s: float = 120.0) -> float:
    """A process's resident memory once it has stopped growing (by under 1 MB over quiet_s seconds)."""
    t0 = time.monotonic()
    last = _rss_mb(pid)
    while time.monotonic() - t0 < limit_s:
        time.sleep(quiet_s)
        now = _rss_mb(pid)
        if now - last < 1.0:
            return now
        last = now
    return last



def real_server(idle_tabs: int = 12, browsers: int = 3) -> list[dict]:
    """Idle browser tabs (server memory per session), then the class poll with `browsers` Chromium students.

    Returns no figures (and a note) when Debian's chromium or playwright is missing.
    """
    if not Path(CHROMIUM).exists():
        return [_figure("classroom_browsers_skipped", 1, "note", why=f"{CHROMIUM} is missing")]
    from playwright.sync_api import expect, sync_playwright

    log = Path(tempfile.gettempdir()) / f"tl-classroom-{time.time_ns()}.log"
    job_log = log.with_suffix(".jobs.jsonl")
    out: list[dict] = []
    with _serve(log, {"TLP_JOB_LOG": str(job_log)}) as url, sync_playwright() as pw:
        pid = url.proc.pid  # conftest's Served: the URL with its server process
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            warm = browser.new_page()
            warm.goto(url)
            expect(warm.get_by_role("heading", name="What is transfer learning")).to_be_visible(timeout=120_000)
            before = _settled_rss_mb(pid)  # after the app's one-time background import of torch (ui.warm)
            tabs = []
            for _ in range(idle_tabs):
                tab = browser.new_page()
                tab.goto(url)
                expect(tab.get_by_role("heading", name="What is transfer learning")).to_be_visible(timeout=120_000)
                tabs.append(tab)
            time.sleep(3)
            grown = _rss_mb(pid) - before
            out.append(_figure("idle_session_mb", grown / idle_tabs, "MB", goal="<= 50", sessions=idle_tabs,
                               meaning="resident-memory growth of a real `streamlit run app.py` server per idle "
                                       "browser tab on the welcome page (one Streamlit session each), after a "
                                       "warm-up tab"))
            for tab in tabs:
                tab.close()
            out += _browsers_poll(pw, url, browsers)
        finally:
            browser.close()
    races = [json.loads(line) for line in job_log.read_text().splitlines()] if job_log.exists() else []
    if races:
        out.append(_figure("classroom_browsers_max_exec_s", max(r["exec_s"] for r in races), "s",
                           meaning="the browsers' races as the server's job log (TLP_JOB_LOG) saw them: execution "
                                   "time from the job starting to run to its end",
                           exec_s=[r["exec_s"] for r in races], wait_s=[r["wait_s"] for r in races]))
    return out


_TALLY_JS = """() => { const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
  const fig = plots.find(p => p.layout && p.layout.title && String(p.layout.title.text).includes("The class's predictions"));
  return fig ? fig.data[0].x : null; }"""


def _browsers_poll(pw: Any, url: str, n: int) -> list[dict]:
    """The class poll in real browsers: an instructor opens a class and asks about a preset's race; n students open the
    class link and predict different lanes; the instructor's page must show exactly their tally; then the students
    start the (shared) race and the instructor's page must reveal the winner with the right count."""
    from playwright.sync_api import expect

    from tl_core.classroom.presets import PRESETS

    lanes = PRESETS[PRESET].lanes
    picks = [lanes[i % len(lanes)] for i in range(n)]
    expected = [sum(p.key == lane.key for p in picks) for lane in lanes]
    errors: list[str] = []
    correct = 0
    browsers = []
    times: list[float] = []
    try:
        teacher_b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        browsers.append(teacher_b)
        teacher = teacher_b.new_page(viewport={"width": 1440, "height": 1000})
        teacher.set_default_timeout(120_000)
        teacher.goto(f"{url}/instructor")
        teacher.get_by_role("button", name="Open a class").click()
        expect(teacher.get_by_text("Students in the class")).to_be_visible()
        code = teacher.locator('[data-testid="stMetricValue"]').filter(has_text=re.compile(r"^[A-Z0-9]{5}$")).first \
            .inner_text().strip()
        teacher.locator('[data-testid="stButton"]').filter(has_text="Ask the class").first.click()
        expect(teacher.get_by_text("Asked:")).to_be_visible()
        link = f"{url}/race?preset={PRESET}&seed=0&class={code}"
        students = []
        for lane in picks:  # one browser each: separate sessions, as on the students' laptops
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            browsers.append(b)
            page = b.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(link)
            expect(page.get_by_text("your vote in the class poll")).to_be_visible()
            prediction = page.locator('[data-testid="stRadio"]').filter(has_text="Before the start")
            prediction.get_by_text(lane.label, exact=True).click()
            expect(page.get_by_role("button", name="Start the race")).to_be_enabled()
            students.append(page)
        deadline = time.monotonic() + 30
        seen = None
        while time.monotonic() < deadline:  # the instructor's panel redraws every couple of seconds
            seen = teacher.evaluate(_TALLY_JS)
            if seen == expected:
                break
            teacher.wait_for_timeout(500)
        tally_ok = seen == expected
        if not tally_ok:
            errors.append(f"the instructor's tally showed {seen}, the students predicted {expected}")
        clicked = []
        for page in students:
            page.get_by_role("button", name="Start the race").click()
            clicked.append(time.monotonic())
        for page, t in zip(students, clicked):
            expect(page.get_by_role("heading", name="Few and similar: what this race showed")).to_be_visible(
                timeout=300_000)
            times.append(time.monotonic() - t)
            if page.locator('[data-testid="stException"]').count():
                errors.append("a student's page shows an exception")
        reveal = teacher.locator('[data-testid="stAlert"]').filter(has_text="predicted it")
        expect(reveal).to_be_visible(timeout=30_000)
        text = reveal.inner_text()
        won = next((lane for lane in lanes if f"{lane.label} won:" in text), None)
        count = expected[lanes.index(won)] if won is not None else None
        reveal_ok = won is not None and f"won: {count} of {n} predicted it" in text
        if not reveal_ok:
            errors.append(f"the reveal said {text!r}")
        correct = int(tally_ok and reveal_ok)
    except Exception as e:  # noqa: BLE001
        errors.append(f"{type(e).__name__}: {str(e)[:300]}")
    finally:
        for b in browsers:
            b.close()
    common = dict(browsers=n, link=f"/race?preset={PRESET}&seed=0&class=<code>")
    out = [_figure("classroom_browsers_poll_correct", correct, "bool", goal="1", **common, expected_tally=expected,
                   meaning="1 when the instructor's page showed exactly the students' tally, then the winner with "
                           "how many of them predicted it"),
           _figure("classroom_browsers_errors", len(errors), "sessions", goal="0", errors=errors, **common)]
    if times:
        out.append(_figure("classroom_browsers_click_to_results_max_s", max(times), "s", **common,
                           meaning="real Chromium students: from clicking Start to the preset's commentary on the "
                                   "page (their identical races share one computation)",
                           each_s=[round(t, 2) for t in times]))
    return out


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--window", type=float, default=START_WINDOW_S, help="seconds within which all press Start")
    ap.add_argument("--idle", type=int, default=12, help="idle browser tabs for the server's memory per session")
    ap.add_argument("--browsers", type=int, default=3, help="Chromium students in the class poll (at least 3)")
    ap.add_argument("--no-browsers", action="store_true")
    args = ap.parse_args(argv)
    records = [idle_sessions_apptest()]  # first, while this process has not yet trained (and freed) anything
    records += classroom_figures(args.students, args.window)
    for rec in records:
        print(json.dumps(rec), flush=True)
    if not args.no_browsers:
        for rec in real_server(args.idle, args.browsers):
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
