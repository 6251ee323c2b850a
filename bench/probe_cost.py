#!/usr/bin/env python3
"""Agent CPU per HTTP probe: aiohttp's client against infraveil's own status-line reader.

    .venv/bin/python bench/probe_cost.py [--probes 3000] [--concurrency 50] [--rounds 3]
                                         [--rate 200] [--seconds 10] [--batches 1,20]
                                         [--report PATH]

The budget (DESIGN.md §2 and §9): 500 services × 2 HTTP checks every 5 s is 200 probes/s, and
the agent may spend 3 % of one core on them, about 150 µs of its CPU per probe, event loop
included.

The HTTP server runs in a separate process (a tiny asyncio server that answers `200 OK` and
closes), so only the prober's CPU is counted: `time.process_time()` of this process, all its
threads. Two measurements per candidate:

- burst: `--probes` probes, `--concurrency` at a time, repeated `--rounds` times with the
  candidates interleaved; the median round is reported (CPU µs and wall µs per probe);
- paced: `--rate` probes a second for `--seconds`, each probe its own task started by a
  timer, the way the agent runs them; reported as CPU µs per probe and as % of one core. This
  includes the event loop's wake-ups, which a burst amortises. `--batches` says how many
  probes start together: 1 (every probe on its own timer, evenly spread) and 20 (probe times
  rounded to a 100 ms grid at 200/s). A row with no probe at all gives the cost of the timer
  and task alone.

Candidates: aiohttp's client (one shared `ClientSession`, `TCPConnector(force_close=True)`, a
per-request timeout, redirects not followed); a minimal `asyncio.Protocol` through
`loop.create_connection` that writes the request and parses the status line; and
`infraveil.runtime.probes.http_probe`, the same parser on a bare non-blocking socket; also
`tcp_probe` (connect and close) as the floor any TCP-based probe pays. The exit status is 1
if any probe failed (the figures would not be comparable).

Since the first report (bench/results/2026-11-21-probe-cost.md) the agent runs all its probes
on one shared `ProbeReactor` (one epoll set, no task per probe), and `http_probe` became a
wrapper that makes a reactor for its single probe, so its figure here now includes creating
an epoll set per probe. The agent's real cost per probe is measured by bench/health.py.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
from harness import add_end_loadavg, cpu_model, loadavg, log, machine_section

from infraveil.runtime.probes import http_probe, parse_status_line, tcp_probe

TIMEOUT = 3.0  # the default probe timeout; never reached against a local server

SERVER = r"""
import asyncio, os, sys

ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
          b"Connection: close\r\n\r\nok\n")

class Answer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.head = b""
    def data_received(self, data):
        self.head += data
        if b"\r\n\r\n" in self.head:
            self.transport.write(ANSWER)
            self.transport.close()

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Answer, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    gone = loop.create_future()
    # stdin closes when the benchmark ends, however it ends: the server goes with it
    loop.add_reader(0, lambda: gone.done() or os.read(0, 1) or gone.set_result(None))
    await gone

