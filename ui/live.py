"""Streamlit helpers for a page's background job: start, stop, pick up the result, and the live-redrawing fragment.

A page owns one job "slot" ("train", "race"). Its session-state keys:
    "<slot>.job"     id of the slot's latest job in tl_core.jobs.manager' process-wide manager (int or None)
    "<slot>.result"  the latest finished (or stopped) job's result; kept across page switches
    "<slot>.error"   why the latest job could not run or failed, for the learner (str or None)
    "<slot>.done"    id of the job whose outcome is in "<slot>.result" / "<slot>.error"
    "<slot>.note"    what happened to a shared run this session left (str or None)

Training never runs on the script thread: `start` submits a job, and `live_fragment` redraws only the live part
of the page from the job's record buffer every `LIVE_EVERY_S` seconds while the job runs. While it waits in the
queue, the fragment shows only the queue position, every `QUEUED_EVERY_S` seconds (with 30 students queued at once,
their redraws would otherwise take CPU from the runs they wait for), and reruns the page once the job starts. When
the job ends, the fragment moves its outcome into session state and reruns the whole page once, which draws the
results and stops the timer.

Shared runs (tl_core.jobs.manager): Start on a run identical to one a classmate started attaches this session to
it; `sharers` says how many watch it, and Stop (`stop`) only detaches this session (the run is cancelled when
nobody watches it any more). "<slot>.note" then says what happened to the run this session left.

What survives what: switching pages keeps everything (session state). A browser reload starts a new session;
the page's URL carries `?run=<job id>-<token>`, where the token is an HMAC of the job and the session that
started it under a per-process secret (so nobody can guess another learner's run), so the new session picks the job up again (still running, or finished) for as long as this server process
holds it: the manager keeps a session's finished jobs until that session starts its next job, and the reaper
(ui.session) keeps the old session's jobs while the new one, which claims them, lives. A server restart loses
all runs; download the weights and the history to keep them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from tl_core.jobs.progress import Progress, queue_message
from tl_core.jobs.manager import (CANCELLED, DONE, FAILED, QUEUED, Job, JobContext, get_manager,
                                  peek_manager)
from ui import session
from ui.state import SLOT_SUFFIXES

LIVE_EVERY_S = 0.5  # the fragment's redraw interval while a job runs (also the UI benchmark's)
QUEUED_EVERY_S = 2.0  # ... and while it waits in the queue, next in line (only the position is shown then)
QUEUED_EVERY_S_PER_RUN_AHEAD = 2.0  # further back, every 2 s per run ahead of it (its position changes that slowly)
QUEUED_MAX_EVERY_S = 20.0  # ... but at least this often (28 waiting: the queue redraws ~3 times a second in all)
SHARED_REDRAWS_PER_S = 8.0  # a run's watchers redraw at most this often in all (30 on one shared race: every 3.75 s)
SLOTS_KEY = "live.slots"  # session-state key: every slot this session has used (`start` harvests them all)
URL_PARAM = "run"
_URL_KEY = secrets.token_bytes(16)  # signs the ?run= tokens; per server process, like the jobs themselves


def init_slot(slot: str) -> None:
    """Create the slot's session-state keys if missing (ui.state.SLOT_SUFFIXES), and remember the slot (idempotent)."""
    for suffix in SLOT_SUFFIXES:
        st.session_state.setdefault(f"{slot}.{suffix}", None)
    slots = st.session_state.setdefault(SLOTS_KEY, [])
    if slot not in slots:
        slots.append(slot)


def owner() -> str:
    """This browser session's id (ui.session): the owner of its jobs in the manager's fair queue."""
    return session.session_id()


def _token(student: str, job_id: int) -> str:
    """A token for the URL that only this server process can make, for this job and a student watching it."""
    return hmac.new(_URL_KEY, f"{student}:{job_id}".encode(), hashlib.sha256).hexdigest()[:20]


def current_job(slot: str) -> Job | None:
    """The slot's latest job, if the manager still has it."""
    return get_manager().get(st.session_state.get(f"{slot}.job"))


