"""Real ImageNet weights through torchvision's weights API: cache status, offline loading, checked state dicts.

The cache is torch hub's: `<torch.hub.get_dir()>/checkpoints/<file name of the weights URL>` (TORCH_HOME moves
it). Nothing here touches the network unless a caller passes `allow_download=True`; on an offline classroom
server a missing file raises `WeightsUnavailable`, whose `status.how_to_get()` tells the learner or teacher
exactly which file to fetch on a connected machine and where to copy it. This module imports torch.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tl_core.models.networks import IMAGENET_CLASSES, build_model, layout_for
from tl_core.models.registry import ARCHS, get_spec

if TYPE_CHECKING:
    import torchvision

DEFAULT_MAX_STATE_BYTES = 1024 * 2**20  # largest weights file load_state_dict_file accepts by default
_HASH = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's convention: the sha256 prefix sits in the file name
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
_CHUNK = 1 << 20  # bytes per download read
_TIMEOUT_S = 30  # seconds before a stalled download gives up


def torchvision_archs() -> list[str]:
    """The registry's architectures that have torchvision ImageNet weights, in registry order."""
    return [name for name, spec in ARCHS.items() if spec.torchvision]


def imagenet_weights(arch: str) -> torchvision.models.WeightsEnum:
    """torchvision's DEFAULT ImageNet weights entry for an architecture (`.url`, `.transforms()`, `.meta`).

    Raises:
        ValueError: If the architecture is unknown or not a torchvision one.
    """
    spec = get_spec(arch)
    if not spec.torchvision:
        raise ValueError(f"{arch} has no ImageNet weights: it is the playbook's own network and its weights ship "
                         f"in assets/. Pick a torchvision architecture such as resnet18.")
    import torchvision  # here: a server that only ever trains the built-in network never pays its 2 s import

    return torchvision.models.get_model_weights(arch).DEFAULT


def cache_dir() -> Path:
    """The folder torch hub keeps downloaded checkpoints in (honours TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


@dataclass
class WeightsStatus:
    """Whether an architecture's ImageNet weights are on this machine, and where they go."""

    arch: str  # registry key
    available: bool  # the file is in the cache folder
    path: Path  # where the file is (or must be put)
    filename: str  # the file name torchvision expects, for example "resnet18-f37072fd.pth"
    size_mb: float  # size of the file in MB, from torchvision's metadata
    url: str  # where torchvision downloads it from

    def how_to_get(self, download_offered: bool = False) -> str:
        """Markdown telling the reader what is missing and how to get it.

        Args:
            download_offered: The page offers a download button (the server may download), so the text says the file
                can be downloaded now and leaves the offline steps to `offline_steps()`; otherwise it says the app
                does not download by itself and gives those steps.
        """
        if self.available:
            return f"ImageNet weights for `{self.arch}` are ready: `{self.path}`."
        missing = f"**ImageNet weights for `{self.arch}` are not on this machine.**"
        if download_offered:
            return (f"{missing} The model needs them to recognise anything: without them its layers are random. "
                    f"The file `{self.filename}` ({self.size_mb:.1f} MB) can be downloaded now, or, offline, "
                    f"put in place by hand.")
        return (f"{missing} The file `{self.filename}` ({self.size_mb:.1f} MB) is missing, and the app does not "
                f"download it by itself.\n\n{self.offline_steps()}")

    def offline_steps(self) -> str:
        """The numbered steps that put the file in place on a server without internet."""
        return (f"1. On a computer with internet access and this project, run "
                f"`python -m tl_core.models.fetch_weights {self.arch}` (or download {self.url} in a browser).\n"
                f"2. Copy `{self.filename}` into this folder on the server: `{self.path.parent}`\n"
                f"3. Reload the page.")


