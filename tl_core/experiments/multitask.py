"""Multi-task learning: one shared ShapesNet body, two heads, trained jointly, against each task trained alone.

Inductive setting with labels on both sides: the same images carry two related labels. The first task is the
shape (the six source shapes); the second is one of

* "fill": whether the shape is filled or drawn as an outline (the matrix page's example);
* "colour": the hue of the shape's pixels, in three 120° sectors (red-yellow, green-cyan, blue-magenta);
* "size": whether the shape covers more or fewer pixels than the median of the training images.

Three runs with the same initial weights, data and number of steps: joint (the two losses summed), the shape
alone, the second task alone. During the joint run, every few steps the two losses are back-propagated
separately (torch.autograd.grad) to measure how much gradient each head sends into each shared layer group,
and the cosine between the two tasks' shared gradients (positive: they pull the same way; negative: conflict).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tl_core.data import shapes
from tl_core.experiments import OnRecord, Reporter
from tl_core.experiments.common import (BODY, accuracy, batches, channels_last, check_int, check_seed, cosine, encoder,
                                        fresh_net)

SECOND_TASKS: dict[str, tuple[str, ...]] = {  # the second task's key -> its class names
    "fill": ("filled", "outlined"),
    "colour": ("red–yellow", "green–cyan", "blue–magenta"),
    "size": ("small", "large"),
}
CONDITIONS = ("joint", "alone")
SHAPE = "shape"  # the first task's name


@dataclass
class MultiTaskData:
    """Images with two labels each."""

    x: torch.Tensor  # (N, 3, 32, 32)
    y_shape: torch.Tensor  # (N,) source-shape index
    y_second: torch.Tensor  # (N,) second-task class
    second_classes: tuple[str, ...]  # names of the second task's classes


@dataclass
class MultiTaskResult:
    """Accuracy per task with and without sharing, and the gradient each head sends into the shared body."""

    second_task: str  # key of SECOND_TASKS
    classes: dict[str, tuple[str, ...]]  # task -> class names
    accuracy: dict[str, dict[str, float]]  # condition ("joint", "alone") -> task -> held-out accuracy
    chance: dict[str, float]  # task -> share of the most common class in the held-out set
    grad_steps: list[int]  # steps of the joint run at which gradients were measured
    grad_norm: dict[str, dict[str, list[float]]]  # task -> shared group -> gradient L2 norm at each grad step
    grad_cosine: list[float]  # cosine between the two tasks' shared-body gradients at each grad step
    n_train: int  # training images
    n_test: int  # held-out images
    steps: int  # optimiser steps per run
    loss_curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # run -> (step, loss)
    wall_s: float = 0.0  # seconds the experiment took

    def mean_grad(self, task: str) -> dict[str, float]:
        """The task's mean gradient norm per shared group over the measured steps."""
        return {g: (sum(v) / len(v) if v else 0.0) for g, v in self.grad_norm[task].items()}


class TwoHeadNet(nn.Module):
    """A ShapesNet body (blocks 1-4 and pooling) shared by one linear head per task."""

    def __init__(self, n_shape: int, n_second: int, seed: int) -> None:
        super().__init__()
        net = fresh_net(n_shape, seed)
        self.body = encoder(net)  # (B, 3, 32, 32) -> (B, 128)
        self.heads = nn.ModuleDict({SHAPE: net.head, "second": nn.Linear(net.head.in_features, n_second)})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.body(x)  # (B, 128)
        return {name: head(f) for name, head in self.heads.items()}

    def shared_groups(self) -> dict[str, list[nn.Parameter]]:
        """The body's parameters per layer group (block1..block4)."""
        return {name: list(self.body[i].parameters()) for i, name in enumerate(BODY)}


