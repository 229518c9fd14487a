"""Check your understanding: scenario questions for the five teaching pages, as plain data the library checks.

Every question is a concrete situation from the course's material (English→French and Hindi→Spanish, ImageNet
models, the shapes world) with options that each explain themselves: why the keyed one is right, and for every
other one what it would mean and why it does not fit. Where the course and the literature differ, the question's
`note` says so, with the source.

A question never states its keyed answer on trust alone: its `check` names one of the library's own decision
functions (`CHECKS`: the matrix classifier, the quadrant's recommendation and plan builder, the plan's validation,
the registry, the architecture summaries, the freezing policy) and `derive` computes the answer from it, so a test
can hold content and logic together. Some questions are answered on the page's own widget (`pick`: the matrix's four
answers, or a point on the quadrant). Some have a shapes-world analogue that one click measures (`run`: a class
preset's race, or a quadrant-lab sweep), and `judge_race` / `judge_sweep` say whether the data agreed with the
keyed answer this time. A learner's progress is a small `Attempt` per question, written compactly into the URL
(`encode_progress` / `decode_progress`) and summarised for handing in (`summary_json`, `summary_csv`).
`poll_spec` turns any question into a class poll (tl_core.classroom.polls). Torch-free at import: the checks that
build models import torch only when they run.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tl_core.classroom.presets import BN_KEEP, BN_REESTIMATE, NEAR_POINTS, get_preset
from tl_core.fmt import and_list, pct, points, sci
from tl_core.teaching.matrix import ALL_ANSWERS, Answers, Setting, classify, decision_path
from tl_core.teaching.quadrant import boundary_note, classify_similarity, classify_size, plan_for, recommend
from tl_core.training.plan import STRATEGIES, Plan, make_plan

PAGES: dict[str, str] = {  # page key -> the page's title in the app
    "welcome": "What is transfer learning",
    "matrix": "Domain & task matrix",
    "quadrant": "Size vs similarity",
    "race": "The race",
    "architectures": "Architectures",
}
PICKS = ("matrix", "quadrant")  # the page widgets a question can be answered on
RUN_KINDS = ("race", "sweep")  # a class preset's race on the race page, or a sweep in the quadrant lab
EXPECTS = ("winner", "pretrained_vs_scratch", "bn_moves")  # what a measurement is compared with
MATRIX_FIELDS = ("target_labels", "source_labels", "same_domain", "same_task")  # the matrix page's order
MATRIX_WORDS = {"target_labels": "labels in the target domain", "source_labels": "labels in the source domain",
                "same_domain": "the same domain", "same_task": "the same task"}
PROGRESS_VERSION = "1"  # first entry of an encoded progress string
MAX_TRIES = 999  # tries are counted up to this
_ID = re.compile(r"^[a-z][0-9]{1,2}$")  # a question id: the page's letter and a number
_ENTRY = re.compile(r"^([a-z][0-9]{1,2})([a-z])([a-z])([0-9]{1,3})$")  # id, first option, last option, tries


# ---- the data ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Option:
    """One answer to a question, with the explanation shown once it is chosen."""

    key: str  # stable within the question; the keyed option's key is what `derive` computes
    label: str  # what the learner reads (markdown)
    explanation: str  # why it is right, or what it would mean and why it does not fit (markdown)
    lane: str | None = None  # the race lane (or, for a sweep, the strategy) this answer predicts; None if none


@dataclass(frozen=True)
class Check:
    """Which of the library's decision functions decides the keyed answer, and with what arguments."""

    fn: str  # a key of CHECKS
    args: tuple[tuple[str, Any], ...] = ()  # keyword arguments, as (name, value) pairs


@dataclass(frozen=True)
class Run:
    """A shapes-world analogue of a question that one click measures."""

    kind: str  # "race" (a class preset on the race page) or "sweep" (the quadrant lab)
    preset: str = ""  # race: a key of tl_core.classroom.presets.PRESETS
    sizes: tuple[int, ...] = ()  # sweep: labelled images per class
    similarities: tuple[float, ...] = ()  # sweep: similarity to the source
    strategies: tuple[str, ...] = ()  # sweep: keys of STRATEGIES
    expect: str = "winner"  # one of EXPECTS: what the keyed answer says the data will show

    @property
    def title(self) -> str:
        """What the click runs, in words."""
        if self.kind == "race":
            return f"the race \"{get_preset(self.preset).title}\""
        return (f"a quadrant-lab sweep ({and_list([str(n) for n in self.sizes])} images per class, similarity "
                f"{and_list([f'{s:g}' for s in self.similarities])})")


@dataclass(frozen=True)
class Question:
    """A scenario question of one teaching page."""

    id: str  # short and stable, e.g. "m3" (it is written into the URL); the page's letter and a number
    page: str  # a key of PAGES
    prompt: str  # the situation and the question (markdown)
    options: tuple[Option, ...]  # in the order shown
    answer: str  # the keyed option's key
    check: Check  # how the library decides the answer (see derive)
    note: str = ""  # where the course and the literature (or the app) differ, with the source; "" if nowhere
    pick: str | None = None  # "matrix" or "quadrant": answered on the page's own widget; None: multiple choice
    reasons: tuple[tuple[str, str], ...] = ()  # matrix picks: (Answers field, why the keyed answer is yes or no)
    run: Run | None = None  # a shapes-world analogue one click measures

    def option(self, key: str) -> Option:
        """The option with this key.

        Raises:
            ValueError: If the question has no such option.
        """
        for o in self.options:
            if o.key == key:
                return o
        raise ValueError(f"Question {self.id} has no option {key!r}; its options are "
                         f"{', '.join(o.key for o in self.options)}.")

    @property
    def keyed(self) -> Option:
        """The keyed (right) option."""
        return self.option(self.answer)

    def is_correct(self, key: str) -> bool:
        """Whether an option key is the keyed answer."""
        return key == self.answer

    def index(self, key: str) -> int:
        """The position of an option (for the compact progress encoding).

        Raises:
            ValueError: If the question has no such option.
        """
        return self.options.index(self.option(key))

    @property
    def keyed_answers(self) -> Answers | None:
        """The matrix answers the situation describes (questions checked by the matrix), else None."""
        if self.check.fn not in ("matrix_setting", "matrix_category", "tree_after"):
            return None
        args = dict(self.check.args)
        return Answers(**{f: args[f] for f in Answers.__dataclass_fields__})


# ---- options of the page widgets ------------------------------------------------------------------------------------
def _matrix_options() -> tuple[Option, ...]:
    """One option per setting the matrix can name, in the order of its 16 answer sets, explained by the library."""
    seen: dict[str, Option] = {}
    for a in ALL_ANSWERS:
        s = classify(a.source_labels, a.target_labels, a.same_domain, a.same_task)
        if s.key not in seen:
            seen[s.key] = Option(s.key, s.name, s.explanation)
    return tuple(seen.values())


def matrix_option(answers: Answers) -> str:
    """The option key (the setting) a set of matrix answers lands on."""
    return classify(answers.source_labels, answers.target_labels, answers.same_domain, answers.same_task).key


def cell_key(size: str, similarity: str) -> str:
    """The option key of a quadrant cell, e.g. "little_similar"."""
    recommend(size, similarity)  # validates both
    return f"{size}_{similarity}"


def quadrant_option(n_per_class: int, similarity: float | str) -> str:
    """The option key (the cell) of a point on the quadrant: images per class and a similarity (0..1, or the
    words "similar"/"different" of the page's own-problem mode).

    Raises:
        ValueError: If a value is out of range.
    """
    sim = similarity if isinstance(similarity, str) else classify_similarity(similarity)
    return cell_key(classify_size(n_per_class), sim)


def pick_feedback(q: Question, answers: Answers) -> list[str]:
    """For a matrix pick: one sentence per answer that differs from the situation, saying what fits instead.

    Args:
        q: A question with pick "matrix".
        answers: The learner's four answers.

    Returns:
        Sentences in the matrix page's order; empty when all four answers fit.
    """
    keyed = q.keyed_answers
    if keyed is None:
        return []
    why = dict(q.reasons)
    out = []
    for f in MATRIX_FIELDS:
        mine, right = getattr(answers, f), getattr(keyed, f)
        if mine != right:
            out.append(f"**{MATRIX_WORDS[f].capitalize()}?** You answered {'yes' if mine else 'no'}; here it is "
                       f"{'yes' if right else 'no'}. {why.get(f, '')}".strip())
    return out


# ---- the checks: the library decides every keyed answer ---------------------------------------------------------------
def _setting(**a: bool) -> Setting:
    return classify(a["source_labels"], a["target_labels"], a["same_domain"], a["same_task"])


