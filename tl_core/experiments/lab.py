"""The quadrant lab: the size-versus-similarity rules measured, and the "cut at layer n" experiment.

The sweep trains every chosen strategy on every (images per class, similarity, seed) cell with the engine's
trainer (`tl_core.experiments.race`: the same lanes, data and seeds as the Race page), reports every finished lane as it
happens so the heatmap fills in live, and keeps finished sweeps in a small process-wide cache keyed by their
configuration. `heatmap` turns lanes into the picture: the winner per cell, each strategy's accuracy, and the
seed course's advice for that cell (`tl_core.teaching.quadrant.recommend`) next to what was measured, disagreements
included.

"Cut at layer n" follows Yosinski et al. (2014), "How transferable are features in deep neural networks?":
the source model is cut after each body group, a new head is trained on the frozen features, for a target
that resembles the source and for targets that do not. The learner predicts the best cut before the run, and the
result says whether the prediction, and the course's rule, held.

What "different" means is a design choice, and the lab discloses it (`DIFFERENT_TARGETS`): by default the
different column is grating orientation, a low-level cue built so that early-layer features win, which is the
course's rule for different data by construction. The other different target keeps a high-level task (the new
shapes) but draws it far from the source's look (outlines on shifted backgrounds); there the rule's assumption
(that a different target needs only the generic early features) does not hold, and the measurements show it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from tl_core.teaching.quadrant import SIMILAR_AT, classify_similarity, classify_size, recommend
from tl_core.experiments import Cancelled, OnRecord, Reporter
from tl_core.experiments.common import BODY, check_float, check_int, check_seed
from tl_core.training.plan import STRATEGIES, make_plan
from tl_core.experiments.race import SweepCell, race_lanes, run_race
from tl_core.training.records import StartRecord, StepRecord
from tl_core.data.datasets import DataSpec, make_data
from tl_core.fmt import pct

LAB_STRATEGIES = ("feature_extract", "finetune_top", "finetune_all", "scratch", "early_classifier")  # every advice
DEFAULT_SIZES = (20, 200)  # one "little" and one "lots" size (twice the line): the quadrant's two rows, ~25 s
DEFAULT_SIMILARITIES = (1.0, 0.25)  # the quadrant's two columns: similar, and different
SIZE_CHOICES = (10, 20, 30, 60, 100, 200, 250, 500)  # sizes offered in the lab
SIMILARITY_CHOICES = (1.0, 0.75, 0.5, 0.25, 0.0)  # similarities offered in the lab
AGREE_TOLERANCE = 0.02  # the advice "agrees" when its strategy is within this much accuracy of the winner
MAX_LANES = 200  # the most training runs one sweep may ask for
CACHE_SIZE = 16  # finished sweeps kept per process


# ---- what the targets are ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabTarget:
    """A shapes-world target the lab trains on, with what it needs from the source model and how it was built."""

    key: str  # "similar", or a key of DIFFERENT_TARGETS
    label: str  # short, for columns and legends, e.g. "grating orientation"
    task: str  # the shapes-world task (tl_core.data.shapes.TASKS, or "auto")
    styles: tuple[str, ...]  # extra named styles (tl_core.data.shapes.STYLES)
    cue: str  # "high-level" (needs shape identity, learnt late) or "low-level" (a texture cue, seen early)
    design: str  # how it is built and what that favours, for the page


SIMILAR_TARGET = LabTarget(
    "similar", "new shapes", "auto", (), "high-level",
    f"From similarity {SIMILAR_AT:g} up, the target is four new shapes (ring, heart, arrow, crescent) drawn like "
    f"the source's six, with the shift (1 − similarity) adding texture, noise and low contrast.")
DIFFERENT_TARGETS: dict[str, LabTarget] = {t.key: t for t in (
    LabTarget("orientation", "grating orientation", "auto", (), "low-level",
              "Below similarity 0.5 the task becomes the orientation of a fine, faint background grating, with a "
              "random shape in front as a distractor. It was built so that early, full-resolution filters see "
              "the cue and the source model's late, pooled features mostly do not: on this target the course's "
              "rule for different data (a classifier on the initial layers) wins by design."),
    LabTarget("outline_shapes", "outlined new shapes", "shapes", ("outline",), "high-level",
              "The four new shapes drawn only as outlines, with the shift's texture, noise and low contrast: far "
              "from the source's look (its measured similarity is near 0) but still a shape task, which needs "
              "what the later layers learnt. Here the rule's assumption, that different data needs only the "
              "generic early features, does not hold."),
)}
DEFAULT_DIFFERENT = "orientation"  # what the different column means unless the learner picks another target


def lab_target(similarity: float, different: str = DEFAULT_DIFFERENT) -> LabTarget:
    """The target the lab draws at a similarity: the new shapes from SIMILAR_AT up, else the chosen different one.

    Raises:
        ValueError: If `different` is not a key of DIFFERENT_TARGETS.
    """
    if different not in DIFFERENT_TARGETS:
        raise ValueError(f"Unknown different target {different!r}. Choose one of: {', '.join(DIFFERENT_TARGETS)}.")
    return SIMILAR_TARGET if similarity >= SIMILAR_AT else DIFFERENT_TARGETS[different]


def lab_data(n_per_class: int, similarity: float, seed: int, different: str = DEFAULT_DIFFERENT,
             n_val_per_class: int = 50) -> DataSpec:
    """The data of one lab cell (the default target draws exactly what DataSpec(similarity=...) always drew).

    Raises:
        ValueError: If `different` is unknown.
    """
    target = lab_target(similarity, different)
    return DataSpec(n_per_class=n_per_class, similarity=similarity, task=target.task, styles=target.styles,
                    seed=seed, n_val_per_class=n_val_per_class)


def column_label(similarity: float, different: str = DEFAULT_DIFFERENT) -> str:
    """A similarity column's name with the target it draws, e.g. "similarity 0.25: grating orientation"."""
    return f"similarity {similarity:g}: {lab_target(similarity, different).label}"


