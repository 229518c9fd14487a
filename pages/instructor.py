"""Page: for the instructor: a class with a live poll, presets with a link that puts every student on the same race,
and the projector.

Widget keys: "instructor.class.open" (open a class: its code goes into every link), "instructor.seed" (the class
seed in the links), "instructor.open.<preset>", "instructor.project.<preset>" (open a preset here, normally or on
the projector) and "instructor.ask.<preset>" (make the preset's race the class poll: students' predictions are
tallied live here and on the projector, then revealed next to the winner). Torch-free: it only reads the presets,
the class registry (tl_core.classroom.polls) and the job manager's counters.
"""

from __future__ import annotations

import streamlit as st

from tl_core.classroom.polls import get_registry, race_poll, reveal_line
from tl_core.classroom.presets import MAX_SEED, PRESETS, Preset, app_root, share_url
from tl_core.jobs.manager import peek_manager
from ui import quiz
from ui.charts.race import poll_chart
from ui.render import show_chart
from ui.session import GRACE_S
from ui.state import PERSIST, apply_preset, init_state, lead_class, set_projector

PAGE_PATH = "instructor"  # this page's URL path (from its file name)
RACE_PAGE = "pages/race.py"
FALLBACK_ROOT = "http://localhost:8501"  # when the browser's URL is unknown (e.g. in tests)
TALLY_EVERY_S = 2.0  # how often the class panel redraws the live tally


def _root() -> str:
    """The app's root URL as the browser sees it, so the links work for students on the same network."""
    url = st.context.url
    return app_root(url, PAGE_PATH) if url else FALLBACK_ROOT


def _class_code() -> str | None:
    """The class this session leads, if it is still open."""
    code = st.session_state.get("class.code")
    return code if code and get_registry().is_open(code) else None


def _open_class() -> None:
    """Callback: open a new class; this session leads it."""
    lead_class(get_registry().open_class())


def _ask(key: str, seed: int) -> None:
    """Callback: make a preset's race (at this seed) the class's current poll."""
    code = _class_code()
    if code is not None:
        get_registry().push(code, race_poll(PRESETS[key], seed))


def _open(key: str, seed: int, projector: bool) -> None:
    """Callback: put this session on the preset (and on the projector view if asked, where a class is asked it)."""
    apply_preset(key, seed)
    if projector:
        _ask(key, seed)
        set_projector(True)


def _class_panel() -> None:
    """Open a class, or show the open one: its code, how many students joined, and the live tally of its poll."""
    code = _class_code()
    if code is None:
        if st.session_state.get("class.code"):
            st.warning(f"The class {st.session_state['class.code']} has ended (classes close after a few hours).",
                       icon=":material/event_busy:")
        st.markdown("**Run a class poll:** open a class, share a preset's class link, press *Ask the class*, and "
                    "everyone's prediction is tallied here and on the projector, then revealed next to the winner.")
        st.button(":material/groups: Open a class", key="instructor.class.open", on_click=_open_class, type="primary")
        return

    @st.fragment(run_every=TALLY_EVERY_S)
    def _live() -> None:
        registry = get_registry()
        left = registry.expires_in(code)
        c1, c2, c3 = st.columns(3)
        c1.metric("Class code", code, help="In every class link below. Only counts are kept, never names.")
        c2.metric("Students in the class", registry.members(code), help="Tabs that opened a class link.")
        c3.metric("Closes in", f"{int(left // 3600)} h {int(left % 3600 // 60):02d} min")
        poll = registry.current(code)
        if poll is None:
            st.caption("No question asked yet: press *Ask the class* under a preset.")
            return
        counts = registry.tally(code, poll.id)
        answer = registry.answer(code, poll.id)
        st.markdown(f"**Asked:** {poll.prompt}")
        show_chart(poll_chart(list(poll.labels), [counts[o] for o in poll.options],
                              answer=poll.options.index(answer) if answer in poll.options else None),
                   key="instructor.tally")
        if answer is not None:
            st.success(reveal_line(counts, answer, poll.label(answer)), icon=":material/emoji_events:")

    with st.container(border=True):
        _live()
    with st.expander(":material/quiz: Push a scenario question to the class"):
        quiz.push_control(code)  # the same poll: students answer on their page, the tally shows above


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
        shared = mgr.counters()
        st.caption(f"Shared runs: {shared['computed']} computed so far; {shared['watching']} sessions watch the runs "
                   f"going now; {shared['cached']} finished results kept for late arrivals "
                   f"({shared['cached_bytes'] / 2**20:.1f} MB).")
    st.caption(f"A student who closes the tab loses their runs and uploads after {GRACE_S:g} s "
               f"(TLP_SESSION_GRACE_S). A reload within that time picks a run up again.")


def _preset(p: Preset, root: str, seed: int, code: str | None) -> None:
    with st.container(border=True):
        st.subheader(p.title)
        st.markdown(p.summary)
        lanes = " · ".join(lane.label for lane in p.lanes)
        st.markdown(f"**Data:** {p.describe_data()} (seed {seed}) · **lanes:** {lanes}  \n"
                    f"**The course's advice for this corner:** {p.advice}")
        st.markdown(f":material/psychology_alt: **Ask the class before the start:** {p.watch_for}")
        st.caption("Share this link: it opens the race on this preset and seed"
                   + (f", in class {code} (students' predictions count in its poll)." if code else "."))
        st.code(share_url(root, p.key, seed, class_code=code), language=None)
        c1, c2, c3, _ = st.columns([1, 1, 1, 1])
        if c1.button(":material/play_arrow: Open it here", key=f"instructor.open.{p.key}", on_click=_open,
                     args=(p.key, seed, False)):
            st.switch_page(RACE_PAGE)
        if c2.button(":material/co_present: On the projector", key=f"instructor.project.{p.key}", on_click=_open,
                     args=(p.key, seed, True), help="The question, the class's predictions, the race and the reveal, "
                                                    "in large type, without the sidebar."):
            st.switch_page(RACE_PAGE)
        if code is not None:
            c3.button(":material/how_to_vote: Ask the class", key=f"instructor.ask.{p.key}", on_click=_ask,
                      args=(p.key, seed), help="Make this race the class poll: predictions are tallied above.")
        with st.expander("Projector link"):
            st.code(share_url(root, p.key, seed, projector=True, class_code=code), language=None)


# ---- the page -------------------------------------------------------------------------------------------------
init_state("instructor")  # this page's keys (and the app-wide ones on a cold start, see ui.state)

st.title(":material/cast_for_education: Instructor")
st.markdown("Run the same race in every student's browser: pick a seed, share a preset's link (students open it "
            "and land on the race with the same data, seed and lanes), ask the question, let everyone predict, "
            "then start. Identical races share one computation, so the whole class gets its result at once. On the "
            "projector, the question, the class's predictions, the race and the reveal show in large type.")
_server()
_class_panel()
seed = st.number_input("Class seed (in every link)", min_value=0, max_value=MAX_SEED, step=1, key="instructor.seed",
                       persist_state=PERSIST, help="The same seed gives everyone the same images and the same "
                                                   "starting weights, so every student sees the same race.")
root = _root()
code = _class_code()
for preset in PRESETS.values():
    _preset(preset, root, int(seed), code)
