"""Every kind of background work the pages submit, as small picklable job objects.

A job is a frozen dataclass holding everything its result depends on; calling it with a
`tl_core.jobs.manager.JobContext` does the work on a worker thread (or on a Ray worker), streams records through
`ctx.emit` and stops when `ctx.cancel` is set. Pages build a job and submit it (ui.live.start); they define no job
functions of their own. Jobs that are stopped part-way return what they salvaged (a stopped training run keeps
its finished epochs; a stopped lab sweep keeps the lanes it finished) or None.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tl_core.jobs.progress import Cancelled
from tl_core.data.datasets import DataSpec
from tl_core.training.plan import Plan
from tl_core.training.records import RunResult

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from tl_core.data.own import OwnDataset
    from tl_core.experiments.lab import LabConfig
    from tl_core.experiments.race import Lane
    from tl_core.jobs.manager import JobContext
    from tl_core.training.estimate import Estimate


# ---- shared runs: what determines a result ----------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def library_version() -> str:
    """A fingerprint of the code that computes a run: every tl_core source file, torch's and torchvision's
    versions. Any change to the library gives new share keys, so a cached result never outlives its code."""
    from importlib.metadata import version  # the installed versions, without importing torchvision (2 s)

    h = hashlib.sha256(f"torch {version('torch')} torchvision {version('torchvision')}".encode())
    root = Path(__file__).resolve().parents[1]
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=16)
def source_checksum(arch: str) -> str:
    """The checksum of the weights a run of this architecture starts from: the shipped source model's sha256 (from
    its manifest, which loading checks), or the ImageNet file's (torch hub puts its sha256 prefix in the name)."""
    if arch == "shapesnet":
        from tl_core.models.source import MANIFEST_FILE

        return str(json.loads(MANIFEST_FILE.read_text()).get("sha256", "missing"))
    from tl_core.models.weights import weights_status

    status = weights_status(arch)
    return f"{status.filename}:{status.path.stat().st_size if status.available else 'missing'}"


def runs_deterministically(plan: Plan) -> bool:
    """Whether a plan's result is the same every time it runs here with its seed: on the CPU it is (the trainer
    seeds everything); on a GPU only with PyTorch's deterministic algorithms on; never for a plan that says so
    (`plan.deterministic` is False)."""
    if not plan.deterministic:
        return False
    if plan.device == "cpu":
        return True
    import torch

    on_gpu = plan.device in ("cuda", "mps") or torch.cuda.is_available() or torch.backends.mps.is_available()
    return not on_gpu or torch.are_deterministic_algorithms_enabled()


