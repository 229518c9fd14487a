"""A learner's own images on their way to a run: upload checks, image size, default plan, report chart, the job.

The own-data page keeps the learner's files in the session, checks each addition here before it is kept (so a bad
batch never spoils what is already there), decodes the images (tl_core.data.own) at the size the chosen architecture
needs, shows the validation report, and hands a plan plus the dataset to `own_train_job`, which splits it class by
class and trains on a job-manager worker thread. No streamlit here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import plotly.graph_objects as go
from torch import nn

from tl_core.training import estimate

from tl_core import palette
from tl_core.models.registry import get_spec
from tl_core.figures import FONT, Chart
from tl_core.jobs.manager import JobContext
from tl_core.data.own import MIN_PER_CLASS, OwnDataset, ValidationReport, stratified_split
from tl_core.training.plan import Plan, make_plan
from tl_core.training.records import RunResult
from tl_core.data.safe_io import Limits, UnsafeInput
from tl_core.training.trainer import TensorData, train

SHAPES_SIZE = 32  # the built-in network's input side
DEFAULT_VAL_FRACTION = 0.2  # share of each class held out for validation
CACHED_STRATEGIES = ("feature_extract", "early_classifier")  # strategies whose frozen body runs once
MAX_CLASSES = 20  # classes a learner can add one by one
MAX_NAME = 40  # characters in a class name

Files = list[tuple[str, bytes]]  # [(file name, file bytes), ...] of one class


# ---- class-by-class bookkeeping ------------------------------------------------------------------------------
def check_class_name(name: str, existing: list[str]) -> str:
    """A new class name, stripped, or ValueError saying what to change.

    Args:
        name: What the learner typed.
        existing: The names already in use.

    Raises:
        ValueError: If the name is empty, too long, contains a slash or a control character, is already used
            (ignoring case) or there are already MAX_CLASSES classes.
    """
    clean = str(name).strip()
    if not clean:
        raise ValueError("Type a name for the class first, for example 'cats'.")
    if len(clean) > MAX_NAME:
        raise ValueError(f"Class names can have at most {MAX_NAME} characters; this one has {len(clean)}.")
    if any(ch in clean for ch in "/\\") or any(ord(ch) < 32 for ch in clean):
        raise ValueError("Class names cannot contain slashes or control characters; use letters, digits and spaces.")
    if clean.casefold() in {e.casefold() for e in existing}:
        raise ValueError(f"There is already a class called {clean!r}; give every class a different name.")
    if len(existing) >= MAX_CLASSES:
        raise ValueError(f"There are already {MAX_CLASSES} classes, the most this page takes. Remove one first.")
    return clean


def check_additions(current: list[Files], new: Files, limits: Limits = Limits()) -> None:
    """Refuse a batch of files for one class before it is kept, if it would break a limit.

    The whole batch is refused or kept, so what the learner added before is never lost. Files that are not
    images are kept here and reported (skipped, with the reason) by the validation report.

    Args:
        current: The files of every class so far.
        new: The batch to add.
        limits: max_file_bytes (per file), max_files and max_total_bytes (all classes together).

    Raises:
        UnsafeInput: Naming the file or the total that is too large, with what to do.
    """
    for fname, data in new:
        if len(data) > limits.max_file_bytes:
            raise UnsafeInput(f"{fname!r} is {len(data) / 2**20:.1f} MB; the limit per image is "
                              f"{limits.max_file_bytes / 2**20:.0f} MB. Use a smaller image. Nothing was added.",
                              "too large")
    n = sum(len(f) for f in current) + len(new)
    if n > limits.max_files:
        raise UnsafeInput(f"That would make {n} images; the limit is {limits.max_files}. Add fewer images. "
                          f"Nothing was added.", "too many files")
    total = sum(len(b) for f in current for _, b in f) + sum(len(b) for _, b in new)
    if total > limits.max_total_bytes:
        raise UnsafeInput(f"That would make {total / 2**20:.1f} MB of images; the limit is "
                          f"{limits.max_total_bytes / 2**20:.0f} MB. Add fewer or smaller images. Nothing was added.",
                          "too large")


def previews(ds: OwnDataset, per_class: int = 6, side: int = 64) -> dict[str, list[np.ndarray]]:
    """A few decoded images of every class, as the model will get them, sized for display.

    Args:
        ds: The decoded dataset.
        per_class: Images per class at most.
        side: Display side in pixels (nearest-neighbour up, or area-averaged down).

    Returns:
        {class: [uint8 (side, side, 3), ...]}.
    """
    from PIL import Image

    out: dict[str, list[np.ndarray]] = {}
    for i, c in enumerate(ds.classes):
        tiles = []
        for idx in np.flatnonzero(ds.labels == i)[:per_class]:
            px = np.round(np.clip(ds.images[idx], 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8)  # (S, S, 3)
            im = Image.fromarray(px, "RGB")
            method = Image.Resampling.NEAREST if im.width <= side else Image.Resampling.BOX
            tiles.append(np.asarray(im.resize((side, side), method)))
        out[c] = tiles
    return out


def image_size_for(arch: str) -> int:
    """The side the learner's images are decoded at: 32 for the built-in network, else the architecture's own.

    Raises:
        ValueError: If the architecture is unknown.
    """
    spec = get_spec(arch)
    return SHAPES_SIZE if not spec.torchvision else spec.input_size


def default_strategy(arch: str, on_cpu: bool) -> str:
    """The strategy the page preselects.

    An ImageNet model on the CPU defaults to fixed feature extraction: its frozen body runs once over the images
    (the trainer caches the features), so a couple of hundred images at 224 px train in seconds. The built-in
    network (and any model on a GPU) defaults to fine-tuning its final layers.
    """
    return "feature_extract" if get_spec(arch).torchvision and on_cpu else "finetune_top"


def is_cached(plan: Plan) -> bool:
    """Whether the trainer computes the frozen body's features once for this plan (as tl_core.training.estimate assumes)."""
    return plan.strategy in CACHED_STRATEGIES and not plan.augment and plan.bn_policy == "eval"