def is_active(slot: str) -> bool:
    """Whether the slot's job is queued or running."""
    job = current_job(slot)
    return job is not None and job.active


def harvest(slot: str) -> bool:
    """Move a finished job's outcome into session state (once per job). Returns whether anything changed.

    A finished or stopped job's result goes to "<slot>.result" (a stopped training run still has its finished
    epochs and an evaluation); a failed job's message goes to "<slot>.error" and the previous result stays.
    """
    init_slot(slot)
    job = current_job(slot)
    if job is None or job.active or st.session_state[f"{slot}.done"] == job.id:
        return False
    if job.state in (DONE, CANCELLED) and job.result is not None:
        st.session_state[f"{slot}.result"] = job.result
        st.session_state[f"{slot}.error"] = None
    elif job.state == FAILED:
        st.session_state[f"{slot}.error"] = job.error or "The run failed."
    st.session_state[f"{slot}.done"] = job.id
    return True


def _url_run() -> tuple[Job, str] | None:
    """The job the URL's ?run= names and the student whose token it carries, if this server still holds the job and
    that student still watches it (any slot)."""
    raw = st.query_params.get(URL_PARAM, "")
    job_id, _, token = str(raw).partition("-")
    mgr = peek_manager()  # no manager yet: no job to find (and none is created before a run needs it)
    if not job_id.isdigit() or mgr is None:
        return None
    job = mgr.get(int(job_id))
    if job is None:
        return None
    student = next((s for s in list(job.attached) if hmac.compare_digest(token, _token(s, job.id))), None)
    return None if student is None else (job, student)


def url_job() -> Job | None:
    """The job the URL's ?run= names, if this server still holds it and the token matches (any slot)."""
    found = _url_run()
    return None if found is None else found[0]


def slot_of(job: Job) -> str:
    """The slot a job was started from (its label's prefix)."""
    return job.label.partition(":")[0]


def adopt_from_url(slot: str) -> Job | None:
    """After a browser reload: take over the job named in the URL, if this server still holds it, the token matches
    and it belongs to this slot; this session is attached to it (so it keeps the run alive). Call at the top of the
    page, after `init_slot` (or from app.py before the sidebar, to restore what the run depends on first).

    Returns:
        The adopted job, or None (nothing to adopt, or the slot already has a job).
    """
    init_slot(slot)
    if st.session_state.get(f"{slot}.job") is not None:
        return None
    found = _url_run()
    if found is None or slot_of(found[0]) != slot:
        return None
    job, student = found
    get_manager().attach(job.id, owner(), replacing=student)  # the same student, in a new tab
    st.session_state[f"{slot}.job"] = job.id
    return job


def _restore_race(job: Job) -> None:
    from ui.state import URL_PICK, restore_race

    race = job.fn
    if hasattr(race, "lanes") and hasattr(race, "data"):
        restore_race(job.id, race.lanes, race.data, st.query_params.get(URL_PICK))


def _restore_train(job: Job) -> None:
    from ui.state import on_seed_change, set_data, set_plan

    run = job.fn
    if hasattr(run, "plan") and hasattr(run, "data"):  # a TrainJob: its plan, its data and its seed
        set_plan(run.plan)
        set_data(run.data.n_per_class, run.data.similarity)
        st.session_state["seed"] = int(run.data.seed)
        on_seed_change()


# slot -> puts the session back on what an adopted job ran (its settings), before the sidebar's widgets are drawn
RESTORERS: dict[str, Callable[[Job], None]] = {"race": _restore_race, "train": _restore_train}
LOST_RUN = ("The run in this link is no longer on this server: the copy of the app that ran it has stopped or "
            "restarted, so its results are gone. Start it again; your settings are below.")


