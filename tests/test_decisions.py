"""Tests for tl_core.teaching (matrix, quadrant, plans): the domain-and-task matrix, the size-vs-similarity quadrant and the plans they give."""

from __future__ import annotations

import math

import pytest

from tl_core.teaching import content
from tl_core.teaching import matrix
from tl_core.teaching import plans
from tl_core.teaching import quadrant
from ui.charts import diagrams
from tl_core.models.registry import ARCHS
from tl_core.training.plan import HEAD_LR_MULT, STRATEGIES

# The seed course's tree, written out by hand for all 16 answer combinations. This is the spec.
# (source_labels, target_labels, same_domain, same_task) -> setting key
EXPECTED: dict[tuple[bool, bool, bool, bool], str] = {
    # target labelled, source labelled: multi-task learning (inductive) ...
    (True, True, False, False): "multi_task",
    (True, True, True, False): "multi_task",
    (True, True, False, True): "multi_task",
    # ... except one problem with two labelled datasets: no transfer, pool the data
    (True, True, True, True): "none",
    # target labelled, source unlabelled: self-taught learning (inductive)
    (False, True, True, False): "self_taught",
    (False, True, False, False): "self_taught",
    (False, True, True, True): "self_taught",
    (False, True, False, True): "self_taught",
    # target unlabelled, source labelled: tricky; same domain -> fix sampling biases, different -> domain adaptation
    (True, False, True, True): "sample_selection_bias",
    (True, False, True, False): "sample_selection_bias",
    (True, False, False, True): "domain_adaptation",
    (True, False, False, False): "domain_adaptation",
    # no labels anywhere: unsupervised transfer learning
    (False, False, False, False): "unsupervised",
    (False, False, True, False): "unsupervised",
    (False, False, False, True): "unsupervised",
    (False, False, True, True): "unsupervised",
}
CATEGORY = {"multi_task": "inductive", "self_taught": "inductive", "sample_selection_bias": "transductive",
            "domain_adaptation": "transductive", "unsupervised": "unsupervised", "none": "none"}
# The combinations that sit exactly on a row of Pan & Yang's table, as the course draws it.
ON_TABLE = {(True, True, True, False), (False, True, True, False), (False, False, False, False),
            (True, False, False, True), (True, False, True, True)}


def test_expectations_cover_all_16_combinations():
    assert len(EXPECTED) == 16
    assert {(a.source_labels, a.target_labels, a.same_domain, a.same_task) for a in matrix.ALL_ANSWERS} == set(EXPECTED)


@pytest.mark.parametrize("answers, key", sorted(EXPECTED.items()))
def test_matrix_follows_the_course_tree(answers, key):
    s = matrix.classify(*answers)
    assert s.key == key
    assert s.category == CATEGORY[key]
    assert s.tricky == (answers[0] and not answers[1])  # source labels but no target labels
    assert bool(s.tricky_note) == s.tricky
    assert s.name and s.explanation and s.example
    assert (s.answers.source_labels, s.answers.target_labels, s.answers.same_domain, s.answers.same_task) == answers


@pytest.mark.parametrize("answers", sorted(EXPECTED))
def test_off_table_answers_get_a_caveat(answers):
    s = matrix.classify(*answers)
    assert s.on_table == (answers in ON_TABLE)
    assert (len(s.caveats) == 0) == (answers in ON_TABLE)


def test_setting_names_match_the_course():
    names = {s.key: s.name for s in matrix.all_settings()}
    assert names["multi_task"] == "Multi-task learning"
    assert names["self_taught"] == "Self-taught learning"
    assert names["domain_adaptation"] == "Domain adaptation"
    assert names["sample_selection_bias"] == "Sample-selection bias / covariate shift"
    assert names["unsupervised"].startswith("Unsupervised transfer learning")
    assert names["none"] == "No transfer needed: ordinary supervised learning"
    assert len(set(names.values())) == 6


def test_pan_yang_table_matches_the_seed():
    rows = matrix.pan_yang_table()
    assert len(rows) == 4
    assert [r["Related areas"] for r in rows] == [
        "Multi-task Learning", "Self-taught Learning", "",
        "Domain Adaptation, Sample Selection Bias & Co-variate Shift"]
    assert [(r["Source domain labels"], r["Target domain labels"]) for r in rows] == [
        ("Available", "Available"), ("Unavailable", "Available"), ("Unavailable", "Unavailable"),
        ("Available", "Unavailable")]
    assert rows[2]["Learning strategy"] == "Unsupervised Transfer Learning"
    assert rows[2]["Tasks"] == "Clustering, Dimensionality Reduction"
    assert rows[3]["Source & target tasks"] == "The Same"
    assert all(r["Source & target tasks"] == "Different but Related" for r in rows[:3])


