"""The app's session state in one place: every page's keys and defaults, and the callbacks that change them.

Keys are namespaced by owner: "plan", "seed" and "data.*" are app-wide; every page owns "<page>.*" (its widgets,
its job slot "<slot>.job/result/error/done", see ui.live); "class.*" holds the classroom controls (the projector
view, the class link last applied), and "race.preset" the class preset whose lanes the race page runs
(tl_core.classroom.presets). `DEFAULTS` lists the app-wide keys and `PAGE_DEFAULTS` each page's, so that a newcomer
finds every key here. Widgets whose answers must survive a trip to another page are created with
`persist_state=PERSIST` (Streamlit otherwise drops a widget's key when its page is not shown).

Pages call `init_state("<page>")` first: it sets the app-wide keys (app.py has already, except on a cold start that
deep-links to a page, see `leave_legacy_pages_mode`) and that page's own keys. A page's defaults may be factories
that import the library lazily, so the first page never pays for torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from tl_core.classroom.polls import ClassClosed, get_registry, new_member
from tl_core.classroom.presets import (URL_CLASS, URL_PRESET, URL_SEED, URL_VIEW, Preset, find_preset, get_preset,
                                       parse_scenario)
from tl_core.training.plan import Plan, make_plan, recipe_for

PERSIST = "session"  # pass as persist_state= to keep a widget's value across page switches (needs key=)

DEFAULT_N_PER_CLASS = 20  # little data ...
DEFAULT_SIMILARITY = 0.8  # ... similar to the source: "fine-tune only the final layers", the default plan
SLOT_SUFFIXES = ("job", "result", "error", "done", "note")  # a job slot's keys, see ui.live


def _default_plan() -> dict[str, Any]:
    return make_plan("finetune_top").to_dict()


Default = Any | Callable[[], Any]  # a value, or a zero-argument factory for mutable or computed defaults

# key -> default: the app-wide keys, set on every run
DEFAULTS: dict[str, Default] = {
    "plan": _default_plan,  # the current Plan as a dict (Plan.to_dict); the Train page trains it
    "seed": 0,  # app-wide seed (sidebar); copied into the plan
    "data.n_per_class": DEFAULT_N_PER_CLASS,  # shapes-world target images per class, for the Train page
    "data.similarity": DEFAULT_SIMILARITY,  # shapes-world target similarity to the source, 0..1
    # pages/matrix.py: the four yes/no answers (widget keys, kept across pages)
    "matrix.source_labels": True,
    "matrix.target_labels": True,
    "matrix.same_domain": True,
    "matrix.same_task": False,
    # pages/quadrant.py (widget keys, kept across pages)
    "quadrant.mode": "shapes",  # "shapes" (shapes-world knobs) or "own" (about my own problem)
    "quadrant.size": DEFAULT_N_PER_CLASS,  # shapes world: labelled images per class, 5..1000
    "quadrant.similarity": DEFAULT_SIMILARITY,  # shapes world: similarity to the source, 0..1
    "quadrant.own_n": 50,  # own problem: labelled images per class
    "quadrant.own_similar": "similar",  # own problem: "similar" or "different"
    "quadrant.arch": "shapesnet",  # architecture, a key of tl_core.models.registry.ARCHS
    # classroom (app.py, pages/instructor.py, pages/race.py)
    "race.preset": None,  # key of the class preset whose lanes the race runs (tl_core.classroom.presets), or None
    "class.projector": False,  # projector view: only the race, large, no sidebar (sidebar toggle; ?view=projector)
    "class.link": None,  # the (preset, seed, view, class) query parameters last applied: once per session and link
    "class.link_problems": (),  # why parts of that link were refused, for the learner
    "class.code": None,  # the class (tl_core.classroom.polls) this session is in, or leads (instructor), or None
    "class.member": None,  # this tab's opaque member token in that class (None for the instructor and projector)
    # background jobs (ui.live)
    "live.slots": list,  # every job slot this session has used
    "live.lost_run": None,  # set when the link names a run this server no longer holds, shown once
}
URL_MEMBER = "member"  # query parameter: the tab's member token, so that a reload is the same member (no double vote)
URL_PICK = "pick"  # query parameter: the lane this tab predicted for the race in ?run= (kept through a reload)


def _slot(slot: str) -> dict[str, Default]:
    """A job slot's keys (ui.live): the latest job id, its result, its error and the job whose outcome is kept."""
    return {f"{slot}.{suffix}": None for suffix in SLOT_SUFFIXES}


