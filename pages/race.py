"""Page: the race: freeze vs fine-tune vs scratch (and your own plan) on the same data and seed; predict, then watch.

Widget keys: "race.strategies", "race.own", "race.prediction", "race.start", "race.stop", "race.leave_preset",
"race.leave_projector", "race.download_table", "race.download_history"; the job slot's keys are described in
ui.live ("race.result" holds a tl_core.jobs.work.RaceOutcome), and "race.pick" the prediction this session made
for its latest race (kept through the race, the reveal and a reload). With a class preset ("race.preset", set by a
class link or the instructor page) the race runs the preset's lanes on its data. In a class ("class.code"), a
student's prediction is their vote in the class poll (tl_core.classroom.polls). Results are shown only under the
settings that produced them. In the projector view ("class.projector") the page shows the question, the class's
predictions, the live race and the reveal, in type that reads from the back of the room.
"""

from __future__ import annotations

import streamlit as st

from tl_core.classroom.polls import ClassClosed, Poll, get_registry, race_poll_id, reveal_line
from tl_core.classroom.presets import PRESETS, Preset, commentary, find_preset
from tl_core.data.datasets import DataSpec
from tl_core.experiments.race import (DEFAULT_RACE, Lane, lane_label, race_lanes, race_rows_for_display, race_table,
                                      race_verdict, winner)
from tl_core.fmt import ACCURACY_PRINTF, accuracy
from tl_core.jobs.manager import Job
from tl_core.jobs.progress import race_progress
from tl_core.jobs.work import RaceJob, RaceOutcome
from tl_core.models.registry import ARCHS
from tl_core.training.history import History, race_histories
from tl_core.training.plan import STRATEGIES
from ui import live, results
from ui import quiz
from ui.charts import race as race_charts
from ui.render import show_chart
from ui.starts import start_race
from ui.state import (PERSIST, URL_PICK, current_plan, init_state, leave_preset, remember_link, set_projector)

SLOT = "race"
OPTIONS = list(DEFAULT_RACE) + [s for s in STRATEGIES if s not in DEFAULT_RACE]  # freeze → fine-tune → scratch
POLL_EVERY_S = 2.0  # how often the projector redraws the class's tally before the start


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


def _lanes() -> list[Lane]:
    """The next race's lanes with their plans.

    Raises:
        ValueError: If no lane is picked or a plan is invalid.
    """
    data, preset = _data(), _preset()
    if preset is not None:
        return preset.race_lanes(data.seed)
    keys = _lane_keys()
    return race_lanes([k for k in keys if k != "my_plan"], arch=current_plan().arch, seed=data.seed,
                      own_plan=current_plan() if "my_plan" in keys else None)


def _is_shown_race(lanes: list[Lane] | tuple[Lane, ...], data: DataSpec) -> bool:
    """Whether a race ran exactly what this page shows above it (the lanes with their plans, the data, the seed)."""
    try:
        return list(lanes) == _lanes() and data == _data()
    except ValueError:
        return False


def _describe(lanes: list[Lane] | tuple[Lane, ...], data: DataSpec) -> str:
    preset = find_preset([lane.key for lane in lanes], data.n_per_class, data.similarity)
    what = preset.title if preset is not None else " · ".join(lane.label for lane in lanes)
    return f"{what}, {data.n_per_class} images per class at similarity {data.similarity:g}, seed {data.seed}"


# ---- the class poll -----------------------------------------------------------------------------------------------
def _class_poll() -> Poll | None:
    """The class's poll for the race shown (its preset and seed), if this session is in a class that asks it."""
    code, preset = st.session_state.get("class.code"), _preset()
    if not code or preset is None:
        return None
    return get_registry().poll(code, race_poll_id(preset.key, int(st.session_state["seed"])))


def _vote() -> None:
    """Callback of the prediction: a student's prediction is their vote in the class poll (a new one replaces it)."""
    poll, member = _class_poll(), st.session_state.get("class.member")
    choice = st.session_state.get("race.prediction")
    if poll is None or member is None or choice not in poll.options:
        return
    try:
        get_registry().vote(st.session_state["class.code"], poll.id, member, choice)
    except (ClassClosed, ValueError) as e:
        st.session_state["race.error"] = f"Your prediction is yours alone: {e}"


