#!/usr/bin/env python3
"""The deploy gate's benchmark: how fast a release that cannot boot is rolled back, and how soon
after its soak a good one is promoted; supervisord doing the same "deploy" in the same run.

    .venv/bin/python bench/gate.py [--crash-runs 10] [--good-runs 5] [--peer-runs 3]
                                   [--base-port P] [--results-dir DIR]

A real agent (`infraveil up -d`) supervises one service, `api`: `payload = true`,
`command = "./serve.sh"`, a `port` (so a TCP readiness check is implied), `soak = "10s"` and
`watch = "60s"` (both the defaults, written out). Its releases are directories this benchmark
writes:

- `good`: serve.sh runs a Python program that listens on the port at once and answers every
  connection with its release's name and its pid (so a watcher can tell which instance answers);
- `slow`: the same program, which sleeps 2 s before it listens (a 2 s boot);
- `crash`: a Python program that exits 1 at once with a `KeyError` traceback.

`good` is deployed first (v1) and watched through, so that it is known-good. Then, over the API
(`POST /v1/services/api/deploy?payload=…` on the agent's Unix socket: no CLI start-up in the
figures), each time from just before the request is sent:

1. `crash`, --crash-runs times: until the verdict row, and until a new instance of the
   known-good release answers on the port (a TCP connection every 10 ms). Target (the issue):
   ≤ 3 s median. Once more through the real CLI (`infraveil deploy`), for its overhead.
2. `slow`, --good-runs times: until the `promote` row. Target: promote − 2 s boot − soak
   ≤ 0.5 s median.

The peer, in the same run, is supervisord 4 (from PyPI; the bench extra). It has no gate: the
same "deploy" is to point the program's directory (a symlink) at the crash release and run
`supervisorctl restart api`, with its defaults (startsecs=1, startretries=3). Measured, --peer-runs
times: when supervisorctl returns, when the port closes, when the program is FATAL (from
supervisord's own log, so the benchmark's polling does not wake its loop), and whether anything
answers on the port 5 s after FATAL. Kamal and Kubernetes are quoted from their documentation,
not run.

Prints a summary and writes bench/results/YYYY-MM-DD-gate-<hostname>.md. Exit status: 0 every
target met, 1 a target missed, 2 the benchmark could not run (the report says why), 130
interrupted. Everything it starts is stopped on every path out (the agent with `infraveil down`,
supervisord over XML-RPC, leftovers found by an environment tag and killed) and its temp dir
removed. Every wait has a deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import importlib.metadata
import json
import math
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness import (
    INFRAVEIL,
    TAG_VAR,
    BenchError,
    add_end_loadavg,
    add_results_dir,
    agent_get,
    agent_pid,
    command_line,
    format_table,
    infraveil_cli_version,
    infraveil_down,
    infraveil_up_detached,
    interrupt_on_sigterm,
    kill_child,
    kill_tagged,
    log,
    machine_info,
    machine_section,
    process_alive,
    shown_path,
    wait_for,
)
from health import host_cpu, pick_ports
from run import SUPERVISORCTL, SUPERVISORD, UnixXMLRPCTransport, percentile

from infraveil.api.client import UnixHTTPConnection

SERVICE = "api"
BOOT = 2.0  # the slow release sleeps this long before it listens
SOAK = 10.0  # the manifest's default, written out in the benchmark's manifest
WATCH = 60.0  # likewise
PORT_POLL = 0.01  # seconds between two connections of the port watcher
PEER_LOOK = 5.0  # how long after FATAL the benchmark looks for anything serving
PEER_FATAL_LIMIT = 120.0  # supervisord may take this long to give up (or never: see the report)
CRASH_TARGET = 3.0
PROMOTE_OVERHEAD_TARGET = 0.5
LISTEN_LOG_VAR = "GATEBENCH_LISTEN_LOG"
"""Where each release's server appends `<time.monotonic()> <release> <pid>` once it listens
(set in the supervisors' environment; their services inherit it). Linux's monotonic clock is
the same in every process, so the benchmark knows when the boot ended, not only when the
agent saw it."""

DEFAULTS = {"crash_runs": 10, "good_runs": 5, "peer_runs": 3}

# What the benchmark does not run, as the projects document it.
STATED_PEERS = [
    (
        "Kamal 2",
        "polls the new container's health check until `deploy_timeout` (30 s by default), "
        "then gives up; a container that exits at once is polled for those 30 s",
    ),
    (
        "Kubernetes (Deployment)",
        "never rolls back on its own: a rollout that makes no progress is marked failed after "
        "`progressDeadlineSeconds` (600 s by default); `kubectl rollout undo` is a person's act",
    ),
]


# ── the releases ─────────────────────────────────────────────────────────────────────────────

SERVER = '''\
"""A release of the benchmark's service: after DELAY seconds, listen on PORT and answer every
connection with "NAME PID"."""
import os
import socket
import sys
import time

name, port, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
time.sleep(delay)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(64)
listen_log = os.environ.get("GATEBENCH_LISTEN_LOG")
if listen_log:
    with open(listen_log, "a") as f:
        f.write(f"{time.monotonic():.6f} {name} {os.getpid()}\\n")
banner = f"{name} {os.getpid()}\\n".encode()
while True:
    conn, _ = server.accept()
    try:
        conn.sendall(banner)
    except OSError:
        pass  # a TCP check closes as soon as it is connected
    conn.close()
'''

CRASH = '''\
"""A release that cannot boot: its settings need a variable nobody set."""
import os

DATABASE_URL = os.environ["DATABASE_URL"]
'''


def write_releases(root: Path, port: int) -> dict[str, Path]:
    """The three payload directories, each with an executable serve.sh and its app.py."""
    python = shlex.quote(sys.executable)
    releases = {
        "good": (SERVER, f"good {port} 0"),
        "slow": (SERVER, f"slow {port} {BOOT:g}"),
        "crash": (CRASH, ""),
    }
    paths = {}
    for name, (program, args) in releases.items():
        directory = root / name
        directory.mkdir(parents=True)
        (directory / "app.py").write_text(program)
        serve = directory / "serve.sh"
        serve.write_text(f"#!/bin/sh\nexec {python} app.py {args}\n".replace(" \n", "\n"))
        serve.chmod(0o755)
        paths[name] = directory
    return paths


def manifest_text(port: int) -> str:
    return (
        f"[services.{SERVICE}]\n"
        "payload = true\n"
        'command = "./serve.sh"\n'
        f"port = {port}\n"
        f'soak = "{SOAK:g}s"\n'
        f'watch = "{WATCH:g}s"\n'
    )


# ── who answers on the port ──────────────────────────────────────────────────────────────────


def answer(port: int, timeout: float = 0.5) -> tuple[str, int] | None:
    """(release, pid) of the instance answering on `port`; None when nothing does."""
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            while not data.endswith(b"\n"):
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    name, _, pid = data.decode(errors="replace").strip().partition(" ")
    return (name, int(pid)) if pid.isdigit() else None


def wait_answer(port: int, releases: set[str], timeout: float = 30) -> tuple[str, int]:
    """Wait until an instance of one of `releases` answers on `port`; (release, pid)."""
    seen: list[tuple[str, int]] = []

    def answered() -> bool:
        who = answer(port)
        if who is not None and who[0] in releases:
            seen.append(who)
            return True
        return False

    wait_for(f"{'/'.join(sorted(releases))} to answer on port {port}", answered, timeout, 0.05)
    return seen[-1]


class PortWatch:
    """Connects to the port every 10 ms from its start, in a thread: when the instance that was
    serving stopped answering, and when a new instance (pid other than `old_pid`) of release
    `want` first answered. `limit` bounds it."""

    def __init__(self, port: int, want: str, old_pid: int, limit: float) -> None:
        self.port = port
        self.want = want
        self.old_pid = old_pid
        self.limit = limit
        self.closed_at: float | None = None
        self.answered_at: float | None = None
        self.answered_by: tuple[str, int] | None = None
        self.others: set[tuple[str, int]] = set()
        """Anything else that answered after the old instance stopped."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="port-watch", daemon=True)

    def __enter__(self) -> PortWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            who = answer(self.port)
            now = time.monotonic()
            if who is None:
                if self.closed_at is None:
                    self.closed_at = now
            elif who[0] == self.want and who[1] != self.old_pid:
                self.answered_at, self.answered_by = now, who
                return
            elif who[1] != self.old_pid:
                self.others.add(who)
            self._stop.wait(PORT_POLL)

    def wait_answered(self, timeout: float) -> float | None:
        """The monotonic time the new instance first answered (None: not within `timeout`)."""
        self._thread.join(timeout)
        return self.answered_at


def listened(listen_log: Path, release: str, after: float) -> tuple[float, int] | None:
    """(monotonic time, pid) of the first instance of `release` that listened after `after`."""
    with contextlib.suppress(OSError):
        for line in listen_log.read_text().splitlines():
            at, name, pid = line.split()
            if name == release and float(at) > after:
                return float(at), int(pid)
    return None


# ── the agent and its deploys ────────────────────────────────────────────────────────────────


@dataclass
class Deploy:
    """One deploy's rows as they arrived: `t0` is just before the request was sent."""

    t0: float
    rows: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    """(seconds since t0 when the row arrived, the row)."""

    @property
    def verdict(self) -> dict[str, Any]:
        for _, row in self.rows:
            if row.get("type") == "verdict":
                return row
        raise BenchError(f"no verdict row: {self.rows}")

    @property
    def verdict_at(self) -> float:
        return next(at for at, row in self.rows if row.get("type") == "verdict")

    def step_at(self, step: str) -> float | None:
        """When the first row of `step` arrived (seconds since t0)."""
        return next((at for at, row in self.rows if row.get("step") == step), None)

    def steps(self) -> list[dict[str, Any]]:
        return [
            {"at": at, "elapsed": row["elapsed"], "step": row["step"], "message": row["message"]}
            for at, row in self.rows
            if row.get("type") == "step"
        ]


class Agent:
    """infraveil's agent with the one payload service, in `workdir`."""

    def __init__(self, workdir: Path, port: int, env: dict[str, str], tag: str) -> None:
        self.workdir = workdir
        self.state_dir = workdir / "state"
        self.manifest = workdir / "infraveil.toml"
        self.manifest.write_text(manifest_text(port))
        self.env = env
        self.tag = tag
        self.launcher: subprocess.Popen[bytes] | None = None
        self.log_tail = ""

    def start(self) -> None:
        self.launcher = infraveil_up_detached(
            self.manifest, self.state_dir, self.workdir / "up.out", self.env
        )
        try:
            code = self.launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise BenchError("`infraveil up -d` still running after 60s") from None
        if code != 0:
            out = (self.workdir / "up.out").read_text(errors="replace")[-2000:]
            raise BenchError(f"`infraveil up -d` exited {code}: {out}")

    def get(self, target: str) -> Any:
        return json.loads(agent_get(self.state_dir, target, timeout=10))

    def service(self) -> dict[str, Any]:
        rows = self.get("/v1/status")["services"]
        return next(r for r in rows if r["name"] == SERVICE)

    def releases(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/services/{SERVICE}/releases")
        return result

    def deploy(self, payload: Path) -> Deploy:
        """A deploy over the API, its rows read as they arrive, up to the verdict."""
        conn = UnixHTTPConnection(str(self.state_dir / "agent.sock"), timeout=120)
        target = f"/v1/services/{SERVICE}/deploy?payload={quote(str(payload), safe='/')}"
        try:
            d = Deploy(time.monotonic())
            conn.request("POST", target)
            response = conn.getresponse()
            if response.status != 200:
                raise BenchError(f"POST {target}: HTTP {response.status}: {response.read()!r}")
            while line := response.readline():
                d.rows.append((time.monotonic() - d.t0, json.loads(line)))
                if d.rows[-1][1].get("type") == "verdict":
                    break
        finally:
            conn.close()
        return d

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            row = self.service()
            return bool(row["state"] == "running" and row["ready"])

        wait_for(f"{SERVICE} running and ready", ready, timeout, 0.05)

    def alive(self) -> bool:
        pid = agent_pid(self.state_dir)
        return pid is not None and process_alive(pid)

    def cleanup(self) -> None:
        with contextlib.suppress(OSError):
            lines = (self.state_dir / "agent.log").read_text(errors="replace").splitlines()
            self.log_tail = "\n".join(lines[-40:])
        try:
            if self.alive():
                down = infraveil_down(self.state_dir, self.workdir / "down.out")
                try:
                    down.wait(timeout=60)
                    wait_for("the agent to exit", lambda: not self.alive(), 30, 0.1)
                except (subprocess.TimeoutExpired, BenchError) as e:
                    log(f"infraveil down failed ({e})")
                finally:
                    kill_child(down)
        finally:
            kill_child(self.launcher)
            pid = agent_pid(self.state_dir)
            if pid is not None and process_alive(pid):
                log("the agent is still there: killing it")
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


# ── the peer ─────────────────────────────────────────────────────────────────────────────────


class Supervisord:
    """supervisord 4 running `api` from `workdir/current`, a symlink to one release directory.

    The program section keeps supervisord's defaults (autostart, autorestart=unexpected,
    startsecs=1, startretries=3, stopsignal=TERM, stopwaitsecs=10); only where it runs and
    where its output goes are set.
    """

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.conf = workdir / "supervisord.conf"
        self.sock = workdir / "supervisor.sock"
        self.log_file = workdir / "supervisord.log"
        self.current = workdir / "current"
        self.launcher: subprocess.Popen[bytes] | None = None
        self.program = ""

    def write_config(self) -> None:
        self.program = "\n".join(
            [
                f"[program:{SERVICE}]",
                f"command={self.current}/serve.sh",
                f"directory={self.current}",
                "redirect_stderr=true",
                f"stdout_logfile={self.workdir}/{SERVICE}.log",
            ]
        )
        lines = [
            "[unix_http_server]",
            f"file={self.sock}",
            "chmod=0700",
            "",
            "[supervisord]",
            "nodaemon=true",
            f"logfile={self.log_file}",
            f"pidfile={self.workdir}/supervisord.pid",
            f"childlogdir={self.workdir}",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{self.sock}",
            "",
            self.program,
            "",
        ]
        self.conf.write_text("\n".join(lines))

    def point(self, release: Path) -> None:
        """Switch `current` to `release` at once (a new symlink renamed over the old one)."""
        tmp = self.workdir / "current.new"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(release)
        os.replace(tmp, self.current)

    def start(self, release: Path) -> None:
        self.point(release)
        self.write_config()
        with open(self.workdir / "supervisord.out", "wb") as out:
            self.launcher = subprocess.Popen(
                [SUPERVISORD, "-n", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # a Ctrl-C at the terminal is ours to handle
            )

    def ctl(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [SUPERVISORCTL, "-c", str(self.conf), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def rpc(self) -> Any:
        return xmlrpc.client.ServerProxy(
            "http://localhost", transport=UnixXMLRPCTransport(str(self.sock), timeout=10)
        )

    def state(self) -> str:
        return str(self.rpc().supervisor.getProcessInfo(SERVICE)["statename"])

    def log_events(self, offset: int) -> list[tuple[float, str]]:
        """(wall time, message) of supervisord's log lines from byte `offset` on."""
        events = []
        with contextlib.suppress(OSError), open(self.log_file, "rb") as f:
            f.seek(offset)
            for raw in f.read().decode(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    # "2026-11-21 09:54:28,123 INFO spawned: 'api' with pid 42", local time
                    at = dt.datetime.strptime(raw[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    events.append((at, raw[24:].split(" ", 1)[1]))
        return events

    def log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    def cleanup(self) -> None:
        if self.launcher is None or self.launcher.poll() is not None:
            return
        try:
            self.rpc().supervisor.stopAllProcesses(True)
        except (OSError, http.client.HTTPException, xmlrpc.client.Error) as e:
            log(f"supervisord: stopping its processes failed ({e})")
        finally:
            kill_child(self.launcher)


# ── the run ──────────────────────────────────────────────────────────────────────────────────


@dataclass
class Params:
    crash_runs: int
    good_runs: int
    peer_runs: int
    base_port: int


@dataclass
class Outcome:
    params: Params
    figures: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    interrupted: bool = False
    agent_log_tail: str = ""


def run(p: Params, out: Outcome) -> None:
    """The benchmark; fills `out.figures` as it goes, so a failure keeps what it had."""
    f = out.figures
    workdir = Path(tempfile.mkdtemp(prefix="ivbench-gate-"))
    tag = f"{os.getpid()}-gate"
    listen_log = workdir / "listen.log"
    env = {**os.environ, TAG_VAR: tag, LISTEN_LOG_VAR: str(listen_log)}
    agent: Agent | None = None
    peer: Supervisord | None = None
    try:
        port = pick_ports(1, p.base_port)[0]
        f["port"] = port
        releases = write_releases(workdir / "releases", port)
        (workdir / "infraveil").mkdir()
        agent = Agent(workdir / "infraveil", port, env, tag)
        f["manifest"] = manifest_text(port)
        log(f"infraveil: up -d (state in {agent.state_dir}), port {port}")
        agent.start()
        run_infraveil(p, f, agent, releases, listen_log)
        agent.cleanup()
        out.agent_log_tail = agent.log_tail
        agent = None
        kill_tagged(tag)

        (workdir / "supervisord").mkdir()
        peer = Supervisord(workdir / "supervisord", env)
        run_peer(p, f, peer, releases, port)
    finally:
        try:
            if agent is not None:
                agent.cleanup()
                out.agent_log_tail = agent.log_tail
            if peer is not None:
                peer.cleanup()
        finally:
            killed = kill_tagged(tag)
            if killed:
                log(f"killed {killed} leftover process(es)")
            shutil.rmtree(workdir, ignore_errors=True)


def run_infraveil(
    p: Params, f: dict[str, Any], agent: Agent, releases: dict[str, Path], listen_log: Path
) -> None:
    port = f["port"]
    host0 = host_cpu()

    log("v1: deploying the good release (no boot delay)")
    first = agent.deploy(releases["good"])
    if first.verdict.get("outcome") != "live":
        raise BenchError(f"the first deploy did not go live: {first.verdict.get('sentence')}")
    v1 = first.verdict["version"]
    f["baseline"] = {"version": v1, "promote_s": first.step_at("promote"), "steps": first.steps()}
    log(f"{v1} is live after {first.verdict_at:.2f}s; waiting out its {WATCH:g}s watch")
    wait_for(
        f"{v1} to be known-good",
        lambda: agent.releases().get("known_good") == v1,
        WATCH + 60,
        0.5,
    )

    crash: list[dict[str, Any]] = []
    f["crash"] = crash
    for i in range(p.crash_runs):
        agent.wait_ready()
        _, old_pid = wait_answer(port, {"good"})
        with PortWatch(port, "good", old_pid, limit=60) as watch:
            d = agent.deploy(releases["crash"])
            answered = watch.wait_answered(60)
        sample = crash_sample(d, watch, answered, listen_log)
        crash.append(sample)
        log(
            f"crash {i + 1}/{p.crash_runs}: {sample['outcome']},"
            f" verdict {sample['verdict_s']:.3f}s, known-good answers {sample['serving_s']:.3f}s"
        )

    log("crash once more, through the CLI: infraveil deploy")
    agent.wait_ready()
    _, old_pid = wait_answer(port, {"good"})
    argv = [INFRAVEIL, "deploy", SERVICE, "--payload", str(releases["crash"])]
    argv += ["--state-dir", str(agent.state_dir), "-o", "json"]
    with PortWatch(port, "good", old_pid, limit=60) as watch:
        t0 = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        cli_s = time.monotonic() - t0
        answered = watch.wait_answered(60)
    try:
        verdict = json.loads(proc.stdout)
    except ValueError:
        raise BenchError(
            f"`infraveil deploy` printed no JSON (exit {proc.returncode}): {proc.stderr}"
        ) from None
    f["cli"] = {
        "argv": shlex.join(["infraveil", *argv[1:]]),
        "exit": proc.returncode,
        "outcome": verdict.get("outcome"),
        "command_s": cli_s,
        "agent_elapsed_s": verdict.get("elapsed"),
        "serving_s": None if answered is None else answered - t0,
    }
    log(f"CLI: `infraveil deploy` took {cli_s:.3f}s (exit {proc.returncode})")

    good: list[dict[str, Any]] = []
    f["good"] = good
    for i in range(p.good_runs):
        agent.wait_ready()
        wait_answer(port, {"good", "slow"})
        d = agent.deploy(releases["slow"])
        sample = good_sample(d, listen_log)
        good.append(sample)
        log(
            f"slow {i + 1}/{p.good_runs}: {sample['outcome']}, promote {sample['promote_s']:.3f}s"
            f" (overhead {sample['overhead_s']:.3f}s)"
        )
    busy, total = (b - a for a, b in zip(host0, host_cpu(), strict=True))
    f["infraveil_host_cpu_pct"] = 100 * (os.cpu_count() or 1) * busy / total if total else math.nan


def crash_sample(
    d: Deploy, watch: PortWatch, answered: float | None, listen_log: Path
) -> dict[str, Any]:
    verdict = d.verdict
    if verdict.get("outcome") != "rolled_back":
        raise BenchError(f"expected a rollback, got {verdict.get('outcome')}: {verdict}")
    if answered is None:
        raise BenchError(f"the known-good did not answer on its port again: {verdict}")
    back = listened(listen_log, "good", d.t0)
    return {
        "version": verdict["version"],
        "outcome": verdict["outcome"],
        "verdict_s": d.verdict_at,
        "serving_s": answered - d.t0,
        "agent_elapsed_s": verdict["elapsed"],
        "port_closed_s": None if watch.closed_at is None else watch.closed_at - d.t0,
        "failed_s": d.step_at("failed"),
        "known_good_listening_s": None if back is None else back[0] - d.t0,
        "others": sorted(watch.others),
        "steps": d.steps(),
    }


def good_sample(d: Deploy, listen_log: Path) -> dict[str, Any]:
    verdict = d.verdict
    if verdict.get("outcome") != "live":
        raise BenchError(f"the slow release did not go live: {verdict}")
    promote = d.step_at("promote")
    healthy = d.step_at("healthy")
    if promote is None or healthy is None:
        raise BenchError(f"no healthy or promote row: {d.rows}")
    boot = listened(listen_log, "slow", d.t0)
    return {
        "version": verdict["version"],
        "outcome": verdict["outcome"],
        "promote_s": promote,
        "verdict_s": d.verdict_at,
        "overhead_s": promote - BOOT - SOAK,
        "listening_s": None if boot is None else boot[0] - d.t0,
        "healthy_s": healthy,
        "agent_elapsed_s": verdict["elapsed"],
        "steps": d.steps(),
    }


def run_peer(
    p: Params, f: dict[str, Any], peer: Supervisord, releases: dict[str, Path], port: int
) -> None:
    log("supervisord: starting it with the good release")
    peer.start(releases["good"])
    wait_answer(port, {"good"})
    f["peer_program"] = peer.program
    runs: list[dict[str, Any]] = []
    f["peer"] = runs
    for i in range(p.peer_runs):
        _, old_pid = wait_answer(port, {"good"})
        peer.point(releases["crash"])
        offset = peer.log_size()
        with PortWatch(port, "good", old_pid, PEER_FATAL_LIMIT + PEER_LOOK + 10) as watch:
            t0_wall = time.time()
            t0 = time.monotonic()
            ctl = peer.ctl("restart", SERVICE)
            try:
                fatal, ctl_returned = wait_fatal(peer, offset, ctl, t0, t0_wall)
                if fatal is None:
                    log(f"supervisord {i + 1}/{p.peer_runs}: not FATAL {PEER_FATAL_LIMIT:g}s on")
                else:
                    log(f"supervisord {i + 1}/{p.peer_runs}: FATAL {fatal:.2f}s after the restart")
                # what is measured now is that nothing happens: watch the port for PEER_LOOK s
                looked_from = PEER_FATAL_LIMIT if fatal is None else fatal
                time.sleep(max(0.0, t0_wall + looked_from + PEER_LOOK - time.time()))
                serving_after = answer(port)
                state_after = peer.state()
                ctl_out = ctl.communicate(timeout=30)[0].decode(errors="replace").strip()
            finally:
                kill_child(ctl)
        events = [(at - t0_wall, message) for at, message in peer.log_events(offset)]
        runs.append(
            {
                "fatal_s": fatal,
                "ctl_returned_s": ctl_returned,
                "ctl_exit": ctl.returncode,
                "ctl_output": ctl_out,
                "port_closed_s": None if watch.closed_at is None else watch.closed_at - t0,
                "known_good_answered_s": (
                    None if watch.answered_at is None else watch.answered_at - t0
                ),
                "answer_at_fatal_plus": None if serving_after is None else list(serving_after),
                "state_at_fatal_plus": state_after,
                "spawns": sum("spawned:" in m for _, m in events),
                "reported_running": sum("entered RUNNING state" in m for _, m in events),
                "events": [(round(at, 3), m) for at, m in events],
            }
        )
        log("supervisord: a person puts the good release back (not measured)")
        peer.point(releases["good"])
        start = peer.ctl("start", SERVICE)
        try:
            start.communicate(timeout=60)
        finally:
            kill_child(start)
        wait_answer(port, {"good"})


def wait_fatal(
    peer: Supervisord, offset: int, ctl: subprocess.Popen[bytes], t0: float, t0_wall: float
) -> tuple[float | None, float | None]:
    """(FATAL, supervisorctl returned), in seconds since t0, from supervisord's log lines after
    `offset`; FATAL is None if it did not come within PEER_FATAL_LIMIT seconds, and the other
    None if supervisorctl was still running when FATAL came."""
    returned: float | None = None
    while time.monotonic() < t0 + PEER_FATAL_LIMIT:
        if returned is None and ctl.poll() is not None:
            returned = time.monotonic() - t0
        for at, message in peer.log_events(offset):
            if "entered FATAL state" in message:
                return at - t0_wall, returned
        time.sleep(0.02)
    return None, returned


# ── verdicts and the report ──────────────────────────────────────────────────────────────────


def stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": statistics.median(values) if values else math.nan,
        "p90": percentile(values, 90),
        "min": min(values, default=math.nan),
        "max": max(values, default=math.nan),
    }


def secs(v: float | None) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:.3f} s"


@dataclass
class Line:
    figure: str
    values: list[float]
    target: str = "—"
    ok: bool | None = None

    def cells(self) -> list[str]:
        s = stats(self.values)
        verdict = "—" if self.ok is None else "met" if self.ok else "not met"
        return [
            self.figure,
            str(s["n"]),
            secs(s["median"]),
            secs(s["p90"]),
            secs(s["min"]),
            secs(s["max"]),
            self.target,
            verdict,
        ]


HEADER = ["figure", "n", "median", "p90", "min", "max", "target", "verdict"]


def summary(f: dict[str, Any]) -> list[Line]:
    lines: list[Line] = []
    crash = f.get("crash", [])
    if crash:
        verdict_s = [c["verdict_s"] for c in crash]
        serving_s = [c["serving_s"] for c in crash]
        lines += [
            Line(
                "crash release → verdict row (gate failed, rolled back), API",
                verdict_s,
                f"≤ {CRASH_TARGET:g} s median",
                statistics.median(verdict_s) <= CRASH_TARGET,
            ),
            Line(
                "crash release → known-good answers on its port again, API",
                serving_s,
                f"≤ {CRASH_TARGET:g} s median",
                statistics.median(serving_s) <= CRASH_TARGET,
            ),
            Line(
                "  the agent's own `elapsed` in the verdict", [c["agent_elapsed_s"] for c in crash]
            ),
            Line("  the second crash seen (`failed` row)", [c["failed_s"] for c in crash]),
        ]
    cli = f.get("cli")
    if cli:
        lines.append(
            Line("crash release through `infraveil deploy` (whole command)", [cli["command_s"]])
        )
        if cli["serving_s"] is not None:
            lines.append(Line("  known-good answers on its port again", [cli["serving_s"]]))
    good = f.get("good", [])
    if good:
        overhead = [g["overhead_s"] for g in good]
        lines += [
            Line(
                f"{BOOT:g} s-boot release → promote row, API",
                [g["promote_s"] for g in good],
                f"≤ {BOOT + SOAK + PROMOTE_OVERHEAD_TARGET:g} s median",
                statistics.median(g["promote_s"] for g in good)
                <= BOOT + SOAK + PROMOTE_OVERHEAD_TARGET,
            ),
            Line(
                f"  promote − {BOOT:g} s boot − {SOAK:g} s soak",
                overhead,
                f"≤ {PROMOTE_OVERHEAD_TARGET:g} s median",
                statistics.median(overhead) <= PROMOTE_OVERHEAD_TARGET,
            ),
        ]
        with_listen = [g for g in good if g["listening_s"] is not None]
        if with_listen:
            lines += [
                Line(
                    f"  boot: listening − {BOOT:g} s (verify, preflight, stop, spawn, Python)",
                    [g["listening_s"] - BOOT for g in with_listen],
                ),
                Line(
                    "  readiness seen: `healthy` row − listening",
                    [g["healthy_s"] - g["listening_s"] for g in with_listen],
                ),
            ]
        lines.append(
            Line(
                f"  soak: promote − `healthy` − {SOAK:g} s",
                [g["promote_s"] - g["healthy_s"] - SOAK for g in good],
            )
        )
    peer = f.get("peer", [])
    if peer:
        fatal = [r["fatal_s"] for r in peer if r["fatal_s"] is not None]
        lines += [
            Line(
                f"supervisord: crash release, `restart` → FATAL ({len(fatal)} of {len(peer)} runs"
                f" within {PEER_FATAL_LIMIT:g} s)",
                fatal,
            ),
            Line(
                "supervisord: `supervisorctl restart` returned",
                [r["ctl_returned_s"] for r in peer if r["ctl_returned_s"] is not None],
            ),
        ]
    return lines


def peer_sentence(f: dict[str, Any]) -> str:
    peer = f.get("peer", [])
    if not peer:
        return ""
    served = sum(
        r["answer_at_fatal_plus"] is not None or r["known_good_answered_s"] is not None
        for r in peer
    )
    states = sorted({r["state_at_fatal_plus"] for r in peer})
    running = sum(r["reported_running"] for r in peer)
    said = (
        f" On the way it reported the crash release RUNNING {running} times (an instance that "
        "had exited, reaped only after its startsecs had passed)."
        if running
        else ""
    )
    return (
        f"supervisord: in {len(peer) - served} of {len(peer)} runs nothing answered on the port "
        f"from the restart to FATAL + {PEER_LOOK:g} s (state then: {', '.join(states)}); the "
        f"known-good release runs again only when a person puts it back.{said}"
    )


def all_met(lines: list[Line]) -> bool:
    return all(line.ok for line in lines if line.ok is not None)


def report_path(out_dir: Path, started: dt.datetime, host: str, p: Params, ok: bool) -> Path:
    """Custom, failed and interrupted runs get a suffix: they never replace a full one."""
    counts = (p.crash_runs, p.good_runs, p.peer_runs)
    suffix = ""
    if not ok:
        suffix = "-partial"
    elif counts != tuple(DEFAULTS.values()):
        suffix = "-{}x{}x{}".format(*counts)
    return out_dir / f"{started:%Y-%m-%d}-gate-{host}{suffix}.md"


def write_report(
    out: Outcome,
    machine: dict[str, str],
    lines: list[Line],
    started: dt.datetime,
    elapsed: float,
    path: Path,
) -> None:
    p, f = out.params, out.figures
    status = " — **interrupted**" if out.interrupted else " — **failed**" if out.error else ""
    text = [
        f"# infraveil's deploy gate vs supervisord — {started:%Y-%m-%d} on {machine['host']}",
        "",
        f"- **Date:** {started:%Y-%m-%d %H:%M:%S %Z} (run took {elapsed:.0f} s){status}",
        f"- **Command:** `{command_line()}` (in `{os.getcwd()}`)",
        f"- **Runs:** {p.crash_runs} crash deploys over the API and 1 through the CLI, "
        f"{p.good_runs} deploys of a release with a {BOOT:g} s boot, {p.peer_runs} supervisord "
        "restarts onto the crash release",
        "",
        *machine_section(machine),
    ]
    if lines:
        body = [line.cells() for line in lines]
        text += ["## Summary", "", format_table(HEADER, body, markdown=True), ""]
        sentence = peer_sentence(f)
        if sentence:
            text += [f"**{sentence}**", ""]
    text += [
        "Peers not run here, as their documentation states them:",
        "",
        *(f"- **{name}:** {what}." for name, what in STATED_PEERS),
        "",
    ]
    if out.error:
        text += ["## Error", "", "```", out.error.strip(), "```", ""]
        if out.agent_log_tail:
            text += ["Last lines of the agent's log:", "", "```", out.agent_log_tail, "```", ""]
    text += details(f)
    text += [
        "## Raw results (JSON)",
        "",
        "```json",
        json.dumps({"params": p.__dict__, "figures": f}, indent=1, default=str),
        "```",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))


def details(f: dict[str, Any]) -> list[str]:
    text = ["## Details", ""]
    if "manifest" in f:
        text += [
            "The agent's manifest (`infraveil up -d`, state in a temp dir):",
            "",
            "```toml",
            f["manifest"].strip(),
            "```",
            "",
            "Releases are directories: `serve.sh` execs the venv's Python on `app.py`. `good` and "
            f"`slow` listen on 127.0.0.1:{f['port']} (`slow` after `time.sleep({BOOT:g})`) and "
            "answer each connection with their release name and pid; `crash` is "
            '`os.environ["DATABASE_URL"]`, a `KeyError` at once, exit 1. Each server appends '
            "`time.monotonic()` to a file when it listens, so a boot's end is known apart from "
            "when the agent saw it.",
            "",
        ]
    if "baseline" in f:
        b = f["baseline"]
        text += [
            f"Baseline: `good` deployed as {b['version']} (promoted {secs(b['promote_s'])} after "
            f"the request), then its {WATCH:g} s watch waited out, so it is known-good.",
            "",
        ]
    crash = f.get("crash", [])
    if crash:
        text += [
            "### Crash release: rolled back",
            "",
            "From just before `POST /v1/services/api/deploy?payload=…/crash` was sent. *verdict*: "
            "the verdict row arrived; *serving*: a new instance of `good` answered a TCP "
            "connection (tried every 10 ms); *port closed*: the old instance first refused one; "
            "*failed*: the `failed` row (the candidate's second crash with the same signature; "
            "the first is restarted at once); *listening*: the known-good's server listened "
            "(its own clock).",
            "",
            format_table(
                [
                    "run",
                    "version",
                    "port closed",
                    "failed",
                    "listening",
                    "verdict",
                    "serving",
                    "agent elapsed",
                ],
                [
                    [
                        str(i),
                        c["version"],
                        secs(c["port_closed_s"]),
                        secs(c["failed_s"]),
                        secs(c["known_good_listening_s"]),
                        secs(c["verdict_s"]),
                        secs(c["serving_s"]),
                        secs(c["agent_elapsed_s"]),
                    ]
                    for i, c in enumerate(crash, 1)
                ],
                markdown=True,
            ),
            "",
            "The rows of the first run, as they arrived (seconds since the request; the agent's "
            "own `elapsed` in brackets):",
            "",
            *(
                f"- {s['at']:.3f} s ({s['elapsed']:.3f}) `{s['step']}`: {s['message']}"
                for s in crash[0]["steps"]
            ),
            "",
        ]
    cli = f.get("cli")
    if cli:
        text += [
            "### The same through the CLI",
            "",
            f"`{cli['argv']}`: exit {cli['exit']}, outcome `{cli['outcome']}`; the whole command "
            f"took {secs(cli['command_s'])} (the agent's `elapsed`: {secs(cli['agent_elapsed_s'])}"
            f"; the known-good answered again at {secs(cli['serving_s'])}). The difference from "
            "the API figures is Python starting and importing the CLI.",
            "",
        ]
    good = f.get("good", [])
    if good:
        text += [
            f"### A good release with a {BOOT:g} s boot: promoted",
            "",
            "From just before the deploy request. *listening*: the new server listened (its "
            f"own clock; {BOOT:g} s of it is its sleep); *healthy*: the `healthy` row (the "
            "agent's readiness check passed); *promote*: the `promote` row; *overhead*: "
            f"promote − {BOOT:g} s − {SOAK:g} s soak. Each deploy supersedes the previous "
            "one's watch.",
            "",
            format_table(
                ["run", "version", "listening", "healthy", "promote", "verdict", "overhead"],
                [
                    [
                        str(i),
                        g["version"],
                        secs(g["listening_s"]),
                        secs(g["healthy_s"]),
                        secs(g["promote_s"]),
                        secs(g["verdict_s"]),
                        secs(g["overhead_s"]),
                    ]
                    for i, g in enumerate(good, 1)
                ],
                markdown=True,
            ),
            "",
            "The rows of the first run:",
            "",
            *(
                f"- {s['at']:.3f} s ({s['elapsed']:.3f}) `{s['step']}`: {s['message']}"
                for s in good[0]["steps"]
            ),
            "",
        ]
    if "infraveil_host_cpu_pct" in f:
        text += [
            f"Whole host CPU while infraveil was measured: {f['infraveil_host_cpu_pct']:.1f} % "
            f"of one core (of {100 * (os.cpu_count() or 1)} %), everything on the machine.",
            "",
        ]
    peer = f.get("peer", [])
    if peer:
        text += [
            "### supervisord: the same deploy, no gate",
            "",
            "The program section (everything else is supervisord's default: autostart=true, "
            "autorestart=unexpected, startsecs=1, startretries=3, stopsignal=TERM, "
            "stopwaitsecs=10):",
            "",
            "```ini",
            f.get("peer_program", ""),
            "```",
            "",
            "Each run: `current` is switched to the crash release (a symlink renamed over the "
            "old one), then `supervisorctl restart api`, timed from just before it was started. "
            "Times of supervisord's own log lines (millisecond wall clock), so the benchmark does "
            "not poll its XML-RPC interface meanwhile (each call would wake its main loop). "
            f"Then the port is watched until FATAL + {PEER_LOOK:g} s. Afterwards `current` is "
            "put back and `supervisorctl start api` run: the person acting, not measured.",
            "",
            format_table(
                [
                    "run",
                    "port closed",
                    "supervisorctl returned",
                    "FATAL",
                    "spawns",
                    "reported RUNNING",
                    f"answer at FATAL + {PEER_LOOK:g} s",
                    "state then",
                ],
                [
                    [
                        str(i),
                        secs(r["port_closed_s"]),
                        f"{secs(r['ctl_returned_s'])} (exit {r['ctl_exit']})",
                        secs(r["fatal_s"]),
                        str(r["spawns"]),
                        str(r["reported_running"]),
                        "nothing" if r["answer_at_fatal_plus"] is None else "yes",
                        r["state_at_fatal_plus"],
                    ]
                    for i, r in enumerate(peer, 1)
                ],
                markdown=True,
            ),
            "",
            "`supervisorctl restart api` printed: "
            + " / ".join(f"`{line}`" for line in peer[0]["ctl_output"].splitlines())
            + ". supervisord's log "
            "in the first run (seconds since the restart):",
            "",
            *(f"- {at:.3f} s: {message}" for at, message in peer[0]["events"]),
            "",
            "Where supervisord says `success: api entered RUNNING state` about an instance that "
            "exits 15 ms after its spawn, the exit was reaped only at a later iteration of its "
            "main loop (which waits up to 1 s in `poll()`), and each iteration runs the state "
            "transitions (`group.transition()`) before it reaps (`reap()`): `startsecs` had "
            "passed by then, so the start counts as a success, the retry count starts over, and "
            "the exit is that of a running program, restarted after 1 s. How often that happens "
            "decides when, and whether, it reaches FATAL (the same log is in "
            "Supervisor/supervisor#288).",
            "",
        ]
    return text


# ── main ─────────────────────────────────────────────────────────────────────────────────────


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--crash-runs", type=int, default=DEFAULTS["crash_runs"])
    ap.add_argument("--good-runs", type=int, default=DEFAULTS["good_runs"])
    ap.add_argument("--peer-runs", type=int, default=DEFAULTS["peer_runs"])
    ap.add_argument("--base-port", type=int, default=22000, help="first port tried (22000)")
    add_results_dir(ap)
    args = ap.parse_args(argv)
    for tool in (INFRAVEIL, SUPERVISORD, SUPERVISORCTL):
        if not os.access(tool, os.X_OK):
            print(f"missing {tool}: pip install -e '.[bench]'", file=sys.stderr)
            return 2
    p = Params(args.crash_runs, args.good_runs, args.peer_runs, args.base_port)
    if min(p.crash_runs, p.good_runs, p.peer_runs) < 1:
        ap.error("every count must be at least 1")

    interrupt_on_sigterm()
    started = dt.datetime.now().astimezone()
    t0 = time.monotonic()
    machine = machine_info(
        infraveil_cli_version(),
        versions={"supervisor": importlib.metadata.version("supervisor")},
    )
    with_nproc: dict[str, str] = {}
    for key, value in machine.items():
        with_nproc[key] = value
        if key == "cores":  # and the CPUs this process may run on
            with_nproc["nproc"] = str(len(os.sched_getaffinity(0)))
    machine = with_nproc
    log(f"machine: {machine['cpu']}, {machine['cores']}, {machine['ram']}")
    out = Outcome(p)
    try:
        run(p, out)
    except KeyboardInterrupt:
        out.interrupted = True
        out.error = "interrupted"
        log("interrupted; cleaned up")
    except Exception as e:
        out.error = traceback.format_exc()
        log(f"FAILED: {e}")
    elapsed = time.monotonic() - t0
    add_end_loadavg(machine)
    lines = summary(out.figures)
    if lines:
        print()
        print(format_table(HEADER, [line.cells() for line in lines], markdown=False))
        sentence = peer_sentence(out.figures)
        if sentence:
            print(f"\n{sentence}")
        print("\nNot run here (their documentation):")
        for name, what in STATED_PEERS:
            print(f"  {name}: {what}.")
    path = report_path(args.results_dir, started, machine["host"], p, not out.error)
    write_report(out, machine, lines, started, elapsed, path)
    print(f"\nreport: {shown_path(path)} ({elapsed:.0f} s)")
    if out.interrupted:
        return 130
    if out.error:
        return 2
    return 0 if all_met(lines) else 1


if __name__ == "__main__":
    sys.exit(main())
