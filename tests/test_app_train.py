"""App tests for the Train and Race pages: widgets driven by key, real background runs, charts read from the page."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from tl_core.jobs.manager import get_manager

TRAIN, RACE = "pages/train.py", "pages/race.py"
GROUPS = ("block1", "block2", "block3", "block4", "head")


def _tiny_form(at: AppTest) -> None:
    """5 images per class, 2 epochs, at least 10 steps of 8 images: a run of about a second."""
    at.slider(key="train.n_per_class").set_value(5).run()
    at.number_input(key="train.epochs").set_value(2)
    at.number_input(key="train.min_steps").set_value(10)
    at.number_input(key="train.batch_size").set_value(8).run()
    assert not at.exception and not at.error, [e.value for e in at.error]


def _trained(app: AppTest, go: Callable, finish_job: Callable) -> AppTest:
    go(app, TRAIN)
    _tiny_form(app)
    app.button(key="train.start").click().run()
    assert not app.exception
    job = finish_job(app, "train")
    assert job.state == "done"
    return app


# ---- smoke -----------------------------------------------------------------------------------------------------
def test_train_and_race_pages_render(app: AppTest, go: Callable, plotly_charts: Callable):
    go(app, TRAIN)
    assert app.title[0].value == ":material/fitness_center: Train live"
    assert app.button(key="train.start").disabled is False
    assert any("What trains in shapesnet" in t for t in plotly_charts(app))  # the plan's groups
    go(app, RACE)
    assert app.title[0].value == ":material/sports_score: The race"
    assert app.multiselect(key="race.strategies").value == ["feature_extract", "finetune_top", "finetune_all",
                                                            "scratch"]
    assert app.button(key="race.start").disabled is True  # predict before reveal
    app.radio(key="race.prediction").set_value("scratch").run()
    assert app.button(key="race.start").disabled is False


# ---- the plan form ----------------------------------------------------------------------------------------------
def test_form_follows_each_strategys_rules_and_edits_the_plan(app: AppTest, go: Callable):
    go(app, TRAIN)
    app.selectbox(key="train.strategy").set_value("feature_extract").run()
    frozen = app.multiselect(key="train.frozen")
    assert frozen.value == ["block1", "block2", "block3", "block4"] and frozen.disabled
    assert app.session_state["plan"]["strategy"] == "feature_extract"
    app.selectbox(key="train.strategy").set_value("early_classifier").run()
    assert app.selectbox(key="train.cut_after").value == "block2"
    app.selectbox(key="train.cut_after").set_value("block3").run()
    assert app.multiselect(key="train.frozen").value == ["block1", "block2", "block3"]
    assert [n.label for n in app.number_input if n.key.startswith("train.mult.")] == ["block1", "block2", "block3",
                                                                                       "head"]
    app.selectbox(key="train.strategy").set_value("finetune_top").run()
    app.multiselect(key="train.frozen").set_value(["block2"]).run()  # not a prefix of the network
    assert any("Freeze a prefix of the network" in e.value for e in app.error)
    app.multiselect(key="train.frozen").set_value(["block1", "block2"])
    app.radio(key="train.bn_policy").set_value("train")
    app.number_input(key="train.unfreeze_every").set_value(3)
    app.number_input(key="train.mult.block3").set_value(0.25).run()
    assert not app.error
    plan = app.session_state["plan"]
    assert (plan["frozen"], plan["bn_policy"], plan["unfreeze_every"]) == (["block1", "block2"], "train", 3)
    assert plan["lr_mult"]["block3"] == 0.25 and plan["lr_mult"]["head"] == 10.0
    assert "frozen: block1, block2" in app.sidebar.caption[0].value  # the app-wide plan follows the form


def test_picking_an_architecture_applies_its_fine_tuning_recipe(app: AppTest, go: Callable):
    from tl_core.training.plan import recipe_for

    go(app, TRAIN)
    assert app.number_input(key="train.lr").value == recipe_for("shapesnet").lr  # ShapesNet's own tuned recipe
    app.selectbox(key="train.arch").set_value("resnet18").run()
    resnet = recipe_for("resnet18")
    assert app.number_input(key="train.lr").value == resnet.lr != recipe_for("shapesnet").lr
    assert app.selectbox(key="train.optimizer").value == resnet.optimizer
    assert resnet.name in app.number_input(key="train.lr").help
    app.selectbox(key="train.strategy").set_value("scratch").run()  # every weight random: the recipe's scratch rate
    assert app.number_input(key="train.lr").value == resnet.scratch_lr


def test_queued_run_says_how_many_runs_are_ahead(app: AppTest, go: Callable, finish_job: Callable):
    mgr = get_manager()
    release = threading.Event()
    blockers = [mgr.submit(lambda ctx: release.wait(60), owner=f"busy-{i}", label="train: other") for i in
                range(mgr.limit)]  # every worker slot is taken ...
    waiting = mgr.submit(lambda ctx: None, owner="another-learner", label="train: other")  # ... and one waits
    try:
        go(app, TRAIN)
        _tiny_form(app)
        app.button(key="train.start").click().run()
        assert any("Queued: 1 run ahead of you" in i.value for i in app.info)
    finally:
        release.set()
    for job in (*blockers, waiting):
        assert job.wait(60)
    assert finish_job(app, "train").state == "done"
    assert not any("Queued" in i.value for i in app.info)


# ---- a run on the Train page ------------------------------------------------------------------------------------
def test_short_run_draws_charts_with_one_heatmap_row_per_group(app: AppTest, go: Callable, finish_job: Callable,
                                                                plotly_charts: Callable):
    _trained(app, go, finish_job)
    result = app.session_state["train.result"].result
    assert result.status == "finished" and result.groups == GROUPS
    charts = plotly_charts(app)
    heat = charts["Gradient norm per layer group and step"]
    (trace,) = [t for t in heat["data"] if t["type"] == "heatmap"]
    assert len(trace["y"]) == len(trace["z"]) == len(GROUPS)
    assert [("frozen" in y) for y in trace["y"]] == [g in result.frozen for g in GROUPS]
    assert len(trace["x"]) == len(result.steps)
    for title in ("Loss and accuracy per epoch", "Update-to-weight ratio per layer group",
                  "Confusion matrix (validation images)", "Accuracy per class (validation images)",
                  "How far each layer group moved from its starting weights"):
        assert title in charts
    confusion = next(t for t in charts["Confusion matrix (validation images)"]["data"] if t["type"] == "heatmap")
    assert sum(map(sum, confusion["z"])) == 200  # 50 validation images per class, 4 classes
    takeaways = [c.value for c in app.caption if c.value.startswith("**Takeaway:**")]
    assert any("Frozen block1, block2 and block3 had no gradient" in t for t in takeaways)
    gallery = app.image[-1].captions  # the misclassified validation images, worst first
    top = result.evaluation.top_losses
    assert len(gallery) == min(8, len(top)) > 0
    assert gallery[0].startswith(f"{top[0]['true']} → {top[0]['pred']}")
    assert "import torch" in app.code[0].value  # show the code, for this very run (32 px shapes-world images)
    assert {b.proto.label for b in app.get("download_button")} >= {":material/download: Trained weights (.pt)",
                                                                   ":material/show_chart: History per epoch (.csv)"}
    assert app.success and "Validation accuracy" in app.success[0].value
    # 5 images per class at batch 8 make 3 steps an epoch: the plan's 2 epochs were raised to reach 10 steps, and
    # the result says so after the run (not only while it lasted)
    ran = next(c.value for c in app.caption if "Ran " in c.value)
    assert f"Ran {result.epochs_run} epochs ({result.steps_run} optimiser steps)" in ran
    assert result.epochs_run > 2 and "instead of 2" in ran and result.steps_run >= 10


def test_invalid_plan_shows_the_error_and_keeps_previous_results(app: AppTest, go: Callable, finish_job: Callable,
                                                                 plotly_charts: Callable):
    _trained(app, go, finish_job)
    before = app.session_state["train.result"]
    plan_before = app.session_state["plan"]
    app.number_input(key="train.lr").set_value(0.0).run()
    assert not app.exception
    assert any("learning rate must be a positive number" in e.value for e in app.error)
    assert app.button(key="train.start").disabled is True
    assert app.session_state["plan"] == plan_before  # the invalid form never becomes the plan
    assert app.session_state["train.result"] is before
    assert "Gradient norm per layer group and step" in plotly_charts(app)  # the previous results are still shown
    app.number_input(key="train.lr").set_value(0.003)
    app.number_input(key="train.batch_size").set_value(500).run()
    assert any("larger than the 20 training images" in e.value for e in app.error)
    assert app.button(key="train.start").disabled is True and app.session_state["train.result"] is before
    app.number_input(key="train.batch_size").set_value(8).run()
    assert not app.error and app.button(key="train.start").disabled is False


def test_start_twice_and_stop_twice_do_not_raise(app: AppTest, go: Callable, finish_job: Callable):
    go(app, TRAIN)
    _tiny_form(app)
    app.number_input(key="train.epochs").set_value(300).run()  # long enough to be stopped
    app.button(key="train.start").click().run()
    first = app.session_state["train.job"]
    assert app.button(key="train.start").disabled is True  # a second Start cannot be pressed while it runs
    assert app.session_state["train.job"] == first
    app.button(key="train.stop").click().run()
    app.button(key="train.stop").click().run()
    assert not app.exception
    job = finish_job(app, "train")
    assert job.state in ("cancelled", "done")
    assert app.session_state["train.result"].result.status in ("cancelled", "finished")
    app.button(key="train.stop").click().run()  # Stop with nothing running
    assert not app.exception


def test_diverging_run_says_why(app: AppTest, go: Callable, finish_job: Callable):
    go(app, TRAIN)
    _tiny_form(app)
    app.number_input(key="train.lr").set_value(10.0).run()
    app.button(key="train.start").click().run()
    finish_job(app, "train")
    result = app.session_state["train.result"].result
    assert result.status == "diverged" and result.evaluation is None
    assert any(result.reason in e.value for e in app.error)
    captions = [c.value for c in app.caption]
    assert not any("Waiting for the first epoch" in c for c in captions)  # the run is over: no chart waits for it
    assert any("diverged" in c.lower() for c in captions if c.startswith("**Takeaway:**"))


def test_reload_picks_the_finished_run_up_again(app: AppTest, go: Callable, finish_job: Callable):
    _trained(app, go, finish_job)
    run_param = app.query_params["run"]
    job_id = app.session_state["train.job"]
    assert run_param.startswith(f"{job_id}-")
    fresh = AppTest.from_file(app._script_path, default_timeout=60)  # a new browser session, same URL
    fresh.query_params["run"] = run_param
    fresh.run()
    go(fresh, TRAIN)
    assert fresh.session_state["train.job"] == job_id
    assert fresh.session_state["train.result"].result is app.session_state["train.result"].result
    forged = AppTest.from_file(app._script_path, default_timeout=60)
    forged.query_params["run"] = f"{job_id}-" + "0" * 20  # a wrong token adopts nothing
    forged.run()
    go(forged, TRAIN)
    assert forged.session_state["train.job"] is None


def _long_run(app: AppTest, go: Callable, strategy: str = "finetune_all") -> None:
    """Start a run long enough to be seen while it trains: 5 per class, all layers, 300 epochs."""
    go(app, TRAIN)
    _tiny_form(app)
    app.selectbox(key="train.strategy").set_value(strategy).run()
    app.number_input(key="train.epochs").set_value(300).run()
    app.button(key="train.start").click().run()
    assert not app.exception and app.session_state["train.job"] is not None


def test_a_running_plan_is_shown_frozen_and_start_says_why_it_is_off(app: AppTest, go: Callable,
                                                                     finish_job: Callable):
    _long_run(app, go)
    app.number_input(key="train.epochs").set_value(3).run()  # an edit while the run trains
    running = next(i.value for i in app.info if i.value.startswith("**Running now:**"))
    assert "Fine-tune all layers" in running and "300 epochs" in running and "3 epochs" not in running
    assert "5 target images per class" in running and "Edits below apply to your next run" in running
    start = app.button(key="train.start")
    assert start.disabled is True and "A run is going" in start.help
    app.button(key="train.stop").click().run()
    finish_job(app, "train")
    assert app.button(key="train.start").disabled is False  # the edit now applies to the next run
    assert any(m.value.startswith("**Plan:**") and "3 epochs" in m.value for m in app.markdown)


def test_a_reload_mid_run_restores_the_runs_plan_data_and_seed(app: AppTest, go: Callable, finish_job: Callable):
    app.number_input(key="seed").set_value(7).run()
    _long_run(app, go)
    fresh = AppTest.from_file(app._script_path, default_timeout=60)  # the student reloads the tab
    fresh.query_params["run"] = app.query_params["run"]
    fresh.run()
    go(fresh, TRAIN)
    assert not fresh.exception
    assert fresh.session_state["train.job"] == app.session_state["train.job"]
    assert fresh.session_state["train.strategy"] == "finetune_all"  # the form shows the run's plan ...
    assert fresh.session_state["data.n_per_class"] == 5 and fresh.session_state["train.n_per_class"] == 5  # ... data
    assert fresh.session_state["seed"] == 7 and fresh.number_input(key="seed").value == 7  # ... and seed
    assert any(i.value.startswith("**Running now:**") and "Fine-tune all layers" in i.value for i in fresh.info)
    app.button(key="train.stop").click().run()
    assert finish_job(app, "train").state in ("cancelled", "done")


def test_the_expected_time_is_measured_for_the_plan_on_screen(app: AppTest, go: Callable):
    go(app, TRAIN)
    _tiny_form(app)
    small = next(c.value for c in app.caption if "Expected time" in c.value)
    app.selectbox(key="train.arch").set_value("resnet18")
    app.selectbox(key="train.strategy").set_value("scratch").run()
    big = next(c.value for c in app.caption if "Expected time" in c.value)
    seconds = [float(c.split("about ")[1].split(" s")[0]) for c in (small, big)]
    assert seconds[1] > seconds[0]  # resnet18 from scratch takes longer than the small default
    assert "a few seconds" not in " ".join(c.value for c in app.caption)


def test_a_link_to_a_run_the_server_no_longer_holds_says_so(app: AppTest, go: Callable):
    app.query_params["run"] = "987654-" + "0" * 20  # e.g. a replica that stopped mid-class
    app.run()
    assert any("no longer on this server" in w.value for w in app.warning)
    go(app, TRAIN)
    assert not app.exception and not any("no longer on this server" in w.value for w in app.warning)  # said once


# ---- from the quadrant ------------------------------------------------------------------------------------------
def test_use_this_plan_reaches_the_train_page_with_that_plan(app: AppTest, go: Callable):
    go(app, "pages/quadrant.py")
    app.select_slider(key="quadrant.size").set_value(500)
    app.slider(key="quadrant.similarity").set_value(0.2).run()
    app.button(key="quadrant.use").click().run()
    assert not app.exception
    assert app.title[0].value == ":material/fitness_center: Train live"
    assert app.selectbox(key="train.strategy").value == "scratch"
    assert app.multiselect(key="train.frozen").value == []
    assert app.slider(key="train.n_per_class").value == 500
    assert app.slider(key="train.similarity").value == pytest.approx(0.2)
    assert any("orientation of a grating" in i.value for i in app.info)  # below 0.5 the task changes


# ---- the race ---------------------------------------------------------------------------------------------------
def test_race_fills_its_results_table(app: AppTest, go: Callable, finish_job: Callable, plotly_charts: Callable):
    go(app, TRAIN)
    app.slider(key="train.n_per_class").set_value(5).run()
    go(app, RACE)
    app.multiselect(key="race.strategies").set_value(["feature_extract", "early_classifier"]).run()
    app.radio(key="race.prediction").set_value("early_classifier").run()
    app.button(key="race.start").click().run()
    assert not app.exception
    assert app.radio(key="race.prediction").value is None  # the next race needs a new prediction
    assert app.button(key="race.start").disabled is True
    finish_job(app, "race")
    outcome = app.session_state["race.result"]
    assert [lane.key for lane in outcome.lanes] == ["feature_extract", "early_classifier"]
    table = app.dataframe[0].value
    assert list(table["Strategy"]) and set(table["Strategy"]) == {"Fixed feature extraction",
                                                                  "Classifier on the initial layers"}
    assert list(table["Validation accuracy"]) == sorted(table["Validation accuracy"], reverse=True)
    verdict = (app.success or app.info)[0].value
    assert "Classifier on the initial layers" in verdict
    heat = plotly_charts(app)["Gradient norm per layer group, one panel per lane"]
    assert [t["y"] for t in heat["data"]] == [list(GROUPS)] * 2  # one row per group in every panel
    early = heat["data"][1]["z"]
    assert early[2] == early[3] == [None] * len(early[2])  # the early classifier cut block3 and block4 off ...
    assert early[4] and all(v is not None for v in early[4])  # ... and trains only its head
    marks = {(a["xref"], a["y"], a["text"]) for a in heat["layout"]["annotations"]}
    assert {("x2", "block3", "cut off"), ("x2", "block4", "cut off"), ("x2", "block1", "frozen")} <= marks
