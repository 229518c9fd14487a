"""Charts of a race: every lane's validation accuracy on shared axes, and one gradient heatmap per lane.

Plotly only (no torch, no streamlit). Lanes are keyed by their key in race order; each has a History.
"""

from __future__ import annotations

from tl_core.experiments.race import lane_label
from tl_core.fmt import pct
from tl_core.training.history import History
from ui.charts import theme
from ui.charts.theme import Chart
from ui.charts.training import heatmap_matrix


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
        return theme.waiting(title, "Waiting for the first lane's first validation…")
    data = []
    for i, (key, h) in enumerate(histories.items()):
        pts = h.val_points()
        colour, dash = theme.lane_style(key, i)
        data.append(dict(type="scatter", x=[p[0] for p in pts], y=[p[1] for p in pts], name=lane_label(key),
                         mode="lines+markers", line=dict(color=colour, dash=dash, width=3),
                         marker=dict(symbol=i, size=8)))
    last_epoch = max(p[0] for h in histories.values() for p in h.val_points())
    fig = theme.figure(data, title, 460, legend=dict(orientation="h", yanchor="top", y=-0.22, x=0.5, xanchor="center"),
                  xaxis=theme.axis("epoch", tick0=1, dtick=theme.epoch_dtick(last_epoch)),
                  yaxis=theme.axis("validation accuracy", range=[0, 1.02], tickformat=".0%"))
    best = max(latest, key=latest.get)
    text = f"{lane_label(best)} is best so far with {pct(latest[best])} validation accuracy"
    if len(latest) > 1:
        worst = min(latest, key=latest.get)
        text += f"; {lane_label(worst)} is last with {pct(latest[worst])}"
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
        return theme.waiting(title, "Waiting for the first training step…")
    n = len(shown)
    rows: list[str] = []  # every lane's groups, in forward order (an early cut keeps fewer)
    for h in shown.values():
        rows += [g for g in h.groups if g not in rows and g != "head"]
    rows.append("head")
    domains = theme.panels(n, 0.025)
    data: list[dict] = []
    notes = theme.panel_titles([theme.wrap(lane_label(k), 18) for k in shown], domains)
    axes: dict[str, dict] = {}
    all_z: list[float | None] = []
    for i, (key, h) in enumerate(shown.items(), start=1):
        x, z, raw = heatmap_matrix(h)
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
                notes.append(theme.note(mark, (x[0] + x[-1]) / 2, g, xa, "y", size=14))
        axes["xaxis" if i == 1 else f"xaxis{i}"] = theme.axis("step", domain=domains[i - 1], anchor="y", showgrid=False)
    fig = theme.figure(data, title, 190 + 46 * len(rows), plot_bgcolor=theme.LIGHT, annotations=notes,
                  margin=dict(l=10, r=10, t=110, b=10),
                  coloraxis=dict(colorscale=theme.GRAD_SCALE, colorbar=theme.log_colorbar(all_z, "‖gradient‖")),
                  yaxis=theme.axis(autorange="reversed", type="category", showgrid=False), **axes)
    counts = []
    for key, h in shown.items():
        trained = len(h.groups) - len(h.frozen_throughout())
        counts.append(f"{lane_label(key)} {trained} of {len(h.groups)}")
    return Chart(fig, f"Empty rows are frozen groups, which get no gradient. Groups trained: {'; '.join(counts)}.")
