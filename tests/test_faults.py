"""Faults and bad input on a classroom server: each gets a clear message, the session stays usable, nothing is lost.

Reload and page switches mid-run, Start and Stop twice, a diverging run, impossible epochs and batch sizes, running
out of GPU memory, a session that disappears (the reaper, on a fake clock), and the read-only assets every session
shares. AppTests drive the real pages; background runs are tiny.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tl_core.jobs.manager import get_manager
from tl_core.models.networks import ShapesNet
from tl_core.data.safe_io import session_dir
from tl_core.data.datasets import DataSpec, make_data
from tl_core.models.source import load_source_model
from ui.session import Reaper, clean_session

TRAIN, RACE, WELCOME = "pages/train.py", "pages/race.py", "pages/welcome.py"
TINY = dict(n_per_class=5, epochs=2, min_steps=10, batch_size=8)  # 20 images, 10 steps: about a second
LONG = dict(TINY, epochs=300)  # 900 steps: long enough to be caught mid-run


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def _race_my_plan_only(at: AppTest, go: Callable, strategies: list[str] | None = None) -> None:
    """On the race page: race the current plan (plus `strategies`), predicting the plan wins, and start."""
    go(at, RACE)
    at.multiselect(key="race.strategies").set_value(strategies or []).run()
    at.checkbox(key="race.own").check().run()
    at.radio(key="race.prediction").set_value("my_plan").run()
    at.button(key="race.start").click().run()
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture()
def blocked_queue():
    """Every worker slot of the manager busy until the test ends, so a new job waits in the queue."""
    mgr, release = get_manager(), threading.Event()
    blockers = [mgr.submit(lambda ctx: release.wait(60), owner=f"busy-{i}", label="train: other")
                for i in range(mgr.limit)]
    yield
    release.set()
    for job in blockers:
        assert job.wait(60)


# ---- reload and navigation mid-run -------------------------------------------------------------------------------
def test_a_reload_mid_run_adopts_the_running_job_and_can_stop_it(app: AppTest, go: Callable, train_form: Callable,
                                                                  new_session: Callable, finish_job: Callable):
    go(app, TRAIN)
    train_form(app, **LONG)
    app.button(key="train.start").click().run()
    job = get_manager().get(app.session_state["train.job"])
    assert job.active
    reloaded = new_session({"run": app.query_params["run"]})  # the same URL in a new browser session
    go(reloaded, TRAIN)
    assert reloaded.session_state["train.job"] == job.id and job.active
    assert reloaded.get("progress") and not reloaded.success  # the live view, not results
    reloaded.button(key="train.stop").click().run()
    finish_job(reloaded, "train")
    result = reloaded.session_state["train.result"].result
    assert job.state == "cancelled" and result.status == "cancelled"
    assert any("Stopped by request" in w for w in _warnings(reloaded))  # the stopped run's results are shown
    assert reloaded.button(key="train.start").disabled is False  # and the new session can train again


def test_a_reload_while_queued_shows_the_queue_position(app: AppTest, go: Callable, new_session: Callable,
                                                        blocked_queue: None):
    go(app, RACE)
    app.radio(key="race.prediction").set_value("scratch").run()
    app.button(key="race.start").click().run()
    assert any("Queued: Your run starts next" in i.value for i in app.info)
    reloaded = new_session({"run": app.query_params["run"]})
    go(reloaded, RACE)
    assert reloaded.session_state["race.job"] == app.session_state["race.job"]
    assert any("Queued: Your run starts next" in i.value for i in reloaded.info)
    assert not reloaded.get("plotly_chart")  # while queued, the live view draws only the position
    reloaded.button(key="race.stop").click().run()  # a queued race stopped from the reloaded tab
    assert get_manager().get(reloaded.session_state["race.job"]).state == "cancelled"


def test_switching_pages_mid_run_keeps_the_run_and_shows_its_results(app: AppTest, go: Callable,
                                                                     train_form: Callable):
    go(app, TRAIN)
    train_form(app, **dict(TINY, epochs=60))
    app.button(key="train.start").click().run()
    job = get_manager().get(app.session_state["train.job"])
    go(app, WELCOME)
    assert job.active  # it runs on while the learner reads another page
    assert job.wait(120) and job.state == "done"
    go(app, TRAIN)  # back: the results are there without pressing anything
    assert app.session_state["train.result"].result.status == "finished"
    assert app.success and "Validation accuracy" in app.success[0].value


# ---- buttons pressed twice --------------------------------------------------------------------------------------
def test_race_start_twice_and_stop_twice(app: AppTest, go: Callable, train_form: Callable, finish_job: Callable):
    go(app, TRAIN)
    train_form(app, **LONG)
    _race_my_plan_only(app, go)
    first = app.session_state["race.job"]
    app.radio(key="race.prediction").set_value("my_plan").run()
    app.button(key="race.start").click().run()  # Start again while it runs: the same race, nothing queued
    assert app.session_state["race.job"] == first
    assert [j.id for j in get_manager().jobs_of(get_manager().get(first).owner) if j.active] == [first]
    app.button(key="race.stop").click().run()
    app.button(key="race.stop").click().run()
    assert not app.exception
    finish_job(app, "race")
    assert any(w.startswith("My plan: Stopped by request") for w in _warnings(app))
    assert len(app.dataframe[0].value) == 1  # the stopped lane's row is kept
    app.radio(key="race.prediction").set_value("my_plan").run()
    assert app.button(key="race.start").disabled is False  # usable again


# ---- a diverging run --------------------------------------------------------------------------------------------
def test_a_huge_learning_rate_says_why_on_the_train_page(app: AppTest, go: Callable, train_form: Callable,
                                                         finish_job: Callable):
    go(app, TRAIN)
    train_form(app, **TINY, lr=100.0)  # the form allows up to 100
    app.button(key="train.start").click().run()
    finish_job(app, "train")
    result = app.session_state["train.result"].result
    assert result.status == "diverged"
    assert any("too high" in e and result.reason in e for e in _errors(app))


def test_a_diverging_lane_says_why_and_the_race_goes_on(app: AppTest, go: Callable, train_form: Callable,
                                                        finish_job: Callable):
    go(app, TRAIN)
    train_form(app, **TINY, lr=10.0)
    _race_my_plan_only(app, go, strategies=["feature_extract"])
    finish_job(app, "race")
    results = app.session_state["race.result"].results
    assert results["my_plan"].status == "diverged" and results["feature_extract"].status == "finished"
    assert any(e.startswith("My plan: The loss") and "learning rate 10 is probably too high" in e
               for e in _errors(app))
    table = app.dataframe[0].value
    assert list(table["Status"]) == ["finished", "diverged"]  # the finished lane ranks first


# ---- impossible settings ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("field,value,message", [
    ("epochs", 0, "Epochs must be a whole number from 1 to 500; got 0."),
    ("epochs", 10**6, "Epochs must be a whole number from 1 to 500"),
    ("batch_size", 10**6, "Batch size must be a whole number from 2 to 4096"),
    ("batch_size", 1, "BatchNorm needs two images to normalise over"),
    ("batch_size", 500, "Batch size 500 is larger than the 20 training images"),
])
def test_impossible_epochs_and_batch_sizes_are_refused_and_nothing_is_lost(app: AppTest, go: Callable,
                                                                           train_form: Callable, field: str,
                                                                           value: int, message: str):
    go(app, TRAIN)
    train_form(app, n_per_class=5, batch_size=8)
    plan = app.session_state["plan"]
    train_form(app, **{field: value})
    assert any(message in e for e in _errors(app)), _errors(app)
    assert app.button(key="train.start").disabled is True
    assert app.session_state["plan"] == plan  # the refused value never reaches the plan
    assert app.session_state["train.job"] is None
    train_form(app, **{field: plan[field]})
    assert not _errors(app) and app.button(key="train.start").disabled is False


# ---- out of GPU memory ------------------------------------------------------------------------------------------
class _OutOfMemoryOnce(ShapesNet):
    """The source network, except that its first forward pass on more than 8 images runs out of memory."""

    def __init__(self) -> None:
        super().__init__(6)
        self.load_state_dict(load_source_model().model.state_dict())
        self.tripped = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, H, W)
        if x.shape[0] > 8 and not self.tripped:
            self.tripped = True
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return super().forward(x)


def test_out_of_memory_halves_the_batch_and_the_page_says_so(app: AppTest, go: Callable, train_form: Callable,
                                                             finish_job: Callable,
                                                             monkeypatch: pytest.MonkeyPatch):
    base = _OutOfMemoryOnce()
    monkeypatch.setattr("tl_core.training.trainer.pretrained_base", lambda arch: base)  # what a run copies
    go(app, TRAIN)
    train_form(app, strategy="finetune_all", **dict(TINY, batch_size=16))
    app.button(key="train.start").click().run()
    finish_job(app, "train")
    result = app.session_state["train.result"].result
    assert result.status == "finished"
    notice = "Out of GPU memory: halved the batch size to 8 and carried on."
    assert [e.message for e in result.events if e.message.startswith("Out of GPU")] == [notice]
    assert any(notice in w for w in _warnings(app))  # a warning on the page, not a caption
    assert base.tripped is False  # the trainer trained a deep copy; the shared base never ran


# ---- a session that disappears ----------------------------------------------------------------------------------
def test_a_session_that_disappears_loses_its_job_and_its_folder(app: AppTest, new_session: Callable, go: Callable,
                                                                train_form: Callable):
    stayer = new_session()
    stayer.number_input(key="seed").set_value(1).run()  # another run than the leaver's: identical ones are shared
    runs = {}
    for at in (app, stayer):
        go(at, TRAIN)
        train_form(at, **LONG)
        at.button(key="train.start").click().run()
        runs[at.session_state["session.id"]] = get_manager().get(at.session_state["train.job"])
    gone, stays = app.session_state["session.id"], stayer.session_state["session.id"]
    folder = session_dir(gone)
    (folder / "upload.zip").write_bytes(b"PK")
    now = [1000.0]
    reaper = Reaper(is_alive=lambda sid: sid != gone, clock=lambda: now[0], grace=180.0, clean=clean_session)
    for sid in (gone, stays):
        reaper.register(sid)
    assert reaper.tick() == [] and runs[gone].active  # just disconnected: it may still come back
    now[0] += 179.0
    assert reaper.tick() == [] and folder.exists()
    now[0] += 1.0
    assert reaper.tick() == [gone]
    assert not folder.exists()
    assert runs[gone].wait(60) and runs[gone].state == "cancelled"
    assert get_manager().get(runs[gone].id) is None  # dropped once stopped: nothing of it stays in memory
    assert runs[stays].active  # the other learner's run goes on
    stayer.button(key="train.stop").click().run()
    assert runs[stays].wait(60)


# ---- shared read-only assets --------------------------------------------------------------------------------------
def test_every_session_shares_the_read_only_assets_and_no_run_changes_them(app: AppTest, new_session: Callable,
                                                                          go: Callable, train_form: Callable,
                                                                          finish_job: Callable):
    source = load_source_model().model
    weights = {k: v.clone() for k, v in source.state_dict().items()}
    spec = DataSpec(n_per_class=5, similarity=0.8, seed=0)  # what TINY trains on
    train_x = make_data(spec)[0].x.clone()
    second = new_session()
    for at, strategy in ((app, "finetune_all"), (second, "finetune_top")):
        go(at, TRAIN)
        train_form(at, strategy=strategy, **TINY)
        at.button(key="train.start").click().run()
        finish_job(at, "train")
        assert at.session_state["train.result"].data == spec
    assert load_source_model().model is source  # loaded once per process ...
    assert all(torch.equal(weights[k], v) for k, v in source.state_dict().items())  # ... and never trained
    assert make_data(spec)[0] is make_data(spec)[0] and torch.equal(make_data(spec)[0].x, train_x)

    def show_model_id() -> None:
        import streamlit as st

        from ui.cached import shapes_model

        st.write(f"model {id(shapes_model())}")

    ids = set()
    for _ in range(2):  # two sessions, the cache_resource the pages use
        at = AppTest.from_function(show_model_id, default_timeout=60).run()
        ids.add(at.markdown[0].value)
    assert len(ids) == 1


# ---- the classroom server --------------------------------------------------------------------------------------
def test_no_full_garbage_collection_after_every_redraw():
    import tomllib
    from pathlib import Path

    from streamlit import config

    # A gc.collect() after every live redraw starved concurrent races: the server's config turns it off.
    settings = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert settings["runner"]["postScriptGC"] is False
    assert config.get_option("runner.postScriptGC") in (True, False)  # a real Streamlit option, not a typo


def test_the_job_log_records_each_runs_queue_wait_and_execution_time(tmp_path, monkeypatch: pytest.MonkeyPatch):
    from tl_core.jobs.manager import JobManager

    log = tmp_path / "jobs.jsonl"
    monkeypatch.setenv("TLP_JOB_LOG", str(log))
    mgr, gate = JobManager(limit=1), threading.Event()
    first = mgr.submit(lambda ctx: gate.wait(30), owner="a", label="race: first")
    second = mgr.submit(lambda ctx: None, owner="b", label="train: second")
    assert second.state == "queued"  # it waits for the first
    gate.set()
    assert first.wait(30) and second.wait(30)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["id"], r["label"], r["state"]) for r in lines] == [(first.id, "race: first", "done"),
                                                                  (second.id, "train: second", "done")]
    assert lines[1]["wait_s"] == pytest.approx(second.started - second.submitted, abs=1e-3)
    assert lines[0]["exec_s"] == pytest.approx(first.finished - first.started, abs=1e-3)
