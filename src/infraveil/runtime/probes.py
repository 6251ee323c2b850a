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

HTTP is a bare non-blocking socket driven by the loop's `sock_connect` / `sock_sendall` /
`sock_recv`, plus a small parser for the status line (`HTTP/1.x SP 3DIGIT SP reason CRLF`),
chosen by measurement (`bench/probe_cost.py`; bench/results/2026-11-21-probe-cost.md, a 2-vCPU
AMD EPYC VM, CPython 3.11.7). Agent CPU per probe, 3000 probes 50 at a time: 105 µs, against
210 µs for aiohttp's client (one shared session, `force_close=True`) and 124–159 µs for an
`asyncio.Protocol` through `create_connection`. At 200 probes/s (500 services × 2 checks every
5 s) with probes started 20 at a time: 116 µs, 2.3 % of a core, within the 3 % budget
(≈150 µs); aiohttp needs 266 µs (5.3 %). Spread one probe per wake-up, every candidate is over
budget (264 µs here, 518 µs with aiohttp): each wake-up of the loop costs ~70 µs on that VM,
so the scheduler should start probes on a coarse grid to share wake-ups.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
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
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    what = f"GET {path}"
    request = (
        f"GET {_request_target(path)} HTTP/1.1\r\n"
        f"Host: {_hostport(host, port)}\r\n"
        "User-Agent: infraveil-probe/1\r\n"
        "Accept: */*\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    try:
        async with asyncio.timeout(timeout):
            sock = await _connect(loop, host, port)
            try:
                await loop.sock_sendall(sock, request)
                ok, detail = await _read_status(loop, sock, what)
            finally:
                sock.close()
    except TimeoutError:
        ok, detail = False, f"no answer within {format_duration(timeout)} ({what})"
    except OSError as e:
        return _connect_failure(e, host, port, what, started)
    return ProbeResult(ok=ok, detail=detail, duration=time.monotonic() - started)


async def _read_status(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, what: str
) -> tuple[bool, str]:
    """Read until the status line is known (at most MAX_HEAD bytes): (passed, detail)."""
    head = b""
    while True:
        try:
            data = await loop.sock_recv(sock, MAX_HEAD - len(head))
        except OSError as e:  # a reset, typically: the peer closed with our request unread
            return False, f"{_strerror(e)} ({what})"
        if not data:
            if head:
                return False, (
                    f"connection closed after an incomplete HTTP answer {_excerpt(head)} ({what})"
                )
            return False, f"connection closed before an HTTP answer ({what})"
        head += data
        try:
            status = parse_status_line(head)
        except ValueError:
            return False, f"not an HTTP answer: {_excerpt(head)}"
        if status is not None:
            break
        if len(head) >= MAX_HEAD:
            return False, f"not an HTTP answer: {_excerpt(head)}"
    code, reason = status
    if 200 <= code < 400:
        return True, f"HTTP {code}"
    said = f"HTTP {code} {_printable(reason)}" if reason else f"HTTP {code}"
    return False, f"{said} for {what}"


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


# ── TCP ───────────────────────────────────────────────────────────────────────────────────────


async def tcp_probe(host: str, port: int, timeout: float) -> ProbeResult:
    """Open a TCP connection to host:port and close it again; an accepted connection passes."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    what = f"TCP {_hostport(host, port)}"
    try:
        async with asyncio.timeout(timeout):
            sock = await _connect(loop, host, port)
    except TimeoutError:
        detail = f"no answer within {format_duration(timeout)} ({what})"
        return ProbeResult(ok=False, detail=detail, duration=time.monotonic() - started)
    except OSError as e:
        return _connect_failure(e, host, port, what, started)
    sock.close()
    return ProbeResult(ok=True, detail="TCP connect ok", duration=time.monotonic() - started)


# ── connecting ────────────────────────────────────────────────────────────────────────────────


async def _connect(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """A connected non-blocking socket to the first address of `host` that accepts.

    If every address refuses, the refusal is raised (nothing listens); otherwise the first
    other error, which says more than a refusal on one of several addresses.
    """
    try:  # an address: no lookup at all
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:  # a name: the loop's resolver (a thread in the default executor)
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    errors: list[OSError] = []
    for family, type_, proto, _, address in infos:
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            if not _connected_at_once(sock, address):
                await loop.sock_connect(sock, address)  # EALREADY: it waits for writability
            return sock
        except OSError as e:
            sock.close()
            errors.append(e)
        except BaseException:
            sock.close()
            raise
    others = [e for e in errors if not isinstance(e, ConnectionRefusedError)]
    if not errors:
        raise OSError(f"{host} has no address")
    raise (others or errors)[0]


def _connected_at_once(sock: socket.socket, address: Any) -> bool:
    """Start connecting; True if the connection is already up when `connect` returns.

    Over loopback it nearly always is: the kernel processes the handshake before the call
    returns (though it says EINPROGRESS). Checking saves a wake-up of the event loop, which
    costs more CPU than the rest of a TCP probe (bench/probe_cost.py). Raises the refusal.
    """
    try:
        sock.connect(address)
        return True
    except BlockingIOError:
        pass
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, os.strerror(error))
    try:
        sock.getpeername()
    except OSError:  # ENOTCONN: the handshake is still under way
        return False
    return True


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
