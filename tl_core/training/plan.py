"""A transfer-learning plan: which weights to re-use, which layer groups to freeze, and how to train.

Plain data, no torch import, so the decision pages can build and check plans cheaply. The trainer
(`tl_core.training.trainer`) turns a Plan into a model, an optimizer and a run. `make_plan` takes each
architecture family's fine-tuning defaults (optimizer, learning rates, weight decay) from a published recipe,
`recipe_for(arch)`, which names its source so that the pages can show it; ShapesNet keeps its own tuned recipe.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tl_core.models.registry import ArchSpec, get_spec


@dataclass(frozen=True)
class Strategy:
    """One of the seed course's five ways to re-use a trained network."""

    key: str
    label: str
    pretrained: bool  # starts from the source model's weights
    summary: str


STRATEGIES: dict[str, Strategy] = {
    s.key: s
    for s in (
        Strategy("scratch", "Re-train from scratch", False,
                 "Re-use the architecture, re-calculate every weight from a fresh initialisation."),
        Strategy("finetune_all", "Fine-tune all layers", True,
                 "Start from the pretrained weights and update every layer."),
        Strategy("finetune_top", "Fine-tune only the final layers", True,
                 "Freeze the first layer groups, update the later ones and a new head."),
        Strategy("feature_extract", "Fixed feature extraction", True,
                 "Freeze the whole pretrained body; train only a new head on its features."),
        Strategy("early_classifier", "Classifier on the initial layers", True,
                 "Cut the network after an early group, pool its features and fit a new head on them."),
    )
}

BN_POLICIES = ("eval", "train")  # frozen BatchNorm: keep running statistics fixed, or let them adapt
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")  # learning-rate schedule over the run
DEVICES = ("auto", "cpu", "cuda", "mps")
MAX_EPOCHS = 500
MAX_BATCH = 4096


