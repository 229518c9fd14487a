"""One process-wide job manager: training runs off the UI thread, a concurrency limit, a fair queue, shared runs.

Every browser session submits its runs here. At most `limit` jobs run at once (default: the CPU's cores, or 1 on
a GPU); the rest wait in a queue that takes one job per session in turn, so a student who queues twice cannot
push everyone else back. Running jobs split the CPU cores between them (a lone job gets them all), which keeps
PyTorch's thread pools from oversubscribing the machine. A job streams records into its own thread-safe buffer,
which the page redraws from.

Shared runs: a job that knows what determines its result (`fn.share_key()`, see tl_core.jobs.work) is shared. A
session that submits a job with the same key as one that is queued, running, or finished and still held (its
result is kept in a cache bounded in entries and bytes, `ResultCache`) is *attached* to that job instead of
queueing a second one: the same record stream, the same result. `detach` takes one session off a job; the job is
cancelled only when no session is attached any more. A job whose key is None (a run that is not deterministic,
or a learner's own upload) is never shared. Sharing and the queue live here, on the app's side of the `Executor`
seam: an executor only runs one job function.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tl_core.settings import positive_int
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
    """A unit of work, submitted by one session and watched by every session attached to it."""

    id: int
    owner: str  # the session that submitted it (its turn in the fair queue)
    label: str  # shown in queue messages
    fn: Callable[[JobContext], Any]
    key: str | None = None  # what determines the result (fn.share_key()); None: never shared
    attached: set[str] = field(default_factory=set)  # sessions that watch it and want its result (owner first)
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

    @property
    def shareable(self) -> bool:
        """Whether another session may attach now: it has a key and is not being stopped or failed."""
        return self.key is not None and not self.cancel_event.is_set() and self.state in (QUEUED, RUNNING, DONE)

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

    if limit := positive_int("TLP_MAX_CONCURRENT_JOBS", 0):
        return limit
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
    return positive_int("TLP_TORCH_THREADS", max(1, (os.cpu_count() or 1) // 2))


def approx_nbytes(obj: Any, _seen: set[int] | None = None, _depth: int = 0) -> int:
    """About how many bytes an object holds: tensors and arrays by their data, containers and dataclasses by
    their items (each object once), anything else by sys.getsizeof. For bounding the result cache, not exact."""
    seen = set() if _seen is None else _seen
    if id(obj) in seen or _depth > 12:
        return 0
    seen.add(id(obj))
    if hasattr(obj, "element_size") and hasattr(obj, "nelement"):  # a torch tensor
        return int(obj.element_size() * obj.nelement())
    if hasattr(obj, "nbytes") and hasattr(obj, "dtype"):  # a numpy array
        return int(obj.nbytes)
    size = sys.getsizeof(obj, 64)
    if isinstance(obj, dict):
        items = list(obj.keys()) + list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = list(obj)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        items = list(vars(obj).values())
    else:
        return size
    return size + sum(approx_nbytes(x, seen, _depth + 1) for x in items)


class ResultCache:
    """Finished shared jobs by key, least recently used first out, bounded in entries and in bytes.

    Not thread-safe by itself: the manager calls it with its lock held.
    """

    def __init__(self, max_entries: int | None = None, max_bytes: int | None = None) -> None:
        self.max_entries = max_entries if max_entries is not None else positive_int("TLP_RESULT_CACHE_ENTRIES", 64)
        self.max_bytes = (max_bytes if max_bytes is not None
                          else positive_int("TLP_RESULT_CACHE_MB", 256) * 2**20)
        self._jobs: OrderedDict[str, tuple[Job, int]] = OrderedDict()  # key -> (job, its result's bytes)
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def put(self, job: Job, size: int | None = None) -> bool:
        """Keep a finished job's result (evicting the least recently used). Returns whether it was kept: a result
        larger than the whole budget is not.

        Args:
            job: A finished job with a share key.
            size: Its result's approx_nbytes, if already measured (the manager measures outside its lock).
        """
        if job.key is None or job.state != DONE:
            return False
        size = approx_nbytes(job.result) if size is None else size
        if size > self.max_bytes:
            return False
        self.drop(job.key)
        self._jobs[job.key] = (job, size)
        self.bytes += size
        while len(self._jobs) > self.max_entries or self.bytes > self.max_bytes:
            _, (_, freed) = self._jobs.popitem(last=False)
            self.bytes -= freed
        return True

    def get(self, key: str) -> Job | None:
        """The cached job with this key (now the most recently used), or None."""
        hit = self._jobs.get(key)
        if hit is None:
            return None
        self._jobs.move_to_end(key)
        return hit[0]

    def by_id(self, job_id: int) -> Job | None:
        return next((job for job, _ in self._jobs.values() if job.id == job_id), None)

    def drop(self, key: str) -> None:
        hit = self._jobs.pop(key, None)
        if hit is not None:
            self.bytes -= hit[1]

    def clear(self) -> None:
        self._jobs.clear()
        self.bytes = 0


def share_key_of(fn: Callable[..., Any]) -> str | None:
    """A job function's share key (`fn.share_key()`), or None when it has none or cannot say."""
    method = getattr(fn, "share_key", None)
    if method is None:
        return None
    try:
        return method()
    except Exception:  # noqa: BLE001 - a key we cannot compute only means the run is not shared
        traceback.print_exc()
        return None


