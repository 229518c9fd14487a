"""Page: your own images: a zip of class folders or classes built one by one (upload or camera), checked, then trained.

Everything the learner adds stays in this browser session: the files' bytes in session state, and a zip is unpacked
only inside this session's private temp folder (removed again at once, and with the folder when the session
ends). The class-by-class editor is a tl_core.data.own.ClassEditor kept under "own.editor": every addition is
checked before it is kept, so a refused upload never loses what was there. Names the learner chose (classes,
files) are escaped wherever they are shown (ui.escape). Widget keys start with "own." ("own.mode",
"own.zip_upload", "own.new_class", "own.add_class", "own.target", "own.files.<n>", "own.use_camera",
"own.camera.<n>", "own.rename.<id>", "own.do_rename.<id>", "own.clear.<id>", "own.remove.<id>", "own.arch",
"own.strategy", "own.epochs", "own.min_steps", "own.lr", "own.val_fraction", "own.measure_similarity",
"own.use_placement", "own.measure", "own.confirm", "own.start", "own.stop"); the job slot "own" keeps its keys as
ui.live describes.
"""

from __future__ import annotations

import hashlib
import json

import streamlit as st
from torch import nn

from tl_core.models.registry import ARCHS, get_spec
from tl_core.training.device import select_device
from tl_core.data.own import (MAX_NAME, ClassEditor, OwnDataset, load_class_uploads, load_zip, previews,
                              split_leaks, split_sizes, summarise)
from tl_core.training.plan import STRATEGIES, Plan, recipe_for
from tl_core.jobs.work import EstimateJob, OwnOutcome, OwnSimilarityJob, OwnTrainJob, weights_bytes
from tl_core.training.planform import (default_strategy, image_size_for, needs_estimate, own_plan,
                                      schedule_note)
from tl_core.data.safe_io import UnsafeInput
from tl_core.models.weights import torchvision_archs, weights_status
from ui import cached, live, results
from ui.charts.own_data import counts_chart
from ui.escape import md
from ui.render import chart
from ui.session import session_id, track
from ui.state import PERSIST, init_state

SLOT = "own"
P = "own."  # widget and state key prefix
MODES = {"zip": ":material/folder_zip: A zip of class folders", "classes": ":material/extension: Class by class (upload or camera)"}
IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
SHAPES_ARCH = "shapesnet"
PREVIEW_CLASSES = 12  # classes whose sample images the report shows at most ("and N more" for the rest)
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


def _editor() -> ClassEditor:
    """The class-by-class editor of this session."""
    return ss[P + "editor"]


def _attempt(change, *args) -> bool:
    """Apply one editor change; on refusal keep its message for the learner (nothing was changed). Returns success."""
    try:
        change(*args)
    except ValueError as e:  # UnsafeInput included
        ss[P + "class_error"] = str(e)
        return False
    ss[P + "class_error"] = None
    return True


def _add_class() -> None:
    """Callback of "Add class"."""
    ed = _editor()
    if _attempt(ed.add_class, ss.get(P + "new_class", "")):
        ss[P + "target"] = ed.classes[-1].id
        ss[P + "new_class"] = ""


def _rename(cid: int) -> None:
    """Callback of a class's Rename."""
    _attempt(_editor().rename, cid, ss.get(f"{P}rename.{cid}", ""))


def _add_files(new: list[tuple[str, bytes]]) -> None:
    """Add a batch of files to the target class, all or nothing."""
    ed = _editor()
    if ss.get(P + "target") in [c.id for c in ed.classes] and new:
        _attempt(ed.add_files, ss[P + "target"], new)


def _on_files(key: str) -> None:
    """Callback of the per-class file uploader."""
    files = ss.get(key) or []
    _add_files([(f.name, f.getvalue()) for f in files])


def _on_camera(key: str) -> None:
    """Callback of the camera: one snapshot for the target class."""
    shot = ss.get(key)
    if shot is not None:
        _add_files([(f"camera-{_editor().version + 1}.jpg", shot.getvalue())])


def _remove_class(cid: int) -> None:
    _attempt(_editor().remove, cid)


