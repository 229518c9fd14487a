"""The domain-and-task matrix: four yes/no questions that place a problem in Pan & Yang's taxonomy, as plain data.

It follows the course's decision tree, after Sinno Jialin Pan and Qiang Yang, "A Survey on Transfer Learning",
IEEE TKDE 22(10), 2010: target labels? source labels? and, when only the source is labelled, are the domains the
same? The definitions are the survey's: a domain is a feature space with its marginal distribution P(X); a task is a
label space with its predictive function P(Y|X). `classify` maps every one of the 16 answer sets to a `Setting`
whose name, headline and explanation hold for those very answers; where the answers leave the survey's table the
headline says so. Where the course's tree would give an answer set a name that does not fit it (a second labelled
dataset of the same task, unlabelled data of the very same problem, a new task without any target labels), the
matrix names it honestly and draws the leaf dashed, as the app's addition. The tree itself is data here
(`TREE_NODES`, `TREE_EDGES`, `decision_path`); ui.charts.diagrams draws it. No torch, no streamlit.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

CATEGORIES = ("inductive", "transductive", "unsupervised", "outside", "none")
"""Pan & Yang's three settings; "outside" for transfer that none of the three covers; "none" when there is nothing
to transfer."""

CATEGORY_LABELS: dict[str, str] = {
    "inductive": "Inductive transfer learning (Pan & Yang)",
    "transductive": "Transductive transfer learning (Pan & Yang)",
    "unsupervised": "Unsupervised transfer learning (Pan & Yang)",
    "outside": "Transfer outside the survey's three settings",
    "none": "Not transfer learning",
}

QUESTIONS: dict[str, tuple[str, str]] = {  # Answers field -> (question, help), in the order the page asks them
    "target_labels": (
        "Are labels available in the **target** domain?",
        "Do you have at least some labelled examples of the problem you want to solve?"),
    "source_labels": (
        "Are labels available in the **source** domain?",
        "Is the data the original model (or your extra dataset) learnt from labelled?"),
    "same_domain": (
        "Are the source and target **domains** the same: one feature space and one population of inputs, however "
        "they were sampled?",
        "Pan & Yang: a domain is a feature space X with a marginal distribution P(X). Answer yes when the inputs are "
        "the same kind of thing, measured the same way, drawn from the same population: then only the way your "
        "sample was drawn can differ, and in the course's tree that still lets P(X) shift through biased sampling "
        "(the 'fix sampling biases' leaf). Answer no when the target inputs come from a different but related world "
        "(studio photos and phone snapshots, English and Hindi sentences) or another feature space."),
    "same_task": (
        "Are the source and target **tasks** the same?",
        "Pan & Yang: a task is a label space Y with a predictive function P(Y|X). Same labels with the same relation "
        "to the inputs: yes. New classes, or the same classes given to inputs by another rule: no."),
}


@dataclass(frozen=True)
class Answers:
    """The four yes/no questions of the matrix (QUESTIONS has their wording)."""

    source_labels: bool  # are the source domain's examples labelled?
    target_labels: bool  # are (some of) the target domain's examples labelled?
    same_domain: bool  # one feature space and one population of inputs (P(X) may still shift by biased sampling)?
    same_task: bool  # the same label space and the same P(Y|X)?


@dataclass(frozen=True)
class Setting:
    """Which transfer-learning setting a combination of answers lands in, and what to do about it."""

    key: str  # stable identifier, e.g. "domain_adaptation" (ALL_KEYS)
    category: str  # one of CATEGORIES
    name: str  # the setting's honest name for these answers
    explanation: str  # what the setting is and why these very answers lead here
    example: str  # a concrete case, from the shapes world or everyday life, that fits these answers
    tricky: bool  # the course's "Tricky - need expert judgment" branch (source labels, no target labels)
    tricky_note: str  # why it is tricky; "" when not tricky
    off_table: str  # why the answers leave Pan & Yang's table, in a few words; "" when they match a row
    caveats: tuple[str, ...]  # what leaving the table means in practice (empty when on the table)
    table_row: int | None  # index into pan_yang_table() of the nearest row; None when no row is near
    answers: Answers  # the answers that led here

    @property
    def on_table(self) -> bool:
        """True when the answers match a row of Pan & Yang's table exactly."""
        return self.table_row is not None and not self.off_table

    @property
    def headline(self) -> str:
        """The name, and where the answers leave the survey's table, in one line (the page's subheader)."""
        return self.name if not self.off_table else f"{self.name}, off the survey's table: {self.off_table}"

    @property
    def category_label(self) -> str:
        """The category in words, e.g. "Inductive transfer learning (Pan & Yang)"."""
        return CATEGORY_LABELS[self.category]


