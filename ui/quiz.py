"""Check your understanding: a teaching page's scenario questions, the learner's progress in the sidebar, class polls.

The questions are library data (tl_core.teaching.questions); this module only draws them and keeps the learner's
answers. `section("<page>")` closes a teaching page with its questions: multiple choice, or a pick on the page's own
widget (the matrix's four answers, a point on the quadrant), each option explaining itself once chosen, and for the
questions with a shapes-world analogue a button that starts it (a class preset's race with the learner's pick as the
prediction, or a quadrant-lab sweep) and opens the page where it runs; what the run measured is shown with the
question, agreeing or not. `sidebar()` (app.py, inside `with st.sidebar:`) shows how far the learner has come and
offers the summary as JSON and CSV.

Progress lives in session state and in the URL (`?quiz=`, tl_core.teaching.questions.encode_progress), so it survives
page switches and a reload without accounts or anything stored on the server. The class-poll pieces use
tl_core.classroom.polls: `push_control(code)` for the instructor page, `student_form(code, member)` for a student
in a class.

Starting a run sets what the race page's own Start sets ("race.labels", "race.pick", "race.prediction", the URL's
preset, seed and pick, after ui.state.apply_preset), or what the quadrant lab's Run sets ("quadrant_lab.sizes",
".similarities", ".strategies", ".n_seeds", ".running", ".running_config"), so that those pages show the run.

Session-state keys (all "quiz.*"): "quiz.progress" (question id -> Attempt), "quiz.picks" (question id -> the
matrix Answers last checked), "quiz.runs" (question id -> (slot, job id, the learner's pick) of a run not yet
measured), "quiz.measured" (question id -> Measurement), "quiz.restored" (the URL was read), "quiz.problem" (why the
URL's answers could not be restored), "quiz.push.error" (why the last push failed). Widget keys:
"quiz.<id>.choice", "quiz.<id>.check", "quiz.<id>.run", "quiz.download_json", "quiz.download_csv",
"quiz.push.question", "quiz.push.go", "quiz.push.reveal", "quiz.poll.<id>.choice", "quiz.poll.<id>.send".
Torch-free: the jobs are imported only when a run starts.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from tl_core.classroom.presets import find_preset
from tl_core.fmt import pct
from tl_core.teaching.matrix import Answers, classify
from tl_core.teaching.questions import (MATRIX_FIELDS, PAGES, QUESTIONS, Attempt, Measurement, Question,
                                        decode_progress, encode_progress, get_question, judge_race, judge_sweep,
                                        matrix_option, pick_feedback, poll_spec, question_of_poll, quadrant_option,
                                        questions_for, record, score, summary_csv, summary_json)
from ui import live
from ui.starts import start_race, start_sweep
from ui.state import PERSIST, apply_preset

URL_PARAM = "quiz"  # ?quiz=<encoded progress>
PROGRESS, PICKS, RUNS, MEASURED = "quiz.progress", "quiz.picks", "quiz.runs", "quiz.measured"
RESTORED, PROBLEM, PUSH_ERROR = "quiz.restored", "quiz.problem", "quiz.push.error"
DEFAULTS: dict[str, Any] = {PROGRESS: dict, PICKS: dict, RUNS: dict, MEASURED: dict, RESTORED: False, PROBLEM: None,
                            PUSH_ERROR: None}  # for ui.state's registry
PAGE_FILES = {"welcome": "pages/welcome.py", "matrix": "pages/matrix.py", "quadrant": "pages/quadrant.py",
              "race": "pages/race.py", "architectures": "pages/architectures.py"}
RUN_SLOTS = {"race": "race", "sweep": "quadrant_lab"}  # run kind -> the ui.live slot it runs in
RUN_PAGES = {"race": "pages/race.py", "sweep": "pages/quadrant_lab.py"}  # run kind -> the page that shows it
MATRIX_KEYS = {f: f"matrix.{f}" for f in MATRIX_FIELDS}  # the matrix page's widgets (ui.state)
DOWNLOAD_NAME = "transfer_learning_answers"


# ---- state ------------------------------------------------------------------------------------------------------
def init() -> None:
    """Set the quiz's session-state keys, and once per session restore the answers saved in the URL. Idempotent."""
    ss = st.session_state
    for key, default in DEFAULTS.items():
        if key not in ss:
            ss[key] = default() if callable(default) else default
    if ss[RESTORED]:
        return
    ss[RESTORED] = True
    raw = st.query_params.get(URL_PARAM)
    if raw:
        try:
            restored = decode_progress(str(raw))
        except ValueError as e:
            ss[PROBLEM] = str(e)
            return
        ss[PROGRESS] = {**restored, **ss[PROGRESS]}  # answers given in this session before the restore win


