"""Tests for tl_core.models.inference: the shapes model's top-k on drawn shapes, ImageNet top-k from a cached (random) file,
uploaded state dicts, what the model sees, and the top-k chart. Nothing here touches the network."""

from __future__ import annotations

import io
import os
import urllib.request
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image

from ui.charts.own_data import topk_chart, topk_takeaway
from tl_core.models import inference as predict

from tl_core.data import shapes
from tl_core.models.weights import imagenet_weights, load_imagenet_model, weights_status


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty TORCH_HOME of our own; opening any URL fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(url, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise AssertionError(f"network access attempted: {url}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def random_state(arch: str, num_classes: int = 1000) -> dict[str, torch.Tensor]:
    """A state dict with the architecture's real shapes and seeded random values (fast: built on the meta device)."""
    with torch.device("meta"):
        model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    g = torch.Generator().manual_seed(0)
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        elif v.is_floating_point():
            out[k] = torch.randn(v.shape, generator=g) * 0.05
        else:
            out[k] = torch.zeros(v.shape, dtype=v.dtype)
    return out


def saved(state: dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


# ---- the shapes model ------------------------------------------------------------------------------------------
def test_shapes_model_names_most_drawn_source_shapes_correctly() -> None:
    right, total = 0, 0
    for shape in shapes.SOURCE_CLASSES:
        for seed in range(4):
            preds = predict.shapes_topk(predict.sample_image(shape, seed), k=6)
            assert [c for c, _ in preds] and len(preds) == 6
            assert sorted({c for c, _ in preds}) == sorted(shapes.SOURCE_CLASSES)
            assert sum(p for _, p in preds) == pytest.approx(1.0, abs=1e-5)
            assert all(a[1] >= b[1] for a, b in zip(preds, preds[1:]))  # most likely first
            right += preds[0][0] == shape
            total += 1
    assert right / total >= 0.8, f"only {right} of {total} drawn shapes were recognised"


def test_shapes_topk_takes_any_image_and_k() -> None:
    photo = Image.new("RGBA", (300, 120), (200, 30, 30, 128))  # not square, not RGB, not 32 px
    preds = predict.shapes_topk(photo, k=3)
    assert len(preds) == 3 and all(0.0 <= p <= 1.0 for _, p in preds)
    assert predict.shapes_input(photo).shape == (1, 3, 32, 32)


def test_sample_image_draws_every_shape_deterministically() -> None:
    for shape in shapes.ALL_SHAPES:
        img = predict.sample_image(shape, 3)
        assert img.size == (32, 32) and img.mode == "RGB"
    a, b = predict.sample_image("heart", 5), predict.sample_image("heart", 5)
    assert a.tobytes() == b.tobytes()
    assert predict.sample_image("heart", 6).tobytes() != a.tobytes()
    assert predict.sample_image("star", 1, ("inverted",)).tobytes() != predict.sample_image("star", 1).tobytes()
    with pytest.raises(ValueError, match="Unknown shape 'blob'"):
        predict.sample_image("blob")


def test_topk_from_logits_checks_the_class_count() -> None:
    preds = predict.topk_from_logits(torch.tensor([[0.0, 2.0, 1.0]]), ("a", "b", "c"), k=10)
    assert [c for c, _ in preds] == ["b", "c", "a"]
    assert sum(p for _, p in preds) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="3 outputs but 2 class names"):
        predict.topk_from_logits(torch.zeros(3), ("a", "b"), k=1)


# ---- ImageNet models ----------------------------------------------------------------------------------------
def test_imagenet_topk_from_a_cached_random_file_returns_five_real_categories(tmp_path: Path) -> None:
    arch = "mobilenet_v3_small"
    status = weights_status(arch)
    assert not status.available
    status.path.parent.mkdir(parents=True)
    torch.save(random_state(arch), status.path)  # the file name torchvision expects, in our TORCH_HOME
    assert weights_status(arch).available and status.path.is_relative_to(tmp_path)
    model = load_imagenet_model(arch)
    preds = predict.imagenet_topk(model, arch, Image.new("RGB", (400, 300), (10, 120, 200)), k=5)
    categories = imagenet_weights(arch).meta["categories"]
    assert len(preds) == 5 and len({c for c, _ in preds}) == 5
    assert all(c in categories for c, _ in preds)
    assert all(a[1] >= b[1] for a, b in zip(preds, preds[1:]))
    assert 0.0 < sum(p for _, p in preds) <= 1.0 + 1e-6


def test_uploaded_state_dict_with_imagenet_head_or_own_head() -> None:
    arch = "mobilenet_v3_small"
    state, cats = predict.load_custom_weights(saved(random_state(arch)), arch)
    assert cats == list(imagenet_weights(arch).meta["categories"])
    state3, cats3 = predict.load_custom_weights(saved(random_state(arch, 3)), arch)
    assert cats3 == ["class 0", "class 1", "class 2"] and predict.head_size(state3) == 3
    model = predict.model_from_state_dict(arch, state3)
    assert not model.training and all(not p.is_meta for p in model.parameters())
    preds = predict.imagenet_topk(model, arch, Image.new("RGB", (64, 64)), k=5, categories=cats3)
    assert len(preds) == 3 and sum(p for _, p in preds) == pytest.approx(1.0, abs=1e-5)


def test_uploaded_state_dict_of_another_architecture_names_the_first_bad_key() -> None:
    with pytest.raises(ValueError, match=r"do not fit mobilenet_v3_small: key '[\w.]+' is missing|"
                                         r"do not fit mobilenet_v3_small: '[\w.]+' has shape"):
        predict.load_custom_weights(saved(random_state("resnet18")), "mobilenet_v3_small")


def test_model_view_is_what_each_model_gets() -> None:
    photo = Image.new("RGB", (640, 480), (250, 200, 10))
    assert predict.model_view(photo, "shapesnet").size == (32 * predict.SAMPLE_SCALE,) * 2
    view = predict.model_view(photo, "resnet18")  # ImageNet weights' own resize + centre crop; no weights needed
    assert view.size == (224, 224)
    r, g, b = view.getpixel((112, 112))
    assert abs(r - 250) <= 2 and abs(g - 200) <= 2 and abs(b - 10) <= 2  # normalisation undone


# ---- the chart --------------------------------------------------------------------------------------------------
def test_topk_chart_has_a_title_and_a_takeaway_computed_from_the_numbers() -> None:
    c = topk_chart([("cat", 0.8), ("dog", 0.1), ("fox", 0.05)], "resnet18")
    assert "resnet18" in c.fig.layout.title.text and "top 3" in c.fig.layout.title.text
    assert list(c.fig.data[0].y) == ["fox", "dog", "cat"]  # the most likely bar on top
    assert "fairly sure it is 'cat' (80%), 8x the runner-up 'dog' (10%)" in c.takeaway
    lone = topk_takeaway([("cat", 0.995), ("dog", 0.004)], "resnet18")
    # A near-certain model is "very sure (over 99%)", never "fairly sure (100%)" (issue 16, item 16).
    assert lone == "resnet18 is very sure it is 'cat' (over 99%), far ahead of the runner-up 'dog' (under 1%)."
    unsure = topk_chart([("cat", 0.3), ("dog", 0.2)], "resnet18").takeaway
    assert "unsure" in unsure and "30%" in unsure and "50%" in unsure
    known = tuple(shapes.SOURCE_CLASSES)
    new = topk_chart([("star", 0.6), ("cross", 0.3)], "the shapes model", "heart", known).takeaway
    assert "'heart' is not one of them" in new and "6 classes" in new
    assert topk_takeaway([("star", 0.6), ("cross", 0.3)], "m", "star", known).endswith(": right.")
    assert "wrong (it is a 'cross')" in topk_takeaway([("star", 0.6), ("cross", 0.3)], "m", "cross", known)
    with pytest.raises(ValueError):
        topk_chart([], "m")


def test_weights_table_lists_every_torchvision_arch_offline() -> None:
    rows = predict.weights_table()
    assert [r["Architecture"] for r in rows][:2] == ["alexnet", "vgg11"] and len(rows) == 8
    assert all(r["On this server"] == "no" for r in rows)  # our empty TORCH_HOME
    r18 = next(r for r in rows if r["Architecture"] == "resnet18")
    assert r18["File name"] == os.path.basename(imagenet_weights("resnet18").url)
    assert 40 < r18["File (MB)"] < 50 and 60 < r18["ImageNet top-1 %"] < 80


def test_uploaded_weights_with_nan_are_refused_with_a_message_that_says_so() -> None:
    state = random_state("mobilenet_v3_small", 3)
    state["classifier.3.weight"][0, 0] = float("nan")  # e.g. saved from a run that diverged
    with pytest.raises(ValueError, match="NaN or infinite values"):
        predict.load_custom_weights(saved(state), "mobilenet_v3_small")
