"""Page: the size-versus-similarity quadrant: from "how much data, how similar?" to a concrete training plan."""

from __future__ import annotations

import streamlit as st

from tl_core.fmt import pct
from tl_core.models.registry import ARCHS
from tl_core.teaching.content import AS_IS, FEATURE_EXTRACTOR_WHEN, FREEZE_POINTS, THREE_CHOICES, WORKED_CASES
from tl_core.teaching.plans import plan_advice
from tl_core.teaching.quadrant import (LOTS_PER_CLASS, NEARLY_ALL, SIMILAR_AT, SIZE_STOPS, boundary_note,
                                       classify_similarity, classify_size, final_group_share, nearest_stop,
                                       offline_alternatives, plan_departure, plan_for, recommend, weights_note)
from tl_core.training.plan import STRATEGIES, Plan, recipe_for
from ui.charts.decisions import quadrant_figure
from ui.render import chart, show_plan
from ui import quiz
from ui.state import PERSIST, init_state, set_data, set_plan

OWN_SIMILARITY_STANDIN = {"similar": 0.8, "different": 0.25}  # shapes-world similarity that mimics each answer
SHAPES_N_RANGE = (SIZE_STOPS[0], SIZE_STOPS[-1])  # what the shapes world can generate per class


def _use_plan(plan_dict: dict, n_per_class: int, similarity: float) -> None:
    """Callback of "Use this plan" (and of the offline alternatives): store the plan and the shapes-world data."""
    set_plan(Plan.from_dict(plan_dict))
    set_data(n_per_class, similarity)


def _weights_missing(plan: Plan) -> str | None:
    """How to get the plan's ImageNet weights when they are not on this machine; None when it needs none or has them.

    Only a plan that starts from ImageNet weights imports the weights module (and so torch).
    """
    if offline_alternatives(plan) is None:
        return None
    from tl_core.models.weights import weights_status

    status = weights_status(plan.arch)
    return None if status.available else status.how_to_get()


init_state("quadrant")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
st.title(":material/explore: Size vs similarity")
st.markdown(
    "Once you know transfer learning applies, two questions decide **how much** of the source model to re-use: "
    "how much new training data is there, and how similar is it to the data the model was trained on? The course "
    "names three things to do with a trained model: "
    + "; ".join(f"**{name.lower()}** ({what})" for name, what in THREE_CHOICES) + ".")
st.info(AS_IS, icon=":material/check_circle:")
st.page_link("pages/explorer.py", label="Use a model entirely as-is: the Pretrained explorer", icon=":material/search:")

mode = st.radio("Describe", ["shapes", "own"], key="quadrant.mode", horizontal=True, persist_state=PERSIST,
                format_func={"shapes": "Shapes-world knobs", "own": "About my own problem"}.get)
c_size, c_sim, c_arch = st.columns(3, gap="medium")
if mode == "own":
    n = int(c_size.number_input("Labelled images per class", min_value=1, max_value=1_000_000, step=1,
                                key="quadrant.own_n", persist_state=PERSIST,
                                help=f"{LOTS_PER_CLASS} or more per class counts as lots."))
    own_similar = c_sim.radio("Compared with the source data (e.g. ImageNet photos), your images are",
                              ["similar", "different"], key="quadrant.own_similar", persist_state=PERSIST,
                              format_func={"similar": "Similar (same kind of pictures)",
                                           "different": "Different (X-rays, satellites, drawings, ...)"}.get)
    sim = OWN_SIMILARITY_STANDIN[own_similar]
    data_n = min(max(n, SHAPES_N_RANGE[0]), SHAPES_N_RANGE[1])
else:
    if st.session_state.get("quadrant.size") not in SIZE_STOPS:  # e.g. a value kept from the old linear slider
        st.session_state["quadrant.size"] = nearest_stop(int(st.session_state.get("quadrant.size") or 20))
    n = int(c_size.select_slider("Target images per class", SIZE_STOPS, key="quadrant.size", persist_state=PERSIST,
                                 help=f"Log-spaced: four stops below {LOTS_PER_CLASS} (little data) and four from "
                                      f"{LOTS_PER_CLASS} up (lots)."))
    sim = float(c_sim.slider("Similarity to the source", 0.0, 1.0, step=0.05, key="quadrant.similarity",
                             persist_state=PERSIST,
                             help=f"1 draws the target exactly like the source; from {SIMILAR_AT} up counts as "
                                  f"similar."))
    data_n = n
