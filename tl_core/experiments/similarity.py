"""Measured similarity between two image sets, calibrated on the shapes world, and placement on the quadrant.

How far apart are two sets of images, as the source model sees them? Both sets go through the source model's
body (its pooled block4 features). Two numbers come out:

* the squared maximum mean discrepancy (MMD², RBF kernel with a fixed bandwidth) between the two feature
  clouds: 0 when they come from the same distribution, larger the further apart they are;
* the held-out accuracy of a domain classifier (logistic regression, 2-fold cross-validation) that tries to
  tell the sets apart: 50% when it cannot, 100% when every image gives its set away.

The MMD² is then calibrated on the shapes world, where the true shift is known: the source shapes are drawn
at shifts 0, 0.1, ..., 1 and their MMD² to a reference source sample is recorded. A measured MMD² is mapped to
the shift that produces the same distance, and similarity = 1 - that shift, so a similarity of 0.6 reads "as
different from the first set as the source shapes are from a shapes world at shift 0.4". Beyond the most
shifted world the similarity is 0. `measure_similarity` accepts numpy arrays or tensors of any size, so the
own-data page can call it on uploads.

That scale belongs to the shapes model. An ImageNet model's source is ImageNet, whose images are not on this
server; its BatchNorm layers, though, kept the mean and variance of every channel over ImageNet's training images.
`source_similarity` compares a dataset's own channel statistics with those, on a scale from "the same statistics"
(1) to "as far as the drawn shapes" (0), and `check_own_data` picks the measurement that belongs to the selected
model, saying when it can only offer the shapes model's.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tl_core.data import shapes
from tl_core.teaching.quadrant import classify_similarity, classify_size, recommend
from tl_core.experiments import OnRecord, Reporter
from tl_core.experiments.common import (check_int, check_seed, encode, encoder, fit_linear, median_bandwidth, mmd2,
                                        source_net)

CALIBRATION_SHIFTS = (0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0)  # shapes-world shifts the scale is pinned to
CALIBRATION_PER_CLASS = 50  # source images per class at each calibration level (6 classes: 300 images)
CALIBRATION_SEED = 10_000  # the calibration's own images; measurements in tests use other seeds
MIN_IMAGES = 10  # fewest images per set (the domain classifier needs some to hold out)
MAX_IMAGES = 300  # default cap per set; larger sets are subsampled (the MMD is O(n²))
IMAGE_SIZE = shapes.IMAGE_SIZE  # the source model's input side; other sizes are resized

Encoder = Callable[[torch.Tensor], torch.Tensor]  # (N, 3, S, S) in [0, 1] -> (N, D) features


@dataclass(frozen=True)
class Calibration:
    """The feature distance (MMD²) from the source data to the shapes world at each known shift."""

    shifts: tuple[float, ...]  # calibration shifts, increasing
    mmd2: tuple[float, ...]  # MMD² at each shift, made non-decreasing (a running maximum)
    bandwidth: float  # the RBF kernel's squared length scale, from the reference source sample

    def shift_for(self, distance: float) -> float:
        """The shapes-world shift whose MMD² matches `distance` (linear interpolation; 0 below, 1 above)."""
        xs, ys = np.asarray(self.mmd2), np.asarray(self.shifts)
        if distance <= xs[0]:
            return float(ys[0])
        if distance >= xs[-1]:
            return float(ys[-1])
        # np.interp needs strictly increasing x: where the curve is flat, take the first shift that reaches it
        keep = np.concatenate([[True], np.diff(xs) > 0])
        return float(np.interp(distance, xs[keep], ys[keep]))


@dataclass
class SimilarityReport:
    """How similar two image sets look to the source model, with the evidence and a sentence for the learner."""

    similarity: float  # calibrated similarity in [0, 1]: 1 - the equivalent shapes-world shift
    equivalent_shift: float  # the shapes-world shift whose feature distance to the source matches this pair's
    mmd2: float  # squared MMD between the two sets' pooled features (RBF kernel, calibration bandwidth)
    domain_accuracy: float  # held-out accuracy of a classifier telling the sets apart (0.5 = indistinguishable)
    classifier_similarity: float  # 2 * (1 - domain_accuracy), clipped to [0, 1]: the classifier's own reading
    verdict: str  # "similar" or "different" (tl_core.teaching.quadrant.classify_similarity)
    explanation: str  # what the numbers mean, in two sentences
    n_a: int  # images of the first set used
    n_b: int  # images of the second set used
    beyond_calibration: bool  # farther apart than the most shifted shapes world (similarity pinned at 0)
    calibration: Calibration  # the scale used


@dataclass
class Placement:
    """A dataset placed on the size-versus-similarity quadrant from its size and measured similarity."""

    n_per_class: int  # labelled images per class
    similarity: float  # measured similarity
    size: str  # "lots" or "little"
    verdict: str  # "similar" or "different"
    strategy: str  # the recommended strategy key (tl_core.training.plan.STRATEGIES)
    label: str  # the cell's headline, e.g. "Fine-tune only final layers"
    explanation: str  # why, in a sentence


@dataclass
class CalibrationCheck:
    """Measured against true similarity for shapes-world targets: how well the measurement recovers the knob."""

    true_similarity: list[float]  # the DataSpec similarity of each target
    measured: list[float]  # measured similarity of each target to the source data
    domain_accuracy: list[float]  # the domain classifier's accuracy for each target
    worlds: list[str]  # each target world, described
    task: str  # "auto" (the app's targets: new shapes, or gratings below 0.5) or "source" (same shapes)
    wall_s: float = 0.0  # seconds it took
    reports: list[SimilarityReport] = field(default_factory=list)  # the full reports, in order


# ---- images in --------------------------------------------------------------------------------------------------
def as_image_batch(images: object, image_size: int = IMAGE_SIZE) -> torch.Tensor:
    """Bring images into the source model's format: (N, 3, S, S) float32 in [0, 1].

    Accepts a numpy array or tensor shaped (N, 3, H, W), (N, H, W, 3), (N, 1, H, W), (N, H, W, 1), (N, H, W)
    (grey) or with 4 channels (alpha is dropped), as uint8 in 0..255 or floats in [0, 1]; or a sequence of
    single images (H, W, C) / (C, H, W) / (H, W) of any sizes. Everything is resized to S x S (averaging pixel
    areas when shrinking, bilinear when enlarging).

    Raises:
        ValueError: If the shape, value range or type cannot be read as images; the message says what to change.
    """
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("No images given; pass at least one image.")
        return torch.cat([as_image_batch(_one(img), image_size) for img in images])
    t = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
    if t.dtype == torch.bool or not (t.dtype.is_floating_point or t.dtype == torch.uint8):
        in_byte_range = t.numel() > 0 and int(t.min()) >= 0 and int(t.max()) <= 255
        if t.dtype in (torch.int16, torch.int32, torch.int64) and in_byte_range:
            t = t.to(torch.uint8)
        else:
            raise ValueError(f"Images must be uint8 (0..255) or floats in [0, 1]; got dtype {t.dtype}.")
    if t.ndim == 3:
        t = t.unsqueeze(1)  # (N, H, W) grey
    if t.ndim != 4:
        raise ValueError(f"Expected a batch of images shaped (N, C, H, W) or (N, H, W, C); got shape {tuple(t.shape)}.")
    if t.shape[1] not in (1, 3, 4) and t.shape[-1] in (1, 3, 4):
        t = t.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if t.shape[1] not in (1, 3, 4):
        raise ValueError(f"Images need 1 (grey), 3 (RGB) or 4 (RGBA) channels; got shape {tuple(t.shape)}.")
    if t.shape[0] == 0 or t.shape[2] < 2 or t.shape[3] < 2:
        raise ValueError(f"The batch is empty or its images are smaller than 2x2 pixels: shape {tuple(t.shape)}.")
    x = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    if not torch.isfinite(x).all():
        raise ValueError("The images contain NaN or infinite values.")
    if float(x.min()) < -1e-3 or float(x.max()) > 1 + 1e-3:
        raise ValueError(f"Float images must lie in [0, 1]; these span {float(x.min()):.3g}..{float(x.max()):.3g}. "
                         f"Divide 0..255 images by 255.")
    x = x.clamp(0, 1)
    if x.shape[1] == 4:
        x = x[:, :3]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (image_size, image_size):  # shrink by averaging pixel areas (no aliasing), else bilinear
        shrink = x.shape[-1] >= image_size and x.shape[-2] >= image_size
        x = F.interpolate(x, size=(image_size, image_size), mode="area") if shrink else F.interpolate(
            x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x.contiguous()


def _one(img: object) -> torch.Tensor:
    """One image (H, W), (H, W, C) or (C, H, W) as a batch of one."""
    t = img if isinstance(img, torch.Tensor) else torch.from_numpy(np.asarray(img))
    if t.ndim == 2:
        return t.unsqueeze(0)
    if t.ndim == 3:
        return t.unsqueeze(0)
    raise ValueError(f"Each image must be (H, W), (H, W, C) or (C, H, W); got shape {tuple(t.shape)}.")


# ---- the scale ---------------------------------------------------------------------------------------------------
def _default_encoder() -> Encoder:
    body = encoder(source_net())
    return lambda x: encode(body, x)


@functools.lru_cache(maxsize=1)
def _default_features() -> Encoder:
    return _default_encoder()


_CALIBRATIONS: dict[int, tuple[Encoder, Calibration]] = {}  # id(encoder) -> (encoder kept alive, calibration)
_CAL_LOCK = threading.Lock()


def calibrate(features: Encoder | None = None) -> Calibration:
    """The shapes-world calibration of the MMD² scale for an encoder (computed once per encoder and process).

    Args:
        features: Maps (N, 3, 32, 32) images in [0, 1] to (N, D) features; default: the source model's body.

    Returns:
        The Calibration.
    """
    fn = features or _default_features()
    with _CAL_LOCK:
        hit = _CALIBRATIONS.get(id(fn))
        if hit is not None and hit[0] is fn:
            return hit[1]
    ref = fn(torch.from_numpy(shapes.make_source(CALIBRATION_PER_CLASS, CALIBRATION_SEED, "val").images))
    bandwidth = median_bandwidth(ref)
    values = []
    for s in CALIBRATION_SHIFTS:
        level = shapes.generate(shapes.WorldSpec("source", s), CALIBRATION_PER_CLASS, CALIBRATION_SEED, "test")
        values.append(max(mmd2(ref, fn(torch.from_numpy(level.images)), bandwidth), 0.0))
    monotone = tuple(float(v) for v in np.maximum.accumulate(values))
    cal = Calibration(CALIBRATION_SHIFTS, monotone, bandwidth)
    with _CAL_LOCK:
        _CALIBRATIONS[id(fn)] = (fn, cal)
    return cal


def domain_accuracy(fa: torch.Tensor, fb: torch.Tensor, seed: int = 0) -> float:
    """Held-out accuracy of a logistic-regression classifier telling two feature sets apart (2-fold, balanced).

    Args:
        fa: (N, D) features of the first set; fb: (M, D) of the second.
        seed: Seeds the balancing subsample and the fold split.

    Returns:
        Accuracy in [0, 1]; about 0.5 when the sets are indistinguishable.
    """
    gen = torch.Generator().manual_seed(seed)
    n = min(len(fa), len(fb))
    a = fa[torch.randperm(len(fa), generator=gen)[:n]]
    b = fb[torch.randperm(len(fb), generator=gen)[:n]]
    x = torch.cat([a, b])
    y = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    fold = torch.zeros(2 * n, dtype=torch.bool)
    for part in (torch.randperm(n, generator=gen)[: n // 2], n + torch.randperm(n, generator=gen)[: n // 2]):
        fold[part] = True  # half of each set in fold 1
    correct = 0
    for test in (fold, ~fold):
        head = fit_linear(x[~test], y[~test], 2, steps=200, weight_decay=1e-2)
        correct += int((head.logits(x[test]).argmax(1) == y[test]).sum())
    return correct / (2 * n)


# ---- measuring -------------------------------------------------------------------------------------------------
def measure_similarity(images_a: object, images_b: object, *, seed: int = 0, max_images: int = MAX_IMAGES,
                       features: Encoder | None = None) -> SimilarityReport:
    """How similar two image sets look to the source model, on a scale calibrated in shapes-world shifts.

    Args:
        images_a: The reference set (e.g. the source data), in any format `as_image_batch` reads.
        images_b: The set to compare (e.g. a target dataset or an upload).
        seed: Seeds the subsampling and the domain classifier's folds.
        max_images: Use at most this many images of each set (random subsample; 10..2000).
        features: Maps (N, 3, 32, 32) images in [0, 1] to (N, D) features; default: the source model's pooled
            block4 features. A custom encoder gets its own shapes-world calibration (computed on first use).

    Returns:
        A SimilarityReport; `similarity` is the calibrated score, `verdict` its quadrant column.

    Raises:
        ValueError: If either set has fewer than MIN_IMAGES images or cannot be read as images.
    """
    seed = check_seed(seed)
    max_images = check_int("max_images", max_images, MIN_IMAGES, 2000)
    xa, xb = as_image_batch(images_a), as_image_batch(images_b)
    for name, x in (("first", xa), ("second", xb)):
        if len(x) < MIN_IMAGES:
            raise ValueError(f"The {name} set has {len(x)} images; measuring similarity needs at least {MIN_IMAGES}.")
    gen = torch.Generator().manual_seed(seed)
    xa = xa[torch.randperm(len(xa), generator=gen)[:max_images]]
    xb = xb[torch.randperm(len(xb), generator=gen)[:max_images]]
    fn = features or _default_features()
    cal = calibrate(features)
    fa, fb = fn(xa), fn(xb)
    distance = max(mmd2(fa, fb, cal.bandwidth), 0.0)
    shift = cal.shift_for(distance)
    similarity = round(1.0 - shift, 4)
    acc = domain_accuracy(fa, fb, seed)
    clf_sim = float(min(max(2 * (1 - acc), 0.0), 1.0))
    verdict = classify_similarity(similarity)
    beyond = distance > cal.mmd2[-1]
    if beyond:
        scale = "farther apart than the source shapes are from the most shifted shapes world (shift 1)"
    elif shift == 0:
        scale = "as close as two samples of the very same shapes world"
    else:
        scale = f"as far apart as the source shapes are from the shapes world at shift {shift:.2f}"
    explanation = (f"To the source model's features the two sets are {scale}: similarity {similarity:.2f}, "
                   f"which counts as {verdict} (the line is at 0.5). A classifier trained to tell them apart is "
                   f"right {acc:.0%} of the time on held-out images (50% means it cannot tell them apart).")
    return SimilarityReport(similarity=similarity, equivalent_shift=shift, mmd2=distance, domain_accuracy=acc,
                            classifier_similarity=clf_sim, verdict=verdict, explanation=explanation, n_a=len(xa),
                            n_b=len(xb), beyond_calibration=beyond, calibration=cal)


def place_on_quadrant(report: SimilarityReport | SourceSimilarity, n_per_class: int,
                      arch: str = "shapesnet") -> Placement:
    """Put a dataset on the size-versus-similarity quadrant from its size and its measured similarity.

    Args:
        report: From measure_similarity (the source data first, the dataset second) or source_similarity.
        n_per_class: The dataset's labelled images per class.
        arch: The architecture the advice is for: the quadrant's strategy for it (tl_core.teaching.quadrant
            .strategy_for: fixed feature extraction where the final layers hold nearly all the weights).

    Returns:
        The Placement with the quadrant's recommendation.

    Raises:
        ValueError: If n_per_class is not a whole number of at least 1, or the architecture is unknown.
    """
    from tl_core.teaching.quadrant import strategy_for
    from tl_core.training.plan import STRATEGIES

    size = classify_size(n_per_class)
    rec = recommend(size, report.verdict)
    strategy = strategy_for(size, report.verdict, arch)
    label = rec.label if strategy == rec.strategy else STRATEGIES[strategy].label
    departs = "" if strategy == rec.strategy else (f" (the course's cell says {rec.label.lower()}; for {arch}, whose "
                                                   f"final layers hold nearly all its weights, the quadrant uses "
                                                   f"{label.lower()})")
    explanation = (f"{n_per_class} labelled images per class is {size} data, and a measured similarity of "
                   f"{report.similarity:.2f} is {report.verdict}: the quadrant says {label.lower()}{departs}.")
    return Placement(n_per_class, report.similarity, size, report.verdict, strategy, label, explanation)


def check_calibration(similarities: Sequence[float] = (1.0, 0.75, 0.5, 0.25, 0.0), *, task: str = "auto",
                      n_per_class: int = 50, seed: int = 0, on_record: OnRecord | None = None,
                      cancel: threading.Event | None = None) -> CalibrationCheck:
    """Measure shapes-world targets of known similarity against the source data.

    Args:
        similarities: The true similarities to try (each in [0, 1]).
        task: "auto" for the app's targets (new shapes from 0.5 up, grating orientation below) or "source"
            for the source shapes themselves at shift 1 - similarity.
        n_per_class: Images per class of each target (10..200).
        seed: Seeds the images (use a seed other than the calibration's to test it honestly).
        on_record: Receives Progress records.
        cancel: Stops the run.

    Returns:
        A CalibrationCheck with one measurement per similarity.

    Raises:
        ValueError: If an argument is out of range.
        Cancelled: If the cancel event was set.
    """
    t0 = time.perf_counter()
    seed = check_seed(seed)
    n_per_class = check_int("n_per_class", n_per_class, 10, 200)
    if task not in ("auto", "source"):
        raise ValueError(f"task must be 'auto' or 'source'; got {task!r}.")
    rep = Reporter(on_record, cancel)
    rep.progress(0.0, "Calibrating on the shapes world…")
    calibrate()
    source = shapes.make_source(n_per_class, seed, "val").images
    out = CalibrationCheck([], [], [], [], task)
    for i, sim in enumerate(similarities):
        spec = shapes.target_spec(sim, task="source" if task == "source" else "auto")
        rep.progress(0.1 + 0.9 * i / len(similarities), f"Measuring {spec.describe()}…")
        per_class = max(MIN_IMAGES, n_per_class * 6 // len(spec.classes))  # about as many images as the source
        report = measure_similarity(source, shapes.generate(spec, per_class, seed, "test").images, seed=seed)
        out.true_similarity.append(float(sim))
        out.measured.append(report.similarity)
        out.domain_accuracy.append(report.domain_accuracy)
        out.worlds.append(spec.describe())
        out.reports.append(report)
    rep.progress(1.0, "Done.")
    out.wall_s = time.perf_counter() - t0
    return out


def shapes_target_check(similarity: float, n_per_class: int, seed: int = 0, *, on_record: OnRecord | None = None,
                        cancel: threading.Event | None = None) -> dict:
    """The quadrant lab's measurement: a shapes-world target of known similarity against the source data, its
    placement on the quadrant for n_per_class images, and the calibration check on fresh seeds.

    Returns:
        {"true", "world", "n", "report", "placement", "check"}.
    """
    from tl_core.data import shapes
    from tl_core.experiments import Reporter

    rep = Reporter(on_record, cancel)
    rep.progress(0.05, "Drawing the two image sets…")
    spec = shapes.target_spec(similarity)
    source = shapes.make_source(50, seed, "val").images
    target = shapes.generate(spec, max(10, 300 // len(spec.classes)), seed, "test").images
    rep.progress(0.15, "Measuring their similarity through the source model…")
    report = measure_similarity(source, target, seed=seed)
    rep.stage(0.4, 1.0)
    check = check_calibration(seed=seed + 1, cancel=cancel, on_record=lambda r: rep.progress(r.fraction, r.text))
    return {"true": similarity, "world": spec.describe(), "n": n_per_class, "report": report,
            "placement": place_on_quadrant(report, n_per_class), "check": check}


# ---- a model's own source: the statistics its BatchNorm layers kept --------------------------------------------
ANCHOR_PER_CLASS = 8  # drawn source shapes per class for the far end of the BatchNorm scale (6 classes: 48 images)
MAX_SOURCE_IMAGES = 48  # the learner's images used at most (a forward pass through an ImageNet model each)


@dataclass
class SourceSimilarity:
    """How close images come to a model's own training data, read from the statistics its BatchNorm layers kept.

    A BatchNorm layer keeps the running mean and variance of every channel over the data it was trained on (for a
    torchvision model: ImageNet's training images). The images' own per-channel statistics at every such layer
    are compared with those (Yin et al., 2020, "Dreaming to Distill", use the same statistics as a summary of
    the training data). No image of the source data is needed.
    """

    similarity: float  # 1 - divergence / anchor divergence, clipped to [0, 1]
    verdict: str  # "similar" or "different" (tl_core.teaching.quadrant.classify_similarity)
    divergence: float  # mean KL divergence of the images' channel statistics from the kept ones
    anchor_divergence: float  # the same for the drawn shapes of the shapes world: the scale's 0
    n_images: int  # images measured
    n_layers: int  # BatchNorm layers compared
    reference: str  # what the images were compared with, for the learner
    explanation: str  # what the numbers mean


def _batchnorms(model: nn.Module) -> list[nn.Module]:
    """The model's BatchNorm layers that keep running statistics."""
    return [m for m in model.modules()
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and m.running_mean is not None]


def batchnorm_divergence(model: nn.Module, images: torch.Tensor, *, preprocess: nn.Module | None = None,
                         batch: int = 16) -> tuple[float, int] | None:
    """Mean KL divergence from the images' per-channel statistics to the running statistics of every BatchNorm
    layer that the model's forward pass (in eval mode) runs.

    For each layer and channel, the input's mean m and variance v over the images and pixels are compared with the
    layer's running mean mu and variance s2 as Gaussians: KL = (v + (m - mu)^2) / (2 s2) - 1/2 + log(s2 / v) / 2.

    Args:
        model: Any model; it is not changed (hooks are added to a copy).
        images: (N, 3, H, W) floats in [0, 1].
        preprocess: Applied to each batch before the model (e.g. networks.preprocess_for); default none.
        batch: Images per forward pass.

    Returns:
        (mean KL over layers and channels, layers compared), or None when the model has no BatchNorm layer.
    """
    import copy

    if not _batchnorms(model):
        return None
    net = copy.deepcopy(model).eval()  # hooks on a private copy: a shared model may serve other threads
    layers = _batchnorms(net)
    sums: dict[int, list[torch.Tensor]] = {}

    def hook(module: nn.Module, args: tuple) -> None:
        x = args[0].detach().double()  # (B, C, H, W) or (B, C)
        dims = [d for d in range(x.ndim) if d != 1]
        n = x.numel() // x.shape[1]
        s = sums.setdefault(id(module), [torch.zeros(x.shape[1], dtype=torch.float64)] * 2 + [0])
        sums[id(module)] = [s[0] + x.sum(dims), s[1] + (x * x).sum(dims), s[2] + n]

    handles = [m.register_forward_pre_hook(hook) for m in layers]
    try:
        with torch.inference_mode():
            for i in range(0, len(images), batch):
                xb = images[i:i + batch].float()
                net(preprocess(xb) if preprocess is not None else xb)
    finally:
        for h in handles:
            h.remove()
    kls = []
    for m in layers:
        if id(m) not in sums:
            continue  # not on the eval path (e.g. Inception's auxiliary head)
        total, total_sq, n = sums[id(m)]
        mean = total / n
        var = (total_sq / n - mean * mean).clamp_min(1e-8)
        mu, s2 = m.running_mean.double(), m.running_var.double().clamp_min(1e-8)
        kl = (var + (mean - mu) ** 2) / (2 * s2) - 0.5 + 0.5 * torch.log(s2 / var)  # (C,)
        kls.append(float(kl.mean()))
    return (sum(kls) / len(kls), len(kls)) if kls else None


def source_similarity(model: nn.Module, images: object, *, anchor: object, reference: str,
                      preprocess: nn.Module | None = None, max_images: int = MAX_SOURCE_IMAGES,
                      seed: int = 0) -> SourceSimilarity | None:
    """Read how close images come to a model's training data from its BatchNorm statistics, on a scale from the
    statistics themselves (1) to an anchor set (0).

    Args:
        model: The model whose source data is the reference.
        images: The images to place (any layout as_image_batch reads), e.g. a learner's dataset.
        anchor: Images known to be far from the source data: they define similarity 0.
        reference: What the model's statistics summarise, in words (shown to the learner).
        preprocess: The model's input transform (resizing, normalisation).
        max_images: Use at most this many of `images` (a random subsample).
        seed: Seeds the subsample.

    Returns:
        A SourceSimilarity, or None when the model has no BatchNorm statistics to compare with.

    Raises:
        ValueError: If there are fewer than MIN_IMAGES images or they cannot be read.
    """
    seed = check_seed(seed)
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim != 4 or x.shape[1] != 3:
        x = as_image_batch(images)
    if len(x) < MIN_IMAGES:
        raise ValueError(f"There are {len(x)} images; measuring similarity needs at least {MIN_IMAGES}.")
    x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_images]].float()
    a = anchor if isinstance(anchor, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(anchor))
    mine = batchnorm_divergence(model, x, preprocess=preprocess)
    far = batchnorm_divergence(model, a.float(), preprocess=preprocess)
    if mine is None or far is None:
        return None
    (d, layers), (d_far, _) = mine, far
    similarity = round(float(min(max(1.0 - d / d_far, 0.0), 1.0)), 4) if d_far > 0 else 0.0
    verdict = classify_similarity(similarity)
    explanation = (f"At {layers} BatchNorm layers, the channel statistics of these {len(x)} images differ from "
                   f"{reference} by {d:.3g} (mean KL divergence); the drawn shapes of the shapes world differ by "
                   f"{d_far:.3g}. On that scale (1 = the same statistics, 0 = as far as the drawn shapes) they sit "
                   f"at {similarity:.2f}, which counts as {verdict}: the line at 0.5 is this app's choice, not a "
                   f"published threshold.")
    return SourceSimilarity(similarity, verdict, d, d_far, len(x), layers, reference, explanation)


