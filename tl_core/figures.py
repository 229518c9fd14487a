"""Charts of training runs and races, each with a one-line takeaway computed from the same numbers (plotly only).

Every chart function returns a `Chart`: a titled plotly figure plus a sentence computed from the data the figure
shows, so the caption cannot disagree with the picture. Build a `History` from live records
(`History.from_records`, e.g. a job's buffer snapshot) or from a finished run (`History.from_result`); the same
chart functions then serve the live view, the final results, the race and the labs. No torch and no streamlit
here: images arrive as arrays, and the pages put the charts on screen (`ui.render.chart(c.fig, c.takeaway)`).
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go

from tl_core import palette
from tl_core.training.plan import STRATEGIES, Plan
from tl_core.training.records import EpochRecord, EventRecord, Evaluation, RunResult, StartRecord, StepRecord

LIVE_REFRESH_S = 0.5  # seconds between live redraws of a running job's charts (the pages' fragment, the UI bench)
MAX_HEATMAP_COLUMNS = 200  # longer runs are binned into this many columns of the gradient heatmap
RATIO_RULE_OF_THUMB = 1e-3  # a healthy update-to-weight ratio per step is around 1e-3 (Karpathy's rule of thumb)
FONT = dict(family="Source Sans Pro, Helvetica, Arial, sans-serif", size=16, color=palette.BLACK)  # projector size
FROZEN_MARK = "🧊"  # prefixed to frozen rows of the gradient heatmaps (with the word "frozen", not the icon alone)
_TINY = 1e-12  # floor before taking log10 of a norm
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
# Colour and dash per race lane, so lanes differ by more than colour (keys: strategies, plus the learner's plan).
LANE_STYLES: dict[str, tuple[str, str]] = {
    "feature_extract": (palette.SKY, "dot"),
    "finetune_top": (palette.BLUE, "solid"),
    "finetune_all": (palette.ORANGE, "dash"),
    "scratch": (palette.VERMILLION, "longdash"),
    "early_classifier": (palette.GREEN, "dashdot"),
    "my_plan": (palette.BLACK, "solid"),
}
_GRAD_SCALE = "Cividis"  # sequential and colour-blind safe


@dataclass(frozen=True)
class Chart:
    """A plotly figure with its title set, and the one-line takeaway computed from the same data."""

    fig: go.Figure  # always has layout.title.text
    takeaway: str  # one sentence for the caption under the chart


@dataclass(frozen=True)
class Progress:
    """Where a running job stands, for a progress bar."""

    fraction: float  # 0..1
    text: str  # e.g. "Step 40 of 100 · epoch 14 of 34 · 1 s elapsed · about 2 s left"
    eta_s: float | None  # seconds left, when it can be estimated


@dataclass(frozen=True)
class Example:
    """One validation image for a gallery."""

    index: int  # index into the validation data
    image: np.ndarray  # (H, W, 3) uint8, upscaled
    caption: str  # e.g. "ring → crescent (99%)"


# ---- a run's records, in columns ----------------------------------------------------------------------------
@dataclass
class History:
    """A run's records in columns, ready to chart; build it from live records or from a finished RunResult."""

    groups: tuple[str, ...] = ()  # layer groups in forward order (heatmap rows)
    frozen: tuple[str, ...] = ()  # groups frozen at the start
    cached: tuple[str, ...] = ()  # frozen groups whose features were computed once
    total_steps: int | None = None  # planned optimizer steps (None until the run has started)
    total_epochs: int | None = None  # planned epochs (None until the run has started)
    steps: list[int] = field(default_factory=list)  # 0-based step numbers
    step_epoch: list[int] = field(default_factory=list)  # the epoch of each step
    loss: list[float] = field(default_factory=list)  # training loss per step
    grad: dict[str, list[float | None]] = field(default_factory=dict)  # group -> gradient norm per step; None = frozen
    lr: dict[str, list[float]] = field(default_factory=dict)  # group -> learning rate per step
    ratio_steps: list[int] = field(default_factory=list)  # steps on which the update ratio was sampled
    ratio: dict[str, list[float | None]] = field(default_factory=dict)  # group -> ‖Δw‖/‖w‖ per sampled step
    epochs: list[EpochRecord] = field(default_factory=list)  # one per finished epoch
    events: list[str] = field(default_factory=list)  # messages for the learner

    def add(self, rec: Any) -> None:
        """Take one record (StartRecord, StepRecord, EpochRecord or EventRecord); anything else is ignored."""
        if isinstance(rec, StepRecord):
            for g in rec.grad_norm:
                if g not in self.grad:  # a group first seen here (no StartRecord): pad its earlier steps
                    self.grad[g] = [None] * len(self.steps)
                    self.lr[g] = [0.0] * len(self.steps)
                    if g not in self.groups:
                        self.groups = (*self.groups, g)
            self.steps.append(rec.step)
            self.step_epoch.append(rec.epoch)
            self.loss.append(rec.loss)
            for g in self.grad:
                v = rec.grad_norm.get(g)
                self.grad[g].append(v if v is not None and math.isfinite(v) else None)
                self.lr[g].append(rec.lr.get(g, 0.0))
            if rec.update_ratio is not None:
                self.ratio_steps.append(rec.step)
                for g in self.groups:
                    v = rec.update_ratio.get(g)
                    self.ratio.setdefault(g, [None] * (len(self.ratio_steps) - 1)).append(
                        v if v is not None and math.isfinite(v) else None)
        elif isinstance(rec, EpochRecord):
            self.epochs.append(rec)
        elif isinstance(rec, EventRecord):
            self.events.append(rec.message)
        elif isinstance(rec, StartRecord):
            self.groups, self.frozen, self.cached = tuple(rec.groups), tuple(rec.frozen), tuple(rec.cached)
            self.total_steps, self.total_epochs = rec.total_steps, rec.epochs
            for g in self.groups:
                self.grad.setdefault(g, [None] * len(self.steps))
                self.lr.setdefault(g, [0.0] * len(self.steps))

    @classmethod
    def from_records(cls, records: Iterable[Any]) -> History:
        """A History from records in the order the trainer emitted them."""
        h = cls()
        for rec in records:
            h.add(rec)
        return h

    @classmethod
    def from_result(cls, result: RunResult) -> History:
        """A History from a finished, cancelled or diverged run."""
        h = cls()
        h.add(StartRecord(total_steps=len(result.steps), epochs=len(result.epochs), groups=tuple(result.groups),
                          frozen=tuple(g for g in result.groups if g in result.frozen), cached=result.cached_prefix))
        for rec in (*result.events, *result.steps, *result.epochs):
            h.add(rec)
        if result.status == "finished":  # a finished run did all it planned
            h.total_steps, h.total_epochs = len(result.steps), len(result.epochs)
        return h

    @property
    def started(self) -> bool:
        """Whether the run has reported its setup (groups, planned steps)."""
        return self.total_steps is not None

    def thawed_at(self) -> dict[str, int]:
        """Groups frozen at the start that later got gradients -> the first such step (gradual unfreezing)."""
        out = {}
        for g in self.frozen:
            for s, v in zip(self.steps, self.grad.get(g, [])):
                if v is not None:
                    out[g] = s
                    break
        return out

    def frozen_throughout(self) -> tuple[str, ...]:
        """Groups that never had a gradient in the steps so far."""
        return tuple(g for g in self.groups if self.steps and all(v is None for v in self.grad.get(g, [])))

    def median_grad(self) -> dict[str, float]:
        """Median gradient norm of every group that had gradients."""
        return {g: statistics.median(vals) for g in self.groups
                if (vals := [v for v in self.grad.get(g, []) if v is not None])}

    def val_points(self) -> list[tuple[int, float]]:
        """(1-based epoch, validation accuracy) of every validated epoch."""
        return [(e.epoch + 1, e.val_acc) for e in self.epochs if e.val_acc is not None]


