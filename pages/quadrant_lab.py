"""Page: the quadrant lab: the size-versus-similarity rules measured, cut at layer n, and measured similarity.

Widget keys: "quadrant_lab.sizes", "quadrant_lab.similarities", "quadrant_lab.strategies", "quadrant_lab.n_seeds",
"quadrant_lab.run_sweep"; "quadrant_lab.cut_n", "quadrant_lab.cut_seeds", "quadrant_lab.run_cut";
"quadrant_lab.sim_target", "quadrant_lab.sim_n", "quadrant_lab.run_similarity"; "quadrant_lab.stop". The page's
job slot is "quadrant_lab" (see ui.live); its result is a (kind, result) pair with kind "sweep", "cut" or
"similarity", kept by kind in "quadrant_lab.outcomes". Finished sweeps are also kept per configuration in
"quadrant_lab.sweeps" and, process-wide, in tl_core.experiments.lab's cache, so a repeated sweep shows at once.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from tl_core.experiments.lab import (DEFAULT_SIMILARITIES, DEFAULT_SIZES, LAB_STRATEGIES, SIMILARITY_CHOICES,
                                     SIZE_CHOICES, LabConfig, LabResult, LaneDone, cached_sweep, heatmap)
from tl_core.experiments.race import lane_label
from tl_core.jobs.progress import experiment_progress
from tl_core.jobs.work import CutDepthJob, LabSweepJob, SimilarityCheckJob
from tl_core.teaching.quadrant import LOTS_PER_CLASS, SIMILAR_AT
from tl_core.training.plan import STRATEGIES
from ui import live
from ui.charts import labs as charts
from ui.charts.decisions import quadrant_figure
from ui.render import chart
from ui.state import PERSIST, init_state

SLOT = "quadrant_lab"
OUTCOMES = f"{SLOT}.outcomes"  # kind -> the latest finished result of that kind
SWEEPS = f"{SLOT}.sweeps"  # LabConfig -> finished LabResult, this session
def _config() -> LabConfig:
    """The sweep the widgets describe (sizes ascending, similarities descending, strategies in lab order)."""
    seed = int(st.session_state["seed"])
    return LabConfig(sizes=tuple(sorted(st.session_state[f"{SLOT}.sizes"])),
                     similarities=tuple(sorted(st.session_state[f"{SLOT}.similarities"], reverse=True)),
                     strategies=tuple(s for s in LAB_STRATEGIES if s in st.session_state[f"{SLOT}.strategies"]),
                     seeds=tuple(seed + i for i in range(int(st.session_state[f"{SLOT}.n_seeds"]))))


def _launch(kind: str, job: Any, label: str) -> None:
    """Start one of the lab's background jobs (tl_core.jobs.work); its result is a (kind, result) pair."""
    st.session_state[f"{SLOT}.running"] = kind
    live.start(SLOT, job, label=label)


def _start_sweep() -> None:
    """Callback of Run sweep: show a cached sweep at once, or sweep in the background."""
    try:
        config = _config().validate()
    except ValueError as e:
        st.session_state[f"{SLOT}.error"] = str(e)
        return
    hit = st.session_state[SWEEPS].get(config) or cached_sweep(config)
    if hit is not None:
        st.session_state[SWEEPS][config] = hit
        st.session_state[OUTCOMES]["sweep"] = hit
        st.session_state[f"{SLOT}.error"] = None
        return
    st.session_state[f"{SLOT}.running_config"] = config
    _launch("sweep", LabSweepJob(config), f"lab sweep of {config.n_lanes} runs")


def _start_cut() -> None:
    """Callback of Run (cut at layer n)."""
    seed = int(st.session_state["seed"])
    n, k = int(st.session_state[f"{SLOT}.cut_n"]), int(st.session_state[f"{SLOT}.cut_seeds"])
    _launch("cut", CutDepthJob(n, tuple(seed + i for i in range(k))), "cut at layer n")


def _start_similarity() -> None:
    """Callback of Measure: the chosen shapes-world target against the source data, and the calibration check."""
    sim, n = float(st.session_state[f"{SLOT}.sim_target"]), int(st.session_state[f"{SLOT}.sim_n"])
    _launch("similarity", SimilarityCheckJob(sim, n, int(st.session_state["seed"])), "similarity")


def _draw_live(job, records: list) -> None:
    live.show_status(job, experiment_progress(records, live.elapsed(job)))
    kind = st.session_state.get(f"{SLOT}.running")
    if kind == "sweep":
        config = st.session_state[f"{SLOT}.running_config"]
        c = charts.lab_heatmap_chart(heatmap([r for r in records if isinstance(r, LaneDone)], config))
        chart(c.fig, c.takeaway, key=f"{SLOT}.live.heatmap")
    elif kind == "cut":
        c = charts.live_curves(records, title="Live: accuracy after each cut", y_title="accuracy")
        chart(c.fig, c.takeaway, key=f"{SLOT}.live.cut")


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
    rows = [{"Images per class": cell.n_per_class, "Similarity": cell.similarity,
             "Course's advice": cell.advice_label,
             "Measured winner": lane_label(cell.winner) if cell.winner else "—",
             "Agrees": "yes" if cell.agrees else ("no" if cell.agrees is False else "…"), "What happened": cell.note}
            for cell in hm.cells.values()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"{SLOT}.agreement",
                 column_config={"What happened": st.column_config.TextColumn(width="large")})
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
outcome = st.session_state.get(f"{SLOT}.result")
if outcome is not None:
    kind, value = outcome
    st.session_state[OUTCOMES][kind] = value
    if kind == "sweep" and value.complete:
        st.session_state[SWEEPS][value.config] = value

