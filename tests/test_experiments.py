"""The labs' experiments: each setting of the matrix measured on small, seeded data, and the quadrant lab's pieces."""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest
import torch

from tl_core.data import shapes
from tl_core.experiments import DEMOS, Point, Reporter, demo_for, run_demo
from tl_core.jobs.progress import Cancelled, Progress, experiment_progress
from tl_core.fmt import pct
from ui.charts import labs as charts
from tl_core.experiments.adaptation import run_adaptation
from tl_core.experiments.clustering import kmeans, pca_2d, purity, run_clustering
from tl_core.experiments.covariate import run_covariate
from tl_core.experiments.lab import LabConfig, LaneDone, cached_sweep, heatmap, run_cut_depth, run_lab_sweep
from tl_core.experiments.multitask import run_multitask
from tl_core.experiments.self_taught import geometry_targets, run_self_taught
from tl_core.experiments.similarity import (CALIBRATION_SEED, as_image_batch, measure_similarity,
                                            place_on_quadrant)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny batches (conftest)


def _finite(values) -> bool:
    return all(math.isfinite(v) for v in values)


# ---- the registry and the plumbing --------------------------------------------------------------------------------
def test_every_demo_belongs_to_a_setting_of_the_matrix_and_none_has_no_demo():
    from tl_core.teaching.matrix import SETTING_KEYS

    assert set(DEMOS) == set(SETTING_KEYS) - {"none"}
    assert demo_for("none") is None and demo_for("domain_adaptation").module == "adaptation"
    with pytest.raises(ValueError, match="No demo"):
        run_demo("transfer_everything")


def test_reporter_maps_stages_onto_the_whole_run_and_a_set_cancel_stops_at_once():
    seen: list = []
    rep = Reporter(seen.append)
    rep.stage(0.5, 0.75)
    rep.progress(0.5, "half of the second quarter")
    rep.point("loss", 3, 0.25)
    assert seen == [Progress(0.625, "half of the second quarter"), Point("loss", 3.0, 0.25)]
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        run_clustering(n_per_class=5, cancel=stop)