# ---- small helpers --------------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _sci(x: float) -> str:
    """A norm or ratio for a sentence: 0.42, 0.031, 3.2e-04."""
    if x == 0:
        return "0"
    return f"{x:.2g}" if x >= 0.01 else f"{x:.1e}"


def _power_label(k: int) -> str:
    return f"10{str(k).translate(_SUPERSCRIPT)}"


def _list(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _axis(title: str | None = None, **kw: Any) -> dict:
    """An axis as a dict, with projector-sized tick and title fonts."""
    axis = dict(tickfont=dict(size=FONT["size"] - 1), gridcolor=palette.LIGHT, zeroline=False, **kw)
    if title:
        axis["title"] = dict(text=title, font=dict(size=FONT["size"]))
    return axis


def _figure(data: list[dict], title: str, height: int, **layout: Any) -> go.Figure:
    """A figure from plain dicts in one validated step (much cheaper than plotly's update_* and make_subplots,
    which matters for the live redraws that share the CPU with training)."""
    base = dict(title=dict(text=title), height=height, font=FONT, margin=dict(l=10, r=10, t=70, b=10),
                plot_bgcolor="white", legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return go.Figure(dict(data=data, layout={**base, **layout}))


def _note(text: str, x: Any, y: Any, xref: str = "x", yref: str = "y", size: int = 15, **kw: Any) -> dict:
    """A text annotation without an arrow."""
    return dict(text=text, x=x, y=y, xref=xref, yref=yref, showarrow=False,
                font=dict(size=size, color=palette.BLACK), **kw)


def _panels(n: int, gap: float) -> list[list[float]]:
    """x domains of n side-by-side panels."""
    width = (1 - gap * (n - 1)) / n
    return [[i * (width + gap), i * (width + gap) + width] for i in range(n)]


def _panel_titles(titles: Sequence[str], domains: list[list[float]]) -> list[dict]:
    return [_note(t, (d[0] + d[1]) / 2, 1.0, "paper", "paper", size=FONT["size"], yanchor="bottom")
            for t, d in zip(titles, domains)]


def _waiting(title: str, message: str, height: int = 320) -> Chart:
    """A titled, empty figure that says what it waits for."""
    fig = _figure([], title, height, xaxis=dict(visible=False), yaxis=dict(visible=False),
                  annotations=[_note(message, 0.5, 0.5, "paper", "paper", size=18)])
    return Chart(fig, message)


def _epoch_dtick(last_epoch: int) -> int:
    """Whole-epoch tick spacing giving at most about ten ticks."""
    return max(1, math.ceil(last_epoch / 10))


def _wrap(text: str, width: int) -> str:
    """Break a label into lines of about `width` characters with <br> (for subplot titles)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def _bins(n: int, max_cols: int) -> list[tuple[int, int]]:
    """Split range(n) into at most max_cols contiguous [start, end) bins of near-equal size."""
    cols = min(n, max_cols)
    edges = [round(i * n / cols) for i in range(cols + 1)]
    return [(edges[i], edges[i + 1]) for i in range(cols)]


def _geo_mean(values: Sequence[float | None]) -> float | None:
    """Geometric mean of the non-None values (norms are compared on a log scale), or None if there are none."""
    vals = [max(v, _TINY) for v in values if v is not None]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def _log_colorbar(zs: Iterable[float | None], title: str) -> dict:
    """A colour bar for log10 values, labelled in powers of ten."""
    finite = [z for z in zs if z is not None]
    lo, hi = (math.floor(min(finite)), math.ceil(max(finite))) if finite else (-3, 0)
    ticks = list(range(lo, hi + 1)) or [lo]
    return dict(title=dict(text=title, side="right"), tickvals=ticks, ticktext=[_power_label(t) for t in ticks])


def _group_label(g: str, frozen: Sequence[str], thawed: dict[str, int]) -> str:
    if g in thawed:
        return f"{g} (thawed at step {thawed[g] + 1})"
    if g in frozen:
        return f"{FROZEN_MARK} {g} (frozen)"
    return g


# ---- progress -------------------------------------------------------------------------------------------------
def progress(h: History, elapsed_s: float) -> Progress:
    """How far a run is, with an ETA from the steps done so far.

    Args:
        h: The run's history so far.
        elapsed_s: Seconds since the job started running.

    Returns:
        A Progress; before the first record it reports the setup phase.
    """
    if not h.started or not h.total_steps:
        return Progress(0.0, f"Setting up the model and data… {elapsed_s:.0f} s", None)
    done = len(h.steps)
    frac = min(done / h.total_steps, 1.0)
    eta = elapsed_s / done * (h.total_steps - done) if done else None
    epoch = (h.step_epoch[-1] + 1) if h.step_epoch else 0
    text = f"Step {done} of {h.total_steps} · epoch {epoch} of {h.total_epochs} · {elapsed_s:.0f} s elapsed"
    if eta is not None and done < h.total_steps:
        text += f" · about {math.ceil(eta)} s left"
    return Progress(frac, text, eta)


def queue_message(runs_ahead: int) -> str:
    """What a queued learner reads, e.g. "2 runs ahead of you"."""
    if runs_ahead <= 0:
        return "Your run starts next."
    if runs_ahead == 1:
        return "1 run ahead of you; yours starts after it."
    return f"{runs_ahead} runs ahead of you; yours starts after them."


# ---- live charts of one run -----------------------------------------------------------------------------------
def curves_chart(h: History, n_classes: int | None = None, *, title: str = "Loss and accuracy per epoch") -> Chart:
    """Train and validation loss (left) and accuracy (right) per epoch; gradual-unfreezing thaws are marked.

    Args:
        h: The run's history.
        n_classes: Number of classes, to compare accuracy with chance; optional.
        title: The figure title.

    Returns:
        A Chart whose takeaway reports the validation accuracy, the train–validation gap and chance level.
    """
    if not h.epochs:
        return _waiting(title, "Waiting for the first epoch to finish…")
    x = [e.epoch + 1 for e in h.epochs]
    domains = _panels(2, 0.08)
    series = (("train", palette.BLUE, "solid", "circle"), ("validation", palette.ORANGE, "dash", "diamond"))
    data = []
    for col, metric in ((1, "loss"), (2, "acc")):
        axis = "" if col == 1 else "2"
        for name, colour, dash, symbol in series:
            attr = f"{'train' if name == 'train' else 'val'}_{metric}"
            data.append(dict(type="scatter", x=x, y=[getattr(e, attr) for e in h.epochs], name=name,
                             legendgroup=name, showlegend=col == 1, connectgaps=True, mode="lines+markers",
                             xaxis=f"x{axis}", yaxis=f"y{axis}", line=dict(color=colour, dash=dash, width=3),
                             marker=dict(symbol=symbol, size=8)))
    shapes, notes = [], _panel_titles(("Loss (lower is better)", "Accuracy (higher is better)"), domains)
    for e in h.epochs:
        if e.thawed:
            for axis in ("", "2"):
                shapes.append(dict(type="line", xref=f"x{axis}", yref="paper", x0=e.epoch + 1, x1=e.epoch + 1,
                                   y0=0, y1=1, line=dict(color=palette.GREY, dash="dot")))
            notes.append(_note(f"thawed {', '.join(e.thawed)}", e.epoch + 1, 0.98, "x", "paper", size=13,
                               xanchor="left", yanchor="top"))
    ticks = dict(tick0=1, dtick=_epoch_dtick(x[-1]))
    fig = _figure(data, title, 420, margin=dict(l=10, r=10, t=80, b=10), shapes=shapes, annotations=notes,
                  legend=dict(orientation="h", yanchor="top", y=-0.2, x=0.5, xanchor="center"),
                  xaxis=_axis("epoch", domain=domains[0], anchor="y", **ticks),
                  xaxis2=_axis("epoch", domain=domains[1], anchor="y2", **ticks),
                  yaxis=_axis(anchor="x"), yaxis2=_axis(anchor="x2", range=[0, 1.02], tickformat=".0%"))
    return Chart(fig, _curves_takeaway(h, n_classes))


def _curves_takeaway(h: History, n_classes: int | None) -> str:
    last = h.epochs[-1]
    vals = h.val_points()
    if not vals:
        return f"After epoch {last.epoch + 1}: training accuracy {_pct(last.train_acc)}; no validation pass yet."
    best_ep, best = max(vals, key=lambda p: p[1])
    final = vals[-1][1]
    chance = 1 / n_classes if n_classes else None
    if chance is not None and final < chance + 0.1:
        return (f"Validation accuracy {_pct(final)} is close to chance ({_pct(chance)}): the model has not learned "
                f"the task (yet).")
    gap = last.train_acc - final
    if gap > 0.15:
        return (f"Training accuracy {_pct(last.train_acc)} but validation {_pct(final)}: a {100 * gap:.0f}-point "
                f"gap, so the model memorises its training images (overfitting).")
    return (f"Validation accuracy {_pct(final)} (best {_pct(best)} at epoch {best_ep}), within "
            f"{max(100 * gap, 0):.0f} points of training accuracy: no strong overfitting.")


def _heatmap_matrix(h: History) -> tuple[list[int], list[list[float | None]], list[list[float | None]]]:
    """(1-based step per column, log10 norms per group, raw norms per group), binned to MAX_HEATMAP_COLUMNS."""
    cols = _bins(len(h.steps), MAX_HEATMAP_COLUMNS)
    x = [h.steps[(a + b - 1) // 2] + 1 for a, b in cols]
    raw = [[_geo_mean(h.grad.get(g, [])[a:b]) for a, b in cols] for g in h.groups]
    z = [[None if v is None else math.log10(max(v, _TINY)) for v in row] for row in raw]
    return x, z, raw


def grad_heatmap_chart(h: History, *, title: str = "Gradient norm per layer group and step") -> Chart:
    """One row per layer group (input at the top, head at the bottom), one column per step, log colour scale.

    Frozen groups have no gradient: their cells stay empty (grey background), their row label says "frozen",
    and the row is annotated. Long runs are binned (geometric mean per bin).

    Args:
        h: The run's history.
        title: The figure title.

    Returns:
        A Chart whose takeaway names the frozen groups and the group with the largest gradients.
    """
    if not h.steps or not h.groups:
        return _waiting(title, "Waiting for the first training step…")
    x, z, raw = _heatmap_matrix(h)
    thawed = h.thawed_at()
    labels = [_group_label(g, h.frozen, thawed) for g in h.groups]
    heat = dict(type="heatmap", x=x, y=labels, z=z, customdata=raw, colorscale=_GRAD_SCALE, hoverongaps=False,
                ygap=3, colorbar=_log_colorbar((v for row in z for v in row), "‖gradient‖ (log scale)"),
                hovertemplate="%{y}<br>step %{x}<br>‖gradient‖ = %{customdata:.3g}<extra></extra>")
    frozen = h.frozen_throughout()
    notes = [_note("frozen: no gradient", (x[0] + x[-1]) / 2, label) for g, label in zip(h.groups, labels)
             if g in frozen]
    fig = _figure([heat], title, 120 + 48 * len(h.groups), plot_bgcolor=palette.LIGHT, annotations=notes,
                  xaxis=_axis("training step", showgrid=False),
                  yaxis=_axis(autorange="reversed", showgrid=False, type="category"))
    return Chart(fig, _grad_takeaway(h, thawed))


def _grad_takeaway(h: History, thawed: dict[str, int]) -> str:
    frozen = h.frozen_throughout()
    med = h.median_grad()
    parts = []
    if frozen:
        parts.append(f"Frozen {_list(frozen)} had no gradient at all (empty {'row' if len(frozen) == 1 else 'rows'})")
    if med:
        top = max(med, key=med.get)
        low = min(med, key=med.get)
        if top == low:
            parts.append(f"{top} got gradients of about {_sci(med[top])}")
        else:
            parts.append(f"{top} had the largest gradients (median {_sci(med[top])}), {low} the smallest "
                         f"({_sci(med[low])})")
    if thawed:
        parts.append("; ".join(f"{g} started learning at step {s + 1} when it thawed" for g, s in thawed.items()))
    if not parts:
        return "No group has had a finite gradient yet."
    return "; ".join(parts) + "."


def update_ratio_chart(h: History, *, title: str = "Update-to-weight ratio per layer group") -> Chart:
    """‖Δw‖/‖w‖ per step for every trainable group (sampled steps), on a log axis, with the ~1e-3 rule of thumb.

    Args:
        h: The run's history.
        title: The figure title.

    Returns:
        A Chart whose takeaway compares each group's typical ratio with the rule of thumb.
    """
    med = {g: statistics.median(vals) for g in h.groups
           if (vals := [v for v in h.ratio.get(g, []) if v is not None and v > 0])}
    if not med:
        return _waiting(title, "Waiting for the first sampled step…")
    x = [s + 1 for s in h.ratio_steps]
    data = []
    for i, g in enumerate(g for g in h.groups if g in med):
        colour = palette.GREEN if g == "head" else palette.OKABE_ITO[i % 6]
        data.append(dict(type="scatter", x=x, y=h.ratio[g], name=g, mode="lines+markers", connectgaps=False,
                         line=dict(color=colour, width=2.5), marker=dict(symbol=i % 20, size=7)))
    data.append(dict(type="scatter", x=[x[0], x[-1]], y=[RATIO_RULE_OF_THUMB] * 2, mode="lines",
                     name="rule of thumb ≈ 10⁻³", hoverinfo="skip", line=dict(color=palette.GREY, dash="dash")))
    fig = _figure(data, title, 380, xaxis=_axis("training step"),
                  yaxis=_axis("‖Δw‖ / ‖w‖ per step", type="log", exponentformat="power"))
    return Chart(fig, _ratio_takeaway(h, med))


def _ratio_takeaway(h: History, med: dict[str, float]) -> str:
    top = max(med, key=med.get)
    low = min(med, key=med.get)
    frozen = h.frozen_throughout()
    text = f"Per step, {top} changed by about {_sci(med[top])} of its weights"
    if low != top:
        text += f" and {low} by {_sci(med[low])}"
    if frozen:
        text += f"; frozen {_list(frozen)} by nothing"
    body = {g: v for g, v in med.items() if g != "head"}  # a new head starts far off, so big steps are normal there
    if not body:
        return f"{text}."
    hi = max(body.values())
    verdict = ("large steps for the body: lower its learning rate if the loss jumps" if hi > 30 * RATIO_RULE_OF_THUMB
               else "the body barely moves: raise its learning rate to adapt it" if hi < RATIO_RULE_OF_THUMB / 30
               else "the body is near the healthy ~10⁻³")
    return f"{text} ({verdict})."


def live_charts(h: History, n_classes: int | None = None) -> dict[str, Chart]:
    """The charts the Train page redraws while a run is live: curves, gradient heatmap, update ratio."""
    return {"curves": curves_chart(h, n_classes), "grads": grad_heatmap_chart(h), "ratio": update_ratio_chart(h)}


# ---- results of one run ---------------------------------------------------------------------------------------
def confusion_chart(ev: Evaluation, *, title: str = "Confusion matrix (validation images)") -> Chart:
    """Counts of true class (rows) against predicted class (columns), with the counts written in the cells.

    Args:
        ev: The run's evaluation.
        title: The figure title.

    Returns:
        A Chart whose takeaway gives the accuracy and the most frequent confusion.
    """
    cm = ev.confusion
    classes = list(ev.classes)
    heat = dict(type="heatmap", z=cm, x=classes, y=classes, text=cm, texttemplate="%{text}", textfont=dict(size=18),
                colorscale=[[0, "white"], [1, palette.BLUE]], colorbar=dict(title=dict(text="images", side="right")),
                hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>")
    fig = _figure([heat], title, 140 + 70 * len(classes), xaxis=_axis("predicted class", side="bottom"),
                  yaxis=_axis("true class", autorange="reversed"))
    return Chart(fig, _confusion_takeaway(ev))


def _confusion_takeaway(ev: Evaluation) -> str:
    cm = ev.confusion
    total = sum(map(sum, cm))
    right = sum(cm[i][i] for i in range(len(cm)))
    errors = [(cm[i][j], i, j) for i in range(len(cm)) for j in range(len(cm)) if i != j and cm[i][j]]
    if not errors:
        return f"All {total} validation images are on the diagonal: no mistakes."
    k, i, j = max(errors)
    return (f"{right} of {total} validation images right ({_pct(right / max(total, 1))}); the most common mistake: "
            f"{ev.classes[i]} taken for {ev.classes[j]} ({k} time{'s' if k != 1 else ''}).")


def per_class_chart(ev: Evaluation, *, title: str = "Accuracy per class (validation images)") -> Chart:
    """One bar per class, with the chance level marked.

    Args:
        ev: The run's evaluation.
        title: The figure title.

    Returns:
        A Chart whose takeaway names the hardest and the easiest class.
    """
    classes = list(ev.per_class)
    acc = [ev.per_class[c] for c in classes]
    chance = 1 / max(len(classes), 1)
    bar = dict(type="bar", x=acc, y=classes, orientation="h", marker=dict(color=palette.GREEN),
               text=[_pct(a) for a in acc], textposition="auto", textfont=dict(size=16),
               hovertemplate="%{y}: %{x:.0%}<extra></extra>")
    line = dict(type="line", xref="x", yref="paper", x0=chance, x1=chance, y0=0, y1=1,
                line=dict(color=palette.VERMILLION, dash="dash"))
    fig = _figure([bar], title, 120 + 50 * len(classes), shapes=[line],
                  annotations=[_note(f"chance {_pct(chance)}", chance, 1.0, "x", "paper", yanchor="bottom")],
                  xaxis=_axis("accuracy", range=[0, 1.02], tickformat=".0%"), yaxis=_axis(autorange="reversed"))
    if len(set(acc)) == 1:
        takeaway = f"Every class is at {_pct(acc[0])}."
    else:
        hard = min(classes, key=ev.per_class.get)
        easy = max(classes, key=ev.per_class.get)
        takeaway = f"Hardest class: {hard} ({_pct(ev.per_class[hard])}); easiest: {easy} ({_pct(ev.per_class[easy])})."
    return Chart(fig, takeaway)


def drift_chart(result: RunResult, *, title: str = "How far each layer group moved from its starting weights") -> Chart:
    """‖w − w₀‖/‖w₀‖ per layer group, coloured by the group's role (frozen, fine-tuned, from scratch, new head).

    Args:
        result: A run with `drift` filled in.
        title: The figure title.

    Returns:
        A Chart whose takeaway names the pretrained group that moved most and the frozen ones that did not move.
    """
    plan = Plan.from_dict(result.plan)
    groups = [g for g in result.groups if g in result.drift]
    if not groups:
        return _waiting(title, "No weights were measured.")
    thawed = set(History.from_result(result).thawed_at())
    frozen = [g for g in groups if g in result.frozen and g not in thawed]

    def role(g: str) -> str:
        if g in frozen:
            return "frozen"
        if g == "head":
            return "new head"
        return "fine-tuned" if plan.pretrained else "from scratch"

    roles = [role(g) for g in groups]
    vals = [result.drift[g] for g in groups]
    bar = dict(type="bar", x=groups, y=vals,
               marker=dict(color=[palette.ROLE_COLOURS[r] for r in roles],
                           pattern=dict(shape=["/" if r == "frozen" else "" for r in roles])),
               text=[f"{r}<br>{_pct(v) if v >= 0.005 else f'{100 * v:.1g}%'}" for r, v in zip(roles, vals)],
               textposition="outside", textfont=dict(size=15), cliponaxis=False,
               hovertemplate="%{x}: moved %{y:.2%} of its starting norm<extra></extra>")
    fig = _figure([bar], title, 380, xaxis=_axis("layer group (input → head)"),
                  yaxis=_axis("‖w − w₀‖ / ‖w₀‖", tickformat=".0%", rangemode="tozero"))
    return Chart(fig, _drift_takeaway(result, plan, groups, frozen))


def _drift_takeaway(result: RunResult, plan: Plan, groups: list[str], frozen: list[str]) -> str:
    body = [g for g in groups if g != "head" and g not in frozen]
    moved = max(body, key=result.drift.get) if body else None
    parts = []
    if not plan.pretrained:
        top = max(groups, key=result.drift.get)
        return (f"Every group started from random weights; {top} moved most ({_pct(result.drift[top])} of its "
                f"starting norm).")
    if moved is not None:
        parts.append(f"Among the pretrained groups {moved} moved most ({_pct(result.drift[moved])} of its weights)")
    if frozen:
        parts.append(f"frozen {_list(frozen)} did not move at all")
    if "head" in result.drift:
        parts.append(f"the new head moved {_pct(result.drift['head'])} from its random start")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def misclassified(ev: Evaluation, images: Any, k: int = 8, scale: int = 3) -> list[Example]:
    """The worst misclassified validation images, upscaled, with "true → predicted (confidence)" captions.

    Args:
        ev: The run's evaluation (its top_losses index into the validation data).
        images: The validation images, (N, 3, H, W) floats in [0, 1] (a numpy array or a CPU tensor).
        k: At most this many examples.
        scale: Integer nearest-neighbour upscaling.

    Returns:
        Up to k Examples, worst first.
    """
    out = []
    for item in ev.top_losses[:k]:
        img = np.asarray(images[item["index"]], dtype=np.float32)  # (3, H, W)
        tile = np.round(np.clip(img, 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8)  # (H, W, 3)
        tile = tile.repeat(scale, axis=0).repeat(scale, axis=1)
        out.append(Example(int(item["index"]), tile, f"{item['true']} → {item['pred']} ({_pct(item['prob'])})"))
    return out


def history_csv(result: RunResult) -> str:
    """The run's per-epoch history as CSV text (epoch 1-based; empty cells where there was no validation)."""
    buf = io.StringIO()
    cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "elapsed_s", "thawed"]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for row in result.history_rows():
        w.writerow({**row, "epoch": row["epoch"] + 1, "thawed": " ".join(row["thawed"])})
    return buf.getvalue()


def steps_csv(result: RunResult) -> str:
    """The run's per-step records as CSV text: loss, then per group the lr, gradient norm and update ratio."""
    groups = list(result.groups)
    cols = ["step", "epoch", "loss"] + [f"{k}_{g}" for k in ("lr", "grad_norm", "update_ratio") for g in groups]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for s in result.steps:
        ratio = s.update_ratio or {}
        w.writerow([s.step + 1, s.epoch + 1, s.loss, *(s.lr.get(g, "") for g in groups),
                    *("" if s.grad_norm.get(g) is None else s.grad_norm[g] for g in groups),
                    *("" if ratio.get(g) is None else ratio[g] for g in groups)])
    return buf.getvalue()


# ---- the race -----------------------------------------------------------------------------------------------
def lane_label(key: str) -> str:
    """A lane's display name: the strategy's label, or "My plan"."""
    return STRATEGIES[key].label if key in STRATEGIES else ("My plan" if key == "my_plan" else key)


def _lane_style(key: str, i: int) -> tuple[str, str]:
    return LANE_STYLES.get(key, (palette.OKABE_ITO[i % len(palette.OKABE_ITO)], "solid"))


def race_histories(items: Iterable[tuple[str, Any]]) -> dict[str, History]:
    """(lane key, record) pairs, as emitted by tl_core.experiments.race.run_race, -> one History per lane in race order."""
    out: dict[str, History] = {}
    for lane, rec in items:
        out.setdefault(lane, History()).add(rec)
    return out


def race_progress(histories: dict[str, History], lanes: Sequence[str], elapsed_s: float) -> Progress:
    """Progress over the whole race: finished lanes plus the running lane's share."""
    n = max(len(lanes), 1)
    running = [k for k in lanes if k in histories]
    if not running:
        return Progress(0.0, f"Setting up the first lane… {elapsed_s:.0f} s", None)
    current = running[-1]
    idx = lanes.index(current)
    h = histories[current]
    lane_frac = (len(h.steps) / h.total_steps) if h.total_steps else 0.0
    frac = min((idx + min(lane_frac, 1.0)) / n, 1.0)
    eta = elapsed_s / frac * (1 - frac) if frac > 0.02 else None
    text = f"Lane {idx + 1} of {len(lanes)}: {lane_label(current)} · {_pct(lane_frac)} of its steps · {elapsed_s:.0f} s"
    if eta is not None:
        text += f" · about {math.ceil(eta)} s left"
    return Progress(frac, text, eta)


def race_curves_chart(histories: dict[str, History], *,
                      title: str = "Validation accuracy per epoch, every lane") -> Chart:
    """Every lane's validation accuracy against the epoch, on shared axes.

    Args:
        histories: lane key -> History, in race order.
        title: The figure title.

    Returns:
        A Chart whose takeaway names the best and the worst lane so far.
    """
    latest = {k: h.val_points()[-1][1] for k, h in histories.items() if h.val_points()}
    if not latest:
        return _waiting(title, "Waiting for the first lane's first validation…")
    data = []
    for i, (key, h) in enumerate(histories.items()):
        pts = h.val_points()
        colour, dash = _lane_style(key, i)
        data.append(dict(type="scatter", x=[p[0] for p in pts], y=[p[1] for p in pts], name=lane_label(key),
                         mode="lines+markers", line=dict(color=colour, dash=dash, width=3),
                         marker=dict(symbol=i, size=8)))
    last_epoch = max(p[0] for h in histories.values() for p in h.val_points())
    fig = _figure(data, title, 460, legend=dict(orientation="h", yanchor="top", y=-0.22, x=0.5, xanchor="center"),
                  xaxis=_axis("epoch", tick0=1, dtick=_epoch_dtick(last_epoch)),
                  yaxis=_axis("validation accuracy", range=[0, 1.02], tickformat=".0%"))
    best = max(latest, key=latest.get)
    text = f"{lane_label(best)} is best so far with {_pct(latest[best])} validation accuracy"
    if len(latest) > 1:
        worst = min(latest, key=latest.get)
        text += f"; {lane_label(worst)} is last with {_pct(latest[worst])}"
    return Chart(fig, text + ".")


def race_heatmaps_chart(histories: dict[str, History], *,
                        title: str = "Gradient norm per layer group, one panel per lane") -> Chart:
    """Small multiples: one gradient heatmap per lane, sharing one log colour scale; frozen rows stay empty.

    Args:
        histories: lane key -> History, in race order.
        title: The figure title.

    Returns:
        A Chart whose takeaway says how many groups each lane trained.
    """
    shown = {k: h for k, h in histories.items() if h.steps and h.groups}
    if not shown:
        return _waiting(title, "Waiting for the first training step…")
    n = len(shown)
    rows: list[str] = []  # every lane's groups, in forward order (an early cut keeps fewer)
    for h in shown.values():
        rows += [g for g in h.groups if g not in rows and g != "head"]
    rows.append("head")
    domains = _panels(n, 0.025)
    data: list[dict] = []
    notes = _panel_titles([_wrap(lane_label(k), 18) for k in shown], domains)
    axes: dict[str, dict] = {}
    all_z: list[float | None] = []
    for i, (key, h) in enumerate(shown.items(), start=1):
        x, z, raw = _heatmap_matrix(h)
        all_z += [v for row in z for v in row]
        by_group = {g: (zr, rr) for g, zr, rr in zip(h.groups, z, raw)}
        empty = [None] * len(x)  # rows of groups this lane cut off (plotly needs every panel to have every row)
        xa = "x" if i == 1 else f"x{i}"
        data.append(dict(type="heatmap", x=x, y=rows, z=[by_group.get(g, (empty,))[0] for g in rows],
                         customdata=[by_group.get(g, (None, empty))[1] for g in rows], xaxis=xa, yaxis="y",
                         coloraxis="coloraxis", ygap=3, hoverongaps=False, name=lane_label(key),
                         hovertemplate="%{y}<br>step %{x}<br>‖gradient‖ = %{customdata:.3g}<extra></extra>"))
        frozen = set(h.frozen_throughout())
        for g in rows:
            mark = "frozen" if g in frozen else "cut off" if g not in by_group else None
            if mark:
                notes.append(_note(mark, (x[0] + x[-1]) / 2, g, xa, "y", size=14))
        axes["xaxis" if i == 1 else f"xaxis{i}"] = _axis("step", domain=domains[i - 1], anchor="y", showgrid=False)
    fig = _figure(data, title, 190 + 46 * len(rows), plot_bgcolor=palette.LIGHT, annotations=notes,
                  margin=dict(l=10, r=10, t=110, b=10),
                  coloraxis=dict(colorscale=_GRAD_SCALE, colorbar=_log_colorbar(all_z, "‖gradient‖")),
                  yaxis=_axis(autorange="reversed", type="category", showgrid=False), **axes)
    counts = []
    for key, h in shown.items():
        trained = len(h.groups) - len(h.frozen_throughout())
        counts.append(f"{lane_label(key)} {trained} of {len(h.groups)}")
    return Chart(fig, f"Empty rows are frozen groups, which get no gradient. Groups trained: {'; '.join(counts)}.")


def race_rows_for_display(rows: list[dict]) -> list[dict]:
    """tl_core.experiments.race.race_table rows, with readable column names, for a table."""
    return [{"Rank": i + 1, "Strategy": r["strategy"], "Validation accuracy": r["accuracy"],
             "Wall time (s)": r["wall_s"], "Trainable parameters": r["trainable_params"],
             "Total parameters": r["total_params"], "Status": r["status"]} for i, r in enumerate(rows)]


def race_verdict(rows: list[dict], predicted: str | None) -> str:
    """One sentence comparing the learner's prediction with the result.

    Args:
        rows: tl_core.experiments.race.race_table rows, best accuracy first.
        predicted: The lane key the learner picked before the start.

    Returns:
        E.g. "You predicted From scratch; Fine-tune only the final layers won with 93% (From scratch: 34%, 4th of 4)."
    """
    done = [r for r in rows if r["accuracy"] is not None and r["status"] == "finished"]
    if not done:
        return "No lane finished, so there is no winner to compare with."
    win = done[0]
    if predicted is None:
        return f"{win['strategy']} won with {_pct(win['accuracy'])}."
    mine = next((r for r in rows if r["lane"] == predicted), None)
    if mine is None or mine["accuracy"] is None:
        return (f"Your pick, {lane_label(predicted)}, did not finish; {win['strategy']} won with "
                f"{_pct(win['accuracy'])}.")
    if mine["lane"] == win["lane"] or mine["accuracy"] >= win["accuracy"] - 1e-9:
        return f"You called it: {mine['strategy']} won with {_pct(mine['accuracy'])}."
    rank = next(i for i, r in enumerate(rows, start=1) if r["lane"] == predicted)
    return (f"You predicted {mine['strategy']}; {win['strategy']} won with {_pct(win['accuracy'])} "
            f"({mine['strategy']}: {_pct(mine['accuracy'])}, {_ordinal(rank)} of {len(rows)}).")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"

