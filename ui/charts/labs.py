"""Charts of the labs' experiments, each with a one-line takeaway computed from the same result (plotly only).

Every function takes an experiment's result dataclass (or its live records) and returns a `Chart`: a titled figure
plus a sentence derived from the numbers it draws, so the caption cannot disagree with the picture. No torch and no
streamlit here; the lab pages put the charts on screen with `ui.render.chart`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tl_core.experiments import Point
from tl_core.experiments.race import lane_label
from tl_core.fmt import pct, points
from ui.charts import theme
from ui.charts.theme import LANE_STYLES, Chart, acc_axis, hline

SERIES = theme.OKABE_ITO  # colours in series order


def _figure(data: list[dict], title: str, height: int = 380, **layout: Any) -> Any:
    return theme.figure(data, title, height, **layout)


def _bars(labels: Sequence[str], values: Sequence[float], name: str, colour: str, **kw: Any) -> dict:
    return dict(type="bar", x=list(labels), y=list(values), name=name, marker=dict(color=colour),
                text=[pct(v) for v in values], textposition="outside", cliponaxis=False, **kw)


# ---- live progress ---------------------------------------------------------------------------------------------


def live_curves(records: Sequence[Any], *, title: str = "Live: the experiment's curves", y_title: str = "value"
                ) -> Chart:
    """Every Point series seen so far, against its x (usually the step)."""
    series: dict[str, list[Point]] = {}
    for r in records:
        if isinstance(r, Point):
            series.setdefault(r.series, []).append(r)
    if not series:
        return theme.waiting(title, "Waiting for the first numbers…")
    data = [dict(type="scatter", mode="lines+markers", x=[p.x for p in pts], y=[p.y for p in pts], name=name,
                 line=dict(color=SERIES[i % len(SERIES)]), marker=dict(size=5))
            for i, (name, pts) in enumerate(series.items())]
    latest = ", ".join(f"{name} {pts[-1].y:.3g}" for name, pts in series.items())
    return Chart(_figure(data, title, 320, xaxis=theme.axis("step"), yaxis=theme.axis(y_title)), f"Latest values: {latest}.")


# ---- multi-task learning --------------------------------------------------------------------------------------
def multitask_accuracy_chart(res: Any) -> Chart:
    """Held-out accuracy of each task, trained jointly and alone, against chance."""
    tasks = list(res.chance)
    data = [_bars(tasks, [res.accuracy["joint"][t] for t in tasks], "one shared body, two heads (joint)",
                  theme.BLUE),
            _bars(tasks, [res.accuracy["alone"][t] for t in tasks], "each task alone", theme.ORANGE),
            dict(type="scatter", mode="markers", x=tasks, y=[res.chance[t] for t in tasks], name="chance",
                 marker=dict(symbol="line-ew-open", size=40, color=theme.BLACK, line=dict(width=2)))]
    fig = _figure(data, f"Multi-task learning: shape and {res.second_task}, jointly or alone", barmode="group",
                  yaxis=acc_axis(), xaxis=theme.axis("task"))
    diffs = {t: res.accuracy["joint"][t] - res.accuracy["alone"][t] for t in tasks}
    parts = [f"{t} {points(d)}" for t, d in diffs.items()]
    if all(abs(d) <= 0.02 for d in diffs.values()):
        verdict = "sharing neither helped nor hurt beyond noise"
    elif all(d >= -0.02 for d in diffs.values()):
        verdict = "sharing helped"
    elif all(d <= 0.02 for d in diffs.values()):
        verdict = "the tasks competed for the shared layers"
    else:
        verdict = "one task gained what the other lost"
    above = all(res.accuracy["joint"][t] > res.chance[t] for t in tasks)
    return Chart(fig, f"Joint minus alone: {', '.join(parts)}; {verdict}. "
                      f"{'Both heads beat chance.' if above else 'Not every head beat chance.'}")


def multitask_gradient_chart(res: Any) -> Chart:
    """Mean gradient norm each task's head sends into each shared layer group, during joint training."""
    tasks = list(res.grad_norm)
    groups = list(next(iter(res.grad_norm.values())))
    means = {t: res.mean_grad(t) for t in tasks}
    data = [dict(type="bar", x=groups, y=[means[t][g] for g in groups], name=f"from the {t} head",
                 marker=dict(color=SERIES[i])) for i, t in enumerate(tasks)]
    fig = _figure(data, "How hard each head pulls on the shared layers (gradient norm, joint training)",
                  barmode="group", xaxis=theme.axis("shared layer group (input → output)"),
                  yaxis=theme.axis("mean gradient L2 norm"))
    a, b = tasks
    ratios = {g: means[a][g] / means[b][g] for g in groups if means[b][g] > 0}
    g_max = max(ratios, key=lambda g: abs(math.log(ratios[g])) if ratios[g] > 0 else 0) if ratios else groups[0]
    cos = sum(res.grad_cosine) / len(res.grad_cosine) if res.grad_cosine else 0.0
    relation = ("pull in the same direction" if cos > 0.1 else "pull against each other" if cos < -0.1
                else "are nearly orthogonal (they barely interfere)")
    r = ratios.get(g_max, 1.0)
    stronger, weaker = (a, b) if r >= 1 else (b, a)
    factor = r if r >= 1 else 1 / r
    return Chart(fig, f"In {g_max} the {stronger} head sends {factor:.1f}× the gradient of the {weaker} head; "
                      f"the two tasks' gradients {relation} (mean cosine {cos:+.2f}).")


