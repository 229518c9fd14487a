"""The course's own teaching text as data: the definition, the benefits, domains and tasks, freeze or fine-tune.

Pages render these; keeping them here lets the wording be reviewed in one place and tested without streamlit.
The matrix's and the quadrant's text sits next to the rules that choose it (tl_core.teaching.matrix, .quadrant);
the diagrams are drawn by ui.charts.diagrams.
"""

from __future__ import annotations

from dataclasses import dataclass


DEFINITION = (
    "The practice of re-using a trained neural network that solves a problem similar to yours, usually leaving "
    "the network architecture unchanged and re-using some or all of the model weights.")

WHEN_IT_MAKES_SENSE: tuple[str, ...] = (
    "It only makes sense for common, widely studied use cases,",
    "in which the basic problem structure stays the same, but the details vary.",
    "Image recognition and language translation are the classic examples.",
)

WHY_IT_HELPS = (
    "Designing a network architecture is often the hardest part; transfer learning avoids designing one from "
    "scratch. What you do with the weights is a choice: re-train from scratch, fine-tune them, or use them "
    "entirely as-is, and the choice depends on the size of your dataset and its similarity to the original one.")

KNOWLEDGE_NOTE = (
    "Transferred knowledge is especially useful when the new dataset is small and not sufficient to train a "
    "model from scratch.")


@dataclass(frozen=True)
class Benefit:
    """One of the course's three reasons to use transfer learning."""

    title: str  # the course's slogan
    icon: str  # an emoji, shown next to the title
    points: tuple[str, ...]  # what the slogan means


BENEFITS: tuple[Benefit, ...] = (
    Benefit("Stand on the shoulders of giants", ":material/landscape:",
            ("The network architecture", "The choice of initialisation", "The activation functions",
             "The number and density of layers")),
    Benefit("Do more with less", ":material/compress:",
            ("Make do with less training data", "English to French: lots of training data",
             "Hindi to Spanish: little or no training data")),
    Benefit("Faster, cheaper", ":material/bolt:",
            ("Smaller training data", "Only the higher layers to train",
             "In a cloud-enabled world, less time means less money")),
)

DOMAIN_DEFINITION = "Domains refer to where the X variables are drawn from and how they are distributed."
TASK_DEFINITION = "Tasks refer to the Y variables and how they are related to X."

# The course's running example: a translation model re-used for a new language pair.
TRANSLATION_EXAMPLE: dict[str, dict[str, str]] = {
    "Domain (the X)": {"Source": "English sentences", "Target": "Hindi sentences"},
    "Task (the Y given X)": {"Source": "Translation to French", "Target": "Translation to Spanish"},
}
TRANSLATION_TITLES = ("Original model: English to French", "Transfer learning: Hindi to Spanish")


def translation_table_markdown() -> str:
    """TRANSLATION_EXAMPLE as a markdown table: one row per side (source, target), one column per aspect."""
    aspects = list(TRANSLATION_EXAMPLE)
    sides = list(next(iter(TRANSLATION_EXAMPLE.values())))
    lines = ["| | " + " | ".join(aspects) + " |", "|---|" + "---|" * len(aspects)]
    lines += [f"| **{side}** | " + " | ".join(TRANSLATION_EXAMPLE[a][side] for a in aspects) + " |" for side in sides]
    return "\n".join(lines)

SHAPES_WORLD_INTRO = (
    "The playbook trains on a small world of drawn shapes instead of ImageNet, so everything runs live. The "
    "**source** task names six shapes on plain backgrounds. A **target** dataset has a *similarity* to the "
    "source: at 1.0 it is drawn in exactly the source's style, and the lower it goes, the further its **domain** "
    "drifts (textured backgrounds, lower contrast, pixel noise). From 0.5 up the **task** is four new shapes, "
    "different from the source's but related; below 0.5 the task itself changes to the orientation of a "
    "background stripe pattern, a low-level cue.")
SIMILARITY_LEVELS: tuple[float, ...] = (1.0, 0.6, 0.25)  # the target previews shown on the welcome page

IMAGE_LAYERS_POINTS: tuple[str, ...] = (
    "Initial layers detect features common to all images: colour blobs, general filters, edges, lines.",
    "Later layers learn abstract details more specific to the problem.",
)

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