def restore_from_url() -> Job | None:
    """After a browser reload (app.py, before the sidebar): take over the job the URL names, in its own slot, and
    restore what it ran (RESTORERS), so that the page shows the run with its own preset, data and seed. Only slots
    with a restorer are taken over here; the others' pages adopt their runs in `setup`.

    Returns:
        The adopted job, or None (nothing to adopt, or this session already has a job in that slot).
    """
    job = url_job()
    if job is None:
        if st.query_params.get(URL_PARAM) and not any(st.session_state.get(f"{s}.job") is not None
                                                      for s in st.session_state.get(SLOTS_KEY, [])):
            st.session_state["live.lost_run"] = LOST_RUN  # e.g. a replica that died mid-class (docs/SCALING.md)
            del st.query_params[URL_PARAM]  # a dead link: said once, not on every rerun
        return None
    if slot_of(job) not in RESTORERS:  # other pages adopt their runs themselves (setup)
        return None
    adopted = adopt_from_url(slot_of(job))
    if adopted is not None:
        RESTORERS[slot_of(job)](adopted)
    return adopted


def sync_url(slot: str) -> None:
    """Put the slot's job into the page URL, so that a browser reload can pick it up again."""
    job = current_job(slot)
    if job is not None:
        value = f"{job.id}-{_token(get_manager().student_of(owner()), job.id)}"
        if st.query_params.get(URL_PARAM) != value:
            st.query_params[URL_PARAM] = value


def sharers(slot: str) -> int:
    """How many sessions watch the slot's job (1: only this one; 0: no job)."""
    job = current_job(slot)
    return 0 if job is None else get_manager().sharers(job)


def setup(slot: str) -> None:
    """Everything a job page does first: init the keys, adopt a job from the URL, harvest, keep the URL in step,
    and register the session with the reaper (ui.session), claiming the owner of an adopted job."""
    init_slot(slot)
    adopt_from_url(slot)
    harvest(slot)
    sync_url(slot)
    session.track(claim_jobs=[st.session_state.get(f"{slot}.job")])


def start(slot: str, fn: Callable[[JobContext], Any], label: str) -> Job | None:
    """Submit a job for this session (use from an on_click callback). Start twice is safe: while the slot's job
    is active, that job is returned and nothing new is queued.

    Args:
        slot: The page's slot.
        fn: The job function (see tl_core.jobs.work).
        label: What the job is, shown in queue messages; prefixed with the slot.

    Returns:
        The slot's active job, or None when another of this session's jobs is still running (then
        "<slot>.error" says so).
    """
    init_slot(slot)
    mgr = get_manager()
    mine = current_job(slot)
    if mine is not None and mine.active:
        return mine
    me = owner()
    busy = [j for j in mgr.jobs_of(me) if j.active]
    if busy:
        st.session_state[f"{slot}.error"] = (f"You already have a run going ({busy[0].label}). Stop it or let it "
                                             f"finish first: each learner trains one thing at a time.")
        return None
    for s in st.session_state.get(SLOTS_KEY, []):  # keep every finished outcome before the manager forgets
        harvest(s)                                  # this session's old jobs
    mgr.release(me)
    job = mgr.submit(fn, owner=me, label=f"{slot}: {label}")
    st.session_state[f"{slot}.job"] = job.id
    st.session_state[f"{slot}.error"] = None
    st.session_state[f"{slot}.note"] = None
    return job


def quick_job(key: str, fn: Callable[[JobContext], Any], label: str, tag: str) -> None:
    """Submit a short side job (a measurement) under the job limits; `collect_quick` picks its result up.

    Use from an on_click callback. `tag` names what was measured (e.g. the plan), so a result is only shown
    for the input it belongs to. While this session has a run going, nothing is queued and the outcome says why.
    """
    job = get_manager().submit(fn, owner=owner(), label=label)
    if job.label != label:  # the session's active run came back: one thing at a time
        st.session_state[key] = (tag, f"Wait for your run ({job.label}) to finish, then measure.")
        return
    st.session_state[key + ".pending"] = (tag, job.id)


