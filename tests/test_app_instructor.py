"""App tests for instructor mode: the instructor page, class links (?preset=&seed=), the projector view, and a preset
race that ends with commentary computed from its results and CSV downloads."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest

from tl_core.jobs import manager as jobs
from tl_core.jobs.manager import get_manager
from tl_core.classroom.presets import PRESETS, share_url

INSTRUCTOR, RACE, TRAIN, WELCOME = "pages/instructor.py", "pages/race.py", "pages/train.py", "pages/welcome.py"
ROOT = "http://localhost:8501"  # what the page falls back to when the browser's URL is unknown (AppTest)


def _warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


@pytest.fixture()
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The data of every download button drawn, by widget key."""
    seen: dict[str, str] = {}
    original = DeltaGenerator.download_button

    def spy(self: DeltaGenerator, label: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        seen[kwargs.get("key")] = data() if callable(data) else data
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    return seen


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
    assert f"{100 * keep.final_val_acc:.0f}% kept, {100 * moved.final_val_acc:.0f}% re-estimated" in notes
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
    assert screen.dataframe and any("did not move at all" in m.value for m in screen.markdown)
    assert not screen.get("download_button")
    fig = plotly_charts(screen)["Gradient norm per layer group, one panel per lane"]
    assert fig["layout"]["font"]["size"] >= 28  # large type on the projector (issue: every number at least 28 px)
    assert json.dumps(fig).count("Frozen BatchNorm") >= 2  # panels titled by lane
