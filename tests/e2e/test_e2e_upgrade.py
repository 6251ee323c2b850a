"""An upgrade of the agent is a restart of the agent: its services never notice.

`down --keep-services` ends the agent and leaves every service running; the next `up` adopts
them. And an agent of this code adopts the services that an agent of the previous release
started: that release is built from git (commit `PREVIOUS`) and run with this interpreter.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Infraveil, alive, http_get

from infraveil.store.db import SCHEMA_VERSION
from waiting import wait_for

PREVIOUS = "30055cd"
"""The last commit before `down --keep-services` and the store's write errors existed."""
REPO = Path(__file__).resolve().parents[2]

TICKER = """\
import itertools, os, sys, time
for i in itertools.count():
    os.write(1, f"tick {i}\\n".encode())
    with open("count.tmp", "w") as f:
        f.write(str(i))
    os.replace("count.tmp", "count")
    time.sleep(0.01)
"""
SLEEPER = "import time\nwhile True:\n    time.sleep(60)\n"


def _services(infraveil: Infraveil) -> dict[str, dict[str, object]]:
    return {
        "tick": {"command": infraveil.script("tick.py", TICKER), "stop_timeout": "1s"},
        "web": {"command": infraveil.script("web.py", SLEEPER), "stop_timeout": "1s"},
    }


def _start_time(pid: int) -> int:
    """The process's start time (clock ticks after boot): a reused pid has another one."""
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rfind(b")") + 2 :].split()[19])


def _running(infraveil: Infraveil) -> dict[str, tuple[int, int, int]]:
    """(pid, instance, start time) of every service, as the agent reports it."""
    rows = infraveil.api("/v1/status")["services"]
    assert all(r["state"] == "running" for r in rows), rows
    return {r["name"]: (r["pid"], r["instance"], _start_time(r["pid"])) for r in rows}


def _count(tmp_path: Path) -> int:
    return int((tmp_path / "count").read_text())


def _wait_for_ticks_while_agentless(tmp_path: Path, n: int) -> None:
    at = _count(tmp_path)
    wait_for(lambda: _count(tmp_path) >= at + n, 10, f"{n} more ticks with no agent")


def _ticks_in_log(infraveil: Infraveil, tmp_path: Path) -> list[int]:
    """The tick numbers in the log, once it holds a few written after this call."""
    target = _count(tmp_path) + 5
    wait_for(
        lambda: f"tick {target}" in infraveil.ok("logs", "tick", "--tail", "50").stdout,
        10,
        f"tick {target} in the log",
    )
    lines = infraveil.ok("logs", "tick", "--tail", "100000").stdout.splitlines()
    return [int(line.split()[1]) for line in lines if line.startswith("tick ")]


def _agent_gone(infraveil: Infraveil, pid: int) -> None:
    wait_for(lambda: not alive(pid), 10, f"the agent {pid} to exit")
    assert infraveil.run("status").returncode == 3  # no agent answers


def _adopted(infraveil: Infraveil, before: dict[str, tuple[int, int, int]]) -> None:
    """The new agent runs the very same processes, with their instance records."""
    assert _running(infraveil) == before
    for name, (pid, number, _) in before.items():
        adopted = [e["message"] for e in infraveil.events(name) if e["reason"] == "Adopted"]
        assert adopted[-1:] == [f"instance {number} (pid {pid}) kept running"], adopted
        instance = infraveil.describe(name)["instances"][0]
        assert (instance["number"], instance["pid"], instance["ended"]) == (number, pid, None)


def _still_supervised(infraveil: Infraveil, name: str, pid: int) -> None:
    """Kill an adopted service behind the agent's back: the new agent restarts it."""
    os.kill(pid, signal.SIGKILL)
    row = infraveil.wait_for_service(
        name,
        lambda r: r["state"] == "running" and r["instance"] == 2 and r["pid"] not in (None, pid),
        15,
        "to be restarted by the new agent",
    )
    assert alive(row["pid"])
    first = next(i for i in infraveil.describe(name)["instances"] if i["number"] == 1)
    assert first["ended"] is not None, f"the adopted instance's end was not recorded: {first}"


