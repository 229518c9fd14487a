"""What a plan does to each layer group, said in words: the roles, the freeze-or-fine-tune advice, the takeaway.

The quadrant page, the Train page and the architecture explainers describe plans with these. No torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from tl_core.training.plan import Plan


@dataclass(frozen=True)
class LayerRole:
    """How one layer group of an architecture is treated by a plan."""

    group: str  # layer group name, in forward order
    role: str  # "frozen", "fine-tuned", "from scratch", "new head" or "cut off" (keys of ui.charts.theme.ROLE_COLOURS)
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


_ADVICE: dict[str, str] = {  # strategy -> what the plan does with the initial layers, and why
    "scratch": ("Nothing pretrained is kept: every layer, the initial ones included, starts from random weights "
                "and trains at the same learning rate. There are enough labels to learn them all, and the "
                "source's weights would not fit this data."),
    "finetune_all": ("Fine-tune the initial layers too, with smaller learning rates: there are enough labels to "
                     "adjust them without overfitting, and the generic early layers need to move least."),
    "finetune_top": ("Freeze the initial layers: target labels are scarce, and every trainable weight is a chance "
                     "to overfit. Only the last group and the new head train."),
    "feature_extract": ("Freeze every pretrained layer and train only the new head on their features: with this "
                        "few labels, the pretrained features are worth more than anything the data could teach "
                        "the body."),
    "early_classifier": ("Keep only the initial layers, frozen, as a feature extractor; cut off the later, "
                         "source-specific ones and fit the new head on the initial layers' features."),
}


def plan_advice(plan: Plan) -> str:
    """Freeze or fine-tune the initial layers, said for what the plan really does.

    Args:
        plan: A Plan.

    Returns:
        One or two sentences that hold for the plan's strategy.
    """
    return _ADVICE[plan.strategy]


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
