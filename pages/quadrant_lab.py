"""Page: the quadrant lab: the size-versus-similarity rules measured, cut at layer n, and measured similarity.

Each tab keeps its own controls, its Run and Stop buttons, its live progress and its results together. The page
says how its targets are built (`tl_core.experiments.lab.DIFFERENT_TARGETS`): the default "different" target is a
low-level cue built so that the course's rule wins, and another is a high-level task where the rule can fail.
"Cut at layer n" asks for the learner's prediction before it runs.

Widget keys: "quadrant_lab.sizes", "quadrant_lab.similarities", "quadrant_lab.strategies", "quadrant_lab.n_seeds",
"quadrant_lab.different", "quadrant_lab.run_sweep", "quadrant_lab.stop_sweep"; "quadrant_lab.cut_n",
"quadrant_lab.cut_seeds", "quadrant_lab.predict.<target key>", "quadrant_lab.run_cut", "quadrant_lab.stop_cut";
"quadrant_lab.sim_target", "quadrant_lab.sim_n", "quadrant_lab.run_similarity", "quadrant_lab.stop_similarity".
The page's job slot is "quadrant_lab" (see ui.live); its result is a (kind, result) pair with kind "sweep", "cut"
or "similarity", kept by kind in "quadrant_lab.outcomes". Finished sweeps are also kept per configuration in
"quadrant_lab.sweeps" and, process-wide, in tl_core.experiments.lab's cache, so a repeated sweep shows at once.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from tl_core.experiments.common import BODY
from tl_core.experiments.lab import (DEFAULT_DIFFERENT, DIFFERENT_TARGETS, LAB_STRATEGIES, SIMILAR_TARGET,
                                     SIMILARITY_CHOICES, SIZE_CHOICES, LabConfig, LabResult, LaneDone, cached_sweep,
                                     heatmap)
from tl_core.experiments.race import lane_label
from tl_core.jobs.progress import experiment_progress
from tl_core.jobs.work import CutDepthJob, SimilarityCheckJob
from tl_core.teaching.quadrant import LOTS_PER_CLASS, SIMILAR_AT
from tl_core.training.plan import STRATEGIES
from ui import live
from ui.charts import labs as charts
from ui.charts.decisions import quadrant_figure
from ui.render import chart
from ui.starts import start_sweep
from ui.state import PERSIST, init_state

SLOT = "quadrant_lab"
OUTCOMES = f"{SLOT}.outcomes"  # kind -> the latest finished result of that kind
SWEEPS = f"{SLOT}.sweeps"  # LabConfig -> finished LabResult, this session
CUT_TARGETS = ("similar", *DIFFERENT_TARGETS)  # what "cut at layer n" runs: the similar target and every different one
ss = st.session_state


def _target(key: str) -> Any:
    return SIMILAR_TARGET if key == "similar" else DIFFERENT_TARGETS[key]


def _config() -> LabConfig:
    """The sweep the widgets describe (sizes ascending, similarities descending, strategies in lab order)."""
    seed = int(ss["seed"])
    return LabConfig(sizes=tuple(sorted(ss[f"{SLOT}.sizes"])),
                     similarities=tuple(sorted(ss[f"{SLOT}.similarities"], reverse=True)),
                     strategies=tuple(s for s in LAB_STRATEGIES if s in ss[f"{SLOT}.strategies"]),
                     seeds=tuple(seed + i for i in range(int(ss[f"{SLOT}.n_seeds"]))),
                     different=ss.get(f"{SLOT}.different") or DEFAULT_DIFFERENT)


def _launch(kind: str, job: Any, label: str) -> None:
    """Start one of the lab's background jobs (tl_core.jobs.work); its result is a (kind, result) pair."""
    ss[f"{SLOT}.running"] = kind
    ss[f"{SLOT}.error_kind"] = None  # a failure of this job shows in its own tab
    live.start(SLOT, job, label=label)


def _refuse(kind: str, message: str) -> None:
    """Show why a tab's Run did nothing, in that tab."""
    ss[f"{SLOT}.error"], ss[f"{SLOT}.error_kind"] = message, kind