def multitask_cosine_chart(res: Any) -> Chart:
    """Cosine between the two tasks' shared-body gradients over joint training."""
    data = [dict(type="scatter", mode="lines+markers", x=res.grad_steps, y=res.grad_cosine, name="cosine",
                 line=dict(color=theme.PINK))]
    shape, note = hline(0.0, "orthogonal")
    fig = _figure(data, "Do the two tasks agree? Cosine of their shared-layer gradients", 300,
                  xaxis=theme.axis("step"), yaxis=theme.axis("cosine", range=[-1, 1]), shapes=[shape], annotations=[note],
                  showlegend=False)
    pos = sum(c > 0 for c in res.grad_cosine)
    return Chart(fig, f"The cosine was positive (agreement) at {pos} of {len(res.grad_cosine)} measured steps.")


# ---- self-taught learning ---------------------------------------------------------------------------------------
def self_taught_chart(res: Any) -> Chart:
    """Target accuracy per way of getting features, with chance."""
    methods = list(res.accuracy)
    colours = [theme.GREY, theme.VERMILLION, theme.GREEN, theme.BLUE]
    names = [m.replace(": ", ":<br>") for m in methods]  # short lines under the bars
    data = [dict(type="bar", x=names, y=[res.accuracy[m] for m in methods], marker=dict(color=colours),
                 text=[pct(res.accuracy[m]) for m in methods], textposition="outside", cliponaxis=False)]
    shape, note = hline(res.chance, f"chance {pct(res.chance)}")
    fig = _figure(data, f"Self-taught learning: {res.n_labelled} labelled target images, {res.n_unlabelled} "
                        f"unlabelled others", yaxis=acc_axis(), shapes=[shape], annotations=[note],
                  showlegend=False)
    st_acc = res.accuracy["self-taught features"]
    none = max(res.accuracy["random features"], res.accuracy["scratch: whole network on the few labels"])
    sup = res.accuracy["supervised source features"]
    verdict = (f"beat the best no-pretraining baseline ({pct(none)}) by {points(st_acc - none)[1:]}"
               if st_acc > none else f"did not beat no pretraining ({pct(none)})")
    return Chart(fig, f"Features from unlabelled images ({res.pretext} pretext) reached {pct(st_acc)} and "
                      f"{verdict}; the supervised source model, which had labels, reached {pct(sup)}.")


def pretext_curve_chart(res: Any) -> Chart:
    """The pretext task's loss over its steps."""
    steps, losses = [s for s, _ in res.pretext_curve], [v for _, v in res.pretext_curve]
    data = [dict(type="scatter", mode="lines+markers", x=steps, y=losses, line=dict(color=theme.GREEN))]
    fig = _figure(data, f"The pretext task ({res.pretext}) on unlabelled images: loss", 300, xaxis=theme.axis("step"),
                  yaxis=theme.axis("loss"), showlegend=False)
    drop = 1 - losses[-1] / losses[0] if losses and losses[0] > 0 else 0.0
    return Chart(fig, f"The pretext loss fell by {pct(drop)} in {res.pretext_steps} steps, with no label in "
                      f"sight.")


