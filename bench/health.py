#!/usr/bin/env python3
"""The health-check benchmark: N HTTP services, each with a liveness and a readiness check.

    .venv/bin/python bench/health.py [--quick] [--services N] [--window S] [--settle S]
                                     [--profile S] [--results-dir DIR]

Each service is a real HTTP server (bench/programs/http_ok.py, the standard library's
`http.server`) on its own port, declared with `health = "/healthz"` and `ready = "/readyz"` at
the default cadence (every 5 s once started, 3 s timeout). Once every service is ready and the
agent has settled, the benchmark measures over a window of wall time:

- the CPU of the agent process alone (utime + stime from /proc/PID/stat, and the exact run
  time from /proc/PID/task/*/schedstat), as % of one core, and its RSS;
- the CPU of all the HTTP servers together, and of the whole host, to show where the time goes;
- from the agent's /metrics: probes started (and so probes/s), probes late by more than one
  period, the largest lateness seen;
- from the servers' side (each logs when a probe arrives): the gaps between two probes of the
  same check, an account of punctuality that does not rely on the agent's own figures.

Targets (the issue): agent CPU ≤ 3 % of one core, no probe late by more than one period
(late == 0 and max lateness < 5 s). It prints a summary and writes a Markdown report to
bench/results/YYYY-MM-DD-health-<hostname>.md. See bench/README.md.

Exit status: 0 every target met, 1 a target missed, 2 the benchmark could not run (the report
says why), 130 interrupted. Everything it starts is stopped on every path out (the agent with
`infraveil down`, leftovers found by an environment tag and killed). Every wait has a deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import itertools
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    BIN,
    INFRAVEIL,
    ROOT,
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
    mib,
    proc_status,
    process_alive,
    raise_fd_limit,
    run_ns,
    shown_path,
    wait_for,
)

from infraveil.core.checks import DEFAULT_INTERVAL, DEFAULT_STARTUP_INTERVAL, DEFAULT_TIMEOUT

SERVER = ROOT / "bench" / "programs" / "http_ok.py"
LOG_DIR_VAR = "HTTP_OK_LOG_DIR"
"""Where each http_ok.py server logs the arrival time of every request (see its docstring)."""

CPU_TARGET_PCT = 3.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL = 1.0  # seconds between status polls while waiting for readiness (500 rows a poll)


# ── /proc readers ────────────────────────────────────────────────────────────────────────────


def cpu_times(pid: int) -> tuple[float, float] | None:
    """(utime, stime) of every thread of `pid` (/proc/PID/stat), in seconds; None if gone.

    What `top` shows. The kernel charges it by sampling at each scheduler tick, so a process
    that wakes briefly is charged a whole tick or nothing: read `run_ns` for small figures.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name may contain spaces and parens
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # fields 14, 15 of proc(5)


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of `pid` in seconds; None if gone."""
    times = cpu_times(pid)
    return None if times is None else times[0] + times[1]


def kib_field(status: dict[str, str], key: str) -> int:
    """A `NNN kB` field of /proc/PID/status in bytes (0 when absent)."""
    value = status.get(key, "0 kB").split()
    return int(value[0]) * 1024 if value else 0


def host_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs together, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


# ── ports and manifest ───────────────────────────────────────────────────────────────────────


def pick_ports(n: int, base: int) -> list[int]:
    """`n` ports from `base` up that nobody uses now, below the kernel's ephemeral range.

    Below it, because the agent opens a connection per probe (200 a second): a port picked from
    the ephemeral range could be taken as a client port before its server binds it.
    """
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    ports: list[int] = []
    port = base
    while len(ports) < n:
        if port >= ephemeral_low:
            raise BenchError(
                f"not {n} free ports between {base} and the ephemeral range ({ephemeral_low}); "
                "use a lower --base-port"
            )
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            # as http.server binds (allow_reuse_address): a port whose last connections are in
            # TIME_WAIT, e.g. from the previous run, is free for it
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                ports.append(port)
            except OSError:
                pass
        port += 1
    return ports


def service_name(i: int) -> str:
    return f"s{i:03d}"


def manifest_text(ports: list[int], python: str) -> str:
    """One service per port; checks at the default cadence (nothing overridden)."""
    parts = []
    for i, port in enumerate(ports, 1):
        parts.append(
            f"[services.{service_name(i)}]\n"
            f"command = {json.dumps([python, str(SERVER), str(port)])}\n"
            f"port = {port}\n"
            'health = "/healthz"\n'
            'ready = "/readyz"\n'
        )
    return "\n".join(parts)


# ── the agent under test ─────────────────────────────────────────────────────────────────────


class Agent:
    """infraveil's agent running the benchmark's services in a temp dir.

    A context manager: on exit the agent is stopped with `infraveil down` (then killed if it
    lingers), every process carrying the run's tag is killed, and the temp dir removed.
    """

    def __init__(self, n: int, ports: list[int]) -> None:
        self.n = n
        self.ports = ports
        self.tag = f"{os.getpid()}-health"
        self.workdir = Path(tempfile.mkdtemp(prefix="ivbench-health-"))
        self.state_dir = self.workdir / "state"
        self.manifest = self.workdir / "infraveil.toml"
        self.request_logs = self.workdir / "requests"
        self.env = {**os.environ, TAG_VAR: self.tag, LOG_DIR_VAR: str(self.request_logs)}
        self.launcher: subprocess.Popen[bytes] | None = None
        self.agent_log_tail = ""

    def __enter__(self) -> Agent:
        self.request_logs.mkdir()
        self.manifest.write_text(manifest_text(self.ports, sys.executable))
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- starting and asking

    def launch(self) -> None:
        self.launcher = infraveil_up_detached(
            self.manifest, self.state_dir, self.workdir / "up.out", self.env
        )

    def pid(self) -> int | None:
        """The agent's pid, from STATE_DIR/agent.lock (None before it has started)."""
        return agent_pid(self.state_dir)

    def alive(self) -> bool:
        pid = self.pid()
        return pid is not None and process_alive(pid)

    def get(self, target: str, timeout: float = 30) -> bytes:
        return agent_get(self.state_dir, target, timeout)

    def status(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.get("/v1/status"))["services"]
        return rows

    def metrics(self) -> dict[str, float]:
        return parse_metrics(self.get("/metrics").decode())

    def wait_all_ready(self, timeout: float) -> float:
        """Wait until every service is running and ready; the monotonic time it was seen.

        While `up -d` runs, it is what waits (the agent answers it when all has settled): the
        benchmark does not ask too, because a status of hundreds of services is work for the
        agent's loop at the moment its probes are busiest. Then the status is polled.
        """
        deadline = time.monotonic() + timeout
        assert self.launcher is not None
        while self.launcher.poll() is None:
            if time.monotonic() > deadline:
                raise BenchError(f"`infraveil up -d` still running after {timeout:.0f}s")
            time.sleep(0.1)
        if self.launcher.returncode != 0 and not self.alive():
            raise BenchError(f"`infraveil up -d` failed and no agent runs: {self.up_output()}")
        seen = ""
        while True:
            try:
                rows = self.status()
            except (OSError, http.client.HTTPException, ValueError):
                rows = []  # not listening (any more?)
            states = Counter(
                "ready" if r["ready"] and r["state"] == "running" else r["state"] for r in rows
            )
            if len(rows) == self.n and states["ready"] == self.n:
                return time.monotonic()
            summary = ", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "no answer"
            if summary != seen:
                log(f"  {summary}")
                seen = summary
            if time.monotonic() > deadline:
                raise BenchError(f"not all {self.n} services ready after {timeout:.0f}s: {summary}")
            time.sleep(POLL)

    def up_output(self) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / "up.out").read_text(errors="replace")[-2000:].strip()
        return ""

    # -- stopping

    def cleanup(self) -> None:
        with contextlib.suppress(OSError):
            lines = (self.state_dir / "agent.log").read_text(errors="replace").splitlines()
            self.agent_log_tail = "\n".join(lines[-40:])
        try:
            if self.alive():
                self.stop()
        finally:
            kill_child(self.launcher)
            pid = self.pid()
            if pid is not None and process_alive(pid):
                log("the agent is still there: killing it")
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            killed = kill_tagged(self.tag)
            if killed:
                log(f"killed {killed} leftover process(es)")
            shutil.rmtree(self.workdir, ignore_errors=True)

    def stop(self) -> None:
        """`infraveil down`, bounded; a failure is logged (the caller kills what is left)."""
        log("stopping: infraveil down")
        down = infraveil_down(self.state_dir, self.workdir / "down.out")
        try:
            down.wait(timeout=120)
            wait_for("the agent to exit", lambda: not self.alive(), 30, 0.1)
        except (subprocess.TimeoutExpired, BenchError) as e:
            log(f"graceful stop failed ({e})")
        finally:
            kill_child(down)


