"""Shared rendering helpers for the pages: charts with takeaways, the plan's layer groups, the quadrant.

Figures are built by plain functions (`*_figure`) that return plotly figures, so they can be checked
without a running app; the `show_*` functions put them on the page.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import plotly.graph_objects as go
import streamlit as st

from tl_core import palette
from tl_core.teaching.decisions import LOTS_PER_CLASS, SIMILAR_AT, layer_roles, plan_takeaway, recommend
from tl_core.training.plan import STRATEGIES, Plan

if TYPE_CHECKING:  # pandas costs a quarter of a second to import: only pages that draw tables pay it
    import pandas as pd

FONT = dict(family="Source Sans Pro, Helvetica, Arial, sans-serif", size=15, color=palette.BLACK)
ROLE_PATTERNS = {"frozen": "/", "cut off": "x"}  # roles also drawn with a pattern, not by colour alone


# The projector view: no sidebar or header, the main column full width, large type.
PROJECTOR_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"] {display: none;}
[data-testid="stMainBlockContainer"] {max-width: 100%; padding: 1rem 2rem;}
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li, [data-testid="stCaptionContainer"],
[data-testid="stWidgetLabel"] p, [data-testid="stAlert"] p, [data-testid="stProgress"] p {font-size: 1.6rem;}
[data-testid="stHeading"] h1 {font-size: 3.2rem;}
[data-testid="stHeading"] h2 {font-size: 2.4rem;}
</style>"""


def projector_style() -> None:
    """Restyle the page for the classroom projector (see PROJECTOR_CSS)."""
    st.html(PROJECTOR_CSS)


def chart(fig: go.Figure, takeaway: str, *, key: str | None = None) -> None:
    """Render a plotly figure full-width with its one-line takeaway as a caption below.

    Args:
        fig: A plotly figure with a title.
        takeaway: One sentence: what the viewer should see in the chart.
        key: Optional stable element key.

    Raises:
        ValueError: If the figure has no title or the takeaway is empty.
    """
    if not (fig.layout.title and fig.layout.title.text):
        raise ValueError("Every chart needs a title: set fig.update_layout(title=...).")
    if not takeaway.strip():
        raise ValueError("Every chart needs a one-line takeaway under it; pass takeaway='...'.")
    st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})
    st.caption(f"**Takeaway:** {takeaway}")


# ---- the plan's layer groups ------------------------------------------------------------------
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
            marker=dict(color=palette.ROLE_COLOURS[r.role], line=dict(color="white", width=3),
                        pattern=dict(shape=ROLE_PATTERNS.get(r.role, ""), fgcolor="rgba(0,0,0,0.35)")),
            text=f"<b>{r.group}</b><br>{r.role}<br>{lr_text}", textposition="inside", insidetextanchor="middle",
            textfont=dict(color=palette.BLACK, size=14), hovertemplate=f"{r.group}: {r.role}, {lr_text}<extra></extra>",
        ))
        seen.add(r.role)
    fig.update_layout(
        title=dict(text=f"What trains in {plan.arch}: {STRATEGIES[plan.strategy].label.lower()} (input → head)"),
        barmode="stack", height=230, margin=dict(l=10, r=10, t=60, b=10), font=FONT, bargap=0.1,
        xaxis=dict(visible=False), yaxis=dict(visible=False),
        legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0, title_text=""),
    )
    return fig


def plan_table(plan: Plan) -> pd.DataFrame:
    """The plan's layer groups as a table: group, role, learning rate, multiplier on the base rate."""
    rows = [{"Layer group": r.group, "Role": r.role, "Learning rate": r.lr,
             "× base lr": (r.lr / plan.lr) if r.lr else 0.0} for r in layer_roles(plan)]
    import pandas as pd

    return pd.DataFrame(rows)


def show_plan(plan: Plan, *, key: str | None = None) -> None:
    """Draw a plan's layer groups with its takeaway, and its exact learning rates in an expander."""
    chart(plan_groups_figure(plan), plan_takeaway(plan), key=key)
    with st.expander("Learning rate per layer group"):
        st.dataframe(plan_table(plan), hide_index=True,
                     column_config={"Learning rate": st.column_config.NumberColumn(format="%.2e"),
                                    "× base lr": st.column_config.NumberColumn(format="%.4g")})


# ---- the size-versus-similarity quadrant --------------------------------------------------------
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
                      fillcolor=palette.BLUE if chosen else palette.LIGHT,
                      line=dict(color=palette.BLUE if chosen else palette.GREY, width=4 if chosen else 1))
        bullets = "<br>".join(f"• {b}" for b in rec.bullets)
        head = f"<b>{sz.capitalize()} data, {sim}</b>"
        fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2, text=f"{head}<br>{bullets}", showarrow=False,
                           align="left", font=dict(size=15, color="white" if chosen else "#444444"))
    if point is not None:
        px, py = quadrant_xy(*point)
        fig.add_trace(go.Scatter(x=[px], y=[py], mode="markers", name="your problem", showlegend=False,
                                 marker=dict(symbol="star", size=22, color=palette.YELLOW,
                                             line=dict(color=palette.BLACK, width=2)),
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
