"""The pages' plan forms as plain data: the Train page's form to a Plan and back, and the own-images page's plan.

Form values are a flat dict keyed by Plan field ("arch", "strategy", "frozen", "lr", ...) plus one "mult.<group>"
entry per layer group for the per-group learning-rate multipliers. The page prefixes the keys to make widget keys.
No streamlit here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tl_core.data import shapes
from tl_core.models.registry import get_spec
from tl_core.training.plan import Plan, fit_batch_size, make_plan

# Plan fields the form edits (the seed is app-wide and comes from the sidebar).
FORM_FIELDS: tuple[str, ...] = ("arch", "strategy", "frozen", "cut_after", "lr", "bn_policy", "unfreeze_every",
                                "epochs", "min_steps", "batch_size", "optimizer", "schedule", "weight_decay",
                                "augment", "device")
STRUCTURE_FIELDS: tuple[str, ...] = ("arch", "strategy", "cut_after")  # changing one resets frozen groups and LRs
MULT_PREFIX = "mult."  # form key prefix of the per-group LR multipliers


def mult_key(group: str) -> str:
    """The form key of a group's LR multiplier."""
    return f"{MULT_PREFIX}{group}"


def form_values(plan: Plan) -> dict[str, Any]:
    """The form values that show a plan.

    Args:
        plan: Any Plan.

    Returns:
        {field: value} for FORM_FIELDS (frozen as a list), plus "mult.<group>" for every group the plan keeps.
    """
    d = plan.to_dict()
    values = {f: d[f] for f in FORM_FIELDS}
    values["frozen"] = list(plan.frozen)
    for g in plan.groups:
        values[mult_key(g)] = float(plan.lr_mult.get(g, 1.0))
    return values


def form_groups(values: dict[str, Any]) -> tuple[str, ...]:
    """The layer groups the form's plan keeps (all of the architecture's, or those before an early cut).

    Raises:
        ValueError: If the architecture is unknown.
    """
    cut = values.get("cut_after") if values.get("strategy") == "early_classifier" else None
    return Plan(arch=values["arch"], strategy=values.get("strategy", "finetune_top"), frozen=(), cut_after=cut).groups


def plan_from_form(values: dict[str, Any], *, seed: int) -> Plan:
    """Build and validate the plan a form describes.

    Args:
        values: Form values as produced by form_values (and edited by the learner).
        seed: The app-wide seed.

    Returns:
        A validated Plan.

    Raises:
        ValueError: If the values do not make a valid plan; the message says what to change.
    """
    arch, strategy = values["arch"], values["strategy"]
    order = get_spec(arch).groups
    frozen = tuple(sorted(values.get("frozen") or (), key=lambda g: order.index(g) if g in order else len(order)))
    cut_after = values.get("cut_after") if strategy == "early_classifier" else None
    shape = Plan(arch=arch, strategy=strategy, frozen=frozen, cut_after=cut_after)
    lr_mult = {g: float(values[mult_key(g)]) for g in form_groups(values)
               if mult_key(g) in values and float(values[mult_key(g)]) != 1.0}
    return replace(shape, lr=float(values["lr"]), lr_mult=lr_mult, bn_policy=values["bn_policy"],
                   unfreeze_every=int(values["unfreeze_every"]), epochs=int(values["epochs"]),
                   min_steps=int(values["min_steps"]), batch_size=int(values["batch_size"]),
                   optimizer=values["optimizer"], schedule=values["schedule"],
                   weight_decay=float(values["weight_decay"]), augment=bool(values["augment"]), seed=int(seed),
                   device=values["device"]).validate()


def checked_plan(values: dict[str, Any], *, seed: int, n_per_class: int, similarity: float) -> Plan:
    """The form's plan, checked on its own and against the shapes-world data it will train on.

    Args:
        values: Form values.
        seed: The app-wide seed.
        n_per_class: Training images per class.
        similarity: The data's similarity to the source.

    Returns:
        A Plan valid for that data.

    Raises:
        ValueError: Naming the first problem and what to change.
    """
    return plan_from_form(values, seed=seed).validate_for_data(*data_shape(n_per_class, similarity))


def restructure(values: dict[str, Any]) -> dict[str, Any]:
    """Form values after the architecture, strategy or cut point changed: that strategy's default frozen groups,
    cut point, per-group LR multipliers, and the architecture's fine-tuning recipe (learning rate, optimizer, weight
    decay: tl_core.training.plan.recipe_for); every other setting is kept.

    Args:
        values: The current form values (with the new arch / strategy / cut_after).

    Returns:
        New form values (a new dict).

    Raises:
        ValueError: If the architecture, strategy or cut point is unknown.
    """
    cut = values.get("cut_after") if values["strategy"] == "early_classifier" else None
    spec = get_spec(values["arch"])
    if cut is not None and cut not in spec.body_groups:
        cut = None
    default = make_plan(values["strategy"], arch=values["arch"], cut_after=cut)
    new = {k: v for k, v in values.items() if not k.startswith(MULT_PREFIX)}
    defaults = form_values(default)
    recipe = ("lr", "optimizer", "weight_decay")
    for k in ("frozen", "cut_after", *recipe, *(k for k in defaults if k.startswith(MULT_PREFIX))):
        new[k] = defaults[k]
    return new