def _restore_vote() -> None:
    """After a reload, the prediction radio shows this student's vote again (the class remembers it)."""
    poll, member = _class_poll(), st.session_state.get("class.member")
    if poll is not None and member is not None and st.session_state.get("race.prediction") is None \
            and not live.is_active(SLOT) and st.session_state.get("race.result") is None:
        mine = get_registry().vote_of(st.session_state["class.code"], poll.id, member)
        if mine in _lane_keys():
            st.session_state["race.prediction"] = mine


def _tally(poll: Poll, answer: str | None = None) -> None:
    """The class's predictions as a chart (large on the projector)."""
    code = st.session_state["class.code"]
    counts = get_registry().tally(code, poll.id)
    index = poll.options.index(answer) if answer in poll.options else None
    show_chart(race_charts.poll_chart(list(poll.labels), [counts[o] for o in poll.options], answer=index),
               key="race.poll")


def _reveal(outcome: RaceOutcome) -> str | None:
    """Record the winner of a finished class race in the class poll, and return the reveal line (None outside a class
    or when not every lane finished)."""
    poll, code = _class_poll(), st.session_state.get("class.code")
    if poll is None or not all(r.ok for r in outcome.results.values()) or len(outcome.results) != len(outcome.lanes):
        return None
    best = winner(outcome.results)
    if best not in poll.options:
        return None
    try:
        get_registry().reveal(code, poll.id, best)
    except (ClassClosed, ValueError):
        return None
    return reveal_line(get_registry().tally(code, poll.id), best, poll.label(best))


# ---- starting and watching --------------------------------------------------------------------------------------
def _pick(job_id: int | None) -> str | None:
    """The lane this session predicted for a race (job id), or None."""
    pick = st.session_state.get("race.pick")
    return pick[1] if pick and job_id is not None and pick[0] == job_id else None


def _on_lanes() -> None:
    """Callback of the lane pickers: a prediction for a lane that left the race is cleared."""
    if st.session_state.get("race.prediction") not in _lane_keys():
        st.session_state["race.prediction"] = None


def _needs_prediction() -> bool:
    """The projector of a class starts without a prediction of its own: the class predicts."""
    return not (st.session_state.get("class.projector") and _class_poll() is not None)


def _start() -> None:
    """Callback of Start: race the lanes in the background, once a prediction is made."""
    predicted = st.session_state.get("race.prediction")
    keys = _lane_keys()
    if _needs_prediction() and predicted not in keys:
        st.session_state["race.error"] = "Pick the lane you expect to win first: predict, then reveal."
        return
    try:
        lanes, data = _lanes(), _data()
    except ValueError as e:
        st.session_state["race.error"] = str(e)
        return
    start_race(lanes, data, predicted if predicted in keys else None)


def _sharers_line(job: Job) -> None:
    """How many classmates share the computation of this run, if any."""
    others = live.sharers(SLOT) - 1
    if others > 0:
        verb = "Running" if job.active else "Ran"
        st.caption(f":material/groups: {verb} for you and {others} classmate{'' if others == 1 else 's'}: the same "
                   f"lanes, data and seed, so one computation gives everyone the same result.")


def _draw_live(job: Job, records: list) -> None:
    race = job.fn
    if isinstance(race, RaceJob) and not _is_shown_race(race.lanes, race.data):
        live.show_status(job, race_progress(race_histories(records), [lane.key for lane in race.lanes],
                                            live.elapsed(job)))
        st.caption(f"This is your race of other settings ({_describe(race.lanes, race.data)}); its charts show "
                   f"under those settings. Stop it to race the settings above.")
        return
    projector = bool(st.session_state.get("class.projector"))
    histories = race_histories(records)
    order = [lane.key for lane in race.lanes] if isinstance(race, RaceJob) else list(histories)  # the run's own
    if not projector:
        _sharers_line(job)
    live.show_status(job, race_progress(histories, order, live.elapsed(job)))
    for key, h in histories.items():
        results.show_notices(h.events, prefix=f"{_label(key)}: ")
    show_chart(race_charts.race_curves_chart(_by_label(histories)), key="race.live.curves")
    if not projector:  # heatmaps belong on the students' screens
        show_chart(race_charts.race_heatmaps_chart(_by_label(histories)), key="race.live.heatmaps")


