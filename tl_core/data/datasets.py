"""Target datasets from the shapes world, described by a small hashable spec and built once per process.

The app, the race, the sweep and the benchmarks all ask for data through `make_data(DataSpec(...))`, so
identical requests share one read-only copy (never write into the returned tensors).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from tl_core.data import shapes
from tl_core.training.trainer import TensorData


@dataclass(frozen=True)
class DataSpec:
    """A target task in the shapes world."""

    n_per_class: int = 20  # labelled training images per class (5..1000 in the app)
    similarity: float = 1.0  # 1 = looks like the source data; below 0.5 the task becomes grating orientation
    task: str = "auto"  # "auto", "shapes" (new shapes) or "orientation" (a low-level cue)
    styles: tuple[str, ...] = ()  # extra named styles: "outline", "inverted"
    n_val_per_class: int = 50  # held-out images per class for validation
    seed: int = 0  # seeds the images; train and validation come from disjoint streams

    @property
    def world(self) -> shapes.WorldSpec:
        return shapes.target_spec(self.similarity, self.task, self.styles)

    def describe(self) -> str:
        return f"{self.n_per_class} per class · {self.world.describe()}"


@functools.lru_cache(maxsize=32)
def make_data(spec: DataSpec) -> tuple[TensorData, TensorData]:
    """(train, val) tensors for a spec; cached and shared, so treat them as read-only.

    Raises:
        ValueError: For sizes or similarities outside the shapes world's range.
    """
    world = spec.world
    train = shapes.generate(world, spec.n_per_class, spec.seed, "train")
    val = shapes.generate(world, spec.n_val_per_class, spec.seed, "val")
    return TensorData.from_shapes(train), TensorData.from_shapes(val)


def fit_batch_size(batch_size: int, n_train: int) -> int:
    """The largest batch not above `batch_size` that the data can fill (never below 2: BatchNorm needs two)."""
    return max(2, min(batch_size, n_train))
