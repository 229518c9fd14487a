"""The teaching text of the decision pages as data, written from the seed course, plus its small diagrams as DOT.

Pages render these; keeping them here lets the wording be reviewed in one place and tested without
streamlit. Colours come from tl_core.palette.
"""

from __future__ import annotations

from dataclasses import dataclass

from tl_core import palette

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
    Benefit("Stand on the shoulders of giants", "🏔️",
            ("The network architecture", "The choice of initialisation", "The activation functions",
             "The number and density of layers")),
    Benefit("Do more with less", "🪶",
            ("Make do with less training data", "English to French: lots of training data",
             "Hindi to Spanish: little or no training data")),
    Benefit("Faster, cheaper", "⚡",
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


def traditional_vs_transfer_dot() -> str:
    """The course's side-by-side diagram: traditional ML (one model per dataset) versus transfer learning.

    Returns:
        A Graphviz DOT string.
    """
    data = f'shape=cylinder, style=filled, fillcolor="{palette.LIGHT}", color="{palette.BLACK}"'
    model = f'shape=box, style="rounded,filled", fillcolor="{palette.SKY}", color="{palette.BLUE}"'
    model2 = f'shape=box, style="rounded,filled", fillcolor="{palette.ORANGE}", color="{palette.VERMILLION}"'
    know = f'shape=note, style=filled, fillcolor="{palette.YELLOW}", color="{palette.BLACK}"'
    return "\n".join([
        "digraph tl {",
        "  rankdir=LR; nodesep=0.3; ranksep=0.5; newrank=true;",
        '  node [fontname="Helvetica", fontsize=12]; edge [color="#444444"];',
        '  subgraph cluster_trad { label="Traditional ML: every dataset starts from zero"; fontname="Helvetica"; '
        f'fontsize=13; color="{palette.GREY}";',
        f'    d1 [label="Dataset 1", {data}]; m1 [label="Model 1", {model}];',
        f'    d2 [label="Dataset 2", {data}]; m2 [label="Model 2", {model2}];',
        "    d1 -> m1; d2 -> m2;",
        "  }",
        '  subgraph cluster_tl { label="Transfer learning: model 1\'s knowledge helps model 2"; '
        f'fontname="Helvetica"; fontsize=13; color="{palette.BLUE}";',
        f'    t1 [label="Dataset 1", {data}]; n1 [label="Model 1", {model}];',
        f'    k [label="Knowledge\\n(architecture + weights)", {know}];',
        f'    t2 [label="Dataset 2\\n(often small)", {data}]; n2 [label="Model 2", {model2}];',
        f'    t1 -> n1; n1 -> k [color="{palette.BLUE}", penwidth=2]; k -> n2 [color="{palette.BLUE}", penwidth=2];'
        " t2 -> n2;",
        "  }",
        "}",
    ])