arch = c_arch.selectbox("Architecture", list(ARCHS), key="quadrant.arch", persist_state=PERSIST,
                        format_func=lambda a: f"{a} ({ARCHS[a].paper})")

size, similarity = classify_size(n), classify_similarity(sim)
rec = recommend(size, similarity)
plan = plan_for(size, similarity, arch=arch, seed=int(st.session_state["seed"]))

if (missing := _weights_missing(plan)) is not None:
    st.warning(f"**This plan cannot start on this machine yet:** it begins from {arch}'s ImageNet weights, and the "
               f"Train page's Start stays off without them. Two options work offline right now (buttons below the "
               f"plan).\n\n{missing}", icon=":material/cloud_off:")
elif offline_alternatives(plan) is not None:
    st.caption(f"This plan starts from {arch}'s ImageNet weights; they are on this machine.")

chart(quadrant_figure(size, similarity, point=(n, sim)),
      f"You are in the {size}-data, {similarity} cell: {rec.label.lower()}.", key="quadrant.chart")
st.page_link("pages/quadrant_lab.py", label="Do these rules hold? Measure them in the quadrant lab",
             icon=":material/map:")

st.subheader(f"{size.capitalize()} data, {similarity}: {rec.label}")
st.markdown("\n".join(f"- {b}" for b in rec.bullets))
st.markdown(rec.why)
if rec.caveat:
    st.warning(rec.caveat, icon=":material/warning:")
if note := boundary_note(n, sim if mode == "shapes" else None):
    st.info(note, icon=":material/info:")
if departure := plan_departure(size, similarity, arch):
    st.info(f"**Where the plan departs from the course.** {departure}", icon=":material/alt_route:")

st.subheader(f"The plan: {STRATEGIES[plan.strategy].label}")
st.markdown(f"{STRATEGIES[plan.strategy].summary} {plan_advice(plan)}")
st.caption(f"{weights_note(plan)} (Parameters measured on the meta device.)")
st.caption(f"**Fine-tuning recipe for {arch}.** {recipe_for(arch).describe()}")
show_plan(plan, key="quadrant.plan_chart")

if mode == "own":
    st.caption(f"The Train page simulates your situation in the shapes world: {data_n} images per class at "
               f"similarity {sim:g}.")
chosen = st.button("Use this plan", key="quadrant.use", type="primary", on_click=_use_plan,
                   args=(plan.to_dict(), data_n, sim))
if (alternatives := offline_alternatives(plan)) is not None:
    on_shapes, from_scratch = alternatives
    st.caption(f"Without {arch}'s ImageNet weights, these train offline: the same strategy on shapesnet, whose "
               f"source model ships with the app, or {arch} from scratch (nothing to download, but little data "
               f"rarely suffices to learn every weight).")
    a1, a2, _ = st.columns([2, 2, 1])
    chosen |= a1.button(f"Use {STRATEGIES[on_shapes.strategy].label.lower()} on shapesnet", key="quadrant.use_shapes",
              on_click=_use_plan, args=(on_shapes.to_dict(), data_n, sim), icon=":material/category:")
    chosen |= a2.button(f"Use {arch} from scratch", key="quadrant.use_scratch", on_click=_use_plan,
              args=(from_scratch.to_dict(), data_n, sim), icon=":material/restart_alt:")
if chosen:
    st.switch_page("pages/train.py")

with st.expander("When does a fixed feature extractor beat fine-tuning the final layers?"):
    st.markdown(FEATURE_EXTRACTOR_WHEN)
    share = final_group_share(arch)
    st.markdown(f"On **{arch}**, \"fine-tune only the final layers\" would fine-tune {share.groups[0]}: "
                f"{share.params:,} of {share.body:,} pretrained body weights ({pct(share.fraction)}). Above "
                f"{pct(NEARLY_ALL)} the little + similar plan switches to fixed feature extraction.")

st.subheader("Worked cases: the course's two running examples")
for col, case in zip(st.columns(len(WORKED_CASES)), WORKED_CASES):
    cell = recommend(case.size, case.similarity)
    with col.container(border=True):
        st.markdown(f"**{case.title}** · {case.size} data, {case.similarity}: *{cell.label.lower()}*")
        st.markdown(case.quadrant_why)

with st.expander("Freeze or fine-tune? What the course says"):
    st.markdown("\n".join(f"- {p}" for p in FREEZE_POINTS))

quiz.section("quadrant")