def data_shape(n_per_class: int, similarity: float) -> tuple[int, int]:
    """(training images, classes) of the shapes-world target data, without generating it.

    Raises:
        ValueError: If the similarity is outside [0, 1].
    """
    classes = shapes.target_spec(similarity).classes
    return n_per_class * len(classes), len(classes)


def fit_to_data(plan: Plan, n_train: int) -> tuple[Plan, str | None]:
    """A plan whose batch fits the data, and a note for the learner when the batch had to shrink.

    Args:
        plan: A plan arriving from elsewhere (e.g. the quadrant page).
        n_train: Training images.

    Returns:
        (plan, note or None).
    """
    batch = fit_batch_size(plan.batch_size, n_train)
    if batch == plan.batch_size:
        return plan, None
    return replace(plan, batch_size=batch), (f"Batch size lowered from {plan.batch_size} to {batch}: there are only "
                                             f"{n_train} training images.")


# ---- the own-images page's plan -----------------------------------------------------------------------------------
SHAPES_SIZE = 32  # the built-in network's input side
CACHED_STRATEGIES = ("feature_extract", "early_classifier")  # strategies whose frozen body runs once
DEFAULT_MIN_STEPS = 100  # the own-images page's minimum optimiser steps to start with (a setting the learner sees)


def image_size_for(arch: str) -> int:
    """The side the learner's images are decoded at: 32 for the built-in network, else the architecture's own.

    Raises:
        ValueError: If the architecture is unknown.
    """
    spec = get_spec(arch)
    return SHAPES_SIZE if not spec.torchvision else spec.input_size


def default_strategy(arch: str, on_cpu: bool) -> str:
    """The strategy the page preselects.

    An ImageNet model on the CPU defaults to fixed feature extraction: its frozen body runs once over the images
    (the trainer caches the features), so a couple of hundred images at 224 px train in seconds. The built-in
    network (and any model on a GPU) defaults to fine-tuning its final layers.
    """
    return "feature_extract" if get_spec(arch).torchvision and on_cpu else "finetune_top"


def is_cached(plan: Plan) -> bool:
    """Whether the trainer computes the frozen body's features once for this plan (as tl_core.training.estimate assumes)."""
    return plan.strategy in CACHED_STRATEGIES and not plan.augment and plan.bn_policy == "eval"


def needs_estimate(plan: Plan, on_cpu: bool) -> bool:
    """Whether to show the measured run time and ask for confirmation before starting: an ImageNet-sized model
    trained on the CPU through all its layers every step (anything not cached)."""
    return on_cpu and plan.spec.torchvision and not is_cached(plan)


def own_plan(arch: str, strategy: str, n_train: int, n_classes: int, *, epochs: int = 10, lr: float | None = None,
             seed: int = 0, batch_size: int = 32, augment: bool = False, min_steps: int = 0) -> Plan:
    """A plan for the learner's data: the strategy's usual freezing, with the batch fitted to the data.

    Args:
        arch: A registry key.
        strategy: A key of tl_core.training.plan.STRATEGIES.
        n_train: Training images after the split.
        n_classes: Classes in the data.
        epochs: Passes over the training data.
        lr: Base learning rate (default: the architecture's fine-tuning recipe, tl_core.training.plan.recipe_for).
        seed: Seeds the weights and the shuffling.
        batch_size: Largest batch; lowered to n_train if the data is smaller.
        augment: Random flips and shifts (turns the feature cache off).
        min_steps: Floor on optimiser steps: epochs are repeated until the run has taken this many (0: train
            exactly `epochs`). The page shows it as a setting and says what it does (see `schedule_note`).

    Returns:
        A plan validated against the data.

    Raises:
        ValueError: If the plan cannot run on this data, saying what to change.
    """
    plan = make_plan(strategy, arch=arch, epochs=epochs, seed=seed, augment=augment, min_steps=min_steps,
                     batch_size=max(1, min(batch_size, n_train)), **({} if lr is None else {"lr": lr}))
    return plan.validate_for_data(n_train, n_classes)


def schedule_note(plan: Plan, n_train: int) -> str:
    """What a plan will really run on n_train images: its epochs and optimiser steps, and why they differ from the
    plan's epochs when the minimum steps raise them.

    Returns:
        One sentence, e.g. "10 epochs of 1 step each: 10 optimiser steps." or "10 epochs of 1 step would be only
        10 optimiser steps, so the run repeats to 100 epochs (100 steps) to reach the minimum of 100 steps."
    """
    from tl_core.training.trainer import schedule_for  # torch, only when the page draws a plan

    epochs, per_epoch = schedule_for(plan, n_train)
    steps = f"{per_epoch} step{'s' if per_epoch != 1 else ''}"
    if epochs == plan.epochs:
        return f"{plan.epochs} epochs of {steps} each: {epochs * per_epoch} optimiser steps."
    return (f"{plan.epochs} epochs of {steps} would be only {plan.epochs * per_epoch} optimiser steps, so the run "
            f"repeats to {epochs} epochs ({epochs * per_epoch} steps) to reach the minimum of {plan.min_steps} "
            f"steps.")