def _start_sweep() -> None:
    """Callback of Run sweep: show a cached sweep at once, or sweep in the background."""
    try:
        config = _config().validate()
    except ValueError as e:
        _refuse("sweep", str(e))
        return
    hit = ss[SWEEPS].get(config) or cached_sweep(config)
    if hit is not None:
        ss[SWEEPS][config] = hit
        ss[OUTCOMES]["sweep"] = hit
        ss[f"{SLOT}.error"] = None
        return
    start_sweep(config)


def _predictions() -> dict[str, str]:
    """The learner's predicted best cut per target, for those predicted so far."""
    return {key: ss[f"{SLOT}.predict.{key}"] for key in CUT_TARGETS if ss.get(f"{SLOT}.predict.{key}")}


def _start_cut() -> None:
    """Callback of Run (cut at layer n): runs only once every target has a prediction."""
    predicted = _predictions()
    if len(predicted) < len(CUT_TARGETS):
        _refuse("cut", "Make a prediction for every target first, then run.")
        return
    seed = int(ss["seed"])
    n, k = int(ss[f"{SLOT}.cut_n"]), int(ss[f"{SLOT}.cut_seeds"])
    _launch("cut", CutDepthJob(n, tuple(seed + i for i in range(k)), tuple(DIFFERENT_TARGETS),
                               tuple(predicted.items())), "cut at layer n")


def _start_similarity() -> None:
    """Callback of Measure: the chosen shapes-world target against the source data, and the calibration check."""
    sim, n = float(ss[f"{SLOT}.sim_target"]), int(ss[f"{SLOT}.sim_n"])
    _launch("similarity", SimilarityCheckJob(sim, n, int(ss["seed"])), "similarity")


def _draw_live(job, records: list) -> None:
    """The running job's progress and live chart, drawn inside its own tab."""
    live.show_status(job, experiment_progress(records, live.elapsed(job)))
    kind = ss.get(f"{SLOT}.running")
    if kind == "sweep":
        config = ss[f"{SLOT}.running_config"]
        c = charts.lab_heatmap_chart(heatmap([r for r in records if isinstance(r, LaneDone)], config))
        chart(c.fig, c.takeaway, key=f"{SLOT}.live.heatmap")
    elif kind == "cut":
        c = charts.live_curves(records, title="Live: accuracy after each cut", y_title="accuracy")
        chart(c.fig, c.takeaway, key=f"{SLOT}.live.cut")


def _buttons(kind: str, run_label: str, on_click: Any, disabled: bool, help: str | None = None) -> None:
    """A tab's Run and Stop, side by side; Stop is live only while this tab's job runs."""
    mine = running_kind == kind
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button(run_label, key=f"{SLOT}.run_{kind}", type="primary", on_click=on_click,
                  disabled=running or disabled, help=help)
        st.button(":material/stop_circle: Stop", key=f"{SLOT}.stop_{kind}", on_click=live.stop, args=(SLOT,),
                  disabled=not mine)
    if ss[f"{SLOT}.error"] and (ss.get(f"{SLOT}.error_kind") or ss.get(f"{SLOT}.running")) == kind:
        st.error(ss[f"{SLOT}.error"], icon=":material/warning:")
    if mine:
        live.live_fragment(SLOT, _draw_live)


