"""Instructor presets: named race scenarios for a class, shareable links to them, and commentary from the finished run.

A preset fixes the shapes-world data (images per class, similarity) and the race lanes (strategies, some with plan
settings changed), and asks the class a question before the start (`watch_for`, a prediction prompt, never a
result). Everything a preset says about results comes from `commentary`, which reads the finished run. A link
`?preset=<key>&seed=<n>` puts every student's app on the same preset and seed; `parse_scenario` checks such
parameters. Torch-free: the pages that merely list presets never import torch (the race lanes are built lazily).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from tl_core.fmt import accuracy, accuracy_points
from tl_core.training.plan import STRATEGIES, Plan, make_plan
from tl_core.training.records import RunResult

if TYPE_CHECKING:  # torch-importing modules, for type hints only
    from tl_core.experiments.race import Lane
    from tl_core.data.datasets import DataSpec

MAX_SEED = 2**31 - 1  # the largest seed the app accepts (the sidebar's maximum)
ARCH = "shapesnet"  # presets race the built-in network: seconds per lane on a laptop, no downloads
URL_PRESET, URL_SEED, URL_VIEW = "preset", "seed", "view"  # query parameter names
URL_CLASS = "class"  # ?class=<code>: the class (tl_core.classroom.polls) whose poll the student answers
PROJECTOR = "projector"  # ?view=projector: the race, large, without the sidebar (any case: ?view=PROJECTOR)
NEAR_POINTS = 2.0  # accuracy differences below this many percentage points are called "about the same"


@dataclass(frozen=True)
class PresetLane:
    """One lane of a preset's race."""

    key: str  # unique within the preset; equal to the strategy key when the lane is that strategy's default plan
    label: str  # shown in legends, tables and the prediction choices
    strategy: str  # a key of tl_core.training.plan.STRATEGIES
    overrides: tuple[tuple[str, Any], ...] = ()  # Plan fields changed from make_plan's defaults, as (name, value)

    def plan(self, seed: int, arch: str = ARCH) -> Plan:
        """The lane's plan for a seed.

        Raises:
            ValueError: If the overrides do not make a valid plan.
        """
        return make_plan(self.strategy, arch=arch, seed=seed, **dict(self.overrides))

    @property
    def plain(self) -> bool:
        """Whether the lane is its strategy's default plan (so the race page's own lane picker can show it)."""
        return not self.overrides and self.key == self.strategy


@dataclass(frozen=True)
class Preset:
    """A race scenario for a class."""

    key: str  # used in URLs: ?preset=<key>
    title: str  # e.g. "Few and similar"
    summary: str  # one sentence: where this sits on the size-vs-similarity quadrant and what races
    watch_for: str  # a question for the class before the start: a prediction prompt, never a result
    n_per_class: int  # shapes-world training images per class
    similarity: float  # shapes-world similarity to the source data, 0..1
    lanes: tuple[PresetLane, ...]  # the race, in order

    @property
    def lane_keys(self) -> list[str]:
        return [lane.key for lane in self.lanes]

    def label(self, key: str) -> str:
        """A lane's label, or the key itself if the preset has no such lane."""
        return next((lane.label for lane in self.lanes if lane.key == key), key)

    def describe_data(self) -> str:
        return f"{self.n_per_class} images per class at similarity {self.similarity:g}"

    @property
    def advice(self) -> str:
        """The course's advice for this preset's corner of the size-vs-similarity quadrant (tl_core.teaching.quadrant)."""
        from tl_core.teaching.quadrant import classify_similarity, classify_size, recommend

        return recommend(classify_size(self.n_per_class), classify_similarity(self.similarity)).label

    def data_spec(self, seed: int) -> DataSpec:
        """The preset's target data for a seed (imports tl_core.data.datasets, and with it torch)."""
        from tl_core.data.datasets import DataSpec

        return DataSpec(n_per_class=self.n_per_class, similarity=self.similarity, seed=seed)

    def race_lanes(self, seed: int, arch: str = ARCH) -> list[Lane]:
        """The preset's lanes as tl_core.experiments.race lanes (imports torch)."""
        from tl_core.experiments.race import Lane

        return [Lane(lane.key, lane.label, lane.plan(seed, arch)) for lane in self.lanes]

    def matches(self, lane_keys: Sequence[str], n_per_class: int, similarity: float) -> bool:
        """Whether a race ran exactly this preset's lanes on its data (any seed)."""
        return (list(lane_keys) == self.lane_keys and int(n_per_class) == self.n_per_class
                and abs(float(similarity) - self.similarity) < 1e-9)


