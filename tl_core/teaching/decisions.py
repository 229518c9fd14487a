"""The playbook's two decision aids as pure data and logic: the domain-and-task matrix and the size-vs-similarity quadrant.

Both follow the seed course. The matrix is Pan & Yang's taxonomy (Sinno Jialin Pan and Qiang Yang,
"A Survey on Transfer Learning", IEEE TKDE 22(10), 2010) as the course draws it: a tree of yes/no
questions about labels, domains and tasks. The quadrant maps "how much new data?" and "how similar
to the source?" to one of the course's re-use strategies and to a concrete `tl_core.training.plan.Plan`.
No torch and no streamlit here, so the decision pages stay light and everything is unit-testable.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from tl_core.models.registry import get_spec
from tl_core.training.plan import Plan, make_plan

# =================================================================================================
# 1. The domain-and-task matrix
# =================================================================================================

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
_TREE_NODES: dict[str, str] = {
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
_TREE_EDGES: tuple[tuple[str, str, str], ...] = (  # (from, to, label)
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
_OFF_COURSE = {"none"}  # leaves the course's own tree does not draw; dashed


def decision_path(setting: Setting) -> tuple[tuple[str, str], ...]:
    """The edges of the course's tree that lead to a setting, root first.

    Args:
        setting: A classified Setting.

    Returns:
        (from_node, to_node) pairs; the last to_node is setting.key.
    """
    parents = {child: parent for parent, child, _ in _TREE_EDGES}
    path: list[tuple[str, str]] = []
    node = setting.key
    while node in parents:
        path.append((parents[node], node))
        node = parents[node]
    return tuple(reversed(path))


def tree_dot(setting: Setting | None = None, *, highlight: str = "#0072B2", dim: str = "#9A9A9A") -> str:
    """The course's decision tree in Graphviz DOT, with the path to `setting` drawn bold.

    Args:
        setting: The setting to highlight, or None for the plain tree.
        highlight: Colour of the chosen path and leaf.
        dim: Colour of everything else.

    Returns:
        A DOT source string for st.graphviz_chart.
    """
    chosen = set(decision_path(setting)) if setting is not None else set()
    on_path = {n for edge in chosen for n in edge}
    lines = ['digraph matrix {', '  rankdir=TB; nodesep=0.25; ranksep=0.45;',
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=12, margin="0.15,0.08"];',
             '  edge [fontname="Helvetica", fontsize=11];']
    for node, label in _TREE_NODES.items():
        leaf = node in _TEXT
        label_dot = label.replace("\n", "\\n")
        if node in on_path and leaf:
            style = f'fillcolor="{highlight}", fontcolor="white", color="{highlight}", penwidth=2'
        elif node in on_path:
            style = f'fillcolor="#DCEBF5", color="{highlight}", penwidth=2'
        else:
            style = f'fillcolor="#F2F2F2", color="{dim}", fontcolor="#555555"'
        if node in _OFF_COURSE:
            style += ', style="rounded,filled,dashed"'
        lines.append(f'  {node} [label="{label_dot}", {style}];')
    for a, b, label in _TREE_EDGES:
        label_dot = label.replace("\n", "\\n")
        dashed = ", style=dashed" if b in _OFF_COURSE else ""
        if (a, b) in chosen:
            lines.append(f'  {a} -> {b} [label="{label_dot}", color="{highlight}", fontcolor="{highlight}", '
                         f'penwidth=3{dashed}];')
        else:
            lines.append(f'  {a} -> {b} [label="{label_dot}", color="{dim}", fontcolor="{dim}"{dashed}];')
    lines.append("}")
    return "\n".join(lines)


# =================================================================================================
# 2. The size-versus-similarity quadrant
# =================================================================================================

LOTS_PER_CLASS = 100
"""Labelled target images per class from which the playbook calls the data "lots".

The course says "lots" or "little" without a number. 100 labelled images per class is a common rule of
thumb for image classification with pretrained CNNs: below it, updating every weight tends to overfit;
above it, fine-tuning all layers becomes affordable. It is a rule of thumb, not a law; the Race page
shows where the crossover sits in the shapes world.
"""

SIMILAR_AT = 0.5
"""Similarity (0 = unrelated, 1 = identical to the source) from which the data counts as "similar"."""

SIZES = ("lots", "little")
SIMILARITIES = ("similar", "different")
FINETUNE_ALL_LR_DECAY = 0.5  # discriminative LRs for "fine-tune all layers": each group towards the input gets half


@dataclass(frozen=True)
class Recommendation:
    """The course's advice for one cell of the size-versus-similarity quadrant."""

    size: str  # "lots" or "little"
    similarity: str  # "similar" or "different"
    bullets: tuple[str, str, str]  # the course's three bullets for this cell
    strategy: str  # key of tl_core.training.plan.STRATEGIES
    why: str  # the reasoning behind the advice
    caveat: str | None  # a practical warning, when there is one

    @property
    def label(self) -> str:
        """The cell's headline: the course's last bullet, e.g. "Fine-tune only final layers"."""
        return self.bullets[-1]


