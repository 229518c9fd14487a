"""Starting the runs that more than one page can start, with the session state their pages expect.

A race is started by the race page's Start and by a quiz answer's "Measure it"; a lab sweep by the quadrant lab's Run
and by a quiz answer. Both go through here, so the pages that show them (pages/race.py, pages/quadrant_lab.py) always
find the labels, the learner's pick, the address and the running configuration they draw from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import streamlit as st

from tl_core.classroom.presets import URL_PRESET, URL_SEED
from ui import live
from ui.state import URL_PICK, remember_link

if TYPE_CHECKING:
    from tl_core.data.datasets import DataSpec
    from tl_core.experiments.lab import LabConfig
    from tl_core.experiments.race import Lane
    from tl_core.jobs.manager import Job

RACE_SLOT = "race"  # the race page's job slot (ui.live)
LAB_SLOT = "quadrant_lab"  # the quadrant lab's job slot


def _keep_race_in_url(seed: int, predicted: str | None) -> None:
    """Put what the race depends on into the address (the class preset, the seed, the pick), so that a reload shows
    the same race (ui.state.restore_race)."""
    qp, preset = st.query_params, st.session_state.get("race.preset")
    if preset is not None:
        qp[URL_PRESET] = preset
    elif URL_PRESET in qp:
        del qp[URL_PRESET]
    qp[URL_SEED] = str(seed)
    if predicted is not None:
        qp[URL_PICK] = predicted
    elif URL_PICK in qp:
        del qp[URL_PICK]
    remember_link()  # the link's own parameters changed: not a new link to apply


def start_race(lanes: Sequence[Lane], data: DataSpec, predicted: str | None, label: str | None = None) -> Job | None:
    """Race the lanes on the data in this session's race slot, the learner's pick kept with the race.

    Use from an on_click callback (after ui.state.apply_preset when the race is a class preset's).

    Args:
        lanes: The competitors, in race order.
        data: The shapes-world data every lane trains on.
        predicted: The lane key the learner expects to win, or None.
        label: What the job is, for queue messages (default: "race of N lanes").

    Returns:
        The race's job, or None when another of this session's runs is going (ui.live says so).
    """
    from tl_core.jobs.work import RaceJob

    ss = st.session_state
    ss["race.labels"] = {lane.key: lane.label for lane in lanes}
    predicted = predicted if predicted in ss["race.labels"] else None
    job = live.start(RACE_SLOT, RaceJob(tuple(lanes), data, predicted), label=label or f"race of {len(lanes)} lanes")
    if job is not None:
        ss["race.pick"] = (job.id, predicted)  # shown through the race and in the reveal
        ss["race.prediction"] = None  # the next race needs a new prediction
        _keep_race_in_url(data.seed, predicted)
    return job


def start_sweep(config: LabConfig, label: str | None = None) -> Job | None:
    """Run a quadrant-lab sweep in this session's lab slot, and note it as the lab's running sweep.

    Args:
        config: A validated sweep.
        label: What the job is, for queue messages (default: "lab sweep of N runs").

    Returns:
        The sweep's job, or None when another of this session's runs is going.
    """
    from tl_core.jobs.work import LabSweepJob

    ss = st.session_state
    ss[f"{LAB_SLOT}.running"], ss[f"{LAB_SLOT}.running_config"] = "sweep", config
    ss[f"{LAB_SLOT}.error_kind"] = None  # a failure of this sweep shows in its own tab
    return live.start(LAB_SLOT, LabSweepJob(config), label=label or f"lab sweep of {config.n_lanes} runs")
