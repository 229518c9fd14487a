"""Instructor presets: valid scenarios, checked links, and commentary whose every number comes from the run."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tl_core.teaching.quadrant import classify_similarity, classify_size, recommend
from tl_core.training.plan import make_plan
from tl_core.classroom.presets import (BN_KEEP, BN_REESTIMATE, MAX_SEED, PRESETS, app_root, commentary, find_preset,
                             get_preset, parse_scenario, share_url)
from tl_core.fmt import accuracy
from tl_core.training.records import Evaluation, RunResult

ROOT = Path(__file__).resolve().parents[1]


def _result(strategy: str, acc: float | None, status: str = "finished", reason: str = "", **kw) -> RunResult:
    """A finished run of a strategy's default plan with the given accuracy (no training)."""
    plan = make_plan(strategy, **kw.pop("plan", {}))
    ev = None if acc is None else Evaluation(acc, 0.5, {}, [], [], ("a", "b"))
    return RunResult(status=status, reason=reason, plan=plan.to_dict(), groups=plan.groups, frozen=plan.frozen,
                     evaluation=ev, trainable_params=kw.pop("trainable", 10), total_params=100, **kw)


# ---- the presets ------------------------------------------------------------------------------------------------
def test_every_preset_is_a_valid_race_with_a_question_not_an_answer():
    assert set(PRESETS) == {"few_similar", "lots_similar", "little_different", "lots_different", "bn_trap"}
    cells = set()
    for key, p in PRESETS.items():
        assert p.key == key and len(set(p.lane_keys)) == len(p.lanes) >= 2
        for lane in p.lanes:
            plan = lane.plan(seed=7)
            assert plan.seed == 7 and plan.strategy == lane.strategy and plan.arch == "shapesnet"
            plan.validate_for_data(4 * p.n_per_class, 4)  # 4 classes in the shapes world
        assert p.watch_for.rstrip().endswith("?") and "%" not in p.watch_for  # a prediction prompt
        assert p.advice == recommend(classify_size(p.n_per_class), classify_similarity(p.similarity)).label
        cells.add((classify_size(p.n_per_class), classify_similarity(p.similarity)))
    assert cells == {("little", "similar"), ("lots", "similar"), ("little", "different"), ("lots", "different")}
    assert PRESETS["few_similar"].describe_data() == "20 images per class at similarity 1"
    assert (PRESETS["lots_different"].n_per_class, PRESETS["lots_different"].similarity) == (250, 0.25)
    assert "early_classifier" in PRESETS["little_different"].lane_keys


def test_the_batchnorm_trap_races_one_strategy_twice_differing_only_in_batchnorm():
    trap = PRESETS["bn_trap"]
    keep, moved = (lane.plan(seed=3) for lane in trap.lanes)
    assert trap.lane_keys == [BN_KEEP, BN_REESTIMATE] and keep.strategy == moved.strategy == "finetune_top"
    assert (keep.bn_policy, moved.bn_policy) == ("eval", "train")
    assert {k: v for k, v in keep.to_dict().items() if k != "bn_policy"} == \
        {k: v for k, v in moved.to_dict().items() if k != "bn_policy"}
    assert ", ".join(keep.frozen) in "block1, block2, block3" and "block1 to block3 frozen" in trap.summary
    assert not trap.lanes[1].plain and trap.lanes[0].key != trap.lanes[0].strategy


def test_lookups_refuse_unknown_presets_and_find_a_race_by_its_lanes_and_data():
    with pytest.raises(ValueError, match="Unknown preset 'nope'. Choose one of: few_similar"):
        get_preset("nope")
    p = PRESETS["little_different"]
    assert find_preset(p.lane_keys, 20, 0.25) is p
    assert find_preset(p.lane_keys, 21, 0.25) is None  # other data: the commentary would not apply
    assert find_preset(p.lane_keys[1:], 20, 0.25) is None
    spec = p.data_spec(5)
    assert (spec.n_per_class, spec.similarity, spec.seed) == (20, 0.25, 5)
    assert [lane.plan.seed for lane in p.race_lanes(5)] == [5] * len(p.lanes)


def test_presets_import_no_torch():
    code = "import sys, tl_core.classroom.presets; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ---- links ------------------------------------------------------------------------------------------------------
def test_a_share_link_parses_back_to_its_preset_and_seed():
    root = app_root("http://10.0.0.5:8501/instructor?x=1#top", "instructor")
    assert root == "http://10.0.0.5:8501"
    assert app_root("https://host/course/app/instructor", "instructor") == "https://host/course/app"
    url = share_url(root, "bn_trap", 42, projector=True)
    parts = urlsplit(url)
    assert parts.path == "/race"
    params = parse_qs(parts.query)
    assert params == {"preset": ["bn_trap"], "seed": ["42"], "view": ["projector"]}
    sc = parse_scenario(params)
    assert (sc.preset, sc.seed, sc.projector, sc.problems) == (PRESETS["bn_trap"], 42, True, ())
    with pytest.raises(ValueError):
        share_url(root, "bn_trap", -1)


