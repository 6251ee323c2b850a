"""`infraveil check` preflights every service of a valid manifest: exit 1 and the fix when one
fails, exit 0 when all pass (the demo manifest included), never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import INFRAVEIL, Infraveil, python

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def as_root(names: str) -> list[str]:
    """The warning line `check` ends with when it runs as root, about services with no user."""
    if os.geteuid() != 0:
        return []
    return [
        f"warning: {names} as root (the agent runs as root and no `user` is set);"
        ' set user = "..." in each one\'s [services.NAME] table'
    ]


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port this test process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_check_passes_when_every_preflight_passes(infraveil: Infraveil) -> None:
    path = infraveil.write_manifest(
        {"web": {"command": python("pass")}, "tick": {"command": "sleep 1000"}}
    )
    result = infraveil.run("check", "-f", str(path), state_dir=False)
    assert result.returncode == 0, infraveil.explain(("check",), result)
    assert result.stdout.splitlines() == [
        f"{path}: ok, 2 services (web, tick)",
        "preflight: 2 services ready to start",
        *as_root("web, tick run"),
    ]
    assert result.stderr == ""


def test_check_reports_each_preflight_problem_with_its_fix(
    infraveil: Infraveil, held_port: int
) -> None:
    path = infraveil.write_manifest(
        {
            "web": {"command": python("pass"), "port": held_port},
            "worker": {"command": ["./worker.sh", "--config=./worker.yaml"]},
            "ok": {"command": "sleep 1000"},
        }
    )
    worker = infraveil.workdir / "worker.sh"
    worker.write_text("#!/bin/sh\n")
    worker.chmod(0o644)
    result = infraveil.run("check", "-f", str(path), state_dir=False)
    assert result.returncode == 1, infraveil.explain(("check",), result)
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}: ok, 3 services (web, worker, ok)"
    assert lines[1].startswith(f"web: port_in_use — port {held_port} is already in use on ")
    assert lines[2] == (
        f"  fix: see who holds it with ss -ltnp 'sport = :{held_port}', and stop it, "
        "or change `port` in the manifest"
    )
    assert lines[3].startswith(f"worker: not_executable — the command is not executable: {worker}")
    assert lines[4] == f"  fix: chmod +x {worker}"
    assert lines[5] == (
        "worker: config_missing — the command names the file ./worker.yaml "
        f"({infraveil.workdir}/worker.yaml), which does not exist"
    )
    assert lines[6] == "  fix: create it, or fix its path in `command`"
    assert lines[7] == "preflight: 3 problems in 2 services (nothing was started)"
    assert result.stderr == ""


def test_check_json_lists_preflight_problems_per_service(infraveil: Infraveil) -> None:
    path = infraveil.write_manifest(
        {"web": {"command": "/nonexistent/web"}, "ok": {"command": "sleep 1000"}}
    )
    result = infraveil.run("check", "-f", str(path), "-o", "json", state_dir=False)
    assert result.returncode == 1, infraveil.explain(("check", "-o", "json"), result)
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert report["preflight"] == {
        "web": [
            {
                "check": "command",
                "category": "command_not_found",
                "detail": "the command /nonexistent/web does not exist",
                "fix": "fix the path in `command`, or install or build the program there",
                "subject": "/nonexistent/web",
            }
        ],
        "ok": [],
    }


def test_a_payload_service_is_checked_but_for_what_its_release_holds(
    infraveil: Infraveil,
) -> None:
    # api runs in its release, which `check` cannot see: its ./server and ./app.yaml are not
    # looked for, but its required variable is. worker sets cwd, so all of it is checked.
    path = infraveil.write_manifest(
        {
            "api": {
                "command": ["./server", "--config=./app.yaml"],
                "payload": True,
                "required_env": ["IVL_E2E_DATABASE_URL"],
            },
            "worker": {"command": "./worker.sh", "payload": True, "cwd": str(infraveil.workdir)},
        }
    )
    result = infraveil.run("check", "-f", str(path), state_dir=False)
    assert result.returncode == 1, infraveil.explain(("check",), result)
    assert result.stdout.splitlines() == [
        f"{path}: ok, 2 services (api, worker)",
        "api: runs from its release; the command and its files are checked at deploy",
        "api: missing_env — IVL_E2E_DATABASE_URL is not set (listed in required_env)",
        '  fix: set it: env = { IVL_E2E_DATABASE_URL = "..." } in [services.api], '
        "or give the service an env_file that sets it",
        "worker: command_not_found — the command ./worker.sh does not exist "
        f"(looked for {infraveil.workdir}/worker.sh)",
        "  fix: fix the path in `command`, or install or build the program there",
        "preflight: 2 problems in 2 services (nothing was started)",
        *as_root("api, worker run"),
    ]

    (infraveil.workdir / ".env").write_text("IVL_E2E_DATABASE_URL=postgres://db/app\n")
    infraveil.write_manifest(
        {
            "api": {
                "command": ["./server", "--config=./app.yaml"],
                "payload": True,
                "env_file": ".env",
                "required_env": ["IVL_E2E_DATABASE_URL"],
            }
        }
    )
    result = infraveil.run("check", "-f", str(path), "-o", "json", state_dir=False)
    assert result.returncode == 0, infraveil.explain(("check", "-o", "json"), result)
    report = json.loads(result.stdout)
    assert report["preflight"] == {"api": []}
    assert report["notes"] == {
        "api": ["runs from its release; the command and its files are checked at deploy"]
    }


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_an_unusable_env_file_is_a_problem_not_a_traceback(infraveil: Infraveil, kind: str) -> None:
    env_file = infraveil.workdir / "app.env"
    if kind == "directory":
        env_file.mkdir()
    path = infraveil.write_manifest({"app": {"command": "sleep 1000", "env_file": str(env_file)}})
    result = infraveil.run("check", "-f", str(path), state_dir=False)
    assert result.returncode == 1, infraveil.explain(("check",), result)
    expected = "does not exist" if kind == "missing" else "is a directory"
    assert f"app: config_missing — the env_file {env_file} {expected}" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_an_invalid_manifest_still_exits_2_before_any_preflight(infraveil: Infraveil) -> None:
    infraveil.manifest.write_text('[services.web]\ncommand = "/nonexistent/web"\nprot = 80\n')
    result = infraveil.run("check", "-f", str(infraveil.manifest), state_dir=False)
    assert result.returncode == 2, infraveil.explain(("check",), result)
    assert "preflight" not in result.stdout + result.stderr


def test_the_demo_manifest_passes_check() -> None:
    demo = REPO / "examples" / "demo"
    result = subprocess.run(
        [*INFRAVEIL, "check"], cwd=demo, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    verdict = lines.index("preflight: 3 services ready to start")  # then only warnings (as root)
    assert all(line.startswith("warning: ") for line in lines[verdict + 1 :]), result.stdout


def test_check_help_documents_the_exit_codes(infraveil: Infraveil) -> None:
    result = infraveil.run("check", "--help", state_dir=False)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "Exits 0 when everything passes, 1 when a preflight check fails, 2 when the" in text
