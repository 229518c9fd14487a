"""A run's records in columns (History), built live from a job's records or from a finished run, and its CSV export.

The same History serves the live view, the final results, the race and the labs; the charts
(ui.charts) and the progress texts (tl_core.jobs.progress) read it. Plain data: no torch, no plotly.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tl_core.training.records import EpochRecord, EventRecord, RunResult, StartRecord, StepRecord


@dataclass
class History:
    """A run's records in columns, ready to chart; build it from live records or from a finished RunResult."""

    groups: tuple[str, ...] = ()  # layer groups in forward order (heatmap rows)
    frozen: tuple[str, ...] = ()  # groups frozen at the start
    cached: tuple[str, ...] = ()  # frozen groups whose features were computed once
    total_steps: int | None = None  # planned optimizer steps (None until the run has started)
    total_epochs: int | None = None  # planned epochs (None until the run has started)
    steps: list[int] = field(default_factory=list)  # 0-based step numbers
    step_epoch: list[int] = field(default_factory=list)  # the epoch of each step
    loss: list[float] = field(default_factory=list)  # training loss per step
    grad: dict[str, list[float | None]] = field(default_factory=dict)  # group -> gradient norm per step; None = frozen
    lr: dict[str, list[float]] = field(default_factory=dict)  # group -> learning rate per step
    ratio_steps: list[int] = field(default_factory=list)  # steps on which the update ratio was sampled
    ratio: dict[str, list[float | None]] = field(default_factory=dict)  # group -> ‖Δw‖/‖w‖ per sampled step
    epochs: list[EpochRecord] = field(default_factory=list)  # one per finished epoch
    events: list[str] = field(default_factory=list)  # messages for the learner

    def add(self, rec: Any) -> None:
        """Take one record (StartRecord, StepRecord, EpochRecord or EventRecord); anything else is ignored."""
        if isinstance(rec, StepRecord):
            for g in rec.grad_norm:
                if g not in self.grad:  # a group first seen here (no StartRecord): pad its earlier steps
                    self.grad[g] = [None] * len(self.steps)
                    self.lr[g] = [0.0] * len(self.steps)
                    if g not in self.groups:
                        self.groups = (*self.groups, g)
            self.steps.append(rec.step)
            self.step_epoch.append(rec.epoch)
            self.loss.append(rec.loss)
            for g in self.grad:
                v = rec.grad_norm.get(g)
                self.grad[g].append(v if v is not None and math.isfinite(v) else None)
                self.lr[g].append(rec.lr.get(g, 0.0))
            if rec.update_ratio is not None:
                self.ratio_steps.append(rec.step)
                for g in self.groups:
                    v = rec.update_ratio.get(g)
                    self.ratio.setdefault(g, [None] * (len(self.ratio_steps) - 1)).append(
                        v if v is not None and math.isfinite(v) else None)
        elif isinstance(rec, EpochRecord):
            self.epochs.append(rec)
        elif isinstance(rec, EventRecord):
            self.events.append(rec.message)
        elif isinstance(rec, StartRecord):
            self.groups, self.frozen, self.cached = tuple(rec.groups), tuple(rec.frozen), tuple(rec.cached)
            self.total_steps, self.total_epochs = rec.total_steps, rec.epochs
            for g in self.groups:
                self.grad.setdefault(g, [None] * len(self.steps))
                self.lr.setdefault(g, [0.0] * len(self.steps))

    @classmethod
    def from_records(cls, records: Iterable[Any]) -> History:
        """A History from records in the order the trainer emitted them."""
        h = cls()
        for rec in records:
            h.add(rec)
        return h

    @classmethod
    def from_result(cls, result: RunResult) -> History:
        """A History from a finished, cancelled or diverged run."""
        h = cls()
        h.add(StartRecord(total_steps=result.steps_scheduled or len(result.steps),
                          epochs=result.epochs_scheduled or len(result.epochs), groups=tuple(result.groups),
                          frozen=tuple(g for g in result.groups if g in result.frozen), cached=result.cached_prefix,
                          epochs_planned=result.epochs_planned, schedule_note=result.schedule_note))
        for rec in (*result.events, *result.steps, *result.epochs):
            h.add(rec)
        return h

    @property
    def started(self) -> bool:
        """Whether the run has reported its setup (groups, planned steps)."""
        return self.total_steps is not None

    def thawed_at(self) -> dict[str, int]:
        """Groups frozen at the start that later got gradients -> the first such step (gradual unfreezing)."""
        out = {}
        for g in self.frozen:
            for s, v in zip(self.steps, self.grad.get(g, [])):
                if v is not None:
                    out[g] = s
                    break
        return out

    def frozen_throughout(self) -> tuple[str, ...]:
        """Groups that never had a gradient in the steps so far."""
        return tuple(g for g in self.groups if self.steps and all(v is None for v in self.grad.get(g, [])))

    def median_grad(self) -> dict[str, float]:
        """Median gradient norm of every group that had gradients."""
        return {g: statistics.median(vals) for g in self.groups
                if (vals := [v for v in self.grad.get(g, []) if v is not None])}

    def val_points(self) -> list[tuple[int, float]]:
        """(1-based epoch, validation accuracy) of every validated epoch."""
        return [(e.epoch + 1, e.val_acc) for e in self.epochs if e.val_acc is not None]


def race_histories(items: Iterable[tuple[str, Any]]) -> dict[str, History]:
    """(lane key, record) pairs, as emitted by tl_core.experiments.race.run_race, -> one History per lane in race order."""
    out: dict[str, History] = {}
    for lane, rec in items:
        out.setdefault(lane, History()).add(rec)
    return out


def history_csv(result: RunResult) -> str:
    """The run's per-epoch history as CSV text (epoch 1-based; empty cells where there was no validation)."""
    buf = io.StringIO()
    cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "elapsed_s", "thawed"]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for row in result.history_rows():
        w.writerow({**row, "epoch": row["epoch"] + 1, "thawed": " ".join(row["thawed"])})
    return buf.getvalue()


def steps_csv(result: RunResult) -> str:
    """The run's per-step records as CSV text: loss, then per group the lr, gradient norm and update ratio."""
    groups = list(result.groups)
    cols = ["step", "epoch", "loss"] + [f"{k}_{g}" for k in ("lr", "grad_norm", "update_ratio") for g in groups]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for s in result.steps:
        ratio = s.update_ratio or {}
        w.writerow([s.step + 1, s.epoch + 1, s.loss, *(s.lr.get(g, "") for g in groups),
                    *("" if s.grad_norm.get(g) is None else s.grad_norm[g] for g in groups),
                    *("" if ratio.get(g) is None else ratio[g] for g in groups)])
    return buf.getvalue()


def what_ran(result: RunResult) -> str:
    """The epochs and optimiser steps a run actually took, and why they differ from its plan, in a sentence.

    Args:
        result: A finished, stopped or diverged run.

    Returns:
        E.g. "Ran 25 epochs (100 optimiser steps). 5 images per class make 4 steps per epoch: running 25 epochs
        instead of 10 so training gets at least 100 steps."
    """
    epochs = f"{result.epochs_run} epoch{'' if result.epochs_run == 1 else 's'}"
    text = f"Ran {epochs} ({result.steps_run} optimiser step{'' if result.steps_run == 1 else 's'})."
    return f"{text} {result.schedule_note}" if result.schedule_note else text
