"""Model registry: the built-in ShapesNet and torchvision's families, split into named layer groups.

Every architecture is described once, as an ordered list of *stages*: modules whose composition is the
model's forward pass (in eval mode), each tagged with the layer group its parameters belong to. That one
description gives the map from parameter name to group (freezing, per-group LRs, the gradient heatmap),
the cut points for "a classifier on the initial layers", and the frozen prefix the trainer can cache.
torchvision models are built with torchvision's own `get_model`; nothing here re-implements them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from tl_core.models.registry import ArchSpec, get_spec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


# ---- stages ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """One step of the forward pass."""

    name: str  # a readable name, unique within the model
    group: str | None  # the layer group of its parameters; None for parameter-free glue (pooling, flatten)
    module: nn.Module


class _InceptionInput(nn.Module):
    """torchvision's `transform_input` for Inception v3, as a module (re-normalises ImageNet inputs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W)
        ch0 = x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        ch1 = x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        ch2 = x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        return torch.cat((ch0, ch1, ch2), 1)


def _pool() -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _split_at_pools(features: nn.Sequential, names: tuple[str, ...]) -> list[Stage]:
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


def stages(model: nn.Module, arch: str) -> list[Stage]:
    """The model's forward pass as named stages (eval-mode semantics; Inception's aux head is a side branch).

    Args:
        model: A model built by `build_model` for `arch`.
        arch: Its registry key.

    Returns:
        Stages in forward order; composing their modules reproduces `model(x)` in eval mode.
    """
    family = get_spec(arch).family
    m = model
    if family == "shapes":
        return [Stage(n, n, getattr(m, n)) for n in ("block1", "block2", "block3", "block4")] + [
            Stage("pool", None, m.pool), Stage("head", "head", m.head)]
    if family == "resnet":
        return [Stage("stem", "stem", nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool))] + [
            Stage(n, n, getattr(m, n)) for n in ("layer1", "layer2", "layer3", "layer4")] + [
            Stage("pool", None, nn.Sequential(m.avgpool, nn.Flatten())), Stage("head", "head", m.fc)]
    if family in ("vgg", "alexnet"):
        names = ("conv1", "conv2", "conv3_5") if family == "alexnet" else tuple(f"block{i}" for i in range(1, 6))
        c = m.classifier
        return _split_at_pools(m.features, names) + [
            Stage("pool", None, nn.Sequential(m.avgpool, nn.Flatten())),
            Stage("fc6_7", "fc6_7", nn.Sequential(*list(c)[:6])), Stage("head", "head", c[6])]
    if family == "densenet":
        f = m.features
        out = [Stage("stem", "stem", nn.Sequential(f.conv0, f.norm0, f.relu0, f.pool0))]
        for i in range(1, 5):
            parts = [getattr(f, f"denseblock{i}")] + ([getattr(f, f"transition{i}")] if i < 4 else [f.norm5])
            out.append(Stage(f"block{i}", f"block{i}", nn.Sequential(*parts)))
        return out + [Stage("pool", None, nn.Sequential(nn.ReLU(), _pool())), Stage("head", "head", m.classifier)]
    if family == "inception":
        pre = [_InceptionInput()] if m.transform_input else []
        stem = [m.Conv2d_1a_3x3, m.Conv2d_2a_3x3, m.Conv2d_2b_3x3, m.maxpool1, m.Conv2d_3b_1x1, m.Conv2d_4a_3x3,
                m.maxpool2]
        return [Stage("stem", "stem", nn.Sequential(*pre, *stem)),
                Stage("mixed5", "mixed5", nn.Sequential(m.Mixed_5b, m.Mixed_5c, m.Mixed_5d)),
                Stage("mixed6", "mixed6", nn.Sequential(m.Mixed_6a, m.Mixed_6b, m.Mixed_6c, m.Mixed_6d, m.Mixed_6e)),
                Stage("mixed7", "mixed7", nn.Sequential(m.Mixed_7a, m.Mixed_7b, m.Mixed_7c)),
                Stage("pool", None, nn.Sequential(m.avgpool, m.dropout, nn.Flatten())),
                Stage("head", "head", m.fc)]
    if family == "mobilenet":
        f, c = m.features, m.classifier
        return [Stage("stem", "stem", f[0]), Stage("blocks1", "blocks1", f[1:4]),
                Stage("blocks2", "blocks2", f[4:9]), Stage("blocks3", "blocks3", f[9:]),
                Stage("pool", None, nn.Sequential(m.avgpool, nn.Flatten())),
                Stage("fc", "fc", nn.Sequential(*list(c)[:3])), Stage("head", "head", c[3])]
    raise ValueError(f"No stage map for family {family!r}")


def _side_branches(model: nn.Module, arch: str) -> dict[str, nn.Module]:
    """Modules outside the main forward chain, by group (Inception's auxiliary classifier)."""
    if get_spec(arch).family == "inception" and getattr(model, "AuxLogits", None) is not None:
        return {"aux": model.AuxLogits}
    return {}


