"""The job manager: a concurrency limit, a fair queue with positions, cancel, Start twice being harmless, and shared
runs (attach, detach, the last detach cancelling, the bounded result cache, keyless runs never shared)."""

from __future__ import annotations

import threading

import pytest

from tl_core.jobs.manager import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobManager, ResultCache, approx_nbytes


def _blocking(gate: threading.Event, started: list, name: str):
    def fn(ctx):
        started.append(name)
        while not gate.wait(0.01):
            if ctx.cancel.is_set():
                return "stopped"
        ctx.emit(name)
        return name
    return fn


def test_limit_fair_queue_positions_and_cancel():
    mgr = JobManager(limit=1)
    gate, started = threading.Event(), []
    a = mgr.submit(_blocking(gate, started, "a"), owner="s1")
    b = mgr.submit(_blocking(gate, started, "b"), owner="s1b")
    c = mgr.submit(_blocking(gate, started, "c"), owner="s2")
    d = mgr.submit(_blocking(gate, started, "d"), owner="s3")
    assert a.state == RUNNING and mgr.stats() == {"running": 1, "queued": 3, "limit": 1}
    assert [mgr.position(j) for j in (a, b, c, d)] == [0, 0, 1, 2]
    assert mgr.cancel(c.id) and c.state == CANCELLED
    assert mgr.cancel(c.id) is False  # cancelling twice is harmless
    assert mgr.position(d) == 1
    gate.set()
    assert mgr.wait_idle(10)
    assert started == ["a", "b", "d"] and [a.state, b.state, d.state] == [DONE, DONE, DONE]
    assert a.buffer.snapshot() == ["a"] and d.result == "d"


def test_one_student_cannot_jump_the_queue():
    mgr = JobManager(limit=1)
    gate, started = threading.Event(), []
    first = mgr.submit(_blocking(gate, started, "x1"), owner="x")
    mgr.submit(_blocking(gate, started, "y1"), owner="y")
    assert mgr.submit(_blocking(gate, started, "x2"), owner="x") is first  # Start twice: the same job
    gate.set()
    mgr.wait_idle(10)
    again = mgr.submit(_blocking(gate, started, "x3"), owner="x")
    again.wait(10)
    assert started == ["x1", "y1", "x3"]


def test_cancel_a_running_job_and_owner_cleanup():
    mgr = JobManager(limit=2)
    gate, started = threading.Event(), []
    j = mgr.submit(_blocking(gate, started, "a"), owner="gone")
    k = mgr.submit(_blocking(gate, started, "b"), owner="gone2")
    while len(started) < 2:
        threading.Event().wait(0.01)
    assert mgr.cancel_owner("gone") == 1
    assert j.wait(10) and j.state == CANCELLED and j.result == "stopped"
    assert k.state == RUNNING
    gate.set()
    assert k.wait(10) and k.state == DONE
    mgr.forget("gone")
    assert mgr.jobs_of("gone") == [] and mgr.get(j.id) is None


def test_a_failing_job_reports_its_message():
    mgr = JobManager(limit=1)

    def boom(ctx):
        raise ValueError("Batch size 64 is larger than the 40 training images; use at most 40.")

    job = mgr.submit(boom, owner="s")
    job.wait(10)
    assert job.state == FAILED and job.error.startswith("Batch size 64")
    with pytest.raises(ValueError, match="at least 1"):
        JobManager(limit=0)


def test_running_jobs_split_the_cores():
    import torch

    mgr = JobManager(limit=2)
    mgr.cores, mgr.thread_cap = 4, 4
    gate, both_done, seen = threading.Event(), threading.Barrier(2, timeout=10), []

    def fn(ctx):
        ctx.emit("start")
        seen.append(torch.get_num_threads())  # this thread's own intra-op thread count
        gate.wait(10)
        ctx.emit("again")  # the first job learns that it now shares the machine
        seen.append(torch.get_num_threads())
        both_done.wait()

    a = mgr.submit(fn, owner="a")
    while len(seen) < 1:
        threading.Event().wait(0.01)
    assert seen == [4]  # alone: every core
    b = mgr.submit(fn, owner="b")
    while len(seen) < 2:
        threading.Event().wait(0.01)
    assert seen[1] == 2  # two running jobs: half each
    gate.set()
    assert a.wait(10) and b.wait(10)
    assert seen[2:] == [2, 2]


