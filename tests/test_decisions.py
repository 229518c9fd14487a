"""Tests for tl_core.teaching (matrix, quadrant, plans): the domain-and-task matrix, the size-vs-similarity quadrant and the plans they give."""

from __future__ import annotations

import math
import re

import pytest

from tl_core.teaching import content
from tl_core.teaching import matrix
from tl_core.teaching import plans
from tl_core.teaching import quadrant
from ui.charts import decisions, diagrams
from tl_core.models.registry import ARCHS
from tl_core.training.plan import HEAD_LR_MULT, STRATEGIES

# The seed course's tree, written out by hand for all 16 answer combinations, with honest names where the course's
# leaf does not fit the answers. This is the spec.
# (source_labels, target_labels, same_domain, same_task) -> setting key
EXPECTED: dict[tuple[bool, bool, bool, bool], str] = {
    # target labelled, source labelled, tasks differ: multi-task learning (inductive)
    (True, True, False, False): "multi_task",
    (True, True, True, False): "multi_task",
    # ... one task on two domains, both labelled: supervised domain adaptation (fine-tuning), NOT multi-task
    (True, True, False, True): "supervised_domain_adaptation",
    # ... one problem with two labelled datasets: no transfer, pool the data
    (True, True, True, True): "none",
    # target labelled, source unlabelled: self-taught learning (inductive) ...
    (False, True, True, False): "self_taught",
    (False, True, False, False): "self_taught",
    (False, True, False, True): "self_taught",
    # ... except unlabelled data of the very same problem: semi-supervised learning, NOT self-taught transfer
    (False, True, True, True): "semi_supervised",
    # target unlabelled, source labelled, same task: tricky; same domain -> fix sampling biases, different -> DA
    (True, False, True, True): "sample_selection_bias",
    (True, False, False, True): "domain_adaptation",
    # ... a new task with no target labels fits neither (both assume the task stays the same)
    (True, False, True, False): "new_task_unlabelled",
    (True, False, False, False): "new_task_unlabelled",
    # no labels anywhere: unsupervised transfer learning
    (False, False, False, False): "unsupervised",
    (False, False, True, False): "unsupervised",
    (False, False, False, True): "unsupervised",
    (False, False, True, True): "unsupervised",
}
CATEGORY = {"multi_task": "inductive", "self_taught": "inductive", "sample_selection_bias": "transductive",
            "domain_adaptation": "transductive", "unsupervised": "unsupervised", "none": "none",
            "supervised_domain_adaptation": "outside", "semi_supervised": "none", "new_task_unlabelled": "outside"}
# The combinations that sit exactly on a row of Pan & Yang's table, as the course draws it.
ON_TABLE = {(True, True, True, False), (False, True, True, False), (False, False, False, False),
            (True, False, False, True), (True, False, True, True)}

# Phrases that state a fact about the answers; an explanation that holds for its answers never says the opposite.
CONTRADICTS: dict[tuple[str, bool], tuple[str, ...]] = {
    ("same_task", False): ("the task is the same", "there is only one task", "same classes", "one and the same"),
    ("same_task", True): ("the tasks differ", "the task changes", "other, similar classes", "different tasks"),
    ("same_domain", False): ("the domain is the same", "one feature space and one population", "same domain",
                             "from the same images", "one and the same"),
    ("same_domain", True): ("the domains differ", "another domain", "different, related domain",
                            "domains differ as well"),
    ("source_labels", False): ("both sides are labelled", "only the source is labelled", "labelled source"),
    ("target_labels", False): ("both sides are labelled", "only the target side is labelled",
                               "the target labels say"),
    ("target_labels", True): ("no labels anywhere", "the target has no labels"),
    ("source_labels", True): ("no labels anywhere", "only the target side is labelled", "unlabelled source"),
}


def test_expectations_cover_all_16_combinations():
    assert len(EXPECTED) == 16
    assert {(a.source_labels, a.target_labels, a.same_domain, a.same_task) for a in matrix.ALL_ANSWERS} == set(EXPECTED)
    assert set(EXPECTED.values()) == set(matrix.ALL_KEYS)


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
def test_off_table_answers_say_so_in_the_headline(answers):
    s = matrix.classify(*answers)
    assert s.on_table == (answers in ON_TABLE)
    assert (len(s.caveats) == 0) == (answers in ON_TABLE)
    assert ("off the survey's table" in s.headline) == (answers not in ON_TABLE), s.headline
    assert s.headline.startswith(s.name)


@pytest.mark.parametrize("answers", sorted(EXPECTED))
def test_explanation_and_example_hold_for_the_answers_that_lead_to_them(answers):
    s = matrix.classify(*answers)
    said = f"{s.explanation} {s.example}".lower()
    values = dict(zip(("source_labels", "target_labels", "same_domain", "same_task"), answers))
    for (field, value), phrases in CONTRADICTS.items():
        if values[field] == value:
            assert not [p for p in phrases if re.search(rf"\b{re.escape(p)}\b", said)], (answers, field, value)