# ── what is measured ─────────────────────────────────────────────────────────────────────────


def parse_metrics(text: str) -> dict[str, float]:
    """Unlabelled samples of a Prometheus exposition: name -> value."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or "{" in line:
            continue
        parts = line.split()
        if len(parts) >= 2:
            with contextlib.suppress(ValueError):
                found[parts[0]] = float(parts[1])
    return found


@dataclass
class Sample:
    """What is read at one end of the window."""

    at: float  # monotonic
    agent_cpu: tuple[float, float]  # utime, stime
    agent_ns: int
    servers_cpu: dict[int, float]
    servers_ns: dict[int, int]
    host: tuple[int, int]

    @classmethod
    def take(cls, agent: int, servers: Iterable[int]) -> Sample:
        cpu, ns = cpu_times(agent), run_ns(agent)
        if cpu is None or ns is None:
            raise BenchError("the agent is gone")
        servers_cpu: dict[int, float] = {}
        servers_ns: dict[int, int] = {}
        for pid in servers:
            c, n = cpu_seconds(pid), run_ns(pid)
            if c is not None and n is not None:
                servers_cpu[pid], servers_ns[pid] = c, n
        return cls(time.monotonic(), cpu, ns, servers_cpu, servers_ns, host_cpu())


def request_gaps(log_dir: Path, start: float, end: float) -> dict[str, Any]:
    """Punctuality seen by the servers: gaps between two probes of one check in the window.

    A check is one (port, path). The gap leading into the window (from the last probe before
    it) counts too, so a probe that was due in the window and came late is not missed.
    """
    gaps: list[float] = []
    in_window = 0
    checks = 0
    short_of: list[str] = []
    for path in sorted(log_dir.glob("*.log")):
        times: dict[str, list[float]] = {}
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                at, target = line.split(" ", 1)
                times.setdefault(target, []).append(float(at))
        for target, ts in times.items():
            checks += 1
            ts.sort()
            before = [t for t in ts if t < start]
            inside = [t for t in ts if start <= t <= end]
            in_window += len(inside)
            seq = before[-1:] + inside
            gaps += [b - a for a, b in itertools.pairwise(seq)]
            if not inside:
                short_of.append(f"{path.stem}{target}")
    gaps.sort()
    limit = 2 * DEFAULT_INTERVAL
    return {
        "checks": checks,
        "requests_in_window": in_window,
        "gaps": len(gaps),
        "gap_min_s": gaps[0] if gaps else math.nan,
        "gap_median_s": statistics.median(gaps) if gaps else math.nan,
        "gap_p99_s": gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))] if gaps else math.nan,
        "gap_max_s": gaps[-1] if gaps else math.nan,
        "gap_mean_s": statistics.fmean(gaps) if gaps else math.nan,
        "gaps_over_two_periods": sum(g > limit for g in gaps),
        "checks_without_probe_in_window": short_of[:20],
    }


# ── the profile (optional, after the window) ──────────────────────────────────────────────────


def py_spy() -> str | None:
    candidate = BIN / "py-spy"
    return str(candidate) if os.access(candidate, os.X_OK) else shutil.which("py-spy")


def profile_agent(pid: int, seconds: float, workdir: Path, rate: int = 500) -> dict[str, Any]:
    """Sample the agent with py-spy (not paused: --nonblocking); top functions by share of its
    busy samples, both self (the function itself) and total (it or what it called)."""
    tool = py_spy()
    if tool is None:
        raise BenchError("py-spy is not installed (.venv/bin/pip install py-spy)")
    out = workdir / "profile.txt"
    ns0 = run_ns(pid)
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            tool,
            "record",
            "-p",
            str(pid),
            "-d",
            str(int(seconds)),
            "-r",
            str(rate),
            "--nonblocking",
            "-F",
            "-f",
            "raw",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    t1, ns1 = time.monotonic(), run_ns(pid)
    if proc.returncode != 0 or not out.exists():
        raise BenchError(f"py-spy failed ({proc.returncode}): {proc.stderr[-1000:]}")
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            if _own_code(frame):
                total[frame] += n
    cpu_pct = math.nan if ns0 is None or ns1 is None else 100 * (ns1 - ns0) / 1e9 / (t1 - t0)
    return {
        "seconds": seconds,
        "rate": rate,
        "samples": samples,
        "cpu_pct_meanwhile": cpu_pct,
        "self": [(f, c / samples) for f, c in own.most_common(25)] if samples else [],
        "total": [(f, c / samples) for f, c in total.most_common(30)] if samples else [],
    }


# ── the run ──────────────────────────────────────────────────────────────────────────────────


@dataclass
class Params:
    services: int
    window: float
    settle: float
    ready_timeout: float
    base_port: int
    profile: float
    quick: bool


@dataclass
class Outcome:
    params: Params
    figures: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    interrupted: bool = False
    agent_log_tail: str = ""
    profile: dict[str, Any] | None = None
    profile_error: str = ""


def run(p: Params, out: Outcome) -> None:
    """The benchmark itself; fills `out.figures` as it goes, so a failure keeps what it had."""
    f = out.figures
    ports = pick_ports(p.services, p.base_port)
    f["ports"] = f"{ports[0]}–{ports[-1]}"
    agent = Agent(p.services, ports)
    try:
        with agent:
            log(f"starting {p.services} services: infraveil up -d (state in {agent.state_dir})")
            launched = time.monotonic()
            agent.launch()
            ready_at = agent.wait_all_ready(p.ready_timeout)
            f["all_ready_s"] = ready_at - launched
            log(f"all {p.services} services ready after {f['all_ready_s']:.1f}s")
            assert agent.launcher is not None
            f["up_exit"] = agent.launcher.returncode
            if f["up_exit"] != 0:
                f["up_output"] = agent.up_output()
            pid = agent.pid()
            if pid is None:
                raise BenchError("no agent pid in agent.lock")
            f["agent_pid"] = pid

            log(f"settling for {p.settle:.0f}s")
            time.sleep(p.settle)
            rows = agent.status()
            servers = {r["name"]: r["pid"] for r in rows if r["pid"]}
            restarts0 = {r["name"]: r["restarts"] for r in rows}

            # /metrics is read just outside the CPU window: a scrape of 500 services is work
            # the agent would not do every few seconds, and it is not what is measured
            m0 = agent.metrics()
            m0_at = time.monotonic()
            s0 = Sample.take(pid, servers.values())
            log(f"measuring for {p.window:.0f}s")
            time.sleep(p.window)
            s1 = Sample.take(pid, servers.values())
            m1_at = time.monotonic()
            m1 = agent.metrics()
            status = proc_status(pid)
            rows = agent.status()

            wall = s1.at - s0.at
            f["window_s"] = wall
            user = s1.agent_cpu[0] - s0.agent_cpu[0]
            system = s1.agent_cpu[1] - s0.agent_cpu[1]
            f["agent_cpu_pct"] = 100 * (user + system) / wall
            f["agent_user_pct"] = 100 * user / wall
            f["agent_system_pct"] = 100 * system / wall
            f["agent_cpu_pct_exact"] = 100 * (s1.agent_ns - s0.agent_ns) / 1e9 / wall
            f["agent_rss_bytes"] = kib_field(status, "VmRSS")
            f["agent_peak_rss_bytes"] = kib_field(status, "VmHWM")
            f["agent_threads"] = int(status.get("Threads", "0"))
            with contextlib.suppress(OSError):
                f["agent_fds"] = len(os.listdir(f"/proc/{pid}/fd"))
            both = set(s0.servers_cpu) & set(s1.servers_cpu)
            f["servers_measured"] = len(both)
            f["servers_cpu_pct"] = (
                100 * sum(s1.servers_cpu[q] - s0.servers_cpu[q] for q in both) / wall
            )
            f["servers_cpu_pct_exact"] = (
                100 * sum(s1.servers_ns[q] - s0.servers_ns[q] for q in both) / 1e9 / wall
            )
            f["servers_rss_bytes"] = sum(kib_field(proc_status(q), "VmRSS") for q in both)
            busy, total = s1.host[0] - s0.host[0], s1.host[1] - s0.host[1]
            cores = os.cpu_count() or 1
            f["host_cpu_pct_of_one_core"] = 100 * cores * busy / total if total else math.nan

            probes0 = m0.get("infraveil_probes_total", math.nan)
            probes1 = m1.get("infraveil_probes_total", math.nan)
            f["probes_in_window"] = probes1 - probes0
            f["probes_per_s"] = (probes1 - probes0) / (m1_at - m0_at)
            f["probes_per_s_expected"] = 2 * p.services / DEFAULT_INTERVAL
            f["late_in_window"] = m1.get("infraveil_probes_late_total", math.nan) - m0.get(
                "infraveil_probes_late_total", math.nan
            )
            f["late_since_start"] = m1.get("infraveil_probes_late_total", math.nan)
            f["probes_since_start"] = probes1
            f["max_lateness_s"] = m1.get("infraveil_probe_max_lateness_seconds", math.nan)
            f["max_lateness_s_before_window"] = m0.get(
                "infraveil_probe_max_lateness_seconds", math.nan
            )
            if math.isnan(probes1):
                f["metrics_missing"] = True

            f["ready_at_end"] = sum(1 for r in rows if r["ready"] and r["state"] == "running")
            f["restarts_in_window"] = sum(r["restarts"] - restarts0.get(r["name"], 0) for r in rows)
            f["server_side"] = request_gaps(agent.request_logs, s0.at, s1.at)
            log(f"window done: {_short(f)}")

            if p.profile > 0:
                log(f"profiling the agent with py-spy for {p.profile:.0f}s (after the window)")
                try:
                    out.profile = profile_agent(pid, p.profile, agent.workdir)
                except (BenchError, OSError, subprocess.TimeoutExpired) as e:
                    out.profile_error = str(e)
                    log(f"profile failed: {e}")
    finally:
        out.agent_log_tail = agent.agent_log_tail


def _own_code(frame: str) -> bool:
    """A frame of infraveil's agent, below the CLI that starts it (on every stack)."""
    return "infraveil/" in frame and not any(
        part in frame for part in ("infraveil/cli/", "infraveil/__main__", "Agent.run ")
    )


