"""The probe runners against real servers on real sockets, and real tiny processes.

Every server here is an asyncio server in the test's own loop, or a bare socket; each test
asserts the exact `detail` a person would be shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from infraveil.core.checks import ProbeResult
from infraveil.runtime.probes import (
    MAX_HEAD,
    ProbeReactor,
    address_of,
    exec_probe,
    http_probe,
    parse_status_line,
    tcp_probe,
)
from waiting import wait_for, wait_for_async

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
MARGIN = 0.1  # a probe must answer within its timeout plus this (generous for a loaded host)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextlib.asynccontextmanager
async def serving(handler: Handler, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """Run `handler` for every connection to a fresh port on `host`; yield the port."""
    handlers: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(tracked, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def answering(*pieces: bytes, pause: float = 0.0) -> Handler:
    """A handler that reads the request head, then writes `pieces` (with `pause` between)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for i, piece in enumerate(pieces):
            if i and pause:
                await asyncio.sleep(pause)  # so that each piece is a TCP segment of its own
            writer.write(piece)
            await writer.drain()

    return handler


def probe_http(handler: Handler, path: str = "/healthz", timeout: float = 3.0) -> ProbeResult:
    async def main() -> ProbeResult:
        async with serving(handler) as port:
            return await http_probe("127.0.0.1", port, path, timeout)

    return asyncio.run(main())