def progress() -> dict[str, Attempt]:
    """The learner's answers: question id -> Attempt."""
    init()
    return st.session_state[PROGRESS]


def sync_url() -> None:
    """Keep `?quiz=` in step with the answers (a page switch clears the URL's parameters; this puts them back)."""
    text = encode_progress(progress())
    if text:
        if st.query_params.get(URL_PARAM) != text:
            st.query_params[URL_PARAM] = text
    elif URL_PARAM in st.query_params and st.session_state[PROBLEM] is None:
        del st.query_params[URL_PARAM]


def _answer(qid: str, option: str) -> None:
    st.session_state[PROGRESS] = record(progress(), qid, option)


# ---- callbacks --------------------------------------------------------------------------------------------------
def _on_choice(qid: str) -> None:
    """Callback of a multiple-choice radio: record the answer."""
    option = st.session_state.get(f"quiz.{qid}.choice")
    if option is not None:
        _answer(qid, option)


def matrix_answers() -> Answers | None:
    """The matrix page's four answers as they stand, or None when its widgets' keys are not set."""
    ss = st.session_state
    if any(not isinstance(ss.get(k), bool) for k in MATRIX_KEYS.values()):
        return None
    return Answers(**{f: ss[k] for f, k in MATRIX_KEYS.items()})


def quadrant_point() -> tuple[int, float | str] | None:
    """The quadrant page's point as it stands: (images per class, similarity 0..1 or "similar"/"different"), or None
    when its widgets' keys are not set."""
    ss = st.session_state
    try:
        if ss.get("quadrant.mode") == "own":
            return int(ss["quadrant.own_n"]), str(ss["quadrant.own_similar"])
        return int(ss["quadrant.size"]), float(ss["quadrant.similarity"])
    except (KeyError, TypeError, ValueError):
        return None


def _on_matrix_pick(qid: str) -> None:
    """Callback of "Check": the matrix's four answers as the learner's answer."""
    answers = matrix_answers()
    if answers is not None:
        st.session_state[PICKS] = {**st.session_state[PICKS], qid: answers}
        _answer(qid, matrix_option(answers))


def _on_quadrant_pick(qid: str) -> None:
    """Callback of "Check": the quadrant's point as the learner's answer."""
    point = quadrant_point()
    if point is not None:
        _answer(qid, quadrant_option(*point))


def _on_run(qid: str) -> None:
    """Callback of "Measure it": load the question's preset or sweep and start it, the learner's pick as the race's
    prediction. The button's script run then opens the page where it runs."""
    q = get_question(qid)
    ss = st.session_state
    attempt = progress().get(qid)
    pick = attempt.last if attempt is not None else None
    seed = int(ss["seed"])
    if q.run is None:
        return
    if q.run.kind == "race":
        preset = apply_preset(q.run.preset, seed)
        lane = q.option(pick).lane if pick is not None else None
        job = start_race(preset.race_lanes(seed), preset.data_spec(seed), lane if lane in preset.lane_keys else None,
                         label=f"race of {len(preset.lanes)} lanes (question {q.id})")
    else:
        from tl_core.experiments.lab import LabConfig

        config = LabConfig(sizes=q.run.sizes, similarities=q.run.similarities, strategies=q.run.strategies,
                           seeds=(seed,)).validate()
        # the lab page's own widgets then describe this very sweep, and its live view draws it
        ss["quadrant_lab.sizes"], ss["quadrant_lab.similarities"] = list(config.sizes), list(config.similarities)
        ss["quadrant_lab.strategies"], ss["quadrant_lab.n_seeds"] = list(config.strategies), 1
        ss["quadrant_lab.different"] = config.different
        job = start_sweep(config, label=f"lab sweep of {config.n_lanes} runs (question {q.id})")
    if job is not None:
        ss[RUNS] = {**ss[RUNS], qid: (RUN_SLOTS[q.run.kind], job.id, pick)}
        ss[MEASURED] = {k: v for k, v in ss[MEASURED].items() if k != qid}


