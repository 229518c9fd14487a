"""Page: the famous architectures (AlexNet, VGG, ResNet, DenseNet, Inception) and the shapes CNN, measured live."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from tl_core.models.demos import (MAX_DEPTH, GradientFlow, TorchvisionDenseBlock, dense_growth,
                                gradient_flow, imagenet_filter_grid, measured_receptive_field,
                                source_filter_grid, stack_vs_large, torchvision_dense_block)
from tl_core.models.summary import (FAMILY_ORDER, IMAGENET_NOTE, ArchSummary, comparison_table, family_cards,
                                  format_count, format_macs, group_table, group_takeaway, layer_table, plan_note,
                                  plan_on_arch, summarize, trainable_params)
from tl_core.teaching.plans import plan_takeaway
from tl_core.models.weights import WeightsUnavailable, torchvision_archs
from ui.charts import architectures as arch_charts
from ui.charts.decisions import plan_groups_chart
from ui.render import show_chart
from ui import quiz
from ui.state import PERSIST, current_plan, init_state

CARDS = family_cards()
IMAGENET_ARCHS = torchvision_archs()


# ---- cached computations (shared, read-only) ------------------------------------------------------------------
@st.cache_resource(show_spinner="Measuring the architecture on the meta device…")
def _summary(arch: str) -> ArchSummary:
    """Frozen dataclass, shared by every session."""
    return summarize(arch)


@st.cache_data(show_spinner=False)
def _comparison() -> pd.DataFrame:
    return pd.DataFrame(comparison_table())


@st.cache_data(show_spinner=False)
def _flows(depth: int, batch_norm: bool) -> tuple[GradientFlow, GradientFlow]:
    return gradient_flow(depth, skip=True, batch_norm=batch_norm), gradient_flow(depth, skip=False,
                                                                                  batch_norm=batch_norm)


@st.cache_data(show_spinner=False)
def _torchvision_block() -> TorchvisionDenseBlock:
    return torchvision_dense_block("densenet121", 1)


@st.cache_data(show_spinner=False)
def _source_filters() -> np.ndarray:
    return source_filter_grid()


@st.cache_data(show_spinner="Loading the ImageNet weights…", max_entries=3)
def _imagenet_filters(arch: str) -> np.ndarray:
    return imagenet_filter_grid(arch)  # WeightsUnavailable is raised, not cached


# ---- one family's measured panel ------------------------------------------------------------------------------
def _family(family: str) -> ArchSummary:
    """The family's card, variant picker, totals, plan diagram, parameters per group and layer table."""
    card = CARDS[family]
    st.subheader(card.title)
    st.markdown("\n".join(f"- {point}" for point in card.points))
    arch = (st.selectbox("Variant", card.variants, key=f"arch.variant.{family}", persist_state=PERSIST)
            if len(card.variants) > 1 else card.variants[0])
    summary = _summary(arch)
    plan = current_plan()
    here = plan_on_arch(plan, arch)
    groups = group_table(summary, plan)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Parameters", format_count(summary.params), help=f"Exactly {summary.params:,}.")
    c2.metric("MACs per image", format_macs(summary.macs),
              help=f"Multiply-accumulates of the Conv2d and Linear layers for one {summary.input_size}×"
                   f"{summary.input_size} image at inference (bias adds, BatchNorm, activations and pooling are not "
                   f"counted).")
    c3.metric("Size", f"{summary.size_mb:,.1f} MB", help="Parameters and BatchNorm buffers as float32; "
                                                         "1 MB = 2²⁰ bytes.")
    c4.metric("Conv + linear layers", summary.depth)
    n_train = trainable_params(summary, plan)
    c5.metric("Trained by the plan", format_count(n_train), help=f"Exactly {n_train:,} parameters have "
                                                                 f"requires_grad under this plan.")
    if note := plan_note(plan, arch):
        st.info(note, icon=":material/info:")
    show_chart(plan_groups_chart(here), key=f"arch.plan.{arch}")
    show_chart(arch_charts.groups_chart(arch, groups, group_takeaway(summary, plan)), key=f"arch.groups.{arch}")
    st.markdown(f"**Every layer of {arch}** at its {summary.input_size}×{summary.input_size} input "
                f"(output shapes are per image: channels × height × width)")
    st.dataframe(pd.DataFrame(layer_table(summary, plan)), hide_index=True, height=320,
                 column_config={"Parameters": st.column_config.NumberColumn(format="localized"),
                                "MACs": st.column_config.NumberColumn(format="localized"),
                                "Trains": st.column_config.CheckboxColumn(help="The plan updates this layer's "
                                                                               "parameters.")})
    return summary


