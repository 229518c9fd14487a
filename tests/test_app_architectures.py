"""App tests for the Architectures page: every family's card and table, the plan's marks, and the live demos."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torchvision
from streamlit.testing.v1 import AppTest

from tl_core.models.summary import FAMILY_ORDER, family_cards, format_count
from tl_core.models.registry import ARCHS
from tl_core.training.plan import make_plan

PAGE = "pages/architectures.py"
CARDS = family_cards()


@pytest.fixture()
def page(app: AppTest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AppTest:
    """The Architectures page, reached through the router (`app` comes from tests/conftest.py)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty weights cache, whatever this machine has
    app.switch_page(PAGE).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _tab(at: AppTest, family: str):
    return at.tabs[FAMILY_ORDER.index(family)]


def _layer_table(at: AppTest, family: str) -> pd.DataFrame:
    tables = [d.value for d in _tab(at, family).dataframe if "Layer" in d.value.columns]
    assert len(tables) == 1
    return tables[0]


def _charts(block) -> dict[str, dict]:
    """Plotly charts of a block by title."""
    specs = [json.loads(c.proto.spec) for c in block.get("plotly_chart")]
    return {s["layout"]["title"]["text"]: s for s in specs}


def _rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_every_family_renders_its_card_table_and_charts(page: AppTest):
    assert page.title[0].value == ":material/account_balance: Architectures"
    assert [t.label for t in page.tabs] == [CARDS[f].tab for f in FAMILY_ORDER]
    assert not page.warning and not page.error
    for family in FAMILY_ORDER:
        tab = _tab(page, family)
        assert tab.subheader[0].value == CARDS[family].title
        table = _layer_table(page, family)
        assert {"Layer", "Type", "Output shape", "Parameters", "MACs", "Role", "Trains"} <= set(table.columns)
        arch = CARDS[family].variants[0]
        metrics = {m.label: m.value for m in tab.metric}
        assert metrics["Parameters"] == format_count(table["Parameters"].sum())
        titles = list(_charts(tab))
        assert any(t.startswith(f"What trains in {arch}") for t in titles)
        assert f"Parameters per layer group of {arch} (input → head)" in titles
    assert any("14 million" in i.value and "1,000 categories" in i.value for i in page.info)


def test_comparison_lists_every_arch_with_torchvision_numbers(page: AppTest):
    table = next(d.value for d in page.dataframe if "Architecture" in d.value.columns)
    assert list(table["Architecture"]) == list(ARCHS)
    rows = table.set_index("Architecture")
    meta = torchvision.models.get_model_weights("vgg16").DEFAULT.meta
    assert rows.loc["vgg16", "Parameters"] == meta["num_params"]
    assert rows.loc["vgg16", "Top-1 %"] == meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert "NOT ImageNet" in rows.loc["shapesnet", "Accuracy measured on"]


def test_changing_the_plan_changes_the_frozen_rows(page: AppTest):
    def frozen_groups(family: str) -> set[str]:
        table = _layer_table(page, family)
        return set(table.loc[table["Role"] == "frozen", "Group"])

    def diagram_roles(family: str, arch: str) -> list[str]:
        chart = next(s for t, s in _charts(_tab(page, family)).items() if t.startswith(f"What trains in {arch}"))
        return [trace["name"] for trace in chart["data"]]

    assert frozen_groups("shapes") == {"block1", "block2", "block3"}  # the default plan
    assert diagram_roles("shapes", "shapesnet") == ["frozen"] * 3 + ["fine-tuned", "new head"]

    page.session_state["plan"] = make_plan("feature_extract").to_dict()
    _rerun(page)
    assert frozen_groups("shapes") == {"block1", "block2", "block3", "block4"}
    assert diagram_roles("shapes", "shapesnet") == ["frozen"] * 4 + ["new head"]
    assert frozen_groups("resnet") == set(ARCHS["resnet18"].body_groups)  # the strategy applied to resnet18
    assert any("Your current plan is for shapesnet" in i.value for i in _tab(page, "resnet").info)

    page.session_state["plan"] = make_plan("finetune_all", arch="resnet18").to_dict()
    _rerun(page)
    table = _layer_table(page, "resnet")
    assert frozen_groups("resnet") == set() and table.loc[table["Parameters"] > 0, "Trains"].all()
    assert not any("Your current plan is for" in i.value for i in _tab(page, "resnet").info)
    assert diagram_roles("resnet", "resnet18") == ["fine-tuned"] * 5 + ["new head"]


