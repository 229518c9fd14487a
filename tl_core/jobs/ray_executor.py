"""Runs the job manager's jobs on a Ray cluster: one Ray task per run, its records streamed back while it trains.

Selected by TLP_RAY_ADDRESS (tl_core.jobs.manager.default_executor). The app keeps what is the app's: the per-session
fair queue, the concurrency limit and shared identical runs stay in the JobManager, which hands one job at a time to
`RayExecutor.run` on its worker thread. Ray does what is Ray's: it places each run on a node with a free CPU (or a
GPU, where the cluster has GPUs), runs it in a pooled worker process, and carries the records and the result back.

How a run travels:
- The job (a picklable dataclass of tl_core.jobs.work) goes to a streaming-generator task that asks for
  `cpus_per_run` CPUs, or one GPU. On the worker it runs exactly as in-process: called with a JobContext whose buffer
  the task drains every STREAM_EVERY_S seconds, yielding each batch of new records, then the result.
- The driver (the app's manager thread) appends each batch to the run's own buffer as it arrives, so the page's live
  view reads the same records in the same order as in-process.
- Stop: the driver posts the run's id to a small cancel board (an async actor, one per executor); the worker's
  watcher thread long-polls the board and sets the job's cancel event at once, so the job stops as it would
  in-process and returns what it salvaged.
- Worker loss: a killed worker, a lost node or a dead cluster ends `run` with `RunLost`, whose message says what
  happened (the manager turns it into a FAILED job); no retry runs behind the learner's back, and other runs go on.
- The shipped source model goes into Ray's object store once per executor (the file's bytes and its manifest,
  checked against the manifest's checksum on the worker); each worker process loads it once and serves every later
  run from that copy. A job's shared pretrained `base` model and a learner's dataset `ds` go in once per object too,
  however many runs use them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import pickle
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import exceptions as ray_errors

from tl_core.settings import flag, positive_int
from tl_core.jobs.manager import JobContext
from tl_core.training.records import RecordBuffer

POLL_S = 0.05  # the driver's wait for the next batch before it looks at the stop flag again
STREAM_EVERY_S = 0.1  # the worker sends the records gathered so far this often
CANCEL_POLL_S = 2.0  # the worker's long-poll on the cancel board (a stop wakes it at once)
SHARED_FIELDS = ("base", "ds")  # job fields that hold big shared objects: shipped through the object store once
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # tl_core/, shipped to the cluster's workers (TLP_RAY_SHIP_CODE)


class RayUnavailable(RuntimeError):
    """TLP_RAY_ADDRESS names no Ray cluster that answers."""


class RunLost(RuntimeError):
    """The Ray worker (or node) running a job died before the job ended."""


@dataclass(frozen=True)
class Placement:
    """Where Ray placed a running job."""

    run_id: int  # the executor's number for the run
    node_ip: str  # the node's address
    pid: int  # the worker process
    started: float  # time.monotonic() on the driver when the worker reported in
    buffer: RecordBuffer = field(compare=False, repr=False)  # the run's live buffer (tells which job it is)


@dataclass(frozen=True)
class _Shared:
    """Object-store references a task needs, each wrapped in a tuple so that Ray passes the reference itself, not its
    value: the worker fetches (and deserializes) an object only the first time it sees its reference."""

    source: tuple[ray.ObjectRef, ...]  # (ref of SourcePayload,)
    fields: tuple[tuple[str, ray.ObjectRef], ...] = ()  # (job field name, ref of its value)


@dataclass(frozen=True)
class SourcePayload:
    """The shipped source model as it travels: the weights file's bytes and its manifest."""

    weights: bytes  # the bytes of assets/source_model.pt
    manifest: dict[str, Any]  # assets/source_model.json


# ---- on the worker ------------------------------------------------------------------------------------------------
_WORKER_CACHE: dict[str, Any] = {}  # object-store ref hex -> its value, per worker process
_WORKER_LOCK = threading.Lock()


def _fetch_once(ref: ray.ObjectRef) -> Any:
    """The value behind an object-store ref, fetched at most once per worker process."""
    key = ref.hex()
    with _WORKER_LOCK:
        if key not in _WORKER_CACHE:
            _WORKER_CACHE[key] = ray.get(ref)
        return _WORKER_CACHE[key]


