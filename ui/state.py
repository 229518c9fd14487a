"""The app's session state in one place: the namespaced keys, their defaults, and the callbacks that change them.

Keys are namespaced by owner: "plan", "seed" and "data.*" are app-wide; "matrix.*" and "quadrant.*"
belong to the decision pages. Widgets whose answers must survive a trip to another page are created
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

from tl_core.plan import Plan, make_plan

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
    "quadrant.arch": "shapesnet",  # architecture, a key of tl_core.archs.ARCHS
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
