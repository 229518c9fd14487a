"""The app's session state in one place: the namespaced keys, their defaults, and the callbacks that change them.

Keys are namespaced by owner: "plan", "seed" and "data.*" are app-wide; "matrix.*" and "quadrant.*"
belong to the decision pages; "class.*" holds the classroom controls (the projector view, the class link last
applied), and "race.preset" the class preset whose lanes the race page runs (tl_core.classroom.presets). Widgets whose answers must survive a trip to another page are created
with `persist_state=PERSIST` (Streamlit otherwise drops a widget's key when its page is not shown).

Pages call `init_state()` too, although app.py already has. Because this app keeps its pages in a folder
named `pages/`, a freshly started server runs the legacy `pages/`-directory mode until some session has
executed app.py's `st.navigation`; a first visitor who deep-links to, say, /quadrant then runs the page
without app.py. The extra call keeps such a page from failing on missing keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from tl_core.training.plan import Plan, make_plan
from tl_core.classroom.presets import URL_PRESET, URL_SEED, URL_VIEW, Preset, get_preset, parse_scenario

PERSIST = "session"  # pass as persist_state= to keep a widget's value across page switches (needs key=)

DEFAULT_N_PER_CLASS = 20  # little data ...
DEFAULT_SIMILARITY = 0.8  # ... similar to the source: "fine-tune only the final layers", the default plan


def _default_plan() -> dict[str, Any]:
    return make_plan("finetune_top").to_dict()


# key -> default value, or a factory for mutable defaults
DEFAULTS: dict[str, Any | Callable[[], Any]] = {
    # app-wide
    "plan": _default_plan,  # the current Plan as a dict (Plan.to_dict); the Train page trains it
    "seed": 0,  # app-wide seed (sidebar); copied into the plan
    "data.n_per_class": DEFAULT_N_PER_CLASS,  # shapes-world target images per class, for the Train page
    "data.similarity": DEFAULT_SIMILARITY,  # shapes-world target similarity to the source, 0..1
    # pages/matrix.py: the four yes/no answers (widget keys)
    "matrix.source_labels": True,
    "matrix.target_labels": True,
    "matrix.same_domain": True,
    "matrix.same_task": False,
    # pages/quadrant.py (widget keys)
    "quadrant.mode": "shapes",  # "shapes" (shapes-world knobs) or "own" (about my own problem)
    "quadrant.size": DEFAULT_N_PER_CLASS,  # shapes world: labelled images per class, 5..1000
    "quadrant.similarity": DEFAULT_SIMILARITY,  # shapes world: similarity to the source, 0..1
    "quadrant.own_n": 50,  # own problem: labelled images per class
    "quadrant.own_similar": "similar",  # own problem: "similar" or "different"
    "quadrant.arch": "shapesnet",  # architecture, a key of tl_core.models.registry.ARCHS
    # classroom (app.py, pages/instructor.py, pages/race.py)
    "race.preset": None,  # key of the class preset whose lanes the race runs (tl_core.classroom.presets), or None
    "class.projector": False,  # projector view: only the race, large, no sidebar (sidebar toggle; ?view=projector)
    "class.link": None,  # the (preset, seed, view) query parameters last applied: a link applies once per session
    "class.link_problems": (),  # why parts of that link were refused, for the learner
}


def leave_legacy_pages_mode() -> None:
    """If Streamlit ran this page in its legacy pages/-folder mode, switch to app.py's router and rerun.

    A freshly started server decides the mode from the mere existence of a folder named pages/ next to app.py,
    until some session runs app.py's st.navigation. A first visitor who deep-links to, say, /quadrant would
    otherwise get the page without app.py: no sidebar, and a navigation menu listing raw file names.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def init_state() -> None:
    """Set every key of DEFAULTS that is missing from st.session_state; leave present ones alone. Idempotent."""
    leave_legacy_pages_mode()
    for key, default in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = default() if callable(default) else default


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


def _link() -> tuple[str | None, str | None, str | None]:
    return tuple(st.query_params.get(k) for k in (URL_PRESET, URL_SEED, URL_VIEW))


def apply_link() -> tuple[str, ...]:
    """Apply the URL's class link (?preset=...&seed=...&view=...) once per session and link; call it in app.py
    before the sidebar is drawn.

    A link is applied again only when its parameters change, so a learner who then changes the seed or the lanes
    keeps those changes on every rerun. Refused parts (an unknown preset, a bad seed) are reported and change
    nothing; valid parts are applied.

    Returns:
        One sentence per refused part of the current link (empty when all was fine or there is no link).
    """
    ss = st.session_state
    raw = _link()
    if raw == (None, None, None):
        return ()
    if raw == ss["class.link"]:
        return ss["class.link_problems"]
    scenario = parse_scenario(st.query_params.to_dict())
    if scenario.preset is not None:
        apply_preset(scenario.preset.key, scenario.seed)
    elif scenario.seed is not None:
        ss["seed"] = scenario.seed
        on_seed_change()
    if scenario.projector is not None:
        ss["class.projector"] = scenario.projector
    ss["class.link"], ss["class.link_problems"] = raw, scenario.problems
    return scenario.problems


def set_projector(on: bool) -> None:
    """Callback: turn the projector view on or off (and drop ?view= from the URL, without re-applying the link)."""
    st.session_state["class.projector"] = on
    if not on and URL_VIEW in st.query_params:
        del st.query_params[URL_VIEW]
        st.session_state["class.link"] = _link()
