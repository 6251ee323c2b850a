"""One agent per state directory: an exclusive flock on `agent.lock`, holding the agent's pid."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from infraveil.core.errors import AgentAlreadyRunningError, StateDirError


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
                f"cannot create {self.path}: {e.strerror}",
                hint="choose a writable --state-dir (or INFRAVEIL_STATE_DIR)",
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AgentAlreadyRunningError(
                f"an agent is already running on {self.path.parent} (pid {holder})",
                hint="use `infraveil status`, or `infraveil down` to stop it first",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the agent holding the lock of `state_dir`, or None if none does."""
    path = state_dir / "agent.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