# ---- the page -------------------------------------------------------------------------------------------------
init_state("architectures")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
st.title(":material/account_balance: Architectures")
st.markdown("`torchvision.models` ships the famous networks of computer vision, ready to re-use: AlexNet, VGG, "
            "ResNet, DenseNet, Inception and many others. Every number on this page is measured from the real "
            "PyTorch models (built on the meta device, so nothing is downloaded or allocated).")
st.info(IMAGENET_NOTE, icon=":material/image:")

st.header("The families side by side")
st.dataframe(_comparison(), hide_index=True,
             column_config={"Parameters": st.column_config.NumberColumn(format="localized"),
                            "MACs (G)": st.column_config.NumberColumn(format="%.3f"),
                            "Year": st.column_config.NumberColumn(format="%d"),
                            "Top-1 %": st.column_config.NumberColumn(format="%.1f")})
st.caption("Parameters and top-1 accuracy: torchvision's own weights metadata. MACs and depth: measured here. "
           "shapesnet's accuracy is on its own shapes test set, not ImageNet, so it cannot be compared.")

st.header("Inside each family")
st.caption(f"Layers are coloured by your current plan: {current_plan().describe()}. Change the plan on the "
           f"Size vs similarity page and these diagrams follow.")
tabs = st.tabs([CARDS[f].tab for f in FAMILY_ORDER])

with tabs[FAMILY_ORDER.index("alexnet")]:
    _family("alexnet")

with tabs[FAMILY_ORDER.index("vgg")]:
    _family("vgg")
    st.markdown("#### :material/grid_view: Three 3×3 layers or one 7×7?")
    v1, v2, v3, v4 = st.columns(4)
    channels = int(v1.number_input("Channels C (in and out)", 1, 4096, 256, key="arch.rf.channels"))
    n_layers = int(v2.slider("Stacked layers n", 1, 6, 3, key="arch.rf.n"))
    kernel = int(v3.select_slider("Small filter k×k", [1, 3, 5, 7], 3, key="arch.rf.k"))
    bias = v4.toggle("Count biases", False, key="arch.rf.bias", help="Off: weights only, k²·C² per layer.")
    cmp = stack_vs_large(channels, n_layers, kernel, bias)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Receptive field, n(k−1)+1", f"{cmp.receptive_field}×{cmp.receptive_field}")
    m2.metric("Measured by back-propagation", f"{measured_receptive_field(n_layers, kernel)} px wide",
              help="Sends a gradient back from the centre output pixel of a real nn.Conv2d stack and counts the "
                   "input pixels it reaches.")
    m3.metric(f"Stack: n·k²·C²{' + n·C' if bias else ''}", f"{cmp.stack_params:,}")
    m4.metric(f"One {cmp.receptive_field}×{cmp.receptive_field}: K²·C²{' + C' if bias else ''}",
              f"{cmp.large_params:,}", delta=f"{cmp.saving:.0%} saved by the stack", delta_color="off")
    st.caption(f"**Takeaway:** {cmp.takeaway()}")

