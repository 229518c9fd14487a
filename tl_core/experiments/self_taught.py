"""Self-taught learning: features from unlabelled images of other shapes, then a classifier on a few target labels.

Raina et al. (2007) called it self-taught learning: labelled data of the classes you want, plus unlabelled data
from other, similar classes. Here the unlabelled data is a pile of drawings of the six source shapes with their
labels thrown away. A network learns from them with a pretext task whose answers come from the pixels
themselves (nobody labels anything):

* "geometry": find the figure (the pixels that differ from the border colour) and predict its area, how compact
  it is (perimeter² / area), how elongated it is and how far its pixels spread; shape-sensitive features;
* "autoencoder": squeeze each image through the network and rebuild it; features that keep everything,
  colour and position included.

(The popular rotation-prediction pretext does not work here: the shapes world draws every shape at a random
angle, so no pixel tells which way up an image is.)

Then the few labelled target images (the four new shapes) train a linear classifier on each network's frozen
features. The comparison: no pretraining (random features, and training the whole network on the few labels),
self-taught features, and the supervised source model (trained with the source labels, for reference).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from tl_core.data import shapes
from tl_core.experiments import OnRecord, Reporter
from tl_core.experiments.common import (accuracy, batches, channels_last, check_float, check_int, check_seed, cosine,
                                        encode, encoder, fit_linear, fresh_net, source_net, tensors)
from tl_core.models.networks import ShapesNet

PRETEXTS = ("geometry", "autoencoder")
GEOMETRY_TARGETS = ("log area", "log compactness", "elongation", "spread")  # what the geometry pretext predicts
METHODS = ("random features", "scratch: whole network on the few labels", "self-taught features",
           "supervised source features")
FIGURE_THRESHOLD = 0.15  # summed |RGB - border colour| above which a pixel belongs to the figure


@dataclass
class SelfTaughtResult:
    """Target accuracy of each way to get features, with the pretext's learning curve."""

    pretext: str  # "geometry" or "autoencoder"
    classes: tuple[str, ...]  # the target classes
    accuracy: dict[str, float]  # method (METHODS) -> accuracy on held-out target images
    chance: float  # 1 / number of target classes
    n_unlabelled: int  # unlabelled images of other shapes the pretext learnt from
    n_labelled: int  # labelled target images
    n_test: int  # held-out target images
    pretext_steps: int  # optimiser steps of the pretext task
    pretext_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, pretext loss)
    wall_s: float = 0.0  # seconds the experiment took


def figure_mask(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) images -> (B, H, W) 1.0 where a pixel differs from the image's border colour (the figure)."""
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], dim=2)  # (B, 3, 4W)
    background = border.median(dim=2).values  # (B, 3)
    return ((x - background[:, :, None, None]).abs().sum(1) > FIGURE_THRESHOLD).float()