# ---- measurements -------------------------------------------------------------------------------------------------
def _matches(q: Question, outcome: Any) -> bool:
    """Whether a slot's result is the run the question asked for (and not an older result of that slot)."""
    if q.run is None:
        return False
    if q.run.kind == "race":
        spec = getattr(outcome, "data", None)
        lanes = getattr(outcome, "lanes", None)
        if spec is None or lanes is None:
            return False
        preset = find_preset([ln.key for ln in lanes], spec.n_per_class, spec.similarity)
        return preset is not None and preset.key == q.run.preset
    if not (isinstance(outcome, tuple) and len(outcome) == 2 and outcome[0] == "sweep"):
        return False
    from tl_core.experiments.lab import LabConfig  # a sweep's result exists: torch is loaded already

    config = outcome[1].config
    asked = LabConfig(sizes=q.run.sizes, similarities=q.run.similarities, strategies=q.run.strategies,
                      seeds=config.seeds)
    return config.canonical() == asked.canonical()


def _measure(q: Question, outcome: Any, pick: str | None) -> Measurement:
    if q.run is not None and q.run.kind == "race":
        return judge_race(q, outcome.results, pick=pick, seed=outcome.data.seed)
    return judge_sweep(q, outcome[1].lanes)


def collect() -> None:
    """Read the outcome of every run a question started that has ended since (once each), into "quiz.measured"."""
    ss = st.session_state
    init()
    for qid, (slot, job_id, pick) in list(ss[RUNS].items()):
        live.harvest(slot)  # idempotent: moves a finished job's outcome into "<slot>.result"
        if ss.get(f"{slot}.done") != job_id:
            if ss.get(f"{slot}.job") != job_id:  # a later run replaced it before it could be read
                ss[RUNS] = {k: v for k, v in ss[RUNS].items() if k != qid}
            continue
        q = get_question(qid)
        outcome = ss.get(f"{slot}.result")
        if _matches(q, outcome):
            measured = _measure(q, outcome, pick)
        else:
            measured = Measurement(None, f"The run did not finish: {ss.get(f'{slot}.error') or 'it was stopped'}.")
        ss[MEASURED] = {**ss[MEASURED], qid: measured}
        ss[RUNS] = {k: v for k, v in ss[RUNS].items() if k != qid}


# ---- the sidebar ------------------------------------------------------------------------------------------------------
def sidebar() -> None:
    """How far the learner has come, and the summary to hand in. Call inside app.py's `with st.sidebar:`."""
    init()
    collect()
    sync_url()
    if st.session_state.get("class.projector"):
        return  # the projector hides the sidebar: nothing of a learner's to draw there
    mine = progress()
    s = score(mine)
    st.markdown(f"**:material/quiz: Check your understanding:** {s.answered} of {s.total} questions answered")
    st.caption(f"{s.first_try} right on the first try, {s.correct_now} right now. Your answers are kept in this "
               f"page's link, so a reload keeps them; nothing is stored on the server.")
    if st.session_state[PROBLEM]:
        st.warning(st.session_state[PROBLEM], icon=":material/link_off:")
    measured = {k: m.text for k, m in st.session_state[MEASURED].items()}
    c1, c2 = st.columns(2)
    c1.download_button(":material/download: JSON", data=summary_json(mine, measured), file_name=f"{DOWNLOAD_NAME}.json",
                       mime="application/json", key="quiz.download_json", on_click="ignore", disabled=not s.answered,
                       help="Your answers, first tries and measurements, to hand in.")
    c2.download_button(":material/download: CSV", data=summary_csv(mine, measured), file_name=f"{DOWNLOAD_NAME}.csv",
                       mime="text/csv", key="quiz.download_csv", on_click="ignore", disabled=not s.answered,
                       help="The same summary as a table, one row per question.")


