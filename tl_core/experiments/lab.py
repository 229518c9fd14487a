"""The quadrant lab: the size-versus-similarity rules measured, and the "cut at layer n" experiment.

The sweep trains every chosen strategy on every (images per class, similarity, seed) cell with the engine's
trainer (`tl_core.experiments.race`: the same lanes, data and seeds as the Race page), reports every finished lane as it
happens so the heatmap fills in live, and keeps finished sweeps in a small process-wide cache keyed by their
configuration. `heatmap` turns lanes into the picture: the winner per cell, each strategy's accuracy, and the
seed course's advice for that cell (`tl_core.teaching.quadrant.recommend`) next to what was measured, disagreements
included.

"Cut at layer n" follows Yosinski et al. (2014), "How transferable are features in deep neural networks?":
the source model is cut after each body group, a new head is trained on the frozen features, for a target
that resembles the source and one that does not.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from tl_core.teaching.quadrant import classify_similarity, classify_size, recommend
from tl_core.experiments import Cancelled, OnRecord, Reporter
from tl_core.experiments.common import BODY, check_float, check_int, check_seed
from tl_core.training.plan import STRATEGIES, make_plan
from tl_core.experiments.race import SweepCell, race_lanes, run_race
from tl_core.training.records import StartRecord, StepRecord
from tl_core.data.datasets import DataSpec, make_data

LAB_STRATEGIES = ("feature_extract", "finetune_top", "finetune_all", "scratch", "early_classifier")  # every advice
DEFAULT_SIZES = (20, 200)  # one "little" and one "lots" size (twice the line): the quadrant's two rows, ~25 s
DEFAULT_SIMILARITIES = (1.0, 0.25)  # the quadrant's two columns: similar, and different
SIZE_CHOICES = (10, 20, 30, 60, 100, 200, 250, 500)  # sizes offered in the lab
SIMILARITY_CHOICES = (1.0, 0.75, 0.5, 0.25, 0.0)  # similarities offered in the lab
AGREE_TOLERANCE = 0.02  # the advice "agrees" when its strategy is within this much accuracy of the winner
MAX_LANES = 200  # the most training runs one sweep may ask for
CACHE_SIZE = 16  # finished sweeps kept per process


# ---- configuration and records -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabConfig:
    """One sweep: every strategy on every (size, similarity, seed). Hashable: the cache key."""

    sizes: tuple[int, ...] = DEFAULT_SIZES  # labelled target images per class
    similarities: tuple[float, ...] = DEFAULT_SIMILARITIES  # target similarity to the source (0..1)
    strategies: tuple[str, ...] = LAB_STRATEGIES  # keys of tl_core.training.plan.STRATEGIES
    seeds: tuple[int, ...] = (0,)  # each seed redraws the data and the initial weights
    n_val_per_class: int = 50  # held-out images per class for each cell's accuracy

    def validate(self) -> LabConfig:
        """Check the configuration. Returns self.

        Raises:
            ValueError: Naming what to change.
        """
        if not self.sizes or not self.similarities or not self.strategies or not self.seeds:
            raise ValueError("Pick at least one size, one similarity, one strategy and one seed.")
        for n in self.sizes:
            check_int("images per class", n, 2, 1000)
        for s in self.similarities:
            check_float("similarity", s, 0.0, 1.0)
        for seed in self.seeds:
            check_seed(seed)
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise ValueError(f"Unknown strategy {unknown[0]!r}. Choose from: {', '.join(STRATEGIES)}.")
        for name, values in (("sizes", self.sizes), ("similarities", self.similarities),
                             ("strategies", self.strategies), ("seeds", self.seeds)):
            if len(set(values)) != len(values):
                raise ValueError(f"The {name} repeat a value; list each once.")
        check_int("n_val_per_class", self.n_val_per_class, 5, 500)
        lanes = self.n_lanes
        if lanes > MAX_LANES:
            raise ValueError(f"This sweep needs {lanes} training runs; the lab allows {MAX_LANES}. "
                             f"Drop some sizes, similarities, strategies or seeds.")
        return self

    @property
    def n_lanes(self) -> int:
        """Training runs in the sweep."""
        return len(self.sizes) * len(self.similarities) * len(self.strategies) * len(self.seeds)

    def canonical(self) -> LabConfig:
        """The same sweep with sizes and similarities sorted (so equal sweeps share one cache entry)."""
        return LabConfig(tuple(sorted(self.sizes)), tuple(sorted(self.similarities, reverse=True)),
                         tuple(self.strategies), tuple(sorted(self.seeds)), self.n_val_per_class)


@dataclass(frozen=True)
class LaneDone:
    """One finished training run of the sweep."""

    n_per_class: int  # the cell's size
    similarity: float  # the cell's similarity
    seed: int  # the cell's seed
    strategy: str  # key of STRATEGIES
    accuracy: float  # final validation accuracy
    wall_s: float  # seconds the run took
    kind: str = "lane"


@dataclass
class LabResult:
    """A sweep's outcome: every finished lane, and the cells whose strategies all finished."""

    config: LabConfig  # what was swept
    lanes: list[LaneDone]  # in the order they finished
    cells: list[SweepCell]  # complete (size, similarity, seed) cells
    complete: bool  # every lane ran
    wall_s: float  # seconds the sweep took


