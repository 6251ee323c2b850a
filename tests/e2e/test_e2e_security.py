"""Who may drive the agent: the owner over the Unix socket, a token holder over TCP, nobody else.

And what the API refuses before doing anything: request bodies (over the limit or not), absurd
query values, and commands of any kind — no route takes one.
"""

from __future__ import annotations

import http.client
import inspect
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from e2e_support import Infraveil, http_get, python
from fuzzing import FuzzRequest, send
from hypothesis import given, settings
from hypothesis import strategies as st

from infraveil.api.auth import TOKEN_FILE, ListenAddress, load_or_create_token, parse_listen
from infraveil.api.server import MAX_BODY, ROUTES, openapi_document
from infraveil.core.errors import StateDirError

pytestmark = pytest.mark.e2e

NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"),
    reason="switching to another user (nobody) needs root",
)
SLEEPER = {"command": python("import time; time.sleep(1000)"), "stop_timeout": "1s"}


def up_listening(infraveil: Infraveil, *listen: str) -> tuple[str, int]:
    """`up -d --listen ...` with one sleeping service `web`; the TCP (host, port) it bound."""
    manifest = infraveil.write_manifest({"web": SLEEPER})
    result = infraveil.run("up", "-d", "-f", str(manifest), *listen)
    assert result.returncode == 0, infraveil.explain(("up", "-d", *listen), result)
    assert "Bearer" in result.stderr and str(infraveil.state_dir / TOKEN_FILE) in result.stderr
    tcp = infraveil.api("/v1/agent")["tcp"]
    assert tcp is not None and f"http://{tcp}" in result.stderr
    host, port = tcp.rsplit(":", 1)
    return host, int(port)


def tcp_request(
    port: int,
    method: str,
    path: str,
    token: str | bytes | None = None,
    host: str = "127.0.0.1",
    authorization: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request over TCP, with `Bearer <token>` (or the given raw Authorization value)."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest(method, path)
        if token is not None:
            value = token if isinstance(token, bytes) else token.encode()
            conn.putheader("Authorization", b"Bearer " + value)
        if authorization is not None:
            conn.putheader("Authorization", authorization)
        if method == "POST":
            conn.putheader("Content-Length", "0")
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


@pytest.fixture(scope="module")
def tcp_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Infraveil, int, str]]:
    """One agent listening on TCP for the module's Hypothesis test (150 requests); its service
    must still run with its first pid at the end."""
    state_dir = Path(tempfile.mkdtemp(prefix="ivl-e2e-"))
    cli = Infraveil(tmp_path_factory.mktemp("tcp"), state_dir, uuid.uuid4().hex)
    try:
        _, port = up_listening(cli, "--listen", "0")
        token = (state_dir / TOKEN_FILE).read_text().strip()
        pid = cli.api_service("web")["pid"]
        yield cli, port, token
        row = cli.api_service("web")
        assert (row["pid"], row["state"], row["instance"]) == (pid, "running", 1)
    finally:
        try:
            cli.cleanup()
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)


# ── the Unix socket and the state directory ─────────────────────────────────────────────────


