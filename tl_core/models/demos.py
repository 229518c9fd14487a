"""Live experiments for the architecture cards: stacked filters, residual gradients, dense growth, first-layer filters.

Every number is computed, not quoted: receptive fields are measured by back-propagating through a real stack of
nn.Conv2d layers, gradient norms come from a real backward pass, DenseNet's channel counts are read from
torchvision's model on the meta device, and the filter grids are the actual weights of a model's first layer.
Everything is tiny and runs on the CPU in well under a second. The module imports torch lazily.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

MAX_RF_LAYERS = 12  # largest stack the receptive-field demo measures
MAX_KERNEL = 11  # largest kernel side it accepts
MAX_CHANNELS = 4096  # largest channel count for the parameter formula


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run tiny tensor ops on one intra-op thread, then restore the previous count.

    On a busy machine, splitting an 8×8 convolution over threads costs far more in waiting than it saves. With
    PyTorch's OpenMP backend the setting belongs to the calling thread, so other sessions are unaffected.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- VGG: a stack of small filters versus one large one -------------------------------------------------------
def receptive_field(n_layers: int, kernel: int) -> int:
    """Side of the input patch one output pixel sees through `n_layers` stacked k×k convolutions of stride 1.

    Each layer widens the view by k − 1 pixels, so the field is n(k − 1) + 1.
    """
    _check_stack(n_layers, kernel)
    return n_layers * (kernel - 1) + 1


def conv_params(kernel: int, c_in: int, c_out: int, bias: bool) -> int:
    """Parameters of one k×k convolution from c_in to c_out channels: k²·c_in·c_out weights, plus c_out biases."""
    return kernel * kernel * c_in * c_out + (c_out if bias else 0)


@dataclass(frozen=True)
class StackVsLarge:
    """n stacked k×k convolutions against the one large K×K convolution with the same receptive field."""

    channels: int  # C: channels in and out of every layer
    n_layers: int  # n: layers in the stack
    kernel: int  # k: side of each small filter
    bias: bool  # whether the parameter counts include one bias per output channel
    receptive_field: int  # n(k − 1) + 1, which is also K, the large filter's side
    stack_params: int  # n·(k²·C² [+ C])
    large_params: int  # K²·C² [+ C]

    @property
    def saving(self) -> float:
        """Fraction of the large filter's parameters that the stack saves (negative if it costs more)."""
        return 1.0 - self.stack_params / self.large_params

    def takeaway(self) -> str:
        """One sentence comparing the two."""
        rf, n, k = self.receptive_field, self.n_layers, self.kernel
        if self.stack_params < self.large_params:
            verdict = f"with {self.saving:.0%} fewer parameters"
        elif self.stack_params == self.large_params:
            verdict = "with the same number of parameters"
        else:
            verdict = f"but with {-self.saving:.0%} more parameters"
        return (f"{n} stacked {k}×{k} layers see the same {rf}×{rf} patch as one {rf}×{rf} layer, {verdict} "
                f"({self.stack_params:,} vs {self.large_params:,}) and with {n} non-linearities instead of 1.")


def _check_stack(n_layers: int, kernel: int) -> None:
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 1 <= n_layers <= MAX_RF_LAYERS:
        raise ValueError(f"Use from 1 to {MAX_RF_LAYERS} stacked layers; got {n_layers!r}.")
    if isinstance(kernel, bool) or not isinstance(kernel, int) or not 1 <= kernel <= MAX_KERNEL:
        raise ValueError(f"The filter side must be a whole number from 1 to {MAX_KERNEL}; got {kernel!r}.")