# ---- domain adaptation ------------------------------------------------------------------------------------------
def _loss_top(losses: Any) -> float:
    """The top of a loss axis that starts at 0 (a loss is never negative, so no tick may read below 0)."""
    finite = [v for v in losses if math.isfinite(v)]
    return 1.1 * max(finite) if finite and max(finite) > 0 else 1.0

def adaptation_chart(res: Any) -> Chart:
    """Target and source accuracy per method."""
    methods = list(res.accuracy)
    data = [_bars(methods, [res.accuracy[m] for m in methods], "target domain (no labels used)", theme.BLUE),
            _bars(methods, [res.source_accuracy[m] for m in methods], "source domain", theme.SKY)]
    shape, note = hline(res.chance, f"chance {pct(res.chance)}")
    fig = _figure(data, f"Domain adaptation to {res.target}", barmode="group", yaxis=acc_axis(),
                  shapes=[shape], annotations=[note])
    before = res.accuracy["source only"]
    best = max(methods[1:], key=lambda m: res.accuracy[m])
    return Chart(fig, f"Without target labels, the source model scored {pct(before)} on the target; "
                      f"AdaBN {pct(res.accuracy['AdaBN'])}, DANN {pct(res.accuracy['DANN'])}; best: {best} "
                      f"({points(res.accuracy[best] - before)}).")


def feature_gap_chart(res: Any) -> Chart:
    """Squared MMD between source and target features per method."""
    methods = list(res.feature_gap)
    data = [dict(type="bar", x=methods, y=[res.feature_gap[m] for m in methods], marker=dict(color=theme.PINK),
                 text=[f"{res.feature_gap[m]:.3f}" for m in methods], textposition="outside", cliponaxis=False)]
    fig = _figure(data, "How far apart the two domains' features are (squared MMD; 0 = same distribution)", 320,
                  yaxis=theme.axis("MMD²"), showlegend=False)
    before = res.feature_gap["source only"]
    closest = min(methods, key=lambda m: res.feature_gap[m])
    return Chart(fig, f"{closest} brought the feature distributions closest: MMD² {before:.3f} → "
                      f"{res.feature_gap[closest]:.3f}.")