def _lanes(*strategies: str) -> tuple[PresetLane, ...]:
    return tuple(PresetLane(s, STRATEGIES[s].label, s) for s in strategies)


_FOUR = ("feature_extract", "finetune_top", "finetune_all", "scratch")  # freeze → fine-tune → scratch
BN_KEEP, BN_REESTIMATE = "bn_keep", "bn_reestimate"  # the BatchNorm trap's two lanes

PRESETS: dict[str, Preset] = {p.key: p for p in (
    Preset("few_similar", "Few and similar",
           "Little data (20 images per class) that looks like the source data. Freeze, fine-tune and scratch "
           "race.",
           "With only 20 images per class, does it pay to train every layer, or to freeze most of them? "
           "Where will training from scratch finish?",
           20, 1.0, _lanes(*_FOUR)),
    Preset("lots_similar", "Lots and similar",
           "Plenty of data (250 images per class) that looks like the source data. Freeze, fine-tune and scratch "
           "race.",
           "With 12 times more images of a similar task, does freezing still win, or does fine-tuning "
           "everything catch up? Does scratch close the gap?",
           250, 1.0, _lanes(*_FOUR)),
    Preset("little_different", "Little and different",
           "Little data (20 images per class) of a different task (grating orientation). Besides freeze, "
           "fine-tune and scratch, a lane fits a new head on the early, generic layers.",
           "The source network never needed orientation. Will its late, specific layers help, or will the "
           "classifier on the initial layers do better? Can anything reach high accuracy on 20 images?",
           20, 0.25, _lanes("early_classifier", *_FOUR)),
    Preset("lots_different", "Lots and different",
           "Plenty of data (250 images per class) of a different task (grating orientation). Freeze, fine-tune "
           "and scratch race.",
           "With lots of data for a task unlike the source, is a pretrained start still worth anything? "
           "Will scratch beat the frozen lanes?",
           250, 0.25, _lanes(*_FOUR)),
    Preset("bn_trap", "BatchNorm trap",
           "The same strategy twice (fine-tune only the final layers, block1 to block3 frozen) on data that "
           "looks somewhat different (similarity 0.5): once with frozen BatchNorm kept in eval mode, once "
           "re-estimating its statistics on the target data.",
           "Both lanes set requires_grad=False on the same layers. Will those 'frozen' layers change at all "
           "in the second lane? Which lane will be more accurate, and by how much?",
           20, 0.5, (PresetLane(BN_KEEP, "Frozen BatchNorm kept (eval)", "finetune_top"),
                     PresetLane(BN_REESTIMATE, "Frozen BatchNorm re-estimated (train)", "finetune_top",
                                (("bn_policy", "train"),)))),
)}


def get_preset(key: str) -> Preset:
    """The preset with this key.

    Raises:
        ValueError: If there is none; the message lists the known keys.
    """
    if key not in PRESETS:
        raise ValueError(f"Unknown preset {key!r}. Choose one of: {', '.join(PRESETS)}.")
    return PRESETS[key]


def find_preset(lane_keys: Sequence[str], n_per_class: int, similarity: float) -> Preset | None:
    """The preset whose lanes and data a race ran, if any (its commentary then applies)."""
    return next((p for p in PRESETS.values() if p.matches(lane_keys, n_per_class, similarity)), None)


# ---- links -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """What a link's query parameters ask for, after checking them."""

    preset: Preset | None  # the preset to open, if the link names a known one
    seed: int | None  # the seed to use, if the link gives a valid one
    projector: bool | None  # ?view=projector -> True, ?view=normal -> False, no view parameter -> None
    problems: tuple[str, ...] = ()  # one sentence per parameter that was refused (and so not applied)
    class_code: str | None = None  # ?class=<code>, normalised, if shaped like a class code (open or not)