# ---- one experiment per setting -----------------------------------------------------------------------------------
def test_adabn_improves_accuracy_on_the_shifted_target_and_dann_gives_finite_numbers():
    seen: list = []
    res = run_adaptation(look="shifted", n_per_class=20, steps=20, seed=0, on_record=seen.append)
    acc = res.accuracy
    assert acc["AdaBN"] >= acc["source only"] + 0.15, acc  # recomputed BatchNorm statistics, no target labels
    assert res.feature_gap["AdaBN"] < res.feature_gap["source only"] / 2, res.feature_gap
    assert res.source_accuracy["source only"] >= 0.95  # the source model knows its own domain
    assert _finite([*acc.values(), *res.source_accuracy.values(), *res.feature_gap.values()])
    assert res.dann_curve and all(_finite(row) for row in res.dann_curve)
    loss_axis = charts.dann_curve_chart(res).fig.layout.yaxis2  # a loss axis never shows a tick below 0
    assert loss_axis.range[0] == 0 and loss_axis.range[1] >= max(row[1] for row in res.dann_curve)
    assert res.n_target == res.n_test == 120 and res.steps == 20
    fractions = [r.fraction for r in seen if isinstance(r, Progress)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    with pytest.raises(ValueError, match="target look"):
        run_adaptation(look="sepia")


def test_self_taught_pretraining_beats_no_pretraining_with_few_labels():
    res = run_self_taught(n_labelled_per_class=10, n_unlabelled_per_class=50, pretext_steps=60, seed=0)
    acc = res.accuracy
    none = max(acc["random features"], acc["scratch: whole network on the few labels"])
    assert acc["self-taught features"] >= none + 0.1, acc
    assert res.n_labelled == 40 and res.n_unlabelled == 300
    assert res.pretext_curve[-1][1] < res.pretext_curve[0][1]  # the pretext task was learnt


def test_geometry_pretext_targets_come_from_the_pixels_alone():
    data = shapes.make_source(20, seed=3)
    t = geometry_targets(torch.from_numpy(data.images))  # (N, 4)
    area = t[:, 0].exp()
    labels = torch.from_numpy(data.labels)
    circle, cross = shapes.SOURCE_CLASSES.index("circle"), shapes.SOURCE_CLASSES.index("cross")
    # a cross is far less compact (perimeter² / area) than a circle, whatever its colour or size
    assert t[labels == cross, 1].mean() > t[labels == circle, 1].mean() + 0.3
    assert (area > 50).all() and (area < 32 * 32).all()


def test_multi_task_training_runs_and_both_heads_learn_above_chance():
    res = run_multitask(second_task="fill", n_per_class=20, steps=100, probe_every=10, seed=0)
    for condition in ("joint", "alone"):
        assert res.accuracy[condition]["shape"] >= res.chance["shape"] + 0.08, res.accuracy
        assert res.accuracy[condition]["fill"] >= res.chance["fill"] + 0.2, res.accuracy
    assert res.grad_steps == list(range(0, 100, 10))
    for task in ("shape", "fill"):
        assert list(res.grad_norm[task]) == ["block1", "block2", "block3", "block4"]
        assert all(len(v) == 10 and all(x > 0 for x in v) for v in res.grad_norm[task].values())
    assert all(-1.0 <= c <= 1.0 for c in res.grad_cosine)


def test_clustering_with_features_learnt_without_labels_is_purer_than_raw_pixels(monkeypatch):
    import tl_core.experiments.clustering as clustering

    def no_labels_allowed():  # the supervised source model learnt with the source labels
        raise AssertionError("the unsupervised demo used the supervised source model")

    monkeypatch.setattr(clustering, "source_net", no_labels_allowed)
    res = run_clustering(n_per_class=30, similarity=0.8, seed=0, compare_supervised=False)
    assert res.unsupervised == clustering.REPRESENTATIONS and res.comparison is None
    assert set(res.purity) == set(clustering.REPRESENTATIONS)
    mine = res.purity[clustering.SELF_TAUGHT]
    assert mine >= res.purity["raw pixels"] + 0.08 and mine >= res.purity["random network features"] + 0.08, \
        res.purity
    assert res.n_unlabelled_source == 300 and res.pretext_curve[-1][1] < res.pretext_curve[0][1]
    assert len(res.true_labels) == len(res.clusters["raw pixels"]) == len(res.pca["raw pixels"]) == 120
    assert res.dims == {clustering.SELF_TAUGHT: 128, "random network features": 128, "raw pixels": 3072}
    chart = charts.purity_chart(res)
    assert [t.name for t in chart.fig.data] == ["no labels anywhere", f"random clusters: {pct(res.chance_purity)}"]
    assert "With no labels anywhere" in chart.takeaway and "comparison" not in chart.takeaway


def test_the_supervised_source_model_is_only_a_labelled_comparison_drawn_apart():
    res = run_clustering(n_per_class=10, similarity=1.0, seed=1, pretext_steps=20)
    from tl_core.experiments.clustering import SUPERVISED

    assert res.comparison == SUPERVISED and SUPERVISED in res.purity and SUPERVISED not in res.unsupervised
    fig = charts.purity_chart(res).fig
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    assert list(bars["no labels anywhere"].x) == list(res.unsupervised)
    comparison = bars["comparison only: learnt with the source labels"]
    assert list(comparison.x) == [SUPERVISED] and comparison.marker.pattern.shape == "/"
    # the chance line is named in the legend: no label inside the plot can collide with a bar's label
    assert not fig.layout.annotations
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == pytest.approx(res.chance_purity)
    assert any(t.name == f"random clusters: {pct(res.chance_purity)}" for t in fig.data)


def test_kmeans_pca_and_purity_on_separated_blobs():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 5.0]])
    labels = torch.arange(3).repeat_interleave(20)
    x = centres[labels] + 0.3 * torch.randn(60, 3, generator=gen)
    assign = kmeans(x, 3, seed=1)
    assert purity(assign, labels) == 1.0
    assert purity(torch.zeros(60, dtype=torch.long), labels) == pytest.approx(1 / 3)
    coords, share = pca_2d(x)
    assert coords.shape == (60, 2) and 0.95 < share <= 1.0


