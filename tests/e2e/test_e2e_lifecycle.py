"""Starting, crashing, restarting and failing services, seen through the real CLI."""

from __future__ import annotations

import os
import re
import signal
import sys
import time

import pytest
from e2e_support import Infraveil, alive, python, wait_for

pytestmark = pytest.mark.e2e

SLEEPER = python("import time; time.sleep(1000)")
CRASHER = python("print('crash line', flush=True); raise SystemExit(3)")
VARIED_CRASHER = python(
    "import os; n = os.environ['INFRAVEIL_INSTANCE'];"
    " print('crash line', ''.join(chr(97 + int(d)) for d in n), flush=True); raise SystemExit(3)"
)
"""Crashes with a different last line each time ("crash line b", "crash line c", ...): never
the same failure twice, so it backs off without ever being halted."""


def test_up_then_status_shows_running_services_with_live_pids(infraveil: Infraveil) -> None:
    result = infraveil.up(
        {
            "web": {"command": SLEEPER, "stop_timeout": "1s"},
            "worker": {"command": ["sh", "-c", "exec sleep 1000"], "stop_timeout": "1s"},
        }
    )
    assert "web" in result.stdout and "worker" in result.stdout  # the status table
    assert "running" in result.stdout

    status = infraveil.status()
    assert list(status) == ["web", "worker"]
    for name, row in status.items():
        assert row["state"] == "running", row
        assert row["ready"] is True
        assert row["instance"] == 1
        assert row["restarts"] == 0
        assert row["last_exit"] is None
        assert isinstance(row["pid"], int) and alive(row["pid"]), f"{name}: pid {row['pid']}"
        assert os.getpgid(row["pid"]) == row["pid"], "each service leads its own process group"
        assert row["uptime"] is not None and row["uptime"] >= 1.0  # running after 1 s up
    assert status["web"]["pid"] != status["worker"]["pid"]


def test_a_second_up_on_the_same_state_dir_is_refused(infraveil: Infraveil) -> None:
    infraveil.up({"web": {"command": SLEEPER, "stop_timeout": "1s"}})
    before = infraveil.api_service("web")
    agent_pid = infraveil.agent_pid()
    assert alive(agent_pid)

    second = infraveil.run("up", "-d", "-f", str(infraveil.manifest))
    assert second.returncode == 5, infraveil.explain(("up", "-d"), second)
    assert f"pid {agent_pid}" in second.stderr
    assert "already running" in second.stderr

    after = infraveil.api_service("web")
    assert (after["pid"], after["instance"]) == (before["pid"], before["instance"])
    assert infraveil.agent_pid() == agent_pid


