"""The domain-and-task matrix: four yes/no questions that place a problem in Pan & Yang's taxonomy, as plain data.

It follows the course's decision tree, after Sinno Jialin Pan and Qiang Yang, "A Survey on Transfer Learning",
IEEE TKDE 22(10), 2010: target labels? source labels? and, when only the source is labelled, are the domains the
same? `classify` maps every one of the 16 answer sets to a `Setting` with its name, explanation, example and the
caveats that say where the answers leave the survey's table. The tree itself is data here (`TREE_NODES`,
`TREE_EDGES`, `decision_path`); ui.charts.diagrams draws it. No torch, no streamlit.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

CATEGORIES = ("inductive", "transductive", "unsupervised", "none")  # Pan & Yang's three settings, plus "no transfer"


@dataclass(frozen=True)
class Answers:
    """The four yes/no questions of the matrix."""

    source_labels: bool  # are the source domain's examples labelled?
    target_labels: bool  # are (some of) the target domain's examples labelled?
    same_domain: bool  # are X drawn from the same feature space, with the same distribution?
    same_task: bool  # is Y the same, with the same relation to X?


@dataclass(frozen=True)
class Setting:
    """Which transfer-learning setting a combination of answers lands in, and what to do about it."""

    key: str  # stable identifier, e.g. "domain_adaptation"
    category: str  # one of CATEGORIES
    name: str  # the setting's name as the course uses it
    explanation: str  # what the setting is and why these answers lead here
    example: str  # a concrete case, from the shapes world or everyday life
    tricky: bool  # the course's "Tricky - need expert judgment" branch (source labels, no target labels)
    tricky_note: str  # why it is tricky; "" when not tricky
    caveats: tuple[str, ...]  # where the answers leave the survey's table, what that means
    table_row: int | None  # index into pan_yang_table() this setting highlights; None when off the table
    answers: Answers  # the answers that led here

    @property
    def on_table(self) -> bool:
        """True when the answers match a row of Pan & Yang's table exactly."""
        return self.table_row is not None and not self.caveats


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
    canonical_same_domain: bool  # the same_domain answer this row assumes
    canonical_same_task: bool  # the same_task answer this row assumes