def _race() -> dict[str, Default]:
    from tl_core.experiments.race import DEFAULT_RACE

    return {**_slot("race"), "race.strategies": list(DEFAULT_RACE), "race.own": False, "race.prediction": None,
            "race.pick": None,  # (job id, lane key): the prediction this session made for that race
            "race.labels": dict}  # lane key -> label, of the latest race started here


def _matrix_lab() -> dict[str, Default]:
    from tl_core.experiments import DEMOS

    knobs = {f"matrix_lab.{key}.{k.param}": k.default for key, demo in DEMOS.items() for k in demo.knobs}
    return {**_slot("matrix_lab"), "matrix_lab.setting": next(iter(DEMOS)), "matrix_lab.results": dict, **knobs}


def _quadrant_lab() -> dict[str, Default]:
    from tl_core.experiments.lab import DEFAULT_DIFFERENT, DEFAULT_SIMILARITIES, DEFAULT_SIZES, DIFFERENT_TARGETS, \
        LAB_STRATEGIES, SIMILAR_TARGET

    predictions = {f"quadrant_lab.predict.{key}": None  # the learner's prediction per target, before "cut at layer n"
                   for key in (SIMILAR_TARGET, *DIFFERENT_TARGETS)}
    return {**_slot("quadrant_lab"),
            "quadrant_lab.sizes": lambda: list(DEFAULT_SIZES),  # images per class swept
            "quadrant_lab.similarities": lambda: list(DEFAULT_SIMILARITIES),
            "quadrant_lab.strategies": lambda: list(LAB_STRATEGIES),
            "quadrant_lab.different": DEFAULT_DIFFERENT,  # which "different" target the sweep uses
            "quadrant_lab.n_seeds": 1, "quadrant_lab.cut_n": 20, "quadrant_lab.cut_seeds": 1,
            "quadrant_lab.sim_target": 0.5, "quadrant_lab.sim_n": 20, **predictions,
            "quadrant_lab.running": None,  # the kind ("sweep", "cut", "similarity") of the job in the slot
            "quadrant_lab.running_config": None,  # the LabConfig of a running sweep
            "quadrant_lab.error_kind": None,  # the kind whose tab shows the slot's error
            "quadrant_lab.outcomes": dict,  # kind -> the latest finished result
            "quadrant_lab.sweeps": dict}  # LabConfig -> finished LabResult, this session


def _own() -> dict[str, Default]:
    from tl_core.data.own import DEFAULT_VAL_FRACTION, ClassEditor
    from tl_core.training.planform import DEFAULT_MIN_STEPS

    return {**_slot("own"), "own.mode": "zip", "own.zip": None, "own.zip_error": None,
            "own.editor": ClassEditor,  # the class-by-class editor (tl_core.data.own.ClassEditor)
            "own.class_error": None, "own.arch": "shapesnet",
            "own.strategy": None,  # None until the page picks the default for the architecture and device
            "own.epochs": 10, "own.min_steps": DEFAULT_MIN_STEPS, "own.lr": lambda: recipe_for("shapesnet").lr,
            "own.val_fraction": DEFAULT_VAL_FRACTION, "own.confirm": False}


def _quiz() -> dict[str, Default]:
    from ui.quiz import DEFAULTS as QUIZ  # the quiz's own keys (progress, picks, runs), on every teaching page

    return dict(QUIZ)


# page -> a function returning that page's keys and defaults (called only when the page runs)
PAGE_DEFAULTS: dict[str, Callable[[], dict[str, Default]]] = {
    "welcome": _quiz, "matrix": _quiz, "quadrant": _quiz, "architectures": _quiz,
    "train": lambda: _slot("train"),
    "race": lambda: {**_race(), **_quiz()},
    "matrix_lab": _matrix_lab,
    "quadrant_lab": _quadrant_lab,
    "explorer": lambda: {"explorer.arch": "shapesnet", "explorer.source": "sample", "explorer.shape": "circle",
                         "explorer.seed": 0, "explorer.style": "plain"},
    "own": _own,
    "instructor": lambda: {"instructor.seed": lambda: int(st.session_state["seed"])},  # the class seed in the links
}


