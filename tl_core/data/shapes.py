"""The built-in "shapes world": procedural 32x32 RGB images for the source and target tasks (numpy only).

Three label sets share one renderer:

* "source": six shapes (circle, square, triangle, star, cross, hexagon), the task the source model learns;
* "shapes": four new shapes (ring, heart, arrow, crescent), a target task close to the source;
* "orientation": the orientation of a sinusoidal background grating, with a random shape in front of it as a
  distractor; a target task that depends on low-level cues (early conv layers) rather than shape identity.

Every image has a random colour, size, position and rotation, anti-aliased edges and a guaranteed luminance gap
of MIN_CONTRAST between shape and background. A domain shift in [0, 1] adds a textured background, lowers the
contrast and adds pixel noise; named styles draw only the outline or invert all colours. Generation is
deterministic by (spec, n_per_class, seed, split), the three splits use disjoint random streams, and the whole
batch is rendered with vectorised numpy (no torch at module level; `ShapesData.to_torch` imports it lazily).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

IMAGE_SIZE = 32  # side of every image in pixels
SOURCE_CLASSES = ("circle", "square", "triangle", "star", "cross", "hexagon")
TARGET_CLASSES = ("ring", "heart", "arrow", "crescent")
ALL_SHAPES = SOURCE_CLASSES + TARGET_CLASSES  # every shape the renderer can draw
ORIENTATION_CLASSES = ("0°", "45°", "90°", "135°")
ORIENTATION_DEGREES = (0.0, 45.0, 90.0, 135.0)  # bar direction, counter-clockwise from horizontal as displayed
TASKS = ("source", "shapes", "orientation")
STYLES = ("outline", "inverted")
SPLITS = ("train", "val", "test")
SPLIT_INDEX = {name: i for i, name in enumerate(SPLITS)}
MAX_PER_CLASS = 1000  # upper bound on n_per_class
_TASK_CODE = {"source": 101, "shapes": 102, "orientation": 103}  # stable stream codes (never hash(): it is salted)
_TASK_LABEL = {"source": "source shapes", "shapes": "target shapes", "orientation": "grating orientation"}

# ---- the look of the world (calibration knobs) ------------------------------------------------------------
RADIUS_PX = (7.5, 13.0)  # shape radius range in pixels (the shape's unit frame is scaled by this)
MIN_CONTRAST = 0.3  # guaranteed |luminance(shape) - luminance(background)| before any shift
CONTRAST_SPREAD = 0.2  # colours too close get pushed to a gap of MIN_CONTRAST plus up to this much
MIN_VISIBLE_CONTRAST = 0.12  # the shift never lowers the luminance gap below this
MAX_CONTRAST_LOSS = 0.6  # at shift 1 the shape colour moves this far towards the background colour
MAX_NOISE = 0.12  # Gaussian pixel-noise sigma at shift 1
BLOB_AMPLITUDE = 0.12  # scale of the random low-frequency colour blobs at shift 1 (per-channel std ~0.7x this)
PATTERN_AMPLITUDE = 0.1  # peak amplitude of the stripes / checker pattern at shift 1
PATTERN_FREQ = (0.1, 0.3)  # cycles per pixel of the background stripes / checker
# The orientation task's grating is fine (periods 3 to 4 px) and faint: early, full-resolution filters see it,
# while the pooled, rotation-invariant late features of the source model mostly do not (calibrated with
# the quadrant tests: early-layer classifiers beat the final frozen features at 20 images per class).
GRATING_FREQ = (0.25, 0.33)  # cycles per pixel of the orientation task's grating
GRATING_GAP = (0.1, 0.15)  # luminance gap between the grating's two colours
GRATING_JITTER_DEG = 5.0  # the grating's orientation varies by up to this around its class angle
OUTLINE_PX = 1.5  # line width of the "outline" style
_BLOB_GRID = 4  # the blobs are a 4x4 grid of random colours, bilinearly upsampled
_CHUNK = 1024  # images rendered at once (bounds the temporary memory to a few tens of MB)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # Rec. 601 luminance weights (sum to 1)


# ---- spec ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorldSpec:
    """Which task to draw and how far its look is shifted from the source data."""

    task: str = "source"  # "source" | "shapes" (the new target shapes) | "orientation" (grating angle)
    shift: float = 0.0  # domain-shift strength: 0 looks exactly like the source data, 1 is the strongest shift
    styles: tuple[str, ...] = ()  # named styles from STYLES, combinable: "outline", "inverted"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"Unknown task {self.task!r}. Choose one of: {', '.join(TASKS)}.")
        shift = self.shift
        if isinstance(shift, bool) or not isinstance(shift, (int, float, np.integer, np.floating)):
            raise ValueError(f"The shift must be a number from 0 to 1; got {shift!r}.")
        if not (math.isfinite(shift) and 0.0 <= shift <= 1.0):
            raise ValueError(f"The shift must be from 0 (looks like the source) to 1 (strongest shift); got {shift!r}.")
        styles = (self.styles,) if isinstance(self.styles, str) else tuple(self.styles)
        unknown = [s for s in styles if s not in STYLES]
        if unknown:
            raise ValueError(f"Unknown style {unknown[0]!r}. Choose any of: {', '.join(STYLES)} (or none).")
        object.__setattr__(self, "shift", float(shift))
        object.__setattr__(self, "styles", tuple(s for s in STYLES if s in styles))  # canonical order, no repeats

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names of this task, in label order."""
        return {"source": SOURCE_CLASSES, "shapes": TARGET_CLASSES, "orientation": ORIENTATION_CLASSES}[self.task]

    def describe(self) -> str:
        """A short human description, for example "target shapes, shift 0.75, outline"."""
        parts = [_TASK_LABEL[self.task], f"shift {self.shift:g}" if self.shift > 0 else "no shift", *self.styles]
        return ", ".join(parts)


