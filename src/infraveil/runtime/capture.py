"""Reading an instance's output FIFO into a sink, from the event loop.

Each wake-up reads at most `CHUNK` bytes and returns to the loop, so a service that floods
its output cannot starve the agent: the pipe fills, the service's writes wait, and everything
else (API calls, exits of other services) is served in between.

The last lines before an exit are never lost: when the process has ended, `drain()` reads
whatever is still in the pipe before the exit is recorded (a process's completed writes are in
the pipe by the time it has exited).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

CHUNK = 64 * 1024


class FifoReader:
    """Delivers bytes from one FIFO to `sink` until closed."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, sink: Callable[[bytes], None]
    ) -> None:
        self._loop = loop
        self._fd: int | None = fd
        self._sink = sink
        loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        if self._fd is None:
            return
        try:
            data = os.read(self._fd, CHUNK)
        except BlockingIOError:
            return
        if data:
            self._sink(data)
        else:
            # Every writer is gone (the whole process group exited). Stop listening: a FIFO
            # at EOF stays readable forever and would spin the loop.
            self._loop.remove_reader(self._fd)

    def drain(self) -> None:
        """Read everything that is in the pipe right now."""
        while self._fd is not None:
            try:
                data = os.read(self._fd, CHUNK)
            except BlockingIOError:
                return
            if not data:
                return
            self._sink(data)

    def close(self) -> None:
        if self._fd is None:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = None
