"""Page: the race: freeze vs fine-tune vs scratch (and your own plan) on the same data and seed; predict, then watch.

Widget keys: "race.strategies", "race.own", "race.prediction", "race.start", "race.stop", "race.leave_preset",
"race.leave_projector", "race.download_table", "race.download_history"; the job slot's keys are described in
ui.live ("race.result" holds a tl_core.jobs.work.RaceOutcome). With a class preset ("race.preset", set by a class link or
the instructor page) the race runs the preset's lanes on its data. In the projector view ("class.projector") the
page shows only the question, the controls, the live race and the results, in large type.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tl_core.models.registry import ARCHS
from tl_core.jobs.manager import Job
from tl_core.training.plan import STRATEGIES
from tl_core.classroom.presets import PRESETS, Preset, commentary, find_preset
from tl_core.experiments.race import (DEFAULT_RACE, lane_label, race_lanes, race_rows_for_display, race_table,
                                      race_verdict)
from tl_core.jobs.progress import race_progress
from tl_core.jobs.work import RaceJob, RaceOutcome
from tl_core.training.history import History, race_histories
from ui.charts import race as race_charts
from ui.charts.theme import Chart
from tl_core.data.datasets import DataSpec
from ui import live, results
from ui.render import show_chart
from ui.state import PERSIST, current_plan, init_state, leave_preset, set_projector

SLOT = "race"
OPTIONS = list(DEFAULT_RACE) + [s for s in STRATEGIES if s not in DEFAULT_RACE]  # freeze → fine-tune → scratch


def _preset() -> Preset | None:
    """The class preset the race runs, if any."""
    return PRESETS.get(st.session_state.get("race.preset") or "")


def _lane_keys() -> list[str]:
    """The lanes of the next race, in race order: the preset's, or those the learner picked."""
    preset = _preset()
    if preset is not None:
        return preset.lane_keys
    keys = [s for s in OPTIONS if s in st.session_state["race.strategies"]]
    return keys + (["my_plan"] if st.session_state["race.own"] else [])


def _label(key: str) -> str:
    """A lane's name: from the race that ran it, else from the preset, else the strategy's label."""
    labels = st.session_state.get("race.labels") or {}
    preset = _preset()
    return labels.get(key) or (preset.label(key) if preset is not None else lane_label(key))


def _by_label(histories: dict[str, History]) -> dict[str, History]:
    """Histories keyed so the charts name every lane: lanes that are not a plain strategy go by their label."""
    return {k if k in STRATEGIES or k == "my_plan" else _label(k): h for k, h in histories.items()}


def _data() -> DataSpec:
    """The data the next race runs on: the preset's, or the app-wide data knobs."""
    seed = int(st.session_state["seed"])
    preset = _preset()
    if preset is not None:
        return preset.data_spec(seed)
    return DataSpec(n_per_class=int(st.session_state["data.n_per_class"]),
                    similarity=float(st.session_state["data.similarity"]), seed=seed)


def _on_lanes() -> None:
    """Callback of the lane pickers: a prediction for a lane that left the race is cleared."""
    if st.session_state.get("race.prediction") not in _lane_keys():
        st.session_state["race.prediction"] = None


def _start() -> None:
    """Callback of Start: race the lanes in the background, once a prediction is made."""
    predicted = st.session_state.get("race.prediction")
    keys = _lane_keys()
    if predicted not in keys:
        st.session_state["race.error"] = "Pick the lane you expect to win first: predict, then reveal."
        return
    plan, data, preset = current_plan(), _data(), _preset()
    try:
        if preset is not None:
            lanes = preset.race_lanes(data.seed)
        else:
            lanes = race_lanes([k for k in keys if k != "my_plan"], arch=plan.arch, seed=data.seed,
                               own_plan=plan if "my_plan" in keys else None)
    except ValueError as e:
        st.session_state["race.error"] = str(e)
        return
    st.session_state["race.order"] = [lane.key for lane in lanes]
    st.session_state["race.labels"] = {lane.key: lane.label for lane in lanes}
    if live.start(SLOT, RaceJob(tuple(lanes), data, predicted), label=f"race of {len(lanes)} lanes") is not None:
        st.session_state["race.prediction"] = None  # kept with the race; the next race needs a new prediction


