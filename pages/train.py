"""Page: train the current plan live: edit every setting, start a background run, watch it learn, inspect the result.

Widget keys are "train.<plan field>" (see tl_core.training.planform), "train.mult.<group>", "train.n_per_class",
"train.similarity", "train.start" and "train.stop"; the job slot's keys are described in ui.live.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import streamlit as st

from tl_core.data import shapes
from tl_core.data.datasets import DataSpec, make_data
from tl_core.jobs.work import TrainJob, TrainOutcome, weights_bytes
from tl_core.models.registry import ARCHS, get_spec
from tl_core.training import planform
from tl_core.training.codegen import plan_to_code
from tl_core.training.estimate import Estimate, estimate_run
from tl_core.training.history import history_csv, steps_csv
from tl_core.training.plan import (BN_POLICIES, DEVICES, MAX_BATCH, MAX_EPOCHS, OPTIMIZERS, SCHEDULES, STRATEGIES,
                                   Plan, recipe_for)
from ui import live, results
from ui.charts.decisions import plan_groups_chart
from ui.charts.training import drift_chart
from ui.render import show_chart
from ui.state import PERSIST, current_plan, init_state, set_data, set_plan

SLOT = "train"
P = "train."  # widget key prefix
N_RANGE = (5, 1000)  # images per class
BN_TEXT = {"eval": "Keep: frozen BatchNorm keeps the source statistics",
           "train": "Re-estimate: frozen BatchNorm re-estimates them on the target data"}


# ---- form <-> state -------------------------------------------------------------------------------------------
def _values() -> dict:
    """The form's current values (without the prefix)."""
    ss = st.session_state
    values = {f: ss.get(P + f) for f in planform.FORM_FIELDS}
    for g in planform.form_groups(values):
        values[planform.mult_key(g)] = ss.get(P + planform.mult_key(g), 1.0)
    return values


def _data() -> tuple[int, float, int]:
    """(images per class, similarity, seed) of the app-wide data knobs."""
    ss = st.session_state
    return int(ss["data.n_per_class"]), float(ss["data.similarity"]), int(ss["seed"])


def _form_plan() -> Plan:
    """The form's plan, valid for the current data (raises ValueError saying what to change)."""
    n, sim, seed = _data()
    return planform.checked_plan(_values(), seed=seed, n_per_class=n, similarity=sim)


def _kw(field: str, on_change: Callable[[], None] | None = None) -> dict:
    """Keyword arguments of a form widget: its key, session-long persistence and its callback (default _store)."""
    return dict(key=P + field, persist_state=PERSIST, on_change=on_change or _store)


def _load_form(plan: Plan) -> None:
    """Show a plan in the form (fitting its batch to the data), and remember it as the form's source."""
    n_train, _ = planform.data_shape(*_data()[:2])
    plan, note = planform.fit_to_data(plan, n_train)
    for k, v in planform.form_values(plan).items():
        st.session_state[P + k] = v
    if note:
        set_plan(plan)
        st.toast(note, icon=":material/info:")
    st.session_state[P + "synced"] = plan.to_dict()


def _store() -> None:
    """Callback: make the form's plan the current plan if it is valid for the data (else the page shows why)."""
    try:
        plan = _form_plan()
    except ValueError:
        return
    set_plan(plan)
    st.session_state[P + "synced"] = plan.to_dict()


def _on_structure() -> None:
    """Callback of architecture, strategy and cut point: that strategy's frozen groups and LRs, then store."""
    for k, v in planform.restructure(_values()).items():
        st.session_state[P + k] = v
    _store()


def _on_data() -> None:
    """Callback of the data knobs: store them app-wide, then re-check the plan against the new data."""
    set_data(int(st.session_state[P + "n_per_class"]), float(st.session_state[P + "similarity"]))
    st.session_state[P + "synced_data"] = _data()[:2]
    _store()


