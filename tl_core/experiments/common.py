"""Torch helpers shared by the experiments: argument checks, the source model's encoder, features, linear heads.

Everything here is small and deterministic for a given seed on the CPU. Randomness that is not model
initialisation goes through explicit `torch.Generator`s; models are initialised right after `torch.manual_seed`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tl_core.data import shapes
from tl_core.models.networks import ShapesNet

BODY = ("block1", "block2", "block3", "block4")  # ShapesNet's body groups, input to output
FEATURE_BATCH = 256  # images per forward pass when extracting features


# ---- argument checks ----------------------------------------------------------------------------------------
def check_int(name: str, value: object, lo: int, hi: int) -> int:
    """A whole number in [lo, hi].

    Raises:
        ValueError: Saying which range to pick from.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be a whole number from {lo} to {hi}; got {value!r}.")
    return int(value)


def check_float(name: str, value: object, lo: float, hi: float) -> float:
    """A finite number in [lo, hi].

    Raises:
        ValueError: Saying which range to pick from.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or not lo <= float(value) <= hi:
        raise ValueError(f"{name} must be a number from {lo:g} to {hi:g}; got {value!r}.")
    return float(value)


def check_seed(seed: object) -> int:
    """A seed: a whole number >= 0.

    Raises:
        ValueError: If it is not.
    """
    return check_int("seed", seed, 0, 2**31 - 1)


# ---- data -----------------------------------------------------------------------------------------------------
def tensors(spec: shapes.WorldSpec, n_per_class: int, seed: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Shapes-world images (N, 3, 32, 32) float32 and labels (N,) int64."""
    data = shapes.generate(spec, n_per_class, seed, split)
    return torch.from_numpy(data.images), torch.from_numpy(data.labels)


# ---- models and features ----------------------------------------------------------------------------------------
def source_net() -> ShapesNet:
    """A private copy of the shipped source model (ShapesNet pretrained on the six source shapes), in eval mode."""
    from tl_core.models.source import load_source_model

    return copy.deepcopy(load_source_model().model).eval()


def fresh_net(num_classes: int, seed: int) -> ShapesNet:
    """A randomly initialised ShapesNet, seeded."""
    torch.manual_seed(seed)
    return ShapesNet(num_classes)


def encoder(net: ShapesNet, upto: str = "block4") -> nn.Sequential:
    """The net's blocks up to and including `upto`, then global average pooling: (B, 3, H, W) -> (B, C).

    The modules are shared with `net`, not copied.
    """
    if upto not in BODY:
        raise ValueError(f"upto must be one of {', '.join(BODY)}; got {upto!r}.")
    blocks = [getattr(net, name) for name in BODY[: BODY.index(upto) + 1]]
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())


@torch.no_grad()
def encode(module: nn.Module, x: torch.Tensor, batch: int = FEATURE_BATCH) -> torch.Tensor:
    """module(x) in eval mode, batch by batch (the module's mode is restored afterwards)."""
    was = module.training
    module.eval()
    out = torch.cat([module(x[i:i + batch]) for i in range(0, x.shape[0], batch)]) if len(x) else torch.empty(0)
    module.train(was)
    return out


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows whose arg-max is the label."""
    return float((logits.argmax(1) == y).float().mean()) if len(y) else float("nan")


def cosine(base: float, step: int, total: int) -> float:
    """A cosine-decayed learning rate at `step` of `total`."""
    return base * 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))


def batches(n: int, batch: int, steps: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """`steps` index batches over n items, epoch by epoch through fresh permutations."""
    batch = max(1, min(batch, n))
    perm, pos = torch.randperm(n, generator=gen), 0
    for _ in range(steps):
        if pos + batch > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        yield perm[pos:pos + batch]
        pos += batch


def channels_last(t: torch.Tensor) -> torch.Tensor:
    """A (B, C, H, W) batch in channels-last memory order, which a channels-last model convolves faster on CPUs."""
    return t.contiguous(memory_format=torch.channels_last)


# ---- distances between samples -------------------------------------------------------------------------------
def mmd2(a: torch.Tensor, b: torch.Tensor, bandwidth: float) -> float:
    """Unbiased squared maximum mean discrepancy with the RBF kernel exp(-|u - v|^2 / bandwidth).

    Args:
        a: (N, D) samples; b: (M, D) samples (N, M >= 2).
        bandwidth: The kernel's squared length scale.
    """
    a, b = a.double(), b.double()
    kaa = torch.exp(-torch.cdist(a, a) ** 2 / bandwidth)
    kbb = torch.exp(-torch.cdist(b, b) ** 2 / bandwidth)
    kab = torch.exp(-torch.cdist(a, b) ** 2 / bandwidth)
    n, m = a.shape[0], b.shape[0]
    return float((kaa.sum() - kaa.diagonal().sum()) / (n * (n - 1)) + (kbb.sum() - kbb.diagonal().sum()) / (m * (m - 1))
                 - 2 * kab.mean())


def median_bandwidth(x: torch.Tensor) -> float:
    """The median squared pairwise distance of a sample (the usual RBF bandwidth heuristic)."""
    d2 = torch.cdist(x.double(), x.double()) ** 2
    off = d2[~torch.eye(x.shape[0], dtype=torch.bool)]
    return float(off.median()) if off.numel() else 1.0


# ---- linear heads on fixed features -----------------------------------------------------------------------------
@dataclass
class LinearHead:
    """Logistic regression on standardised features."""

    weight: torch.Tensor  # (K, D)
    bias: torch.Tensor  # (K,)
    mean: torch.Tensor  # (D,) feature means of the training set
    std: torch.Tensor  # (D,) feature standard deviations of the training set

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) features -> (N, K) logits."""
        return ((x - self.mean) / self.std) @ self.weight.T + self.bias


def fit_linear(x: torch.Tensor, y: torch.Tensor, n_classes: int, *, steps: int = 300, lr: float = 0.05,
               weight_decay: float = 1e-3, sample_weight: torch.Tensor | None = None) -> LinearHead:
    """Fit a softmax-regression head by full-batch Adam on standardised features (deterministic).

    Args:
        x: (N, D) features.
        y: (N,) labels in [0, n_classes).
        n_classes: Outputs.
        steps: Full-batch optimisation steps.
        lr: Adam's learning rate.
        weight_decay: L2 penalty on the weights.
        sample_weight: Optional (N,) non-negative weights per example (importance weighting); mean-normalised.

    Returns:
        The fitted head.
    """
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6) if len(x) > 1 else torch.ones(x.shape[1])
    z = (x - mean) / std  # (N, D)
    w = torch.zeros(n_classes, x.shape[1], requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    sw = None if sample_weight is None else sample_weight / sample_weight.mean().clamp_min(1e-12)
    opt = torch.optim.Adam([w, b], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            losses = F.cross_entropy(z @ w.T + b, y, reduction="none")  # (N,)
            loss = (losses * sw).mean() if sw is not None else losses.mean()
            (loss + weight_decay * (w * w).sum()).backward()
            opt.step()
    return LinearHead(w.detach(), b.detach(), mean, std)
