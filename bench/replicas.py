"""Replicas behind HAProxy, measured: deploy/cluster.py with 2 Streamlit replicas and a 2-CPU Ray head on loopback,
and N real Chromium sessions (default 4) racing through the balancer at once.

- replicas_browsers_errors: sessions whose race did not reach its results, or whose page showed an exception.
- replicas_sticky_violations: sessions whose requests (page, scripts, health pings, the WebSocket) reached more than
  one replica between the first request and the result, from HAProxy's log (each session has its own User-Agent).
- replicas_click_to_results_s: the slowest session's wait from Start to its results, with the median and the
  sessions per replica beside it.

Needs Debian's chromium and haproxy, and Ray. Run `python bench/replicas.py [--browsers 4] [--replicas 2]`; each figure
prints as one JSON line. `run()` returns the same records.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _cluster import race_in_browsers, sticky_violations  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from deploy.cluster import Cluster, ClusterConfig  # noqa: E402


def _rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def run(browsers: int = 4, replicas: int = 2, ray_cpus: int = 2) -> list[dict]:
    from playwright.sync_api import sync_playwright

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tlp-replicas-") as logs, \
            Cluster(ClusterConfig(replicas=replicas, port=0, ray_cpus=ray_cpus, log_dir=Path(logs))) as cluster, \
            sync_playwright() as pw:
        started_s = time.monotonic() - t0
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            learners = race_in_browsers(browser, cluster.url, browsers)
            split = Counter(learner.replica() for learner in learners)
            for learner in learners:
                learner.context.close()
        finally:
            browser.close()
        routes = cluster.routes()
        drivers = cluster.ray_drivers()
        rss = {r.name: _rss_mb(r.proc.pid) for r in cluster.replicas}
        on_ray = sum(r.proc.pid in drivers for r in cluster.replicas)
    errors = [f"learner {x.index}: {x.error}" for x in learners if x.error]
    violations = sticky_violations(routes, learners)
    times = [x.click_to_results_s for x in learners if x.click_to_results_s is not None]
    common = dict(browsers=browsers, replicas=replicas, ray_cpus=ray_cpus)
    out = [
        {"figure": "replicas_browsers_errors", "value": len(errors), "unit": "sessions", "goal": "0",
         "errors": errors[:5], "sessions_per_replica": dict(split), "replicas_on_ray": on_ray,
         "replica_rss_mb": rss, **common},
        {"figure": "replicas_sticky_violations", "value": len(violations), "unit": "sessions", "goal": "0",
         "violations": violations[:5], "requests_checked": sum(len(routes.get(x.user_agent, [])) for x in learners),
         **common},
    ]
    if times:
        out.append({"figure": "replicas_click_to_results_s", "value": round(max(times), 2), "unit": "s",
                    "median_s": round(statistics.median(times), 2), "each_s": [round(t, 1) for t in times],
                    "cluster_start_s": round(started_s, 1),
                    "meaning": "from clicking Start to the race's results, every session racing at once through the "
                               "balancer, runs on the Ray head", **common})
    return out


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--browsers", type=int, default=4)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--ray-cpus", type=int, default=2)
    args = ap.parse_args(argv)
    for record in run(args.browsers, args.replicas, args.ray_cpus):
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
