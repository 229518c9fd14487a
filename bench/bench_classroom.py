"""Classroom benchmark for bench/run_all.py: a reduced classroom (6 students) and the memory of idle sessions.

The full load test (30 students on one class link, then 30 with their own seeds, a real server, real browsers and
the class poll) takes several minutes on two cores, so it lives in `python bench/classroom.py`; its figures are named
classroom_30_link_*, classroom_30_distinct_*, idle_session_mb and classroom_browsers_*. Here the same code runs 6
simulated students in this process through both scenarios (classroom_6_link_*, classroom_6_distinct_*), plus a note
naming the full test.
Run `python bench/bench_classroom.py`; each figure prints as one JSON line. `run()` returns the same records.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from classroom import classroom_figures, idle_sessions_apptest  # noqa: E402

STUDENTS = 6  # enough for a queue (the limit is the cores) at a sixth of the full test's time


def run() -> list[dict]:
    return [idle_sessions_apptest(), *classroom_figures(STUDENTS, window_s=3.0),
            {"figure": "classroom_full_test", "value": 30, "unit": "students",
             "note": "the full classroom load test (30 students on one link and 30 with their own seeds, a real "
                     "server, idle tabs, and the class poll in 3 real browsers) is `python bench/classroom.py`; it "
                     "takes several minutes on two cores"}]


if __name__ == "__main__":
    for record in run():
        print(json.dumps(record), flush=True)