# ---- the sweep ---------------------------------------------------------------------------------------------------
_CACHE: OrderedDict[LabConfig, LabResult] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def cached_sweep(config: LabConfig) -> LabResult | None:
    """A finished sweep of this configuration from this process's cache, if there is one."""
    key = config.canonical()
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
        return hit


def _store(result: LabResult) -> None:
    key = result.config.canonical()
    with _CACHE_LOCK:
        _CACHE[key] = result
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)


def run_lab_sweep(config: LabConfig | None = None, *, base: Any = None, use_cache: bool = True,
                  on_record: OnRecord | None = None, cancel: threading.Event | None = None) -> LabResult:
    """Train every strategy on every cell of the configuration, emitting a LaneDone record per finished run.

    Args:
        config: The sweep (default: LabConfig(), the quadrant's four corners, five strategies, one seed).
        base: The pretrained model to start from (default: the shipped source model).
        use_cache: Return a cached finished sweep of the same configuration at once (its lanes are emitted too).
        on_record: Receives Progress records and LaneDone records.
        cancel: Stops the sweep after the current step.

    Returns:
        The LabResult (complete and cached when every lane ran).

    Raises:
        ValueError: If the configuration is invalid.
        Cancelled: If the cancel event was set.
    """
    t0 = time.perf_counter()
    config = (config or LabConfig()).validate()
    rep = Reporter(on_record, cancel)
    if use_cache:
        hit = cached_sweep(config)
        if hit is not None:
            for lane in hit.lanes:
                if on_record is not None:
                    on_record(lane)
            rep.progress(1.0, "Loaded the finished sweep from the cache.")
            return hit
    if base is None:
        from tl_core.models.source import load_source_model

        base = load_source_model().model
    total = config.n_lanes
    lanes: list[LaneDone] = []
    cells: list[SweepCell] = []
    done = 0
    for n in config.sizes:
        for sim in config.similarities:
            for seed in config.seeds:
                rep.progress(done / total, f"{n} images per class, similarity {sim:g}, seed {seed}: drawing data…")
                train, val = make_data(DataSpec(n_per_class=n, similarity=sim, seed=seed,
                                                n_val_per_class=config.n_val_per_class))
                acc, secs = {}, {}
                for lane in race_lanes(config.strategies, seed=seed):
                    label = f"{n}/class · similarity {sim:g} · seed {seed} · {lane.label}"
                    state = {"total": 1}

                    def on_train(_key: str, rec: object, state: dict = state, label: str = label,
                                 done: int = done) -> None:
                        if isinstance(rec, StartRecord):
                            state["total"] = max(rec.total_steps, 1)
                        elif isinstance(rec, StepRecord) and rec.step % 10 == 0:
                            rep.progress((done + rec.step / state["total"]) / total, f"{label}: step {rec.step}")

                    t = time.perf_counter()
                    result = run_race([lane], train, val, base=base, on_record=on_train, cancel=rep.cancel,
                                      keep_weights=False, max_val_evals=1)[lane.key]
                    rep.check()
                    if not result.ok or result.final_val_acc is None:
                        raise RuntimeError(f"{label} did not finish: {result.reason}")
                    record = LaneDone(n, float(sim), seed, lane.key, float(result.final_val_acc),
                                      time.perf_counter() - t)
                    lanes.append(record)
                    acc[lane.key], secs[lane.key] = record.accuracy, record.wall_s
                    if on_record is not None:
                        on_record(record)
                    done += 1
                cells.append(SweepCell(n, float(sim), seed, acc, secs))
    rep.progress(1.0, "Sweep finished.")
    out = LabResult(config, lanes, cells, complete=True, wall_s=time.perf_counter() - t0)
    _store(out)
    return out


