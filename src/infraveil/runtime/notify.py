"""The receiving end of systemd's `sd_notify` protocol, one socket per instance.

A service that supports it (`sd_notify(3)`, `systemd-notify`, or a few lines of any language)
sends datagrams of newline-separated `KEY=VALUE` pairs (`READY=1`, `STATUS=...`,
`WATCHDOG=1`) to the socket named in its `NOTIFY_SOCKET` variable.

The socket is in the *abstract* namespace: it has no file, so a service running as another
user can reach it without any permission being set up, and nothing is left behind on disk.
Anyone on the host (in the same network namespace) can reach it too, which is why every
datagram is delivered with the sender's pid (`SO_PASSCRED`: the kernel vouches for it), and why
the caller accepts only senders in the service's process group (`process_group_of`).
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import socket
import struct
from collections.abc import Callable, Mapping

MAX_DATAGRAM = 4096
"""Longer datagrams are dropped: systemd reads at most this much (PIPE_BUF) per message."""
MAX_PER_WAKEUP = 1024
"""Datagrams read in one wake-up at most, so a flooding sender cannot starve the loop; the
rest are read on the next turn (the socket stays readable)."""

_CREDS = struct.Struct("iII")  # struct ucred: pid, uid, gid
_ANCILLARY = socket.CMSG_SPACE(_CREDS.size)
_FD = struct.Struct("i")


class NotifySocket:
    """A bound notify socket; calls `on_message(pairs, sender_pid)` from the event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        address: str,
        on_message: Callable[[Mapping[str, str], int | None], None],
    ) -> None:
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._on_message = on_message
        self.address = address
        """The value for `NOTIFY_SOCKET`: `@infraveil/<random>` (`@` is systemd's notation
        for the abstract namespace, where the name starts with a NUL byte)."""
        loop.add_reader(sock.fileno(), self._on_readable)

    @classmethod
    def open(
        cls,
        loop: asyncio.AbstractEventLoop,
        on_message: Callable[[Mapping[str, str], int | None], None],
        address: str | None = None,
    ) -> NotifySocket:
        """Bind a new socket under a random name, or under `address` again.

        A restarted agent passes the `address` of an instance it adopts: the instance's
        environment cannot change, so the same name must come back. Raises OSError if the
        name is taken (EADDRINUSE), ValueError if `address` is not an abstract `@name`.
        """
        if address is not None and not (address.startswith("@") and len(address) > 1):
            raise ValueError(f"not an abstract socket address (@name): {address!r}")
        for _ in range(8):  # a clash of 64 random bits will not happen; still, retry
            name = address or f"@infraveil/{secrets.token_hex(8)}"
            sock = socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
            )
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
                sock.bind(b"\0" + name[1:].encode())
            except OSError as e:
                sock.close()
                if address is None and e.errno == errno.EADDRINUSE:
                    continue
                raise
            return cls(loop, sock, name, on_message)
        raise OSError(errno.EADDRINUSE, "no free notify socket name")

    def _on_readable(self) -> None:
        for _ in range(MAX_PER_WAKEUP):
            if self._sock is None:  # closed by on_message
                return
            try:
                data, ancdata, flags, _ = self._sock.recvmsg(MAX_DATAGRAM, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # nothing a sender can cause; do not spin on it
                return
            pid = _sender_pid(ancdata)
            if flags & socket.MSG_TRUNC:
                continue  # longer than systemd accepts: not a notify message
            pairs = parse_message(data)
            if pairs:
                self._on_message(pairs, pid)

    def close(self) -> None:
        """Stop listening and release the name (idempotent)."""
        if self._sock is None:
            return
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None


def parse_message(data: bytes) -> dict[str, str]:
    """The `KEY=VALUE` pairs of one datagram; lines that are not such a pair are ignored."""
    pairs: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key and key.strip() == key:
            pairs[key] = value
    return pairs


def _sender_pid(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    pid: int | None = None
    for level, kind, payload in ancdata:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_CREDENTIALS and len(payload) >= _CREDS.size:
            sender, _uid, _gid = _CREDS.unpack_from(payload)
            pid = sender or None  # 0: the sender is in a pid namespace we cannot see
        elif kind == socket.SCM_RIGHTS:
            # File descriptors (FDSTORE=1) are not supported; never keep one open.
            for i in range(len(payload) // _FD.size):
                try:
                    os.close(_FD.unpack_from(payload, i * _FD.size)[0])
                except OSError:
                    pass
    return pid


def process_group_of(pid: int) -> int | None:
    """The process group of `pid` (from /proc/PID/stat), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and ')', so split after the last ')'
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[2])
    except (IndexError, ValueError):
        return None