def test_transductive_leaves_are_reached_only_with_the_same_task():
    for s in matrix.all_settings():
        if s.key in ("sample_selection_bias", "domain_adaptation"):
            assert s.answers.same_task and s.answers.source_labels and not s.answers.target_labels
            assert "task is the same" in s.explanation.lower()


def test_setting_names_are_honest():
    names = {s.key: s.name for s in matrix.all_settings()}
    assert names["multi_task"] == "Multi-task learning"
    assert names["self_taught"] == "Self-taught learning"
    assert names["domain_adaptation"] == "Domain adaptation"
    assert names["sample_selection_bias"] == "Sample-selection bias / covariate shift"
    assert names["unsupervised"].startswith("Unsupervised transfer learning")
    assert names["none"] == "No transfer needed: ordinary supervised learning"
    assert names["supervised_domain_adaptation"] == "Supervised domain adaptation (fine-tuning)"
    assert names["semi_supervised"] == "Semi-supervised learning"
    assert len(set(names.values())) == len(matrix.ALL_KEYS)


def test_multi_task_learns_tasks_at_once_and_fine_tuning_is_sequential_transfer():
    text = matrix.classify(True, True, True, False).explanation
    assert "at the same time" in text and "sequential transfer" in text
    assert "everyday form of this" not in text
    assert "not multi-task learning" in text  # fine-tuning an ImageNet network is named for what it is


def test_covariate_shift_example_is_not_concept_drift():
    s = matrix.classify(True, False, True, True)
    assert "spam" not in s.example.lower()  # drifting spam rules change P(Y|X): concept drift
    assert "P(X) differs from the target's while P(Y|X) does not" in s.explanation
    assert "loan" in s.example and "Zadrozny" in s.example


def test_domain_question_asks_about_the_feature_space_and_allows_biased_sampling():
    question, help_text = matrix.QUESTIONS["same_domain"]
    assert "feature space" in question and "however they were sampled" in question
    assert "P(X)" in help_text and "biased sampling" in help_text
    assert "same distribution" not in question + help_text  # the old wording contradicted covariate shift
    assert "P(Y|X)" in matrix.QUESTIONS["same_task"][1]
    bridge = content.DEFINITIONS_BRIDGE
    assert "biased sample" in bridge and "fix sampling biases" in bridge
    domain, task = content.DEFINITIONS
    assert "feature space" in domain.formal and "marginal distribution" in domain.formal
    assert "label space" in task.formal and "predictive function" in task.formal
    assert domain.course == content.DOMAIN_DEFINITION and task.course == content.TASK_DEFINITION


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
    for key in ("none", "supervised_domain_adaptation", "semi_supervised", "new_task_unlabelled"):
        assert by_key[key].table_row is None


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


@pytest.mark.parametrize("answers", sorted(EXPECTED))
def test_every_edge_label_on_the_path_holds_for_the_answers(answers):
    source, target, domain, task = answers
    s = matrix.classify(*answers)
    labels = {(a, b): label for a, b, label in matrix.TREE_EDGES}
    path = [labels[edge].replace("\n", " ") for edge in matrix.decision_path(s)]
    assert path[0].startswith("Yes" if target else "No")
    assert path[1].startswith("Yes" if source else "No")
    for label in path:
        assert not ("same task" in label and not task) and not ("task differs" in label and task)
        assert not ("tasks differ" in label and task)
        assert not ("domains differ" in label and domain) and not ("and domain" in label and not domain)
    if ("source_u", "domain") in matrix.decision_path(s):
        assert path[2].startswith("Yes" if domain else "No")


def test_tree_dot_highlights_only_the_chosen_leaf():
    s = matrix.classify(False, True, True, False)  # self-taught
    dot = diagrams.tree_dot(s, highlight="#123456")
    leaf_lines = {line.split()[0]: line for line in dot.splitlines() if line.strip().split(" ")[0] in matrix.ALL_KEYS}
    assert set(leaf_lines) == set(matrix.ALL_KEYS)
    assert 'fillcolor="#123456"' in leaf_lines["self_taught"]
    assert all('fillcolor="#123456"' not in line for k, line in leaf_lines.items() if k != "self_taught")
    assert 'target -> source_t [label="Yes", color="#123456"' in dot
    assert 'target -> source_u [label="No", color="#123456"' not in dot
    assert "rankdir=LR" in dot  # left to right: narrow enough for the page at a readable size
    for key in matrix.OFF_COURSE:  # the app's additions are dashed
        assert "dashed" in leaf_lines[key]