# ---- the heatmap ------------------------------------------------------------------------------------------------
@dataclass
class HeatCell:
    """One (size, similarity) cell of the lab heatmap, averaged over the seeds finished so far."""

    n_per_class: int
    similarity: float
    accuracy: dict[str, float]  # strategy -> mean accuracy over finished seeds (only strategies that ran)
    seeds_done: dict[str, int]  # strategy -> finished seeds
    winner: str | None  # best mean accuracy among strategies with every seed done; None while incomplete
    best: float | None  # the winner's accuracy
    advice: str  # the seed course's strategy for this cell (tl_core.teaching.quadrant.recommend)
    advice_label: str  # the cell's headline, e.g. "Fine-tune only final layers"
    advice_accuracy: float | None  # the advice's measured accuracy; None if it was not swept or is pending
    agrees: bool | None  # advice within AGREE_TOLERANCE of the winner; None while the cell is incomplete
    note: str  # a sentence on agreement or disagreement


@dataclass
class Heatmap:
    """The lab's grid: rows are sizes, columns similarities."""

    sizes: tuple[int, ...]
    similarities: tuple[float, ...]
    strategies: tuple[str, ...]
    cells: dict[tuple[int, float], HeatCell] = field(default_factory=dict)  # (size, similarity) -> cell

    @property
    def n_complete(self) -> int:
        """Cells with a winner."""
        return sum(c.winner is not None for c in self.cells.values())

    @property
    def disagreements(self) -> list[HeatCell]:
        """Complete cells where the course's advice lost by more than AGREE_TOLERANCE."""
        return [c for c in self.cells.values() if c.agrees is False]


def heatmap(lanes: list[LaneDone], config: LabConfig, tolerance: float = AGREE_TOLERANCE) -> Heatmap:
    """Turn finished lanes (possibly a partial sweep) into the heatmap with the course's advice per cell.

    Args:
        lanes: Finished runs, e.g. LabResult.lanes or the LaneDone records seen so far.
        config: The sweep they belong to.
        tolerance: Accuracy gap within which the advice counts as agreeing with the winner.

    Returns:
        A Heatmap with one cell per (size, similarity) of the configuration.
    """
    hm = Heatmap(tuple(config.sizes), tuple(config.similarities), tuple(config.strategies))
    n_seeds = len(config.seeds)
    for n in config.sizes:
        for sim in config.similarities:
            mine = [ln for ln in lanes if ln.n_per_class == n and abs(ln.similarity - sim) < 1e-9]
            acc: dict[str, float] = {}
            seeds_done: dict[str, int] = {}
            for s in config.strategies:
                vals = [ln.accuracy for ln in mine if ln.strategy == s]
                if vals:
                    acc[s] = sum(vals) / len(vals)
                    seeds_done[s] = len(vals)
            complete = all(seeds_done.get(s, 0) >= n_seeds for s in config.strategies)
            rec = recommend(classify_size(int(n)), classify_similarity(float(sim)))
            winner = max(config.strategies, key=lambda s: acc[s]) if complete else None
            best = acc[winner] if winner else None
            advice_acc = acc.get(rec.strategy) if seeds_done.get(rec.strategy, 0) >= n_seeds else None
            agrees, note = None, "Still running…"
            if complete and advice_acc is None:
                note = (f"The course advises {STRATEGIES[rec.strategy].label.lower()}, which this sweep did not "
                        f"include; add it to compare.")
            elif complete:
                gap = best - advice_acc
                agrees = gap <= tolerance
                if winner == rec.strategy:
                    note = f"The course's advice, {STRATEGIES[rec.strategy].label.lower()}, won ({best:.0%})."
                elif agrees:
                    note = (f"{STRATEGIES[winner].label} won ({best:.0%}), but the course's advice "
                            f"({STRATEGIES[rec.strategy].label.lower()}, {advice_acc:.0%}) is within "
                            f"{tolerance:.0%}: a tie.")
                else:
                    note = (f"Disagreement: {STRATEGIES[winner].label.lower()} won ({best:.0%}); the course's "
                            f"advice, {STRATEGIES[rec.strategy].label.lower()}, reached {advice_acc:.0%} "
                            f"({gap:.0%} behind).")
            hm.cells[(n, sim)] = HeatCell(int(n), float(sim), acc, seeds_done, winner, best, rec.strategy,
                                          rec.label, advice_acc, agrees, note)
    return hm


