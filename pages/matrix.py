"""Page: the domain-and-task matrix, four yes/no questions that place a problem in Pan & Yang's taxonomy."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tl_core.teaching.content import DOMAIN_DEFINITION, TASK_DEFINITION
from tl_core.teaching.matrix import TABLE_COLUMNS, classify, pan_yang_table
from tl_core.experiments import demo_for
from ui.charts import theme
from ui.charts.diagrams import tree_dot
from ui import quiz
from ui.state import PERSIST, init_state

QUESTIONS: tuple[tuple[str, str, str], ...] = (  # (key, question, help)
    ("matrix.target_labels", "Are labels available in the **target** domain?",
     "Do you have at least some labelled examples of the problem you want to solve?"),
    ("matrix.source_labels", "Are labels available in the **source** domain?",
     "Is the data the original model (or your extra dataset) learnt from labelled?"),
    ("matrix.same_domain", "Are the source and target **domains** the same?",
     DOMAIN_DEFINITION + " Same input space, same distribution: yes."),
    ("matrix.same_task", "Are the source and target **tasks** the same?",
     TASK_DEFINITION + " Same labels, same relation to the inputs: yes."),
)

init_state("matrix")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
st.title(":material/grid_view: Domain & task matrix")
st.markdown(
    "Transfer learning is not one technique but a family. Which member you need depends on where your labels "
    "are and on what differs between the source and the target. Answer four questions; the course's decision "
    "tree, after Pan & Yang's *A Survey on Transfer Learning* (2010), places your problem.")

left, right = st.columns([2, 3], gap="large")
with left:
    st.subheader("Your problem")
    for key, question, help_text in QUESTIONS:
        st.radio(question, [True, False], format_func=lambda b: "Yes" if b else "No", key=key, horizontal=True,
                 help=help_text, persist_state=PERSIST)

setting = classify(
    source_labels=st.session_state["matrix.source_labels"], target_labels=st.session_state["matrix.target_labels"],
    same_domain=st.session_state["matrix.same_domain"], same_task=st.session_state["matrix.same_task"])

with left:
    st.caption(f"{setting.category.capitalize()} setting" if setting.category != "none" else "No transfer setting")
    st.subheader(setting.name)
    st.markdown(setting.explanation)
    if setting.tricky:
        st.warning(setting.tricky_note, icon=":material/warning:")
    st.markdown(f"**Example.** {setting.example}")
    for caveat in setting.caveats:
        st.info(caveat, icon=":material/info:")
    if (demo := demo_for(setting.key)) is not None:
        st.page_link("pages/matrix_lab.py", label=f"See it live: {demo.title.lower()} in the lab", icon=":material/science:",
                     query_params={"setting": setting.key})

with right:
    st.subheader("The course's decision tree")
    st.graphviz_chart(tree_dot(setting), width="stretch")
    st.caption("**Takeaway:** the target's labels decide first; without them you need source labels, "
               "and then whether the domains match decides between fixing biases and adapting the domain.")

st.subheader("Pan & Yang's table of settings")
table = pd.DataFrame(pan_yang_table(), columns=list(TABLE_COLUMNS))
table.insert(0, "You", ["your answers" if i == setting.table_row else "" for i in range(len(table))])


def _highlight(row: pd.Series) -> list[str]:
    on = row.name == setting.table_row
    return [f"background-color: {theme.BLUE}; color: white; font-weight: bold" if on else ""] * len(row)


st.dataframe(table.style.apply(_highlight, axis=1), hide_index=True, width="stretch")
if setting.table_row is None:
    st.caption("**Takeaway:** your answers describe one problem with more data; no row of the table applies.")
elif setting.on_table:
    st.caption("**Takeaway:** your answers match the highlighted row exactly.")
else:
    st.caption("**Takeaway:** the highlighted row is the nearest setting; the notes above say where your answers "
               "leave it.")

quiz.section("matrix")
