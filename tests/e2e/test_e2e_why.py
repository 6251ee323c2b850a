"""`infraveil why` against a real agent, and `infraveil doctor` on files from anywhere: what a
person gets in the cases around the diagnoses themselves (those are in test_e2e_why_servers):
a healthy service, an older instance, a service running but not ready, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Infraveil, python
from test_e2e_health import FAST, free_port, http_service

from waiting import wait_for

pytestmark = pytest.mark.e2e

MISSING_ENV = python("import os; os.environ['QUEUE_URL']")


def test_why_on_an_unknown_service_lists_the_known_ones(infraveil: Infraveil) -> None:
    infraveil.up({"web": {"command": python("import time; time.sleep(1000)")}})
    result = infraveil.run("why", "wbe")
    assert result.returncode == 4, infraveil.explain(("why", "wbe"), result)
    assert result.stderr.splitlines() == [
        "error: no service named 'wbe'",
        "hint: known services: web",
    ]


def test_a_healthy_service_says_so_and_shows_its_last_failure(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    # fails once (no marker file yet), then runs
    marker = tmp_path / "second-time"
    code = (
        "import os, sys, time\n"
        f"if not os.path.exists({str(marker)!r}):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    raise SystemExit('FATAL: config error: /etc/app.yml: line 3: bad indentation')\n"
        "time.sleep(1000)\n"
    )
    infraveil.up({"app": {"command": infraveil.script("app.py", code), "stop_timeout": "1s"}})
    infraveil.wait_for_service("app", lambda r: r["state"] == "running", 20, "to run")
    why = infraveil.json("why", "app")
    assert (
        why["healthy"] is True and why["summary"] == "app is running and ready: nothing to explain."
    )
    last = why["last_failure"]
    assert last["instance"] == 1 and last["category"] == "config_invalid"
    text = infraveil.ok("why", "app").stdout
    assert "app is running and ready: nothing to explain." in text
    assert "Its last failure (instance 1):" in text and "config_invalid" in text

    # an older instance on request; one that does not exist gets the ones that do
    assert infraveil.json("why", "app", "--instance", "1")["category"] == "config_invalid"
    assert infraveil.json("why", "app", "--instance", "2")["healthy"] is True
    result = infraveil.run("why", "app", "--instance", "9")
    assert result.returncode == 4 and "app has no instance 9" in result.stderr
    assert "its latest instances are 2, 1" in result.stderr
    # the same exit code for any instance or log that does not exist
    result = infraveil.run("logs", "app", "--instance", "9")
    assert result.returncode == 4 and "no log is kept for instance 9 of app" in result.stderr


def test_a_running_service_that_is_not_ready_is_explained_live(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = free_port()
    infraveil.up(
        {"web": {"command": http_service(port), "port": port, "ready": {"http": "/readyz", **FAST}}}
    )
    infraveil.wait_for_service("web", lambda r: r["ready"], 20, "to become ready")
    (tmp_path / "notready").touch()

    def explained() -> dict[str, object] | None:
        why = infraveil.json("why", "web")
        return why if why.get("category") else None

    why = wait_for(explained, 20, "why to see the failing readiness check")
    assert why["category"] == "not_ready" and why["healthy"] is False
    assert why["evidence"][0]["text"] == "HTTP 503 Service Unavailable for GET /readyz"
    assert infraveil.service("web")["restarts"] == 0


def test_the_status_table_and_events_carry_the_diagnosis(infraveil: Infraveil) -> None:
    infraveil.up({"worker": {"command": MISSING_ENV}})
    infraveil.wait_for_service("worker", lambda r: r["halted"], 20, "to halt")
    row = infraveil.service("worker")
    assert row["diagnosis"] == "missing_env"
    table = infraveil.ok("status").stdout
    assert "missing_env: failed the same way 3 times in a row" in table
    exited = [e for e in infraveil.events("worker") if e["reason"] == "Exited"]
    assert exited and all(
        "needs the environment variable QUEUE_URL" in e["message"] for e in exited
    )
    described = infraveil.ok("describe", "worker").stdout
    assert "Why:          missing_env (instance 3)" in described


# ── doctor: no agent ────────────────────────────────────────────────────────────────────────


def run_doctor(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """`infraveil doctor`: no agent and no state directory needed."""
    argv = [str(Path(sys.executable).parent / "infraveil"), "doctor", *args]
    result = subprocess.run(argv, input=stdin, capture_output=True, timeout=60)
    assert b"Traceback" not in result.stderr, result.stderr
    return result


def doctor(*args: str, stdin: bytes | None = None) -> tuple[int, dict[str, Any]]:
    result = run_doctor(*args, "-o", "json", stdin=stdin)
    return result.returncode, json.loads(result.stdout) if result.stdout else {}


def test_doctor_on_an_empty_or_binary_log_says_what_is_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    code, found = doctor("--log", str(empty))
    assert code == 1 and found["category"] == "unknown"
    assert "the log is empty" in found["summary"]
    binary = tmp_path / "core"
    binary.write_bytes(bytes(range(256)) * 4096)
    code, found = doctor("--log", str(binary), "--exit-code", "1")
    assert code == 1 and "the log is binary data, not text" in found["summary"]


def test_doctor_reads_only_the_tail_of_a_big_log_with_true_line_numbers(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    filler = b"INFO request served in 3 ms\n" * 400_000  # 11 MB: well past the 256 KiB tail
    big.write_bytes(
        b"ModuleNotFoundError: No module named 'early'\n"
        + filler
        + b"Error: listen EADDRINUSE: address already in use :::3000\n"
    )
    code, found = doctor("--log", str(big))
    assert code == 0 and found["category"] == "port_in_use"
    assert found["evidence"][0] == {
        "source": f"{big} line 400002",
        "text": "Error: listen EADDRINUSE: address already in use :::3000",
    }
    assert "early" not in json.dumps(found)


def test_doctor_decodes_any_encoding_and_reads_stdin(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.log"
    latin1.write_bytes("Démarrage…\nKeyError: 'CLÉ_API'\n".encode("latin-1", "replace"))
    code, found = doctor("--log", str(latin1), "--exit-code", "1")
    assert code in (0, 1) and found["summary"]  # decoded with replacement, never a crash
    utf16 = tmp_path / "utf16.log"
    utf16.write_bytes("Error: Cannot find module 'express'\n".encode("utf-16"))
    code, found = doctor("--log", str(utf16))
    assert found["category"] == "missing_module"
    journal = (
        b"Nov 21 08:00:01 host app[123]: Traceback (most recent call last):\n"
        b'Nov 21 08:00:01 host app[123]:   File "/app/a.py", line 1, in <module>\n'
        b"Nov 21 08:00:01 host app[123]: ModuleNotFoundError: No module named 'flask'\n"
        b"Nov 21 08:00:01 host systemd[1]: app.service: Main process exited, code=exited,"
        b" status=1/FAILURE\n"
    )
    code, found = doctor("--log", "-", stdin=journal)
    assert code == 0 and found["category"] == "missing_module"
    assert found["evidence"][0]["text"] == "ModuleNotFoundError: No module named 'flask'"
    assert found["evidence"][-1]["text"].endswith("code=exited, status=1/FAILURE")


def test_doctor_refuses_bad_arguments_clearly(tmp_path: Path) -> None:
    for args, message in (
        (["--log", str(tmp_path / "nope.log")], "nope.log: no such file"),
        (["--signal", "SIGWHAT"], "'SIGWHAT' is not a signal"),
        ([], "give at least --log FILE"),
    ):
        result = run_doctor(*args)
        assert result.returncode == 2, result
        assert message in result.stderr.decode()
