"""Job functions the pages hand to the job manager: one training run, or a race, on shapes-world data.

Each factory returns `fn(ctx)` for `tl_core.jobs.manager.JobManager.submit`; it builds (or reuses) the data on the worker
thread, streams every record into `ctx.buffer` and stops when `ctx.cancel` is set.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from tl_core.jobs.manager import JobContext
from tl_core.training.plan import Plan
from tl_core.experiments.race import Lane, run_race
from tl_core.training.records import RunResult
from tl_core.data.datasets import DataSpec, make_data
from tl_core.training.trainer import train


@dataclass
class TrainOutcome:
    """What a training job returns: the run's result and the data it ran on (for the validation images)."""

    result: RunResult
    data: DataSpec


@dataclass
class RaceOutcome:
    """What a race job returns: the lanes in race order, each lane's result, and the learner's prediction."""

    lanes: list[Lane]  # in race order
    results: dict[str, RunResult]  # lane key -> result, for every lane that started
    predicted: str | None  # the lane key the learner picked before the start
    data: DataSpec  # the data every lane trained on


def train_job(plan: Plan, data: DataSpec) -> Callable[[JobContext], TrainOutcome]:
    """A job that trains one plan on the data; records go to ctx.buffer.

    Args:
        plan: A valid plan.
        data: The shapes-world target data.
    """
    def fn(ctx: JobContext) -> TrainOutcome:
        tr, va = make_data(data)
        return TrainOutcome(train(plan, tr, va, on_record=ctx.emit, cancel=ctx.cancel), data)

    return fn


def race_job(lanes: list[Lane], data: DataSpec, predicted: str | None) -> Callable[[JobContext], RaceOutcome]:
    """A job that races the lanes on the same data and seed; ctx.buffer receives (lane key, record) pairs.

    Args:
        lanes: The competitors (tl_core.experiments.race.race_lanes).
        data: The shapes-world target data.
        predicted: The learner's predicted winner (a lane key), returned with the outcome.
    """
    def fn(ctx: JobContext) -> RaceOutcome:
        tr, va = make_data(data)
        results = run_race(lanes, tr, va, on_record=lambda lane, rec: ctx.emit((lane, rec)), cancel=ctx.cancel,
                           keep_weights=False)
        return RaceOutcome(list(lanes), results, predicted, data)

    return fn


def weights_bytes(state_dict: dict[str, Any]) -> bytes:
    """A state_dict as the bytes of a `torch.save` file (load with torch.load(..., weights_only=True))."""
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    return buf.getvalue()
