"""Benchmark: seconds to summarise the architectures on the meta device from a cold cache, and to run the residual demo.

Run `python bench/bench_arch.py` from the repository root; it prints one JSON line per record. `run()` returns the
same records for bench/run_all.py. Imports (torch, torchvision) are warmed up first and not counted; each timed
run clears the summary cache, so every architecture is built and traced again.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tl_core.models.demos import gradient_flow  # noqa: E402
from tl_core.models.summary import summarize  # noqa: E402
from tl_core.models.registry import ARCHS  # noqa: E402


def _cold(archs: list[str]) -> float:
    """Seconds to summarise `archs` with an empty cache."""
    summarize.cache_clear()
    start = time.perf_counter()
    for arch in archs:
        summarize(arch)
    return time.perf_counter() - start


def _residual_demo(depth: int) -> float:
    """Seconds for the residual toggle's two backward passes (with and without skips)."""
    start = time.perf_counter()
    gradient_flow(depth, skip=True)
    gradient_flow(depth, skip=False)
    return time.perf_counter() - start


def run(repeats: int = 3) -> list[dict]:
    """Time the summaries and the residual demo.

    Args:
        repeats: Timed runs after one warm-up; the median is reported.

    Returns:
        Records {"figure", "value", "unit"}: arch_summary_all_s (every registered architecture: the five families'
        variants, shapesnet and mobilenet_v3_small; goal < 5 s on 2 cores), arch_summary_vgg16_s (goal < 1 s) and
        arch_residual_demo_s (depth 40, both variants).
    """
    archs = list(ARCHS)
    _cold(["shapesnet", "resnet18"])  # warm-up: imports and first-call allocations
    _residual_demo(5)
    all_s = statistics.median(_cold(archs) for _ in range(repeats))
    vgg_s = statistics.median(_cold(["vgg16"]) for _ in range(repeats))
    demo_s = statistics.median(_residual_demo(40) for _ in range(repeats))
    return [
        {"figure": "arch_summary_all_s", "value": round(all_s, 3), "unit": "s", "archs": len(archs)},
        {"figure": "arch_summary_vgg16_s", "value": round(vgg_s, 4), "unit": "s"},
        {"figure": "arch_residual_demo_s", "value": round(demo_s, 4), "unit": "s"},
    ]


if __name__ == "__main__":
    for record in run():
        print(json.dumps(record))
