"""Fixtures for the runtime tests: real tiny processes, driven inside an asyncio loop.

Every process a test spawns is registered with `children`, whose teardown SIGKILLs the whole
process group and reaps the leader, so that a failing test leaves nothing behind (and no
Popen is collected while "still running", which -W error would turn into a failure elsewhere).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from infraveil.runtime.processes import Exit, ExitWatcher, Launch, spawn
from waiting import wait_for, wait_for_async

T = TypeVar("T")


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., object]:
    return wait_for


@pytest.fixture(name="wait_for_async")
def wait_for_async_fixture() -> Callable[..., Awaitable[object]]:
    return wait_for_async


def process_state(pid: int) -> str | None:
    """The one-letter state of `pid` from /proc (R, S, Z, ...), or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rfind(b")") + 2 :].split()[0].decode()


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    return process_state(pid) not in (None, "Z")


@pytest.fixture(name="alive")
def alive_fixture() -> Callable[[int], bool]:
    return alive


class Children:
    """Spawns instances like the supervisor does, and cleans every one of them up."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._popens: list[subprocess.Popen[bytes]] = []
        self._count = 0

    def launch(
        self,
        argv: list[str] | tuple[str, ...],
        *,
        fifo: str | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Launch:
        if fifo is None:
            self._count += 1
            fifo = str(self.directory / f"out{self._count}.pipe")
            if not os.path.exists(fifo):
                os.mkfifo(fifo, 0o600)
        return Launch(
            argv=tuple(argv),
            cwd=str(self.directory) if cwd is None else cwd,
            env=dict(os.environ) if env is None else env,
            fifo=fifo,
        )

    def spawn(self, launch: Launch) -> subprocess.Popen[bytes]:
        child = spawn(launch)
        self._popens.append(child)
        return child

    def cleanup(self) -> None:
        for child in self._popens:
            try:
                os.killpg(child.pid, signal.SIGKILL)  # the whole group: grandchildren too
            except (ProcessLookupError, PermissionError):
                pass
            try:
                os.waitpid(child.pid, 0)
            except ChildProcessError:
                pass  # already reaped (by the ExitWatcher)
            if child.returncode is None:
                child.returncode = -signal.SIGKILL


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    kids = Children(tmp_path)
    try:
        yield kids
    finally:
        kids.cleanup()


async def watch_exit(watcher: ExitWatcher, child: subprocess.Popen[bytes]) -> asyncio.Future[Exit]:
    """A future that ExitWatcher resolves with the child's Exit."""
    done: asyncio.Future[Exit] = asyncio.get_running_loop().create_future()
    assert watcher.watch(child.pid, done.set_result, child)
    return done


@pytest.fixture(name="watch_exit")
def watch_exit_fixture() -> Callable[..., Awaitable[asyncio.Future[Exit]]]:
    return watch_exit


@pytest.fixture(name="process_state")
def process_state_fixture() -> Callable[[int], str | None]:
    return process_state
