#!/usr/bin/env python3
"""Benchmarks of infraveil against supervisord, measured in the same run on the same machine.

    .venv/bin/python bench/run.py [--quick] [--only restart|idle|startstop ...]

Prints a summary table (metric | infraveil | supervisord | target | verdict) and writes a
Markdown report to bench/results/YYYY-MM-DD-<hostname>.md. See bench/README.md.

Every run works in its own temporary directory (state, sockets, logs, configs), and every
supervisor it starts is stopped — and every process it left behind killed — on the way out,
even when a benchmark fails or the run is interrupted. Every wait has a deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import importlib.metadata
import itertools
import json
import math
import os
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from harness import (
    BIN,
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
    mib,
    process_alive,
    raise_fd_limit,
    run_ns,
    shown_path,
    spawn_logged,
    tagged_pids,
    wait_for,
)

from infraveil.api.client import UnixHTTPConnection

SUPERVISORD = str(BIN / "supervisord")  # BIN: the venv's bin/, where infraveil is too
SUPERVISORCTL = str(BIN / "supervisorctl")

POLL = 0.05  # seconds between status polls while waiting for services to come up
KILL_GAP = 0.05  # pause between two kills in the restart benchmark
RESTART_DEADLINE = 10.0  # a killed service must have started again within this


# ── small helpers ────────────────────────────────────────────────────────────────────────────


class UnixXMLRPCTransport(xmlrpc.client.Transport):
    """XML-RPC over supervisord's Unix socket, one short connection per call, with a timeout."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout
        self._conn: UnixHTTPConnection | None = None

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        self.close()
        self._conn = UnixHTTPConnection(self._path, self._timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        super().close()


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    if not s:
        return math.nan
    k = (len(s) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def service_names(n: int) -> list[str]:
    return [f"s{i:03d}" for i in range(1, n + 1)]


def starts_command(workdir: Path, name: str) -> str:
    """The shell text of a service that appends its start time, then becomes `sleep`."""
    return f"date +%s.%N >> {workdir}/{name}.starts; exec sleep 100000"


# ── the two systems under test ───────────────────────────────────────────────────────────────

_ACTIVE: list[Harness] = []
_TAGS = itertools.count(1)


class Harness:
    """One supervisor (infraveil's agent or supervisord) running N services in a temp dir.

    Used as a context manager: on exit the supervisor is stopped (gracefully, then by force)
    and every process carrying this harness's tag is killed, then the temp dir is removed.
    """

    label = "?"

    def __init__(self, names: list[str], with_starts: bool) -> None:
        self.names = names
        self.with_starts = with_starts
        self.tag = f"{os.getpid()}-{next(_TAGS)}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"ivbench-{self.label}-"))
        self.env = {**os.environ, TAG_VAR: self.tag}
        self.launcher: subprocess.Popen[bytes] | None = None
        self.launched_at: float | None = None

    # -- to be provided by each system
    def write_config(self) -> None:
        raise NotImplementedError

    def launch(self) -> None:
        raise NotImplementedError

    def poll_states(self) -> dict[str, tuple[str, int | None]]:
        """name -> (state, pid) of every service, from the supervisor's own status."""
        raise NotImplementedError

    def supervisor_pid(self) -> int | None:
        raise NotImplementedError

    def request_stop(self) -> subprocess.Popen[bytes]:
        raise NotImplementedError

    def running_state(self) -> str:
        raise NotImplementedError

    # -- shared
    def command(self, name: str) -> str:
        if self.with_starts:
            return starts_command(self.workdir, name)
        return "sleep 100000"

    def starts_file(self, name: str) -> Path:
        return self.workdir / f"{name}.starts"

    def supervisor_gone(self) -> bool:
        pid = self.supervisor_pid()
        return pid is None or not process_alive(pid)

    def all_running(self) -> bool:
        try:
            states = self.poll_states()
        except (OSError, http.client.HTTPException, xmlrpc.client.Error, ValueError):
            return False  # not listening yet
        want = self.running_state()
        return len(states) == len(self.names) and all(s == want for s, _ in states.values())

    def pids(self) -> dict[str, int]:
        states = self.poll_states()
        return {name: pid for name, (_, pid) in states.items() if pid}

    def leftovers(self) -> list[int]:
        """The run's processes still there, but for the launcher (ours to reap)."""
        exclude = set() if self.launcher is None else {self.launcher.pid}
        return tagged_pids(self.tag, exclude)

    def __enter__(self) -> Harness:
        _ACTIVE.append(self)
        self.write_config()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        try:
            if not self.supervisor_gone():
                try:
                    self.teardown()
                except (
                    BenchError,
                    subprocess.TimeoutExpired,
                    OSError,
                    http.client.HTTPException,
                    xmlrpc.client.Error,
                ) as e:
                    log(f"{self.label}: graceful stop failed ({e}); killing it")
                pid = self.supervisor_pid()
                if pid is not None and not self.supervisor_gone():
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
        finally:
            kill_child(self.launcher)
            killed = kill_tagged(self.tag, timeout=5)
            if killed:
                log(f"{self.label}: killed {killed} leftover process(es)")
            shutil.rmtree(self.workdir, ignore_errors=True)

    def teardown(self) -> None:
        """Stop the services and the supervisor when nothing is being measured (bounded)."""
        stopper = self.request_stop()
        try:
            stopper.wait(timeout=60)
        finally:
            kill_child(stopper)
        wait_for("the supervisor to exit", self.supervisor_gone, 30, POLL)


class Infraveil(Harness):
    label = "infraveil"

    @property
    def manifest(self) -> Path:
        return self.workdir / "infraveil.toml"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    def write_config(self) -> None:
        parts = []
        for name in self.names:
            parts.append(
                f"[services.{name}]\n"
                f"command = {json.dumps(['sh', '-c', self.command(name)])}\n"
                'stop_timeout = "2s"\n'
            )
        self.manifest.write_text("\n".join(parts))

    def launch(self) -> None:
        self.launched_at = time.monotonic()
        self.launcher = infraveil_up_detached(
            self.manifest, self.state_dir, self.workdir / "up.out", self.env
        )

    def wait_launcher(self, timeout: float = 60) -> int:
        """`up -d` returns once every service has settled; its exit code."""
        assert self.launcher is not None
        try:
            code = self.launcher.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"`infraveil up -d` still running after {timeout:.0f}s") from None
        if code != 0:
            tail = (self.workdir / "up.out").read_text(errors="replace")[-2000:]
            raise BenchError(f"`infraveil up -d` exited {code}: {tail}")
        return code

    def api_get(self, target: str) -> Any:
        return json.loads(agent_get(self.state_dir, target, timeout=10))

    def poll_states(self) -> dict[str, tuple[str, int | None]]:
        # what `infraveil status -o json` prints, read from the same API without a CLI start-up
        rows = self.api_get("/v1/status")["services"]
        return {r["name"]: (r["state"], r["pid"]) for r in rows}

    def running_state(self) -> str:
        return "running"

    def supervisor_pid(self) -> int | None:
        return agent_pid(self.state_dir)

    def request_stop(self) -> subprocess.Popen[bytes]:
        return infraveil_down(self.state_dir, self.workdir / "down.out")

    def restarts(self) -> dict[str, int]:
        rows = self.api_get("/v1/status")["services"]
        return {r["name"]: r["restarts"] for r in rows}


class Supervisord(Harness):
    label = "supervisord"

    def __init__(self, names: list[str], with_starts: bool, one_group: bool = False) -> None:
        self.one_group = one_group
        super().__init__(names, with_starts)

    @property
    def conf(self) -> Path:
        return self.workdir / "supervisord.conf"

    @property
    def sock(self) -> Path:
        return self.workdir / "supervisor.sock"

    def write_config(self) -> None:
        n = len(self.names)
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        minfds = max(1024, 8 * n + 256)
        if hard != resource.RLIM_INFINITY:
            minfds = min(minfds, hard)
        logs = self.workdir / "logs"
        logs.mkdir()
        lines = [
            "[unix_http_server]",
            f"file={self.sock}",
            "chmod=0700",
            "",
            "[supervisord]",
            "nodaemon=true",
            f"logfile={self.workdir}/supervisord.log",
            f"pidfile={self.workdir}/supervisord.pid",
            f"childlogdir={logs}",
            f"minfds={minfds}",
            f"minprocs={max(200, 2 * n + 100)}",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{self.sock}",
            "",
        ]
        for name in self.names:
            argv = ["sh", "-c", self.command(name)] if self.with_starts else ["sleep", "100000"]
            command = shlex.join(argv)
            lines += [
                f"[program:{name}]",
                "command=" + command.replace("%", "%%"),  # supervisord expands %(...)s
                "autostart=true",
                "autorestart=true",
                "startsecs=1",
                "stopwaitsecs=2",
                "stopasgroup=true",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={logs}/{name}.log",
                "",
            ]
        if self.one_group:
            lines += ["[group:all]", "programs=" + ",".join(self.names), ""]
        self.conf.write_text("\n".join(lines))

    def teardown(self) -> None:
        # `supervisorctl shutdown` stops one program group per main-loop iteration (up to 1 s
        # each: minutes for hundreds of programs). When nothing is measured, stop every process
        # at once over XML-RPC, wait until they are gone, then kill the (now idle) supervisord.
        self.rpc().supervisor.stopAllProcesses(False)
        pid = self.supervisor_pid()
        exclude = set() if pid is None else {pid}
        wait_for(
            "supervisord's services to stop",
            lambda: not tagged_pids(self.tag, exclude),
            30,
            interval=0.1,
        )
        assert self.launcher is not None
        self.launcher.kill()
        self.launcher.wait(timeout=10)

    def rpc(self) -> Any:
        return xmlrpc.client.ServerProxy(
            "http://localhost", transport=UnixXMLRPCTransport(str(self.sock), timeout=10)
        )

    def launch(self) -> None:
        out = open(self.workdir / "supervisord.out", "wb")  # noqa: SIM115 - closed right below
        with out:
            self.launched_at = time.monotonic()
            self.launcher = subprocess.Popen(
                [SUPERVISORD, "-n", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # a Ctrl-C at the terminal is ours to handle, not its
            )

    def poll_states(self) -> dict[str, tuple[str, int | None]]:
        if not self.sock.exists():
            raise FileNotFoundError(self.sock)
        infos = self.rpc().supervisor.getAllProcessInfo()
        return {i["name"]: (i["statename"], i["pid"] or None) for i in infos}

    def running_state(self) -> str:
        return "RUNNING"

    def supervisor_pid(self) -> int | None:
        if self.launcher is None:
            return None
        return self.launcher.pid

    def supervisor_gone(self) -> bool:
        return self.launcher is None or self.launcher.poll() is not None

    def request_stop(self) -> subprocess.Popen[bytes]:
        return spawn_logged(
            [SUPERVISORCTL, "-c", str(self.conf), "shutdown"], self.workdir / "shutdown.out"
        )


SYSTEMS: dict[str, type[Harness]] = {"infraveil": Infraveil, "supervisord": Supervisord}
GROUPED = "supervisord, one [group:]"
"""An extra start/stop run of supervisord with every program in one group (stopped at once)."""


def make_harness(system: str, names: list[str], with_starts: bool) -> Harness:
    if system == GROUPED:
        return Supervisord(names, with_starts, one_group=True)
    return SYSTEMS[system](names, with_starts)


def start_and_wait(h: Harness, timeout: float) -> float:
    """Launch `h` and wait until every service is running; seconds from launch to that."""
    h.launch()
    assert h.launched_at is not None
    ready = wait_for(
        f"{len(h.names)} {h.label} services to be running", h.all_running, timeout, POLL
    )
    if isinstance(h, Infraveil):
        h.wait_launcher()
    return ready - h.launched_at


def stop_and_measure(h: Harness, timeout: float) -> dict[str, float]:
    """Ask `h` to stop everything; seconds until the supervisor and every service are gone."""
    t0 = time.monotonic()
    stopper = h.request_stop()
    gone_at = wait_for(f"{h.label} to exit", h.supervisor_gone, timeout, interval=0.005)
    # the services should be gone before their supervisor; if not, count until they are
    clean_at = wait_for(
        f"{h.label}'s services to be gone", lambda: not h.leftovers(), timeout, interval=0.01
    )
    try:
        stopper.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_child(stopper)
        raise BenchError(f"the {h.label} stop command did not return in {timeout:.0f}s") from None
    cli_at = time.monotonic()
    return {
        "stop_s": max(gone_at, clean_at) - t0,
        "supervisor_exit_s": gone_at - t0,
        "stop_cli_s": cli_at - t0,
        "stop_cli_code": float(stopper.returncode),
    }


# ── benchmarks ───────────────────────────────────────────────────────────────────────────────


def _read_starts(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def bench_restart_latency(system: str, n: int) -> dict[str, Any]:
    """kill -9 of each service's main process → first instruction of its next instance."""
    names = service_names(n)
    with make_harness(system, names, with_starts=True) as h:
        start_and_wait(h, timeout=60)
        wait_for(
            "every service's first start line",
            lambda: all(_read_starts(h.starts_file(s)) for s in names),
            10,
            POLL,
        )
        # every service has stayed up ≥ 1 s (running): this is a first crash for each of them
        latencies: dict[str, float] = {}
        missed: list[str] = []
        for name in names:
            pid = h.pids().get(name)
            if not pid:
                missed.append(name)
                continue
            path = h.starts_file(name)
            before = len(_read_starts(path))
            t0 = time.time()
            os.kill(pid, signal.SIGKILL)
            deadline = t0 + RESTART_DEADLINE
            while time.time() < deadline:
                lines = _read_starts(path)
                if len(lines) > before:
                    latencies[name] = float(lines[before]) - t0
                    break
                time.sleep(0.001)
            else:
                missed.append(name)
            time.sleep(KILL_GAP)
        # sanity: everything comes back, and infraveil counted one restart each
        wait_for("every service to be running again", h.all_running, 30, POLL)
        notes = []
        if isinstance(h, Infraveil):
            counts = h.restarts()
            odd = {k: v for k, v in counts.items() if v != 1}
            if odd:
                notes.append(f"restart counters other than 1: {odd}")
    ms = [v * 1000 for v in latencies.values()]
    return {
        "n": n,
        "samples": len(ms),
        "missed": missed,
        "median_ms": statistics.median(ms) if ms else math.nan,
        "p90_ms": percentile(ms, 90),
        "max_ms": max(ms) if ms else math.nan,
        "min_ms": min(ms) if ms else math.nan,
        "all_ms": sorted(ms),
        "notes": notes,
    }


def bench_idle(system: str, n: int, window: float, settle: float = 5.0) -> dict[str, Any]:
    """CPU (% of one core) and RSS of the supervisor process alone, with N idle services."""
    names = service_names(n)
    with make_harness(system, names, with_starts=False) as h:
        started = start_and_wait(h, timeout=120)
        pid = h.supervisor_pid()
        if pid is None:
            raise BenchError(f"no pid for {h.label}")
        proc = psutil.Process(pid)
        time.sleep(settle)
        c0, e0 = proc.cpu_times(), run_ns(pid)
        w0 = time.monotonic()
        time.sleep(window)
        c1, e1 = proc.cpu_times(), run_ns(pid)
        w1 = time.monotonic()
        rss = proc.memory_info().rss
        fds = proc.num_fds()
        threads = proc.num_threads()
        still_running = h.all_running()
    busy = (c1.user - c0.user) + (c1.system - c0.system)
    return {
        "n": n,
        "window_s": w1 - w0,
        "cpu_pct": 100.0 * busy / (w1 - w0),
        "cpu_pct_exact": (
            math.nan if e0 is None or e1 is None else 100.0 * (e1 - e0) / 1e9 / (w1 - w0)
        ),
        "cpu_user_s": c1.user - c0.user,
        "cpu_system_s": c1.system - c0.system,
        "rss_bytes": rss,
        "fds": fds,
        "threads": threads,
        "start_s": started,
        "all_running_at_end": still_running,
    }


def bench_start_stop(system: str, n: int) -> dict[str, Any]:
    """Seconds from launch until N services run, and from the stop command until all is gone."""
    names = service_names(n)
    with make_harness(system, names, with_starts=False) as h:
        start = start_and_wait(h, timeout=120)
        time.sleep(2.0)  # let the last start-up bookkeeping finish before asking to stop
        # supervisord needs ~0.5-1 s per program group to shut down: allow for it
        stop = stop_and_measure(h, timeout=max(120.0, 2.0 * n))
    return {"n": n, "start_s": start, **stop}


# ── machine, report, table ───────────────────────────────────────────────────────────────────


def run_machine_info() -> dict[str, str]:
    """The machine table, with the peer's version and psutil's (it reads the CPU figures)."""
    return machine_info(
        f"{_version('infraveil')} ({infraveil_cli_version()})",
        physical_cores=psutil.cpu_count(logical=False),
        versions={"supervisor": _version("supervisor"), "psutil": _version("psutil")},
    )


def _per_program(r: dict[str, Any] | None) -> str:
    if r is None:
        return ""
    return f" ({r['stop_s'] / r['n']:.2f} s per program in this run)"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@dataclass
class Row:
    metric: str
    values: dict[str, str]
    target: str = "—"
    verdict: str = "—"


@dataclass
class Results:
    params: dict[str, Any]
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)  # "bench/system" -> result
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, bench: str, system: str) -> dict[str, Any] | None:
        return self.raw.get(f"{bench}/{system}")


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f} {unit}"