def imagenet_similarity(model: nn.Module, arch: str, images: object, *, seed: int = 0) -> SourceSimilarity | None:
    """How close images come to ImageNet, through an ImageNet model's own BatchNorm statistics.

    Args:
        model: A torchvision model of `arch` with its ImageNet weights (not changed).
        arch: Its registry key.
        images: (N, 3, S, S) floats in [0, 1], e.g. OwnDataset.images decoded at the model's input size.
        seed: Seeds the subsample.

    Returns:
        A SourceSimilarity, or None when the architecture has no BatchNorm layers (AlexNet, VGG).
    """
    from tl_core.models.networks import preprocess_for

    x = torch.from_numpy(np.ascontiguousarray(images)) if not isinstance(images, torch.Tensor) else images
    anchor = torch.from_numpy(shapes.make_source(ANCHOR_PER_CLASS, CALIBRATION_SEED, "val").images)
    return source_similarity(model, x, anchor=anchor, preprocess=preprocess_for(arch, int(x.shape[-1])), seed=seed,
                             reference=f"ImageNet's training images, as summarised by the running means and variances "
                                       f"that {arch}'s BatchNorm layers kept (no ImageNet image is on this server)")


@dataclass
class SourceCheck:
    """A learner's dataset measured against the source data of the model it would re-use, placed on the quadrant."""

    arch: str  # the architecture selected when it was measured
    measured_with: str  # the model the measurement went through: arch itself, or "shapesnet"
    reference: str  # what the images were compared with, in words
    report: SimilarityReport | SourceSimilarity  # the measurement
    placement: Placement  # the quadrant cell for the dataset's size and the measured similarity
    applies: bool  # whether the advice is for `arch` (False: measured for the shapes model only)
    note: str  # why the measurement is (or is not) about `arch`, for the learner