@dataclass(frozen=True)
class TableRow:
    """One row of Pan & Yang's table of strategies and settings, as shown in the seed course."""

    strategy: str  # the learning strategy, e.g. "Inductive Transfer Learning"
    related_areas: str  # the research areas it covers
    domains: str  # source & target domains
    source_labels: str  # "Available" or "Unavailable"
    target_labels: str  # "Available" or "Unavailable"
    task_relation: str  # source & target tasks
    tasks: str  # the kinds of tasks solved


_TABLE: tuple[TableRow, ...] = (
    TableRow("Inductive Transfer Learning", "Multi-task Learning", "The Same", "Available", "Available",
             "Different but Related", "Regression, Classification"),
    TableRow("Inductive Transfer Learning", "Self-taught Learning", "The Same", "Unavailable", "Available",
             "Different but Related", "Regression, Classification"),
    TableRow("Unsupervised Transfer Learning", "", "Different but Related", "Unavailable", "Unavailable",
             "Different but Related", "Clustering, Dimensionality Reduction"),
    TableRow("Transductive Transfer Learning", "Domain Adaptation, Sample Selection Bias & Co-variate Shift",
             "Different but Related", "Available", "Unavailable", "The Same", "Regression, Classification"),
)

TABLE_COLUMNS = ("Learning strategy", "Related areas", "Source & target domains", "Source domain labels",
                 "Target domain labels", "Source & target tasks", "Tasks")


def pan_yang_table() -> list[dict[str, str]]:
    """Pan & Yang's table of transfer-learning strategies, one dict per row, keyed by TABLE_COLUMNS.

    Returns:
        Four rows in the course's order: multi-task, self-taught, unsupervised, transductive.
    """
    return [dict(zip(TABLE_COLUMNS, (r.strategy, r.related_areas, r.domains, r.source_labels, r.target_labels,
                                     r.task_relation, r.tasks))) for r in _TABLE]


# ---- the settings' text ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _SettingText:
    category: str
    name: str
    explanation: str  # holds for every answer set that reaches this key; _specifics adds what depends on them
    example: str  # fits every answer set that reaches this key
    table_row: int | None


