"""Model registry: the built-in ShapesNet and torchvision's families, split into named layer groups.

Every family is described once, as data (`LAYOUTS`): an ordered list of *stages*, modules whose composition is
the model's forward pass (in eval mode), each tagged with the layer group its parameters belong to, plus its
heads, its side branches (Inception's auxiliary classifier) and its builder arguments. That one description gives
the map from parameter name to group (freezing, per-group LRs, the gradient heatmap), the cut points for "a
classifier on the initial layers", and the frozen prefix the trainer can cache. `build_model` is the one builder;
torchvision models come from torchvision's own `get_model`; nothing here re-implements them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tl_core.models.registry import ArchSpec, get_spec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_CLASSES = 1000  # outputs of the ImageNet heads


# ---- the built-in network ------------------------------------------------------------------------
def _conv_bn_relu(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                               nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ShapesNet(nn.Module):
    """A small CNN for 32×32 images: four conv-BN-ReLU blocks, global average pooling and a linear head."""

    def __init__(self, num_classes: int = 6, widths: tuple[int, int, int, int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        c1, c2, c3, c4 = widths
        self.block1 = _conv_bn_relu(3, c1, pool=True)  # (B, c1, 16, 16)
        self.block2 = _conv_bn_relu(c1, c2, pool=True)  # (B, c2, 8, 8)
        self.block3 = _conv_bn_relu(c2, c3, pool=True)  # (B, c3, 4, 4)
        self.block4 = _conv_bn_relu(c3, c4, pool=False)  # (B, c4, 4, 4)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, c4)
        self.head = nn.Linear(c4, num_classes)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, H, W)
        return self.head(self.pool(self.block4(self.block3(self.block2(self.block1(x))))))


# ---- layouts: each family's stages, declared once as data -------------------------------------------
@dataclass(frozen=True)
class Stage:
    """One step of the forward pass."""

    name: str  # a readable name, unique within the model
    group: str | None  # the layer group of its parameters; None for parameter-free glue (pooling, flatten)
    module: nn.Module


@dataclass(frozen=True)
class StageDecl:
    """One stage of a family's forward pass, as data: its name, its layer group and the modules that make it.

    A part is a submodule path of the model ("conv1", "features.conv0"), a slice or an index of a Sequential
    ("features[1:4]", "classifier[:6]", "classifier[6]"), or, after a colon, a piece of glue the model computes
    functionally: ":flatten", ":relu", ":gap" (global average pooling and flatten) or ":transform_input"
    (Inception's input re-normalisation, present only when the model was built with transform_input=True).
    """

    name: str  # unique within the model
    group: str | None  # layer group of its parameters; None for glue without parameters
    parts: tuple[str, ...]  # see above; one part is the module itself, several are wrapped in an nn.Sequential


@dataclass(frozen=True)
class PooledBlocks:
    """A Sequential split after each MaxPool2d into consecutive stages (VGG's and AlexNet's `features`)."""

    path: str  # the Sequential's submodule path
    names: tuple[str, ...]  # one stage (and layer group) per pooled block, in order


@dataclass(frozen=True)
class Layout:
    """How one family's models split into layer groups: the forward pass as stages, the heads, side branches,
    and the family's builder arguments. Adding an architecture means one registry entry (tl_core.models.registry)
    and, for a new family, one entry here."""

    stages: tuple[StageDecl | PooledBlocks, ...]  # the eval-mode forward pass, in order
    heads: tuple[str, ...]  # paths of the classification layers to replace; the first is the main head
    side: tuple[tuple[str, str], ...] = ()  # (group, module path) of branches outside the chain
    side_loss_weight: float = 0.0  # weight of a side branch's loss while it trains
    side_arg: str | None = None  # torchvision builder argument that keeps (True) or drops the side branches
    init_arg: str | None = None  # torchvision builder argument that (re-)initialises the weights
    imagenet_args: tuple[tuple[str, Any], ...] = ()  # builder arguments torchvision uses with its ImageNet weights
    min_input: int = 64  # smallest input side the trainer feeds (the stem must leave something to pool)


def _s(name: str, *parts: str, group: str | None = "") -> StageDecl:
    """A stage declaration; the group defaults to the stage's name, the parts to the submodule of that name."""
    return StageDecl(name, name if group == "" else group, parts or (name,))


_POOL = _s("pool", "avgpool", ":flatten", group=None)
LAYOUTS: dict[str, Layout] = {
    "shapes": Layout(
        stages=(_s("block1"), _s("block2"), _s("block3"), _s("block4"), _s("pool", group=None), _s("head")),
        heads=("head",), min_input=1),
    "resnet": Layout(
        stages=(_s("stem", "conv1", "bn1", "relu", "maxpool"), _s("layer1"), _s("layer2"), _s("layer3"),
                _s("layer4"), _POOL, _s("head", "fc")),
        heads=("fc",)),
    "vgg": Layout(
        stages=(PooledBlocks("features", ("block1", "block2", "block3", "block4", "block5")), _POOL,
                _s("fc6_7", "classifier[:6]"), _s("head", "classifier[6]")),
        heads=("classifier.6",)),
    "alexnet": Layout(
        stages=(PooledBlocks("features", ("conv1", "conv2", "conv3_5")), _POOL, _s("fc6_7", "classifier[:6]"),
                _s("head", "classifier[6]")),
        heads=("classifier.6",)),
    "densenet": Layout(
        stages=(_s("stem", "features.conv0", "features.norm0", "features.relu0", "features.pool0"),
                _s("block1", "features.denseblock1", "features.transition1"),
                _s("block2", "features.denseblock2", "features.transition2"),
                _s("block3", "features.denseblock3", "features.transition3"),
                _s("block4", "features.denseblock4", "features.norm5"),
                _s("pool", ":relu", ":gap", group=None), _s("head", "classifier")),
        heads=("classifier",)),
    # Inception v3 (Szegedy et al., 2016): an auxiliary classifier branches off after Mixed_6e; while it trains its
    # loss counts 0.4 times (torchvision's reference training and the PyTorch fine-tuning tutorial use 0.4).
    "inception": Layout(
        stages=(_s("stem", ":transform_input", "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
                   "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2"),
                _s("mixed5", "Mixed_5b", "Mixed_5c", "Mixed_5d"),
                _s("mixed6", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"),
                _s("mixed7", "Mixed_7a", "Mixed_7b", "Mixed_7c"),
                _s("pool", "avgpool", "dropout", ":flatten", group=None), _s("head", "fc")),
        heads=("fc", "AuxLogits.fc"), side=(("aux", "AuxLogits"),), side_loss_weight=0.4, side_arg="aux_logits",
        init_arg="init_weights", imagenet_args=(("transform_input", True),),
        min_input=80),  # at 80 px Mixed_7c still has a 1x1 map; 75 is torchvision's floor for eval
    "mobilenet": Layout(
        stages=(_s("stem", "features[0]"), _s("blocks1", "features[1:4]"), _s("blocks2", "features[4:9]"),
                _s("blocks3", "features[9:]"), _POOL, _s("fc", "classifier[:3]"), _s("head", "classifier[3]")),
        heads=("classifier.3",)),
}
HEAD_PATHS: dict[str, tuple[str, ...]] = {family: layout.heads for family, layout in LAYOUTS.items()}


def layout_for(arch: str) -> Layout:
    """The stage layout of an architecture's family.

    Raises:
        ValueError: If the architecture is unknown or its family has no layout.
    """
    family = get_spec(arch).family
    if family not in LAYOUTS:
        raise ValueError(f"No stage layout for family {family!r}; add one to tl_core.models.networks.LAYOUTS.")
    return LAYOUTS[family]


class _InceptionInput(nn.Module):
    """torchvision's `transform_input` for Inception v3, as a module (re-normalises ImageNet inputs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W)
        ch0 = x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        ch1 = x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        ch2 = x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        return torch.cat((ch0, ch1, ch2), 1)


def _pool() -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


_GLUE = {":flatten": nn.Flatten, ":relu": nn.ReLU, ":gap": _pool}


def _part(model: nn.Module, part: str) -> nn.Module | None:
    """The module a StageDecl part names (None for an absent optional part)."""
    if part in _GLUE:
        return _GLUE[part]()
    if part == ":transform_input":
        return _InceptionInput() if getattr(model, "transform_input", False) else None
    path, bracket, index = part.partition("[")
    if not bracket:
        return model.get_submodule(part)
    seq = model.get_submodule(path)
    index = index.rstrip("]")
    if ":" not in index:
        return seq[int(index)]
    lo, hi = (int(v) if v else None for v in index.split(":"))
    return seq[lo:hi]


def _pooled_blocks(features: nn.Sequential, names: tuple[str, ...]) -> list[Stage]:
    """Split a VGG/AlexNet `features` Sequential after each MaxPool2d, one stage per name."""
    chunks: list[list[nn.Module]] = [[]]
    for layer in features:
        chunks[-1].append(layer)
        if isinstance(layer, nn.MaxPool2d):
            chunks.append([])
    chunks = [c for c in chunks if c]
    if len(chunks) != len(names):
        raise RuntimeError(f"expected {len(names)} pooled blocks, found {len(chunks)}")
    return [Stage(n, n, nn.Sequential(*c)) for n, c in zip(names, chunks)]


class CutModel(nn.Sequential):
    """A classifier on the initial layers (see `cut_model`): the kept stages, "pool" and "head", by name."""


def stages(model: nn.Module, arch: str) -> list[Stage]:
    """The model's forward pass as named stages (eval-mode semantics; Inception's aux head is a side branch).

    Args:
        model: A model built by `build_model` for `arch`, or a CutModel made from one.
        arch: Its registry key.

    Returns:
        Stages in forward order; composing their modules reproduces `model(x)` in eval mode (and in train mode,
        except for side branches).
    """
    if isinstance(model, CutModel):
        return [Stage(n, None if n == "pool" else n, m) for n, m in model.named_children()]
    out: list[Stage] = []
    for decl in layout_for(arch).stages:
        if isinstance(decl, PooledBlocks):
            out += _pooled_blocks(model.get_submodule(decl.path), decl.names)
            continue
        parts = [m for m in (_part(model, p) for p in decl.parts) if m is not None]
        out.append(Stage(decl.name, decl.group, parts[0] if len(parts) == 1 else nn.Sequential(*parts)))
    return out


def side_branches(model: nn.Module, arch: str) -> dict[str, nn.Module]:
    """Modules outside the main forward chain, by group (Inception's auxiliary classifier, when it has one)."""
    if isinstance(model, CutModel):
        return {}
    out: dict[str, nn.Module] = {}
    for group, path in layout_for(arch).side:
        module = getattr(model, path, None)
        if module is not None:
            out[group] = module
    return out


@dataclass
class GroupedView:
    """A model seen through its layer groups: the one walk from stages to parameters and modules per group."""

    chain: list[Stage]  # the forward pass as stages
    side: dict[str, nn.Module]  # side branches outside the chain, by group
    params: dict[str, list[nn.Parameter]]  # group -> its parameters, in the architecture's group order
    modules: dict[str, list[nn.Module]]  # group -> its top-level modules (stages and side branches)

    @property
    def groups(self) -> tuple[str, ...]:
        """Groups that hold parameters, in order."""
        return tuple(self.params)


def grouped_view(model: nn.Module, arch: str) -> GroupedView:
    """Parameters and modules of every layer group of a model (a CutModel too).

    Args:
        model: A model built by `build_model` for `arch` (or cut from one by `cut_model`).
        arch: Its registry key.

    Returns:
        The GroupedView. Groups the model lacks (an early cut's dropped groups, a missing aux head) are omitted.

    Raises:
        RuntimeError: If a stage with parameters has no group (a bug in the layout).
    """
    chain, side = stages(model, arch), side_branches(model, arch)
    params: dict[str, list[nn.Parameter]] = {}
    modules: dict[str, list[nn.Module]] = {}
    for st in chain:
        if st.group is None:
            if any(True for _ in st.module.parameters()):
                raise RuntimeError(f"stage {st.name} has parameters but no group")
            continue
        params.setdefault(st.group, []).extend(st.module.parameters())
        modules.setdefault(st.group, []).append(st.module)
    for group, module in side.items():
        params.setdefault(group, []).extend(module.parameters())
        modules.setdefault(group, []).append(module)
    order = {g: i for i, g in enumerate(get_spec(arch).groups)}
    ordered = sorted(params, key=lambda g: order.get(g, len(order)))
    return GroupedView(chain, side, {g: params[g] for g in ordered if params[g]}, modules)


def group_map(model: nn.Module, arch: str) -> dict[str, str]:
    """The one map from parameter name to layer group, for every parameter of the model.

    Raises:
        RuntimeError: If some parameter belongs to no group (a bug in the layout).
    """
    owner = {id(p): g for g, ps in grouped_view(model, arch).params.items() for p in ps}
    mapping = {name: owner.get(id(p), "") for name, p in model.named_parameters()}
    missing = [n for n, g in mapping.items() if not g]
    if missing:
        raise RuntimeError(f"{arch}: parameters without a layer group: {missing[:3]}")
    return mapping


def params_by_group(model: nn.Module, arch: str) -> dict[str, list[nn.Parameter]]:
    """Parameters of each group, in the architecture's group order (groups the model lacks are omitted)."""
    return grouped_view(model, arch).params


def modules_by_group(model: nn.Module, arch: str) -> dict[str, list[nn.Module]]:
    """Top-level modules of each group (for BatchNorm policies and eval/train switching)."""
    return grouped_view(model, arch).modules


# ---- heads -----------------------------------------------------------------------------------------
def get_classifier(model: nn.Module, arch: str) -> nn.Linear:
    """The final classification layer, found by name (never by position in the parameter list)."""
    return model.get_submodule(layout_for(arch).heads[0])


def replace_head(model: nn.Module, arch: str, num_classes: int) -> nn.Module:
    """Swap every classifier layer (Inception's auxiliary one too) for a fresh one with `num_classes` outputs.

    Args:
        model: The model; changed in place.
        arch: Its registry key.
        num_classes: Outputs of the new head.

    Returns:
        The same model, for chaining.
    """
    for path in layout_for(arch).heads:
        parent_path, _, leaf = path.rpartition(".")
        try:
            parent = model.get_submodule(parent_path) if parent_path else model
        except AttributeError:  # a side branch the model was built without (aux_logits=False)
            continue
        old = parent.get_submodule(leaf) if leaf.isdigit() else getattr(parent, leaf)
        new = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
        if leaf.isdigit():
            parent[int(leaf)] = new
        else:
            setattr(parent, leaf, new)
    return model


# ---- building ---------------------------------------------------------------------------------------
def list_archs() -> list[str]:
    """Registry keys, the built-in network first."""
    from tl_core.models.registry import ARCHS

    return list(ARCHS)


def build_model(arch: str, num_classes: int = IMAGENET_CLASSES, *, aux_logits: bool = True, imagenet: bool = False,
                init: bool = True, meta: bool = False) -> nn.Module:
    """The one model builder: any registry architecture, with a head of `num_classes` outputs.

    torchvision models come from `torchvision.models.get_model(name, weights=None, ...)` with the family's own
    arguments from its Layout (Inception's aux_logits, init_weights and, for ImageNet weights, transform_input),
    honouring the default device context (so `with torch.device("meta"):` works as well as meta=True).

    Args:
        arch: A registry key.
        num_classes: Outputs of the classifier (default: ImageNet's 1000).
        aux_logits: Keep the side branch (Inception's auxiliary classifier); ignored by other families.
        imagenet: Build it the way torchvision does for its ImageNet weights (Inception: transform_input=True,
            which re-normalises ImageNet-normalised inputs the way those weights expect).
        init: Initialise the weights; pass False when a state dict is loaded next (Inception then skips its slow
            truncated-normal initialisation).
        meta: Build on the meta device: shapes and dtypes only, no memory (load with `assign=True`).

    Returns:
        The model, in train mode.

    Raises:
        ValueError: If the architecture is unknown or num_classes is below 1.
    """
    spec: ArchSpec = get_spec(arch)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a whole number of at least 1; got {num_classes!r}.")
    if meta:
        with torch.device("meta"):
            return build_model(arch, num_classes, aux_logits=aux_logits, imagenet=imagenet, init=init)
    if not spec.torchvision:
        return ShapesNet(num_classes)
    from torchvision.models import get_model

    layout = layout_for(arch)
    kwargs: dict[str, Any] = {"weights": None, "num_classes": num_classes}
    if layout.side_arg:
        kwargs[layout.side_arg] = aux_logits
    if layout.init_arg:
        kwargs[layout.init_arg] = init
    if imagenet:
        kwargs.update(layout.imagenet_args)
    return get_model(arch, **kwargs)


def side_loss_weight(arch: str) -> float:
    """How much a side branch's loss counts while it trains (Inception's auxiliary classifier: 0.4; else 0)."""
    return layout_for(arch).side_loss_weight


def input_size_for(arch: str, data_size: int, *, aux: bool = False) -> int:
    """The side length images are resized to before entering `arch` (at least the family's minimum).

    Args:
        arch: A registry key.
        data_size: Side length of the images.
        aux: A side branch trains too (Inception's auxiliary classifier), which needs the native input size
            (299 pixels): smaller maps leave its 5x5 pooling nothing to pool.
    """
    spec = get_spec(arch)
    if not spec.torchvision:
        return data_size
    layout = layout_for(arch)
    if aux and layout.side:
        return max(data_size, spec.input_size)
    return max(data_size, layout.min_input)


class Preprocess(nn.Module):
    """Resizes [0, 1] images to the architecture's size and, for ImageNet models, normalises them."""

    def __init__(self, size: int, imagenet: bool) -> None:
        super().__init__()
        self.size = size
        self.imagenet = imagenet
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, h, w) -> (B, 3, size, size)
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        if self.imagenet:
            x = (x - self.mean) / self.std
        return x


def preprocess_for(arch: str, data_size: int, *, aux: bool = False) -> Preprocess:
    """The input transform between [0, 1] image tensors and `arch` (see input_size_for)."""
    return Preprocess(input_size_for(arch, data_size, aux=aux), imagenet=get_spec(arch).torchvision)


def cut_model(model: nn.Module, arch: str, cut_after: str, num_classes: int, data_size: int) -> CutModel:
    """A classifier on the initial layers: the stages up to `cut_after`, global pooling and a new linear head.

    Args:
        model: A (pretrained) model of `arch`; its modules are shared, not copied.
        arch: Its registry key.
        cut_after: The last group kept.
        num_classes: Outputs of the new head.
        data_size: Input side length, to measure the cut's channel count.

    Returns:
        A CutModel (an nn.Sequential) with named children: the kept stages, "pool" and "head".
    """
    kept: list[Stage] = []
    for st in stages(model, arch):
        kept.append(st)
        if st.group == cut_after:
            break
    else:
        raise ValueError(f"{arch} has no group {cut_after!r} to cut after.")
    body = nn.Sequential(OrderedDict((s.name, s.module) for s in kept))
    was_training = body.training
    body.eval()
    with torch.no_grad():
        probe = torch.zeros(2, 3, input_size_for(arch, data_size), input_size_for(arch, data_size),
                            device=next(model.parameters()).device)
        channels = body(probe).shape[1]
    body.train(was_training)
    return CutModel(OrderedDict([*((s.name, s.module) for s in kept), ("pool", _pool()),
                                 ("head", nn.Linear(channels, num_classes))]))


def cut_stages(model: CutModel) -> list[Stage]:
    """Stages of a model made by `cut_model` (its children, grouped by name)."""
    return stages(model, "")


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