_TABLE: tuple[TableRow, ...] = (
    TableRow("Inductive Transfer Learning", "Multi-task Learning", "The Same", "Available", "Available",
             "Different but Related", "Regression, Classification", True, False),
    TableRow("Inductive Transfer Learning", "Self-taught Learning", "The Same", "Unavailable", "Available",
             "Different but Related", "Regression, Classification", True, False),
    TableRow("Unsupervised Transfer Learning", "", "Different but Related", "Unavailable", "Unavailable",
             "Different but Related", "Clustering, Dimensionality Reduction", False, False),
    TableRow("Transductive Transfer Learning", "Domain Adaptation, Sample Selection Bias & Co-variate Shift",
             "Different but Related", "Available", "Unavailable", "The Same", "Regression, Classification",
             False, True),
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


@dataclass(frozen=True)
class _SettingText:
    category: str
    name: str
    explanation: str
    example: str
    table_row: int | None


_TEXT: dict[str, _SettingText] = {
    "multi_task": _SettingText(
        "inductive", "Multi-task learning",
        "Both sides have labels, so the target labels can induce the target model while the source labels "
        "shape what it learns first. The course's name for this corner is multi-task learning: several related "
        "tasks solved at the same time to exploit what they have in common. Fine-tuning a network that was "
        "trained on labelled ImageNet photos on your own labelled images is the everyday form of this "
        "inductive transfer.",
        "Shapes world: one network learns to name the shape and, from the same images, whether it is filled or "
        "outlined; both label sets are there and the early layers (edges, corners) serve both tasks. Everyday: "
        "a photo model that tags the dog's breed and whether the photo is indoors.",
        0),
    "self_taught": _SettingText(
        "inductive", "Self-taught learning",
        "Only the target side is labelled. The unlabelled source data still teaches useful features (edges, "
        "textures, parts) without any labels; the few target labels then train the classifier on top. The "
        "course calls it semi-supervised transfer learning: labelled data of the classes you want plus "
        "unlabelled data from other, similar classes. It is widely used in practice.",
        "Shapes world: a large pile of unlabelled drawings of many shapes teaches the network what strokes and "
        "corners look like; 20 labelled images per class of your four target shapes then train the head. "
        "Everyday: learning features from millions of unlabelled web photos, then classifying your 500 "
        "labelled product photos.",
        1),
    "sample_selection_bias": _SettingText(
        "transductive", "Sample-selection bias / covariate shift",
        "The task is the same and only the source is labelled. Because the domain is the same, the target "
        "inputs come from the same world as the source; they were just sampled differently, so P(X) shifted "
        "while P(Y|X) did not. Fix the sampling bias: re-weight (or re-sample) the labelled source examples so "
        "their mix looks like the target's, then train on them.",
        "Shapes world: the labelled source set happens to hold mostly large shapes, while the images to "
        "classify come in every size; give the few small source shapes more weight. Everyday: a spam filter "
        "trained on last year's mail, applied to this year's, from the same users.",
        3),
    "domain_adaptation": _SettingText(
        "transductive", "Domain adaptation",
        "The task is the same and only the source is labelled, but the target inputs look different: the "
        "domains are related, not equal. Domain adaptation trains on the labelled source while pulling the "
        "source and target feature distributions together (for example with domain-adversarial training or "
        "by matching feature statistics), so that the source classifier also works on the target.",
        "Shapes world: labelled clean shapes on white backgrounds, and unlabelled noisy, recoloured shapes of "
        "the same classes to classify. Everyday: labelled studio product photos, unlabelled phone snapshots "
        "of the same products.",
        3),
    "unsupervised": _SettingText(
        "unsupervised", "Unsupervised transfer learning (clustering, dimensionality reduction)",
        "No labels anywhere, so no classifier or regressor can be trained; what transfers is structure. "
        "Features learnt on the source data help to cluster the target data or to reduce its dimensionality, "
        "which is what the target task is in this setting.",
        "Shapes world: group unlabelled target images into clusters using a network pretrained without labels "
        "on other shapes, then look at each cluster. Everyday: grouping customer photos by visual similarity "
        "with features learnt elsewhere.",
        2),
    "none": _SettingText(
        "none", "No transfer needed: ordinary supervised learning",
        "Both datasets are labelled samples of one and the same problem: same inputs, same distribution, same "
        "task. There is nothing to transfer between them; they are simply more data. Pool them and train one "
        "model.",
        "Shapes world: two labelled batches of the same four shapes, drawn by the same generator; concatenate "
        "them. Everyday: this month's and last month's labelled images from the same camera and the same "
        "labelling guide.",
        None),
}

SETTING_KEYS: tuple[str, ...] = tuple(_TEXT)

_TRICKY_NOTE = (
    "Tricky: needs expert judgment. The labels you have describe the source, not the target, so nothing "
    "measures success on the target directly. Whether the source labels carry over depends on how far the "
    "target drifted from the source. Hand-label a small target sample just to check the result.")

_NO_TARGET_LABELS_NEW_TASK = (
    "Off the table: this setting assumes the task stays the same. With a new task and no target labels, "
    "nothing tells a model what the new outputs mean. Label a few target examples (then it is inductive "
    "transfer), or treat the target side as unsupervised and cluster it.")


def _caveats(key: str, a: Answers) -> tuple[str, ...]:
    """Explanations for answers that differ from the table row the setting highlights."""
    out: list[str] = []
    if key == "none":
        out.append("Off the survey's table: both sides labelled, same domain and same task is one problem with "
                   "two datasets. Pool the data and train one model. If the pooled data is still small, starting "
                   "from a pretrained network still helps: see the size-versus-similarity quadrant.")
    elif key == "multi_task":
        if a.same_task:  # the domain must differ here, else the key is "none"
            out.append("Off the table: same task, different domains, labels on both sides is supervised domain "
                       "adaptation. Train on the source and fine-tune on the target, or train on both; the "
                       "target labels tell you whether the source helped.")
        elif not a.same_domain:  # different domains, different tasks
            out.append("The table lists the same domain for multi-task learning, but Pan & Yang's inductive "
                       "setting allows different domains too. This is the everyday case: fine-tune a network "
                       "pretrained on ImageNet photos on your own labelled images.")
    elif key == "self_taught":
        if a.same_task and a.same_domain:
            out.append("Off the table: unlabelled data of the very same task and domain is ordinary "
                       "semi-supervised learning. Pretrain on it without labels (or pseudo-label it), then "
                       "train on your labels.")
        elif a.same_task:
            out.append("Off the table: unlabelled data for the same task from another domain. Pretrain on it "
                       "without labels, then train on your target labels; self-taught learning in spirit.")
        elif not a.same_domain:
            out.append("The table lists the same domain, but self-taught learning (Raina et al., 2007) was "
                       "designed for unlabelled data that need not share the target's classes or distribution. "
                       "The closer the unlabelled data is to the target, the more its features help.")
    elif key in ("sample_selection_bias", "domain_adaptation"):
        if not a.same_task:
            out.append(_NO_TARGET_LABELS_NEW_TASK)
    elif key == "unsupervised":
        if a.same_task:
            out.append("Even with the same task, no labels on either side means nothing can learn to predict Y: "
                       "this is still unsupervised (clustering, dimensionality reduction). Labelling a few "
                       "target examples moves you out of this corner.")
        if a.same_domain:
            out.append("The table's unsupervised row assumes different but related domains. With the same "
                       "domain, pool both datasets and cluster or reduce them together.")
    return tuple(out)


def _key_for(a: Answers) -> str:
    """The course's tree: target labels? then source labels? then, if tricky, same domain?"""
    if a.target_labels:
        if a.source_labels:
            return "none" if (a.same_domain and a.same_task) else "multi_task"
        return "self_taught"
    if a.source_labels:
        return "sample_selection_bias" if a.same_domain else "domain_adaptation"
    return "unsupervised"


def classify(source_labels: bool, target_labels: bool, same_domain: bool, same_task: bool) -> Setting:
    """Place a problem in the domain-and-task matrix.

    Args:
        source_labels: Whether the source domain's data is labelled.
        target_labels: Whether the target domain's data is labelled.
        same_domain: Whether source and target inputs come from the same space and distribution.
        same_task: Whether source and target share the same labels and the same relation of labels to inputs.

    Returns:
        The Setting, with an explanation, an example, the tricky flag and any caveats.

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
    tricky = a.source_labels and not a.target_labels
    return Setting(key=key, category=t.category, name=t.name, explanation=t.explanation, example=t.example,
                   tricky=tricky, tricky_note=_TRICKY_NOTE if tricky else "", caveats=_caveats(key, a),
                   table_row=t.table_row, answers=a)


ALL_ANSWERS: tuple[Answers, ...] = tuple(Answers(*combo) for combo in itertools.product((True, False), repeat=4))


def all_settings() -> list[Setting]:
    """Every one of the 16 answer combinations, classified, in ALL_ANSWERS order."""
    return [classify(a.source_labels, a.target_labels, a.same_domain, a.same_task) for a in ALL_ANSWERS]


# ---- the course's decision tree as a diagram ----------------------------------------------------
TREE_NODES: dict[str, str] = {
    "target": "Target domain:\nlabels available?",
    "source_t": "Source domain:\nlabels available?",
    "source_u": "Source domain:\nlabels available?",
    "domain": "Tricky: expert judgment.\nSource and target\ndomains the same?",
    "multi_task": "Multi-task learning\n(classification, regression)",
    "none": "No transfer needed:\npool the data",
    "self_taught": "Self-taught learning\n(transfer from unlabelled data)",
    "sample_selection_bias": "Fix sampling biases\n(sample-selection bias,\ncovariate shift)",
    "domain_adaptation": "Domain adaptation",
    "unsupervised": "Unsupervised transfer learning\n(clustering,\ndimensionality reduction)",
}
TREE_EDGES: tuple[tuple[str, str, str], ...] = (  # (from, to, label)
    ("target", "source_t", "Yes"),
    ("target", "source_u", "No"),
    ("source_t", "multi_task", "Yes"),
    ("source_t", "none", "Yes, same domain\nand same task"),
    ("source_t", "self_taught", "No"),
    ("source_u", "domain", "Yes"),
    ("source_u", "unsupervised", "No"),
    ("domain", "sample_selection_bias", "Yes"),
    ("domain", "domain_adaptation", "No"),
)
OFF_COURSE = {"none"}  # leaves the course's own tree does not draw; dashed


def decision_path(setting: Setting) -> tuple[tuple[str, str], ...]:
    """The edges of the course's tree that lead to a setting, root first.

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