def target_spec(similarity: float, task: str = "auto", styles: tuple[str, ...] = ()) -> WorldSpec:
    """The target world for a similarity to the source data.

    Args:
        similarity: 1 looks exactly like the source data, 0 is the most different; the shift is 1 - similarity.
        task: One of TASKS, or "auto": the new target shapes when similarity >= 0.5, otherwise the grating
            orientation task (at low similarity the task itself changes to a low-level cue).
        styles: Named styles from STYLES.

    Returns:
        A validated WorldSpec.

    Raises:
        ValueError: If similarity is outside [0, 1] or the task or a style is unknown.
    """
    if isinstance(similarity, bool) or not isinstance(similarity, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(similarity) and 0.0 <= similarity <= 1.0):
        raise ValueError(f"Similarity must be a number from 0 (most different) to 1 (same look); got {similarity!r}.")
    if task == "auto":
        task = "shapes" if similarity >= 0.5 else "orientation"
    elif task not in TASKS:
        raise ValueError(f"Unknown task {task!r}. Choose 'auto' or one of: {', '.join(TASKS)}.")
    shift = min(max(round(1.0 - float(similarity), 9), 0.0), 1.0)  # rounding keeps 1 - 0.3 from being 0.7000000001
    return WorldSpec(task=task, shift=shift, styles=styles)


