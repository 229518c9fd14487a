"""The Transfer Learning Playbook's entry point: registers the pages, holds the app-wide sidebar, runs the page.

Run with `streamlit run app.py`. To add a page, add one line to PAGES; sections appear in the order
they first occur there. A class link (`?preset=few_similar&seed=3&class=K7QX2`, made on the instructor page) puts the
session on that preset and seed, in that class; `?view=projector` (any case, or the sidebar toggle) shows only the
race, large, for a projector. A reload of a page whose URL names a run (`?run=`, ui.live) takes the run over and
restores what it ran (preset, data, seed) before the sidebar is drawn. A page that trains shows its title and a
placeholder at once on its first visit, while the background warm-up (ui.warm) finishes importing torch.
"""

from __future__ import annotations

import streamlit as st

from tl_core.training.device import describe_device
from tl_core.classroom.presets import MAX_SEED
from ui import warm
from ui import quiz
from ui.render import projector_style
from ui.state import PERSIST, apply_link, current_plan, init_state, on_seed_change

# (section, page file, title, icon). Icons are Material Symbols (":material/<name>:"): the Streamlit server serves
# that font itself, so they render offline and on machines without an emoji font. The first page is the default.
PAGES: list[tuple[str, str, str, str]] = [
    ("Decide", "pages/welcome.py", "What is transfer learning", ":material/school:"),
    ("Decide", "pages/matrix.py", "Domain & task matrix", ":material/grid_view:"),
    ("Decide", "pages/quadrant.py", "Size vs similarity", ":material/explore:"),
    ("Train", "pages/train.py", "Train live", ":material/fitness_center:"),
    ("Train", "pages/race.py", "The race", ":material/sports_score:"),
    ("Labs", "pages/matrix_lab.py", "The matrix, live", ":material/science:"),
    ("Labs", "pages/quadrant_lab.py", "Quadrant lab", ":material/map:"),
    ("Explore", "pages/architectures.py", "Architectures", ":material/account_balance:"),
    ("Your data", "pages/explorer.py", "Pretrained explorer", ":material/search:"),
    ("Your data", "pages/own_data.py", "Your own images", ":material/folder:"),
    ("Teach", "pages/instructor.py", "Instructor", ":material/cast_for_education:"),
]
RACE_PAGE = "pages/race.py"  # the only page the projector view shows
LIGHT_PAGES = {"", "matrix", "quadrant", "instructor"}  # url paths of pages that never import torch
QUESTION_EVERY_S = 5.0  # how often a student's page looks for a question the instructor pushed

st.set_page_config(page_title="Transfer Learning Playbook", page_icon=":material/school:", layout="wide")
init_state()
link_problems = apply_link()  # before the sidebar's widgets: a class link sets the seed, the data and the race
if "run" in st.query_params:  # a reload of a page with a run: take it over, and restore what it ran
    from ui.live import restore_from_url

    restore_from_url()
projector = bool(st.session_state["class.projector"])

sections: dict[str, list[st.Page]] = {}
for i, (section, path, title, icon) in enumerate(PAGES):
    sections.setdefault(section, []).append(st.Page(path, title=title, icon=icon, default=i == 0))
page = st.navigation(sections, position="hidden" if projector else "sidebar")
if projector and page.url_path != "race":  # the projector shows the race only
    st.switch_page(RACE_PAGE, query_params=st.query_params.to_dict())
slot = None
if page.url_path not in LIGHT_PAGES and not warm.ready():  # a first visit while torch still loads: never blank
    slot = st.empty()  # first thing in the main area, before the sidebar is drawn
    with slot.container():  # the page's title and a placeholder at once, while the warm-up finishes ...
        st.title(f"{page.icon} {page.title}")
        st.caption(":material/hourglass_top: Loading the models for this page… (only on the server's first visits)")

with st.sidebar:
    st.markdown("**Current plan**")
    st.caption(current_plan().describe())
    st.markdown(f"**Device:** {describe_device()}")
    st.number_input("Seed", min_value=0, max_value=MAX_SEED, step=1, key="seed", on_change=on_seed_change,
                    persist_state=PERSIST,  # else a page's st.switch_page resets it to 0
                    help="Seeds the data, the weights and the shuffling, so a run can be repeated exactly.")
    st.toggle(":material/co_present: Projector view", key="class.projector", persist_state=PERSIST,
              help="Only the race, in large type, without this sidebar: for the classroom projector. The race page "
                   "has a button to leave it.")
    quiz.sidebar()  # the learner's progress in the scenario questions, and the summary to hand in
if projector:
    projector_style()
for problem in link_problems:
    st.warning(problem, icon=":material/link:")
if st.session_state["live.lost_run"]:  # the link named a run this server no longer holds (ui.live)
    st.warning(st.session_state["live.lost_run"], icon=":material/link_off:")
    st.session_state["live.lost_run"] = None

if st.session_state["class.code"] and st.session_state["class.member"]:  # a student in a class: a pushed question
    @st.fragment(run_every=QUESTION_EVERY_S)
    def _pushed_question() -> None:
        quiz.student_form(st.session_state["class.code"], st.session_state["class.member"])

    _pushed_question()
if slot is not None:
    warm.start()
    warm.wait()  # (whole modules: code that peeks at sys.modules must never see a half-imported one) ...
    slot.empty()  # ... then the page itself, drawn at once from the imported modules (never two titles)
page.run()
warm.start()  # after the first page is drawn: import torch and the models in the background (once per process)