# ---- results ---------------------------------------------------------------------------------------------------
def _show_sweep(result: LabResult) -> None:
    cfg = result.config
    hm = heatmap(result.lanes, cfg)
    if not result.complete:
        st.warning(f"Stopped early: {len(result.lanes)} of {cfg.n_lanes} runs finished.", icon=":material/stop_circle:")
    if cfg.canonical() != _config().canonical():
        st.caption("Showing the last sweep you ran; the selection above describes a different one. Press **Run** "
                   "to sweep it.")
    c = charts.lab_heatmap_chart(hm)
    chart(c.fig, c.takeaway, key=f"{SLOT}.heatmap")
    rows = [{"Images per class": cell.n_per_class, "Target": hm.column(cell.similarity),
             "Course's advice": cell.advice_label,
             "Measured winner": lane_label(cell.winner) if cell.winner else "—",
             "Agrees": "yes" if cell.agrees else ("no" if cell.agrees is False else "…"), "What happened": cell.note}
            for cell in hm.cells.values()]
    st.table(pd.DataFrame(rows).set_index("Images per class"))  # a table wraps long notes; nothing is cut off
    c = charts.lab_strategy_chart(hm)
    chart(c.fig, c.takeaway, key=f"{SLOT}.strategies_chart")
    seeds = ", ".join(str(s) for s in cfg.seeds)
    st.caption(f"{len(result.lanes)} training runs (seeds {seeds}), {result.wall_s:.0f} s. The course's advice "
               f"per cell comes from the size-vs-similarity page: lots means {LOTS_PER_CLASS} or more images per "
               f"class, similar means similarity {SIMILAR_AT} or more. "
               f"A cell agrees when the advised strategy is within 2 points of the winner.")


def _show_cut(result: Any) -> None:
    c = charts.cut_depth_chart(result)
    chart(c.fig, c.takeaway, key=f"{SLOT}.cut_chart")
    for target in result.targets:
        show = st.success if result.rule_holds(target) else st.warning
        icon = ":material/check_circle:" if result.rule_holds(target) else ":material/report:"
        show(f"**{target}.** {result.verdict(target)}", icon=icon)


def _show_similarity(out: dict[str, Any]) -> None:
    report, placement = out["report"], out["placement"]
    m1, m2, m3 = st.columns(3)
    m1.metric("True similarity (the knob)", f"{out['true']:.2f}")
    m2.metric("Measured similarity", f"{report.similarity:.2f}", delta=f"{report.similarity - out['true']:+.2f}",
              delta_color="off")
    m3.metric("Domain classifier accuracy", f"{report.domain_accuracy:.0%}")
    st.markdown(f"**{out['world'].capitalize()}.** {report.explanation}")
    st.markdown(f"**On the quadrant.** {placement.explanation}")
    chart(quadrant_figure(placement.size, placement.verdict, point=(placement.n_per_class, placement.similarity)),
          f"Measured, this dataset sits in the {placement.size}-data, {placement.verdict} cell: "
          f"{placement.label.lower()}.", key=f"{SLOT}.placement")
    c = charts.calibration_chart(out["check"])
    chart(c.fig, c.takeaway, key=f"{SLOT}.calibration")


# ---- the page -------------------------------------------------------------------------------------------------
init_state("quadrant_lab")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
live.setup(SLOT)
outcome = ss.get(f"{SLOT}.result")
if outcome is not None:
    kind, value = outcome
    ss[OUTCOMES][kind] = value
    if kind == "sweep" and value.complete:
        ss[SWEEPS][value.config] = value

st.title(":material/map: Quadrant lab")
st.markdown("The size-vs-similarity quadrant gives rules of thumb. Here they are measured: every strategy trains on "
            "shapes-world targets of each size and similarity, and the lab shows which one wins, next to the "
            "course's advice. Where they disagree, it says so.")
with st.container(border=True):
    st.markdown("**How the targets are built: read this before you trust a result.**")
    st.markdown(f"- *Similar*: {SIMILAR_TARGET.design}\n"
                + "\n".join(f"- *Different: {t.label}* ({t.cue} task): {t.design}" for t in DIFFERENT_TARGETS.values()))
    st.caption("So on the grating target the course's rule for different data cannot lose: the target was chosen "
               "for it. Pick the outlined shapes to see a different target where it can.")
running = live.is_active(SLOT)
running_kind = ss.get(f"{SLOT}.running") if running else None

sweep_tab, cut_tab, sim_tab = st.tabs([":material/map: The rules, measured", ":material/content_cut: Cut at layer n",
                                       ":material/straighten: Measured similarity"])
