"""Print every benchmark figure of the project as JSON lines: `python bench/run_all.py [name ...]`.

Each bench module exposes `run() -> list[dict]` of {"figure", "value", "unit", ...}. Figures are ratios
against a plain PyTorch reference measured in the same process, or wall-clock seconds; none is a test.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

MODULES = ["bench_shapes", "bench_engine", "bench_ui", "bench_arch", "bench_owndata", "bench_labs", "bench_classroom",
           "bench_startup", "bench_ray", "replicas"]


def main(argv: list[str]) -> int:
    wanted = argv or MODULES
    failed = 0
    for name in wanted:
        if not (HERE / f"{name}.py").exists():
            continue
        t0 = time.perf_counter()
        try:
            records = importlib.import_module(name).run()
        except Exception:  # noqa: BLE001 - report and go on with the other benches
            traceback.print_exc()
            print(json.dumps({"figure": f"{name}_error", "value": 1, "unit": "error"}), flush=True)
            failed += 1
            continue
        for rec in records:
            print(json.dumps(rec), flush=True)
        print(json.dumps({"figure": f"{name}_bench_wall_s", "value": round(time.perf_counter() - t0, 1),
                          "unit": "s"}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
