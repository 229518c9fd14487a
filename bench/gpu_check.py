"""The GPU check: one prepared script that measures the CUDA paths of tl_core on a machine with an NVIDIA GPU.

    python bench/gpu_check.py [--skip-suite] [--quick]

prints one JSON line per figure (like bench/run_all.py):
- gpu_device: the GPU, its memory, torch and CUDA versions.
- gpu_amp_speedup: resnet18 at 224 px with random weights, training steps in mixed precision (bf16 where supported,
  else fp16 with a gradient scaler) with channels-last memory, against plain fp32, in images per second.
- gpu_race_wall_s: the race page's default race (its lanes and data) on the GPU, after a warm-up race.
- gpu_concurrent_jobs_throughput: default races per minute with 1, 2 and 4 runs at once on the one GPU (the job
  manager, in-process), and the job limit it suggests: the smallest that reaches 95% of the best throughput.
- gpu_oom_recovered: a run whose batch cannot fit (the process's GPU memory capped just above what half the batch
  needs) halves its batch and finishes.
- gpu_test_suite: the project's test suite run on this machine (a pytest subprocess), failures and errors as the value.

Each check runs on its own: one that fails prints `<figure>_error` with the reason, and the others still run. On a
machine without CUDA the script says so and exits with status 0, having measured nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONCURRENCY = (1, 2, 4)  # runs at once on the one GPU
SUITE_TIMEOUT_S = 1800


def _figure(name: str, value: float | int, unit: str, **extra: Any) -> dict:
    return {"figure": name, "value": round(value, 4) if isinstance(value, float) else value, "unit": unit, **extra}


# ---- pieces that need no GPU (tested in tests/test_gpu_check.py) ---------------------------------------------
def no_cuda_message() -> str | None:
    """Why this machine cannot run the check, or None when a CUDA GPU is there."""
    import torch

    if torch.cuda.is_available():
        return None
    build = f"a CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
    return (f"No CUDA GPU on this machine (torch {torch.__version__}, {build}): the GPU check measured nothing. Run "
            "`python bench/gpu_check.py` on a machine with an NVIDIA GPU and its driver.")


def suggest_limit(rates: dict[int, float], within: float = 0.95) -> int:
    """The job limit to use: the fewest concurrent runs whose throughput reaches `within` of the best.

    Args:
        rates: Runs at once -> runs (or races) per minute.
        within: The share of the best throughput that is good enough.

    Raises:
        ValueError: If no rate was measured.
    """
    if not rates:
        raise ValueError("No throughput was measured.")
    best = max(rates.values())
    return min(k for k, r in rates.items() if r >= within * best)


def parse_pytest_summary(output: str) -> dict[str, int]:
    """The counts of pytest's last summary line ("3 failed, 530 passed, 4 skipped in 80.1s"), by outcome."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    lines = [line for line in output.splitlines() if re.search(r"\b(passed|failed|error|errors|skipped)\b", line)]
    if not lines:
        return counts
    for n, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", lines[-1]):
        counts["errors" if word.startswith("error") else word] += int(n)
    return counts


# ---- the checks (CUDA only) ----------------------------------------------------------------------------------
def device_info() -> list[dict]:
    import torch

    props = torch.cuda.get_device_properties(0)
    return [_figure("gpu_device", torch.cuda.device_count(), "gpus", name=props.name,
                    memory_gb=round(props.total_memory / 2**30, 1), capability=f"{props.major}.{props.minor}",
                    bf16=torch.cuda.is_bf16_supported(), torch=torch.__version__, cuda=torch.version.cuda)]