def test_as_is_only_where_a_trained_model_fits_unchanged():
    for s in matrix.all_settings():
        a = s.answers
        assert bool(matrix.as_is_note(s)) == (a.same_domain and a.same_task and a.source_labels)
    assert "Pretrained explorer" in matrix.as_is_note(matrix.classify(True, True, True, True))


def test_worked_cases_sit_where_the_course_puts_them():
    cases = {c.key: c for c in content.WORKED_CASES}
    assert set(cases) == {"english_french", "hindi_spanish"}
    hi = matrix.classify(*cases["hindi_spanish"].answers)
    assert (hi.key, hi.category, hi.off_table) == ("multi_task", "inductive", "the domains differ too")
    assert (cases["hindi_spanish"].size, cases["hindi_spanish"].similarity) == ("little", "similar")
    en = matrix.classify(*cases["english_french"].answers)
    assert en.key == "none" and cases["english_french"].size == "lots"
    for case in cases.values():
        assert quadrant.recommend(case.size, case.similarity).label in (
            "Re-train from scratch", "Fine-tune only final layers")
        assert case.matrix_why and case.quadrant_why


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
    heavy_top = quadrant.final_group_share(arch).fraction > quadrant.NEARLY_ALL
    for cell, (_, strategy) in QUADRANT.items():
        plan = quadrant.plan_for(*cell, arch=arch)
        expected = "feature_extract" if (strategy == "finetune_top" and heavy_top) else strategy
        assert plan.arch == arch and plan.strategy == expected
        assert plan.validate() is plan
        assert "head" in plan.trainable
        assert (quadrant.plan_departure(*cell, arch=arch) is not None) == (
            expected != strategy or cell == ("little", "different"))


def test_little_data_on_alexnet_and_vgg_is_fixed_feature_extraction():
    """fc6_7 holds 89-96% of their pretrained weights: fine-tuning it is fine-tuning nearly everything."""
    for arch in ("alexnet", "vgg11", "vgg16"):
        share = quadrant.final_group_share(arch)
        assert share.groups == ("fc6_7",) and share.fraction > 0.85
        plan = quadrant.plan_for("little", "similar", arch=arch)
        assert plan.strategy == "feature_extract" and plan.trainable == ("head",)
        departure = quadrant.plan_departure("little", "similar", arch=arch)
        assert "fc6_7" in departure and "fixed feature extraction" in departure and "CS231n" in departure
        assert "None of" in quadrant.weights_note(plan)
    for arch in ("shapesnet", "resnet18", "resnet50", "densenet121", "inception_v3", "mobilenet_v3_small"):
        assert quadrant.plan_for("little", "similar", arch=arch).strategy == "finetune_top"
        assert quadrant.plan_departure("little", "similar", arch=arch) is None
    assert quadrant.weights_note(quadrant.plan_for("little", "similar")) == (
        "The plan fine-tunes 73,984 of shapesnet's 97,680 pretrained body weights (76%, in block4) plus the new head.")


def test_little_different_says_where_the_plan_departs_from_the_bullet():
    rec = quadrant.recommend("little", "different")
    assert "Fine-tune model weights" in rec.bullets
    assert "\"Fine-tune model weights\"" in rec.departure and "freezes every layer it keeps" in rec.departure
    assert "CS231n" in rec.departure
    plan = quadrant.plan_for("little", "different")
    assert set(plan.frozen) == set(plan.groups) - {"head"}  # what the departure says is what the plan does
    assert all(r.departure is None for r in (quadrant.recommend("lots", "similar"), quadrant.recommend("lots", "different"),
                                             quadrant.recommend("little", "similar")))


@pytest.mark.parametrize("cell", sorted(QUADRANT))
def test_advice_matches_the_plan_under_it(cell):
    plan = quadrant.plan_for(*cell)
    advice = plans.plan_advice(plan)
    if plan.strategy == "scratch":  # lots + different used to say "fine-tune the initial layers too"
        assert "fine-tune" not in advice.lower() and "random weights" in advice
    if plan.strategy == "finetune_all":
        assert "Fine-tune the initial layers too" in advice
    if plan.frozen:
        assert "Freeze" in advice or "frozen" in advice
    else:
        assert "Freeze" not in advice


def test_size_stops_make_every_quadrant_easy_to_hit():
    stops = quadrant.SIZE_STOPS
    assert list(stops) == sorted(stops) and stops[0] == 5 and stops[-1] == 1000
    sizes = [quadrant.classify_size(n) for n in stops]
    assert sizes.count("little") >= 3 and sizes.count("lots") >= 3  # a linear 5..1000 track gave little 10%
    assert all(b / a <= 2.5 for a, b in zip(stops, stops[1:]))  # log-spaced
    assert quadrant.nearest_stop(90) == 50 and quadrant.nearest_stop(101) == 100  # never crosses the line
    assert quadrant.nearest_stop(700) == 500 and quadrant.nearest_stop(1) == 5


