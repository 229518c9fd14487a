"""Page: your own images: a zip of class folders or classes built one by one (upload or camera), checked, then trained.

Everything the learner adds stays in this browser session: the files' bytes in session state, and a zip is unpacked
only inside this session's private temp folder (removed again at once, and with the folder when the session
ends). Every addition is checked before it is kept, so a refused upload never loses what was there. Widget keys
start with "own." ("own.mode", "own.zip_upload", "own.new_class", "own.add_class", "own.target", "own.files.<n>",
"own.use_camera", "own.camera.<n>", "own.arch", "own.strategy", "own.epochs", "own.lr", "own.val_fraction",
"own.measure", "own.confirm", "own.start", "own.stop"); the job slot "own" keeps its keys as ui.live describes.
"""

from __future__ import annotations

import hashlib
import json

import streamlit as st
from torch import nn

from tl_core.models.registry import ARCHS, get_spec
from tl_core.training.device import select_device
from tl_core.data.own import DEFAULT_VAL_FRACTION, MAX_NAME, check_additions, check_class_name, previews, split_sizes, OwnDataset, load_class_uploads, load_zip
from tl_core.training.plan import STRATEGIES, Plan
from tl_core.jobs.work import EstimateJob, OwnOutcome, OwnSimilarityJob, OwnTrainJob, weights_bytes
from tl_core.training.planform import default_strategy, image_size_for, needs_estimate, own_plan
from tl_core.data.safe_io import UnsafeInput
from tl_core.models.weights import torchvision_archs, weights_status
from ui import cached, live, results
from ui.charts.own_data import counts_chart
from ui.render import chart
from ui.session import session_id, track
from ui.state import PERSIST, init_state

SLOT = "own"
P = "own."  # widget and state key prefix
MODES = {"zip": ":material/folder_zip: A zip of class folders", "classes": ":material/extension: Class by class (upload or camera)"}
IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
SHAPES_ARCH = "shapesnet"
ss = st.session_state


# ---- keeping the learner's files (callbacks) ----------------------------------------------------------------------
def _size() -> int:
    return image_size_for(ss[P + "arch"])


def _on_zip() -> None:
    """Callback of the zip uploader: check and load the zip; keep it only if it was accepted."""
    file = ss.get(P + "zip_upload")
    if file is None:
        return  # the learner removed the file from the uploader; the loaded data stays until "Remove"
    data = file.getvalue()
    try:
        ds = load_zip(data, session_id(), _size())
    except UnsafeInput as e:
        ss[P + "zip_error"] = (file.name, str(e))
        return
    digest = hashlib.sha256(data).hexdigest()
    ss[P + "zip"] = {"name": file.name, "data": data, "digest": digest}
    ss[P + "data"] = (("zip", digest, _size()), ds)
    ss[P + "zip_error"] = None


def _remove_zip() -> None:
    ss[P + "zip"] = None
    ss[P + "zip_error"] = None


def _class_names() -> list[str]:
    return [c["name"] for c in ss[P + "classes"]]


def _changed() -> None:
    ss[P + "version"] += 1
    ss[P + "nonce"] += 1  # fresh uploader and camera widgets: the added files leave them


def _add_class() -> None:
    """Callback of "Add class"."""
    try:
        name = check_class_name(ss.get(P + "new_class", ""), _class_names())
    except ValueError as e:
        ss[P + "class_error"] = str(e)
        return
    ss[P + "classes"].append({"id": ss[P + "next_id"], "name": name, "files": []})
    ss[P + "target"] = ss[P + "next_id"]
    ss[P + "next_id"] += 1
    ss[P + "new_class"] = ""
    ss[P + "class_error"] = None
    _changed()


def _add_files(new: list[tuple[str, bytes]]) -> None:
    """Add a batch of files to the target class, all or nothing."""
    target = next((c for c in ss[P + "classes"] if c["id"] == ss.get(P + "target")), None)
    if target is None or not new:
        return
    try:
        check_additions([c["files"] for c in ss[P + "classes"]], new)
    except UnsafeInput as e:
        ss[P + "class_error"] = str(e)
        return
    taken = {f for f, _ in target["files"]}
    for fname, data in new:
        base, n = fname, 1
        while fname in taken:  # two camera shots, or the same file twice: keep both under distinct names
            n += 1
            fname = f"{n}-{base}"
        taken.add(fname)
        target["files"].append((fname, data))
    ss[P + "class_error"] = None
    _changed()


