"""App tests for the labs: both pages render, a matrix demo runs through the page to its charts, the deep link from
the matrix page opens the right demo, and a quadrant-lab sweep fills its heatmap and is then served from the cache."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
from streamlit.testing.v1 import AppTest

from tl_core.experiments import DEMOS
from tl_core.experiments.lab import DIFFERENT_TARGETS, heatmap
from tl_core.jobs.manager import get_manager

MATRIX_LAB, QUADRANT_LAB = "pages/matrix_lab.py", "pages/quadrant_lab.py"


@pytest.fixture(autouse=True)
def one_thread_per_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """One torch thread per job: on a shared, busy machine two spinning threads run many times slower."""
    monkeypatch.setattr(get_manager(), "cores", 1)


def _takeaways(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("**Takeaway:**")]


def test_both_lab_pages_render_and_every_demo_has_its_knobs(app: AppTest, go):
    go(app, MATRIX_LAB)
    assert app.title[0].value == ":material/science: The matrix, live"
    assert not app.warning and not app.error
    radio = app.radio(key="matrix_lab.setting")
    assert list(radio.options) == [d.title for d in DEMOS.values()]
    for key in DEMOS:
        radio.set_value(key).run()
        assert not app.exception
        assert app.subheader[0].value == DEMOS[key].title
        assert app.button(key="matrix_lab.run").label == f":material/play_arrow: Run: {DEMOS[key].title}"
        knobs = [w.key for w in (*app.slider, *app.selectbox) if w.key and w.key.startswith(f"matrix_lab.{key}.")]
        assert knobs, key
    go(app, QUADRANT_LAB)
    assert app.title[0].value == ":material/map: Quadrant lab"
    assert [t.label for t in app.tabs] == [":material/map: The rules, measured", ":material/content_cut: Cut at layer n", ":material/straighten: Measured similarity"]
    assert {"quadrant_lab.run_sweep", "quadrant_lab.run_cut", "quadrant_lab.run_similarity"} <= {b.key for b in
                                                                                                  app.button}
    assert not app.warning and not app.error


def test_a_matrix_demo_runs_through_the_page_to_its_result_charts(app: AppTest, go, finish_job, plotly_charts):
    go(app, MATRIX_LAB)
    app.radio(key="matrix_lab.setting").set_value("unsupervised").run()
    app.slider(key="matrix_lab.unsupervised.n_per_class").set_value(20).run()
    app.button(key="matrix_lab.run").click().run()
    assert not app.exception
    job = finish_job(app, "matrix_lab")
    assert job.state == "done" and job.result[0] == "unsupervised"
    charts = plotly_charts(app)
    res = job.result[1]
    purity = charts["k-means with k=4 on 80 unlabelled images: cluster purity"]
    bars = {t["name"]: dict(zip(t["x"], t["y"])) for t in purity["data"] if t["type"] == "bar"}
    assert bars["no labels anywhere"] == {r: res.purity[r] for r in res.unsupervised}  # the result's own numbers
    assert "self-taught features (no labels)" in bars["no labels anywhere"]
    assert list(bars["comparison only: learnt with the source labels"]) == ["supervised source model (source "
                                                                            "labels used)"]
    assert {"PCA of self-taught features (no labels) (colour: the hidden shape)",
            "PCA of raw pixels (colour: the hidden shape)"} <= set(charts)
    assert "PCA of supervised source model (source labels used) (colour: the hidden shape)" not in charts
    assert any("source labels no" in c.value for c in app.caption)  # what the matrix says, and now what ran
    assert len(_takeaways(app)) == 3
    assert app.session_state["matrix_lab.results"]["unsupervised"] is job.result[1]
    app.radio(key="matrix_lab.setting").set_value("self_taught").run()  # another demo: no charts until it runs
    assert not plotly_charts(app) and app.info and "Run" in app.info[0].value


def test_the_matrix_page_links_to_its_settings_demo_and_the_link_opens_it(app: AppTest, go):
    go(app, "pages/matrix.py")
    for key, value in zip(("matrix.source_labels", "matrix.target_labels", "matrix.same_domain", "matrix.same_task"),
                          (True, False, False, True)):  # source labels only, different domains: domain adaptation
        app.radio(key=key).set_value(value)
    app.run()
    links = [el.proto for el in app.get("page_link")]
    lab = [p for p in links if "matrix_lab" in p.page]
    assert len(lab) == 1 and parse_qs(lab[0].query_string) == {"setting": ["domain_adaptation"]}
    app.query_params["setting"] = "domain_adaptation"  # what following the link does
    go(app, MATRIX_LAB)
    assert app.session_state["matrix_lab.setting"] == "domain_adaptation"
    assert app.subheader[0].value == "Domain adaptation"
    assert "setting" not in app.query_params  # consumed: the learner can pick another demo afterwards


def test_a_small_sweep_fills_the_heatmap_in_its_own_tab_and_repeats_from_the_cache(app: AppTest, go, finish_job,
                                                                                    plotly_charts):
    go(app, QUADRANT_LAB)
    assert app.multiselect(key="quadrant_lab.strategies").proto.wrap is True  # every chosen strategy is readable
    app.multiselect(key="quadrant_lab.sizes").set_value([10]).run()
    app.multiselect(key="quadrant_lab.strategies").set_value(["feature_extract", "early_classifier"]).run()
    app.button(key="quadrant_lab.run_sweep").click().run()
    sweep_tab = app.tabs[0]
    # while it runs, its progress sits in its own tab, next to its Run and a live Stop
    assert sweep_tab.get("progress") and len(app.get("progress")) == len(sweep_tab.get("progress"))
    assert not app.button(key="quadrant_lab.stop_sweep").disabled and app.button(key="quadrant_lab.stop_cut").disabled
    job = finish_job(app, "quadrant_lab")
    assert job.state == "done" and job.result[0] == "sweep"
    heat = plotly_charts(app)["Measured: the winning strategy in each cell, next to the course's advice"]
    assert heat["data"][0]["y"] == ["10 per class"]
    assert heat["data"][0]["x"] == ["similarity 1: new shapes", "similarity 0.25: grating orientation"]
    assert all(v is not None for v in heat["data"][0]["z"][0])  # every cell has a winner
    assert [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in app.tabs[0].get("plotly_chart")][0] == \
        "Measured: the winning strategy in each cell, next to the course's advice"  # the results stay in the tab
    (table,) = app.tabs[0].table  # a table, which wraps: "What happened" is never cut off
    rows = table.value
    assert list(rows["Target"]) == ["similarity 1: new shapes", "similarity 0.25: grating orientation"]
    assert list(rows["Course's advice"]) == ["Fine-tune only final layers", "Fit classifier on initial layers"]
    notes = heatmap(job.result[1].lanes, job.result[1].config).cells
    assert list(rows["What happened"]) == [notes[(10, 1.0)].note, notes[(10, 0.25)].note]
    n_jobs = len(get_manager().jobs_of(job.owner))
    app.button(key="quadrant_lab.run_sweep").click().run()  # the same sweep again: shown from the cache, no job
    assert not app.exception and len(get_manager().jobs_of(job.owner)) == n_jobs
    assert app.session_state["quadrant_lab.outcomes"]["sweep"] is job.result[1]


def test_the_lab_discloses_its_targets_and_no_button_sits_outside_the_tabs(app: AppTest, go):
    go(app, QUADRANT_LAB)
    text = " ".join(m.value for m in app.markdown)
    for target in DIFFERENT_TARGETS.values():
        assert target.design in text
    assert "wins by design" in text and "does not hold" in text
    in_tabs = {b.key for tab in app.tabs for b in tab.button}
    assert {b.key for b in app.button} == in_tabs  # no lone Stop above the tabs
    assert {"quadrant_lab.stop_sweep", "quadrant_lab.stop_cut", "quadrant_lab.stop_similarity"} <= in_tabs
    radio = app.radio(key="quadrant_lab.different")
    assert radio.value == "orientation" and list(radio.options) == [
        "grating orientation (low-level)", "outlined new shapes (high-level)"]
    radio.set_value("outline_shapes").run()
    assert app.session_state["quadrant_lab.different"] == "outline_shapes"


def test_cut_at_layer_n_asks_for_predictions_first_then_grades_them_and_the_rule(app: AppTest, go, finish_job,
                                                                                  plotly_charts):
    go(app, QUADRANT_LAB)
    cut_tab = app.tabs[1]
    text = " ".join(m.value for m in cut_tab.markdown)
    assert "predict where each head will do best" in text
    assert "the early, generic layers win" not in text  # the result is no longer stated before the run
    assert app.button(key="quadrant_lab.run_cut").disabled
    app.slider(key="quadrant_lab.cut_n").set_value(10).run()
    guesses = {"similar": "block4", "orientation": "block2", "outline_shapes": "block1"}
    for key, cut in list(guesses.items())[:2]:
        app.radio(key=f"quadrant_lab.predict.{key}").set_value(cut).run()
        assert app.button(key="quadrant_lab.run_cut").disabled  # one still missing
    app.radio(key="quadrant_lab.predict.outline_shapes").set_value("block1").run()
    assert not app.button(key="quadrant_lab.run_cut").disabled
    app.button(key="quadrant_lab.run_cut").click().run()
    job = finish_job(app, "quadrant_lab")
    kind, res = job.result
    assert kind == "cut" and res.predicted == guesses
    assert set(res.kinds.values()) == {"similar", "orientation", "outline_shapes"}
    fig = plotly_charts(app)["Cut at layer n: a new head on the frozen source features (10 images per class)"]
    stars = [t for t in fig["data"] if t["name"].startswith("your prediction")]
    assert [t["x"] for t in stars] == [["block4"], ["block2"], ["block1"]]
    verdicts = [e.value for e in (*app.tabs[1].success, *app.tabs[1].warning)]
    for target in res.targets:
        assert any(v == f"**{target}.** {res.verdict(target)}" for v in verdicts), verdicts
