"""The charts' one theme: the colour-blind-safe palette, fonts, axes, figure defaults and projector scaling.

Every chart of the app is built from these pieces, so one change here restyles every page, and the projector
view scales every figure the same way (`for_projector`). The palette is Okabe & Ito's (2008): reuse its names rather
than hex codes. The eight colours stay distinguishable under the common forms of colour blindness; still pair colour
with a label or a pattern wherever the difference matters. Plotly only: no streamlit and no torch here.
"""

from __future__ import annotations

import copy
import importlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

BLUE = "#0072B2"  # the app's primary colour: the chosen path, the current selection
ORANGE = "#E69F00"  # layers that fine-tune
GREEN = "#009E73"  # the new head; "good" outcomes
PINK = "#CC79A7"  # a second series next to blue
SKY = "#56B4E9"  # frozen layers ("ice")
VERMILLION = "#D55E00"  # training from scratch; warnings
YELLOW = "#F0E442"  # highlights behind black text
BLACK = "#000000"  # text and outlines

GREY = "#B0B0B0"  # not part of Okabe-Ito: inactive or removed things, always labelled as such
LIGHT = "#F2F2F2"  # not part of Okabe-Ito: backgrounds of inactive cells

OKABE_ITO: tuple[str, ...] = (BLUE, ORANGE, GREEN, PINK, SKY, VERMILLION, YELLOW, BLACK)  # series order

# How a layer group is treated by a plan, as drawn everywhere (quadrant page, train page, labs).
ROLE_COLOURS: dict[str, str] = {
    "frozen": SKY,
    "fine-tuned": ORANGE,
    "from scratch": VERMILLION,
    "new head": GREEN,
    "cut off": GREY,
}

# ---- type --------------------------------------------------------------------------------------------------------
FONT_FAMILY = "Source Sans Pro, Helvetica, Arial, sans-serif"
BASE_SIZE = 16  # body text of every chart, in px
FONT = dict(family=FONT_FAMILY, size=BASE_SIZE, color=BLACK)
PROJECTOR_SCALE = 1.75  # the projector view multiplies every chart font by this (16 px -> 28 px) ...
PROJECTOR_MIN_PX = 28  # ... and no text on a projected chart is smaller than this (read from 10 m)
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")

# Roles also drawn with a pattern, not by colour alone.
ROLE_PATTERNS: dict[str, str] = {"frozen": "/", "cut off": "x"}
# Colour and dash per race lane, so lanes differ by more than colour (keys: strategies, plus the learner's plan).
LANE_STYLES: dict[str, tuple[str, str]] = {
    "feature_extract": (SKY, "dot"),
    "finetune_top": (BLUE, "solid"),
    "finetune_all": (ORANGE, "dash"),
    "scratch": (VERMILLION, "longdash"),
    "early_classifier": (GREEN, "dashdot"),
    "my_plan": (BLACK, "solid"),
}
GRAD_SCALE = "Cividis"  # sequential and colour-blind safe


@dataclass(frozen=True)
class Chart:
    """A plotly figure with its title set, and the one-line takeaway computed from the same data."""

    fig: go.Figure  # always has layout.title.text
    takeaway: str  # one sentence for the caption under the chart


def power_label(k: int) -> str:
    return f"10{str(k).translate(_SUPERSCRIPT)}"


def axis(title: str | None = None, **kw: Any) -> dict:
    """An axis as a dict, with projector-sized tick and title fonts."""
    out = dict(tickfont=dict(size=BASE_SIZE - 1), gridcolor=LIGHT, zeroline=False, **kw)
    if title:
        out["title"] = dict(text=title, font=dict(size=BASE_SIZE))
    return out


# Modules that plotly uses when they are in sys.modules, without importing them (`get_module(name, should_load=False)`
# in its validators and its JSON encoder). While another thread imports one of them (ui.warm's background import, or
# another session's page), plotly would see it half-imported: a pandas with no `Series` yet.
PEEKED_MODULES = ("numpy", "pandas")


def import_peeked_modules() -> None:
    """Import the modules plotly peeks at, whole, before a figure is built (every figure of ui.charts is).

    Once they are imported whole, no import of them can be in flight again, so plotly never sees a half-imported one;
    an import already in flight in another thread is waited for (its import lock). The first call costs pandas'
    import (a quarter of a second) where nothing had loaded it yet; later calls are a lookup in sys.modules.
    """
    for name in PEEKED_MODULES:
        importlib.import_module(name)