def _shows(key: str, unit: str, digits: int) -> Callable[[dict[str, Any]], str]:
    """A cell renderer: result[key] with `digits` decimals and `unit`."""

    def render(r: dict[str, Any]) -> str:
        return _fmt(r[key], unit, digits)

    return render


def _cell(
    results: Results, bench: str, system: str, render: Callable[[dict[str, Any]], str]
) -> str:
    r = results.get(bench, system)
    if r is None:
        return "error" if f"{bench}/{system}" in results.errors else "not run"
    return render(r)


def summary_rows(results: Results) -> list[Row]:
    rows: list[Row] = []
    p = results.params
    systems = list(SYSTEMS)

    def verdict(ok: bool | None) -> str:
        return "—" if ok is None else ("met" if ok else "not met")

    # 1. restart latency
    n = p["restart_n"]
    for key, label in (("median_ms", "median"), ("p90_ms", "p90"), ("max_ms", "max")):
        vals = {s: _cell(results, "restart", s, _shows(key, "ms", 1)) for s in systems}
        row = Row(f"restart latency {label} (n={n})", vals)
        if key == "median_ms":
            row.target = "infraveil ≤ 20 ms"
            r = results.get("restart", "infraveil")
            row.verdict = verdict(None if r is None or r["missed"] else r["median_ms"] <= 20)
            if r is not None and r["missed"]:
                row.verdict = f"not met ({len(r['missed'])} missed)"
        rows.append(row)

    # 2. idle cost
    for n in p["idle_counts"]:
        bench = f"idle{n}"
        last = n == max(p["idle_counts"])
        for key, how in (("cpu_pct", "psutil cpu_times"), ("cpu_pct_exact", "schedstat")):
            vals = {s: _cell(results, bench, s, _shows(key, "%", 2)) for s in systems}
            row = Row(f"idle CPU, {n} services, % of a core ({how})", vals)
            if last:
                row.target = "infraveil ≤ 1 %"
                r = results.get(bench, "infraveil")
                row.verdict = verdict(None if r is None or math.isnan(r[key]) else r[key] <= 1.0)
            rows.append(row)
        vals = {s: _cell(results, bench, s, lambda r: mib(r["rss_bytes"])) for s in systems}
        row = Row(f"agent RSS, {n} services", vals, target="infraveil ≤ 2× supervisord")
        ri, rs = results.get(bench, "infraveil"), results.get(bench, "supervisord")
        if ri is not None and rs is not None:
            ratio = ri["rss_bytes"] / rs["rss_bytes"]
            row.verdict = f"{verdict(ratio <= 2.0)} ({ratio:.2f}×)"
        rows.append(row)

    # 3. start / stop
    n = p["startstop_n"]
    grouped = results.get("startstop", GROUPED)
    for key, metric, target in (
        ("start_s", f"start {n} services → all running", "— (both: up 1 s = running)"),
        ("stop_s", f"stop {n} services → supervisor gone, no service left", "—"),
    ):
        vals = {s: _cell(results, "startstop", s, _shows(key, "s", 2)) for s in systems}
        if grouped is not None:
            vals["supervisord"] += f" (one [group:]: {_fmt(grouped[key], 's', 2)})"
        rows.append(Row(metric, vals, target=target))
    return rows


