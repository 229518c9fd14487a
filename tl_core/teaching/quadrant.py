"""The size-versus-similarity quadrant: "how much new data?" and "how similar?" to the course's advice and a Plan.

The course's 2×2 grid (lots or little data × similar or different) as data (`recommend`), the thresholds that
put a dataset in a cell (`classify_size`, `classify_similarity`), a warning near a boundary, and the concrete
`tl_core.training.plan.Plan` for a cell and an architecture (`plan_for`), and where that plan departs from the
course's bullets, with the reason (`plan_departure`). No torch, no streamlit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tl_core.fmt import and_list, pct
from tl_core.models.group_params import Share, share_of
from tl_core.models.registry import get_spec
from tl_core.training.plan import Plan, make_plan

LOTS_PER_CLASS = 100
"""Labelled target images per class from which the playbook calls the data "lots".

The course says "lots" or "little" without a number. 100 labelled images per class is a common rule of
thumb for image classification with pretrained CNNs: below it, updating every weight tends to overfit;
above it, fine-tuning all layers becomes affordable. It is a rule of thumb, not a law; the Race page
shows where the crossover sits in the shapes world.
"""

SIMILAR_AT = 0.5
"""Similarity (0 = unrelated, 1 = identical to the source) from which the data counts as "similar"."""

SIZE_STOPS: tuple[int, ...] = (5, 10, 20, 50, 100, 200, 500, 1000)
"""Images per class the shapes-world size picker offers: log-spaced, four stops on each side of LOTS_PER_CLASS."""

SIZES = ("lots", "little")
SIMILARITIES = ("similar", "different")
FINETUNE_ALL_LR_DECAY = 0.5  # discriminative LRs for "fine-tune all layers": each group towards the input gets half


@dataclass(frozen=True)
class Recommendation:
    """The course's advice for one cell of the size-versus-similarity quadrant."""

    size: str  # "lots" or "little"
    similarity: str  # "similar" or "different"
    bullets: tuple[str, str, str]  # the course's three bullets for this cell
    strategy: str  # key of tl_core.training.plan.STRATEGIES: the course's strategy for the cell
    why: str  # the reasoning behind the advice
    caveat: str | None  # a practical warning, when there is one
    departure: str | None  # where the app's plan departs from the course's bullets, why, and the source

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
        "layers\" before you commit.",
        None),
    ("lots", "similar"): Recommendation(
        "lots", "similar", ("Re-use architecture", "Fine-tune model weights", "Fine-tune all layers"),
        "finetune_all",
        "The source weights are already close to what this problem needs, and there are enough labels to "
        "update every layer without overfitting. Start from them and let all layers adjust, the early, generic "
        "ones with smaller learning rates than the later, specific ones (the course: \"can set learning rates to "
        "be different for each layer\").",
        None, None),
    ("little", "similar"): Recommendation(
        "little", "similar", ("Re-use architecture", "Fine-tune model weights", "Fine-tune only final layers"),
        "finetune_top",
        "The source's features already suit the new data, but labels are scarce: freeze the initial, generic "
        "layers and update only the final ones and a new head, so that fewer weights have to fit the few labels.",
        None, None),
    ("little", "different"): Recommendation(
        "little", "different", ("Re-use architecture", "Fine-tune model weights", "Fit classifier on initial layers"),
        "early_classifier",
        "The later layers' features are specific to the source problem and would mislead, and there is too "
        "little data to re-learn them. The initial layers' features (colour blobs, edges, lines) are generic "
        "enough to carry over: cut the network there and fit a classifier on them.",
        None,
        "The course's bullets for this cell say \"Fine-tune model weights\", but the plan freezes every layer it "
        "keeps and trains only the new classifier: with this little data, updating even the initial layers "
        "invites overfitting, and the course's own rule is to freeze when target labels are scarce. The plan "
        "follows the CS231n \"Transfer Learning\" notes for small, different data (\"train the SVM classifier "
        "from activations somewhere earlier in the network\"). To fine-tune the kept layers as the bullet says, "
        "pick \"Fine-tune only the final layers\" on the Train page and race the two."),
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


def nearest_stop(n_per_class: int) -> int:
    """The SIZE_STOPS value closest to n_per_class on a log scale, on the same side of LOTS_PER_CLASS (the size
    picker offers only the stops, and snapping must not move a dataset from little to lots or back)."""
    n = max(int(n_per_class), 1)
    side = [stop for stop in SIZE_STOPS if (stop >= LOTS_PER_CLASS) == (n >= LOTS_PER_CLASS)]
    return min(side, key=lambda stop: abs(math.log(stop) - math.log(n)))


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


NEARLY_ALL = 0.8
"""Share of an architecture's pretrained body weights above which its final group counts as nearly the whole network.

"Fine-tune only the final layers" is meant to train a small part of the network. When the last body group alone
holds more than this share (AlexNet's fc6_7 holds 96%, VGG11's 93%, VGG16's 89%: fully connected layers), training
it is nearly fine-tuning everything, so the little + similar plan becomes fixed feature extraction: only the new
head trains. The next heaviest final groups (shapesnet's block4 and resnet18's layer4, about three quarters) stay
with the course's bullet; the page shows every architecture's measured share."""


