"""Start the app as N Streamlit replicas behind HAProxy, with every run on a Ray head: all on this machine's loopback.

    python deploy/cluster.py --replicas 2 --port 8500 [--ray-cpus 2] [--no-ray]

opens http://127.0.0.1:8500 (HAProxy, deploy/haproxy.cfg: sticky cookie, WebSockets, health checks) in front of
replicas on 127.0.0.1:8501, 8502, ..., each a `streamlit run app.py` whose job manager sends its runs to the Ray head
(TLP_RAY_ADDRESS; tl_core.jobs.ray_executor). It runs until Ctrl-C, then stops everything it started. Logs go to a
fresh folder under /tmp (printed at the start). Tests and benchmarks use `Cluster` as a context manager.

Ray's head asks for token authentication (RAY_AUTH_MODE=token) with a fresh random token per start, handed to the
replicas in their environment. Ray itself listens on the host's address on all interfaces (Ray 2.60 names a loopback
node by the host's address), so the token is what keeps other machines out: see docs/SCALING.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
START_S = 180  # a cold replica start on two busy cores (torch-free first page, but imports take a while)
LOG_LINE = re.compile(r"\] (?P<backend>\S+)/(?P<server>\S+) (?P<status>-?\d+) .*\{(?P<ua>[^}]*)\}$")


@dataclass
class ClusterConfig:
    """What to start."""

    replicas: int = 2  # Streamlit processes behind the balancer
    port: int = 8500  # the balancer's port (0: a free one)
    replica_ports: tuple[int, ...] = ()  # one per replica (empty: port + 1, port + 2, ...; or free ones if port is 0)
    ray: bool = True  # start a Ray head and run every job on it; False: each replica trains in its own process
    ray_cpus: int = 2  # CPUs the Ray head offers (one run per CPU by default)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the replicas
    log_dir: Path | None = None  # where the logs go (default: a new folder under /tmp)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether a GET of `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Replica:
    """One Streamlit process."""

    name: str  # its server name in HAProxy and the value of the TLP_REPLICA cookie, e.g. "r1"
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Cluster:
    """The running deployment: `with Cluster(ClusterConfig(...)) as c:` starts it and always stops it."""

    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig()
        if self.config.replicas < 1:
            raise ValueError(f"Start at least one replica; got {self.config.replicas}.")
        if not Path(HAPROXY).exists():
            raise FileNotFoundError(f"{HAPROXY} is missing: install Debian's haproxy (apt-get install haproxy).")
        self.log_dir = Path(self.config.log_dir or tempfile.mkdtemp(prefix="tlp-cluster-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.config.port or free_port()
        self.replicas: list[Replica] = []
        self.haproxy: subprocess.Popen | None = None
        self.ray_head: subprocess.Popen | None = None
        self.ray_address: str | None = None
        self.ray_env: dict[str, str] = {}
        self.ray_temp: Path | None = None  # the Ray head's session files (removed at stop)
        self._logs: list[IO] = []

    @property
    def url(self) -> str:
        """The balancer's address: what the learners open."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def haproxy_log(self) -> Path:
        return self.log_dir / "haproxy.log"

    # ---- starting ----
    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, args: list[str], log_name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_dir / log_name, "w")
        self._logs.append(log)
        return subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, start_new_session=True)

    def start(self) -> None:
        """Start the Ray head, the replicas and HAProxy, and wait until the balancer answers."""
        if self.config.ray:
            self._start_ray()
        ports = list(self.config.replica_ports)
        for i in range(self.config.replicas):
            port = ports[i] if i < len(ports) else (self.port + 1 + i if self.config.port else free_port())
            self._start_replica(f"r{i + 1}", port)
        deadline = time.monotonic() + START_S
        for r in self.replicas:
            while not http_ok(f"{r.url}/_stcore/health"):
                self._check_alive(r.proc, r.log)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replica {r.name} did not answer in {START_S} s:\n{self.tail(r.log)}")
                time.sleep(0.3)
        self._start_haproxy()
        while not http_ok(f"{self.url}/_stcore/health"):
            self._check_alive(self.haproxy, self.haproxy_log)
            if time.monotonic() > deadline:
                raise TimeoutError(f"HAProxy did not answer in {START_S} s:\n{self.tail(self.haproxy_log)}")
            time.sleep(0.2)

    def _start_ray(self) -> None:
        port = free_port()
        self.ray_address = f"127.0.0.1:{port}"
        self.ray_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        self.ray_temp = temp = Path(tempfile.mkdtemp(prefix="tlp-ray-"))
        ports = {f"--{name}": str(free_port()) for name in ("dashboard-port",
                                                             "dashboard-agent-listen-port", "metrics-export-port",
                                                             "runtime-env-agent-port")}
        args = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
                "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={self.config.ray_cpus}",
                "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}",
                *[f"{k}={v}" for k, v in ports.items()]]
        self.ray_head = self._spawn(args, "ray_head.log", self.ray_env)
        deadline = time.monotonic() + START_S
        while "Ray runtime started" not in (self.log_dir / "ray_head.log").read_text():
            self._check_alive(self.ray_head, self.log_dir / "ray_head.log")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Ray head did not start in {START_S} s")
            time.sleep(0.3)

    def _start_replica(self, name: str, port: int) -> None:
        env = {**self.config.env, **self.ray_env}
        if self.ray_address:
            env["TLP_RAY_ADDRESS"] = self.ray_address
        log = self.log_dir / f"{name}.log"
        proc = self._spawn([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                            "--server.port", str(port), "--server.headless", "true", "--server.fileWatcherType",
                            "none", "--browser.gatherUsageStats", "false"], log.name, env)
        self.replicas.append(Replica(name, port, proc, log))

    def _start_haproxy(self) -> None:
        lost = '"${TLP_DEPLOY_DIR}/errors/replica_lost.html"'
        cfg = (DEPLOY / "haproxy.cfg").read_text().rstrip() + "\n" + "".join(
            f'    http-request return status 503 content-type "text/html; charset=utf-8" file {lost} if '
            f'{{ req.cook(TLP_REPLICA) -m str {r.name} }} !{{ srv_is_up(replicas/{r.name}) }} '
            f'!{{ req.hdr(sec-fetch-mode) -m str navigate }}\n'
            f"    server {r.name} 127.0.0.1:{r.port} cookie {r.name}\n" for r in self.replicas)
        path = self.log_dir / "haproxy.cfg"
        path.write_text(cfg)
        env = {"TLP_LB_ADDR": "127.0.0.1", "TLP_LB_PORT": str(self.port), "TLP_DEPLOY_DIR": str(DEPLOY)}
        check = subprocess.run([HAPROXY, "-c", "-q", "-f", str(path)], env={**os.environ, **env}, capture_output=True,
                               text=True)
        if check.returncode != 0:
            raise RuntimeError(f"HAProxy refuses {path}:\n{check.stdout}{check.stderr}")
        self.haproxy = self._spawn([HAPROXY, "-db", "-f", str(path)], self.haproxy_log.name, env)

    @staticmethod
    def _check_alive(proc: subprocess.Popen | None, log: Path) -> None:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{Cluster.tail(log)}")

    @staticmethod
    def tail(log: Path, chars: int = 3000) -> str:
        return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"

    # ---- during a class ----
    def replica(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    def kill_replica(self, name: str) -> None:
        """Kill one replica outright (SIGKILL), as a crash would."""
        r = self.replica(name)
        r.proc.kill()
        r.proc.wait(timeout=30)

    def routes(self) -> dict[str, list[str]]:
        """User-Agent -> the replica of each request HAProxy passed on, in order (from its log)."""
        out: dict[str, list[str]] = defaultdict(list)
        for line in self.haproxy_log.read_text(errors="replace").splitlines():
            m = LOG_LINE.search(line)
            if m and m.group("backend") == "replicas":
                out[m.group("ua")].append(m.group("server"))
        return dict(out)

    # ---- stopping ----
    def stop(self) -> None:
        """Stop HAProxy, the replicas and the Ray head (each by its own process id), and close the logs."""
        procs = [self.haproxy, *[r.proc for r in self.replicas], self.ray_head]
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in procs:
            if proc is None:
                continue
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: the process and what it started
                proc.wait(timeout=30)
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self.ray_temp is not None:
            shutil.rmtree(self.ray_temp, ignore_errors=True)

    def ray_drivers(self) -> set[int]:
        """Process ids of the programs that have connected to the Ray head as drivers (the replicas that sent runs)."""
        if self.ray_temp is None:
            return set()
        logs = self.ray_temp.glob("session_*/logs/python-core-driver-*.log")
        return {int(p.stem.rsplit("_", 1)[1]) for p in logs if p.stem.rsplit("_", 1)[1].isdigit()}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicas", type=int, default=2, help="Streamlit replicas (default 2)")
    ap.add_argument("--port", type=int, default=8500, help="the balancer's port; replicas take the next ones")
    ap.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 1, help="CPUs the Ray head offers")
    ap.add_argument("--no-ray", action="store_true", help="train in each replica's process instead")
    args = ap.parse_args(argv)
    config = ClusterConfig(replicas=args.replicas, port=args.port, ray=not args.no_ray, ray_cpus=args.ray_cpus)
    with Cluster(config) as c:
        print(f"The app: {c.url}  (replicas: {', '.join(r.url for r in c.replicas)}; Ray head: "
              f"{c.ray_address or 'none'}; logs: {c.log_dir}). Ctrl-C stops everything.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                signal.pause()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main(sys.argv[1:]))