def test_offline_alternatives_need_no_imagenet_weights():
    plan = quadrant.plan_for("lots", "similar", arch="resnet18", seed=4)
    on_shapes, scratch = quadrant.offline_alternatives(plan)
    assert (on_shapes.arch, on_shapes.strategy, on_shapes.seed) == ("shapesnet", "finetune_all", 4)
    assert (scratch.arch, scratch.strategy, scratch.pretrained) == ("resnet18", "scratch", False)
    assert quadrant.offline_alternatives(quadrant.plan_for("lots", "similar")) is None  # shapesnet ships its weights
    assert quadrant.offline_alternatives(quadrant.plan_for("lots", "different", arch="resnet18")) is None


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


def test_plan_advice_and_course_points():
    assert plans.plan_advice(quadrant.plan_for("little", "similar")).startswith("Freeze")
    assert plans.plan_advice(quadrant.plan_for("lots", "similar")).startswith("Fine-tune")
    assert any("colour blobs" in p for p in content.FREEZE_POINTS)
    assert any("scarce" in p for p in content.FREEZE_POINTS)
    assert "fixed feature extractor" in content.FEATURE_EXTRACTOR_WHEN.lower()
    assert "Pretrained explorer" in content.AS_IS
    assert [c[0] for c in content.THREE_CHOICES] == ["Re-train from scratch", "Fine-tune model weights",
                                                     "Use entirely as-is"]


# ---- the quadrant chart -------------------------------------------------------------------------------------------
def _lines(annotation_text: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", line) for line in annotation_text.split("<br>")]


def test_quadrant_chart_title_and_axes_fit():
    fig = decisions.quadrant_figure("little", "similar", point=(20, 0.8))
    assert len(fig.layout.title.text) <= 60  # the old 75-character title was cut off at 1500 px
    for ax in (fig.layout.xaxis, fig.layout.yaxis):
        assert ax.automargin is True and ax.title.standoff >= 8  # titles clear of the tick labels
        assert len(ax.title.text) <= 65


@pytest.mark.parametrize("point", [(5, 0.0), (20, 0.8), (50, 0.55), (99, 1.0), (100, 0.5), (1000, 0.2), (300, 0.95),
                                   (10, 0.75)])
def test_quadrant_text_stays_in_its_cell_and_clear_of_the_star(point):
    size, sim = quadrant.classify_size(point[0]), quadrant.classify_similarity(point[1])
    fig = decisions.quadrant_figure(size, sim, point=point)
    plot_w = 700  # px of the plot area at 1366 px wide (the browser test measures the real one)
    plot_h = decisions.QUADRANT_HEIGHT - 130  # minus the title and the axes
    star_r = 12 / (plot_h / 2)  # the star's radius (size 20 px, with its outline) in data units
    line_px = decisions.CELL_FONT * 1.3
    sx, sy = decisions.quadrant_xy(*point)
    texts = [a for a in fig.layout.annotations if (a.name or "").startswith("cell:")]
    assert len(texts) == 4
    for a in texts:
        lines = _lines(a.text)
        cell_w = plot_w / 2
        assert max(len(line) for line in lines) * 0.55 * decisions.CELL_FONT < 0.9 * cell_w, lines
        height = len(lines) * line_px / (plot_h / 2)  # in data units (each row is 1 unit tall)
        assert height <= decisions.TEXT_BAND + 0.05, lines
        low, high = (a.y - height, a.y) if a.yanchor == "top" else (a.y, a.y + height)
        in_cell = abs(sx - a.x) <= 0.5 and (low - star_r <= sy <= high + star_r)
        assert not in_cell, (point, lines[0])  # the star never sits on a cell's text
        row_bottom = 0 if a.y < 1 or (a.yanchor == "bottom" and a.y < 1) else 1
        assert row_bottom <= low and high <= row_bottom + 1  # inside its own row


def test_quadrant_cells_place_the_worked_cases():
    fig = decisions.quadrant_figure("lots", "different", point=(500, 0.2))
    by_cell = {a.name: a.text for a in fig.layout.annotations}
    assert "Worked case: Hindi→Spanish" in by_cell["cell:little:similar"]
    assert "Worked case: English→French" in by_cell["cell:lots:different"]
    assert "Worked case" not in by_cell["cell:lots:similar"] + by_cell["cell:little:different"]


def test_traditional_ml_is_drawn_before_transfer_learning():
    dot = diagrams.traditional_vs_transfer_dot()
    # left to right, the cluster defined first is drawn lower: traditional (the heading's first) must come second
    assert dot.index("cluster_tl") < dot.index("cluster_trad")
    assert "t1 -> d2 -> d1 [style=invis]" in dot  # column order top to bottom: d1, d2, t1
