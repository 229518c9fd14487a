"""Page: the domain-and-task matrix, four yes/no questions that place a problem in Pan & Yang's taxonomy."""

from __future__ import annotations

import streamlit as st

from tl_core.experiments import demo_for
from tl_core.teaching.content import WORKED_CASES, WorkedCase
from tl_core.teaching.matrix import QUESTIONS, TABLE_COLUMNS, as_is_note, classify, pan_yang_table
from ui.charts.diagrams import tree_dot
from ui import quiz
from ui.render import markdown_table
from ui.state import PERSIST, init_state

KEYS = ("source_labels", "target_labels", "same_domain", "same_task")  # classify's order; widget keys "matrix.<k>"


def _load_case(case: WorkedCase) -> None:
    """Callback of a worked case's button: put its answers into the four questions."""
    for key, value in zip(KEYS, case.answers):
        st.session_state[f"matrix.{key}"] = value


def _yes_no(b: bool) -> str:
    return "yes" if b else "no"


init_state("matrix")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
st.title(":material/grid_view: Domain & task matrix")
st.markdown(
    "Transfer learning is not one technique but a family. Which member you need depends on where your labels "
    "are and on what differs between the source and the target. Answer four questions; the course's decision "
    "tree, after Pan & Yang's *A Survey on Transfer Learning* (2010), places your problem. A **domain** is a "
    "feature space with its distribution P(X); a **task** is a label space with its predictive function P(Y|X) "
    "(the formal definitions are on *What is transfer learning*).")

left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Your problem")
    for key in ("target_labels", "source_labels", "same_domain", "same_task"):
        question, help_text = QUESTIONS[key]
        st.radio(question, [True, False], format_func=lambda b: "Yes" if b else "No", key=f"matrix.{key}",
                 horizontal=True, help=help_text, persist_state=PERSIST)

setting = classify(*(st.session_state[f"matrix.{k}"] for k in KEYS))

with right:
    st.caption(setting.category_label)
    st.subheader(setting.headline)
    st.markdown(setting.explanation)
    if setting.tricky:
        st.warning(setting.tricky_note, icon=":material/warning:")
    st.markdown(f"**Example.** {setting.example}")
    for caveat in setting.caveats:
        st.info(caveat, icon=":material/info:")
    if note := as_is_note(setting):
        st.info(note, icon=":material/check_circle:")
        st.page_link("pages/explorer.py", label="Use a model as-is: the Pretrained explorer",
                     icon=":material/search:")
    if (demo := demo_for(setting.key)) is not None:
        st.page_link("pages/matrix_lab.py", label=f"See it live: {demo.title.lower()} in the lab",
                     icon=":material/science:", query_params={"setting": setting.key})

st.subheader("The course's decision tree")
st.graphviz_chart(tree_dot(setting), width="stretch")
st.caption("**Takeaway:** the target's labels decide first; without them you need source labels, and then whether "
           "the domains match decides between fixing sampling biases and adapting the domain. Dashed leaves and "
           "branches are the app's additions: honest names for answers that the course's tree sends to a leaf "
           "whose name does not fit them.")

st.subheader("Pan & Yang's table of settings")
rows = [["← your answers" if i == setting.table_row else "", *(row[c] for c in TABLE_COLUMNS)]
        for i, row in enumerate(pan_yang_table())]
st.markdown(markdown_table(["You", *TABLE_COLUMNS], rows, highlight=setting.table_row))
if setting.table_row is None:
    st.caption("**Takeaway:** your answers fit no row of the table; the headline above says why.")
elif setting.on_table:
    st.caption("**Takeaway:** your answers match the highlighted row exactly.")
else:
    st.caption(f"**Takeaway:** the highlighted row is the nearest setting; your answers leave it ({setting.off_table}), "
               f"as the notes above explain.")

st.subheader("Worked cases: the course's two running examples")
for col, case in zip(st.columns(len(WORKED_CASES)), WORKED_CASES):
    placed = classify(*case.answers)
    with col.container(border=True):
        st.markdown(f"**{case.title}**")
        src, tgt, dom, task = case.answers
        st.caption(f"Target labels {_yes_no(tgt)} · source labels {_yes_no(src)} · domains "
                   f"{'the same' if dom else 'different'} · tasks {'the same' if task else 'different'}")
        st.markdown(f"**{placed.headline}.** {case.matrix_why}")
        st.button("Load these answers", key=f"matrix.case.{case.key}", on_click=_load_case, args=(case,),
                  icon=":material/input:")

quiz.section("matrix")
