"""The device label and device selection."""

from __future__ import annotations

import sys
import types

import pytest

from tl_core.training.device import describe_device, select_device


def test_label_while_torch_is_half_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))  # no .cuda yet, as mid-import
    assert describe_device().startswith(("CPU", "GPU"))


def test_selection_is_honest_about_missing_devices():
    import torch

    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="No CUDA GPU"):
            select_device("cuda")
    with pytest.raises(ValueError, match="Unknown device"):
        select_device("tpu")