# ---- configuration and records -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabConfig:
    """One sweep: every strategy on every (size, similarity, seed). Hashable: the cache key."""

    sizes: tuple[int, ...] = DEFAULT_SIZES  # labelled target images per class
    similarities: tuple[float, ...] = DEFAULT_SIMILARITIES  # target similarity to the source (0..1)
    strategies: tuple[str, ...] = LAB_STRATEGIES  # keys of tl_core.training.plan.STRATEGIES
    seeds: tuple[int, ...] = (0,)  # each seed redraws the data and the initial weights
    n_val_per_class: int = 50  # held-out images per class for each cell's accuracy
    different: str = DEFAULT_DIFFERENT  # what the columns below SIMILAR_AT draw (a key of DIFFERENT_TARGETS)

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
        lab_target(0.0, self.different)  # raises for an unknown target
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
        different = self.different if any(s < SIMILAR_AT for s in self.similarities) else DEFAULT_DIFFERENT
        return LabConfig(tuple(sorted(self.sizes)), tuple(sorted(self.similarities, reverse=True)),
                         tuple(self.strategies), tuple(sorted(self.seeds)), self.n_val_per_class, different)


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
                rep.progress(done / total, f"Run {done + 1} of {total}: {n} per class, "
                                           f"{column_label(sim, config.different)}, seed {seed}: drawing data…")
                train, val = make_data(lab_data(n, sim, seed, config.different, config.n_val_per_class))
                acc, secs = {}, {}
                for lane in race_lanes(config.strategies, seed=seed):
                    label = (f"Run {done + 1} of {total}: {lane.label}, {n} per class, "
                             f"{column_label(sim, config.different)}, seed {seed}")
                    state = {"total": 1}

                    def on_train(_key: str, rec: object, state: dict = state, label: str = label,
                                 done: int = done) -> None:
                        if isinstance(rec, StartRecord):
                            state["total"] = max(rec.total_steps, 1)
                        elif isinstance(rec, StepRecord) and rec.step % 10 == 0:
                            rep.progress((done + rec.step / state["total"]) / total,
                                         f"{label} · step {rec.step} of {state['total']}")

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
    different: str = DEFAULT_DIFFERENT  # what the columns below SIMILAR_AT draw (a key of DIFFERENT_TARGETS)

    def column(self, similarity: float) -> str:
        """A column's name with the target it draws (see column_label)."""
        return column_label(similarity, self.different)

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
    hm = Heatmap(tuple(config.sizes), tuple(config.similarities), tuple(config.strategies),
                 different=config.different)
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
    targets: dict[str, float]  # target label -> similarity, e.g. {"similarity 1: new shapes": 1.0}
    accuracy: dict[str, dict[str, list[float]]]  # target label -> group -> accuracy per seed
    n_per_class: int  # labelled target images per class
    seeds: tuple[int, ...]  # seeds run
    wall_s: float = 0.0  # seconds it took
    kinds: dict[str, str] = field(default_factory=dict)  # target label -> its LabTarget key ("similar", ...)
    predicted: dict[str, str] = field(default_factory=dict)  # target key -> the learner's predicted best cut

    def mean(self, target: str) -> dict[str, float]:
        """Mean accuracy per cut point for one target."""
        return {g: sum(v) / len(v) for g, v in self.accuracy[target].items() if v}

    def best_cut(self, target: str) -> str:
        """The cut point with the best mean accuracy for one target."""
        means = self.mean(target)
        return max(means, key=means.get)

    def rule_holds(self, target: str) -> bool:
        """Whether the course's rule held for this target: for similar data the final layers' features win (the
        deepest cut is best); for different data a classifier on earlier layers beats the final features."""
        deepest = self.groups[-1]
        return (self.best_cut(target) == deepest) == (self.kinds.get(target, "similar") == "similar")

    def verdict(self, target: str) -> str:
        """One sentence for a target: the learner's prediction against the measured best cut, and the rule."""
        means, best = self.mean(target), self.best_cut(target)
        kind = self.kinds.get(target, "similar")
        guess = self.predicted.get(kind)
        said = ("" if guess is None else
                f"You predicted {guess}: {'right' if guess == best else f'the head did best after {best}'}. ")
        rule = ("similar data: the final layers' features should win" if kind == "similar" else
                "different data: a classifier on the initial layers should beat the final features")
        held = "held" if self.rule_holds(target) else "failed"
        return (f"{said}Best: after {best} ({pct(means[best])}); the final features reached "
                f"{pct(means[self.groups[-1]])}. The course's rule ({rule}) {held} here.")


