"""Small, fast transfer-learning experiments: one per setting of the domain-and-task matrix, and the quadrant lab.

Every experiment is a plain function in its own module (multitask, self_taught, adaptation, covariate,
clustering, similarity, lab) that takes a seed, an `on_record` callback and a cancel `threading.Event`, and
returns a result dataclass of plain numbers (no tensors), so the pages can draw it without touching torch.
While it runs it emits `tl_core.jobs.progress.Progress` records (and `Point`s for live curves) through the
callback; setting the cancel event stops it at the next check with `tl_core.jobs.progress.Cancelled`.

This package module is torch-free: the registry below lets the decision pages ask which settings have a demo
without importing torch; `run_demo` imports the experiment's module only when it runs.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tl_core.jobs.progress import Cancelled, Progress


@dataclass(frozen=True)
class Point:
    """One point of a live curve (a loss, an accuracy) that the page can draw while the experiment runs."""

    series: str  # the curve's name, e.g. "joint training"
    x: float  # usually the step
    y: float  # the value
    kind: str = "point"


OnRecord = Callable[[Any], None]


class Reporter:
    """Sends an experiment's records to its callback and checks its cancel flag; splits progress into stages."""

    def __init__(self, on_record: OnRecord | None = None, cancel: threading.Event | None = None) -> None:
        """Args:
        on_record: Called with every Progress and Point (from the experiment's thread); None drops them.
        cancel: Set it from any thread to stop the experiment at its next check.
        """
        self.on_record = on_record
        self.cancel = cancel or threading.Event()
        self._start, self._span = 0.0, 1.0  # the current stage's share of the whole run

    def check(self) -> None:
        """Raise Cancelled if the cancel event is set.

        Raises:
            Cancelled: When asked to stop.
        """
        if self.cancel.is_set():
            raise Cancelled("Stopped by request.")

    def stage(self, start: float, end: float) -> None:
        """Map the following `progress` fractions (0..1 within the stage) onto [start, end] of the whole run."""
        self._start, self._span = start, max(end - start, 0.0)

    def progress(self, fraction: float, message: str) -> None:
        """Report progress within the current stage (fraction 0..1), then check the cancel flag.

        Raises:
            Cancelled: When asked to stop.
        """
        overall = self._start + self._span * min(max(fraction, 0.0), 1.0)
        if self.on_record is not None:
            self.on_record(Progress(round(overall, 4), message))
        self.check()

    def point(self, series: str, x: float, y: float) -> None:
        """Report one point of a live curve."""
        if self.on_record is not None:
            self.on_record(Point(series, float(x), float(y)))


@dataclass(frozen=True)
class Knob:
    """One setting of a demo that the learner can change: a parameter of its run function and how to ask for it."""

    param: str  # keyword argument of the demo's function
    widget: str  # "select" (choices: ((value, label), ...)) or "slider" (choices: (min, max, step))
    label: str  # what the widget says
    choices: tuple  # see widget
    default: Any  # the starting value
    help: str = ""  # a tooltip, or ""


def _select(param: str, label: str, choices: dict[str, str], default: str, help: str = "") -> Knob:
    return Knob(param, "select", label, tuple(choices.items()), default, help)


def _slider(param: str, label: str, lo: float, hi: float, step: float, default: float, help: str = "") -> Knob:
    return Knob(param, "slider", label, (lo, hi, step), default, help)


@dataclass(frozen=True)
class Demo:
    """One runnable experiment for a setting of the domain-and-task matrix."""

    key: str  # the setting's key in tl_core.teaching.matrix (e.g. "domain_adaptation")
    title: str  # tab or section title
    module: str  # module of tl_core.experiments that runs it
    function: str  # the function in that module: fn(*, seed, on_record, cancel, **params) -> result
    question: str  # the question the experiment answers, one sentence
    how: str  # what the experiment does, in two or three sentences
    answers: tuple[bool, bool, bool, bool]  # matrix answers that lead here: source labels, target labels, same
    #                                        domain, same task (tl_core.teaching.matrix.classify's order)
    knobs: tuple[Knob, ...] = ()  # what the learner can change, in display order