def test_thread_cap_comes_from_the_environment(monkeypatch):
    from tl_core.jobs.manager import default_thread_cap

    monkeypatch.setenv("TLP_TORCH_THREADS", "3")
    assert default_thread_cap() == 3 and JobManager(limit=1).thread_share() == min(3, JobManager(limit=1).cores)
    monkeypatch.setenv("TLP_TORCH_THREADS", "zero")
    assert default_thread_cap() >= 1
    mgr = JobManager(limit=4)
    mgr.cores, mgr.thread_cap = 8, 2
    assert mgr.thread_share() == 2  # alone on 8 cores, but capped


# ---- shared runs ------------------------------------------------------------------------------------------------
class Keyed:
    """A job function with a share key (as tl_core.jobs.work's jobs have), blocking until its gate opens."""

    def __init__(self, key: str | None, gate: threading.Event, started: list, result: object = "done") -> None:
        self.key, self.gate, self.started, self.result = key, gate, started, result

    def share_key(self) -> str | None:
        return self.key

    def __call__(self, ctx):
        self.started.append(self.key)
        ctx.emit(("lane", self.key))
        while not self.gate.wait(0.01):
            if ctx.cancel.is_set():
                return "stopped"
        return self.result


def test_an_identical_run_attaches_to_the_one_going_and_shares_its_stream_and_result():
    mgr = JobManager(limit=2)
    gate, started = threading.Event(), []
    first = mgr.submit(Keyed("race-A", gate, started), owner="s1")
    second = mgr.submit(Keyed("race-A", gate, started), owner="s2")  # the same race: attached, not queued
    other = mgr.submit(Keyed("race-B", gate, started), owner="s3")
    assert second is first and other is not first
    assert mgr.sharers(first) == 2 and mgr.stats()["queued"] == 0
    assert first in mgr.jobs_of("s2")  # s2 watches it: its "busy" check and Start twice see it
    assert mgr.submit(Keyed("race-C", gate, started), owner="s2") is first  # one thing at a time
    gate.set()
    assert first.wait(10) and first.state == DONE
    assert started.count("race-A") == 1 and mgr.counters()["computed"] == 2  # A ran once for both students
    assert first.buffer.snapshot() == [("lane", "race-A")]


def test_stop_detaches_one_student_and_the_last_one_cancels():
    mgr = JobManager(limit=1)
    gate, started = threading.Event(), []
    job = mgr.submit(Keyed("k", gate, started), owner="a")
    for s in ("b", "c"):
        mgr.submit(Keyed("k", gate, started), owner=s)
    assert mgr.detach(job.id, "a") == 2  # the submitter leaves: the run goes on for the others
    assert not job.cancel_event.is_set() and job.state == RUNNING and "a" not in job.attached
    assert mgr.cancel_owner("b") == 0  # a student's tab closed: detached, nothing cancelled
    assert job.state == RUNNING and job.attached == {"c"}
    assert mgr.detach(job.id, "c") == 0  # the last one leaves: cancelled
    assert job.wait(10) and job.state == CANCELLED and job.result == "stopped"
    late = mgr.submit(Keyed("k", gate, started), owner="d")  # a stopped run is never attached to
    assert late is not job and mgr.detach(late.id, "d") == 0


def test_a_queued_shared_run_is_cancelled_only_when_everyone_left():
    mgr = JobManager(limit=1)
    gate, started = threading.Event(), []
    blocker = mgr.submit(Keyed(None, gate, started), owner="x")
    queued = mgr.submit(Keyed("q", gate, started), owner="a")
    mgr.submit(Keyed("q", gate, started), owner="b")
    assert queued.state == QUEUED and mgr.detach(queued.id, "a") == 1 and queued.state == QUEUED
    assert mgr.detach(queued.id, "b") == 0 and queued.state == CANCELLED and mgr.stats()["queued"] == 0
    gate.set()
    assert blocker.wait(10)


