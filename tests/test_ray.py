"""Runs on Ray: the job manager with tl_core.jobs.ray_executor on a local Ray instance bound to loopback.

One Ray instance for the whole module (2 CPUs, no dashboard), started through the executor's own connect path and
always shut down. Every run is a real job of tl_core.jobs.work on tiny data; the tests compare with the same job run
in-process, watch records arrive while a run trains, stop a run, kill a worker mid-run, and run two sessions at once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

ray = pytest.importorskip("ray")

from tl_core.data.datasets import DataSpec  # noqa: E402
from tl_core.experiments.race import race_lanes  # noqa: E402
from tl_core.jobs.manager import CANCELLED, DONE, FAILED, RUNNING, Job, JobManager, LocalExecutor  # noqa: E402
from tl_core.jobs.work import EstimateJob, RaceJob, TrainJob  # noqa: E402
from tl_core.training.plan import make_plan  # noqa: E402
from tl_core.training.records import StepRecord  # noqa: E402

WAIT_S = 120  # the longest any run here may take on two busy cores


@pytest.fixture(scope="module")
def executor() -> Iterator:
    from tl_core.jobs.ray_executor import RayExecutor

    ex = RayExecutor("local", init_kwargs=dict(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                                                log_to_driver=False))
    try:
        ex.connect()
        yield ex
    finally:
        ray.shutdown()


@pytest.fixture()
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs use one torch thread, like a Ray run asking for one CPU (the same arithmetic, bit for bit)."""
    monkeypatch.setenv("TLP_TORCH_THREADS", "1")