def needs_estimate(plan: Plan, on_cpu: bool) -> bool:
    """Whether to show the measured run time and ask for confirmation before starting: an ImageNet-sized model
    trained on the CPU through all its layers every step (anything not cached)."""
    return on_cpu and plan.spec.torchvision and not is_cached(plan)


def split_sizes(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[int, int]:
    """(training images, validation images) the stratified split will produce."""
    tr, va = stratified_split(labels, val_fraction, seed)
    return len(tr), len(va)


def own_plan(arch: str, strategy: str, n_train: int, n_classes: int, *, epochs: int = 10, lr: float = 3e-3, seed: int = 0,
             batch_size: int = 32, augment: bool = False) -> Plan:
    """A plan for the learner's data: the strategy's usual freezing, with the batch fitted to the data.

    Args:
        arch: A registry key.
        strategy: A key of tl_core.training.plan.STRATEGIES.
        n_train: Training images after the split.
        n_classes: Classes in the data.
        epochs: Passes over the training data (raised to reach the plan's minimum steps).
        lr: Base learning rate.
        seed: Seeds the weights and the shuffling.
        batch_size: Largest batch; lowered to n_train if the data is smaller.
        augment: Random flips and shifts (turns the feature cache off).

    Returns:
        A plan validated against the data.

    Raises:
        ValueError: If the plan cannot run on this data, saying what to change.
    """
    plan = make_plan(strategy, arch=arch, epochs=epochs, lr=lr, seed=seed, augment=augment,
                     batch_size=max(1, min(batch_size, n_train)))
    return plan.validate_for_data(n_train, n_classes)


# ---- the report as a chart -----------------------------------------------------------------------------------
def counts_chart(report: ValidationReport) -> Chart:
    """One bar per class with its usable images, the minimum marked, and a takeaway about balance.

    Raises:
        ValueError: If the report has no classes.
    """
    if not report.classes:
        raise ValueError("There are no classes to draw yet; add images first.")
    counts = [report.counts[c] for c in report.classes]
    colours = [palette.VERMILLION if n < MIN_PER_CLASS else palette.BLUE for n in counts]
    fig = go.Figure(go.Bar(x=report.classes, y=counts, marker=dict(color=colours), text=counts,
                           textposition="outside", cliponaxis=False,
                           hovertemplate="%{x}: %{y} images<extra></extra>"))
    fig.add_hline(y=MIN_PER_CLASS, line=dict(color=palette.VERMILLION, dash="dash"),
                  annotation_text=f"minimum {MIN_PER_CLASS}", annotation_position="top left",
                  annotation=dict(bgcolor="rgba(255,255,255,0.85)"))
    fig.update_layout(title=dict(text="Usable images per class"), font=FONT, height=360, plot_bgcolor="white",
                      margin=dict(l=10, r=10, t=70, b=10), yaxis=dict(title="images", gridcolor=palette.LIGHT,
                                                                     rangemode="tozero"),
                      xaxis=dict(title="class"))
    small = [c for c in report.classes if report.counts[c] < MIN_PER_CLASS]
    most = max(report.classes, key=report.counts.get)
    least = min(report.classes, key=report.counts.get)
    if small:
        takeaway = f"{', '.join(small)} {'has' if len(small) == 1 else 'have'} fewer than {MIN_PER_CLASS} images: " \
                   f"add more before training."
    elif len(report.classes) < 2:
        takeaway = f"Only one class ({most}, {report.counts[most]} images): a classifier needs at least two."
    elif report.counts[most] == report.counts[least]:
        takeaway = f"Balanced: every class has {report.counts[most]} images."
    else:
        ratio = report.counts[most] / max(report.counts[least], 1)
        takeaway = (f"{most} has the most images ({report.counts[most]}), {least} the fewest "
                    f"({report.counts[least]}): {ratio:.1f}x apart"
                    + (", so accuracy alone can flatter the model; check the per-class results." if ratio >= 2
                       else ", close enough to balanced."))
    return Chart(fig, takeaway)


# ---- the job -----------------------------------------------------------------------------------------------
@dataclass
class OwnOutcome:
    """What an own-data training job returns."""

    result: RunResult  # the run
    val_images: np.ndarray  # (N_val, 3, S, S) float32, the validation images (for the misclassified gallery)
    classes: tuple[str, ...]  # class names in label order
    n_train: int  # training images
    n_val: int  # validation images


def split_tensors(ds: OwnDataset, val_fraction: float = DEFAULT_VAL_FRACTION,
                  seed: int = 0) -> tuple[TensorData, TensorData]:
    """The dataset split class by class into (train, val) tensors.

    Raises:
        ValueError: If the report has blocking problems or the split leaves no validation image.
    """
    if not ds.report.ok:
        raise ValueError(f"The data cannot be trained on yet: {ds.report.problems[0]}")
    tr, va = stratified_split(ds.labels, val_fraction, seed)
    if len(va) == 0:
        raise ValueError("The split left no validation image; add at least two images per class.")
    return (TensorData.from_numpy(ds.images[tr], ds.labels[tr], ds.classes),
            TensorData.from_numpy(ds.images[va], ds.labels[va], ds.classes))


def own_train_job(plan: Plan, ds: OwnDataset, val_fraction: float = DEFAULT_VAL_FRACTION,
                  base: nn.Module | None = None) -> Callable[[JobContext], OwnOutcome]:
    """A job that splits the learner's data and trains the plan on it; records go to ctx.buffer.

    Args:
        plan: The plan; its batch is lowered to the training set's size if needed.
        ds: The decoded dataset (read-only; the split copies what it needs).
        val_fraction: Share of each class held out for validation.
        base: The pretrained model to start from (copied by the trainer; default: the architecture's).

    Returns:
        fn(ctx) for JobManager.submit.
    """
    def fn(ctx: JobContext) -> OwnOutcome:
        tr, va = split_tensors(ds, val_fraction, plan.seed)
        run_plan = replace(plan, batch_size=min(plan.batch_size, len(tr)))
        result = train(run_plan, tr, va, base=base, on_record=ctx.emit, cancel=ctx.cancel)
        return OwnOutcome(result, va.x.numpy(), tuple(ds.classes), len(tr), len(va))

    return fn


def estimate_job(plan: Plan, sizes: tuple[int, int], n_classes: int, image_size: int,
                 base: nn.Module | None = None) -> Callable[[JobContext], estimate.Estimate | str]:
    """A job that measures how long the plan will take here (a few steps), so it runs under the job limits too.

    Returns:
        fn(ctx) for JobManager.submit; its result is the Estimate, or a sentence saying why measuring failed.
    """
    def fn(ctx: JobContext) -> estimate.Estimate | str:
        try:
            return estimate.estimate_run(plan, sizes[0], sizes[1], n_classes, image_size, base=base)
        except (ValueError, RuntimeError) as e:  # e.g. out of memory: say so instead of failing the page
            return f"The measurement failed: {e}"

    return fn


def similarity_job(ds: OwnDataset, seed: int = 0) -> Callable[[JobContext], tuple | str]:
    """A job that measures how similar the learner's images look to the source data, and places them on the
    size-versus-similarity quadrant (size: the smallest class).

    Returns:
        fn(ctx) for JobManager.submit; its result is (SimilarityReport, Placement), or a sentence saying why not.
    """
    def fn(ctx: JobContext) -> tuple | str:
        from tl_core.data import shapes
        from tl_core.experiments.similarity import measure_similarity, place_on_quadrant

        try:
            report = measure_similarity(shapes.make_source(50, seed, "val").images, ds.images, seed=seed)
        except ValueError as e:
            return f"Could not measure: {e}"
        return report, place_on_quadrant(report, min(ds.report.counts.values()))

    return fn
