"""Starting service instances, watching them exit, and signalling their process groups.

Ownership is arranged so that the agent can die and come back without its services noticing:

- every instance runs in its own session and process group (`setsid`), so a terminal's Ctrl-C
  or the agent's death does not reach it, and one `killpg` reaches its whole tree;
- its stdout and stderr go to a named FIFO that the *child* holds open read-write. A pipe with
  a reader never raises SIGPIPE, so while no agent is reading the service just fills the pipe
  (1 MiB) and then waits; a new agent opens the FIFO by name and reads on (see `capture`);
- exits are watched through a pidfd, which works the same for our own children and for
  instances adopted after an agent restart, and wakes the loop the moment the process ends.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import pwd
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from infraveil.core.exitstatus import ExitStatus

PIPE_SIZE = 1 << 20
"""How much output a service can write while no agent reads before its writes block."""


class SpawnError(Exception):
    """The command could not be executed; `deterministic` when retrying as-is cannot help."""

    def __init__(self, message: str, *, deterministic: bool) -> None:
        super().__init__(message)
        self.deterministic = deterministic


@dataclass(frozen=True)
class Launch:
    """What is needed to execute one instance."""

    argv: tuple[str, ...]
    cwd: str
    env: Mapping[str, str]
    fifo: str
    user: str | None = None


@dataclass(frozen=True)
class Exit:
    pid: int
    status: ExitStatus
    peak_rss: int | None = None


def make_fifo(path: str) -> int:
    """Create the instance's output FIFO and open our (non-blocking) read end of it."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.mkfifo(path, 0o600)
    return open_fifo_reader(path)


def open_fifo_reader(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)


def spawn(launch: Launch) -> subprocess.Popen[bytes]:
    """Execute `launch` in a new session with its output on the FIFO; raise SpawnError."""
    user_kwargs: dict[str, Any] = {}
    env = dict(launch.env)
    if launch.user is not None:
        user_kwargs, env = _as_user(launch.user, env)
    if not os.path.isdir(launch.cwd):
        raise SpawnError(f"working directory does not exist: {launch.cwd}", deterministic=True)
    # O_RDWR: the child itself holds a reader, so its writes never fail while no agent reads.
    out = os.open(launch.fifo, os.O_RDWR | os.O_CLOEXEC)
    try:
        try:
            fcntl.fcntl(out, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # the limit in /proc/sys/fs/pipe-max-size is lower: keep the default
            pass
        return subprocess.Popen(
            launch.argv,
            cwd=launch.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
            **user_kwargs,
        )
    except FileNotFoundError as e:
        raise SpawnError(f"command not found: {launch.argv[0]}", deterministic=True) from e
    except PermissionError as e:
        raise SpawnError(
            f"permission denied executing {launch.argv[0]}"
            " (is it executable by the service's user?)",
            deterministic=True,
        ) from e
    except OSError as e:
        if e.errno == errno.ENOEXEC:
            raise SpawnError(
                f"cannot execute {launch.argv[0]}: exec format error "
                "(a script without a #! line, or a binary for another CPU)",
                deterministic=True,
            ) from e
        raise SpawnError(f"cannot start {launch.argv[0]}: {e.strerror}", deterministic=False) from e
    finally:
        os.close(out)


def _as_user(user: str, env: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError as e:
        raise SpawnError(f"user {user!r} does not exist on this host", deterministic=True) from e
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        me = pwd.getpwuid(os.geteuid()).pw_name
        raise SpawnError(
            f"cannot run as user {entry.pw_name!r}: the agent runs as {me!r}, not root",
            deterministic=True,
        )
    env = {**env, "HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name}
    kwargs: dict[str, Any] = {"user": entry.pw_uid, "group": entry.pw_gid}
    if os.geteuid() == 0:
        kwargs["extra_groups"] = os.getgrouplist(entry.pw_name, entry.pw_gid)
    return kwargs, env


def signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to a whole process group; False if nothing is left in it."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # a pid reused by someone else's group: not ours to touch
        return False
    return True


class ExitWatcher:
    """Calls `on_exit(Exit)` once when a watched process ends, from the event loop.

    For our own children the exit status and the rusage come from `wait4`; for a process
    adopted from an earlier agent (not our child) the kernel gives its status to its real
    parent, so the status is `unknown`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._watched: dict[int, int] = {}  # pid -> pidfd
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def watch(
        self,
        pid: int,
        on_exit: Callable[[Exit], None],
        child: subprocess.Popen[bytes] | None = None,
    ) -> bool:
        """Start watching `pid`; False if it is already gone (and was not our child)."""
        if child is not None:
            # Keep the Popen alive: if it were collected while running, the subprocess
            # module would reap our child behind our back and its exit status would be lost.
            self._children[pid] = child
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            if child is None:
                return False
            # our own child cannot be gone before we reap it: it is a zombie; wait4 below
            self._loop.call_soon(self._reap, pid, on_exit)
            return True
        self._watched[pid] = pidfd
        self._loop.add_reader(pidfd, self._on_ready, pid, on_exit)
        return True

    def _on_ready(self, pid: int, on_exit: Callable[[Exit], None]) -> None:
        pidfd = self._watched.pop(pid)
        self._loop.remove_reader(pidfd)
        os.close(pidfd)
        self._reap(pid, on_exit)

    def _reap(self, pid: int, on_exit: Callable[[Exit], None]) -> None:
        child = self._children.pop(pid, None)
        status = ExitStatus(unknown=True)
        if child is not None:
            try:
                _, raw, _usage = os.wait4(pid, 0)  # the pidfd said it ended: this never blocks
                status = ExitStatus.from_wait_status(raw)
                child.returncode = raw  # tell Popen it is reaped, so it never waits on it
            except ChildProcessError:
                pass
        on_exit(Exit(pid=pid, status=status))

    def close(self) -> None:
        for pidfd in self._watched.values():
            self._loop.remove_reader(pidfd)
            os.close(pidfd)
        self._watched.clear()
        # Popen objects of still-running children are dropped on purpose: the services keep
        # running without the agent. Mark them reaped so Popen.__del__ neither warns nor reaps.
        for child in self._children.values():
            child.returncode = 0
        self._children.clear()