def stack_vs_large(channels: int, n_layers: int = 3, kernel: int = 3, bias: bool = False) -> StackVsLarge:
    """Compare n stacked k×k convolutions (stride 1, C channels in and out) with one equivalent large filter.

    Args:
        channels: C, channels in and out of every layer.
        n_layers: n, layers in the stack.
        kernel: k, side of each small filter.
        bias: Count one bias per output channel in each layer.

    Returns:
        The comparison.

    Raises:
        ValueError: If a number is out of range; the message gives the range.
    """
    _check_stack(n_layers, kernel)
    if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(f"Channels must be a whole number from 1 to {MAX_CHANNELS}; got {channels!r}.")
    rf = receptive_field(n_layers, kernel)
    return StackVsLarge(channels, n_layers, kernel, bias, rf,
                        stack_params=n_layers * conv_params(kernel, channels, channels, bias),
                        large_params=conv_params(rf, channels, channels, bias))


def measured_receptive_field(n_layers: int, kernel: int) -> int:
    """Measure the receptive field of n stacked k×k convolutions by back-propagation.

    A one-hot gradient at the centre output pixel of a real nn.Conv2d stack (1 channel, all-ones weights, no
    padding) is sent back to the input; the receptive field is the width of the input region that receives a
    non-zero gradient.

    Returns:
        The side of that region, in pixels.
    """
    import torch
    from torch import nn

    _check_stack(n_layers, kernel)
    stack = nn.Sequential(*(nn.Conv2d(1, 1, kernel, bias=False) for _ in range(n_layers)))
    with torch.no_grad():
        for conv in stack:
            conv.weight.fill_(1.0)  # positive weights: no chance of gradients cancelling to exactly zero
    side = n_layers * (kernel - 1) + 5  # big enough for a 5×5 output whatever the field
    x = torch.zeros(1, 1, side, side, requires_grad=True)  # (1, 1, S, S)
    with _one_thread():
        y = stack(x)  # (1, 1, s, s)
        centre = y.shape[-1] // 2
        y[0, 0, centre, centre].backward()
    touched = (x.grad[0, 0] != 0).any(dim=0)  # (S,): columns that influence the centre output
    return int(touched.sum())


# ---- ResNet: how much gradient reaches the first layer --------------------------------------------------------
@dataclass(frozen=True)
class GradientFlow:
    """Gradient norms of a deep stack of small convolutions after one backward pass."""

    skip: bool  # residual blocks (x + f(x)) instead of plain ones (f(x))
    depth: int  # convolution layers in the stack
    layer_grad_norms: tuple[float, ...]  # L2 norm of each layer's weight gradient, first layer first
    batch_norm: bool = False  # each block normalises its input with BatchNorm (training mode) first

    @property
    def first_layer(self) -> float:
        """The gradient norm that reaches the first layer."""
        return self.layer_grad_norms[0]


MAX_DEPTH = 50  # deepest stack gradient_flow builds (much deeper plain stacks underflow float32 to 0)
VANISHED = 1e-3  # a first-layer gradient norm below this counts as vanished (the head's is of order 1)


def gradient_flow(depth: int = 40, skip: bool = True, width: int = 8, seed: int = 0,
                  batch_norm: bool = False) -> GradientFlow:
    """One forward and backward pass through `depth` blocks of [BatchNorm →] ReLU → 3×3 conv, with or without skips.

    The blocks are pre-activation ones (He et al., 2016): plain, out = conv(relu(bn(x))); residual, out = x +
    conv(relu(bn(x))), with the BatchNorm only when `batch_norm` is set. The stack uses PyTorch's default
    initialisation, so the skip connection (and the normalisation) are the only differences between variants;
    weights, data and labels are identical for the same seed.
    Input: 16 random 8×8 images with `width` channels; after the stack, global average pooling and a linear
    layer to 10 random classes; loss: cross-entropy.

    Args:
        depth: Number of conv blocks, 1 to MAX_DEPTH.
        skip: Residual blocks, out = x + f(x); otherwise plain blocks, out = f(x).
        width: Channels of every layer.
        seed: Seeds the weights, the data and the labels.
        batch_norm: Normalise each block's input with BatchNorm (batch statistics, as in training).

    Returns:
        The per-layer gradient norms.

    Raises:
        ValueError: If depth or width is out of range.
    """
    import torch
    from torch import nn

    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be a whole number from 1 to {MAX_DEPTH}; got {depth!r}.")
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 64:
        raise ValueError(f"width must be a whole number from 1 to 64; got {width!r}.")
    with torch.random.fork_rng(devices=[]):  # leave the global random state alone
        torch.manual_seed(seed)
        convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1, bias=False) for _ in range(depth))
        head = nn.Linear(width, 10)
        x = torch.randn(16, width, 8, 8)  # (B, C, H, W)
        y = torch.randint(0, 10, (16,))  # (B,)
    norms_bn = [nn.BatchNorm2d(width) if batch_norm else nn.Identity() for _ in range(depth)]  # no random init
    with _one_thread():
        h = x
        for conv, norm in zip(convs, norms_bn):
            f = conv(torch.relu(norm(h)))  # (B, C, H, W)
            h = h + f if skip else f
        logits = head(h.mean(dim=(2, 3)))  # (B, 10)
        nn.functional.cross_entropy(logits, y).backward()
        norms = torch._foreach_norm([c.weight.grad for c in convs])
        return GradientFlow(skip, depth, tuple(float(v) for v in torch.stack(norms).tolist()), batch_norm)