def check_own_data(images: object, n_per_class: int, arch: str, *, model: nn.Module | None = None,
                   seed: int = 0) -> SourceCheck:
    """Measure a learner's images against the source of the selected model and place them on the quadrant.

    The shapes model's source is the shapes world: measured through ShapesNet on the calibrated scale. An ImageNet
    model's source is ImageNet: measured through that model's BatchNorm statistics when its weights are here
    (`model`) and it has BatchNorm layers. Otherwise the shapes-model measurement is made and marked as not
    applying to `arch`.

    Args:
        images: The learner's images, (N, 3, S, S) floats in [0, 1].
        n_per_class: Labelled images per class (the smallest class), for the quadrant's size.
        arch: The selected architecture (a registry key).
        model: For a torchvision arch, its model with ImageNet weights, or None when they are not on this machine.
        seed: Seeds the subsamples and the domain classifier.

    Returns:
        The SourceCheck.

    Raises:
        ValueError: If there are too few images or they cannot be read.
    """
    from tl_core.models.registry import get_spec

    if get_spec(arch).torchvision and model is not None:
        measured = imagenet_similarity(model, arch, images, seed=seed)
        if measured is not None:
            return SourceCheck(arch, arch, measured.reference, measured, place_on_quadrant(measured, n_per_class, arch),
                               True, f"Measured through {arch} against its own source data, ImageNet.")
        why = f"{arch} has no BatchNorm statistics to compare with"
    elif get_spec(arch).torchvision:
        why = f"{arch}'s ImageNet weights are not on this machine"
    else:
        why = ""
    report = measure_similarity(shapes.make_source(50, seed, "val").images, images, seed=seed)
    reference = "the shapes world (the six drawn source shapes), through the shapes model"
    if not why:
        return SourceCheck(arch, "shapesnet", reference, report, place_on_quadrant(report, n_per_class, arch), True,
                           "Measured through the shapes model against its own source data, the shapes world.")
    return SourceCheck(arch, "shapesnet", reference, report, place_on_quadrant(report, n_per_class), False,
                       f"{why}, so this is the shapes model's measurement only: it says how far your images are "
                       f"from the shapes world, not from ImageNet, and its advice is not applied to {arch}.")