def cut_targets(similarities: tuple[float, ...], different: tuple[str, ...]) -> list[tuple[str, float, LabTarget]]:
    """(label, similarity, target) for every target of a cut-depth run: one per similar similarity, and one per
    different target for every similarity below SIMILAR_AT.

    Raises:
        ValueError: For an unknown different target.
    """
    out = []
    for s in similarities:
        for key in ((DEFAULT_DIFFERENT,) if s >= SIMILAR_AT else different):
            target = lab_target(s, key)
            out.append((column_label(s, key), s, target))
    return out


def run_cut_depth(*, n_per_class: int = 20, similarities: tuple[float, ...] = (1.0, 0.25),
                  different: tuple[str, ...] = (DEFAULT_DIFFERENT,), seeds: tuple[int, ...] = (0,),
                  predicted: dict[str, str] | None = None, base: Any = None, on_record: OnRecord | None = None,
                  cancel: threading.Event | None = None) -> CutDepthResult:
    """Cut the source model after block1..block4, train a head on the frozen features, per target and seed.

    Args:
        n_per_class: Labelled target images per class (2..500).
        similarities: Target similarities (each 0..1), e.g. one similar and one different.
        different: Which different targets (keys of DIFFERENT_TARGETS) to run at each similarity below SIMILAR_AT.
        seeds: Seeds for the data and the head (1 to 5 of them).
        predicted: The learner's predicted best cut per target key ("similar", "orientation", ...), made before
            the run; kept in the result so the verdict can compare.
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
    if not similarities or not seeds or len(seeds) > 5 or not different:
        raise ValueError("Pick at least one similarity, one different target and one to five seeds.")
    sims = tuple(check_float("similarity", s, 0.0, 1.0) for s in similarities)
    seeds = tuple(check_seed(s) for s in seeds)
    targets = cut_targets(sims, tuple(different))
    predicted = dict(predicted or {})
    for key, cut in predicted.items():
        if cut not in BODY:
            raise ValueError(f"A prediction must be one of {', '.join(BODY)}; got {cut!r} for {key!r}.")
    if base is None:
        from tl_core.models.source import load_source_model

        base = load_source_model().model
    rep = Reporter(on_record, cancel)
    result = CutDepthResult(BODY, {label: s for label, s, _ in targets},
                            {label: {g: [] for g in BODY} for label, _, _ in targets}, n_per_class, seeds,
                            kinds={label: t.key for label, _, t in targets}, predicted=predicted)
    total, done = len(targets) * len(seeds) * len(BODY), 0
    for label, sim, target in targets:
        for seed in seeds:
            key = target.key if sim < SIMILAR_AT else DEFAULT_DIFFERENT
            train_data, val_data = make_data(lab_data(n_per_class, sim, seed, key))
            for g in BODY:
                rep.progress(done / total, f"Run {done + 1} of {total}: {label}, seed {seed}, a head on the "
                                           f"features after {g}…")
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
                result.accuracy[label][g].append(float(res.final_val_acc))
                rep.point(label, BODY.index(g) + 1, float(res.final_val_acc))
                done += 1
    rep.progress(1.0, "Done.")
    result.wall_s = time.perf_counter() - t0
    return result
