"""Where background work stands: the one Progress type, the one Cancelled, and the texts of progress bars and queues.

Every job reports through these: the trainer's records become a run's progress (`run_progress`), a race's
lanes one progress over the race (`race_progress`), and the experiments emit `Progress` records themselves
(`experiment_progress`). A job that is asked to stop raises `Cancelled`. Plain data: no torch, no plotly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tl_core.fmt import pct
from tl_core.training.history import History


class Cancelled(Exception):
    """A job was asked to stop (its cancel event was set); raised inside the work, caught by whoever ran it."""


@dataclass(frozen=True)
class Progress:
    """Where a running job stands, for a progress bar."""

    fraction: float  # 0..1 of the whole job
    text: str  # e.g. "Step 40 of 100 · epoch 14 of 34 · 1 s elapsed · about 2 s left"
    eta_s: float | None = None  # seconds left, when it can be estimated
    kind: str = "progress"  # experiments stream these as records too


def run_progress(h: History, elapsed_s: float) -> Progress:
    """How far a run is, with an ETA from the steps done so far.

    Args:
        h: The run's history so far.
        elapsed_s: Seconds since the job started running.

    Returns:
        A Progress; before the first record it reports the setup phase.
    """
    if not h.started or not h.total_steps:
        return Progress(0.0, f"Setting up the model and data… {elapsed_s:.0f} s", None)
    done = len(h.steps)
    frac = min(done / h.total_steps, 1.0)
    eta = elapsed_s / done * (h.total_steps - done) if done else None
    epoch = (h.step_epoch[-1] + 1) if h.step_epoch else 0
    text = f"Step {done} of {h.total_steps} · epoch {epoch} of {h.total_epochs} · {elapsed_s:.0f} s elapsed"
    if eta is not None and done < h.total_steps:
        text += f" · about {math.ceil(eta)} s left"
    return Progress(frac, text, eta)


def race_progress(histories: dict[str, History], lanes: Sequence[str], elapsed_s: float) -> Progress:
    """Progress over the whole race: finished lanes plus the running lane's share."""
    from tl_core.experiments.race import lane_label  # not at the top: tl_core.experiments imports this module
    n = max(len(lanes), 1)
    running = [k for k in lanes if k in histories]
    if not running:
        return Progress(0.0, f"Setting up the first lane… {elapsed_s:.0f} s", None)
    current = running[-1]
    idx = lanes.index(current)
    h = histories[current]
    lane_frac = (len(h.steps) / h.total_steps) if h.total_steps else 0.0
    frac = min((idx + min(lane_frac, 1.0)) / n, 1.0)
    eta = elapsed_s / frac * (1 - frac) if frac > 0.02 else None
    text = f"Lane {idx + 1} of {len(lanes)}: {lane_label(current)} · {pct(lane_frac)} of its steps · {elapsed_s:.0f} s"
    if eta is not None:
        text += f" · about {math.ceil(eta)} s left"
    return Progress(frac, text, eta)


def queue_message(runs_ahead: int) -> str:
    """What a queued learner reads, e.g. "2 runs ahead of you"."""
    if runs_ahead <= 0:
        return "Your run starts next."
    if runs_ahead == 1:
        return "1 run ahead of you; yours starts after it."
    return f"{runs_ahead} runs ahead of you; yours starts after them."

def experiment_progress(records: Sequence[Any], elapsed_s: float) -> Progress:
    """The latest Progress record an experiment emitted, with the elapsed time and an ETA added to its text."""
    latest = next((r for r in reversed(records) if isinstance(r, Progress)), None)
    if latest is None:
        return Progress(0.0, f"Starting… {elapsed_s:.0f} s", None)
    frac = min(max(latest.fraction, 0.0), 1.0)
    eta = elapsed_s / frac * (1 - frac) if frac > 0.03 else None
    text = f"{latest.text} · {elapsed_s:.0f} s"
    if eta is not None and frac < 1:
        text += f" · about {math.ceil(eta)} s left"
    return Progress(frac, text, eta)
