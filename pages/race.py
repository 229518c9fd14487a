"""Page: the race: freeze vs fine-tune vs scratch (and your own plan) on the same data and seed; predict, then watch.

Widget keys: "race.strategies", "race.own", "race.prediction", "race.start", "race.stop"; the job slot's keys are
described in ui.live ("race.result" holds a tl_core.runs.RaceOutcome).
"""

from __future__ import annotations

import streamlit as st

from tl_core import figures
from tl_core.archs import ARCHS
from tl_core.jobs import Job
from tl_core.plan import STRATEGIES
from tl_core.race import DEFAULT_RACE, race_lanes, race_table
from tl_core.runs import RaceOutcome, race_job
from tl_core.scenarios import DataSpec
from ui import live
from ui.render import chart
from ui.state import PERSIST, current_plan, init_state

SLOT = "race"
OPTIONS = list(DEFAULT_RACE) + [s for s in STRATEGIES if s not in DEFAULT_RACE]  # freeze → fine-tune → scratch


def _lane_keys() -> list[str]:
    """The lanes the learner picked, in race order."""
    keys = [s for s in OPTIONS if s in st.session_state["race.strategies"]]
    return keys + (["my_plan"] if st.session_state["race.own"] else [])


def _on_lanes() -> None:
    """Callback of the lane pickers: a prediction for a lane that left the race is cleared."""
    if st.session_state.get("race.prediction") not in _lane_keys():
        st.session_state["race.prediction"] = None


def _start() -> None:
    """Callback of Start: race the picked lanes in the background, once a prediction is made."""
    predicted = st.session_state.get("race.prediction")
    keys = _lane_keys()
    if predicted not in keys:
        st.session_state["race.error"] = "Pick the lane you expect to win first: predict, then reveal."
        return
    plan = current_plan()
    seed = int(st.session_state["seed"])
    try:
        lanes = race_lanes([k for k in keys if k != "my_plan"], arch=plan.arch, seed=seed,
                           own_plan=plan if "my_plan" in keys else None)
    except ValueError as e:
        st.session_state["race.error"] = str(e)
        return
    data = DataSpec(n_per_class=int(st.session_state["data.n_per_class"]),
                    similarity=float(st.session_state["data.similarity"]), seed=seed)
    st.session_state["race.order"] = [lane.key for lane in lanes]
    if live.start(SLOT, race_job(lanes, data, predicted), label=f"race of {len(lanes)} lanes") is not None:
        st.session_state["race.prediction"] = None  # kept with the race; the next race needs a new prediction


def _draw_live(job: Job, records: list) -> None:
    histories = figures.race_histories(records)
    order = st.session_state.get("race.order") or list(histories)
    live.show_status(job, figures.race_progress(histories, order, live.elapsed(job)))
    c = figures.race_curves_chart(histories)
    chart(c.fig, c.takeaway, key="race.live.curves")
    c = figures.race_heatmaps_chart(histories)
    chart(c.fig, c.takeaway, key="race.live.heatmaps")


def _show_results(outcome: RaceOutcome) -> None:
    st.header("🏆 Results")
    rows = race_table(outcome.lanes, outcome.results)
    verdict = figures.race_verdict(rows, outcome.predicted)
    (st.success if verdict.startswith("You called it") else st.info)(verdict, icon="🎯")
    st.dataframe(figures.race_rows_for_display(rows), hide_index=True, key="race.table",
                 column_config={"Validation accuracy": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                                       max_value=1),
                                "Trainable parameters": st.column_config.NumberColumn(format="localized"),
                                "Total parameters": st.column_config.NumberColumn(format="localized")})
    spec = outcome.data
    st.caption(f"Every lane: the same {spec.n_per_class} images per class at similarity {spec.similarity:g}, seed "
               f"{spec.seed}. Wall time includes building the model; frozen prefixes are computed once.")
    histories = {k: figures.History.from_result(r) for k, r in outcome.results.items()}
    c = figures.race_curves_chart(histories, title="Validation accuracy per epoch, every lane (final)")
    chart(c.fig, c.takeaway, key="race.curves")
    c = figures.race_heatmaps_chart(histories)
    chart(c.fig, c.takeaway, key="race.heatmaps")


# ---- the page ---------------------------------------------------------------------------------------------------
init_state()  # app.py did this already, except on a cold start that deep-links here (see ui.state)
live.setup(SLOT)
st.session_state.setdefault("race.strategies", list(DEFAULT_RACE))
st.session_state.setdefault("race.own", False)
st.session_state.setdefault("race.prediction", None)

st.title("🏁 The race")
st.markdown("Freeze, fine-tune or start from scratch? Each lane trains the same architecture on **the same data "
            "with the same seed**, one after another, so the only difference is the strategy.")
plan = current_plan()
n, sim, seed = (st.session_state["data.n_per_class"], st.session_state["data.similarity"], st.session_state["seed"])
st.markdown(f"**Data:** shapes world, {n} images per class at similarity {sim:g} (seed {seed}) · "
            f"**architecture:** {plan.arch}. Change them on the *Train live* page or in the sidebar.")
weights_missing = False
if ARCHS[plan.arch].torchvision:
    from tl_core.weights import weights_status

    status = weights_status(plan.arch)
    weights_missing = not status.available
    if weights_missing:
        st.warning(status.how_to_get(), icon="📦")
    else:
        st.info(f"{plan.arch} trains slowly on a CPU; shapesnet races in seconds.", icon="🐢")

left, right = st.columns([3, 2], gap="large")
with left:
    st.multiselect("Strategies in the race", OPTIONS, key="race.strategies",
                   persist_state=PERSIST, format_func=figures.lane_label, on_change=_on_lanes)
with right:
    st.checkbox(f"Add my plan ({plan.describe()})", key="race.own", persist_state=PERSIST, on_change=_on_lanes)
keys = _lane_keys()
st.radio("🤔 Before the start: which lane will reach the best validation accuracy?", keys,
         key="race.prediction", persist_state=PERSIST, format_func=figures.lane_label, horizontal=True)
predicted = st.session_state.get("race.prediction")
b1, b2, _ = st.columns([2, 1, 3])
b1.button("▶️ Start the race", key="race.start", type="primary", on_click=_start, shortcut="Ctrl+Enter",
          disabled=predicted not in keys or weights_missing,
          help="Enabled once you have predicted the winner (Ctrl+Enter).")
b2.button("⏹️ Stop", key="race.stop", on_click=live.stop, args=(SLOT,), shortcut="Alt+X",
          help="Stop the running lane and skip the rest (Alt+X).")
if not keys:
    st.caption("Pick at least one strategy, or add your plan.")
elif predicted not in keys and not live.is_active(SLOT):
    st.caption("Make your prediction to unlock **Start**.")
if st.session_state["race.error"]:
    st.error(st.session_state["race.error"], icon="⚠️")
live.live_fragment(SLOT, _draw_live)
if st.session_state["race.result"] is not None and not live.is_active(SLOT):
    _show_results(st.session_state["race.result"])
