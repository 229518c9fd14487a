"""Page: what transfer learning is, why it helps, and what "domain" and "task" mean, shown in the shapes world."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from tl_core.teaching import content
from ui.charts.diagrams import traditional_vs_transfer_dot
from ui import quiz
from ui.state import init_state

if TYPE_CHECKING:
    import numpy as np

PREVIEW_PER_CLASS = 4  # images per class in each preview grid


@st.cache_data(show_spinner=False)
def _preview(similarity: float | None, seed: int) -> tuple[np.ndarray, str, tuple[str, ...]]:
    """A preview grid of the source data (similarity None) or of a target at a similarity, with its description."""
    from tl_core.data import shapes  # here, not at the top: numpy's import would hold up the first page's title

    data = (shapes.make_source(PREVIEW_PER_CLASS, seed=seed, split="train") if similarity is None
            else shapes.make_target(similarity, PREVIEW_PER_CLASS, seed=seed, split="train"))
    return shapes.preview_grid(data, n_per_class=PREVIEW_PER_CLASS, scale=3), data.spec.describe(), data.classes


init_state("welcome")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
st.title(":material/school: What is transfer learning?")
st.markdown(f"> {content.DEFINITION}")
st.markdown("\n".join(f"- {line}" for line in content.WHEN_IT_MAKES_SENSE))
st.markdown(content.WHY_IT_HELPS)

st.subheader("Traditional ML versus transfer learning")
st.graphviz_chart(traditional_vs_transfer_dot(), width="stretch")
st.caption(f"**Takeaway:** {content.KNOWLEDGE_NOTE}")

st.subheader("Why bother")
for col, benefit in zip(st.columns(len(content.BENEFITS)), content.BENEFITS):
    with col.container(border=True):
        st.markdown(f"#### {benefit.icon} {benefit.title}")
        st.markdown("\n".join(f"- {p}" for p in benefit.points))

st.subheader("Source and target: domains and tasks")
st.caption(f"The course's wording, and the formal definitions of {content.PAN_YANG}, which the course cites.")
for d in content.DEFINITIONS:
    course, formal = st.columns(2)
    with course.container(border=True):
        st.markdown(f"**{d.term}**, in the course's words  \n{d.course}")
    with formal.container(border=True):
        st.markdown(f"**{d.term}**, formally (Pan & Yang)  \n{d.formal}  \n{d.differs_when}")
st.markdown(content.DEFINITIONS_BRIDGE)
st.markdown(f"The course's example: *{content.TRANSLATION_TITLES[0]}*, re-used for *{content.TRANSLATION_TITLES[1]}*.")
st.markdown(content.translation_table_markdown())  # a markdown table: this page needs no pandas (fast first page)

st.subheader("The same ideas in the shapes world")
st.markdown(content.SHAPES_WORLD_INTRO)
seed = int(st.session_state["seed"])
levels: list[float | None] = [None, *content.SIMILARITY_LEVELS]
for col, level in zip(st.columns(len(levels)), levels):
    grid, description, classes = _preview(level, seed)
    with col:
        st.markdown("**Source**" if level is None else f"**Target, similarity {level:g}**")
        st.image(grid, width="stretch")
        st.caption(f"{description}. Rows: {', '.join(classes)}.")
st.caption("**Takeaway:** as similarity falls, the target's domain drifts away from the source's look, and "
           "below 0.5 its task changes too. The decision pages ask how much that matters.")

with st.expander("Curriculum map (docs/CURRICULUM.md): where each part of the course is taught, and where the app "
                 "departs from it", icon=":material/map:"):
    st.markdown(content.curriculum_markdown())

st.info("Next: place a problem in the **Domain & task matrix**, then size up your data in **Size vs similarity**.",
        icon=":material/arrow_forward:")

quiz.section("welcome")
