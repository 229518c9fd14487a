"""Charts of the decision pages: the size-versus-similarity quadrant, and what a plan does to each layer group.

Plotly only (no torch, no streamlit).
"""

from __future__ import annotations

import math

import plotly.graph_objects as go

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


def quadrant_xy(n_per_class: int, similarity: float) -> tuple[float, float]:
    """Where a problem sits in the quadrant's drawing: x = 2 · similarity, y = log10(n) / 2 (100 per class → 1).

    The threshold lines then fall on x = 1 and y = 1 when SIMILAR_AT = 0.5 and LOTS_PER_CLASS = 100.
    """
    n = min(max(n_per_class, 1), QUADRANT_MAX_N)
    return 2 * similarity, math.log10(n) / 2


def quadrant_figure(size: str, similarity: str, point: tuple[int, float] | None = None) -> go.Figure:
    """The course's 2×2 grid (rows: lots/little data; columns: different/similar), the chosen cell filled.

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
    fig = go.Figure()
    for (sz, sim), (x0, x1, y0, y1) in cells.items():
        chosen = (sz, sim) == (size, similarity)
        rec = recommend(sz, sim)
        fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, layer="below",
                      fillcolor=theme.BLUE if chosen else theme.LIGHT,
                      line=dict(color=theme.BLUE if chosen else theme.GREY, width=4 if chosen else 1))
        bullets = "<br>".join(f"• {b}" for b in rec.bullets)
        head = f"<b>{sz.capitalize()} data, {sim}</b>"
        fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2, text=f"{head}<br>{bullets}", showarrow=False,
                           align="left", font=dict(size=15, color="white" if chosen else "#444444"))
    if point is not None:
        px, py = quadrant_xy(*point)
        fig.add_trace(go.Scatter(x=[px], y=[py], mode="markers", name="your problem", showlegend=False,
                                 marker=dict(symbol="star", size=22, color=theme.YELLOW,
                                             line=dict(color=theme.BLACK, width=2)),
                                 hovertemplate=f"{point[0]} images per class, similarity {point[1]:.2f}"
                                               "<extra></extra>"))
    n_ticks = [1, 5, 20, 100, 500, 2000, 10_000]
    s_ticks = [0, 0.25, 0.5, 0.75, 1]
    fig.update_layout(
        title=dict(text="Where your problem sits: amount of new data vs similarity to the source"),
        height=480, margin=dict(l=10, r=10, t=60, b=10), font=FONT, plot_bgcolor="white",
        xaxis=dict(title="How similar are the old and new datasets?  (different ← similarity → similar)",
                   range=[0, 2], tickvals=[2 * s for s in s_ticks], ticktext=[f"{s:g}" for s in s_ticks],
                   showgrid=False, zeroline=False, fixedrange=True),
        yaxis=dict(title="How much new training data?  (labelled images per class)", range=[0, 2],
                   tickvals=[quadrant_xy(n, 0)[1] for n in n_ticks], ticktext=[f"{n:,}" for n in n_ticks],
                   showgrid=False, zeroline=False, fixedrange=True),
    )
    return fig