@pytest.mark.parametrize("answers", sorted(ON_TABLE))
def test_highlighted_row_agrees_with_the_labels(answers):
    s = matrix.classify(*answers)
    row = matrix.pan_yang_table()[s.table_row]
    assert (row["Source domain labels"] == "Available") == answers[0]
    assert (row["Target domain labels"] == "Available") == answers[1]
    assert (row["Source & target tasks"] == "The Same") == answers[3]


def test_each_setting_highlights_its_own_row():
    rows = matrix.pan_yang_table()
    by_key = {s.key: s for s in matrix.all_settings()}
    assert "Multi-task" in rows[by_key["multi_task"].table_row]["Related areas"]
    assert "Self-taught" in rows[by_key["self_taught"].table_row]["Related areas"]
    assert "Domain Adaptation" in rows[by_key["domain_adaptation"].table_row]["Related areas"]
    assert "Sample Selection Bias" in rows[by_key["sample_selection_bias"].table_row]["Related areas"]
    assert rows[by_key["unsupervised"].table_row]["Learning strategy"] == "Unsupervised Transfer Learning"
    assert by_key["none"].table_row is None


def test_classify_rejects_non_bools():
    with pytest.raises(ValueError, match="same_task"):
        matrix.classify(True, True, True, "yes")
    with pytest.raises(ValueError, match="source_labels"):
        matrix.classify(1, True, True, True)


def test_decision_path_walks_the_tree():
    da = matrix.classify(True, False, False, True)
    assert matrix.decision_path(da) == (("target", "source_u"), ("source_u", "domain"), ("domain", "domain_adaptation"))
    mt = matrix.classify(True, True, True, False)
    assert matrix.decision_path(mt) == (("target", "source_t"), ("source_t", "multi_task"))
    for s in matrix.all_settings():
        path = matrix.decision_path(s)
        assert path[0][0] == "target" and path[-1][1] == s.key


def test_tree_dot_highlights_only_the_chosen_leaf():
    s = matrix.classify(False, True, True, False)  # self-taught
    dot = diagrams.tree_dot(s, highlight="#123456")
    leaf_lines = {line.split()[0]: line for line in dot.splitlines() if line.strip().split(" ")[0] in matrix.SETTING_KEYS}
    assert set(leaf_lines) == set(matrix.SETTING_KEYS)
    assert 'fillcolor="#123456"' in leaf_lines["self_taught"]
    assert all('fillcolor="#123456"' not in line for k, line in leaf_lines.items() if k != "self_taught")
    assert 'target -> source_t [label="Yes", color="#123456"' in dot
    assert 'target -> source_u [label="No", color="#123456"' not in dot


# ---- the quadrant --------------------------------------------------------------------------------
QUADRANT = {  # the seed's bullets and the plan strategy per cell
    ("lots", "different"): (("Re-use architecture", "Re-calculate model weights", "Re-train from scratch"), "scratch"),
    ("lots", "similar"): (("Re-use architecture", "Fine-tune model weights", "Fine-tune all layers"), "finetune_all"),
    ("little", "similar"): (("Re-use architecture", "Fine-tune model weights", "Fine-tune only final layers"),
                            "finetune_top"),
    ("little", "different"): (("Re-use architecture", "Fine-tune model weights", "Fit classifier on initial layers"),
                              "early_classifier"),
}


@pytest.mark.parametrize("cell", sorted(QUADRANT))
def test_recommend_gives_the_course_bullets(cell):
    rec = quadrant.recommend(*cell)
    bullets, strategy = QUADRANT[cell]
    assert rec.bullets == bullets
    assert rec.label == bullets[-1]
    assert rec.strategy == strategy and strategy in STRATEGIES
    assert (rec.caveat is not None) == (cell == ("lots", "different"))


def test_lots_different_caveat_says_pretrained_usually_wins():
    caveat = quadrant.recommend("lots", "different").caveat
    assert "pretrained weights still usually beats" in caveat


@pytest.mark.parametrize("bad", [("many", "similar"), ("lots", "same"), ("", "")])
def test_recommend_rejects_unknown_answers(bad):
    with pytest.raises(ValueError):
        quadrant.recommend(*bad)


def test_size_threshold():
    assert quadrant.LOTS_PER_CLASS == 100
    assert quadrant.classify_size(1) == "little"
    assert quadrant.classify_size(99) == "little"
    assert quadrant.classify_size(100) == "lots"
    assert quadrant.classify_size(5000) == "lots"
    for bad in (0, -3, 5.0, True, "10"):
        with pytest.raises(ValueError, match="at least 1"):
            quadrant.classify_size(bad)


def test_similarity_threshold():
    assert quadrant.classify_similarity(0.5) == "similar"
    assert quadrant.classify_similarity(0.49) == "different"
    assert quadrant.classify_similarity(0) == "different"
    assert quadrant.classify_similarity(1.0) == "similar"
    for bad in (-0.1, 1.01, math.nan, math.inf, True, "0.7"):
        with pytest.raises(ValueError, match="from 0 to 1"):
            quadrant.classify_similarity(bad)


