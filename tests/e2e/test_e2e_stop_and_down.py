"""Stopping a service takes its whole process tree; `down` takes everything, then the agent."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from e2e_support import Infraveil, alive, group_members, python, wait_for

pytestmark = pytest.mark.e2e

# The shell and both sleeps ignore SIGTERM (an ignored signal stays ignored across exec), and
# the first sleep is a grandchild in the background: only SIGKILL to the whole group ends it.
STUBBORN = ["sh", "-c", 'trap "" TERM; sleep 1000 & sleep 1000; wait']


def test_stop_kills_a_term_ignoring_tree_after_stop_timeout(infraveil: Infraveil) -> None:
    infraveil.up({"stubborn": {"command": STUBBORN, "stop_timeout": "1s"}})
    row = infraveil.api_service("stubborn")
    assert row["state"] == "running"
    pgid = row["pid"]
    tree = wait_for(
        lambda: (members := group_members(pgid)) and len(members) >= 3 and members,
        10,
        f"the shell and its two sleeps in group {pgid}",
    )
    assert pgid in tree

    started = time.monotonic()
    result = infraveil.ok("stop", "stubborn")
    elapsed = time.monotonic() - started
    assert result.stdout.strip() == "stubborn: stopped"
    assert elapsed >= 1.0, f"SIGKILL came {elapsed:.2f}s after the stop: before stop_timeout"
    assert elapsed < 10

    stopped = infraveil.service("stubborn")
    assert stopped["state"] == "stopped"
    assert stopped["pid"] is None
    assert stopped["last_exit"]["signal"] == "SIGKILL"
    wait_for(
        lambda: not group_members(pgid),
        2,
        lambda: f"no process left in group {pgid}, still: {group_members(pgid)}",
    )
    assert not any(alive(pid) for pid in tree)

    reasons = [e["reason"] for e in infraveil.events("stubborn")]
    assert reasons[-3:] == ["Stopping", "Killing", "Stopped"]


def test_stop_of_a_cooperative_service_is_quick(infraveil: Infraveil) -> None:
    infraveil.up(
        {"web": {"command": python("import time; time.sleep(1000)"), "stop_timeout": "5s"}}
    )
    pid = infraveil.api_service("web")["pid"]
    started = time.monotonic()
    infraveil.ok("stop", "web")
    assert time.monotonic() - started < 4, "SIGTERM alone should have been enough"
    row = infraveil.api_service("web")
    assert row["state"] == "stopped"
    assert row["last_exit"]["signal"] == "SIGTERM"
    assert not alive(pid)

    again = infraveil.run("stop", "web")  # already stopped: not an error
    assert again.returncode == 0, infraveil.explain(("stop", "web"), again)

    infraveil.ok("start", "web")
    row = infraveil.api_service("web")
    assert row["state"] == "running" and row["instance"] == 2 and alive(row["pid"])


def test_down_leaves_no_process_and_no_agent(infraveil: Infraveil, tmp_path: Path) -> None:
    infraveil.up(
        {
            "web": {"command": python("import time; time.sleep(1000)"), "stop_timeout": "1s"},
            "tree": {
                "command": ["sh", "-c", "sleep 1000 & sleep 1000 & wait"],
                "stop_timeout": "1s",
            },
            "stubborn": {"command": STUBBORN, "stop_timeout": "1s", "depends_on": ["web"]},
        }
    )
    status = {row["name"]: row for row in infraveil.api("/v1/status")["services"]}
    assert all(row["state"] == "running" for row in status.values()), status
    groups = [row["pid"] for row in status.values()]
    wait_for(
        lambda: (
            len(group_members(status["tree"]["pid"])) == 3
            and len(group_members(status["stubborn"]["pid"])) == 3
        ),
        10,
        "the background sleeps",
    )
    pids = [pid for group in groups for pid in group_members(group)]
    assert len(pids) == 7
    agent_pid = infraveil.agent_pid()
    assert alive(agent_pid)
    events = infraveil.follow("events", "-w")
    logs = infraveil.follow("logs", "web", "-f")
    events.wait_for_line(lambda line: "AgentStarted" in line, 10, "the past events")
    logs.wait_for_line(lambda line: "starting instance 1" in line, 10, "web's log")

    result = infraveil.run("down")
    assert result.returncode == 0, infraveil.explain(("down",), result)
    assert f"agent {agent_pid} stopped" in result.stdout
    # stubborn depends on web: it is stopped (and killed) before web is
    stopped = [line.split()[1] for line in result.stdout.splitlines() if " Stopped " in line]
    assert sorted(stopped) == ["stubborn", "tree", "web"], result.stdout
    assert stopped.index("stubborn") < stopped.index("web"), result.stdout
    assert "Killing" in result.stdout

    wait_for(lambda: not alive(agent_pid), 5, f"the agent {agent_pid} to exit")
    wait_for(
        lambda: not [pid for pid in pids if alive(pid)],
        2,
        lambda: f"every service process to be gone; alive: {[p for p in pids if alive(p)]}",
    )
    assert not any(group_members(group) for group in groups)

    # followers end with the agent, without an error
    assert events.proc.wait(timeout=10) == 0
    assert logs.proc.wait(timeout=10) == 0
    assert "AgentStopped" in events.lines[-1]
    assert "[infraveil] starting instance 1" in logs.lines[0]
    # web is stopped last (after stubborn's 1 s): its follower still sees it to the end
    assert logs.lines[-1].startswith("[infraveil] instance 1 killed by SIGTERM"), logs.lines[-3:]

    status_after = infraveil.run("status")
    assert status_after.returncode == 3, infraveil.explain(("status",), status_after)
    assert "infraveil up" in status_after.stderr
    assert "AgentStopped" in (infraveil.state_dir / "agent.log").read_text()


TICKER = """\
import itertools, os, time
for i in itertools.count():
    print(f"tick {i}", flush=True)
    with open("count.tmp", "w") as f:
        f.write(str(i))
    os.replace("count.tmp", "count")
    time.sleep(0.05)
