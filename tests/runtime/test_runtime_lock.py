"""runtime.lock: one agent per state directory, decided by a real flock held by a real process.

The holder is another process (`python -c`), as a second agent would be; killing it with
SIGKILL is how an agent crashes: its pid stays in the file, its lock does not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infraveil.core.errors import AgentAlreadyRunningError, StateDirError
from infraveil.runtime.lock import AgentLock, lock_holder

HOLDER = """\
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
delay = float(sys.argv[2])
if delay:  # a holder slow to write its pid: the window just after an agent takes the lock
    print("locked", flush=True)
    time.sleep(delay)
os.ftruncate(fd, 0)
os.write(fd, f"{os.getpid()}\\n".encode())
print("written", flush=True)
sys.stdin.read()  # hold the lock until told to go (or killed)
"""


class Holder:
    """A process holding the lock of a state directory."""

    def __init__(self, state_dir: Path, delay: float = 0.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(state_dir / "agent.lock"), str(delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid

    def wait_for(self, word: str) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # (a dead holder gives "": the test fails)
        assert line == word, f"the lock holder said {line!r}, not {word!r}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    try:
        yield started
    finally:
        for holder in started:
            holder.kill()


def hold(holders: list[Holder], state_dir: Path, delay: float = 0.0) -> Holder:
    holder = Holder(state_dir, delay)
    holders.append(holder)
    if delay:
        holder.wait_for("locked")
    else:
        holder.wait_for("written")
    return holder


def test_the_lock_holds_the_agents_pid_and_is_released_with_it(tmp_path: Path) -> None:
    lock = AgentLock(tmp_path)
    assert lock_holder(tmp_path) is None
    lock.acquire()
    try:
        assert (tmp_path / "agent.lock").read_text() == f"{os.getpid()}\n"
        assert lock_holder(tmp_path) == os.getpid()
        assert oct((tmp_path / "agent.lock").stat().st_mode & 0o777) == oct(0o600)
    finally:
        lock.release()
    assert lock_holder(tmp_path) is None


def test_a_second_agent_is_refused_with_the_holders_pid(
    tmp_path: Path, holders: list[Holder]
) -> None:
    holder = hold(holders, tmp_path)
    assert lock_holder(tmp_path) == holder.pid
    with pytest.raises(AgentAlreadyRunningError) as refused:
        AgentLock(tmp_path).acquire()
    assert refused.value.message == f"an agent is already running on {tmp_path} (pid {holder.pid})"
    assert (tmp_path / "agent.lock").read_text() == f"{holder.pid}\n"  # left as it was


def test_the_pid_file_of_a_killed_agent_is_stale_and_replaced(
    tmp_path: Path, holders: list[Holder]
) -> None:
    dead = hold(holders, tmp_path)
    dead.kill()
    # its pid is still written, but nobody holds the lock: no agent is running
    assert (tmp_path / "agent.lock").read_text() == f"{dead.pid}\n"
    assert lock_holder(tmp_path) is None
    # a longer stale content is replaced whole (no digits of the old pid left over)
    (tmp_path / "agent.lock").write_text("9999999999\n")
    lock = AgentLock(tmp_path)
    lock.acquire()
    try:
        assert (tmp_path / "agent.lock").read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()


def test_a_holder_that_has_not_written_its_pid_yet_is_still_named(
    tmp_path: Path, holders: list[Holder]
) -> None:
    (tmp_path / "agent.lock").write_text("4194999\n")  # a dead agent's pid, about to be replaced
    holder = hold(holders, tmp_path, delay=0.3)
    with pytest.raises(AgentAlreadyRunningError) as refused:
        AgentLock(tmp_path).acquire()
    assert f"(pid {holder.pid})" in refused.value.message
    assert lock_holder(tmp_path) == holder.pid


def test_a_state_dir_where_the_lock_cannot_be_created_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(StateDirError) as refused:
        AgentLock(missing).acquire()
    assert refused.value.message == (
        f"cannot open {missing / 'agent.lock'}: No such file or directory"
    )
