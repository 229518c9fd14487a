"""The scenario questions in the app (ui.quiz): a learner answers a page's questions, each answer explains itself,
progress shows in the sidebar and survives a page switch and a reload, the download holds the answers, a runnable
answer starts the right preset race or lab sweep and shows what it measured, and an instructor pushes a question to
the class as a poll that a student answers."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from tl_core.classroom.presets import get_preset
from tl_core.jobs.manager import get_manager
from tl_core.teaching import questions as Q

TOTAL = len(Q.QUESTIONS)
WHY_OTHERS = "Why the other answers do not fit"




def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def _answered(at: AppTest) -> str:
    """The sidebar's progress line."""
    (line,) = [m.value for m in at.sidebar.markdown if m.value.startswith("**:material/quiz: Check your understanding")]
    return line.split(":** ")[1]


def _first_try(at: AppTest) -> str:
    return next(c.value for c in at.sidebar.caption if "on the first try" in c.value)


def _answer(at: AppTest, qid: str, option: str) -> AppTest:
    at.radio(key=f"quiz.{qid}.choice").set_value(option).run()
    return _ok(at)


def _finish(at: AppTest, slot: str, timeout: float = 300.0) -> None:
    """Wait for the slot's job, then re-run until the quiz has read its outcome."""
    job = get_manager().get(at.session_state[f"{slot}.job"])
    assert job is not None and job.wait(timeout), f"the {slot} job did not end in {timeout} s"
    for _ in range(20):
        if not at.session_state["quiz.runs"]:
            return
        _ok(at.run())
    raise AssertionError("the quiz never read the finished run")


# ---- a learner works through one page ------------------------------------------------------------------------------
def test_a_learner_answers_the_matrix_pages_questions_and_each_answer_explains_itself(app: AppTest, go: Callable):
    go(app, "pages/matrix.py")
    assert app.header[-1].value == ":material/quiz: Check your understanding"
    assert [c.key for c in app.main.get("flex_container") if (c.key or "").startswith("quiz-")] == \
        [f"quiz-{q.id}" for q in Q.questions_for("matrix")]
    assert _answered(app) == f"0 of {TOTAL} questions answered"
    m3 = Q.get_question("m3")

    _answer(app, "m3", "transductive")  # wrong first ...
    assert [e.value for e in app.error] == [
        f"**Transductive transfer learning** is not the keyed answer. {m3.option('transductive').explanation}"]
    assert _answered(app) == f"1 of {TOTAL} questions answered"
    assert _first_try(app).startswith("0 right on the first try, 0 right now.")
    assert not [e for e in app.expander if e.label == WHY_OTHERS]  # the keyed answer is not given away

    _answer(app, "m3", "inductive")  # ... then right: every other option and the note are shown
    assert [s.value for s in app.success] == [f"**Inductive transfer learning.** {m3.keyed.explanation}"]
    (others,) = [e for e in app.expander if e.label == WHY_OTHERS]
    assert m3.option("unsupervised").explanation in others.markdown[0].value
    assert [i.value for i in app.info if i.value.startswith("**The course and the literature.**")] == [
        f"**The course and the literature.** {m3.note}"]
    assert _first_try(app).startswith("0 right on the first try, 1 right now.")

    # a pick on the page's own widget: the matrix's four answers (by default: labels on both sides, same domain,
    # new task, i.e. multi-task learning), checked against the factory camera's situation
    app.button(key="quiz.m1.check").click().run()
    assert any(e.value.startswith("**Multi-task learning") for e in _ok(app).error)
    (differs,) = [m.value for m in app.markdown if m.value.startswith("Where your answers differ from the situation:")]
    assert "**Labels in the target domain?** You answered yes; here it is no." in differs
    assert "**The same task?** You answered no; here it is yes." in differs
    for field, value in (("target_labels", False), ("same_domain", False), ("same_task", True)):
        _ok(app.radio(key=f"matrix.{field}").set_value(value).run())
    assert any("The matrix now says: **Domain adaptation**" in c.value for c in app.caption)
    app.button(key="quiz.m1.check").click().run()
    assert any(s.value.startswith("**Domain adaptation.**") for s in _ok(app).success)

    _answer(app, "m6", "self_taught")
    assert _answered(app) == f"3 of {TOTAL} questions answered"
    assert _first_try(app).startswith("1 right on the first try, 3 right now.")

    # the rest of the page: two more picks on the matrix (the loan, the museum) and two multiple choices
    _ok(app.radio(key="matrix.same_domain").set_value(True).run())  # the loan: only the sampling differs
    app.button(key="quiz.m2.check").click().run()
    assert any(s.value.startswith(f"**{Q.get_question('m2').keyed.label}.**") for s in _ok(app).success)
    for field in ("source_labels", "same_domain", "same_task"):  # the museum: no labels anywhere
        _ok(app.radio(key=f"matrix.{field}").set_value(False).run())
    app.button(key="quiz.m5.check").click().run()
    _answer(app, "m4", "task")
    _answer(app, "m7", "none")
    assert _answered(app) == f"7 of {TOTAL} questions answered"
    assert _first_try(app).startswith("4 right on the first try, 6 right now.")
    assert any(c.value.endswith("7 of 7 answered on this page, 4 right on the first try.") for c in app.caption)
    progress = Q.decode_progress(app.query_params["quiz"])  # the URL holds the answers
    assert progress["m3"] == Q.Attempt("transductive", "inductive", 2)
    assert progress["m1"].last == "domain_adaptation" and progress["m1"].tries == 2
    assert progress["m6"] == Q.Attempt("self_taught", "self_taught", 1)
    assert progress["m5"] == Q.Attempt("unsupervised", "unsupervised", 1) and progress["m4"].last == "task"


