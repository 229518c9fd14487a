"""Page: explore pretrained models: classify a drawn shape, an uploaded image or a camera snapshot, top-k as a chart.

The course's demo "Explore pre-trained models available for image classification in PyTorch", and its third choice
of re-use, "use entirely as-is": a pretrained network classifies with its own classes, unchanged and untrained.
Offline-first: ImageNet models are used only when their weights are already in the local torch hub cache (or
uploaded as a .pth state dict); otherwise the page says why they are needed, then offers to download them (where
allowed) and says exactly which file to fetch and where to put it. The picture is shown whether or not a model can
classify it yet. The shipped shapes model always works. File names are escaped where shown (ui.escape).
Widget keys: "explorer.arch", "explorer.weights", "explorer.source", "explorer.shape", "explorer.seed",
"explorer.style", "explorer.upload", "explorer.camera", "explorer.download".
"""

from __future__ import annotations

import hashlib

import streamlit as st
from PIL import Image
from streamlit.runtime.uploaded_file_manager import UploadedFile
from torch import nn

from tl_core.models import inference as predict

from tl_core.data import shapes
from tl_core.models.registry import ARCHS
from tl_core.data.safe_io import UnsafeInput, open_image
from tl_core.settings import flag
from tl_core.models.weights import WeightsUnavailable, download_weights, torchvision_archs, weights_status
from ui import cached
from ui.charts.own_data import topk_chart
from ui.escape import md
from ui.render import chart
from ui.session import track
from ui.state import PERSIST, init_state

P = "explorer."  # widget and state key prefix
SHAPES_ARCH = "shapesnet"
SOURCES = {"sample": ":material/palette: A drawn shape (built in)", "upload": ":material/upload: Upload an image", "camera": ":material/photo_camera: Camera snapshot"}
STYLES = {"plain": (), "outline": ("outline",), "inverted": ("inverted",)}
IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
# On by default, so a connected machine fetches missing weights on request; TLP_ALLOW_DOWNLOADS=0 locks a classroom
# server down. Offline, the attempt fails with the same how-to-get explanation.
ALLOW_DOWNLOADS = flag("TLP_ALLOW_DOWNLOADS", True)


def _custom_model(arch: str, upload: UploadedFile | None) -> tuple[nn.Module, list[str]] | None:
    """The learner's uploaded state dict for `arch` as a model (kept in this session only), or None.

    A file that does not fit shows its error (naming the first offending key) and is not used.
    """
    if upload is None:
        st.session_state.pop(P + "custom", None)
        return None
    data = upload.getvalue()
    key = (arch, hashlib.sha256(data).hexdigest())
    cached = st.session_state.get(P + "custom")
    if cached is not None and cached["key"] == key:
        return cached["model"], cached["categories"]
    try:
        with st.spinner(f"Checking {md(upload.name)} against {arch}…"):
            state, categories = predict.load_custom_weights(data, arch)
    except ValueError as e:
        st.session_state.pop(P + "custom", None)
        st.error(f"**{md(upload.name)} cannot be used with {arch}.** {md(e)}", icon=":material/block:")
        return None
    model = predict.model_from_state_dict(arch, state)
    st.session_state[P + "custom"] = {"key": key, "model": model, "categories": categories}
    return model, categories


def _download(arch: str) -> None:
    """Download the weights into the local cache with a progress bar (unless TLP_ALLOW_DOWNLOADS=0)."""
    status = weights_status(arch)
    bar = st.progress(0.0, text=f"Downloading {status.filename}…")

    def progress(done: int, total: int) -> None:
        total = total or int(status.size_mb * 2**20) or 1
        bar.progress(min(done / total, 1.0), text=f"{done / 2**20:.1f} of {total / 2**20:.1f} MB")

    try:
        download_weights(arch, progress)
    except WeightsUnavailable as e:
        st.error(f"{e} This machine seems to be offline: get the file as described above.", icon=":material/wifi:")
        return
    st.rerun()


def _image() -> tuple[Image.Image, str | None, str] | None:
    """The picture to classify (an RGB PIL image), its true class when known, and a caption; or None."""
    source = st.session_state[P + "source"]
    if source == "sample":
        c1, c2, c3 = st.columns(3)
        c1.selectbox("Shape", list(shapes.ALL_SHAPES), persist_state=PERSIST, key=P + "shape",
                     format_func=lambda s: f"{s} (one of the six it knows)" if s in shapes.SOURCE_CLASSES
                     else f"{s} (new to it)", help="The shapes model was trained on the first six only.")
        c2.number_input("Seed", min_value=0, max_value=10_000, step=1, persist_state=PERSIST, key=P + "seed",
                        help="Another seed draws another colour, size, position and rotation.")
        c3.selectbox("Look", list(STYLES), persist_state=PERSIST, key=P + "style",
                     help="'outline' and 'inverted' shift the look away from the training images.")
        shape = st.session_state[P + "shape"]
        img = predict.sample_image(shape, int(st.session_state[P + "seed"]), STYLES[st.session_state[P + "style"]])
        return img, shape, f"A drawn {shape} (32×32 pixels)"
    if source == "upload":
        file = st.file_uploader("An image (JPEG, PNG, GIF, BMP, TIFF or WebP)", type=IMAGE_TYPES, key=P + "upload")
    else:
        file = st.camera_input("Take a snapshot", key=P + "camera")
    if file is None:
        st.caption("No image yet.")
        return None
    try:
        return open_image(file.getvalue()), None, md(file.name)
    except UnsafeInput as e:
        st.error(str(e), icon=":material/block:")
        return None