def run_key(kind: str, plans: list[tuple[str, str, Plan]], data: DataSpec) -> str | None:
    """The share key of a run: a hash of everything its result depends on, or None when it is not deterministic.

    Args:
        kind: What the job does ("train", "race").
        plans: (lane key, label, plan) per trained plan, in order.
        data: The data every plan trains on (its seed included).
    """
    if not all(runs_deterministically(p) for _, _, p in plans):
        return None
    payload = {"kind": kind, "plans": [[k, label, p.to_dict()] for k, label, p in plans], "data": asdict(data),
               "sources": {p.arch: source_checksum(p.arch) for _, _, p in plans}, "version": library_version()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# ---- shapes-world training ------------------------------------------------------------------------------------
@dataclass
class TrainOutcome:
    """What a training job returns: the run's result and the data it ran on (for the validation images)."""

    result: RunResult
    data: DataSpec


@dataclass(frozen=True)
class TrainJob:
    """Train one plan on shapes-world data; records go to ctx.emit."""

    plan: Plan  # a valid plan
    data: DataSpec  # the shapes-world target data

    def share_key(self) -> str | None:
        """What determines the result (plan, data, seed, source weights, library), or None: never shared."""
        return run_key("train", [("run", "run", self.plan)], self.data)

    def __call__(self, ctx: JobContext) -> TrainOutcome:
        from tl_core.data.datasets import make_data
        from tl_core.training.trainer import train

        tr, va = make_data(self.data)
        return TrainOutcome(train(self.plan, tr, va, on_record=ctx.emit, cancel=ctx.cancel), self.data)


@dataclass
class RaceOutcome:
    """What a race job returns: the lanes in race order, each lane's result, and the learner's prediction."""

    lanes: list[Lane]  # in race order
    results: dict[str, RunResult]  # lane key -> result, for every lane that started
    predicted: str | None  # the lane key the learner picked before the start
    data: DataSpec  # the data every lane trained on


@dataclass(frozen=True)
class RaceJob:
    """Race the lanes on the same data and seed; ctx.emit receives (lane key, record) pairs.

    Identical races are shared between sessions (share_key): the prediction is not part of the key, so each
    session keeps its own pick (the race page holds it) and `RaceOutcome.predicted` is the first submitter's.
    """

    lanes: tuple[Lane, ...]  # the competitors (tl_core.experiments.race.race_lanes)
    data: DataSpec  # the shapes-world target data
    predicted: str | None = field(default=None, compare=False)  # the submitter's predicted winner (a lane key)

    def share_key(self) -> str | None:
        """What determines the result (every lane's plan and label, the data and seed, source weights, library),
        or None: never shared."""
        return run_key("race", [(lane.key, lane.label, lane.plan) for lane in self.lanes], self.data)

    def __call__(self, ctx: JobContext) -> RaceOutcome:
        from tl_core.data.datasets import make_data
        from tl_core.experiments.race import run_race

        tr, va = make_data(self.data)
        results = run_race(list(self.lanes), tr, va, on_record=lambda lane, rec: ctx.emit((lane, rec)),
                           cancel=ctx.cancel, keep_weights=False)
        return RaceOutcome(list(self.lanes), results, self.predicted, self.data)


# ---- the learner's own images ---------------------------------------------------------------------------------
@dataclass
class OwnOutcome:
    """What an own-data training job returns."""

    result: RunResult  # the run
    val_images: np.ndarray  # (N_val, 3, S, S) float32, the validation images (for the misclassified gallery)
    classes: tuple[str, ...]  # class names in label order
    n_train: int  # training images
    n_val: int  # validation images


@dataclass(frozen=True)
class OwnTrainJob:
    """Split the learner's data class by class and train the plan on it; records go to ctx.emit."""

    plan: Plan  # the plan; its batch is lowered to the training set's size if needed
    ds: OwnDataset  # the decoded dataset (read-only; the split copies what it needs)
    val_fraction: float = 0.2  # share of each class held out for validation
    base: nn.Module | None = field(default=None, compare=False)  # pretrained model to copy (default: the arch's)

    def __call__(self, ctx: JobContext) -> OwnOutcome:
        from tl_core.data.own import split_tensors
        from tl_core.training.trainer import train

        tr, va = split_tensors(self.ds, self.val_fraction, self.plan.seed)
        run_plan = replace(self.plan, batch_size=min(self.plan.batch_size, len(tr)))
        result = train(run_plan, tr, va, base=self.base, on_record=ctx.emit, cancel=ctx.cancel)
        return OwnOutcome(result, va.x.numpy(), tuple(self.ds.classes), len(tr), len(va))


@dataclass(frozen=True)
class EstimateJob:
    """Measure how long a plan will take here (a few steps), under the job limits like any run.

    Its result is the Estimate, or a sentence saying why measuring failed.
    """

    plan: Plan
    sizes: tuple[int, int]  # (training images, validation images)
    n_classes: int
    image_size: int
    base: nn.Module | None = field(default=None, compare=False)

    def __call__(self, ctx: JobContext) -> Estimate | str:
        from tl_core.training.estimate import estimate_run

        try:
            return estimate_run(self.plan, self.sizes[0], self.sizes[1], self.n_classes, self.image_size,
                                base=self.base)
        except (ValueError, RuntimeError) as e:  # e.g. out of memory: say so instead of failing the page
            return f"The measurement failed: {e}"


@dataclass(frozen=True)
class OwnSimilarityJob:
    """Measure the learner's images against the source data of the selected model, and place them on the quadrant
    (size: the smallest class). Its result is a tl_core.experiments.similarity.SourceCheck, or a sentence saying
    why not."""

    ds: OwnDataset
    seed: int = 0
    arch: str = "shapesnet"  # the selected architecture: its own source data is the reference
    model: nn.Module | None = field(default=None, compare=False)  # its ImageNet model, when the weights are here

    def __call__(self, ctx: JobContext) -> Any:
        from tl_core.experiments.similarity import check_own_data

        try:
            return check_own_data(self.ds.images, min(self.ds.report.counts.values()), self.arch, model=self.model,
                                  seed=self.seed)
        except ValueError as e:
            return f"Could not measure: {e}"


# ---- the labs ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoJob:
    """One experiment of the matrix lab; returns (setting key, result), or None when stopped."""

    setting: str  # a key of tl_core.experiments.DEMOS
    params: tuple[tuple[str, Any], ...]  # the demo's knobs, as (name, value) pairs
    seed: int = 0

    def __call__(self, ctx: JobContext) -> tuple[str, Any] | None:
        from tl_core.experiments import load_demo

        try:
            return self.setting, load_demo(self.setting)(seed=self.seed, on_record=ctx.emit, cancel=ctx.cancel,
                                                         **dict(self.params))
        except Cancelled:
            return None


@dataclass(frozen=True)
class LabSweepJob:
    """The quadrant lab's sweep; returns ("sweep", LabResult). A stop keeps the lanes finished so far (an incomplete
    LabResult), or returns None when none finished."""

    config: LabConfig

    def __call__(self, ctx: JobContext) -> tuple[str, Any] | None:
        from tl_core.experiments.lab import LabResult, LaneDone, run_lab_sweep

        lanes: list[LaneDone] = []
        t0 = time.perf_counter()

        def emit(rec: object) -> None:
            if isinstance(rec, LaneDone):
                lanes.append(rec)
            ctx.emit(rec)

        try:
            return "sweep", run_lab_sweep(self.config, on_record=emit, cancel=ctx.cancel)
        except Cancelled:
            if not lanes:
                return None
            return "sweep", LabResult(self.config, list(lanes), [], complete=False, wall_s=time.perf_counter() - t0)


@dataclass(frozen=True)
class CutDepthJob:
    """The quadrant lab's "cut at layer n"; returns ("cut", CutDepthResult), or None when stopped."""

    n_per_class: int
    seeds: tuple[int, ...]
    different: tuple[str, ...] = ("orientation",)  # the different targets (tl_core.experiments.lab.DIFFERENT_TARGETS)
    predicted: tuple[tuple[str, str], ...] = ()  # (target key, predicted best cut), made before the run

    def __call__(self, ctx: JobContext) -> tuple[str, Any] | None:
        from tl_core.experiments.lab import run_cut_depth

        try:
            return "cut", run_cut_depth(n_per_class=self.n_per_class, seeds=self.seeds, different=self.different,
                                        predicted=dict(self.predicted), on_record=ctx.emit, cancel=ctx.cancel)
        except Cancelled:
            return None


@dataclass(frozen=True)
class SimilarityCheckJob:
    """The quadrant lab's measured similarity of a shapes-world target; returns ("similarity", dict), or None."""

    similarity: float
    n_per_class: int
    seed: int = 0

    def __call__(self, ctx: JobContext) -> tuple[str, Any] | None:
        from tl_core.experiments.similarity import shapes_target_check

        try:
            return "similarity", shapes_target_check(self.similarity, self.n_per_class, self.seed,
                                                     on_record=ctx.emit, cancel=ctx.cancel)
        except Cancelled:
            return None


def weights_bytes(state_dict: dict[str, Any]) -> bytes:
    """A state_dict as the bytes of a `torch.save` file (load with torch.load(..., weights_only=True))."""
    import torch

    buf = io.BytesIO()
    torch.save(state_dict, buf)
    return buf.getvalue()