def free_port(family: socket.AddressFamily = socket.AF_INET) -> tuple[socket.socket, int]:
    """A bound socket that does not listen: connections to its port are refused, and the
    port stays ours until the socket is closed."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    return sock, sock.getsockname()[1]


# ── HTTP ──────────────────────────────────────────────────────────────────────────────────────


def test_http_200_passes_and_the_request_is_proper_http_1_1() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    async def main() -> tuple[int, ProbeResult]:
        async with serving(handler) as port:
            return port, await http_probe("127.0.0.1", port, "/healthz", 3.0)

    port, result = asyncio.run(main())
    assert result == ProbeResult(ok=True, detail="HTTP 200", duration=result.duration)
    assert 0 < result.duration < 3
    lines = heads[0].decode("ascii").split("\r\n")
    assert lines[0] == "GET /healthz HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}" in lines
    assert "Connection: close" in lines
    assert "User-Agent: infraveil-probe/1" in lines


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (b"HTTP/1.1 301 Moved Permanently\r\nLocation: /elsewhere\r\n\r\n", "HTTP 301"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", "HTTP 204"),
        (b"HTTP/1.0 200 OK\r\n\r\n", "HTTP 200"),
        (b"HTTP/1.1 200\r\n\r\n", "HTTP 200"),  # no reason phrase (and no space) is tolerated
        (b"HTTP/1.1 200 OK\n\n", "HTTP 200"),  # bare LF line ends, as RFC 9112 allows
    ],
)
def test_2xx_and_3xx_pass(answer: bytes, detail: str) -> None:
    result = probe_http(answering(answer))
    assert (result.ok, result.detail, result.refused) == (True, detail, False)


@pytest.mark.parametrize(
    ("answer", "path", "detail"),
    [
        (b"HTTP/1.1 404\r\n\r\n", "/healthz", "HTTP 404 for GET /healthz"),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", "/healthz", "HTTP 404 Not Found for GET /healthz"),
        (
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n\r\ndown",
            "/readyz",
            "HTTP 503 Service Unavailable for GET /readyz",
        ),
        (
            b"HTTP/1.1 500 Internal Server Error\r\n\r\n",
            "/",
            "HTTP 500 Internal Server Error for GET /",
        ),
    ],
)
def test_other_statuses_fail_with_the_status_and_the_request(
    answer: bytes, path: str, detail: str
) -> None:
    result = probe_http(answering(answer), path=path)
    assert (result.ok, result.detail, result.refused) == (False, detail, False)


def test_interim_1xx_answers_are_skipped_for_the_final_one() -> None:
    answer = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 503 Service Unavailable\r\n\r\n"
    )
    result = probe_http(answering(answer), path="/")
    assert result.detail == "HTTP 503 Service Unavailable for GET /"


def test_a_status_line_split_over_several_segments_is_reassembled() -> None:
    result = probe_http(
        answering(b"HT", b"TP/1.1 2", b"00 O", b"K\r", b"\n\r\n", pause=0.02),
    )
    assert (result.ok, result.detail) == (True, "HTTP 200")


def test_a_failing_status_split_over_segments_keeps_its_reason() -> None:
    result = probe_http(answering(b"HTTP/1.1 50", b"3 Service Unav", b"ailable\r\n", pause=0.02))
    assert result.detail == "HTTP 503 Service Unavailable for GET /healthz"


def test_nothing_listening_is_a_refusal() -> None:
    holder, port = free_port()
    with holder:
        result = asyncio.run(http_probe("127.0.0.1", port, "/healthz", 3.0))
    assert result.detail == f"nothing listening on 127.0.0.1:{port}"
    assert (result.ok, result.refused) == (False, True)
    assert result.duration < 1


def test_a_server_that_never_answers_times_out_on_time() -> None:
    async def main() -> tuple[ProbeResult, float]:
        seen = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.set()
            await asyncio.Event().wait()  # until the test ends

        async with serving(silent) as port:
            started = time.monotonic()
            result = await http_probe("127.0.0.1", port, "/healthz", 0.3)
            elapsed = time.monotonic() - started
            assert seen.is_set()
        return result, elapsed

    result, elapsed = asyncio.run(main())
    assert result.detail == "no answer within 0.3s (GET /healthz)"
    assert (result.ok, result.refused) == (False, False)
    assert 0.3 <= elapsed < 0.3 + MARGIN
    assert 0.3 <= result.duration <= elapsed


def test_a_server_that_closes_at_once() -> None:
    result = probe_http(answering())
    assert result.detail == "connection closed before an HTTP answer (GET /healthz)"
    assert (result.ok, result.refused) == (False, False)


def test_a_server_that_resets_the_connection() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # close with linger 0: an RST instead of a FIN

    result = probe_http(reset)
    assert result.detail == "Connection reset by peer (GET /healthz)"
    assert not result.ok


def test_a_server_that_closes_in_the_middle_of_the_status_line() -> None:
    result = probe_http(answering(b"HTTP/1.1 20"))
    assert result.detail == (
        "connection closed after an incomplete HTTP answer 'HTTP/1.1 20' (GET /healthz)"
    )


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (
            b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
            r"not an HTTP answer: 'SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n'",
        ),
        (  # what Redis says to an HTTP request: quoted, and cut at 40 characters
            b"-ERR unknown command 'GET', with args beginning with: '/healthz' \r\n",
            """not an HTTP answer: "-ERR unknown command 'GET', with args be\"""",
        ),
        (b"\x00\x01\x02binary", r"not an HTTP answer: '\x00\x01\x02binary'"),
        (b"HTTP/2 200\r\n\r\n", r"not an HTTP answer: 'HTTP/2 200\r\n\r\n'"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", r"not an HTTP answer: 'HTTP/1.1 2000 OK\r\n\r\n'"),
    ],
)
def test_an_answer_that_is_not_http(answer: bytes, detail: str) -> None:
    result = probe_http(answering(answer))
    assert (result.ok, result.detail) == (False, detail)


def test_a_status_line_that_never_ends_is_cut_at_the_cap() -> None:
    result = probe_http(answering(b"HTTP/1.1 200 " + b"x" * (2 * MAX_HEAD)))
    assert result.detail == "not an HTTP answer: 'HTTP/1.1 200 xxxxxxxxxxxxxxxxxxxxxxxxxxx'"


def test_a_reason_phrase_with_control_characters_is_escaped() -> None:
    result = probe_http(answering(b"HTTP/1.1 500 Bad\x1b[31m news\r\n\r\n"), path="/")
    assert result.detail == r"HTTP 500 Bad\x1b[31m news for GET /"


