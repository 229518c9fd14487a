"""Charts of the learner's own images: the dataset's class counts, and a model's top-k prediction for one picture.

Each returns a `Chart` whose takeaway is computed from the same numbers (plotly only; no torch, no streamlit).
Class names are the learner's: escaped as HTML inside the figure and as Markdown in the takeaway (ui.escape).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from tl_core.data.own import MIN_PER_CLASS, ValidationReport, summarise
from tl_core.fmt import pct
from ui.charts import theme
from ui.charts.theme import Chart
from ui.escape import html, md

if TYPE_CHECKING:
    from tl_core.models.inference import Prediction

CONFIDENT = 0.5  # a top-1 probability from which the takeaway calls the model "fairly sure"
VERY_CONFIDENT = 0.9  # ... and "very sure"
MAX_BARS = 40  # classes drawn at most in the counts chart (the fewest-image classes when there are more)


def counts_chart(report: ValidationReport) -> Chart:
    """One bar per class with its usable images, the minimum marked, and a takeaway about balance. With more than
    MAX_BARS classes, the MAX_BARS with the fewest images are drawn (the title says so).

    Raises:
        ValueError: If the report has no classes.
    """
    if not report.classes:
        raise ValueError("There are no classes to draw yet; add images first.")
    drawn = list(report.classes)
    title = "Usable images per class"
    if len(drawn) > MAX_BARS:
        drawn = sorted(drawn, key=lambda c: (report.counts[c], report.classes.index(c)))[:MAX_BARS]
        title = f"Usable images per class: the {MAX_BARS} smallest of {len(report.classes)} classes"
    counts = [report.counts[c] for c in drawn]
    colours = [theme.VERMILLION if n < MIN_PER_CLASS else theme.BLUE for n in counts]
    theme.import_peeked_modules()
    fig = go.Figure(go.Bar(x=[html(c) for c in drawn], y=counts, marker=dict(color=colours), text=counts,
                           textposition="outside", cliponaxis=False,
                           hovertemplate="%{x}: %{y} images<extra></extra>"))
    fig.add_hline(y=MIN_PER_CLASS, line=dict(color=theme.VERMILLION, dash="dash"),
                  annotation_text=f"minimum {MIN_PER_CLASS}", annotation_position="top left",
                  annotation=dict(bgcolor="rgba(255,255,255,0.85)"))
    fig.update_layout(title=dict(text=title), font=theme.FONT, height=360, plot_bgcolor="white",
                      margin=dict(l=10, r=10, t=70, b=10), yaxis=dict(title="images", gridcolor=theme.LIGHT,
                                                                     rangemode="tozero"),
                      xaxis=dict(title="class", type="category"))
    small = [c for c in report.classes if report.counts[c] < MIN_PER_CLASS]
    most = max(report.classes, key=report.counts.get)
    least = min(report.classes, key=report.counts.get)
    if small:
        takeaway = f"{md(summarise(small, quote=False))} {'has' if len(small) == 1 else 'have'} fewer than " \
                   f"{MIN_PER_CLASS} images: add more before training."
    elif len(report.classes) < 2:
        takeaway = f"Only one class ({md(most)}, {report.counts[most]} images): a classifier needs at least two."
    elif report.counts[most] == report.counts[least]:
        takeaway = f"Balanced: every class has {report.counts[most]} images."
    else:
        ratio = report.counts[most] / max(report.counts[least], 1)
        takeaway = (f"{md(most)} has the most images ({report.counts[most]}), {md(least)} the fewest "
                    f"({report.counts[least]}): {ratio:.1f}x apart"
                    + (", so accuracy alone can flatter the model; check the per-class results." if ratio >= 2
                       else ", close enough to balanced."))
    return Chart(fig, takeaway)


def _pct(p: float) -> str:
    """A probability: whole percent, "over 99%" when it would round to 100% without being certain, and one decimal
    below 1% (a tiny probability must not read as 0%)."""
    if 0.995 <= p < 1.0:
        return "over 99%"
    if p >= 0.01:
        return pct(p)
    return f"{100 * p:.1f}%" if p >= 0.001 else "<0.1%"


def topk_takeaway(preds: Prediction, model_name: str, truth: str | None = None,
                  known: tuple[str, ...] | None = None) -> str:
    """One sentence about a prediction, computed from its probabilities: "very sure" from VERY_CONFIDENT, "fairly
    sure" from CONFIDENT, else "unsure".

    Args:
        preds: The prediction, most likely first.
        model_name: How to call the model, e.g. "resnet18" or "The shapes model".
        truth: The true class when it is known (built-in samples).
        known: The classes the model can name, when that matters (the shapes model's six shapes).

    Returns:
        The takeaway (Markdown-safe: class names are escaped).
    """
    (top, p1), rest = preds[0], preds[1:]
    sure = "very sure" if p1 >= VERY_CONFIDENT else "fairly sure"
    if p1 >= CONFIDENT and rest:
        second, p2 = rest[0]
        lead = (f"far ahead of the runner-up '{md(second)}' (under 1%)" if p2 < 0.01 else
                f"{p1 / p2:.0f}x the runner-up '{md(second)}' ({_pct(p2)})")
        core = f"{model_name} is {sure} it is '{md(top)}' ({_pct(p1)}), {lead}"
    elif p1 >= CONFIDENT:
        core = f"{model_name} is {sure} it is '{md(top)}' ({_pct(p1)})"
    else:
        core = (f"{model_name} is unsure: its best guess '{md(top)}' gets only {_pct(p1)}, and the top {len(preds)} "
                f"together get {_pct(sum(p for _, p in preds))}")
    if truth is not None and known is not None and truth not in known:
        return (f"The model only knows {len(known)} classes and '{md(truth)}' is not one of them, so it must pick the "
                f"closest: {core[0].lower() + core[1:]}. A new head trained on new classes fixes this: that is "
                f"transfer learning.")
    if truth is not None:
        verdict = "right" if top == truth else f"wrong (it is a '{md(truth)}')"
        return f"{core}: {verdict}."
    return f"{core}."


def topk_chart(preds: Prediction, model_name: str, truth: str | None = None,
               known: tuple[str, ...] | None = None) -> Chart:
    """A horizontal bar chart of a prediction (most likely on top) with its computed takeaway.

    Args:
        preds: The prediction, most likely first.
        model_name: Shown in the title and the takeaway.
        truth: The true class when known; its bar is outlined and labelled.
        known: The classes the model can name (see topk_takeaway).

    Returns:
        A Chart.

    Raises:
        ValueError: If the prediction is empty.
    """
    if not preds:
        raise ValueError("There is no prediction to draw; classify an image first.")
    names = [c for c, _ in preds][::-1]  # plotly draws the first bar at the bottom
    probs = [p for _, p in preds][::-1]
    colours = [theme.BLUE if i == len(names) - 1 else theme.SKY for i in range(len(names))]
    labels = [html(f"{c} (true class)" if c == truth else c) for c in names]
    theme.import_peeked_modules()
    fig = go.Figure(go.Bar(
        x=probs, y=labels, orientation="h", marker=dict(color=colours, line=dict(
            color=[theme.BLACK if c == truth else "rgba(0,0,0,0)" for c in names], width=3)),
        text=[_pct(p) for p in probs], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_layout(
        title=dict(text=f"What {html(model_name)} sees: its top {len(preds)} classes"), font=theme.FONT,
        height=120 + 48 * len(preds), margin=dict(l=10, r=40, t=70, b=10), plot_bgcolor="white",
        xaxis=dict(title="probability (softmax)", range=[0, 1.08], tickformat=".0%", gridcolor=theme.LIGHT),
        yaxis=dict(automargin=True), showlegend=False)
    return Chart(fig, topk_takeaway(preds, model_name, truth, known))