def gradient_takeaway(with_skip: GradientFlow, without: GradientFlow) -> str:
    """One sentence comparing the first-layer gradients of the two variants, true to what they show.

    Without batch normalization the plain stack's gradient shrinks layer by layer and the skips carry it; with
    batch normalization it stays healthy (He et al., 2015, checked the same in their plain networks), and then
    the sentence says so, and what the skips were really for.
    """
    a, b = with_skip.first_layer, without.first_layer
    if without.batch_norm and b >= VANISHED:
        return (f"Through {without.depth} layers with batch normalization, the plain stack's first layer still gets "
                f"a healthy gradient ({b:.2g}; with skips {a:.2g}): it does not vanish. He et al. (2015) saw the "
                f"same in their normalised plain networks; what the skips fixed there was degradation, deeper "
                f"plain networks training to a higher error.")
    bn = "with" if without.batch_norm else "without"
    if b == 0:
        return (f"Through {without.depth} layers {bn} batch normalization, no gradient at all reaches the plain "
                f"stack's first layer; with skip connections it gets {a:.2g}.")
    return (f"Through {without.depth} layers {bn} batch normalization, the first layer's gradient is {a / b:.3g}× "
            f"larger with skip connections ({a:.2g} vs {b:.2g}): the shortcuts carry the gradient past layers that "
            f"shrink it.")


# ---- DenseNet: channels inside a dense block ------------------------------------------------------------------
@dataclass(frozen=True)
class DenseGrowth:
    """Channel counts inside one dense block."""

    k0: int  # channels entering the block
    growth: int  # k, new channels each layer adds (the growth rate)
    n_layers: int  # layers in the block
    layer_inputs: tuple[int, ...]  # channels entering layer i (0-based): k0 + i·k
    block_output: int  # channels leaving the block: k0 + n·k