def _until(cond: Callable[[], bool], job: Job, what: str, timeout: float = WAIT_S) -> None:
    """Poll `cond` while `job` runs (paced by the job's own done event, never a sleep); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert job.active, f"{what}: the job ended first ({job.state}, {job.error})"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s (job {job.state})"
        job.wait(0.02)


def _long_plan(steps: int, seed: int = 0):
    """A run from scratch (nothing cached) of at least `steps` small steps (about 100 a second here)."""
    return make_plan("scratch", epochs=1, batch_size=8, seed=seed, min_steps=steps)


def test_a_ray_run_gives_the_in_process_result_exactly(executor, one_thread: None) -> None:
    job = TrainJob(make_plan("finetune_all", epochs=3, seed=3), DataSpec(n_per_class=8, seed=3, n_val_per_class=6))
    here = JobManager(limit=1, executor=LocalExecutor()).submit(job, owner="here")
    there = JobManager(limit=1, executor=executor).submit(job, owner="there")
    assert here.wait(WAIT_S) and there.wait(WAIT_S)
    assert (here.state, there.state) == (DONE, DONE), (here.error, there.error)
    a, b = here.result.result, there.result.result
    assert [s.loss for s in b.steps] == [s.loss for s in a.steps] and len(a.steps) > 5
    assert [e.val_acc for e in b.epochs] == [e.val_acc for e in a.epochs]
    assert b.evaluation.confusion == a.evaluation.confusion
    assert b.drift == a.drift and b.trainable_params == a.trainable_params
    assert b.state_dict is not None and all((b.state_dict[k] == v).all() for k, v in a.state_dict.items())
    # the live buffer holds the same records, in the same order
    steps = lambda j: [r for r in j.buffer.snapshot() if isinstance(r, StepRecord)]  # noqa: E731
    assert steps(there) == steps(here) == a.steps


def test_a_race_on_ray_streams_lane_records_and_matches_in_process(executor, one_thread: None) -> None:
    lanes = tuple(race_lanes(("feature_extract", "scratch"), seed=1, epochs=2, min_steps=0))
    job = RaceJob(lanes, DataSpec(n_per_class=6, seed=1, n_val_per_class=4), predicted="scratch")
    here = JobManager(limit=1, executor=LocalExecutor()).submit(job, owner="here")
    there = JobManager(limit=1, executor=executor).submit(job, owner="there")
    assert here.wait(WAIT_S) and there.wait(WAIT_S) and there.state == DONE, there.error
    assert there.result.predicted == "scratch"
    assert {k: r.final_val_acc for k, r in there.result.results.items()} == \
        {k: r.final_val_acc for k, r in here.result.results.items()}
    assert [lane for lane, _ in there.buffer.snapshot()] == [lane for lane, _ in here.buffer.snapshot()]


def test_records_arrive_while_the_run_trains(executor) -> None:
    job = JobManager(limit=1, executor=executor).submit(TrainJob(_long_plan(300), DataSpec(n_per_class=10, seed=0)),
                                                        owner="live")
    _until(lambda: any(isinstance(r, StepRecord) for r in job.buffer.snapshot()) or not job.active, job,
           "a first step record")
    seen_while_running = (job.state, len(job.buffer))
    assert job.wait(WAIT_S) and job.state == DONE, job.error
    assert seen_while_running[0] == RUNNING and 0 < seen_while_running[1] < len(job.buffer)
    assert [r for r in job.buffer.snapshot() if isinstance(r, StepRecord)] == job.result.result.steps


def test_stop_ends_a_ray_run_within_about_a_second(executor) -> None:
    mgr = JobManager(limit=1, executor=executor)
    job = mgr.submit(TrainJob(_long_plan(20_000), DataSpec(n_per_class=10, seed=0)), owner="stopper")
    _until(lambda: len([r for r in job.buffer.snapshot() if isinstance(r, StepRecord)]) >= 3, job, "three steps")
    t0 = time.monotonic()
    assert mgr.cancel(job.id)
    assert job.wait(10)
    took = time.monotonic() - t0
    assert job.state == CANCELLED and took < 1.5, (job.state, took)
    result = job.result.result  # a stopped run returns what it trained, as in-process
    assert result.status == "cancelled" and 3 <= len(result.steps) < 20_000


def test_two_sessions_train_in_parallel_on_the_cluster(executor) -> None:
    mgr = JobManager(limit=2, executor=executor)
    jobs = [mgr.submit(TrainJob(_long_plan(20_000, seed=s), DataSpec(n_per_class=10, seed=s)),
                       owner=f"session-{s}") for s in (4, 5)]
    steps = lambda j: sum(isinstance(r, StepRecord) for r in j.buffer.snapshot())  # noqa: E731
    _until(lambda: len(executor.running()) == 2 and all(steps(j) for j in jobs), jobs[0], "both runs training")
    placed = executor.running()
    assert len({p.pid for p in placed}) == 2 and mgr.stats()["running"] == 2
    # both keep training side by side, in their own worker processes
    before = [steps(j) for j in jobs]
    _until(lambda: all(steps(j) >= b + 30 for j, b in zip(jobs, before)), jobs[0], "both runs progressing")
    assert executor.running() == placed and all(j.state == RUNNING for j in jobs)
    for j in jobs:
        mgr.cancel(j.id)
    assert all(j.wait(10) and j.state == CANCELLED for j in jobs), [j.error for j in jobs]
    a, b = (j.result.result for j in jobs)
    assert a.steps[0].loss != b.steps[0].loss  # distinct seeds, distinct runs


def test_a_killed_worker_fails_its_run_with_a_reason_and_spares_the_others(executor) -> None:
    mgr = JobManager(limit=2, executor=executor)
    victim = mgr.submit(TrainJob(_long_plan(20_000), DataSpec(n_per_class=10, seed=0)), owner="unlucky")
    other = mgr.submit(TrainJob(_long_plan(20_000, seed=1), DataSpec(n_per_class=10, seed=1)), owner="bystander")
    _until(lambda: len(executor.running()) == 2 and len(victim.buffer) > 0 and len(other.buffer) > 0, victim,
           "both runs training")
    first = executor.running()
    pids = {p.pid for p in first}
    node = ray.nodes()[0]["NodeManagerAddress"]  # Ray names a loopback node by the host's address
    assert len(pids) == 2 and os.getpid() not in pids and all(p.node_ip == node for p in first)
    os.kill(next(p.pid for p in first if p.buffer is victim.buffer), signal.SIGKILL)
    assert victim.wait(30), "the killed run hung"
    assert victim.state == FAILED and "lost part-way" in victim.error and "start it again" in victim.error
    # the other session's run goes on training, and still ends its own way (here: its learner stops it)
    after = len(other.buffer)
    _until(lambda: len(other.buffer) >= after + 20, other, "the other run training on")
    assert other.state == RUNNING and [p.buffer for p in executor.running()] == [other.buffer]
    mgr.cancel(other.id)
    assert other.wait(10) and other.state == CANCELLED, other.error
    assert other.result.result.status == "cancelled" and len(other.result.result.steps) > 20


def test_a_job_error_reaches_the_learner_as_in_process(executor) -> None:
    job = TrainJob(make_plan("feature_extract", arch="resnet18", epochs=1, batch_size=8),
                   DataSpec(n_per_class=5, seed=0))
    here = JobManager(limit=1, executor=LocalExecutor()).submit(job, owner="here")
    there = JobManager(limit=1, executor=executor).submit(job, owner="there")
    assert here.wait(WAIT_S) and there.wait(WAIT_S)
    if here.state == DONE:
        pytest.skip("this machine has the ImageNet weights, so the run cannot fail for want of them")
    assert there.state == here.state == FAILED and there.error == here.error and "weights" in there.error.lower()


def test_the_source_model_and_shared_bases_go_into_the_object_store_once(executor) -> None:
    from tl_core.jobs.ray_executor import RayExecutor
    from tl_core.models.source import load_source_model

    ex = RayExecutor("local")  # a second executor on the same connection: its own, fresh object-store cache
    ex.connect()
    mgr = JobManager(limit=2, executor=ex)
    base = load_source_model().model
    plan = make_plan("finetune_top", epochs=1, batch_size=8, seed=0)
    jobs = [mgr.submit(TrainJob(plan, DataSpec(n_per_class=5, seed=s, n_val_per_class=2)), owner=f"s{s}")
            for s in range(3)]
    jobs += [mgr.submit(EstimateJob(plan, (20, 10), 2, 32, base=base), owner=f"e{s}") for s in range(2)]
    assert all(j.wait(WAIT_S) for j in jobs) and [j.state for j in jobs] == [DONE] * 5, [j.error for j in jobs]
    assert ex.puts == 2  # the source model once, the shared base once: not once per job
    assert all(not isinstance(j.result, str) and j.result.images_per_s > 0 for j in jobs[3:]), \
        [j.result for j in jobs[3:]]


def test_the_manager_picks_ray_and_sizes_its_limit_from_the_cluster(executor, monkeypatch) -> None:
    from tl_core.jobs import manager
    from tl_core.jobs.ray_executor import RayExecutor

    monkeypatch.delenv("TLP_MAX_CONCURRENT_JOBS", raising=False)
    monkeypatch.setenv("TLP_RAY_ADDRESS", "auto")
    mgr = JobManager()
    assert isinstance(mgr.executor, RayExecutor) and mgr.executor.name == "ray"
    assert mgr.limit == manager.default_limit() == 2  # the instance's 2 CPUs, one per run
    monkeypatch.setenv("TLP_RAY_CPUS_PER_RUN", "2")
    assert RayExecutor("auto").run_slots() == 1
    with pytest.raises(ValueError, match="Ray address"):
        RayExecutor("  ")
