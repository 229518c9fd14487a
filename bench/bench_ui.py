"""UI benchmark: how much the Train page's live redraws slow the default run down, and what one redraw costs.

The live fragment rebuilds its charts from the job's record buffer every `tl_core.live.LIVE_EVERY_S` seconds
while the run trains on a worker thread, in the same process. Here a thread does the same work at the same rate
(history from the buffer snapshot, progress, the three live charts, and their JSON as Streamlit serialises them),
and the default run (the default plan on 20 images per class at similarity 0.8) is timed with and without it.
A last figure times the default run next to a CPU-bound neighbour process, as on a shared classroom server.
Run `python bench/bench_ui.py`; each figure prints as one JSON line. `run()` returns the same records.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from tl_core.jobs import progress
from tl_core.training import history
from ui import live
from ui.charts import training
from tl_core.training.plan import make_plan  # noqa: E402
from tl_core.training.records import RecordBuffer  # noqa: E402
from tl_core.data.datasets import DataSpec, make_data  # noqa: E402
from tl_core.training.trainer import train  # noqa: E402

DEFAULT_DATA = DataSpec(n_per_class=20, similarity=0.8, seed=0)  # ui.state's default data knobs
LONG_EPOCHS = 400  # the default plan run 40 times longer (1200 steps): the steady state of the live redraws


def _figure(name: str, value: float, unit: str, **extra) -> dict:
    return {"figure": name, "value": round(value, 4), "unit": unit, **extra}


def redraw(buffer: RecordBuffer, started: float) -> None:
    """One live redraw, as the Train page's fragment does it (without the websocket)."""
    h = history.History.from_records(buffer.snapshot())
    progress.run_progress(h, time.perf_counter() - started)
    for chart in training.live_charts(h).values():
        chart.fig.to_json()


def timed_run(with_redraws: bool, epochs: int = 10) -> tuple[float, list[float]]:
    """Wall time of the default run (or the same plan with more epochs), and the duration of every redraw done
    meanwhile: one right at the start, as the page's full rerun after Start, then one per refresh interval."""
    tr, va = make_data(DEFAULT_DATA)
    plan = make_plan("finetune_top", epochs=epochs)
    buffer, stop, costs = RecordBuffer(), threading.Event(), []
    t0 = time.perf_counter()

    def redrawer() -> None:
        while True:
            t = time.perf_counter()
            redraw(buffer, t0)
            costs.append(time.perf_counter() - t)
            if stop.wait(live.LIVE_EVERY_S):
                return

    thread = threading.Thread(target=redrawer, daemon=True) if with_redraws else None
    if thread is not None:
        thread.start()
    result = train(plan, tr, va, on_record=buffer.append)
    wall = time.perf_counter() - t0
    stop.set()
    if thread is not None:
        thread.join()
    assert result.ok, result.reason
    return wall, costs


def slowdown(pairs: int, epochs: int = 10) -> tuple[float, dict]:
    """min(run with redraws) / min(run without), over alternating pairs, and the details."""
    ratios, plain, live, costs = [], [], [], []
    for i in range(pairs):
        order = (False, True) if i % 2 == 0 else (True, False)  # alternate which goes first
        walls = {}
        for with_redraws in order:
            walls[with_redraws], c = timed_run(with_redraws, epochs)
            costs += c
        plain.append(walls[False])
        live.append(walls[True])
        ratios.append(walls[True] / walls[False])
    return min(live) / min(plain), dict(
        median_pair_ratio=round(statistics.median(ratios), 3), pair_ratios=[round(r, 3) for r in ratios],
        plain_s=round(statistics.median(plain), 3), fastest_plain_s=round(min(plain), 3),
        with_redraws_s=round(statistics.median(live), 3), redraws_per_run=round(len(costs) / pairs, 1),
        redraw_ms=round(statistics.median(costs) * 1000, 1))


def ui_training_slowdown(pairs: int = 8) -> list[dict]:
    """The default run with live redraws over the same run without, in alternating pairs; the same for a run
    LONG_EPOCHS epochs long (steady state); and the cost of one redraw of a full history.

    Each ratio is that of the fastest run of each kind (like timeit, this shrugs off other processes on a
    shared machine); the median of the per-pair ratios is reported alongside.
    """
    timed_run(False)  # warm-up: loads the source model, builds the data, imports plotly's validators
    ratio, details = slowdown(pairs)
    long_ratio, long_details = slowdown(max(2, pairs // 2), epochs=LONG_EPOCHS)
    tr, va = make_data(DEFAULT_DATA)
    full = RecordBuffer()  # a redraw at the end of a run (every record in the buffer) is the most expensive one
    train(make_plan("finetune_top"), tr, va, on_record=full.append, keep_weights=False)
    t = time.perf_counter()
    for _ in range(5):
        redraw(full, t)
    full_ms = (time.perf_counter() - t) / 5 * 1000
    return [
        _figure("ui_training_slowdown", ratio, "ratio", goal="<= 1.10", refresh_s=live.LIVE_EVERY_S, **details),
        _figure("ui_training_slowdown_long_run", long_ratio, "ratio", goal="<= 1.10", epochs=LONG_EPOCHS,
                **long_details),
        _figure("default_run_wall_s", details["plain_s"], "s", goal="<= 10"),
        _figure("ui_redraw_full_history_ms", full_ms, "ms"),
    ]


def busy_neighbour(repeats: int = 2) -> dict:
    """The default run next to one CPU-bound process (another learner's job, or a browser on the same machine),
    with torch's default intra-op threads and with one thread. On two cores, threads that wait for each other
    at every operation stall whenever the neighbour holds one of the cores."""
    default_threads = torch.get_num_threads()
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        walls = {}
        for threads in (default_threads, 1):
            torch.set_num_threads(threads)
            walls[threads] = min(timed_run(False)[0] for _ in range(repeats))
    finally:
        torch.set_num_threads(default_threads)
        burner.kill()
        burner.wait()
    return _figure("default_run_wall_s_busy_neighbour", walls[default_threads], "s", goal="<= 10",
                   torch_threads=default_threads, one_thread_s=round(walls[1], 3))


def run() -> list[dict]:
    return [*ui_training_slowdown(), busy_neighbour()]


if __name__ == "__main__":
    for fn in (ui_training_slowdown, lambda: [busy_neighbour()]):
        for record in fn():
            print(json.dumps(record), flush=True)
