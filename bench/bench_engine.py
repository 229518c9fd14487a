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

from tl_core.models import networks as models  # noqa: E402
from tl_core.models.features import inference_autocast  # noqa: E402
from tl_core.training.plan import make_plan  # noqa: E402
from tl_core.training.trainer import TensorData, train  # noqa: E402


def _figure(name: str, value: float, unit: str, **extra) -> dict:
    return {"figure": name, "value": round(value, 4), "unit": unit, **extra}


def _plain_step_times(plan, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
                      seed: int) -> list[float]:
    """The reference: PyTorch's transfer-learning tutorial loop (loss.item(), running corrects), with the same
    model, data, memory format, batch size and optimizer as the trainer: the plan's per-group learning rates need
    one parameter group per layer group, built here by the same function. No tracking, no records, no schedule.
    Returns seconds per step."""
    from tl_core.training.trainer import build_for_plan
    from tl_core.training.freeze import build_optimizer

    built = build_for_plan(plan, 4, x.shape[-1], base=model)
    model = built.model.to(memory_format=torch.channels_last).train()
    x = x.contiguous(memory_format=torch.channels_last)
    opt = build_optimizer(built.grouped, plan)
    batch = plan.batch_size
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
    ratios, trainer_all, plain_all = [], [], []
    warm = n // batch  # the first epoch of a run builds oneDNN's kernels: left out of both
    _trainer_step_times(plan, data, base), _plain_step_times(plan, base, xp, y, n // batch, 0)  # a warm-up pair
    for _ in range(repeats):  # alternate, and compare median step times, so noise and GC pauses cancel out
        t = _trainer_step_times(plan, data, base)[warm:]
        p = _plain_step_times(plan, base, xp, y, epochs * (n // batch), 0)[warm:]
        ratios.append(statistics.median(p) / statistics.median(t))
        trainer_all += t
        plain_all += p
    pooled = statistics.median(plain_all) / statistics.median(trainer_all)
    return _figure(f"tracker_overhead_ratio_{arch}_{size}px", pooled, "ratio", goal=">= 0.98",
                   runs=[round(r, 3) for r in ratios], trainer_step_ms=round(1e3 * statistics.median(trainer_all), 2),
                   plain_step_ms=round(1e3 * statistics.median(plain_all), 2),
                   meaning="median step time of a plain loop (same model, data, optimizer groups; no tracking) over "
                           "the trainer's (gradient norms of every group each step, update ratios sampled), pooled "
                           "over alternating runs")


def cached_frozen_speedup(n: int = 512, epochs: int = 10, size: int = 64, batch: int = 32) -> dict:
    """Fixed feature extraction on resnet18 at 64 px, 10 epochs: the trainer with its frozen-feature cache over a
    plain loop that runs the frozen backbone every epoch (same model, data, batch size, optimizer, and the same
    inference precision for the backbone, so that only the caching differs; 10 epochs bound the gain near 10x)."""
    torch.manual_seed(0)
    base = models.build_model("resnet18", 4)
    x = torch.rand(n, 3, size, size)
    y = torch.randint(0, 4, (n,))
    data = TensorData(x, y, ("a", "b", "c", "d"))
    val = TensorData(x[:64], y[:64], data.classes)
    plan = make_plan("feature_extract", arch="resnet18", epochs=epochs, min_steps=0, batch_size=batch, device="cpu")

    def naive() -> float:
        model = copy.deepcopy(base)
        models.replace_head(model, "resnet18", 4)
        head = models.get_classifier(model, "resnet18")
        model.fc = torch.nn.Identity()  # the frozen backbone; the head trains on its output
        model.requires_grad_(False).eval().to(memory_format=torch.channels_last)  # BatchNorm keeps its statistics
        if plan.optimizer == "sgd":  # the plan's optimizer (resnet18's recipe: SGD with momentum), as the trainer's
            opt = torch.optim.SGD(head.parameters(), lr=plan.lr_for("head"), momentum=0.9,
                                  weight_decay=plan.weight_decay, fused=True)
        else:
            opt = torch.optim.Adam(head.parameters(), lr=plan.lr_for("head"), weight_decay=plan.weight_decay,
                                   fused=True)
        pre = models.preprocess_for("resnet18", size)
        t0 = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(n)
            for i in range(0, n, batch):
                idx = perm[i:i + batch]
                # The same fast inference the cache uses (channels_last, bf16 where native): only caching differs.
                with torch.no_grad(), inference_autocast(torch.device("cpu"), heavy=True):
                    feats = model(pre(x[idx]).contiguous(memory_format=torch.channels_last)).float()
                loss = F.cross_entropy(head(feats), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                loss.item()
        return time.perf_counter() - t0

    def cached() -> float:
        t0 = time.perf_counter()
        res = train(plan, data, val, base=base, keep_weights=False, max_val_evals=1)
        assert res.cached_prefix, "the trainer did not cache the frozen backbone"
        return time.perf_counter() - t0

    runs = [(naive(), cached()) for _ in range(3)]  # pairs, so a busy moment slows both sides of one pair
    ratios = [a / b for a, b in runs]
    t_naive, t_cached = statistics.median(a for a, _ in runs), statistics.median(b for _, b in runs)
    return _figure("cached_frozen_speedup", statistics.median(ratios), "x", goal=">= 8 (limit 10)",
                   runs=[round(r, 2) for r in ratios], naive_s=round(t_naive, 2), cached_s=round(t_cached, 2))


def race_wall_s() -> dict:
    """From loading the shipped source model to results for four strategies on the "few and similar" target."""
    from tl_core.models import source
    from tl_core.experiments.race import race_lanes, run_race
    from tl_core.data.datasets import DataSpec, make_data

    source.forget_loaded()
    make_data.cache_clear()
    t0 = time.perf_counter()
    base = source.load_source_model().model
    tr, va = make_data(DataSpec(n_per_class=20, similarity=1.0))
    results = run_race(race_lanes(), tr, va, base=base, keep_weights=False)
    wall = time.perf_counter() - t0
    assert all(r.ok for r in results.values())
    return _figure("race_wall_s", wall, "s", goal="<= 5",
                   accuracy={k: round(r.final_val_acc, 3) for k, r in results.items()})


def sweep_wall_s() -> dict:
    """4 sizes x 2 similarities x 4 strategies, 1 seed."""
    from tl_core.experiments.race import SWEEP_SIMILARITIES, SWEEP_SIZES, run_sweep
    from tl_core.models.source import load_source_model

    base = load_source_model().model
    t0 = time.perf_counter()
    cells = run_sweep(SWEEP_SIZES, SWEEP_SIMILARITIES, base=base)
    wall = time.perf_counter() - t0
    assert len(cells) == len(SWEEP_SIZES) * len(SWEEP_SIMILARITIES)
    return _figure("sweep_wall_s", wall, "s", goal="<= 30",
                   winners={f"{c.n_per_class}x{c.similarity}": c.winner for c in cells})


def run() -> list[dict]:
    return [
        tracker_overhead("shapesnet", 32, n=1024, steps=256, repeats=6),
        tracker_overhead("resnet18", 64, n=256, steps=48, repeats=3),
        cached_frozen_speedup(),
        race_wall_s(),
        sweep_wall_s(),
    ]


if __name__ == "__main__":
    for rec in run():
        print(json.dumps(rec), flush=True)
