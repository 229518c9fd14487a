"""The shipped source model: ShapesNet pretrained on the source shapes, loaded safely and checked against its manifest."""

from __future__ import annotations

import functools
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tl_core.models.networks import ShapesNet, count_params

ASSETS = Path(__file__).resolve().parents[2] / "assets"
MODEL_FILE = ASSETS / "source_model.pt"
MANIFEST_FILE = ASSETS / "source_model.json"
REBUILD_HINT = "Recreate it with: python -m tl_core.models.pretrain"


class SourceModelError(RuntimeError):
    """The shipped source model is missing or does not match its manifest."""


@dataclass(frozen=True)
class SourceModel:
    """The pretrained model (shared and read-only: copy before training) and its manifest."""

    model: ShapesNet
    manifest: dict[str, Any]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.manifest["classes"])


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def source_model_from_bytes(weights: bytes, manifest: dict[str, Any], name: str = "source_model.pt") -> SourceModel:
    """Check a source model's weights against its manifest and load them safely (`weights_only=True`).

    Args:
        weights: The bytes of the weights file.
        manifest: Its manifest (classes, sha256, num_params).
        name: What to call the weights in messages.

    Raises:
        SourceModelError: If the checksum or the parameter count differs from the manifest, or the weights do not
            fit ShapesNet.
    """
    digest = hashlib.sha256(weights).hexdigest()
    if digest != manifest.get("sha256"):
        raise SourceModelError(f"{name} does not match its manifest (sha256 {digest[:12]}… vs "
                               f"{str(manifest.get('sha256'))[:12]}…). {REBUILD_HINT}")
    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    model = ShapesNet(num_classes=len(manifest["classes"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise SourceModelError(f"{name} does not fit ShapesNet: {e}. {REBUILD_HINT}") from None
    if count_params(model) != manifest.get("num_params"):
        raise SourceModelError(f"Parameter count {count_params(model)} differs from the manifest's "
                               f"{manifest.get('num_params')}. {REBUILD_HINT}")
    return SourceModel(model.eval(), dict(manifest))


def load_source_model_from(model_file: Path, manifest_file: Path) -> SourceModel:
    """Load and verify a source model from its files.

    Raises:
        SourceModelError: If a file is missing, the checksum or parameter count differs from the manifest,
            or the weights do not fit ShapesNet.
    """
    if not model_file.exists() or not manifest_file.exists():
        raise SourceModelError(f"The shipped source model is missing ({model_file.name} or {manifest_file.name}). "
                               f"{REBUILD_HINT}")
    return source_model_from_bytes(model_file.read_bytes(), json.loads(manifest_file.read_text()), model_file.name)


_ADOPTED: SourceModel | None = None  # the source model this process was handed (a Ray worker), instead of the files


def use_source_model(model: SourceModel) -> None:
    """Make `load_source_model` return this checked source model in this process (a Ray worker gets it from the
    object store, so it never needs the assets folder on its own disk)."""
    global _ADOPTED
    _ADOPTED = model


@functools.lru_cache(maxsize=1)
def _load_shipped() -> SourceModel:
    return load_source_model_from(MODEL_FILE, MANIFEST_FILE)


def load_source_model() -> SourceModel:
    """The shipped source model, loaded once per process and shared (never mutate it)."""
    return _ADOPTED if _ADOPTED is not None else _load_shipped()


def forget_loaded() -> None:
    """Drop this process's loaded source model, so the next `load_source_model` reads the files again (a benchmark
    timing a cold start; a test that rebuilt the assets)."""
    global _ADOPTED
    _ADOPTED = None
    _load_shipped.cache_clear()