# ---- a page's questions ---------------------------------------------------------------------------------------------
def _feedback(q: Question, attempt: Attempt) -> None:
    """The chosen option's explanation; once right, every option's and the question's note."""
    chosen = q.option(attempt.last)
    if q.is_correct(attempt.last):
        st.success(f"**{chosen.label}.** {chosen.explanation}", icon=":material/check_circle:")
    else:
        st.error(f"**{chosen.label}** is not the keyed answer. {chosen.explanation}", icon=":material/cancel:")
    if q.pick == "matrix":
        answers = st.session_state[PICKS].get(q.id)
        lines = pick_feedback(q, answers) if answers is not None else []
        if lines:
            lead = ("Your answers reach the same setting, but some differ from the situation:"
                    if q.is_correct(attempt.last) else "Where your answers differ from the situation:")
            st.markdown(lead + "\n" + "\n".join(f"- {line}" for line in lines))
    if not q.is_correct(attempt.last):
        st.caption("Try another answer: each one explains itself.")
        return
    others = [o for o in q.options if o.key != q.answer]
    with st.expander("Why the other answers do not fit"):
        st.markdown("\n\n".join(f"**{o.label}.** {o.explanation}" for o in others))
    if q.note:
        st.info(f"**The course and the literature.** {q.note}", icon=":material/menu_book:")


def _choice(q: Question, attempt: Attempt | None) -> None:
    key = f"quiz.{q.id}.choice"
    if key not in st.session_state and attempt is not None:
        st.session_state[key] = attempt.last  # e.g. after a reload: the radio shows the restored answer
    labels = {o.key: o.label for o in q.options}
    st.radio("Your answer", list(labels), index=None, key=key, format_func=labels.__getitem__,
             on_change=_on_choice, args=(q.id,), label_visibility="collapsed", persist_state=PERSIST)


def _setting_name(answers: Answers) -> str:
    """The name of the setting a set of matrix answers lands on, as the matrix page shows it."""
    return classify(answers.source_labels, answers.target_labels, answers.same_domain, answers.same_task).name


def _matrix_pick(q: Question) -> None:
    answers = matrix_answers()
    if answers is None:
        st.warning("Answer this one with the matrix's four questions at the top of the page.",
                   icon=":material/touch_app:")
        return
    st.caption(f":material/touch_app: Answer with the matrix itself: set its four answers at the top of this page to "
               f"describe the situation, then check. The matrix now says: **{_setting_name(answers)}**.")
    st.button(":material/fact_check: Check my matrix answers", key=f"quiz.{q.id}.check", on_click=_on_matrix_pick,
              args=(q.id,))


def _quadrant_pick(q: Question) -> None:
    point = quadrant_point()
    if point is None:
        st.warning("Answer this one by placing the problem with the controls at the top of the page.",
                   icon=":material/touch_app:")
        return
    n, sim = point
    cell = q.option(quadrant_option(n, sim))
    where = f"{n} images per class, " + (f"similarity {sim:g}" if isinstance(sim, float) else sim)
    st.caption(f":material/touch_app: Answer with the quadrant itself: set the controls at the top of this page to "
               f"place the problem (the shapes-world knobs, or *About my own problem*), then check. Your point now: "
               f"{where}, **{cell.label}**.")
    st.button(":material/fact_check: Check my point", key=f"quiz.{q.id}.check", on_click=_on_quadrant_pick,
              args=(q.id,))