# ---- data ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShapesData:
    """A labelled batch of shapes-world images."""

    images: np.ndarray  # (N, 3, 32, 32) float32 in [0, 1]
    labels: np.ndarray  # (N,) int64, indices into classes
    classes: tuple[str, ...]  # class names in label order
    spec: WorldSpec  # the world the images were drawn from

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1:] != (3, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"images must have shape (N, 3, {IMAGE_SIZE}, {IMAGE_SIZE}); got {self.images.shape}.")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must have shape ({self.images.shape[0]},); got {self.labels.shape}.")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to_torch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and labels as torch tensors, sharing memory with the numpy arrays (zero copy).

        Returns:
            (images (N, 3, 32, 32) float32, labels (N,) int64). Writing to them writes to this ShapesData.
        """
        import torch  # lazy: the welcome page uses this module without torch

        return torch.from_numpy(self.images), torch.from_numpy(self.labels)

    def subset(self, idx: np.ndarray | list[int] | slice) -> ShapesData:
        """The images at the given positions.

        Args:
            idx: Integer positions, a boolean mask of length len(self), or a slice.

        Returns:
            A new ShapesData (copies for index arrays, views for slices).

        Raises:
            ValueError: If a boolean mask has the wrong length.
        """
        if not isinstance(idx, slice):
            idx = np.asarray(idx)
            if idx.dtype == bool and idx.shape != (len(self),):
                raise ValueError(f"A boolean mask must have length {len(self)}; got shape {idx.shape}.")
            if idx.ndim == 0:
                idx = idx.reshape(1)
        return ShapesData(self.images[idx], self.labels[idx], self.classes, self.spec)


# ---- signed-distance functions in a shape's unit frame ---------------------------------------------------------
# Each takes local coordinates u, v (n, H, W) where the shape fits roughly in the unit disc, and returns the signed
# distance in the same units (negative inside). Multiplying by the radius in pixels gives pixel distances.
Sdf = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _box(u: np.ndarray, v: np.ndarray, bx: float, by: float) -> np.ndarray:
    """Exact signed distance to an axis-aligned box with half-sides bx, by."""
    qx = np.abs(u) - np.float32(bx)
    qy = np.abs(v) - np.float32(by)
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0)


def _regular_polygon(sides: int, circumradius: float) -> Sdf:
    """A regular polygon with a vertex on the +u axis, as the maximum over its edges' half-planes."""
    normals = [(np.float32(math.cos((k + 0.5) * 2 * math.pi / sides)),
                np.float32(math.sin((k + 0.5) * 2 * math.pi / sides))) for k in range(sides)]
    apothem = np.float32(circumradius * math.cos(math.pi / sides))

    def sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        c, s = normals[0]
        d = u * c + v * s
        for c, s in normals[1:]:
            np.maximum(d, u * c + v * s, out=d)
        return d - apothem

    return sdf


def _star(points: int, inner: float) -> Sdf:
    """A star with tips at radius 1 and inner corners at radius `inner`: fold into one half-sector, then take the
    signed distance to the single edge from the tip A to the inner corner B."""
    half = math.pi / points
    ax, ay = 1.0, 0.0
    bx, by = inner * math.cos(half), inner * math.sin(half)
    ex, ey = bx - ax, by - ay
    inv_len2 = 1.0 / (ex * ex + ey * ey)
    sector = np.float32(2 * half)

    def sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        rho = np.hypot(u, v)
        phi = np.arctan2(v, u)
        a = np.abs(np.mod(phi + np.float32(half), sector) - np.float32(half))  # folded angle in [0, pi/points]
        qx = rho * np.cos(a) - np.float32(ax)
        qy = rho * np.sin(a) - np.float32(ay)
        h = np.clip((qx * np.float32(ex) + qy * np.float32(ey)) * np.float32(inv_len2), 0, 1)
        dist = np.hypot(qx - h * np.float32(ex), qy - h * np.float32(ey))
        inside = (np.float32(ex) * qy - np.float32(ey) * qx) > 0  # the origin's side of the edge line
        return np.where(inside, -dist, dist)

    return sdf