"""


def test_services_outlive_a_killed_agent_and_the_next_agent_adopts_them(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    infraveil.up({"tick": {"command": infraveil.script("tick.py", TICKER), "stop_timeout": "1s"}})
    pid = infraveil.api_service("tick")["pid"]
    agent_pid = infraveil.agent_pid()
    counter = tmp_path / "count"

    os.kill(agent_pid, signal.SIGKILL)
    wait_for(lambda: not alive(agent_pid), 5, f"the agent {agent_pid} to die")
    assert infraveil.run("status").returncode == 3
    # nobody reads its output now: it must go on writing (into its pipe) and not die of it
    at_death = int(counter.read_text())
    wait_for(lambda: int(counter.read_text()) >= at_death + 10, 10, "ten more ticks, agentless")
    assert alive(pid)

    infraveil.up({"tick": {"command": infraveil.script("tick.py", TICKER), "stop_timeout": "1s"}})
    row = infraveil.api_service("tick")
    assert (row["pid"], row["instance"], row["state"]) == (pid, 1, "running")
    assert infraveil.agent_pid() != agent_pid
    adopted = [e for e in infraveil.events("tick") if e["reason"] == "Adopted"]
    assert [e["message"] for e in adopted] == [f"instance 1 (pid {pid}) kept running"]

    # what it wrote while no agent was there is in its log, in order, nothing lost
    target = int(counter.read_text()) + 5
    wait_for(
        lambda: f"tick {target}" in infraveil.ok("logs", "tick").stdout.splitlines(),
        10,
        f"tick {target} in the log",
    )
    lines = infraveil.ok("logs", "tick").stdout.splitlines()
    ticks = [int(line.split()[1]) for line in lines if line.startswith("tick ")]
    assert ticks == list(range(len(ticks))), "output lost or reordered around the agent's death"
    assert f"[infraveil] instance 1 adopted by a new agent (pid {infraveil.agent_pid()})" in lines

    # and the new agent can stop what the old one started
    infraveil.ok("stop", "tick")
    wait_for(lambda: not alive(pid), 5, f"the adopted instance {pid} to be stopped")
    assert infraveil.api_service("tick")["state"] == "stopped"


def test_logs_follow_shows_the_last_words_of_a_service_stopped_by_down(
    infraveil: Infraveil,
) -> None:
    code = """\
import itertools, signal, time
signal.signal(signal.SIGTERM, lambda *_: print("got SIGTERM, finishing", flush=True))
for i in itertools.count():
    print(f"tick {i}", flush=True)
    time.sleep(0.05)
"""
    infraveil.up({"slow": {"command": infraveil.script("slow.py", code), "stop_timeout": "1s"}})
    follow = infraveil.follow("logs", "slow", "-f")
    follow.wait_for_line(lambda line: line == "tick 5", 10, "tick 5")
    infraveil.ok("down", "-q")
    assert follow.proc.wait(timeout=10) == 0
    follow.close()
    log = (infraveil.state_dir / "logs" / "slow" / "1.log").read_text().splitlines()
    written = [
        ("[infraveil] " + text) if stream == "ivl" else text
        for _, stream, text in (line.split(" ", 2) for line in log)
    ]
    assert written[-1].startswith("[infraveil] instance 1 killed by SIGKILL")
    assert "got SIGTERM, finishing" in written
    assert follow.lines == written


def test_instance_numbers_go_on_after_down_and_up(infraveil: Infraveil) -> None:
    services = {
        "web": {"command": python("print('run', flush=True); import time; time.sleep(1000)")}
    }
    infraveil.up(services)
    first = infraveil.api_service("web")
    assert first["instance"] == 1
    infraveil.ok("down", "-q")

    infraveil.up(services)
    second = infraveil.api_service("web")
    assert second["instance"] == 2, "a new agent must not reuse instance 1"
    numbers = [i["number"] for i in infraveil.json("describe", "web")["instances"]]
    assert numbers == [2, 1]
    previous = infraveil.run("logs", "web", "--previous")
    assert previous.stdout.splitlines()[0].startswith("[infraveil] starting instance 1")
    current = infraveil.run("logs", "web")
    assert [line for line in current.stdout.splitlines() if line == "run"] == ["run"]
    assert "instance 1" not in current.stdout