with sweep_tab:
    c1, c2 = st.columns(2)
    c1.multiselect("Images per class", SIZE_CHOICES, key=f"{SLOT}.sizes", persist_state=PERSIST,
                   help=f"{LOTS_PER_CLASS} or more counts as lots.")
    c2.multiselect("Similarity to the source", SIMILARITY_CHOICES, key=f"{SLOT}.similarities",
                   persist_state=PERSIST, help=f"From {SIMILAR_AT} up counts as similar; below, the target is the "
                                               f"'different' one chosen below.")
    st.multiselect("Strategies", LAB_STRATEGIES, key=f"{SLOT}.strategies", persist_state=PERSIST, wrap=True,
                   format_func=lambda s: STRATEGIES[s].label)
    c1, c2 = st.columns([2, 1])
    c1.radio("Below similarity 0.5, the different target is", list(DIFFERENT_TARGETS), horizontal=True,
             key=f"{SLOT}.different", persist_state=PERSIST,
             format_func=lambda k: f"{DIFFERENT_TARGETS[k].label} ({DIFFERENT_TARGETS[k].cue})",
             **({} if f"{SLOT}.different" in ss else {"index": 0}),
             help="How each is built is described at the top of the page.")
    c2.slider("Seeds per cell", 1, 3, key=f"{SLOT}.n_seeds", persist_state=PERSIST,
              help="More seeds average out luck; each adds a full set of runs.")
    try:
        config = _config().validate()
        cached = ss[SWEEPS].get(config) or cached_sweep(config)
        st.caption(f"{config.n_lanes} training runs" + (" · already measured: shows at once" if cached else
                                                        " · the default four corners take about half a minute"))
    except ValueError as e:
        config, cached = None, None
        st.caption(str(e))
    _buttons("sweep", ":material/play_arrow: Run the sweep" if not cached else
             ":material/folder_open: Show the measured sweep", _start_sweep, config is None)
    sweep = ss[OUTCOMES].get("sweep")
    if sweep is not None and running_kind != "sweep":
        _show_sweep(sweep)

with cut_tab:
    st.markdown("Yosinski et al. (2014) asked *how transferable are features in deep neural networks?* Cut the "
                "source model after each layer group, freeze what is kept, and fit a new head on it. The course's "
                "rule says that for similar data the final layers' features serve best, and for different data a "
                "classifier on the initial layers. **Before you run it, predict where each head will do best.**")
    c1, c2 = st.columns(2)
    c1.slider("Labelled images per class", 5, 100, key=f"{SLOT}.cut_n", persist_state=PERSIST)
    c2.slider("Seeds", 1, 3, key=f"{SLOT}.cut_seeds", persist_state=PERSIST)
    for key in CUT_TARGETS:
        t = _target(key)
        widget = f"{SLOT}.predict.{key}"
        st.radio(f"Your prediction for *{t.label}* ({'similar' if key == 'similar' else 'different'}, {t.cue}): "
                 f"the best cut is after", list(BODY), horizontal=True, key=widget, persist_state=PERSIST,
                 format_func=lambda g: f"{g} (final features)" if g == BODY[-1] else g,
                 **({} if widget in ss else {"index": None}))
    missing = len(CUT_TARGETS) - len(_predictions())
    _buttons("cut", ":material/play_arrow: Run: cut at every layer", _start_cut, missing > 0,
             help=f"Predict first: {missing} prediction{'s' if missing != 1 else ''} to go." if missing else None)
    cut = ss[OUTCOMES].get("cut")
    if cut is not None and running_kind != "cut":
        _show_cut(cut)

with sim_tab:
    st.markdown("How similar is a dataset to the source data? Measure it: both go through the source model, and "
                "the distance between their feature distributions is read on a scale calibrated in shapes-world "
                "shifts. Then the quadrant places the dataset by itself.")
    c1, c2 = st.columns(2)
    c1.slider("True similarity of the shapes-world target", 0.0, 1.0, step=0.05, key=f"{SLOT}.sim_target",
              persist_state=PERSIST, help="Hidden from the measurement; used only to check it. Below 0.5 the "
                                          "target is the grating-orientation task.")
    c2.slider("Its labelled images per class", 5, 500, key=f"{SLOT}.sim_n", persist_state=PERSIST)
    _buttons("similarity", ":material/straighten: Measure", _start_similarity, False)
    measured = ss[OUTCOMES].get("similarity")
    if measured is not None and running_kind != "similarity":
        _show_similarity(measured)