def _on_files(key: str) -> None:
    """Callback of the per-class file uploader."""
    files = ss.get(key) or []
    _add_files([(f.name, f.getvalue()) for f in files])


def _on_camera(key: str) -> None:
    """Callback of the camera: one snapshot for the target class."""
    shot = ss.get(key)
    if shot is not None:
        _add_files([(f"camera-{ss[P + 'version'] + 1}.jpg", shot.getvalue())])


def _remove_class(cid: int) -> None:
    ss[P + "classes"] = [c for c in ss[P + "classes"] if c["id"] != cid]
    _changed()


def _clear_class(cid: int) -> None:
    for c in ss[P + "classes"]:
        if c["id"] == cid:
            c["files"] = []
    _changed()


# ---- the dataset, decoded once per change -------------------------------------------------------------------------
def _dataset() -> OwnDataset | str | None:
    """The active source decoded at the architecture's size (cached in the session), an error message, or None."""
    size = _size()
    if ss[P + "mode"] == "zip":
        z = ss[P + "zip"]
        if z is None:
            return None
        key = ("zip", z["digest"], size)

        def build() -> OwnDataset:
            return load_zip(z["data"], session_id(), size)
    else:
        classes = ss[P + "classes"]
        if not classes:
            return None
        key = ("classes", ss[P + "version"], size)

        def build() -> OwnDataset:
            return load_class_uploads({c["name"]: list(c["files"]) for c in classes}, size)
    cached = ss.get(P + "data")
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        with st.spinner("Checking and decoding your images…"):
            ds: OwnDataset | str = build()
    except UnsafeInput as e:
        ds = str(e)
    ss[P + "data"] = (key, ds)
    return ds


# ---- drawing --------------------------------------------------------------------------------------------------------
def _zip_input() -> None:
    st.file_uploader("A .zip with one folder per class (for example cats/… and dogs/…)", type=["zip"],
                     key=P + "zip_upload", on_change=_on_zip,
                     help="The folder names become the class names. Hidden and system files are skipped.")
    err = ss.get(P + "zip_error")
    if err:
        st.error(f"**{err[0]} was refused.** {err[1]}", icon=":material/block:")
        if ss[P + "zip"] is not None:
            st.caption(f"Your previous data ({ss[P + 'zip']['name']}) is still loaded.")
    if ss[P + "zip"] is not None:
        c1, c2 = st.columns([4, 1])
        c1.success(f"Loaded **{ss[P + 'zip']['name']}**.", icon=":material/folder_zip:")
        c2.button(":material/delete: Remove", key=P + "remove_zip", on_click=_remove_zip)


def _class_inputs() -> None:
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    c1.text_input("New class name", key=P + "new_class", placeholder="for example: mug", max_chars=MAX_NAME)
    c2.button(":material/add: Add class", key=P + "add_class", on_click=_add_class)
    if ss.get(P + "class_error"):
        st.error(ss[P + "class_error"], icon=":material/block:")
    classes = ss[P + "classes"]
    if not classes:
        st.caption("Add at least two classes, then give each class a few images.")
        return
    ids = [c["id"] for c in classes]
    if ss.get(P + "target") not in ids:
        ss[P + "target"] = ids[-1]
    names = {c["id"]: c["name"] for c in classes}
    st.selectbox("Add images to the class", ids, format_func=names.get, key=P + "target")
    n = ss[P + "nonce"]
    st.file_uploader(f"Images for **{names[ss[P + 'target']]}**", type=IMAGE_TYPES, accept_multiple_files=True,
                     key=f"{P}files.{n}", on_change=_on_files, args=(f"{P}files.{n}",))
    if st.toggle(":material/photo_camera: Use the camera", key=P + "use_camera"):
        st.camera_input(f"Snap a picture of **{names[ss[P + 'target']]}**", key=f"{P}camera.{n}",
                        on_change=_on_camera, args=(f"{P}camera.{n}",))
    for c in classes:
        a, b, d = st.columns([3, 1, 1], vertical_alignment="center")
        a.markdown(f"**{c['name']}**: {len(c['files'])} file{'s' if len(c['files']) != 1 else ''}")
        b.button(":material/mop: Clear", key=f"{P}clear.{c['id']}", on_click=_clear_class, args=(c["id"],),
                 disabled=not c["files"])
        d.button(":material/delete: Remove", key=f"{P}remove.{c['id']}", on_click=_remove_class, args=(c["id"],))