def test_variant_picker_switches_the_table(page: AppTest):
    assert len(_layer_table(page, "vgg")) == 29  # vgg11: 8 conv + 3 linear, with their ReLUs, pools and dropouts
    page.selectbox(key="arch.variant.vgg").set_value("vgg16")
    _rerun(page)
    table = _layer_table(page, "vgg")
    assert (table["Type"] == "Conv2d").sum() == 13 and (table["Type"] == "Linear").sum() == 3


def test_receptive_field_calculator(page: AppTest):
    page.number_input(key="arch.rf.channels").set_value(64)
    page.slider(key="arch.rf.n").set_value(2)
    page.select_slider(key="arch.rf.k").set_value(5)
    _rerun(page)
    metrics = {m.label: m.value for m in _tab(page, "vgg").metric}
    assert metrics["Receptive field, n(k−1)+1"] == "9×9"
    assert metrics["Measured by back-propagation"] == "9 px wide"
    assert metrics["Stack: n·k²·C²"] == f"{2 * 25 * 64 * 64:,}"
    assert metrics["One 9×9: K²·C²"] == f"{81 * 64 * 64:,}"
    page.toggle(key="arch.rf.bias").set_value(True)
    _rerun(page)
    metrics = {m.label: m.value for m in _tab(page, "vgg").metric}
    assert metrics["Stack: n·k²·C² + n·C"] == f"{2 * (25 * 64 * 64 + 64):,}"


def test_residual_toggle_changes_the_first_layer_gradient(page: AppTest):
    def first_layer() -> float:
        metric = next(m for m in _tab(page, "resnet").metric if m.label == "Gradient norm at the first layer")
        return float(metric.value)

    with_skip = first_layer()
    page.toggle(key="arch.res.skip").set_value(False)
    _rerun(page)
    without = first_layer()
    assert with_skip > 1000 * without > 0
    chart = next(s for t, s in _charts(_tab(page, "resnet")).items() if t.startswith("Gradient norm"))
    assert [len(trace["y"]) for trace in chart["data"]] == [40, 40]


def test_batch_norm_toggle_shows_the_plain_gradient_survives_and_names_degradation(page: AppTest):
    """He et al. (2015): batch-normalised plain networks kept healthy gradients; skips cured degradation."""
    tab = _tab(page, "resnet")
    card = " ".join(m.value for m in tab.markdown)
    assert "degradation" in card and "higher training error" in card
    page.toggle(key="arch.res.skip").set_value(False)
    page.toggle(key="arch.res.bn").set_value(True)
    _rerun(page)
    tab = _tab(page, "resnet")
    metric = next(m for m in tab.metric if m.label == "Gradient norm at the first layer")
    assert float(metric.value) > 0.01  # without batch norm this plain stack's is about 1e-17
    title, chart = next((t, s) for t, s in _charts(tab).items() if t.startswith("Gradient norm"))
    assert "with batch normalization" in title
    takeaways = " ".join(c.value for c in tab.caption)
    assert "does not vanish" in takeaways and "degradation" in takeaways


def test_inception_and_alexnet_cards_match_the_models(page: AppTest):
    inception = " ".join(m.value for m in _tab(page, "inception").markdown)
    assert "5×5 (factorised)" not in inception and "a 5×5, a double 3×3" in inception
    alexnet = " ".join(m.value for m in _tab(page, "alexnet").markdown)
    assert "ReLU" in alexnet and "two GPUs" in alexnet


def test_densenet_growth_is_checked_against_torchvision(page: AppTest):
    tab = _tab(page, "densenet")
    assert any(":material/check_circle: matches" in m.value and "64, 96, 128, 160, 192, 224" in m.value for m in tab.markdown)
    page.slider(key="arch.dense.k").set_value(12)
    _rerun(page)
    assert any(t.startswith("Channels entering each layer of a dense block (k0 = 64, growth rate k = 12)")
               for t in _charts(_tab(page, "densenet")))


def test_first_layer_filters_and_missing_imagenet_weights(page: AppTest):
    assert len(page.image) == 1  # the source model's filters; the ImageNet ones are not cached
    assert any("not on this machine" in i.value and "fetch_weights alexnet" in i.value for i in page.info)
    page.selectbox(key="arch.filters.arch").set_value("resnet18")
    _rerun(page)
    assert any("fetch_weights resnet18" in i.value for i in page.info)