def test_importance_weighting_runs_finite_and_helps_on_average():
    res = run_covariate(bias=4.0, repeats=5, seed=0)
    assert all(len(v) == 5 and _finite(v) for v in res.accuracy.values())
    assert _finite(res.gains + res.effective_sample_size + res.weight_correlation)
    assert sum(res.gains) / len(res.gains) > 0, res.gains  # weighting towards small shapes helps on small shapes
    assert all(r > 0.2 for r in res.weight_correlation)  # the estimated weights track the true ones
    assert np.mean(res.source_area) > np.mean(res.target_area) + 50  # the bias is real
    assert len(res.weights) == res.n_source[0] and min(res.weights) >= 0


# ---- measured similarity --------------------------------------------------------------------------------------------
def test_similarity_falls_monotonically_as_the_shift_grows():
    seed = CALIBRATION_SEED + 7  # images the calibration never saw
    source = shapes.make_source(40, seed, "val").images
    reports = [measure_similarity(source, shapes.generate(shapes.WorldSpec("source", s), 40, seed, "test").images,
                                  seed=seed) for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
    sims = [r.similarity for r in reports]
    assert all(a > b for a, b in zip(sims, sims[1:])), sims
    distances = [r.mmd2 for r in reports]  # the raw distance, before the calibration's mapping
    assert all(a < b for a, b in zip(distances, distances[1:])), distances
    assert sims[0] >= 0.9 and sims[-1] <= 0.2, sims
    assert reports[0].verdict == "similar" and reports[-1].verdict == "different"
    assert reports[-1].domain_accuracy > reports[0].domain_accuracy + 0.3


def test_measure_similarity_reads_any_image_layout_and_places_the_dataset():
    a = shapes.make_source(10, 1, "val").images  # (60, 3, 32, 32) float
    b = shapes.make_target(0.2, 15, 1, "test").images
    as_uint8_hwc = np.round(b.transpose(0, 2, 3, 1) * 255).astype(np.uint8)  # (N, H, W, 3) 0..255
    big = torch.nn.functional.interpolate(torch.from_numpy(b), size=64, mode="nearest")  # (N, 3, 64, 64)
    r1 = measure_similarity(a, b, seed=2)
    r2 = measure_similarity(a, as_uint8_hwc, seed=2)
    r3 = measure_similarity(list(a), big, seed=2)
    assert abs(r1.similarity - r2.similarity) < 0.05 and abs(r1.similarity - r3.similarity) < 0.05
    assert as_image_batch(as_uint8_hwc).shape == (60, 3, 32, 32)
    assert as_image_batch(np.zeros((4, 8, 8))).shape == (4, 3, 32, 32)  # grey, resized
    placement = place_on_quadrant(r1, 20)
    assert (placement.size, placement.verdict) == ("little", r1.verdict)
    assert placement.strategy == ("early_classifier" if r1.verdict == "different" else "finetune_top")
    with pytest.raises(ValueError, match="at least 10"):
        measure_similarity(a[:5], b)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        measure_similarity(a * 255, b)


# ---- the quadrant lab --------------------------------------------------------------------------------------------
def test_lab_heatmap_has_one_cell_per_size_and_similarity_and_fills_in_live():
    config = LabConfig(sizes=(5, 10), similarities=(1.0, 0.25), strategies=("feature_extract", "early_classifier"),
                       n_val_per_class=10)
    lanes: list[LaneDone] = []
    res = run_lab_sweep(config, use_cache=False, on_record=lambda r: lanes.append(r) if isinstance(r, LaneDone)
                        else None)
    assert res.complete and len(res.lanes) == config.n_lanes == 8 and lanes == res.lanes
    hm = heatmap(res.lanes, config)
    assert set(hm.cells) == set(itertools.product((5, 10), (1.0, 0.25)))
    for (n, sim), cell in hm.cells.items():
        assert cell.winner in config.strategies and cell.best == max(cell.accuracy.values())
        assert cell.advice == ("finetune_top" if sim == 1.0 else "early_classifier")  # little data, both columns
        if cell.advice == "early_classifier":  # swept: compared honestly, within the tolerance or not
            assert cell.advice_accuracy == cell.accuracy["early_classifier"]
            assert cell.agrees == (cell.best - cell.advice_accuracy <= 0.02)
        else:  # not swept: said so, no verdict
            assert cell.advice_accuracy is None and cell.agrees is None and "did not include" in cell.note
    partial = heatmap(res.lanes[:3], config)  # live: the first cell is done, the rest are waiting
    assert partial.n_complete == 1 and partial.cells[(5, 0.25)].winner is None
    fig = charts.lab_heatmap_chart(partial).fig
    assert list(fig.data[0].x) == ["similarity 1: new shapes", "similarity 0.25: grating orientation"]
    z = [list(row) for row in fig.data[0].z]  # rows: sizes; columns: similarities
    assert len(z) == 2 and z[0][0] is not None and z[0][1] is None and z[1] == [None, None]
    assert cached_sweep(config) is res and run_lab_sweep(config) is res  # the same sweep again: from the cache
    with pytest.raises(ValueError, match="training runs"):
        LabConfig(sizes=tuple(range(2, 60)), strategies=("scratch", "finetune_all")).validate()  # 232 runs


def test_cut_at_layer_n_the_rule_holds_on_the_low_level_target_and_fails_on_the_high_level_one():
    res = run_cut_depth(n_per_class=15, seeds=(0,), different=("orientation", "outline_shapes"),
                        predicted={"similar": "block4", "outline_shapes": "block2"})
    similar, orientation, outlines = res.targets
    assert res.kinds == {similar: "similar", orientation: "orientation", outlines: "outline_shapes"}
    assert (similar, orientation, outlines) == ("similarity 1: new shapes", "similarity 0.25: grating orientation",
                                                "similarity 0.25: outlined new shapes")
    assert list(res.mean(orientation)) == ["block1", "block2", "block3", "block4"]
    # grating orientation is a low-level cue: built so that early features win, and they do
    assert res.best_cut(orientation) != "block4" and res.rule_holds(orientation)
    assert res.mean(orientation)["block2"] >= res.mean(orientation)["block4"] + 0.05
    assert res.mean(similar)["block4"] >= res.mean(similar)["block1"] + 0.2 and res.rule_holds(similar)
    # the outlined new shapes are as different in look, but a shape task: the final features win, the rule fails
    assert res.mean(outlines)["block4"] >= res.mean(outlines)["block2"] + 0.1 and not res.rule_holds(outlines)
    assert res.verdict(outlines).startswith(f"You predicted block2: the head did best after {res.best_cut(outlines)}")
    assert res.verdict(outlines).endswith("failed here.") and res.verdict(similar).startswith("You predicted block4: ")
    assert "You predicted" not in res.verdict(orientation)  # no prediction made for it
    with pytest.raises(ValueError, match="A prediction must be one of"):
        run_cut_depth(n_per_class=5, predicted={"similar": "the head"})
    with pytest.raises(ValueError, match="Unknown different target"):
        run_cut_depth(n_per_class=5, different=("sepia",))


def test_the_default_different_target_draws_the_same_data_as_before_and_the_other_is_outlined_shapes():
    from tl_core.data.datasets import DataSpec, make_data
    from tl_core.experiments.lab import lab_data

    old, new = make_data(DataSpec(n_per_class=5, similarity=0.25, seed=3)), make_data(lab_data(5, 0.25, 3))
    assert torch.equal(old[0].x, new[0].x) and torch.equal(old[1].y, new[1].y)
    assert new[0].classes == shapes.ORIENTATION_CLASSES
    outlined = lab_data(5, 0.25, 3, "outline_shapes")
    assert outlined.world == shapes.WorldSpec("shapes", 0.75, ("outline",))
    assert lab_data(5, 0.8, 3, "outline_shapes").world == shapes.target_spec(0.8)  # similar columns: unchanged


def test_a_sweep_on_the_high_level_different_target_shows_the_course_advice_losing():
    config = LabConfig(sizes=(20,), similarities=(0.25,), strategies=("feature_extract", "early_classifier"),
                       n_val_per_class=25, different="outline_shapes")
    texts: list[str] = []
    res = run_lab_sweep(config, use_cache=False,
                        on_record=lambda r: texts.append(r.text) if isinstance(r, Progress) else None)
    cell = heatmap(res.lanes, config).cells[(20, 0.25)]
    assert cell.advice == "early_classifier" and cell.winner == "feature_extract"
    assert cell.agrees is False and cell.note.startswith("Disagreement")
    fig = charts.lab_heatmap_chart(heatmap(res.lanes, config)).fig
    assert list(fig.data[0].x) == ["similarity 0.25: outlined new shapes"]
    # the progress line counts the sweep's runs, not only the current run's steps
    assert any(t.startswith("Run 2 of 2: ") and " step " in t for t in texts), texts
    assert config.canonical() != LabConfig(sizes=(20,), similarities=(0.25,), n_val_per_class=25,
                                           strategies=("feature_extract", "early_classifier")).canonical()


# ---- measured against a model's own source -------------------------------------------------------------------------
def test_batchnorm_statistics_tell_how_close_images_are_to_a_models_own_training_data():
    from tl_core.experiments.common import source_net
    from tl_core.experiments.similarity import source_similarity

    net = source_net()  # its BatchNorm layers kept the channel statistics of the six source shapes
    before = {k: v.clone() for k, v in net.state_dict().items()}
    anchor = shapes.make_target(0.0, 10, 0, "val", task="orientation").images
    reports = [source_similarity(net, shapes.generate(shapes.WorldSpec("source", s), 8, 5, "test").images,
                                 anchor=anchor, reference="the source shapes") for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
    sims = [r.similarity for r in reports]
    assert all(a > b for a, b in zip(sims, sims[1:])), sims  # further from the training data: lower
    assert sims[0] >= 0.9 and sims[-1] <= 0.3, sims
    assert reports[0].verdict == "similar" and reports[-1].verdict == "different"
    assert reports[0].n_layers == 4 and reports[0].n_images == 48 and "the source shapes" in reports[0].reference
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running statistics untouched
    assert not any(m._forward_pre_hooks for m in net.modules())  # no hook left behind
    no_bn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    assert source_similarity(no_bn, anchor, anchor=anchor, reference="x") is None


def test_own_data_is_measured_against_the_selected_models_own_source():
    import torchvision

    from tl_core.experiments.similarity import SourceSimilarity, check_own_data

    images = shapes.make_target(1.0, 6, 2, "val", task="shapes").images  # (24, 3, 32, 32)
    own = check_own_data(images, 6, "shapesnet", seed=0)
    assert own.applies and own.measured_with == "shapesnet" and "shapes world" in own.reference
    missing = check_own_data(images, 6, "resnet18", model=None, seed=0)
    assert not missing.applies and missing.measured_with == "shapesnet"
    assert "not on this machine" in missing.note and "not applied to resnet18" in missing.note
    torch.manual_seed(0)
    mobilenet = torchvision.models.mobilenet_v3_small(num_classes=10).eval()
    big = torch.nn.functional.interpolate(torch.from_numpy(images), size=64, mode="bilinear").numpy()
    imagenet = check_own_data(big, 6, "mobilenet_v3_small", model=mobilenet, seed=0)
    assert imagenet.applies and imagenet.measured_with == "mobilenet_v3_small"
    assert isinstance(imagenet.report, SourceSimilarity) and "ImageNet" in imagenet.reference
    assert imagenet.report.n_layers > 10 and 0.0 <= imagenet.report.similarity <= 1.0
    assert imagenet.placement.similarity == imagenet.report.similarity
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    no_bn = check_own_data(big, 6, "alexnet", model=plain, seed=0)  # AlexNet and VGG keep no BatchNorm statistics
    assert not no_bn.applies and "no BatchNorm statistics" in no_bn.note


def test_a_placement_for_vgg_uses_the_quadrants_strategy_for_that_architecture():
    from tl_core.experiments.similarity import SimilarityReport, place_on_quadrant
    from tl_core.teaching.quadrant import strategy_for

    report = SimilarityReport(similarity=0.9, equivalent_shift=0.1, mmd2=0.0, domain_accuracy=0.5,
                              classifier_similarity=1.0, verdict="similar", explanation="", n_a=10, n_b=10,
                              beyond_calibration=False, calibration=None)
    shapes_cell = place_on_quadrant(report, 20)
    vgg_cell = place_on_quadrant(report, 20, "vgg16")
    assert shapes_cell.strategy == "finetune_top" == strategy_for("little", "similar", "shapesnet")
    assert vgg_cell.strategy == strategy_for("little", "similar", "vgg16") != "finetune_top"
    assert "vgg16" in vgg_cell.explanation and "nearly all its weights" in vgg_cell.explanation
