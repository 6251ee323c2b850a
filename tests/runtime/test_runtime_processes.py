"""processes.spawn and ExitWatcher with real tiny processes: exits, sessions, spawn errors."""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from infraveil.runtime.probes import exec_probe
from infraveil.runtime.processes import (
    Exit,
    ExitWatcher,
    SpawnError,
    popen_user_kwargs,
    signal_group,
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(1000)"]


def test_exit_code_is_reported(children, watch_exit) -> None:
    async def main() -> Exit:
        watcher = ExitWatcher(asyncio.get_running_loop())
        try:
            child = children.spawn(children.launch([sys.executable, "-c", "raise SystemExit(3)"]))
            return await asyncio.wait_for(await watch_exit(watcher, child), 10)
        finally:
            watcher.close()

    exit = asyncio.run(main())
    assert exit.status.code == 3
    assert exit.status.signal is None
    assert not exit.status.unknown
    assert exit.status.describe() == "exited with code 3"


def test_kill_9_is_reported_as_signal_9(children, watch_exit) -> None:
    async def main() -> tuple[int, Exit]:
        watcher = ExitWatcher(asyncio.get_running_loop())
        try:
            child = children.spawn(children.launch(SLEEPER))
            done = await watch_exit(watcher, child)
            await asyncio.sleep(0)  # let the watcher register; the child is surely not done
            assert not done.done(), "a sleeping child was reported as exited"
            os.kill(child.pid, signal.SIGKILL)
            return child.pid, await asyncio.wait_for(done, 10)
        finally:
            watcher.close()

    pid, exit = asyncio.run(main())
    assert exit.pid == pid
    assert exit.status.signal == signal.SIGKILL
    assert exit.status.code is None
    assert exit.status.signal_name == "SIGKILL"
    assert exit.status.describe() == "killed by SIGKILL"


def test_exit_before_watch_is_still_reported(
    children, watch_exit, wait_for_async, process_state
) -> None:
    """A child that is already a zombie when watched is reaped, with its real status."""

    async def main() -> Exit:
        watcher = ExitWatcher(asyncio.get_running_loop())
        try:
            child = children.spawn(children.launch([sys.executable, "-c", "raise SystemExit(7)"]))
            await wait_for_async(
                lambda: process_state(child.pid) == "Z", 10, "the child to exit and become a zombie"
            )
            return await asyncio.wait_for(await watch_exit(watcher, child), 10)
        finally:
            watcher.close()

    assert asyncio.run(main()).status.code == 7


def test_each_instance_leads_its_own_session_and_process_group(
    children, watch_exit, alive: Callable[[int], bool]
) -> None:
    async def main() -> tuple[int, int, int, Exit]:
        watcher = ExitWatcher(asyncio.get_running_loop())
        try:
            child = children.spawn(children.launch(SLEEPER))
            done = await watch_exit(watcher, child)
            pgid, sid = os.getpgid(child.pid), os.getsid(child.pid)
            assert signal_group(child.pid, signal.SIGTERM)
            return child.pid, pgid, sid, await asyncio.wait_for(done, 10)
        finally:
            watcher.close()

    pid, pgid, sid, exit = asyncio.run(main())
    assert pgid == pid
    assert sid == pid
    assert pgid != os.getpgrp(), "the child must not share the test runner's process group"
    assert exit.status.signal == signal.SIGTERM
    assert not alive(pid)
    assert not signal_group(pid, signal.SIGTERM), "an empty group must be reported as gone"


def test_signal_group_reaches_grandchildren(
    children, watch_exit, wait_for, wait_for_async, tmp_path: Path, alive: Callable[[int], bool]
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 1000 & echo $! > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; wait"

    async def main() -> tuple[int, Exit]:
        watcher = ExitWatcher(asyncio.get_running_loop())
        try:
            child = children.spawn(children.launch(["sh", "-c", script]))
            done = await watch_exit(watcher, child)
            await wait_for_async(pidfile.exists, 10, "the grandchild to write its pid")
            grandchild = int(pidfile.read_text())
            assert os.getpgid(grandchild) == child.pid
            assert signal_group(child.pid, signal.SIGKILL)
            return grandchild, await asyncio.wait_for(done, 10)
        finally:
            watcher.close()

    grandchild, exit = asyncio.run(main())
    assert exit.status.signal == signal.SIGKILL
    wait_for(lambda: not alive(grandchild), 5, f"grandchild {grandchild} to die with its group")


def test_command_not_found_is_a_deterministic_spawn_error(children) -> None:
    with pytest.raises(SpawnError) as caught:
        children.spawn(children.launch(["ivl-no-such-command-xyz", "--flag"]))
    assert str(caught.value) == "command not found: ivl-no-such-command-xyz"
    assert caught.value.deterministic


def test_missing_absolute_command_is_not_found(children, tmp_path: Path) -> None:
    missing = str(tmp_path / "bin" / "nothing-here")
    with pytest.raises(SpawnError) as caught:
        children.spawn(children.launch([missing]))
    assert str(caught.value) == f"command not found: {missing}"
    assert caught.value.deterministic


def test_script_without_execute_bit_is_a_deterministic_spawn_error(
    children, tmp_path: Path
) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o644)  # even root cannot execute a file with no execute bit at all
    with pytest.raises(SpawnError) as caught:
        children.spawn(children.launch([str(script)]))
    assert caught.value.deterministic
    assert "permission denied" in str(caught.value)
    assert str(script) in str(caught.value)


def test_script_without_shebang_is_a_deterministic_spawn_error(children, tmp_path: Path) -> None:
    script = tmp_path / "noshebang"
    script.write_bytes(b"\x7fELF not really a binary\n")
    script.chmod(0o755)
    with pytest.raises(SpawnError) as caught:
        children.spawn(children.launch([str(script)]))
    assert caught.value.deterministic
    assert "exec format error" in str(caught.value)


def test_missing_cwd_is_a_spawn_error(children, tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "such" / "dir")
    with pytest.raises(SpawnError) as caught:
        children.spawn(children.launch(SLEEPER, cwd=missing))
    assert caught.value.deterministic
    assert missing in str(caught.value)
    assert "working directory" in str(caught.value)


def test_spawn_errors_leak_no_file_descriptors(children, tmp_path: Path) -> None:
    before = set(os.listdir("/proc/self/fd"))
    for argv in (["ivl-no-such-command-xyz"], [str(tmp_path)]):
        with pytest.raises(SpawnError):
            children.spawn(children.launch(argv))
    assert set(os.listdir("/proc/self/fd")) == before


def test_env_and_cwd_reach_the_child(children, watch_exit, tmp_path: Path) -> None:
    out = tmp_path / "seen"
    code = f"import os; open({str(out)!r}, 'w').write(os.getcwd() + '|' + os.environ['IVL_X'])"
    workdir = tmp_path / "work"
    workdir.mkdir()

    async def main() -> Exit:
        watcher = ExitWatcher(asyncio.get_running_loop())
        try:
            env = {**os.environ, "IVL_X": "forty two"}
            launch = children.launch([sys.executable, "-c", code], cwd=str(workdir), env=env)
            child = children.spawn(launch)
            return await asyncio.wait_for(await watch_exit(watcher, child), 10)
        finally:
            watcher.close()

    assert asyncio.run(main()).status.code == 0
    assert out.read_text() == f"{workdir}|forty two"


def test_stdin_is_devnull(children, watch_exit, tmp_path: Path) -> None:
    out = tmp_path / "stdin"
    code = f"import sys; open({str(out)!r}, 'w').write(repr(sys.stdin.read()))"

    async def main() -> Exit:
        watcher = ExitWatcher(asyncio.get_running_loop())
        try:
            child = children.spawn(children.launch([sys.executable, "-c", code]))
            return await asyncio.wait_for(await watch_exit(watcher, child), 10)
        finally:
            watcher.close()

    assert asyncio.run(main()).status.code == 0
    assert out.read_text() == "''"


def test_popen_is_not_left_unreaped(children, watch_exit) -> None:
    """After the watcher reports an exit, Popen knows it is reaped (no ResourceWarning later)."""

    async def main() -> subprocess.Popen[bytes]:
        watcher = ExitWatcher(asyncio.get_running_loop())
        try:
            child = children.spawn(children.launch([sys.executable, "-c", "pass"]))
            await asyncio.wait_for(await watch_exit(watcher, child), 10)
            return child
        finally:
            watcher.close()

    child = asyncio.run(main())
    assert child.returncode is not None
    assert child.poll() is not None


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_a_service_runs_as_its_user_with_that_users_groups_and_home(children, watch_exit) -> None:
    nobody = pwd.getpwnam("nobody")
    groups = " ".join(str(g) for g in sorted(set(os.getgrouplist("nobody", nobody.pw_gid))))
    script = (
        f'test "$(id -u)" = {nobody.pw_uid} && test "$(id -g)" = {nobody.pw_gid}'
        f' && test "$(id -G | tr " " "\\n" | sort -n | tr "\\n" " ")" = "{groups} "'
        f' && test "$USER" = nobody && test "$HOME" = {nobody.pw_dir}'
    )

    async def main() -> Exit:
        watcher = ExitWatcher(asyncio.get_running_loop())
        try:
            launch = replace(children.launch(["/bin/sh", "-c", script], cwd="/"), user="nobody")
            return await asyncio.wait_for(await watch_exit(watcher, children.spawn(launch)), 10)
        finally:
            watcher.close()

    assert asyncio.run(main()).status.code == 0


def test_an_unknown_user_is_a_deterministic_spawn_error(children) -> None:
    launch = replace(children.launch(["/bin/true"], cwd="/"), user="ivl-no-such-user")
    with pytest.raises(SpawnError, match="user 'ivl-no-such-user' does not exist") as error:
        children.spawn(launch)
    assert error.value.deterministic


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can run a command as another user")
def test_an_exec_check_runs_as_the_services_user() -> None:
    nobody = pwd.getpwnam("nobody")
    kwargs = popen_user_kwargs("nobody")
    assert kwargs["user"] == nobody.pw_uid and kwargs["group"] == nobody.pw_gid
    assert popen_user_kwargs(None) == {}
    assert popen_user_kwargs("ivl-no-such-user") == {}  # the service fails to start, saying so
    assert popen_user_kwargs(str(os.geteuid())) == {}  # the agent's own user: nothing to switch
    result = asyncio.run(
        exec_probe(
            ["sh", "-c", f"test $(id -u) = {nobody.pw_uid} || {{ echo uid $(id -u); exit 1; }}"],
            env={"PATH": os.environ["PATH"]},
            cwd="/",
            timeout=5.0,
            popen_kwargs=kwargs,
        )
    )
    assert result.ok, result.detail