_TEXT: dict[str, _SettingText] = {
    "multi_task": _SettingText(
        "inductive", "Multi-task learning",
        "Both sides are labelled and the tasks differ: Pan & Yang's inductive setting, where the target labels "
        "induce the target model and the source labels shape what it learns. The course names this corner after "
        "multi-task learning: several related tasks learnt at the same time, by one network with shared layers, "
        "so that each task's labels help the others. Training on the source first and fine-tuning on the target "
        "afterwards (fine-tuning an ImageNet network, for example) uses the same labels one after the other: that "
        "is sequential transfer, the everyday way to exploit this setting, not multi-task learning.",
        "Shapes world: one network learns, from the same images, the shape's name and whether it is filled or "
        "outlined; the early layers (edges, corners) serve both tasks. Everyday: a photo model that tags the "
        "dog's breed and whether the photo was taken indoors.",
        0),
    "supervised_domain_adaptation": _SettingText(
        "outside", "Supervised domain adaptation (fine-tuning)",
        "The task is the same and both sides are labelled, but the inputs come from different, related domains. "
        "The target labels say directly how well a model does on the target, so this is the easy case of domain "
        "adaptation: train on the source and fine-tune on the target labels (or train on both at once, weighting "
        "the target). It is not multi-task learning, because there is only one task.",
        "Shapes world: labelled clean shapes on white backgrounds, and a few labelled noisy, recoloured drawings "
        "of the same shapes. Everyday: a product classifier trained on labelled studio photos, fine-tuned on a few "
        "hundred labelled phone snapshots of the same products.",
        None),
    "self_taught": _SettingText(
        "inductive", "Self-taught learning",
        "Only the target side is labelled. The unlabelled source data still teaches useful features (edges, "
        "textures, parts) without any labels, for example through a pretext task whose answers come from the "
        "data itself; the target labels then train the classifier on top. The course calls it semi-supervised "
        "transfer learning, and it is widely used in practice.",
        "Shapes world: a pile of unlabelled drawings teaches a network what strokes and corners look like; 20 "
        "labelled images per class of your target shapes then train the head. Everyday: features learnt from "
        "millions of unlabelled web photos, then a classifier for your 500 labelled product photos.",
        1),
    "semi_supervised": _SettingText(
        "none", "Semi-supervised learning",
        "The unlabelled data is more of the very same problem: same domain, same task, just without labels. "
        "Nothing is transferred between two problems, so this is semi-supervised learning rather than transfer: "
        "pretrain on the unlabelled images without labels (or pseudo-label them with a model trained on your "
        "labels), then train on your labels.",
        "Shapes world: 20 labelled and 2,000 unlabelled drawings of the same four shapes by the same generator. "
        "Everyday: a few hundred labelled and a hundred thousand unlabelled photos from the same camera trap.",
        None),
    "sample_selection_bias": _SettingText(
        "transductive", "Sample-selection bias / covariate shift",
        "The task is the same and only the source is labelled. The domain is the same, one feature space and one "
        "population of inputs, but your labelled sample was drawn with a bias: its P(X) differs from the target's "
        "while P(Y|X) does not, which is covariate shift. (In Pan & Yang's formal terms the two marginals differ, "
        "which is why their table calls the domains 'different but related'; the course calls them the same "
        "because only the sampling differs.) Fix the sampling bias: re-weight (or re-sample) the labelled source "
        "examples so their mix looks like the target's, then train on them.",
        "Shapes world: the labelled sample happens to hold mostly large shapes, while the images to classify come "
        "in every size; give the few small labelled shapes more weight. Everyday: a loan-default model learnt "
        "only from the applicants a bank approved in the past, applied to everyone who applies: the same kind of "
        "applicant data and the same link from an applicant's figures to default, but a sample that "
        "over-represents safe-looking applicants (Zadrozny, 2004).",
        3),
    "domain_adaptation": _SettingText(
        "transductive", "Domain adaptation",
        "The task is the same and only the source is labelled, but the target inputs come from a different, "
        "related domain: not a biased sample of the source's population but another one. Domain adaptation "
        "trains on the labelled source while pulling the source and target feature distributions together (for "
        "example with domain-adversarial training, or by re-estimating normalisation statistics on the target), "
        "so that the source classifier also works on the target.",
        "Shapes world: labelled clean shapes on white backgrounds, and unlabelled noisy, recoloured drawings of "
        "the same shapes to classify. Everyday: labelled studio product photos, unlabelled phone snapshots of the "
        "same products.",
        3),
    "new_task_unlabelled": _SettingText(
        "outside", "A new task without target labels",
        "The source is labelled but the task changes and the target has no labels: nothing tells a model what "
        "the new outputs mean, so neither of the course's two leaves here (fixing sampling biases, domain "
        "adaptation) applies: both assume the task stays the same. Two ways out: label a few target examples "
        "(then it is inductive transfer), or give up predicting labels and cluster the target with features "
        "learnt from the labelled source (unsupervised transfer).",
        "Shapes world: a model that names six labelled source shapes, and unlabelled drawings of four other "
        "shapes. Everyday: a labelled ImageNet model and an unlabelled folder of X-rays to sort into "
        "diagnoses nobody has labelled.",
        None),
    "unsupervised": _SettingText(
        "unsupervised", "Unsupervised transfer learning (clustering, dimensionality reduction)",
        "No labels anywhere, so no classifier or regressor can be trained; what transfers is structure. Features "
        "learnt on the unlabelled source data help to cluster the target data or to reduce its dimensionality, "
        "which is what the target task is in this setting.",
        "Shapes world: group unlabelled target drawings into clusters with a network pretrained without labels on "
        "other drawings, then look at each cluster. Everyday: grouping customer photos by visual similarity with "
        "features learnt elsewhere, without labels.",
        2),
    "none": _SettingText(
        "none", "No transfer needed: ordinary supervised learning",
        "Source and target are labelled data of one and the same problem: same domain, same task. There is "
        "nothing to transfer between them; the source is simply more data. Pool it all and train one model, or, "
        "if a model trained on exactly this problem already exists, use it as it is.",
        "Shapes world: two labelled batches of the same four shapes, drawn by the same generator; concatenate "
        "them. Everyday: this month's and last month's labelled images from the same camera and the same "
        "labelling guide.",
        None),
}