def _report(ds: OwnDataset) -> None:
    rep = ds.report
    if rep.problems:
        st.error("**Training cannot start yet.**\n\n" + "\n".join(f"- {p}" for p in rep.problems), icon=":material/block:")
    else:
        per_class = ", ".join(f"{c} {rep.counts[c]}" for c in rep.classes)
        st.success(f"{rep.n_images} images in {len(rep.classes)} classes ({per_class}), ready to train.", icon=":material/check_circle:")
    if rep.classes:
        left, right = st.columns([1, 2], gap="large")
        with left:
            st.dataframe([{"Class": c, "Images": rep.counts[c]} for c in rep.classes], hide_index=True,
                         key=P + "counts_table")
        with right:
            c = counts_chart(rep)
            chart(c.fig, c.takeaway, key=P + "counts_chart")
    if rep.skipped:
        st.warning(f"**{len(rep.skipped)} file{'s were' if len(rep.skipped) != 1 else ' was'} skipped.**", icon=":material/skip_next:")
        st.dataframe([{"File": s.path, "Reason": s.reason} for s in rep.skipped], hide_index=True,
                     key=P + "skipped_table")
    if rep.converted:
        st.info(f"**{len(rep.converted)} image{'s were' if len(rep.converted) != 1 else ' was'} converted to RGB** "
                f"(the models take three colour channels).", icon=":material/palette:")
        st.dataframe([{"File": c.path, "Colour mode in the file": c.from_mode} for c in rep.converted],
                     hide_index=True, key=P + "converted_table")
    if ds.labels.size:
        with st.expander(f":material/visibility: A few images per class, as the model gets them ({ds.size}×{ds.size} pixels)"):
            for cls, tiles in previews(ds).items():
                if tiles:
                    st.image(tiles, caption=[cls] * len(tiles), width=64)


def _on_arch() -> None:
    """Callback of the architecture: preselect its default strategy, forget a measured estimate."""
    ss[P + "strategy"] = default_strategy(ss[P + "arch"], _on_cpu())
    ss[P + "confirm"] = False


@st.cache_data(show_spinner=False)
def _on_cpu() -> bool:
    return select_device("auto").type == "cpu"


def _plan(ds: OwnDataset) -> tuple[Plan | None, str | None, tuple[int, int]]:
    """The plan the form describes, or the reason it cannot run; and the (train, val) split sizes."""
    sizes = split_sizes(ds.labels, float(ss[P + "val_fraction"]), int(ss["seed"]))
    try:
        plan = own_plan(ss[P + "arch"], ss[P + "strategy"], sizes[0], len(ds.classes),
                                 epochs=int(ss[P + "epochs"]), lr=float(ss[P + "lr"]), seed=int(ss["seed"]))
    except ValueError as e:
        return None, str(e), sizes
    return plan, None, sizes


def _base(plan: Plan) -> nn.Module | None:
    """The shared pretrained ImageNet model a run copies; None for the built-in network (the trainer loads it
    itself) and for training from scratch (no pretrained weights needed)."""
    return cached.imagenet_model(plan.arch) if plan.spec.torchvision and plan.pretrained else None


def _estimate_key(plan: Plan, sizes: tuple[int, int], size: int) -> str:
    return json.dumps([plan.to_dict(), sizes, size], sort_keys=True)


def _measure(plan: Plan, sizes: tuple[int, int], n_classes: int, size: int) -> None:
    """Callback of "Measure": time a few steps of this plan in a background job (under the job limits)."""
    ss[P + "confirm"] = False
    live.quick_job(P + "estimate", EstimateJob(plan, sizes, n_classes, size, base=_base(plan)),
                   label="measuring the expected time", tag=_estimate_key(plan, sizes, size))


