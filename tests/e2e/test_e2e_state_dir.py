"""A state directory that cannot be used, or stops being usable, and what a crashed agent
leaves in it.

- Not writable, or on a full disk: the agent refuses to start and says which path and why.
- Filling up under a running agent: every service runs on, the store error is reported (a
  warning event, and `status`), the agent does not crash, and writes resume once there is room.
- A socket and a lock (pid) file left by a kill -9'd agent are replaced by the next agent; a
  live agent's are never touched by a second one, which refuses and names the holder's pid.

The disks are small real tmpfs mounts (see tests/mounts.py): root, or skipped (not under CI).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from e2e_support import INFRAVEIL, Infraveil, alive, python

from mounts import FILLER, fill, make_room, remount_read_only, tmpfs
from waiting import wait_for

STATE_DIR_EXIT = 7
AGENT_RUNNING_EXIT = 5
NO_AGENT_EXIT = 3
SLEEPER = python("import time\nwhile True: time.sleep(60)")


@contextmanager
def state_dir_on(infraveil: Infraveil, size: str) -> Iterator[Path]:
    """Point the test's CLI at a state directory on a fresh tmpfs; stop its agent before the
    tmpfs goes away."""
    with tmpfs(size) as fs:
        state_dir = fs / "state"
        state_dir.mkdir(mode=0o700)
        infraveil.state_dir = state_dir
        try:
            yield state_dir
        finally:
            if (fs / FILLER).exists():
                (fs / FILLER).unlink()  # room for the agent to stop its services
            infraveil.cleanup()


def run_agent_directly(infraveil: Infraveil) -> subprocess.CompletedProcess[str]:
    """The hidden `agent` verb, as `up -d` starts it: the agent's own checks, not the CLI's."""
    return subprocess.run(
        [
            *INFRAVEIL,
            "agent",
            "-f",
            str(infraveil.manifest),
            "--state-dir",
            str(infraveil.state_dir),
        ],
        cwd=infraveil.workdir,
        env=infraveil.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def refused(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}{result.stderr}"
    for needle in needles:
        assert needle in result.stderr, f"{needle!r} not in:\n{result.stderr}"


# ── a state directory the agent cannot use ─────────────────────────────────────────────────


def test_a_read_only_state_dir_is_refused_saying_which_path_and_why(
    infraveil: Infraveil,
) -> None:
    infraveil.write_manifest({"web": {"command": SLEEPER}})
    with state_dir_on(infraveil, "1m") as state_dir:
        remount_read_only(state_dir.parent)
        why = (
            f"cannot use state directory {state_dir}: cannot create {state_dir / 'run'}:"
            " Read-only file system",
        )
        refused(infraveil.run("up", "-d", "-f", str(infraveil.manifest)), STATE_DIR_EXIT, *why)
        refused(run_agent_directly(infraveil), STATE_DIR_EXIT, *why)
        assert os.listdir(state_dir) == []  # nothing was started, nothing was written


@pytest.mark.parametrize("room", [0, 16 * 1024], ids=["full", "nearly-full"])
def test_a_state_dir_on_a_full_disk_is_refused_saying_which_path_and_why(
    infraveil: Infraveil, room: int
) -> None:
    infraveil.write_manifest({"web": {"command": SLEEPER}})
    with state_dir_on(infraveil, "1m") as state_dir:
        filler = fill(state_dir.parent)
        os.truncate(filler, filler.stat().st_size - room)  # room for an empty file, or a bit
        why = (
            f"cannot use state directory {state_dir}: cannot write {state_dir / '.write-test'}:"
            " No space left on device",
            "free some space there",
        )
        refused(infraveil.run("up", "-d", "-f", str(infraveil.manifest)), STATE_DIR_EXIT, *why)
        refused(run_agent_directly(infraveil), STATE_DIR_EXIT, *why)
        assert not (state_dir / "agent.sock").exists()
        assert not (state_dir / ".write-test").exists()


# ── a disk that fills up under a running agent ─────────────────────────────────────────────


def _flipper(tmp_path: Path) -> dict[str, Any]:
    """A service whose readiness a test flips by creating a file: an event with no log line."""
    flag = tmp_path / "not-ready"
    return {
        "command": SLEEPER,
        "ready": {"exec": f"test ! -e {flag}", "interval": "1s", "timeout": "1s"},
        "stop_timeout": "1s",
    }


def _store_warnings(infraveil: Infraveil) -> list[dict[str, Any]]:
    warnings = infraveil.json("status")["warnings"]
    return [w for w in warnings if w["warning"] == "store_error"]


def test_a_disk_that_fills_up_under_the_agent_stops_no_service_and_is_reported(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    ticker = python(
        "import itertools, time\n"
        "for i in itertools.count():\n"
        "    print('tick', i, flush=True)\n"
        "    time.sleep(0.02)"
    )
    services = {"flip": _flipper(tmp_path), "tick": {"command": ticker, "stop_timeout": "1s"}}
    with state_dir_on(infraveil, "16m") as state_dir:
        infraveil.up(services)
        infraveil.wait_for_service("flip", lambda r: r["ready"], 15, "to be ready")
        agent = infraveil.agent_pid()
        pids = {name: infraveil.api_service(name)["pid"] for name in services}
        follow = infraveil.follow("events", "-w")
        follow.wait_for_line(lambda line: "Ready" in line, 10, "the events stream to begin")

        fill(state_dir.parent)
        (tmp_path / "not-ready").touch()  # an event to record, on a full disk
        store = state_dir / "state.db"
        line = follow.wait_for_line(
            lambda line: "StoreError" in line, 15, "the store error as an event"
        )
        assert f"store: cannot write {store}: database or disk is full" in line
        assert "every service keeps running" in line
        infraveil.wait_for_service("flip", lambda r: not r["ready"], 10, "to be not ready")

        (warning,) = _store_warnings(infraveil)
        assert warning["warning"] == "store_error"
        assert warning["message"].startswith(f"store: cannot write {store}: ")
        status = infraveil.ok("status")
        assert "warning: store: cannot write" in status.stderr and "free some space" in (
            status.stderr
        )
        assert alive(agent) and infraveil.agent_pid() == agent
        assert {n: infraveil.api_service(n)["pid"] for n in services} == pids
        assert all(alive(pid) for pid in pids.values())
        assert {r["state"] for r in infraveil.status().values()} == {"running"}

        make_room(state_dir.parent)
        follow.wait_for_line(lambda line: "StoreRecovered" in line, 15, "the store to recover")
        assert _store_warnings(infraveil) == []
        # what happened while the disk was full was written once there was room, in order
        events = infraveil.events()
        reasons = [e["reason"] for e in events]
        assert "NotReady" in reasons and "StoreError" in reasons, reasons
        assert reasons.index("StoreError") < reasons.index("StoreRecovered")
        ids = [e["id"] for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        (tmp_path / "not-ready").unlink()
        infraveil.wait_for_service("flip", lambda r: r["ready"], 10, "to be ready again")
        wait_for(
            lambda: infraveil.events("flip")[-1]["reason"] == "Ready", 10, "Ready in the store"
        )
        assert alive(agent)


def _log_warnings(infraveil: Infraveil) -> list[dict[str, Any]]:
    warnings = infraveil.json("status")["warnings"]
    return [w for w in warnings if w["warning"] == "logs_error"]


def test_a_service_that_dies_while_the_disk_is_full_is_restarted(infraveil: Infraveil) -> None:
    """Its exit and its restart write log markers the full disk refuses: they are dropped and
    reported, and the restart happens anyway; once there is room, the log notes the gap."""
    with state_dir_on(infraveil, "16m") as state_dir:
        infraveil.up({"web": {"command": SLEEPER, "stop_timeout": "1s"}})
        pid = infraveil.api_service("web")["pid"]
        follow = infraveil.follow("events", "-w")
        follow.wait_for_line(lambda line: "Started" in line, 10, "the events stream to begin")
        fill(state_dir.parent)
        os.kill(pid, signal.SIGKILL)
        infraveil.wait_for_service(
            "web",
            lambda r: r["state"] == "running" and r["pid"] not in (None, pid),
            5,
            "to be restarted while the disk is full",
        )
        new_log = state_dir / "logs" / "web" / "2.log"
        line = follow.wait_for_line(
            lambda line: "LogWriteError" in line, 10, "the log write error as an event"
        )
        assert f"logs: cannot write {new_log}: No space left on device; " in line
        assert "bytes of output dropped" in line and "every service keeps running" in line
        (warning,) = _log_warnings(infraveil)
        assert warning["message"].startswith(f"logs: cannot write {new_log}: No space left")
        assert "free some space" in infraveil.ok("status").stderr

        make_room(state_dir.parent)
        line = follow.wait_for_line(
            lambda line: "LogsRecovered" in line, 10, "the logs to be writable again"
        )
        assert "can be written again" in line and "bytes of output were dropped meanwhile" in line
        assert _log_warnings(infraveil) == []
        assert "bytes of output could not be written here (No space left on device)" in (
            new_log.read_text()
        )
        assert infraveil.status()["web"]["state"] == "running"


# ── what a killed agent leaves behind ──────────────────────────────────────────────────────


def _answers(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(socket_path))
        except ConnectionRefusedError:
            return False
    return True


def test_the_socket_and_pid_file_of_a_killed_agent_are_replaced_by_the_next_agent(
    infraveil: Infraveil,
) -> None:
    services = {"web": {"command": SLEEPER, "stop_timeout": "1s"}}
    infraveil.up(services)
    agent = infraveil.agent_pid()
    sock = infraveil.state_dir / "agent.sock"
    os.kill(agent, signal.SIGKILL)
    wait_for(lambda: not alive(agent), 5, f"the agent {agent} to die")
    # what it left: a socket nobody listens on, and a lock file naming a dead pid
    assert sock.exists() and not _answers(sock)
    assert infraveil.agent_pid() == agent
    refused(infraveil.run("status"), NO_AGENT_EXIT, f"no agent is running on {infraveil.state_dir}")

    infraveil.up(services)
    assert infraveil.agent_pid() not in (agent, None)
    assert _answers(sock)  # (a new socket: the inode number itself may be reused)
    assert infraveil.api("/v1/agent")["pid"] == infraveil.agent_pid()
    assert oct(sock.stat().st_mode & 0o777) == oct(0o600)


def test_a_live_agents_socket_is_never_removed_by_a_second_agent(infraveil: Infraveil) -> None:
    infraveil.up({"web": {"command": SLEEPER, "stop_timeout": "1s"}})
    agent = infraveil.agent_pid()
    sock = infraveil.state_dir / "agent.sock"
    inode = sock.stat().st_ino
    held = f"an agent is already running on {infraveil.state_dir} (pid {agent})"

    refused(infraveil.run("up", "-d", "-f", str(infraveil.manifest)), AGENT_RUNNING_EXIT, held)
    # the agent itself checks too (the lock, not the CLI's look at it, decides)
    refused(run_agent_directly(infraveil), AGENT_RUNNING_EXIT, held)

    assert sock.stat().st_ino == inode and _answers(sock)
    assert infraveil.api("/v1/agent")["pid"] == agent
    assert infraveil.agent_pid() == agent  # the lock file still names the live agent
    status = json.loads(infraveil.ok("status", "-o", "json").stdout)
    assert [s["name"] for s in status["services"]] == ["web"]
