"""App tests for the decision pages (welcome, matrix, quadrant), the train placeholder and the app-wide sidebar."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
OWN_PAGES = ("pages/welcome.py", "pages/matrix.py", "pages/quadrant.py", "pages/train.py")
TITLES = {"pages/welcome.py": ":material/school: What is transfer learning?", "pages/matrix.py": ":material/grid_view: Domain & task matrix",
          "pages/quadrant.py": ":material/explore: Size vs similarity", "pages/train.py": ":material/fitness_center: Train live"}

# The `app` fixture (tests/conftest.py) runs AppTest in the router's steady navigation mode; see the comment there.
# A subprocess cannot use the fixture, so it gets the same shim as source text.
_SHIM = """
import streamlit.testing.v1.app_test as _m
from streamlit.runtime.pages_manager import PagesManager as _PM
class _NavigationPagesManager(_PM):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _PM.uses_pages_directory = False
_m.PagesManager = _NavigationPagesManager
"""


def _go(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ---- smoke ----------------------------------------------------------------------------------------
def test_every_own_page_renders(app: AppTest):
    assert app.title[0].value == TITLES["pages/welcome.py"]  # the default page
    for page in OWN_PAGES:
        _go(app, page)
        assert app.title[0].value == TITLES[page]
        assert [n.key for n in app.sidebar.number_input] == ["seed"]
        assert not app.warning and not app.error  # no stray warnings (deprecations show as st.warning)


def test_welcome_shows_source_and_three_target_previews(app: AppTest):
    images = app.image
    assert len(images) == 4
    graphs = app.get("graphviz_chart")
    assert len(graphs) == 1 and "Knowledge" in graphs[0].proto.spec
    assert any("Stand on the shoulders of giants" in m.value for m in app.markdown)


def test_sidebar_shows_plan_device_and_seed(app: AppTest):
    assert "Fine-tune only the final layers · shapesnet" in app.sidebar.caption[0].value
    assert any(m.value.startswith("**Device:**") for m in app.sidebar.markdown)
    app.number_input(key="seed").set_value(7).run()
    assert app.session_state["plan"]["seed"] == 7


# ---- matrix -----------------------------------------------------------------------------------------
# (source_labels, target_labels, same_domain, same_task) -> the headline the page must show: the course's tree, with
# honest names where its leaf does not fit, and "off the survey's table" in the headline wherever the answers leave it
MULTI, SELF, SSB, DA = ("Multi-task learning", "Self-taught learning", "Sample-selection bias / covariate shift",
                        "Domain adaptation")
UNSUP = "Unsupervised transfer learning (clustering, dimensionality reduction)"
NONE = "No transfer needed: ordinary supervised learning"
SDA, SEMI, NEW = ("Supervised domain adaptation (fine-tuning)", "Semi-supervised learning",
                  "A new task without target labels")
OFF = ", off the survey's table: "
MATRIX = {
    (True, True, True, True): NONE + OFF + "one problem, nothing to transfer", (True, True, True, False): MULTI,
    (True, True, False, True): SDA + OFF + "labels on both sides and the same task",
    (True, True, False, False): MULTI + OFF + "the domains differ too",
    (False, True, True, True): SEMI + OFF + "unlabelled data of the very same problem",
    (False, True, True, False): SELF, (False, True, False, True): SELF + OFF + "the same task, from another domain",
    (False, True, False, False): SELF + OFF + "the domains differ too",
    (True, False, True, True): SSB, (True, False, True, False): NEW + OFF + "no setting of the survey covers it",
    (True, False, False, True): DA, (True, False, False, False): NEW + OFF + "no setting of the survey covers it",
    (False, False, True, True): UNSUP + OFF + "the same domain and the same task",
    (False, False, True, False): UNSUP + OFF + "the same domain", (False, False, False, True): UNSUP + OFF + "the same task",
    (False, False, False, False): UNSUP,
}
TABLE_ROW = {MULTI: 0, SELF: 1, UNSUP: 2, SSB: 3, DA: 3, NONE: None, SDA: None, SEMI: None, NEW: None}
KEYS = ("matrix.source_labels", "matrix.target_labels", "matrix.same_domain", "matrix.same_task")


def _name(headline: str) -> str:
    return headline.split(OFF)[0]


def test_matrix_page_shows_the_right_setting_for_all_16_answers(app: AppTest):
    _go(app, "pages/matrix.py")
    headlines = set(MATRIX.values())
    for answers, headline in MATRIX.items():
        for key, value in zip(KEYS, answers):
            app.radio(key=key).set_value(value)
        app.run()
        assert not app.exception
        shown = {s.value for s in app.subheader}
        assert headline in shown and not (headlines - {headline}) & shown, (answers, shown)
        tricky = answers[0] and not answers[1]
        assert any("Tricky" in w.value for w in app.warning) == tricky, answers
        table = next(m.value for m in app.markdown if m.value.startswith("| You |")).splitlines()[2:]
        marked = [i for i, row in enumerate(table) if "← your answers" in row]
        bold = [i for i, row in enumerate(table) if ":blue-background[" in row]
        assert len(table) == 4 and marked == bold, answers  # the marked row is the highlighted one
        assert marked == ([] if TABLE_ROW[_name(headline)] is None else [TABLE_ROW[_name(headline)]]), answers
        tree = app.get("graphviz_chart")[0].proto.spec
        assert tree.count('fontcolor="white"') == 1  # exactly one highlighted leaf


def test_matrix_asks_about_the_feature_space(app: AppTest):
    _go(app, "pages/matrix.py")
    domain = app.radio(key="matrix.same_domain")
    assert "feature space" in domain.label and "however they were sampled" in domain.label
    assert "biased sampling" in domain.help and "P(X)" in domain.help


def test_matrix_offers_the_model_as_is_where_it_fits(app: AppTest):
    _go(app, "pages/matrix.py")
    for key, value in zip(KEYS, (True, True, True, True)):
        app.radio(key=key).set_value(value)
    app.run()
    assert any("use it entirely as-is" in i.value for i in app.info)
    assert any("Pretrained explorer" in link.label for link in app.get("page_link"))
    app.radio(key="matrix.same_task").set_value(False).run()
    assert not any("use it entirely as-is" in i.value for i in app.info)


def test_worked_cases_load_their_answers_on_the_matrix(app: AppTest):
    _go(app, "pages/matrix.py")
    assert any("Hindi → Spanish" in m.value for m in app.markdown)
    app.button(key="matrix.case.hindi_spanish").click().run()
    assert [app.radio(key=k).value for k in KEYS] == [True, True, False, False]
    assert MULTI + OFF + "the domains differ too" in {s.value for s in app.subheader}
    app.button(key="matrix.case.english_french").click().run()
    assert [app.radio(key=k).value for k in KEYS] == [True, True, True, True]
    assert MATRIX[(True, True, True, True)] in {s.value for s in app.subheader}


def test_matrix_answer_survives_navigating_away_and_back(app: AppTest):
    _go(app, "pages/matrix.py")
    app.radio(key="matrix.target_labels").set_value(False).run()
    app.radio(key="matrix.same_domain").set_value(False).run()
    app.radio(key="matrix.same_task").set_value(True).run()
    assert DA in {s.value for s in app.subheader}  # the defaults (labels on both sides) would say multi-task
    _go(app, "pages/quadrant.py")
    _go(app, "pages/welcome.py")
    _go(app, "pages/matrix.py")
    assert app.radio(key="matrix.target_labels").value is False
    assert app.radio(key="matrix.same_domain").value is False
    assert DA in {s.value for s in app.subheader}


def test_welcome_teaches_the_formal_definitions_beside_the_course(app: AppTest):
    text = " ".join(m.value for m in app.markdown)
    assert "Domains refer to where the X variables are drawn from" in text
    assert "feature space" in text and "marginal distribution" in text and "predictive function" in text
    assert "fix sampling biases" in text
    dot = app.get("graphviz_chart")[0].proto.spec
    assert dot.index("cluster_tl") < dot.index("cluster_trad")  # drawn in the heading's order (see diagrams.py)
    assert any("CURRICULUM.md" in e.label for e in app.expander)


# ---- quadrant ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, sim, headline, caveat", [
    (500, 0.2, "Lots data, different: Re-train from scratch", True),
    (500, 0.9, "Lots data, similar: Fine-tune all layers", False),
    (20, 0.9, "Little data, similar: Fine-tune only final layers", False),
    (20, 0.2, "Little data, different: Fit classifier on initial layers", False),
])
def test_quadrant_recommends_per_cell(app: AppTest, n: int, sim: float, headline: str, caveat: bool):
    _go(app, "pages/quadrant.py")
    app.select_slider(key="quadrant.size").set_value(n)
    app.slider(key="quadrant.similarity").set_value(sim).run()
    assert not app.exception
    assert headline in [s.value for s in app.subheader]
    assert any("pretrained weights still usually beats" in w.value for w in app.warning) == caveat


def test_quadrant_size_picker_is_log_spaced(app: AppTest):
    _go(app, "pages/quadrant.py")
    picker = app.select_slider(key="quadrant.size")
    assert list(picker.options) == [str(n) for n in (5, 10, 20, 50, 100, 200, 500, 1000)]
    for n, size in ((5, "Little"), (50, "Little"), (100, "Lots"), (1000, "Lots")):
        picker.set_value(n).run()
        assert any(s.value.startswith(f"{size} data") for s in app.subheader)


def test_lots_different_advice_matches_its_scratch_plan(app: AppTest):
    _go(app, "pages/quadrant.py")
    app.select_slider(key="quadrant.size").set_value(500)
    app.slider(key="quadrant.similarity").set_value(0.2).run()
    assert "The plan: Re-train from scratch" in [s.value for s in app.subheader]
    text = " ".join(m.value for m in app.markdown)
    assert "Fine-tune the initial layers too" not in text  # the old advice under the scratch plan
    assert "starts from random weights" in text


def test_little_different_says_where_the_plan_departs(app: AppTest):
    _go(app, "pages/quadrant.py")
    app.slider(key="quadrant.similarity").set_value(0.2).run()
    departs = [i.value for i in app.info if i.value.startswith("**Where the plan departs from the course.**")]
    assert len(departs) == 1 and "\"Fine-tune model weights\"" in departs[0] and "CS231n" in departs[0]


def test_little_similar_alexnet_is_fixed_feature_extraction_and_says_why(app: AppTest):
    _go(app, "pages/quadrant.py")
    app.selectbox(key="quadrant.arch").set_value("alexnet").run()
    assert "The plan: Fixed feature extraction" in [s.value for s in app.subheader]
    departs = next(i.value for i in app.info if i.value.startswith("**Where the plan departs"))
    assert "fc6_7" in departs and "96%" in departs
    assert any("None of alexnet's" in c.value for c in app.caption)
    app.selectbox(key="quadrant.arch").set_value("shapesnet").run()
    assert "The plan: Fine-tune only the final layers" in [s.value for s in app.subheader]
    assert not any(i.value.startswith("**Where the plan departs") for i in app.info)


def test_quadrant_frames_the_as_is_choice_and_the_feature_extractor(app: AppTest):
    _go(app, "pages/quadrant.py")
    assert any("use the model entirely as-is" in i.value for i in app.info)
    assert any("Pretrained explorer" in link.label for link in app.get("page_link"))
    fe = next(e for e in app.expander if "fixed feature extractor beat" in e.label)
    assert any("73,984 of 97,680" in m.value for m in fe.markdown)
    cases = " ".join(m.value for m in app.markdown)
    assert "Hindi → Spanish, little data" in cases and "English → French, lots of data" in cases


def test_quadrant_names_the_recipe_under_the_plan(app: AppTest):
    from tl_core.training.plan import recipe_for

    _go(app, "pages/quadrant.py")
    app.selectbox(key="quadrant.arch").set_value("resnet18").run()
    recipe = recipe_for("resnet18")
    assert any(recipe.name in c.value and "Source:" in c.value for c in app.caption)


def test_quadrant_own_problem_mode(app: AppTest):
    _go(app, "pages/quadrant.py")
    app.radio(key="quadrant.mode").set_value("own").run()
    app.number_input(key="quadrant.own_n").set_value(5000)
    app.radio(key="quadrant.own_similar").set_value("different").run()
    assert "Lots data, different: Re-train from scratch" in [s.value for s in app.subheader]
    app.number_input(key="quadrant.own_n").set_value(8).run()
    assert "Little data, different: Fit classifier on initial layers" in [s.value for s in app.subheader]


def test_use_this_plan_stores_plan_and_data_and_lands_on_train(app: AppTest):
    app.number_input(key="seed").set_value(5).run()
    _go(app, "pages/quadrant.py")
    app.selectbox(key="quadrant.arch").set_value("resnet18")
    app.select_slider(key="quadrant.size").set_value(200)
    app.slider(key="quadrant.similarity").set_value(0.75).run()
    app.button(key="quadrant.use").click().run()
    assert not app.exception
    plan = app.session_state["plan"]
    assert (plan["strategy"], plan["arch"], plan["frozen"], plan["seed"]) == ("finetune_all", "resnet18", [], 5)
    assert plan["lr_mult"]["layer4"] == pytest.approx(0.5) and plan["lr_mult"]["stem"] == pytest.approx(0.5 ** 5)
    assert (app.session_state["data.n_per_class"], app.session_state["data.similarity"]) == (200, 0.75)
    assert app.title[0].value == TITLES["pages/train.py"]
    assert any("Fine-tune all layers · resnet18" in m.value for m in app.markdown)
    assert "Fine-tune all layers · resnet18" in app.sidebar.caption[0].value
    assert app.selectbox(key="train.arch").value == "resnet18"  # the Train page's form shows the plan
    assert app.selectbox(key="train.strategy").value == "finetune_all"


@pytest.mark.parametrize("button, arch, strategy", [("quadrant.use_shapes", "shapesnet", "finetune_all"),
                                                    ("quadrant.use_scratch", "resnet18", "scratch")])
def test_an_imagenet_plan_without_weights_offers_what_works_offline(new_session, monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path, button: str, arch: str,
                                                                     strategy: str):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: no ImageNet weights on this machine
    app = new_session()
    _go(app, "pages/quadrant.py")
    app.selectbox(key="quadrant.arch").set_value("resnet18")
    app.select_slider(key="quadrant.size").set_value(200).run()
    warning = next(w.value for w in app.warning if "cannot start on this machine" in w.value)
    assert "resnet18-" in warning  # the file to fetch, from tl_core.models.weights
    app.button(key=button).click().run()
    assert not app.exception
    assert app.title[0].value == TITLES["pages/train.py"]
    plan = app.session_state["plan"]
    assert (plan["arch"], plan["strategy"]) == (arch, strategy)
    assert app.button(key="train.start").disabled is False  # this one can start offline


def test_quadrant_knobs_survive_navigating_away_and_back(app: AppTest):
    _go(app, "pages/quadrant.py")
    app.select_slider(key="quadrant.size").set_value(500).run()
    _go(app, "pages/matrix.py")
    _go(app, "pages/quadrant.py")
    assert app.select_slider(key="quadrant.size").value == 500
    assert "Lots data, similar: Fine-tune all layers" in [s.value for s in app.subheader]


# ---- torch stays out of the decision pages -----------------------------------------------------------
def test_decision_pages_never_import_torch_and_the_first_page_not_even_pandas():
    script = _SHIM + textwrap.dedent(f"""
        import json, sys
        from streamlit.testing.v1 import AppTest
        import ui.warm
        ui.warm.start = lambda: None  # app.py warms torch up in the background on purpose; count only the pages' own
        at = AppTest.from_file({APP!r}, default_timeout=60)
        at.run()
        errors = len(at.exception)
        first_page_pandas = "pandas" in sys.modules  # a quarter of a second on the first page's render
        for page in ("pages/matrix.py", "pages/quadrant.py", "pages/welcome.py"):
            at.switch_page(page).run()
            errors += len(at.exception)
        print(json.dumps({{"errors": errors, "torch": "torch" in sys.modules, "pandas": first_page_pandas,
                           "title": at.title[0].value}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"errors": 0, "torch": False, "pandas": False, "title": TITLES["pages/welcome.py"]}
