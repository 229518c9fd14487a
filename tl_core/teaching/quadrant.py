"""The size-versus-similarity quadrant: "how much new data?" and "how similar?" to the course's advice and a Plan.

The course's 2×2 grid (lots or little data × similar or different) as data (`recommend`), the thresholds that
put a dataset in a cell (`classify_size`, `classify_similarity`), a warning near a boundary, and the concrete
`tl_core.training.plan.Plan` for a cell (`plan_for`). No torch, no streamlit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