def leave_legacy_pages_mode() -> None:
    """If Streamlit ran this page in its legacy pages/-folder mode, switch to app.py's router and rerun.

    A freshly started server decides the mode from the mere existence of a folder named pages/ next to app.py,
    until some session runs app.py's st.navigation. A first visitor who deep-links to, say, /quadrant would
    otherwise get the page without app.py: no sidebar, and a navigation menu listing raw file names.

    This sets Streamlit's private `PagesManager.uses_pages_directory`, which st.navigation itself clears. No public
    API does it: the flag is the "relic of MPA v1" kept by streamlit/streamlit PR #10276, whose review (2025-02-21)
    reports that a pages folder plus st.navigation and a direct URL "sometimes completely switch back to MPAv1".
    Remove this when Streamlit drops the flag (or when the pages folder is renamed).
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def _apply(defaults: dict[str, Default]) -> None:
    ss = st.session_state
    for key, default in defaults.items():
        if key not in ss:
            ss[key] = default() if callable(default) else default


def init_state(page: str | None = None) -> None:
    """Set every missing app-wide key, and the page's own keys when `page` is given. Idempotent.

    Args:
        page: A key of PAGE_DEFAULTS, or None (app.py: the app-wide keys only).

    Raises:
        KeyError: For a page that is not registered in PAGE_DEFAULTS.
    """
    leave_legacy_pages_mode()
    _apply(DEFAULTS)
    if page is not None:
        _apply(PAGE_DEFAULTS[page]())


def current_plan() -> Plan:
    """The plan stored under "plan", as a Plan."""
    return Plan.from_dict(st.session_state["plan"])


def set_plan(plan: Plan) -> None:
    """Validate a plan and store it as the current plan (as a dict under "plan").

    Raises:
        ValueError: If the plan is invalid; nothing is stored then.
    """
    st.session_state["plan"] = plan.validate().to_dict()


def set_data(n_per_class: int, similarity: float) -> None:
    """Store the shapes-world data knobs the Train page will use.

    Raises:
        ValueError: If n_per_class is not a whole number of at least 1 or similarity is not in [0, 1];
            nothing is stored then.
    """
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or n_per_class < 1:
        raise ValueError(f"Images per class must be a whole number of at least 1; got {n_per_class!r}.")
    if not 0.0 <= float(similarity) <= 1.0:
        raise ValueError(f"Similarity must be from 0 to 1; got {similarity!r}.")
    st.session_state["data.n_per_class"] = n_per_class
    st.session_state["data.similarity"] = float(similarity)


def on_seed_change() -> None:
    """Callback of the sidebar seed: copy the new seed into the current plan."""
    st.session_state["plan"] = {**st.session_state["plan"], "seed": int(st.session_state["seed"])}


# ---- classroom: presets and links ---------------------------------------------------------------------------
def apply_preset(key: str, seed: int | None = None) -> Preset:
    """Put this session on a class preset: its data knobs, its race lanes (and the seed, if given).

    The race page then runs the preset's lanes and asks for a fresh prediction. Call it from a callback or before
    the sidebar's seed widget is drawn.

    Raises:
        ValueError: For an unknown preset; nothing is changed then.
    """
    preset = get_preset(key)
    ss = st.session_state
    if seed is not None:
        ss["seed"] = int(seed)
        on_seed_change()
    set_data(preset.n_per_class, preset.similarity)
    plain = list(dict.fromkeys(lane.strategy for lane in preset.lanes if lane.plain))
    if plain:
        ss["race.strategies"] = plain  # what the race's own lane picker shows if the learner leaves the preset
    ss["race.own"] = False
    ss["race.preset"] = preset.key
    ss["race.prediction"] = None
    return preset


def leave_preset() -> None:
    """Callback: race the lanes picked on the race page again instead of the class preset's."""
    st.session_state["race.preset"] = None
    st.session_state["race.prediction"] = None


def _link() -> tuple[str | None, ...]:
    return tuple(st.query_params.get(k) for k in (URL_PRESET, URL_SEED, URL_VIEW, URL_CLASS))


