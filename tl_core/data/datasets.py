"""Target datasets from the shapes world, described by a small hashable spec and built once per process.

The app, the race, the sweep and the benchmarks all ask for data through `make_data(DataSpec(...))`, so
identical requests share one read-only copy (never write into the returned tensors).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from tl_core.data import shapes


@dataclass
class TensorData:
    """A labelled image set as tensors."""

    x: torch.Tensor  # (N, 3, H, W) float32 in [0, 1]
    y: torch.Tensor  # (N,) int64 class indices
    classes: tuple[str, ...]  # class names, indexed by y

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @classmethod
    def from_numpy(cls, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> TensorData:
        """Wrap numpy arrays without copying."""
        return cls(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)),
                   torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64)), tuple(classes))

    @classmethod
    def from_shapes(cls, data: shapes.ShapesData) -> TensorData:
        return cls.from_numpy(data.images, data.labels, data.classes)


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