asyncio.run(main())
"""


Probe = Callable[[], Coroutine[Any, Any, bool]]


class StatusLineProtocol(asyncio.Protocol):
    """Candidate (b) as first drafted: `loop.create_connection` and a Protocol that writes the
    request and resolves `status` with the status code once the status line has arrived."""

    def __init__(self, request: bytes, status: asyncio.Future[int]) -> None:
        self.request = request
        self.status = status
        self.head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.head += data
        try:
            found = parse_status_line(self.head)
        except ValueError:
            found = (0, "")
        if found is not None and not self.status.done():
            self.status.set_result(found[0])
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.status.done():
            self.status.set_result(0)


@dataclass
class Result:
    label: str
    burst_cpu_us: list[float] = field(default_factory=list)
    burst_wall_us: list[float] = field(default_factory=list)
    paced_cpu_us: dict[int, float] = field(default_factory=dict)
    """batch -> CPU µs per probe"""
    paced_core_pct: dict[int, float] = field(default_factory=dict)
    failures: int = 0
    threads: int = 0


async def burst(probe: Probe, n: int, concurrency: int) -> tuple[float, float, int]:
    """CPU and wall µs per probe for `n` probes, `concurrency` at a time; and the failures."""
    failures = 0

    async def worker(count: int) -> None:
        nonlocal failures
        for _ in range(count):
            if not await probe():
                failures += 1

    shares = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(k) for k in shares))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu / n * 1e6, wall / n * 1e6, failures


async def paced(probe: Probe, rate: float, seconds: float, batch: int) -> tuple[float, float, int]:
    """CPU µs per probe and % of one core at `rate` probes a second; and the failures.

    Probes start `batch` at a time (batch / rate seconds apart), as they would if the agent
    rounded each probe's due time to a grid: 20 at 200/s is a 100 ms grid.
    """
    loop = asyncio.get_running_loop()
    n = int(rate * seconds) // batch * batch
    tasks: list[asyncio.Task[bool]] = []

    def start_batch() -> None:
        tasks.extend(loop.create_task(probe()) for _ in range(batch))

    gc.collect()
    start = loop.time() + 0.05
    for i in range(0, n, batch):
        loop.call_at(start + i / rate, start_batch)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(start + seconds - loop.time())
    while len(tasks) < n:  # the last timers are due about now
        await asyncio.sleep(0.01)
    results = await asyncio.gather(*tasks)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu / n * 1e6, cpu / wall * 100, results.count(False)


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


async def run(args: argparse.Namespace, port: int) -> list[Result]:
    url = f"http://127.0.0.1:{port}/healthz"
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    session = aiohttp.ClientSession(connector=connector)
    request_timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    headers = {"User-Agent": "infraveil-probe/1"}

    async def with_aiohttp() -> bool:
        try:
            async with session.get(
                url, timeout=request_timeout, allow_redirects=False, headers=headers
            ) as response:
                return 200 <= response.status < 400
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def with_http_probe() -> bool:
        return (await http_probe("127.0.0.1", port, "/healthz", TIMEOUT)).ok

    loop = asyncio.get_running_loop()
    request = (
        f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: infraveil-probe/1\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode()

    async def with_protocol() -> bool:
        status: asyncio.Future[int] = loop.create_future()
        transport = None
        try:
            async with asyncio.timeout(TIMEOUT):
                transport, _ = await loop.create_connection(
                    lambda: StatusLineProtocol(request, status), "127.0.0.1", port
                )
                return 200 <= await status < 400
        except (OSError, TimeoutError):
            return False
        finally:
            if transport is not None:
                transport.close()

    async def with_tcp() -> bool:
        return (await tcp_probe("127.0.0.1", port, TIMEOUT)).ok

    async def no_probe() -> bool:
        return True

    idle = Result("no probe: the timer and task alone")
    candidates: list[tuple[Result, Probe]] = [
        (Result("aiohttp ClientSession, force_close"), with_aiohttp),
        (Result("asyncio.Protocol + create_connection"), with_protocol),
        (Result("http_probe: loop.sock_* + status-line parser"), with_http_probe),
        (Result("tcp_probe (connect + close, floor)"), with_tcp),
    ]
    try:
        for _, probe in candidates:  # warm up: imports, caches, the server's accept path
            await burst(probe, 200, args.concurrency)
        for r in range(args.rounds):
            for result, probe in candidates:
                cpu, wall, failed = await burst(probe, args.probes, args.concurrency)
                result.burst_cpu_us.append(cpu)
                result.burst_wall_us.append(wall)
                result.failures += failed
                log(f"round {r + 1}: {result.label}: {cpu:.0f} µs CPU, {wall:.0f} µs wall")
        for batch in args.batches:
            for result, probe in [*candidates, (idle, no_probe)]:
                cpu, pct, failed = await paced(probe, args.rate, args.seconds, batch)
                result.paced_cpu_us[batch], result.paced_core_pct[batch] = cpu, pct
                result.failures += failed
                result.threads = max(result.threads, thread_count())
                log(
                    f"paced, {batch} at a time: {result.label}: {cpu:.0f} µs CPU per probe,"
                    f" {pct:.2f} % of a core"
                )
    finally:
        await session.close()
    return [*(result for result, _ in candidates), idle]


def machine() -> dict[str, str]:
    return {
        "host": platform.node(),
        "cpu": cpu_model(),
        "nproc": str(os.cpu_count()),
        "kernel": f"{platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "aiohttp": aiohttp.__version__,
        "loadavg": loadavg(),  # "… at the start; … at the end" once the run is over
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def report(args: argparse.Namespace, results: list[Result], info: dict[str, str]) -> str:
    budget = 0.03 * 1e6 / args.rate
    lines = [
        f"# HTTP probe cost — {dt.date.today().isoformat()} on {info['host']}",
        "",
        f"- **Date:** {info.pop('date')}",
        f"- **Command:** `.venv/bin/python bench/probe_cost.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- **Burst:** {args.probes} probes, {args.concurrency} at a time, {args.rounds} rounds "
        "(candidates interleaved; the median round is shown)",
        f"- **Paced:** {args.rate:g} probes/s for {args.seconds:g} s, one task per probe",
        f"- **Budget:** 3 % of one core at {args.rate:g} probes/s = {budget:.0f} µs CPU a probe",
        "- The HTTP server is a separate process (asyncio, answers `200 OK` and closes); CPU is "
        "`time.process_time()` of the prober alone.",
        "",
        *machine_section(info),
        "## Burst",
        "",
        "| candidate | CPU µs/probe | wall µs/probe | failed probes | threads |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        if not r.burst_cpu_us:
            continue
        lines.append(
            f"| {r.label} | {statistics.median(r.burst_cpu_us):.0f} "
            f"| {statistics.median(r.burst_wall_us):.0f} | {r.failures} | {r.threads} |"
        )
    lines += ["", "Every round (CPU µs per probe):", ""]
    for r in results:
        if r.burst_cpu_us:
            lines.append(f"- {r.label}: " + ", ".join(f"{x:.0f}" for x in r.burst_cpu_us))
    lines += [
        "",
        f"## Paced: {args.rate:g} probes/s",
        "",
        "| candidate | "
        + " | ".join(f"{b} at a time: CPU µs/probe | % of a core" for b in args.batches)
        + " |",
        "|---|" + "---|---|" * len(args.batches),
    ]
    for r in results:
        cells = " | ".join(
            f"{r.paced_cpu_us[b]:.0f}{'' if r.paced_cpu_us[b] <= budget else ' (over)'}"
            f" | {r.paced_core_pct[b]:.2f} %"
            for b in args.batches
        )
        lines.append(f"| {r.label} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--batches",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[1, 20],
        help="paced runs: how many probes start together (comma-separated; default 1,20)",
    )
    parser.add_argument("--report", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())  # the server prints its port once it listens
        info = machine()
        results = asyncio.run(run(args, port))
        add_end_loadavg(info)
    finally:
        assert server.stdin is not None
        server.stdin.close()  # the server's signal to go
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
    text = report(args, results, info)
    print(text)
    if args.report is not None:
        args.report.write_text(text)
        log(f"report written to {args.report}")
    return 0 if all(r.failures == 0 for r in results) else 1


if __name__ == "__main__":
    assert threading.active_count() == 1
    sys.exit(main())
