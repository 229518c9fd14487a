"""Replicas behind HAProxy: deploy/cluster.py starts 2 Streamlit replicas, HAProxy and a Ray head on loopback; real
Chromium sessions race through the balancer.

One deployment for the module (always stopped). The first test races in 4 sessions and checks, from HAProxy's log,
that each stayed on one replica from its first request to its result, that both replicas served, and that both sent
their runs to the Ray head. The second kills a replica mid-class. Skipped without Debian's chromium or haproxy,
unless TLP_REQUIRE_BROWSER=1 (as in CI).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from _cluster import (Learner, open_race, race_in_browsers, start, start_button, sticky_violations,  # noqa: E402
                      wait_results)
from deploy.cluster import HAPROXY, Cluster, ClusterConfig  # noqa: E402


# The second test's class link: plenty of images (its races take a while, so the kill lands mid-race) and a seed the
# first test did not race (the replicas keep finished races and share them with whoever starts the same one).
CLASS_LINK = "/race?preset=lots_similar&seed=5"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not Path(HAPROXY).exists() or shutil.which("ray", path=str(Path(sys.executable).parent)) is None:
        message = f"{HAPROXY} or Ray's `ray` command is missing: apt-get install haproxy; pip install ray."
        if os.environ.get("TLP_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with Cluster(ClusterConfig(replicas=2, port=0, ray_cpus=2, log_dir=tmp_path_factory.mktemp("cluster"))) as c:
        yield c


@pytest.fixture()
def browser(chromium: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(**chromium)
        try:
            yield b
        finally:
            b.close()


def test_four_sessions_race_through_the_balancer_each_on_one_replica(cluster: Cluster, browser: Any) -> None:
    learners = race_in_browsers(browser, cluster.url, 4)
    replicas = {learner.index: learner.replica() for learner in learners}
    for learner in learners:
        learner.context.close()
    assert [learner.error for learner in learners] == [None] * 4
    assert all(learner.click_to_results_s > 0 for learner in learners)
    routes = cluster.routes()
    assert sticky_violations(routes, learners) == []
    for learner in learners:  # the cookie names the replica that served every request, the WebSocket included
        assert set(routes[learner.user_agent]) == {replicas[learner.index]}
        assert len(routes[learner.user_agent]) >= 5
    assert sorted(replicas.values()) == ["r1", "r1", "r2", "r2"]  # new sessions take the replicas in turn
    assert {r.proc.pid for r in cluster.replicas} <= cluster.ray_drivers()  # both replicas trained on the Ray head


def test_a_replica_killed_mid_class_spares_the_other_and_its_learners_reconnect(cluster: Cluster,
                                                                                 browser: Any) -> None:
    from playwright.sync_api import expect

    learners = [open_race(browser, cluster.url, 10 + i, CLASS_LINK) for i in range(4)]
    by_replica: dict[str, list[Learner]] = {}
    for learner in learners:
        by_replica.setdefault(learner.replica(), []).append(learner)
    assert sorted(by_replica) == ["r1", "r2"], by_replica
    for learner in learners:
        start(learner)
    # r2's race is under way (its learners share one run: same link, same seed), then the replica dies
    expect(by_replica["r2"][0].page.get_by_text(re.compile(r"Lane \d+ of \d+"))).to_be_visible(timeout=120_000)
    cluster.kill_replica("r2")
    for learner in by_replica["r2"]:
        expect(learner.page.get_by_text("Connection error")).to_be_visible(timeout=60_000)
    for learner in by_replica["r1"]:
        wait_results(learner)
        assert learner.error is None, learner.error
    for learner in by_replica["r2"]:  # a reload: a fresh session on the replica that is up
        learner.page.reload()
        expect(start_button(learner.page)).to_be_visible(timeout=120_000)
        assert learner.replica() == "r1"
        assert not learner.page.locator('[data-testid="stException"]').count()
        assert cluster.routes()[learner.user_agent][-1] == "r1"
    for learner in learners:
        learner.context.close()