def _short(f: dict[str, Any]) -> str:
    return (
        f"agent CPU {f['agent_cpu_pct']:.2f} % (exact {f['agent_cpu_pct_exact']:.2f} %), "
        f"{f['probes_per_s']:.1f} probes/s, late {f['late_in_window']:.0f}, "
        f"max lateness {f['max_lateness_s']:.3f} s"
    )


# ── verdicts, machine, report ────────────────────────────────────────────────────────────────


@dataclass
class Row:
    metric: str
    value: str
    target: str = "—"
    verdict: str = "—"


def verdict(ok: bool) -> str:
    return "met" if ok else "not met"


def summary_rows(out: Outcome) -> tuple[list[Row], bool]:
    """The summary table, and whether every target was met."""
    f = out.figures
    if "agent_cpu_pct" not in f:
        return [], False
    interval = DEFAULT_INTERVAL
    cpu_ok = f["agent_cpu_pct"] <= CPU_TARGET_PCT
    exact_ok = f["agent_cpu_pct_exact"] <= CPU_TARGET_PCT
    late_ok = f["late_in_window"] == 0
    late_all_ok = f["late_since_start"] == 0
    lateness_ok = f["max_lateness_s"] < interval
    side = f["server_side"]
    side_ok = side["gaps_over_two_periods"] == 0 and not side["checks_without_probe_in_window"]
    rows = [
        Row(
            "agent CPU, % of one core (utime+stime)",
            f"{f['agent_cpu_pct']:.2f} %",
            f"≤ {CPU_TARGET_PCT:g} %",
            verdict(cpu_ok),
        ),
        Row(
            "agent CPU, % of one core (schedstat, exact)",
            f"{f['agent_cpu_pct_exact']:.2f} %",
            f"≤ {CPU_TARGET_PCT:g} %",
            verdict(exact_ok),
        ),
        Row(
            "probes started per second",
            f"{f['probes_per_s']:.1f}",
            f"{f['probes_per_s_expected']:.0f} (2 checks × {out.params.services} / {interval:g} s)",
        ),
        Row(
            "probes late by more than one period, in the window",
            f"{f['late_in_window']:.0f}",
            "0",
            verdict(late_ok),
        ),
        Row(
            "probes late by more than one period, since the agent started (boot included)",
            f"{f['late_since_start']:.0f} of {f['probes_since_start']:.0f}",
            "0",
            verdict(late_all_ok),
        ),
        Row(
            "max lateness of a probe, since the agent started",
            f"{f['max_lateness_s']:.3f} s",
            f"< {interval:g} s",
            verdict(lateness_ok),
        ),
        Row(
            "servers' side: longest gap between two probes of a check",
            f"{side['gap_max_s']:.3f} s ({side['gaps_over_two_periods']} over {2 * interval:g} s)",
            f"≤ {2 * interval:g} s (one period late)",
            verdict(side_ok),
        ),
        Row("agent RSS", mib(f["agent_rss_bytes"])),
        Row(
            "HTTP servers' CPU, % of one core (all together, schedstat)",
            f"{f['servers_cpu_pct_exact']:.2f} %",
        ),
        Row(
            "whole host CPU, % of one core",
            f"{f['host_cpu_pct_of_one_core']:.1f} % of {100 * (os.cpu_count() or 1)} %",
        ),
        Row(
            "services ready at the end / restarts in the window",
            f"{f['ready_at_end']} of {out.params.services} / {f['restarts_in_window']}",
            f"{out.params.services} / 0",
            verdict(f["ready_at_end"] == out.params.services and f["restarts_in_window"] == 0),
        ),
    ]
    all_ok = all(r.verdict == "met" for r in rows if r.verdict != "—")
    return rows, all_ok


