"""Charts (ui.charts.training, ui.charts.race), run history and progress texts: takeaways built from real tiny runs,
checked against the runs' own numbers."""

from __future__ import annotations

import csv
import io
import math
import statistics

import numpy as np
import pytest

from tl_core.experiments import race
from tl_core.jobs import progress
from tl_core.training import history
from ui.charts import race as race_charts
from ui.charts import training
from tl_core.training.plan import make_plan
from tl_core.experiments.race import race_lanes, race_table, run_race
from tl_core.training.records import EpochRecord, StartRecord, StepRecord
from tl_core.data.datasets import DataSpec, make_data
from tl_core.training.trainer import train

TINY = dict(epochs=2, min_steps=10, batch_size=8)


@pytest.fixture(scope="module")
def data():
    return make_data(DataSpec(n_per_class=5, similarity=0.8, seed=0))


@pytest.fixture(scope="module")
def run(data):
    """A tiny 'fine-tune only the final layers' run and the records it streamed."""
    records = []
    result = train(make_plan("finetune_top", **TINY), *data, on_record=records.append)
    assert result.status == "finished"
    return result, records


def _heatmap(fig):
    (trace,) = [t for t in fig.data if t.type == "heatmap"]
    return trace


# ---- History --------------------------------------------------------------------------------------------------
def test_history_from_records_matches_history_from_result(run):
    result, records = run
    live, final = history.History.from_records(records), history.History.from_result(result)
    assert live.groups == final.groups == result.groups
    assert live.frozen == final.frozen == ("block1", "block2", "block3")
    assert live.steps == final.steps == [s.step for s in result.steps]
    assert live.grad == final.grad
    assert live.total_steps == final.total_steps == len(result.steps)
    assert len(live.ratio_steps) == sum(s.update_ratio is not None for s in result.steps) > 0


