"""Tests for tl_core.data.shapes: the procedural shapes world (shapes, determinism, contrast, shift, styles, tasks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tl_core.data import shapes as S

REPO = Path(__file__).resolve().parents[1]
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luminance(images: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) -> (N, H, W)."""
    return np.einsum("nchw,c->nhw", images, LUMA)


def region_contrast(data: S.ShapesData, coverage: np.ndarray) -> np.ndarray:
    """Per image |mean luminance of fully covered shape pixels - mean luminance of pure background pixels|."""
    y = luminance(data.images)
    shape, back = coverage >= 0.999, coverage <= 0.001
    return np.array([abs(y[i][shape[i]].mean() - y[i][back[i]].mean()) for i in range(len(data))])


def background_std(data: S.ShapesData, coverage: np.ndarray) -> float:
    """Mean over images of the per-channel std of pure background pixels."""
    back = coverage <= 0.001
    return float(np.mean([data.images[i][:, back[i]].std(axis=1).mean() for i in range(len(data))]))


# ---- basic facts -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [S.WorldSpec("source"), S.WorldSpec("shapes", 0.5, ("outline",)),
                                  S.WorldSpec("orientation", 1.0, ("inverted",))])
def test_shapes_dtypes_ranges_and_balance(spec: S.WorldSpec) -> None:
    n = 7
    data = S.generate(spec, n, seed=1)
    k = len(spec.classes)
    assert data.images.shape == (k * n, 3, 32, 32)
    assert data.images.dtype == np.float32 and data.labels.dtype == np.int64
    assert data.images.min() >= 0.0 and data.images.max() <= 1.0
    assert len(data) == k * n
    assert data.classes == spec.classes and data.spec == spec
    assert np.bincount(data.labels, minlength=k).tolist() == [n] * k
    assert not np.all(np.diff(data.labels) >= 0)  # shuffled, not sorted by class


def test_class_lists() -> None:
    assert S.WorldSpec().classes == ("circle", "square", "triangle", "star", "cross", "hexagon")
    assert S.WorldSpec("shapes").classes == ("ring", "heart", "arrow", "crescent")
    assert S.WorldSpec("orientation").classes == ("0°", "45°", "90°", "135°")


def test_random_colours_sizes_and_positions() -> None:
    data, cov = S.generate_with_masks(S.WorldSpec("source"), 20, seed=2)
    corner = data.images[:, :, 0, 0]  # (N, 3); shapes rarely reach the corner pixel
    assert corner.std(axis=0).min() > 0.15  # background colours vary in every channel
    area = cov.sum(axis=(1, 2))
    assert area.max() > 2 * area.min()  # sizes vary
    ys, xs = np.indices((32, 32))
    cx = (cov * xs).sum(axis=(1, 2)) / area
    assert cx.std() > 1.5  # positions vary
    assert (area > 40).all()  # no shape is too small to see


def test_same_seed_identical_different_seed_different() -> None:
    spec = S.WorldSpec("shapes", 0.4)
    a, b = S.generate(spec, 5, seed=3), S.generate(spec, 5, seed=3)
    c = S.generate(spec, 5, seed=4)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.allclose(a.images, c.images)


def test_splits_share_no_image() -> None:
    spec = S.WorldSpec("source")
    splits = {s: S.generate(spec, 20, seed=0, split=s).images for s in S.SPLITS}
    rows = {s: {img.tobytes() for img in imgs} for s, imgs in splits.items()}
    assert all(len(r) == 120 for r in rows.values())  # no duplicates inside a split either
    assert not rows["train"] & rows["test"]
    assert not rows["train"] & rows["val"]
    assert not rows["val"] & rows["test"]
    # and not merely different bytes: no test image is a near copy of a train image
    tr, te = splits["train"].reshape(120, -1), splits["test"].reshape(120, -1)
    d2 = (te**2).sum(1)[:, None] + (tr**2).sum(1)[None, :] - 2 * te @ tr.T
    assert d2.min() > 1.0


