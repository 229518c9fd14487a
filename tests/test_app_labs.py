"""App tests for the labs: both pages render, a matrix demo runs through the page to its charts, the deep link from
the matrix page opens the right demo, and a quadrant-lab sweep fills its heatmap and is then served from the cache."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from streamlit.testing.v1 import AppTest

from tl_core.experiments import DEMOS
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
    purity = charts["k-means with k=4 on 80 unlabelled images: cluster purity"]
    shown = dict(zip(purity["data"][0]["x"], purity["data"][0]["y"]))
    assert shown == job.result[1].purity  # the chart draws the result's own numbers
    assert {"PCA of source model features (colour: the hidden shape)",
            "PCA of raw pixels (colour: the hidden shape)"} <= set(charts)
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


def test_a_small_sweep_fills_the_heatmap_and_repeats_from_the_cache(app: AppTest, go, finish_job, plotly_charts):
    go(app, QUADRANT_LAB)
    app.multiselect(key="quadrant_lab.sizes").set_value([10]).run()
    app.multiselect(key="quadrant_lab.strategies").set_value(["feature_extract", "early_classifier"]).run()
    app.button(key="quadrant_lab.run_sweep").click().run()
    job = finish_job(app, "quadrant_lab")
    assert job.state == "done" and job.result[0] == "sweep"
    heat = plotly_charts(app)["Measured: the winning strategy in each cell, next to the course's advice"]
    assert heat["data"][0]["y"] == ["10 per class"] and heat["data"][0]["x"] == ["similarity 1", "similarity 0.25"]
    assert all(v is not None for v in heat["data"][0]["z"][0])  # every cell has a winner
    table = app.dataframe[0].value
    assert list(table["Similarity"]) == [1.0, 0.25]
    assert list(table["Course's advice"]) == ["Fine-tune only final layers", "Fit classifier on initial layers"]
    n_jobs = len(get_manager().jobs_of(job.owner))
    app.button(key="quadrant_lab.run_sweep").click().run()  # the same sweep again: shown from the cache, no job
    assert not app.exception and len(get_manager().jobs_of(job.owner)) == n_jobs
    assert app.session_state["quadrant_lab.outcomes"]["sweep"] is job.result[1]