def _run_help(q: Question) -> str:
    assert q.run is not None
    if q.run.kind == "sweep":
        return "Answer first; the quadrant lab then trains every strategy on this cell of the shapes world."
    if any(o.lane is not None for o in q.options):
        return "Answer first; your answer becomes the race's prediction."
    return "Answer first; the race then shows what happens in the shapes world."


def _run(q: Question, page: str, attempt: Attempt | None) -> None:
    """The "measure it" button, the run's state, and what it measured."""
    assert q.run is not None
    ss = st.session_state
    kind = q.run.kind
    clicked = st.button(f":material/play_arrow: Measure it: run {q.run.title}", key=f"quiz.{q.id}.run",
                        on_click=_on_run, args=(q.id,), disabled=attempt is None, help=_run_help(q))
    if clicked and RUN_PAGES[kind] != PAGE_FILES[page]:
        st.switch_page(RUN_PAGES[kind], query_params=st.query_params.to_dict())  # keeps ?class=, ?member=, ?quiz=
    if attempt is None:
        st.caption("Answer first, then measure it in the shapes world.")
    pending = ss[RUNS].get(q.id)
    if pending is not None:
        st.page_link(RUN_PAGES[kind], label="Running: watch it live", icon=":material/hourglass_top:")
    measured = ss[MEASURED].get(q.id)
    if measured is not None:
        show = {True: st.success, False: st.warning}.get(measured.agrees, st.info)
        show(measured.text, icon=":material/science:")


def _question(q: Question, number: int, page: str) -> None:
    attempt = progress().get(q.id)
    st.markdown(f"**{number}.** {q.prompt}")
    if q.pick == "matrix":
        _matrix_pick(q)
    elif q.pick == "quadrant":
        _quadrant_pick(q)
    else:
        _choice(q, attempt)
    if attempt is not None:
        _feedback(q, attempt)
    if q.run is not None:
        _run(q, page, attempt)


def section(page: str) -> None:
    """The page's "Check your understanding" questions; call at the very end of a teaching page.

    Args:
        page: A key of tl_core.teaching.questions.PAGES.
    """
    init()
    if st.session_state.get("class.projector"):
        return  # the projector shows the race only, not a learner's questions
    qs = questions_for(page)
    s = score(progress(), page)
    st.divider()
    st.header(":material/quiz: Check your understanding")
    st.caption(f"{len(qs)} situations from the course. Pick an answer: every answer explains itself, right or wrong. "
               f"{s.answered} of {len(qs)} answered on this page, {s.first_try} right on the first try.")
    for i, q in enumerate(qs, start=1):
        with st.container(border=True, key=f"quiz-{q.id}"):
            _question(q, i, page)


# ---- class polls (tl_core.classroom.polls) --------------------------------------------------------------------------
def _title(qid: str) -> str:
    q = get_question(qid)
    text = q.prompt.replace("**", "")
    return f"{PAGES[q.page]} · {q.id}: {text[:90]}{'…' if len(text) > 90 else ''}"


def _push(code: str, registry: Any) -> None:
    """Callback of "Push to the class"."""
    from tl_core.classroom.polls import Poll

    q = get_question(st.session_state["quiz.push.question"])
    try:
        registry.push(code, Poll(*poll_spec(q)))
    except ValueError as e:  # polls.ClassClosed is a ValueError
        st.session_state[PUSH_ERROR] = str(e)
        return
    st.session_state[PUSH_ERROR] = None


def _reveal(code: str, poll_id: str, answer: str, registry: Any) -> None:
    """Callback of "Reveal the answer"."""
    try:
        registry.reveal(code, poll_id, answer)
    except ValueError as e:
        st.session_state[PUSH_ERROR] = str(e)


def _tally(q: Question, tally: dict[str, int], answer: str | None) -> None:
    total = sum(tally.values())
    for o in q.options:
        n = tally.get(o.key, 0)
        mark = ":material/check_circle: " if answer is not None and o.key == answer else ""
        st.progress(n / total if total else 0.0, text=f"{mark}{o.label}: {n} of {total}"
                                                       + (f" ({pct(n / total)})" if total else ""))