def test_a_point_on_the_quadrant_answers_a_quadrant_question(app: AppTest, go: Callable):
    go(app, "pages/quadrant.py")
    app.radio(key="quadrant.mode").set_value("own").run()
    app.number_input(key="quadrant.own_n").set_value(500).run()
    _ok(app.radio(key="quadrant.own_similar").set_value("similar").run())
    assert any("Your point now: 500 images per class, similar" in c.value for c in app.caption)
    app.button(key="quiz.q6.check").click().run()
    assert [s.value for s in _ok(app).success if s.value.startswith("**Lots of data, similar")] == [
        f"**{Q.get_question('q6').keyed.label}.** {Q.get_question('q6').keyed.explanation}"]
    assert app.session_state["quiz.progress"]["q6"] == Q.Attempt("lots_similar", "lots_similar", 1)


# ---- progress: page switches, reloads and the download ------------------------------------------------------------
def test_progress_survives_a_page_switch_and_a_reload(app: AppTest, go: Callable, new_session: Callable):
    go(app, "pages/welcome.py")
    _answer(app, "w1", "Translation to Spanish")
    _answer(app, "w1", "Hindi sentences")
    _answer(app, "w2", "both")
    go(app, "pages/architectures.py")
    _answer(app, "a4", "224")
    go(app, "pages/welcome.py")  # back: the answers are still there
    assert app.radio(key="quiz.w1.choice").value == "Hindi sentences"
    assert _answered(app) == f"3 of {TOTAL} questions answered"
    link = app.query_params["quiz"]
    assert link == "1.w1ba2.w2aa1.a4bb1"

    reloaded = new_session(query={"quiz": link})  # a reload: a new session with the same URL
    assert _answered(reloaded) == f"3 of {TOTAL} questions answered"
    assert _first_try(reloaded).startswith("1 right on the first try, 2 right now.")
    go(reloaded, "pages/welcome.py")
    assert reloaded.radio(key="quiz.w1.choice").value == "Hindi sentences"
    assert any(s.value.startswith("**Hindi sentences.**") for s in reloaded.success)
    assert reloaded.query_params["quiz"] == link  # a page switch clears the URL; the quiz puts its part back

    damaged = new_session(query={"quiz": "1.w1aa1.zz"})
    assert _answered(damaged) == f"0 of {TOTAL} questions answered"
    assert [w.value for w in damaged.sidebar.warning] == [
        "The saved answers in the link are damaged near 'zz'; they were not restored."]


def test_the_download_holds_the_answers(app: AppTest, go: Callable, downloads: dict[str, str]):
    buttons = {b.proto.id: b for b in app.sidebar.get("download_button")}
    assert len(buttons) == 2 and all(b.proto.disabled for b in buttons.values())  # nothing to hand in yet
    go(app, "pages/race.py")
    _answer(app, "r5", "valid")
    _answer(app, "r2", "finetune_all")
    data = json.loads(downloads["quiz.download_json"])
    assert (data["answered"], data["first_try_correct"], data["correct_now"], data["total"]) == (2, 1, 1, TOTAL)
    rows = {r["question"]: r for r in data["questions"]}
    assert (rows["r5"]["first_answer"], rows["r5"]["first_try_correct"]) == (
        "Yes: any set of groups can be frozen", False)
    assert (rows["r2"]["latest_answer"], rows["r2"]["latest_correct"], rows["r2"]["tries"]) == (
        "Fine-tune all layers", True, 1)
    table = {r["question"]: r for r in csv.DictReader(io.StringIO(downloads["quiz.download_csv"]))}
    assert table["r2"]["latest_correct"] == "True" and table["w1"]["tries"] == "0"
    assert not any(b.proto.disabled for b in app.sidebar.get("download_button"))


# ---- answers you can run ---------------------------------------------------------------------------------------------
def test_a_runnable_answer_starts_its_preset_race_with_the_pick_as_the_prediction(app: AppTest, go: Callable):
    app.number_input(key="seed").set_value(3).run()
    go(app, "pages/welcome.py")
    assert app.button(key="quiz.w3.run").disabled  # answer first, then measure
    _answer(app, "w3", "scratch")
    app.button(key="quiz.w3.run").click().run()
    _ok(app)
    assert app.title[0].value.endswith("The race")  # it opened the page where the race runs
    preset = get_preset("few_similar")
    assert app.session_state["race.preset"] == "few_similar"
    job = get_manager().get(app.session_state["race.job"])
    race = job.fn
    assert [lane.key for lane in race.lanes] == preset.lane_keys
    assert race.predicted == "scratch"  # the learner's pick is the race's prediction
    assert (race.data.n_per_class, race.data.similarity, race.data.seed) == (20, 1.0, 3)
    assert app.session_state["race.pick"] == (job.id, "scratch")
    assert (app.query_params["preset"], app.query_params["seed"], app.query_params["pick"]) == (
        "few_similar", "3", "scratch")
    assert app.session_state["quiz.runs"]["w3"] == ("race", job.id, "scratch")
    get_manager().cancel(job.id)
    job.wait(120)


