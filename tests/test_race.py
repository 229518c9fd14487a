"""The race and the sweep: every lane trains on the same data, the table and the winner come from the runs."""

from __future__ import annotations

import pytest

from tl_core.training.plan import make_plan
from tl_core.experiments.race import race_lanes, race_table, run_race, run_sweep, winner
from tl_core.data.datasets import DataSpec, make_data
from tl_core.models.source import load_source_model


def test_race_fills_its_table_with_real_results():
    tr, va = make_data(DataSpec(n_per_class=8, similarity=1.0, n_val_per_class=10))
    own = make_plan("finetune_top", freeze_first=1, epochs=1, min_steps=10)
    lanes = race_lanes(("feature_extract", "scratch"), own_plan=own, epochs=1, min_steps=10)
    seen = []
    results = run_race(lanes, tr, va, base=load_source_model().model, on_record=lambda k, r: seen.append(k))
    assert list(results) == ["feature_extract", "scratch", "my_plan"]
    assert set(seen) == set(results)
    table = race_table(lanes, results)
    assert [row["accuracy"] for row in table] == sorted((r.final_val_acc for r in results.values()), reverse=True)
    by_lane = {row["lane"]: row for row in table}
    assert by_lane["feature_extract"]["trainable_params"] < by_lane["scratch"]["trainable_params"]
    assert winner(results) == table[0]["lane"]
    assert results["my_plan"].plan["frozen"] == ["block1"]
    with pytest.raises(ValueError, match="at least one"):
        race_lanes(())


def test_sweep_reports_one_cell_per_size_and_similarity():
    cells = []
    out = run_sweep((5, 8), (1.0, 0.25), ("feature_extract", "early_classifier"), n_val_per_class=5,
                    plan_overrides={"min_steps": 5, "epochs": 1}, on_cell=cells.append)
    assert [(c.n_per_class, c.similarity) for c in out] == [(5, 1.0), (5, 0.25), (8, 1.0), (8, 0.25)]
    assert cells == out
    for c in out:
        assert set(c.accuracy) == {"feature_extract", "early_classifier"}
        assert c.winner in c.accuracy and c.accuracy[c.winner] == max(c.accuracy.values())


# ---- one number, one rounding rule -------------------------------------------------------------------------------
def _rows(*accs: float) -> list[dict]:
    return [{"lane": f"l{i}", "strategy": f"Lane {i}", "status": "finished", "accuracy": a, "wall_s": 1.0,
             "trainable_params": 1, "total_params": 2, "epochs_run": 3, "steps_run": 9, "schedule_note": ""}
            for i, a in enumerate(accs)]


def test_the_verdict_and_the_table_write_an_accuracy_the_same_way():
    from tl_core.experiments.race import race_rows_for_display, race_verdict
    from tl_core.fmt import ACCURACY_PRINTF, accuracy

    rows = _rows(0.975, 0.935, 0.94)
    assert race_verdict(rows, None) == "Lane 0 won with 97.5%."  # not "98%"
    assert race_verdict(rows, "l0") == "You called it: Lane 0 won with 97.5%."
    assert race_verdict(rows, "l1") == "You predicted Lane 1; Lane 0 won with 97.5% (Lane 1: 93.5%, 2nd of 3)."
    shown = [r["Validation accuracy"] for r in race_rows_for_display(rows, as_shown=True)]
    assert shown == [97.5, 93.5, 94.0]
    assert [ACCURACY_PRINTF.replace("%g", f"{v:g}").replace("%%", "%") for v in shown] == [
        accuracy(0.975), accuracy(0.935), accuracy(0.94)] == ["97.5%", "93.5%", "94%"]


def test_a_finished_race_chart_says_who_finished_best_not_so_far():
    from tl_core.training.history import History
    from ui.charts.race import race_curves_chart

    tr, va = make_data(DataSpec(n_per_class=5, similarity=1.0, n_val_per_class=5))
    lanes = race_lanes(("feature_extract", "scratch"), epochs=1, min_steps=3)
    results = run_race(lanes, tr, va, base=load_source_model().model, keep_weights=False)
    histories = {k: History.from_result(r) for k, r in results.items()}
    live = race_curves_chart(histories).takeaway
    final = race_curves_chart(histories, final=True, finals={k: r.final_val_acc for k, r in results.items()}).takeaway
    assert "best so far" in live and "so far" not in final and "finished best" in final
    best = max(results, key=lambda k: results[k].final_val_acc)
    from tl_core.fmt import accuracy

    assert accuracy(results[best].final_val_acc) in final


# ---- shared races: what identifies one --------------------------------------------------------------------------
def test_a_race_is_identified_by_what_determines_its_result_not_by_the_prediction():
    from tl_core.jobs.work import RaceJob, TrainJob

    lanes = tuple(race_lanes(("feature_extract", "scratch"), seed=3))
    data = DataSpec(n_per_class=5, seed=3)
    key = RaceJob(lanes, data, "scratch").share_key()
    assert key is not None and key == RaceJob(lanes, data, "feature_extract").share_key()  # each keeps their pick
    assert key != RaceJob(tuple(race_lanes(("feature_extract", "scratch"), seed=4)), DataSpec(n_per_class=5, seed=4)
                          ).share_key()  # another seed
    assert key != RaceJob(lanes, DataSpec(n_per_class=6, seed=3)).share_key()  # other data
    assert key != RaceJob(tuple(race_lanes(("feature_extract", "scratch"), seed=3, epochs=2)), data).share_key()
    train = TrainJob(make_plan("finetune_top", seed=3), data).share_key()
    assert train is not None and train != key


def test_a_non_deterministic_gpu_race_is_never_shared(monkeypatch):
    import threading

    import torch

    from tl_core.jobs.manager import JobManager
    from tl_core.jobs.work import RaceJob, runs_deterministically

    lanes, data = tuple(race_lanes(("feature_extract",), seed=1)), DataSpec(n_per_class=5, seed=1)
    assert RaceJob(lanes, data).share_key() is not None  # on this CPU: deterministic, shared
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU with its default, non-deterministic kernels
    assert torch.are_deterministic_algorithms_enabled() is False
    assert not runs_deterministically(lanes[0].plan) and RaceJob(lanes, data).share_key() is None
    assert runs_deterministically(make_plan("feature_extract", device="cpu"))  # a CPU plan stays deterministic
    mgr = JobManager(limit=1)
    gate = threading.Event()
    blocker = mgr.submit(lambda ctx: gate.wait(10), owner="x")
    a, b = mgr.submit(RaceJob(lanes, data), owner="a"), mgr.submit(RaceJob(lanes, data), owner="b")
    assert a is not b and mgr.sharers(a) == mgr.sharers(b) == 1  # two queued runs, never one shared
    mgr.cancel(a.id), mgr.cancel(b.id)
    gate.set()
    assert blocker.wait(10) and a.state == b.state == "cancelled"


def test_a_plan_that_says_it_is_not_deterministic_is_never_shared():
    from tl_core.jobs.work import TrainJob, runs_deterministically

    data = DataSpec(n_per_class=5, seed=2)
    steady, flaky = make_plan("finetune_top", seed=2), make_plan("finetune_top", seed=2, deterministic=False)
    assert runs_deterministically(steady) and TrainJob(steady, data).share_key() is not None
    assert not runs_deterministically(flaky) and TrainJob(flaky, data).share_key() is None
