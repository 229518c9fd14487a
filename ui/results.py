"""Streamlit views of one training run: its live view (status, messages, charts) and its finished result.

The Train page and the own-images page show runs with these; the charts come from ui.charts.training and the
job plumbing (start, stop, the live fragment) from ui.live.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from tl_core.jobs.manager import Job
from tl_core.fmt import pct
from tl_core.jobs.progress import run_progress
from tl_core.training.history import History, what_ran
from tl_core.training.records import RunResult
from ui import live
from ui.charts import training as charts
from ui.render import show_chart

NOTICE_PREFIXES = ("Out of GPU memory",)  # trainer events the learner must not miss: shown as warnings, not captions


def is_notice(message: str) -> bool:
    """Whether a trainer event is one the learner must see (e.g. the batch was halved after running out of memory)."""
    return message.startswith(NOTICE_PREFIXES)


def show_events(messages: list[str], prefix: str = "") -> None:
    """A run's events: notices as warnings, the rest as captions.

    Args:
        messages: The events' messages (History.events).
        prefix: Put before each message, e.g. a race lane's name.
    """
    for message in messages:
        if is_notice(message):
            st.warning(f"{prefix}{message}", icon=":material/memory:")
        else:
            st.caption(f":material/info: {prefix}{message}")


def show_notices(messages: list[str], prefix: str = "") -> None:
    """Only a finished run's notices (see `is_notice`), as warnings, for the results."""
    show_events([m for m in messages if is_notice(m)], prefix)


def draw_run(job: Job, records: list[Any], key_prefix: str, n_classes: int | None = None) -> None:
    """The live view of one training run, for `live_fragment`: status, the trainer's messages, the live charts.

    Args:
        job: The running job.
        records: Its buffer snapshot (tl_core.training.records).
        key_prefix: Prefix of the charts' element keys, e.g. "train.live.".
        n_classes: Number of classes, to compare accuracy with chance; optional.
    """
    h = History.from_records(records)
    live.show_status(job, run_progress(h, live.elapsed(job)))
    show_events(h.events)
    for name, c in charts.live_charts(h, n_classes).items():
        show_chart(c, key=f"{key_prefix}{name}")


def show_result(res: RunResult, key_prefix: str, summary: str, n_classes: int | None = None,
                val_images: Any = None, scale: int | None = None) -> None:
    """One finished (or stopped, or diverged) run: its status line, its charts, its confusion matrix, per-class
    accuracy and misclassified validation images (from val_images, upscaled by scale). Chart keys start with
    key_prefix."""
    if res.status == "finished":
        chance = f" (chance: {pct(1 / n_classes)})" if n_classes else ""
        st.success(f"{res.reason} Validation accuracy **{pct(res.final_val_acc)}**{chance}. {summary}.",
                   icon=":material/check_circle:")
    elif res.status == "cancelled":
        st.warning(f"{res.reason} {summary}.", icon=":material/stop_circle:")
    else:
        st.error(res.reason, icon=":material/error:")
    st.caption(f":material/schedule: {what_ran(res)}")  # what ran, and why it differs from the plan
    h = History.from_result(res)
    show_notices(h.events)
    for name, c in charts.live_charts(h, n_classes, status=res.status).items():
        show_chart(c, key=f"{key_prefix}{name}")
    if res.evaluation is not None:
        left, right = st.columns(2, gap="large")
        with left:
            c = charts.confusion_chart(res.evaluation)
            show_chart(c, key=f"{key_prefix}confusion")
        with right:
            c = charts.per_class_chart(res.evaluation)
            show_chart(c, key=f"{key_prefix}per_class")
        if val_images is not None:
            kw = {"scale": scale} if scale else {}
            examples = charts.misclassified(res.evaluation, val_images, k=8, **kw)
            st.subheader(":material/search: Misclassified validation images (worst first)")
            if examples:
                st.image([e.image for e in examples], caption=[e.caption for e in examples], width=110)
                st.caption("Each caption reads true class → predicted class (the model's confidence).")
            else:
                st.caption("No validation image was misclassified.")
