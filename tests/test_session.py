"""Tests for ui.session's clean-up after ended sessions: the pure decision, the clean-up itself and the Reaper,
driven with a fake clock and a fake liveness check (no threads, no sleeping)."""

from __future__ import annotations

import threading

from tl_core.jobs.manager import JobManager
from tl_core.data.safe_io import remove_session_dir, session_dir
from ui.session import GRACE_S, Reaper, clean_session, sessions_to_clean


def test_a_session_is_cleaned_only_after_the_grace_period() -> None:
    gone: dict[str, float] = {}
    clean, gone = sessions_to_clean({"a", "b"}, alive={"a"}, claims={}, gone_since=gone, now=100.0, grace=60.0)
    assert clean == [] and gone == {"b": 100.0}
    clean, gone = sessions_to_clean({"a", "b"}, alive={"a"}, claims={}, gone_since=gone, now=159.0, grace=60.0)
    assert clean == [] and gone == {"b": 100.0}  # first seen gone at 100, not reset
    clean, gone = sessions_to_clean({"a", "b"}, alive={"a"}, claims={}, gone_since=gone, now=160.0, grace=60.0)
    assert clean == ["b"] and gone == {}


def test_a_session_that_comes_back_starts_its_grace_period_again() -> None:
    _, gone = sessions_to_clean({"b"}, alive=set(), claims={}, gone_since={}, now=0.0, grace=60.0)
    _, gone = sessions_to_clean({"b"}, alive={"b"}, claims={}, gone_since=gone, now=30.0, grace=60.0)
    assert gone == {}
    clean, gone = sessions_to_clean({"b"}, alive=set(), claims={}, gone_since=gone, now=70.0, grace=60.0)
    assert clean == [] and gone == {"b": 70.0}


def test_a_claimed_session_lives_as_long_as_its_claimer() -> None:
    claims = {"old": {"new"}}
    clean, gone = sessions_to_clean({"old", "new"}, alive={"new"}, claims=claims, gone_since={"old": 0.0},
                                    now=1e6, grace=60.0)
    assert clean == [] and gone == {}
    clean, _ = sessions_to_clean({"old", "new"}, alive=set(), claims=claims, gone_since={"old": 0.0, "new": 0.0},
                                 now=1e6, grace=60.0)
    assert clean == ["new", "old"]


def test_clean_session_removes_the_folder_and_cancels_and_forgets_the_jobs() -> None:
    sid = "test-session-cleanup-1"
    folder = session_dir(sid)
    (folder / "upload.bin").write_bytes(b"x" * 10)
    mgr = JobManager(limit=1)
    release = threading.Event()

    def blocking(ctx) -> str:  # noqa: ANN001
        release.wait(30)
        return "stopped" if ctx.cancel.is_set() else "ran"

    running = mgr.submit(blocking, owner="someone-else", label="other")
    mine = mgr.submit(lambda ctx: "never", owner=sid, label="mine")  # queued behind the other owner's job
    try:
        assert mine.state == "queued"
        cancelled = clean_session(sid, cancel_owner=mgr.cancel_owner, forget=mgr.forget)
        assert cancelled == 1 and mine.state == "cancelled" and mine.done_event.is_set()
        assert not folder.exists()
        assert mgr.jobs_of(sid) == []  # forgotten
        assert running.active and mgr.jobs_of("someone-else") == [running]  # other sessions untouched
        assert clean_session(sid, cancel_owner=mgr.cancel_owner, forget=mgr.forget) == 0  # twice is safe
    finally:
        release.set()
        mgr.wait_idle(30)
        remove_session_dir(sid)


def test_reaper_ticks_with_a_fake_clock_and_cleans_each_session_once() -> None:
    now = [0.0]
    alive = {"a", "b"}
    cleaned: list[str] = []
    reaper = Reaper(is_alive=lambda s: s in alive, clock=lambda: now[0], grace=GRACE_S, clean=cleaned.append)
    for s in ("a", "b"):
        reaper.register(s)
    reaper.claim("a", by="a")  # claiming oneself changes nothing
    assert reaper.tick() == [] and reaper.gone_since == {}
    alive.discard("b")
    assert reaper.tick() == [] and reaper.gone_since == {"b": 0.0}
    now[0] = GRACE_S - 1
    assert reaper.tick() == []
    now[0] = GRACE_S
    assert reaper.tick() == ["b"] and cleaned == ["b"]
    now[0] = 10 * GRACE_S
    assert reaper.tick() == [] and cleaned == ["b"] and reaper.known == {"a"}


def test_reaper_keeps_an_adopted_job_owner_while_the_new_session_lives() -> None:
    now = [0.0]
    alive = {"new"}
    cleaned: list[str] = []
    reaper = Reaper(is_alive=lambda s: s in alive, clock=lambda: now[0], grace=10.0, clean=cleaned.append)
    reaper.register("old")  # the session before a browser reload
    reaper.claim("old", by="new")  # the reloaded page took over its job
    now[0] = 1000.0
    assert reaper.tick() == []
    alive.clear()  # the learner closes the tab
    reaper.tick()
    now[0] = 1010.0
    assert sorted(reaper.tick()) == ["new", "old"] and reaper.claims == {}


def test_run_forever_ticks_until_stopped() -> None:
    ticks: list[str] = []
    cleaned = threading.Event()

    def clean(sid: str) -> None:
        ticks.append(sid)
        cleaned.set()

    reaper = Reaper(is_alive=lambda s: False, grace=0.0, clean=clean)
    reaper.register("gone")
    thread = threading.Thread(target=reaper.run_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        assert cleaned.wait(10), "the reaper thread never ticked"
    finally:
        reaper.stop.set()
        thread.join(10)
    assert ticks == ["gone"] and not thread.is_alive()