def test_a_path_with_spaces_is_percent_encoded_on_the_wire() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 404 Not Found\r\n\r\n")

    result = probe_http(handler, path="/health check/é")
    assert heads[0].startswith(b"GET /health%20check/%C3%A9 HTTP/1.1\r\n")
    assert result.detail == "HTTP 404 Not Found for GET /health check/é"


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this host")
def test_ipv6_literal_hosts() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n")

    async def main() -> tuple[int, ProbeResult, ProbeResult]:
        async with serving(handler, host="::1") as port:
            return (
                port,
                await http_probe("::1", port, "/healthz", 3.0),
                await tcp_probe("::1", port, 3.0),
            )

    port, http, tcp = asyncio.run(main())
    assert (http.ok, http.detail) == (True, "HTTP 200")
    assert f"Host: [::1]:{port}".encode() in heads[0]
    assert (tcp.ok, tcp.detail) == (True, "TCP connect ok")

    holder, refused_port = free_port(socket.AF_INET6)
    with holder:
        result = asyncio.run(http_probe("::1", refused_port, "/healthz", 3.0))
    assert (result.detail, result.refused) == (f"nothing listening on [::1]:{refused_port}", True)


def test_a_host_name_is_looked_up_and_every_address_tried() -> None:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo("localhost", 80)}
    except socket.gaierror:
        pytest.skip("localhost does not resolve on this host")
    if not addresses <= {"127.0.0.1", "::1"}:
        pytest.skip(f"localhost resolves to {addresses}")
    holder, port = free_port()  # refused on 127.0.0.1; and nothing listens on ::1 either
    with holder:
        result = asyncio.run(http_probe("localhost", port, "/healthz", 3.0))
    assert (result.detail, result.refused) == (f"nothing listening on localhost:{port}", True)


def test_http_probes_start_no_thread() -> None:
    probe_http(answering(b"HTTP/1.1 200 OK\r\n\r\n"))
    assert threading.active_count() == 1


# ── the status line parser ────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"HTTP/1.1 200 OK\r\n", (200, "OK")),
        (b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\n", (404, "Not Found")),
        (b"HTTP/1.1 200\r\n", (200, "")),
        (b"HTTP/1.1 200 \r\n", (200, "")),
        (b"HTTP/1.1 418 I'm a teapot\n", (418, "I'm a teapot")),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n", (201, "Created")),
        (b"HTTP/1.1 101 Switching Protocols\r\n", (101, "Switching Protocols")),
        (b"", None),
        (b"HT", None),
        (b"HTTP/1.1 200 O", None),
        (b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n", None),  # the final answer is still due
    ],
)
def test_parse_status_line(head: bytes, status: tuple[int, str] | None) -> None:
    assert parse_status_line(head) == status


@pytest.mark.parametrize(
    "head",
    [
        b"http/1.1 200 OK\r\n",
        b"HTTP/2 200\r\n",
        b"HTTP/1.1 20 OK\r\n",
        b"X",
        b"HTTP/1.1 200 O\rK\r\n",
    ],
)
def test_parse_status_line_rejects_what_is_not_http(head: bytes) -> None:
    with pytest.raises(ValueError):
        parse_status_line(head)


# ── TCP ───────────────────────────────────────────────────────────────────────────────────────


def test_tcp_connect_ok() -> None:
    async def main() -> ProbeResult:
        async with serving(answering()) as port:
            return await tcp_probe("127.0.0.1", port, 3.0)

    result = asyncio.run(main())
    assert (result.ok, result.detail, result.refused) == (True, "TCP connect ok", False)
    assert result.duration > 0


def test_tcp_refused() -> None:
    holder, port = free_port()
    with holder:
        result = asyncio.run(tcp_probe("127.0.0.1", port, 3.0))
    assert (result.ok, result.detail, result.refused) == (
        False,
        f"nothing listening on 127.0.0.1:{port}",
        True,
    )


def test_tcp_timeout_when_the_listener_accepts_nothing_more() -> None:
    # A listener whose accept queue is full drops new SYNs: the connect hangs unanswered.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):  # the queue holds backlog + 1; fill it whatever the kernel rounds to
                filler = socket.socket()
                fillers.append(filler)
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            started = time.monotonic()
            result = asyncio.run(tcp_probe("127.0.0.1", port, 0.3))
            elapsed = time.monotonic() - started
        finally:
            for filler in fillers:
                filler.close()
    assert result.detail == f"no answer within 0.3s (TCP 127.0.0.1:{port})"
    assert (result.ok, result.refused) == (False, False)
    assert elapsed < 0.3 + MARGIN


# ── exec ──────────────────────────────────────────────────────────────────────────────────────