SETTING_KEYS: tuple[str, ...] = ("multi_task", "self_taught", "sample_selection_bias", "domain_adaptation",
                                 "unsupervised", "none")
"""The course's five settings and "no transfer"; each of the five has a demo in the matrix lab."""
EXTRA_KEYS: tuple[str, ...] = ("supervised_domain_adaptation", "semi_supervised", "new_task_unlabelled")
"""Honest names for answer sets that the course's tree sends to a leaf whose name does not fit them."""
ALL_KEYS: tuple[str, ...] = SETTING_KEYS + EXTRA_KEYS

_MULTI_TASK_TWO_DOMAINS = (
    "Shapes world: one network with a shared body learns, at the same time, to name the six source shapes on plain "
    "backgrounds and four new shapes drawn on textured backgrounds, each task with its own head. Everyday: one "
    "model trained at once on labelled studio photos (product type) and labelled phone snapshots (damaged or not).")

_TRICKY_NOTE = (
    "Tricky: needs expert judgment. The labels you have describe the source, not the target, so nothing "
    "measures success on the target directly. Whether the source labels carry over depends on how far the "
    "target drifted from the source. Hand-label a small target sample just to check the result.")


def _specifics(key: str, a: Answers) -> tuple[str, str, tuple[str, ...]]:
    """What depends on the exact answers: an extra sentence for the explanation, why the answers leave the
    survey's table (a few words, "" when they match a row), and what that means in practice."""
    if key == "none":
        return ("", "one problem, nothing to transfer",
                ("Pan & Yang's table has no row for this: transfer learning needs the domains or the tasks to "
                 "differ. If the pooled data is still small, starting from a pretrained network still helps: "
                 "see the size-versus-similarity quadrant.",))
    if key == "supervised_domain_adaptation":
        return ("", "labels on both sides and the same task",
                ("Pan & Yang's inductive setting needs the tasks to differ and their transductive setting needs "
                 "the target to be unlabelled; labels on both sides of one task fall between them. The course's "
                 "tree would send these answers to multi-task learning, which needs two tasks. Fine-tuning is the "
                 "usual answer, and the size-versus-similarity quadrant says how much of the network to fine-tune.",))
    if key == "semi_supervised":
        return ("", "unlabelled data of the very same problem",
                ("The course's tree would call this self-taught learning, but self-taught learning (Raina et al., "
                 "2007) uses unlabelled data of other, related classes; here the unlabelled data is of the same "
                 "classes and the same domain.",))
    if key == "new_task_unlabelled":
        return ("", "no setting of the survey covers it",
                ("The course's tree sends every answer set with source labels and no target labels to 'domains the "
                 "same?'; both of its leaves assume that the task stays the same. The dashed branch is the app's "
                 "addition.",))
    if key == "multi_task" and not a.same_domain:
        return ("Here the domains differ as well: each task brings its own inputs, and the shared layers learn "
                "from both.", "the domains differ too",
                ("The table lists the same domain for this row, but Pan & Yang's inductive setting covers "
                 "different domains as well ('no matter when the source and target domains are the same or "
                 "not'): the tasks differing is what makes it inductive.",))
    if key == "self_taught":
        if a.same_task:  # the domain differs here, else the key is "semi_supervised"
            return ("Here the unlabelled data shows the same classes, but from another domain.",
                    "the same task, from another domain",
                    ("The table's row lists the same domain and different tasks. Pretraining without labels on "
                     "another domain's images of your classes is self-taught learning in spirit; the closer that "
                     "domain is to yours, the more its features help.",))
        if not a.same_domain:
            return ("Here the unlabelled data also comes from another domain.", "the domains differ too",
                    ("The table lists the same domain, but self-taught learning (Raina et al., 2007) was designed "
                     "for unlabelled data that need not share the target's classes or distribution. The closer the "
                     "unlabelled data is to the target, the more its features help.",))
        return ("The course's wording: labelled data of the classes you want, plus unlabelled data from other, "
                "similar classes.", "", ())
    if key == "unsupervised":
        reasons, notes = [], []
        if a.same_domain:
            reasons.append("the same domain")
            notes.append("The table's unsupervised row assumes different but related domains. With the same "
                         "domain, pool both datasets and cluster or reduce them together.")
        if a.same_task:
            reasons.append("the same task")
            notes.append("Even with the same task, no labels on either side means nothing can learn to predict Y: "
                         "this is still clustering or dimensionality reduction. Labelling a few target examples "
                         "moves you out of this corner.")
        return ("", " and ".join(reasons), tuple(notes))
    return ("", "", ())