def _hue_sector(images: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """(N,) 0..2: the hue sector of the mean colour of each image's shape pixels."""
    m = (coverage > 0.5).astype(np.float32)  # (N, H, W)
    rgb = (images * m[:, None]).sum((2, 3)) / np.maximum(m.sum((1, 2)), 1)[:, None]  # (N, 3)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    hi, lo = rgb.max(1), rgb.min(1)
    d = np.maximum(hi - lo, 1e-6)
    hue = np.where(hi == r, ((g - b) / d) % 6, np.where(hi == g, (b - r) / d + 2, (r - g) / d + 4)) / 6  # [0, 1)
    return (np.floor(((hue + 1 / 6) % 1.0) * 3).astype(np.int64)) % 3  # sectors centred on red, green, blue


def make_data(second: str, n_per_class: int, seed: int, split: str, size_threshold: float | None = None
              ) -> tuple[MultiTaskData, float]:
    """Source-shape images with a second label.

    Args:
        second: A key of SECOND_TASKS.
        n_per_class: Images per shape.
        seed: Seeds the images.
        split: "train", "val" or "test".
        size_threshold: The "size" task's pixel-count line (default: this set's median).

    Returns:
        (the data, the size threshold used, NaN for the other tasks).
    """
    threshold = float("nan")
    if second == "fill":
        n_out = n_per_class // 2
        parts = [shapes.generate(shapes.WorldSpec("source"), n_per_class - n_out, seed, split)]
        if n_out:
            parts.append(shapes.generate(shapes.WorldSpec("source", styles=("outline",)), n_out, seed + 7919, split))
        images = np.concatenate([p.images for p in parts])
        labels = np.concatenate([p.labels for p in parts])
        second_y = np.concatenate([np.full(len(p.labels), i, dtype=np.int64) for i, p in enumerate(parts)])
        order = np.random.default_rng(seed).permutation(len(labels))
        images, labels, second_y = images[order], labels[order], second_y[order]
    else:
        data, coverage = shapes.generate_with_masks(shapes.WorldSpec("source"), n_per_class, seed, split)
        images, labels = data.images, data.labels
        if second == "colour":
            second_y = _hue_sector(images, coverage)
        else:
            area = coverage.sum((1, 2))
            threshold = float(np.median(area)) if size_threshold is None else size_threshold
            second_y = (area > threshold).astype(np.int64)
    return (MultiTaskData(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels),
                          torch.from_numpy(second_y), SECOND_TASKS[second]), threshold)


def _group_norms(grads: tuple[torch.Tensor, ...], sizes: list[int]) -> list[float]:
    """Per-group L2 norms of a flat tuple of parameter gradients, groups given by their parameter counts."""
    norms = torch.stack([g.pow(2).sum() for g in grads])  # (P,)
    out, start = [], 0
    for n in sizes:
        out.append(float(norms[start:start + n].sum().sqrt()))
        start += n
    return out