def _clear_class(cid: int) -> None:
    _attempt(_editor().clear, cid)


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
        ed = _editor()
        if not ed.classes:
            return None
        key = ("classes", id(ed), ed.version, size)

        def build() -> OwnDataset:
            return load_class_uploads(ed.uploads(), size)
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
        st.error(f"**{md(err[0])} was refused.** {md(err[1])}", icon=":material/block:")
        if ss[P + "zip"] is not None:
            st.caption(f"Your previous data ({md(ss[P + 'zip']['name'])}) is still loaded.")
    if ss[P + "zip"] is not None:
        c1, c2 = st.columns([4, 1])
        c1.success(f"Loaded **{md(ss[P + 'zip']['name'])}**.", icon=":material/folder_zip:")
        c2.button(":material/delete: Remove", key=P + "remove_zip", on_click=_remove_zip)


def _class_inputs() -> None:
    ed = _editor()
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    c1.text_input("New class name", key=P + "new_class", placeholder="for example: mug", max_chars=MAX_NAME)
    c2.button(":material/add: Add class", key=P + "add_class", on_click=_add_class)
    if ss.get(P + "class_error"):
        st.error(md(ss[P + "class_error"]), icon=":material/block:")
    if not ed.classes:
        st.caption("Add at least two classes, then give each class a few images.")
        return
    ids = [c.id for c in ed.classes]
    if ss.get(P + "target") not in ids:
        ss[P + "target"] = ids[-1]
    names = {c.id: c.name for c in ed.classes}  # plain text in the selectbox: no escaping there
    st.selectbox("Add images to the class", ids, format_func=names.get, key=P + "target")
    target = md(names[ss[P + "target"]])
    n = ed.version
    st.file_uploader(f"Images for **{target}**", type=IMAGE_TYPES, accept_multiple_files=True,
                     key=f"{P}files.{n}", on_change=_on_files, args=(f"{P}files.{n}",))
    if st.toggle(":material/photo_camera: Use the camera", key=P + "use_camera"):
        st.camera_input(f"Snap a picture of **{target}**", key=f"{P}camera.{n}",
                        on_change=_on_camera, args=(f"{P}camera.{n}",))
    for c in ed.classes:
        a, r, b, d = st.columns([3, 1, 1, 1], vertical_alignment="center")
        a.markdown(f"**{md(c.name)}**: {len(c.files)} file{'s' if len(c.files) != 1 else ''}")
        with r.popover(":material/edit: Rename"):
            st.text_input("New name", value=c.name, key=f"{P}rename.{c.id}", max_chars=MAX_NAME)
            st.button("Rename", key=f"{P}do_rename.{c.id}", on_click=_rename, args=(c.id,))
        b.button(":material/mop: Clear", key=f"{P}clear.{c.id}", on_click=_clear_class, args=(c.id,),
                 disabled=not c.files)
        d.button(":material/delete: Remove", key=f"{P}remove.{c.id}", on_click=_remove_class, args=(c.id,))


def _report(ds: OwnDataset) -> None:
    rep = ds.report
    if rep.problems:
        st.error("**Training cannot start yet.**\n\n" + "\n".join(f"- {md(p)}" for p in rep.problems),
                 icon=":material/block:")
    else:
        per_class = summarise([f"{c} {rep.counts[c]}" for c in rep.classes], quote=False)
        st.success(f"{rep.n_images} images in {len(rep.classes)} classes ({md(per_class)}), ready to train.",
                   icon=":material/check_circle:")
    if rep.classes:
        left, right = st.columns([1, 2], gap="large")
        with left:
            st.dataframe([{"Class": c, "Images": rep.counts[c]} for c in rep.classes], hide_index=True,
                         key=P + "counts_table")
        with right:
            c = counts_chart(rep)
            chart(c.fig, c.takeaway, key=P + "counts_chart")
    if rep.conflicts:
        st.warning(f"**{len(rep.conflicts)} picture{'s are' if len(rep.conflicts) != 1 else ' is'} in more than "
                   f"one class**: the same image with two labels teaches the model both, and one of them is "
                   f"wrong. Keep each picture in one class.\n\n"
                   + "\n".join(f"- {md(d.describe())}" for d in rep.conflicts[:5])
                   + (f"\n- and {len(rep.conflicts) - 5} more" if len(rep.conflicts) > 5 else ""),
                   icon=":material/content_copy:")
    same_class = [d for d in rep.duplicates if not d.conflict]
    if same_class:
        many = len(same_class) != 1
        st.caption(f":material/content_copy: {len(same_class)} picture{'s appear' if many else ' appears'} more than "
                   f"once within a class: " + md(summarise([d.paths[0] for d in same_class])) + ".")
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
            shown = previews(ds, per_class=6)
            for cls in list(shown)[:PREVIEW_CLASSES]:
                if shown[cls]:
                    st.image(shown[cls], caption=[md(cls)] * len(shown[cls]), width=64)
            if len(shown) > PREVIEW_CLASSES:
                st.caption(f"… and {len(shown) - PREVIEW_CLASSES} more classes.")


