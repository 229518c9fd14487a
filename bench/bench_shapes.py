"""Benchmark: seconds to generate 10,000 shapes-world images (6,000 source + 4,000 shifted target shapes).

Run `python bench/bench_shapes.py` from the repository root; it prints one JSON line per record. `run()` returns the
same records for bench/run_all.py.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tl_core.data.shapes import WorldSpec, generate  # noqa: E402


def _generate_10k(seed: int) -> float:
    """Seconds for one batch of 10,000 images: 6 source classes x 1000 plus 4 target classes x 1000 at shift 0.5."""
    start = time.perf_counter()
    generate(WorldSpec("source"), 1000, seed=seed)
    generate(WorldSpec("shapes", 0.5), 1000, seed=seed)
    return time.perf_counter() - start


def run(repeats: int = 3) -> list[dict]:
    """Time the generation of 10,000 images.

    Args:
        repeats: Timed runs after one small warm-up; the median is reported.

    Returns:
        [{"figure": "shapes_10k_gen_s", "value": seconds, "unit": "s"}].
    """
    generate(WorldSpec("shapes", 0.5), 5)  # warm-up: imports, first-call allocations
    times = [_generate_10k(seed) for seed in range(repeats)]
    return [{"figure": "shapes_10k_gen_s", "value": round(statistics.median(times), 3), "unit": "s"}]


if __name__ == "__main__":
    for record in run():
        print(json.dumps(record))