def test_down_keep_services_leaves_every_service_running_for_the_next_agent(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    infraveil.up(_services(infraveil))
    before = _running(infraveil)
    agent = infraveil.agent_pid()

    result = infraveil.ok("down", "--keep-services")
    assert f"agent {agent} exited; its services run on" in result.stdout
    assert "AgentLeaving" in result.stdout and "leaving 2 services running" in result.stdout
    _agent_gone(infraveil, agent)
    assert not (infraveil.state_dir / "agent.sock").exists()
    assert all(alive(pid) for pid, _, _ in before.values())
    _wait_for_ticks_while_agentless(tmp_path, 10)  # writing on, with nobody reading

    infraveil.up(_services(infraveil))
    assert infraveil.agent_pid() != agent
    _adopted(infraveil, before)
    agent_events = [e for e in infraveil.events() if e["service"] is None]
    reasons = [e["reason"] for e in agent_events]
    assert reasons.index("AgentLeaving") < len(reasons) - 1 - reasons[::-1].index("AgentStarted")
    assert "ShuttingDown" not in reasons and "AgentStopped" not in reasons, reasons
    leaving = next(e for e in agent_events if e["reason"] == "AgentLeaving")
    assert leaving["message"] == (
        "exiting and leaving 2 services running for the next agent: tick, web"
    )
    ticks = _ticks_in_log(infraveil, tmp_path)
    assert ticks == list(range(len(ticks))), "output lost or doubled across the agent's exit"
    _still_supervised(infraveil, "web", before["web"][0])


# ── from the previous release ────────────────────────────────────────────────────────────────


@pytest.fixture
def previous_release(tmp_path: Path) -> Path:
    """The `src/` of commit PREVIOUS, extracted from this checkout's git history."""
    why_not = _why_no_previous_release()
    if why_not:
        if os.environ.get("CI"):
            pytest.fail(f"CI must test the upgrade from {PREVIOUS}, but {why_not}")
        pytest.skip(why_not)
    where = tmp_path / "previous"
    where.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", PREVIOUS, "src"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where / "src"


def _why_no_previous_release() -> str:
    if shutil.which("git") is None:
        return "git is not installed"
    if not (REPO / ".git").exists():
        return f"{REPO} is not a git checkout"
    found = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{PREVIOUS}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        return f"commit {PREVIOUS} is not in {REPO} (a shallow clone?)"
    return ""


def _previous(
    infraveil: Infraveil, src: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The previous release's CLI (and, through `up -d`, its agent), run by this interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "infraveil", *args, "--state-dir", str(infraveil.state_dir)],
        cwd=infraveil.workdir,
        env={**infraveil.env, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _schema(state_dir: Path) -> str:
    with sqlite3.connect(f"file:{state_dir / 'state.db'}?mode=ro", uri=True) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    return str(version)


def test_an_agent_of_this_code_adopts_the_services_of_the_previous_release(
    infraveil: Infraveil, tmp_path: Path, previous_release: Path
) -> None:
    infraveil.write_manifest(_services(infraveil))
    # it really is the old code that runs: it knows no --keep-services
    old_code = _previous(infraveil, previous_release, "down", "--help")
    assert old_code.returncode == 0 and "--keep-services" not in old_code.stdout, old_code
    started = _previous(infraveil, previous_release, "up", "-d", "-f", str(infraveil.manifest))
    assert started.returncode == 0, infraveil.explain(("(previous) up", "-d"), started)
    before = _running(infraveil)
    old_agent = infraveil.agent_pid()
    environ = Path(f"/proc/{old_agent}/environ").read_bytes().split(b"\0")
    assert f"PYTHONPATH={previous_release}".encode() in environ  # its agent is the old code too
    old_schema = _schema(infraveil.state_dir)
    info: dict[str, Any] = infraveil.api("/v1/agent")
    assert info["pid"] == old_agent

    # the previous release cannot leave its services running on request: kill -9 it
    os.kill(old_agent, signal.SIGKILL)
    _agent_gone(infraveil, old_agent)
    _wait_for_ticks_while_agentless(tmp_path, 10)

    infraveil.up(_services(infraveil))  # this code, on the same state directory
    assert infraveil.agent_pid() != old_agent
    _adopted(infraveil, before)
    assert int(old_schema) <= SCHEMA_VERSION
    assert _schema(infraveil.state_dir) == str(SCHEMA_VERSION)  # migrated (or already current)
    ticks = _ticks_in_log(infraveil, tmp_path)
    assert ticks == list(range(len(ticks))), "output lost or doubled across the upgrade"
    log = infraveil.ok("logs", "tick", "--tail", "100000").stdout
    assert f"[infraveil] instance 1 adopted by a new agent (pid {infraveil.agent_pid()})" in log
    _still_supervised(infraveil, "web", before["web"][0])

    # and the new agent can leave them running in turn, for the one after it
    new_agent = infraveil.agent_pid()
    infraveil.ok("down", "--keep-services")
    _agent_gone(infraveil, new_agent)
    assert alive(before["tick"][0])
    infraveil.up(_services(infraveil))
    assert _running(infraveil)["tick"] == before["tick"]
    status, _, body = http_get(infraveil.state_dir / "agent.sock", "/v1/agent")
    assert status == 200, body