def _images_per_s(amp: bool, batch: int, steps: int, warmup: int = 5) -> float:
    """Training throughput of a random-weight resnet18 at 224 px: AMP + channels-last, or plain fp32."""
    import torch
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(weights=None, num_classes=10).cuda()
    x = torch.randn(batch, 3, 224, 224, device="cuda")  # (B, 3, 224, 224)
    y = torch.randint(0, 10, (batch,), device="cuda")
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and dtype == torch.float16)

    def step() -> None:
        with torch.autocast("cuda", dtype=dtype, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def amp_speedup(quick: bool) -> list[dict]:
    batch, steps = 128, (10 if quick else 40)
    fp32 = _images_per_s(False, batch, steps)
    amp = _images_per_s(True, batch, steps)
    return [_figure("gpu_amp_speedup", amp / fp32, "ratio", goal="> 1", amp_channels_last_img_s=round(amp, 1),
                    fp32_img_s=round(fp32, 1), batch=batch, steps=steps, image_px=224, model="resnet18")]


def _default_race(seed: int):
    from tl_core.data.datasets import DataSpec
    from tl_core.experiments.race import race_lanes
    from tl_core.jobs.work import RaceJob

    return RaceJob(tuple(race_lanes(seed=seed, device="cuda")), DataSpec(n_per_class=20, similarity=0.8, seed=seed))


def race_wall(quick: bool) -> list[dict]:
    from tl_core.jobs.manager import JobContext
    from tl_core.training.records import RecordBuffer

    walls = []
    for seed in (0, 0, 1) if not quick else (0, 0):  # the first is the warm-up (CUDA context, kernels, the model)
        t0 = time.perf_counter()
        outcome = _default_race(seed)(JobContext(RecordBuffer(), threading.Event()))
        walls.append(time.perf_counter() - t0)
        bad = [k for k, r in outcome.results.items() if not r.ok or r.device == "cpu"]
        if bad:
            raise RuntimeError(f"lanes {bad} did not finish on the GPU")
    measured = walls[1:]
    return [_figure("gpu_race_wall_s", statistics.median(measured), "s", goal="reported", cold_s=round(walls[0], 2),
                    each_s=[round(w, 2) for w in measured])]


def concurrent_jobs(quick: bool) -> list[dict]:
    from tl_core.jobs.manager import DONE, JobManager, LocalExecutor

    races = 4 if quick else 8
    rates: dict[int, float] = {}
    seed = 100
    for k in CONCURRENCY:
        mgr = JobManager(limit=k, executor=LocalExecutor())
        t0 = time.perf_counter()
        jobs = [mgr.submit(_default_race(seed + i), owner=f"gpu-{k}-{i}", label=f"race:{k}:{i}") for i in range(races)]
        if not mgr.wait_idle(timeout=1800):
            raise TimeoutError(f"{races} races with {k} at once did not end in 30 minutes")
        bad = [j.error or j.state for j in jobs if j.state != DONE]
        if bad:
            raise RuntimeError(f"with {k} at once: {bad[:3]}")
        rates[k] = 60 * races / (time.perf_counter() - t0)
        seed += races
    limit = suggest_limit(rates)
    return [_figure("gpu_concurrent_jobs_throughput", rates[limit], "races/min", suggested_limit=limit,
                    races_per_min={str(k): round(r, 2) for k, r in rates.items()}, races_each=races,
                    meaning="default races per minute on one GPU with 1, 2 and 4 runs at once; suggested_limit is "
                            "the fewest runs at once within 5% of the best (set TLP_MAX_CONCURRENT_JOBS to it, or "
                            "make it tl_core.jobs.manager.default_limit's value on a GPU)")]


def oom_recovered(quick: bool) -> list[dict]:
    """Cap this process's GPU memory just above what half the batch needs; the full batch must halve and finish."""
    import torch

    from tl_core.data.datasets import TensorData
    from tl_core.training.plan import make_plan
    from tl_core.training.trainer import train

    batch, n = 128, 256
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 224, 224, generator=gen)  # (N, 3, 224, 224)
    y = torch.randint(0, 4, (n,), generator=gen)
    tr = TensorData(x, y, ("a", "b", "c", "d"))
    va = TensorData(x[:32].clone(), y[:32].clone(), tr.classes)

    def plan(b: int):
        return make_plan("scratch", arch="resnet18", epochs=1, batch_size=b, min_steps=2 if quick else 4,
                         device="cuda", seed=0)

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    half = train(plan(batch // 2), tr, va, keep_weights=False)
    if not half.ok:
        raise RuntimeError(f"the half batch did not train: {half.reason}")
    need_half = torch.cuda.max_memory_allocated()
    total = torch.cuda.get_device_properties(0).total_memory
    cap = min(0.99, 1.3 * need_half / total)
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(cap, 0)
    try:
        res = train(plan(batch), tr, va, keep_weights=False)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, 0)
        torch.cuda.empty_cache()
    halved = any("halved" in e.message for e in res.events)
    return [_figure("gpu_oom_recovered", int(res.ok and halved), "bool", goal="1", status=res.status,
                    halved=halved, batch=batch, cap_gb=round(cap * total / 2**30, 2),
                    half_batch_peak_gb=round(need_half / 2**30, 2), events=[e.message for e in res.events][-3:])]


def test_suite(_quick: bool) -> list[dict]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                          capture_output=True, text=True, timeout=SUITE_TIMEOUT_S)
    counts = parse_pytest_summary(proc.stdout)
    failures = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return [_figure("gpu_test_suite", counts["failed"] + counts["errors"], "failures", goal="0", **counts,
                    exit_code=proc.returncode, wall_s=round(time.perf_counter() - t0, 1), failing=failures[:20])]


CHECKS: list[tuple[str, Callable[[bool], list[dict]]]] = [
    ("gpu_amp_speedup", amp_speedup), ("gpu_race_wall_s", race_wall),
    ("gpu_concurrent_jobs_throughput", concurrent_jobs), ("gpu_oom_recovered", oom_recovered),
]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-suite", action="store_true", help="do not run the test suite")
    ap.add_argument("--quick", action="store_true", help="fewer steps and races (a first look)")
    args = ap.parse_args(argv)
    reason = no_cuda_message()
    if reason is not None:
        print(json.dumps(_figure("gpu_check", 0, "skipped", reason=reason)), flush=True)
        print(reason, file=sys.stderr)
        return 0
    checks = [("gpu_device", lambda _q: device_info()), *CHECKS]
    if not args.skip_suite:
        checks.append(("gpu_test_suite", test_suite))
    failed = 0
    for name, check in checks:
        try:
            records = check(args.quick)
        except Exception as e:  # noqa: BLE001 - report it and go on with the other checks
            traceback.print_exc()
            records = [_figure(f"{name}_error", 1, "error", error=f"{type(e).__name__}: {e}"[:500])]
            failed += 1
        for record in records:
            print(json.dumps(record), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
