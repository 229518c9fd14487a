"""This browser session's id, its private temp folder, and the reaper that cleans up after sessions that ended.

Streamlit has no public "session ended" hook, so one daemon thread per server process (started once through
`st.cache_resource`) checks every REAP_EVERY_S seconds which of the sessions it knows are still connected
(`streamlit.runtime.get_instance().is_active_session`). A session that has been gone for GRACE_S seconds (longer
than the two minutes Streamlit keeps a disconnected session for a reconnect) loses its temp folder
(`tl_core.data.safe_io.remove_session_dir`) and its jobs are cancelled and forgotten (`tl_core.jobs.manager`).

A browser reload starts a new session that may take over a job of the old one (ui.live's `?run=` URL). The new
session then `claim`s the old owner, and the old owner's jobs are kept for as long as a claiming session lives.

The decisions are plain functions (`sessions_to_clean`, `clean_session`) and a `Reaper` whose clock, liveness
check and clean-up are injected, so tests drive it without threads or sleeping.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from tl_core.data.safe_io import remove_session_dir, session_dir
from tl_core.settings import positive_float


# Both can be lowered through the environment (the browser test does, to watch a clean-up happen).
REAP_EVERY_S = positive_float("TLP_REAP_EVERY_S", 30.0)  # seconds between two checks of which sessions are alive
GRACE_S = positive_float("TLP_SESSION_GRACE_S", 180.0)  # a session gone this long loses its folder and jobs
# (Streamlit keeps a disconnected session 120 s for a reconnect; 180 s outlasts that.)
_FALLBACK_KEY = "session.id"  # session-state key of the id used where no real Streamlit server runs (AppTest)


# ---- this session ----------------------------------------------------------------------------------------
def _real_runtime() -> runtime.Runtime | None:
    """The server's Runtime, or None when there is none or it is a stand-in (AppTest uses a MagicMock)."""
    if not runtime.exists():
        return None
    rt = runtime.get_instance()
    return rt if type(rt) is runtime.Runtime else None


def session_id() -> str:
    """This browser session's id.

    Returns:
        Streamlit's session id under a real server; otherwise (AppTest, bare mode) a random id kept in
        session state, so that two test apps in one process never share a folder.
    """
    ctx = get_script_run_ctx()
    if ctx is not None and _real_runtime() is not None:
        return ctx.session_id
    if _FALLBACK_KEY not in st.session_state:
        st.session_state[_FALLBACK_KEY] = f"local-{uuid.uuid4().hex}"
    return st.session_state[_FALLBACK_KEY]


def my_dir() -> Path:
    """This session's private temp folder (created if needed, mode 0o700); removed when the session ends."""
    return session_dir(session_id())


# ---- the pure logic ----------------------------------------------------------------------------------------
def sessions_to_clean(known: Iterable[str], alive: set[str], claims: dict[str, set[str]],
                      gone_since: dict[str, float], now: float, grace: float = GRACE_S
                      ) -> tuple[list[str], dict[str, float]]:
    """Which known sessions to clean up now.

    A session counts as alive if the server still has it, or if an alive session claims it (took over its job
    after a reload). A session is cleaned once it has been continuously not alive for at least `grace` seconds.

    Args:
        known: Every session id the reaper tracks.
        alive: The ids the server reports as connected.
        claims: owner id -> ids of the sessions that claim it.
        gone_since: id -> when it was first seen not alive (from the previous call).
        now: The current time, in the same clock as gone_since.
        grace: Seconds a session must stay gone.

    Returns:
        (ids to clean, in sorted order; the new gone_since for the ids not cleaned).
    """
    def is_alive(sid: str) -> bool:
        return sid in alive or any(c in alive for c in claims.get(sid, ()) if c != sid)

    clean: list[str] = []
    still_gone: dict[str, float] = {}
    for sid in sorted(set(known)):
        if is_alive(sid):
            continue
        since = gone_since.get(sid, now)
        if now - since >= grace:
            clean.append(sid)
        else:
            still_gone[sid] = since
    return clean, still_gone