def dense_growth(k0: int, growth: int, n_layers: int) -> DenseGrowth:
    """Channels seen by each layer of a dense block: each layer's input is the concatenation of all before it.

    Args:
        k0: Channels entering the block.
        growth: The growth rate k.
        n_layers: Layers in the block.

    Returns:
        The DenseGrowth.

    Raises:
        ValueError: If a number is not a positive whole number (at most 4096, 512 and 128).
    """
    for name, value, top in (("k0", k0, 4096), ("growth rate", growth, 512), ("layers", n_layers, 128)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ValueError(f"The {name} must be a whole number from 1 to {top}; got {value!r}.")
    return DenseGrowth(k0, growth, n_layers, tuple(k0 + i * growth for i in range(n_layers)), k0 + n_layers * growth)


@dataclass(frozen=True)
class TorchvisionDenseBlock:
    """What torchvision's DenseNet really has inside one dense block (read from the model, on the meta device)."""

    arch: str  # registry key, for example "densenet121"
    block: int  # 1-based index of the dense block
    k0: int  # channels entering the block
    growth: int  # growth rate: output channels of each layer's 3×3 conv
    layer_inputs: tuple[int, ...]  # in_channels of each dense layer's first conv (its 1×1 bottleneck)


def torchvision_dense_block(arch: str = "densenet121", block: int = 1) -> TorchvisionDenseBlock:
    """Read the channel counts of one of torchvision's dense blocks from the model built on the meta device.

    Raises:
        ValueError: If `arch` is not a DenseNet of the registry or the block does not exist.
    """
    from tl_core.models.summary import build_meta_model
    from tl_core.models.registry import get_spec

    if get_spec(arch).family != "densenet":
        raise ValueError(f"{arch} is not a DenseNet; pick densenet121.")
    features = build_meta_model(arch).features
    dense = getattr(features, f"denseblock{block}", None)
    if dense is None:
        raise ValueError(f"{arch} has no dense block {block}; its blocks are numbered from 1 to 4.")
    layers = list(dense.children())
    return TorchvisionDenseBlock(arch, block, k0=layers[0].conv1.in_channels, growth=layers[0].conv2.out_channels,
                                 layer_inputs=tuple(layer.conv1.in_channels for layer in layers))


# ---- first-layer filters -----------------------------------------------------------------------------------------
def filter_grid(weight: torch.Tensor | np.ndarray, cell: int = 36, pad: int = 2, cols: int | None = None) -> np.ndarray:
    """Lay out RGB filters as one image: each filter contrast-stretched on its own, enlarged, in a grid.

    Args:
        weight: (N, 3, kh, kw) first-layer weights.
        cell: Target side of each enlarged filter in pixels (nearest-neighbour; at least 1× the kernel).
        pad: White pixels between filters.
        cols: Filters per row; default about √N.

    Returns:
        (H, W, 3) uint8 image.

    Raises:
        ValueError: If the weights are not (N, 3, kh, kw).
    """
    w = weight.detach().float().cpu().numpy() if hasattr(weight, "detach") else np.asarray(weight, dtype=np.float32)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"Expected first-layer weights of shape (N, 3, kh, kw); got {tuple(w.shape)}.")
    n, _, kh, kw = w.shape
    lo = w.reshape(n, -1).min(axis=1).reshape(n, 1, 1, 1)
    hi = w.reshape(n, -1).max(axis=1).reshape(n, 1, 1, 1)
    scaled = (w - lo) / np.where(hi > lo, hi - lo, 1.0)  # (N, 3, kh, kw) in [0, 1]
    scale = max(1, cell // max(kh, kw))
    tiles = np.repeat(np.repeat(scaled, scale, axis=2), scale, axis=3).transpose(0, 2, 3, 1)  # (N, th, tw, 3)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    th, tw = kh * scale, kw * scale
    grid = np.ones((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = pad + r * (th + pad), pad + c * (tw + pad)
        grid[top:top + th, left:left + tw] = tiles[i]
    return (grid * 255).round().astype(np.uint8)


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The model's first nn.Conv2d in module order (the layer that sees the pixels).

    Raises:
        ValueError: If the model has no Conv2d.
    """
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError("The model has no convolutional layer.")


def source_filter_grid() -> np.ndarray:
    """The shipped source model's 16 first-layer 3×3 filters (block1's conv), as an enlarged uint8 grid."""
    from tl_core.models.source import load_source_model

    return filter_grid(load_source_model().model.block1[0].weight)


def imagenet_filter_grid(arch: str) -> np.ndarray:
    """The first-layer filters of an ImageNet model, from its cached weights (never downloads).

    Args:
        arch: A torchvision architecture of the registry, for example "alexnet".

    Returns:
        (H, W, 3) uint8 grid.

    Raises:
        tl_core.models.weights.WeightsUnavailable: If the weights are not on this machine (its status.how_to_get()
            explains the fix).
        ValueError: If the cached file is damaged, or `arch` is not a torchvision architecture.
    """
    from tl_core.models.weights import load_imagenet_model

    model = load_imagenet_model(arch)
    return filter_grid(first_conv(model).weight)