def run_exec(
    code: str,
    tmp_path: Path,
    *,
    timeout: float = 10.0,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    popen_kwargs: dict[str, object] | None = None,
) -> tuple[ProbeResult, float]:
    """Run `python -c code` as an exec probe: its result, and how long the probe took."""

    async def main() -> tuple[ProbeResult, float]:
        started = time.monotonic()
        result = await exec_probe(
            [sys.executable, "-c", code],
            env=dict(os.environ) if env is None else env,
            cwd=str(tmp_path) if cwd is None else cwd,
            timeout=timeout,
            popen_kwargs=popen_kwargs or {},
        )
        return result, time.monotonic() - started

    return asyncio.run(main())


def test_exec_exit_0_passes(tmp_path: Path) -> None:
    result, _ = run_exec("print('fine')", tmp_path)
    assert (result.ok, result.detail) == (True, "exit 0")
    assert result.duration > 0
    assert threading.active_count() == 1, "exec probes must not start threads"


def test_exec_failure_quotes_the_last_non_empty_line(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "print('checking…', flush=True)\n"
        "print('pg_isready: no response', file=sys.stderr, flush=True)\n"
        "print('   ')\n"
        "sys.exit(1)\n"
    )
    result, _ = run_exec(code, tmp_path)
    assert (result.ok, result.detail) == (False, "exit 1: pg_isready: no response")


def test_exec_failure_without_output(tmp_path: Path) -> None:
    result, _ = run_exec("raise SystemExit(3)", tmp_path)
    assert (result.ok, result.detail) == (False, "exit 3")


def test_exec_killed_by_a_signal(tmp_path: Path) -> None:
    code = "import os, signal\nprint('going', flush=True)\nos.kill(os.getpid(), signal.SIGTERM)"
    result, _ = run_exec(code, tmp_path)
    assert (result.ok, result.detail) == (False, "killed by SIGTERM: going")


def test_exec_keeps_only_the_tail_of_a_flood_of_output(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.stdout.write('noise ' * 10 + '\\n') \n"
        "for i in range(20000): sys.stdout.write(f'line {i}\\n')\n"
        "sys.stdout.write('the end\\n')\n"
        "sys.exit(2)\n"
    )
    result, _ = run_exec(code, tmp_path)
    assert result.detail == "exit 2: the end"


def test_exec_timeout_kills_the_whole_group_and_reaps_it(
    tmp_path: Path, alive: Callable[[int], bool], process_state: Callable[[int], str | None]
) -> None:
    pids = tmp_path / "pids"
    code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "print('waiting for the database', flush=True)\n"
        "time.sleep(1000)\n"
    )

    result, elapsed = run_exec(code, tmp_path, timeout=1.0)
    assert result.detail == "killed after 1.0s timeout: waiting for the database"
    assert not result.ok
    assert 1.0 <= elapsed < 1.0 + MARGIN
    leader, grandchild = (int(p) for p in pids.read_text().split())
    assert process_state(leader) is None, "the probe command was not reaped"
    wait_for(lambda: not alive(grandchild), 5, "the probe's own child to be killed too")


def test_exec_leftovers_of_a_finished_probe_are_killed(
    tmp_path: Path, alive: Callable[[int], bool]
) -> None:
    pid_file = tmp_path / "pid"
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)'],\n"
        "                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
    )
    result, _ = run_exec(code, tmp_path)
    assert result.detail == "exit 0"
    wait_for(lambda: not alive(int(pid_file.read_text())), 5, "the leftover to be killed")


def test_exec_honours_env_cwd_and_popen_kwargs(tmp_path: Path) -> None:
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    code = (
        "import os\n"
        "mask = os.umask(0)\n"
        "print(os.environ['PROBE_VAR'], os.environ.get('HOME', '-'), os.getcwd(), oct(mask))\n"
        "raise SystemExit(1)\n"
    )
    result, _ = run_exec(
        code,
        tmp_path,
        env={"PROBE_VAR": "from-the-service"},
        cwd=str(workdir),
        popen_kwargs={"umask": 0o027},
    )
    assert result.detail == f"exit 1: from-the-service - {workdir} 0o27"


def test_exec_command_not_found(tmp_path: Path) -> None:
    result = asyncio.run(
        exec_probe(
            ["no-such-command-infraveil"],
            env={"PATH": "/usr/bin:/bin"},
            cwd=str(tmp_path),
            timeout=3.0,
        )
    )
    assert (result.ok, result.detail) == (False, "command not found: no-such-command-infraveil")


