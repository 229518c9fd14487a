"""What a training run reports: step and epoch records, the final result, and a thread-safe live buffer.

Plain data (no torch), so the app can hold, chart and download results without importing torch.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class StartRecord:
    """The run is set up and about to take its first step."""

    total_steps: int  # optimizer steps scheduled (for progress and ETA)
    epochs: int  # epochs scheduled (may exceed the plan's, to reach min_steps)
    groups: tuple[str, ...]  # layer groups of the model, in forward order
    frozen: tuple[str, ...]  # groups frozen at the start
    cached: tuple[str, ...]  # frozen groups whose features were computed once
    epochs_planned: int = 0  # the plan's own epochs (0: not known, e.g. a record rebuilt from a finished run)
    schedule_note: str = ""  # why `epochs` differs from `epochs_planned` (empty when they agree)
    kind: str = "start"


@dataclass(frozen=True)
class StepRecord:
    """One optimizer step."""

    step: int  # 0-based global step
    epoch: int  # 0-based epoch the step belongs to
    loss: float  # training loss of the batch
    lr: dict[str, float]  # learning rate per layer group (0 while frozen)
    grad_norm: dict[str, float | None]  # gradient L2 norm per group; None = frozen
    update_ratio: dict[str, float | None] | None  # ‖Δw‖/‖w‖ per group on sampled steps, else None
    kind: str = "step"


@dataclass(frozen=True)
class EpochRecord:
    """The end of one epoch."""

    epoch: int  # 0-based
    train_loss: float
    train_acc: float
    val_loss: float | None  # None on epochs without a validation pass (long runs validate ~10 times)
    val_acc: float | None
    elapsed_s: float  # since the run started
    thawed: tuple[str, ...] = ()  # groups unfrozen at the start of this epoch (gradual unfreezing)
    kind: str = "epoch"


@dataclass(frozen=True)
class EventRecord:
    """Something worth telling the learner (feature cache built, a group thawed, epochs raised...)."""

    message: str
    kind: str = "event"


Record = StartRecord | StepRecord | EpochRecord | EventRecord


@dataclass
class Evaluation:
    """How the trained model does on held-out data."""

    accuracy: float
    loss: float
    per_class: dict[str, float]  # class -> accuracy
    confusion: list[list[int]]  # [true][predicted] counts
    top_losses: list[dict[str, Any]]  # worst examples: index, loss, true, pred, prob
    classes: tuple[str, ...]


@dataclass
class RunResult:
    """Everything a finished, cancelled or diverged run produced."""

    status: str  # "finished", "cancelled" or "diverged"
    reason: str  # a sentence for the learner
    plan: dict[str, Any]  # Plan.to_dict() of the run
    groups: tuple[str, ...]  # layer groups of the trained model, in forward order (heatmap rows)
    frozen: tuple[str, ...]  # groups frozen at the start
    steps: list[StepRecord] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    evaluation: Evaluation | None = None
    drift: dict[str, float] = field(default_factory=dict)  # group -> ‖w − w₀‖/‖w₀‖
    bn_drift: dict[str, float] = field(default_factory=dict)  # group -> relative change of BatchNorm statistics
    wall_s: float = 0.0
    trainable_params: int = 0
    total_params: int = 0
    cached_prefix: tuple[str, ...] = ()  # groups whose features were computed once and cached
    epochs_planned: int = 0  # the plan's epochs
    epochs_scheduled: int = 0  # epochs the run set out to train (raised above the plan's to reach min_steps)
    epochs_run: int = 0  # epochs that finished
    steps_scheduled: int = 0  # optimizer steps the run set out to take
    steps_run: int = 0  # optimizer steps taken
    schedule_note: str = ""  # why the epochs or steps run differ from the plan's, as a sentence ("" if they agree)
    device: str = "cpu"
    state_dict: dict[str, Any] | None = None  # trained weights (CPU tensors), for download

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    @property
    def final_val_acc(self) -> float | None:
        if self.evaluation is not None:
            return self.evaluation.accuracy
        done = [e.val_acc for e in self.epochs if e.val_acc is not None]
        return done[-1] if done else None

    def history_rows(self) -> list[dict[str, Any]]:
        """Epoch records as flat dicts (for tables and CSV)."""
        return [{k: v for k, v in asdict(e).items() if k != "kind"} for e in self.epochs]


class RecordBuffer:
    """A thread-safe append-only list of records: the trainer writes, the UI reads snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Record] = []

    def append(self, record: Record) -> None:
        with self._lock:
            self._items.append(record)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def snapshot(self, start: int = 0) -> list[Record]:
        """A copy of the records from index `start` on."""
        with self._lock:
            return self._items[start:]