def _radial_table(vertices: np.ndarray, bins: int = 720) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast a closed polygon from the origin: the boundary radius R(phi) per angle bin, and the factor
    sqrt(1 + (R'/R)^2) that turns rho - R(phi) into a first-order distance estimate.

    Bin k covers phi in [-pi + k * 2pi/bins, -pi + (k + 1) * 2pi/bins); the ray is cast through its centre. Where a
    ray crosses the boundary more than once the outermost crossing wins.
    """
    phi = -np.pi + (np.arange(bins) + 0.5) * (2 * np.pi / bins)
    dx, dy = np.cos(phi)[:, None], np.sin(phi)[:, None]  # (bins, 1)
    p = vertices
    e = np.roll(vertices, -1, axis=0) - vertices  # (M, 2) edge vectors
    denom = dx * e[:, 1] - dy * e[:, 0]  # cross(d, e), (bins, M)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (p[:, 0] * e[:, 1] - p[:, 1] * e[:, 0]) / denom  # distance along the ray
        s = (p[:, 0] * dy - p[:, 1] * dx) / denom  # position along the edge
    hit = (np.abs(denom) > 1e-12) & (s >= 0) & (s < 1) & (t > 0)
    radius = np.where(hit, t, 0.0).max(axis=1)
    if np.any(radius <= 0):
        raise ValueError("The polygon does not surround the origin.")  # a bug in a shape table, not user input
    d_radius = (np.roll(radius, -1) - np.roll(radius, 1)) / (2 * (2 * np.pi / bins))
    return radius.astype(np.float32), np.sqrt(1 + (d_radius / radius) ** 2).astype(np.float32)


def _heart_outline(samples: int = 720) -> np.ndarray:
    """The classic parametric heart, centred on its bounding box and scaled so its farthest point is at 1."""
    t = np.linspace(0, 2 * np.pi, samples, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    y = y - (y.max() + y.min()) / 2
    pts = np.stack([x, y], axis=1)
    return pts / np.hypot(pts[:, 0], pts[:, 1]).max()


_HEART_R, _HEART_NORM = _radial_table(_heart_outline())


def _lookup_shape(radius: np.ndarray, norm: np.ndarray) -> Sdf:
    bins = radius.shape[0]
    scale = np.float32(bins / (2 * np.pi))

    def sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        rho = np.hypot(u, v)
        k = ((np.arctan2(v, u) + np.float32(np.pi)) * scale).astype(np.intp)
        np.clip(k, 0, bins - 1, out=k)
        return (rho - radius[k]) / norm[k]

    return sdf


def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.hypot(u, v) - np.float32(0.85)


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _box(u, v, 0.72, 0.72)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.minimum(_box(u, v, 0.95, 0.3), _box(u, v, 0.3, 0.95))


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(np.hypot(u, v) - np.float32(0.68)) - np.float32(0.27)  # outer radius 0.95, hole radius 0.41


def _crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    outer = np.hypot(u, v) - np.float32(1.0)
    bite = np.float32(0.8) - np.hypot(u - np.float32(0.5), v)  # minus a disc of radius 0.8 shifted by 0.5
    return np.maximum(outer, bite)


_ARROW_SLANT = np.float32(1 / math.hypot(0.62, 0.95))


def _arrow(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    shaft = _box(u + np.float32(0.35), v, 0.55, 0.2)  # from u = -0.9 to 0.2, 0.4 thick
    slant = (np.float32(0.62) * u + np.float32(0.95) * np.abs(v) - np.float32(0.62 * 0.95)) * _ARROW_SLANT
    head = np.maximum(-u, slant)  # triangle: base on u = 0 from v = -0.62 to 0.62, tip at u = 0.95
    return np.minimum(shaft, head)


SDFS: dict[str, Sdf] = {
    "circle": _circle,
    "square": _square,
    "triangle": _regular_polygon(3, 1.1),
    "star": _star(5, 0.45),
    "cross": _cross,
    "hexagon": _regular_polygon(6, 0.98),
    "ring": _ring,
    "heart": _lookup_shape(_HEART_R, _HEART_NORM),
    "arrow": _arrow,
    "crescent": _crescent,
}


# ---- rendering -----------------------------------------------------------------------------------------------
def _luma(rgb: np.ndarray) -> np.ndarray:
    """Luminance of (..., 3) colours."""
    return rgb @ _LUMA


def _separate(ref: np.ndarray, colour: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Lighten or darken colours (N, 3) just enough that their luminance differs from ref (N, 3) by >= gap (N,).

    Colours already far enough apart are kept. Otherwise the colour moves towards white (c + t (1 - c)) or black
    (c (1 - t)), which changes its luminance linearly in t. It keeps its current side of ref when that side has
    room for the gap, else it moves to the other side; a gap larger than the roomier side's room (possible only
    above 0.5) shrinks to that room.
    """
    y_ref, y = _luma(ref), _luma(colour)
    gap = np.minimum(gap, np.maximum(y_ref, 1 - y_ref))
    close = np.abs(y - y_ref) < gap
    can_up, can_down = y_ref + gap <= 1, y_ref - gap >= 0
    up = np.where(y >= y_ref, can_up, ~can_down)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_up = np.clip((y_ref + gap - y) / (1 - y), 0, 1)
        t_down = np.clip(1 - (y_ref - gap) / y, 0, 1)
    lighter = colour + t_up[:, None] * (1 - colour)
    darker = colour * (1 - t_down[:, None])
    moved = np.where(up[:, None], lighter, darker)
    return np.where(close[:, None], moved, colour).astype(np.float32)


def _upsample_matrix(cells: int, size: int) -> np.ndarray:
    """(size, cells) bilinear interpolation weights from a cells-point grid spanning the image to size pixels."""
    pos = (np.arange(size) + 0.5) / size * (cells - 1)
    return np.maximum(0, 1 - np.abs(pos[:, None] - np.arange(cells)[None, :])).astype(np.float32)


_COORD = np.arange(IMAGE_SIZE, dtype=np.float32) + np.float32(0.5)  # pixel centres
_UPSAMPLE = _upsample_matrix(_BLOB_GRID, IMAGE_SIZE)


@dataclass(frozen=True)
class _Draws:
    """Every random number one batch needs, drawn up front so that shift and styles never change the stream."""

    labels: np.ndarray  # (N,) int64
    kinds: np.ndarray  # (N,) index into ALL_SHAPES
    centre: np.ndarray  # (N, 2) x, y in pixels
    radius: np.ndarray  # (N,) pixels
    angle: np.ndarray  # (N,) shape rotation in radians
    background: np.ndarray  # (N, 3) background colour (the grating's mean for the orientation task)
    shape_colour: np.ndarray  # (N, 3) shape colour before the shift's contrast loss
    grating_a: np.ndarray  # (N, 3) orientation task: the grating's two colours
    grating_b: np.ndarray  # (N, 3)
    grating_angle: np.ndarray  # (N,) radians, bar direction
    grating_freq: np.ndarray  # (N,) cycles per pixel
    grating_phase: np.ndarray  # (N,)
    blobs: np.ndarray  # (N, 3, G, G) coarse colour noise
    pattern_freq: np.ndarray  # (N,)
    pattern_angle: np.ndarray  # (N,)
    pattern_phase: np.ndarray  # (N, 2)
    pattern_checker: np.ndarray  # (N,) bool: checker instead of stripes
    pattern_colour: np.ndarray  # (N, 3) in [-1, 1]


def _draw(task: str, n_classes: int, n_per_class: int, rng: np.random.Generator) -> _Draws:
    n = n_classes * n_per_class
    f32 = np.float32
    labels = rng.permutation(np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class))
    if task == "orientation":
        kinds = rng.integers(0, len(ALL_SHAPES), n)
    else:
        offset = 0 if task == "source" else len(SOURCE_CLASSES)
        kinds = labels + offset
    radius = rng.uniform(*RADIUS_PX, n).astype(f32)
    reach = np.maximum(IMAGE_SIZE / 2 - 0.9 * radius, 0)  # the shape may poke out by ~10% of its radius
    centre = (IMAGE_SIZE / 2 + rng.uniform(-1, 1, (n, 2)) * reach[:, None]).astype(f32)
    angle = rng.uniform(0, 2 * np.pi, n).astype(f32)
    colours = rng.uniform(0, 1, (4, n, 3)).astype(f32)
    extra = rng.uniform(0, CONTRAST_SPREAD, (2, n)).astype(f32)  # pushed colours land at varied gaps
    g_angle = np.deg2rad(np.asarray(ORIENTATION_DEGREES)[labels % len(ORIENTATION_DEGREES)]
                         + rng.uniform(-GRATING_JITTER_DEG, GRATING_JITTER_DEG, n)).astype(f32)
    g_freq = rng.uniform(*GRATING_FREQ, n).astype(f32)
    g_phase = rng.uniform(0, 2 * np.pi, n).astype(f32)
    blobs = rng.standard_normal((n, 3, _BLOB_GRID, _BLOB_GRID), dtype=f32)
    p_freq = rng.uniform(*PATTERN_FREQ, n).astype(f32)
    p_angle = rng.uniform(0, np.pi, n).astype(f32)
    p_phase = rng.uniform(0, 2 * np.pi, (n, 2)).astype(f32)
    p_checker = rng.random(n) < 0.5
    p_colour = rng.uniform(-1, 1, (n, 3)).astype(f32)

    gap = MIN_CONTRAST + 0.005 + extra  # (2, N); the 0.005 is margin over the guarantee for float rounding
    if task == "orientation":
        g_a = colours[2]
        g_gap = (GRATING_GAP[0] + extra[1] / CONTRAST_SPREAD * (GRATING_GAP[1] - GRATING_GAP[0])).astype(f32)
        g_b = _separate(g_a, colours[3], np.full(n, 0.5, f32))  # a colour at least 0.5 away in luminance...
        scale = g_gap / np.maximum(np.abs(_luma(g_b) - _luma(g_a)), 1e-6)  # ...pulled back to the drawn gap
        g_b = (g_a + scale[:, None] * (g_b - g_a)).astype(f32)
        background = (g_a + g_b) / 2
    else:
        g_a, g_b, background = colours[2], colours[3], colours[0]
    shape_colour = _separate(background, colours[1], gap[0])
    return _Draws(labels, kinds, centre, radius, angle, background, shape_colour, g_a, g_b, g_angle, g_freq,
                  g_phase, blobs, p_freq, p_angle, p_phase, p_checker, p_colour)


def _alpha(d: _Draws, sl: slice, outline: bool) -> np.ndarray:
    """Anti-aliased coverage (n, H, W) of each image's shape: clip(0.5 - signed distance in pixels, 0, 1)."""
    kinds = d.kinds[sl]
    out = np.empty((kinds.shape[0], IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for k in np.unique(kinds):
        idx = np.flatnonzero(kinds == k)
        j = idx + sl.start
        cos, sin = np.cos(d.angle[j])[:, None, None], np.sin(d.angle[j])[:, None, None]
        inv_r = (1 / d.radius[j])[:, None, None]
        dx = (_COORD[None, :] - d.centre[j, 0:1])[:, None, :]  # (n, 1, W)
        dy = (_COORD[None, :] - d.centre[j, 1:2])[:, :, None]  # (n, H, 1)
        u = (dx * cos + dy * sin) * inv_r  # (n, H, W) rotate the grid into the shape's unit frame
        v = (dy * cos - dx * sin) * inv_r
        dist = SDFS[ALL_SHAPES[k]](u, v) * d.radius[j][:, None, None]  # (n, H, W) pixels
        if outline:
            dist = np.abs(dist) - np.float32(OUTLINE_PX / 2)
        out[idx] = np.clip(np.float32(0.5) - dist, 0, 1)
    return out


def _grating(d: _Draws, sl: slice) -> np.ndarray:
    """(n, H, W) in [0, 1]: 0.5 + 0.5 sin of a plane wave whose bars run at the grating angle as displayed.

    Image rows grow downwards, so bars at angle theta (counter-clockwise on screen) have the wave vector
    (sin theta, cos theta) in (x, y) pixel coordinates.
    """
    th, f, ph = d.grating_angle[sl], d.grating_freq[sl], d.grating_phase[sl]
    kx = (2 * np.pi * f * np.sin(th)).astype(np.float32)[:, None, None]
    ky = (2 * np.pi * f * np.cos(th)).astype(np.float32)[:, None, None]
    wave = _COORD[None, None, :] * kx + _COORD[None, :, None] * ky + ph[:, None, None]
    return np.float32(0.5) + np.float32(0.5) * np.sin(wave)


def _texture(d: _Draws, sl: slice) -> np.ndarray:
    """(n, 3, H, W) zero-mean background texture at full strength: colour blobs plus stripes or a checker."""
    blobs = _UPSAMPLE @ d.blobs[sl] @ _UPSAMPLE.T  # (n, 3, H, W)
    a, f = d.pattern_angle[sl], d.pattern_freq[sl]
    k = (2 * np.pi * f).astype(np.float32)
    ca, sa = (np.cos(a) * k)[:, None, None], (np.sin(a) * k)[:, None, None]
    x, y = _COORD[None, None, :], _COORD[None, :, None]
    s = np.sin(x * ca + y * sa + d.pattern_phase[sl, 0, None, None])  # (n, H, W) stripes
    t = np.sin(y * ca - x * sa + d.pattern_phase[sl, 1, None, None])
    checker = np.clip(3 * s * t, -1, 1)  # a soft-edged checkerboard
    pattern = np.where(d.pattern_checker[sl, None, None], checker, s)
    return (np.float32(BLOB_AMPLITUDE) * blobs
            + np.float32(PATTERN_AMPLITUDE) * pattern[:, None] * d.pattern_colour[sl, :, None, None])


def _render(spec: WorldSpec, n_per_class: int, seed: int, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the request, then draw and render it. Returns (images, labels, shape coverage (N, H, W))."""
    if not isinstance(spec, WorldSpec):
        raise ValueError(f"spec must be a WorldSpec; got {type(spec).__name__}. Build one with WorldSpec(...).")
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) \
            or not 1 <= n_per_class <= MAX_PER_CLASS:
        raise ValueError(f"n_per_class must be a whole number from 1 to {MAX_PER_CLASS}; got {n_per_class!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0; got {seed!r}.")
    if split not in SPLIT_INDEX:
        raise ValueError(f"Unknown split {split!r}. Choose one of: {', '.join(SPLITS)}.")

    params, noise = np.random.SeedSequence([int(seed), SPLIT_INDEX[split], _TASK_CODE[spec.task]]).spawn(2)
    d = _draw(spec.task, len(spec.classes), int(n_per_class), np.random.default_rng(params))
    noise_rng = np.random.default_rng(noise)
    orientation = spec.task == "orientation"
    shift = np.float32(spec.shift)

    # The shift pulls the shape colour towards the background, but never below the visible minimum.
    gap = np.abs(_luma(d.shape_colour) - _luma(d.background))  # (N,) >= MIN_CONTRAST
    pull = np.minimum(MAX_CONTRAST_LOSS * shift, np.maximum(1 - MIN_VISIBLE_CONTRAST / gap, 0)).astype(np.float32)
    shape_colour = d.shape_colour + pull[:, None] * (d.background - d.shape_colour)  # (N, 3)

    n = d.labels.shape[0]
    images = np.empty((n, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    coverage = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        alpha = _alpha(d, sl, "outline" in spec.styles)  # (n, H, W)
        coverage[sl] = alpha
        if orientation:
            g = _grating(d, sl)[:, None]  # (n, 1, H, W)
            a, b = d.grating_a[sl, :, None, None], d.grating_b[sl, :, None, None]
            back = a + g * (b - a)  # (n, 3, H, W)
        else:
            back = np.broadcast_to(d.background[sl, :, None, None], (alpha.shape[0], 3, IMAGE_SIZE, IMAGE_SIZE))
            if shift > 0:
                back = back + shift * _texture(d, sl)
        a4 = alpha[:, None]  # (n, 1, H, W)
        img = back + a4 * (shape_colour[sl, :, None, None] - back)
        if shift > 0:
            img += (np.float32(MAX_NOISE) * shift) * noise_rng.standard_normal(img.shape, dtype=np.float32)
        np.clip(img, 0, 1, out=img)
        if "inverted" in spec.styles:
            np.subtract(1, img, out=img)
        images[sl] = img
    return images, d.labels, coverage


# ---- public entry points -----------------------------------------------------------------------------------
def generate(spec: WorldSpec, n_per_class: int, seed: int = 0, split: str = "train") -> ShapesData:
    """Draw a balanced, shuffled batch from a shapes world.

    The same (spec.task, n_per_class, seed, split) always draws the same shapes, colours and positions; the shift
    and the styles only change how they look, so the same draw can be compared across shifts and styles. Each
    split has its own random stream, so train, val and test never share an image.

    Args:
        spec: The world: task, shift and styles.
        n_per_class: Images per class, 1 to MAX_PER_CLASS.
        seed: A whole number >= 0.
        split: "train", "val" or "test".

    Returns:
        ShapesData with len(spec.classes) * n_per_class images.

    Raises:
        ValueError: If an argument is out of range; the message says what to change.
    """
    images, labels, _ = _render(spec, n_per_class, seed, split)
    return ShapesData(images, labels, spec.classes, spec)


def generate_with_masks(spec: WorldSpec, n_per_class: int, seed: int = 0,
                        split: str = "train") -> tuple[ShapesData, np.ndarray]:
    """Like generate, and also the shape's anti-aliased coverage per pixel.

    Returns:
        (data, coverage) with coverage (N, 32, 32) float32 in [0, 1]: 1 where the shape (or, with the "outline"
        style, its outline) fully covers a pixel, 0 on pure background.

    Raises:
        ValueError: As generate.
    """
    images, labels, coverage = _render(spec, n_per_class, seed, split)
    return ShapesData(images, labels, spec.classes, spec), coverage


def make_source(n_per_class: int, seed: int = 0, split: str = "train") -> ShapesData:
    """The source task: six shapes on plain backgrounds, no shift.

    Raises:
        ValueError: As generate.
    """
    return generate(WorldSpec("source"), n_per_class, seed, split)


def make_target(similarity: float, n_per_class: int, seed: int = 0, split: str = "train", task: str = "auto",
                styles: tuple[str, ...] = ()) -> ShapesData:
    """A target task at a given similarity to the source data (see target_spec).

    Raises:
        ValueError: As target_spec and generate.
    """
    return generate(target_spec(similarity, task, styles), n_per_class, seed, split)


def preview_grid(data: ShapesData, n_per_class: int = 4, scale: int = 3) -> np.ndarray:
    """A picture of the data: one row per class, the first n_per_class images of each, for st.image.

    Args:
        data: The images to show.
        n_per_class: Tiles per row; classes with fewer images leave the rest of their row blank.
        scale: Integer upscaling of each 32x32 image (nearest neighbour).

    Returns:
        uint8 (H, W, 3) with 2-pixel white gaps between tiles.

    Raises:
        ValueError: If n_per_class or scale is below 1.
    """
    if not (isinstance(n_per_class, (int, np.integer)) and n_per_class >= 1):
        raise ValueError(f"n_per_class must be a whole number >= 1; got {n_per_class!r}.")
    if not (isinstance(scale, (int, np.integer)) and 1 <= scale <= 32):
        raise ValueError(f"scale must be a whole number from 1 to 32; got {scale!r}.")
    gap, tile = 2, IMAGE_SIZE * scale
    rows = len(data.classes)
    canvas = np.full((rows * (tile + gap) - gap, n_per_class * (tile + gap) - gap, 3), 255, dtype=np.uint8)
    for c in range(rows):
        idx = np.flatnonzero(data.labels == c)[:n_per_class]
        if idx.size == 0:
            continue
        tiles = np.round(data.images[idx].transpose(0, 2, 3, 1) * 255).astype(np.uint8)  # (k, 32, 32, 3)
        tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)  # (k, tile, tile, 3)
        y = c * (tile + gap)
        for i, t in enumerate(tiles):
            x = i * (tile + gap)
            canvas[y:y + tile, x:x + tile] = t
    return canvas