def adopt_source_model(payload: SourcePayload) -> None:
    """Make this process's shipped source model the one from the object store (checked against its manifest, loaded
    with weights_only=True: tl_core.models.source.source_model_from_bytes), so a worker never needs the assets
    folder on its own disk.

    Raises:
        SourceModelError: If the bytes do not match the manifest's checksum or do not fit ShapesNet.
    """
    from tl_core.models import source

    source.use_source_model(source.source_model_from_bytes(payload.weights, payload.manifest,
                                                           "the source model in Ray's object store"))


def _prepare(fn: Callable[[JobContext], Any], shared: _Shared) -> Callable[[JobContext], Any]:
    """On the worker: adopt the source model once, and put the shared fields back into the job."""
    ref = shared.source[0]
    with _WORKER_LOCK:
        fresh = _WORKER_CACHE.get("source") != ref.hex()
    if fresh:
        adopt_source_model(_fetch_once(ref))
        with _WORKER_LOCK:
            _WORKER_CACHE["source"] = ref.hex()
    if shared.fields:
        fn = dataclasses.replace(fn, **{name: _fetch_once(r) for name, r in shared.fields})
    return fn


def _watch_cancel(board: Any, run_id: int, cancel: threading.Event, finished: threading.Event) -> None:
    """Long-poll the cancel board until the run is stopped or ends; a lost board (the app is gone) stops it too."""
    while not finished.is_set():
        try:
            if ray.get(board.wait.remote(run_id, CANCEL_POLL_S)):
                cancel.set()
                return
        except ray_errors.RayError:
            cancel.set()
            return


def stream_run(fn: Callable[[JobContext], Any], shared: _Shared, cpus: int, board: Any, run_id: int):
    """The Ray task (a streaming generator): run one job and yield ("start", (node id, pid)), then ("records",
    [...]) batches while it runs, then ("result", value). An exception of the job is raised from here."""
    job = _prepare(fn, shared)
    yield "start", (ray.get_runtime_context().get_node_id(), os.getpid())
    buffer, cancel, finished = RecordBuffer(), threading.Event(), threading.Event()
    ctx = JobContext(buffer, cancel, lambda: cpus)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            ctx.adopt_threads()
            outcome["result"] = job(ctx)
        except BaseException as e:  # noqa: BLE001 - handed to the generator, which raises it to the driver
            outcome["error"] = e
        finally:
            finished.set()

    threading.Thread(target=_watch_cancel, args=(board, run_id, cancel, finished), daemon=True).start()
    threading.Thread(target=work, name=f"tl-ray-run-{run_id}", daemon=True).start()
    sent = 0
    while True:
        done = finished.wait(STREAM_EVERY_S)
        batch = buffer.snapshot(sent)
        if batch:
            sent += len(batch)
            yield "records", batch
        if done:
            break
    if "error" in outcome:
        raise portable_error(outcome["error"])
    yield "result", outcome["result"]


