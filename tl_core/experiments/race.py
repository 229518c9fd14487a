"""The race: several strategies trained on the same data and seed, one after another, compared fairly.

Also the sweep behind the benchmarks (sizes × similarities × strategies, with the winning strategy per cell), and
the reading of a finished race: its table and the verdict on the learner's prediction. Importing this module is
torch-free; training imports the trainer.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tl_core.fmt import accuracy, accuracy_value, ordinal
from tl_core.training.plan import STRATEGIES, Plan, fit_batch_size, make_plan
from tl_core.training.records import Record, RunResult

if TYPE_CHECKING:
    from tl_core.data.datasets import TensorData

DEFAULT_RACE = ("feature_extract", "finetune_top", "finetune_all", "scratch")  # freeze vs fine-tune vs scratch
SWEEP_SIZES = (10, 30, 100, 250)  # images per class: two "little", two "lots" (decisions.LOTS_PER_CLASS = 100)
SWEEP_SIMILARITIES = (1.0, 0.25)  # similar (new shapes, same look) and different (grating orientation, shifted)


@dataclass(frozen=True)
class Lane:
    """One competitor."""

    key: str  # unique within the race, e.g. "finetune_top" or "my_plan"
    label: str  # shown in legends and tables
    plan: Plan


def race_lanes(strategies: tuple[str, ...] | list[str] = DEFAULT_RACE, *, arch: str = "shapesnet", seed: int = 0,
               own_plan: Plan | None = None, **overrides) -> list[Lane]:
    """Lanes for the given strategies (default settings each), plus the learner's own plan if given.

    Raises:
        ValueError: If no lane is left or a strategy is unknown.
    """
    lanes = [Lane(s, STRATEGIES[s].label if s in STRATEGIES else s, make_plan(s, arch=arch, seed=seed, **overrides))
             for s in strategies]
    if own_plan is not None:
        lanes.append(Lane("my_plan", "My plan", replace(own_plan, seed=seed)))
    if not lanes:
        raise ValueError("Pick at least one strategy to race.")
    return lanes


def run_race(lanes: list[Lane], train_data: TensorData, val_data: TensorData, *,
             on_record: Callable[[str, Record], None] | None = None, cancel: threading.Event | None = None,
             **trainer_kwargs) -> dict[str, RunResult]:
    """Train every lane on the same data and seed, in order. A cancel stops the current lane and skips the rest.

    Args:
        lanes: The competitors.
        train_data / val_data: Shared by every lane.
        on_record: Called with (lane key, record) for every record.
        cancel: Stops the race.
        **trainer_kwargs: Passed to `tl_core.training.trainer.train` (e.g. base, keep_weights).

    Returns:
        lane key -> result, for every lane that started.
    """
    from tl_core.training.trainer import train

    cancel = cancel or threading.Event()
    results: dict[str, RunResult] = {}
    for lane in lanes:
        if cancel.is_set():
            break
        plan = replace(lane.plan, batch_size=fit_batch_size(lane.plan.batch_size, len(train_data)))
        cb = (lambda r, k=lane.key: on_record(k, r)) if on_record is not None else None
        results[lane.key] = train(plan, train_data, val_data, on_record=cb, cancel=cancel, **trainer_kwargs)
    return results


def race_table(lanes: list[Lane], results: dict[str, RunResult]) -> list[dict]:
    """One row per finished lane: accuracy, wall time, trainable parameters; best accuracy first."""
    rows = []
    for lane in lanes:
        r = results.get(lane.key)
        if r is None:
            continue
        rows.append({"lane": lane.key, "strategy": lane.label, "status": r.status,
                     "accuracy": r.final_val_acc, "wall_s": round(r.wall_s, 2),
                     "trainable_params": r.trainable_params, "total_params": r.total_params,
                     "epochs_run": r.epochs_run, "steps_run": r.steps_run, "schedule_note": r.schedule_note})
    return sorted(rows, key=lambda row: -(row["accuracy"] if row["accuracy"] is not None else -1))


def winner(results: dict[str, RunResult]) -> str | None:
    """The lane with the best final accuracy among finished lanes (ties: the first in race order)."""
    best, best_acc = None, -1.0
    for key, r in results.items():
        acc = r.final_val_acc
        if r.ok and acc is not None and acc > best_acc + 1e-9:
            best, best_acc = key, acc
    return best


# ---- the sweep -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepCell:
    """One (size, similarity, seed) cell of a sweep: accuracy per strategy and the winner."""

    n_per_class: int
    similarity: float
    seed: int
    accuracy: dict[str, float]  # strategy -> final validation accuracy
    wall_s: dict[str, float]  # strategy -> seconds

    @property
    def winner(self) -> str:
        return max(self.accuracy, key=lambda s: self.accuracy[s])


def run_sweep(sizes: tuple[int, ...] = SWEEP_SIZES, similarities: tuple[float, ...] = SWEEP_SIMILARITIES,
              strategies: tuple[str, ...] = DEFAULT_RACE,
              seeds: tuple[int, ...] = (0,), *, arch: str = "shapesnet", n_val_per_class: int = 50,
              plan_overrides: dict | None = None, on_cell: Callable[[SweepCell], None] | None = None, cancel: threading.Event | None = None,
              **trainer_kwargs) -> list[SweepCell]:
    """Train every strategy on every (size, similarity, seed); report each cell as soon as it is done.

    Validation runs once, at the end of each run, to keep the sweep fast. `plan_overrides` are Plan fields
    applied to every strategy (e.g. epochs); other keyword arguments go to the trainer.
    """
    from tl_core.data.datasets import DataSpec, make_data

    cancel = cancel or threading.Event()
    trainer_kwargs.setdefault("keep_weights", False)
    trainer_kwargs.setdefault("max_val_evals", 1)
    cells = []
    for n, sim, seed in itertools.product(sizes, similarities, seeds):
        if cancel.is_set():
            break
        tr, va = make_data(DataSpec(n_per_class=n, similarity=sim, seed=seed, n_val_per_class=n_val_per_class))
        lanes = race_lanes(strategies, arch=arch, seed=seed, **(plan_overrides or {}))
        acc, secs = {}, {}
        for lane in lanes:
            t = time.perf_counter()
            res = run_race([lane], tr, va, cancel=cancel, **trainer_kwargs).get(lane.key)
            if res is None or not res.ok:
                break
            acc[lane.key], secs[lane.key] = res.final_val_acc, time.perf_counter() - t
        if len(acc) < len(lanes):
            break
        cell = SweepCell(n, sim, seed, acc, secs)
        cells.append(cell)
        if on_cell is not None:
            on_cell(cell)
    return cells


# ---- reading a race ---------------------------------------------------------------------------
def lane_label(key: str) -> str:
    """A lane's display name: the strategy's label, or "My plan"."""
    return STRATEGIES[key].label if key in STRATEGIES else ("My plan" if key == "my_plan" else key)


def race_rows_for_display(rows: list[dict], *, as_shown: bool = False) -> list[dict]:
    """tl_core.experiments.race.race_table rows, with readable column names, for a table.

    Args:
        rows: race_table rows.
        as_shown: Accuracies as the percentages the verdict writes (tl_core.fmt.accuracy_value; show them with
            fmt.ACCURACY_PRINTF), instead of fractions.
    """
    def acc(x: float | None) -> float | None:
        return x if x is None or not as_shown else accuracy_value(x)

    return [{"Rank": i + 1, "Strategy": r["strategy"], "Validation accuracy": acc(r["accuracy"]),
             "Epochs run": r["epochs_run"], "Steps run": r["steps_run"], "Wall time (s)": r["wall_s"],
             "Trainable parameters": r["trainable_params"], "Total parameters": r["total_params"],
             "Status": r["status"], "Why the epochs differ from the plan": r["schedule_note"]}
            for i, r in enumerate(rows)]


def race_verdict(rows: list[dict], predicted: str | None) -> str:
    """One sentence comparing the learner's prediction with the result.

    Args:
        rows: tl_core.experiments.race.race_table rows, best accuracy first.
        predicted: The lane key the learner picked before the start.

    Returns:
        E.g. "You predicted From scratch; Fine-tune only the final layers won with 93.5% (From scratch: 34%, 4th of
        4)." Accuracies are written by tl_core.fmt.accuracy, as in the race's table.
    """
    done = [r for r in rows if r["accuracy"] is not None and r["status"] == "finished"]
    if not done:
        return "No lane finished, so there is no winner to compare with."
    win = done[0]
    if predicted is None:
        return f"{win['strategy']} won with {accuracy(win['accuracy'])}."
    mine = next((r for r in rows if r["lane"] == predicted), None)
    if mine is None or mine["accuracy"] is None:
        return (f"Your pick, {lane_label(predicted)}, did not finish; {win['strategy']} won with "
                f"{accuracy(win['accuracy'])}.")
    if mine["lane"] == win["lane"] or mine["accuracy"] >= win["accuracy"] - 1e-9:
        return f"You called it: {mine['strategy']} won with {accuracy(mine['accuracy'])}."
    rank = next(i for i, r in enumerate(rows, start=1) if r["lane"] == predicted)
    return (f"You predicted {mine['strategy']}; {win['strategy']} won with {accuracy(win['accuracy'])} "
            f"({mine['strategy']}: {accuracy(mine['accuracy'])}, {ordinal(rank)} of {len(rows)}).")