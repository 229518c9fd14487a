"""One process-wide job manager: training runs off the UI thread, a concurrency limit, a fair queue and cancel.

Every browser session submits its runs here. At most `limit` jobs run at once (default: the CPU's cores, or 1 on
a GPU); the rest wait in a queue that takes one job per session in turn, so a student who queues twice cannot
push everyone else back. Running jobs split the CPU cores between them (a lone job gets them all), which keeps
PyTorch's thread pools from oversubscribing the machine. A job streams records into its own thread-safe buffer,
which the page redraws from.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tl_core.training.records import RecordBuffer

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINAL_STATES = (DONE, FAILED, CANCELLED)


@dataclass
class JobContext:
    """What a job function gets: where to write records, and the flag that asks it to stop.

    `emit` is called from the job's own thread (the trainer calls it after every step), so it is also where
    the job adopts its current fair share of CPU threads: PyTorch's intra-op thread count is per calling
    thread, and two jobs that each use every core slow each other down many times over.
    """

    buffer: RecordBuffer
    cancel: threading.Event
    threads: Callable[[], int] = lambda: 0  # the current fair share of CPU threads; 0 leaves torch alone
    _applied: int = 0

    def adopt_threads(self) -> None:
        """Set this thread's torch intra-op thread count to the job's fair share, if it changed."""
        n = self.threads()
        if n and n != self._applied:
            import sys

            torch_mod = sys.modules.get("torch")
            if torch_mod is not None:
                torch_mod.set_num_threads(n)
                self._applied = n

    def emit(self, item: Any) -> None:
        self.buffer.append(item)
        self.adopt_threads()


@dataclass
class Job:
    """A unit of work owned by one session."""

    id: int
    owner: str  # the session that submitted it
    label: str  # shown in queue messages
    fn: Callable[[JobContext], Any]
    state: str = QUEUED
    buffer: RecordBuffer = field(default_factory=RecordBuffer)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: str | None = None  # a message for the learner when the job failed
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    done_event: threading.Event = field(default_factory=threading.Event)
    forgotten: bool = False  # its session is gone: drop it from the manager as soon as it ends

    @property
    def finished_ok(self) -> bool:
        return self.state == DONE

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (for scripts and tests; the UI polls instead)."""
        return self.done_event.wait(timeout)


class Executor(Protocol):
    """Where a job's work runs. The manager keeps the queue, the limit and the fairness; an executor only runs one
    job function with its context and returns the result (or raises), streaming records through `ctx.emit` and
    stopping when `ctx.cancel` is set."""

    name: str  # e.g. "in-process" or "ray"

    def run(self, fn: Callable[[JobContext], Any], ctx: JobContext) -> Any: ...


class LocalExecutor:
    """Runs each job in this process, on the manager's worker thread (the default)."""

    name = "in-process"

    def run(self, fn: Callable[[JobContext], Any], ctx: JobContext) -> Any:
        return fn(ctx)


def default_executor() -> Executor:
    """A Ray executor when TLP_RAY_ADDRESS is set (tl_core.jobs.ray_executor), else the in-process one."""
    address = os.environ.get("TLP_RAY_ADDRESS", "").strip()
    if address:
        from tl_core.jobs.ray_executor import shared_executor

        return shared_executor(address)
    return LocalExecutor()


