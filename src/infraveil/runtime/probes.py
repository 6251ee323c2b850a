"""The probe runners of the health checks: one HTTP GET, one TCP connect, one command.

Each runner returns a `ProbeResult` and never raises for anything the probed side can cause
(refusals, resets, garbage, silence, crashes, missing commands); it returns within its
`timeout` plus a few milliseconds. Its `detail` is quoted to people as evidence, so it says
exactly what was seen: "HTTP 503 Service Unavailable for GET /readyz", "nothing listening on
127.0.0.1:8080", "exit 1: pg_isready: no response".

The agent stays free of threads (its spawns must not fork while another thread holds a lock),
so:

- addresses are IP literals in practice (the default is 127.0.0.1) and are connected to
  without any lookup; only a host *name* goes through the loop's resolver, which runs
  `getaddrinfo` in the default executor (a thread);
- commands are started with `subprocess.Popen` and watched through a pidfd and a non-blocking
  pipe on the event loop, not with `asyncio.create_subprocess_exec`, whose child watcher in
  Python 3.11 is a thread per child.

HTTP and TCP probes are non-blocking sockets on a `ProbeReactor` (one epoll set, results in
batches), plus a small parser for the status line (`HTTP/1.x SP 3DIGIT SP reason CRLF`),
chosen by measurement (`bench/probe_cost.py`; bench/results/2026-11-21-probe-cost.md, a 2-vCPU
AMD EPYC VM, CPython 3.11.7). Agent CPU per probe, 3000 probes 50 at a time: 105 µs with a
bare socket and the loop's `sock_*` coroutines, against 210 µs for aiohttp's client (one
shared session, `force_close=True`) and 124–159 µs for an `asyncio.Protocol` through
`create_connection`. In the agent, with 500 services (bench/health.py), a task, a coroutine
and the loop's per-socket callbacks for every probe still cost as much again as the probe, so
the agent runs its probes on one reactor; `http_probe` / `tcp_probe` are awaitable wrappers
of the same code.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import ipaddress
import math
import os
import re
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from infraveil.core.checks import ProbeResult
from infraveil.core.exitstatus import ExitStatus
from infraveil.core.units import format_duration

MAX_HEAD = 8 * 1024
"""Bytes read at most while waiting for the status line (interim 1xx answers included)."""
OUTPUT_TAIL = 4 * 1024
"""Bytes of an exec probe's output kept: the end, where the reason for failing usually is."""
KILL_GRACE = 0.05
"""Seconds to wait for a timed-out command to die of SIGKILL before answering anyway."""

_NO_KWARGS: Mapping[str, Any] = MappingProxyType({})
_STATUS_LINE = re.compile(rb"HTTP/1\.[0-9] ([0-9]{3})(?: ([^\r\n]*))?\r?\n")
_END_OF_HEAD = re.compile(rb"\n\r?\n")
_READ = 64 * 1024


# ── HTTP ──────────────────────────────────────────────────────────────────────────────────────


async def http_probe(host: str, port: int, path: str, timeout: float) -> ProbeResult:
    """GET `path` over a fresh connection; any 2xx or 3xx status passes.

    One connection per probe (`Connection: close`), as the kubelet does: a probe must see what
    a new client would see, and a kept-alive connection would hide a listener that is gone. The
    answer is read only until its status line is complete; then the connection is closed.
    """
    return await _one(host, port, lambda r, a: r.http(0, a, host, port, path, timeout))


async def tcp_probe(host: str, port: int, timeout: float) -> ProbeResult:
    """Open a TCP connection to host:port and close it again; an accepted connection passes."""
    return await _one(host, port, lambda r, a: r.tcp(0, a, host, port, timeout))


async def _one(host: str, port: int, start: Callable[[ProbeReactor, Address], None]) -> ProbeResult:
    """Run one probe on a reactor of its own; a host name is looked up first (in the loop's
    resolver, a thread: the agent itself only probes IP addresses, see `address_of`)."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    address = address_of(host, port)
    if address is None:
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            return _connect_failure(e, host, port, f"{host}:{port}", started)
        address = (infos[0][0], infos[0][4])
    result: asyncio.Future[ProbeResult] = loop.create_future()
    reactor = ProbeReactor(loop, lambda results: result.set_result(results[0][1]))
    try:
        start(reactor, address)
        return await result
    finally:
        reactor.close()


Address = tuple[int, Any]
"""An address family and a socket address, ready for `connect`."""


def address_of(host: str, port: int) -> Address | None:
    """The socket address of an IP literal; None for a host name (which needs a lookup)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if ip.version == 6:
        return socket.AF_INET6, (str(ip), port, 0, 0)
    return socket.AF_INET, (str(ip), port)