def _start() -> None:
    """Callback of Start: train the form's plan in the background (nothing happens if the form is invalid)."""
    try:
        plan = _form_plan()
    except ValueError as e:
        st.session_state[f"{SLOT}.error"] = str(e)  # shown under Start; the next run that starts clears it
        return
    n, sim, seed = _data()
    spec = DataSpec(n_per_class=n, similarity=sim, seed=seed)
    live.start(SLOT, TrainJob(plan, spec), label=plan.describe())


@st.cache_data(max_entries=64, show_spinner=False)
def _preview(similarity: float, seed: int) -> np.ndarray:
    return shapes.preview_grid(shapes.generate(DataSpec(similarity=similarity).world, 4, seed, "train"), n_per_class=4)


# ---- the results ----------------------------------------------------------------------------
def _show_results(outcome: TrainOutcome) -> None:
    res = outcome.result
    plan = Plan.from_dict(res.plan)
    st.header(":material/bar_chart: Results")
    summary = (f"{plan.describe()} · on {_describe_data(outcome.data)} · {res.wall_s:.1f} s · "
               f"{res.trainable_params:,} of {res.total_params:,} parameters trained")
    n_classes = len(outcome.data.world.classes)
    results.show_result(res, "train.", summary, n_classes, val_images=make_data(outcome.data)[1].x)
    show_chart(drift_chart(res), key="train.drift")
    with st.expander(":material/code: Show the code: this plan as a standalone PyTorch script"):
        st.code(plan_to_code(plan, data_size=shapes.IMAGE_SIZE), language="python")  # as this run: 32 px images
    cols = st.columns(3)
    if res.state_dict is not None:
        cols[0].download_button(":material/download: Trained weights (.pt)", data=lambda: weights_bytes(res.state_dict),
                                file_name=f"{plan.arch}_{plan.strategy}.pt", mime="application/octet-stream",
                                key="train.download_weights", on_click="ignore")
    cols[1].download_button(":material/show_chart: History per epoch (.csv)", data=history_csv(res), file_name="history.csv",
                            mime="text/csv", key="train.download_history", on_click="ignore")
    cols[2].download_button(":material/trending_down: Every step (.csv)", data=steps_csv(res), file_name="steps.csv",
                            mime="text/csv", key="train.download_steps", on_click="ignore")


def _running_job() -> TrainJob | None:
    """The job this session's run is doing, while it is queued or running."""
    job = live.current_job(SLOT)
    return job.fn if job is not None and job.active and isinstance(job.fn, TrainJob) else None


def _describe_data(spec: DataSpec) -> str:
    return f"shapes world, {spec.n_per_class} target images per class at similarity {spec.similarity:g} (seed {spec.seed})"


@st.cache_data(max_entries=256, show_spinner="Measuring how long this plan takes here…")
def _estimate(plan_json: str, n_per_class: int, similarity: float) -> Estimate | str:
    """The measured time of a plan on this machine (a few probe steps, shared by every session with the same plan)."""
    plan = Plan.from_dict(json.loads(plan_json))
    n_train, n_classes = planform.data_shape(n_per_class, similarity)
    try:
        return estimate_run(plan, n_train, DataSpec().n_val_per_class * n_classes, n_classes, shapes.IMAGE_SIZE)
    except (ValueError, RuntimeError) as e:  # e.g. the pretrained weights are missing: say so, do not fail the page
        return f"The expected time could not be measured: {e}"


def _expected_time(plan: Plan) -> None:
    """The time this plan should take here, measured for the plan actually configured."""
    n, sim, _ = _data()
    est = _estimate(json.dumps(plan.to_dict(), sort_keys=True), n, sim)
    if isinstance(est, str):
        st.caption(est)
        return
    st.caption(f"Press **Start** to train this plan. Expected time: **about {est.seconds:.0f} s** on this machine "
               f"({est.note})" + (" A long run can be stopped at any time; its finished epochs are kept."
                                  if est.slow else ""))