def test_a_finished_race_shows_what_it_measured_next_to_the_question(app: AppTest, go: Callable):
    go(app, "pages/race.py")
    _answer(app, "r3", "fixed")
    app.button(key="quiz.r3.run").click().run()
    assert _ok(app).session_state["race.preset"] == "bn_trap"
    _finish(app, "race")
    measured = app.session_state["quiz.measured"]["r3"]
    assert measured.agrees is True  # the frozen groups' BatchNorm statistics did move in the second lane
    assert any(s.value == measured.text and "BatchNorm statistics changed by up to" in s.value for s in app.success)
    go(app, "pages/welcome.py")  # kept: another page, then back
    go(app, "pages/race.py")
    assert any(s.value == measured.text for s in app.success)


def test_a_sweep_answer_starts_the_quadrant_lab_on_its_cell(app: AppTest, go: Callable):
    go(app, "pages/quadrant.py")
    _ok(app.slider(key="quadrant.similarity").set_value(0.9).run())  # 20 images per class by default
    app.button(key="quiz.q2.check").click().run()
    assert _ok(app).session_state["quiz.progress"]["q2"].last == "little_similar"
    app.button(key="quiz.q2.run").click().run()
    _ok(app)
    assert "Quadrant lab" in app.title[0].value
    job = get_manager().get(app.session_state["quadrant_lab.job"])
    config = job.fn.config
    assert (config.sizes, config.similarities, config.seeds) == ((20,), (1.0,), (0,))
    assert config.strategies == Q.get_question("q2").run.strategies
    assert app.multiselect(key="quadrant_lab.sizes").value == [20]  # the lab's own controls describe this sweep
    _finish(app, "quadrant_lab")
    measured = app.session_state["quiz.measured"]["q2"]
    assert measured.agrees is not None and measured.text.startswith(
        "Measured in the quadrant lab (20 images per class, similarity 1, seed 0): ")
    go(app, "pages/quadrant.py")  # the question shows it, agreeing or not
    shown = [a.value for a in (*app.success, *app.warning) if a.value == measured.text]
    assert shown and ("contradicts" in measured.text) == (not measured.agrees)


# ---- class polls -------------------------------------------------------------------------------------------------------
def _instructor() -> None:
    import streamlit as st

    from ui import quiz

    quiz.push_control(st.query_params["class"], show_tally=True)


def _student() -> None:
    import streamlit as st

    from ui import quiz

    if not quiz.student_form(st.query_params["class"], st.query_params["member"]):
        st.caption("no question")


def test_an_instructor_pushes_a_question_and_a_student_answers_it():
    polls = pytest.importorskip("tl_core.classroom.polls")
    reg = polls.get_registry()
    code = reg.open_class()
    reg.join(code, "student-1")
    teacher = AppTest.from_function(_instructor, default_timeout=60)
    teacher.query_params["class"] = code
    student = AppTest.from_function(_student, default_timeout=60)
    student.query_params.update({"class": code, "member": "student-1"})
    _ok(teacher.run())
    assert [c.value for c in _ok(student.run()).caption] == ["no question"]

    teacher.selectbox(key="quiz.push.question").set_value("m3").run()
    teacher.button(key="quiz.push.go").click().run()
    assert reg.current(code).id == "quiz:m3"
    _ok(student.run())
    student.radio(key="quiz.poll.m3.choice").set_value("inductive").run()
    student.button(key="quiz.poll.m3.send").click().run()
    assert reg.tally(code, "quiz:m3")["inductive"] == 1
    assert not _ok(student).success  # no explanation before the reveal

    _ok(teacher.run())
    assert "Inductive transfer learning: 1 of 1 (100%)" in [p.proto.text for p in teacher.get("progress")]
    teacher.button(key="quiz.push.reveal").click().run()
    assert reg.answer(code, "quiz:m3") == "inductive"
    _ok(student.run())
    assert [s.value for s in student.success] == [
        f"**Inductive transfer learning.** {Q.get_question('m3').keyed.explanation}"]
    assert student.session_state["quiz.progress"]["m3"] == Q.Attempt("inductive", "inductive", 1)


def test_the_projector_shows_no_learners_questions(new_session: Callable):
    screen = new_session(query={"preset": "few_similar", "view": "projector"})
    assert screen.session_state["class.projector"] is True
    assert not [h for h in screen.header if "Check your understanding" in h.value]
    assert not [b for b in screen.get("download_button") if (b.key or "").startswith("quiz.")]
    assert not [r for r in screen.radio if (r.key or "").startswith("quiz.")]