_CONNECTING, _READING = 1, 2


class _Probe:
    __slots__ = (
        "deadline",
        "done",
        "fd",
        "head",
        "host",
        "key",
        "port",
        "request",
        "sock",
        "started",
        "step",
        "timeout",
        "what",
    )

    def __init__(
        self,
        key: object,
        host: str,
        port: int,
        what: str,
        request: bytes | None,
        timeout: float,
    ) -> None:
        self.key = key
        self.host, self.port, self.what = host, port, what
        self.request = request
        self.timeout = timeout
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.head = b""
        self.step = _CONNECTING
        self.done = False
        self.sock: socket.socket | None = None
        self.fd = -1


Results = list[tuple[object, ProbeResult]]


class ProbeReactor:
    """Runs many TCP and HTTP probes at once on one epoll set, and hands over their results in
    batches: `on_results([(key, result), ...])`.

    The agent runs a probe per check every few seconds for every service — 200 a second for
    500 services with two checks — so what a probe costs besides its system calls matters.
    With a task, a coroutine and the loop's per-socket callbacks, that was as much again as
    the probe itself (bench/health.py). Here a probe is a small record: its socket joins the
    reactor's own epoll set (one C call), the loop watches only that set's descriptor, and one
    wake-up serves every probe whose socket is ready. Deadlines are kept in a heap, checked by
    one timer. Over loopback a connection is usually up when `connect` returns, and the
    request is written at once; the loop is woken only for the answers.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_results: Callable[[Results], None]
    ) -> None:
        self._loop = loop
        self._on_results = on_results
        self._epoll = select.epoll()
        self._by_fd: dict[int, _Probe] = {}
        self._by_key: dict[object, _Probe] = {}
        self._deadlines: list[tuple[float, int, _Probe]] = []
        self._sequence = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._finished: Results = []
        self._flush_soon: asyncio.Handle | None = None
        self._requests: dict[tuple[str, int, str], bytes] = {}
        """The request of each (host, port, path), built once."""
        loop.add_reader(self._epoll.fileno(), self._ready)

    @property
    def running(self) -> int:
        return len(self._by_key)

    def http(
        self, key: object, address: Address, host: str, port: int, path: str, timeout: float
    ) -> None:
        """Start `GET path`; its result comes with `key`. A probe with the same key is replaced."""
        request = self._requests.get((host, port, path))
        if request is None:
            request = self._requests[(host, port, path)] = (
                f"GET {_request_target(path)} HTTP/1.1\r\n"
                f"Host: {_hostport(host, port)}\r\n"
                "User-Agent: infraveil-probe/1\r\n"
                "Accept: */*\r\n"
                "Connection: close\r\n\r\n"
            ).encode("ascii")
        self._start(_Probe(key, host, port, f"GET {path}", request, timeout), address)

    def tcp(self, key: object, address: Address, host: str, port: int, timeout: float) -> None:
        what = f"TCP {_hostport(host, port)}"
        self._start(_Probe(key, host, port, what, None, timeout), address)

    def cancel(self, key: object) -> None:
        """Forget the probe with `key`: its result never comes."""
        probe = self._by_key.get(key)
        if probe is not None:
            self._end(probe)

    def close(self) -> None:
        for probe in list(self._by_key.values()):
            self._end(probe)
        if self._timer is not None:
            self._timer.cancel()
        if self._flush_soon is not None:
            self._flush_soon.cancel()
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()

    # ── the steps of one probe ──

    def _start(self, probe: _Probe, address: Address) -> None:
        self.cancel(probe.key)
        self._by_key[probe.key] = probe
        family, sockaddr = address
        try:
            sock = socket.socket(
                family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
            )
        except OSError as e:
            self._fail(probe, e)
            return
        probe.sock, probe.fd = sock, sock.fileno()
        self._by_fd[probe.fd] = probe
        error = sock.connect_ex(sockaddr)
        if error == 0:
            self._connected(probe, registered=False)
        elif error in (errno.EINPROGRESS, errno.EAGAIN):
            self._epoll.register(probe.fd, select.EPOLLOUT)
        else:
            self._fail(probe, OSError(error, os.strerror(error)))
            return
        if not probe.done:
            self._sequence += 1
            heapq.heappush(self._deadlines, (probe.deadline, self._sequence, probe))
            if probe.deadline < self._timer_at:
                self._arm(probe.deadline)

    def _connected(self, probe: _Probe, *, registered: bool) -> None:
        if probe.request is None:
            self._finish(probe, True, "TCP connect ok")
            return
        assert probe.sock is not None
        try:
            sent = probe.sock.send(probe.request)
        except BlockingIOError:
            sent = 0
        except OSError as e:
            self._finish(probe, False, f"{_strerror(e)} ({probe.what})")
            return
        probe.request = probe.request[sent:]
        if probe.request:  # a full send buffer: not over loopback, but possible
            events = select.EPOLLOUT
        else:
            probe.step = _READING
            events = select.EPOLLIN
        if registered:
            self._epoll.modify(probe.fd, events)
        else:
            self._epoll.register(probe.fd, events)

    def _readable(self, probe: _Probe) -> None:
        assert probe.sock is not None
        try:
            data = probe.sock.recv(MAX_HEAD - len(probe.head))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:  # a reset, typically: the peer closed with our request unread
            self._finish(probe, False, f"{_strerror(e)} ({probe.what})")
            return
        if not data:
            if probe.head:
                excerpt = _excerpt(probe.head)
                detail = f"connection closed after an incomplete HTTP answer {excerpt}"
                self._finish(probe, False, f"{detail} ({probe.what})")
            else:
                detail = f"connection closed before an HTTP answer ({probe.what})"
                self._finish(probe, False, detail)
            return
        probe.head += data
        try:
            status = parse_status_line(probe.head)
        except ValueError:
            self._finish(probe, False, f"not an HTTP answer: {_excerpt(probe.head)}")
            return
        if status is None:
            if len(probe.head) >= MAX_HEAD:
                self._finish(probe, False, f"not an HTTP answer: {_excerpt(probe.head)}")
            return
        code, reason = status
        if 200 <= code < 400:
            self._finish(probe, True, f"HTTP {code}")
            return
        said = f"HTTP {code} {_printable(reason)}" if reason else f"HTTP {code}"
        self._finish(probe, False, f"{said} for {probe.what}")

    # ── the loop's callbacks ──

    def _ready(self) -> None:
        """The epoll set has ready sockets: take each one a step further."""
        for fd, _events in self._epoll.poll(0):
            probe = self._by_fd.get(fd)
            if probe is None:
                continue
            if probe.step == _CONNECTING:
                assert probe.sock is not None
                error = probe.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    self._fail(probe, OSError(error, os.strerror(error)))
                else:
                    self._connected(probe, registered=True)
            else:
                self._readable(probe)
        self._flush()

    def _expire(self) -> None:
        self._timer, self._timer_at = None, math.inf
        now = time.monotonic()
        heap = self._deadlines
        while heap and (heap[0][2].done or heap[0][0] <= now):
            _, _, probe = heapq.heappop(heap)
            if not probe.done:
                detail = f"no answer within {format_duration(probe.timeout)} ({probe.what})"
                self._finish(probe, False, detail)
        if heap:
            self._arm(heap[0][0])
        self._flush()

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        # the heap's times are time.monotonic(), the loop's is its own clock
        self._timer = self._loop.call_later(max(0.0, at - time.monotonic()), self._expire)

    # ── the end of a probe ──

    def _fail(self, probe: _Probe, e: OSError) -> None:
        self._end(probe)
        self._finished.append(
            (probe.key, _connect_failure(e, probe.host, probe.port, probe.what, probe.started))
        )
        self._flush_later()

    def _finish(self, probe: _Probe, ok: bool, detail: str) -> None:
        self._end(probe)
        duration = time.monotonic() - probe.started
        self._finished.append((probe.key, ProbeResult(ok=ok, detail=detail, duration=duration)))
        self._flush_later()

    def _end(self, probe: _Probe) -> None:
        probe.done = True
        if self._by_key.get(probe.key) is probe:
            del self._by_key[probe.key]
        if probe.sock is not None:
            self._by_fd.pop(probe.fd, None)
            try:
                self._epoll.unregister(probe.fd)
            except (FileNotFoundError, OSError):  # never registered
                pass
            probe.sock.close()
            probe.sock = None

    def _flush_later(self) -> None:
        """Results found outside `_ready` (at once, or by a timer) go out in one batch too."""
        if self._flush_soon is None:
            self._flush_soon = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        if self._finished:
            results, self._finished = self._finished, []
            self._on_results(results)


def parse_status_line(head: bytes) -> tuple[int, str] | None:
    """The final status code and reason phrase at the start of `head`; None until complete.

    Raises ValueError as soon as `head` cannot be the start of an HTTP/1.x answer. Interim
    answers (1xx other than 101, e.g. 103 Early Hints) are skipped: the final one follows them.
    """
    start = 0
    while True:
        prefix = head[start : start + 5]
        if prefix != b"HTTP/"[: len(prefix)]:
            raise ValueError("not HTTP")
        end = head.find(b"\n", start)
        if end < 0:
            return None
        m = _STATUS_LINE.fullmatch(head, start, end + 1)
        if m is None:
            raise ValueError("not an HTTP status line")
        code = int(m[1])
        if 100 <= code < 200 and code != 101:
            blank = _END_OF_HEAD.search(head, end)
            if blank is None:
                return None
            start = blank.end()
            continue
        return code, (m[2] or b"").decode("latin-1").strip()


def _request_target(path: str) -> str:
    """`path` as it may be sent: anything outside printable ASCII percent-encoded."""
    if path.isascii() and path.isprintable() and " " not in path:
        return path
    return "".join(c if c.isascii() and c.isprintable() and c != " " else _percent(c) for c in path)


def _percent(c: str) -> str:
    return "".join(f"%{b:02X}" for b in c.encode("utf-8"))


# ── failures ──────────────────────────────────────────────────────────────────────────────


def _connect_failure(e: OSError, host: str, port: int, what: str, started: float) -> ProbeResult:
    duration = time.monotonic() - started
    if isinstance(e, ConnectionRefusedError):
        detail = f"nothing listening on {_hostport(host, port)}"
        return ProbeResult(ok=False, detail=detail, duration=duration, refused=True)
    if isinstance(e, socket.gaierror):
        detail = f"cannot resolve {host}: {_strerror(e)} ({what})"
        return ProbeResult(ok=False, detail=detail, duration=duration)
    return ProbeResult(ok=False, detail=f"{_strerror(e)} ({what})", duration=duration)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ── exec ──────────────────────────────────────────────────────────────────────────────────────


async def exec_probe(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str,
    timeout: float,
    popen_kwargs: Mapping[str, Any] = _NO_KWARGS,
) -> ProbeResult:
    """Run `argv` in its own session; exit 0 passes.

    stdout and stderr are captured together and the last non-empty line is quoted on failure.
    When the command ends, or runs out of time, its whole process group is SIGKILLed (nothing a
    probe started may pile up, one set every interval) and the leader is reaped. `popen_kwargs`
    go to `subprocess.Popen` as they are (the caller switches users with them).
    """
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    if not argv:
        return ProbeResult(ok=False, detail="no command to run", duration=0.0)
    read_fd, write_fd = os.pipe()
    try:
        os.set_blocking(read_fd, False)
        child = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
            close_fds=True,
            **popen_kwargs,
        )
    except OSError as e:
        os.close(read_fd)
        detail = _spawn_failure(e, argv[0], cwd)
        return ProbeResult(ok=False, detail=detail, duration=time.monotonic() - started)
    finally:
        os.close(write_fd)
    run = _CommandRun(loop, child, read_fd)
    raw: int | None = None
    timed_out = False
    try:
        try:
            async with asyncio.timeout(timeout):
                raw = await asyncio.shield(run.exited)
        except TimeoutError:
            timed_out = True
            run.kill()
            try:
                async with asyncio.timeout(KILL_GRACE):
                    raw = await asyncio.shield(run.exited)
            except TimeoutError:  # dying takes longer (a D state): it is reaped when it ends
                pass
        output = run.last_line()
    finally:
        if not run.exited.done():  # timed out, or the caller gave up on us (cancelled)
            run.kill()
        run.close()
    duration = time.monotonic() - started
    if timed_out:
        detail = f"killed after {format_duration(timeout)} timeout"
        return ProbeResult(ok=False, detail=_with(detail, output), duration=duration)
    if raw is None:
        return ProbeResult(ok=False, detail=_with("exit status lost", output), duration=duration)
    status = ExitStatus.from_wait_status(raw)
    if status.code == 0:
        return ProbeResult(ok=True, detail="exit 0", duration=duration)
    said = f"exit {status.code}" if status.code is not None else status.describe()
    return ProbeResult(ok=False, detail=_with(said, output), duration=duration)


class _CommandRun:
    """One running probe command: its exit through a pidfd, the tail of its output."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, child: subprocess.Popen[bytes], read_fd: int
    ) -> None:
        self._loop = loop
        self._child = child
        self._read_fd: int | None = read_fd
        self._tail = bytearray()
        self.exited: asyncio.Future[int | None] = loop.create_future()
        """The raw wait status of the leader once it is reaped (None: someone else reaped it)."""
        # Our own unreaped child cannot be gone: pidfd_open works even on a zombie.
        self._pidfd = os.pidfd_open(child.pid)
        loop.add_reader(self._pidfd, self._on_exit)
        loop.add_reader(read_fd, self._on_output)

    def _on_exit(self) -> None:
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        # The leader is a zombie now, so its pid still names the group: kill what it left.
        self.kill()
        raw: int | None = None
        try:
            _, raw = os.waitpid(self._child.pid, 0)  # the pidfd said it ended: never blocks
        except ChildProcessError:  # reaped by someone else: its status is lost
            pass
        # Popen must know it is reaped, so that it never waits for (or warns about) it.
        self._child.returncode = -1 if raw is None else os.waitstatus_to_exitcode(raw)
        self._drain()
        if not self.exited.done():
            self.exited.set_result(raw)

    def kill(self) -> None:
        """SIGKILL the whole group; safe while the leader is unreaped (its pid is not reused)."""
        if self._child.returncode is None:
            try:
                os.killpg(self._child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _on_output(self) -> None:
        if self._read() == b"" and self._read_fd is not None:
            # EOF (every writer is gone): stop listening, an fd at EOF is always readable.
            self._loop.remove_reader(self._read_fd)

    def _read(self) -> bytes | None:
        """Read one chunk into the tail: b"" at EOF, None when nothing is waiting."""
        if self._read_fd is None:
            return None
        try:
            data = os.read(self._read_fd, _READ)
        except BlockingIOError:
            return None
        self._tail += data
        if len(self._tail) > OUTPUT_TAIL:
            del self._tail[:-OUTPUT_TAIL]
        return data

    def _drain(self) -> None:
        # Bounded: the group is dead or dying, so the pipe holds little more than its capacity.
        for _ in range(32):
            if not self._read():
                return

    def last_line(self) -> str:
        for line in reversed(self._tail.decode("utf-8", "replace").splitlines()):
            if line.strip():
                return _printable(line.strip())
        return ""

    def close(self) -> None:
        """Stop reading output. The exit stays watched until the leader has been reaped."""
        if self._read_fd is not None:
            self._loop.remove_reader(self._read_fd)
            os.close(self._read_fd)
            self._read_fd = None


def _spawn_failure(e: OSError, name: str, cwd: str) -> str:
    if e.filename == cwd:  # failed before exec: subprocess blames cwd for all of those
        if isinstance(e, FileNotFoundError | NotADirectoryError):
            return f"working directory does not exist: {cwd}"
        return f"cannot run {name}: {_strerror(e)} (entering {cwd}, or switching user)"
    if isinstance(e, FileNotFoundError):
        return f"command not found: {name}"
    if isinstance(e, PermissionError) and e.filename == name:
        return f"permission denied executing {name}"
    return f"cannot run {name}: {_strerror(e)}"


# ── words ─────────────────────────────────────────────────────────────────────────────────────


def _with(said: str, output: str) -> str:
    return f"{said}: {output}" if output else said


def _strerror(e: BaseException) -> str:
    """The system's words for an OSError ("No route to host"), without asyncio's additions."""
    if isinstance(e, socket.gaierror) and e.strerror:
        return e.strerror
    if isinstance(e, OSError) and e.errno is not None:
        return os.strerror(e.errno)
    return str(e) or type(e).__name__


def _excerpt(head: bytes) -> str:
    """The first 40 characters of an answer, quoted so that nothing in it can hide."""
    return repr(head[:160].decode("utf-8", "backslashreplace")[:40])


def _printable(text: str) -> str:
    """`text` with control characters escaped: it ends up in tables and terminals."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