def portable_error(e: BaseException) -> BaseException:
    """The exception itself if it survives pickling (Ray sends it to the driver), else one that says the same thing:
    a ValueError keeps its message for the learner, anything else keeps its type's name in the message."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - any pickling failure: send a plain copy instead
        if isinstance(e, ValueError):
            return ValueError(str(e))
        return RuntimeError(f"{type(e).__name__}: {e}")


class CancelBoard:
    """An async actor: the driver posts stopped run ids, the runs' watchers wait on them."""

    def __init__(self) -> None:
        self._events: dict[int, asyncio.Event] = {}

    def _event(self, run_id: int) -> asyncio.Event:
        return self._events.setdefault(run_id, asyncio.Event())

    async def cancel(self, run_id: int) -> None:
        self._event(run_id).set()

    async def wait(self, run_id: int, timeout: float) -> bool:
        """True as soon as the run is stopped; False after `timeout` seconds without a stop."""
        try:
            await asyncio.wait_for(self._event(run_id).wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def forget(self, run_id: int) -> None:
        self._events.pop(run_id, None)


# ---- on the driver (the app) --------------------------------------------------------------------------------------
class RayExecutor:
    """Runs each job as a Ray task on the cluster at `address` (see the module docstring).

    Args:
        address: What `ray.init(address=...)` takes: "auto", "host:port", "ray://host:10001", or "local" (a new local
            instance, for tests).
        cpus_per_run: CPUs each run asks Ray for (TLP_RAY_CPUS_PER_RUN, default 1); also its torch thread count.
        runs_per_gpu: Runs that share one GPU, where the cluster has GPUs (TLP_RAY_RUNS_PER_GPU, default 1).
        init_kwargs: Extra keyword arguments for `ray.init` (e.g. num_cpus and _node_ip_address for a local instance).
    """

    name = "ray"

    def __init__(self, address: str, *, cpus_per_run: int | None = None, runs_per_gpu: int | None = None,
                 init_kwargs: dict[str, Any] | None = None) -> None:
        if not address.strip():
            raise ValueError("A Ray address is needed, e.g. 'auto' or '127.0.0.1:6379'.")
        self.address = address.strip()
        self.cpus_per_run = cpus_per_run or positive_int("TLP_RAY_CPUS_PER_RUN", 1)
        self.runs_per_gpu = runs_per_gpu or positive_int("TLP_RAY_RUNS_PER_GPU", 1)
        self.init_kwargs = dict(init_kwargs or {})
        self._lock = threading.Lock()
        self._connected = False
        self._board: Any = None
        self._task: Any = None
        self._gpus = 0.0
        self._source_ref: ray.ObjectRef | None = None
        self._shared_refs: dict[int, tuple[weakref.ref, ray.ObjectRef]] = {}  # id(obj) -> (weak obj, its ref)
        self._ids = itertools.count(1)
        self._running: dict[int, Placement] = {}
        self._node_ips: dict[str, str] = {}  # Ray node id -> its address
        self.puts = 0  # objects this executor put into the object store (the source model, shared fields)

    # ---- connecting ----
    def connect(self) -> None:
        """Join the cluster (once; reuses a Ray connection this process already has) and create the cancel board.

        Raises:
            RayUnavailable: If no cluster answers at the address.
        """
        with self._lock:
            if self._connected:
                return
            if not ray.is_initialized():
                kwargs: dict[str, Any] = {"address": self.address, **self.init_kwargs}
                if flag("TLP_RAY_SHIP_CODE", True):  # workers import this very tl_core
                    kwargs.setdefault("runtime_env", {"py_modules": [str(PACKAGE_DIR)],
                                                      "excludes": ["__pycache__", "*.pyc"]})
                try:
                    ray.init(**kwargs)
                except (ConnectionError, RuntimeError, ValueError) as e:
                    raise RayUnavailable(
                        f"TLP_RAY_ADDRESS is {self.address!r}, but no Ray cluster answers there ({e}). Start one "
                        "(python deploy/cluster.py, or `ray start --head`), or unset TLP_RAY_ADDRESS to train in the "
                        "app process.") from None
            self._gpus = float(ray.cluster_resources().get("GPU", 0.0))
            self._board = ray.remote(num_cpus=0, max_restarts=0)(CancelBoard).remote()
            self._task = ray.remote(stream_run)
            self._connected = True

    def run_slots(self) -> int:
        """How many runs the cluster can train at once: its GPUs × runs_per_gpu, else its CPUs ÷ cpus_per_run."""
        self.connect()
        if self._gpus >= 1:
            return max(1, int(self._gpus) * self.runs_per_gpu)
        return max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_run))

    def _source(self) -> ray.ObjectRef:
        """The shipped source model in the object store, put there on first use (checked here first)."""
        if self._source_ref is None:
            from tl_core.models import source

            loaded = source.load_source_model()  # raises SourceModelError with the fix if the files are bad
            payload = SourcePayload(source.MODEL_FILE.read_bytes(), dict(loaded.manifest))
            self._source_ref = ray.put(payload)
            self.puts += 1
        return self._source_ref

    def _shared_ref(self, obj: Any) -> ray.ObjectRef:
        """One object-store copy per shared object (by identity, while the object lives)."""
        for key in [k for k, (alive, _) in self._shared_refs.items() if alive() is None]:
            del self._shared_refs[key]
        hit = self._shared_refs.get(id(obj))
        if hit is not None and hit[0]() is obj:
            return hit[1]
        ref = ray.put(obj)
        self.puts += 1
        try:
            self._shared_refs[id(obj)] = (weakref.ref(obj), ref)
        except TypeError:  # not weak-referenceable: ship it with each job instead of caching it
            pass
        return ref

    def _split(self, fn: Callable[[JobContext], Any]) -> tuple[Callable[[JobContext], Any], _Shared]:
        """The job without its big shared fields, and the object-store refs that carry them and the source model."""
        with self._lock:
            fields: list[tuple[str, ray.ObjectRef]] = []
            if dataclasses.is_dataclass(fn) and not isinstance(fn, type):
                names = {f.name for f in dataclasses.fields(fn)}
                for name in SHARED_FIELDS:
                    value = getattr(fn, name, None) if name in names else None
                    if value is not None:
                        fields.append((name, self._shared_ref(value)))
                if fields:
                    fn = dataclasses.replace(fn, **{name: None for name, _ in fields})
            return fn, _Shared((self._source(),), tuple(fields))

    # ---- running ----
    def running(self) -> list[Placement]:
        """Where each run of this executor is training now."""
        with self._lock:
            return list(self._running.values())

    def run(self, fn: Callable[[JobContext], Any], ctx: JobContext) -> Any:
        """Run one job on the cluster, streaming its records into ctx.buffer; return its result.

        Raises:
            RayUnavailable: If the cluster cannot be reached.
            RunLost: If the worker or its node died before the job ended.
            Exception: Whatever the job itself raised (e.g. a ValueError with a message for the learner).
        """
        self.connect()
        job, shared = self._split(fn)
        run_id = next(self._ids)
        options: dict[str, Any] = {"num_returns": "streaming", "max_retries": 0, "num_cpus": self.cpus_per_run}
        if self._gpus >= 1:
            options["num_gpus"] = 1 / self.runs_per_gpu
        stream = self._task.options(**options).remote(job, shared, self.cpus_per_run, self._board, run_id)
        stop_sent, have_result, result = False, False, None
        try:
            while True:
                if ctx.cancel.is_set() and not stop_sent:
                    self._board.cancel.remote(run_id)
                    stop_sent = True
                ready, _ = ray.wait([stream], timeout=POLL_S)
                if not ready:
                    continue
                try:
                    ref = next(stream)
                except StopIteration:
                    break
                kind, value = ray.get(ref)
                if kind == "start":
                    placement = Placement(run_id, self._node_ip(value[0]), value[1], time.monotonic(), ctx.buffer)
                    with self._lock:
                        self._running[run_id] = placement
                elif kind == "records":
                    for record in value:
                        ctx.buffer.append(record)
                else:
                    have_result, result = True, value
        except ray_errors.RayTaskError as e:  # the job raised: raise its own exception, as in-process
            cause = getattr(e, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise RunLost(f"The run failed on the Ray cluster: {e}") from None
        except ray_errors.RayError as e:
            raise RunLost(self._lost_message(e)) from None
        finally:
            with self._lock:
                self._running.pop(run_id, None)
            try:
                self._board.forget.remote(run_id)
            except ray_errors.RayError:
                pass
        if not have_result:
            raise RunLost("The Ray worker running this run stopped without sending its result. Start the run again.")
        return result

    def _node_ip(self, node_id: str) -> str:
        """A node's address, from the cluster's node table (cached)."""
        with self._lock:
            if node_id not in self._node_ips:
                self._node_ips.update({n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()})
            return self._node_ips.get(node_id, "unknown")

    @staticmethod
    def _lost_message(e: Exception) -> str:
        """What the learner reads when Ray lost the run."""
        if isinstance(e, ray_errors.WorkerCrashedError):
            what = "the worker process training it died (killed, or out of memory)"
        elif isinstance(e, (ray_errors.NodeDiedError, ray_errors.LocalRayletDiedError)):
            what = "the machine training it left the cluster"
        elif isinstance(e, ray_errors.OutOfMemoryError):
            what = "its machine ran out of memory and Ray stopped it"
        else:
            what = f"the Ray cluster lost it ({type(e).__name__})"
        return f"This run was lost part-way: {what}. Other runs are not affected; start it again."


_SHARED: dict[str, RayExecutor] = {}
_SHARED_LOCK = threading.Lock()


def shared_executor(address: str) -> RayExecutor:
    """The process's one executor for a cluster address (the job manager's, and what sizes its limit)."""
    with _SHARED_LOCK:
        if address not in _SHARED:
            _SHARED[address] = RayExecutor(address)
        return _SHARED[address]