def _on_arch() -> None:
    """Callback of the architecture: preselect its default strategy and its recipe's rate, forget an estimate."""
    ss[P + "strategy"] = default_strategy(ss[P + "arch"], _on_cpu())
    _on_strategy()


def _on_strategy() -> None:
    """Callback of the strategy: the learning rate of the architecture's fine-tuning recipe for it."""
    ss[P + "lr"] = recipe_for(ss[P + "arch"]).fields_for(ss[P + "strategy"])["lr"]
    ss[P + "confirm"] = False


@st.cache_data(show_spinner=False)
def _on_cpu() -> bool:
    return select_device("auto").type == "cpu"


def _plan(ds: OwnDataset) -> tuple[Plan | None, str | None, tuple[int, int]]:
    """The plan the form describes, or the reason it cannot run; and the (train, val) split sizes."""
    sizes = split_sizes(ds.labels, float(ss[P + "val_fraction"]), int(ss["seed"]))
    try:
        plan = own_plan(ss[P + "arch"], ss[P + "strategy"], sizes[0], len(ds.classes),
                        epochs=int(ss[P + "epochs"]), lr=float(ss[P + "lr"]), seed=int(ss["seed"]),
                        min_steps=int(ss[P + "min_steps"]))
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


def _imagenet_model(arch: str) -> nn.Module | None:
    """The shared ImageNet model of a torchvision architecture when its weights are on this machine, else None."""
    if not get_spec(arch).torchvision or not weights_status(arch).available:
        return None
    try:
        return cached.imagenet_model(arch)
    except ValueError:
        return None


def _measure_similarity(ds: OwnDataset) -> None:
    """Callback of "Measure similarity": your images against the selected model's own source data."""
    arch = ss[P + "arch"]
    live.quick_job(P + "similarity", OwnSimilarityJob(ds, int(ss["seed"]), arch, model=_imagenet_model(arch)),
                   label="measuring similarity to the source", tag=_data_key(ds, arch))


def _data_key(ds: OwnDataset, arch: str) -> str:
    return hashlib.sha256(ds.images.tobytes()[:1 << 20] + repr(ds.report.counts).encode() + arch.encode()).hexdigest()


def _start(plan: Plan, ds: OwnDataset) -> None:
    """Callback of Start: train in the background through the job manager."""
    fn = OwnTrainJob(plan, ds, float(ss[P + "val_fraction"]), base=_base(plan))
    live.start(SLOT, fn, label=f"your images · {plan.describe()}")