def render_table(rows: list[Row], markdown: bool) -> str:
    header = ["metric", "infraveil", "target", "verdict"]
    body = [[r.metric, r.value, r.target, r.verdict] for r in rows]
    return format_table(header, body, markdown)


def _per_probe_us(f: dict[str, Any]) -> float:
    if not f["probes_per_s"]:
        return math.nan
    return float(f["agent_cpu_pct_exact"] / 100 / f["probes_per_s"] * 1e6)


def _late_before_window(f: dict[str, Any]) -> list[str]:
    """When the late probes and the largest lateness came, and which probes they were, as far
    as the counters tell."""
    before = f["late_since_start"] - f["late_in_window"]
    if before <= 0:
        return []
    lines = []
    if f["late_in_window"] == 0 and f["max_lateness_s_before_window"] >= f["max_lateness_s"]:
        lines.append(
            f"- All {before:.0f} late probes, and the largest lateness "
            f"({f['max_lateness_s']:.3f} s), came before the window: while the services were "
            "being started and in the settle time. No probe in the window was late."
        )
    if f["max_lateness_s_before_window"] < DEFAULT_INTERVAL:
        lines.append(
            f"- None was as much as {DEFAULT_INTERVAL:g} s late, and a probe of a running "
            f"service counts as late only past its {DEFAULT_INTERVAL:g} s period: every one was a "
            f"*startup* probe (period {DEFAULT_STARTUP_INTERVAL:g} s, run while its service "
            "was booting)."
        )
    return lines