def render_table(rows: list[Row], markdown: bool) -> str:
    header = ["metric", *SYSTEMS, "target", "verdict"]
    body = [[r.metric, *(r.values.get(s, "") for s in SYSTEMS), r.target, r.verdict] for r in rows]
    return format_table(header, body, markdown)


def write_report(
    results: Results,
    machine: dict[str, str],
    rows: list[Row],
    started: dt.datetime,
    elapsed: float,
    out_dir: Path,
    suffix: str = "",
) -> Path:
    """Quick, partial (--only) and interrupted runs get a suffix: they never replace a full one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{started:%Y-%m-%d}-{machine['host']}{suffix}.md"
    p = results.params
    command = command_line()
    lines = [
        f"# infraveil vs supervisord — {started:%Y-%m-%d} on {machine['host']}",
        "",
        f"- **Date:** {started:%Y-%m-%d %H:%M:%S %Z} (run took {elapsed:.0f} s)",
        f"- **Command:** `{command}` (in `{os.getcwd()}`)",
        f"- **Mode:** {'quick' if p['quick'] else 'full'}"
        + (f", only {', '.join(p['only'])}" if p.get("only") else "")
        + (" — **interrupted**" if p.get("interrupted") else ""),
        "",
        *machine_section(machine),
        "## Summary",
        "",
        render_table(rows, markdown=True),
        "",
        "Both supervisors count a service as running once it has stayed up 1 s: infraveil's "
        "fixed settle time, and `startsecs=1` in supervisord.conf. The start figures include "
        "that second. supervisord checks it in its main loop (which wakes at least once a "
        "second); infraveil sets a timer per instance.",
        "",
    ]
    if results.errors:
        lines += ["## Errors", ""]
        for key, err in results.errors.items():
            lines += [f"### {key}", "", "```", err.strip(), "```", ""]
    lines += ["## Details", ""]

    lines += [
        f"### 1. Restart latency ({p['restart_n']} services, one kill each)",
        "",
        "From `kill -9` of a running service's main process (t0 = `time.time()` just before "
        "`os.kill`) to the `date +%s.%N` written by the first command of the new instance. "
        "One kill per service (a first crash: restarted at once by both), "
        f"{KILL_GAP * 1000:.0f} ms between kills.",
        "",
    ]
    for s in SYSTEMS:
        r = results.get("restart", s)
        if r is None:
            continue
        lines.append(
            f"- **{s}:** {r['samples']} samples, min {_fmt(r['min_ms'], 'ms')}, median "
            f"{_fmt(r['median_ms'], 'ms')}, p90 {_fmt(r['p90_ms'], 'ms')}, max "
            f"{_fmt(r['max_ms'], 'ms')}" + (f"; missed: {r['missed']}" if r["missed"] else "")
        )
        lines.append(f"  - all (ms, sorted): {', '.join(f'{x:.1f}' for x in r['all_ms'])}")
        lines += [f"  - note: {note}" for note in r["notes"]]
    lines += [
        "",
        f"### 2. Idle cost ({' and '.join(map(str, p['idle_counts']))} services of `sleep 100000`)",
        "",
        f"After all services run, {p['idle_settle']:.0f} s to settle, then CPU time of the "
        f"supervisor process alone over {p['idle_window']:.0f} s of wall time, as % of one core; "
        "RSS at the end of the window. Services are excluded (the agent / supervisord process, "
        "not its children). Two CPU figures: psutil `cpu_times()` (user + system, as the kernel "
        "samples them at each scheduler tick — a process that wakes for far less than a tick is "
        "charged a whole tick or nothing, so small figures are noisy) and the exact run time of "
        "its threads from `/proc/PID/task/*/schedstat` (nanoseconds, from the scheduler).",
        "",
        "| services | system | CPU % (psutil) | user s | system s | CPU % (schedstat) | RSS | fds "
        "| threads | start s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in p["idle_counts"]:
        for s in SYSTEMS:
            r = results.get(f"idle{n}", s)
            if r is None:
                continue
            lines.append(
                f"| {n} | {s} | {r['cpu_pct']:.2f} | {r['cpu_user_s']:.2f} | "
                f"{r['cpu_system_s']:.2f} | {r['cpu_pct_exact']:.3f} | {mib(r['rss_bytes'])} | "
                f"{r['fds']} | {r['threads']} | "
                f"{r['start_s']:.2f} |"
            )
    lines += [
        "",
        f"### 3. Start and stop ({p['startstop_n']} services of `sleep 100000`)",
        "",
        "Start: from launching `infraveil up -d` (resp. `supervisord -n`, all programs "
        "`autostart=true`) until the status (infraveil API `/v1/status`, resp. XML-RPC "
        f"`getAllProcessInfo`, polled every {POLL * 1000:.0f} ms) shows every service running. "
        "Stop: from launching `infraveil down` (resp. `supervisorctl shutdown`) until the "
        "supervisor process has exited and no service process is left (found by an environment "
        "tag every service inherits).",
        "",
        "| system | start s | stop s | supervisor exited at s | stop command returned at s |",
        "|---|---|---|---|---|",
    ]
    for s in [*SYSTEMS, GROUPED]:
        r = results.get("startstop", s)
        if r is None:
            continue
        lines.append(
            f"| {s} | {r['start_s']:.2f} | {r['stop_s']:.2f} | {r['supervisor_exit_s']:.2f} | "
            f"{r['stop_cli_s']:.2f} (exit {int(r['stop_cli_code'])}) |"
        )
    lines += [
        "",
        f"The `{GROUPED}` row is the same supervisord set-up with every program listed in one "
        "`[group:all]`. supervisord shuts down one program group per main-loop iteration "
        "(`ordered_stop_groups_phase_1/2` in supervisord.py), and an iteration waits in `poll()` "
        "for an event or for its 1 s timeout, so with one program per service (the usual set-up, "
        "and the one in the summary) stopping costs up to about 1 s per program"
        + _per_program(results.get("startstop", "supervisord"))
        + "; a single group is stopped at once.",
        "",
        "### Host load during each benchmark",
        "",
        "Host-wide CPU use (psutil `cpu_percent`, all cores = 100 %) from the start to the end of "
        "each benchmark: the benchmark's own polling, the supervisor and its services, and "
        "anything else that ran on the machine meanwhile (figures taken on a busy machine are "
        "noisier).",
        "",
        "| benchmark | host CPU % |",
        "|---|---|",
        *(f"| {key} | {r.get('host_cpu_pct', math.nan):.1f} |" for key, r in results.raw.items()),
        "",
        "### Configuration",
        "",
        '- infraveil: one `[services.sNNN]` per service, `command = ["sh", "-c", ...]` (or '
        '`sleep 100000`), `stop_timeout = "2s"`; state in a temp dir.',
        "- supervisord 4: `nodaemon` (run with `-n` as a child of the benchmark), Unix socket "
        "and logs in a temp dir, per program `autostart=true autorestart=true startsecs=1 "
        "stopwaitsecs=2 stopasgroup=true killasgroup=true redirect_stderr=true stdout_logfile=…`, "
        "`minfds` raised with the service count.",
        f"- The benchmark raises its own `RLIMIT_NOFILE` soft limit to the hard limit "
        f"({machine['nofile']}); both supervisors inherit it.",
        "",
        "### Raw results (JSON)",
        "",
        "```json",
        json.dumps({"params": p, "results": results.raw}, indent=1, default=str),
        "```",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


# ── main ─────────────────────────────────────────────────────────────────────────────────────


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer services, shorter windows")
    ap.add_argument(
        "--only",
        action="append",
        choices=["restart", "idle", "startstop"],
        help="run only this benchmark (repeatable)",
    )
    add_results_dir(ap)
    args = ap.parse_args(argv)

    for tool in (INFRAVEIL, SUPERVISORD, SUPERVISORCTL):
        if not os.access(tool, os.X_OK):
            print(
                f"missing {tool}: install the project with its bench extra "
                "(pip install -e '.[bench]')",
                file=sys.stderr,
            )
            return 2

    interrupt_on_sigterm()
    soft, hard = raise_fd_limit()
    quick = args.quick
    params: dict[str, Any] = {
        "quick": quick,
        "restart_n": 10 if quick else 30,
        "idle_counts": [50, 100] if quick else [200, 500],
        "idle_window": 10.0 if quick else 30.0,
        "idle_settle": 5.0,
        "startstop_n": 50 if quick else 200,
    }
    only = set(args.only or ["restart", "idle", "startstop"])
    started = dt.datetime.now().astimezone()
    t_start = time.monotonic()
    machine = run_machine_info()
    log(f"machine: {machine['cpu']}, {machine['cores']}, {machine['ram']}; nofile {soft}/{hard}")
    results = Results(params)
    restart_n, startstop_n = params["restart_n"], params["startstop_n"]

    plan: list[tuple[str, str, Callable[[], dict[str, Any]]]] = []
    for system in SYSTEMS:
        if "restart" in only:
            plan.append(("restart", system, partial(bench_restart_latency, system, restart_n)))
        if "idle" in only:
            for n in params["idle_counts"]:
                idle = partial(bench_idle, system, n, params["idle_window"], params["idle_settle"])
                plan.append((f"idle{n}", system, idle))
        if "startstop" in only:
            plan.append(("startstop", system, partial(bench_start_stop, system, startstop_n)))
    if "startstop" in only:
        plan.append(("startstop", GROUPED, partial(bench_start_stop, GROUPED, startstop_n)))
    # interleave the systems per benchmark, so that slow drift of the machine hits both alike
    order = list(dict.fromkeys(b for b, _, _ in plan))
    plan.sort(key=lambda item: order.index(item[0]))

    interrupted = False
    try:
        for bench, system, run in plan:
            log(f"{bench} / {system} …")
            t = time.monotonic()
            psutil.cpu_percent(interval=None)  # start of the host-wide busy figure
            try:
                result = run()
                # how busy the whole machine was meanwhile (the benchmark's own polling, the
                # supervisor, its services — and anything else running on the host)
                result["host_cpu_pct"] = psutil.cpu_percent(interval=None)
                results.raw[f"{bench}/{system}"] = result
                log(
                    f"{bench} / {system} done in {time.monotonic() - t:.1f}s: "
                    f"{_short(results.raw[f'{bench}/{system}'])}"
                )
            except KeyboardInterrupt:
                raise
            except Exception as e:  # one failed benchmark does not stop the others
                results.errors[f"{bench}/{system}"] = traceback.format_exc()
                log(f"{bench} / {system} FAILED: {e}")
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted; cleaning up")
    finally:
        for h in list(_ACTIVE):
            h.cleanup()

    elapsed = time.monotonic() - t_start
    params["only"] = sorted(args.only) if args.only else None
    params["interrupted"] = interrupted
    rows = summary_rows(results)
    print()
    print(render_table(rows, markdown=False))
    add_end_loadavg(machine)
    suffix = (
        ""
        if not (quick or args.only or interrupted)
        else ("-partial" if interrupted or args.only else "-quick")
    )
    path = write_report(results, machine, rows, started, elapsed, args.results_dir, suffix)
    print(f"\nreport: {shown_path(path)} ({elapsed:.0f} s)")
    if interrupted:
        return 130
    return 1 if results.errors else 0


def _short(r: dict[str, Any]) -> str:
    keys = ("median_ms", "p90_ms", "max_ms", "cpu_pct", "rss_bytes", "start_s", "stop_s")
    return ", ".join(
        f"{k}={mib(r[k]) if k == 'rss_bytes' else f'{r[k]:.2f}'}" for k in keys if k in r
    )


if __name__ == "__main__":
    sys.exit(main())
