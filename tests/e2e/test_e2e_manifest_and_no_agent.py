"""`check`, `up` with a bad manifest, and every read command with no agent running."""

from __future__ import annotations

import json
import os

import pytest
from e2e_support import Infraveil, python

pytestmark = pytest.mark.e2e

TYPO = """\
[services.web]
command = "sleep 1000"
stop_timout = "1s"
"""
VALID = {
    "web": {"command": python("import time; time.sleep(1000)"), "stop_timeout": "1s"},
    "worker": {"command": "sleep 1000", "depends_on": ["web"], "env": {"MODE": "x y"}},
}


def test_check_accepts_a_valid_manifest(infraveil: Infraveil) -> None:
    path = infraveil.write_manifest(VALID)
    result = infraveil.run("check", "-f", str(path), state_dir=False)
    assert result.returncode == 0, infraveil.explain(("check",), result)
    assert f"{path}: ok, 2 services (web, worker)" in result.stdout
    assert result.stderr == ""

    as_json = infraveil.run("check", "-f", str(path), "-o", "json", state_dir=False)
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == {
        "schema": "infraveil/v1/check",
        "valid": True,
        "issues": [],
        "services": ["web", "worker"],
        "preflight": {"web": [], "worker": []},
        "notes": {},
        # as root, a service with no `user` is warned about (see test_e2e_privilege)
        "warnings": [
            {
                "service": name,
                "warning": "runs_as_root",
                "message": "runs as root, because the agent does and it sets no `user`",
                "fix": f'set user = "..." in [services.{name}]: an account that owns only what'
                " the service writes",
            }
            for name in ("web", "worker")
            if os.geteuid() == 0
        ],
    }


def test_check_reports_a_typo_at_its_line_with_a_suggestion(infraveil: Infraveil) -> None:
    path = infraveil.manifest
    path.write_text(TYPO)
    result = infraveil.run("check", "-f", str(path), state_dir=False)
    assert result.returncode == 2, infraveil.explain(("check",), result)
    assert f"{path}:3:" in result.stderr
    assert "stop_timout" in result.stderr
    assert "did you mean 'stop_timeout'" in result.stderr
    assert result.stdout == ""


def test_check_json_reports_an_invalid_manifest_with_exit_2(infraveil: Infraveil) -> None:
    path = infraveil.manifest
    path.write_text(TYPO)
    as_json = infraveil.run("check", "-f", str(path), "-o", "json", state_dir=False)
    report = json.loads(as_json.stdout)
    assert report["schema"] == "infraveil/v1/check"
    assert report["valid"] is False
    assert [(i["line"], i["file"]) for i in report["issues"]] == [(3, str(path))]
    assert "did you mean 'stop_timeout'" in report["issues"][0]["hint"]
    assert as_json.returncode == 2, infraveil.explain(("check", "-o", "json"), as_json)


def test_up_with_an_invalid_manifest_starts_nothing(infraveil: Infraveil) -> None:
    path = infraveil.manifest
    path.write_text(TYPO)
    result = infraveil.run("up", "-d", "-f", str(path))
    assert result.returncode == 2, infraveil.explain(("up", "-d"), result)
    assert f"{path}:3:" in result.stderr
    assert "did you mean" in result.stderr

    assert not (infraveil.state_dir / "agent.sock").exists()
    status = infraveil.run("status")
    assert status.returncode == 3, infraveil.explain(("status",), status)


def test_status_without_an_agent_exits_3_with_a_hint(infraveil: Infraveil) -> None:
    result = infraveil.run("status")
    assert result.returncode == 3, infraveil.explain(("status",), result)
    assert f"no agent is running on {infraveil.state_dir}" in result.stderr
    assert "infraveil up" in result.stderr
    assert result.stdout == ""


def test_every_verb_without_an_agent_exits_3(infraveil: Infraveil) -> None:
    for args in (
        ("status", "-o", "json"),
        ("describe", "web"),
        ("logs", "web", "-f"),
        ("events", "-w"),
        ("restart", "web"),
        ("down",),
    ):
        result = infraveil.run(*args, timeout=20)
        assert result.returncode == 3, infraveil.explain(args, result)
        assert "infraveil up" in result.stderr
        assert "Traceback" not in result.stderr


def test_the_state_dir_comes_from_the_environment(infraveil: Infraveil) -> None:
    infraveil.env["INFRAVEIL_STATE_DIR"] = str(infraveil.state_dir)
    result = infraveil.run("status", state_dir=False)
    assert result.returncode == 3
    assert str(infraveil.state_dir) in result.stderr


def test_an_unusable_state_dir_exits_7(infraveil: Infraveil) -> None:
    infraveil.write_manifest(VALID)
    blocker = infraveil.workdir / "a-file"
    blocker.write_text("not a directory")
    result = infraveil.run(
        "up",
        "-d",
        "-f",
        str(infraveil.manifest),
        "--state-dir",
        str(blocker / "state"),
        state_dir=False,
    )
    assert result.returncode == 7, infraveil.explain(("up", "-d"), result)
    assert "cannot use state directory" in result.stderr
    assert "hint:" in result.stderr