# ---- contrast and shift ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["source", "shapes"])
def test_contrast_guarantee_without_shift(task: str) -> None:
    data, cov = S.generate_with_masks(S.WorldSpec(task), 25, seed=5)
    contrast = region_contrast(data, cov)
    assert contrast.min() >= S.MIN_CONTRAST
    assert np.median(contrast) > S.MIN_CONTRAST + 0.03  # a spread of contrasts, not all pinned at the minimum


def test_shift_adds_background_variance_and_lowers_contrast_monotonically() -> None:
    stds, medians, contrasts = [], [], []
    for shift in (0.0, 1 / 3, 2 / 3, 1.0):
        data, cov = S.generate_with_masks(S.WorldSpec("shapes", shift), 15, seed=6)
        stds.append(background_std(data, cov))
        contrasts.append(region_contrast(data, cov))
        medians.append(float(np.median(contrasts[-1])))
    assert stds[0] < 1e-4  # shift 0: flat background (float32 rounding only)
    assert all(a + 0.02 < b for a, b in zip(stds, stds[1:])), stds
    assert all(a > b + 0.03 for a, b in zip(medians, medians[1:])), medians
    assert np.mean(contrasts[-1] > 0.06) >= 0.9  # even at shift 1 the shape stays visible


def test_shift_adds_low_frequency_texture_not_just_noise() -> None:
    """Averaging 4x4 blocks shrinks pixel noise 4-fold (to <= MAX_NOISE / 4) but keeps blobs and stripes."""
    data, cov = S.generate_with_masks(S.WorldSpec("shapes", 1.0), 15, seed=6)
    n = len(data)
    blocks = data.images.reshape(n, 3, 8, 4, 8, 4).mean(axis=(3, 5))  # (N, 3, 8, 8)
    back = (cov.reshape(n, 8, 4, 8, 4) <= 0.001).all(axis=(2, 4))  # (N, 8, 8) blocks of pure background
    spread = [blocks[i][:, back[i]].std(axis=1).mean() for i in range(n) if back[i].sum() >= 4]
    assert len(spread) > n // 2
    assert np.mean(spread) > 1.5 * S.MAX_NOISE / 4


def test_shift_keeps_the_draw() -> None:
    """Shift changes the look, not the shapes: same labels and shape coverage at every shift."""
    a, cov_a = S.generate_with_masks(S.WorldSpec("shapes", 0.0), 6, seed=7)
    b, cov_b = S.generate_with_masks(S.WorldSpec("shapes", 0.8), 6, seed=7)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(cov_a, cov_b)
    assert not np.allclose(a.images, b.images)


def test_orientation_shift_keeps_grating_without_texture() -> None:
    """The orientation task gets noise but no extra texture: its noise-free parts stay the grating."""
    clean, cov = S.generate_with_masks(S.WorldSpec("orientation", 0.0), 10, seed=8)
    noisy = S.generate(S.WorldSpec("orientation", 1.0), 10, seed=8)
    back = cov <= 0.001
    residual = (noisy.images - clean.images).transpose(1, 0, 2, 3)[:, back]  # (3, pixels)
    assert abs(residual.mean()) < 0.02  # zero-mean noise, no added texture offset
    assert 0.06 < residual.std() <= S.MAX_NOISE + 0.01


# ---- styles ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task,shift", [("source", 0.0), ("shapes", 0.6), ("orientation", 0.3)])
def test_inverted_is_one_minus_the_same_draw(task: str, shift: float) -> None:
    plain = S.generate(S.WorldSpec(task, shift), 5, seed=9)
    inv = S.generate(S.WorldSpec(task, shift, ("inverted",)), 5, seed=9)
    assert np.array_equal(plain.labels, inv.labels)
    np.testing.assert_allclose(inv.images, 1.0 - plain.images, atol=1e-6)


