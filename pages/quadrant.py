"""Page: the size-versus-similarity quadrant: from "how much data, how similar?" to a concrete training plan."""

from __future__ import annotations

import streamlit as st

from tl_core.models.registry import ARCHS
from tl_core.teaching.content import FREEZE_POINTS
from tl_core.teaching.plans import freeze_advice
from tl_core.teaching.quadrant import LOTS_PER_CLASS, SIMILAR_AT, boundary_note, classify_similarity, classify_size, plan_for, recommend
from tl_core.training.plan import STRATEGIES, Plan
from ui.charts.decisions import quadrant_figure
from ui.render import chart, show_plan
from ui import quiz
from ui.state import PERSIST, init_state, set_data, set_plan

OWN_SIMILARITY_STANDIN = {"similar": 0.8, "different": 0.25}  # shapes-world similarity that mimics each answer
SHAPES_N_RANGE = (5, 1000)  # the shapes world's images-per-class slider


def _use_plan(plan_dict: dict, n_per_class: int, similarity: float) -> None:
    """Callback of "Use this plan": store the plan and the shapes-world data knobs."""
    set_plan(Plan.from_dict(plan_dict))
    set_data(n_per_class, similarity)


init_state("quadrant")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
st.title(":material/explore: Size vs similarity")
st.markdown(
    "Once you know transfer learning applies, two questions decide **how much** of the source model to re-use: "
    "how much new training data is there, and how similar is it to the data the model was trained on?")

left, right = st.columns([2, 3], gap="large")
with left:
    mode = st.radio("Describe", ["shapes", "own"], key="quadrant.mode", horizontal=True, persist_state=PERSIST,
                    format_func={"shapes": "Shapes-world knobs", "own": "About my own problem"}.get)
    if mode == "own":
        n = int(st.number_input("Labelled images per class", min_value=1, max_value=1_000_000, step=1,
                                key="quadrant.own_n", persist_state=PERSIST,
                                help=f"{LOTS_PER_CLASS} or more per class counts as lots."))
        own_similar = st.radio("Compared with the source data (e.g. ImageNet photos), your images are",
                               ["similar", "different"], key="quadrant.own_similar", persist_state=PERSIST,
                               format_func={"similar": "Similar (same kind of pictures)",
                                            "different": "Different (X-rays, satellites, drawings, ...)"}.get)
        sim = OWN_SIMILARITY_STANDIN[own_similar]
        data_n = min(max(n, SHAPES_N_RANGE[0]), SHAPES_N_RANGE[1])
    else:
        n = int(st.slider("Target images per class", *SHAPES_N_RANGE, key="quadrant.size", persist_state=PERSIST,
                          help=f"{LOTS_PER_CLASS} or more per class counts as lots."))
        sim = float(st.slider("Similarity to the source", 0.0, 1.0, step=0.05, key="quadrant.similarity",
                              persist_state=PERSIST,
                              help=f"1 draws the target exactly like the source; from {SIMILAR_AT} up counts as "
                                   f"similar."))
        data_n = n
    arch = st.selectbox("Architecture", list(ARCHS), key="quadrant.arch", persist_state=PERSIST,
                        format_func=lambda a: f"{a} ({ARCHS[a].paper})")

size, similarity = classify_size(n), classify_similarity(sim)
rec = recommend(size, similarity)
plan = plan_for(size, similarity, arch=arch, seed=int(st.session_state["seed"]))

with left:
    st.subheader(f"{size.capitalize()} data, {similarity}: {rec.label}")
    st.markdown("\n".join(f"- {b}" for b in rec.bullets))
    st.markdown(rec.why)
    if rec.caveat:
        st.warning(rec.caveat, icon=":material/warning:")
    note = boundary_note(n, sim if mode == "shapes" else None)
    if note:
        st.info(note, icon=":material/info:")

with right:
    chart(quadrant_figure(size, similarity, point=(n, sim)),
          f"You are in the {size}-data, {similarity} cell: {rec.label.lower()}.", key="quadrant.chart")
    st.page_link("pages/quadrant_lab.py", label="Do these rules hold? Measure them in the quadrant lab", icon=":material/map:")

st.subheader(f"The plan: {STRATEGIES[plan.strategy].label}")
st.markdown(f"{STRATEGIES[plan.strategy].summary} {freeze_advice(size)}")
show_plan(plan, key="quadrant.plan_chart")

with st.expander("Freeze or fine-tune? What the course says"):
    st.markdown("\n".join(f"- {p}" for p in FREEZE_POINTS))

if mode == "own":
    st.caption(f"The Train page simulates your situation in the shapes world: {data_n} images per class at "
               f"similarity {sim:g}.")
if st.button("Use this plan", key="quadrant.use", type="primary", on_click=_use_plan,
             args=(plan.to_dict(), data_n, sim)):
    st.switch_page("pages/train.py")

quiz.section("quadrant")