def collect_quick(key: str, spinner: str, wait_s: float = 60.0) -> tuple[str, Any] | None:
    """(tag, result) of the side job started with `quick_job(key, ...)`, waiting up to wait_s for it.

    The result is the job's return value, or a sentence saying why there is none. Returns None while the job is
    still queued or running after the wait (the queue position is shown), or when nothing was measured.
    """
    pending = st.session_state.get(key + ".pending")
    job = get_manager().get(pending[1]) if pending else None
    if job is not None:
        if job.active:
            with st.spinner(spinner):
                job.wait(wait_s)
        if job.active:
            st.info(f":material/hourglass_top: Still waiting: {queue_message(get_manager().position(job))}")
            return None
        st.session_state[key + ".pending"] = None
        outcome = job.result if job.state == DONE else f"It did not finish ({job.error or job.state})."
        st.session_state[key] = (pending[0], outcome)
    return st.session_state.get(key)


def stop(slot: str) -> None:
    """Stop the slot's job for this session (use from an on_click callback). Safe twice, and with no job at all.

    A run nobody else watches is cancelled (its salvaged result is shown as usual). A shared run goes on for the
    classmates who watch it: this session is detached and its slot forgets the run ("<slot>.note" says so).
    """
    init_slot(slot)
    job = current_job(slot)
    if job is None or not job.active:
        return
    left = get_manager().detach(job.id, owner())
    if left:
        st.session_state[f"{slot}.job"] = None
        st.session_state[f"{slot}.note"] = (f"You left the shared run; it goes on for {left} "
                                            f"classmate{'' if left == 1 else 's'}.")
        if URL_PARAM in st.query_params:
            del st.query_params[URL_PARAM]


def show_queued(job: Job) -> None:
    """How many runs will start before this one."""
    st.info(f":material/hourglass_top: Queued: {queue_message(get_manager().position(job))}")
    st.progress(0.0, text="Waiting for a free slot…")


def show_status(job: Job, progress: Progress) -> None:
    """The queue position while queued, else a progress bar with the ETA."""
    if job.state == QUEUED:
        show_queued(job)
    else:
        st.progress(progress.fraction, text=progress.text)


def elapsed(job: Job) -> float:
    """Seconds since the job started running (0 while queued)."""
    if job.started is None:
        return 0.0
    return (job.finished or time.monotonic()) - job.started


def redraw_every(job: Job | None) -> float | None:
    """How often a page redraws a job's live view, so that waiting learners' redraws do not take the CPU from the
    runs they wait for. None when the job is not active.

    Running: every LIVE_EVERY_S, slower when many sessions watch the same shared run. Queued: every QUEUED_EVERY_S
    when it starts next, and QUEUED_EVERY_S_PER_RUN_AHEAD more per run ahead of it (up to QUEUED_MAX_EVERY_S): the
    front of the queue sees each step, the back of a long queue redraws rarely, as its position changes rarely.
    """
    if job is None or not job.active:
        return None
    mgr = get_manager()
    if job.state == QUEUED:
        ahead = mgr.position(job)
        return min(QUEUED_MAX_EVERY_S, max(QUEUED_EVERY_S, ahead * QUEUED_EVERY_S_PER_RUN_AHEAD))
    return max(LIVE_EVERY_S, mgr.sharers(job) / SHARED_REDRAWS_PER_S)


def live_fragment(slot: str, draw: Callable[[Job, list[Any]], None]) -> None:
    """Draw the slot's live part in a fragment that reruns every LIVE_EVERY_S while the job runs, and shows the
    queue position every QUEUED_EVERY_S while it waits (both slower under load, see `redraw_every`).

    Args:
        slot: The page's slot.
        draw: Called with (job, buffer snapshot) on every redraw of a started job; draws status and live charts.
    """
    job = current_job(slot)
    drawn_as = job.state if job is not None and job.active else None  # the state this full run saw
    every = redraw_every(job)

    @st.fragment(run_every=every)
    def _live() -> None:
        job = current_job(slot)
        if job is None or st.session_state.get(f"{slot}.done") == job.id:
            return  # nothing running; the page draws the results
        if job.state == QUEUED:
            show_queued(job)
            return
        if drawn_as == QUEUED:  # it started since the page was drawn: rerun the page to redraw at the live pace
            st.rerun()
        draw(job, job.buffer.snapshot())
        if not job.active:  # it just ended: keep the outcome and redraw the whole page once
            harvest(slot)
            st.rerun()

    _live()