def _first(value: Any) -> str | None:
    """A query parameter's value (the first one when repeated), as a stripped string."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return None if value is None else str(value).strip()


def parse_seed(raw: str) -> int:
    """A seed from text.

    Raises:
        ValueError: If it is not a whole number from 0 to MAX_SEED; the message says so.
    """
    if not raw.isdigit() or int(raw) > MAX_SEED:
        raise ValueError(f"The seed in the link must be a whole number from 0 to {MAX_SEED}; got {raw!r}.")
    return int(raw)


def parse_scenario(params: Mapping[str, Any]) -> Scenario:
    """Check a link's `preset`, `seed`, `view` and `class` parameters; refused ones are reported, never half-applied.

    Names and views are read in any case (`?preset=BN_Trap&view=PROJECTOR`); whether a class is still open is for
    the caller to check (tl_core.classroom.polls).

    Args:
        params: The query parameters (e.g. `st.query_params.to_dict()`); other keys are ignored.

    Returns:
        The scenario: what to apply, and one problem sentence per refused parameter.
    """
    from tl_core.classroom.polls import normalise_code, valid_code

    problems: list[str] = []
    preset = seed = projector = class_code = None
    raw = _first(params.get(URL_PRESET))
    if raw is not None:
        try:
            preset = get_preset(raw.lower())
        except ValueError as e:
            problems.append(f"The link asks for a preset the app does not know. {e}")
    raw = _first(params.get(URL_SEED))
    if raw is not None:
        try:
            seed = parse_seed(raw)
        except ValueError as e:
            problems.append(str(e))
    raw = _first(params.get(URL_VIEW))
    if raw is not None:
        if raw.lower() in (PROJECTOR, "normal"):
            projector = raw.lower() == PROJECTOR
        else:
            problems.append(f"The link asks for view {raw!r}; the app knows 'projector' and 'normal'.")
    raw = _first(params.get(URL_CLASS))
    if raw is not None:
        if valid_code(raw):
            class_code = normalise_code(raw)
        else:
            problems.append(f"The link's class code {raw!r} is not a class code; ask the instructor for the link.")
    if problems:
        problems.append("The rest of the link was applied; the refused parts keep their current settings."
                        if (preset, seed, projector, class_code) != (None, None, None, None) else
                        "Nothing from the link was applied; the app keeps its current settings.")
    return Scenario(preset, seed, projector, tuple(problems), class_code)


def app_root(url: str, page_path: str = "") -> str:
    """The app's root URL from a page's URL (query and fragment dropped, a trailing /<page_path> removed)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if page_path and path.endswith("/" + page_path):
        path = path[: -len(page_path) - 1]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def share_url(root: str, preset: str, seed: int, *, projector: bool = False, page: str = "race",
              class_code: str | None = None) -> str:
    """The link that opens a preset with a seed on a page (by default the race), in a class if a code is given.

    Raises:
        ValueError: For an unknown preset, an invalid seed or a malformed class code.
    """
    from tl_core.classroom.polls import normalise_code, valid_code

    get_preset(preset)
    parse_seed(str(seed))
    if class_code is not None and not valid_code(class_code):
        raise ValueError(f"{class_code!r} is not a class code.")
    query = {URL_PRESET: preset, URL_SEED: seed, **({URL_VIEW: PROJECTOR} if projector else {}),
             **({URL_CLASS: normalise_code(class_code)} if class_code is not None else {})}
    return f"{root.rstrip('/')}/{page}?{urlencode(query)}"


# ---- commentary from the finished run ----------------------------------------------------------------------------
_pct = accuracy  # every accuracy as the race's table and verdict write it (tl_core.fmt)
_points = accuracy_points  # a − b in points, from the accuracies as shown


def _signed(diff_points: float) -> str:
    """'+3 points', '-1 point', '-0.5 points', '+3.5 points', '+0 points' (the difference of two shown accuracies,
    so at most one decimal)."""
    return f"{'+' if diff_points >= 0 else '-'}{abs(diff_points):g} point{'' if abs(diff_points) == 1 else 's'}"


def _compare(diff_points: float) -> str:
    """'about the same as', 'better than' or 'worse than' for a difference in points."""
    if abs(diff_points) < NEAR_POINTS:
        return "about the same as"
    return "better than" if diff_points > 0 else "worse than"