class JobManager:
    """Runs jobs on worker threads, at most `limit` at a time, taking queued jobs round-robin by owner, and shares
    identical deterministic runs between the sessions that ask for them."""

    def __init__(self, limit: int | None = None, executor: Executor | None = None,
                 cache: ResultCache | None = None) -> None:
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
        self.cache = cache if cache is not None else ResultCache()  # finished shared jobs, by key
        self.computed = 0  # jobs that started running (a shared run counts once, however many watch it)
        # A reload is a new session of the same student: `attach(..., replacing=old)` makes the new session an alias
        # of the old one's student, so that Stop in either tab stops that student's interest, and a tab that ends
        # detaches the student only when none of its tabs is left.
        self._student: dict[str, str] = {}  # session -> the student it is (absent: itself)
        self._tabs: dict[str, set[str]] = {}  # student -> its sessions that have not ended

    # ---- submitting and scheduling ----
    def submit(self, fn: Callable[[JobContext], Any], *, owner: str, label: str = "run",
               key: str | None = None) -> Job:
        """Queue a job, or attach the owner to an identical one. Start twice is safe.

        If the owner already watches an active job, that job is returned. Otherwise, if the job has a share key
        (`key`, else `fn.share_key()`) and a job with that key is queued, running or finished and held, the owner
        is attached to it and it is returned: nothing is queued again.

        Args:
            fn: Called on a worker thread with a JobContext; its return value becomes `job.result`.
            owner: The session id.
            label: Shown in queue messages.
            key: What determines the result; default `fn.share_key()`. None never shares.
        """
        if key is None:
            key = share_key_of(fn)
        with self._lock:
            student = self._seen(owner)
            for job in self._jobs.values():
                if student in job.attached and job.active:
                    return job
            if key is not None:
                twin = self._find_shared(key)
                if twin is not None:
                    twin.attached.add(student)
                    self._jobs.setdefault(twin.id, twin)
                    twin.forgotten = False
                    return twin
            job = Job(next(self._ids), owner, label, fn, key=key, attached={student})
            self._jobs[job.id] = job
            self._queue.append(job)
            self._dispatch()
            return job

    def _who(self, session: str) -> str:  # call with the lock held
        return self._student.get(session, session)

    def _seen(self, session: str) -> str:  # call with the lock held: the session's student, noting the session
        student = self._who(session)
        self._tabs.setdefault(student, set()).add(session)
        return student

    def student_of(self, session: str) -> str:
        """The student a session is (the first tab's session id; a reload that took a run over is the same one)."""
        with self._lock:
            return self._who(session)

    def _find_shared(self, key: str) -> Job | None:  # call with the lock held
        """A job with this key that a session may attach to: active ones first, then finished and held."""
        held = [j for j in self._jobs.values() if j.key == key and j.shareable]
        active = [j for j in held if j.active]
        if active:
            return active[0]
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        return held[0] if held else None

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
            self.computed += 1
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
        size = approx_nbytes(result) if state == DONE and job.key is not None else None  # outside the lock
        with self._lock:
            job.result, job.error, job.state, job.finished = result, error, state, time.monotonic()
            self._running.discard(job.id)
            if size is not None:
                self.cache.put(job, size)
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
        """A job this manager holds (for a session, or in the result cache), by id."""
        with self._lock:
            if job_id is None:
                return None
            return self._jobs.get(job_id) or self.cache.by_id(job_id)

    def attach(self, job_id: int, owner: str, *, replacing: str | None = None) -> Job | None:
        """Attach a session to a job it may watch. A reload that takes a run over passes `replacing`, a student the
        job has attached: the new session is then that same student (Stop in either tab stops that student's
        interest; the run stays alive while any of the student's tabs lives).

        Returns:
            The job, or None when the manager no longer holds it.
        """
        with self._lock:
            job = self._jobs.get(job_id) or self.cache.by_id(job_id)
            if job is None:
                return None
            if replacing is not None and replacing in job.attached and self._who(owner) != replacing:
                self._student[owner] = replacing
            job.attached.add(self._seen(owner))
            self._jobs.setdefault(job.id, job)
            job.forgotten = False
            return job

    def sharers(self, job: Job) -> int:
        """How many sessions watch a job (1 for a run that is nobody else's)."""
        with self._lock:
            return len(job.attached)

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
        """Every job the session (its student) submitted or is attached to."""
        with self._lock:
            student = self._who(owner)
            return [j for j in self._jobs.values() if student in j.attached]

    def counters(self) -> dict[str, int]:
        """Shared runs at a glance: jobs computed so far, sessions watching an active job, results cached."""
        with self._lock:
            watching = sum(len(j.attached) for j in self._jobs.values() if j.active)
            return {"computed": self.computed, "watching": watching, "cached": len(self.cache),
                    "cached_bytes": self.cache.bytes}

    # ---- stopping ----
    def cancel(self, job_id: int | None) -> bool:
        """Stop a job for everyone attached to it. Safe to call twice, or on a finished job. Returns whether it was
        active. (A session's Stop button calls `detach`, which stops only that session's interest.)"""
        with self._lock:
            job = self._jobs.get(job_id) if job_id is not None else None
            return job is not None and self._cancel(job)

    def _cancel(self, job: Job) -> bool:  # call with the lock held
        if not job.active:
            return False
        job.cancel_event.set()
        if job.state == QUEUED:
            self._queue.remove(job)
            job.state, job.finished = CANCELLED, time.monotonic()
            job.done_event.set()
        return True

    def detach(self, job_id: int | None, owner: str) -> int:
        """Take one session's student off a job (its Stop); the job is cancelled when nobody is attached any more.

        Returns:
            How many students still watch the job (0: it was the last one, and an active job was cancelled).
        """
        with self._lock:
            job = self._jobs.get(job_id) if job_id is not None else None
            if job is None:
                return 0
            job.attached.discard(self._who(owner))
            if not job.attached:
                self._cancel(job)
            return len(job.attached)

    def _other_tabs(self, session: str) -> set[str]:  # call with the lock held
        return self._tabs.get(self._who(session), set()) - {session}

    def cancel_owner(self, owner: str) -> int:
        """A session ended: detach its student from every active job it watches, unless another of the student's
        tabs lives on. Returns how many jobs that cancelled (jobs that others still watch go on)."""
        with self._lock:
            if self._other_tabs(owner):
                return 0
            student = self._who(owner)
            ids = [j.id for j in self._jobs.values() if student in j.attached and j.active]
        return sum(self.detach(i, owner) == 0 for i in ids)

    def forget(self, owner: str) -> None:
        """A session ended (after `cancel_owner`): unless another of its student's tabs lives on, detach the student
        from its jobs and drop the jobs nobody watches (a finished shared result stays in the cache; a job still
        stopping is dropped as soon as it ends)."""
        with self._lock:
            student = self._who(owner)
            others = self._other_tabs(owner)
            self._student.pop(owner, None)
            if others:
                self._tabs[student] = others
                return
            self._tabs.pop(student, None)
            self._drop(student, finished_only=False, session=owner)

    def release(self, owner: str) -> None:
        """The session's student starts something new: detach it from its finished jobs, dropping those nobody
        watches (the page has already kept their outcomes)."""
        with self._lock:
            self._drop(self._who(owner), finished_only=True, session=owner)

    def _drop(self, student: str, *, finished_only: bool, session: str) -> None:  # call with the lock held
        for job in [j for j in self._jobs.values() if student in j.attached or j.owner == session]:
            if finished_only and job.active:
                continue
            job.attached.discard(student)
            if job.attached:
                continue
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
            if "torch" in sys.modules:  # another thread (ui.warm) may be importing it: wait until it is whole, so
                import torch  # noqa: F401  the limit sees a GPU (a partly imported torch has no .cuda yet)
            _MANAGER = JobManager()
        return _MANAGER