def group_map(model: nn.Module, arch: str) -> dict[str, str]:
    """The one map from parameter name to layer group, for every parameter of the model.

    Raises:
        RuntimeError: If some parameter belongs to no group (a bug in the stage map).
    """
    owner: dict[int, str] = {}
    for st in stages(model, arch):
        for p in st.module.parameters():
            if st.group is None:
                raise RuntimeError(f"stage {st.name} has parameters but no group")
            owner[id(p)] = st.group
    for group, module in _side_branches(model, arch).items():
        for p in module.parameters():
            owner[id(p)] = group
    mapping = {name: owner.get(id(p), "") for name, p in model.named_parameters()}
    missing = [n for n, g in mapping.items() if not g]
    if missing:
        raise RuntimeError(f"{arch}: parameters without a layer group: {missing[:3]}")
    return mapping


def params_by_group(model: nn.Module, arch: str) -> dict[str, list[nn.Parameter]]:
    """Parameters of each group, in the architecture's group order (groups the model lacks are omitted)."""
    mapping = group_map(model, arch)
    named = dict(model.named_parameters())
    out: dict[str, list[nn.Parameter]] = {}
    for g in get_spec(arch).groups:
        ps = [named[n] for n, gg in mapping.items() if gg == g]
        if ps:
            out[g] = ps
    return out


def modules_by_group(model: nn.Module, arch: str) -> dict[str, list[nn.Module]]:
    """Top-level modules of each group (for BatchNorm policies and eval/train switching)."""
    out: dict[str, list[nn.Module]] = {}
    for st in stages(model, arch):
        if st.group is not None:
            out.setdefault(st.group, []).append(st.module)
    for group, module in _side_branches(model, arch).items():
        out.setdefault(group, []).append(module)
    return out


# ---- heads -----------------------------------------------------------------------------------------
HEAD_PATHS: dict[str, tuple[str, ...]] = {
    "shapes": ("head",), "resnet": ("fc",), "vgg": ("classifier.6",), "alexnet": ("classifier.6",),
    "densenet": ("classifier",), "inception": ("fc", "AuxLogits.fc"), "mobilenet": ("classifier.3",),
}


def get_classifier(model: nn.Module, arch: str) -> nn.Linear:
    """The final classification layer, found by name (never by position in the parameter list)."""
    return model.get_submodule(HEAD_PATHS[get_spec(arch).family][0])


def replace_head(model: nn.Module, arch: str, num_classes: int) -> nn.Module:
    """Swap every classifier layer (Inception's auxiliary one too) for a fresh one with `num_classes` outputs.

    Args:
        model: The model; changed in place.
        arch: Its registry key.
        num_classes: Outputs of the new head.

    Returns:
        The same model, for chaining.
    """
    for path in HEAD_PATHS[get_spec(arch).family]:
        if path.startswith("AuxLogits") and getattr(model, "AuxLogits", None) is None:
            continue
        parent_path, _, leaf = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
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


def build_model(arch: str, num_classes: int, *, aux_logits: bool = True) -> nn.Module:
    """A freshly initialised model with a head of `num_classes` outputs.

    torchvision models come from `torchvision.models.get_model(name, weights=None)`, honouring the
    default device context (so `with torch.device("meta"):` builds without allocating weights).

    Args:
        arch: A registry key.
        num_classes: Outputs of the classifier.
        aux_logits: Inception only: keep the auxiliary classifier.

    Returns:
        The model, in train mode.
    """
    spec: ArchSpec = get_spec(arch)
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1; got {num_classes}.")
    if not spec.torchvision:
        return ShapesNet(num_classes)
    from torchvision.models import get_model

    kwargs: dict = {"weights": None, "num_classes": num_classes}
    if spec.family == "inception":
        kwargs.update(aux_logits=aux_logits, init_weights=True)
    return get_model(arch, **kwargs)


def input_size_for(arch: str, data_size: int, *, aux: bool = False) -> int:
    """The side length images are resized to before entering `arch` (at least the family's minimum).

    Args:
        arch: A registry key.
        data_size: Side length of the images.
        aux: Inception only: its auxiliary classifier trains too, which needs the native 299-pixel input.
    """
    spec = get_spec(arch)
    if not spec.torchvision:
        return data_size
    if spec.family == "inception" and aux:
        return max(data_size, spec.input_size)
    minimum = 80 if spec.family == "inception" else 64
    return max(data_size, minimum)


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


def cut_model(model: nn.Module, arch: str, cut_after: str, num_classes: int, data_size: int) -> nn.Sequential:
    """A classifier on the initial layers: the stages up to `cut_after`, global pooling and a new linear head.

    Args:
        model: A (pretrained) model of `arch`; its modules are shared, not copied.
        arch: Its registry key.
        cut_after: The last group kept.
        num_classes: Outputs of the new head.
        data_size: Input side length, to measure the cut's channel count.

    Returns:
        nn.Sequential with named children: the kept stages, "pool" and "head".
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
    return nn.Sequential(OrderedDict([*((s.name, s.module) for s in kept), ("pool", _pool()),
                                      ("head", nn.Linear(channels, num_classes))]))


def cut_stages(model: nn.Sequential) -> list[Stage]:
    """Stages of a model made by `cut_model` (its children, grouped by name)."""
    return [Stage(n, None if n == "pool" else n, m) for n, m in model.named_children()]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
