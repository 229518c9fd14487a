"""The course's own teaching text as data: the definition, the benefits, domains and tasks, freeze or fine-tune.

Pages render these; keeping them here lets the wording be reviewed in one place and tested without streamlit.
The matrix's and the quadrant's text sits next to the rules that choose it (tl_core.teaching.matrix, .quadrant);
the diagrams are drawn by ui.charts.diagrams.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    icon: str  # a Material Symbols icon (":material/name:"), shown next to the title
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

PAN_YANG = "Sinno Jialin Pan and Qiang Yang, \"A Survey on Transfer Learning\", IEEE TKDE 22(10), 2010"


@dataclass(frozen=True)
class Definition:
    """A term, as the course words it and as Pan & Yang define it formally."""

    term: str  # "Domain" or "Task"
    course: str  # the course's own wording
    formal: str  # Pan & Yang's definition, markdown with LaTeX
    differs_when: str  # when two of them count as different, markdown with LaTeX


DEFINITIONS: tuple[Definition, ...] = (
    Definition("Domain", DOMAIN_DEFINITION,
               r"A domain $\mathcal{D} = \{\mathcal{X}, P(X)\}$ is a **feature space** $\mathcal{X}$ together with a "
               r"**marginal distribution** $P(X)$, where $X = \{x_1, \dots, x_n\} \in \mathcal{X}$.",
               r"Two domains differ when $\mathcal{X}_S \neq \mathcal{X}_T$ (other features, e.g. other words) or "
               r"$P(X_S) \neq P(X_T)$ (the same features, distributed differently)."),
    Definition("Task", TASK_DEFINITION,
               r"A task $\mathcal{T} = \{\mathcal{Y}, f(\cdot)\}$ is a **label space** $\mathcal{Y}$ together with a "
               r"**predictive function** $f(x) = P(y \mid x)$, learnt from labelled pairs $(x_i, y_i)$.",
               r"Two tasks differ when $\mathcal{Y}_S \neq \mathcal{Y}_T$ (other labels) or "
               r"$P(Y_S \mid X_S) \neq P(Y_T \mid X_T)$ (the same labels, given by another rule)."),
)

DEFINITIONS_BRIDGE = (
    "The two wordings say the same thing: the course's \"where the X are drawn from and how they are distributed\" "
    "is the feature space and P(X); \"the Y and how they are related to X\" is the label space and P(Y|X). "
    "Transfer learning, in Pan & Yang's terms, uses a source domain and task to learn the target's predictive "
    "function when the domains or the tasks differ. One subtlety: when the course's decision tree asks whether "
    "the domains are \"the same\", it means one feature space and one population of inputs; a biased sample can "
    "still shift P(X) (its \"fix sampling biases\" leaf), which Pan & Yang would formally count as different "
    "marginals.")

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


@dataclass(frozen=True)
class WorkedCase:
    """One of the course's two running examples, placed on the matrix and on the quadrant."""

    key: str  # stable identifier
    title: str  # e.g. "Hindi → Spanish, little data"
    short: str  # a label for charts, e.g. "Hindi→Spanish"
    answers: tuple[bool, bool, bool, bool]  # matrix answers: source labels, target labels, same domain, same task
    matrix_why: str  # why these answers
    size: str  # quadrant row: "lots" or "little"
    similarity: str  # quadrant column: "similar" or "different"
    quadrant_why: str  # why this cell, and where the example strains it


WORKED_CASES: tuple[WorkedCase, ...] = (
    WorkedCase(
        "english_french", "English → French, lots of data", "English→French",
        (True, True, True, True),
        "The course's original model. Its data is one labelled problem, millions of English sentences with their "
        "French translations, and there is no other model to learn from: source and target are the same domain "
        "and the same task. That is ordinary supervised learning, the \"traditional ML\" side of the course's "
        "diagram; transfer has nothing to add.",
        "lots", "different",
        "Lots of data, and no similar trained model to start from: the course's lots + different advice, re-use a "
        "proven architecture and calculate every weight from scratch, which is how the original model was made. "
        "Had a model of a similar language pair existed, lots + similar would say: fine-tune all of its layers."),
    WorkedCase(
        "hindi_spanish", "Hindi → Spanish, little data", "Hindi→Spanish",
        (True, True, False, False),
        "The course's transfer example. The source (English sentences, labelled with French translations) has "
        "plenty of labels; the target has a few Hindi sentences with Spanish translations. The inputs are "
        "another language (a different feature space: other words, another script), and so are the outputs (a "
        "different label space): different domains and different tasks. With labels on both sides and different "
        "tasks that is Pan & Yang's inductive setting, off the table only because the domains differ too.",
        "little", "similar",
        "Little data. The languages differ on both sides, yet the problem's structure, translating one sentence "
        "into another, is the same, and the course treats it as close enough to keep the network's early layers "
        "and tune its top ones (its \"Freeze or fine-tune\" slides use this very example): the little + similar "
        "advice. Where the example strains the rule: a translation network's input embeddings belong to the input "
        "language, so for Hindi they must be learnt anew. Zoph et al. (2016, \"Transfer Learning for Low-Resource "
        "Neural Machine Translation\") re-used a high-resource French→English model for low-resource languages "
        "into English and gained several BLEU points."),
)

THREE_CHOICES: tuple[tuple[str, str], ...] = (  # the course's three things to do with a trained model's weights
    ("Re-train from scratch", "keep the architecture, calculate new weights from a fresh start"),
    ("Fine-tune model weights", "keep the architecture, start from the trained weights and update some or all"),
    ("Use entirely as-is", "no training at all: the trained model already solves your problem"),
)

AS_IS = (
    "The course's third choice, **use the model entirely as-is**, needs no training at all: it fits when your "
    "classes are among the source model's own (ImageNet's 1,000 categories, say) and your images look like its "
    "training photos. Then neither the size nor the similarity question arises. The Pretrained explorer page is "
    "this choice: it runs ImageNet models unchanged on your images.")

FEATURE_EXTRACTOR_WHEN = (
    "A **fixed feature extractor** (freeze the whole pretrained body, train only a new head) beats fine-tuning the "
    "final layers when labels are very few (tens per class) and the target resembles the source, so the final "
    "features already fit and updating them mostly fits noise; and all the more when those final layers hold most "
    "of the weights, as the fully connected fc6 and fc7 of AlexNet and VGG do. It is also cheaper: the frozen "
    "features can be computed once. Fine-tuning the final layers wins once there are enough labels to adjust them, "
    "or when the target drifts far enough that the top features need to change. (CS231n, \"Transfer Learning\" "
    "notes: small and similar data, train a linear classifier on the CNN codes; Yosinski et al., 2014, \"How "
    "transferable are features in deep neural networks?\")")

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


CURRICULUM_FILE = Path(__file__).resolve().parents[2] / "docs" / "CURRICULUM.md"
"""The curriculum map: each section of the course with the page that teaches it, and every departure."""


def curriculum_markdown() -> str:
    """The curriculum map's markdown (docs/CURRICULUM.md), or a sentence saying where it should be."""
    try:
        return CURRICULUM_FILE.read_text(encoding="utf-8")
    except OSError:
        return f"The curriculum map is missing: it belongs in `docs/{CURRICULUM_FILE.name}` of the project."