def test_outline_covers_fewer_pixels_and_leaves_the_middle_empty() -> None:
    filled, cov_f = S.generate_with_masks(S.WorldSpec("source"), 20, seed=10)
    outline, cov_o = S.generate_with_masks(S.WorldSpec("source", 0.0, ("outline",)), 20, seed=10)
    assert np.array_equal(filled.labels, outline.labels)
    area_f, area_o = cov_f.sum(axis=(1, 2)), cov_o.sum(axis=(1, 2))
    assert area_o.sum() < 0.7 * area_f.sum()
    assert np.mean(area_o < area_f) >= 0.9
    # deep inside a filled shape (its 5x5 neighbourhood fully covered) the outline draws nothing
    deep = np.ones_like(cov_f, dtype=bool)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            deep &= np.roll(cov_f, (dy, dx), axis=(1, 2)) >= 0.999
    assert deep.sum() > 1000 and cov_o[deep].max() == 0.0
    # the outline's pixels differ from the background, the middle shows the background colour
    assert not np.allclose(filled.images, outline.images)


def test_styles_combine_and_normalise() -> None:
    spec = S.WorldSpec("shapes", 0.0, ("inverted", "outline", "inverted"))
    assert spec.styles == ("outline", "inverted")
    assert S.WorldSpec("shapes", 0.0, "outline").styles == ("outline",)  # a bare string is one style
    both = S.generate(spec, 3, seed=11)
    outline = S.generate(S.WorldSpec("shapes", 0.0, ("outline",)), 3, seed=11)
    np.testing.assert_allclose(both.images, 1.0 - outline.images, atol=1e-6)


# ---- orientation task ------------------------------------------------------------------------------------------
def grating_angle_deg(image: np.ndarray, background: np.ndarray) -> float:
    """Bar direction (degrees, counter-clockwise from horizontal as displayed) from the structure tensor of the
    luminance gradients on background pixels whose neighbours are background too."""
    y = luminance(image[None])[0]
    gy, gx = np.gradient(y)  # rows grow downwards
    ok = background.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            ok &= np.roll(background, (dy, dx), axis=(0, 1))
    ok[[0, -1], :] = False
    ok[:, [0, -1]] = False
    jxx, jyy, jxy = (gx[ok] ** 2).sum(), (gy[ok] ** 2).sum(), (gx[ok] * gy[ok]).sum()
    gradient_dir = 0.5 * np.degrees(np.arctan2(2 * jxy, jxx - jyy))  # in image (x right, y down) coordinates
    # the gradient (gx, gy) points across the bars; on screen (y up) it is (gx, -gy), and bars are 90° from it
    return float((-gradient_dir + 90.0) % 180.0)


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_orientation_label_matches_grating(shift: float) -> None:
    data, cov = S.generate_with_masks(S.WorldSpec("orientation", shift), 15, seed=12)
    angles = np.array([grating_angle_deg(img, c <= 0.001) for img, c in zip(data.images, cov)])
    centres = np.array(S.ORIENTATION_DEGREES)
    err = np.abs((angles[:, None] - centres[None, :] + 90) % 180 - 90)  # circular distance on [0, 180)
    predicted = err.argmin(axis=1)
    assert np.mean(predicted == data.labels) >= 0.9


def test_orientation_shapes_are_random_distractors() -> None:
    """The shape in front of a grating carries no label: several kinds appear in every class."""
    data, cov = S.generate_with_masks(S.WorldSpec("orientation"), 30, seed=13)
    area = cov.sum(axis=(1, 2))
    for c in range(4):
        a = area[data.labels == c]
        assert a.std() > 10  # different shapes and sizes within one orientation class