@dataclass(frozen=True)
class Plan:
    """Everything needed to reproduce one training run."""

    arch: str = "shapesnet"  # registry key (tl_core.models.registry.ARCHS)
    strategy: str = "finetune_top"  # key of STRATEGIES
    frozen: tuple[str, ...] = ("block1", "block2", "block3")  # frozen layer groups at the start
    cut_after: str | None = None  # early_classifier only: the last group kept before the new head
    lr: float = 3e-3  # base learning rate; each group's is lr * lr_mult[group] (make_plan: the arch's recipe)
    lr_mult: dict[str, float] = field(default_factory=dict)  # per-group multiplier on lr; missing means 1
    bn_policy: str = "eval"  # BatchNorm in frozen groups: "eval" keeps statistics fixed, "train" updates them
    unfreeze_every: int = 0  # gradual unfreezing: thaw the deepest frozen group every n epochs; 0 is off
    epochs: int = 10  # passes over the training data
    min_steps: int = 100  # floor on optimiser steps, so tiny datasets still get enough updates
    batch_size: int = 32  # images per optimiser step
    optimizer: str = "adam"  # "adam" or "sgd" (momentum 0.9)
    schedule: str = "cosine"  # "cosine" decays every group's LR to zero over the run; "constant" keeps it
    weight_decay: float = 0.0  # L2 penalty
    augment: bool = False  # random flips and shifts; turns off the frozen-feature cache
    seed: int = 0  # seeds weights, shuffling and augmentation
    device: str = "auto"  # "auto" picks CUDA, then MPS, then the CPU
    deterministic: bool = True  # False: the result may differ between runs with this seed, so it is never shared

    # ---- derived facts -------------------------------------------------------------------------
    @property
    def spec(self) -> ArchSpec:
        return get_spec(self.arch)

    @property
    def pretrained(self) -> bool:
        """Whether the run starts from the source model's weights."""
        return STRATEGIES[self.strategy].pretrained

    @property
    def groups(self) -> tuple[str, ...]:
        """The layer groups the run's model has: all of them, or those kept before an early cut."""
        groups = self.spec.groups
        if self.strategy == "early_classifier" and self.cut_after in groups:
            return groups[: groups.index(self.cut_after) + 1] + ("head",)
        return groups

    @property
    def trainable(self) -> tuple[str, ...]:
        """Groups that train from the first step."""
        return tuple(g for g in self.groups if g not in self.frozen)

    @property
    def trains_aux(self) -> bool:
        """Whether Inception's auxiliary classifier trains (it then needs the native 299-pixel input)."""
        return "aux" in self.groups and ("aux" not in self.frozen or self.unfreeze_every > 0)

    def lr_for(self, group: str) -> float:
        """The learning rate a group gets while it is trainable."""
        return self.lr * self.lr_mult.get(group, 1.0)

    def describe(self) -> str:
        """A one-line summary for the sidebar."""
        label = STRATEGIES[self.strategy].label if self.strategy in STRATEGIES else self.strategy
        frozen = ", ".join(self.frozen) if self.frozen else "none"
        return f"{label} · {self.arch} · frozen: {frozen} · {self.epochs} epochs · lr {self.lr:g}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["frozen"] = list(self.frozen)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "frozen" in known:
            known["frozen"] = tuple(known["frozen"])
        if "lr_mult" in known:
            known["lr_mult"] = {str(k): float(v) for k, v in dict(known["lr_mult"]).items()}
        return cls(**known)

    # ---- validation ----------------------------------------------------------------------------
    def validate(self) -> Plan:
        """Check the plan on its own. Returns self so calls can chain.

        Raises:
            ValueError: naming the first problem and what to change.
        """
        spec = get_spec(self.arch)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Unknown strategy {self.strategy!r}. Choose one of: {', '.join(STRATEGIES)}.")
        unknown = [g for g in (*self.frozen, *self.lr_mult) if g not in spec.groups]
        if unknown:
            raise ValueError(f"{self.arch} has no layer group {unknown[0]!r}; its groups are {', '.join(spec.groups)}.")
        if "head" in self.frozen:
            raise ValueError("The head is new for the target task and must stay trainable; unfreeze 'head'.")
        body = spec.body_groups
        frozen = tuple(g for g in body if g in self.frozen)  # in forward order
        if self.strategy in ("scratch", "finetune_all") and frozen:
            what = "random weights teach nothing when frozen" if self.strategy == "scratch" else "every layer trains"
            raise ValueError(f"'{STRATEGIES[self.strategy].label}' freezes nothing ({what}); "
                             f"clear the frozen groups or pick 'Fine-tune only the final layers'.")
        if self.strategy == "finetune_top":
            if not frozen:
                raise ValueError("'Fine-tune only the final layers' needs at least one frozen group; "
                                 "freeze the first group or pick 'Fine-tune all layers'.")
            if frozen != body[: len(frozen)]:
                raise ValueError(f"Freeze a prefix of the network (the first groups): {', '.join(body[: len(frozen)])}, "
                                 f"not {', '.join(frozen)}.")
            if len(frozen) == len(body):
                raise ValueError("Every body group is frozen; that is 'Fixed feature extraction'. "
                                 "Unfreeze the last group or pick that strategy.")
        if self.strategy == "feature_extract" and frozen != body:
            raise ValueError(f"'Fixed feature extraction' freezes every group but the head: {', '.join(body)}.")
        if self.strategy == "early_classifier":
            if self.cut_after not in body:
                raise ValueError(f"Pick where to cut: cut_after must be one of {', '.join(body)}.")
            kept = body[: body.index(self.cut_after) + 1]
            if frozen != kept:
                raise ValueError(f"A classifier on the initial layers freezes the kept groups {', '.join(kept)}.")
        elif self.cut_after is not None:
            raise ValueError("cut_after only applies to 'Classifier on the initial layers'; set it to None.")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"The learning rate must be a positive number; got {self.lr!r}. Try 0.003.")
        for g, m in self.lr_mult.items():
            if not (math.isfinite(m) and m >= 0):
                raise ValueError(f"The LR multiplier for {g!r} must be zero or positive; got {m!r}.")
        if self.bn_policy not in BN_POLICIES:
            raise ValueError(f"bn_policy must be one of {BN_POLICIES}; got {self.bn_policy!r}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {self.optimizer!r}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}; got {self.schedule!r}.")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}; got {self.device!r}.")
        if not (isinstance(self.epochs, int) and 1 <= self.epochs <= MAX_EPOCHS):
            raise ValueError(f"Epochs must be a whole number from 1 to {MAX_EPOCHS}; got {self.epochs!r}.")
        if not (isinstance(self.batch_size, int) and 2 <= self.batch_size <= MAX_BATCH):
            raise ValueError(f"Batch size must be a whole number from 2 to {MAX_BATCH} (BatchNorm needs two images "
                             f"to normalise over); got {self.batch_size!r}.")
        if not (isinstance(self.min_steps, int) and 0 <= self.min_steps <= 100_000):
            raise ValueError(f"min_steps must be from 0 to 100000; got {self.min_steps!r}.")
        if not (isinstance(self.unfreeze_every, int) and self.unfreeze_every >= 0):
            raise ValueError(f"unfreeze_every must be 0 (off) or a positive number of epochs; got {self.unfreeze_every!r}.")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"Weight decay must be zero or positive; got {self.weight_decay!r}.")
        return self

    def validate_for_data(self, n_train: int, n_classes: int) -> Plan:
        """Check the plan against the data it will train on.

        Raises:
            ValueError: naming what to change.
        """
        self.validate()
        if n_classes < 2:
            raise ValueError(f"Training needs at least two classes; the data has {n_classes}. Add another class.")
        if n_train < 2:
            raise ValueError(f"Training needs at least two training images; there are {n_train}. Add more images.")
        if self.batch_size > n_train:
            raise ValueError(f"Batch size {self.batch_size} is larger than the {n_train} training images; "
                             f"use at most {n_train}.")
        return self