with tabs[FAMILY_ORDER.index("resnet")]:
    _family("resnet")
    st.markdown("#### :material/alt_route: Residual toggle: does the gradient reach the first layer?")
    r1, r2, r3 = st.columns([1, 1, 2])
    skip = r1.toggle("Skip connections", True, key="arch.res.skip")
    bn = r2.toggle("Batch normalization", False, key="arch.res.bn",
                   help="Normalise each block's input with BatchNorm, as ResNet and He et al.'s plain networks do.")
    depth = int(r3.slider("Layers (3×3 conv, 8 channels, 8×8 random images)", 5, MAX_DEPTH, 40, key="arch.res.depth"))
    with_skip, without = _flows(depth, bn)
    shown = with_skip if skip else without
    st.metric("Gradient norm at the first layer", f"{shown.first_layer:.3g}",
              help=f"One real backward pass with PyTorch's default initialisation, "
                   f"{'with' if bn else 'no'} batch norm, fixed seed.")
    st.caption("Without batch normalization, every plain layer (PyTorch's default initialisation) shrinks the "
               "signal on the way forward and the gradient on the way back; a residual block computes x + f(x), and "
               "its identity path carries both straight through. Switch batch normalization on: the plain stack's "
               "gradient no longer vanishes. That is what He et al. (2015) report for their batch-normalised plain "
               "networks: the gradients were healthy, yet deeper plain networks trained to a higher error than "
               "shallower ones (degradation). Skip connections cured that, by making the identity easy to learn; "
               "this one-pass demo shows the gradients, not the degradation, which needs full training runs.")
    show_chart(arch_charts.gradient_flow_chart(with_skip, without, skip), key="arch.res.chart")

with tabs[FAMILY_ORDER.index("densenet")]:
    _family("densenet")
    st.markdown("#### :material/hub: How a dense block grows")
    d1, d2, d3 = st.columns(3)
    k0 = int(d1.number_input("Channels entering the block, k0", 1, 1024, 64, key="arch.dense.k0"))
    k = int(d2.slider("Growth rate k", 4, 64, 32, key="arch.dense.k"))
    n_dense = int(d3.slider("Layers in the block", 1, 24, 6, key="arch.dense.layers"))
    grown = dense_growth(k0, k, n_dense)
    show_chart(arch_charts.dense_growth_chart(grown), key="arch.dense.chart")
    actual = _torchvision_block()
    predicted = dense_growth(actual.k0, actual.growth, len(actual.layer_inputs))
    verdict = ":material/check_circle: matches" if predicted.layer_inputs == actual.layer_inputs else ":material/cancel: does not match"
    st.markdown(f"**Checked against torchvision:** the input channels of the {len(actual.layer_inputs)} layers of "
                f"{actual.arch}'s dense block {actual.block} are {', '.join(map(str, actual.layer_inputs))}; "
                f"k0 + i·k with k0 = {actual.k0}, k = {actual.growth} {verdict}.")

with tabs[FAMILY_ORDER.index("inception")]:
    inception = _family("inception")
    st.markdown(f"The auxiliary classifier runs only in training: "
                f"{inception.params_by_group()['aux']:,} parameters and {inception.macs_train_only / 1e6:,.1f} M "
                f"extra MACs per image, left out of the inference total above.")

with tabs[FAMILY_ORDER.index("shapes")]:
    _family("shapes")

with tabs[FAMILY_ORDER.index("mobilenet")]:
    _family("mobilenet")

st.header("What the first layer learns")
st.markdown("Initial layers detect features common to all images: colour blobs, general filters, edges and lines. "
            "Here are the actual first-layer filters, each stretched to full contrast.")
f1, f2 = st.columns(2)
with f1:
    st.image(_source_filters(), caption="The shipped source model (shapesnet): 16 filters of 3×3×3, enlarged.",
             width=320)
with f2:
    chosen = st.selectbox("ImageNet model", IMAGENET_ARCHS, index=IMAGENET_ARCHS.index("alexnet"),
                          key="arch.filters.arch", persist_state=PERSIST)
    try:
        st.image(_imagenet_filters(chosen), caption=f"{chosen}'s first convolution, trained on ImageNet.", width=420)
    except WeightsUnavailable as exc:
        st.info(exc.status.how_to_get(), icon=":material/inventory_2:")
    except ValueError as exc:
        st.info(f"The cached weights of {chosen} cannot be shown: {exc}", icon=":material/inventory_2:")

quiz.section("architectures")