def _chart(c: Chart, key: str) -> None:
    """A chart with its takeaway (scaled up on the projector by ui.render.show_chart)."""
    show_chart(c, key=key)


def _draw_live(job: Job, records: list) -> None:
    histories = race_histories(records)
    order = st.session_state.get("race.order") or list(histories)
    live.show_status(job, race_progress(histories, order, live.elapsed(job)))
    for key, h in histories.items():
        results.show_notices(h.events, prefix=f"{_label(key)}: ")
    _chart(race_charts.race_curves_chart(_by_label(histories)), "race.live.curves")
    _chart(race_charts.race_heatmaps_chart(_by_label(histories)), "race.live.heatmaps")


def _csv(rows: list[dict]) -> str:
    return pd.DataFrame(rows).to_csv(index=False)


def _show_results(outcome: RaceOutcome, projector: bool) -> None:
    st.header(":material/emoji_events: Results")
    rows = race_table(outcome.lanes, outcome.results)
    verdict = race_verdict(rows, outcome.predicted)
    (st.success if verdict.startswith("You called it") else st.info)(verdict, icon=":material/flag:")
    for lane in outcome.lanes:  # what went wrong in a lane, in its own words
        r = outcome.results.get(lane.key)
        if r is None:
            st.warning(f"{lane.label}: not raced (the race was stopped before its turn).", icon=":material/skip_next:")
        elif r.status == "diverged":
            st.error(f"{lane.label}: {r.reason}", icon=":material/error:")
        elif r.status == "cancelled":
            st.warning(f"{lane.label}: {r.reason}", icon=":material/stop_circle:")
        if r is not None:
            results.show_notices([e.message for e in r.events], prefix=f"{lane.label}: ")
    st.dataframe(race_rows_for_display(rows), hide_index=True, key="race.table",
                 column_config={"Validation accuracy": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                                       max_value=1),
                                "Trainable parameters": st.column_config.NumberColumn(format="localized"),
                                "Total parameters": st.column_config.NumberColumn(format="localized")})
    spec = outcome.data
    preset = find_preset([lane.key for lane in outcome.lanes], spec.n_per_class, spec.similarity)
    if preset is not None:
        st.subheader(f":material/school: {preset.title}: what this race showed")
        st.markdown("\n".join(f"- {s}" for s in commentary(preset, outcome.results)))
    if not projector:
        st.caption(f"Every lane: the same {spec.n_per_class} images per class at similarity {spec.similarity:g}, "
                   f"seed {spec.seed}. Wall time includes building the model; frozen prefixes are computed once.")
        data = {"seed": spec.seed, "n_per_class": spec.n_per_class, "similarity": spec.similarity}
        history = [{"lane": lane.key, "strategy": lane.label, **row, "epoch": row["epoch"] + 1,
                    "thawed": " ".join(row["thawed"])}
                   for lane in outcome.lanes if lane.key in outcome.results
                   for row in outcome.results[lane.key].history_rows()]
        c1, c2, _ = st.columns([1, 1, 2])
        c1.download_button(":material/table: Results table (.csv)", data=_csv([{**row, **data} for row in rows]),
                           file_name="race_results.csv", mime="text/csv", key="race.download_table",
                           on_click="ignore")
        c2.download_button(":material/show_chart: Every lane per epoch (.csv)", data=_csv(history), file_name="race_history.csv",
                           mime="text/csv", key="race.download_history", on_click="ignore")
    histories = {k: History.from_result(r) for k, r in outcome.results.items()}
    _chart(race_charts.race_curves_chart(_by_label(histories), title="Validation accuracy per epoch, every lane (final)"),
           "race.curves")
    _chart(race_charts.race_heatmaps_chart(_by_label(histories)), "race.heatmaps")


