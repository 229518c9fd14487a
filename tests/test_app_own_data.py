"""App tests for the own-images page and the pretrained explorer, with files made here and uploaded through the
pages' own st.file_uploader and st.camera_input widgets (AppTest 1.67 drives both), offline."""

from __future__ import annotations

import html
import io
import json
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
import streamlit as st
import torch
import torchvision
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from tl_core.training import estimate

from tl_core.models import weights
from tl_core.training.estimate import Estimate
from tl_core.jobs.manager import get_manager
from tl_core.data.own import ClassEditor
from tl_core.data.safe_io import session_dir
from tl_core.models.weights import weights_status
from test_predict import random_state
from ui.escape import JOINER, md

OWN, EXPLORER = "pages/own_data.py", "pages/explorer.py"
def _train_on(monkeypatch: pytest.MonkeyPatch, device_type: str) -> None:
    """Make the page believe its runs train on this device type (its defaults depend on it), on any machine."""
    import tl_core.training.device

    monkeypatch.setattr(tl_core.training.device, "select_device", lambda preference="auto": torch.device(device_type))
    st.cache_data.clear()  # the page caches its device check for the process
COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (30, 60, 220)}


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty TORCH_HOME (no ImageNet weights cached), no network, and one torch thread per job (fast on a
    shared, busy machine)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(url, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise AssertionError(f"network access attempted: {url}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(get_manager(), "cores", 1)


def picture(cls: str, i: int, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    """A small image of a class: a red disc, a green square or a blue triangle, moved a little with i."""
    im = Image.new("RGB", (40, 40), (240 - 2 * i, 240, 235))
    d = ImageDraw.Draw(im)
    o = 3 + i % 6
    if cls == "red":
        d.ellipse([o, o, o + 26, o + 26], fill=COLOURS[cls])
    elif cls == "green":
        d.rectangle([o, o, o + 24, o + 24], fill=COLOURS[cls])
    else:
        d.polygon([(o, o + 26), (o + 26, o + 26), (o + 13, o)], fill=COLOURS[cls])
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def good_zip(n: int = 8) -> bytes:
    """3 classes x n images, one of them a palette image, plus a text file and macOS junk that must be skipped."""
    members = {f"shapes/{c}/{c}_{i}.png": picture(c, i) for c in COLOURS for i in range(n)}
    members["shapes/blue/blue_0.png"] = picture("blue", 0, mode="P")  # converted to RGB
    members["shapes/green/notes.txt"] = b"not an image"
    members["__MACOSX/shapes/._red_0.png"] = b"junk"
    return make_zip(members)


def _go(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _upload_zip(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="own.zip_upload").set_value((name, data, "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _table(at: AppTest, first_column: str) -> dict:
    """The first dataframe on the page whose first column is `first_column`, as {first column: second column}."""
    for df in at.dataframe:
        v = df.value
        if list(v.columns)[0] == first_column:
            return dict(zip(v.iloc[:, 0], v.iloc[:, 1]))
    raise AssertionError(f"no table starting with {first_column!r}")


def shown(markdown: str) -> str:
    """What a Markdown string that went through ui.escape.md reads as on screen (character references decoded,
    the invisible autolink breakers removed)."""
    return html.unescape(markdown).replace(JOINER, "")


def _charts(at: AppTest) -> dict[str, dict]:
    return {json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec)
            for c in at.get("plotly_chart")}


def _finish(at: AppTest, timeout: float = 300.0):
    """Wait on the job's done_event, then rerun until the page has picked the outcome up (no sleeping)."""
    job = get_manager().get(at.session_state["own.job"])
    assert job is not None and job.wait(timeout), "the job did not end"
    deadline = time.monotonic() + 60
    while at.session_state["own.done"] != job.id:
        assert time.monotonic() < deadline, "the page never picked up the finished job"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    return job


# ---- a zip of class folders ------------------------------------------------------------------------------------
def test_good_zip_is_reported_then_trains_above_chance_in_the_background(app: AppTest) -> None:
    _go(app, OWN)
    assert app.button(key="own.start").disabled
    _upload_zip(app, "shapes.zip", good_zip())
    assert not app.error, [e.value for e in app.error]
    assert _table(app, "Class") == {"blue": 8, "green": 8, "red": 8}
    assert any("24 images in 3 classes (blue 8, green 8 and red 8), ready to train" in shown(s.value)
               for s in app.success)
    skipped = _table(app, "File")
    assert skipped["shapes/green/notes.txt"] == "not an image"
    assert skipped["__MACOSX/"] == "hidden/system file"
    converted = [df.value for df in app.dataframe if list(df.value.columns)[0] == "File"][-1]
    assert dict(zip(converted.iloc[:, 0], converted.iloc[:, 1])) == {"shapes/blue/blue_0.png": "P"}
    counts = _charts(app)["Usable images per class"]
    assert counts["data"][0]["y"] == [8, 8, 8]
    assert any(c.value == "**Takeaway:** Balanced: every class has 8 images." for c in app.caption)
    assert any("**18** training and **6** validation images at 32×32 pixels" in c.value for c in app.caption)

    assert app.selectbox(key="own.arch").value == "shapesnet"
    app.number_input(key="own.epochs").set_value(3).run()
    app.button(key="own.start").click().run()
    assert not app.exception, [e.value for e in app.exception]
    job = _finish(app)
    assert job.state == "done" and job.owner  # ran through the process-wide job manager
    outcome = app.session_state["own.result"]
    res = outcome.result
    assert res.status == "finished" and outcome.classes == ("blue", "green", "red")
    assert outcome.n_train + outcome.n_val == 24 and outcome.n_val >= 3
    assert res.final_val_acc > 1 / 3, f"validation accuracy {res.final_val_acc} is not above chance"
    charts = _charts(app)
    assert "Confusion matrix (validation images)" in charts and "Accuracy per class (validation images)" in charts
    assert any("Validation accuracy" in s.value for s in app.success)
    assert any(b.proto.label == ":material/download: Trained weights (.pt)" for b in app.get("download_button"))


def test_zip_slip_is_refused_and_what_was_loaded_stays(app: AppTest) -> None:
    _go(app, OWN)
    _upload_zip(app, "shapes.zip", good_zip(4))
    evil = make_zip({"cats/a.png": picture("red", 0), "../evil.png": picture("red", 1)})
    _upload_zip(app, "evil.zip", evil)
    errors = [shown(e.value) for e in app.error]
    assert any("evil.zip was refused" in e and "points outside the zip" in e for e in errors), errors
    assert any("Your previous data (shapes.zip) is still loaded" in shown(c.value) for c in app.caption)
    assert _table(app, "Class") == {"blue": 4, "green": 4, "red": 4}  # the good data is still there
    assert app.button(key="own.start").disabled is False
    folder = session_dir(app.session_state["session.id"])  # where the zip would have been unpacked (and "..")
    assert not list(folder.rglob("evil.png")) and not (folder.parent / "evil.png").exists()
    app.radio(key="own.mode").set_value("classes").run()  # the page keeps working
    assert not app.exception and app.text_input(key="own.new_class")


def test_one_class_zip_asks_for_another_class(app: AppTest) -> None:
    _go(app, OWN)
    _upload_zip(app, "cats.zip", make_zip({f"cats/{i}.png": picture("red", i) for i in range(3)}))
    problems = " ".join(e.value for e in app.error)
    assert "Found 1 class ('cats'); training needs at least 2" in shown(problems)
    assert "Add a folder of images for another class" in shown(problems)
    assert app.button(key="own.start").disabled is True


def test_not_a_zip_is_refused_with_its_reason(app: AppTest) -> None:
    _go(app, OWN)
    _upload_zip(app, "photo.zip", picture("red", 0))
    assert any("is not a zip archive" in shown(e.value) for e in app.error)
    assert any("Nothing to check yet" in c.value for c in app.caption)


# ---- class by class -------------------------------------------------------------------------------------------
def test_classes_built_one_by_one_with_uploads_and_the_camera(app: AppTest) -> None:
    _go(app, OWN)
    app.radio(key="own.mode").set_value("classes").run()
    for name in ("red", "green"):
        app.text_input(key="own.new_class").set_value(name)
        app.button(key="own.add_class").click().run()
    assert app.text_input(key="own.new_class").value == ""  # cleared for the next one
    app.text_input(key="own.new_class").set_value("Red")
    app.button(key="own.add_class").click().run()
    assert any("There is already a class called 'Red'" in shown(e.value) for e in app.error)
    editor = app.session_state["own.editor"]
    assert isinstance(editor, ClassEditor) and editor.names == ["red", "green"]  # the library's editor

    ids = {c.name: c.id for c in editor.classes}
    app.selectbox(key="own.target").set_value(ids["red"]).run()
    (up,) = [u for u in app.file_uploader if u.key.startswith("own.files.")]
    up.set_value([(f"r{i}.png", picture("red", i), "image/png") for i in range(3)]
                 + [("broken.png", b"not really a png", "image/png")]).run()
    assert not app.exception
    app.selectbox(key="own.target").set_value(ids["green"]).run()
    app.toggle(key="own.use_camera").set_value(True).run()
    for i in range(2):
        (cam,) = app.camera_input
        cam.set_value(("shot.jpg", picture("green", i, fmt="JPEG"), "image/jpeg")).run()
        assert not app.exception, [e.value for e in app.exception]
    files = {c.name: [f for f, _ in c.files] for c in app.session_state["own.editor"].classes}
    assert files == {"red": ["r0.png", "r1.png", "r2.png", "broken.png"],
                     "green": [files["green"][0], files["green"][1]]}
    assert len(set(files["green"])) == 2  # two snapshots, two names
    assert _table(app, "Class") == {"red": 3, "green": 2}
    assert _table(app, "File") == {"red/broken.png": "not an image"}
    assert app.button(key="own.start").disabled is False

    app.text_input(key=f"own.rename.{ids['green']}").set_value("grass")
    app.button(key=f"own.do_rename.{ids['green']}").click().run()
    assert app.session_state["own.editor"].names == ["red", "grass"] and _table(app, "Class") == {"red": 3, "grass": 2}
    app.button(key=f"own.remove.{ids['green']}").click().run()
    assert any("Found 1 class ('red'); training needs at least 2" in shown(e.value) for e in app.error)


# ---- the explorer ------------------------------------------------------------------------------------------------
def test_explorer_offline_explains_missing_weights_and_classifies_a_drawn_shape(app: AppTest) -> None:
    _go(app, EXPLORER)
    assert app.title[0].value == ":material/search: Pretrained model explorer"
    assert app.selectbox(key="explorer.arch").value == "shapesnet"
    app.selectbox(key="explorer.shape").set_value("star").run()
    chart = _charts(app)["What the shapes model sees: its top 6 classes"]
    bars = dict(zip(chart["data"][0]["y"], chart["data"][0]["x"]))
    assert sum(bars.values()) == pytest.approx(1.0, abs=1e-4)
    takeaway = next(c.value for c in app.caption if c.value.startswith("**Takeaway:**"))
    assert "'star'" in takeaway and takeaway.endswith(": right.")

    app.selectbox(key="explorer.arch").set_value("resnet18").run()
    assert not app.exception
    panel = " ".join(w.value for w in app.warning) + " ".join(m.value for m in app.markdown)
    name = Path(torchvision.models.get_model_weights("resnet18").DEFAULT.url).name
    assert name in panel and "python -m tl_core.models.fetch_weights resnet18" in panel
    assert str(Path(torch.hub.get_dir()) / "checkpoints") in panel
    assert "does not download it by itself" not in panel  # it offers to download: it must not also say it won't
    assert not app.get("plotly_chart")  # nothing to classify with
    assert [b.key for b in app.get("button")] == ["explorer.download"]  # only the offer to download (by default)
    assert len(app.image) == 2  # the drawn shape is still shown, and what the model would receive
    assert any("No weights for resnet18 yet" in i.value for i in app.info)


def test_explorer_uses_an_uploaded_state_dict_and_names_a_bad_one(app: AppTest) -> None:
    _go(app, EXPLORER)
    app.selectbox(key="explorer.arch").set_value("mobilenet_v3_small").run()
    bad = io.BytesIO()
    torch.save({"features.0.0.weight": torch.zeros(3, 3, 3, 3)}, bad)
    app.file_uploader(key="explorer.weights").set_value(("bad.pth", bad.getvalue(), "application/octet-stream")).run()
    assert any("bad.pth cannot be used with mobilenet_v3_small" in shown(e.value)
               and "'features.0.0.weight'" in shown(e.value) for e in app.error), [e.value for e in app.error]
    with torch.device("meta"):
        shapes_ = torchvision.models.get_model("mobilenet_v3_small", num_classes=4).state_dict()
    good = io.BytesIO()
    torch.save({k: (torch.rand(v.shape) + 0.5 if v.is_floating_point() else torch.zeros(v.shape, dtype=v.dtype))
                for k, v in shapes_.items()}, good)
    app.file_uploader(key="explorer.weights").set_value(("mine.pth", good.getvalue(), "application/octet-stream"))
    app.radio(key="explorer.source").set_value("upload").run()
    app.file_uploader(key="explorer.upload").set_value(("photo.png", picture("blue", 2), "image/png")).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any("Using your file mine.pth (4 classes)" in shown(s.value) for s in app.success)
    chart = _charts(app)["What mobilenet_v3_small sees: its top 4 classes"]
    assert sorted(chart["data"][0]["y"]) == ["class 0", "class 1", "class 2", "class 3"]


# ---- ImageNet models, with a (random) weights file in the local cache ------------------------------------------
def _cache_mobilenet() -> None:
    status = weights_status("mobilenet_v3_small")
    status.path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_state("mobilenet_v3_small"), status.path)


def test_imagenet_model_defaults_to_cached_feature_extraction_and_fine_tuning_asks_first(
        app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    _train_on(monkeypatch, "cpu")
    _cache_mobilenet()
    _go(app, OWN)
    _upload_zip(app, "shapes.zip", good_zip())
    app.selectbox(key="own.arch").set_value("mobilenet_v3_small").run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert app.session_state["own.strategy"] == "feature_extract"  # the CPU default for an ImageNet model
    assert any("at 224×224 pixels" in c.value for c in app.caption)  # decoded again at the model's size
    assert not [b for b in app.button if b.key == "own.measure"]  # cached: no estimate needed
    assert app.button(key="own.start").disabled is False

    app.selectbox(key="own.strategy").set_value("finetune_all").run()
    assert app.button(key="own.measure") and app.button(key="own.start").disabled is True  # measure first
    seen = []

    def fake_estimate(plan, n_train, n_val, n_classes, image_size, base=None):  # noqa: ANN001, ANN202
        seen.append((plan.strategy, n_train, n_val, n_classes, image_size, base is not None))
        return Estimate(seconds=95.0, images_per_s=20.0, total_steps=100, cached=False, note="Measured here.")

    monkeypatch.setattr(estimate, "estimate_run", fake_estimate)
    app.button(key="own.measure").click().run()
    assert seen == [("finetune_all", 18, 6, 3, 224, True)]  # the real plan, data and shared pretrained base
    assert any("Expected time: about 95 s." in m.value for m in app.markdown)
    assert app.button(key="own.start").disabled is True  # a slow run waits for the learner's yes
    app.checkbox(key="own.confirm").check().run()
    assert app.button(key="own.start").disabled is False

    app.selectbox(key="own.strategy").set_value("feature_extract").run()
    app.button(key="own.start").click().run()
    job = _finish(app)
    res = app.session_state["own.result"].result
    assert job.state == "done" and res.status == "finished"
    assert res.cached_prefix == ("stem", "blocks1", "blocks2", "blocks3", "fc")  # one forward pass, then the head
    assert app.session_state["own.result"].val_images.shape[-1] == 224


def test_on_a_gpu_imagenet_models_fine_tune_by_default_without_asking(
        app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    _train_on(monkeypatch, "cuda")  # only the page's defaults are checked here; nothing trains
    _cache_mobilenet()
    _go(app, OWN)
    _upload_zip(app, "shapes.zip", good_zip())
    app.selectbox(key="own.arch").set_value("mobilenet_v3_small").run()
    assert app.session_state["own.strategy"] == "finetune_top"
    app.selectbox(key="own.strategy").set_value("finetune_all").run()
    assert not [b for b in app.button if b.key == "own.measure"] and app.button(key="own.start").disabled is False


def test_explorer_classifies_with_cached_imagenet_weights_without_network(app: AppTest) -> None:
    _cache_mobilenet()
    _go(app, EXPLORER)
    app.selectbox(key="explorer.arch").set_value("mobilenet_v3_small").run()
    assert any("loaded from this server's cache (no network)" in s.value for s in app.success)
    chart = _charts(app)["What mobilenet_v3_small sees: its top 5 classes"]
    categories = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT.meta["categories"]
    assert len(chart["data"][0]["y"]) == 5 and all(c in categories for c in chart["data"][0]["y"])


def test_missing_weights_block_pretrained_strategies_but_not_training_from_scratch(
        app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    _train_on(monkeypatch, "cpu")
    _go(app, OWN)
    _upload_zip(app, "shapes.zip", good_zip())
    app.selectbox(key="own.arch").set_value("resnet18").run()
    panel = " ".join(w.value for w in app.warning)
    assert "python -m tl_core.models.fetch_weights resnet18" in panel and "pick **shapesnet**" in panel
    assert app.button(key="own.start").disabled is True
    app.selectbox(key="own.strategy").set_value("scratch").run()
    assert not any("fetch_weights" in w.value for w in app.warning)  # random weights need no file
    seen = []

    def fake_estimate(plan, n_train, n_val, n_classes, image_size, base=None):  # noqa: ANN001, ANN202
        seen.append(base)
        return Estimate(seconds=12.0, images_per_s=50.0, total_steps=100, cached=False, note="Measured here.")

    monkeypatch.setattr(estimate, "estimate_run", fake_estimate)
    assert app.button(key="own.start").disabled is True
    app.button(key="own.measure").click().run()
    assert seen == [None] and not app.exception  # no pretrained model was asked for
    assert any("Expected time: about 12 s." in m.value for m in app.markdown)
    assert not [c for c in app.checkbox if c.key == "own.confirm"]  # a short run needs no extra yes
    assert app.button(key="own.start").disabled is False


def test_explorer_download_button_only_when_allowed_and_with_progress(
        app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLP_ALLOW_DOWNLOADS", "0")  # a locked-down classroom server
    _go(app, EXPLORER)
    app.selectbox(key="explorer.arch").set_value("mobilenet_v3_small").run()
    assert not [b for b in app.button if b.key == "explorer.download"]  # not offered when locked down
    calls = []

    def fake_download(arch, progress=None):  # noqa: ANN001, ANN202
        calls.append(arch)
        _cache_mobilenet()
        progress(5, 10)
        progress(10, 10)
        return weights_status(arch).path

    monkeypatch.setattr(weights, "download_weights", fake_download)
    monkeypatch.delenv("TLP_ALLOW_DOWNLOADS")  # the default: offered, and it runs with a progress bar
    app.run()
    app.button(key="explorer.download").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert calls == ["mobilenet_v3_small"]
    assert any("loaded from this server's cache" in s.value for s in app.success)
    assert "What mobilenet_v3_small sees: its top 5 classes" in _charts(app)


def test_explorer_camera_snapshot_and_a_broken_upload(app: AppTest) -> None:
    _go(app, EXPLORER)
    app.radio(key="explorer.source").set_value("camera").run()
    app.camera_input(key="explorer.camera").set_value(("shot.jpg", picture("red", 1, fmt="JPEG"), "image/jpeg")).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert "What the shapes model sees: its top 6 classes" in _charts(app)
    assert "shot.jpg" in [shown(c) for c in app.image[0].captions]
    app.radio(key="explorer.source").set_value("upload").run()
    app.file_uploader(key="explorer.upload").set_value(("fake.png", b"<html>not a picture</html>", "image/png")).run()
    assert not app.exception
    assert any("not an image PIL can read" in e.value for e in app.error)
    assert not app.get("plotly_chart")  # nothing is classified


def test_measured_similarity_places_the_upload_on_the_quadrant(app: AppTest) -> None:
    _go(app, OWN)
    _upload_zip(app, "shapes.zip", good_zip(n=12))
    app.button(key="own.measure_similarity").click().run()  # runs as a job; the page waits for it
    assert not app.exception and not app.error, [e.value for e in app.error]
    placed = [s.value for s in app.success if "The quadrant says" in s.value or "quadrant says" in s.value]
    assert placed and "12 labelled images per class is little data" in placed[0]
    check = app.session_state["own.similarity"][1]
    assert check.applies and check.measured_with == "shapesnet" and check.arch == "shapesnet"
    assert any("**Compared with:** the shapes world" in m.value for m in app.markdown)
    assert 0.0 <= check.report.similarity <= 1.0 and check.placement.size == "little"
    app.button(key="own.use_placement").click().run()
    assert app.session_state["own.strategy"] == check.placement.strategy


def test_without_its_weights_an_imagenet_model_gets_no_shapes_verdict(app: AppTest,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _train_on(monkeypatch, "cpu")
    _go(app, OWN)
    _upload_zip(app, "shapes.zip", good_zip(n=12))
    app.selectbox(key="own.arch").set_value("resnet18").run()  # no ImageNet weights on this machine
    button = app.button(key="own.measure_similarity")
    assert button.label.endswith("to resnet18's source data")
    button.click().run()
    check = app.session_state["own.similarity"][1]
    assert not check.applies and check.measured_with == "shapesnet" and check.arch == "resnet18"
    notes = [w.value for w in app.warning if w.value.startswith("**For the shapes model only.**")]
    assert notes and "not applied to resnet18" in notes[0] and "not on this machine" in notes[0]
    assert not [b for b in app.button if b.key == "own.use_placement"]  # its advice is not offered for resnet18


def test_with_its_weights_an_imagenet_model_is_measured_against_imagenet(app: AppTest,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _train_on(monkeypatch, "cpu")
    _cache_mobilenet()
    _go(app, OWN)
    _upload_zip(app, "shapes.zip", good_zip(n=12))
    app.selectbox(key="own.arch").set_value("mobilenet_v3_small").run()
    app.button(key="own.measure_similarity").click().run()
    assert not app.exception, [e.value for e in app.exception]
    check = app.session_state["own.similarity"][1]
    assert check.applies and check.measured_with == "mobilenet_v3_small"
    assert "ImageNet" in check.reference and "BatchNorm" in check.reference
    assert check.report.n_images == 36 and check.report.n_layers > 10
    assert any(m.value.startswith("**Compared with:** ImageNet") for m in app.markdown)
    app.button(key="own.use_placement").click().run()
    assert app.session_state["own.strategy"] == check.placement.strategy


def test_learner_names_are_escaped_and_long_lists_summarised(app: AppTest) -> None:
    evil = "[go](javascript:alert(1))"
    members = {f"{evil}/{i}.png": picture("red", i) for i in range(3)}
    members |= {f"**bold**/{i}.png": picture("green", i) for i in range(3)}
    _go(app, OWN)
    _upload_zip(app, "x.zip", make_zip(members))
    rendered = [e.value for e in (*app.markdown, *app.success, *app.caption, *app.error, *app.warning)]
    rendered += [c for im in app.image for c in im.captions]
    assert not any(evil in v or "**bold**" in v for v in rendered)  # nothing a learner named is read as Markdown
    assert any(f"({md('**bold**')} 3 and {md(evil)} 3)" in v for v in rendered)  # but it is all shown, escaped
    assert any(shown(v).endswith(f"(**bold** 3 and {evil} 3), ready to train.") for v in rendered)
    counts = _charts(app)["Usable images per class"]
    assert counts["data"][0]["x"] == [html.escape("**bold**"), html.escape(evil)]

    many = make_zip({f"c{i:04d}/a.png": picture("blue", i) for i in range(1000)})
    _upload_zip(app, "many.zip", many)
    (problem,) = [e.value for e in app.error]
    assert shown(problem).count("\n- ") == 1  # one line for a thousand one-image classes, not a thousand
    assert "1000 classes have fewer than 2 images: 'c0000', 'c0001', 'c0002', 'c0003', 'c0004' and 995 more" in \
        shown(problem)
    assert "the 40 smallest of 1000 classes" in " ".join(_charts(app))
    assert len(app.image) <= 12  # sample images of the first twelve classes, then "and N more"


def test_copies_of_a_picture_are_reported_as_label_conflicts_and_as_leakage(app: AppTest) -> None:
    members = {f"red/{i}.png": picture("red", i) for i in range(4)}
    members |= {f"green/{i}.png": picture("green", i) for i in range(4)}
    members["green/sneaky.png"] = picture("red", 0)  # a red picture, labelled green
    members |= {f"red/copy{i}.png": picture("red", 1) for i in range(4)}  # one picture, five times in red
    _go(app, OWN)
    _upload_zip(app, "dups.zip", make_zip(members))
    conflict = [shown(w.value) for w in app.warning if "in more than one class" in w.value]
    assert conflict and "'green/sneaky.png' and 'red/0.png' are the same picture, labelled 'green' and 'red'" in \
        conflict[0]
    leak = [shown(w.value) for w in app.warning if "in both the training and the validation images" in w.value]
    assert leak and "'red/1.png'" in leak[0]  # five copies over a 20% split: some land on both sides
    assert app.button(key="own.start").disabled is False  # reported, not blocking


def test_the_page_trains_the_epochs_asked_for_and_says_what_ran(app: AppTest) -> None:
    _go(app, OWN)
    _upload_zip(app, "shapes.zip", good_zip())
    assert app.number_input(key="own.min_steps").value == 100  # the setting is on the page, not hidden
    app.number_input(key="own.epochs").set_value(4).run()
    assert any("4 epochs of 1 step would be only 4 optimiser steps, so the run repeats to 100 epochs" in c.value
               for c in app.caption)
    app.number_input(key="own.min_steps").set_value(0).run()
    assert any("**4 epochs of 1 step each: 4 optimiser steps.**" in c.value for c in app.caption)
    app.button(key="own.start").click().run()
    _finish(app)
    res = app.session_state["own.result"].result
    assert len(res.epochs) == 4 and len(res.steps) == 4  # no hidden minimum raised them
    assert any("Ran 4 epochs (4 optimiser steps)." in c.value for c in app.caption)


def test_a_measurement_waits_for_the_learners_running_job(app: AppTest) -> None:
    import threading

    from tl_core.jobs.manager import get_manager
    from ui.session import _FALLBACK_KEY

    _go(app, OWN)
    _upload_zip(app, "shapes.zip", good_zip())
    gate = threading.Event()
    owner = app.session_state[_FALLBACK_KEY]  # this AppTest session's id: the owner of its jobs
    running = get_manager().submit(lambda ctx: gate.wait(10), owner=owner, label="own: a long run")
    app.button(key="own.measure_similarity").click().run()
    assert app.session_state["own.similarity"][1].startswith("Wait for your run (own: a long run)")
    assert not app.exception
    gate.set()
    assert running.wait(10)


def test_explorer_download_offline_explains_instead_of_crashing(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    _go(app, EXPLORER)
    app.selectbox(key="explorer.arch").set_value("mobilenet_v3_small").run()
    app.button(key="explorer.download").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("offline" in e.value for e in app.error)
    assert any("python -m tl_core.models.fetch_weights mobilenet_v3_small" in m.value for m in app.markdown)


def test_explorer_frames_itself_as_using_a_model_as_is_and_explains_before_the_uploader(app: AppTest) -> None:
    _go(app, EXPLORER)
    assert any("**use it entirely as-is**" in i.value for i in app.info)  # the course's third choice
    app.selectbox(key="explorer.arch").set_value("mobilenet_v3_small").run()

    def in_order(node) -> list:  # noqa: ANN001
        children = getattr(node, "children", None)
        if not isinstance(children, dict):
            return [node]
        return [leaf for key in sorted(children) for leaf in in_order(children[key])]

    leaves = in_order(app.main)
    why = next(i for i, el in enumerate(leaves) if el.type == "warning" and "are not on this machine" in el.value)
    uploader = next(i for i, el in enumerate(leaves) if getattr(el, "key", None) == "explorer.weights")
    assert why < uploader  # first why the weights are needed, then the optional upload of one's own
    app.radio(key="explorer.source").set_value("upload").run()
    app.file_uploader(key="explorer.upload").set_value(("[x](javascript:y).png", picture("red", 1), "image/png"))
    app.run()
    assert not app.exception and not app.get("plotly_chart")  # still no weights: nothing classified ...
    captions = [c for im in app.image for c in im.captions]
    assert md("[x](javascript:y).png") in captions  # ... but the upload is previewed, its name escaped
    assert "[x](javascript:y).png" not in captions


def test_explorer_takeaway_never_calls_a_certain_model_fairly_sure() -> None:
    from ui.charts.own_data import topk_takeaway

    assert topk_takeaway([("cat", 0.9996), ("dog", 0.0003)], "resnet18") == (
        "resnet18 is very sure it is 'cat' (over 99%), far ahead of the runner-up 'dog' (under 1%).")
    assert topk_takeaway([("cat", 0.7), ("dog", 0.2)], "m").startswith("m is fairly sure it is 'cat' (70%)")
    assert "'" + md("a_b") + "'" in topk_takeaway([("a_b", 0.3), ("c", 0.2)], "m")  # names escaped