def commentary(preset: Preset, results: Mapping[str, RunResult]) -> list[str]:
    """Sentences about a finished race of a preset, every number read from the run's results.

    Args:
        preset: The preset the race ran.
        results: lane key -> result, for every lane that started.

    Returns:
        Sentences for the class: the winner and its margin, how the pretrained lanes did against scratch and the
        early classifier against fixed features when they raced, and for the BatchNorm trap what the 'frozen'
        layers did. Lanes that did not finish are named with their reason.
    """
    done = {k: r for k, r in results.items() if r.ok and r.final_val_acc is not None}
    out = [f"{preset.label(k)} did not finish ({r.status}): {r.reason}" for k, r in results.items() if not r.ok]
    if not done:
        return out or ["No lane finished, so there is nothing to compare yet."]
    ranked = sorted(done, key=lambda k: -done[k].final_val_acc)
    best = ranked[0]
    best_acc = done[best].final_val_acc
    sentence = f"{preset.label(best)} won with {_pct(best_acc)} validation accuracy"
    if len(ranked) > 1:
        second = ranked[1]
        gap = _points(best_acc, done[second].final_val_acc)
        if gap >= NEAR_POINTS:
            sentence += f", {_signed(gap)[1:]} ahead of {preset.label(second)}"
        else:
            sentence = (f"{preset.label(best)} came first with {_pct(best_acc)} validation accuracy, within "
                        f"{NEAR_POINTS:g} points of {preset.label(second)} ({_pct(done[second].final_val_acc)}): "
                        f"call it a tie on this seed")
    r = done[best]
    out.insert(0, sentence + f". It trained {r.trainable_params:,} of {r.total_params:,} parameters.")
    pretrained = [k for k in done if STRATEGIES[Plan.from_dict(done[k].plan).strategy].pretrained]
    if "scratch" in done and pretrained:
        top = max(pretrained, key=lambda k: done[k].final_val_acc)
        diff = _points(done[top].final_val_acc, done["scratch"].final_val_acc)
        out.append(f"The best lane that starts from the source weights ({preset.label(top)}, "
                   f"{_pct(done[top].final_val_acc)}) did {_compare(diff)} training from scratch "
                   f"({_pct(done['scratch'].final_val_acc)}; {_signed(diff)}).")
    if "early_classifier" in done and "feature_extract" in done:
        early, late = done["early_classifier"], done["feature_extract"]
        cut = Plan.from_dict(early.plan).cut_after
        diff = _points(early.final_val_acc, late.final_val_acc)
        out.append(f"A new head on the early {cut} features ({_pct(early.final_val_acc)}) did {_compare(diff)} a "
                   f"new head on the final features ({_pct(late.final_val_acc)}; {_signed(diff)}).")
    if BN_KEEP in done and BN_REESTIMATE in done:
        out += _bn_commentary(done[BN_KEEP], done[BN_REESTIMATE])
    return out


def _bn_commentary(keep: RunResult, moved: RunResult) -> list[str]:
    """The BatchNorm trap, from the two runs' weight drift and BatchNorm-statistics drift of the frozen groups."""
    frozen = [g for g in keep.frozen if g in moved.frozen]
    groups = ", ".join(frozen)
    w_keep = max((keep.drift.get(g, 0.0) for g in frozen), default=0.0)
    w_moved = max((moved.drift.get(g, 0.0) for g in frozen), default=0.0)
    bn_keep = max((keep.bn_drift.get(g, 0.0) for g in frozen), default=0.0)
    bn_moved = {g: moved.bn_drift.get(g, 0.0) for g in frozen}
    out = []
    if w_keep == 0.0 and w_moved == 0.0:
        out.append(f"Both lanes froze {groups}: their weights did not move at all in either lane (weight drift 0).")
    else:
        out.append(f"The frozen groups {groups} moved their weights by at most {w_keep:.2g} (kept) and "
                   f"{w_moved:.2g} (re-estimated).")
    if bn_moved and max(bn_moved.values()) > 0:
        most = max(bn_moved, key=bn_moved.get)
        out.append(f"Yet their BatchNorm statistics changed {'not at all' if bn_keep == 0 else f'by up to {bn_keep:.0%}'}"
                   f" when kept in eval mode and by {statistics.mean(bn_moved.values()):.0%} on average when "
                   f"re-estimated (most in {most}: {bn_moved[most]:.0%}): 'frozen' layers that still change.")
    else:
        out.append("Their BatchNorm statistics did not change in either lane.")
    diff = _points(moved.final_val_acc, keep.final_val_acc)
    how = ("barely moved" if abs(diff) < NEAR_POINTS else ("rose" if diff > 0 else "fell") + f" by {abs(diff):g} points")
    out.append(f"Accuracy {how}: {_pct(keep.final_val_acc)} kept, {_pct(moved.final_val_acc)} re-estimated. "
               f"Whether re-estimating helps or hurts depends on the data and the seed.")
    return out
