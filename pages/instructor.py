"""Page: for the instructor: class presets with a link that puts every student on the same race, and the projector.

Widget keys: "instructor.seed" (the class seed in the links), "instructor.open.<preset>" and
"instructor.project.<preset>" (open a preset here, normally or on the projector). Torch-free: it only reads the
presets and the job manager's counters.
"""

from __future__ import annotations

import streamlit as st

from tl_core.jobs.manager import peek_manager
from tl_core.classroom.presets import MAX_SEED, PRESETS, Preset, app_root, share_url
from ui.session import GRACE_S
from ui.state import PERSIST, apply_preset, init_state, set_projector

PAGE_PATH = "instructor"  # this page's URL path (from its file name)
RACE_PAGE = "pages/race.py"
FALLBACK_ROOT = "http://localhost:8501"  # when the browser's URL is unknown (e.g. in tests)


def _root() -> str:
    """The app's root URL as the browser sees it, so the links work for students on the same network."""
    url = st.context.url
    return app_root(url, PAGE_PATH) if url else FALLBACK_ROOT


def _open(key: str, seed: int, projector: bool) -> None:
    """Callback: put this session on the preset (and on the projector view if asked)."""
    apply_preset(key, seed)
    if projector:
        set_projector(True)


def _server() -> None:
    """What this server does now and how it is configured (the environment variables of the README)."""
    mgr = peek_manager()  # not created here: this page does not load torch, so it could not see a GPU
    if mgr is None:
        st.caption("No run has started on this server yet; the job manager starts with the first run.")
    else:
        stats = mgr.stats()
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Runs at once (limit)", stats["limit"], help="TLP_MAX_CONCURRENT_JOBS; default: the CPU cores, "
                                                               "1 on a GPU.")
        c2.metric("Running now", stats["running"])
        c3.metric("Waiting in the queue", stats["queued"], help="Served one student at a time, in turn.")
        c4.metric("CPU threads per run", mgr.thread_share(), help=f"At most {mgr.thread_cap} (TLP_TORCH_THREADS).")
    st.caption(f"A student who closes the tab loses their runs and uploads after {GRACE_S:g} s "
               f"(TLP_SESSION_GRACE_S). A reload within that time picks a run up again.")


def _preset(p: Preset, root: str, seed: int) -> None:
    with st.container(border=True):
        st.subheader(p.title)
        st.markdown(p.summary)
        lanes = " · ".join(lane.label for lane in p.lanes)
        st.markdown(f"**Data:** {p.describe_data()} (seed {seed}) · **lanes:** {lanes}  \n"
                    f"**The course's advice for this corner:** {p.advice}")
        st.markdown(f":material/psychology_alt: **Ask the class before the start:** {p.watch_for}")
        st.caption("Share this link: it opens the race on this preset and seed.")
        st.code(share_url(root, p.key, seed), language=None)
        c1, c2, _ = st.columns([1, 1, 2])
        if c1.button(":material/play_arrow: Open it here", key=f"instructor.open.{p.key}", on_click=_open, args=(p.key, seed, False)):
            st.switch_page(RACE_PAGE)
        if c2.button(":material/co_present: On the projector", key=f"instructor.project.{p.key}", on_click=_open,
                     args=(p.key, seed, True), help="The race only, in large type, without the sidebar."):
            st.switch_page(RACE_PAGE)
        with st.expander("Projector link"):
            st.code(share_url(root, p.key, seed, projector=True), language=None)


# ---- the page -------------------------------------------------------------------------------------------------
init_state("instructor")  # this page's keys (and the app-wide ones on a cold start, see ui.state)

st.title(":material/cast_for_education: Instructor")
st.markdown("Run the same race in every student's browser: pick a seed, share a preset's link (students open it "
            "and land on the race with the same data, seed and lanes), ask the question, let everyone predict, "
            "then start. On the projector, the race shows without the sidebar, in large type.")
_server()
seed = st.number_input("Class seed (in every link)", min_value=0, max_value=MAX_SEED, step=1, key="instructor.seed",
                       persist_state=PERSIST, help="The same seed gives everyone the same images and the same "
                                                   "starting weights, so every student sees the same race.")
root = _root()
for preset in PRESETS.values():
    _preset(preset, root, int(seed))