def _measure_similarity(ds: OwnDataset) -> None:
    """Callback of "Measure similarity": your images against the source data, through the source model."""
    live.quick_job(P + "similarity", OwnSimilarityJob(ds, int(ss["seed"])),
                   label="measuring similarity to the source", tag=_data_key(ds))


def _data_key(ds: OwnDataset) -> str:
    return hashlib.sha256(ds.images.tobytes()[:1 << 20] + repr(ds.report.counts).encode()).hexdigest()


def _start(plan: Plan, ds: OwnDataset) -> None:
    """Callback of Start: train in the background through the job manager."""
    fn = OwnTrainJob(plan, ds, float(ss[P + "val_fraction"]), base=_base(plan))
    live.start(SLOT, fn, label=f"your images · {plan.describe()}")


def _show_results(outcome: OwnOutcome) -> None:
    res = outcome.result
    plan = Plan.from_dict(res.plan)
    st.header(":material/bar_chart: Results")
    summary = (f"{plan.describe()} · {outcome.n_train} training and {outcome.n_val} validation images · "
               f"{res.wall_s:.1f} s")
    results.show_result(res, P + "res.", summary, len(outcome.classes), val_images=outcome.val_images,
                     scale=max(1, 96 // outcome.val_images.shape[-1]))
    if res.state_dict is not None:
        st.download_button(":material/download: Trained weights (.pt)", data=lambda: weights_bytes(res.state_dict),
                           file_name=f"{plan.arch}_{plan.strategy}_{len(outcome.classes)}classes.pt",
                           mime="application/octet-stream", key=P + "download_weights", on_click="ignore",
                           help="A plain state dict. For an ImageNet architecture, the explorer page can load it.")


def _use_strategy(strategy: str) -> None:
    """Callback: train with the strategy the quadrant recommends."""
    ss[P + "strategy"] = strategy
    ss[P + "confirm"] = False


def _placement(ds: OwnDataset) -> None:
    """Measure how similar the images look to the source data and place them on the quadrant."""
    st.subheader("Where your data sits on the quadrant")
    st.caption("The source model compares the features of your images with those of its own training images; the "
               "scale is calibrated on the shapes world, where the true shift is known. Size is your smallest class.")
    st.button(":material/straighten: Measure how similar your images are to the source data", key=P + "measure_similarity",
              on_click=_measure_similarity, args=(ds,))
    got = live.collect_quick(P + "similarity", "Comparing your images with the source data…")
    if got is None or got[0] != _data_key(ds):
        return
    if isinstance(got[1], str):
        st.error(got[1], icon=":material/warning:")
        return
    report, placement = got[1]
    st.markdown(f"**Measured similarity: {report.similarity:.2f}** ({report.verdict}). {report.explanation}")
    st.success(f"**{placement.label}.** {placement.explanation}", icon=":material/explore:")
    st.button(f"Use '{STRATEGIES[placement.strategy].label}'", key=P + "use_placement", on_click=_use_strategy,
              args=(placement.strategy,))


# ---- the page -------------------------------------------------------------------------------------------------------
init_state("own")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
live.setup(SLOT)
track(claim_jobs=[ss.get(f"{SLOT}.job")])
if ss[P + "strategy"] is None:
    ss[P + "strategy"] = default_strategy(ss[P + "arch"], _on_cpu())

st.title(":material/folder: Your own images")
st.markdown("Bring a few images of two or more things you want told apart, check them, and re-use a pretrained "
            "network on them. Your files stay in this browser session: nobody else can see them, and they are "
            "gone when you close the tab.")

st.header("1 · Bring your images")
st.radio("How", list(MODES), format_func=MODES.get, horizontal=True, persist_state=PERSIST, key=P + "mode",
         label_visibility="collapsed")
if ss[P + "mode"] == "zip":
    _zip_input()
else:
    _class_inputs()

st.header("2 · Check them")
ds = _dataset()
if ds is None:
    st.caption("Nothing to check yet.")
elif isinstance(ds, str):
    st.error(ds, icon=":material/block:")
else:
    _report(ds)
    if ds.report.ok:
        _placement(ds)

st.header("3 · Train")
archs = [SHAPES_ARCH, *torchvision_archs()]
c1, c2 = st.columns(2)
c1.selectbox("Architecture", archs, persist_state=PERSIST, key=P + "arch", on_change=_on_arch,
             format_func=lambda a: f"{a} ({'built in, 32 px, offline' if a == SHAPES_ARCH else ARCHS[a].paper})")
c2.selectbox("Strategy", list(STRATEGIES), persist_state=PERSIST, key=P + "strategy",
             format_func=lambda s: STRATEGIES[s].label, help=STRATEGIES[ss[P + "strategy"]].summary)
c1, c2, c3 = st.columns(3)
c1.number_input("Epochs", min_value=1, max_value=200, step=1, persist_state=PERSIST, key=P + "epochs",
                help="Raised automatically so that training gets at least 100 optimiser steps.")
c2.number_input("Learning rate", min_value=1e-6, max_value=1.0, step=1e-3, format="%.4g", persist_state=PERSIST,
                key=P + "lr")
c3.slider("Validation share per class", 0.1, 0.5, step=0.05, persist_state=PERSIST, key=P + "val_fraction",
          help="Held out class by class (stratified): every class gets at least one validation image.")

arch = ss[P + "arch"]
weights_missing = None
if get_spec(arch).torchvision and STRATEGIES[ss[P + "strategy"]].pretrained:
    status = weights_status(arch)
    if not status.available:
        weights_missing = status.how_to_get()
        st.warning(weights_missing + "\n\nOr pick **shapesnet**, which is built in.", icon=":material/inventory_2:")

plan, error, sizes = None, None, (0, 0)
ready = isinstance(ds, OwnDataset) and ds.report.ok
if ready:
    plan, error, sizes = _plan(ds)
    if error:
        st.error(f"**This plan cannot run on your data.** {error}", icon=":material/block:")
    else:
        st.caption(f"Split class by class: **{sizes[0]}** training and **{sizes[1]}** validation images at "
                   f"{ds.size}×{ds.size} pixels. {plan.describe()}.")
elif isinstance(ds, OwnDataset):
    st.caption("Fix the problems listed above first.")

needs_ok = False
if plan is not None and weights_missing is None and needs_estimate(plan, _on_cpu()):
    key = _estimate_key(plan, sizes, ds.size)
    st.info(f"'{STRATEGIES[plan.strategy].label}' runs every image through all of {arch} at {ds.size} px on every "
            f"step, on the CPU. Measure how long that takes here before you start.", icon=":material/hourglass_top:")
    st.button("⏱️ Measure the expected time", key=P + "measure", on_click=_measure,
              args=(plan, sizes, len(ds.classes), ds.size))
    got = live.collect_quick(P + "estimate", "Measuring a few training steps on this machine…")
    if got is not None and got[0] == key and isinstance(got[1], str):
        st.error(got[1], icon=":material/warning:")
        needs_ok = True
    elif got is not None and got[0] == key:
        est = got[1]
        st.markdown(f"**Expected time: about {est.seconds:.0f} s.** {est.note}")
        if est.slow:
            st.checkbox(f"Yes, start a run of about {est.seconds / 60:.1f} minutes", key=P + "confirm")
            needs_ok = not ss[P + "confirm"]
    else:
        needs_ok = True

b1, b2, _ = st.columns([1, 1, 3])
b1.button(":material/play_arrow: Start", key=P + "start", type="primary", on_click=_start, args=(plan, ds),
          disabled=plan is None or weights_missing is not None or needs_ok,
          help="Train on your images in the background.")
b2.button(":material/stop_circle: Stop", key=P + "stop", on_click=live.stop, args=(SLOT,), help="Stop after the current step.")
if ss[f"{SLOT}.error"]:
    st.error(ss[f"{SLOT}.error"], icon=":material/warning:")
live.live_fragment(SLOT, lambda job, records: results.draw_run(job, records, P + "live."))
if ss[f"{SLOT}.result"] is not None and not live.is_active(SLOT):
    _show_results(ss[f"{SLOT}.result"])
