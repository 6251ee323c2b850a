"""Starting service instances, watching them exit, and signalling their process groups.

Ownership is arranged so that the agent can die and come back without its services noticing:

- every instance runs in its own session and process group (`setsid`), so a terminal's Ctrl-C
  or the agent's death does not reach it, and one `killpg` reaches its whole tree;
- its stdout and stderr go to a named FIFO that the *child* holds open read-write. A pipe with
  a reader never raises SIGPIPE, so while no agent is reading the service just fills the pipe
  (1 MiB) and then waits; a new agent opens the FIFO by name and reads on (see `capture`);
- exits are watched through a pidfd, which works the same for our own children and for
  instances adopted after an agent restart, and wakes the loop the moment the process ends;
- where cgroups are usable, the child joins its instance's cgroup before it executes the
  command (see `cgroups`), so everything it ever allocates is charged there.
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
    cgroup_procs: str | None = None
    """The cgroup.procs file of the instance's cgroup, which the child joins before exec."""


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
    env = dict(launch.env)
    account = None
    if launch.user is not None:
        account, env = _as_user(launch.user, env)
    if not os.path.isdir(launch.cwd):
        raise SpawnError(f"working directory does not exist: {launch.cwd}", deterministic=True)
    # O_RDWR: the child itself holds a reader, so its writes never fail while no agent reads.
    out = os.open(launch.fifo, os.O_RDWR | os.O_CLOEXEC)
    # The child reports why its setup failed here: Popen only says that it did.
    report_r, report_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        try:
            fcntl.fcntl(out, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # the limit in /proc/sys/fs/pipe-max-size is lower: keep the default
            pass
        setup = None
        if launch.cgroup_procs is not None or account is not None:
            setup = _child_setup(launch.cgroup_procs, account, report_w)
        return subprocess.Popen(
            launch.argv,
            cwd=launch.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
            preexec_fn=setup,
        )
    except subprocess.SubprocessError as e:
        raise _setup_error(launch, account, report_r) from e
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
        os.close(report_r)
        os.close(report_w)


@dataclass(frozen=True)
class _Account:
    """Who a service runs as: switched to in the child, after it joined its cgroup."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...] | None  # None: keep ours (only root may set supplementary groups)


_JOINING, _SWITCHING = 0, 1  # the steps of _child_setup, as it reports them


def _child_setup(
    cgroup_procs: str | None, account: _Account | None, report: int
) -> Callable[[], None]:
    """The child's setup between fork and exec: join the cgroup, then drop privileges.

    One path for every child that needs either. It replaces Popen's own user=/group=/
    extra_groups=, which switch users *before* preexec_fn runs, when the child could no
    longer move itself into a cgroup. The order is setgroups, setgid, setuid: each needs
    the privilege the next one gives up. Everything is prepared here in the parent; the
    child runs only os.* calls (no imports, no locks), as code between fork and exec must.
    On failure it writes "<step> <errno>" to `report` and raises, which fails the Popen.
    A preexec_fn makes Popen fork instead of vfork (user= already did): measured at about
    1 ms per spawn for a small agent and 3 ms at 70 MB resident, against 0.2 ms with vfork.
    """
    groups = list(account.groups) if account is not None and account.groups is not None else None
    ids = (account.gid, account.uid) if account is not None else None

    def setup() -> None:
        step = _JOINING
        try:
            if cgroup_procs is not None:
                fd = os.open(cgroup_procs, os.O_WRONLY)
                try:
                    os.write(fd, b"0")  # "0" is the writer itself
                finally:
                    os.close(fd)
            step = _SWITCHING
            if ids is not None:
                if groups is not None:
                    os.setgroups(groups)
                os.setgid(ids[0])
                os.setuid(ids[1])
        except OSError as e:
            os.write(report, b"%d %d" % (step, e.errno or 0))
            raise

    return setup


def _setup_error(launch: Launch, account: _Account | None, report: int) -> SpawnError:
    """The SpawnError for a child whose setup (see _child_setup) failed before exec."""
    try:
        step, number = (int(word) for word in os.read(report, 64).split())
    except (BlockingIOError, ValueError):  # it failed without an OSError: no details
        step, number = (_JOINING if launch.cgroup_procs is not None else _SWITCHING), 0
    reason = os.strerror(number) if number else "the child failed before executing the command"
    if step == _JOINING and launch.cgroup_procs is not None:
        cgroup = os.path.dirname(launch.cgroup_procs)
        return SpawnError(
            f"cannot put the instance in its cgroup {cgroup}: {reason}", deterministic=False
        )
    name = account.name if account is not None else launch.user
    # EAGAIN: the user is at its process limit (RLIMIT_NPROC), which may pass
    return SpawnError(
        f"cannot switch to user {name!r}: {reason}", deterministic=number != errno.EAGAIN
    )


def _as_user(user: str, env: dict[str, str]) -> tuple[_Account, dict[str, str]]:
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
    groups = None
    if os.geteuid() == 0:
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups), env


def account_of(user: str) -> _Account | None:
    """The account `user` (a name or a uid) names on this host; None if it names none.

    Unlike the switch in `_as_user`, `groups` is always filled in, whoever the agent runs as:
    preflight needs them to tell what the account may read and execute.
    """
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        return None
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def popen_user_kwargs(user: str | None) -> dict[str, Any]:
    """`subprocess.Popen` arguments that run a helper command (an exec check) as `user`.

    Empty when the service runs as the agent's user, or when the agent cannot switch to
    `user` (the service itself then fails to start, with that reason).
    """
    if user is None:
        return {}
    try:
        account, _ = _as_user(user, {})
    except SpawnError:
        return {}
    if account.uid == os.geteuid():
        return {}
    kwargs: dict[str, Any] = {"user": account.uid, "group": account.gid}
    if account.groups is not None:
        kwargs["extra_groups"] = list(account.groups)
    return kwargs


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
        peak: int | None = None
        if child is not None:
            try:
                _, raw, usage = os.wait4(pid, 0)  # the pidfd said it ended: this never blocks
                peak = usage.ru_maxrss * 1024  # KiB on Linux: its largest process's peak
                status = ExitStatus.from_wait_status(raw)
                child.returncode = raw  # tell Popen it is reaped, so it never waits on it
            except ChildProcessError:
                pass
        on_exit(Exit(pid=pid, status=status, peak_rss=peak))

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


def describe_process(pid: int) -> str:
    """ "pid 4242 (ops): infraveil deploy api --payload build.tar.gz", or as much as is known."""
    import psutil  # (imported here: only the agent's API needs it, not every CLI call)

    try:
        process = psutil.Process(pid)
        with process.oneshot():
            user = process.username()
            argv = process.cmdline()
    except (psutil.Error, OSError):
        return f"pid {pid}"
    # the CLI runs as "python …/infraveil deploy …": show it from the program name on
    words = [os.path.basename(argv[0]), *argv[1:]] if argv else []
    for i, word in enumerate(words):
        if os.path.basename(word) == "infraveil":
            words = ["infraveil", *words[i + 1 :]]
            break
    command = " ".join(words)
    if len(command) > 200:
        command = command[:199] + "…"
    return f"pid {pid} ({user})" + (f": {command}" if command else "")