def final_group_share(arch: str) -> Share:
    """The share of the pretrained body weights that "fine-tune only the final layers" would fine-tune.

    That plan (tl_core.training.plan.make_plan's default) freezes every body group but the last.

    Args:
        arch: A key of tl_core.models.registry.ARCHS.

    Returns:
        The Share of the last body group (measured on the meta device, see tl_core.models.group_params).
    """
    return share_of(arch, get_spec(arch).body_groups[-1:])


def little_similar_strategy(arch: str) -> str:
    """The little + similar plan's strategy: the course's "finetune_top", or "feature_extract" where the final
    group holds more than NEARLY_ALL of the pretrained body weights."""
    return "feature_extract" if final_group_share(arch).fraction > NEARLY_ALL else "finetune_top"


def strategy_for(size: str, similarity: str, arch: str = "shapesnet") -> str:
    """The strategy plan_for uses for a cell and an architecture (the course's, except where NEARLY_ALL applies).

    Raises:
        ValueError: If an answer or the architecture is invalid.
    """
    rec = recommend(size, similarity)
    get_spec(arch)  # raises a ValueError listing the known architectures
    if rec.strategy == "finetune_top":
        return little_similar_strategy(arch)
    return rec.strategy


def plan_with(strategy: str, arch: str = "shapesnet", seed: int = 0) -> Plan:
    """The Plan the quadrant builds for one strategy: make_plan's defaults, with discriminative learning rates
    (halving per group towards the input, FINETUNE_ALL_LR_DECAY) for "Fine-tune all layers".

    Raises:
        ValueError: If the strategy, the architecture or the seed is invalid.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"The seed must be a whole number of at least 0; got {seed!r}.")
    decay = FINETUNE_ALL_LR_DECAY if strategy == "finetune_all" else None
    return make_plan(strategy, arch=arch, lr_decay=decay, seed=seed)


def plan_for(size: str, similarity: str, arch: str = "shapesnet", seed: int = 0) -> Plan:
    """The concrete Plan for a quadrant cell.

    Args:
        size: "lots" or "little".
        similarity: "similar" or "different".
        arch: A key of tl_core.models.registry.ARCHS.
        seed: Seeds weights, shuffling and augmentation.

    Returns:
        A validated Plan with strategy_for's strategy (see plan_with).

    Raises:
        ValueError: If an answer, the architecture or the seed is invalid.
    """
    return plan_with(strategy_for(size, similarity, arch), arch=arch, seed=seed)


def plan_departure(size: str, similarity: str, arch: str = "shapesnet") -> str | None:
    """Where the plan for a cell and an architecture departs from the course's bullets, why, and the source.

    Returns:
        A paragraph, or None when the plan does what the bullets say.
    """
    rec = recommend(size, similarity)
    if strategy_for(size, similarity, arch) == "feature_extract":
        share = final_group_share(arch)
        group = share.groups[0]
        return (f"Here the plan departs from the course's \"fine-tune only final layers\": {arch}'s final group, "
                f"{group}, holds {pct(share.fraction)} of its pretrained body weights ({share.params:,} of "
                f"{share.body:,}; its fully connected layers). Fine-tuning it would update nearly the whole "
                f"network, millions of weights, with only a few labels to fit them. The plan is fixed feature "
                f"extraction instead: every pretrained layer stays frozen and only the new head trains. "
                f"(CS231n, \"Transfer Learning\" notes: with small data similar to the source, train a linear "
                f"classifier on the CNN codes.)")
    return rec.departure


def weights_note(plan: Plan) -> str:
    """How many pretrained body weights the plan fine-tunes, in one sentence (measured counts)."""
    if not plan.pretrained:
        return f"Every weight of {plan.arch} starts from random values and trains; nothing pretrained is kept."
    tuned = [g for g in plan.trainable if g != "head"]
    share = share_of(plan.arch, tuned)
    if not tuned:
        return (f"None of {plan.arch}'s {share.body:,} pretrained body weights change: only the new head trains.")
    return (f"The plan fine-tunes {share.params:,} of {plan.arch}'s {share.body:,} pretrained body weights "
            f"({pct(share.fraction)}, in {and_list(list(share.groups))}) plus the new head.")


def offline_alternatives(plan: Plan) -> tuple[Plan, Plan] | None:
    """Two plans that train without ImageNet weights, for a plan that needs them.

    Returns:
        (the same strategy on shapesnet, whose source weights ship with the app; the same architecture from
        scratch), or None when the plan needs no downloaded weights (shapesnet, or from scratch).
    """
    if not plan.pretrained or not plan.spec.torchvision:
        return None
    return plan_with(plan.strategy, "shapesnet", plan.seed), plan_with("scratch", plan.arch, plan.seed)
