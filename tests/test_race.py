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