def _cell(n_per_class: int, similarity: float | str) -> tuple[str, str]:
    size, sim = quadrant_option(n_per_class, similarity).split("_")
    return size, sim


def _plan(n_per_class: int, similarity: float | str, arch: str = "shapesnet") -> Plan:
    size, sim = _cell(n_per_class, similarity)
    return plan_for(size, sim, arch=arch)


def _check_tree_after(node: str, **a: bool) -> str:
    path = decision_path(_setting(**a))
    nodes = [p for p, _ in path] + [path[-1][1]]
    return nodes[nodes.index(node) + 1]


def _check_plan_summary(n_per_class: int, similarity: float | str, arch: str = "shapesnet") -> str:
    plan = _plan(n_per_class, similarity, arch)
    return f"{plan.strategy}:{','.join(plan.frozen) or 'none'}"


def _check_kept(n_per_class: int, similarity: float | str, arch: str = "shapesnet") -> str:
    """Which part of the pretrained network the plan keeps working: the initial layers, the final ones, all, none."""
    plan = _plan(n_per_class, similarity, arch)
    body = plan.spec.body_groups
    if not plan.pretrained:
        return "nothing"
    if plan.strategy == "finetune_all":
        return "all"
    if plan.strategy == "early_classifier":
        return "initial" if body.index(plan.cut_after) < len(body) / 2 else "final"
    return "final"


def _check_trains(n_per_class: int, similarity: float | str, arch: str = "shapesnet") -> str:
    """What the plan updates: only the higher layers (a frozen prefix), every layer, or only a head."""
    plan = _plan(n_per_class, similarity, arch)
    body = plan.spec.body_groups
    frozen = tuple(g for g in body if g in plan.frozen)
    if not frozen:
        return "all"
    if frozen == body or plan.strategy == "early_classifier":
        return "head"
    return "higher" if frozen == body[: len(frozen)] else "other"


def _check_slowest(n_per_class: int, similarity: float | str, arch: str = "shapesnet") -> str:
    plan = _plan(n_per_class, similarity, arch)
    lrs = {g: plan.lr_for(g) for g in plan.trainable}
    low = min(lrs.values())
    slowest = [g for g, lr in lrs.items() if lr == low]
    return slowest[0] if len(slowest) == 1 else "equal"


def _check_plan_valid(strategy: str, frozen: tuple[str, ...], arch: str = "shapesnet") -> str:
    try:
        Plan(arch=arch, strategy=strategy, frozen=tuple(frozen)).validate()
    except ValueError:
        return "refused"
    return "valid"


def _check_translation(aspect: str, side: str) -> str:
    from tl_core.teaching.content import TRANSLATION_EXAMPLE

    return TRANSLATION_EXAMPLE[aspect][side]


def _changed(domain: bool, task: bool) -> str:
    return {(True, True): "both", (True, False): "domain", (False, True): "task", (False, False): "neither"}[
        (domain, task)]


def _check_translation_change() -> str:
    from tl_core.teaching.content import TRANSLATION_EXAMPLE

    domain, task = (TRANSLATION_EXAMPLE[a]["Source"] != TRANSLATION_EXAMPLE[a]["Target"] for a in TRANSLATION_EXAMPLE)
    return _changed(domain, task)


def _check_shapes_change(similarity: float) -> str:
    from tl_core.data.shapes import WorldSpec, target_spec

    spec = target_spec(similarity)
    return _changed(spec.shift > 0 or bool(spec.styles), spec.classes != WorldSpec().classes)


def _check_worked_case(key: str) -> str:
    from tl_core.teaching.content import WORKED_CASES

    case = next(c for c in WORKED_CASES if c.key == key)
    return cell_key(case.size, case.similarity)


def _check_plain_bn_gradients(depth: int) -> str:
    """What a deep plain stack with batch normalisation suffers from: "vanishing" gradients, or none ("degradation"
    is then what He et al. (2015) observed instead)."""
    from tl_core.models.demos import VANISHED, gradient_flow

    return "degradation" if gradient_flow(depth, skip=False, batch_norm=True).first_layer >= VANISHED else "vanishing"


def _check_input_size(arch: str) -> str:
    from tl_core.models.registry import get_spec

    return str(get_spec(arch).input_size)


def _check_share(arch: str, strategy: str, freeze_first: int | None = None) -> str:
    """The share of all weights a plan trains, as "few" (< 10%), "nine_in_ten" (85-95%), "all" or "other"."""
    from tl_core.models.summary import summarize, trainable_params

    summary = summarize(arch)
    share = trainable_params(summary, make_plan(strategy, arch=arch, freeze_first=freeze_first)) / summary.params
    if share >= 1.0:
        return "all"
    if 0.85 <= share < 0.95:
        return "nine_in_ten"
    return "few" if share < 0.1 else "other"


def _check_fewest_params(archs: tuple[str, ...]) -> str:
    from tl_core.models.summary import summarize

    return min(archs, key=lambda a: summarize(a).params)


def _check_stack(channels: int) -> str:
    from tl_core.models.demos import stack_vs_large

    r = stack_vs_large(channels)
    return "stack" if r.stack_params < r.large_params else ("large" if r.large_params < r.stack_params else "same")