def clean_session(sid: str, remove_dir: Callable[[str], None] = remove_session_dir,
                  cancel_owner: Callable[[str], int] | None = None,
                  forget: Callable[[str], None] | None = None) -> int:
    """Clean up after one ended session: delete its temp folder, cancel its active jobs, drop its finished ones.

    Args:
        sid: The session id.
        remove_dir: Deletes the session's folder (default: tl_core.data.safe_io.remove_session_dir).
        cancel_owner: Cancels the session's jobs, returning how many (default: the job manager's).
        forget: Drops the session's finished jobs (default: the job manager's).

    Returns:
        How many active jobs were cancelled.
    """
    if cancel_owner is None or forget is None:
        from tl_core.jobs.manager import get_manager

        mgr = get_manager()
        cancel_owner = cancel_owner or mgr.cancel_owner
        forget = forget or mgr.forget
    remove_dir(sid)
    cancelled = cancel_owner(sid)
    forget(sid)  # finished jobs only; a cancelled one that is still stopping is dropped on the next clean-up
    return cancelled


@dataclass
class Reaper:
    """Tracks sessions and cleans up after those that ended. Thread-safe; `tick` does one round."""

    is_alive: Callable[[str], bool]  # whether the server still has a session
    clock: Callable[[], float] = time.monotonic  # seconds, monotonic
    grace: float = GRACE_S  # see sessions_to_clean
    clean: Callable[[str], object] = clean_session  # the clean-up of one session
    known: set[str] = field(default_factory=set)  # session ids seen by register
    claims: dict[str, set[str]] = field(default_factory=dict)  # owner id -> sessions that claim it
    gone_since: dict[str, float] = field(default_factory=dict)  # id -> first time seen gone
    cleaned: list[str] = field(default_factory=list)  # every id cleaned so far, in order (for tests and logs)
    stop: threading.Event = field(default_factory=threading.Event)  # set it to end run_forever
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def register(self, sid: str) -> None:
        """Start tracking a session (idempotent)."""
        with self._lock:
            self.known.add(sid)

    def claim(self, owner: str, by: str) -> None:
        """Keep `owner`'s jobs for as long as session `by` lives (`by` took over a job of `owner`)."""
        if owner == by:
            return
        with self._lock:
            self.known.update((owner, by))
            self.claims.setdefault(owner, set()).add(by)

    def tick(self) -> list[str]:
        """One round: ask which sessions are alive, clean those gone for long enough. Returns the ids cleaned."""
        with self._lock:
            known = set(self.known) | set(self.claims)
            claims = {k: set(v) for k, v in self.claims.items()}
            gone_since = dict(self.gone_since)
        watched = known | {c for v in claims.values() for c in v}
        alive = {sid for sid in watched if self.is_alive(sid)}
        to_clean, still_gone = sessions_to_clean(known, alive, claims, gone_since, self.clock(), self.grace)
        for sid in to_clean:
            self.clean(sid)
        with self._lock:
            self.gone_since = still_gone
            for sid in to_clean:
                self.known.discard(sid)
                self.claims.pop(sid, None)
                for claimers in self.claims.values():
                    claimers.discard(sid)
            self.cleaned.extend(to_clean)
        return to_clean

    def run_forever(self, every: float = REAP_EVERY_S) -> None:
        """Call tick every `every` seconds until `self.stop` is set (the body of the daemon thread)."""
        while not self.stop.wait(every):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a failed round must not end the reaper; the next one retries
                import traceback

                traceback.print_exc()


# ---- the process-wide reaper -------------------------------------------------------------------------------
def _server_is_alive(sid: str) -> bool:
    rt = _real_runtime()
    return True if rt is None else rt.is_active_session(sid)


@st.cache_resource(show_spinner=False, on_release=lambda reaper: reaper.stop.set())
def _reaper() -> Reaper:
    """The one reaper of this server process, with its daemon thread (started on first use; if the resource
    cache is cleared, the old thread stops and the next page run starts a new one)."""
    reaper = Reaper(is_alive=_server_is_alive)
    threading.Thread(target=reaper.run_forever, name="tl-session-reaper", daemon=True).start()
    return reaper


def track(claim_jobs: Iterable[int | None] = ()) -> str:
    """Register this session with the reaper (under a real server only) and claim the owners of adopted jobs.

    Call it near the top of a page. Where no real server runs (AppTest), nothing is started.

    Args:
        claim_jobs: Ids of jobs this session shows (for example the slot's job after a reload took it over);
            their owners are kept while this session lives.

    Returns:
        This session's id.
    """
    sid = session_id()
    if _real_runtime() is None:
        return sid
    reaper = _reaper()
    reaper.register(sid)
    ids = [j for j in claim_jobs if j is not None]
    if ids:
        from tl_core.jobs.manager import get_manager

        mgr = get_manager()
        for jid in ids:
            job = mgr.get(jid)
            if job is not None:
                reaper.claim(job.owner, by=sid)
    return sid