def test_a_crashing_service_backs_off_and_explains_itself(infraveil: Infraveil) -> None:
    infraveil.up(
        {"crash": {"command": VARIED_CRASHER}, "web": {"command": SLEEPER, "stop_timeout": "1s"}}
    )
    # the third failure in a row backs off ~2 s: time enough to look at a stable picture
    row = infraveil.wait_for_service(
        "crash",
        lambda r: r["state"] == "backoff" and r["instance"] >= 3 and r["retry_in"] > 1.0,
        20,
        "to back off after its third crash",
    )
    assert row["restarts"] > 0
    assert row["pid"] is None
    assert row["last_exit"]["code"] == 3
    assert row["last_exit"]["signal"] is None
    assert "exited with code 3" in row["reason"]
    assert "last line: crash line " in row["reason"]

    status = infraveil.status()
    assert status["crash"]["state"] == "backoff"
    assert status["crash"]["last_exit"]["code"] == 3
    assert status["crash"]["restarts"] >= 2
    assert status["web"]["state"] == "running", "one crashing service must not affect another"

    def consistent_logs() -> tuple[int, str, str] | None:
        """`logs` and `logs --previous` while one instance stays the latest, ended."""
        before = infraveil.api_service("crash")
        if before["state"] != "backoff":
            return None
        latest = infraveil.ok("logs", "crash").stdout
        previous = infraveil.ok("logs", "crash", "--previous").stdout
        after = infraveil.api_service("crash")
        if (after["state"], after["instance"]) != ("backoff", before["instance"]):
            return None
        return before["instance"], latest, previous

    n, latest, previous = wait_for(consistent_logs, 30, "a backoff long enough to read the logs")
    for number, text in ((n, latest), (n - 1, previous)):
        lines = text.splitlines()
        assert len(lines) == 3, text
        assert lines[0].startswith(f"[infraveil] starting instance {number}: ")
        assert lines[1].startswith("crash line ")
        assert lines[2].startswith(f"[infraveil] instance {number} exited with code 3 after ")

    events = infraveil.events("crash")
    exited = [e for e in events if e["reason"] == "Exited"]
    backoffs = [e for e in events if e["reason"] == "BackOff"]
    assert len(exited) >= 3
    assert all(e["type"] == "warning" for e in exited + backoffs)
    assert all("exited with code 3" in e["message"] for e in exited)
    assert all(re.search(r"; last line: crash line [a-j]+$", e["message"]) for e in exited)
    assert backoffs and all(e["message"].startswith("restarting in ") for e in backoffs)
    # the first crash restarts at once; the second one starts the back-off
    first_backoff = events.index(backoffs[0])
    assert [e["reason"] for e in events[:first_backoff]].count("Exited") == 2
    assert [e["reason"] for e in events[:first_backoff]].count("Started") == 2
    # then 1 s, 2 s, ... (±10 % jitter), and the next start waits that long
    for backoff, failures, expected in zip(backoffs, (2, 3), (1.0, 2.0), strict=False):
        found = re.fullmatch(
            r"restarting in ([\d.]+)s \((\d+) failures in a row\)", backoff["message"]
        )
        assert found, backoff["message"]
        delay = float(found.group(1))
        assert int(found.group(2)) == failures
        assert expected * 0.85 <= delay <= expected * 1.15, backoff["message"]
        following = events[events.index(backoff) + 1 :]
        restarted = next((e for e in following if e["reason"] == "Started"), None)
        if restarted is not None:
            assert restarted["time"] - backoff["time"] >= delay - 0.1


def test_kill_9_is_restarted_at_once_and_recorded(infraveil: Infraveil) -> None:
    infraveil.up({"web": {"command": SLEEPER, "stop_timeout": "1s"}})
    old = infraveil.api_service("web")
    assert old["state"] == "running"

    killed_at = time.monotonic()
    os.kill(old["pid"], signal.SIGKILL)
    new = infraveil.wait_for_service(
        "web",
        lambda r: r["pid"] not in (None, old["pid"]),
        3,
        "a new pid after kill -9",
    )
    latency = time.monotonic() - killed_at
    assert latency < 3
    assert alive(new["pid"])
    assert new["instance"] == old["instance"] + 1
    assert new["restarts"] == 1
    assert new["last_exit"]["signal"] == "SIGKILL"
    assert new["last_exit"]["code"] is None

    described = infraveil.describe("web")
    assert described["schema"] == "infraveil/v1/describe"
    newest, previous = described["instances"][:2]
    assert newest["pid"] == new["pid"] and newest["exit"] is None
    assert previous["number"] == old["instance"]
    assert previous["pid"] == old["pid"]
    assert previous["exit"]["signal"] == "SIGKILL"
    assert previous["exit"]["text"] == "killed by SIGKILL"
    assert previous["ended"] >= previous["started"]

    text = infraveil.ok("describe", "web").stdout
    assert "killed by SIGKILL" in text
    assert str(old["pid"]) in text


def test_a_missing_command_fails_alone(infraveil: Infraveil) -> None:
    result = infraveil.up(
        {
            "ghost": {"command": "ivl-no-such-command-xyz --port 1"},
            "web": {"command": SLEEPER, "stop_timeout": "1s"},
        }
    )
    # preflight finds it before any exec is tried, and says which PATH it searched
    not_found = "the command 'ivl-no-such-command-xyz' is not on the service's PATH"
    assert "ghost is not up: " in result.stderr and not_found in result.stderr

    status = infraveil.status()
    ghost, web = status["ghost"], status["web"]
    assert ghost["state"] == "failed"
    assert ghost["diagnosis"] == "command_not_found"
    assert not_found in ghost["reason"]
    assert ghost["pid"] is None
    assert ghost["restarts"] == 0, "a command that cannot run must not be retried in a loop"
    assert web["state"] == "running" and alive(web["pid"])

    [failed] = [e for e in infraveil.events("ghost") if e["reason"] == "Halted"]
    assert not_found in failed["message"]
    logs = infraveil.ok("logs", "ghost").stdout
    marker = f"[infraveil] instance 1 could not start: {not_found}"
    assert any(line.startswith(marker) for line in logs.splitlines()), logs


