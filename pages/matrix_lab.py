"""Page: the domain-and-task matrix, live: one small experiment per setting, run in the background, charted.

Widget keys: "matrix_lab.setting" (which demo), "matrix_lab.<setting>.<parameter>" (the demo's knobs),
"matrix_lab.run", "matrix_lab.stop". The page's job slot is "matrix_lab" (see ui.live); its result is a
(setting key, result) pair, and every finished demo's result is kept in "matrix_lab.results" by setting key.
`?setting=<key>` in the URL (the matrix page links here that way) opens that setting's demo.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from tl_core.experiments import DEMOS, Knob
from tl_core.jobs.progress import experiment_progress
from tl_core.jobs.work import DemoJob
from tl_core.teaching.matrix import classify
from ui import live
from ui.charts import labs as charts
from ui.render import chart
from ui.state import PERSIST, init_state

SLOT = "matrix_lab"
RESULTS = "matrix_lab.results"  # setting key -> the latest finished result of its demo
def _key(setting: str, param: str) -> str:
    return f"{SLOT}.{setting}.{param}"


def _follow_link() -> None:
    """`?setting=<key>` (the matrix page links here that way) opens that setting's demo, once."""
    wanted = st.query_params.get("setting")  # a deep link from the matrix page
    if wanted is not None:
        if wanted in DEMOS:
            st.session_state[f"{SLOT}.setting"] = wanted
        del st.query_params["setting"]


def _start() -> None:
    """Callback of Run: start the chosen demo with its knobs and the app-wide seed."""
    setting = st.session_state[f"{SLOT}.setting"]
    params = {k.param: st.session_state[_key(setting, k.param)] for k in DEMOS[setting].knobs}
    st.session_state[f"{SLOT}.running"] = setting
    job = DemoJob(setting, tuple(params.items()), int(st.session_state["seed"]))
    live.start(SLOT, job, label=DEMOS[setting].title)


def _draw_live(job, records: list) -> None:
    title = DEMOS.get(st.session_state.get(f"{SLOT}.running"), None)
    live.show_status(job, experiment_progress(records, live.elapsed(job)))
    c = charts.live_curves(records, title=f"Live: {title.title if title else 'the experiment'}")
    chart(c.fig, c.takeaway, key=f"{SLOT}.live")


def _knob(setting: str, knob: Knob) -> None:
    key = _key(setting, knob.param)
    if knob.widget == "select":
        choices = dict(knob.choices)
        st.selectbox(knob.label, list(choices), key=key, format_func=choices.get, help=knob.help or None,
                     persist_state=PERSIST)
    else:
        lo, hi, step = knob.choices
        st.slider(knob.label, lo, hi, step=step, key=key, help=knob.help or None, persist_state=PERSIST)


# ---- results, one function per demo ---------------------------------------------------------------------------------
def _show(setting: str, res: Any) -> None:
    st.caption(f"Finished in {res.wall_s:.1f} s.")
    draw = {
        "multi_task": (charts.multitask_accuracy_chart, charts.multitask_gradient_chart, charts.multitask_cosine_chart),
        "self_taught": (charts.self_taught_chart, charts.pretext_curve_chart),
        "domain_adaptation": (charts.adaptation_chart, charts.feature_gap_chart, charts.dann_curve_chart),
        "sample_selection_bias": (charts.covariate_chart, charts.covariate_sizes_chart, charts.weights_chart),
        "unsupervised": (charts.purity_chart, lambda r: charts.pca_chart(r, r.unsupervised[0]),
                         lambda r: charts.pca_chart(r, "raw pixels")),
    }[setting]
    for i, make in enumerate(draw):
        c = make(res)
        chart(c.fig, c.takeaway, key=f"{SLOT}.{setting}.chart{i}")


# ---- the page -------------------------------------------------------------------------------------------------------
init_state("matrix_lab")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
live.setup(SLOT)
_follow_link()
outcome = st.session_state.get(f"{SLOT}.result")
if outcome is not None:
    st.session_state[RESULTS][outcome[0]] = outcome[1]

st.title(":material/science: The matrix, live")
st.markdown("Each setting of the domain-and-task matrix as a small experiment in the shapes world. Pick one, set "
            "its knobs, press **Run**: it trains in the background in a few seconds, and the charts say what "
            "happened. The sidebar's seed makes every run repeatable.")
st.radio("Setting", list(DEMOS), key=f"{SLOT}.setting", horizontal=True, persist_state=PERSIST,
         format_func=lambda k: DEMOS[k].title)
setting = st.session_state[f"{SLOT}.setting"]
demo = DEMOS[setting]
where = classify(*demo.answers)

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader(f"{demo.title}")
    st.markdown(f"**The question.** {demo.question}")
    st.markdown(f"**The experiment.** {demo.how}")
with right:
    st.caption(f"{where.category.capitalize()} transfer learning · source labels "
               f"{'yes' if where.answers.source_labels else 'no'} · target labels "
               f"{'yes' if where.answers.target_labels else 'no'} · domains "
               f"{'the same' if where.answers.same_domain else 'different'} · tasks "
               f"{'the same' if where.answers.same_task else 'different'}")
    for knob in demo.knobs:
        _knob(setting, knob)

running = live.is_active(SLOT)
b1, b2, _ = st.columns([2, 1, 3])
b1.button(f":material/play_arrow: Run: {demo.title}", key=f"{SLOT}.run", type="primary", on_click=_start, disabled=running,
          help="Runs in the background; the charts appear when it is done.")
b2.button(":material/stop_circle: Stop", key=f"{SLOT}.stop", on_click=live.stop, args=(SLOT,), disabled=not running)
if st.session_state[f"{SLOT}.error"]:
    st.error(st.session_state[f"{SLOT}.error"], icon=":material/warning:")
live.live_fragment(SLOT, _draw_live)
result = st.session_state[RESULTS].get(setting)
if result is not None and not (running and st.session_state.get(f"{SLOT}.running") == setting):
    _show(setting, result)
elif result is None and not running:
    st.info("Press **Run** to see this setting in action.", icon=":material/science:")
