"""Charts of the decision pages: the size-versus-similarity quadrant, and what a plan does to each layer group.

Plotly only (no torch, no streamlit).
"""

from __future__ import annotations

import math

import plotly.graph_objects as go

from tl_core.teaching.content import WORKED_CASES
from tl_core.teaching.plans import layer_roles, plan_takeaway
from tl_core.teaching.quadrant import LOTS_PER_CLASS, SIMILAR_AT, recommend
from tl_core.training.plan import STRATEGIES, Plan
from ui.charts import theme
from ui.charts.theme import FONT, ROLE_PATTERNS, Chart


def plan_groups_figure(plan: Plan) -> go.Figure:
    """A row of boxes, one per layer group from input to head, coloured (and patterned) by what the plan does.

    Args:
        plan: The plan to draw.

    Returns:
        A plotly figure; each box is labelled with its group, role and learning rate.
    """
    theme.import_peeked_modules()
    fig = go.Figure()
    seen: set[str] = set()
    for r in layer_roles(plan):
        lr_text = "lr 0 (not trained)" if r.lr == 0 else f"lr {r.lr:.2g}"
        fig.add_trace(go.Bar(
            x=[1], y=[""], orientation="h", name=r.role, legendgroup=r.role, showlegend=r.role not in seen,
            marker=dict(color=theme.ROLE_COLOURS[r.role], line=dict(color="white", width=3),
                        pattern=dict(shape=ROLE_PATTERNS.get(r.role, ""), fgcolor="rgba(0,0,0,0.35)")),
            text=f"<b>{r.group}</b><br>{r.role}<br>{lr_text}", textposition="inside", insidetextanchor="middle",
            textfont=dict(color=theme.BLACK, size=14), hovertemplate=f"{r.group}: {r.role}, {lr_text}<extra></extra>",
        ))
        seen.add(r.role)
    fig.update_layout(
        title=dict(text=f"What trains in {plan.arch}: {STRATEGIES[plan.strategy].label.lower()} (input → head)"),
        barmode="stack", height=230, margin=dict(l=10, r=10, t=60, b=10), font=FONT, bargap=0.1,
        xaxis=dict(visible=False), yaxis=dict(visible=False),
        legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0, title_text=""),
    )
    return fig


def plan_groups_chart(plan: Plan) -> Chart:
    """The plan's layer groups (plan_groups_figure) with the takeaway that says what freezes and what trains."""
    return Chart(plan_groups_figure(plan), plan_takeaway(plan))


QUADRANT_MAX_N = 10_000  # top of the size axis; larger datasets are drawn at the top
QUADRANT_HEIGHT = 640  # px: each row of cells gets about 250 px, room for its text block and the star apart
CELL_FONT = 14  # px, the cells' text
TEXT_BAND = 0.4  # fraction of a cell's height its text block may use (the star stays out of it)


def quadrant_xy(n_per_class: int, similarity: float) -> tuple[float, float]:
    """Where a problem sits in the quadrant's drawing: x = 2 · similarity, y = log10(n) / 2 (100 per class → 1).

    The threshold lines then fall on x = 1 and y = 1 when SIMILAR_AT = 0.5 and LOTS_PER_CLASS = 100.
    """
    n = min(max(n_per_class, 1), QUADRANT_MAX_N)
    return 2 * similarity, math.log10(n) / 2


def _cell_text(size: str, similarity: str) -> str:
    """A cell's text: the headline, the course's three bullets and the worked cases placed in it."""
    rec = recommend(size, similarity)
    lines = [f"<b>{size.capitalize()} data, {similarity}</b>", *(f"• {b}" for b in rec.bullets)]
    lines += [f"<i>Worked case: {c.short}</i>" for c in WORKED_CASES if (c.size, c.similarity) == (size, similarity)]
    return "<br>".join(lines)


def quadrant_figure(size: str, similarity: str, point: tuple[int, float] | None = None) -> go.Figure:
    """The course's 2×2 grid (rows: lots/little data; columns: different/similar), the chosen cell filled.

    Each cell holds the course's bullets and the course's worked cases that sit in it (content.WORKED_CASES). The
    text block (at most TEXT_BAND of the cell's height) hangs from the top of its cell, or stands on its bottom
    when the star falls in the cell's upper half, so the star never covers it.

    Args:
        size: The chosen row, "lots" or "little".
        similarity: The chosen column, "similar" or "different".
        point: Optional (images per class, similarity) marked with a star.

    Returns:
        A plotly figure.
    """
    x_line, y_line = quadrant_xy(LOTS_PER_CLASS, SIMILAR_AT)
    cells = {("lots", "different"): (0, x_line, y_line, 2), ("lots", "similar"): (x_line, 2, y_line, 2),
             ("little", "different"): (0, x_line, 0, y_line), ("little", "similar"): (x_line, 2, 0, y_line)}
    star = quadrant_xy(*point) if point is not None else None
    shapes, annotations = [], []
    for (sz, sim), (x0, x1, y0, y1) in cells.items():
        chosen = (sz, sim) == (size, similarity)
        shapes.append(dict(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, layer="below",
                           fillcolor=theme.BLUE if chosen else theme.LIGHT,
                           line=dict(color=theme.BLUE if chosen else theme.GREY, width=4 if chosen else 1)))
        pad = 0.04 * (y1 - y0)
        star_high = (star is not None and x0 <= star[0] <= x1 and y0 <= star[1] <= y1
                     and star[1] > (y0 + y1) / 2)
        y, anchor = (y0 + pad, "bottom") if star_high else (y1 - pad, "top")
        annotations.append(dict(x=(x0 + x1) / 2, y=y, yanchor=anchor, xanchor="center", text=_cell_text(sz, sim),
                                showarrow=False, align="left", name=f"cell:{sz}:{sim}",
                                font=dict(size=CELL_FONT, color="white" if chosen else "#333333")))
    data = []
    if point is not None:
        data.append(dict(type="scatter", x=[star[0]], y=[star[1]], mode="markers", name="your problem",
                         showlegend=False, cliponaxis=False,
                         marker=dict(symbol="star", size=20, color=theme.YELLOW, line=dict(color=theme.BLACK, width=2)),
                         hovertemplate=f"{point[0]} images per class, similarity {point[1]:.2f}<extra></extra>"))
    n_ticks = [1, 5, 20, 100, 500, 2000, 10_000]
    s_ticks = [0, 0.25, 0.5, 0.75, 1]
    return theme.figure(
        data, "Your problem on the course's size-vs-similarity grid", QUADRANT_HEIGHT,
        margin=dict(l=20, r=20, t=60, b=20), shapes=shapes, annotations=annotations, showlegend=False,
        xaxis=theme.axis("Similarity to the source data (0 = unrelated, 1 = the same)", range=[0, 2],
                         tickvals=[2 * s for s in s_ticks], ticktext=[f"{s:g}" for s in s_ticks], showgrid=False,
                         fixedrange=True, automargin=True, title_standoff=10),
        yaxis=theme.axis("Labelled images per class (log scale)", range=[0, 2],
                         tickvals=[quadrant_xy(n, 0)[1] for n in n_ticks], ticktext=[f"{n:,}" for n in n_ticks],
                         showgrid=False, fixedrange=True, automargin=True, title_standoff=10))
