"""One agent per state directory: an exclusive flock on `agent.lock`, holding the agent's pid.

The lock, not the files, says whether an agent is alive. A kill -9'd agent leaves its socket
and its pid in `agent.lock`; the kernel has released its flock, so the next agent takes the
lock, writes its own pid over the old one and replaces the socket. An agent that cannot take
the lock removes nothing: the socket it sees belongs to a live agent, whose pid it reports.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from infraveil.core.errors import AgentAlreadyRunningError, StateDirError

PID_WAIT = 1.0
"""Seconds to wait for a holder that has just taken the lock to write its pid."""


class AgentLock:
    """Held for the agent's whole life; the kernel releases it when the agent dies, however."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "agent.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise StateDirError(
                f"cannot open {self.path}: {e.strerror}",
                hint="choose a writable --state-dir (or INFRAVEIL_STATE_DIR)",
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_pid(fd)
            os.close(fd)
            raise AgentAlreadyRunningError(
                f"an agent is already running on {self.path.parent}"
                f" (pid {holder if holder > 0 else 'unknown'})",
                hint="use `infraveil status`, or `infraveil down` to stop it first",
            ) from None
        try:
            # (one write of the whole pid over an emptied file: a reader sees it all or nothing)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:
            os.close(fd)
            raise StateDirError(
                f"cannot write {self.path}: {e.strerror}",
                hint="free some space in the state directory, or choose another --state-dir",
            ) from e
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the agent holding the lock of `state_dir`, or None if none does.

    -1 when the lock is held but the holder's pid cannot be read.
    """
    path = state_dir / "agent.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _holder_pid(fd: int) -> int:
    """The pid in a held lock file (-1 if unreadable).

    An agent writes its pid just after taking the lock: one that has just started may not
    have written it yet (the file is empty, or still names the dead agent before it), so look
    again for a moment before giving up.
    """
    deadline = time.monotonic() + PID_WAIT
    while True:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit() and int(text) > 0 and _exists(int(text)):
            return int(text)
        if time.monotonic() > deadline:
            return -1
        time.sleep(0.01)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True