# ---- validation ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"task": "dogs"}, "Unknown task"),
    ({"styles": ("sketch",)}, "Unknown style"),
    ({"shift": 2.0}, "shift"),
    ({"shift": -0.1}, "shift"),
    ({"shift": float("nan")}, "shift"),
    ({"shift": "0.5"}, "shift"),
])
def test_bad_spec_raises(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        S.WorldSpec(**kwargs)


@pytest.mark.parametrize("n,split,seed,match", [
    (0, "train", 0, "n_per_class"),
    (5000, "train", 0, "n_per_class"),
    (2.5, "train", 0, "n_per_class"),
    (5, "holdout", 0, "split"),
    (5, "train", -1, "seed"),
])
def test_bad_generate_arguments_raise(n: object, split: str, seed: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        S.generate(S.WorldSpec(), n, seed=seed, split=split)  # type: ignore[arg-type]


def test_bad_target_arguments_raise() -> None:
    with pytest.raises(ValueError, match="Similarity"):
        S.target_spec(1.5)
    with pytest.raises(ValueError, match="Unknown task"):
        S.target_spec(0.5, task="colours")
    with pytest.raises(ValueError, match="Unknown style"):
        S.make_target(0.5, 5, styles=("blurry",))


# ---- target spec, helpers --------------------------------------------------------------------------------------
def test_target_spec_maps_similarity() -> None:
    near = S.target_spec(0.75)
    assert (near.task, near.shift) == ("shapes", 0.25)
    assert S.target_spec(0.5).task == "shapes"
    far = S.target_spec(0.3, styles=("outline",))
    assert (far.task, far.shift, far.styles) == ("orientation", 0.7, ("outline",))
    assert S.target_spec(1.0) == S.WorldSpec("shapes", 0.0)
    assert S.target_spec(0.0, task="shapes") == S.WorldSpec("shapes", 1.0)
    assert S.target_spec(0.25).describe() == "grating orientation, shift 0.75"
    assert S.WorldSpec("shapes", 0.75, ("outline",)).describe() == "target shapes, shift 0.75, outline"
    assert S.make_source(2).spec == S.WorldSpec("source")
    t = S.make_target(0.2, 2, seed=1, split="val")
    assert t.classes == S.ORIENTATION_CLASSES and len(t) == 8


def test_subset() -> None:
    data = S.generate(S.WorldSpec("shapes"), 3, seed=14)
    sub = data.subset([4, 0])
    assert len(sub) == 2 and np.array_equal(sub.images[1], data.images[0]) and sub.labels[0] == data.labels[4]
    mask = data.labels == 2
    assert np.all(data.subset(mask).labels == 2) and len(data.subset(mask)) == 3
    assert len(data.subset(3)) == 1
    with pytest.raises(ValueError, match="length"):
        data.subset(np.ones(5, dtype=bool))


def test_to_torch_is_zero_copy() -> None:
    torch = pytest.importorskip("torch")
    data = S.generate(S.WorldSpec(), 2, seed=15)
    x, y = data.to_torch()
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and tuple(x.shape) == (12, 3, 32, 32)
    x[0, 0, 0, 0] = 0.123
    assert data.images[0, 0, 0, 0] == pytest.approx(0.123)


def test_module_does_not_import_torch() -> None:
    code = "import sys, tl_core.data.shapes as s; s.generate(s.WorldSpec(), 1); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_preview_grid() -> None:
    data = S.generate(S.WorldSpec("shapes"), 3, seed=16)
    grid = S.preview_grid(data, n_per_class=5, scale=2)
    tile, gap = 64, 2
    assert grid.dtype == np.uint8 and grid.shape == (4 * tile + 3 * gap, 5 * tile + 4 * gap, 3)
    first = data.images[np.flatnonzero(data.labels == 1)[0]].transpose(1, 2, 0)  # row 1, column 0
    expected = np.kron(np.round(first * 255), np.ones((2, 2, 1))).astype(np.uint8)
    assert np.array_equal(grid[tile + gap: 2 * tile + gap, :tile], expected)
    assert np.all(grid[tile: tile + gap] == 255)  # the gap between rows
    assert np.all(grid[:, -tile:] == 255)  # only 3 images per class: the fifth column stays blank
    with pytest.raises(ValueError, match="scale"):
        S.preview_grid(data, scale=0)