def apply_link() -> tuple[str, ...]:
    """Apply the URL's class link (?preset=...&seed=...&view=...&class=...) once per session and link; call it in
    app.py before the sidebar is drawn.

    A link is applied again only when its parameters change, so a learner who then changes the seed or the lanes
    keeps those changes on every rerun. Refused parts (an unknown preset, a bad seed, an expired class) are reported
    and change nothing; valid parts are applied. A student's tab joins the link's class under a member token kept in
    the URL (?member=), so a reload is the same member; the projector view watches the class without joining it.

    Returns:
        One sentence per refused part of the current link (empty when all was fine or there is no link).
    """
    ss = st.session_state
    raw = _link()
    if raw == (None,) * len(raw):
        return ()
    if raw == ss["class.link"]:
        return ss["class.link_problems"]
    scenario = parse_scenario(st.query_params.to_dict())
    problems = list(scenario.problems)
    if scenario.preset is not None:
        apply_preset(scenario.preset.key, scenario.seed)
    elif scenario.seed is not None:
        ss["seed"] = scenario.seed
        on_seed_change()
    if scenario.projector is not None:
        ss["class.projector"] = scenario.projector
    if scenario.class_code is not None:
        problem = join_class(scenario.class_code, watch_only=bool(ss["class.projector"]))
        if problem:
            problems.append(problem)
    ss["class.link"], ss["class.link_problems"] = raw, tuple(problems)
    return tuple(problems)


def join_class(code: str, *, watch_only: bool = False) -> str | None:
    """Put this session in a class: as a counted member (a student's tab), or watching only (projector,
    instructor). Returns why not, or None."""
    ss = st.session_state
    registry = get_registry()
    if not registry.is_open(code):
        return (f"The class {code} has ended (classes close a few hours after they open) or never existed: your "
                f"predictions are yours alone. Ask the instructor for the current link.")
    ss["class.code"] = code
    if watch_only:
        ss["class.member"] = None
        return None
    member = str(st.query_params.get(URL_MEMBER) or "") or ss["class.member"] or new_member()
    try:
        registry.join(code, member)
    except (ClassClosed, ValueError) as e:
        ss["class.code"] = None
        return str(e)
    ss["class.member"] = member
    if st.query_params.get(URL_MEMBER) != member:
        st.query_params[URL_MEMBER] = member
    return None


def lead_class(code: str) -> None:
    """Callback: this session leads a class (the instructor): it watches its polls without being counted."""
    st.session_state["class.code"] = code
    st.session_state["class.member"] = None


def remember_link() -> None:
    """After a page rewrote the link's own parameters (preset, seed, ...) in the URL: note them as applied, so the
    next run does not apply them again."""
    st.session_state["class.link"] = _link()


def restore_race(job_id: int, lanes: Any, data: Any, pick: str | None = None) -> None:
    """After a reload that took a race over (ui.live): put this session on what that race ran, before the sidebar
    is drawn: its class preset (found from its lanes and data) and seed, else its data knobs, seed and lanes; and
    the pick this tab made for it, if it is one of the race's lanes.

    Args:
        job_id: The race's job id (ui.live).
        lanes: The race's lanes (tl_core.experiments.race.Lane), in order.
        data: Its tl_core.data.datasets.DataSpec.
        pick: The lane key this tab predicted (from the URL), or None.
    """
    ss = st.session_state
    keys = [lane.key for lane in lanes]
    preset = find_preset(keys, data.n_per_class, data.similarity)
    if preset is not None:
        if ss.get("race.preset") != preset.key or int(ss["seed"]) != data.seed:
            apply_preset(preset.key, data.seed)
    else:
        ss["race.preset"] = None
        ss["seed"] = int(data.seed)
        on_seed_change()
        set_data(int(data.n_per_class), float(data.similarity))
        ss["race.strategies"] = [k for k in keys if k != "my_plan"]
        ss["race.own"] = "my_plan" in keys
        own = next((lane.plan for lane in lanes if lane.key == "my_plan"), None)
        if own is not None:
            set_plan(own)
    if pick in keys:
        ss["race.pick"] = (job_id, pick)


def set_projector(on: bool) -> None:
    """Callback: turn the projector view on or off (and drop ?view= from the URL, without re-applying the link)."""
    st.session_state["class.projector"] = on
    if not on and URL_VIEW in st.query_params:
        del st.query_params[URL_VIEW]
        st.session_state["class.link"] = _link()
