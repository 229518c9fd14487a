"""Which device trains: CUDA if present, else Apple's MPS, else the CPU; describable without importing torch."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@functools.lru_cache(maxsize=1)
def _probe_gpu_name() -> str | None:
    """The first NVIDIA GPU's name, from nvidia-smi, or None. Never imports torch."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=3, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None


def describe_device() -> str:
    """A short label of the device training will use, e.g. "CPU (2 cores)" or "GPU: NVIDIA H200".

    Uses torch only if something already imported it, so the decision pages stay torch-free.
    """
    torch_mod = sys.modules.get("torch")
    cuda = getattr(torch_mod, "cuda", None)  # None too while another thread is still importing torch
    backends = getattr(torch_mod, "backends", None)
    if cuda is not None and backends is not None:
        if cuda.is_available():
            return f"GPU: {cuda.get_device_name(0)}"
        if getattr(backends, "mps", None) is not None and backends.mps.is_available():
            return "GPU: Apple MPS"
    else:
        name = _probe_gpu_name()
        if name:
            return f"GPU: {name}"
        if sys.platform == "darwin" and platform.machine() == "arm64":
            return "GPU: Apple MPS"
    return f"CPU ({os.cpu_count() or 1} cores)"


def select_device(preference: str = "auto") -> torch.device:
    """Resolve a plan's device preference to a torch.device.

    Args:
        preference: "auto", "cpu", "cuda" or "mps".

    Returns:
        The device. "auto" picks CUDA, then MPS, then the CPU.

    Raises:
        ValueError: If a specific device is asked for but is not available.
    """
    import torch

    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ValueError("No CUDA GPU is available on this server; choose 'auto' or 'cpu'.")
    if preference == "mps" and not torch.backends.mps.is_available():
        raise ValueError("Apple MPS is not available on this server; choose 'auto' or 'cpu'.")
    if preference not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unknown device {preference!r}; choose 'auto', 'cpu', 'cuda' or 'mps'.")
    return torch.device(preference)
