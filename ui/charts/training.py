"""Charts of one training run, live and finished, each with a one-line takeaway computed from the same numbers.

Build a `History` (tl_core.training.history) from live records or from a finished run; the same functions then
serve the live view and the results. Plotly only: no torch and no streamlit; the pages put the charts on screen
(`ui.render.chart`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from tl_core.fmt import and_list, pct, sci
from tl_core.training.history import History
from tl_core.training.plan import Plan
from tl_core.training.records import Evaluation, RunResult
from ui import escape
from ui.charts import theme
from ui.charts.theme import Chart

MAX_HEATMAP_COLUMNS = 200  # longer runs are binned into this many columns of the gradient heatmap
RATIO_RULE_OF_THUMB = 1e-3  # a healthy update-to-weight ratio per step is around 1e-3 (Karpathy's rule of thumb)
FROZEN_MARK = "■"  # prefixed to frozen rows of the gradient heatmaps, next to the word "frozen" (a plain glyph: plotly text cannot use icon fonts)
_TINY = 1e-12  # floor before taking log10 of a norm


def heatmap_matrix(h: History) -> tuple[list[int], list[list[float | None]], list[list[float | None]]]:
    """(1-based step per column, log10 norms per group, raw norms per group), binned to MAX_HEATMAP_COLUMNS."""
    cols = _bins(len(h.steps), MAX_HEATMAP_COLUMNS)
    x = [h.steps[(a + b - 1) // 2] + 1 for a, b in cols]
    raw = [[_geo_mean(h.grad.get(g, [])[a:b]) for a, b in cols] for g in h.groups]
    z = [[None if v is None else math.log10(max(v, _TINY)) for v in row] for row in raw]
    return x, z, raw


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


def _group_label(g: str, frozen: Sequence[str], thawed: dict[str, int]) -> str:
    if g in thawed:
        return f"{g} (thawed at step {thawed[g] + 1})"
    if g in frozen:
        return f"{FROZEN_MARK} {g} (frozen)"
    return g


LOG_LOSS_RATIO = 30.0  # a loss panel whose largest value is this many times its smallest switches to a log axis
FIT_GAP = 0.15  # a train-validation accuracy gap above this is called overfitting
UNDERFIT_MARGIN = 0.2  # training accuracy within this of chance (or below 50%) is called underfitting


def _loss_axis(values: list[float], **kw: Any) -> dict:
    """A loss axis: linear, or logarithmic when one value (a spike) would flatten all the others."""
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if finite and max(finite) / min(finite) > LOG_LOSS_RATIO:
        return theme.axis("loss (log scale)", type="log", exponentformat="power", **kw)
    return theme.axis("loss", rangemode="tozero", **kw)


def curves_chart(h: History, n_classes: int | None = None, *, status: str | None = None,
                 title: str = "Loss and accuracy per epoch") -> Chart:
    """Train and validation loss (left) and accuracy (right) per epoch; gradual-unfreezing thaws are marked.

    The loss axis turns logarithmic when one value dwarfs the rest (a validation spike would otherwise flatten every
    other curve). A run that ended before its first epoch shows its loss per step instead.

    Args:
        h: The run's history.
        n_classes: Number of classes, to compare accuracy with chance; optional.
        status: How the run ended ("finished", "cancelled", "diverged"), or None while it runs.
        title: The figure title.

    Returns:
        A Chart whose takeaway diagnoses the run: still going, stopped, diverged; underfitting, overfitting or a good
        fit, against chance level.
    """
    if not h.epochs:
        if h.steps:
            return _step_loss_chart(h, status, title)
        if status is None:
            return theme.waiting(title, "Waiting for the first epoch to finish…")
        return theme.waiting(title, f"The run {_ENDED[status]} before its first training step.")
    x = [e.epoch + 1 for e in h.epochs]
    domains = theme.panels(2, 0.08)
    series = (("train", theme.BLUE, "solid", "circle"), ("validation", theme.ORANGE, "dash", "diamond"))
    data = []
    for col, metric in ((1, "loss"), (2, "acc")):
        axis = "" if col == 1 else "2"
        for name, colour, dash, symbol in series:
            attr = f"{'train' if name == 'train' else 'val'}_{metric}"
            data.append(dict(type="scatter", x=x, y=[getattr(e, attr) for e in h.epochs], name=name,
                             legendgroup=name, showlegend=col == 1, connectgaps=True, mode="lines+markers",
                             xaxis=f"x{axis}", yaxis=f"y{axis}", line=dict(color=colour, dash=dash, width=3),
                             marker=dict(symbol=symbol, size=8)))
    shapes, notes = [], theme.panel_titles(("Loss (lower is better)", "Accuracy (higher is better)"), domains)
    for e in h.epochs:
        if e.thawed:
            for axis in ("", "2"):
                shapes.append(dict(type="line", xref=f"x{axis}", yref="paper", x0=e.epoch + 1, x1=e.epoch + 1,
                                   y0=0, y1=1, line=dict(color=theme.GREY, dash="dot")))
            notes.append(theme.note(f"thawed {', '.join(e.thawed)}", e.epoch + 1, 0.98, "x", "paper",
                                    size=theme.BASE_SIZE - 3, xanchor="left", yanchor="top"))
    losses = [e.train_loss for e in h.epochs] + [e.val_loss for e in h.epochs if e.val_loss is not None]
    ticks = dict(tick0=1, dtick=theme.epoch_dtick(x[-1]))
    fig = theme.figure(data, title, 420, margin=dict(l=10, r=10, t=80, b=10), shapes=shapes, annotations=notes,
                       legend=dict(orientation="h", yanchor="top", y=-0.2, x=0.5, xanchor="center"),
                       xaxis=theme.axis("epoch", domain=domains[0], anchor="y", **ticks),
                       xaxis2=theme.axis("epoch", domain=domains[1], anchor="y2", **ticks),
                       yaxis=_loss_axis(losses, anchor="x"),
                       yaxis2=theme.axis("accuracy", anchor="x2", range=[0, 1.02], tickformat=".0%"))
    return Chart(fig, _curves_takeaway(h, n_classes, status))


_ENDED = {"finished": "finished", "cancelled": "was stopped", "diverged": "diverged"}


def _step_loss_chart(h: History, status: str | None, title: str) -> Chart:
    """The training loss per step, for a run with steps but no finished epoch (live, stopped or diverged)."""
    x = [s + 1 for s in h.steps]
    line = dict(type="scatter", x=x, y=h.loss, name="training loss per step", mode="lines+markers",
                line=dict(color=theme.BLUE, width=2), marker=dict(size=5))
    fig = theme.figure([line], title, 360, xaxis=theme.axis("training step"), yaxis=_loss_axis(list(h.loss)))
    last = f"{h.loss[-1]:.3g} at step {x[-1]}"
    if status is None:
        return Chart(fig, f"No epoch has finished yet: the training loss per step, latest {last}.")
    return Chart(fig, f"The run {_ENDED[status]} before its first epoch ended, so there is no per-epoch curve: "
                      f"the training loss per step went from {h.loss[0]:.3g} to {last}.")


def _progress_prefix(h: History, status: str | None) -> str:
    """How far the run got, when it did not simply finish: "So far (epoch 2 of 10): " and the like."""
    done, planned = len(h.epochs), h.total_epochs
    of = f" of {planned}" if planned else ""
    if status is None and (planned is None or done < planned):
        return f"So far (epoch {done}{of}): "
    if status == "cancelled":
        return f"Stopped after {done}{of} epochs: "
    if status == "diverged":
        return f"Diverged after {done}{of} epochs (see why above); up to then: "
    return ""


def _curves_takeaway(h: History, n_classes: int | None, status: str | None = None) -> str:
    """Underfitting, overfitting or a good fit, from the last epoch's accuracies against chance; said for what the
    run is (still going, stopped, diverged)."""
    prefix = _progress_prefix(h, status)
    last = h.epochs[-1]
    vals = h.val_points()
    if not vals:
        return f"{prefix}training accuracy {pct(last.train_acc)} after epoch {last.epoch + 1}; no validation pass yet."
    best_ep, best = max(vals, key=lambda p: p[1])
    final, train_acc = vals[-1][1], last.train_acc
    chance = 1 / n_classes if n_classes else 0.0
    chance_text = f" (chance: {pct(chance)})" if n_classes else ""
    yet = " yet" if status is None else ""
    gap = train_acc - final
    if train_acc < max(chance + UNDERFIT_MARGIN, 0.5):
        text = (f"training accuracy is only {pct(train_acc)}{chance_text} and validation {pct(final)}: the model has "
                f"not fitted even its training images{yet} (underfitting). More epochs, a higher learning rate or "
                f"more trainable layers would help.")
    elif gap > FIT_GAP:
        near = f", close to chance{chance_text}" if n_classes and final < chance + 0.1 else ""
        text = (f"training accuracy {pct(train_acc)} but validation {pct(final)}{near}: a {100 * gap:.0f}-point gap, "
                f"so the model memorises its training images instead of learning the task (overfitting).")
    else:
        text = (f"validation accuracy {pct(final)} (best {pct(best)} at epoch {best_ep}){chance_text}, within "
                f"{max(100 * gap, 0):.0f} points of training accuracy: it learned the task without strong "
                f"overfitting.")
    out = prefix + text
    return out[:1].upper() + out[1:]


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
        return theme.waiting(title, "Waiting for the first training step…")
    x, z, raw = heatmap_matrix(h)
    thawed = h.thawed_at()
    labels = [_group_label(g, h.frozen, thawed) for g in h.groups]
    heat = dict(type="heatmap", x=x, y=labels, z=z, customdata=raw, colorscale=theme.GRAD_SCALE, hoverongaps=False,
                ygap=3, colorbar=theme.log_colorbar((v for row in z for v in row), "‖gradient‖ (log scale)"),
                hovertemplate="%{y}<br>step %{x}<br>‖gradient‖ = %{customdata:.3g}<extra></extra>")
    frozen = h.frozen_throughout()
    notes = [theme.note("frozen: no gradient", (x[0] + x[-1]) / 2, label) for g, label in zip(h.groups, labels)
             if g in frozen]
    fig = theme.figure([heat], title, 120 + 48 * len(h.groups), plot_bgcolor=theme.LIGHT, annotations=notes,
                  xaxis=theme.axis("training step", showgrid=False),
                  yaxis=theme.axis(autorange="reversed", showgrid=False, type="category"))
    return Chart(fig, _grad_takeaway(h, thawed))


def _grad_takeaway(h: History, thawed: dict[str, int]) -> str:
    frozen = h.frozen_throughout()
    med = h.median_grad()
    parts = []
    if frozen:
        parts.append(f"Frozen {and_list(frozen)} had no gradient at all (empty {'row' if len(frozen) == 1 else 'rows'})")
    if med:
        top = max(med, key=med.get)
        low = min(med, key=med.get)
        if top == low:
            parts.append(f"{top} got gradients of about {sci(med[top])}")
        else:
            parts.append(f"{top} had the largest gradients (median {sci(med[top])}), {low} the smallest "
                         f"({sci(med[low])})")
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
        return theme.waiting(title, "Waiting for the first sampled step…")
    x = [s + 1 for s in h.ratio_steps]
    data = []
    for i, g in enumerate(g for g in h.groups if g in med):
        colour = theme.GREEN if g == "head" else theme.OKABE_ITO[i % 6]
        data.append(dict(type="scatter", x=x, y=h.ratio[g], name=g, mode="lines+markers", connectgaps=False,
                         line=dict(color=colour, width=2.5), marker=dict(symbol=i % 20, size=7)))
    data.append(dict(type="scatter", x=[x[0], x[-1]], y=[RATIO_RULE_OF_THUMB] * 2, mode="lines",
                     name="rule of thumb ≈ 10⁻³", hoverinfo="skip", line=dict(color=theme.GREY, dash="dash")))
    fig = theme.figure(data, title, 380, xaxis=theme.axis("training step"),
                  yaxis=theme.axis("‖Δw‖ / ‖w‖ per step", type="log", exponentformat="power"))
    return Chart(fig, _ratio_takeaway(h, med))


def _ratio_takeaway(h: History, med: dict[str, float]) -> str:
    top = max(med, key=med.get)
    low = min(med, key=med.get)
    frozen = h.frozen_throughout()
    text = f"Per step, {top} changed by about {sci(med[top])} of its weights"
    if low != top:
        text += f" and {low} by {sci(med[low])}"
    if frozen:
        text += f"; frozen {and_list(frozen)} by nothing"
    body = {g: v for g, v in med.items() if g != "head"}  # a new head starts far off, so big steps are normal there
    if not body:
        return f"{text}."
    hi = max(body.values())
    verdict = ("large steps for the body: lower its learning rate if the loss jumps" if hi > 30 * RATIO_RULE_OF_THUMB
               else "the body barely moves: raise its learning rate to adapt it" if hi < RATIO_RULE_OF_THUMB / 30
               else "the body is near the healthy ~10⁻³")
    return f"{text} ({verdict})."


def live_charts(h: History, n_classes: int | None = None, status: str | None = None) -> dict[str, Chart]:
    """A run's three charts (curves, gradient heatmap, update ratio), live (status None) or finished."""
    return {"curves": curves_chart(h, n_classes, status=status), "grads": grad_heatmap_chart(h),
            "ratio": update_ratio_chart(h)}