def _as_nobody(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Python `code` as the user nobody (uid 65534), dropping root before exec."""

    def drop() -> None:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)

    # this interpreter may live where nobody cannot read (/root/.pyenv): the system's will do
    interpreter = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    return subprocess.run(
        [interpreter, "-c", code, *args],
        preexec_fn=drop,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


NOBODY_PROBE = """
import errno, os, socket, sys
state_dir = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
for what, attempt in (
    ("connect", lambda: s.connect(os.path.join(state_dir, "agent.sock"))),
    ("listdir", lambda: os.listdir(state_dir)),
    ("read", lambda: open(os.path.join(state_dir, "state.db"), "rb").read(1)),
):
    try:
        attempt()
        print(what, "ok")
    except OSError as e:
        print(what, errno.errorcode[e.errno])
print("uid", os.getuid())
"""


def _tcp_listeners_of(pid: int) -> list[str]:
    """The local addresses of listening TCP sockets that process `pid` holds (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target.removeprefix("socket:[").rstrip("]"))
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(fields[1])
    return found


@NEEDS_ROOT
def test_only_the_owner_can_use_the_socket_or_read_the_state_dir(infraveil: Infraveil) -> None:
    # a state dir that already exists with wider modes (made by hand, an old umask) is tightened
    os.chmod(infraveil.state_dir, 0o755)
    (infraveil.state_dir / "logs").mkdir()
    os.chmod(infraveil.state_dir / "logs", 0o777)
    infraveil.up({"web": SLEEPER})
    sock = infraveil.state_dir / "agent.sock"
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    for path in (infraveil.state_dir, infraveil.state_dir / "run", infraveil.state_dir / "logs"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path
    tightened = [e for e in infraveil.events() if e["reason"] == "StateDirTightened"]
    assert len(tightened) == 1 and tightened[0]["type"] == "warning", tightened
    assert f"{infraveil.state_dir} (0o755)" in tightened[0]["message"]
    assert f"{infraveil.state_dir / 'logs'} (0o777)" in tightened[0]["message"]

    # the owner can connect (this test runs as root, which runs the agent); nobody cannot
    assert http_get(sock, "/v1/agent")[0] == 200
    probe = _as_nobody(NOBODY_PROBE, str(infraveil.state_dir))
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines() == [
        "connect EACCES",
        "listdir EACCES",
        "read EACCES",
        "uid 65534",
    ]

    # and without --listen the agent has no TCP port, and no token was made
    assert infraveil.api("/v1/agent")["tcp"] is None
    assert not (infraveil.state_dir / TOKEN_FILE).exists()
    assert _tcp_listeners_of(infraveil.agent_pid()) == []


@NEEDS_ROOT
def test_a_state_dir_that_belongs_to_another_user_is_refused(infraveil: Infraveil) -> None:
    os.chown(infraveil.state_dir, 65534, 65534)
    manifest = infraveil.write_manifest({"web": SLEEPER})
    try:
        result = infraveil.run("up", "-d", "-f", str(manifest))
    finally:
        os.chown(infraveil.state_dir, 0, 0)  # so that the fixture's `down` finds a usable dir
    assert result.returncode != 0
    assert f"the state directory {infraveil.state_dir} belongs to uid 65534" in result.stderr
    assert "--state-dir" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (infraveil.state_dir / "agent.sock").exists()


# ── TCP: opt-in, loopback by default, bearer token ──────────────────────────────────────────


def test_tcp_needs_the_token_and_a_wrong_one_changes_nothing(infraveil: Infraveil) -> None:
    host, port = up_listening(infraveil, "--listen", "0")
    assert host == "127.0.0.1"  # loopback unless a host is said
    token_file = infraveil.state_dir / TOKEN_FILE
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) == 43  # secrets.token_urlsafe(32)
    listening = [e for e in infraveil.events() if e["reason"] == "ApiListening"]
    assert len(listening) == 1 and str(token_file) in listening[0]["message"]
    assert token not in json.dumps(infraveil.events())
    pid = infraveil.api_service("web")["pid"]
    events_before = len(infraveil.events())

    for sent in (None, "", "wrong", token[:-1], token + "x", token.upper(), b"\xff\xfe" + b"x"):
        for method, path in (
            ("GET", "/v1/status"),
            ("POST", "/v1/services/web/stop?wait=5"),
            ("POST", "/v1/shutdown"),
            ("GET", "/v1/no-such-route"),
        ):
            status, headers, body = tcp_request(port, method, path, sent)
            assert status == 401, (sent, method, path, status, body)
            assert headers["www-authenticate"].startswith('Bearer realm="infraveil"')
            error = json.loads(body)["error"]
            assert error["code"] == "unauthorized" and "api-token" in error["hint"]
            assert token not in body.decode()
    status, headers, _ = tcp_request(port, "GET", "/v1/status", "wrong")
    assert headers["www-authenticate"].endswith('error="invalid_token"')

    # nothing happened: same pid, still running, no event, the agent still there
    row = infraveil.api_service("web")
    assert (row["pid"], row["state"], row["instance"]) == (pid, "running", 1)
    assert len(infraveil.events()) == events_before

    check_the_cli_over_tcp(infraveil, port, token)

    # the right token works, for reading and for acting; the Unix socket needs none
    status, _, body = tcp_request(port, "GET", "/v1/status", token)
    assert status == 200 and json.loads(body)["services"][0]["pid"] == pid
    assert tcp_request(port, "GET", "/v1/status", token.encode(), host="localhost")[0] == 200
    status, _, body = tcp_request(port, "POST", "/v1/services/web/restart?wait=10", token)
    assert status == 200, body
    assert json.loads(body)["service"]["pid"] not in (None, pid)
    assert http_get(infraveil.state_dir / "agent.sock", "/v1/status")[0] == 200


def check_the_cli_over_tcp(infraveil: Infraveil, port: int, token: str) -> None:
    """The CLI with INFRAVEIL_URL: refused without the token or with a wrong one (and nothing
    happens), works with INFRAVEIL_TOKEN or, on the agent's host, with its api-token file."""
    pid = infraveil.api_service("web")["pid"]
    infraveil.env["INFRAVEIL_URL"] = f"http://127.0.0.1:{port}"

    # no token (another state dir, so no api-token to read): refused, and says why
    result = infraveil.run("status", state_dir=False)
    assert result.returncode == 8 and "needs a bearer token" in result.stderr, result.stderr
    infraveil.env["INFRAVEIL_TOKEN"] = "wrong"
    result = infraveil.run("stop", "web")
    assert result.returncode == 8 and "the API token is wrong" in result.stderr, result.stderr
    assert infraveil.api_service("web")["pid"] == pid

    infraveil.env["INFRAVEIL_TOKEN"] = token
    result = infraveil.run("status", "-o", "json", state_dir=False)
    assert result.returncode == 0, result.stderr
    assert [row["pid"] for row in json.loads(result.stdout)["services"]] == [pid]
    del infraveil.env["INFRAVEIL_TOKEN"]  # on the agent's host, its api-token is enough
    assert infraveil.run("describe", "web").returncode == 0

    infraveil.env["INFRAVEIL_URL"] = "https://127.0.0.1:1"
    result = infraveil.run("status")
    assert result.returncode == 8 and "must be http://HOST:PORT" in result.stderr
    del infraveil.env["INFRAVEIL_URL"]  # the fixture's `down` uses the socket


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(st.binary(max_size=80) | st.text(max_size=60).map(lambda t: t.encode()))
def test_no_authorization_but_the_token_gets_in(
    tcp_agent: tuple[Infraveil, int, str], value: bytes
) -> None:
    """Whatever the Authorization header holds (bytes that are not UTF-8, no scheme, the token
    without `Bearer`...), a POST stop over TCP is refused: 401, or 400 from aiohttp's parser
    for bytes HTTP does not allow in a header. Never a 500, never a stop."""
    _, port, token = tcp_agent
    value = value.replace(b"\r", b"").replace(b"\n", b"")
    if value.strip().removeprefix(b"Bearer").strip() == token.encode():
        value += b"x"
    status, _, body = tcp_request(port, "POST", "/v1/services/web/stop", authorization=value)
    assert status in (400, 401), (value, status, body)
    if status == 401:
        assert json.loads(body)["error"]["code"] == "unauthorized"


def test_the_token_is_kept_and_a_public_host_is_allowed_when_said_with_a_warning(
    infraveil: Infraveil,
) -> None:
    _, port = up_listening(infraveil, "--listen", "0")
    token_file = infraveil.state_dir / TOKEN_FILE
    first = token_file.read_text()
    assert not [e for e in infraveil.events() if e["reason"] == "ApiExposed"]
    infraveil.ok("down")

    host, port = up_listening(infraveil, "--listen", "0.0.0.0:0")
    assert host == "0.0.0.0"
    assert token_file.read_text() == first  # the next agent takes the same token
    assert tcp_request(port, "GET", "/v1/agent", first.strip())[0] == 200
    assert tcp_request(port, "GET", "/v1/agent")[0] == 401
    exposed = [e for e in infraveil.events() if e["reason"] == "ApiExposed"]
    assert len(exposed) == 1 and exposed[0]["type"] == "warning"
    assert "0.0.0.0" in exposed[0]["message"] and "not a loopback" in exposed[0]["message"]


def test_bad_listen_values_and_a_token_file_others_can_read_start_nothing(
    infraveil: Infraveil,
) -> None:
    manifest = infraveil.write_manifest({"web": SLEEPER})
    for bad, words in (("99999", "from 0 to 65535"), ("::1:80", "in brackets")):
        result = infraveil.run("up", "-d", "-f", str(manifest), "--listen", bad)
        assert result.returncode == 2 and words in result.stderr, (bad, result.stderr)
    assert not (infraveil.state_dir / "agent.sock").exists()

    with socket.socket() as taken:  # a port something else listens on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = infraveil.run("up", "-d", "-f", str(manifest), "--listen", str(port))
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (infraveil.state_dir / "agent.sock").exists()

    token_file = infraveil.state_dir / TOKEN_FILE
    token_file.write_text("x" * 43 + "\n")
    os.chmod(token_file, 0o644)
    result = infraveil.run("up", "-d", "-f", str(manifest), "--listen", "0")
    assert result.returncode != 0
    assert f"the API token file {token_file} can be read by others (mode 0o644)" in result.stderr
    assert f"rm {token_file}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8750", ListenAddress("127.0.0.1", 8750, False)),
        (" 0 ", ListenAddress("127.0.0.1", 0, False)),
        ("localhost:1", ListenAddress("localhost", 1, True)),
        ("10.0.0.1:65535", ListenAddress("10.0.0.1", 65535, True)),
        ("[::1]:8750", ListenAddress("::1", 8750, True)),
    ],
)
def test_parse_listen(text: str, expected: ListenAddress) -> None:
    assert parse_listen(text) == expected
    assert parse_listen(str(expected)).host == expected.host  # str() is what `up` passes on
    assert expected.loopback == (expected.host != "10.0.0.1")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("99999", "from 0 to 65535"),
        ("-1", "from 0 to 65535"),
        ("web", "from 0 to 65535"),
        ("", "from 0 to 65535"),
        (":80", "the host is empty"),
        ("::1:80", "in brackets"),
    ],
)
def test_parse_listen_refuses(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_listen(text)


def test_the_token_file_is_made_once_and_never_readable_by_others(tmp_path: Path) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        tokens: list[str] = []
        threads = [
            threading.Thread(target=lambda: tokens.append(load_or_create_token(tmp_path)))
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        os.umask(old)
    assert len(set(tokens)) == 1 and len(tokens) == 8
    info = os.stat(tmp_path / TOKEN_FILE)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [TOKEN_FILE]  # no temporary left
    (tmp_path / TOKEN_FILE).write_text("short\n")
    with pytest.raises(StateDirError, match="does not hold a token"):
        load_or_create_token(tmp_path)
    (tmp_path / TOKEN_FILE).unlink()
    os.symlink("/etc/hostname", tmp_path / TOKEN_FILE)
    with pytest.raises(StateDirError, match="cannot be opened"):
        load_or_create_token(tmp_path)


# ── requests refused before anything is done ────────────────────────────────────────────────


def _raw(
    sock_path: Path, head: bytes, body_chunks: int = 0, chunk: bytes = b""
) -> tuple[bytes, float]:
    """Send `head`, then up to `body_chunks` chunks of a body while reading the answer in
    parallel: the answer (its head and its body, by its Content-Length), and how long it took
    to come whole. Sending stops once the answer is complete, as a client would."""
    started = time.monotonic()
    answer = bytearray()
    complete = threading.Event()
    took = [float("inf")]

    def read(s: socket.socket) -> None:
        try:
            while data := s.recv(65536):
                answer.extend(data)
                head, sep, body = bytes(answer).partition(b"\r\n\r\n")
                fields = dict(
                    line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line
                )
                if sep and len(body) >= int(fields.get(b"content-length", b"-1")):
                    took[0] = time.monotonic() - started
                    break
        except OSError:
            pass
        complete.set()

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(sock_path))
        reader = threading.Thread(target=read, args=(s,))
        reader.start()
        try:
            s.sendall(head)
            for _ in range(body_chunks):
                if complete.is_set():
                    break
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent answered and closed: that is the point
        reader.join(timeout=15)
    return bytes(answer), took[0]


def _error_of(answer: bytes) -> dict[str, Any]:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]  # type: ignore[no-any-return]


