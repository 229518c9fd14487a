"""The Train page's plan form as plain data: a Plan to form values and back, with each strategy's rules applied.

Form values are a flat dict keyed by Plan field ("arch", "strategy", "frozen", "lr", ...) plus one "mult.<group>"
entry per layer group for the per-group learning-rate multipliers. The page prefixes the keys to make widget keys.
No streamlit here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tl_core.models.registry import get_spec
from tl_core.training.plan import Plan, make_plan
from tl_core.data.datasets import DataSpec, fit_batch_size

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
    cut point and per-group LR multipliers; every other setting is kept.

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
    for k in ("frozen", "cut_after", *(k for k in defaults if k.startswith(MULT_PREFIX))):
        new[k] = defaults[k]
    return new


def data_shape(n_per_class: int, similarity: float) -> tuple[int, int]:
    """(training images, classes) of the shapes-world target data, without generating it.

    Raises:
        ValueError: If the similarity is outside [0, 1].
    """
    classes = DataSpec(n_per_class=n_per_class, similarity=similarity).world.classes
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
