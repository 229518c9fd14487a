"""What each architecture is: its family's teaching card, a layer table measured on the meta device, and a comparison.

A summary builds the model under `with torch.device("meta")` (shapes and dtypes only, no weight memory) and runs
one forward pass on a meta tensor with forward hooks, which record every layer's output shape and count its
multiply-accumulates (MACs). Only Conv2d and Linear layers are counted (kernel MACs, no bias adds); BatchNorm,
activations, pooling, the residual additions and the concatenations are free in this count, which is the
convention of torchvision's own `_ops` metadata. The module imports torch lazily, so importing it is cheap.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from tl_core.models.registry import ARCHS, get_spec
from tl_core.teaching.plans import layer_roles
from tl_core.training.plan import STRATEGIES, Plan, make_plan

if TYPE_CHECKING:
    from torch import nn

IMAGENET_CLASSES = 1000  # the ILSVRC subset of ImageNet that torchvision's pretrained models classify
TRAINING_ROLES = ("fine-tuned", "from scratch", "new head")  # roles of tl_core.teaching.plans.layer_roles that train
NO_WEIGHTS = "no weights"  # the role shown for glue outside every layer group (pooling, flatten)


# ---- the teaching cards --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FamilyCard:
    """What the course says about one family, and which registered variants belong to it."""

    family: str  # ArchSpec.family
    title: str  # heading of the card
    tab: str  # short label of its tab, with an emoji
    points: tuple[str, ...]  # the teaching points, one bullet each
    variants: tuple[str, ...]  # registry keys of the family, smallest first


_CARD_TEXT: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "alexnet": ("AlexNet (2012): the network that started it", ":material/emoji_events: AlexNet", (
        "**Stacked convolutions:** its big innovation was stacking convolutional layers directly on top of each "
        "other: conv3, conv4 and conv5 follow one another with no pooling layer between them.",
        "**ReLU activations:** max(0, x) instead of the saturating tanh; Krizhevsky et al. report that it reached "
        "the same training error several times faster, which made a network this deep trainable in days.",
        "**Trained on two GPUs:** the network was split across two GTX 580s with 3 GB each, half of each layer's "
        "kernels on each, talking to each other only at some layers. (torchvision's AlexNet is the later "
        "single-GPU variant from Krizhevsky's \"One weird trick\" paper, 2014, with slightly different widths.)",
        "**Fighting overfitting:** a high dropout of 50% in the fully connected layers, and training images "
        "randomly shifted by offsets (data augmentation).",
        "**Local response normalization:** strongly activated neurons inhibit nearby neurons, so neurons "
        "*compete* to specialise in different kinds of features. (torchvision's version leaves LRN out; modern "
        "networks use batch normalization instead.)",
        "**Won the ImageNet challenge (ILSVRC) in 2012 by a huge margin**, and made deep CNNs the standard. Most "
        "of its weights sit in the fully connected fc6 and fc7.",
    )),
    "vgg": ("VGG (2014): small filters, stacked deep", ":material/view_module: VGG", (
        "**Stacks of small 3×3 filters** instead of one large filter: three 3×3 layers see the same 7×7 patch of "
        "the input as one 7×7 layer (try the calculator below).",
        "**More representational power without too many parameters:** three layers bring three non-linearities "
        "instead of one, and need fewer weights than the single large filter.",
        "**Small filters also regularize** and mitigate overfitting: the large filter is forced into a cheaper, "
        "decomposed form.",
        "Simple and uniform, but heavy: most of its parameters sit in the fully connected layers (fc6_7).",
    )),
    "resnet": ("ResNet (2015): skip connections, extremely deep", ":material/alt_route: ResNet", (
        "**Skip (shortcut) connections** carry the output of lower layers to layers far ahead, around the "
        "convolutions in between.",
        "**Residual learning:** each block only adds a correction F(x) to its input x, so the model is forced to "
        "focus on what the intermediate layers have *not* learnt yet.",
        "**Batch normalization after each convolution and before each activation.**",
        "**Why it was needed: degradation, not vanishing gradients.** He et al. (2015) found that deeper *plain* "
        "networks reached a *higher training error* than shallower ones, although batch normalization kept "
        "their gradients healthy (they checked) and although more layers can only add capacity: the solver "
        "struggled to learn even an identity mapping through many non-linear layers. A residual block makes the "
        "identity trivial (F(x) = 0), so extra depth stops hurting. Vanishing gradients had largely been tamed "
        "by careful initialisation and batch normalization; the toggle below shows both effects.",
        "**Extremely deep** (152 layers in the winning entry). **Won the ImageNet challenge in 2015.**",
        "Otherwise it shares many features with typical CNNs: convolutions, pooling, a linear classifier. Its name "
        "counts the layers on the longest path; the 1×1 convolutions on some shortcuts come on top.",
    )),
    "densenet": ("DenseNet (2016): every layer sees every earlier layer", ":material/hub: DenseNet", (
        "**Extends the idea of residual learning:** instead of adding a block's input to its output, a dense "
        "block *concatenates* it, so every layer is connected to every later layer of its block.",
        "**Each layer is batch normalization → ReLU → 3×3 convolution** (torchvision's DenseNet-BC puts a 1×1 "
        "bottleneck, itself BN → ReLU → 1×1 conv, in front of the 3×3).",
        "**Compact:** each layer adds only a few new channels (the growth rate), so the model has relatively few "
        "parameters.",
        "**Easy to train:** implicit deep supervision (every layer gets the loss's gradient almost directly "
        "through the dense connections) lets gradients flow back easily.",
    )),
    "inception": ("Inception v3 (2015): several filter sizes side by side", ":material/extension: Inception", (
        "**Multi-branch modules:** each Inception module runs convolutions of several sizes and a pooling branch "
        "in parallel and concatenates the results, so the network can use whichever scale fits. torchvision's "
        "Inception-A modules (mixed5) have four branches: a 1×1, a 5×5, a double 3×3 (two stacked 3×3 "
        "convolutions, which see a 5×5 patch with fewer weights) and average pooling.",
        "**Factorised convolutions:** later modules split large filters, 7×7 into a 1×7 followed by a 7×1 "
        "(mixed6), and 3×3 into parallel 1×3 and 3×1 (mixed7).",
        "**1×1 bottlenecks** shrink the channel count before the expensive convolutions, keeping the cost down.",
        "**An auxiliary classifier** on an intermediate layer adds a second loss during training (it is skipped "
        "at inference); it has its own layer group, `aux`.",
        "**Input of 299×299 pixels**, not 224×224 like the others.",
    )),
    "shapes": ("The built-in shapes CNN, for comparison", ":material/category: Shapes CNN", (
        "The playbook's own network: four conv → batch norm → ReLU blocks, global average pooling and a linear "
        "head, for 32×32 images of the shapes world.",
        "It is what the source model (shipped in assets/) is: trained on the six source shapes, then re-used on "
        "the target shapes in the labs.",
        "Roughly a thousand times smaller than VGG: small enough to fine-tune live on a laptop CPU.",
    )),
    "mobilenet": ("MobileNet v3 (2019): built for phones", ":material/smartphone: MobileNet", (
        "Not one of the course's five families: it is in the registry as a small, fast ImageNet model.",
        "Depthwise separable convolutions split a 3×3 convolution into a per-channel 3×3 and a 1×1 mix, which "
        "costs a fraction of the MACs.",
    )),
}

FAMILY_ORDER: tuple[str, ...] = ("alexnet", "vgg", "resnet", "densenet", "inception", "shapes", "mobilenet")


def family_cards() -> dict[str, FamilyCard]:
    """The card of every family in FAMILY_ORDER, with its registered variants (smallest first).

    Returns:
        {family: FamilyCard}; every architecture of tl_core.models.registry.ARCHS appears in exactly one card.
    """
    cards: dict[str, FamilyCard] = {}
    for family in FAMILY_ORDER:
        title, tab, points = _CARD_TEXT[family]
        variants = tuple(name for name, spec in ARCHS.items() if spec.family == family)
        cards[family] = FamilyCard(family, title, tab, points, variants)
    return cards


IMAGENET_NOTE = (
    "torchvision's pretrained models were trained on ImageNet. ImageNet has about 14 million hand-annotated "
    "images (labelled through crowdsourcing) in about 20,000 categories; the pretrained models use the subset with "
    "1,000 categories from the annual ImageNet Large Scale Visual Recognition Challenge (ILSVRC), where AlexNet "
    "(2012) and ResNet (2015) won.")


# ---- the measured summary ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerRow:
    """One layer of a model, measured for one image."""

    name: str  # the module's path in the model, for example "features.0"
    kind: str  # the module's class, for example "Conv2d"
    group: str  # its layer group (tl_core.models.networks.group_map); "" for parameter-free glue outside every group
    output_shape: tuple[int, ...]  # output for one image, without the batch dimension, e.g. (64, 55, 55)
    params: int  # parameters the module itself owns
    macs: int  # multiply-accumulates for one image (Conv2d and Linear only; 0 for every other layer)
    calls: int  # how many times one forward pass calls it (ResNet re-uses one ReLU inside each block)
    train_only: bool  # runs only in training mode (Inception's auxiliary classifier)


@dataclass(frozen=True)
class ArchSummary:
    """A whole architecture, measured on the meta device at one input size."""

    arch: str  # registry key
    input_size: int  # side of the square input the summary was measured at
    num_classes: int  # outputs of the head
    rows: tuple[LayerRow, ...]  # layers in the order the forward pass first calls them; train-only ones last
    params: int  # all parameters (the sum of the rows')
    buffer_elements: int  # elements of the buffers (BatchNorm running statistics and step counters)
    size_mb: float  # parameters plus buffers at their dtypes (float32), in MB of 2**20 bytes like torchvision's
    macs: int  # multiply-accumulates for one image at inference (train-only layers excluded)
    macs_train_only: int  # extra MACs of the layers that run only in training (Inception's aux classifier)
    depth: int  # number of Conv2d and Linear layers used at inference
    groups: tuple[str, ...]  # the architecture's layer groups in forward order

    def params_by_group(self) -> dict[str, int]:
        """Parameters of each layer group, in forward order (every group of the architecture, even if empty)."""
        out = {g: 0 for g in self.groups}
        for r in self.rows:
            if r.params:
                out[r.group] += r.params
        return out


def default_num_classes(arch: str) -> int:
    """The head size a summary uses by default: 1000 for ImageNet models, the source model's classes for shapesnet."""
    if get_spec(arch).torchvision:
        return IMAGENET_CLASSES
    return len(_source_manifest()["classes"])