def _peak_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line.split()[1] for line in status if line.startswith("VmHWM:")))


def test_request_bodies_are_refused_unread_even_100_mb(infraveil: Infraveil) -> None:
    infraveil.up({"web": SLEEPER})
    sock = infraveil.state_dir / "agent.sock"
    pid, agent = infraveil.api_service("web")["pid"], infraveil.agent_pid()
    size = 100 * 1024 * 1024
    head = f"POST /v1/services/web/stop HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"

    # headers that claim 100 MB, then a few bytes: answered without waiting for the rest
    answer, took = _raw(sock, head.encode() + b"0123456789")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert took < 1, f"the 413 took {took:.2f}s"
    error = _error_of(answer)
    assert error["code"] == "too_large"
    assert f"{size} bytes" in error["message"] and str(MAX_BODY) in error["message"]

    # a real 100 MB stream: answered as fast, and the agent does not keep the bytes
    answer, took = _raw(sock, head.encode(), body_chunks=100, chunk=b"x" * (1024 * 1024))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert took < 1, f"the 413 took {took:.2f}s"
    assert _peak_rss_kb(agent) < 100 * 1024

    # smaller bodies too, since no route reads one: a command, deeply nested JSON, a byte
    nested = b"[" * 100_000 + b"]" * 100_000
    for body in (b'{"command": "id", "argv": ["sh"]}', nested, b"x"):
        head = f"POST /v1/services/web/stop HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
        answer, _ = _raw(sock, head.encode() + b"\r\n\r\n" + body)
        status = 413 if len(body) > MAX_BODY else 400
        assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:300]
        error = _error_of(answer)
        assert "no request body" in error["message"] + error["hint"], error
    chunked = (
        b"POST /v1/shutdown HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    answer, _ = _raw(sock, chunked)
    assert answer.startswith(b"HTTP/1.1 400 ") and "no request body" in _error_of(answer)["message"]

    # and nothing happened
    assert infraveil.agent_pid() == agent
    row = infraveil.api_service("web")
    assert (row["pid"], row["state"], row["instance"]) == (pid, "running", 1)
    assert not [e for e in infraveil.events("web") if e["reason"] in ("Stopping", "Stopped")]


ABSURD: list[tuple[str, dict[str, str], str]] = [
    ("/v1/services/web/logs", {"tail": str(10**30)}, "'tail' is out of range"),
    ("/v1/services/web/logs", {"tail": "9" * 5000}, "(5000 characters)"),
    ("/v1/services/web/logs", {"tail": "-1"}, "'tail' is out of range"),
    ("/v1/services/web/logs", {"tail": "ten"}, "'tail' must be an integer, got 'ten'"),
    ("/v1/services/web/logs", {"tail": "\u0661"}, "'tail' must be an integer"),
    ("/v1/services/web/logs", {"tail": "1\x00"}, "got '1\\x00'"),
    ("/v1/services/web/logs", {"instance": "1e3"}, "'instance' must be an integer"),
    ("/v1/services/web/why", {"instance": "0x10"}, "'instance' must be an integer"),
    ("/v1/events", {"limit": "-5"}, "'limit' is out of range"),
    ("/v1/events", {"limit": "a" * 3000}, "(3000 characters)"),
    ("/v1/status", {"wait": "settled", "timeout": "nan"}, "'timeout' must be between"),
    ("/v1/status", {"wait": "settled", "timeout": "1e308"}, "'timeout' must be between"),
    ("/v1/status", {"wait": "settled", "timeout": "-1"}, "'timeout' must be between"),
]
"""(path, query, words of the message) of a GET that must be a 400."""

INVALID_CONTROL: list[tuple[str, int, str]] = [
    ("/v1/services/web/exec?command=id", 400, "unknown action 'exec'"),
    ("/v1/services/web/run?argv=sh", 400, "unknown action 'run'"),
    ("/v1/services/web/stop?wait=-1", 400, "'wait' must be between"),
    ("/v1/services/web/stop?wait=nan", 400, "'wait' must be between"),
    ("/v1/services/web/restart?wait=1e9", 400, "'wait' must be between"),
    ("/v1/services/web/deploy?payload=relative/path", 400, "must be an absolute path"),
    ("/v1/services/web/deploy?version=../../x", 400, "not a valid label"),
    ("/v1/services/sh%20-c%20id/start", 404, "no service named 'sh -c id'"),
    ("/v1/services/nosuch/rollback", 404, "no service named 'nosuch'"),
    ("/v1/services/nosuch/deploy?payload=/bin", 404, "no service named 'nosuch'"),
]
"""(target, status, words of the message) of a POST that must be refused, changing nothing."""


def test_absurd_values_and_invalid_commands_are_refused_and_change_nothing(
    infraveil: Infraveil,
) -> None:
    infraveil.up({"web": SLEEPER})
    sock = infraveil.state_dir / "agent.sock"
    pid = infraveil.api_service("web")["pid"]
    events_before = len(infraveil.events())
    for path, query, words in ABSURD:
        answer = send(sock, FuzzRequest("GET", path, tuple(query.items()), (), None))
        assert answer.status == 400, (path, query, answer.body[:300])
        error = json.loads(answer.body)["error"]
        assert error["code"] == "bad_request" and words in error["message"], error
        assert len(error["message"]) < 200  # a huge value is not echoed back whole
    for target, status, words in INVALID_CONTROL:
        path, _, query = target.partition("?")
        answer = send(sock, FuzzRequest("POST", path, tuple(parse_qsl(query)), (), None))
        assert answer.status == status, (target, answer.status, answer.body[:300])
        assert words in json.loads(answer.body)["error"]["message"], (target, answer.body[:300])
    row = infraveil.api_service("web")
    assert (row["pid"], row["state"], row["instance"]) == (pid, "running", 1)
    assert len(infraveil.events()) == events_before


# ── no route runs a command that is not in the manifest ─────────────────────────────────────

COMMANDISH = {"command", "cmd", "argv", "args", "shell", "exec", "script", "run", "program"}
BODY_READERS = (
    "request.read(",
    "request.json(",
    "request.post(",
    "request.text(",
    "request.content",
)


def test_no_route_takes_a_command_or_a_body() -> None:
    """An audit of every route: no parameter could carry a command line, and no handler reads a
    request body (so there is nowhere for one to come in). What a route can start is a service
    of the manifest by its name (start/restart/hold), or a deploy of the payload the manifest
    declares for it (the payload's own command is the manifest's)."""
    assert ROUTES
    seen = set()
    for route in ROUTES:
        seen.add((route.method, route.path))
        names = {p.name.lower() for p in route.params}
        assert not names & COMMANDISH, (route.path, names)
        source = inspect.getsource(route.handler)
        assert not [r for r in BODY_READERS if r in source], route.path
        assert route.method in ("GET", "POST"), route.path
    documented = {
        (method.upper(), path)
        for path, methods in openapi_document()["paths"].items()
        for method in methods
    }
    assert documented == seen  # the OpenAPI document lists exactly these, nothing hidden
    mutating = {path for method, path in seen if method == "POST"}
    assert mutating == {
        "/v1/services/{name}/{action}",
        "/v1/services/{name}/deploy",
        "/v1/services/{name}/rollback",
        "/v1/shutdown",
    }, "a new POST route: audit it, and add it to MUTATING in tests/e2e/fuzzing.py"