def _missing_weights(arch: str) -> None:
    """Why the ImageNet weights are needed, then how to get them: the download offer first where it is allowed,
    the offline steps otherwise (so the page never says it will not download and then offers to)."""
    status = weights_status(arch)
    if not ALLOW_DOWNLOADS:
        st.warning(status.how_to_get(), icon=":material/inventory_2:")
        return
    st.warning(status.how_to_get(download_offered=True), icon=":material/inventory_2:")
    if st.button(f":material/download: Download {status.filename} ({status.size_mb:.0f} MB) now",
                 key=P + "download"):
        _download(arch)
    with st.expander(":material/wifi_off: On a machine without internet"):
        st.markdown(status.offline_steps())


# ---- the page ---------------------------------------------------------------------------------------------------
init_state("explorer")  # this page's keys (and the app-wide ones on a cold start, see ui.state)
track()
ss = st.session_state

st.title(":material/search: Pretrained model explorer")
st.markdown("`torchvision.models` ships the famous architectures of the course (AlexNet, VGG, ResNet, DenseNet, "
            "Inception, MobileNet), each with weights trained on the 1000 classes of ImageNet. Show one a picture "
            "and see what it thinks. The playbook's own **shapes model** knows only six shapes, and works offline.")
st.info("This is the course's third way to re-use a network, **use it entirely as-is**: no layer is changed and "
        "nothing is trained, so the model can only answer with the classes it was trained on. The other two, "
        "fine-tuning and re-training, are on the Train and Race pages.", icon=":material/inventory:")

st.header("1 · Pick a model")
archs = [SHAPES_ARCH, *torchvision_archs()]
st.selectbox("Model", archs, persist_state=PERSIST, key=P + "arch",
             format_func=lambda a: f"{a} ({ARCHS[a].paper})")
arch = ss[P + "arch"]
with st.expander(":material/library_books: Which ImageNet weights are on this server"):
    st.dataframe(predict.weights_table(), hide_index=True,
                 column_config={"ImageNet top-1 %": st.column_config.NumberColumn(format="%.1f"),
                                "Parameters (M)": st.column_config.NumberColumn(format="%.1f"),
                                "File (MB)": st.column_config.NumberColumn(format="%.1f")})
    st.caption("Sizes and accuracies come from torchvision's metadata; nothing is downloaded to show this.")


model, categories, name, own_head = None, None, arch, False
if arch == SHAPES_ARCH:
    src = cached.shapes_model()
    model, categories, name = src.model, list(src.classes), "the shapes model"
    st.info(f"The shipped ShapesNet, trained on {len(src.classes)} shapes ({', '.join(src.classes)}) at 32×32 "
            f"pixels. It works offline and sees any picture shrunk to 32×32.", icon=":material/category:")
else:
    status = weights_status(arch)
    slot = st.container()  # the weights' status and how to get them, above the optional uploader
    upload = st.file_uploader(f"Optional: your own weights for {arch} (a .pth/.pt state dict)", type=["pth", "pt"],
                              key=P + "weights",
                              help="Loaded with weights_only=True (tensors only, no code) and checked key by key "
                                   "against the architecture before use.")
    with slot:
        custom = _custom_model(arch, upload)
        if custom is not None:
            model, categories = custom
            own_head = True
            st.success(f"Using your file {md(upload.name)} ({len(categories)} classes).",
                       icon=":material/description:")
        elif status.available:
            try:
                model = cached.imagenet_model(arch)
                st.success(f"ImageNet weights for {arch} loaded from this server's cache (no network).",
                           icon=":material/check_circle:")
            except ValueError as e:
                st.error(str(e), icon=":material/block:")
        else:
            _missing_weights(arch)

st.header("2 · Pick an image")
st.radio("Image", list(SOURCES), format_func=SOURCES.get, horizontal=True, persist_state=PERSIST, key=P + "source",
         label_visibility="collapsed")
picked = _image()

st.header("3 · What the model sees")
if picked is None:
    st.caption("Pick or upload an image above.")
else:
    image, truth, caption = picked
    left, right = st.columns([1, 2], gap="large")
    with left:  # the picture is shown even before a model can classify it
        st.image(predict.enlarge(image) if max(image.size) <= 64 else image, caption=caption, width="stretch")
        st.image(predict.model_view(image, arch), caption="After the model's own preprocessing", width=160)
    with right:
        if model is None:
            st.info(f"No weights for {arch} yet, so nothing to classify with: get them as described above, upload "
                    f"a .pth file, or pick the shapes model.", icon=":material/hourglass_empty:")
        elif arch == SHAPES_ARCH:
            preds = predict.shapes_topk(image, k=len(categories), model=model, classes=tuple(categories))
            c = topk_chart(preds, name, truth, known=tuple(categories))
            chart(c.fig, c.takeaway, key=P + "chart")
        else:
            preds = predict.imagenet_topk(model, arch, image, k=5, categories=categories if own_head else None)
            c = topk_chart(preds, arch, truth)
            chart(c.fig, c.takeaway, key=P + "chart")