def test_exec_missing_working_directory(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone")
    result = asyncio.run(
        exec_probe([sys.executable, "-c", "pass"], env={}, cwd=missing, timeout=3.0)
    )
    assert (result.ok, result.detail) == (False, f"working directory does not exist: {missing}")


def test_exec_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    result = asyncio.run(exec_probe([str(script)], env={}, cwd=str(tmp_path), timeout=3.0))
    if os.geteuid() == 0 and result.ok:
        pytest.skip("root may execute files without an x bit on this file system")
    assert (result.ok, result.detail) == (False, f"permission denied executing {script}")


def test_exec_cancelled_probe_kills_its_command_and_reaps_it(
    tmp_path: Path, process_state: Callable[[int], str | None]
) -> None:
    pid_file = tmp_path / "pid"
    code = (
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(1000)"
    )

    async def main() -> None:
        argv = [sys.executable, "-c", code]
        task = asyncio.ensure_future(
            exec_probe(argv, env=dict(os.environ), cwd=str(tmp_path), timeout=60)
        )
        await wait_for_async(lambda: pid_file.exists() and pid_file.read_text(), 10, "the pid")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        pid = int(pid_file.read_text())
        # gone from /proc: killed, and reaped by the probe's exit watcher
        await wait_for_async(lambda: process_state(pid) is None, 5, "the command to be reaped")

    asyncio.run(main())


# ── the reactor the agent runs its probes on ────────────────────────────────────────────────


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_reactor_runs_many_probes_at_once_and_hands_results_over_in_batches() -> None:
    wedged: list[asyncio.StreamWriter] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if b"/wedged" in head:
            wedged.append(writer)
            await asyncio.sleep(3600)
        code = b"200 OK" if b"/ok" in head else b"503 Service Unavailable"
        writer.write(b"HTTP/1.1 " + code + b"\r\n\r\n")
        await writer.drain()

    async def main() -> tuple[list[list[tuple[object, ProbeResult]]], int, int]:
        batches: list[list[tuple[object, ProbeResult]]] = []
        loop = asyncio.get_running_loop()
        before = open_fds()
        async with serving(handler) as port:
            free = socket.socket()
            free.bind(("127.0.0.1", 0))
            closed_port = free.getsockname()[1]
            free.close()
            reactor = ProbeReactor(loop, batches.append)
            address = address_of("127.0.0.1", port)
            assert address is not None
            for n in range(40):
                reactor.http(("ok", n), address, "127.0.0.1", port, "/ok", 3.0)
            for n in range(5):
                reactor.http(("bad", n), address, "127.0.0.1", port, "/bad", 3.0)
            reactor.http("wedged", address, "127.0.0.1", port, "/wedged", 0.3)
            reactor.http("cancelled", address, "127.0.0.1", port, "/wedged", 0.3)
            reactor.cancel("cancelled")
            refused = address_of("127.0.0.1", closed_port)
            assert refused is not None
            reactor.tcp("refused", refused, "127.0.0.1", closed_port, 3.0)
            reactor.tcp("tcp", address, "127.0.0.1", port, 3.0)
            # the same key again replaces the probe: one result for it, not two
            reactor.tcp("tcp", address, "127.0.0.1", port, 3.0)
            await wait_for_async(
                lambda: sum(map(len, batches)) >= 48 and reactor.running == 0,
                5,
                "every probe's result",
            )
        during = open_fds()  # the server and its connections are closed by now
        reactor.close()
        return batches, before, during

    batches, before, during = asyncio.run(main())
    results = dict(r for batch in batches for r in batch)
    assert sum(map(len, batches)) == len(results) == 48  # nothing twice, "cancelled" never
    assert len(batches) < 48, "results that are ready together come in one batch"
    assert all(results[("ok", n)].detail == "HTTP 200" for n in range(40))
    assert all(
        results[("bad", n)].detail == "HTTP 503 Service Unavailable for GET /bad" for n in range(5)
    )
    assert results["wedged"].detail == "no answer within 0.3s (GET /wedged)"
    assert results["refused"].refused and results["refused"].detail.startswith("nothing listening")
    assert results["tcp"].ok
    assert "cancelled" not in results
    assert during <= before + 1  # every probe's socket is closed (the reactor's epoll remains)
