"""The architectures the playbook knows, and their layer groups, as plain data (no torch import).

Every architecture declares its layer groups in forward order, from the stem to the head. The same
names drive freezing, per-group learning rates, the rows of the gradient heatmap and the diagrams;
`tl_core.models.networks` maps each parameter of a real model onto one of them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchSpec:
    """What the app needs to know about an architecture without building it."""

    name: str  # registry key; torchvision's own name for torchvision models
    family: str  # "shapes", "alexnet", "vgg", "resnet", "densenet", "inception", "mobilenet"
    groups: tuple[str, ...]  # layer groups in forward order (a side branch sits where it branches off); last: "head"
    input_size: int  # the side of the square input the architecture was designed for
    torchvision: bool  # built through torchvision.models.get_model
    year: int  # year of the paper
    paper: str  # short citation

    @property
    def body_groups(self) -> tuple[str, ...]:
        """All groups except the head."""
        return self.groups[:-1]


_RESNET = ("stem", "layer1", "layer2", "layer3", "layer4", "head")
_VGG = ("block1", "block2", "block3", "block4", "block5", "fc6_7", "head")

ARCHS: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec("shapesnet", "shapes", ("block1", "block2", "block3", "block4", "head"), 32, False, 2026,
                 "the playbook's built-in CNN"),
        ArchSpec("alexnet", "alexnet", ("conv1", "conv2", "conv3_5", "fc6_7", "head"), 224, True, 2012,
                 "Krizhevsky et al., 2012"),
        ArchSpec("vgg11", "vgg", _VGG, 224, True, 2014, "Simonyan & Zisserman, 2014"),
        ArchSpec("vgg16", "vgg", _VGG, 224, True, 2014, "Simonyan & Zisserman, 2014"),
        ArchSpec("resnet18", "resnet", _RESNET, 224, True, 2015, "He et al., 2015"),
        ArchSpec("resnet50", "resnet", _RESNET, 224, True, 2015, "He et al., 2015"),
        ArchSpec("densenet121", "densenet", ("stem", "block1", "block2", "block3", "block4", "head"), 224, True,
                 2016, "Huang et al., 2016"),
        ArchSpec("inception_v3", "inception", ("stem", "mixed5", "mixed6", "aux", "mixed7", "head"), 299, True,
                 2015, "Szegedy et al., 2015"),
        ArchSpec("mobilenet_v3_small", "mobilenet", ("stem", "blocks1", "blocks2", "blocks3", "fc", "head"), 224,
                 True, 2019, "Howard et al., 2019"),
    )
}

DEFAULT_ARCH = "shapesnet"


def get_spec(arch: str) -> ArchSpec:
    """Look up an architecture by name.

    Args:
        arch: A registry key, for example "resnet18".

    Returns:
        Its ArchSpec.

    Raises:
        ValueError: If the architecture is unknown; the message lists the known ones.
    """
    try:
        return ARCHS[arch]
    except KeyError:
        raise ValueError(f"Unknown architecture {arch!r}. Choose one of: {', '.join(ARCHS)}.") from None