def _check_frozen_bn(bn_policy: str) -> str:
    """Whether frozen groups' BatchNorm statistics move in a training step under a BatchNorm policy (torch)."""
    import torch

    from tl_core.models.networks import build_model
    from tl_core.training.freeze import set_train_mode
    from tl_core.training.trainer import build_for_plan

    plan = make_plan("finetune_top", bn_policy=bn_policy)
    built = build_for_plan(plan, n_classes=4, data_size=32, base=build_model("shapesnet", 6))
    gm = built.grouped
    bns = [m for g in plan.frozen for mod in gm.modules[g] for m in mod.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    before = [m.running_mean.clone() for m in bns]
    set_train_mode(gm)
    with torch.no_grad():
        built.model(torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 3 + 1)  # (B, C, H, W)
    moved = any(not torch.equal(b, m.running_mean) for b, m in zip(before, bns))
    return "moves" if moved else "fixed"


CHECKS: dict[str, Callable[..., str]] = {
    "matrix_setting": lambda **a: _setting(**a).key,  # tl_core.teaching.matrix.classify
    "matrix_category": lambda **a: _setting(**a).category,
    "tree_after": _check_tree_after,  # the node after `node` on matrix.decision_path
    "quadrant_cell": lambda n_per_class, similarity: quadrant_option(n_per_class, similarity),
    "strategy": lambda n_per_class, similarity, arch="shapesnet": _plan(n_per_class, similarity, arch).strategy,
    "plan_summary": _check_plan_summary,  # quadrant.plan_for: "<strategy>:<frozen groups>"
    "cut_after": lambda n_per_class, similarity, arch="shapesnet": _plan(n_per_class, similarity, arch).cut_after,
    "start": lambda n_per_class, similarity: "pretrained" if _plan(n_per_class, similarity).pretrained else "scratch",
    "kept": _check_kept,
    "trains": _check_trains,
    "slowest_group": _check_slowest,
    "plan_valid": _check_plan_valid,  # training.plan.Plan.validate
    "boundary": lambda n_per_class: "near" if boundary_note(n_per_class) else "clear",
    "translation": _check_translation,  # teaching.content.TRANSLATION_EXAMPLE
    "translation_change": _check_translation_change,
    "shapes_change": _check_shapes_change,  # data.shapes.target_spec
    "worked_case": _check_worked_case,  # teaching.content.WORKED_CASES
    "plain_bn_gradients": _check_plain_bn_gradients,  # models.demos.gradient_flow (torch)
    "input_size": _check_input_size,  # models.registry
    "trainable_share": _check_share,  # models.summary (torch, on the meta device)
    "fewest_params": _check_fewest_params,  # models.summary (torch, on the meta device)
    "stacked_filters": _check_stack,  # models.demos.stack_vs_large
    "frozen_bn": _check_frozen_bn,  # training.freeze.set_train_mode (torch)
}


def derive(q: Question) -> str:
    """The answer the library's own decision function gives for a question (compare with q.answer).

    Raises:
        ValueError: If the check is unknown.
    """
    if q.check.fn not in CHECKS:
        raise ValueError(f"Question {q.id}: unknown check {q.check.fn!r}; use one of {', '.join(CHECKS)}.")
    return CHECKS[q.check.fn](**dict(q.check.args))


def _answers(source: bool, target: bool, domain: bool, task: bool) -> tuple[tuple[str, bool], ...]:
    return (("source_labels", source), ("target_labels", target), ("same_domain", domain), ("same_task", task))


# ---- the questions ----------------------------------------------------------------------------------------------------
_HE_2019 = ("The literature is less sure than the course: He et al. (2019, \"Rethinking ImageNet Pre-training\") "
            "found that with enough data and training, networks trained from scratch catch up with ImageNet-pretrained "
            "ones, but the pretrained ones get there in far fewer iterations: pre-training speeds up convergence more "
            "than it raises the final accuracy")
_SHAPES_DIFFERENT = ("In the shapes world the \"different\" targets below similarity 0.5 ask for the orientation of a "
                     "stripe pattern: a low-level cue, which favours the early layers by design. The quadrant lab "
                     "also has a high-level different target where this rule fails.")

QUESTIONS: tuple[Question, ...] = (
    # ---- the concepts (welcome page) ----
    Question(
        "w1", "welcome",
        "The course's running example re-uses a model that translates **English into French** to build one that "
        "translates **Hindi into Spanish**. What is the **target domain**?",
        (Option("Hindi sentences", "Hindi sentences",
                "Right. A domain is where the inputs X come from and how they are distributed (formally, in Pan & "
                "Yang's survey, a feature space with a marginal distribution P(X)). The new model reads Hindi, so "
                "its inputs, and with them the target domain, are Hindi sentences."),
         Option("Translation to Spanish", "Spanish translations",
                "That is the target **task**: the labels Y and how they relate to X. The domain is about the inputs, "
                "and the new model's inputs are Hindi sentences."),
         Option("English sentences", "English sentences",
                "That is the **source** domain: what the original model read. The target is the new problem."),
         Option("Translation to French", "French translations",
                "That is the source task: what the original model produced. It is neither the target nor a "
                "domain.")),
        "Hindi sentences", Check("translation", (("aspect", "Domain (the X)"), ("side", "Target")))),
    Question(
        "w2", "welcome",
        "In the same example (English→French re-used for Hindi→Spanish), what differs between the source and the "
        "target?",
        (Option("both", "Both the domain and the task",
                "Right. The inputs are another language (Hindi instead of English: other words, another script), so "
                "the domain differs; the outputs are another language too (Spanish instead of French), so the task "
                "differs. What stays is the problem's structure, translating one sentence into another: the course's "
                "\"basic problem structure stays the same, but details vary\"."),
         Option("domain", "Only the domain",
                "The domain does differ (Hindi inputs instead of English), but so does the task: the model must now "
                "produce Spanish, not French. Only the domain would differ if the new model still translated into "
                "French."),
         Option("task", "Only the task",
                "The task does differ (Spanish instead of French), but so does the domain: the inputs are Hindi, "
                "not English. Only the task would differ if the new model still read English."),
         Option("neither", "Neither: it is the same problem with other words",
                "Then there would be nothing to transfer: one problem, more data. Here both the inputs and the "
                "outputs change language.")),
        "both", Check("translation_change")),
    Question(
        "w3", "welcome",
        "A small shop has **20 labelled photos per class** of its products, and a network trained on millions of "
        "similar photos. Two runs train the same architecture on the same 20 photos per class: one starts from the "
        "trained network's weights, the other from random weights. Which ends more accurate on new photos?",
        (Option("pretrained", "The run that starts from the trained weights",
                "Right. The course: transferred knowledge is especially useful when the new dataset is small and not "
                "sufficient to train a model from scratch. Twenty images per class cannot teach a network from "
                "nothing what edges, corners and shapes look like; the trained weights already know.",
                lane="finetune_top"),
         Option("scratch", "The run that starts from random weights",
                "That would mean 20 examples per class are enough to learn every feature from nothing. With so few, "
                "a network trained from scratch mostly memorises its training images. The course re-trains from "
                "scratch only with lots of data that looks unlike the source.", lane="scratch"),
         Option("same", "About the same: the architecture matters, not the weights",
                "That would mean the trained weights carry no knowledge. Both runs share the architecture; the only "
                "difference is where the weights start, and with little data that difference is large.")),
        "pretrained", Check("start", (("n_per_class", 20), ("similarity", 1.0))),
        run=Run("race", preset="few_similar", expect="pretrained_vs_scratch")),
    Question(
        "w4", "welcome",
        "The course: the initial layers of an image network detect features common to all images (colour blobs, "
        "edges, lines); later layers learn details specific to the problem. Your new images look **nothing like** "
        "the source's and you have **20 labelled per class**. Which part of a pretrained network is most likely "
        "still worth keeping?",
        (Option("initial", "Its initial layers: cut the network early and fit a classifier on them",
                "Right: the course's advice for little, different data. The generic early features carry over to "
                "almost any images; the specific late ones belong to the source problem. With 20 images per class "
                "there is too little data to re-learn the late layers, so the playbook cuts the network after its "
                "early groups and trains only a new head there.", lane="early_classifier"),
         Option("final", "Its final layers' features, with a new head on top",
                "A fixed feature extractor on the final layers suits little data that resembles the source. Here "
                "the images differ, and the final layers are the most specific to the source problem: they transfer "
                "worst as the tasks drift apart (Yosinski et al., 2014).", lane="feature_extract"),
         Option("all", "All of it, every layer fine-tuned",
                "Fine-tuning everything keeps all the pretrained knowledge and lets it adapt, but with 20 images per "
                "class it updates every weight on very few examples; the course keeps this for lots of similar "
                "data. It can still do well when learning rates are small: the race measures it too.",
                lane="finetune_all"),
         Option("nothing", "Nothing: train from scratch",
                "With 20 images per class there is too little data to learn even generic edges and blobs well. The "
                "course re-trains from scratch only when there are lots of data.", lane="scratch")),
        "initial", Check("kept", (("n_per_class", 20), ("similarity", 0.25))),
        note=_SHAPES_DIFFERENT + " The course's bullet for this cell also says \"fine-tune model weights\"; the "
             "playbook's plan freezes the kept layers instead and trains only the new head (CS231n's \"Transfer "
             "Learning\" notes: train a classifier on activations from earlier in the network).",
        run=Run("race", preset="little_different")),
    Question(
        "w5", "welcome",
        "In the shapes world, a target at **similarity 0.25** is shown on this page. Compared with the source data "
        "(six shapes, drawn plainly), what differs?",
        (Option("both", "Both the domain and the task",
                "Right. The look drifts (textured backgrounds, lower contrast, pixel noise): the domain differs. "
                "And below similarity 0.5 the labels are no longer shapes but the orientation of a stripe pattern: "
                "the task differs too."),
         Option("domain", "Only the domain: the pictures look different",
                "The look does drift, but below similarity 0.5 the task changes as well: the label is the "
                "orientation of a stripe pattern, not a shape."),
         Option("task", "Only the task: new labels",
                "The labels do change (stripe orientation), but the images also look different: textured "
                "backgrounds, lower contrast and noise. Only the task changes at similarity 1, where four new "
                "shapes are drawn exactly in the source's style."),
         Option("neither", "Nothing: it is the source data with noise",
                "Noise is only part of it: the backgrounds, the contrast and the labels all change.")),
        "both", Check("shapes_change", (("similarity", 0.25),))),
    Question(
        "w6", "welcome",
        "The course's \"Faster, cheaper\" slide. Why does fine-tuning only the final layers of a pretrained "
        "network train faster than training the whole network?",
        (Option("higher", "Only the higher layers' weights are updated",
                "Right. The initial layers are frozen: no gradients are kept for them and no optimiser step updates "
                "them, so each step does less work, and fewer weights need fewer labelled images. The playbook even "
                "computes the frozen layers' output once and re-uses it when there is no augmentation."),
         Option("smaller", "The network is made smaller",
                "The architecture stays as it is (the course: \"usually leaving the network architecture "
                "unchanged\"); every image still passes through the frozen layers. What shrinks is the number of "
                "weights that are updated."),
         Option("lr", "It uses a larger learning rate",
                "The learning rate is not what makes it cheap; the playbook even gives the body a smaller rate than "
                "the new head. The saving is the frozen layers, which are not updated at all."),
         Option("deleted", "The frozen layers are removed from the network",
                "Frozen layers stay in the network and still compute every image's features; they are only left "
                "unchanged. (Cutting a network is another strategy: a classifier on the initial layers removes the "
                "later ones.)")),
        "higher", Check("trains", (("n_per_class", 20), ("similarity", 1.0)))),

    # ---- the matrix ----
    Question(
        "m1", "matrix",
        "Your company has thousands of **labelled product photos taken in the studio**. A new factory's camera now "
        "sends phone-quality snapshots of **the same products**, **none of them labelled**, and the model must name "
        "the product in each. Which setting of the matrix is this?",
        _matrix_options(), "domain_adaptation",
        Check("matrix_setting", _answers(source=True, target=False, domain=False, task=True)),
        pick="matrix",
        reasons=(("target_labels", "None of the factory's snapshots is labelled."),
                 ("source_labels", "The studio photos are labelled with their product."),
                 ("same_domain", "Studio photos and phone snapshots of the same products are different but related "
                                 "domains: other lighting, backgrounds and camera. The snapshots are another population "
                                 "of images, not a biased sample of the studio's."),
                 ("same_task", "The labels are the same products, given by the same rule: which product is in the "
                               "picture."))),
    Question(
        "m2", "matrix",
        "A bank's loan-default model was trained only on applicants **it approved in the past** (their repayments "
        "are known). It must now score **everyone who applies**; nobody's outcome is known yet. Same application "
        "form, same definition of default. Which setting of the matrix is this?",
        _matrix_options(), "sample_selection_bias",
        Check("matrix_setting", _answers(source=True, target=False, domain=True, task=True)),
        pick="matrix",
        reasons=(("target_labels", "Nobody who applies now has a known outcome yet."),
                 ("source_labels", "The approved applicants' repayments are known: they are the labels."),
                 ("same_domain", "Same form, same population of applicants: in the course's tree that is the same "
                                 "domain. Only the labelled sample was selected (approved applicants), so its P(X) "
                                 "is biased."),
                 ("same_task", "Default is defined the same way, and the link from an applicant's figures to "
                               "default does not change.")),
        note="In the course's tree \"the same domain\" still allows P(X) to shift through biased sampling: that is "
             "the \"fix sampling biases\" leaf. Pan & Yang define a domain as a feature space with its marginal "
             "distribution P(X), so formally the two marginals differ, which is why their table lists this row's "
             "domains as \"different but related\". Sample-selection bias of this kind: Zadrozny (2004)."),
    Question(
        "m3", "matrix",
        "Hindi→Spanish: the original English→French model was trained on labelled sentence pairs, and you have a "
        "few hundred **Hindi sentences with their Spanish translations**. In Pan & Yang's terms, which setting is "
        "this?",
        (Option("inductive", "Inductive transfer learning",
                "Right. Labels on both sides and different tasks (translating into Spanish, not French): the target "
                "labels induce the target model. The domains differ too (Hindi, not English), which takes it off "
                "the table's multi-task row, not out of the inductive setting."),
         Option("transductive", "Transductive transfer learning",
                "Transductive transfer has no target labels and keeps the task. Here the target is labelled (the "
                "Spanish translations) and the task changes."),
         Option("unsupervised", "Unsupervised transfer learning",
                "Unsupervised transfer has no labels on either side (clustering, dimensionality reduction). Here "
                "both sides are labelled."),
         Option("none", "Not transfer learning: pool the data",
                "Pooling needs the same domain and the same task. Here both differ: Hindi in, Spanish out.")),
        "inductive", Check("matrix_category", _answers(source=True, target=True, domain=False, task=False)),
        note="The course's tree names this corner after multi-task learning, which learns several tasks at the same "
             "time. Training English→French first and fine-tuning it on Hindi→Spanish afterwards is sequential "
             "transfer, the everyday way to use this setting, not multi-task learning (Caruana, 1997; Pan & Yang, "
             "2010)."),
    Question(
        "m4", "matrix",
        "You have **labelled source data**, **no target labels**, and the task stays the same. After the two "
        "questions about labels, what does the course's decision tree ask next?",
        (Option("domain", "Are the source and target domains the same?",
                "Right: the course's \"Tricky - need expert judgment\" branch. If the domains are the same, fix the "
                "sampling biases (re-weight the labelled examples); if they differ, adapt the domain."),
         Option("task", "Are the source and target tasks the same?",
                "The tree's two leaves here (fix sampling biases, domain adaptation) both assume the task stays the "
                "same, so it asks about the domains. A new task without target labels fits neither leaf; the "
                "matrix page names that case separately."),
         Option("size", "How much target data is there?",
                "That is the size-versus-similarity quadrant's question, which comes after the matrix, once you "
                "know transfer applies and how much of the network to re-use."),
         Option("unsupervised", "Nothing: without target labels it is unsupervised transfer",
                "Unsupervised transfer needs the source to be unlabelled too. With source labels the tree goes on "
                "to the domains.")),
        "domain",
        Check("tree_after", (("node", "source_u"), *_answers(source=True, target=False, domain=True, task=True)))),
    Question(
        "m5", "matrix",
        "A museum has 50,000 **unlabelled** scans of old photographs, and a network that learnt features from them "
        "**without any labels**. It wants to group a new, **unlabelled** collection of hand-painted postcards by "
        "visual style. Which setting of the matrix is this?",
        _matrix_options(), "unsupervised",
        Check("matrix_setting", _answers(source=False, target=False, domain=False, task=False)),
        pick="matrix",
        reasons=(("target_labels", "The postcards are not labelled."),
                 ("source_labels", "The scans are not labelled either; the network learnt from them without labels."),
                 ("same_domain", "Photographs and hand-painted postcards are different but related domains."),
                 ("same_task", "Grouping postcards by style is a new task; no labelled task was learnt from the "
                               "scans."))),
    Question(
        "m6", "matrix",
        "You have **20 labelled photos per class of four rare bird species**, and a million **unlabelled** photos "
        "of all kinds of birds from the same kind of cameras. Which setting does the course's tree give?",
        (Option("self_taught", "Self-taught learning",
                "Right: labels only in the target, unlabelled source data of other, similar classes. The unlabelled "
                "photos teach features (feathers, beaks, wings) without labels; the 80 labelled ones train the "
                "classifier. The course: \"transfer learning from unlabelled data, widely used in practice\"."),
         Option("multi_task", "Multi-task learning",
                "That needs labels on both sides. The million photos are unlabelled."),
         Option("unsupervised", "Unsupervised transfer learning",
                "That needs no labels anywhere. Your 80 photos of the four species are labelled, so a classifier "
                "can be trained."),
         Option("domain_adaptation", "Domain adaptation",
                "Domain adaptation has labels in the source and none in the target. Here it is the other way "
                "round.")),
        "self_taught", Check("matrix_setting", _answers(source=False, target=True, domain=True, task=False)),
        note="Self-taught learning is Raina et al. (2007): unlabelled data that need not share the target's "
             "classes."),
    Question(
        "m7", "matrix",
        "A clinic labelled 500 skin photos last month and 500 this month: **same camera, same dermatologists, same "
        "diagnoses**. Is using last month's photos for this month's model a transfer-learning problem?",
        (Option("none", "No: it is one problem with more data; pool it",
                "Right. Same domain, same task, labels on both sides: nothing differs, so nothing needs to be "
                "transferred. Pool the photos and train one model."),
         Option("multi_task", "Yes: multi-task learning",
                "Multi-task learning needs two related tasks. Here the diagnoses are the same task."),
         Option("sample_selection_bias", "Yes: fix the sampling bias",
                "That leaf needs an unlabelled target. This month's photos are labelled, and drawn the same way."),
         Option("domain_adaptation", "Yes: domain adaptation",
                "Domain adaptation needs a different target domain. Same camera, same clinic: the domain is the "
                "same.")),
        "none", Check("matrix_setting", _answers(source=True, target=True, domain=True, task=True)),
        note="The course's tree has no leaf for this case; the matrix page adds it, dashed, as the app's addition: "
             "transfer learning needs the domains or the tasks to differ (Pan & Yang, 2010)."),

    # ---- the quadrant ----
    Question(
        "q1", "quadrant",
        "A hospital has **200 labelled chest X-rays per class** and a ResNet-18 trained on ImageNet photos. "
        "Following the course's quadrant, which strategy, and which layers stay frozen?",
        (Option("scratch:none", "Re-train from scratch: ResNet-18's architecture, nothing frozen, new weights",
                "Right, by the course. 200 per class counts as lots (the playbook's line is 100 per class, a rule of "
                "thumb: the course gives no number), and X-rays look nothing like ImageNet's photos: lots and "
                "different, where the course re-uses the architecture and re-calculates every weight.",
                lane="scratch"),
         Option("finetune_all:none", "Fine-tune all layers from the ImageNet weights, nothing frozen",
                "That is the course's advice for lots of *similar* data. X-rays differ from ImageNet photos, so the "
                "course re-trains instead. In practice this is a strong contender (see the note): the measurement "
                "races it.", lane="finetune_all"),
         Option("finetune_top:stem,layer1,layer2,layer3",
                "Fine-tune only the final layers: stem and layer1 to layer3 frozen",
                "That is the course's advice for little, similar data. With 200 per class there are enough labels to "
                "update more, and ImageNet's frozen features were learnt on photos, not X-rays.",
                lane="finetune_top"),
         Option("feature_extract:stem,layer1,layer2,layer3,layer4",
                "Fixed feature extraction: every pretrained layer frozen, only a new head trains",
                "That keeps ImageNet's final, most photo-specific features unchanged: it suits very little data "
                "that resembles the source. For X-rays it freezes exactly the features least likely to fit.",
                lane="feature_extract")),
        "scratch:none", Check("plan_summary", (("n_per_class", 200), ("similarity", "different"),
                                               ("arch", "resnet18"))),
        note=_HE_2019 + "; Raghu et al. (2019, \"Transfusion\") found that on medical images ImageNet pre-training "
             "adds little accuracy but speeds up convergence. Race both before you commit. " + _SHAPES_DIFFERENT,
        run=Run("sweep", sizes=(200,), similarities=(0.25,),
                strategies=("feature_extract", "finetune_top", "finetune_all", "scratch"))),
    Question(
        "q2", "quadrant",
        "A garden centre has **20 labelled photos per class** of house plants, taken like the everyday photos the "
        "source model learnt from. Where does this problem sit on the quadrant?",
        (Option("little_similar", "Little data, similar: fine-tune only the final layers",
                "Right. 20 per class is little (below the playbook's line of 100 per class) and the photos resemble "
                "the source's. Freeze the generic initial layers and train the final ones and a new head: few "
                "weights to fit, little overfitting.", lane="finetune_top"),
         Option("lots_similar", "Lots of data, similar: fine-tune all layers",
                "That would need 100 or more labelled images per class, enough to adjust every layer without "
                "overfitting. With 20, updating every weight fits noise.", lane="finetune_all"),
         Option("little_different", "Little data, different: a classifier on the initial layers",
                "That would mean the photos look unlike the source's, so only its generic early features carry "
                "over. Everyday photos of plants are exactly the kind of images the source model knows.",
                lane="early_classifier"),
         Option("lots_different", "Lots of data, different: re-train from scratch",
                "That needs lots of data and images unlike the source's. 20 photos per class could not train a "
                "network from nothing.", lane="scratch")),
        "little_similar", Check("quadrant_cell", (("n_per_class", 20), ("similarity", "similar"))),
        pick="quadrant",
        note="The course says \"lots\" and \"little\" without a number; the 100-per-class line is the playbook's "
             "rule of thumb. With this little similar data a fixed feature extractor is often as good (CS231n, "
             "\"Transfer Learning\" notes; Yosinski et al., 2014): the sweep races both.",
        run=Run("sweep", sizes=(20,), similarities=(1.0,),
                strategies=("feature_extract", "finetune_top", "finetune_all", "scratch", "early_classifier"))),
    Question(
        "q3", "quadrant",
        "A satellite-imaging team has **15 labelled image tiles per class** of crop types and a ResNet-18 trained "
        "on ImageNet. The tiles look **nothing like** ImageNet's photos. What does the course advise?",
        (Option("early_classifier", "Fit a classifier on the initial layers: cut the network early, train a new head",
                "Right: little and different. The generic early features (edges, colour blobs, textures) carry over "
                "to satellite tiles; the later, ImageNet-specific ones would mislead, and 15 tiles per class are too "
                "few to re-learn them.", lane="early_classifier"),
         Option("feature_extract", "Freeze the whole network and train a new head on its final features",
                "Those final features are the most specific to ImageNet's photos; for a different domain they "
                "transfer worst (Yosinski et al., 2014). That choice suits little data that resembles the source.",
                lane="feature_extract"),
         Option("finetune_top", "Fine-tune only the final layers",
                "That is the course's advice for little but *similar* data: it keeps the whole network and adapts "
                "its top, which assumes the lower features already fit.", lane="finetune_top"),
         Option("scratch", "Re-train from scratch",
                "15 tiles per class cannot train a network from nothing; the course keeps scratch for lots of "
                "data.", lane="scratch")),
        "early_classifier", Check("strategy", (("n_per_class", 15), ("similarity", "different"),
                                               ("arch", "resnet18"))),
        note="The course's bullet for this cell also says \"fine-tune model weights\"; the playbook's plan freezes "
             "the kept initial layers and trains only the new head, after the CS231n \"Transfer Learning\" notes "
             "for small, different data. " + _SHAPES_DIFFERENT,
        run=Run("race", preset="little_different")),
    Question(
        "q4", "quadrant",
        "A team has **90 labelled images per class**, similar to the source data. What does the quadrant page tell "
        "them?",
        (Option("near", "It is near the line between little and lots: try both neighbouring strategies",
                "Right. 90 is within a factor of two of the playbook's line of 100 per class, so the page warns "
                "that both \"fine-tune only the final layers\" and \"fine-tune all layers\" are plausible; race them "
                "on your data."),
         Option("little", "Clearly little: fine-tune only the final layers, no doubt",
                "By the line alone 90 is little, but the line is a rule of thumb: a dataset this close to it sits "
                "where both neighbouring strategies can win, and the page says so."),
         Option("lots", "Clearly lots: fine-tune all layers",
                "90 is below the 100-per-class line, so the quadrant calls it little; but it is close enough that "
                "fine-tuning all layers is worth a try.")),
        "near", Check("boundary", (("n_per_class", 90),)),
        note="The course gives no number for \"lots\"; 100 labelled images per class is the playbook's rule of "
             "thumb, and the quadrant lab measures where the crossover really sits in the shapes world."),
    Question(
        "q5", "quadrant",
        "**400 labelled images per class**, similar to the source: the playbook fine-tunes all layers of its shapes "
        "network with a learning rate per layer group. Which group learns most slowly?",
        (Option("block1", "block1, the first group",
                "Right. The first group holds the most generic features (edges, colour blobs), already right for "
                "the new data, so it moves least; each group towards the output learns faster, and the new head "
                "fastest (discriminative learning rates; Howard & Ruder, 2018, ULMFiT)."),
         Option("head", "The new head",
                "The head is new and random: it has the most to learn, so it gets the largest rate."),
         Option("block4", "block4, the last group before the head",
                "The last group holds the most problem-specific features, which need to change most: it learns "
                "faster than the early groups."),
         Option("equal", "None: every group learns at the same rate",
                "That is plain fine-tuning; the course notes that learning rates can differ per layer, and the "
                "playbook's plan for lots of similar data uses that.")),
        "block1", Check("slowest_group", (("n_per_class", 400), ("similarity", 0.9)))),
    Question(
        "q6", "quadrant",
        "A wildlife charity has **500 labelled camera-trap photos per class** of animals much like those in "
        "ImageNet, and an ImageNet model. Where does this problem sit on the quadrant?",
        (Option("lots_similar", "Lots of data, similar: fine-tune all layers",
                "Right. 500 per class is well above the 100-per-class line and the photos resemble the source's: "
                "start from the pretrained weights and let every layer adjust, the early ones more slowly.",
                lane="finetune_all"),
         Option("little_similar", "Little data, similar: fine-tune only the final layers",
                "That is for fewer than 100 labelled images per class. With 500 there are enough labels to adjust "
                "the early layers too.", lane="finetune_top"),
         Option("lots_different", "Lots of data, different: re-train from scratch",
                "That would mean the photos look unlike ImageNet's. Animals in natural scenes are close to what "
                "ImageNet models learnt from.", lane="scratch"),
         Option("little_different", "Little data, different: a classifier on the initial layers",
                "Neither is true here: there is lots of data, and it resembles the source.",
                lane="early_classifier")),
        "lots_similar", Check("quadrant_cell", (("n_per_class", 500), ("similarity", "similar"))),
        pick="quadrant"),
    Question(
        "q7", "quadrant",
        "The course's own example: **Hindi→Spanish**, with little or no Hindi–Spanish training data, starting from "
        "the English→French model. Where does the course's treatment put it on the quadrant?",
        (Option("little_similar", "Little data, similar: freeze the early layers, fine-tune the final ones",
                "Right, as the course treats it. There is little Hindi–Spanish data, and the problem's structure, "
                "translating one sentence into another, stays the same: the course's \"Freeze or fine-tune\" slides "
                "use this very example to keep the early layers and tune the top ones, which is the little + "
                "similar advice.", lane="finetune_top"),
         Option("little_different", "Little data, different: a classifier on the initial layers",
                "Defensible, since both languages change, but not the course's reading: its slides treat the "
                "example as related enough to keep the network and tune its top. The note says where the example "
                "strains the rule.", lane="early_classifier"),
         Option("lots_similar", "Lots of data, similar: fine-tune all layers",
                "The course's point is the opposite: English→French has lots of training data, Hindi→Spanish "
                "little or none (\"do more with less\").", lane="finetune_all"),
         Option("lots_different", "Lots of data, different: re-train from scratch",
                "That is where the original English→French model sits: lots of data and no similar model to start "
                "from. Hindi→Spanish has little data and that model to start from.", lane="scratch")),
        "little_similar", Check("worked_case", (("key", "hindi_spanish"),)),
        note="Where the example strains the rule: for images the generic layers are the initial ones, but a "
             "translation network's initial layers, its input embeddings, belong to the input language, so for "
             "Hindi they must be learnt anew. Zoph et al. (2016, \"Transfer Learning for Low-Resource Neural "
             "Machine Translation\") re-used a high-resource French→English model for low-resource languages into "
             "English and gained several BLEU points."),

    # ---- freeze versus fine-tune: the race ----
    Question(
        "r1", "race",
        "The \"Few and similar\" race: **20 images per class** that look like the source data, four lanes. Which "
        "lane will reach the best validation accuracy?",
        (Option("finetune_top", "Fine-tune only the final layers",
                "The course's advice for little, similar data: freeze the initial, generic layers; train the final "
                "ones and a new head.", lane="finetune_top"),
         Option("feature_extract", "Fixed feature extraction",
                "Freezing everything but the new head is the safest against overfitting and is often close. The "
                "course's cell fine-tunes the final layers too, which lets the last group adapt to the new shapes.",
                lane="feature_extract"),
         Option("finetune_all", "Fine-tune all layers",
                "Updating every weight with 20 images per class risks fitting noise; the course keeps this for "
                "lots of similar data.", lane="finetune_all"),
         Option("scratch", "Re-train from scratch",
                "Random weights and 20 images per class: far too little to learn the features from nothing.",
                lane="scratch")),
        "finetune_top", Check("strategy", (("n_per_class", 20), ("similarity", 1.0))),
        note="With very few labels, the literature often finds a fixed feature extractor as good as fine-tuning the "
             "final layers, or better (CS231n, \"Transfer Learning\" notes: train a linear classifier on the CNN "
             "codes; Yosinski et al., 2014). The race shows which held on this seed.",
        run=Run("race", preset="few_similar")),
    Question(
        "r2", "race",
        "The \"Lots and similar\" race: **250 images per class** that look like the source data. Which lane will "
        "reach the best validation accuracy?",
        (Option("finetune_all", "Fine-tune all layers",
                "The course's advice for lots of similar data: enough labels to adjust every layer, starting from "
                "weights that are already close.", lane="finetune_all"),
         Option("finetune_top", "Fine-tune only the final layers",
                "Safe, but with 250 images per class the frozen early layers cannot adapt to the new data at all; "
                "the course fine-tunes them too when labels are plentiful.", lane="finetune_top"),
         Option("feature_extract", "Fixed feature extraction",
                "Only a new head learns: with this much data, the frozen body leaves accuracy on the table.",
                lane="feature_extract"),
         Option("scratch", "Re-train from scratch",
                "250 images per class is a lot for the shapes network, so scratch closes much of the gap; but the "
                "source weights are close to what this similar task needs.", lane="scratch")),
        "finetune_all", Check("strategy", (("n_per_class", 250), ("similarity", 1.0))),
        run=Run("race", preset="lots_similar")),
    Question(
        "r3", "race",
        "Both lanes of the \"BatchNorm trap\" set `requires_grad=False` on block1 to block3. In the second lane "
        "those groups' BatchNorm layers stay in train mode. Do their running statistics change while it trains?",
        (Option("moves", "Yes: BatchNorm updates its running mean and variance in train mode",
                "Right. `requires_grad=False` only stops gradient steps on the weights; BatchNorm's running "
                "statistics are buffers updated by every forward pass in train mode. Lightning's BaseFinetuning has "
                "a `train_bn` switch for this reason, and the playbook puts frozen groups back into eval mode by "
                "default (BatchNorm policy \"eval\")."),
         Option("fixed", "No: frozen means nothing changes",
                "That is what the first lane does, because the playbook puts frozen groups' BatchNorm layers back "
                "into eval mode after every `model.train()`. `requires_grad=False` alone does not stop the running "
                "statistics."),
         Option("weights", "Yes, and their weights move too",
                "The weights get no gradient step: their drift stays zero in both lanes. Only the running "
                "statistics move in the second lane.")),
        "moves", Check("frozen_bn", (("bn_policy", "train"),)),
        note="Whether re-estimating the statistics on the target data helps is another question: it is a simple "
             "form of domain adaptation (Li et al., 2016, \"Revisiting Batch Normalization for Practical Domain "
             "Adaptation\"), and in the race it can go either way with the seed.",
        run=Run("race", preset="bn_trap", expect="bn_moves")),
    Question(
        "r4", "race",
        "The \"Lots and different\" race: **250 images per class** of a task unlike the source's. Which does "
        "better: training from scratch, or the best lane that starts from the source weights?",
        (Option("scratch", "Training from scratch, as the course advises",
                "The course's advice for lots of different data: the source's features fit poorly and there is "
                "enough data to learn new ones. See the note: the literature often disagrees, and the race may "
                "too.", lane="scratch"),
         Option("pretrained", "A lane that starts from the source weights",
                "Many practitioners would bet on this: a pretrained start converges faster, so with the same "
                "training budget it is often ahead (He et al., 2019). It contradicts the course's advice for this "
                "cell, not necessarily the data: run it.", lane="finetune_all"),
         Option("same", "About the same",
                "He et al. (2019) found that with enough data and training, scratch catches up with a pretrained "
                "start; the difference then shows in how fast each gets there. The course expects scratch to do "
                "better here.")),
        "scratch", Check("start", (("n_per_class", 250), ("similarity", 0.25))),
        note=_HE_2019 + ". " + _SHAPES_DIFFERENT,
        run=Run("race", preset="lots_different", expect="pretrained_vs_scratch")),
    Question(
        "r5", "race",
        "Could a plan \"fine-tune only the final layers\" freeze **block2** but train **block1**, the first group?",
        (Option("refused", "No: the playbook refuses it; freeze a prefix, the first groups",
                "Right. The initial layers are the generic ones, so the course freezes the initial n layers. "
                "Training block1 under a frozen block2 would let the first features drift while the next layer "
                "still expects the old ones. The plan refuses it and says which groups to freeze."),
         Option("valid", "Yes: any set of groups can be frozen",
                "PyTorch would let you (`requires_grad` is per weight), but the playbook's plan checks that the "
                "frozen groups are the first ones, as the course's \"initial n layers can be frozen\" says.")),
        "refused", Check("plan_valid", (("strategy", "finetune_top"), ("frozen", ("block2",))))),

    # ---- the architectures ----
    Question(
        "a1", "architectures",
        "On VGG-16, \"fine-tune only the final layers\" with block1 to block5 frozen trains fc6, fc7 and a new "
        "1000-class head. Roughly what share of VGG-16's weights is that?",
        (Option("nine_in_ten", "About nine in ten",
                "Right. VGG's fully connected layers hold most of its weights: fc6 alone connects a 7×7×512 feature "
                "map to 4,096 units. So on VGG \"only the final layers\" is nearly the whole network, and with "
                "little data a fixed feature extractor (only the head trains) is the safer choice."),
         Option("few", "Under a tenth",
                "That is true of networks whose last layers are small (a ResNet's final group is convolutional, "
                "with a small head). VGG's fc6 and fc7 are huge."),
         Option("all", "All of them",
                "block1 to block5, the thirteen convolutional layers, stay frozen; they hold about a tenth of the "
                "weights."),
         Option("other", "About a third",
                "The convolutional blocks are the smaller part of VGG: the fully connected layers hold far more.")),
        "nine_in_ten", Check("trainable_share", (("arch", "vgg16"), ("strategy", "finetune_top"),
                                                 ("freeze_first", 5))),
        note="The course's rule \"fine-tune only final layers\" assumes the final layers are a small part of the "
             "network. On AlexNet and VGG they are not, and the CS231n \"Transfer Learning\" notes advise a linear "
             "classifier on the CNN codes for small, similar data."),
    Question(
        "a2", "architectures",
        "The course: \"DenseNet leads to compact models with relatively few parameters\". Which of these has the "
        "fewest parameters?",
        (Option("densenet121", "DenseNet-121",
                "Right. Each layer adds only a few feature maps (its growth rate) and re-uses all earlier ones "
                "through the dense connections, so 121 layers need fewer weights than a ResNet-50."),
         Option("resnet50", "ResNet-50",
                "ResNet-50 has about three times DenseNet-121's parameters: its bottleneck blocks end 2,048 "
                "channels wide."),
         Option("vgg16", "VGG-16",
                "VGG-16 is the heaviest of the three by far: its fully connected layers alone hold over a hundred "
                "million weights.")),
        "densenet121", Check("fewest_params", (("archs", ("densenet121", "resnet50", "vgg16")),))),
    Question(
        "a3", "architectures",
        "Little data of a different task on **DenseNet-121**: the playbook fits a classifier on the initial "
        "layers. After which layer group does it cut the network?",
        (Option("block1", "After the first dense block (stem and block1 kept)",
                "Right. The plan keeps the stem and the first dense block, whose features are generic enough to "
                "carry over, freezes them, and fits a new head on their pooled output; blocks 2 to 4 are dropped."),
         Option("stem", "After the stem only",
                "The stem alone (one convolution and pooling) gives very low-level features; the plan keeps the "
                "first dense block as well."),
         Option("block3", "After block3",
                "By block3 the features are already specific to ImageNet's classes: for a different task they "
                "transfer worse (Yosinski et al., 2014)."),
         Option("block4", "After block4: the whole body",
                "That is fixed feature extraction on the final features, the choice for little *similar* data.")),
        "block1", Check("cut_after", (("n_per_class", 20), ("similarity", "different"), ("arch", "densenet121")))),
    Question(
        "a4", "architectures",
        "You transfer **Inception v3**. For what input size was it designed, the size its pretrained weights "
        "expect?",
        (Option("299", "299 × 299 pixels",
                "Right. Szegedy et al. designed Inception v3 for 299-pixel images; AlexNet, VGG, ResNet and DenseNet "
                "were designed for 224. Resize your images to the architecture's size."),
         Option("224", "224 × 224 pixels",
                "That is the size of AlexNet, VGG, ResNet and DenseNet. Inception v3 was designed for 299."),
         Option("32", "32 × 32 pixels",
                "That is the shapes world's image size, for the playbook's own small network.")),
        "299", Check("input_size", (("arch", "inception_v3"),))),
    Question(
        "a5", "architectures",
        "VGG stacks three 3×3 convolutions instead of one 7×7 convolution: both see a 7×7 patch of the input. With "
        "the same number of channels in and out, which needs fewer weights?",
        (Option("stack", "The three stacked 3×3 layers",
                "Right: 3 × (3 × 3) = 27 weights per pair of channels against 7 × 7 = 49, and three non-linearities "
                "instead of one. The course: more representational power without too many parameters."),
         Option("large", "The single 7×7 layer",
                "One layer feels smaller, but its 49 weights per pair of channels outnumber the stack's 27."),
         Option("same", "The same: they see the same patch",
                "They see the same patch (the same receptive field), but the stack spends fewer weights on it.")),
        "stack", Check("stacked_filters", (("channels", 64),))),
    Question(
        "a6", "architectures",
        "He et al. (2015) introduced ResNet's skip connections. Their deep **plain** networks, without skips, "
        "already used batch normalisation. What problem did the skip connections solve?",
        (Option("degradation", "Degradation: deeper plain networks reached a higher training error",
                "Right. With batch normalisation the plain networks' gradients were healthy, yet a 34-layer plain "
                "network trained to a higher error than an 18-layer one: extra depth made optimisation harder. "
                "Residual blocks, which only have to learn what to add to their input, made extra depth stop "
                "hurting."),
         Option("vanishing", "Vanishing gradients: nothing reached the early layers",
                "The popular story, and true of deep plain stacks *without* normalisation (switch BatchNorm off in "
                "the residual toggle above and the first layer's gradient all but disappears). He et al.'s plain "
                "networks had batch normalisation, and their gradients did reach the early layers."),
         Option("overfitting", "Overfitting: deeper networks memorised the training set",
                "Overfitting shows as a low training error with a high test error. The deeper plain networks had a "
                "higher *training* error: they were harder to optimise, not over-fitted."),
         Option("params", "Too many parameters",
                "An identity shortcut adds no weights at all; what it changes is what each block has to learn.")),
        "degradation", Check("plain_bn_gradients", (("depth", 40),)),
        note="The course describes residual learning (\"the model is forced to focus on what is not learnt by "
             "intermediate layers\"); many tutorials add vanishing gradients as the reason for skips. He, Zhang, "
             "Ren & Sun (2015), §1 and §4.1, report healthy gradients in their batch-normalised plain networks and "
             "name the problem degradation."),
)

_BY_ID: dict[str, Question] = {q.id: q for q in QUESTIONS}


def get_question(qid: str) -> Question:
    """The question with this id.

    Raises:
        ValueError: If there is none.
    """
    if qid not in _BY_ID:
        raise ValueError(f"Unknown question {qid!r}.")
    return _BY_ID[qid]


def questions_for(page: str) -> tuple[Question, ...]:
    """A page's questions, in order.

    Raises:
        ValueError: If the page is not one of PAGES.
    """
    if page not in PAGES:
        raise ValueError(f"Unknown page {page!r}. Choose one of: {', '.join(PAGES)}.")
    return tuple(q for q in QUESTIONS if q.page == page)


# ---- a learner's progress ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    """What a learner answered to one question."""

    first: str  # the option key of the first answer
    last: str  # the option key of the latest answer
    tries: int  # answers given so far, at least 1 (counted up to MAX_TRIES)


def record(progress: Mapping[str, Attempt], qid: str, option: str) -> dict[str, Attempt]:
    """The progress after one more answer (a new dict; the given one is not changed).

    Raises:
        ValueError: If the question or the option is unknown.
    """
    q = get_question(qid)
    q.option(option)
    out = dict(progress)
    old = out.get(qid)
    out[qid] = (Attempt(option, option, 1) if old is None else
                Attempt(old.first, option, min(old.tries + 1, MAX_TRIES)))
    return out


def _letter(i: int) -> str:
    return chr(ord("a") + i)


def encode_progress(progress: Mapping[str, Attempt]) -> str:
    """A compact text for the URL: "1" and one entry per answered question, dot-separated, e.g. "1.w1aa1.m3ba2"
    (the id, the first and the latest option as letters, the tries). Questions in QUESTIONS order; "" if none."""
    entries = [f"{q.id}{_letter(q.index(a.first))}{_letter(q.index(a.last))}{a.tries}"
               for q in QUESTIONS if (a := progress.get(q.id)) is not None]
    return ".".join([PROGRESS_VERSION, *entries]) if entries else ""


def decode_progress(text: str) -> dict[str, Attempt]:
    """The progress an encoded text describes (all or nothing).

    Raises:
        ValueError: If any part is malformed or names an unknown question or option; the message says which.
    """
    text = (text or "").strip()
    if not text:
        return {}
    version, *entries = text.split(".")
    if version != PROGRESS_VERSION:
        raise ValueError(f"The saved answers in the link are in an unknown format ({version[:8]!r}); they were not "
                         f"restored.")
    out: dict[str, Attempt] = {}
    for entry in entries:
        m = _ENTRY.match(entry)
        if m is None:
            raise ValueError(f"The saved answers in the link are damaged near {entry[:12]!r}; they were not restored.")
        qid, first, last, tries = m.groups()
        q = _BY_ID.get(qid)
        n = len(q.options) if q else 0
        if q is None or ord(first) - 97 >= n or ord(last) - 97 >= n or not 1 <= int(tries) <= MAX_TRIES \
                or qid in out:
            raise ValueError(f"The saved answers in the link name an unknown question or answer ({entry[:12]!r}); "
                             f"they were not restored.")
        out[qid] = Attempt(q.options[ord(first) - 97].key, q.options[ord(last) - 97].key, int(tries))
    return out


@dataclass(frozen=True)
class Score:
    """How far a learner has come."""

    answered: int  # questions answered at least once
    first_try: int  # ... whose first answer was the keyed one
    correct_now: int  # ... whose latest answer is the keyed one
    total: int  # questions in all (or on the page asked about)


def score(progress: Mapping[str, Attempt], page: str | None = None) -> Score:
    """The learner's score, over every question or one page's."""
    qs = QUESTIONS if page is None else questions_for(page)
    mine = [(q, progress[q.id]) for q in qs if q.id in progress]
    return Score(len(mine), sum(q.is_correct(a.first) for q, a in mine), sum(q.is_correct(a.last) for q, a in mine),
                 len(qs))


# ---- measuring an answer --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measurement:
    """What one run measured about a question's keyed answer."""

    agrees: bool | None  # whether the data supported the keyed answer this time; None when nothing could be compared
    text: str  # what was measured, every number read from the run


def _named(label: str, acc: float) -> str:
    return f"{label} ({pct(acc)})"


_AGREED = " The data agreed with the keyed answer this time."
_CONTRADICTS = (" The data contradicts the keyed answer this time: the course's rules are rules of thumb, and the "
                "question's note says where the literature disagrees.")


def _winner_verdict(q: Question, acc: Mapping[str, float], labels: Mapping[str, str], pick: str | None,
                    where: str) -> Measurement:
    """Compare the keyed option's lane with the best lane that an option names (a tie within NEAR_POINTS agrees)."""
    lanes = [o.lane for o in q.options if o.lane is not None and o.lane in acc]
    keyed = q.keyed.lane
    if not lanes or keyed not in acc:
        return Measurement(None, f"{where}: the lanes this question is about did not finish, so there is nothing "
                                 f"to compare.")
    best = max(lanes, key=lambda k: acc[k])
    agrees = 100 * (acc[best] - acc[keyed]) < NEAR_POINTS
    text = f"{where}: {_named(labels.get(best, best), acc[best])} came first"
    if best != keyed:
        text += (f"; the keyed answer, {labels.get(keyed, keyed)}, reached {pct(acc[keyed])} "
                 f"({points(acc[keyed] - acc[best])}" + (f", within {NEAR_POINTS:g} points: a tie)" if agrees else ")"))
    mine = q.option(pick).lane if pick is not None else None
    if mine is not None and mine in acc and mine not in (best, keyed):
        text += f"; your pick, {labels.get(mine, mine)}, reached {pct(acc[mine])}"
    return Measurement(agrees, text + "." + (_AGREED if agrees else _CONTRADICTS))


def judge_race(q: Question, results: Mapping[str, Any], pick: str | None = None, seed: int | None = None,
               ) -> Measurement:
    """What a finished race of the question's preset says about its keyed answer.

    Args:
        q: A question whose run is a race.
        results: lane key -> tl_core.training.records.RunResult, for the lanes that started.
        pick: The learner's option key, named in the text when it is neither the winner nor the keyed answer.
        seed: The race's seed, for the text.

    Returns:
        The measurement: agreement, and a sentence with the accuracies.

    Raises:
        ValueError: If the question has no race.
    """
    if q.run is None or q.run.kind != "race":
        raise ValueError(f"Question {q.id} is not measured by a race.")
    preset = get_preset(q.run.preset)
    done = {k: r for k, r in results.items() if r.ok and r.final_val_acc is not None}
    acc = {k: float(r.final_val_acc) for k, r in done.items()}
    labels = {lane.key: lane.label for lane in preset.lanes}
    where = f"Measured in the race \"{preset.title}\"" + (f", seed {seed}" if seed is not None else "")
    if q.run.expect == "winner":
        return _winner_verdict(q, acc, labels, pick, where)
    if q.run.expect == "pretrained_vs_scratch":
        pre = [k for k, r in done.items() if STRATEGIES[Plan.from_dict(r.plan).strategy].pretrained]
        if "scratch" not in acc or not pre:
            return Measurement(None, f"{where}: the scratch lane or every pretrained lane did not finish.")
        best = max(pre, key=lambda k: acc[k])
        diff = acc[best] - acc["scratch"]
        outcome = "pretrained" if 100 * diff >= NEAR_POINTS else ("scratch" if 100 * diff <= -NEAR_POINTS else "same")
        agrees = outcome == q.answer
        verdict = {"pretrained": "starting from the source weights did better",
                   "scratch": "training from scratch did better",
                   "same": f"within {NEAR_POINTS:g} points, call it a tie"}[outcome]
        text = (f"{where}: the best lane that starts from the source weights, "
                f"{_named(labels.get(best, best), acc[best])}, against {_named(labels['scratch'], acc['scratch'])}: "
                f"{points(diff)}, {verdict}.")
        return Measurement(agrees, text + (_AGREED if agrees else _CONTRADICTS))
    # bn_moves: the frozen groups' statistics in the lane that re-estimates them, and their weights
    if BN_REESTIMATE not in done:
        return Measurement(None, f"{where}: the re-estimating lane did not finish.")
    moved = done[BN_REESTIMATE]
    frozen = [g for g in moved.frozen if g in moved.bn_drift]
    bn = max((moved.bn_drift[g] for g in frozen), default=0.0)
    weights = max((moved.drift.get(g, 0.0) for g in frozen), default=0.0)
    kept = done.get(BN_KEEP)
    kept_bn = max((kept.bn_drift.get(g, 0.0) for g in kept.frozen), default=0.0) if kept is not None else None
    agrees = ("moves" if bn > 0 else "fixed") == q.answer
    text = (f"{where}: in the lane that re-estimates them, the frozen groups' BatchNorm statistics changed by up to "
            f"{pct(bn)} while their weights moved by {sci(weights)}"
            + (f"; kept in eval mode, the statistics changed by {pct(kept_bn)}" if kept_bn is not None else "") + ".")
    return Measurement(agrees, text + (_AGREED if agrees else _CONTRADICTS))


def judge_sweep(q: Question, lanes: Sequence[Any]) -> Measurement:
    """What a finished quadrant-lab sweep says about the question's keyed answer.

    Args:
        q: A question whose run is a sweep.
        lanes: Finished runs (tl_core.experiments.lab.LaneDone: n_per_class, similarity, seed, strategy, accuracy).

    Returns:
        The measurement over the sweep's cell (accuracies averaged over its seeds).

    Raises:
        ValueError: If the question has no sweep.
    """
    if q.run is None or q.run.kind != "sweep":
        raise ValueError(f"Question {q.id} is not measured by a sweep.")
    mine = [ln for ln in lanes if ln.n_per_class in q.run.sizes
            and any(abs(ln.similarity - s) < 1e-9 for s in q.run.similarities)]
    acc: dict[str, float] = {}
    for strategy in {ln.strategy for ln in mine}:
        values = [ln.accuracy for ln in mine if ln.strategy == strategy]
        acc[strategy] = sum(values) / len(values)
    seeds = sorted({ln.seed for ln in mine})
    where = (f"Measured in the quadrant lab ({and_list([str(n) for n in q.run.sizes])} images per class, similarity "
             f"{and_list([f'{s:g}' for s in q.run.similarities])}, seed{'s' if len(seeds) > 1 else ''} "
             f"{and_list([str(s) for s in seeds])})")
    labels = {k: STRATEGIES[k].label for k in STRATEGIES}
    return _winner_verdict(q, acc, labels, None, where)


# ---- the summary to hand in, and the class poll ---------------------------------------------------------------------
SUMMARY_COLUMNS = ("question", "page", "prompt", "first_answer", "first_try_correct", "latest_answer",
                   "latest_correct", "tries", "keyed_answer", "measured")


def _plain(markdown: str) -> str:
    return markdown.replace("**", "").replace("`", "")


def summary_rows(progress: Mapping[str, Attempt], measured: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per question (answered or not), in QUESTIONS order, keyed by SUMMARY_COLUMNS.

    Args:
        progress: question id -> Attempt.
        measured: question id -> what its run measured (a sentence), if anything.
    """
    rows = []
    for q in QUESTIONS:
        a = progress.get(q.id)
        rows.append({
            "question": q.id, "page": PAGES[q.page], "prompt": _plain(q.prompt),
            "first_answer": _plain(q.option(a.first).label) if a else "",
            "first_try_correct": q.is_correct(a.first) if a else None,
            "latest_answer": _plain(q.option(a.last).label) if a else "",
            "latest_correct": q.is_correct(a.last) if a else None,
            "tries": a.tries if a else 0,
            "keyed_answer": _plain(q.keyed.label) if a else "",  # only once answered: no answer key for free
            "measured": (measured or {}).get(q.id, ""),
        })
    return rows


def summary_json(progress: Mapping[str, Attempt], measured: Mapping[str, str] | None = None) -> str:
    """The summary to hand in, as JSON: the score and one entry per question."""
    s = score(progress)
    return json.dumps({"answered": s.answered, "first_try_correct": s.first_try, "correct_now": s.correct_now,
                       "total": s.total, "questions": summary_rows(progress, measured)}, indent=2)


def summary_csv(progress: Mapping[str, Attempt], measured: Mapping[str, str] | None = None) -> str:
    """The summary to hand in, as CSV: one row per question (SUMMARY_COLUMNS)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    for row in summary_rows(progress, measured):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


POLL_PREFIX = "quiz:"  # class poll ids of questions: "quiz:<question id>"


def poll_spec(q: Question) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    """A question as a class poll's fields: (id, prompt, option keys, option labels), for
    tl_core.classroom.polls.Poll(*poll_spec(q))."""
    return (POLL_PREFIX + q.id, _plain(q.prompt), tuple(o.key for o in q.options),
            tuple(_plain(o.label) for o in q.options))


def question_of_poll(poll_id: str) -> Question | None:
    """The question a class poll asks, if it is one of these."""
    if not poll_id.startswith(POLL_PREFIX):
        return None
    return _BY_ID.get(poll_id[len(POLL_PREFIX):])