def _source_manifest() -> dict[str, Any]:
    from tl_core.models.source import MANIFEST_FILE

    return json.loads(MANIFEST_FILE.read_text())


def build_meta_model(arch: str, num_classes: int | None = None) -> nn.Module:
    """The architecture built on the meta device: every parameter has a shape and a dtype but no memory.

    Args:
        arch: A registry key.
        num_classes: Outputs of the head; None for default_num_classes(arch).

    Returns:
        The model, in eval mode.
    """
    import torch

    from tl_core.models.networks import build_model

    with torch.device("meta"):
        model = build_model(arch, num_classes or default_num_classes(arch))
    return model.eval()


def _module_groups(model: nn.Module, arch: str) -> dict[int, str]:
    """Layer group of every module, by id: the stage it sits in, else the group of its own parameters."""
    from tl_core.models.networks import group_map, stages

    owner: dict[int, str] = {}
    for stage in stages(model, arch):
        for m in stage.module.modules():
            owner.setdefault(id(m), stage.group or "")
    by_param = group_map(model, arch)
    for name, m in model.named_modules():
        own = [p for p, _ in m.named_parameters(recurse=False)]
        if own:
            owner[id(m)] = by_param[f"{name}.{own[0]}" if name else own[0]]
    return owner


@functools.lru_cache(maxsize=64)
def summarize(arch: str, input_size: int | None = None, num_classes: int | None = None) -> ArchSummary:
    """Measure an architecture on the meta device: layer table, totals and MACs, without allocating weights.

    One eval-mode forward pass on a (1, 3, S, S) meta tensor records every leaf module's output shape and MACs.
    Layers with parameters that this pass skips (Inception's auxiliary classifier) are measured by a second,
    training-mode pass (batch of 2, as training BatchNorm needs) and marked `train_only`. Cached per arguments;
    the result is immutable.

    Args:
        arch: A registry key.
        input_size: Side of the square input; None for the architecture's own (224, Inception 299, shapesnet 32).
        num_classes: Outputs of the head; None for default_num_classes(arch).

    Returns:
        The ArchSummary.

    Raises:
        ValueError: If the architecture is unknown or the input is too small for it.
    """
    import torch
    from torch import nn

    spec = get_spec(arch)
    size = spec.input_size if input_size is None else int(input_size)
    n_cls = default_num_classes(arch) if num_classes is None else int(num_classes)
    if size < 1 or n_cls < 1:
        raise ValueError(f"input_size and num_classes must be at least 1; got {size} and {n_cls}.")
    model = build_meta_model(arch, n_cls)
    groups = _module_groups(model, arch)
    names = {id(m): n for n, m in model.named_modules()}
    measured: dict[int, dict[str, Any]] = {}  # id(module) -> shape, macs, calls; insertion order = call order
    training = [False]

    def hook(module: nn.Module, _inputs: tuple, output: Any) -> None:
        out = output if isinstance(output, torch.Tensor) else next(t for t in output if isinstance(t, torch.Tensor))
        per_image = tuple(out.shape[1:])  # drop the batch dimension
        macs = 0
        if isinstance(module, nn.Conv2d):
            k_h, k_w = module.kernel_size
            macs = out[0].numel() * (module.in_channels // module.groups) * k_h * k_w
        elif isinstance(module, nn.Linear):
            macs = out[0].numel() * module.in_features
        rec = measured.get(id(module))
        if rec is None:
            measured[id(module)] = {"shape": per_image, "macs": macs, "calls": 1, "train_only": training[0]}
        elif not training[0]:
            rec["macs"] += macs
            rec["calls"] += 1

    tracked = [m for m in model.modules()
               if not any(True for _ in m.children()) or any(True for _ in m.parameters(recurse=False))]
    handles = [m.register_forward_hook(hook) for m in tracked]
    try:
        with torch.no_grad():
            try:
                model(torch.empty(1, 3, size, size, device="meta"))  # (1, 3, S, S)
            except RuntimeError as exc:
                raise ValueError(f"{arch} cannot take a {size}×{size} input ({exc}). Use a larger input size, "
                                 f"such as its own {spec.input_size}.") from None
            skipped = [m for m in tracked if id(m) not in measured and any(True for _ in m.parameters())]
            if skipped:
                training[0] = True
                model.train()
                model(torch.empty(2, 3, size, size, device="meta"))  # (2, 3, S, S): training BatchNorm needs 2
                model.eval()
    finally:
        for h in handles:
            h.remove()

    def row(m: nn.Module, rec: dict[str, Any] | None) -> LayerRow:
        rec = rec or {"shape": (), "macs": 0, "calls": 0, "train_only": False}
        return LayerRow(name=names[id(m)], kind=type(m).__name__, group=groups.get(id(m), ""),
                        output_shape=rec["shape"], params=sum(p.numel() for p in m.parameters(recurse=False)),
                        macs=rec["macs"], calls=rec["calls"], train_only=rec["train_only"])

    by_id = {id(m): m for m in tracked}
    rows = [row(by_id[i], rec) for i, rec in measured.items() if not rec["train_only"]]
    rows += [row(by_id[i], rec) for i, rec in measured.items() if rec["train_only"]]
    rows += [row(m, None) for m in tracked if id(m) not in measured]
    tensors = [*model.parameters(), *model.buffers()]
    return ArchSummary(
        arch=arch, input_size=size, num_classes=n_cls, rows=tuple(rows),
        params=sum(r.params for r in rows), buffer_elements=sum(b.numel() for b in model.buffers()),
        size_mb=sum(t.numel() * t.element_size() for t in tensors) / 2**20,
        macs=sum(r.macs for r in rows if not r.train_only),
        macs_train_only=sum(r.macs for r in rows if r.train_only),
        depth=sum(1 for r in rows if r.kind in ("Conv2d", "Linear") and not r.train_only and r.calls),
        groups=spec.groups)



def format_macs(macs: int) -> str:
    """MACs in G (from 0.1 G up) or M, to three significant digits, e.g. "15.5 G" or "3.98 M"."""
    return f"{macs / 1e9:.3g} G" if macs >= 1e8 else f"{macs / 1e6:.3g} M"


def format_count(n: int) -> str:
    """A count to three significant digits with a k/M suffix, e.g. "138 M", "98.5 k", "512"."""
    if n >= 1e6:
        return f"{n / 1e6:.3g} M"
    return f"{n / 1e3:.3g} k" if n >= 1e3 else str(n)

# ---- the current plan, applied to any architecture ------------------------------------------------------------
def plan_on_arch(plan: Plan, arch: str) -> Plan:
    """The plan itself if it is for `arch`; otherwise its strategy applied to `arch`.

    Freezing is carried over by proportion: a plan that freezes 3 of shapesnet's 4 body groups freezes 4 of
    resnet18's 5 (at least one, and at least one body group left to fine-tune); an early cut moves to the same
    relative depth. Learning rate, discriminative decay, head multiplier and the other settings are kept.

    Args:
        plan: The current plan.
        arch: A registry key.

    Returns:
        A validated Plan for `arch`.
    """
    if plan.arch == arch:
        return plan
    old_body, new_body = plan.spec.body_groups, get_spec(arch).body_groups

    def same_share(k_old: int) -> int:
        """k_old of the old body's groups, scaled to the new body: from 1 to all but one of its groups."""
        return min(max(round(k_old / len(old_body) * len(new_body)), 1), max(len(new_body) - 1, 1))

    kw: dict[str, Any] = {}
    if plan.strategy == "finetune_top":
        kw["freeze_first"] = same_share(len([g for g in old_body if g in plan.frozen]))
    elif plan.strategy == "early_classifier" and plan.cut_after in old_body:
        kw["cut_after"] = new_body[same_share(old_body.index(plan.cut_after) + 1) - 1]
    last_body = plan.groups[-2] if len(plan.groups) > 1 else None
    decay = plan.lr_mult.get(last_body) if last_body else None
    if decay is not None and 0 < decay <= 1:
        kw["lr_decay"] = decay
    kw["head_mult"] = plan.lr_mult.get("head", 1.0)
    skip = {"arch", "strategy", "frozen", "cut_after", "lr_mult"}
    overrides = {f.name: getattr(plan, f.name) for f in fields(plan) if f.name not in skip}
    return make_plan(plan.strategy, arch=arch, **kw, **overrides)


def plan_note(plan: Plan, arch: str) -> str:
    """One sentence saying whose plan a diagram of `arch` shows (empty when the plan is for `arch` itself)."""
    if plan.arch == arch:
        return ""
    return (f"Your current plan is for {plan.arch}. Shown here: its strategy, "
            f"'{STRATEGIES[plan.strategy].label}', applied to {arch}.")


def _roles(summary: ArchSummary, plan: Plan) -> dict[str, str]:
    return {r.group: r.role for r in layer_roles(plan_on_arch(plan, summary.arch))}


def layer_table(summary: ArchSummary, plan: Plan) -> list[dict[str, Any]]:
    """The summary's layers as table rows, each marked with what the plan does to it.

    Args:
        summary: From summarize().
        plan: The current plan (applied to the summary's architecture if it is for another one).

    Returns:
        One dict per layer: Layer, Type, Group, Output shape (C×H×W), Parameters, MACs, Role, Trains (the layer
        has parameters and the plan updates them).
    """
    roles = _roles(summary, plan)
    out = []
    for r in summary.rows:
        role = roles.get(r.group, NO_WEIGHTS)
        kind = r.kind + (f" (×{r.calls})" if r.calls > 1 else "") + (" (training only)" if r.train_only else "")
        out.append({"Layer": r.name, "Type": kind, "Group": r.group or "—",
                    "Output shape": "×".join(str(d) for d in r.output_shape) or "—", "Parameters": r.params,
                    "MACs": r.macs, "Role": role, "Trains": bool(r.params) and role in TRAINING_ROLES})
    return out


def group_table(summary: ArchSummary, plan: Plan) -> list[dict[str, Any]]:
    """Parameters per layer group with the plan's role for each, in forward order.

    Returns:
        One dict per group: Group, Parameters, Share (fraction of all parameters), Role, Trains.
    """
    roles = _roles(summary, plan)
    return [{"Group": g, "Parameters": n, "Share": n / summary.params, "Role": roles[g],
             "Trains": roles[g] in TRAINING_ROLES}
            for g, n in summary.params_by_group().items()]


def trainable_params(summary: ArchSummary, plan: Plan) -> int:
    """How many of the summary's parameters the plan trains (cut-off and frozen groups excluded).

    The head is counted at its size in this architecture; after an early cut ("Classifier on the initial layers")
    the real new head sits on fewer channels and is smaller.
    """
    return sum(row["Parameters"] for row in group_table(summary, plan) if row["Trains"])



def group_takeaway(summary: ArchSummary, plan: Plan) -> str:
    """One sentence for the parameters-per-group chart: where the weights sit and how many the plan trains."""
    rows = group_table(summary, plan)
    big = max(rows, key=lambda r: r["Parameters"])
    n_train = trainable_params(summary, plan)
    return (f"{big['Group']} holds {big['Share']:.0%} of {summary.arch}'s {summary.params:,} parameters; the plan "
            f"trains {n_train:,} of them ({n_train / summary.params:.1%}).")

# ---- the comparison of families ------------------------------------------------------------------------------
def comparison_table() -> list[dict[str, Any]]:
    """Every registered architecture side by side, in registry order.

    Parameters and ImageNet top-1 accuracy come from torchvision's own weights metadata (DEFAULT weights,
    `meta["num_params"]` and `meta["_metrics"]["ImageNet-1K"]["acc@1"]`); MACs and depth are measured by
    summarize(). For shapesnet the parameters are the shipped source model's and the accuracy is its source-test
    accuracy from assets/source_model.json, labelled as not ImageNet.

    Returns:
        One dict per architecture: Architecture, Family, Year, Parameters, MACs (G), Depth, Input, Top-1 %,
        Accuracy measured on.
    """
    import torchvision

    rows = []
    for arch, spec in ARCHS.items():
        s = summarize(arch)
        if spec.torchvision:
            meta = torchvision.models.get_model_weights(arch).DEFAULT.meta
            params, top1 = int(meta["num_params"]), float(meta["_metrics"]["ImageNet-1K"]["acc@1"])
            on = "ImageNet-1K validation (torchvision's DEFAULT weights)"
        else:
            manifest = _source_manifest()
            params, top1 = int(manifest["num_params"]), 100.0 * float(manifest["source_test_accuracy"])
            on = (f"shapes-world source test set, {manifest['source_test_images']} images, "
                  f"{len(manifest['classes'])} classes (NOT ImageNet)")
        rows.append({"Architecture": arch, "Family": spec.family, "Year": spec.year, "Parameters": params,
                     "MACs (G)": s.macs / 1e9, "Depth": s.depth, "Input": f"{s.input_size}×{s.input_size}",
                     "Top-1 %": top1, "Accuracy measured on": on})
    return rows