@pytest.mark.parametrize("params,preset,seed,projector,problem", [
    ({}, None, None, None, None),
    ({"preset": "few_similar", "seed": str(MAX_SEED)}, "few_similar", MAX_SEED, None, None),
    ({"preset": "nope", "seed": "3"}, None, 3, None, "Unknown preset 'nope'"),
    ({"preset": "few_similar", "seed": "abc"}, "few_similar", None, None, "got 'abc'"),
    ({"seed": "-1"}, None, None, None, "whole number from 0 to"),
    ({"seed": "3.5"}, None, None, None, "got '3.5'"),
    ({"seed": str(MAX_SEED + 1)}, None, None, None, "whole number from 0 to 2147483647"),
    ({"view": "normal"}, None, None, False, None),
    ({"view": "huge"}, None, None, None, "knows 'projector' and 'normal'"),
])
def test_link_parameters_are_checked_one_by_one(params, preset, seed, projector, problem):
    sc = parse_scenario(params)
    assert (sc.preset.key if sc.preset else None, sc.seed, sc.projector) == (preset, seed, projector)
    if problem is None:
        assert sc.problems == ()
    else:
        assert any(problem in p for p in sc.problems)
        applied = (preset, seed, projector) != (None, None, None)
        assert sc.problems[-1].startswith("The rest of the link was applied" if applied else "Nothing from the link")


# ---- commentary -------------------------------------------------------------------------------------------------
def test_commentary_names_the_winner_its_margin_and_pretrained_against_scratch():
    p = PRESETS["few_similar"]
    results = {"feature_extract": _result("feature_extract", 0.80), "finetune_top": _result("finetune_top", 0.93,
                                                                                             trainable=74),
               "finetune_all": _result("finetune_all", 0.85), "scratch": _result("scratch", 0.40)}
    text = commentary(p, results)
    assert text[0] == ("Fine-tune only the final layers won with 93% validation accuracy, 8 points ahead of "
                       "Fine-tune all layers. It trained 74 of 100 parameters.")
    assert "(Fine-tune only the final layers, 93%) did better than training from scratch (40%; +53 points)" in text[1]
    results["scratch"] = _result("scratch", 0.94)
    results["finetune_top"] = _result("finetune_top", 0.935)
    text = commentary(p, results)
    assert text[0].startswith("Re-train from scratch came first with 94% validation accuracy, within 2 points of "
                              "Fine-tune only the final layers (93.5%)")  # one rounding rule: 93.5% is not "94%"
    assert "did about the same as training from scratch (94%; -0.5 points)" in text[1]


def test_commentary_compares_early_and_final_features_and_names_failed_lanes():
    p = PRESETS["little_different"]
    results = {"early_classifier": _result("early_classifier", 0.9), "feature_extract": _result("feature_extract", 0.7),
               "finetune_top": _result("finetune_top", None, "diverged", "The loss became nan at step 3."),
               "finetune_all": _result("finetune_all", 0.6)}
    text = commentary(p, results)
    assert text[0].startswith("Classifier on the initial layers won with 90%")
    assert text[1] == "Fine-tune only the final layers did not finish (diverged): The loss became nan at step 3."
    assert any("A new head on the early block2 features (90%) did better than a new head on the final features "
               "(70%; +20 points)" in s for s in text)
    assert not any("scratch" in s for s in text)  # scratch did not race: nothing is said about it
    assert commentary(p, {}) == ["No lane finished, so there is nothing to compare yet."]


@pytest.mark.parametrize("keep_acc,moved_acc,how", [(0.80, 0.81, "Accuracy barely moved: 80% kept, 81% re-estimated"),
                                                    (0.80, 0.70, "Accuracy fell by 10 points"),
                                                    (0.70, 0.80, "Accuracy rose by 10 points")])
def test_batchnorm_commentary_reports_the_measured_drifts_and_the_accuracy_change(keep_acc, moved_acc, how):
    frozen = {"block1": 0.0, "block2": 0.0, "block3": 0.0}
    keep = _result("finetune_top", keep_acc, drift={**frozen, "block4": 0.3},
                   bn_drift={**frozen, "block4": 1.5})
    moved = _result("finetune_top", moved_acc, plan={"bn_policy": "train"}, drift={**frozen, "block4": 0.3},
                    bn_drift={"block1": 0.04, "block2": 0.34, "block3": 0.26, "block4": 1.5})
    text = commentary(PRESETS["bn_trap"], {BN_KEEP: keep, BN_REESTIMATE: moved})
    assert "Both lanes froze block1, block2, block3: their weights did not move at all" in text[-3]
    assert ("changed not at all when kept in eval mode and by 21% on average when re-estimated (most in block2: 34%)"
            in text[-2])
    assert text[-1].startswith(how)


def test_batchnorm_commentary_of_a_real_trap_race_matches_its_results():
    from tl_core.experiments.race import Lane, run_race
    from tl_core.data.datasets import DataSpec, make_data

    trap = PRESETS["bn_trap"]
    tr, va = make_data(DataSpec(n_per_class=5, similarity=trap.similarity, seed=1))  # the trap's data, smaller
    lanes = [Lane(lane.key, lane.label, replace(lane.plan, epochs=2, min_steps=10))
             for lane in trap.race_lanes(seed=1)]
    results = run_race(lanes, tr, va, keep_weights=False)
    keep, moved = results[BN_KEEP], results[BN_REESTIMATE]
    frozen = list(keep.frozen)
    assert all(keep.drift[g] == moved.drift[g] == 0.0 for g in frozen)  # the 'frozen' weights stay put ...
    assert all(keep.bn_drift[g] == 0.0 < moved.bn_drift[g] for g in frozen)  # ... but their statistics move
    text = commentary(trap, results)
    mean = sum(moved.bn_drift[g] for g in frozen) / len(frozen)
    assert f"by {mean:.0%} on average when re-estimated" in text[-2]
    assert f"{accuracy(keep.final_val_acc)} kept, {accuracy(moved.final_val_acc)} re-estimated" in text[-1]