def _key_for(a: Answers) -> str:
    """The course's tree (target labels? source labels? domains the same?), with honest names where it misfits."""
    if a.target_labels:
        if a.source_labels:
            if a.same_task:
                return "none" if a.same_domain else "supervised_domain_adaptation"
            return "multi_task"
        return "semi_supervised" if (a.same_domain and a.same_task) else "self_taught"
    if a.source_labels:
        if not a.same_task:
            return "new_task_unlabelled"
        return "sample_selection_bias" if a.same_domain else "domain_adaptation"
    return "unsupervised"


def classify(source_labels: bool, target_labels: bool, same_domain: bool, same_task: bool) -> Setting:
    """Place a problem in the domain-and-task matrix.

    Args:
        source_labels: Whether the source domain's data is labelled.
        target_labels: Whether the target domain's data is labelled.
        same_domain: Whether source and target inputs share one feature space and one population of inputs
            (a biased sample may still shift P(X)).
        same_task: Whether source and target share the label space and the predictive function P(Y|X).

    Returns:
        The Setting, with an explanation, an example, the tricky flag and, off the table, why and what it means.

    Raises:
        ValueError: If an answer is not a bool.
    """
    values = {"source_labels": source_labels, "target_labels": target_labels, "same_domain": same_domain,
              "same_task": same_task}
    for name, v in values.items():
        if not isinstance(v, bool):
            raise ValueError(f"{name} must be True or False; got {v!r}.")
    a = Answers(**values)
    key = _key_for(a)
    t = _TEXT[key]
    extra, off_table, caveats = _specifics(key, a)
    tricky = a.source_labels and not a.target_labels
    example = _MULTI_TASK_TWO_DOMAINS if (key == "multi_task" and not a.same_domain) else t.example
    return Setting(key=key, category=t.category, name=t.name,
                   explanation=f"{t.explanation} {extra}".strip(), example=example, tricky=tricky,
                   tricky_note=_TRICKY_NOTE if tricky else "", off_table=off_table, caveats=caveats,
                   table_row=t.table_row, answers=a)