DEMOS: dict[str, Demo] = {d.key: d for d in (
    Demo("multi_task", "Multi-task learning", "multitask", "run_multitask",
         "Does one network that learns the shape and a second label together do as well as two separate ones, "
         "and how hard does each task pull on the shared layers?",
         "The same images carry two labels: the shape, and a second label (filled or outlined, the colour, or the "
         "size). One ShapesNet body with two heads learns both at once; two more runs, with the same start, learn "
         "each task alone. Every few steps the two losses are back-propagated separately to measure how much "
         "gradient each head sends into each shared layer group.",
         (True, True, True, False), (
        _select("second_task", "Second task", {"fill": "filled or outlined", "colour": "colour (hue sector)",
                                               "size": "small or large"}, "fill",
                "The label learnt next to the shape, from the same images."),
        _slider("n_per_class", "Training images per shape", 10, 100, 5, 30, "Fewer images: sharing matters more."),
        _slider("steps", "Steps per run", 50, 400, 25, 150, "Each of the three runs takes this many steps."))),
    Demo("self_taught", "Self-taught learning", "self_taught", "run_self_taught",
         "Can unlabelled images of other shapes teach features that help when only a few target images are "
         "labelled?",
         "A network learns from unlabelled drawings of the six source shapes with a pretext task whose answers "
         "come from the pixels themselves (the figure's area, compactness, elongation and spread; or rebuilding "
         "the image). A linear classifier is then fitted on its frozen features from a few labelled images of the "
         "four new shapes, and compared with no pretraining and with the supervised source model.",
         (False, True, True, False), (
        _select("pretext", "Pretext task on the unlabelled images",
                {"geometry": "geometry of the figure", "autoencoder": "rebuild the image (autoencoder)"}, "geometry",
                "What the network must predict about each unlabelled image; the answer comes from its pixels."),
        _slider("n_labelled_per_class", "Labelled target images per class", 2, 50, 1, 10,
                "Self-taught learning shines when labels are scarce."),
        _slider("pretext_steps", "Pretext steps", 50, 400, 25, 200, "Training steps on the unlabelled images."))),
    Demo("domain_adaptation", "Domain adaptation", "adaptation", "run_adaptation",
         "The source model meets a shifted look with no target labels: how much do AdaBN and DANN win back?",
         "The shipped source model knows the six shapes on plain backgrounds. The target domain draws the same "
         "shapes differently and has no labels. AdaBN recomputes every BatchNorm statistic on the target images; "
         "DANN keeps training on the source while a domain classifier behind a gradient-reversal layer pushes the "
         "features to stop giving the domain away. Target labels are used only to score.",
         (True, False, False, True), (
        _select("look", "The target domain looks like",
                {"outline": "outlines only", "shifted": "texture, noise, low contrast (shift 0.8)",
                 "shifted_outline": "outlines on a shifted background"}, "outline",
                "The source domain is plain filled shapes."),
        _slider("steps", "DANN steps", 50, 300, 25, 150, "Each step sees 32 source and 32 target images."))),
    Demo("sample_selection_bias", "Sample-selection bias", "covariate", "run_covariate",
         "The labelled sample over-represents large shapes: does re-weighting it towards the target's sizes "
         "help?",
         "From one pool of labelled shapes, the labelled sample keeps large shapes far more often; the images to "
         "classify lean small. A domain classifier on the source model's features tells the two apart, and its "
         "odds become importance weights p_target(x) / p_source(x) for the labelled images. A simple classifier "
         "is trained with and without them, on several random draws.",
         (True, False, True, True), (
        _slider("bias", "Strength of the size bias", 1.0, 8.0, 0.5, 4.0,
                "How strongly the labelled sample favours large shapes (and the target small ones)."),
        _slider("repeats", "Repeats", 1, 10, 1, 5, "Independent draws of the biased and the target sample."),
        _select("feature_layer", "The classifier sees the source model's features after",
                {"block1": "block1", "block2": "block2", "block3": "block3", "block4": "block4 (final)"}, "block2",
                "A simpler (earlier) representation leaves the classifier more to get wrong on small shapes."))),
    Demo("unsupervised", "Unsupervised transfer", "clustering", "run_clustering",
         "With no labels at all, do features learnt from unlabelled images of other shapes group the target images "
         "by shape better than raw pixels?",
         "No labels anywhere: a network learns from unlabelled drawings of the six source shapes with the "
         "self-taught pretext task (predict each figure's geometry from its own pixels). The images of the four "
         "new shapes then arrive without labels, and k-means groups them three ways: on that network's features, "
         "on an untrained network's and on raw pixels; PCA draws them in 2-D. The hidden shapes are used only to "
         "score each grouping's purity. The shipped source model, which learnt WITH the source labels, is "
         "clustered too, but only as a labelled comparison from another setting of the matrix.",
         (False, False, False, False), (
        _slider("similarity", "Similarity of the target images to the source", 0.5, 1.0, 0.05, 0.8,
                "1 draws them like the source data; lower adds texture, noise and low contrast."),
        _slider("n_per_class", "Unlabelled images per hidden class", 20, 150, 10, 50),
        _slider("k", "Clusters (k)", 2, 8, 1, 4, "There are four hidden shapes."),
        _slider("pretext_steps", "Pretext steps on the unlabelled source images", 50, 400, 25, 150,
                "How long the encoder learns from the unlabelled drawings (no labels)."))),
)}


def demo_for(setting_key: str) -> Demo | None:
    """The demo for a setting of tl_core.teaching.matrix, or None when the setting has none (e.g. "none")."""
    return DEMOS.get(setting_key)


def load_demo(key: str) -> Callable[..., Any]:
    """Import a demo's module (and so torch) and return its function.

    Call it on the script thread before handing the demo to a background job: importing torch for the first
    time on a worker thread while the script thread also touches it can catch torch half-initialised.

    Raises:
        ValueError: If the key is unknown.
    """
    if key not in DEMOS:
        raise ValueError(f"No demo for {key!r}. Choose one of: {', '.join(DEMOS)}.")
    demo = DEMOS[key]
    return getattr(importlib.import_module(f"tl_core.experiments.{demo.module}"), demo.function)


def run_demo(key: str, *, seed: int = 0, on_record: OnRecord | None = None,
             cancel: threading.Event | None = None, **params: Any) -> Any:
    """Run one matrix demo by its setting key (imports its module, and so torch, only now).

    Args:
        key: A key of DEMOS.
        seed: Seeds data, weights and shuffling.
        on_record: Receives Progress and Point records.
        cancel: Stops the run at the next check (raises Cancelled).
        **params: The experiment's own keyword arguments.

    Returns:
        The experiment's result dataclass.

    Raises:
        ValueError: If the key is unknown or a parameter is out of range.
        Cancelled: If the cancel event was set.
    """
    return load_demo(key)(seed=seed, on_record=on_record, cancel=cancel, **params)