# ---- the page ---------------------------------------------------------------------------------------------------
init_state("train")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
ss = st.session_state
live.setup(SLOT)  # a reload that named a run took it over in app.py, restoring its plan, data and seed first
if ss["plan"] != ss.get(P + "synced") or any(P + f not in ss for f in planform.FORM_FIELDS if f != "cut_after"):
    _load_form(current_plan())
if ss.get(P + "synced_data") != _data()[:2] or P + "n_per_class" not in ss:
    ss[P + "n_per_class"], ss[P + "similarity"] = _data()[:2]
    ss[P + "synced_data"] = _data()[:2]

st.title(":material/fitness_center: Train live")
running = _running_job()
n, sim, seed = _data()
if running is not None:  # the run on screen, with its own plan and data, frozen while it trains
    st.info(f"**Running now:** {running.plan.describe()}  \n**On:** {_describe_data(running.data)}  \n"
            f"Edits below apply to your next run.", icon=":material/fitness_center:")
else:
    st.markdown(f"**Plan:** {current_plan().describe()}")
    st.markdown(f"**Data:** {_describe_data(DataSpec(n_per_class=n, similarity=sim, seed=seed))}.")

st.header("1 · The data")
left, right = st.columns([3, 2], gap="large")
with left:
    st.slider("Target images per class", *N_RANGE, **_kw("n_per_class", _on_data),
              help="How much labelled target data there is (the quadrant's 'how much new data?').")
    st.slider("Similarity to the source data", 0.0, 1.0, step=0.05, **_kw("similarity", _on_data),
              help="1 draws the target like the source images; lower values shift colours, textures and noise.")
    if sim < 0.5:
        st.info("Below 0.5 the task itself changes: instead of naming new shapes, the model must tell the "
                "**orientation of a grating** (0°, 45°, 90°, 135°), a low-level cue the source task never needed.",
                icon=":material/alt_route:")
with right:
    rows = ", ".join(shapes.target_spec(sim).classes)
    st.image(_preview(sim, seed), caption=f"Example target images, one row per class, top to bottom: {rows}",
             width="stretch")

st.header("2 · The plan")
values = _values()
spec = get_spec(values["arch"])
c1, c2, c3 = st.columns(3, gap="medium")
c1.selectbox("Architecture", list(ARCHS), **_kw("arch", _on_structure),
             format_func=lambda a: f"{a} ({ARCHS[a].paper})")
c2.selectbox("Strategy", list(STRATEGIES), **_kw("strategy", _on_structure),
             format_func=lambda s: STRATEGIES[s].label, help=STRATEGIES[values["strategy"]].summary)
if values["strategy"] == "early_classifier":
    c3.selectbox("Cut the network after", list(spec.body_groups), **_kw("cut_after", _on_structure),
                 help="The groups up to here stay (frozen); the rest is removed and a new head sits on their features.")
st.multiselect("Frozen layer groups", list(spec.body_groups), **_kw("frozen"),
               disabled=values["strategy"] != "finetune_top",
               help="Frozen groups keep their pretrained weights: no gradient, no update. 'Fine-tune only the final "
                    "layers' lets you pick them (a prefix of the network); the other strategies fix them.")
c1, c2, c3 = st.columns(3, gap="medium")
c1.number_input("Base learning rate", min_value=0.0, max_value=100.0, step=0.001, format="%.4g", **_kw("lr"),
                help=f"Each group's rate is this times its multiplier below. Try 10 to see a run diverge. It starts "
                     f"at {values['arch']}'s fine-tuning recipe: {recipe_for(values['arch']).describe()}")
# No bounds on epochs and batch size: an out-of-range value reaches the plan's checks, which say what to change
# (with widget bounds it would silently snap back instead).
c2.number_input("Epochs", step=1, **_kw("epochs"),
                help=f"Passes over the training data, 1 to {MAX_EPOCHS} (raised automatically to reach the minimum "
                     f"number of steps).")