def discriminative_lr_mult(groups: tuple[str, ...], decay: float) -> dict[str, float]:
    """Per-group multipliers that shrink geometrically towards the input (ULMFiT's discriminative LRs).

    Args:
        groups: Layer groups in forward order; the last gets 1.0.
        decay: Factor per group, in (0, 1].

    Returns:
        {group: multiplier}.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"LR decay per group must be in (0, 1]; got {decay!r}.")
    n = len(groups)
    return {g: decay ** (n - 1 - i) for i, g in enumerate(groups)}


def fit_batch_size(batch_size: int, n_train: int) -> int:
    """The largest batch not above `batch_size` that the data can fill (never below 2: BatchNorm needs two)."""
    return max(2, min(batch_size, n_train))


HEAD_LR_MULT = 10.0  # ShapesNet's recipe: a new head on pretrained features learns with 10x the body's LR


@dataclass(frozen=True)
class Recipe:
    """Fine-tuning defaults for an architecture family, after a published recipe (named, with its source)."""

    name: str  # a short name to show, e.g. "PyTorch's fine-tuning tutorial"
    optimizer: str  # "sgd" (momentum 0.9) or "adam"
    lr: float  # base learning rate of the layers that train, starting from pretrained weights
    head_mult: float  # the new head's LR multiplier when starting from pretrained weights
    weight_decay: float  # L2 penalty
    scratch_lr: float  # base learning rate when every weight starts random ("Re-train from scratch")
    citation: str  # where the numbers come from

    def fields_for(self, strategy: str) -> dict[str, Any]:
        """The Plan fields this recipe sets for a strategy (from scratch: scratch_lr; otherwise lr)."""
        lr = self.lr if STRATEGIES[strategy].pretrained else self.scratch_lr
        return {"optimizer": self.optimizer, "lr": lr, "weight_decay": self.weight_decay}

    def describe(self) -> str:
        """One sentence for the pages: the settings and their source."""
        opt = "SGD with momentum 0.9" if self.optimizer == "sgd" else "Adam"
        head = f", the new head at {self.head_mult:g}x" if self.head_mult != 1 else ""
        decay = f", weight decay {self.weight_decay:g}" if self.weight_decay else ""
        return (f"{self.name}: {opt}, learning rate {self.lr:g}{head}{decay} (from scratch: {self.scratch_lr:g}). "
                f"Source: {self.citation}")


RECIPES: dict[str, Recipe] = {
    # ShapesNet's defaults are its own recipe, not a published one: tuned on the shapes world for this 98k-parameter
    # network (Adam converges in the ~100 steps a tiny target set gives; bench/bench_engine.py's race and sweep).
    "shapes": Recipe("ShapesNet's own tuned recipe", "adam", 3e-3, HEAD_LR_MULT, 0.0, 3e-3,
                     "tuned by the playbook for its 98k-parameter ShapesNet on the shapes world; not a published "
                     "recipe (bench/bench_engine.py measures the race and the sweep with it)."),
    # Caffe's reference fine-tuning of an ImageNet AlexNet (CaffeNet): base_lr 0.001 with the new fc8 at 10x,
    # momentum 0.9, weight decay 0.0005; from scratch the same solver uses 0.01 (as do Krizhevsky et al. and
    # Simonyan & Zisserman, with momentum 0.9 and weight decay 5e-4).
    "caffe": Recipe("Caffe's fine-tuning example (Flickr Style)", "sgd", 1e-3, 10.0, 5e-4, 1e-2,
                    "BVLC Caffe, 'Fine-tuning CaffeNet for Style Recognition on Flickr Style Data' "
                    "(examples/finetune_flickr_style): SGD, momentum 0.9, base_lr 0.001, lr_mult 10 on the new "
                    "layer, weight decay 0.0005; from scratch Caffe's reference CaffeNet solver uses base_lr 0.01."),
    # PyTorch's tutorial fine-tunes every torchvision classifier (resnet, alexnet, vgg, squeezenet, densenet,
    # inception) with SGD, lr 0.001, momentum 0.9, the same rate for every layer that trains (Inception's aux
    # loss at 0.4). From scratch: He et al.'s 0.1 per 256 images, scaled linearly to our batch of 32 (Goyal et
    # al., 2017), rounded to 0.01.
    "torchvision": Recipe("PyTorch's fine-tuning tutorial", "sgd", 1e-3, 1.0, 0.0, 1e-2,
                          "PyTorch tutorials, 'Finetuning Torchvision Models' (N. Inkawhich): SGD, lr 0.001, "
                          "momentum 0.9 for every layer that trains; from scratch He et al. (2015) use 0.1 for a "
                          "batch of 256, about 0.01 for our batch of 32 (linear scaling, Goyal et al., 2017)."),
}
FAMILY_RECIPES: dict[str, str] = {  # architecture family -> key of RECIPES
    "shapes": "shapes", "alexnet": "caffe", "vgg": "caffe", "resnet": "torchvision", "densenet": "torchvision",
    "inception": "torchvision", "mobilenet": "torchvision",
}


def recipe_for(arch: str) -> Recipe:
    """The fine-tuning recipe an architecture's plans follow by default (its name and citation included).

    Raises:
        ValueError: If the architecture is unknown, or its family has no recipe.
    """
    family = get_spec(arch).family
    if family not in FAMILY_RECIPES:
        raise ValueError(f"No fine-tuning recipe for family {family!r}; add it to FAMILY_RECIPES.")
    return RECIPES[FAMILY_RECIPES[family]]


def make_plan(strategy: str, *, arch: str = "shapesnet", freeze_first: int | None = None,
              cut_after: str | None = None, lr_decay: float | None = None, head_mult: float | None = None,
              **overrides: Any) -> Plan:
    """Build a consistent plan for one of the five strategies, with the architecture's fine-tuning recipe.

    Args:
        strategy: A key of STRATEGIES.
        arch: A registry key.
        freeze_first: finetune_top only: how many leading groups to freeze (default: all but the last body group).
        cut_after: early_classifier only: the last group kept (default: the second group).
        lr_decay: If set, discriminative LRs decaying by this factor per group towards the input.
        head_mult: LR multiplier of the new head (default: the recipe's when starting from pretrained weights,
            1 for scratch, where every layer is equally new).
        **overrides: Any other Plan field. The optimizer, lr and weight_decay default to the architecture's
            recipe (recipe_for).

    Returns:
        A validated Plan.

    Raises:
        ValueError: If the arguments cannot make a valid plan.
    """
    spec = get_spec(arch)
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}. Choose one of: {', '.join(STRATEGIES)}.")
    body = spec.body_groups
    frozen: tuple[str, ...] = ()
    if strategy == "finetune_top":
        k = len(body) - 1 if freeze_first is None else freeze_first
        if not 1 <= k < len(body):
            raise ValueError(f"{arch} has {len(body)} body groups before the head; freeze between 1 and "
                             f"{len(body) - 1} of them (got {k}).")
        frozen = body[:k]
    elif strategy == "feature_extract":
        frozen = body
    elif strategy == "early_classifier":
        cut_after = cut_after or body[min(1, len(body) - 1)]
        if cut_after not in body:
            raise ValueError(f"Cannot cut {arch} after {cut_after!r}; choose one of {', '.join(body)}.")
        frozen = body[: body.index(cut_after) + 1]
    recipe = recipe_for(arch)
    plan = Plan(arch=arch, strategy=strategy, frozen=frozen,
                cut_after=cut_after if strategy == "early_classifier" else None,
                **{**recipe.fields_for(strategy), **overrides})
    if "lr_mult" not in overrides:
        mult = discriminative_lr_mult(plan.groups, lr_decay) if lr_decay is not None else {}
        if head_mult is None:
            head_mult = recipe.head_mult if plan.pretrained else 1.0
        if head_mult != 1.0:
            mult["head"] = head_mult
        plan = replace(plan, lr_mult=mult)
    return plan.validate()