def default_limit() -> int:
    """TLP_MAX_CONCURRENT_JOBS if set; on a Ray cluster (TLP_RAY_ADDRESS), the runs it can train at once (its GPUs,
    else its CPUs per run: tl_core.jobs.ray_executor.RayExecutor.run_slots); else the number of CPU cores, or 1 when
    a CUDA GPU will do the training (it does not share well)."""
    import sys

    env = os.environ.get("TLP_MAX_CONCURRENT_JOBS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    address = os.environ.get("TLP_RAY_ADDRESS", "").strip()
    if address:
        from tl_core.jobs.ray_executor import shared_executor

        return shared_executor(address).run_slots()
    torch_mod = sys.modules.get("torch")
    if torch_mod is not None and torch_mod.cuda.is_available():
        return 1
    return max(1, os.cpu_count() or 1)


def default_thread_cap() -> int:
    """Most torch threads one job may use: TLP_TORCH_THREADS, else half the cores (at least 1).

    Half, because a job shares the machine with the Streamlit server, the learners' browsers on a laptop, and
    other jobs: OpenMP threads that wait for a descheduled sibling can make a 0.3 s run take 20 s.
    """
    env = os.environ.get("TLP_TORCH_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 1) // 2)


class JobManager:
    """Runs jobs on worker threads, at most `limit` at a time, taking queued jobs round-robin by owner."""

    def __init__(self, limit: int | None = None, executor: Executor | None = None) -> None:
        self.executor = executor if executor is not None else default_executor()
        self.limit = limit if limit is not None else default_limit()
        self.cores = max(1, os.cpu_count() or 1)
        self.thread_cap = default_thread_cap()  # at most this many torch threads per job
        if self.limit < 1:
            raise ValueError(f"The concurrency limit must be at least 1; got {self.limit}.")
        self._lock = threading.Condition()
        self._jobs: dict[int, Job] = {}
        self._queue: list[Job] = []  # waiting jobs in submission order
        self._running: set[int] = set()
        self._last_served: dict[str, int] = {}  # owner -> ticket of its last start (for fairness)
        self._tickets = itertools.count()
        self._ids = itertools.count(1)

    # ---- submitting and scheduling ----
    def submit(self, fn: Callable[[JobContext], Any], *, owner: str, label: str = "run") -> Job:
        """Queue a job. If the owner already has an active job, that job is returned instead (Start twice is safe).

        Args:
            fn: Called on a worker thread with a JobContext; its return value becomes `job.result`.
            owner: The session id.
            label: Shown in queue messages.
        """
        with self._lock:
            for job in self._jobs.values():
                if job.owner == owner and job.active:
                    return job
            job = Job(next(self._ids), owner, label, fn)
            self._jobs[job.id] = job
            self._queue.append(job)
            self._dispatch()
            return job

    def _next(self) -> Job | None:
        """The queued job whose owner was served longest ago (never-served owners first, then FIFO)."""
        if not self._queue:
            return None
        return min(self._queue, key=lambda j: (self._last_served.get(j.owner, -1), j.id))

    def _dispatch(self) -> None:  # call with the lock held
        while len(self._running) < self.limit:
            job = self._next()
            if job is None:
                return
            self._queue.remove(job)
            self._running.add(job.id)
            self._last_served[job.owner] = next(self._tickets)
            job.state, job.started = RUNNING, time.monotonic()
            threading.Thread(target=self._work, args=(job,), name=f"tl-job-{job.id}", daemon=True).start()

    def _work(self, job: Job) -> None:
        state, error, result = DONE, None, None
        try:
            if job.cancel_event.is_set():
                state = CANCELLED
            else:
                ctx = JobContext(job.buffer, job.cancel_event, self.thread_share)
                ctx.adopt_threads()
                result = self.executor.run(job.fn, ctx)
                if job.cancel_event.is_set():
                    state = CANCELLED
        except Exception as e:  # noqa: BLE001 - any failure becomes a message for the learner
            state = FAILED
            error = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
            traceback.print_exc()
        with self._lock:
            job.result, job.error, job.state, job.finished = result, error, state, time.monotonic()
            self._running.discard(job.id)
            if job.forgotten:
                self._jobs.pop(job.id, None)
            self._dispatch()
            self._lock.notify_all()
        _log(job)  # before the event, so a waiter finds the line
        job.done_event.set()

    def thread_share(self) -> int:
        """CPU threads each running job should use now: the cores split evenly between running jobs, capped."""
        with self._lock:
            running = max(1, len(self._running))
        return max(1, min(self.thread_cap, self.cores // running))

    # ---- asking about jobs ----
    def get(self, job_id: int | None) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id) if job_id is not None else None

    def position(self, job: Job) -> int:
        """How many runs will start before this one: 0 if it is running or will start next."""
        with self._lock:
            if job.state != QUEUED:
                return 0
            order: list[Job] = []
            queue = list(self._queue)
            served = dict(self._last_served)
            tick = 10**12
            while queue:
                nxt = min(queue, key=lambda j: (served.get(j.owner, -1), j.id))
                if nxt is job:
                    return len(order)
                order.append(nxt)
                queue.remove(nxt)
                served[nxt.owner] = tick
                tick += 1
            return len(order)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"running": len(self._running), "queued": len(self._queue), "limit": self.limit}

    def jobs_of(self, owner: str) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.owner == owner]

    # ---- stopping ----
    def cancel(self, job_id: int | None) -> bool:
        """Ask a job to stop. Safe to call twice, or on a finished job. Returns whether it was active."""
        with self._lock:
            job = self._jobs.get(job_id) if job_id is not None else None
            if job is None or not job.active:
                return False
            job.cancel_event.set()
            if job.state == QUEUED:
                self._queue.remove(job)
                job.state, job.finished = CANCELLED, time.monotonic()
                job.done_event.set()
            return True

    def cancel_owner(self, owner: str) -> int:
        """Cancel every active job of a session (the session ended). Returns how many were cancelled."""
        with self._lock:
            ids = [j.id for j in self._jobs.values() if j.owner == owner and j.active]
        return sum(self.cancel(i) for i in ids)

    def forget(self, owner: str) -> None:
        """Drop a session's finished jobs from memory; a job still stopping is dropped as soon as it ends."""
        with self._lock:
            for job in [j for j in self._jobs.values() if j.owner == owner]:
                if job.active:
                    job.forgotten = True
                else:
                    del self._jobs[job.id]

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing runs or waits (for tests and benchmarks)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._running or self._queue:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left)
            return True


_LOG_LOCK = threading.Lock()


def _log(job: Job) -> None:
    """Append one JSON line about a job that ran to the file named by TLP_JOB_LOG, if set (what a class did, for
    the instructor and the load test): id, state, label, queue wait and execution time in seconds."""
    path = os.environ.get("TLP_JOB_LOG")
    if not path or job.started is None or job.finished is None:
        return
    line = json.dumps({"id": job.id, "state": job.state, "label": job.label,
                       "wait_s": round(job.started - job.submitted, 3), "exec_s": round(job.finished - job.started, 3)})
    with _LOG_LOCK, open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


_MANAGER: JobManager | None = None
_MANAGER_LOCK = threading.Lock()


def peek_manager() -> JobManager | None:
    """The process-wide manager if some run has created it, else None (for pages that only report on it: creating it
    before torch is imported would miss a GPU and size the limit by the CPU cores)."""
    with _MANAGER_LOCK:
        return _MANAGER


def get_manager() -> JobManager:
    """The process-wide manager, created on first use."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = JobManager()
        return _MANAGER