def _csv(rows: list[dict]) -> str:
    import pandas as pd  # only the finished race's downloads need pandas

    return pd.DataFrame(rows).to_csv(index=False)


def _finals(outcome: RaceOutcome) -> dict[str, float]:
    return {(k if k in STRATEGIES or k == "my_plan" else _label(k)): r.final_val_acc
            for k, r in outcome.results.items() if r.final_val_acc is not None}


def _show_projector_results(outcome: RaceOutcome) -> None:
    """The reveal on the projector: the winner, the class's predictions next to each lane, the final curves."""
    rows = race_table(outcome.lanes, outcome.results)
    st.markdown(f"## :material/emoji_events: {race_verdict(rows, None)}")
    line = _reveal(outcome)
    if line:
        st.markdown(f"### :material/groups: {line}")
    poll = _class_poll()
    counts = get_registry().tally(st.session_state["class.code"], poll.id) if poll is not None else {}
    header = "| | Lane | Validation accuracy |" + (" Predicted by |" if poll is not None else "")
    lines = [header, "|---|---|---:|" + ("---:|" if poll is not None else "")]
    for i, row in enumerate(rows, start=1):
        acc = accuracy(row["accuracy"]) if row["accuracy"] is not None else row["status"]
        lines.append(f"| {i} | {row['strategy']} | **{acc}** |" + (f" {counts.get(row['lane'], 0)} |" if poll else ""))
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.markdown("\n".join(lines))
    with right:
        histories = {k: History.from_result(r) for k, r in outcome.results.items()}
        show_chart(race_charts.race_curves_chart(_by_label(histories), title="Validation accuracy per epoch (final)",
                                                 final=True, finals=_finals(outcome), height=330), key="race.curves")


def _show_results(outcome: RaceOutcome) -> None:
    """A student's results: the verdict on their pick, lanes' problems, the table, commentary, downloads, charts."""
    st.header(":material/emoji_events: Results")
    rows = race_table(outcome.lanes, outcome.results)
    pick = _pick(st.session_state.get("race.done"))
    verdict = race_verdict(rows, pick)
    (st.success if verdict.startswith("You called it") else st.info)(verdict, icon=":material/flag:")
    if pick is not None:
        st.markdown(f":material/psychology_alt: Your pick: **{_label(pick)}**")
    line = _reveal(outcome)
    if line:
        st.markdown(f":material/groups: The class: {line}")
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
    st.dataframe(race_rows_for_display(rows, as_shown=True), hide_index=True, key="race.table",
                 column_config={"Validation accuracy": st.column_config.ProgressColumn(
                                    format=ACCURACY_PRINTF, min_value=0, max_value=100),
                                "Trainable parameters": st.column_config.NumberColumn(format="localized"),
                                "Total parameters": st.column_config.NumberColumn(format="localized")})
    spec = outcome.data
    preset = find_preset([lane.key for lane in outcome.lanes], spec.n_per_class, spec.similarity)
    if preset is not None:
        st.subheader(f":material/school: {preset.title}: what this race showed")
        st.markdown("\n".join(f"- {s}" for s in commentary(preset, outcome.results)))
    st.caption(f"Every lane: the same {spec.n_per_class} images per class at similarity {spec.similarity:g}, "
               f"seed {spec.seed}. Wall time includes building the model; frozen prefixes are computed once.")
    data = {"seed": spec.seed, "n_per_class": spec.n_per_class, "similarity": spec.similarity}
    history = [{"lane": lane.key, "strategy": lane.label, **row, "epoch": row["epoch"] + 1,
                "thawed": " ".join(row["thawed"])}
               for lane in outcome.lanes if lane.key in outcome.results
               for row in outcome.results[lane.key].history_rows()]
    c1, c2 = st.columns(2)  # wide enough for both labels in full
    c1.download_button(":material/table: Results table (.csv)", data=_csv([{**row, **data} for row in rows]),
                       file_name="race_results.csv", mime="text/csv", key="race.download_table", on_click="ignore")
    c2.download_button(":material/show_chart: Every lane per epoch (.csv)", data=_csv(history),
                       file_name="race_history.csv", mime="text/csv", key="race.download_history", on_click="ignore")
    histories = {k: History.from_result(r) for k, r in outcome.results.items()}
    show_chart(race_charts.race_curves_chart(_by_label(histories), title="Validation accuracy per epoch, every lane "
                                             "(final)", final=True, finals=_finals(outcome)), key="race.curves")
    show_chart(race_charts.race_heatmaps_chart(_by_label(histories)), key="race.heatmaps")