def test_a_finished_result_is_cached_for_late_students_and_the_cache_is_bounded():
    mgr = JobManager(limit=1, cache=ResultCache(max_entries=2, max_bytes=10_000))
    gate, started = threading.Event(), []
    gate.set()
    done = {}
    for key in ("r1", "r2"):
        done[key] = mgr.submit(Keyed(key, gate, started, result=[0] * 10), owner=f"s-{key}")
        assert done[key].wait(10)
    mgr.release("s-r1")  # its student started something else: the result stays in the cache
    late = mgr.submit(Keyed("r1", gate, started), owner="late")
    assert late is done["r1"] and late.state == DONE and late.result == [0] * 10  # instant: nothing ran again
    assert started == ["r1", "r2"] and mgr.get(late.id) is late
    third = mgr.submit(Keyed("r3", gate, started, result=[0] * 10), owner="s3")
    assert third.wait(10)
    assert len(mgr.cache) == 2 and mgr.cache.get("r2") is None  # r2 was the least recently used
    huge = mgr.submit(Keyed("big", gate, started, result=bytes(20_000)), owner="s4")
    assert huge.wait(10) and mgr.cache.get("big") is None  # larger than the byte budget: not kept
    assert mgr.cache.bytes <= 10_000
    mgr.forget("s-r2")
    assert mgr.submit(Keyed("r2", gate, started), owner="s5").wait(10) and started.count("r2") == 2


def test_approx_nbytes_counts_tensor_and_array_data():
    import numpy as np
    import torch

    assert approx_nbytes({"w": torch.zeros(1000)}) >= 4000
    assert approx_nbytes([np.zeros(500)]) >= 4000
    assert approx_nbytes("x") < 100


def test_a_run_without_a_key_is_never_shared():
    mgr = JobManager(limit=2)
    gate, started = threading.Event(), []
    a = mgr.submit(Keyed(None, gate, started), owner="a")
    b = mgr.submit(Keyed(None, gate, started), owner="b")
    assert a is not b and mgr.sharers(a) == mgr.sharers(b) == 1
    gate.set()
    assert a.wait(10) and b.wait(10) and started == [None, None] and len(mgr.cache) == 0


def test_a_reload_is_the_same_student_in_a_new_tab():
    mgr = JobManager(limit=1)
    gate, started = threading.Event(), []
    job = mgr.submit(Keyed("k", gate, started), owner="tab1")
    mgr.submit(Keyed("k", gate, started), owner="classmate")
    assert mgr.attach(job.id, "tab2", replacing="tab1") is job  # tab1 reloaded as tab2
    assert mgr.sharers(job) == 2 and mgr.student_of("tab2") == "tab1"
    assert mgr.cancel_owner("tab1") == 0 and mgr.sharers(job) == 2  # the old tab ended: the student lives on in tab2
    mgr.forget("tab1")
    assert job in mgr.jobs_of("tab2") and mgr.sharers(job) == 2
    assert mgr.detach(job.id, "tab2") == 1 and job.state == RUNNING  # the student's Stop: the classmate keeps it
    assert mgr.detach(job.id, "classmate") == 0 and job.wait(10) and job.state == CANCELLED
    solo = mgr.submit(Keyed("s", gate, started), owner="t1")
    mgr.attach(solo.id, "t2", replacing="t1")
    assert mgr.detach(solo.id, "t1") == 0 and solo.wait(10) and solo.state == CANCELLED  # either tab's Stop stops it


def test_queued_pages_redraw_less_often_the_further_back_they_wait(monkeypatch: pytest.MonkeyPatch):
    from ui import live

    mgr = JobManager(limit=1)
    monkeypatch.setattr(live, "get_manager", lambda: mgr)
    gate, started = threading.Event(), []
    jobs = [mgr.submit(_blocking(gate, started, f"j{i}"), owner=f"s{i}") for i in range(30)]
    try:
        every = [live.redraw_every(j) for j in jobs]
        assert every[0] == live.LIVE_EVERY_S  # running, alone
        assert every[1] == every[2] == live.QUEUED_EVERY_S  # next in line (0 ahead) and 1 ahead: every step
        assert every[5] == 4 * live.QUEUED_EVERY_S_PER_RUN_AHEAD  # 4 runs ahead of it
        assert every[-1] == live.QUEUED_MAX_EVERY_S  # 28 ahead: rarely, but it does redraw
        assert every[1:] == sorted(every[1:])
        assert sum(1 / e for e in every[1:]) < 3.0  # 29 waiting pages: under 3 redraws a second in all
        assert live.redraw_every(None) is None
    finally:
        gate.set()
        mgr.wait_idle(10)
    assert live.redraw_every(jobs[-1]) is None  # done: no more redraws