def geometry_targets(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 4) raw pretext answers computed from the pixels alone (see GEOMETRY_TARGETS)."""
    m = figure_mask(x)  # (B, H, W)
    h, w = m.shape[-2:]
    area = m.sum((1, 2)).clamp_min(1)  # (B,)
    perimeter = (m[:, 1:] - m[:, :-1]).abs().sum((1, 2)) + (m[:, :, 1:] - m[:, :, :-1]).abs().sum((1, 2))
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    cx, cy = (m * xs).sum((1, 2)) / area, (m * ys).sum((1, 2)) / area
    dx, dy = xs - cx[:, None, None], ys - cy[:, None, None]  # (B, H, W)
    mu20, mu02, mu11 = ((m * dx * dx).sum((1, 2)) / area, (m * dy * dy).sum((1, 2)) / area,
                        (m * dx * dy).sum((1, 2)) / area)
    elongation = ((mu20 - mu02) ** 2 + 4 * mu11 ** 2) / ((mu20 + mu02) ** 2 + 1e-6)
    spread = (mu20 + mu02) / area
    return torch.stack([area.log(), (perimeter ** 2 / area + 1).log(), elongation, spread], 1)


class _Decoder(nn.Module):
    """Rebuilds a 32x32 image from ShapesNet's block4 map (B, 128, 4, 4)."""

    def __init__(self, channels: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.ConvTranspose2d(channels, 32, 4, 2, 1), nn.ReLU(),  # (B, 32, 8, 8)
                                 nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU(),  # (B, 16, 16, 16)
                                 nn.ConvTranspose2d(16, 3, 4, 2, 1), nn.Sigmoid())  # (B, 3, 32, 32)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def pretrain(x_unlabelled: torch.Tensor, *, pretext: str, steps: int, seed: int, rep: Reporter,
             batch: int = 64, lr: float = 3e-3) -> tuple[ShapesNet, list[tuple[int, float]]]:
    """Learn a ShapesNet body from unlabelled images with a pretext task.

    Args:
        x_unlabelled: (N, 3, 32, 32) images, no labels.
        pretext: One of PRETEXTS.
        steps: Optimiser steps.
        seed: Seeds the initial weights and the batches.
        rep: Receives progress (0..1 over the steps) and the loss curve.
        batch: Images per step.
        lr: Adam's peak learning rate (cosine decay).

    Returns:
        (the network, whose head is untrained and unused; [(step, loss), ...]).
    """
    net = fresh_net(6, seed).to(memory_format=torch.channels_last)
    blocks = nn.Sequential(net.block1, net.block2, net.block3, net.block4)  # (B, 128, 4, 4)
    if pretext == "geometry":
        raw = geometry_targets(x_unlabelled)
        targets = (raw - raw.mean(0)) / raw.std(0).clamp_min(1e-6)  # (N, 4) standardised
        extra: nn.Module = nn.Linear(net.head.in_features, targets.shape[1])

        def loss_fn(xb: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return F.mse_loss(extra(net.pool(blocks(xb))), targets[idx])
    else:
        extra = _Decoder(net.head.in_features)

        def loss_fn(xb: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return F.mse_loss(extra(blocks(xb)), xb)

    opt = torch.optim.Adam([*blocks.parameters(), *extra.parameters()], lr=lr)
    gen = torch.Generator().manual_seed(seed + 1)
    curve: list[tuple[int, float]] = []
    every = max(1, steps // 30)
    blocks.train()
    for step, idx in enumerate(batches(len(x_unlabelled), batch, steps, gen)):
        for group in opt.param_groups:
            group["lr"] = cosine(lr, step, steps)
        loss = loss_fn(channels_last(x_unlabelled[idx]), idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 or step == steps - 1:
            value = float(loss.detach())
            curve.append((step, value))
            rep.point(f"{pretext} pretext loss", step, value)
            rep.progress((step + 1) / steps, f"Pretext task ({pretext}) on unlabelled images: step {step + 1}/{steps}")
    return net.eval(), curve


def _train_scratch(x: torch.Tensor, y: torch.Tensor, n_classes: int, *, steps: int, seed: int, rep: Reporter,
                   lr: float = 3e-3, batch: int = 32) -> ShapesNet:
    """A fresh ShapesNet trained end to end on the few labelled images."""
    net = fresh_net(n_classes, seed).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed + 2)
    net.train()
    for step, idx in enumerate(batches(len(x), batch, steps, gen)):
        for group in opt.param_groups:
            group["lr"] = cosine(lr, step, steps)
        loss = F.cross_entropy(net(channels_last(x[idx])), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % max(1, steps // 10) == 0:
            rep.progress((step + 1) / steps, f"No pretraining: the whole network on the labels, step {step + 1}")
    return net.eval()


def run_self_taught(*, seed: int = 0, pretext: str = "geometry", n_unlabelled_per_class: int = 100,
                    n_labelled_per_class: int = 10, similarity: float = 1.0, pretext_steps: int = 200,
                    on_record: OnRecord | None = None, cancel: threading.Event | None = None) -> SelfTaughtResult:
    """Self-taught learning against no pretraining and against the supervised source model.

    Args:
        seed: Seeds every image, weight and batch.
        pretext: One of PRETEXTS.
        n_unlabelled_per_class: Unlabelled images of each of the six other (source) shapes (20..300).
        n_labelled_per_class: Labelled images of each of the four target shapes (2..100).
        similarity: Look of the target images (1 = drawn like the unlabelled ones; 0.5..1, the task stays shapes).
        pretext_steps: Optimiser steps of the pretext task (20..1000).
        on_record: Receives Progress and Point records.
        cancel: Stops the run.

    Returns:
        A SelfTaughtResult.

    Raises:
        ValueError: If an argument is out of range.
        Cancelled: If the cancel event was set.
    """
    t0 = time.perf_counter()
    seed = check_seed(seed)
    if pretext not in PRETEXTS:
        raise ValueError(f"Unknown pretext {pretext!r}. Choose one of: {', '.join(PRETEXTS)}.")
    n_unl = check_int("n_unlabelled_per_class", n_unlabelled_per_class, 20, 300)
    n_lab = check_int("n_labelled_per_class", n_labelled_per_class, 2, 100)
    similarity = check_float("similarity", similarity, 0.5, 1.0)
    pretext_steps = check_int("pretext_steps", pretext_steps, 20, 1000)
    rep = Reporter(on_record, cancel)

    rep.progress(0.0, "Drawing unlabelled images of other shapes and a few labelled target images…")
    x_unl, _ = tensors(shapes.WorldSpec("source"), n_unl, seed, "train")  # the labels are thrown away
    target = shapes.target_spec(similarity, task="shapes")
    x_lab, y_lab = tensors(target, n_lab, seed, "train")
    x_test, y_test = tensors(target, 50, seed, "val")
    k = len(target.classes)

    rep.stage(0.02, 0.8)
    net, curve = pretrain(x_unl, pretext=pretext, steps=pretext_steps, seed=seed, rep=rep)
    rep.stage(0.8, 0.95)
    scratch = _train_scratch(x_lab, y_lab, k, steps=max(100, 3 * len(y_lab) // 32 * 10), seed=seed, rep=rep)
    rep.stage(0.95, 1.0)
    rep.progress(0.0, "Fitting a linear classifier on each set of frozen features…")
    encoders = {"random features": encoder(fresh_net(6, seed)), "self-taught features": encoder(net),
                "supervised source features": encoder(source_net())}
    acc: dict[str, float] = {}
    for name, enc in encoders.items():
        head = fit_linear(encode(enc, x_lab), y_lab, k)
        acc[name] = accuracy(head.logits(encode(enc, x_test)), y_test)
    with torch.no_grad():
        acc["scratch: whole network on the few labels"] = accuracy(scratch(x_test), y_test)
    rep.progress(1.0, "Done.")
    return SelfTaughtResult(pretext=pretext, classes=target.classes, accuracy={m: acc[m] for m in METHODS},
                            chance=1 / k, n_unlabelled=len(x_unl), n_labelled=len(y_lab), n_test=len(y_test),
                            pretext_steps=pretext_steps, pretext_curve=curve, wall_s=time.perf_counter() - t0)