def _show_results(outcome: OwnOutcome) -> None:
    res = outcome.result
    plan = Plan.from_dict(res.plan)
    st.header(":material/bar_chart: Results")
    summary = (f"{plan.describe()} · {outcome.n_train} training and {outcome.n_val} validation images · "
               f"{res.wall_s:.1f} s")  # the epochs and steps really run are said under it (ui.results)
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
    """Measure how similar the images look to the selected model's own source data and place them on the quadrant."""
    arch = ss[P + "arch"]
    st.subheader("Where your data sits on the quadrant")
    if arch == SHAPES_ARCH:
        how = ("The shapes model compares the features of your images with those of its own source data, the shapes "
               "world, on a scale calibrated where the true shift is known.")
    else:
        how = (f"{arch} was trained on ImageNet, whose images are not on this server; its BatchNorm layers kept the "
               f"mean and variance of every channel over them, and your images' own statistics are compared with "
               f"those. Without {arch}'s weights here, or for a model without BatchNorm, only the shapes model's "
               f"measurement can be made, and it is not applied to {arch}.")
    st.caption(f"{how} Size is your smallest class. The architecture is picked under **3 · Train**.")
    st.button(f":material/straighten: Measure how similar your images are to {arch}'s source data",
              key=P + "measure_similarity", on_click=_measure_similarity, args=(ds,))
    got = live.collect_quick(P + "similarity", "Comparing your images with the source data…")
    if got is None or got[0] != _data_key(ds, arch):
        return
    if isinstance(got[1], str):
        st.error(got[1], icon=":material/warning:")
        return
    check = got[1]
    report, placement = check.report, check.placement
    st.markdown(f"**Compared with:** {check.reference}.")
    st.markdown(f"**Measured similarity: {report.similarity:.2f}** ({report.verdict}). {report.explanation}")
    if check.applies:
        st.success(f"**{placement.label}.** {placement.explanation}", icon=":material/explore:")
        st.button(f"Use '{STRATEGIES[placement.strategy].label}'", key=P + "use_placement", on_click=_use_strategy,
                  args=(placement.strategy,))
    else:
        st.warning(f"**For the shapes model only.** {check.note} For the shapes model: {placement.explanation}",
                   icon=":material/info:")


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
c2.selectbox("Strategy", list(STRATEGIES), persist_state=PERSIST, key=P + "strategy", on_change=_on_strategy,
             format_func=lambda s: STRATEGIES[s].label, help=STRATEGIES[ss[P + "strategy"]].summary)
c1, c2, c3, c4 = st.columns(4)
c1.number_input("Epochs", min_value=1, max_value=200, step=1, persist_state=PERSIST, key=P + "epochs",
                help="Passes over your training images.")
c2.number_input("Minimum optimiser steps", min_value=0, max_value=10_000, step=10, persist_state=PERSIST,
                key=P + "min_steps",
                help="A small dataset gives few steps per epoch; the run repeats epochs until it has taken this "
                     "many steps. 0 trains exactly the epochs above. The line under the form says what will run.")
c3.number_input("Learning rate", min_value=1e-6, max_value=1.0, step=1e-3, format="%.4g", persist_state=PERSIST,
                key=P + "lr", help=f"Starts at the fine-tuning recipe of {ss[P + 'arch']}: "
                                   f"{recipe_for(ss[P + 'arch']).describe()}")
c4.slider("Validation share per class", 0.1, 0.5, step=0.05, persist_state=PERSIST, key=P + "val_fraction",
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
                   f"{ds.size}×{ds.size} pixels. {plan.describe()}. **{schedule_note(plan, sizes[0])}**")
        leaks = split_leaks(ds, float(ss[P + "val_fraction"]), int(ss["seed"]))
        if leaks:
            st.warning(f"**{len(leaks)} picture{'s are' if len(leaks) != 1 else ' is'} in both the training and "
                       f"the validation images** (copies of one picture): the model is then scored on images it "
                       f"trained on, and the validation accuracy flatters it. Remove the copies.\n\n"
                       + "\n".join(f"- {md(d.describe())}" for d in leaks[:5])
                       + (f"\n- and {len(leaks) - 5} more" if len(leaks) > 5 else ""), icon=":material/warning:")
elif isinstance(ds, OwnDataset):
    st.caption("Fix the problems listed above first.")

needs_ok = False
if plan is not None and weights_missing is None and needs_estimate(plan, _on_cpu()):
    key = _estimate_key(plan, sizes, ds.size)
    st.info(f"'{STRATEGIES[plan.strategy].label}' runs every image through all of {arch} at {ds.size} px on every "
            f"step, on the CPU. Measure how long that takes here before you start.", icon=":material/hourglass_top:")
    st.button(":material/timer: Measure the expected time", key=P + "measure", on_click=_measure,
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