def push_control(code: str, registry: Any = None, *, show_tally: bool = False) -> None:
    """For the instructor page: push any question to the class as a poll, reveal its answer, then explain every option.

    Args:
        code: The open class's code (tl_core.classroom.polls).
        registry: The class registry (default: tl_core.classroom.polls.get_registry()).
        show_tally: Also draw the class's votes per option (the instructor page already charts any current poll).
    """
    from tl_core.classroom.polls import get_registry

    init()
    reg = registry if registry is not None else get_registry()
    st.selectbox("Question", [q.id for q in QUESTIONS], key="quiz.push.question", format_func=_title,
                 persist_state=PERSIST, help="Any of the teaching pages' questions; students answer it in the class.")
    st.button(":material/campaign: Push to the class", key="quiz.push.go", on_click=_push, args=(code, reg))
    if st.session_state[PUSH_ERROR]:
        st.error(st.session_state[PUSH_ERROR], icon=":material/warning:")
    poll = reg.current(code)
    q = question_of_poll(poll.id) if poll is not None else None
    if q is None:
        st.caption("No question is the class's current poll.")
        return
    answer = reg.answer(code, poll.id)
    st.markdown(f"**Now asking ({q.id}):** {q.prompt}")
    if show_tally:
        _tally(q, reg.tally(code, poll.id), answer)
    if answer is None:
        st.button(":material/visibility: Reveal the answer", key="quiz.push.reveal", on_click=_reveal,
                  args=(code, poll.id, q.answer, reg))
        return
    st.markdown("\n\n".join(f"**{o.label}.** {o.explanation}" for o in q.options))
    if q.note:
        st.info(f"**The course and the literature.** {q.note}", icon=":material/menu_book:")


def _vote(code: str, member: str, qid: str, registry: Any) -> None:
    """Callback of "Send my answer"."""
    option = st.session_state.get(f"quiz.poll.{qid}.choice")
    if option is None:
        return
    try:
        registry.vote(code, poll_spec(get_question(qid))[0], member, option)
    except ValueError as e:
        st.session_state[PUSH_ERROR] = str(e)
        return
    st.session_state[PUSH_ERROR] = None


def student_form(code: str, member: str, registry: Any = None) -> bool:
    """For a student in a class: the question the instructor pushed, the answer form, and once the instructor
    reveals the answer, the explanation of the student's own answer (also counted in their progress).

    Args:
        code: The class's code.
        member: This student's opaque member token (already joined).
        registry: The class registry (default: tl_core.classroom.polls.get_registry()).

    Returns:
        Whether the class's current poll is a question of this module (False: nothing was drawn).
    """
    from tl_core.classroom.polls import get_registry

    init()
    reg = registry if registry is not None else get_registry()
    poll = reg.current(code)
    q = question_of_poll(poll.id) if poll is not None else None
    if q is None:
        return False
    st.markdown(f"**:material/campaign: Your instructor asks:** {q.prompt}")
    labels = {o.key: o.label for o in q.options}
    mine = reg.vote_of(code, poll.id, member)
    answer = reg.answer(code, poll.id)
    if answer is None:
        st.radio("Your answer", list(labels), index=None, key=f"quiz.poll.{q.id}.choice",
                 format_func=labels.__getitem__, label_visibility="collapsed")
        st.button(":material/send: Send my answer", key=f"quiz.poll.{q.id}.send", on_click=_vote,
                  args=(code, member, q.id, reg), type="primary")
        if st.session_state[PUSH_ERROR]:
            st.error(st.session_state[PUSH_ERROR], icon=":material/warning:")
        if mine is not None:
            st.caption(f"Sent: {labels[mine]}. You can change it until the answer is revealed; the explanations "
                       f"appear then.")
        return True
    if mine is None:
        st.info(f"The answer is out: **{labels[answer]}**. {q.option(answer).explanation}", icon=":material/flag:")
        return True
    if q.id not in progress():
        _answer(q.id, mine)
    _feedback(q, Attempt(mine, mine, 1))
    return True
