"""Runs on Ray, measured on a local 2-CPU Ray instance: throughput against in-process, first-record latency, a class.

- ray_vs_inprocess_throughput_ratio: default races (the race page's lanes and data, distinct seeds) per minute through
  a JobManager with tl_core.jobs.ray_executor.RayExecutor, divided by the same through the in-process executor, with
  the same limit (2 at a time) and the same torch threads per run (one), on the same two cores. Both sides are
  warmed first (two races each), and the measured batches alternate (in-process, Ray, in-process, Ray) so that a
  neighbour's load falls on both.
- ray_first_record_latency_s: median time from a race starting to run (the manager hands it to the executor) to its
  first record in the run's buffer (what the page's live view draws from), over the measured Ray races; the
  in-process median is given beside it.
- ray_classroom_30_distinct_errors: 30 simulated students (bench/classroom.py: each a whole-app AppTest session that
  opens the race, predicts and presses Start within a few seconds), each with their own seed, every race on Ray
  through the app's process-wide manager (TLP_RAY_ADDRESS): sessions whose race failed or whose results were not drawn.

Run `python bench/bench_ray.py [--students 30] [--races 6]`; each figure prints as one JSON line. `run()` returns them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tl_core.data.datasets import DataSpec  # noqa: E402
from tl_core.experiments.race import race_lanes  # noqa: E402
from tl_core.jobs.manager import DONE, Executor, JobManager, LocalExecutor  # noqa: E402
from tl_core.jobs.work import RaceJob  # noqa: E402

N_PER_CLASS, SIMILARITY = 20, 0.8  # the race page's default data (ui.state DEFAULT_N_PER_CLASS, DEFAULT_SIMILARITY)
LIMIT = 2  # runs at once on both sides: the two cores
RAY_CPUS = 2


def _figure(name: str, value: float, unit: str, **extra: Any) -> dict:
    return {"figure": name, "value": round(value, 4), "unit": unit, **extra}


def start_ray(cpus: int = RAY_CPUS):
    """A local Ray instance (loopback node, no dashboard) and the executor connected to it."""
    from tl_core.jobs.ray_executor import RayExecutor

    ex = RayExecutor("local", init_kwargs=dict(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                                               log_to_driver=False))
    ex.connect()
    return ex


def race(seed: int) -> RaceJob:
    """The race page's default race with its own seed."""
    return RaceJob(tuple(race_lanes(seed=seed)), DataSpec(n_per_class=N_PER_CLASS, similarity=SIMILARITY, seed=seed))


def batch(executor: Executor, seeds: list[int]) -> dict:
    """Submit one race per seed (one owner each) at once; wait for all. Returns the wall time, every job's state and
    each job's start-to-first-record latency."""
    mgr = JobManager(limit=LIMIT, executor=executor)
    first: dict[int, float] = {}
    stop = threading.Event()
    t0 = time.monotonic()
    jobs = [mgr.submit(race(s), owner=f"student-{s}", label=f"race:{s}") for s in seeds]

    def watch() -> None:  # when each run's first record lands in its buffer
        while not stop.wait(0.005):
            now = time.monotonic()
            for j in jobs:
                if j.id not in first and len(j.buffer):
                    first[j.id] = now

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ok = mgr.wait_idle(timeout=1800)
    wall = time.monotonic() - t0
    stop.set()
    watcher.join()
    latency = [first[j.id] - j.started for j in jobs if j.id in first and j.started is not None]
    errors = [f"{j.label}: {j.state} {j.error}" for j in jobs
              if j.state != DONE or not all(r.ok for r in j.result.results.values())]
    return {"wall_s": wall, "races": len(jobs), "errors": errors + ([] if ok else ["timed out"]), "latency": latency}


def throughput(ex: Executor, races: int) -> list[dict]:
    """Races per minute through Ray against in-process, alternating batches; the first-record latency on the side."""
    local = LocalExecutor()
    batch(local, [900, 901])  # warm-ups: imports, the source model, Ray's worker processes
    batch(ex, [902, 903])
    runs: dict[str, list[dict]] = {"in-process": [], "ray": []}
    seed = 1000
    for _ in range(2):
        for name, executor in (("in-process", local), ("ray", ex)):
            runs[name].append(batch(executor, list(range(seed, seed + races))))
            seed += races
    rate = {k: 60 * sum(b["races"] for b in v) / sum(b["wall_s"] for b in v) for k, v in runs.items()}
    latency = {k: [x for b in v for x in b["latency"]] for k, v in runs.items()}
    errors = [e for v in runs.values() for b in v for e in b["errors"]]
    common = dict(races_per_batch=races, batches=2, limit=LIMIT, ray_cpus=RAY_CPUS, cores=os.cpu_count())
    return [
        _figure("ray_vs_inprocess_throughput_ratio", rate["ray"] / rate["in-process"], "ratio", goal=">= 0.8",
                ray_races_per_min=round(rate["ray"], 2), inprocess_races_per_min=round(rate["in-process"], 2),
                batch_wall_s={k: [round(b["wall_s"], 1) for b in v] for k, v in runs.items()}, errors=errors[:5],
                **common),
        _figure("ray_first_record_latency_s", statistics.median(latency["ray"]), "s", goal="reported",
                meaning="from a race starting to run (handed to the executor) to its first record in the run's "
                        "buffer, median over the measured Ray races",
                inprocess_median_s=round(statistics.median(latency["in-process"]), 4),
                ray_max_s=round(max(latency["ray"]), 3), **common),
    ]


def classroom(students: int) -> list[dict]:
    """The classroom bench's distinct-seeds scenario with every race on Ray (the app's own manager and pages)."""
    os.environ["TLP_RAY_ADDRESS"] = "auto"  # the process's Ray connection: the manager's executor reuses it
    os.environ.pop("TLP_MAX_CONCURRENT_JOBS", None)
    from classroom import simulate

    from tl_core.jobs.manager import get_manager

    done, seen = simulate(students, window_s=10.0, race_seed=lambda i: 100 + i)
    mgr = get_manager()
    errors = [f"student {s.index}: {s.error}" for s in done if s.error]
    ok = [s for s in done if s.error is None]
    return [_figure(f"ray_classroom_{students}_distinct_errors", len(errors), "sessions", goal="0",
                    executor=mgr.executor.name, limit=mgr.limit, errors=errors[:5], wall_s=round(seen["wall_s"], 1),
                    median_click_to_results_s=round(statistics.median(s.click_to_results_s for s in ok), 2)
                    if ok else None,
                    median_exec_s=round(statistics.median(s.exec_s for s in ok), 2) if ok else None,
                    max_wait_s=round(max(s.wait_s for s in ok), 2) if ok else None,
                    meaning="simulated students (whole-app AppTest sessions), each with their own seed, racing on a "
                            "local 2-CPU Ray instance: sessions whose race failed or whose results were not drawn")]


def run(students: int = 30, races: int = 6) -> list[dict]:
    import ray

    ex = start_ray()
    try:
        return [*throughput(ex, races), *classroom(students)]
    finally:
        ray.shutdown()


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--races", type=int, default=6, help="races per measured batch (two batches per side)")
    args = ap.parse_args(argv)
    for record in run(args.students, args.races):
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