def confusion_chart(ev: Evaluation, *, title: str = "Confusion matrix (validation images)") -> Chart:
    """Counts of true class (rows) against predicted class (columns), with the counts written in the cells.

    Args:
        ev: The run's evaluation.
        title: The figure title.

    Returns:
        A Chart whose takeaway gives the accuracy and the most frequent confusion.
    """
    cm = ev.confusion
    classes = [escape.html(c) for c in ev.classes]  # learner-chosen names: text, never markup
    heat = dict(type="heatmap", z=cm, x=classes, y=classes, text=cm, texttemplate="%{text}", textfont=dict(size=18),
                colorscale=[[0, "white"], [1, theme.BLUE]], colorbar=dict(title=dict(text="images", side="right")),
                hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>")
    fig = theme.figure([heat], title, 140 + 70 * len(classes), xaxis=theme.axis("predicted class", side="bottom"),
                  yaxis=theme.axis("true class", autorange="reversed"))
    return Chart(fig, _confusion_takeaway(ev))


def _confusion_takeaway(ev: Evaluation) -> str:
    cm = ev.confusion
    total = sum(map(sum, cm))
    right = sum(cm[i][i] for i in range(len(cm)))
    errors = [(cm[i][j], i, j) for i in range(len(cm)) for j in range(len(cm)) if i != j and cm[i][j]]
    if not errors:
        return f"All {total} validation images are on the diagonal: no mistakes."
    k, i, j = max(errors)
    return (f"{right} of {total} validation images right ({pct(right / max(total, 1))}); the most common mistake: "
            f"{escape.md(ev.classes[i])} taken for {escape.md(ev.classes[j])} ({k} time{'s' if k != 1 else ''}).")


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
    bar = dict(type="bar", x=acc, y=[escape.html(c) for c in classes], orientation="h", marker=dict(color=theme.GREEN),
               text=[pct(a) for a in acc], textposition="auto", textfont=dict(size=16),
               hovertemplate="%{y}: %{x:.0%}<extra></extra>")
    line = dict(type="line", xref="x", yref="paper", x0=chance, x1=chance, y0=0, y1=1,
                line=dict(color=theme.VERMILLION, dash="dash"))
    fig = theme.figure([bar], title, 120 + 50 * len(classes), shapes=[line],
                  annotations=[theme.note(f"chance {pct(chance)}", chance, 1.0, "x", "paper", yanchor="bottom")],
                  xaxis=theme.axis("accuracy", range=[0, 1.02], tickformat=".0%"), yaxis=theme.axis(autorange="reversed"))
    if len(set(acc)) == 1:
        takeaway = f"Every class is at {pct(acc[0])}."
    else:
        hard = min(classes, key=ev.per_class.get)
        easy = max(classes, key=ev.per_class.get)
        takeaway = (f"Hardest class: {escape.md(hard)} ({pct(ev.per_class[hard])}); easiest: {escape.md(easy)} "
                    f"({pct(ev.per_class[easy])}).")
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
        return theme.waiting(title, "No weights were measured.")
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
               marker=dict(color=[theme.ROLE_COLOURS[r] for r in roles],
                           pattern=dict(shape=["/" if r == "frozen" else "" for r in roles])),
               text=[f"{r}<br>{pct(v) if v >= 0.005 else f'{100 * v:.1g}%'}" for r, v in zip(roles, vals)],
               textposition="outside", textfont=dict(size=15), cliponaxis=False,
               hovertemplate="%{x}: moved %{y:.2%} of its starting norm<extra></extra>")
    fig = theme.figure([bar], title, 380, xaxis=theme.axis("layer group (input → head)"),
                  yaxis=theme.axis("‖w − w₀‖ / ‖w₀‖", tickformat=".0%", rangemode="tozero"))
    return Chart(fig, _drift_takeaway(result, plan, groups, frozen))


def _drift_takeaway(result: RunResult, plan: Plan, groups: list[str], frozen: list[str]) -> str:
    body = [g for g in groups if g != "head" and g not in frozen]
    moved = max(body, key=result.drift.get) if body else None
    parts = []
    if not plan.pretrained:
        top = max(groups, key=result.drift.get)
        return (f"Every group started from random weights; {top} moved most ({pct(result.drift[top])} of its "
                f"starting norm).")
    if moved is not None:
        parts.append(f"Among the pretrained groups {moved} moved most ({pct(result.drift[moved])} of its weights)")
    if frozen:
        parts.append(f"frozen {and_list(frozen)} did not move at all")
    if "head" in result.drift:
        parts.append(f"the new head moved {pct(result.drift['head'])} from its random start")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


@dataclass(frozen=True)
class Example:
    """One validation image for a gallery."""

    index: int  # index into the validation data
    image: np.ndarray  # (H, W, 3) uint8, upscaled
    caption: str  # e.g. "ring → crescent (99%)", the class names escaped for Markdown


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
        caption = f"{escape.md(item['true'])} → {escape.md(item['pred'])} ({pct(item['prob'])})"
        out.append(Example(int(item["index"]), tile, caption))
    return out
