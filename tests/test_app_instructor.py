"""App tests for instructor mode: the instructor page, class links (?preset=&seed=&class=), the class poll, shared
races, the projector view (whose results always belong to the scenario it shows), a reload that restores what the run
depends on, and a preset race that ends with commentary computed from its results and CSV downloads."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from tl_core.classroom.polls import get_registry, race_poll_id
from tl_core.classroom.presets import PRESETS, share_url
from tl_core.fmt import accuracy
from tl_core.jobs import manager as jobs
from tl_core.jobs.manager import get_manager

INSTRUCTOR, RACE, TRAIN, WELCOME = "pages/instructor.py", "pages/race.py", "pages/train.py", "pages/welcome.py"
ROOT = "http://localhost:8501"  # what the page falls back to when the browser's URL is unknown (AppTest)


def _warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]




# ---- the instructor page ----------------------------------------------------------------------------------------
def test_the_instructor_page_lists_every_preset_with_its_link(app: AppTest, go: Callable):
    go(app, INSTRUCTOR)
    assert app.title[0].value == ":material/cast_for_education: Instructor"
    assert [s.value for s in app.subheader] == [p.title for p in PRESETS.values()]
    links = [c.value for c in app.code]
    for p in PRESETS.values():
        assert share_url(ROOT, p.key, 0) in links and share_url(ROOT, p.key, 0, projector=True) in links
    assert any(p.watch_for in m.value for p in PRESETS.values() for m in app.markdown)
    get_manager()  # a run has created it
    app.run()
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Runs at once (limit)"] == str(get_manager().limit)
    app.number_input(key="instructor.seed").set_value(7).run()
    assert share_url(ROOT, "bn_trap", 7) in [c.value for c in app.code]
    assert app.session_state["seed"] == 0  # the class seed is for the links; this session's seed is unchanged


def test_open_it_here_puts_this_session_on_the_preset_and_leaving_it_gives_the_lanes_back(app: AppTest,
                                                                                        go: Callable):
    go(app, INSTRUCTOR)
    app.number_input(key="instructor.seed").set_value(4).run()
    app.button(key="instructor.open.bn_trap").click().run()
    assert not app.exception and app.title[0].value == ":material/sports_score: The race"
    assert app.session_state["seed"] == 4 and app.session_state["plan"]["seed"] == 4
    assert list(app.radio(key="race.prediction").options) == [lane.label for lane in PRESETS["bn_trap"].lanes]
    assert not [w for w in app.multiselect if w.key == "race.strategies"]  # the preset fixes the lanes
    assert any("Class preset: BatchNorm trap" in i.value for i in app.info)
    go(app, RACE)  # (AppTest would otherwise rerun the page it last switched to itself)
    app.button(key="race.leave_preset").click().run()
    assert app.session_state["race.preset"] is None
    assert app.multiselect(key="race.strategies").value == ["feature_extract", "finetune_top", "finetune_all",
                                                            "scratch"]


def test_the_instructor_page_does_not_create_the_job_manager(app: AppTest, go: Callable,
                                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(jobs, "_MANAGER", None)  # a fresh server: no run yet
    go(app, INSTRUCTOR)
    assert jobs.peek_manager() is None  # created by the first run (after torch is loaded, so a GPU is seen)
    assert any("No run has started on this server yet" in c.value for c in app.caption)


# ---- class links -------------------------------------------------------------------------------------------------
def test_a_class_link_sets_the_seed_the_data_and_the_race_lanes_once(new_session: Callable, go: Callable):
    student = new_session({"preset": "little_different", "seed": "3"})
    ss = student.session_state
    assert (ss["seed"], ss["plan"]["seed"], ss["data.n_per_class"], ss["data.similarity"]) == (3, 3, 20, 0.25)
    assert not _warnings(student)
    go(student, RACE)
    preset = PRESETS["little_different"]
    assert list(student.radio(key="race.prediction").options) == [lane.label for lane in preset.lanes]
    assert any(preset.watch_for in m.value for m in student.markdown)
    assert student.button(key="race.start").disabled is True  # predict first, as always
    go(student, TRAIN)
    assert student.slider(key="train.n_per_class").value == 20
    assert student.slider(key="train.similarity").value == pytest.approx(0.25)
    student.number_input(key="seed").set_value(9).run()  # the student's own change survives the link
    student.run()
    assert student.session_state["seed"] == 9 and student.session_state["race.preset"] == "little_different"


@pytest.mark.parametrize("query,refused", [
    ({"preset": "nope", "seed": "x"}, ["Unknown preset 'nope'", "got 'x'"]),
    ({"preset": "bn_trap", "seed": "-2"}, ["got '-2'"]),
    ({"view": "cinema"}, ["knows 'projector' and 'normal'"]),
])
def test_bad_links_say_what_is_wrong_and_keep_the_rest(new_session: Callable, query: dict, refused: list[str]):
    student = new_session(query)
    warnings = _warnings(student)
    for part in refused:
        assert any(part in w for w in warnings), warnings
    ss = student.session_state
    assert ss["seed"] == 0 and ss["class.projector"] is False  # refused parts change nothing
    if query.get("preset") == "bn_trap":  # the valid part is applied
        assert ss["race.preset"] == "bn_trap" and ss["data.similarity"] == 0.5
    else:
        assert ss["race.preset"] is None and (ss["data.n_per_class"], ss["data.similarity"]) == (20, 0.8)


# ---- the projector ----------------------------------------------------------------------------------------------
def test_the_projector_view_shows_only_the_race_large_and_can_be_left(new_session: Callable, go: Callable):
    screen = new_session({"preset": "few_similar", "seed": "2", "view": "projector"})
    assert screen.title[0].value == ":material/sports_score: Few and similar"  # the app went straight to the race
    css = [h.proto.body for h in screen.get("html")]
    assert any('[data-testid="stSidebar"]' in c and "display: none" in c and "font-size" in c for c in css)
    assert screen.toggle(key="class.projector").value is True
    assert not [w for w in screen.multiselect] and not [i for i in screen.info if "Class preset" in i.value]
    go(screen, WELCOME)  # any other page: the projector stays on the race
    assert screen.title[0].value == ":material/sports_score: Few and similar"
    go(screen, RACE)
    screen.button(key="race.leave_projector").click().run()
    assert screen.session_state["class.projector"] is False and "view" not in screen.query_params
    assert screen.session_state["race.preset"] == "few_similar" and screen.session_state["seed"] == 2
    assert not [h for h in screen.get("html") if "stSidebar" in h.proto.body]
    assert screen.title[0].value == ":material/sports_score: The race" and any("Class preset" in i.value for i in screen.info)


# ---- a preset race -----------------------------------------------------------------------------------------------
def test_a_preset_race_ends_with_commentary_from_its_results_and_csv_downloads(new_session: Callable, go: Callable,
                                                                               finish_job: Callable,
                                                                               plotly_charts: Callable,
                                                                               downloads: dict[str, str]):
    student = new_session({"preset": "bn_trap", "seed": "1"})
    go(student, RACE)
    student.radio(key="race.prediction").set_value("bn_keep").run()
    student.button(key="race.start").click().run()
    finish_job(student, "race")
    outcome = student.session_state["race.result"]
    keep, moved = outcome.results["bn_keep"], outcome.results["bn_reestimate"]
    assert [s.value for s in student.subheader] == [":material/school: BatchNorm trap: what this race showed"]
    notes = next(m.value for m in student.markdown if "did not move at all" in m.value)
    frozen = list(keep.frozen)
    mean = sum(moved.bn_drift[g] for g in frozen) / len(frozen)
    assert f"by {mean:.0%} on average when re-estimated" in notes  # the numbers are this run's
    assert f"{accuracy(keep.final_val_acc)} kept, {accuracy(moved.final_val_acc)} re-estimated" in notes
    assert ":material/psychology_alt: Your pick: **Frozen BatchNorm kept (eval)**" in [m.value for m in
                                                                                     student.markdown]
    table = student.dataframe[0].value
    assert set(table["Strategy"]) == {"Frozen BatchNorm kept (eval)", "Frozen BatchNorm re-estimated (train)"}
    curves = plotly_charts(student)["Validation accuracy per epoch, every lane (final)"]
    assert {t["name"] for t in curves["data"]} == set(table["Strategy"])  # legends name the lanes
    rows = list(csv.DictReader(io.StringIO(downloads["race.download_table"])))
    assert {r["lane"] for r in rows} == {"bn_keep", "bn_reestimate"}
    assert {r["seed"] for r in rows} == {"1"} and {r["similarity"] for r in rows} == {"0.5"}
    by_lane = {r["lane"]: float(r["accuracy"]) for r in rows}
    assert by_lane == {"bn_keep": keep.final_val_acc, "bn_reestimate": moved.final_val_acc}
    history = list(csv.DictReader(io.StringIO(downloads["race.download_history"])))
    assert len(history) == len(keep.epochs) + len(moved.epochs) and history[0]["epoch"] == "1"


def test_the_projector_shows_the_finished_race_without_the_downloads(new_session: Callable, finish_job: Callable,
                                                                     plotly_charts: Callable):
    screen = new_session({"preset": "bn_trap", "seed": "1", "view": "projector"})
    screen.radio(key="race.prediction").set_value("bn_reestimate").run()
    screen.button(key="race.start").click().run()
    finish_job(screen, "race")
    outcome = screen.session_state["race.result"]
    table = next(m.value for m in screen.markdown if "| Lane | Validation accuracy |" in m.value)
    for lane in outcome.lanes:  # one row per lane, with the accuracy as large as the rest of the projector's text
        assert f"| {lane.label} | **{accuracy(outcome.results[lane.key].final_val_acc)}** |" in table
    assert not screen.dataframe and not screen.get("download_button")  # wall time, parameters: students' screens
    assert not any("did not move at all" in m.value for m in screen.markdown)  # bullets too
    figs = plotly_charts(screen)
    assert "Gradient norm per layer group, one panel per lane" not in figs  # heatmaps too
    fig = figs["Validation accuracy per epoch (final)"]
    sizes = [fig["layout"]["font"]["size"], fig["layout"]["xaxis"]["tickfont"]["size"],
             fig["layout"]["yaxis"]["tickfont"]["size"], fig["layout"]["legend"]["font"]["size"]]
    assert min(sizes) >= 28  # every number that matters at least 28 px
    css = next(h.proto.body for h in screen.get("html") if "stSidebar" in h.proto.body)
    assert "font-size: 30px" in css  # the projector's text (table and lines), see ui.render.PROJECTOR_CSS


def test_view_projector_is_read_in_any_case(new_session: Callable):
    screen = new_session({"preset": "Few_Similar", "seed": "2", "view": "PROJECTOR"})
    assert not _warnings(screen) and screen.session_state["class.projector"] is True
    assert screen.title[0].value == ":material/sports_score: Few and similar"


def _shown_results(at: AppTest) -> bool:
    return any("won with" in m.value for m in at.markdown) or bool(at.dataframe)


def test_the_projector_never_shows_an_earlier_race_under_another_scenario(new_session: Callable, go: Callable,
                                                                          finish_job: Callable):
    screen = new_session({"preset": "bn_trap", "seed": "1", "view": "projector"})
    screen.radio(key="race.prediction").set_value("bn_keep").run()
    screen.button(key="race.start").click().run()
    finish_job(screen, "race")
    assert _shown_results(screen)
    screen.query_params["preset"], screen.query_params["seed"] = "few_similar", "7"  # the next scenario's link
    screen.run()
    assert screen.title[0].value == ":material/sports_score: Few and similar"
    assert any("(seed 7)" in m.value for m in screen.markdown)
    assert not _shown_results(screen) and not screen.get("plotly_chart")  # the earlier race is not this one
    go(screen, INSTRUCTOR)  # the instructor puts the trap back on the projector: its race is this one again
    screen.query_params["preset"], screen.query_params["seed"] = "bn_trap", "1"
    screen.run()
    assert screen.title[0].value == ":material/sports_score: BatchNorm trap" and _shown_results(screen)
    screen.button(key="race.leave_projector").click().run()  # a student's view obeys the same rule
    go(screen, RACE)
    assert _shown_results(screen)
    screen.number_input(key="seed").set_value(2).run()
    assert not _shown_results(screen)
    assert any("Your last race ran other settings (BatchNorm trap, 20 images per class at similarity 0.5, seed 1)"
               in c.value for c in screen.caption)


# ---- reloads -------------------------------------------------------------------------------------------------------
def test_a_reload_mid_race_shows_the_run_with_its_own_preset_seed_and_pick(new_session: Callable, go: Callable):
    student = new_session({"preset": "little_different", "seed": "3"})
    go(student, RACE)
    student.radio(key="race.prediction").set_value("scratch").run()
    student.button(key="race.start").click().run()
    job_id = student.session_state["race.job"]
    assert ":material/psychology_alt: Your pick: **Re-train from scratch**" in [m.value for m in student.markdown]
    url = dict(student.query_params)
    assert {k: url[k] for k in ("preset", "seed", "pick")} == {"preset": "little_different", "seed": "3",
                                                               "pick": "scratch"} and "run" in url
    try:
        for query in (url, {"run": url["run"], "pick": url["pick"]}):  # a plain reload, and an address left with ?run=
            tab = new_session(query)
            ss = tab.session_state
            assert ss["race.job"] == job_id and ss["race.preset"] == "little_different"
            assert (ss["seed"], ss["plan"]["seed"], ss["data.n_per_class"], ss["data.similarity"]) == (3, 3, 20, 0.25)
            go(tab, RACE)
            assert any("Class preset: Little and different" in i.value for i in tab.info)
            assert any("(seed 3)" in m.value for m in tab.markdown)
            assert ":material/psychology_alt: Your pick: **Re-train from scratch**" in [m.value for m in tab.markdown]
            assert get_manager().get(job_id).active  # the same run, still going: nothing raced twice
    finally:
        get_manager().cancel(job_id)


# ---- shared races and the class poll --------------------------------------------------------------------------
def test_two_students_on_one_link_share_one_race_and_stop_only_leaves_it(new_session: Callable, go: Callable):
    link = {"preset": "little_different", "seed": "11"}
    a, b = new_session(link), new_session(link)
    for s, pick in ((a, "scratch"), (b, "early_classifier")):
        go(s, RACE)
        s.radio(key="race.prediction").set_value(pick).run()
        s.button(key="race.start").click().run()
    job = get_manager().get(a.session_state["race.job"])
    try:
        assert b.session_state["race.job"] == job.id and get_manager().sharers(job) == 2
        a.run()
        assert any("for you and 1 classmate" in c.value for c in a.caption)
        a.button(key="race.stop").click().run()  # a leaves; the race goes on for b
        assert a.session_state["race.job"] is None and not job.cancel_event.is_set()
        assert any("it goes on for 1 classmate" in i.value for i in a.info)
        b.button(key="race.stop").click().run()  # the last one leaves: the race stops
        assert job.wait(60) and job.state == "cancelled"
    finally:
        get_manager().cancel(job.id)


def test_a_class_poll_is_tallied_live_survives_reloads_and_is_revealed(new_session: Callable, go: Callable,
                                                                       finish_job: Callable, plotly_charts: Callable):
    teacher = new_session()
    go(teacher, INSTRUCTOR)
    teacher.button(key="instructor.class.open").click().run()
    code = teacher.session_state["class.code"]
    assert get_registry().is_open(code) and teacher.session_state["class.member"] is None  # leads, not counted
    links = [c.value for c in teacher.code]
    assert share_url(ROOT, "bn_trap", 0, class_code=code) in links
    teacher.button(key="instructor.ask.bn_trap").click().run()
    poll_id = race_poll_id("bn_trap", 0)
    students = []
    for pick in ("bn_keep", "bn_reestimate", "bn_reestimate"):
        s = new_session({"preset": "bn_trap", "seed": "0", "class": code.lower()})
        go(s, RACE)
        s.radio(key="race.prediction").set_value(pick).run()
        students.append(s)
    assert get_registry().members(code) == 3 and get_registry().tally(code, poll_id) == {"bn_keep": 1,
                                                                                        "bn_reestimate": 2}
    teacher.run()
    tally = next(f for t, f in plotly_charts(teacher).items() if t.startswith("The class's predictions"))
    assert tally["data"][0]["x"] == [1, 2] and "(3 students)" in tally["layout"]["title"]["text"]
    reloaded = new_session(dict(students[1].query_params))  # a student reloads: the same member, the same vote
    go(reloaded, RACE)
    assert reloaded.radio(key="race.prediction").value == "bn_reestimate"
    reloaded.radio(key="race.prediction").set_value("bn_keep").run()  # changes their mind: the vote is replaced
    assert get_registry().members(code) == 3 and get_registry().tally(code, poll_id) == {"bn_keep": 2,
                                                                                        "bn_reestimate": 1}
    go(teacher, INSTRUCTOR)
    teacher.button(key="instructor.project.bn_trap").click().run()  # the projector: the class predicts, not it
    assert teacher.session_state["class.projector"] is True and not teacher.get("radio")
    projected = plotly_charts(teacher)
    assert any(t.startswith("The class's predictions (3 students)") for t in projected)
    assert teacher.button(key="race.start").disabled is False
    teacher.button(key="race.start").click().run()
    finish_job(teacher, "race")
    outcome = teacher.session_state["race.result"]
    won = max(outcome.results, key=lambda k: outcome.results[k].final_val_acc)
    got = {"bn_keep": 2, "bn_reestimate": 1}[won]
    line = f"{PRESETS['bn_trap'].label(won)} won: {got} of 3 predicted it."
    assert any(line in m.value for m in teacher.markdown)
    table = next(m.value for m in teacher.markdown if "Predicted by" in m.value)
    assert f"| {PRESETS['bn_trap'].label(won)} |" in table and get_registry().answer(code, poll_id) == won
    teacher.button(key="race.leave_projector").click().run()
    go(teacher, INSTRUCTOR)
    assert any(line in s.value for s in teacher.success)  # the instructor page shows the reveal too


def test_an_expired_class_link_says_so_and_keeps_the_rest(new_session: Callable, monkeypatch: pytest.MonkeyPatch):
    registry = get_registry()
    code = registry.open_class()
    monkeypatch.setattr(registry, "ttl_s", 0.0)  # it has expired
    student = new_session({"preset": "bn_trap", "seed": "2", "class": code})
    assert any(f"The class {code} has ended" in w for w in _warnings(student))
    assert student.session_state["class.code"] is None and student.session_state["race.preset"] == "bn_trap"


def test_a_pushed_question_reaches_the_students_page_and_is_tallied_then_explained(new_session: Callable,
                                                                                     go: Callable):
    from tl_core.teaching.questions import QUESTIONS, poll_spec

    teacher = new_session()
    go(teacher, INSTRUCTOR)
    teacher.button(key="instructor.class.open").click().run()
    code = teacher.session_state["class.code"]
    q = QUESTIONS[0]
    teacher.selectbox(key="quiz.push.question").set_value(q.id).run()
    teacher.button(key="quiz.push.go").click().run()
    poll = get_registry().current(code)
    assert poll is not None and poll.id == poll_spec(q)[0]
    student = new_session({"preset": "few_similar", "seed": "0", "class": code})  # any page of a class member
    assert any(q.prompt in m.value for m in student.markdown)
    wrong = next(o for o in q.options if o.key != q.answer)
    student.radio(key=f"quiz.poll.{q.id}.choice").set_value(wrong.key).run()
    student.button(key=f"quiz.poll.{q.id}.send").click().run()
    assert get_registry().tally(code, poll.id)[wrong.key] == 1
    teacher.button(key="quiz.push.reveal").click().run()
    student.run()
    shown = [e.value for kind in (student.markdown, student.error, student.info, student.warning) for e in kind]
    assert any(wrong.explanation[:40] in t for t in shown)