st.title(":material/map: Quadrant lab")
st.markdown("The size-vs-similarity quadrant gives rules of thumb. Here they are measured: every strategy trains on "
            "shapes-world targets of each size and similarity, and the lab shows which one wins, next to the "
            "course's advice. Where they disagree, it says so.")
running = live.is_active(SLOT)
st.button(":material/stop_circle: Stop", key=f"{SLOT}.stop", on_click=live.stop, args=(SLOT,), disabled=not running)
if st.session_state[f"{SLOT}.error"]:
    st.error(st.session_state[f"{SLOT}.error"], icon=":material/warning:")
live.live_fragment(SLOT, _draw_live)
shown_kind = st.session_state.get(f"{SLOT}.running") if running else None

sweep_tab, cut_tab, sim_tab = st.tabs([":material/map: The rules, measured", ":material/content_cut: Cut at layer n", ":material/straighten: Measured similarity"])
with sweep_tab:
    c1, c2 = st.columns(2)
    c1.multiselect("Images per class", SIZE_CHOICES, key=f"{SLOT}.sizes", persist_state=PERSIST,
                   help=f"{LOTS_PER_CLASS} or more counts as lots.")
    c2.multiselect("Similarity to the source", SIMILARITY_CHOICES, key=f"{SLOT}.similarities",
                   persist_state=PERSIST, help=f"From {SIMILAR_AT} up counts as similar; below, the target task "
                                               f"becomes a low-level cue (grating orientation).")
    c1.multiselect("Strategies", LAB_STRATEGIES, key=f"{SLOT}.strategies", persist_state=PERSIST,
                   format_func=lambda s: STRATEGIES[s].label)
    c2.slider("Seeds per cell", 1, 3, key=f"{SLOT}.n_seeds", persist_state=PERSIST,
              help="More seeds average out luck; each adds a full set of runs.")
    try:
        config = _config().validate()
        cached = st.session_state[SWEEPS].get(config) or cached_sweep(config)
        st.caption(f"{config.n_lanes} training runs" + (" · already measured: shows at once" if cached else
                                                        " · the default four corners take about half a minute"))
    except ValueError as e:
        config, cached = None, None
        st.caption(str(e))
    st.button(":material/play_arrow: Run the sweep" if not cached else ":material/folder_open: Show the measured sweep", key=f"{SLOT}.run_sweep",
              type="primary", on_click=_start_sweep, disabled=running or config is None)
    sweep = st.session_state[OUTCOMES].get("sweep")
    if sweep is not None and shown_kind != "sweep":
        _show_sweep(sweep)

with cut_tab:
    st.markdown("Yosinski et al. (2014) asked *how transferable are features in deep neural networks?* Cut the "
                "source model after each layer group, freeze what is kept, and fit a new head on it: for a target "
                "like the source, deeper features help; for a different one, the early, generic layers win.")
    c1, c2 = st.columns(2)
    c1.slider("Labelled images per class", 5, 100, key=f"{SLOT}.cut_n", persist_state=PERSIST)
    c2.slider("Seeds", 1, 3, key=f"{SLOT}.cut_seeds", persist_state=PERSIST)
    st.button(":material/play_arrow: Run: cut at every layer", key=f"{SLOT}.run_cut", type="primary", on_click=_start_cut,
              disabled=running)
    cut = st.session_state[OUTCOMES].get("cut")
    if cut is not None and shown_kind != "cut":
        _show_cut(cut)

with sim_tab:
    st.markdown("How similar is a dataset to the source data? Measure it: both go through the source model, and "
                "the distance between their feature distributions is read on a scale calibrated in shapes-world "
                "shifts. Then the quadrant places the dataset by itself.")
    c1, c2 = st.columns(2)
    c1.slider("True similarity of the shapes-world target", 0.0, 1.0, step=0.05, key=f"{SLOT}.sim_target",
              persist_state=PERSIST, help="Hidden from the measurement; used only to check it.")
    c2.slider("Its labelled images per class", 5, 500, key=f"{SLOT}.sim_n", persist_state=PERSIST)
    st.button(":material/straighten: Measure", key=f"{SLOT}.run_similarity", type="primary", on_click=_start_similarity,
              disabled=running)
    measured = st.session_state[OUTCOMES].get("similarity")
    if measured is not None and shown_kind != "similarity":
        _show_similarity(measured)