def test_plan_for_shapesnet_freezes_the_right_groups():
    scratch = quadrant.plan_for("lots", "different", seed=3)
    assert (scratch.strategy, scratch.frozen, scratch.pretrained, scratch.seed) == ("scratch", (), False, 3)

    ft_all = quadrant.plan_for("lots", "similar")
    assert (ft_all.strategy, ft_all.frozen, ft_all.pretrained) == ("finetune_all", (), True)
    assert ft_all.lr_for("head") == pytest.approx(ft_all.lr * HEAD_LR_MULT)  # a new head learns faster
    assert ft_all.lr_for("block4") == pytest.approx(ft_all.lr * 0.5)
    assert ft_all.lr_for("block1") == pytest.approx(ft_all.lr * 0.5 ** 4)

    top = quadrant.plan_for("little", "similar")
    assert (top.strategy, top.frozen, top.trainable) == ("finetune_top", ("block1", "block2", "block3"),
                                                         ("block4", "head"))
    assert top.lr_mult == {"head": HEAD_LR_MULT}  # only the new head learns faster

    early = quadrant.plan_for("little", "different")
    assert (early.strategy, early.cut_after, early.frozen) == ("early_classifier", "block2", ("block1", "block2"))
    assert early.groups == ("block1", "block2", "head")


def test_plan_for_resnet_freezes_a_prefix():
    top = quadrant.plan_for("little", "similar", arch="resnet18")
    assert top.frozen == ("stem", "layer1", "layer2", "layer3")
    assert top.trainable == ("layer4", "head")


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_arch_gets_a_valid_plan_in_every_cell(arch):
    for cell, (_, strategy) in QUADRANT.items():
        plan = quadrant.plan_for(*cell, arch=arch)
        assert plan.arch == arch and plan.strategy == strategy
        assert plan.validate() is plan
        assert "head" in plan.trainable


def test_plan_for_rejects_bad_input():
    with pytest.raises(ValueError, match="Unknown architecture"):
        quadrant.plan_for("lots", "similar", arch="lenet")
    with pytest.raises(ValueError, match="seed"):
        quadrant.plan_for("lots", "similar", seed=-1)
    with pytest.raises(ValueError, match="size"):
        quadrant.plan_for("huge", "similar")


def test_layer_roles_per_strategy():
    def roles(plan):
        return [(r.group, r.role) for r in plans.layer_roles(plan)]

    assert roles(quadrant.plan_for("little", "similar")) == [
        ("block1", "frozen"), ("block2", "frozen"), ("block3", "frozen"), ("block4", "fine-tuned"),
        ("head", "new head")]
    assert roles(quadrant.plan_for("little", "different")) == [
        ("block1", "frozen"), ("block2", "frozen"), ("block3", "cut off"), ("block4", "cut off"),
        ("head", "new head")]
    assert [r for _, r in roles(quadrant.plan_for("lots", "different"))] == ["from scratch"] * 4 + ["new head"]
    ft_all = plans.layer_roles(quadrant.plan_for("lots", "similar"))
    assert [r.role for r in ft_all] == ["fine-tuned"] * 4 + ["new head"]
    assert [r.lr for r in ft_all] == sorted(r.lr for r in ft_all)  # rates grow towards the head
    assert all(r.lr == 0 for r in plans.layer_roles(quadrant.plan_for("little", "different")) if r.role != "new head")


def test_plan_takeaway_names_what_trains():
    assert "block1, block2, block3 stay frozen" in plans.plan_takeaway(quadrant.plan_for("little", "similar"))
    assert "cut after block2" in plans.plan_takeaway(quadrant.plan_for("little", "different"))
    assert "random weights" in plans.plan_takeaway(quadrant.plan_for("lots", "different"))
    assert "early, generic layers move least" in plans.plan_takeaway(quadrant.plan_for("lots", "similar"))


def test_boundary_note():
    assert quadrant.boundary_note(20, 0.9) is None
    assert quadrant.boundary_note(500, 0.1) is None
    assert quadrant.boundary_note(20, None) is None and quadrant.boundary_note(150) is not None
    assert "100-per-class" in quadrant.boundary_note(120, 0.9)
    assert "similarity of 0.55" in quadrant.boundary_note(20, 0.55)


def test_freeze_advice_follows_label_supply():
    assert plans.freeze_advice("little").startswith("Freeze")
    assert plans.freeze_advice("lots").startswith("Fine-tune")
    with pytest.raises(ValueError):
        plans.freeze_advice("some")
    assert any("colour blobs" in p for p in content.FREEZE_POINTS)
    assert any("scarce" in p for p in content.FREEZE_POINTS)
