"""Reading an instance's output FIFO into a sink, from the event loop.

Each wake-up reads at most `CHUNK` bytes and returns to the loop, so a service that floods
its output cannot starve the agent: the pipe fills, the service's writes wait, and everything
else (API calls, exits of other services) is served in between.

The last lines before an exit are never lost: when the process has ended, `drain()` reads
whatever is still in the pipe before the exit is recorded (a process's completed writes are in
the pipe by the time it has exited).

Nor are they lost when the agent is killed: with a `Spool`, bytes leave the pipe by splice(2)
into a file, in one system call, so at every instant they are in the pipe or in that file —
never only in the agent's memory between a read() and a write(). The spool is emptied once the
sink (the log) has them; a spool found full by the next agent is written to the log again from
the position recorded before the chunk (so nothing is lost, and nothing is written twice).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

CHUNK = 64 * 1024


class Spool:
    """One chunk of output on its way from a FIFO to its sink, kept in a file.

    Layout: `HEADER` bytes of the caller's mark (where the sink stood before the chunk: for a
    log, its file and size), then the chunk. The file holds a chunk (is longer than `HEADER`)
    from the splice that moved it until `done()`.
    """

    HEADER = 128

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def pending(self) -> tuple[bytes, bytes] | None:
        """The mark and the chunk a killed reader left here, if any."""
        size = os.fstat(self._fd).st_size
        if size <= self.HEADER:
            return None
        header = os.pread(self._fd, self.HEADER, 0)
        return header.rstrip(b"\0 "), os.pread(self._fd, size - self.HEADER, self.HEADER)

    def take(self, fifo: int, mark: bytes) -> bytes:
        """Move up to CHUNK bytes from `fifo` here and return them (b"" at end of file);
        raise BlockingIOError when the pipe is empty."""
        os.pwrite(self._fd, mark[: self.HEADER].ljust(self.HEADER, b"\0"), 0)
        n = os.splice(fifo, self._fd, CHUNK, offset_dst=self.HEADER, flags=os.SPLICE_F_NONBLOCK)
        return os.pread(self._fd, n, self.HEADER) if n else b""

    def done(self) -> None:
        """The sink has the chunk."""
        os.ftruncate(self._fd, self.HEADER)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class FifoReader:
    """Delivers bytes from one FIFO to `sink` until closed (through `spool`, if given, whose
    mark for each chunk is `mark()`)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        sink: Callable[[bytes], None],
        spool: Spool | None = None,
        mark: Callable[[], bytes] = bytes,
    ) -> None:
        self._loop = loop
        self._fd: int | None = fd
        self._sink = sink
        self._spool = spool
        self._mark = mark
        loop.add_reader(fd, self._on_readable)

    def _read(self, fd: int) -> bytes:
        if self._spool is not None:
            try:
                return self._spool.take(fd, self._mark())
            except BlockingIOError:
                raise
            except OSError:
                pass  # the spool cannot take it (a full disk): read it as without a spool
        return os.read(fd, CHUNK)

    def _deliver(self, data: bytes) -> None:
        self._sink(data)
        if self._spool is not None:
            try:
                self._spool.done()
            except OSError:
                pass  # left as it is, the next agent writes the chunk again from its mark

    def _on_readable(self) -> None:
        if self._fd is None:
            return
        try:
            data = self._read(self._fd)
        except BlockingIOError:
            return
        if data:
            self._deliver(data)
        else:
            # Every writer is gone (the whole process group exited). Stop listening: a FIFO
            # at EOF stays readable forever and would spin the loop.
            self._loop.remove_reader(self._fd)

    def drain(self) -> None:
        """Read everything that is in the pipe right now."""
        while self._fd is not None:
            try:
                data = self._read(self._fd)
            except BlockingIOError:
                return
            if not data:
                return
            self._deliver(data)

    def close(self) -> None:
        if self._fd is None:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = None
        if self._spool is not None:
            self._spool.close()
