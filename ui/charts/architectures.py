"""Charts of the architecture explainers: parameters per layer group, the residual toggle, a dense block's growth.

Each returns a `Chart` whose takeaway is computed from the same numbers (plotly only; no torch, no streamlit).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tl_core.models.demos import DenseGrowth, GradientFlow, gradient_takeaway
from ui.charts import theme
from ui.charts.theme import Chart


def groups_chart(arch: str, rows: list[dict[str, Any]], takeaway: str) -> Chart:
    """Parameters per layer group (input → head), coloured and patterned by the plan's role for the group.

    Args:
        arch: The architecture's name (for the title).
        rows: tl_core.models.summary.group_table rows ("Group", "Parameters", "Role").
        takeaway: The sentence computed from the same table (tl_core.models.summary.group_takeaway).
    """
    roles = [r["Role"] for r in rows]
    bar = dict(type="bar", x=[r["Group"] for r in rows], y=[r["Parameters"] for r in rows], text=roles,
               textposition="outside", cliponaxis=False,
               marker=dict(color=[theme.ROLE_COLOURS.get(r, theme.GREY) for r in roles],
                           line=dict(color=theme.BLACK, width=1),
                           pattern=dict(shape=[theme.ROLE_PATTERNS.get(r, "") for r in roles],
                                        fgcolor="rgba(0,0,0,0.35)")),
               hovertemplate="%{x}: %{y:,} parameters (%{text})<extra></extra>")
    fig = theme.figure([bar], f"Parameters per layer group of {arch} (input → head)", 360,
                       xaxis=theme.axis("layer group"), yaxis=theme.axis("parameters", rangemode="tozero"))
    return Chart(fig, takeaway)


def _flow_trace(flow: GradientFlow, shown: bool) -> dict:
    return dict(type="scatter", x=list(np.arange(1, flow.depth + 1)), y=list(flow.layer_grad_norms),
                mode="lines+markers", name="with skip connections" if flow.skip else "without skip connections",
                line=dict(color=theme.BLUE if shown else theme.GREY, dash="solid" if shown else "dash",
                          width=3 if shown else 2))


def gradient_flow_chart(with_skip: GradientFlow, without: GradientFlow, skip_shown: bool) -> Chart:
    """Each layer's gradient norm after one backward pass, with and without skip connections (the shown one bold)."""
    shown, other = (with_skip, without) if skip_shown else (without, with_skip)
    fig = theme.figure([_flow_trace(other, shown=False), _flow_trace(shown, shown=True)],
                       f"Gradient norm of each layer's weights after one backward pass ({shown.depth} layers, "
                       f"{'with' if shown.batch_norm else 'without'} batch normalization)", 380,
                       legend=dict(orientation="h", yanchor="top", y=-0.25, x=0),
                       xaxis=theme.axis("layer (1 = first, next to the input)"),
                       yaxis=theme.axis("gradient norm (log scale)", type="log", exponentformat="power"))
    return Chart(fig, gradient_takeaway(with_skip, without))


def dense_growth_chart(growth: DenseGrowth) -> Chart:
    """Channels entering each layer of a dense block, with the block's output marked."""
    bar = dict(type="bar", x=list(np.arange(1, growth.n_layers + 1)), y=list(growth.layer_inputs),
               marker=dict(color=theme.GREEN), text=list(growth.layer_inputs), textposition="outside",
               cliponaxis=False)
    shape, label = theme.hline(growth.block_output, f"block output: {growth.block_output}")
    fig = theme.figure([bar], f"Channels entering each layer of a dense block (k0 = {growth.k0}, growth rate "
                              f"k = {growth.growth})", 360, shapes=[shape], annotations=[label],
                       xaxis=theme.axis("layer in the block", dtick=1), yaxis=theme.axis("input channels"))
    return Chart(fig, f"Layer i sees k0 + i·k channels: the block's {growth.n_layers} layers add only "
                      f"{growth.growth} each, ending at {growth.block_output}.")