_QUADRANT: dict[tuple[str, str], Recommendation] = {
    ("lots", "different"): Recommendation(
        "lots", "different", ("Re-use architecture", "Re-calculate model weights", "Re-train from scratch"),
        "scratch",
        "There is enough data to learn every weight for the new problem, and the source's features fit it "
        "poorly, so keep only the proven architecture and learn the weights from a fresh initialisation.",
        "In practice, starting from pretrained weights still usually beats starting from scratch: it reaches "
        "the same accuracy in far fewer epochs and is rarely worse, even for quite different images (He et al., "
        "2019, \"Rethinking ImageNet Pre-training\"). Race \"Re-train from scratch\" against \"Fine-tune all "
        "layers\" before you commit."),
    ("lots", "similar"): Recommendation(
        "lots", "similar", ("Re-use architecture", "Fine-tune model weights", "Fine-tune all layers"),
        "finetune_all",
        "The source weights are already close to what this problem needs, and there are enough labels to "
        "update every layer without overfitting. Start from them and let all layers adjust, the early, generic "
        "ones with smaller learning rates than the later, specific ones.",
        None),
    ("little", "similar"): Recommendation(
        "little", "similar", ("Re-use architecture", "Fine-tune model weights", "Fine-tune only final layers"),
        "finetune_top",
        "The source's features already suit the new data, but there are too few labels to update millions of "
        "weights safely. Freeze the initial layers and train only the final ones: fewer weights to fit, less "
        "overfitting.",
        None),
    ("little", "different"): Recommendation(
        "little", "different", ("Re-use architecture", "Fine-tune model weights", "Fit classifier on initial layers"),
        "early_classifier",
        "The later layers' features are specific to the source problem and would mislead, and there is too "
        "little data to re-learn them. The initial layers' features (colour blobs, edges, lines) are generic "
        "enough to carry over: cut the network there and fit a classifier on them.",
        None),
}