def test_a_service_starts_after_what_it_depends_on_is_running(infraveil: Infraveil) -> None:
    infraveil.up(
        {
            "b": {"command": SLEEPER, "depends_on": ["a"], "stop_timeout": "1s"},
            "a": {"command": SLEEPER, "stop_timeout": "1s"},
        }
    )
    infraveil.wait_for_service("b", lambda r: r["state"] == "running", 10, "b to be running")
    events = infraveil.events()

    def first(service: str, reason: str) -> dict:
        return next(e for e in events if e["service"] == service and e["reason"] == reason)

    a_started, a_running = first("a", "Started"), first("a", "Running")
    b_waiting, b_started = first("b", "Waiting"), first("b", "Started")
    assert "a" in b_waiting["message"]
    assert b_waiting["id"] < a_running["id"] < b_started["id"]
    assert a_started["id"] < a_running["id"]
    assert b_started["time"] >= a_running["time"]
    assert b_started["instance"] == 1  # b never ran before a was running
    assert [infraveil.api_service(n)["state"] for n in ("a", "b")] == ["running", "running"]


def test_an_unknown_service_exits_4_and_lists_the_known_ones(infraveil: Infraveil) -> None:
    infraveil.up({"web": {"command": SLEEPER, "stop_timeout": "1s"}, "db": {"command": SLEEPER}})
    for args in (
        ("describe", "nosuch"),
        ("logs", "nosuch"),
        ("restart", "nosuch"),
        ("events", "nosuch"),
    ):
        result = infraveil.run(*args)
        assert result.returncode == 4, infraveil.explain(args, result)
        assert "no service named 'nosuch'" in result.stderr
        assert "known services: db, web" in result.stderr
    assert infraveil.api_service("web")["state"] == "running"


def test_main_exit_kills_what_is_left_of_its_group(infraveil: Infraveil, tmp_path) -> None:
    """A service whose main process exits leaves no orphan behind (its group is SIGKILLed)."""
    pidfile = tmp_path / "orphan.pid"
    script = (
        f"if [ -e {pidfile} ]; then exec sleep 1000; fi; "
        f"sleep 1000 & echo $! > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exit 1"
    )
    infraveil.up({"leaky": {"command": ["sh", "-c", script], "stop_timeout": "1s"}})
    orphan = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), 10, "the pidfile"))
    infraveil.wait_for_service(
        "leaky", lambda r: r["instance"] >= 2 and r["pid"] is not None, 10, "its second instance"
    )
    wait_for(lambda: not alive(orphan), 5, f"the first instance's orphan {orphan} to be killed")


def test_starting_a_service_that_cannot_start_exits_1(infraveil: Infraveil) -> None:
    infraveil.up({"ghost": {"command": "ivl-no-such-command-xyz"}})
    result = infraveil.run("start", "ghost")
    not_found = "the command 'ivl-no-such-command-xyz' is not on the service's PATH"
    assert "ghost: failed: ghost was not started: " in result.stdout
    assert not_found in result.stdout
    assert infraveil.service("ghost")["state"] == "failed"
    assert result.returncode == 1, infraveil.explain(("start", "ghost"), result)


def test_up_detach_exits_1_when_a_service_is_not_up(infraveil: Infraveil) -> None:
    result = infraveil.up(
        {
            "ok": {"command": ["sleep", "1000"]},
            "broken": {"command": [sys.executable, "-c", "raise SystemExit(4)"]},
        }
    )
    assert result.returncode == 1
    # backing off, or already halted after the same crash three times: either way, said so
    assert re.search(
        r"broken is not up: (failed the same way 3 times in a row: )?exited with code 4",
        result.stderr,
    ), result.stderr
    assert "ok is not up" not in result.stderr
    assert infraveil.api_service("ok")["state"] == "running"  # the agent stays up for the rest


def test_up_detach_exits_0_when_every_service_is_up(infraveil: Infraveil) -> None:
    result = infraveil.up({"ok": {"command": ["sleep", "1000"]}})
    assert result.returncode == 0
    assert result.stderr == ""