# ---- the page ---------------------------------------------------------------------------------------------------
init_state("race")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
live.setup(SLOT)
projector = bool(st.session_state.get("class.projector"))
preset = _preset()
plan = current_plan()
data = _data()
_restore_vote()

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

if preset is None and not projector:  # full width: every lane's name and the whole plan stay readable
    st.multiselect("Strategies in the race", OPTIONS, key="race.strategies", persist_state=PERSIST,
                   format_func=lane_label, on_change=_on_lanes)
    st.checkbox(f"Add my plan ({plan.describe()})", key="race.own", persist_state=PERSIST, on_change=_on_lanes)
keys = _lane_keys()
if st.session_state.get("race.prediction") not in keys:
    st.session_state["race.prediction"] = None  # e.g. a preset came or went since the prediction was made
poll = _class_poll()
names = {k: _label(k) for k in keys}  # looked up now: a format_func may be called outside this run
if _needs_prediction():
    st.radio(":material/psychology_alt: Before the start: which lane will reach the best validation accuracy?", keys,
             key="race.prediction", persist_state=PERSIST, format_func=names.__getitem__, horizontal=True,
             on_change=_vote)
    if poll is not None and st.session_state.get("class.member"):
        st.caption(f":material/groups: Class {st.session_state['class.code']}: your prediction is your vote in the "
                   f"class poll (change it until the start; only counts are kept, never names).")
predicted = st.session_state.get("race.prediction")
b1, b2, _ = st.columns([2, 1, 3])
b1.button(":material/play_arrow: Start the race", key="race.start", type="primary", on_click=_start,
          shortcut="Ctrl+Enter", disabled=(_needs_prediction() and predicted not in keys) or weights_missing,
          help="Enabled once you have predicted the winner (Ctrl+Enter)." if _needs_prediction() else
          "The class has predicted: start the race for everyone to watch (Ctrl+Enter).")
b2.button(":material/stop_circle: Stop", key="race.stop", on_click=live.stop, args=(SLOT,), shortcut="Alt+X",
          help="Stop watching the race (Alt+X). A race that classmates share goes on for them.")
if not keys:
    st.caption("Pick at least one strategy, or add your plan.")
elif _needs_prediction() and predicted not in keys and not live.is_active(SLOT):
    st.caption("Make your prediction to unlock **Start**.")
if st.session_state["race.error"]:
    st.error(st.session_state["race.error"], icon=":material/warning:")
if st.session_state["race.note"]:
    st.info(st.session_state["race.note"], icon=":material/logout:")

outcome: RaceOutcome | None = st.session_state["race.result"]
running = live.is_active(SLOT)
shown = outcome is not None and not running and _is_shown_race(outcome.lanes, outcome.data)
if running and _pick(st.session_state.get("race.job")) is not None and not projector:
    st.markdown(f":material/psychology_alt: Your pick: **{_label(_pick(st.session_state['race.job']))}**")
if projector and poll is not None and not shown:  # the class's predictions next to the live race
    tally_col, race_col = st.columns([2, 3], gap="large")
    with tally_col:
        @st.fragment(run_every=None if running else POLL_EVERY_S)  # live until the start
        def _live_tally() -> None:
            _tally(poll)

        _live_tally()
    with race_col:
        live.live_fragment(SLOT, _draw_live)
else:
    live.live_fragment(SLOT, _draw_live)
if shown:
    if projector:
        _show_projector_results(outcome)
    else:
        _show_results(outcome)
elif outcome is not None and not running and not projector:
    st.caption(f":material/history: Your last race ran other settings ({_describe(outcome.lanes, outcome.data)}); "
               f"its results show again under those settings. Press Start to race the settings above.")

quiz.section("race")
