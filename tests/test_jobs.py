"""The job manager: a concurrency limit, a fair queue with positions, cancel, and Start twice being harmless."""

from __future__ import annotations

import threading

import pytest

from tl_core.jobs.manager import CANCELLED, DONE, FAILED, RUNNING, JobManager


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