# ---- the page ---------------------------------------------------------------------------------------------------
init_state("race")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
live.setup(SLOT)
projector = bool(st.session_state.get("class.projector"))
preset = _preset()
plan = current_plan()
data = _data()

if projector:
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.title(f":material/sports_score: {preset.title if preset else 'The race'}")
    right.button(":material/undo: Exit projector", key="race.leave_projector", on_click=set_projector, args=(False,),
                 width="stretch", help="Back to the normal view, with the sidebar.")
else:
    st.title(":material/sports_score: The race")
    st.markdown("Freeze, fine-tune or start from scratch? Each lane trains the same architecture on **the same "
                "data with the same seed**, one after another, so the only difference is the strategy.")
if preset is not None:
    if not projector:
        st.info(f"**Class preset: {preset.title}.** {preset.summary}", icon=":material/school:")
    st.markdown(f"#### :material/psychology_alt: {preset.watch_for}")
    st.markdown(f"**Data:** shapes world, {preset.describe_data()} (seed {data.seed}) · **architecture:** "
                f"shapesnet · **lanes:** {' · '.join(lane.label for lane in preset.lanes)}")
    if not projector:
        st.button(":material/close: Pick my own lanes instead", key="race.leave_preset", on_click=leave_preset)
else:
    st.markdown(f"**Data:** shapes world, {data.n_per_class} images per class at similarity {data.similarity:g} "
                f"(seed {data.seed}) · **architecture:** {plan.arch}."
                + ("" if projector else " Change them on the *Train live* page or in the sidebar."))
weights_missing = False
if preset is None and ARCHS[plan.arch].torchvision:
    from tl_core.models.weights import weights_status

    status = weights_status(plan.arch)
    weights_missing = not status.available
    if weights_missing:
        st.warning(status.how_to_get(), icon=":material/inventory_2:")
    elif not projector:
        st.info(f"{plan.arch} trains slowly on a CPU; shapesnet races in seconds.", icon=":material/hourglass_top:")

if preset is None and not projector:
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.multiselect("Strategies in the race", OPTIONS, key="race.strategies",
                       persist_state=PERSIST, format_func=lane_label, on_change=_on_lanes)
    with right:
        st.checkbox(f"Add my plan ({plan.describe()})", key="race.own", persist_state=PERSIST, on_change=_on_lanes)
keys = _lane_keys()
if st.session_state.get("race.prediction") not in keys:
    st.session_state["race.prediction"] = None  # e.g. a preset came or went since the prediction was made
names = {k: _label(k) for k in keys}  # looked up now: a format_func may be called outside this run
st.radio(":material/psychology_alt: Before the start: which lane will reach the best validation accuracy?", keys,
         key="race.prediction", persist_state=PERSIST, format_func=names.__getitem__, horizontal=True)
predicted = st.session_state.get("race.prediction")
b1, b2, _ = st.columns([2, 1, 3])
b1.button(":material/play_arrow: Start the race", key="race.start", type="primary", on_click=_start, shortcut="Ctrl+Enter",
          disabled=predicted not in keys or weights_missing,
          help="Enabled once you have predicted the winner (Ctrl+Enter).")
b2.button(":material/stop_circle: Stop", key="race.stop", on_click=live.stop, args=(SLOT,), shortcut="Alt+X",
          help="Stop the running lane and skip the rest (Alt+X).")
if not keys:
    st.caption("Pick at least one strategy, or add your plan.")
elif predicted not in keys and not live.is_active(SLOT):
    st.caption("Make your prediction to unlock **Start**.")
if st.session_state["race.error"]:
    st.error(st.session_state["race.error"], icon=":material/warning:")
live.live_fragment(SLOT, _draw_live)
if st.session_state["race.result"] is not None and not live.is_active(SLOT):
    _show_results(st.session_state["race.result"], projector)
