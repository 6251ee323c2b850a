"""Health checks, crash loops, dependencies and memory limits with real servers and processes.

The HTTP service under test is `programs/http_service.py`, a real single-threaded HTTP server
steered by files in its working directory (boot time, wedge, not ready).
"""

from __future__ import annotations

import re
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Infraveil, python, wait_for

pytestmark = pytest.mark.e2e

SERVICE = str(Path(__file__).parent / "programs" / "http_service.py")
FAST = {"interval": "1s", "timeout": "1s"}
"""Probe every second (the default is 5 s): the 15 s liveness window stays as it is."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_service(port: int, *args: str) -> list[str]:
    return [sys.executable, SERVICE, str(port), *args]


def reasons(events: list[dict[str, Any]]) -> list[str]:
    return [e["reason"] for e in events]


def test_a_service_that_takes_20s_to_boot_is_not_killed_by_its_liveness_check(
    infraveil: Infraveil,
) -> None:
    port = free_port()
    infraveil.write_manifest(
        {
            "slow": {
                "command": http_service(port, "--boot", "20"),
                "port": port,
                "health": {"http": "/healthz", **FAST},
                "ready": "/readyz",
            }
        }
    )
    infraveil.ok("up", "-d", "-f", str(infraveil.manifest), timeout=90)
    row = infraveil.wait_for_service("slow", lambda r: r["ready"], 60, "to become ready")
    assert (row["instance"], row["restarts"], row["state"]) == (1, 0, "running")
    events = infraveil.events("slow")
    ready = next(e for e in events if e["reason"] == "Ready")
    found = re.search(r"ready after ([\d.]+)s", ready["message"])
    assert found and 20 <= float(found.group(1)) < 25, ready["message"]
    # liveness never ran while it booted: no liveness result before it was ready
    detail = wait_for(
        lambda: (d := infraveil.describe("slow"))["health"]["checks"].get("health") and d,
        10,
        "a first liveness result",
    )
    health = detail["health"]["checks"]["health"]
    assert all(r["time"] >= ready["time"] for r in health["history"])
    assert not [e for e in events if e["reason"] in ("Unhealthy", "LivenessFailing", "Exited")]
    # the startup check found the port closed for 20 s, and said so
    startup = detail["health"]["checks"]["startup"]
    assert startup["history"][-1]["ok"] is True


def test_a_wedged_service_is_restarted_and_the_restart_says_why(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = free_port()
    infraveil.up(
        {
            "web": {
                "command": http_service(port),
                "port": port,
                "health": {"http": "/healthz", **FAST},
                "stop_timeout": "2s",
            }
        }
    )
    first = infraveil.wait_for_service("web", lambda r: r["ready"], 20, "to become ready")
    (tmp_path / "wedge").touch()  # alive, but answers nothing from now on
    row = infraveil.wait_for_service(
        "web", lambda r: r["instance"] == 2 and r["ready"], 60, "to be restarted and ready again"
    )
    assert row["restarts"] == 1 and row["pid"] != first["pid"]
    events = infraveil.events("web")
    unhealthy = next(e for e in events if e["reason"] == "Unhealthy")
    assert re.fullmatch(
        rf"liveness check GET http://127\.0\.0\.1:{port}/healthz failed \d+ times over \d+s: "
        r"no answer within 1\.0s \(GET /healthz\)",
        unhealthy["message"],
    ), unhealthy["message"]
    failing = next(e for e in events if e["reason"] == "LivenessFailing")
    assert unhealthy["time"] - failing["time"] >= 14.5  # stayed unhealthy for the window
    described = infraveil.describe("web")
    old = next(i for i in described["instances"] if i["number"] == 1)
    assert old["failure"].startswith("liveness check GET ")
    assert old["probes"]["health"]["passing"] is False


def test_a_failing_readiness_check_never_restarts_anything(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = free_port()
    infraveil.up(
        {
            "web": {
                "command": http_service(port),
                "port": port,
                "ready": {"http": "/readyz", **FAST},
            }
        }
    )
    first = infraveil.wait_for_service("web", lambda r: r["ready"], 20, "to become ready")
    (tmp_path / "notready").touch()
    infraveil.wait_for_service("web", lambda r: not r["ready"], 10, "to be not ready")
    not_ready = next(e for e in infraveil.events("web") if e["reason"] == "NotReady")
    assert not_ready["message"] == (
        f"readiness check failed: GET http://127.0.0.1:{port}/readyz:"
        " HTTP 503 Service Unavailable for GET /readyz"
    )

    def failed_four_in_a_row() -> bool:
        history = infraveil.describe("web")["health"]["checks"]["ready"]["history"]
        return len(history) >= 4 and not any(r["ok"] for r in history[-4:])

    wait_for(failed_four_in_a_row, 20, "four failed readiness probes in a row")
    row = infraveil.api_service("web")
    assert (row["state"], row["instance"], row["pid"], row["restarts"]) == (
        "running",
        1,
        first["pid"],
        0,
    )
    (tmp_path / "notready").unlink()
    infraveil.wait_for_service("web", lambda r: r["ready"], 10, "to be ready again")
    assert infraveil.api_service("web")["instance"] == 1


def test_a_dependency_that_goes_down_causes_no_restart_storm(infraveil: Infraveil) -> None:
    db_port, api_port = free_port(), free_port()
    worker = python(
        "import socket, sys, time\n"
        f"socket.create_connection(('127.0.0.1', {db_port}), timeout=1).close()\n"
        "print('connected', flush=True)\n"
        "while True:\n"
        "    time.sleep(0.2)\n"
        f"    socket.create_connection(('127.0.0.1', {db_port}), timeout=1).close()\n"
    )
    infraveil.up(
        {
            "db": {"command": http_service(db_port), "port": db_port, "stop_timeout": "2s"},
            "api": {
                "command": http_service(api_port, "--db", str(db_port)),
                "port": api_port,
                "health": {"http": "/healthz", **FAST},
                "depends_on": ["db"],
            },
            "worker": {"command": worker, "depends_on": ["db"]},
        }
    )
    for name in ("db", "api", "worker"):
        infraveil.wait_for_service(name, lambda r: r["ready"], 20, "to become ready")
    api_before = infraveil.api_service("api")
    infraveil.ok("stop", "db")
    # the worker crashes (connection refused) but waits for db instead of burning its budget
    infraveil.wait_for_service(
        "worker", lambda r: r["state"] == "pending", 10, "to wait for db after its crash"
    )
    # api's liveness fails for the whole window: degraded, not restarted
    row = infraveil.wait_for_service(
        "api", lambda r: r["degraded"] is not None, 40, "to be marked degraded"
    )
    assert row["degraded"] == "its dependency db is not ready"
    assert (row["instance"], row["pid"], row["restarts"]) == (1, api_before["pid"], 0)
    events = infraveil.events("api")
    degraded = next(e for e in events if e["reason"] == "Degraded")
    assert "not restarting: its dependency db is not ready" in degraded["message"]
    assert "DependencyNotReady" in reasons(events)
    assert "Unhealthy" not in reasons(events)
    worker_events = infraveil.events("worker")
    waiting = [e for e in worker_events if e["reason"] == "Waiting"]
    assert any("not counted as a failure: db is not ready" in e["message"] for e in waiting)

    infraveil.ok("start", "db")
    infraveil.wait_for_service("api", lambda r: r["degraded"] is None, 20, "to recover")
    row = infraveil.wait_for_service(
        "worker", lambda r: r["state"] == "running", 20, "to start again once db is ready"
    )
    assert row["restarts"] == 0  # the crash while db was down did not count
    api = infraveil.api_service("api")
    assert (api["instance"], api["pid"]) == (1, api_before["pid"])


def test_liveness_failing_everywhere_at_once_degrades_instead_of_restarting(
    infraveil: Infraveil,
) -> None:
    """Three services share an outside dependency (not in the manifest) that goes away."""
    outside = socket.socket()
    outside.bind(("127.0.0.1", 0))
    outside.listen(64)
    shared = outside.getsockname()[1]
    ports = {f"api{n}": free_port() for n in range(3)}
    try:
        infraveil.up(
            {
                name: {
                    "command": http_service(port, "--db", str(shared)),
                    "port": port,
                    "health": {"http": "/healthz", **FAST},
                }
                for name, port in ports.items()
            }
        )
        before = {
            n: infraveil.wait_for_service(n, lambda r: r["ready"], 20, "ready") for n in ports
        }
        outside.close()  # the shared dependency goes down
        for name in ports:
            row = infraveil.wait_for_service(
                name, lambda r: r["degraded"] is not None, 40, "to be marked degraded"
            )
            assert "of 3 services are failing their liveness checks at once" in row["degraded"]
        events = infraveil.events()
        assert not [e for e in events if e["reason"] in ("Unhealthy", "Exited")]
        for name in ports:
            row = infraveil.api_service(name)
            assert (row["instance"], row["pid"]) == (1, before[name]["pid"])
    finally:
        outside.close()
    outside = socket.socket()
    outside.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    outside.bind(("127.0.0.1", shared))
    outside.listen(64)
    try:
        for name in ports:
            infraveil.wait_for_service(name, lambda r: r["degraded"] is None, 20, "to recover")
            assert infraveil.api_service(name)["instance"] == 1
    finally:
        outside.close()


HOG = python(
    "import time; print('allocating', flush=True); b = bytearray(300 << 20);"
    " b[::4096] = b'x' * len(b[::4096]); time.sleep(1000)"
)


@pytest.mark.parametrize("cgroups", ["on", "off"])
def test_a_service_allocating_past_its_limit_is_oom_killed_and_reported_so(
    infraveil: Infraveil, cgroups: str
) -> None:
    infraveil.env["INFRAVEIL_CGROUPS"] = cgroups
    infraveil.up({"hog": {"command": HOG, "memory": "64M"}})
    agent = infraveil.api("/v1/agent")
    if cgroups == "on" and not agent["cgroups"].startswith("cgroup v"):
        pytest.skip(f"no cgroups on this host: {agent['cgroups']}")
    row = infraveil.wait_for_service("hog", lambda r: r["oom_killed"], 30, "to be OOM-killed")
    assert row["last_exit"]["signal"] == "SIGKILL"
    events = infraveil.events("hog")
    killed = next(e for e in events if e["reason"] == "OOMKilled")
    assert "64.0MiB" in killed["message"], killed["message"]
    if cgroups == "on":  # the kernel's OOM killer, recognised as such: not "killed by SIGKILL"
        assert re.match(
            r"OOMKilled after [\d.]+s \(limit 64\.0MiB, peak 6\d\.\dMiB\)", killed["message"]
        )
    else:  # the RSS watchdog
        assert "enforced by the RSS watchdog: no cgroup" in killed["message"]
        assert any(e["reason"] == "NoCgroups" for e in infraveil.events())
    instance = infraveil.describe("hog")["instances"][-1]
    assert instance["oom_killed"] is True and instance["memory_limit"] == 64 << 20
    assert instance["peak_memory"] >= 60 << 20
    assert "OOMKilled" in infraveil.ok("status").stdout


def test_the_same_crash_three_times_halts_and_a_new_file_resumes_it(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    config = tmp_path / "conf" / "app.yml"
    app = python(
        "import sys, time\n"
        f"text = open({str(config)!r}).read()\n"
        "print('config read', flush=True)\n"
        "time.sleep(1000)\n"
    )
    infraveil.up({"app": {"command": app, "stop_timeout": "1s"}})
    row = infraveil.wait_for_service("app", lambda r: r["state"] == "failed", 20, "to halt")
    assert row["halted"] is True and row["instance"] == 3
    assert row["reason"].startswith("failed the same way 3 times in a row: exited with code 1")
    assert f"its config file {config}: it does not exist" in row["reason"]
    assert row["diagnosis"] == "config_missing"
    why = infraveil.json("why", "app")
    assert why["category"] == "config_missing" and why["deterministic"] is True
    assert any(f"No such file or directory: '{config}'" in e["text"] for e in why["evidence"])
    assert "failed (halted)" in infraveil.ok("status").stdout
    halted = next(e for e in infraveil.events("app") if e["reason"] == "Halted")
    assert "not restarting until something it depends on changes" in halted["message"]

    config.parent.mkdir()
    config.write_text("ok: true\n")
    row = infraveil.wait_for_service(
        "app", lambda r: r["state"] == "running", 20, "to resume once the file exists"
    )
    assert row["instance"] == 4
    retrying = next(e for e in infraveil.events("app") if e["reason"] == "Retrying")
    assert retrying["message"] == f"{config} changed; trying again"


def test_a_halted_service_resumes_when_its_manifest_entry_changes(infraveil: Infraveil) -> None:
    needs_env = python(
        "import os, time; print('url', os.environ['QUEUE_URL'], flush=True); time.sleep(1000)"
    )
    services: dict[str, dict[str, object]] = {"worker": {"command": needs_env}}
    infraveil.up(services)
    infraveil.wait_for_service("worker", lambda r: r["halted"], 20, "to halt")
    assert "needs the environment variable QUEUE_URL" in infraveil.api_service("worker")["reason"]
    why = infraveil.json("why", "worker")
    assert why["category"] == "missing_env"
    assert why["evidence"][0]["text"] == "KeyError: 'QUEUE_URL'"
    # the evidence says where it is: that line of that file is the quoted one
    path, number = why["evidence"][0]["source"].rsplit(" line ", 1)
    assert path.endswith("/logs/worker/3.log"), why
    assert Path(path).read_text().splitlines()[int(number) - 1].endswith("KeyError: 'QUEUE_URL'")
    # an invalid manifest is not taken, and says why
    infraveil.manifest.write_text(infraveil.manifest.read_text() + "\nnot toml [\n")
    wait_for(
        lambda: any(e["reason"] == "ManifestInvalid" for e in infraveil.events("worker")),
        10,
        "the invalid manifest to be reported",
    )
    assert infraveil.api_service("worker")["halted"]
    services["worker"]["env"] = {"QUEUE_URL": "http://127.0.0.1:1/"}
    infraveil.write_manifest(services)
    row = infraveil.wait_for_service(
        "worker", lambda r: r["state"] == "running", 20, "to run with its new entry"
    )
    retrying = next(e for e in infraveil.events("worker") if e["reason"] == "Retrying")
    assert retrying["message"] == "its manifest entry changed; trying again"
    assert infraveil.describe("worker")["spec"]["env"] == {"QUEUE_URL": "http://127.0.0.1:1/"}
    assert row["instance"] == 4


def test_a_port_nothing_listens_on_fails_the_startup_deadline_saying_so(
    infraveil: Infraveil,
) -> None:
    port = free_port()
    infraveil.up(
        {
            "quiet": {
                "command": python("import time; time.sleep(1000)"),
                "port": port,
                "startup_deadline": "3s",
                "stop_timeout": "1s",
            }
        }
    )
    infraveil.wait_for_service("quiet", lambda r: r["instance"] >= 2, 20, "to be restarted")
    timeout = next(e for e in infraveil.events("quiet") if e["reason"] == "StartupTimeout")
    assert re.fullmatch(
        rf"did not become ready within its startup deadline of 3\.0s: TCP 127\.0\.0\.1:{port}:"
        rf" nothing listening on 127\.0\.0\.1:{port} \(\d+ probes\)",
        timeout["message"],
    ), timeout["message"]


def test_an_http_check_answering_404_quotes_the_status_and_the_path(
    infraveil: Infraveil,
) -> None:
    port = free_port()
    infraveil.up(
        {
            "web": {
                "command": http_service(port),
                "port": port,
                "ready": "/no-such-page",
                "startup_deadline": "3s",
                "stop_timeout": "1s",
            }
        }
    )
    infraveil.wait_for_service("web", lambda r: r["instance"] >= 2, 20, "to be restarted")
    timeout = next(e for e in infraveil.events("web") if e["reason"] == "StartupTimeout")
    assert (
        f"GET http://127.0.0.1:{port}/no-such-page: HTTP 404 Not Found for GET /no-such-page"
        in (timeout["message"])
    )


NOTIFIER = python(
    "import os, socket, time\n"
    "addr = os.environ['NOTIFY_SOCKET']\n"
    "addr = '\\0' + addr[1:] if addr.startswith('@') else addr\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
    "assert os.environ['WATCHDOG_USEC'] == '1000000'\n"
    "time.sleep(0.5)\n"
    "s.sendto(b'READY=1\\nSTATUS=serving requests', addr)\n"
    "for _ in range(3):\n"
    "    s.sendto(b'WATCHDOG=1', addr); time.sleep(0.5)\n"
    "print('stopped pinging', flush=True)\n"
    "time.sleep(1000)\n"
)


def test_sd_notify_ready_ends_startup_and_a_silent_watchdog_restarts(
    infraveil: Infraveil,
) -> None:
    infraveil.up(
        {
            "notifier": {
                "command": NOTIFIER,
                "ready": {"notify": True},
                "health": {"notify": True, "watchdog": "1s"},
                "stop_timeout": "1s",
            }
        }
    )
    row = infraveil.wait_for_service("notifier", lambda r: r["ready"], 10, "to send READY=1")
    assert row["instance"] == 1
    ready = next(e for e in infraveil.events("notifier") if e["reason"] == "Ready")
    assert "sd_notify: READY=1 (serving requests)" in ready["message"]
    infraveil.wait_for_service(
        "notifier", lambda r: r["instance"] == 2, 40, "to be restarted for its silent watchdog"
    )
    unhealthy = next(e for e in infraveil.events("notifier") if e["reason"] == "Unhealthy")
    assert "no WATCHDOG=1 within 1.0s" in unhealthy["message"]


def test_the_startup_deadline_is_learned_and_a_slow_boot_is_reported(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = free_port()
    infraveil.up({"web": {"command": http_service(port), "port": port, "stop_timeout": "2s"}})
    infraveil.wait_for_service("web", lambda r: r["ready"], 20, "to become ready")
    assert (
        "default, until 3 boots are known"
        in infraveil.describe("web")["health"]["startup_deadline"]
    )
    for n in (2, 3):
        infraveil.ok("restart", "web")
        infraveil.wait_for_service(
            "web", lambda r, n=n: r["instance"] == n and r["ready"], 20, f"instance {n} ready"
        )
    described = infraveil.describe("web")["health"]["startup_deadline"]
    assert described == "10s (learned from 3 boots)"  # 3 × p95 of fast boots, clamped to 10 s
    (tmp_path / "boot").write_text("4")
    infraveil.ok("restart", "web")
    infraveil.wait_for_service("web", lambda r: r["instance"] == 4 and r["ready"], 20, "slow boot")
    slow = next(e for e in infraveil.events("web") if e["reason"] == "SlowStart")
    # (a boot is measured to the startup probe's 1 s cadence: 4 s of sleep reads as 4 to 5 s)
    assert re.fullmatch(r"took [45]\.\ds to become ready; it usually takes 0\.\ds", slow["message"])
