"""Page: the domain-and-task matrix, live: one small experiment per setting, run in the background, charted.

Widget keys: "matrix_lab.setting" (which demo), "matrix_lab.<setting>.<parameter>" (the demo's knobs),
"matrix_lab.run", "matrix_lab.stop". The page's job slot is "matrix_lab" (see ui.live); its result is a
(setting key, result) pair, and every finished demo's result is kept in "matrix_lab.results" by setting key.
`?setting=<key>` in the URL (the matrix page links here that way) opens that setting's demo.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from tl_core.experiments import DEMOS
from tl_core.jobs.progress import experiment_progress
from tl_core.jobs.work import DemoJob
from tl_core.teaching.matrix import classify
from ui import live
from ui.charts import labs as charts
from ui.render import chart
from ui.state import PERSIST, init_state

SLOT = "matrix_lab"
RESULTS = "matrix_lab.results"  # setting key -> the latest finished result of its demo
ANSWERS = {  # the matrix answers (source labels, target labels, same domain, same task) that lead to each demo
    "multi_task": (True, True, True, False), "self_taught": (False, True, True, False),
    "domain_adaptation": (True, False, False, True), "sample_selection_bias": (True, False, True, True),
    "unsupervised": (False, False, False, False),
}
# The knobs per demo: (parameter, widget, label, choices or (min, max, step), default, help)
KNOBS: dict[str, list[tuple[str, str, str, Any, Any, str]]] = {
    "multi_task": [
        ("second_task", "select", "Second task", {"fill": "filled or outlined", "colour": "colour (hue sector)",
                                                  "size": "small or large"}, "fill",
         "The label learnt next to the shape, from the same images."),
        ("n_per_class", "slider", "Training images per shape", (10, 100, 5), 30, "Fewer images: sharing matters more."),
        ("steps", "slider", "Steps per run", (50, 400, 25), 150, "Each of the three runs takes this many steps."),
    ],
    "self_taught": [
        ("pretext", "select", "Pretext task on the unlabelled images",
         {"geometry": "geometry of the figure", "autoencoder": "rebuild the image (autoencoder)"}, "geometry",
         "What the network must predict about each unlabelled image; the answer comes from its pixels."),
        ("n_labelled_per_class", "slider", "Labelled target images per class", (2, 50, 1), 10,
         "Self-taught learning shines when labels are scarce."),
        ("pretext_steps", "slider", "Pretext steps", (50, 400, 25), 200, "Training steps on the unlabelled images."),
    ],
    "domain_adaptation": [
        ("look", "select", "The target domain looks like",
         {"outline": "outlines only", "shifted": "texture, noise, low contrast (shift 0.8)",
          "shifted_outline": "outlines on a shifted background"}, "outline",
         "The source domain is plain filled shapes."),
        ("steps", "slider", "DANN steps", (50, 300, 25), 150, "Each step sees 32 source and 32 target images."),
    ],
    "sample_selection_bias": [
        ("bias", "slider", "Strength of the size bias", (1.0, 8.0, 0.5), 4.0,
         "How strongly the labelled sample favours large shapes (and the target small ones)."),
        ("repeats", "slider", "Repeats", (1, 10, 1), 5, "Independent draws of the biased and the target sample."),
        ("feature_layer", "select", "The classifier sees the source model's features after",
         {"block1": "block1", "block2": "block2", "block3": "block3", "block4": "block4 (final)"}, "block2",
         "A simpler (earlier) representation leaves the classifier more to get wrong on small shapes."),
    ],
    "unsupervised": [
        ("similarity", "slider", "Similarity of the target images to the source", (0.5, 1.0, 0.05), 0.8,
         "1 draws them like the source data; lower adds texture, noise and low contrast."),
        ("n_per_class", "slider", "Unlabelled images per hidden class", (20, 150, 10), 50, ""),
        ("k", "slider", "Clusters (k)", (2, 8, 1), 4, "There are four hidden shapes."),
    ],
}


def _key(setting: str, param: str) -> str:
    return f"{SLOT}.{setting}.{param}"


def _init() -> None:
    """Defaults for every knob, the demo choice and the results store (idempotent)."""
    st.session_state.setdefault(f"{SLOT}.setting", next(iter(DEMOS)))
    st.session_state.setdefault(RESULTS, {})
    for setting, knobs in KNOBS.items():
        for param, _, _, _, default, _ in knobs:
            st.session_state.setdefault(_key(setting, param), default)
    wanted = st.query_params.get("setting")  # a deep link from the matrix page
    if wanted is not None:
        if wanted in DEMOS:
            st.session_state[f"{SLOT}.setting"] = wanted
        del st.query_params["setting"]


def _start() -> None:
    """Callback of Run: start the chosen demo with its knobs and the app-wide seed."""
    setting = st.session_state[f"{SLOT}.setting"]
    params = {param: st.session_state[_key(setting, param)] for param, *_ in KNOBS[setting]}
    st.session_state[f"{SLOT}.running"] = setting
    job = DemoJob(setting, tuple(params.items()), int(st.session_state["seed"]))
    live.start(SLOT, job, label=DEMOS[setting].title)


def _draw_live(job, records: list) -> None:
    title = DEMOS.get(st.session_state.get(f"{SLOT}.running"), None)
    live.show_status(job, experiment_progress(records, live.elapsed(job)))
    c = charts.live_curves(records, title=f"Live: {title.title if title else 'the experiment'}")
    chart(c.fig, c.takeaway, key=f"{SLOT}.live")


def _knob(setting: str, param: str, kind: str, label: str, spec: Any, help_text: str) -> None:
    key = _key(setting, param)
    if kind == "select":
        st.selectbox(label, list(spec), key=key, format_func=spec.get, help=help_text or None,
                     persist_state=PERSIST)
    else:
        lo, hi, step = spec
        st.slider(label, lo, hi, step=step, key=key, help=help_text or None, persist_state=PERSIST)


# ---- results, one function per demo ---------------------------------------------------------------------------------
def _show(setting: str, res: Any) -> None:
    st.caption(f"Finished in {res.wall_s:.1f} s.")
    draw = {
        "multi_task": (charts.multitask_accuracy_chart, charts.multitask_gradient_chart, charts.multitask_cosine_chart),
        "self_taught": (charts.self_taught_chart, charts.pretext_curve_chart),
        "domain_adaptation": (charts.adaptation_chart, charts.feature_gap_chart, charts.dann_curve_chart),
        "sample_selection_bias": (charts.covariate_chart, charts.covariate_sizes_chart, charts.weights_chart),
        "unsupervised": (charts.purity_chart, lambda r: charts.pca_chart(r, "source model features"),
                         lambda r: charts.pca_chart(r, "raw pixels")),
    }[setting]
    for i, make in enumerate(draw):
        c = make(res)
        chart(c.fig, c.takeaway, key=f"{SLOT}.{setting}.chart{i}")


# ---- the page -------------------------------------------------------------------------------------------------------
init_state()  # app.py did this already, except on a cold start that deep-links here (see ui.state)
live.setup(SLOT)
_init()
outcome = st.session_state.get(f"{SLOT}.result")
if outcome is not None:
    st.session_state[RESULTS][outcome[0]] = outcome[1]

st.title("🧪 The matrix, live")
st.markdown("Each setting of the domain-and-task matrix as a small experiment in the shapes world. Pick one, set "
            "its knobs, press **Run**: it trains in the background in a few seconds, and the charts say what "
            "happened. The sidebar's seed makes every run repeatable.")
st.radio("Setting", list(DEMOS), key=f"{SLOT}.setting", horizontal=True, persist_state=PERSIST,
         format_func=lambda k: DEMOS[k].title)
setting = st.session_state[f"{SLOT}.setting"]
demo = DEMOS[setting]
where = classify(*ANSWERS[setting])

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
    for param, kind, label, spec, _, help_text in KNOBS[setting]:
        _knob(setting, param, kind, label, spec, help_text)

running = live.is_active(SLOT)
b1, b2, _ = st.columns([2, 1, 3])
b1.button(f"▶️ Run: {demo.title}", key=f"{SLOT}.run", type="primary", on_click=_start, disabled=running,
          help="Runs in the background; the charts appear when it is done.")
b2.button("⏹️ Stop", key=f"{SLOT}.stop", on_click=live.stop, args=(SLOT,), disabled=not running)
if st.session_state[f"{SLOT}.error"]:
    st.error(st.session_state[f"{SLOT}.error"], icon="⚠️")
live.live_fragment(SLOT, _draw_live)
result = st.session_state[RESULTS].get(setting)
if result is not None and not (running and st.session_state.get(f"{SLOT}.running") == setting):
    _show(setting, result)
elif result is None and not running:
    st.info("Press **Run** to see this setting in action.", icon="🧪")