def dann_curve_chart(res: Any) -> Chart:
    """DANN's domain-classifier accuracy and class loss over the steps."""
    steps = [c[0] for c in res.dann_curve]
    data = [dict(type="scatter", mode="lines+markers", x=steps, y=[c[3] for c in res.dann_curve],
                 name="domain classifier accuracy", line=dict(color=theme.VERMILLION)),
            dict(type="scatter", mode="lines", x=steps, y=[c[1] for c in res.dann_curve], name="class loss (source)",
                 line=dict(color=theme.BLUE, dash="dash"), yaxis="y2")]
    shape, note = hline(0.5, "the domains look alike")
    fig = _figure(data, "DANN: the domain classifier against the reversed gradient", 320, xaxis=theme.axis("step"),
                  yaxis=theme.axis("domain accuracy", range=[0, 1.05], tickformat=".0%"),
                  yaxis2=dict(title=dict(text="class loss"), overlaying="y", side="right", showgrid=False,
                              range=[0, _loss_top(c[1] for c in res.dann_curve)]),
                  shapes=[shape], annotations=[note])
    tail = [c[3] for c in res.dann_curve[-max(1, len(res.dann_curve) // 5):]]
    late = sum(tail) / len(tail) if tail else float("nan")
    return Chart(fig, f"By the end the domain classifier was right {pct(late)} of the time on a batch "
                      f"(50% would mean the features no longer give the domain away).")


# ---- sample-selection bias ----------------------------------------------------------------------------------------
def covariate_chart(res: Any) -> Chart:
    """Target accuracy per method: the mean as a bar, every repeat as a dot."""
    methods = list(res.accuracy)
    colours = [theme.GREY, theme.GREEN, theme.SKY]
    names = [f"{m}<br>mean {pct(res.mean_accuracy[m])}" for m in methods]  # the mean under each bar
    data = [dict(type="bar", x=names, y=[res.mean_accuracy[m] for m in methods], marker=dict(color=colours),
                 name="mean over repeats")]
    for i, (m, name) in enumerate(zip(methods, names)):
        data.append(dict(type="scatter", mode="markers", x=[name] * len(res.accuracy[m]), y=res.accuracy[m],
                         name="one repeat", showlegend=i == 0, marker=dict(color=theme.BLACK, size=7)))
    lo = min(min(v) for v in res.accuracy.values())
    fig = _figure(data, f"Selection bias: accuracy on the (small) target shapes, {res.feature_layer} features",
                  yaxis=theme.axis("target accuracy", tickformat=".0%", range=[max(0.0, lo - 0.1), 1.0]))
    gain = sum(res.gains) / len(res.gains)
    wins = sum(g > 0 for g in res.gains)
    true_gain = res.mean_accuracy[methods[2]] - res.mean_accuracy[methods[0]]
    return Chart(fig, f"Importance weights changed target accuracy by {points(gain)} on average and helped in "
                      f"{wins} of {len(res.gains)} repeats (the true weights: {points(true_gain)}).")


def covariate_sizes_chart(res: Any) -> Chart:
    """Shape sizes: the labelled sample, the target, and the labelled sample re-weighted."""
    lo = min(res.source_area + res.target_area)
    hi = max(res.source_area + res.target_area)
    bins = dict(start=lo, end=hi, size=max((hi - lo) / 25, 1))
    common = dict(type="histogram", xbins=bins, histnorm="probability density", opacity=0.55)
    data = [dict(x=res.source_area, name="labelled sample", marker=dict(color=theme.ORANGE), **common),
            dict(x=res.target_area, name="target images", marker=dict(color=theme.BLUE), **common),
            dict(x=res.source_area, y=res.weights, histfunc="sum", name="labelled sample, re-weighted",
                 marker=dict(color=theme.GREEN), **{**common, "opacity": 0.45})]
    fig = _figure(data, "Shape size (pixels covered): the bias, and what the weights make of it", 340,
                  barmode="overlay", xaxis=theme.axis("shape size in pixels"), yaxis=theme.axis("density"))
    mean = lambda v, w=None: (sum(a * b for a, b in zip(v, w)) / sum(w)) if w else sum(v) / len(v)  # noqa: E731
    return Chart(fig, f"The labelled sample's mean size is {mean(res.source_area):.0f} px, the target's "
                      f"{mean(res.target_area):.0f} px; re-weighted, the labelled sample's is "
                      f"{mean(res.source_area, res.weights):.0f} px.")


def weights_chart(res: Any) -> Chart:
    """Estimated importance weights against the true ones (first repeat)."""
    data = [dict(type="scatter", mode="markers", x=res.true_weights, y=res.weights, marker=dict(
        color=theme.GREEN, size=6, opacity=0.6), name="one labelled image")]
    top = max(res.true_weights + res.weights) if res.weights else 1
    data.append(dict(type="scatter", mode="lines", x=[0, top], y=[0, top], name="perfect estimate",
                     line=dict(color=theme.GREY, dash="dot")))
    fig = _figure(data, "Importance weights: estimated by the domain classifier vs the true ones", 340,
                  xaxis=theme.axis("true weight p_target / p_source"), yaxis=theme.axis("estimated weight"))
    corr = res.weight_correlation[0] if res.weight_correlation else float("nan")
    ess = res.effective_sample_size[0] if res.effective_sample_size else float("nan")
    return Chart(fig, f"Estimated and true weights correlate at r = {corr:.2f}; the weighted sample counts like "
                      f"{ess:.0f} of its {res.n_source[0]} images (effective sample size).")


# ---- unsupervised transfer ------------------------------------------------------------------------------------
def _reference_line(y: float, name: str) -> tuple[dict, dict]:
    """A dotted horizontal line across the plot, named in the legend rather than by a label inside the plot (an
    in-plot label collides with the bar labels near it): (shape, legend-only trace)."""
    shape = dict(type="line", xref="paper", x0=0, x1=1, y0=y, y1=y, line=dict(color=theme.BLACK, dash="dot"))
    entry = dict(type="scatter", mode="lines", x=[None], y=[None], name=name,
                 line=dict(color=theme.BLACK, dash="dot"), hoverinfo="skip")
    return shape, entry


def purity_chart(res: Any) -> Chart:
    """Cluster purity per representation learnt without labels, the supervised model as a hatched comparison, and
    random clusters as a reference line."""
    reps = list(res.unsupervised)
    colours = {reps[0]: theme.GREEN, "random network features": theme.GREY, "raw pixels": theme.ORANGE}
    data = [dict(type="bar", x=reps, y=[res.purity[r] for r in reps], name="no labels anywhere",
                 marker=dict(color=[colours.get(r, theme.GREY) for r in reps]),
                 text=[pct(res.purity[r]) for r in reps], textposition="outside", cliponaxis=False)]
    if res.comparison:
        data.append(dict(type="bar", x=[res.comparison], y=[res.purity[res.comparison]],
                         name="comparison only: learnt with the source labels",
                         marker=dict(color="white", line=dict(color=theme.BLUE, width=2),
                                     pattern=dict(shape="/", fgcolor=theme.BLUE)),
                         text=[pct(res.purity[res.comparison])], textposition="outside", cliponaxis=False))
    shape, entry = _reference_line(res.chance_purity, f"random clusters: {pct(res.chance_purity)}")
    fig = _figure(data + [entry], f"k-means with k={res.k} on {res.n_images} unlabelled images: cluster purity",
                  yaxis=theme.axis("purity", range=[0, 1.05], tickformat=".0%"), shapes=[shape],
                  xaxis=dict(tickfont=dict(size=theme.BASE_SIZE - 2)))
    mine, raw = res.purity[reps[0]], res.purity["raw pixels"]
    verdict = (f"beat raw pixels ({pct(raw)}) by {points(mine - raw)[1:]}" if mine > raw + 0.02 else
               f"did no better than raw pixels ({pct(raw)})")
    text = (f"With no labels anywhere, clusters of the features learnt from unlabelled images are {pct(mine)} pure "
            f"and {verdict}; random clusters would be {pct(res.chance_purity)}.")
    if res.comparison:
        text += (f" For comparison only, the supervised source model, which learnt with the source labels, "
                 f"reaches {pct(res.purity[res.comparison])}.")
    return Chart(fig, text)


def pca_chart(res: Any, representation: str) -> Chart:
    """The 2-D PCA map of one representation, coloured by the hidden true class."""
    pts = res.pca[representation]
    data = []
    for c, name in enumerate(res.classes):
        idx = [i for i, y in enumerate(res.true_labels) if y == c]
        data.append(dict(type="scatter", mode="markers", x=[pts[i][0] for i in idx], y=[pts[i][1] for i in idx],
                         name=name, marker=dict(color=SERIES[c % len(SERIES)], size=7, opacity=0.75,
                                                symbol=["circle", "square", "diamond", "triangle-up", "x",
                                                        "cross"][c % 6])))
    fig = _figure(data, f"PCA of {representation} (colour: the hidden shape)", 380,
                  xaxis=theme.axis("PC 1"), yaxis=theme.axis("PC 2"))
    return Chart(fig, f"The first two components keep {pct(res.explained[representation])} of the variance; "
                      f"k-means on all {res.dims[representation]} dimensions scores {pct(res.purity[representation])} "
                      f"purity.")


# ---- the quadrant lab ----------------------------------------------------------------------------------------
def _short(strategy: str) -> str:
    return {"feature_extract": "Feature extraction", "finetune_top": "Fine-tune top", "finetune_all": "Fine-tune all",
            "scratch": "Scratch", "early_classifier": "Early-layer classifier"}.get(strategy, lane_label(strategy))


def lab_heatmap_chart(hm: Any) -> Chart:
    """The lab grid: each cell coloured by its winning strategy, with the accuracy and the course's advice."""
    strategies = list(hm.strategies)
    index = {s: i for i, s in enumerate(strategies)}
    n_s = max(len(strategies), 1)
    scale = []
    for i, s in enumerate(strategies):  # a discrete colour scale: one flat band per strategy
        colour = LANE_STYLES.get(s, (SERIES[i % len(SERIES)], ""))[0]
        scale += [[i / n_s, colour], [(i + 1) / n_s, colour]]
    rows = [f"{n} per class" for n in hm.sizes]
    cols = [hm.column(s) for s in hm.similarities]
    z, text = [], []
    for n in hm.sizes:
        zr, tr = [], []
        for s in hm.similarities:
            cell = hm.cells[(n, s)]
            if cell.winner is None:
                zr.append(None)
                done = sum(cell.seeds_done.values())
                tr.append(f"running… ({done} {'run' if done == 1 else 'runs'} done)" if done else "waiting")
            else:
                zr.append((index[cell.winner] + 0.5) / n_s)
                mark = "agrees" if cell.agrees else ("differs" if cell.agrees is False else "·")
                advice = (f"course: {_short(cell.advice)} {mark}"
                          + (f" {pct(cell.advice_accuracy)}" if cell.advice_accuracy is not None else ""))
                tr.append(f"<b>{_short(cell.winner)}</b> {pct(cell.best)}<br>{advice}")
        z.append(zr)
        text.append(tr)
    data = [dict(type="heatmap", x=cols, y=rows, z=z, zmin=0, zmax=1, colorscale=scale, showscale=False, opacity=0.6,
                 text=text, texttemplate="%{text}", textfont=dict(size=15, color=theme.BLACK), xgap=4, ygap=4,
                 hovertemplate="%{y}, %{x}<br>%{text}<extra></extra>")]
    legend = [dict(type="scatter", mode="markers", x=[None], y=[None], name=_short(s),
                   marker=dict(symbol="square", size=14, opacity=0.6,
                               color=LANE_STYLES.get(s, (SERIES[i % len(SERIES)],))[0]))
              for i, s in enumerate(strategies)]
    fig = _figure(data + legend, "Measured: the winning strategy in each cell, next to the course's advice",
                  110 + 110 * len(rows), xaxis=dict(side="top", showgrid=False),
                  yaxis=dict(autorange="reversed", showgrid=False),
                  legend=dict(orientation="h", yanchor="top", y=-0.02, x=0))
    complete = [c for c in hm.cells.values() if c.agrees is not None]
    if not complete:
        return Chart(fig, f"Filling in: {hm.n_complete} of {len(hm.cells)} cells done.")
    agree = sum(c.agrees for c in complete)
    text = f"The course's advice matched the measured winner (within 2 points) in {agree} of {len(complete)} cells"
    if hm.disagreements:
        worst = max(hm.disagreements, key=lambda c: c.best - c.advice_accuracy)
        text += (f"; the biggest miss: {worst.n_per_class} per class at similarity {worst.similarity:g}, where "
                 f"{_short(worst.winner).lower()} beat {_short(worst.advice).lower()} by "
                 f"{points(worst.best - worst.advice_accuracy)[1:]}")
    left = len(hm.cells) - len(complete)
    if left:
        text += f" ({left} {'cell' if left == 1 else 'cells'} still running)"
    return Chart(fig, text + ".")


def lab_strategy_chart(hm: Any) -> Chart:
    """Each strategy's accuracy against the number of images per class, one panel per similarity."""
    sims = list(hm.similarities)
    n = len(sims)
    gap = 0.06
    width = (1 - gap * (n - 1)) / n
    data, annotations, layout_axes = [], [], {}
    for j, sim in enumerate(sims):
        ax = "" if j == 0 else str(j + 1)
        dom = [j * (width + gap), j * (width + gap) + width]
        layout_axes[f"xaxis{ax}"] = theme.axis("images per class", type="log", domain=dom, anchor=f"y{ax}",
                                          tickvals=list(hm.sizes))
        layout_axes[f"yaxis{ax}"] = theme.axis("accuracy" if j == 0 else None, range=[0, 1.05], tickformat=".0%",
                                          anchor=f"x{ax}", **({} if j == 0 else {"matches": "y"}))
        annotations.append(dict(text=hm.column(sim), x=(dom[0] + dom[1]) / 2, y=1.0, xref="paper",
                                yref="paper", yanchor="bottom", showarrow=False, font=dict(size=15)))
        for i, s in enumerate(hm.strategies):
            xs = [size for size in hm.sizes if s in hm.cells[(size, sim)].accuracy]
            colour, dash = LANE_STYLES.get(s, (SERIES[i % len(SERIES)], "solid"))
            data.append(dict(type="scatter", mode="lines+markers", x=xs,
                             y=[hm.cells[(size, sim)].accuracy[s] for size in xs], name=_short(s),
                             legendgroup=s, showlegend=j == 0, line=dict(color=colour, dash=dash),
                             xaxis=f"x{ax}", yaxis=f"y{ax}"))
    fig = _figure(data, "Each strategy's accuracy as the data grows", 400, annotations=annotations,
                  legend=dict(orientation="h", yanchor="top", y=-0.18, x=0), **layout_axes)
    spreads = []
    for (size, sim), cell in hm.cells.items():
        if len(cell.accuracy) >= 2:
            spreads.append((max(cell.accuracy.values()) - min(cell.accuracy.values()), size, sim))
    if not spreads:
        return Chart(fig, "Waiting for the first cell with two finished strategies.")
    big = max(spreads)
    small = min(spreads)
    return Chart(fig, f"The choice of strategy matters most at {big[1]} per class, similarity {big[2]:g} "
                      f"({points(big[0])[1:]} between best and worst) and least at {small[1]} per class, "
                      f"similarity {small[2]:g} ({points(small[0])[1:]}).")


def cut_depth_chart(res: Any, chance: dict[str, float] | None = None) -> Chart:
    """Accuracy of a new head on the frozen features after each body group, one line per target."""
    data = []
    for i, target in enumerate(res.targets):
        means = res.mean(target)
        groups = list(means)
        data.append(dict(type="scatter", mode="lines+markers", x=groups, y=[means[g] for g in groups],
                         name=target, line=dict(color=SERIES[i % len(SERIES)], width=3),
                         marker=dict(size=10), text=[pct(means[g]) for g in groups],
                         textposition="top center"))
        if len(res.seeds) > 1:
            for g in groups:
                vals = res.accuracy[target][g]
                data.append(dict(type="scatter", mode="markers", x=[g] * len(vals), y=vals, showlegend=False,
                                 marker=dict(color=SERIES[i % len(SERIES)], size=5, opacity=0.4)))
        guess = getattr(res, "predicted", {}).get(getattr(res, "kinds", {}).get(target, ""))
        if guess in means:  # the learner's prediction, made before the run, on the measured line
            star = dict(symbol="star-open", size=22, line=dict(width=2, color=SERIES[i % len(SERIES)]))
            data.append(dict(type="scatter", mode="markers", x=[guess], y=[means[guess]],
                             name=f"your prediction: {target}", marker=star,
                             hovertemplate="your prediction<extra></extra>"))
    fig = _figure(data, f"Cut at layer n: a new head on the frozen source features ({res.n_per_class} images per "
                        f"class)", 380, xaxis=theme.axis("cut after (input → output; block4 = fixed feature extraction)"),
                  yaxis=acc_axis())
    parts = []
    for target in res.targets:
        best = res.best_cut(target)
        means = res.mean(target)
        last = list(means)[-1]
        parts.append(f"at {target} the head does best after {best} ({pct(means[best])})"
                     + (f", {points(means[best] - means[last])[1:]} above the final features" if best != last else
                        ", the deepest cut"))
    text = "; ".join(parts)
    return Chart(fig, text[0].upper() + text[1:] + ".")


def calibration_chart(check: Any) -> Chart:
    """Measured similarity against the true shapes-world similarity."""
    data = [dict(type="scatter", mode="lines+markers", x=check.true_similarity, y=check.measured,
                 name="measured", line=dict(color=theme.BLUE, width=3), marker=dict(size=10),
                 text=check.worlds, hovertemplate="%{text}<br>true %{x:.2f} → measured %{y:.2f}<extra></extra>"),
            dict(type="scatter", mode="lines", x=[0, 1], y=[0, 1], name="perfect", line=dict(color=theme.GREY,
                                                                                             dash="dot"))]
    shape = dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=0.5, y1=1.0, fillcolor=theme.LIGHT,
                 line=dict(width=0), layer="below")
    label = dict(text="counts as similar", xref="paper", x=0.01, y=0.97, xanchor="left", yanchor="top",
                 showarrow=False, font=dict(size=13, color="#555555"))
    fig = _figure(data, "Measured similarity of shapes-world targets to the source data", 360,
                  xaxis=theme.axis("true similarity (the knob)", range=[-0.05, 1.05]),
                  yaxis=theme.axis("measured similarity", range=[-0.05, 1.05]), shapes=[shape], annotations=[label])
    err = [abs(m - t) for m, t in zip(check.measured, check.true_similarity)]
    same_side = sum((m >= 0.5) == (t >= 0.5) for m, t in zip(check.measured, check.true_similarity))
    return Chart(fig, f"Measured and true similarity differ by {sum(err) / len(err):.2f} on average; "
                      f"{same_side} of {len(err)} targets land on the right side of the 0.5 line.")