def test_progress_and_eta_from_partial_records(run):
    _, records = run
    start = next(r for r in records if isinstance(r, StartRecord))
    steps = [r for r in records if isinstance(r, StepRecord)]
    half = history.History.from_records([start, *steps[: start.total_steps // 2]])
    p = progress.run_progress(half, elapsed_s=3.0)
    done = start.total_steps // 2
    assert p.fraction == pytest.approx(done / start.total_steps)
    assert p.eta_s == pytest.approx(3.0 / done * (start.total_steps - done))
    assert f"Step {done} of {start.total_steps}" in p.text and "left" in p.text
    assert progress.run_progress(history.History(), 1.0).fraction == 0.0  # before the StartRecord: setting up
    assert progress.queue_message(2) == "2 runs ahead of you; yours starts after them."


# ---- the gradient heatmap -------------------------------------------------------------------------------------
def test_heatmap_has_one_row_per_group_frozen_rows_marked_and_log_colour(run):
    result, records = run
    c = training.grad_heatmap_chart(history.History.from_records(records))
    hm = _heatmap(c.fig)
    assert len(hm.y) == len(hm.z) == len(result.groups) == 5
    for label, row, group in zip(hm.y, hm.z, result.groups):
        assert group in label
        frozen = group in result.frozen
        assert ("frozen" in label) == frozen
        assert all(v is None for v in row) == frozen  # no gradient in frozen rows, gradients everywhere else
    annotated = {a.y for a in c.fig.layout.annotations if "no gradient" in a.text}
    assert annotated == {label for label in hm.y if "frozen" in label}
    # log colour: z is log10 of the raw norm kept in customdata, and the colour bar is labelled in powers of ten
    for zrow, raw in zip(hm.z, hm.customdata):
        for z, v in zip(zrow, raw):
            assert (z is None and v is None) or z == pytest.approx(math.log10(v))
    assert all(t.startswith("10") for t in hm.colorbar.ticktext)
    assert c.fig.layout.title.text


def test_heatmap_takeaway_names_frozen_groups_and_largest_gradient(run):
    result, records = run
    c = training.grad_heatmap_chart(history.History.from_records(records))
    med = {g: statistics.median(s.grad_norm[g] for s in result.steps) for g in ("block4", "head")}
    top = max(med, key=med.get)
    assert c.takeaway.startswith("Frozen block1, block2 and block3 had no gradient")
    assert f"{top} had the largest gradients" in c.takeaway


def test_long_runs_are_binned_into_at_most_max_columns():
    h = history.History.from_records([
        StartRecord(total_steps=1000, epochs=1, groups=("a", "head"), frozen=("a",), cached=()),
        *(StepRecord(i, 0, 1.0, {"a": 0.0, "head": 0.1}, {"a": None, "head": 10.0 ** -(i % 3)}, None)
          for i in range(1000))])
    hm = _heatmap(training.grad_heatmap_chart(h).fig)
    assert len(hm.x) == training.MAX_HEATMAP_COLUMNS
    assert hm.x[0] >= 1 and hm.x[-1] <= 1000
    assert all(v is None for v in hm.z[0])
    geo = math.exp(statistics.mean(math.log(10.0 ** -(i % 3)) for i in range(5)))  # first bin: steps 0..4
    assert hm.customdata[1][0] == pytest.approx(geo)


def test_gradual_unfreezing_shows_the_thaw(data):
    plan = make_plan("finetune_top", freeze_first=2, unfreeze_every=2, **{**TINY, "epochs": 4})
    result = train(plan, *data)
    h = history.History.from_result(result)
    thawed = h.thawed_at()
    assert list(thawed) == ["block2"]  # the deepest frozen group thaws first
    first = next(s.step for s in result.steps if s.grad_norm["block2"] is not None)
    assert thawed["block2"] == first > 0
    c = training.grad_heatmap_chart(h)
    assert f"block2 (thawed at step {first + 1})" in _heatmap(c.fig).y
    assert f"block2 started learning at step {first + 1}" in c.takeaway
    assert "Frozen block1 had no gradient" in c.takeaway


# ---- the other charts of a run ---------------------------------------------------------------------------------
def test_confusion_matrix_sums_to_the_validation_size(run, data):
    result, _ = run
    c = training.confusion_chart(result.evaluation)
    hm = _heatmap(c.fig)
    assert sum(map(sum, hm.z)) == len(data[1])
    right = sum(hm.z[i][i] for i in range(len(hm.z)))
    assert right / len(data[1]) == pytest.approx(result.evaluation.accuracy)
    assert c.takeaway.startswith(f"{right} of {len(data[1])} validation images right")
    off = [(hm.z[i][j], i, j) for i in range(4) for j in range(4) if i != j]
    k, i, j = max(off)
    if k:
        assert f"{hm.y[i]} taken for {hm.x[j]} ({k} time" in c.takeaway


def test_per_class_and_drift_takeaways_come_from_the_run(run):
    result, _ = run
    ev = result.evaluation
    c = training.per_class_chart(ev)
    assert list(c.fig.data[0].x) == [ev.per_class[k] for k in ev.per_class]
    if len(set(ev.per_class.values())) > 1:
        assert f"Hardest class: {min(ev.per_class, key=ev.per_class.get)}" in c.takeaway
    d = training.drift_chart(result)
    assert list(d.fig.data[0].x) == list(result.groups)
    assert [result.drift[g] for g in result.groups] == list(d.fig.data[0].y)
    assert all(result.drift[g] == 0 for g in result.frozen)
    assert "Among the pretrained groups block4 moved most" in d.takeaway  # the only trainable body group
    assert "frozen block1, block2 and block3 did not move" in d.takeaway


def test_curves_and_update_ratio_charts(run):
    result, records = run
    h = history.History.from_records(records)
    c = training.curves_chart(h, n_classes=4)
    train_acc = next(t for t in c.fig.data if t.name == "train" and t.xaxis == "x2")
    assert list(train_acc.y) == [e.train_acc for e in result.epochs]
    r = training.update_ratio_chart(h)
    assert {t.name for t in r.fig.data} == {"block4", "head", "rule of thumb ≈ 10⁻³"}  # no line for frozen groups
    assert list(r.fig.data[-1].y) == [training.RATIO_RULE_OF_THUMB] * 2
    assert r.fig.layout.yaxis.type == "log"
    assert "frozen block1, block2 and block3 by nothing" in r.takeaway
    assert set(training.live_charts(h)) == {"curves", "grads", "ratio"}


def test_empty_history_gives_titled_waiting_charts():
    for c in training.live_charts(history.History()).values():
        assert c.fig.layout.title.text and c.takeaway.startswith("Waiting")


def test_misclassified_gallery_and_csv_downloads(run, data):
    result, _ = run
    examples = training.misclassified(result.evaluation, data[1].x, k=3)
    top = result.evaluation.top_losses[:3]
    assert [e.index for e in examples] == [t["index"] for t in top]
    for e, t in zip(examples, top):
        assert e.image.shape == (96, 96, 3) and e.image.dtype == np.uint8
        assert e.caption.startswith(f"{t['true']} → {t['pred']}")
        assert data[1].classes[int(data[1].y[e.index])] == t["true"]
    rows = list(csv.DictReader(io.StringIO(history.history_csv(result))))
    assert [int(r["epoch"]) for r in rows] == list(range(1, len(result.epochs) + 1))
    assert float(rows[-1]["val_acc"]) == pytest.approx(result.epochs[-1].val_acc)
    steps = list(csv.DictReader(io.StringIO(history.steps_csv(result))))
    assert len(steps) == len(result.steps) and steps[0]["grad_norm_block1"] == ""
    assert float(steps[0]["grad_norm_head"]) == pytest.approx(result.steps[0].grad_norm["head"])


def _epochs(*accs: tuple[float, float], losses: tuple[float, ...] | None = None) -> list[EpochRecord]:
    """Epoch records with (train accuracy, validation accuracy) pairs; validation losses optional."""
    return [EpochRecord(i, 0.5, tr, (losses[i] if losses else 1.0), va, float(i)) for i, (tr, va) in enumerate(accs)]


def test_curves_takeaway_diagnoses_every_situation_it_can_meet():
    def take(accs, *, status="finished", total=None, n_classes=4):
        h = history.History(epochs=_epochs(*accs), total_epochs=total or len(accs), total_steps=10)
        return training.curves_chart(h, n_classes, status=status).takeaway

    # resnet18 from scratch: 97% train, 28% validation is overfitting, not "not learned yet"
    over = take([(0.6, 0.3), (0.97, 0.28)])
    assert "overfitting" in over and "97%" in over and "28%" in over and "close to chance (chance: 25%)" in over
    assert "not learned" not in over and "underfitting" not in over
    under = take([(0.3, 0.26)])
    assert "underfitting" in under and "not fitted even its training images" in under and "yet" not in under
    good = take([(0.95, 0.9)])
    assert "without strong overfitting" in good and good.startswith("Validation accuracy 90%")
    live = take([(0.3, 0.27)], status=None, total=10)
    assert live.startswith("So far (epoch 1 of 10)") and "training images yet" in live
    stopped = take([(0.9, 0.88), (0.95, 0.9)], status="cancelled", total=10)
    assert stopped.startswith("Stopped after 2 of 10 epochs")
    diverged = take([(0.5, 0.4)], status="diverged", total=10)
    assert diverged.startswith("Diverged after 1 of 10 epochs")


def test_a_loss_spike_switches_the_loss_axis_to_log_and_keeps_the_other_curves_visible():
    accs = [(0.5, 0.5)] * 4
    flat = training.curves_chart(history.History(epochs=_epochs(*accs, losses=(1.2, 0.9, 0.8, 0.7))), 4)
    assert flat.fig.layout.yaxis.type in (None, "linear") and flat.fig.layout.yaxis.title.text == "loss"
    spike = training.curves_chart(history.History(epochs=_epochs(*accs, losses=(1.2, 360.0, 0.8, 0.7))), 4)
    assert spike.fig.layout.yaxis.type == "log" and "log scale" in spike.fig.layout.yaxis.title.text
    assert spike.fig.layout.yaxis2.range == (0, 1.02)  # accuracy stays linear


def test_a_run_that_ended_before_its_first_epoch_shows_its_loss_per_step_not_waiting():
    h = history.History.from_records([StartRecord(total_steps=10, epochs=2, groups=("head",), frozen=(), cached=()),
                                      *(StepRecord(s, 0, 2.0 * 10 ** s, {"head": 0.1}, {"head": 1.0}, None)
                                        for s in range(3))])
    live = training.curves_chart(h, 4)
    assert "No epoch has finished yet" in live.takeaway
    ended = training.curves_chart(h, 4, status="diverged")
    assert "Waiting" not in ended.takeaway and "diverged before its first epoch ended" in ended.takeaway
    assert list(ended.fig.data[0].y) == [2.0, 20.0, 200.0] and ended.fig.layout.yaxis.type == "log"
    assert "before its first training step" in training.curves_chart(history.History(), 4, status="cancelled").takeaway


# ---- the race ------------------------------------------------------------------------------------------------
def test_race_charts_and_verdict(data):
    lanes = race_lanes(["feature_extract", "scratch"], **TINY)
    items = []
    results = run_race(lanes, *data, on_record=lambda lane, rec: items.append((lane, rec)), keep_weights=False)
    hs = history.race_histories(items)
    assert list(hs) == ["feature_extract", "scratch"]
    curves = race_charts.race_curves_chart(hs)
    assert [t.name for t in curves.fig.data] == ["Fixed feature extraction", "Re-train from scratch"]
    assert {t.line.dash for t in curves.fig.data} == {"dot", "longdash"}  # lanes differ by more than colour
    maps = race_charts.race_heatmaps_chart(hs)
    assert [len(t.y) for t in maps.fig.data] == [5, 5]
    frozen_marks = [(a.xref, a.y) for a in maps.fig.layout.annotations if a.text == "frozen"]
    assert frozen_marks == [("x", g) for g in ("block1", "block2", "block3", "block4")]  # only in the first panel
    assert all(t.coloraxis == "coloraxis" for t in maps.fig.data)  # one shared colour scale
    assert "Fixed feature extraction 1 of 5" in maps.takeaway and "Re-train from scratch 5 of 5" in maps.takeaway
    p = progress.race_progress(hs, ["feature_extract", "scratch"], 4.0)
    assert p.fraction == pytest.approx(1.0)
    rows = race_table(lanes, results)
    winner, loser = rows[0], rows[-1]
    assert race.race_verdict(rows, winner["lane"]).startswith("You called it")
    if loser["accuracy"] < winner["accuracy"]:
        v = race.race_verdict(rows, loser["lane"])
        assert v.startswith(f"You predicted {loser['strategy']}; {winner['strategy']} won") and "2nd of 2" in v
    shown = race.race_rows_for_display(rows)
    assert [r["Rank"] for r in shown] == [1, 2] and shown[0]["Validation accuracy"] == winner["accuracy"]


def test_learner_class_names_are_text_in_the_result_charts_never_markup_or_links():
    from tl_core.training.records import Evaluation

    evil, fine = "[go](javascript:alert(1))", "<b>mug</b>"
    ev = Evaluation(accuracy=0.5, loss=1.0, per_class={evil: 0.0, fine: 1.0}, confusion=[[0, 2], [0, 2]],
                    top_losses=[{"index": 0, "loss": 3.0, "true": evil, "pred": fine, "prob": 0.9}],
                    classes=(evil, fine))
    confusion = training.confusion_chart(ev)
    assert list(confusion.fig.data[0].x) == ["[go](javascript:alert(1))", "&lt;b&gt;mug&lt;/b&gt;"]
    assert "](" not in confusion.takeaway and "&#91;go&#93;" in confusion.takeaway
    per_class = training.per_class_chart(ev)
    assert "&lt;b&gt;" in list(per_class.fig.data[0].y)[1] and "](" not in per_class.takeaway
    example = training.misclassified(ev, np.zeros((1, 3, 4, 4), dtype=np.float32), k=1)[0]
    assert "](" not in example.caption and "&#60;b&#62;" in example.caption


def test_a_chart_waits_for_a_module_plotly_peeks_at_that_another_thread_is_importing(tmp_path, monkeypatch):
    """The warm-up imports pandas in the background; plotly reads sys.modules["pandas"] without importing it, and a
    half-imported pandas crashed the quadrant page ("partially initialized module 'pandas' has no attribute
    'Series'"). import_peeked_modules() waits for such an import to finish: shown here with a slow stand-in module."""
    import sys
    import threading
    import types

    from ui.charts import theme

    entered, gate = threading.Event(), threading.Event()
    monkeypatch.setitem(sys.modules, "_tlp_import_gate", types.SimpleNamespace(entered=entered, gate=gate))
    (tmp_path / "tlp_slow_module.py").write_text(
        "import _tlp_import_gate as g\ng.entered.set()\ng.gate.wait(30)\nREADY = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(theme, "PEEKED_MODULES", ("tlp_slow_module",))
    importer = threading.Thread(target=__import__, args=("tlp_slow_module",))
    importer.start()
    try:
        assert entered.wait(30)
        half = sys.modules["tlp_slow_module"]
        assert not hasattr(half, "READY")  # what plotly would see without the wait
        threading.Timer(0.2, gate.set).start()
        theme.import_peeked_modules()
        assert sys.modules["tlp_slow_module"].READY is True
    finally:
        gate.set()
        importer.join(30)
        sys.modules.pop("tlp_slow_module", None)
    try:  # building a figure imports them whole, when nothing had yet
        fig = theme.figure([dict(type="bar", x=[1], y=[2])], "t", 200)
        assert fig.layout.title.text == "t" and sys.modules["tlp_slow_module"].READY is True
    finally:
        sys.modules.pop("tlp_slow_module", None)