ALL_ANSWERS: tuple[Answers, ...] = tuple(Answers(*combo) for combo in itertools.product((True, False), repeat=4))


def all_settings() -> list[Setting]:
    """Every one of the 16 answer combinations, classified, in ALL_ANSWERS order."""
    return [classify(a.source_labels, a.target_labels, a.same_domain, a.same_task) for a in ALL_ANSWERS]


def as_is_note(setting: Setting) -> str:
    """The course's third choice, "use entirely as-is", where the answers allow it; "" where they do not.

    A trained model can be used unchanged only for its own task on its own domain: same task and same domain.
    """
    a = setting.answers
    if not (a.same_domain and a.same_task and a.source_labels):
        return ""
    return ("Same domain, same task: if a model trained on the source labels already exists, the course's third "
            "choice applies too: use it entirely as-is, with no training at all. The Pretrained explorer page does "
            "exactly that with ImageNet models.")


# ---- the course's decision tree as a diagram ----------------------------------------------------
TREE_NODES: dict[str, str] = {
    "target": "Target domain:\nlabels available?",
    "source_t": "Source domain:\nlabels available?",
    "source_u": "Source domain:\nlabels available?",
    "domain": "Tricky: expert judgment.\nDomains the same?",
    "multi_task": "Multi-task learning\n(classification, regression)",
    "none": "No transfer needed:\npool the data",
    "supervised_domain_adaptation": "Supervised domain\nadaptation (fine-tune)",
    "self_taught": "Self-taught learning\n(transfer from unlabelled data)",
    "semi_supervised": "Semi-supervised learning",
    "sample_selection_bias": "Fix sampling biases\n(sample-selection bias,\ncovariate shift)",
    "domain_adaptation": "Domain adaptation",
    "new_task_unlabelled": "New task, no target labels:\nlabel some, or cluster",
    "unsupervised": "Unsupervised transfer learning\n(clustering, dimensionality\nreduction)",
}
TREE_EDGES: tuple[tuple[str, str, str], ...] = (  # (from, to, label)
    ("target", "source_t", "Yes"),
    ("target", "source_u", "No"),
    ("source_t", "multi_task", "Yes, tasks differ"),
    ("source_t", "supervised_domain_adaptation", "Yes, same task,\ndomains differ"),
    ("source_t", "none", "Yes, same task\nand domain"),
    ("source_t", "self_taught", "No"),
    ("source_t", "semi_supervised", "No, same task\nand domain"),
    ("source_u", "domain", "Yes"),
    ("source_u", "new_task_unlabelled", "Yes, but the\ntask differs"),
    ("source_u", "unsupervised", "No"),
    ("domain", "sample_selection_bias", "Yes"),
    ("domain", "domain_adaptation", "No"),
)
OFF_COURSE = {"none", "supervised_domain_adaptation", "semi_supervised", "new_task_unlabelled"}
"""Leaves the course's own tree does not draw (the app's additions); drawn dashed."""


def decision_path(setting: Setting) -> tuple[tuple[str, str], ...]:
    """The edges of the tree that lead to a setting, root first.

    Args:
        setting: A classified Setting.

    Returns:
        (from_node, to_node) pairs; the last to_node is setting.key.
    """
    parents = {child: parent for parent, child, _ in TREE_EDGES}
    path: list[tuple[str, str]] = []
    node = setting.key
    while node in parents:
        path.append((parents[node], node))
        node = parents[node]
    return tuple(reversed(path))


def is_leaf(node: str) -> bool:
    """Whether a node of the tree is a setting (a leaf) rather than a question."""
    return node in _TEXT