c3.number_input("Batch size", step=1, **_kw("batch_size"),
                help=f"Images per optimiser step: at least 2, at most the number of training images "
                     f"(and {MAX_BATCH}).")
c1, c2 = st.columns(2, gap="medium")
c1.radio("BatchNorm in frozen groups", list(BN_POLICIES), format_func=BN_TEXT.get, **_kw("bn_policy"),
         help="Setting requires_grad=False does not stop BatchNorm from updating its running mean and variance in "
              "train mode. 'Keep' puts frozen groups in eval mode; 'Re-estimate' adapts the statistics (and turns "
              "off the frozen-feature cache).")
c2.number_input("Gradual unfreezing: thaw one group every n epochs (0 = off)", min_value=0, max_value=MAX_EPOCHS,
                step=1, **_kw("unfreeze_every"),
                help="ULMFiT-style: the deepest frozen group starts training every n epochs.")
with st.expander(":material/tune: Learning rate per layer group (multiplier × base rate)"):
    groups = planform.form_groups(values)
    for col, g in zip(st.columns(len(groups)), groups):
        col.number_input(g, min_value=0.0, max_value=1000.0, step=0.1, format="%.3g", **_kw(planform.mult_key(g)))
    st.caption("Discriminative learning rates: small multipliers for the generic early layers, larger ones for the "
               "specific later layers and the new head.")
with st.expander(":material/settings: More settings"):
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Optimizer", list(OPTIMIZERS), **_kw("optimizer"))
    c2.selectbox("Schedule", list(SCHEDULES), **_kw("schedule"))
    c3.selectbox("Device", list(DEVICES), **_kw("device"))
    c1.number_input("Minimum optimiser steps", min_value=0, max_value=100_000, step=10, **_kw("min_steps"),
                    help="Tiny datasets get extra epochs until this many steps are reached.")
    c2.number_input("Weight decay", min_value=0.0, max_value=1.0, step=1e-4, format="%.4g", **_kw("weight_decay"))
    c3.checkbox("Augment (random flips and shifts)", **_kw("augment"))

plan, error = None, None
try:
    plan = _form_plan()
except ValueError as e:
    error = str(e)
if error:
    st.error(f"**This plan cannot run yet.** {error}", icon=":material/block:")
else:
    show_chart(plan_groups_chart(plan), key="train.plan_chart")  # its per-group rates are the expander above
weights_missing = None
if plan is not None and plan.pretrained and ARCHS[plan.arch].torchvision:
    from tl_core.models.weights import weights_status

    status = weights_status(plan.arch)
    if not status.available:
        weights_missing = status.how_to_get()
        st.warning(weights_missing, icon=":material/inventory_2:")

st.header("3 · Train")
b1, b2, _ = st.columns([2, 1, 3])
why_not = ("A run is going: Start comes back when it ends, or after Stop. Your edits apply to the next run."
           if live.is_active(SLOT) else "Fix the plan above first." if plan is None
           else "The pretrained weights are missing (see above)." if weights_missing is not None else None)
b1.button(":material/play_arrow: Start", key=P + "start", type="primary", on_click=_start, shortcut="Ctrl+Enter",
          disabled=why_not is not None, help=why_not or "Train this plan in the background (Ctrl+Enter).")
b2.button(":material/stop_circle: Stop", key=P + "stop", on_click=live.stop, args=(SLOT,), shortcut="Alt+X",
          help="Stop after the current step; finished epochs are kept (Alt+X).")
if ss[f"{SLOT}.error"]:
    st.error(ss[f"{SLOT}.error"], icon=":material/warning:")
if why_not is None:
    _expected_time(plan)
live.live_fragment(SLOT, lambda job, records: results.draw_run(job, records, "train.live."))
if ss[f"{SLOT}.result"] is not None and not live.is_active(SLOT):
    _show_results(ss[f"{SLOT}.result"])
