"""Streamlit helpers that put the views on the page: a chart with its takeaway, a plan, the projector's style.

The figures themselves are built in ui.charts (plotly only, testable without a running app).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import streamlit as st

from ui.charts import theme
from ui.charts.theme import Chart

if TYPE_CHECKING:  # app.py imports this module for every first page: what only some pages use is imported there
    import pandas as pd  # (a quarter of a second: only pages that draw tables pay it)
    import plotly.graph_objects as go

    from tl_core.training.plan import Plan

# The projector view: no sidebar or header, the main column full width, and no text under 28 px (read from 10 m): body
# text, tables, captions, labels, alerts and the progress line at 30 px, headings larger. Charts scale through
# ui.charts.theme.for_projector (show_chart).
PROJECTOR_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"] {display: none;}
[data-testid="stMainBlockContainer"] {max-width: 100%; padding: 1rem 2rem;}
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li, [data-testid="stCaptionContainer"],
[data-testid="stMarkdownContainer"] td, [data-testid="stMarkdownContainer"] th,
[data-testid="stWidgetLabel"] p, [data-testid="stAlert"] p, [data-testid="stProgress"] p,
[data-testid="stBaseButton-primary"] p, [data-testid="stBaseButton-secondary"] p {font-size: 30px; line-height: 1.3;}
[data-testid="stMarkdownContainer"] td, [data-testid="stMarkdownContainer"] th {padding: 0.3rem 0.8rem;}
[data-testid="stHeading"] h1 {font-size: 56px;}
[data-testid="stHeading"] h2, [data-testid="stMarkdownContainer"] h2 {font-size: 44px;}
[data-testid="stHeading"] h3, [data-testid="stMarkdownContainer"] h3 {font-size: 36px;}
[data-testid="stMarkdownContainer"] h4 {font-size: 32px;}
</style>"""


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]], highlight: int | None = None) -> str:
    """A static table as Markdown (its text wraps to the page, and it needs no pandas: a light page stays light).

    Args:
        columns: The header cells.
        rows: One sequence of cells per row, as many as columns; "|" and brackets in cells are escaped.
        highlight: The index of a row to mark: its cells bold on the theme's blue background; None marks none.

    Raises:
        ValueError: If a row has a different number of cells than there are columns.
    """
    def cell(text: str, on: bool) -> str:
        text = str(text).replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")
        return f":blue-background[:blue[**{text}**]]" if on and text else text

    lines = ["| " + " | ".join(cell(c, False) for c in columns) + " |", "|" + "---|" * len(columns)]
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise ValueError(f"Row {i} has {len(row)} cells; the table has {len(columns)} columns.")
        lines.append("| " + " | ".join(cell(c, i == highlight) for c in row) + " |")
    return "\n".join(lines)


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


def show_chart(c: Chart, *, key: str | None = None) -> None:
    """Render a Chart (figure and takeaway); in the projector view, with every font scaled up (theme.for_projector)."""
    fig = theme.for_projector(c.fig) if st.session_state.get("class.projector") else c.fig
    chart(fig, c.takeaway, key=key)


def plan_table(plan: Plan) -> pd.DataFrame:
    """The plan's layer groups as a table: group, role, learning rate, multiplier on the base rate."""
    from tl_core.teaching.plans import layer_roles

    rows = [{"Layer group": r.group, "Role": r.role, "Learning rate": r.lr,
             "× base lr": (r.lr / plan.lr) if r.lr else 0.0} for r in layer_roles(plan)]
    import pandas as pd

    return pd.DataFrame(rows)


def show_plan(plan: Plan, *, key: str | None = None) -> None:
    """Draw a plan's layer groups with its takeaway, and its exact learning rates in an expander."""
    from ui.charts.decisions import plan_groups_chart

    show_chart(plan_groups_chart(plan), key=key)
    with st.expander("Learning rate per layer group"):
        st.dataframe(plan_table(plan), hide_index=True,
                     column_config={"Learning rate": st.column_config.NumberColumn(format="%.2e"),
                                    "× base lr": st.column_config.NumberColumn(format="%.4g")})


