"""Charts of a race: every lane's validation accuracy on shared axes, one gradient heatmap per lane, and the
class's predictions (a poll's tally).

Plotly only (no torch, no streamlit). Lanes are keyed by their key in race order; each has a History.
"""

from __future__ import annotations

import math

from tl_core.experiments.race import lane_label
from tl_core.fmt import accuracy
from tl_core.training.history import History
from ui.charts import theme
from ui.charts.theme import Chart
from ui.charts.training import heatmap_matrix


def race_curves_chart(histories: dict[str, History], *,
                      title: str = "Validation accuracy per epoch, every lane", final: bool = False,
                      finals: dict[str, float] | None = None, height: int = 460) -> Chart:
    """Every lane's validation accuracy against the epoch, on shared axes.

    Args:
        histories: lane key -> History, in race order.
        title: The figure title.
        final: The race is over: the takeaway names the winner and the last lane, not "so far".
        finals: lane key -> final validation accuracy (the results table's numbers), used by the takeaway of a
            finished race so that it reads as the table does.
        height: In px (the projector's reveal uses a shorter one, so that it fits beside the table at 1080p).

    Returns:
        A Chart whose takeaway names the best and the worst lane (so far, while it runs).
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
    fig = theme.figure(data, title, height, legend=dict(orientation="h", yanchor="top", y=-0.22, x=0.5, xanchor="center"),
                  xaxis=theme.axis("epoch", tick0=1, dtick=theme.epoch_dtick(last_epoch)),
                  yaxis=theme.axis("validation accuracy", range=[0, 1.02], tickformat=".0%"))
    if final and finals:
        latest = {k: v for k, v in finals.items() if k in histories and v is not None} or latest
    best = max(latest, key=latest.get)
    if final:
        text = f"{lane_label(best)} finished best with {accuracy(latest[best])} validation accuracy"
        verb = "finished last"
    else:
        text = f"{lane_label(best)} is best so far with {accuracy(latest[best])} validation accuracy"
        verb = "is last"
    if len(latest) > 1:
        worst = min(latest, key=latest.get)
        text += f"; {lane_label(worst)} {verb} with {accuracy(latest[worst])}"
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


def poll_chart(labels: list[str], counts: list[int], *, answer: int | None = None,
               title: str = "The class's predictions") -> Chart:
    """How many students predicted each option, as horizontal bars (the revealed answer, if any, in green).

    Args:
        labels: The options as shown, in the poll's order.
        counts: Votes per option, in the same order.
        answer: Index of the revealed answer, or None before the reveal.
        title: The figure title.

    Returns:
        A Chart whose takeaway says how many predicted, and after the reveal how many got it.
    """
    if len(labels) != len(counts):
        raise ValueError(f"One count per option: {len(labels)} options, {len(counts)} counts.")
    total = sum(counts)
    colours = [theme.GREEN if i == answer else (theme.GREY if answer is not None else theme.BLUE)
               for i in range(len(labels))]
    text = [(f"{c} of {total}" if total else "0") + (" · the winner" if i == answer else "")
            for i, c in enumerate(counts)]
    bars = dict(type="bar", orientation="h", y=[theme.wrap(label, 26) for label in labels], x=counts, text=text,
                textposition="outside", cliponaxis=False, marker=dict(color=colours), hoverinfo="skip")
    fig = theme.figure([bars], f"{title} ({total} student{'' if total == 1 else 's'})", 120 + 62 * len(labels),
                       showlegend=False, margin=dict(l=10, r=40, t=70, b=10),
                       xaxis=theme.axis(None, range=[0, max(counts + [1]) * 1.3], dtick=max(1, math.ceil(
                           max(counts + [1]) / 5)), showticklabels=False, showgrid=False),
                       yaxis=theme.axis(None, autorange="reversed", showgrid=False))
    if total == 0:
        return Chart(fig, "Nobody has predicted yet.")
    if answer is None:
        top = max(range(len(counts)), key=counts.__getitem__)
        return Chart(fig, f"{total} predicted; the most popular pick is {labels[top]} ({counts[top]} of {total}).")
    return Chart(fig, f"{labels[answer]} won: {counts[answer]} of {total} predicted it.")
