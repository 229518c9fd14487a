"""Engine benchmarks: tracking overhead, the frozen-feature cache, the race and the sweep, each against plain PyTorch.

Run `python bench/bench_engine.py`; each figure prints as one JSON line. `run()` returns the same records.
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tl_core import models  # noqa: E402
from tl_core.plan import make_plan  # noqa: E402
from tl_core.train import TensorData, train  # noqa: E402


def _figure(name: str, value: float, unit: str, **extra) -> dict:
    return {"figure": name, "value": round(value, 4), "unit": unit, **extra}


def _plain_step_times(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, steps: int,
                      lr: float, seed: int) -> list[float]:
    """The reference: PyTorch's transfer-learning tutorial loop (loss.item(), running corrects), with the same
    model, data, memory format, optimizer and batch size as the trainer. Returns seconds per step."""
    model = model.to(memory_format=torch.channels_last).train()
    x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    gen = torch.Generator().manual_seed(seed)
    n = len(y)
    perm = torch.randperm(n, generator=gen)
    running_loss, running_corrects, times = 0.0, 0, []
    t0 = time.perf_counter()
    for s in range(steps):
        i = (s * batch) % n
        if i + batch > n:
            perm, i = torch.randperm(n, generator=gen), 0
        idx = perm[i:i + batch]
        inputs, labels = x[idx], y[idx]
        opt.zero_grad()
        outputs = model(inputs)
        _, preds = torch.max(outputs, 1)
        loss = F.cross_entropy(outputs, labels)
        loss.backward()
        opt.step()
        running_loss += loss.item() * inputs.size(0)
        running_corrects += torch.sum(preds == labels.data)
        t1 = time.perf_counter()
        times.append(t1 - t0)
        t0 = t1
    return times[1:]  # the first step warms up


def _trainer_step_times(plan, data: TensorData, base) -> list[float]:
    stamps: list[float] = []
    train(plan, data, data, base=base, keep_weights=False, max_val_evals=1,
          on_record=lambda r: stamps.append(time.perf_counter()) if r.kind == "step" else None)
    return [b - a for a, b in zip(stamps[1:], stamps[2:])]


def tracker_overhead(arch: str, size: int, n: int, steps: int, batch: int = 32, repeats: int = 3) -> dict:
    """Trainer steps/s (per-group gradient norms every step, update ratios sampled) over the plain loop."""
    torch.manual_seed(0)
    base = models.build_model(arch, 4)
    x = torch.rand(n, 3, size, size)
    y = torch.randint(0, 4, (n,))
    data = TensorData(x, y, ("a", "b", "c", "d"))
    epochs = max(1, steps * batch // n)
    plan = make_plan("finetune_all", arch=arch, epochs=epochs, min_steps=0, batch_size=batch, lr=1e-3, device="cpu")
    pre = models.preprocess_for(arch, size)
    with torch.no_grad():
        xp = pre(x)
    ratios = []
    for _ in range(repeats):  # alternate, and compare median step times, so noise and GC pauses cancel out
        t = statistics.median(_trainer_step_times(plan, data, base))
        p = statistics.median(_plain_step_times(copy.deepcopy(base), xp, y, batch, epochs * (n // batch), 1e-3, 0))
        ratios.append(p / t)
    return _figure(f"tracker_overhead_ratio_{arch}_{size}px", statistics.median(ratios), "ratio",
                   goal=">= 0.98", runs=[round(r, 3) for r in ratios])


def run() -> list[dict]:
    return [
        tracker_overhead("shapesnet", 32, n=1024, steps=200),
    ]


if __name__ == "__main__":
    for rec in run():
        print(json.dumps(rec), flush=True)