def figure(data: list[dict], title: str, height: int, **layout: Any) -> go.Figure:
    """A figure from plain dicts in one validated step (much cheaper than plotly's update_* and make_subplots,
    which matters for the live redraws that share the CPU with training)."""
    import plotly.graph_objects as go  # here, not at the top: the diagrams and the palette need no plotly

    import_peeked_modules()
    base = dict(title=dict(text=title), height=height, font=FONT, margin=dict(l=10, r=10, t=70, b=10),
                plot_bgcolor="white", legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return go.Figure(dict(data=data, layout={**base, **layout}))


def note(text: str, x: Any, y: Any, xref: str = "x", yref: str = "y", size: int = 15, **kw: Any) -> dict:
    """A text annotation without an arrow."""
    return dict(text=text, x=x, y=y, xref=xref, yref=yref, showarrow=False,
                font=dict(size=size, color=BLACK), **kw)


def panels(n: int, gap: float) -> list[list[float]]:
    """x domains of n side-by-side panels."""
    width = (1 - gap * (n - 1)) / n
    return [[i * (width + gap), i * (width + gap) + width] for i in range(n)]


def panel_titles(titles: Sequence[str], domains: list[list[float]]) -> list[dict]:
    return [note(t, (d[0] + d[1]) / 2, 1.0, "paper", "paper", size=BASE_SIZE, yanchor="bottom")
            for t, d in zip(titles, domains)]


def waiting(title: str, message: str, height: int = 320) -> Chart:
    """A titled, empty figure that says what it waits for."""
    fig = figure([], title, height, xaxis=dict(visible=False), yaxis=dict(visible=False),
                  annotations=[note(message, 0.5, 0.5, "paper", "paper", size=18)])
    return Chart(fig, message)


def epoch_dtick(last_epoch: int) -> int:
    """Whole-epoch tick spacing giving at most about ten ticks."""
    return max(1, math.ceil(last_epoch / 10))


def wrap(text: str, width: int) -> str:
    """Break a label into lines of about `width` characters with <br> (for subplot titles)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def log_colorbar(zs: Iterable[float | None], title: str) -> dict:
    """A colour bar for log10 values, labelled in powers of ten."""
    finite = [z for z in zs if z is not None]
    lo, hi = (math.floor(min(finite)), math.ceil(max(finite))) if finite else (-3, 0)
    ticks = list(range(lo, hi + 1)) or [lo]
    return dict(title=dict(text=title, side="right"), tickvals=ticks, ticktext=[power_label(t) for t in ticks])


def lane_style(key: str, i: int) -> tuple[str, str]:
    return LANE_STYLES.get(key, (OKABE_ITO[i % len(OKABE_ITO)], "solid"))


def hline(y: float, text: str) -> tuple[dict, dict]:
    """A dotted horizontal reference line across the plot, with its label (shape, annotation)."""
    shape = dict(type="line", xref="paper", x0=0, x1=1, y0=y, y1=y, line=dict(color=GREY, dash="dot"))
    label = dict(text=text, xref="paper", x=1, y=y, yanchor="bottom", xanchor="right", showarrow=False,
                 font=dict(size=BASE_SIZE - 2, color="#555555"), bgcolor="rgba(255,255,255,0.85)")
    return shape, label


def acc_axis(**kw: Any) -> dict:
    """A y axis for accuracies: 0 to 100%."""
    return axis("accuracy", range=[0, 1.05], tickformat=".0%", **kw)


def for_projector(fig: go.Figure, scale: float = PROJECTOR_SCALE) -> go.Figure:
    """A copy of a figure with every font (title, axes, ticks, legend, annotations, texts, colour bar) scaled for the
    projector, none below PROJECTOR_MIN_PX.

    Args:
        fig: Any figure built from this theme.
        scale: Factor on every font size.

    Returns:
        A new figure; the original is unchanged (it may be shared by a cache).
    """
    import plotly.graph_objects as go

    out = go.Figure(copy.deepcopy(fig.to_dict()))

    def grow(font: Any, default: float = BASE_SIZE) -> dict:
        size = (font.size if font is not None and font.size is not None else default) * scale
        return dict(size=max(PROJECTOR_MIN_PX, round(size)))

    layout = out.layout
    out.update_layout(font=grow(layout.font), title_font=grow(layout.title.font, BASE_SIZE + 2),
                      legend_font=grow(layout.legend.font), height=round((layout.height or 400) * min(scale, 1.4)),
                      hoverlabel=dict(font=grow(None)))
    if any(getattr(t, "coloraxis", None) for t in out.data):  # a shared colour bar
        bar = layout.coloraxis.colorbar
        out.update_layout(coloraxis_colorbar=dict(tickfont=grow(bar.tickfont, BASE_SIZE - 1),
                                                  title_font=grow(bar.title.font if bar.title else None)))
    out.for_each_xaxis(lambda a: a.update(tickfont=grow(a.tickfont, BASE_SIZE - 1), title_font=grow(a.title.font)))
    out.for_each_yaxis(lambda a: a.update(tickfont=grow(a.tickfont, BASE_SIZE - 1), title_font=grow(a.title.font)))
    out.for_each_annotation(lambda a: a.update(font=grow(a.font)))
    out.for_each_trace(lambda t: t.update(textfont=grow(t.textfont)) if "textfont" in t else None)
    return out