class WeightsUnavailable(ValueError):
    """The ImageNet weights are not cached and could not (or may not) be downloaded.

    Attributes:
        status: The WeightsStatus; `status.how_to_get()` is the text to show.
    """

    def __init__(self, status: WeightsStatus, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        msg = (f"ImageNet weights for {status.arch} are not on this machine ({status.filename}, "
               f"{status.size_mb:.1f} MB). Run `python -m tl_core.models.fetch_weights {status.arch}` on a connected "
               f"machine and copy the file into {status.path.parent}.")
        super().__init__(f"{reason} {msg}" if reason else msg)


def weights_status(arch: str) -> WeightsStatus:
    """Look up whether an architecture's ImageNet weights are cached. Never touches the network.

    Args:
        arch: A torchvision architecture of the registry, for example "resnet18".

    Returns:
        Its WeightsStatus.

    Raises:
        ValueError: For "shapesnet" (its weights ship in assets/) or an unknown architecture.
    """
    w = imagenet_weights(arch)
    filename = os.path.basename(w.url)
    path = cache_dir() / filename
    return WeightsStatus(arch=arch, available=path.is_file() and path.stat().st_size > 0, path=path,
                         filename=filename, size_mb=float(w.meta.get("_file_size", 0.0)), url=w.url)


# ---- building and checking -------------------------------------------------------------------------------


def _expected_shapes(arch: str, num_classes: int, aux_logits: bool = True) -> dict[str, torch.Tensor]:
    """The state_dict of the architecture as meta tensors (shapes and dtypes, no memory)."""
    return build_model(arch, num_classes, aux_logits=aux_logits, init=False, meta=True).state_dict()


def _rename_densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Old DenseNet checkpoints (torchvision's included) name layers 'norm.1'; current modules use 'norm1'."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _DENSENET_OLD_KEY.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out


def _check_against(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], arch: str) -> None:
    """Raise ValueError naming the first missing, mis-shaped or unexpected key."""
    keys = list(expected)
    for i, key in enumerate(keys):
        if key not in state and key.endswith(".num_batches_tracked"):
            continue  # checkpoints older than PyTorch 0.4 (several of torchvision's) lack these; BatchNorm fills them
        if key not in state:
            raise ValueError(f"The weights do not fit {arch}: key {key!r} is missing (expected shape "
                             f"{tuple(expected[key].shape)}). Load a file saved from a {arch} model.")
        got, want = state[key], expected[key]
        if tuple(got.shape) != tuple(want.shape):
            hint = ""
            if i >= len(keys) - 2 and got.dim() == want.dim() and got.shape[1:] == want.shape[1:]:
                hint = f" The file's head has {got.shape[0]} outputs: set the number of classes to {got.shape[0]}."
            raise ValueError(f"The weights do not fit {arch}: {key!r} has shape {tuple(got.shape)} in the file but "
                             f"the model expects {tuple(want.shape)}.{hint}")
        if want.is_floating_point() != got.is_floating_point():
            raise ValueError(f"The weights do not fit {arch}: {key!r} is {got.dtype} in the file but the model "
                             f"expects {want.dtype}.")
    for key in state:
        if key not in expected:
            raise ValueError(f"The weights do not fit {arch}: the file has an unexpected key {key!r}. Load a file "
                             f"saved from a {arch} model.")


def _fill_num_batches_tracked(state: dict[str, torch.Tensor],
                              expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add the BatchNorm step counters old checkpoints lack (as 0), in the model's key order."""
    return {k: state[k] if k in state else torch.tensor(0, dtype=torch.long) for k in expected}


def _torch_load(source: io.BytesIO | Path) -> Any:
    """torch.load restricted to tensors and plain containers, with learner-readable errors."""
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" in str(exc).lower():  # weights_only refused to import a class or function
            raise ValueError("The file contains Python objects other than tensors, so it was not loaded (only plain "
                             "weights are allowed). Save the weights with torch.save(model.state_dict(), path).") \
                from None
        raise ValueError("The file is not a PyTorch weights file, or it is damaged. Save the weights with "
                         "torch.save(model.state_dict(), path).") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise ValueError(f"The file is not a PyTorch weights file, or it is damaged ({type(exc).__name__}). "
                         f"Save the weights with torch.save(model.state_dict(), path).") from None


def _unwrap(obj: Any) -> dict[str, torch.Tensor]:
    """Find the state dict in a checkpoint: raw, {"state_dict": ...} or {"model": ...}; strip wrapper prefixes."""
    for _ in range(3):
        if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in ("state_dict", "model", "model_state_dict") if isinstance(obj.get(k), dict)),
                         None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not obj:
        raise ValueError("The file does not hold a state dict (a mapping of parameter names to tensors). Save the "
                         "weights with torch.save(model.state_dict(), path).")
    bad = next((k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise ValueError(f"The entry {bad!r} of the file is not a tensor. Save the weights with "
                         f"torch.save(model.state_dict(), path).")
    state: dict[str, torch.Tensor] = dict(obj)
    for prefix in ("module.", "_orig_mod."):  # DataParallel, torch.compile
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


@dataclass
class CheckedWeights:
    """A weights file that fits an architecture, and the head it was found to have."""

    state: dict[str, torch.Tensor]  # the state dict, on the CPU, keys matching the architecture
    num_classes: int  # outputs of the file's head
    aux_logits: bool  # whether it holds Inception's auxiliary classifier (False for every other family)


def _head_outputs(state: dict[str, torch.Tensor], arch: str) -> int | None:
    """The number of outputs of the main head in a state dict (None if its weight is absent or not a matrix)."""
    weight = state.get(layout_for(arch).heads[0] + ".weight")
    return int(weight.shape[0]) if isinstance(weight, torch.Tensor) and weight.dim() == 2 else None


def _check_finite(state: dict[str, torch.Tensor]) -> None:
    """Refuse tensors holding NaN or infinity: every prediction made from them would be meaningless."""
    for key, value in state.items():
        if value.is_floating_point() or value.is_complex():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise ValueError(f"The weights hold NaN or infinite values ({bad:,} of {value.numel():,} in {key!r}), "
                                 f"so every prediction made from them would be meaningless. This usually means the "
                                 f"training run diverged: save the weights of a run whose loss stayed finite.")


def load_state_dict_file(data: bytes | Path, arch: str, num_classes: int | None = None,
                         max_bytes: int = DEFAULT_MAX_STATE_BYTES) -> CheckedWeights:
    """Read an untrusted weights file and check it fits an architecture, without building the real model.

    Accepts a raw state_dict, or a checkpoint dict with it under "state_dict" or "model"; a "module." prefix
    (DataParallel) is stripped; old DenseNet key names are renamed. Only tensors and plain containers can be
    unpickled (`weights_only=True`). Tensors holding NaN or infinity are refused.

    Args:
        data: The file's bytes, or a path to it.
        arch: A torchvision architecture of the registry.
        num_classes: Outputs the head must have; None accepts the head size found in the file (ImageNet's 1000 or
            a fine-tuned head). For inception_v3 the auxiliary head is expected only if the file has one.
        max_bytes: Largest file accepted.

    Returns:
        CheckedWeights: the state dict (on the CPU, keys matching the architecture) and its head's size.

    Raises:
        ValueError: If the file is too big, holds Python objects other than tensors, is not a weights file, holds
            NaN or infinite values, or does not fit: naming the first missing key, the first key whose shape
            differs (expected vs got), or the first unexpected key.
    """
    imagenet_weights(arch)  # validates arch
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise ValueError(f"num_classes must be a positive whole number; got {num_classes!r}.")
    size = Path(data).stat().st_size if isinstance(data, Path) else len(data)
    if size > max_bytes:
        raise ValueError(f"The weights file is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB. "
                         f"Upload the weights of a smaller architecture.")
    state = _unwrap(_torch_load(data if isinstance(data, Path) else io.BytesIO(bytes(data))))
    if arch.startswith("densenet"):
        state = _rename_densenet_keys(state)
    found = _head_outputs(state, arch)
    n = num_classes if num_classes is not None else (found or IMAGENET_CLASSES)
    side = layout_for(arch).side
    aux = bool(side) and any(k.startswith(path + ".") for _, path in side for k in state)
    expected = _expected_shapes(arch, n, aux_logits=aux or not side)
    _check_against(state, expected, arch)
    _check_finite(state)
    return CheckedWeights(_fill_num_batches_tracked(state, expected), n, aux)


# ---- downloading (connected machines only) ---------------------------------------------------------------


_DOWNLOAD_LOCKS: dict[str, threading.Lock] = {}


def download_weights(arch: str, progress: Callable[[int, int], None] | None = None) -> Path:
    """Download an architecture's ImageNet weights into the torch hub cache (only call this when online).

    The file is streamed to a temporary file in the cache folder, its sha256 is checked against the prefix in
    torchvision's file name, and it is renamed into place atomically.

    Args:
        arch: A torchvision architecture of the registry.
        progress: Called as progress(bytes_done, bytes_total) after each chunk; bytes_total is 0 if unknown.

    Returns:
        The path of the cached file.

    Raises:
        WeightsUnavailable: If the download fails (offline, HTTP error, wrong hash), with the reason.
    """
    with _DOWNLOAD_LOCKS.setdefault(arch, threading.Lock()):  # one download per file, however many ask at once
        status = weights_status(arch)
        if status.available:
            return status.path
        return _download(status, progress)


def _download(status: WeightsStatus, progress: Callable[[int, int], None] | None) -> Path:
    folder = status.path.parent
    folder.mkdir(parents=True, exist_ok=True)
    expected = _HASH.search(status.filename)
    cap = int(status.size_mb * 2**20 * 1.5) + 2**20  # refuse a response far bigger than the real file
    fd, tmp_name = tempfile.mkstemp(prefix=status.filename + ".", suffix=".partial", dir=folder)
    tmp = Path(tmp_name)
    try:
        sha = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(status.url, timeout=_TIMEOUT_S) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(_CHUNK):
                done += len(chunk)
                if done > cap:
                    raise WeightsUnavailable(status, f"The download of {status.filename} is larger than expected.")
                sha.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(done, total)
        if expected and not sha.hexdigest().startswith(expected.group(1)):
            raise WeightsUnavailable(status, f"The downloaded {status.filename} is corrupt (its hash does not match).")
        os.replace(tmp, status.path)
    except WeightsUnavailable:
        tmp.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise WeightsUnavailable(status, f"Could not download {status.url} ({reason}).") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return status.path


# ---- loading and predicting ------------------------------------------------------------------------------


def load_imagenet_model(arch: str, *, allow_download: bool = False,
                        progress: Callable[[int, int], None] | None = None) -> torch.nn.Module:
    """Build an architecture with its real ImageNet weights from the torch hub cache.

    A cached file is loaded with `torch.load(path, weights_only=True)` and no network access. If it is missing
    and `allow_download` is False (the default, and the only safe choice on an offline server), nothing is
    downloaded: WeightsUnavailable is raised, carrying the status whose how_to_get() explains the fix.

    Args:
        arch: A torchvision architecture of the registry.
        allow_download: Download a missing file (connected machines only).
        progress: Download progress callback, progress(bytes_done, bytes_total).

    Returns:
        The model with 1000 ImageNet outputs, on the CPU, in eval mode. inception_v3 is built the way torchvision
        builds it for these weights (aux_logits=True, transform_input=True).

    Raises:
        WeightsUnavailable: If the file is missing and may not or could not be downloaded.
        ValueError: If the cached file is damaged or does not fit the architecture (delete it and fetch again).
    """
    status = weights_status(arch)
    if not status.available:
        if not allow_download:
            raise WeightsUnavailable(status)
        download_weights(arch, progress)
    try:
        state = _unwrap(_torch_load(status.path))
        if arch.startswith("densenet"):
            state = _rename_densenet_keys(state)
        model = build_model(arch, IMAGENET_CLASSES, aux_logits=True, imagenet=True, init=False, meta=True)
        expected = model.state_dict()
        _check_against(state, expected, arch)
        state = _fill_num_batches_tracked(state, expected)
    except ValueError as exc:
        raise ValueError(f"The cached file {status.path} cannot be used: {exc} Delete it and fetch it again "
                         f"with `python -m tl_core.models.fetch_weights {arch}`.") from None
    model.load_state_dict(state, strict=True, assign=True)  # the meta tensors are replaced by the loaded ones
    left = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left:
        raise ValueError(f"The cached file {status.path} did not set {left[0]!r}. Delete it and fetch it again.")
    return model.eval()