def _train(data: MultiTaskData, tasks: tuple[str, ...], *, steps: int, seed: int, rep: Reporter, label: str,
           probe_every: int = 0, batch: int = 32, lr: float = 3e-3) -> tuple[TwoHeadNet, dict]:
    """Train a TwoHeadNet on the summed loss of `tasks` ("shape", "second"); optionally measure per-task gradients."""
    model = TwoHeadNet(len(shapes.SOURCE_CLASSES), len(data.second_classes), seed)
    model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    groups = model.shared_groups()
    shared = [p for ps in groups.values() for p in ps]
    sizes = [len(ps) for ps in groups.values()]
    gen = torch.Generator().manual_seed(seed + 1)
    log: dict = {"steps": [], "norms": {SHAPE: [], "second": []}, "cosine": [], "loss": []}
    every = max(1, steps // 30)
    model.train()
    for step, idx in enumerate(batches(len(data.y_shape), batch, steps, gen)):
        for g in opt.param_groups:
            g["lr"] = cosine(lr, step, steps)
        out = model(channels_last(data.x[idx]))
        losses = {SHAPE: F.cross_entropy(out[SHAPE], data.y_shape[idx]),
                  "second": F.cross_entropy(out["second"], data.y_second[idx])}
        total = sum(losses[t] for t in tasks)
        opt.zero_grad(set_to_none=True)
        if probe_every and step % probe_every == 0:
            ga = torch.autograd.grad(losses[SHAPE], shared, retain_graph=True)
            gb = torch.autograd.grad(losses["second"], shared, retain_graph=True)
            flat_a, flat_b = torch.cat([g.flatten() for g in ga]), torch.cat([g.flatten() for g in gb])
            log["steps"].append(step)
            log["norms"][SHAPE].append(_group_norms(ga, sizes))
            log["norms"]["second"].append(_group_norms(gb, sizes))
            log["cosine"].append(float(F.cosine_similarity(flat_a, flat_b, dim=0)))
        total.backward()
        opt.step()
        if step % every == 0 or step == steps - 1:
            value = float(total.detach())
            log["loss"].append((step, value))
            rep.point(label, step, value)
            rep.progress((step + 1) / steps, f"{label}: step {step + 1}/{steps}")
    return model.eval(), log


def run_multitask(*, seed: int = 0, second_task: str = "fill", n_per_class: int = 30, steps: int = 150,
                  probe_every: int = 10, on_record: OnRecord | None = None,
                  cancel: threading.Event | None = None) -> MultiTaskResult:
    """Joint training of shape and a second task, against each trained alone, with per-head gradient norms.

    Args:
        seed: Seeds the images, the initial weights (the same for every run) and the batches.
        second_task: A key of SECOND_TASKS.
        n_per_class: Training images per shape (5..200).
        steps: Optimiser steps per run (20..1000), batch 32.
        probe_every: Measure the two tasks' gradients every this many joint steps (1..100).
        on_record: Receives Progress and Point records.
        cancel: Stops the run.

    Returns:
        A MultiTaskResult.

    Raises:
        ValueError: If an argument is out of range.
        Cancelled: If the cancel event was set.
    """
    t0 = time.perf_counter()
    seed = check_seed(seed)
    if second_task not in SECOND_TASKS:
        raise ValueError(f"Unknown second task {second_task!r}. Choose one of: {', '.join(SECOND_TASKS)}.")
    n_per_class = check_int("n_per_class", n_per_class, 5, 200)
    steps = check_int("steps", steps, 20, 1000)
    probe_every = check_int("probe_every", probe_every, 1, 100)
    rep = Reporter(on_record, cancel)
    rep.progress(0.0, "Drawing images with two labels each…")
    train, threshold = make_data(second_task, n_per_class, seed, "train")
    test, _ = make_data(second_task, 50, seed, "val", size_threshold=threshold if math.isfinite(threshold) else None)

    runs = (("joint", (SHAPE, "second")), ("shape alone", (SHAPE,)), ("second alone", ("second",)))
    models, logs = {}, {}
    for i, (name, tasks) in enumerate(runs):
        rep.stage(0.02 + 0.96 * i / len(runs), 0.02 + 0.96 * (i + 1) / len(runs))
        label = name if name != "second alone" else f"{second_task} alone"
        models[name], logs[name] = _train(train, tasks, steps=steps, seed=seed, rep=rep, label=label,
                                          probe_every=probe_every if name == "joint" else 0)
    rep.stage(0.98, 1.0)
    rep.progress(0.0, "Scoring on held-out images…")
    with torch.no_grad():
        out = {name: m(test.x) for name, m in models.items()}
    acc = {"joint": {SHAPE: accuracy(out["joint"][SHAPE], test.y_shape),
                     second_task: accuracy(out["joint"]["second"], test.y_second)},
           "alone": {SHAPE: accuracy(out["shape alone"][SHAPE], test.y_shape),
                     second_task: accuracy(out["second alone"]["second"], test.y_second)}}
    chance = {SHAPE: float(torch.bincount(test.y_shape).max()) / len(test.y_shape),
              second_task: float(torch.bincount(test.y_second).max()) / len(test.y_second)}
    joint = logs["joint"]
    grad_norm = {task: {g: [row[i] for row in joint["norms"][key]] for i, g in enumerate(BODY)}
                 for task, key in ((SHAPE, SHAPE), (second_task, "second"))}
    rep.progress(1.0, "Done.")
    return MultiTaskResult(
        second_task=second_task, classes={SHAPE: shapes.SOURCE_CLASSES, second_task: train.second_classes},
        accuracy=acc, chance=chance, grad_steps=joint["steps"], grad_norm=grad_norm, grad_cosine=joint["cosine"],
        n_train=len(train.y_shape), n_test=len(test.y_shape), steps=steps,
        loss_curves={name: logs[name]["loss"] for name, _ in runs}, wall_s=time.perf_counter() - t0)
