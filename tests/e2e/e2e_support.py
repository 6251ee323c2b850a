"""Helpers for the end-to-end tests: the real CLI against a real agent, one state dir each.

Every process the CLI starts (the agent and, through it, every service) inherits a per-test
token in its environment. `Infraveil.cleanup` stops followers, runs `infraveil down`, then
SIGKILLs the process group of anything that still carries the token, so no test leaks a
process, whatever happened in it — and never touches a process of anyone else's.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from waiting import POLL, wait_for

TOKEN_VAR = "IVL_E2E_TOKEN"

_SCRIPT = Path(sys.executable).with_name("infraveil")
INFRAVEIL: list[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "infraveil"]


# ── processes, from /proc ───────────────────────────────────────────────────────────────────


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rfind(b")") + 2 :].split()


def alive(pid: int) -> bool:
    """`pid` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[0] != b"Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return sorted(members)


def _carrying(token: str) -> list[int]:
    needle = f"{TOKEN_VAR}={token}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if needle in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


# ── manifests ───────────────────────────────────────────────────────────────────────────────


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def manifest_text(services: Mapping[str, Mapping[str, object]]) -> str:
    rows = []
    for name, fields in services.items():
        rows.append(f"[services.{name}]")
        rows.extend(f"{key} = {_toml_value(value)}" for key, value in fields.items())
        rows.append("")
    return "\n".join(rows)


def python(code: str) -> list[str]:
    """A service command running `code` with this interpreter."""
    return [sys.executable, "-c", code]


# ── the API, over its Unix socket ──────────────────────────────────────────────────────────


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def http_get(
    socket_path: Path, path: str, timeout: float = 10.0, **query: Any
) -> tuple[int, dict[str, str], bytes]:
    """One GET over the agent's socket: status, headers (lower-case names) and body."""
    target = path + ("?" + urlencode(query) if query else "")
    conn = _UnixConnection(socket_path, timeout)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, body
    finally:
        conn.close()


# ── the CLI ─────────────────────────────────────────────────────────────────────────────────


class Follower:
    """A long-running CLI command (`events -w`, `logs -f`) whose output lines are collected."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float, message: str) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if predicate(line)), None)

        def describe() -> str:
            tail = "\n  ".join(self.lines[-15:])
            return f"{message}; exit code {self.proc.poll()}; last lines:\n  {tail}"

        return wait_for(found, timeout, describe)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(timeout=10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


class Infraveil:
    """Runs `infraveil` against one state directory, as a person would in a shell."""

    def __init__(self, workdir: Path, state_dir: Path, token: str) -> None:
        self.workdir = workdir
        self.state_dir = state_dir
        self.token = token
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("INFRAVEIL_", "PYTEST_"))
        }
        self.env.update({TOKEN_VAR: token, "COLUMNS": "200", "NO_COLOR": "1"})
        self.followers: list[Follower] = []
        self.manifest = workdir / "infraveil.toml"

    def run(
        self, *args: str, timeout: float = 60.0, state_dir: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [*INFRAVEIL, *args]
        if state_dir:
            argv += ["--state-dir", str(self.state_dir)]
        return subprocess.run(
            argv,
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run and require exit code 0."""
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, self.explain(args, result)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json").stdout)

    def follow(self, *args: str) -> Follower:
        proc = subprocess.Popen(
            [*INFRAVEIL, *args, "--state-dir", str(self.state_dir)],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        follower = Follower(proc)
        self.followers.append(follower)
        return follower

    def script(self, name: str, code: str) -> list[str]:
        """A service command running `code` from a file (a multi-line `-c` would do too, but
        it also puts newlines into the log's start marker)."""
        path = self.workdir / name
        path.write_text(code)
        return [sys.executable, str(path)]

    def write_manifest(self, services: Mapping[str, Mapping[str, object]]) -> Path:
        self.manifest.write_text(manifest_text(services))
        return self.manifest

    def up(self, services: Mapping[str, Mapping[str, object]]) -> subprocess.CompletedProcess[str]:
        """`up -d` with this manifest; the agent is running when this returns.

        Exit 0 means every service came up; exit 1 that some did not, and then each failing
        service is named on stderr.
        """
        self.write_manifest(services)
        result = self.run("up", "-d", "-f", str(self.manifest))
        assert result.returncode in (0, 1), self.explain(("up", "-d"), result)
        if result.returncode == 1:
            assert " is not up: " in result.stderr, self.explain(("up", "-d"), result)
        return result

    # ── reading state ──

    def status(self) -> dict[str, dict[str, Any]]:
        data = self.json("status")
        assert data["schema"] == "infraveil/v1/status"
        return {row["name"]: row for row in data["services"]}

    def service(self, name: str) -> dict[str, Any]:
        return self.status()[name]

    def describe(self, name: str) -> dict[str, Any]:
        return self.json("describe", name)  # type: ignore[no-any-return]

    def events(self, service: str | None = None) -> list[dict[str, Any]]:
        data = self.json("events", *([service] if service else []), "--limit", "10000")
        assert data["schema"] == "infraveil/v1/events"
        return data["events"]  # type: ignore[no-any-return]

    def api(self, path: str, **query: Any) -> Any:
        """GET JSON from the agent's API directly: cheap enough to poll (a CLI run is ~0.3 s)."""
        status, _headers, body = http_get(self.state_dir / "agent.sock", path, **query)
        assert status == 200, f"GET {path} answered {status}: {body[:500]!r}"
        return json.loads(body)

    def api_service(self, name: str) -> dict[str, Any]:
        """The status row of one service, over the API."""
        rows = self.api("/v1/status")["services"]
        return next(row for row in rows if row["name"] == name)  # type: ignore[no-any-return]

    def wait_for_service(
        self, name: str, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """Poll the service's status row (over the API) until `predicate` holds; the row."""
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            nonlocal last
            last = self.api_service(name)
            return last if predicate(last) else None

        return wait_for(check, timeout, lambda: f"{name} {what}; last status: {last}")

    def agent_pid(self) -> int:
        """The pid written in the agent's lock file."""
        return int((self.state_dir / "agent.lock").read_text().strip())

    def agent_log(self) -> str:
        try:
            return (self.state_dir / "agent.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no agent.log)"

    def explain(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> str:
        return (
            f"infraveil {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
            f"agent.log (tail):\n{self.agent_log()[-3000:]}"
        )

    # ── teardown ──

    def cleanup(self) -> list[int]:
        """Stop everything this test started; the pids that `down` left behind, if any."""
        for follower in self.followers:
            follower.close()
        down = self.run("down", "-q", timeout=60)
        assert down.returncode in (0, 3), self.explain(("down",), down)
        leftovers: list[int] = []
        if _carrying(self.token):
            # give processes SIGKILLed by `down` a moment to be gone, then force the rest
            deadline = time.monotonic() + 3
            while (leftovers := _carrying(self.token)) and time.monotonic() < deadline:
                time.sleep(POLL)
            for pid in leftovers:
                try:
                    pgid = os.getpgid(pid)
                    if pgid == os.getpgrp():  # a CLI process in our own group: only itself
                        os.kill(pid, signal.SIGKILL)
                    else:
                        os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_for(lambda: not _carrying(self.token), 10, "leftover processes to die")
        return leftovers if down.returncode == 0 else []