def report_path(out_dir: Path, started: dt.datetime, host: str, p: Params, ok: bool) -> Path:
    """Quick, custom, failed and interrupted runs get a suffix: they never replace a full one."""
    suffix = ""
    if not ok:
        suffix = "-partial"
    elif p.quick:
        suffix = "-quick"
    elif (p.services, p.window) != (500, 120.0):
        suffix = f"-{p.services}x{p.window:g}s"
    return out_dir / f"{started:%Y-%m-%d}-health-{host}{suffix}.md"


def write_report(
    out: Outcome,
    machine: dict[str, str],
    rows: list[Row],
    started: dt.datetime,
    elapsed: float,
    path: Path,
) -> None:
    p, f = out.params, out.figures
    command = command_line()
    mode = "quick" if p.quick else "full" if (p.services, p.window) == (500, 120.0) else "custom"
    if out.interrupted:
        mode += " — **interrupted**"
    elif out.error:
        mode += " — **failed**"
    lines = [
        f"# infraveil health checks, {p.services} HTTP services — {started:%Y-%m-%d} on "
        f"{machine['host']}",
        "",
        f"- **Date:** {started:%Y-%m-%d %H:%M:%S %Z} (run took {elapsed:.0f} s)",
        f"- **Command:** `{command}` (in `{os.getcwd()}`)",
        f"- **Mode:** {mode}; {p.services} services, {p.settle:g} s settle, {p.window:g} s window",
        "",
        *machine_section(machine),
    ]
    if rows:
        lines += ["## Summary", "", render_table(rows, markdown=True), ""]
    lines += [
        "**No peer figure.** supervisord, the peer of `bench/run.py`, has no health checks at "
        "all (it only knows whether a process is running: no liveness, no readiness, no HTTP "
        "probe), so there is nothing of its to measure here; this report gives infraveil's "
        "figures against the targets alone.",
        "",
    ]
    if out.error:
        lines += ["## Error", "", "```", out.error.strip(), "```", ""]
        if out.agent_log_tail:
            lines += ["Last lines of the agent's log:", "", "```", out.agent_log_tail, "```", ""]
    if "agent_cpu_pct" in f:
        side = f["server_side"]
        lines += [
            "## Details",
            "",
            f"{p.services} services, each `{sys.executable} bench/programs/http_ok.py PORT` "
            "(the standard library's `http.server`, single-threaded, one answer per "
            f"connection) on ports {f['ports']}, declared with `port = PORT`, "
            '`health = "/healthz"`, `ready = "/readyz"` and nothing else: the default cadence, '
            f"a probe every {DEFAULT_INTERVAL:g} s per check once started, timeout "
            f"{DEFAULT_TIMEOUT:g} s. Started with `infraveil up -d`; every service was running "
            f"and ready {f['all_ready_s']:.1f} s after launch (`up -d` exited "
            f"{f['up_exit']}). Then {p.settle:g} s to settle, then a window of "
            f"{f['window_s']:.1f} s of wall time.",
            "",
            "### The agent",
            "",
            f"- CPU: {f['agent_cpu_pct']:.2f} % of one core from utime+stime "
            f"(`/proc/{{pid}}/stat`, charged per scheduler tick): {f['agent_user_pct']:.2f} % "
            f"in user mode, {f['agent_system_pct']:.2f} % in the kernel (system calls, and the "
            "loopback TCP work the kernel does in the caller's time); "
            f"{f['agent_cpu_pct_exact']:.3f} % from the run time of its threads "
            "(`/proc/{pid}/task/*/schedstat`, exact).",
            f"- Per probe: {_per_probe_us(f):.0f} µs of the agent's CPU (all its CPU over the "
            f"probes started, so the event loop, the results' handling and the rest of its "
            f"work included); the {CPU_TARGET_PCT:g} % target at "
            f"{f['probes_per_s_expected']:.0f} probes/s allows "
            f"{CPU_TARGET_PCT / 100 / f['probes_per_s_expected'] * 1e6:.0f} µs.",
            f"- RSS {mib(f['agent_rss_bytes'])} at the end of the window (peak "
            f"{mib(f['agent_peak_rss_bytes'])}), {f['agent_threads']} thread(s), "
            f"{f.get('agent_fds', '?')} open fds.",
            f"- `/metrics`: {f['probes_in_window']:.0f} probes started during the window "
            f"({f['probes_per_s']:.1f}/s; {f['probes_per_s_expected']:.0f}/s is 2 checks × "
            f"{p.services} services every {DEFAULT_INTERVAL:g} s), {f['late_in_window']:.0f} of "
            "them late by more than one period. Since the agent started (boot included): "
            f"{f['probes_since_start']:.0f} probes, {f['late_since_start']:.0f} late; the "
            f"largest lateness {f['max_lateness_s']:.3f} s "
            f"({f['max_lateness_s_before_window']:.3f} s before the window began). `/metrics` "
            "is read just before and just after the CPU window, so the two scrapes are not in "
            "the CPU figure.",
            *_late_before_window(f),
            f"- At the end: {f['ready_at_end']} of {p.services} services running and ready, "
            f"{f['restarts_in_window']} restarts during the window.",
            "",
            "### Seen from the services",
            "",
            "Each server logs the `time.monotonic()` at which each request arrived; for every "
            "check (one port and path) the gaps between consecutive probes in the window "
            "(counting the gap from the last probe before it) are:",
            "",
            f"- {side['checks']} checks, {side['requests_in_window']} requests in the window, "
            f"{side['gaps']} gaps: min {side['gap_min_s']:.3f} s, median "
            f"{side['gap_median_s']:.3f} s, mean {side['gap_mean_s']:.3f} s, p99 "
            f"{side['gap_p99_s']:.3f} s, max {side['gap_max_s']:.3f} s.",
            f"- Gaps over {2 * DEFAULT_INTERVAL:g} s (a probe more than one period late): "
            f"{side['gaps_over_two_periods']}. Checks with no probe in the window: "
            f"{len(side['checks_without_probe_in_window'])}"
            + (
                f" (e.g. {', '.join(side['checks_without_probe_in_window'])})"
                if side["checks_without_probe_in_window"]
                else ""
            )
            + ".",
            "- A gap is the period plus the lateness of the later probe minus that of the "
            "earlier one, so a mean above the period is a drift: the schedule slips by that much "
            "every round.",
            "",
            "### Where the machine's time goes",
            "",
            "| process | CPU, % of one core | RSS |",
            "|---|---|---|",
            f"| infraveil agent | {f['agent_cpu_pct_exact']:.2f} | {mib(f['agent_rss_bytes'])} |",
            f"| {f['servers_measured']} HTTP servers together | {f['servers_cpu_pct_exact']:.2f} "
            f"(utime+stime {f['servers_cpu_pct']:.2f}) | {mib(f['servers_rss_bytes'])} |",
            f"| whole host (all processes, {machine['cores']}) | "
            f"{f['host_cpu_pct_of_one_core']:.1f} | — |",
            "",
            "The servers' CPU is what answering the probes costs the services (Python's "
            "`http.server`: an accept, a parse, a write, a log line to the benchmark's file); "
            "the rest of the host's is the kernel's networking and everything else on the "
            "machine.",
            "",
        ]
    if f.get("up_output"):
        lines += ["`infraveil up -d` said:", "", "```", f["up_output"], "```", ""]
    if out.profile is not None:
        prof = out.profile
        lines += [
            "## Profile of the agent",
            "",
            f"`py-spy record --nonblocking -F -f raw -r {prof['rate']}` for "
            f"{prof['seconds']:g} s right after the window (not during it: sampling costs the "
            f"machine CPU). The agent used {prof['cpu_pct_meanwhile']:.2f} % of one core "
            f"meanwhile; {prof['samples']} busy samples (idle samples are left out). Shares are "
            "of the busy samples: multiply by the CPU figure for % of a core.",
            "",
            "Self (the function itself was running):",
            "",
            "| share | % of a core | function |",
            "|---|---|---|",
            *(
                f"| {s * 100:.1f} % | {s * prof['cpu_pct_meanwhile']:.2f} | `{fn}` |"
                for fn, s in prof["self"]
            ),
            "",
            "Total (the function or what it called), infraveil's own functions only (the "
            "event loop and the CLI are on every stack):",
            "",
            "| share | % of a core | function |",
            "|---|---|---|",
            *(
                f"| {s * 100:.1f} % | {s * prof['cpu_pct_meanwhile']:.2f} | `{fn}` |"
                for fn, s in prof["total"]
            ),
            "",
        ]
    elif out.profile_error:
        lines += ["## Profile of the agent", "", f"Failed: {out.profile_error}", ""]
    raw = {"params": vars(p), "figures": f, "profile": out.profile}
    lines += [
        "## Raw results (JSON)",
        "",
        "```json",
        json.dumps(raw, indent=1, default=str),
        "```",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


# ── main ─────────────────────────────────────────────────────────────────────────────────────


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100 services, 30 s window")
    ap.add_argument("--services", type=int, help="number of services (default 500)")
    ap.add_argument("--window", type=float, help="measurement window, s (default 120)")
    ap.add_argument("--settle", type=float, default=15.0, help="s after all are ready (15)")
    ap.add_argument(
        "--ready-timeout", type=float, default=300.0, help="deadline for all to be ready (300)"
    )
    ap.add_argument("--base-port", type=int, default=21000, help="first port tried (21000)")
    ap.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="S",
        help="after the window, sample the agent with py-spy for S seconds (0: no)",
    )
    add_results_dir(ap)
    args = ap.parse_args(argv)
    if not os.access(INFRAVEIL, os.X_OK):
        print(f"missing {INFRAVEIL}: install the project (pip install -e .)", file=sys.stderr)
        return 2
    p = Params(
        services=args.services or (100 if args.quick else 500),
        window=args.window or (30.0 if args.quick else 120.0),
        settle=args.settle,
        ready_timeout=args.ready_timeout,
        base_port=args.base_port,
        profile=args.profile,
        quick=args.quick,
    )
    if p.services < 1 or p.services > 999:
        ap.error("--services must be between 1 and 999")

    interrupt_on_sigterm()
    soft, hard = raise_fd_limit()
    started = dt.datetime.now().astimezone()
    t0 = time.monotonic()
    machine = machine_info(infraveil_cli_version())
    log(f"machine: {machine['cpu']}, {machine['cores']}, {machine['ram']}; nofile {soft}/{hard}")
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
    rows, all_met = summary_rows(out)
    if rows:
        print()
        print(render_table(rows, markdown=False))
    print("\nsupervisord (the peer of bench/run.py) has no health checks: no peer figure.")
    path = report_path(args.results_dir, started, machine["host"], p, not out.error)
    write_report(out, machine, rows, started, elapsed, path)
    print(f"\nreport: {shown_path(path)} ({elapsed:.0f} s)")
    if out.interrupted:
        return 130
    if out.error:
        return 2
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
