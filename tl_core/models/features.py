"""Fast inference for frozen networks: channels_last, batched, and bf16 where the hardware computes it natively.

Used to cache a frozen prefix's features once (fixed feature extraction), to classify images in the explorer,
and to estimate how long a run will take. A frozen feature extractor tolerates bf16 (relative error ~0.3% on
resnet18); training itself stays in float32 on the CPU.
"""

from __future__ import annotations

import contextlib
import functools
import time

import torch
from torch import nn


@functools.lru_cache(maxsize=1)
def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bf16 convolutions natively (AVX512-BF16 or AMX through oneDNN)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def inference_autocast(device: torch.device, heavy: bool) -> contextlib.AbstractContextManager:
    """The precision for frozen inference: AMP on CUDA; bf16 on a bf16-capable CPU for heavy models; else fp32.

    Args:
        device: Where the model runs.
        heavy: True for ImageNet-sized networks, where bf16 pays off; small nets stay in fp32 (exact caches).
    """
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "cpu" and heavy and cpu_bf16_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.inference_mode()
def extract_features(module: nn.Module, x: torch.Tensor, *, batch_size: int = 64, heavy: bool = False,
                     progress=None) -> torch.Tensor:
    """module(x) in eval mode, batch by batch, returned as float32 on x's device.

    Args:
        module: A frozen network (put in eval mode here).
        x: (N, C, H, W) inputs, already on the module's device.
        batch_size: Images per forward pass.
        heavy: Use bf16 on a capable CPU (see inference_autocast).
        progress: Optional callable(done, total) after each batch.

    Returns:
        (N, ...) outputs (the first element when the module returns a tuple).
    """
    module.eval()
    outs = []
    n = x.shape[0]
    with inference_autocast(x.device, heavy):
        for i in range(0, n, batch_size):
            out = module(x[i:i + batch_size].contiguous(memory_format=torch.channels_last)
                         if x.dim() == 4 else x[i:i + batch_size])
            if isinstance(out, tuple):  # Inception in train mode returns (logits, aux); eval returns a tensor
                out = out[0]
            outs.append(out.float())
            if progress is not None:
                progress(min(i + batch_size, n), n)
    return torch.cat(outs) if outs else torch.empty(0)


def measure_throughput(fn, images_per_call: int, *, warmup: int = 1, repeats: int = 2) -> float:
    """Images per second of a callable that processes `images_per_call` images (after warm-up calls)."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return images_per_call * repeats / max(time.perf_counter() - t0, 1e-9)