def recommend(size: str, similarity: str) -> Recommendation:
    """The course's advice for one cell of the quadrant.

    Args:
        size: "lots" or "little" (see classify_size).
        similarity: "similar" or "different" (see classify_similarity).

    Returns:
        The Recommendation for that cell.

    Raises:
        ValueError: If either answer is not one of the allowed values.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}; got {size!r}.")
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}; got {similarity!r}.")
    return _QUADRANT[(size, similarity)]


def classify_size(n_per_class: int) -> str:
    """Call a dataset "lots" or "little" by its labelled images per class.

    Args:
        n_per_class: Labelled target images per class, at least 1.

    Returns:
        "lots" when n_per_class >= LOTS_PER_CLASS, else "little".

    Raises:
        ValueError: If n_per_class is not a whole number of at least 1.
    """
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or n_per_class < 1:
        raise ValueError(f"Images per class must be a whole number of at least 1; got {n_per_class!r}.")
    return "lots" if n_per_class >= LOTS_PER_CLASS else "little"


def classify_similarity(similarity: float) -> str:
    """Call target data "similar" or "different" to the source.

    Args:
        similarity: From 0 (unrelated) to 1 (drawn exactly like the source).

    Returns:
        "similar" when similarity >= SIMILAR_AT, else "different".

    Raises:
        ValueError: If similarity is not a number from 0 to 1.
    """
    if isinstance(similarity, bool) or not isinstance(similarity, (int, float)) or not math.isfinite(similarity) \
            or not 0.0 <= similarity <= 1.0:
        raise ValueError(f"Similarity must be a number from 0 to 1; got {similarity!r}.")
    return "similar" if similarity >= SIMILAR_AT else "different"


def boundary_note(n_per_class: int, similarity: float | None = None) -> str | None:
    """A warning when a problem sits close to a quadrant boundary, where both neighbouring advices are plausible.

    Args:
        n_per_class: Labelled target images per class.
        similarity: From 0 to 1, or None when only a similar/different answer is known.

    Returns:
        A sentence, or None when the problem is clearly inside its cell.
    """
    near: list[str] = []
    if LOTS_PER_CLASS / 2 <= n_per_class < 2 * LOTS_PER_CLASS:
        near.append(f"{n_per_class} images per class is close to the {LOTS_PER_CLASS}-per-class line between "
                    f"little and lots")
    if similarity is not None and abs(similarity - SIMILAR_AT) < 0.1:
        near.append(f"a similarity of {similarity:.2f} is close to the {SIMILAR_AT} line between different "
                    f"and similar")
    if not near:
        return None
    return "Near a boundary: " + " and ".join(near) + ". Try the neighbouring strategy too and compare."


def plan_for(size: str, similarity: str, arch: str = "shapesnet", seed: int = 0) -> Plan:
    """The concrete Plan for a quadrant cell.

    Args:
        size: "lots" or "little".
        similarity: "similar" or "different".
        arch: A key of tl_core.models.registry.ARCHS.
        seed: Seeds weights, shuffling and augmentation.

    Returns:
        A validated Plan. "Fine-tune all layers" gets discriminative learning rates that halve per group
        towards the input (FINETUNE_ALL_LR_DECAY).

    Raises:
        ValueError: If an answer, the architecture or the seed is invalid.
    """
    rec = recommend(size, similarity)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"The seed must be a whole number of at least 0; got {seed!r}.")
    get_spec(arch)  # raises a ValueError listing the known architectures
    decay = FINETUNE_ALL_LR_DECAY if rec.strategy == "finetune_all" else None
    return make_plan(rec.strategy, arch=arch, lr_decay=decay, seed=seed)


@dataclass(frozen=True)
class LayerRole:
    """How one layer group of an architecture is treated by a plan."""

    group: str  # layer group name, in forward order
    role: str  # "frozen", "fine-tuned", "from scratch", "new head" or "cut off" (keys of palette.ROLE_COLOURS)
    lr: float  # learning rate while training starts; 0.0 for frozen and cut-off groups


def layer_roles(plan: Plan) -> list[LayerRole]:
    """Every layer group of the plan's architecture, from input to head, with its role and learning rate.

    Args:
        plan: A Plan.

    Returns:
        One LayerRole per group of plan.spec.groups, in forward order.
    """
    kept = set(plan.groups)
    rows: list[LayerRole] = []
    for g in plan.spec.groups:
        if g not in kept:
            rows.append(LayerRole(g, "cut off", 0.0))
        elif g in plan.frozen:
            rows.append(LayerRole(g, "frozen", 0.0))
        elif g == "head":
            rows.append(LayerRole(g, "new head", plan.lr_for(g)))
        elif not plan.pretrained:
            rows.append(LayerRole(g, "from scratch", plan.lr_for(g)))
        else:
            rows.append(LayerRole(g, "fine-tuned", plan.lr_for(g)))
    return rows


# =================================================================================================
# 3. Freeze or fine-tune: the course's teaching points
# =================================================================================================

FREEZE_POINTS: tuple[str, ...] = (
    "Initial layers detect features common to all images: colour blobs, general filters, edges, lines. "
    "They transfer well.",
    "Top (later) layers learn abstract details specific to the problem; they usually need to be tuned, and the "
    "final layer is always replaced for the new classes.",
    "The initial n layers can be frozen (not updated during training) or fine-tuned (updated during training).",
    "Freeze when target labels are scarce and you want to avoid overfitting; fine-tune when they are more "
    "plentiful.",
    "Learning rates can differ per layer: small for the generic early layers, larger for the specific later ones.",
)


def freeze_advice(size: str) -> str:
    """Freeze or fine-tune the initial layers, by how many target labels there are.

    Args:
        size: "lots" or "little".

    Returns:
        One sentence of advice.

    Raises:
        ValueError: If size is not "lots" or "little".
    """
    if size == "little":
        return ("Freeze the initial layers: target labels are scarce, and every trainable weight is a chance to "
                "overfit.")
    if size == "lots":
        return ("Fine-tune the initial layers too, with smaller learning rates: there are enough labels to adjust "
                "them without overfitting.")
    raise ValueError(f"size must be one of {SIZES}; got {size!r}.")


def plan_takeaway(plan: Plan) -> str:
    """A one-line summary of what a plan freezes and trains, for the caption under its layer-group chart.

    Args:
        plan: A Plan.

    Returns:
        One sentence naming the frozen, trained and removed groups and the learning rates.
    """
    roles = layer_roles(plan)
    frozen = [r.group for r in roles if r.role == "frozen"]
    cut = [r.group for r in roles if r.role == "cut off"]
    body = [r for r in roles if r.role in ("fine-tuned", "from scratch")]
    head_lr = plan.lr_for("head")
    if plan.strategy == "early_classifier":
        return (f"The network is cut after {plan.cut_after}: {', '.join(frozen)} stay frozen as a feature extractor "
                f"and a new head (lr {head_lr:.2g}) is fitted on their features; {', '.join(cut)} are dropped.")
    if not body:
        return f"The whole body ({', '.join(frozen)}) is frozen; only the new head trains (lr {head_lr:.2g})."
    if not plan.pretrained:
        return (f"All {len(roles)} groups start from random weights and train (lr {head_lr:.2g}); only the "
                f"architecture is re-used.")
    lrs = [r.lr for r in body]
    lr_text = (f"at lr {lrs[0]:.2g}" if len(set(lrs)) == 1 and lrs[0] == head_lr else
               f"with learning rates from {min(lrs):.2g} ({body[0].group}) up to {head_lr:.2g} (head): the early, "
               f"generic layers move least")
    if frozen:
        return (f"{', '.join(frozen)} stay frozen; only {', '.join(r.group for r in body)} and the new head train "
                f"{lr_text}.")
    return f"Every group fine-tunes from the pretrained weights {lr_text}."