# ---- cut at layer n ---------------------------------------------------------------------------------------------
@dataclass
class CutDepthResult:
    """Accuracy of a new head on the source model's frozen features, cut after each body group."""

    groups: tuple[str, ...]  # cut points, input to output (the last is fixed feature extraction)
    targets: dict[str, float]  # target label -> similarity, e.g. {"similarity 1 (similar)": 1.0}
    accuracy: dict[str, dict[str, list[float]]]  # target label -> group -> accuracy per seed
    n_per_class: int  # labelled target images per class
    seeds: tuple[int, ...]  # seeds run
    wall_s: float = 0.0  # seconds it took

    def mean(self, target: str) -> dict[str, float]:
        """Mean accuracy per cut point for one target."""
        return {g: sum(v) / len(v) for g, v in self.accuracy[target].items() if v}

    def best_cut(self, target: str) -> str:
        """The cut point with the best mean accuracy for one target."""
        means = self.mean(target)
        return max(means, key=means.get)


def run_cut_depth(*, n_per_class: int = 20, similarities: tuple[float, ...] = (1.0, 0.25),
                  seeds: tuple[int, ...] = (0,), base: Any = None, on_record: OnRecord | None = None,
                  cancel: threading.Event | None = None) -> CutDepthResult:
    """Cut the source model after block1..block4, train a head on the frozen features, per target and seed.

    Args:
        n_per_class: Labelled target images per class (2..500).
        similarities: Target similarities (each 0..1), e.g. one similar and one different.
        seeds: Seeds for the data and the head (1 to 5 of them).
        base: The pretrained model (default: the shipped source model).
        on_record: Receives Progress and Point records (one point per finished run).
        cancel: Stops the run.

    Returns:
        A CutDepthResult.

    Raises:
        ValueError: If an argument is out of range.
        Cancelled: If the cancel event was set.
    """
    from tl_core.training.trainer import train

    t0 = time.perf_counter()
    n_per_class = check_int("n_per_class", n_per_class, 2, 500)
    if not similarities or not seeds or len(seeds) > 5:
        raise ValueError("Pick at least one similarity and one to five seeds.")
    sims = tuple(check_float("similarity", s, 0.0, 1.0) for s in similarities)
    seeds = tuple(check_seed(s) for s in seeds)
    if base is None:
        from tl_core.models.source import load_source_model

        base = load_source_model().model
    rep = Reporter(on_record, cancel)
    labels = {f"similarity {s:g} ({classify_similarity(s)})": s for s in sims}
    result = CutDepthResult(BODY, labels, {t: {g: [] for g in BODY} for t in labels}, n_per_class, seeds)
    total, done = len(labels) * len(seeds) * len(BODY), 0
    for target, sim in labels.items():
        for seed in seeds:
            train_data, val_data = make_data(DataSpec(n_per_class=n_per_class, similarity=sim, seed=seed))
            for g in BODY:
                rep.progress(done / total, f"{target}, seed {seed}: a head on the features after {g}…")
                plan = (make_plan("feature_extract", seed=seed) if g == BODY[-1]
                        else make_plan("early_classifier", cut_after=g, seed=seed))
                plan = plan if plan.batch_size <= len(train_data) else make_plan(
                    plan.strategy, cut_after=plan.cut_after, seed=seed, batch_size=len(train_data))
                res = train(plan, train_data, val_data, base=base, cancel=rep.cancel, keep_weights=False,
                            max_val_evals=1)
                if res.status == "cancelled":
                    raise Cancelled("Stopped by request.")
                if not res.ok or res.final_val_acc is None:
                    raise RuntimeError(f"The head after {g} did not train: {res.reason}")
                result.accuracy[target][g].append(float(res.final_val_acc))
                rep.point(target, BODY.index(g) + 1, float(res.final_val_acc))
                done += 1
    rep.progress(1.0, "Done.")
    result.wall_s = time.perf_counter() - t0
    return result
