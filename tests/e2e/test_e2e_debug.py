"""`infraveil debug SERVICE`: a shell with the service's environment, cwd and user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import INFRAVEIL, TOKEN_VAR, Infraveil

pytestmark = pytest.mark.e2e

ROOT = os.geteuid() == 0
USER = "nobody" if ROOT else None  # running as another user needs root, as for the agent


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A working directory `nobody` can enter (pytest's tmp_path sits under a 0700 one)."""
    path = Path(tempfile.mkdtemp(prefix="ivl-debug-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def web(cwd: Path, **more: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "command": "sleep 1000",
        "cwd": str(cwd),
        "env": {"GREETING": "hello there", "MODE": "x y"},
        **more,
    }
    if USER is not None:
        fields["user"] = USER
    return fields


def test_debug_runs_a_command_in_the_services_env_cwd_and_user(
    infraveil: Infraveil, open_dir: Path
) -> None:
    env_file = infraveil.workdir / "web.env"
    env_file.write_text("FROM_FILE=1\nGREETING=overridden by env\n")
    infraveil.write_manifest({"web": web(open_dir, env_file=str(env_file))})
    result = infraveil.run("debug", "web", "-c", "env; pwd; id -un")
    assert result.returncode == 0, infraveil.explain(("debug",), result)
    lines = result.stdout.splitlines()
    assert "GREETING=hello there" in lines
    assert "MODE=x y" in lines
    assert "FROM_FILE=1" in lines
    assert "INFRAVEIL_SERVICE=web" in lines
    assert f"{TOKEN_VAR}={infraveil.token}" in lines  # this command's env stands for the agent's
    assert lines[-2] == str(open_dir)
    me = USER or pwd.getpwuid(os.geteuid()).pw_name
    assert lines[-1] == me
    if USER is not None:
        assert "USER=nobody" in lines
        assert f"HOME={os.path.expanduser('~nobody')}" in lines
    banner = result.stderr.splitlines()[0]
    assert banner.startswith(f"debug: web as {me} in {open_dir}, ")
    assert "env vars" in banner


def test_debug_exits_with_the_commands_exit_code(infraveil: Infraveil, open_dir: Path) -> None:
    infraveil.write_manifest({"web": web(open_dir)})
    result = infraveil.run("debug", "web", "-c", "exit 7")
    assert result.returncode == 7, infraveil.explain(("debug",), result)


def test_debug_reads_commands_from_stdin_without_a_terminal(
    infraveil: Infraveil, open_dir: Path
) -> None:
    infraveil.write_manifest({"web": web(open_dir)})
    result = subprocess.run(
        [*INFRAVEIL, "debug", "web"],
        cwd=infraveil.workdir,
        env=infraveil.env,
        input="echo $GREETING from $(pwd)\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"hello there from {open_dir}\n"
    if USER is not None:  # nobody's login shell is nologin: a debug shell falls back to sh
        shell = pwd.getpwnam("nobody").pw_shell
        if os.path.basename(shell) in ("nologin", "false"):
            assert f"/bin/sh (nobody's login shell is {shell})" in result.stderr


def test_debug_of_an_unknown_service_lists_the_known_ones(
    infraveil: Infraveil, open_dir: Path
) -> None:
    infraveil.write_manifest({"web": web(open_dir), "worker": web(open_dir)})
    result = infraveil.run("debug", "wbe", "-c", "true")
    assert result.returncode == 4, infraveil.explain(("debug",), result)
    assert result.stderr.splitlines() == [
        "error: no service named 'wbe'",
        "hint: known services: web, worker",
    ]
    assert result.stdout == ""


def test_debug_with_an_unreadable_env_file_says_so(infraveil: Infraveil, open_dir: Path) -> None:
    missing = infraveil.workdir / "missing.env"
    infraveil.write_manifest({"web": web(open_dir, env_file=str(missing))})
    result = infraveil.run("debug", "web", "-c", "true")
    assert result.returncode == 1, infraveil.explain(("debug",), result)
    assert f"error: cannot build the environment of web: env_file not found: {missing}" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_debug_hold_without_an_agent_says_how_to_start_one(
    infraveil: Infraveil, open_dir: Path
) -> None:
    infraveil.write_manifest({"web": web(open_dir)})
    result = infraveil.run("debug", "web", "--hold", "-c", "true")
    assert result.returncode == 3, infraveil.explain(("debug", "--hold"), result)
    assert f"error: no agent is running on {infraveil.state_dir}" in result.stderr


def test_debug_hold_holds_then_restarts_with_the_real_command(
    infraveil: Infraveil, open_dir: Path
) -> None:
    infraveil.up({"web": web(open_dir)})
    before = infraveil.service("web")
    result = infraveil.run("debug", "web", "--hold", "-c", "echo inside")
    assert result.returncode == 0, infraveil.explain(("debug", "--hold"), result)
    assert result.stdout == "inside\n"
    assert "debug: web is held" in result.stderr
    assert "debug: restarting web with its real command" in result.stderr
    after = infraveil.service("web")
    assert after["state"] == "running"
    assert after["pid"] != before["pid"]
    # one instance in between held its place, running a wait instead of the command
    assert after["instance"] == before["instance"] + 2
    held, real = (
        next(i for i in infraveil.describe("web")["instances"] if i["number"] == n)
        for n in (before["instance"] + 1, after["instance"])
    )
    assert held["command"][-1] == "import signal; signal.pause()"
    assert real["command"] == infraveil.describe("web")["spec"]["command"]
