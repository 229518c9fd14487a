"""Pretrained parameters per layer group of every registry architecture, measured on the meta device, kept as data.

The decision pages never import torch, yet the quadrant's little-data plan depends on where an architecture keeps
its weights (AlexNet's and VGG's fully connected fc6_7 hold about 90% of them). `BODY_PARAMS` records what
`tl_core.models.summary.summarize` measures on the meta device for the body groups (the head is left out: it is
new, and its size depends on the target's classes); tests/test_arch_summary.py measures every architecture again
and fails when a record drifts from the real model. An architecture without a record is measured on the spot
(that imports torch). Importing this module is cheap and torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from tl_core.models.registry import get_spec

BODY_PARAMS: dict[str, dict[str, int]] = {  # arch -> {body group: parameters}, in forward order
    "shapesnet": {"block1": 464, "block2": 4672, "block3": 18560, "block4": 73984},
    "alexnet": {"conv1": 23296, "conv2": 307392, "conv3_5": 2139008, "fc6_7": 54534144},
    "vgg11": {"block1": 1792, "block2": 73856, "block3": 885248, "block4": 3539968, "block5": 4719616,
              "fc6_7": 119545856},
    "vgg16": {"block1": 38720, "block2": 221440, "block3": 1475328, "block4": 5899776, "block5": 7079424,
              "fc6_7": 119545856},
    "resnet18": {"stem": 9536, "layer1": 147968, "layer2": 525568, "layer3": 2099712, "layer4": 8393728},
    "resnet50": {"stem": 9536, "layer1": 215808, "layer2": 1219584, "layer3": 7098368, "layer4": 14964736},
    "densenet121": {"stem": 9536, "block1": 368320, "block2": 1051776, "block3": 3364096, "block4": 2160128},
    "inception_v3": {"stem": 172672, "mixed5": 818528, "mixed6": 7974656, "aux": 3326696, "mixed7": 12819712},
    "mobilenet_v3_small": {"stem": 464, "blocks1": 10024, "blocks2": 180032, "blocks3": 736488, "fc": 590848},
}


def measure_body_params(arch: str) -> dict[str, int]:
    """Measure the parameters of each body group on the meta device (imports torch; allocates no weights).

    Args:
        arch: A registry key.

    Returns:
        {body group: parameters}, in forward order, head excluded.
    """
    from tl_core.models.summary import summarize

    by_group = summarize(arch).params_by_group()
    return {g: by_group[g] for g in get_spec(arch).body_groups}


def body_params(arch: str) -> dict[str, int]:
    """The parameters of each body group: the record, or a fresh measurement when there is none.

    Raises:
        ValueError: If the architecture is unknown.
    """
    get_spec(arch)
    return dict(BODY_PARAMS[arch]) if arch in BODY_PARAMS else measure_body_params(arch)


@dataclass(frozen=True)
class Share:
    """How many of an architecture's pretrained body weights a set of groups holds."""

    arch: str  # registry key
    groups: tuple[str, ...]  # the groups counted
    params: int  # their parameters
    body: int  # all body parameters (head excluded)

    @property
    def fraction(self) -> float:
        """params / body, from 0 to 1."""
        return self.params / self.body if self.body else 0.0


def share_of(arch: str, groups: tuple[str, ...] | list[str]) -> Share:
    """The share of an architecture's pretrained body weights that `groups` hold (the head is not counted).

    Args:
        arch: A registry key.
        groups: Layer groups of that architecture; "head" and groups outside the body count zero.

    Returns:
        The Share.
    """
    counts = body_params(arch)
    chosen = tuple(g for g in groups if g in counts)
    return Share(arch, chosen, sum(counts[g] for g in chosen), sum(counts.values()))
