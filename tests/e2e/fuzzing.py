"""Hostile requests against a running agent's API: `run_api_fuzz(socket, n) -> (tried, crashes)`.

Hypothesis draws each request: a method (real ones and junk), a path (every route of the API
with real and random path parameters, and random paths), a query string (absurd numbers, NUL
bytes, long strings, repeated keys), extra headers and a body (random bytes, wrong or deeply
nested JSON, huge numbers). Each request goes over the agent's Unix socket on a connection
of its own, and counts as a crash when:

- the agent does not answer (the connection fails, is reset, or no answer comes within 5 s);
- it answers with a status of 500 or more;
- it answers an error (4xx) without a JSON body `{"error": {"code", "message"}}`.

After the run, the agent must be the same process and every service must have the same pid,
instance and state as before, and no event may have been recorded: fuzzing changes nothing.
So that this holds by construction, a request that could legitimately change something (a
POST to a control route of a real service, or to /v1/shutdown, without a body) has its
service name replaced by one that does not exist; the control routes' refusals of invalid
input for real services are tested one by one in test_e2e_security.py.

Used by tests/e2e/test_e2e_fuzz.py and by the reliability report (bench/), which prints the
count of cases tried and of crashes found. Deterministic: the same `seed` draws the same cases.
`run_manifest_fuzz(n)` counts the same way for the manifest fuzz of
tests/core/test_manifest_fuzz.py (whose strategies it runs).
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import hypothesis
from e2e_support import _UnixConnection
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from infraveil.api.server import ROUTES
from infraveil.core.errors import ManifestError
from infraveil.runtime.manifest_file import load_manifest

REQUEST_TIMEOUT = 5.0
MUTATING = ("/v1/shutdown", "/v1/services/{name}/{action}", "/v1/services/{name}/deploy")
"""Routes (as declared) that change something when called rightly: fuzzed with bad input only."""
NO_SUCH_SERVICE = "ivl-fuzz-no-such-service"
TRUTHY = ("1", "true", "yes")
STREAMING_FLAGS = ("watch", "follow")
"""Query flags that make a GET stream until the agent stops: sent only with false values."""


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    path: str  # already percent-encoded, as sent
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes | None

    def target(self) -> str:
        return self.path + ("?" + urlencode(self.query) if self.query else "")

    def __str__(self) -> str:
        body = "" if self.body is None else f" body={self.body[:80]!r} ({len(self.body)} bytes)"
        headers = f" headers={dict(self.headers)}" if self.headers else ""
        return f"{self.method} {self.target()[:300]}{headers}{body}"


# ── strategies ──────────────────────────────────────────────────────────────────────────────

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
METHODS = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PROPFIND"]),
    st.text(TOKEN_CHARS, min_size=1, max_size=12),  # mostly refused by aiohttp's HTTP parser
)
ABSURD = st.sampled_from(
    [
        "",
        "0",
        "-1",
        "-0",
        "+5",
        "1e400",
        "nan",
        "inf",
        "-inf",
        "0x10",
        "1_000",
        "\u0661\u0662",  # Arabic-Indic digits, which int() would take
        str(10**30),
        "9" * 5000,
        "\x00",
        "web\x00",
        "settled",
        "true",
        "yes",
        "../../etc/passwd",
        "%00",
        "2026-01-01T00:00:00Z",
        "a" * 3000,
    ]
)
TEXT = st.text(max_size=40) | st.text(st.characters(codec="utf-8"), max_size=400)
VALUES = ABSURD | TEXT | st.integers().map(str) | st.floats().map(str)
PARAM_NAMES = sorted({p.name for r in ROUTES for p in r.params} | {"wait", "timeout"})
KEYS = st.sampled_from(PARAM_NAMES) | st.text(max_size=10)
HEADER_NAMES = st.sampled_from(
    ["Authorization", "Content-Type", "Accept", "Cookie", "X-Forwarded-For", "Range", "Expect"]
) | st.text(TOKEN_CHARS, min_size=1, max_size=20).filter(
    lambda n: n.lower() not in ("content-length", "transfer-encoding", "host", "connection")
)
HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=50),
).map(str.strip)
NESTED = st.integers(1, 20_000).map(lambda depth: b"[" * depth + b"]" * depth)
BODIES = (
    st.none()
    | st.binary(min_size=1, max_size=2048)
    | NESTED
    | st.sampled_from(
        [
            b"{}",
            b'{"command": "rm -rf /", "argv": ["sh", "-c", "id"], "shell": true}',
            b'{"n": 1e999999}',
            b"[" + b"9" * 10000 + b"]",
            b'{"a": "\\ud800"}',
            b"null",
        ]
    )
)


@st.composite
def requests(draw: st.DrawFn, services: list[str]) -> FuzzRequest:
    method = draw(METHODS)
    kind = draw(st.sampled_from(["route", "route", "route", "random"]))
    if kind == "route":
        route = draw(st.sampled_from(ROUTES))
        if draw(st.integers(0, 3)) > 0:
            method = route.method
        name = draw(st.sampled_from(services) | TEXT.filter(bool) | ABSURD.filter(bool))
        action = draw(st.sampled_from(["start", "stop", "restart", "hold"]) | TEXT.filter(bool))
        raw_path = route.path.replace("{name}", name).replace("{action}", action)
    else:
        raw_path = "/" + draw(
            st.lists(st.sampled_from(["v1", "services", "..", ".", ""]) | TEXT, max_size=5).map(
                "/".join
            )
        )
    query = tuple(draw(st.lists(st.tuples(KEYS, VALUES), max_size=5)))
    headers = tuple(draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=3)))
    body = draw(BODIES)
    return make_safe(FuzzRequest(method, quote(raw_path, safe="/"), query, headers, body), services)


def make_safe(request: FuzzRequest, services: list[str]) -> FuzzRequest:
    """The request, changed so that it cannot start, stop or deploy anything or end the agent.

    A request body is refused before any handler runs, so only a POST without one could act.
    Its path is judged as the server will route it (percent-decoded); if it names a real
    service or the shutdown route, the name is replaced by one that no service has. GET
    requests lose any true `watch`/`follow`, so that none streams forever.
    """
    query = tuple(
        (k, v) for k, v in request.query if not (k in STREAMING_FLAGS and v.lower() in TRUTHY)
    )
    path = request.path
    if request.method == "POST" and not request.body:
        decoded = unquote(path)
        if "shutdown" in decoded or any(name in decoded for name in services):
            decoded = decoded.replace("shutdown", "shut-down")
            for name in services:
                decoded = decoded.replace(name, NO_SUCH_SERVICE)
            path = quote(decoded, safe="/")
    if (path, query) == (request.path, request.query):
        return request
    return FuzzRequest(request.method, path, query, request.headers, request.body)


# ── sending and judging ─────────────────────────────────────────────────────────────────────


def send(socket_path: Path, request: FuzzRequest) -> Answer:
    """One request on a connection of its own.

    The server may answer (and close) before the body is sent, as it does when it refuses
    one; the answer is read all the same.
    """
    conn = _UnixConnection(socket_path, REQUEST_TIMEOUT)
    try:
        conn.putrequest(request.method, request.target(), skip_accept_encoding=True)
        for name, value in request.headers:
            conn.putheader(name, value.encode("latin-1"))
        if request.body is not None:
            conn.putheader("Content-Length", str(len(request.body)))
        elif request.method == "POST":
            conn.putheader("Content-Length", "0")
        try:
            conn.endheaders(request.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered early: the answer is in the socket
        response = conn.getresponse()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.version, response.status, headers, body)
    finally:
        conn.close()


@dataclass(frozen=True)
class Answer:
    version: int  # 10 or 11
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def refused_by_the_http_parser(self) -> bool:
        """aiohttp's HTTP parser answers malformed HTTP itself (a method token it does not
        know, a header value with a control character, a request line or header over 8 KiB,
        a duplicate Content-Type), before the API sees the request: always with an HTTP/1.0
        400 in plain text that says what is wrong, closing the connection. Not a crash; and
        the API's own answers are HTTP/1.1, so the two cannot be mistaken for each other."""
        plain = self.headers.get("content-type", "").startswith("text/plain")
        return (self.version, self.status) == (10, 400) and plain


def judge(request: FuzzRequest, answer: Answer) -> str | None:
    """What is wrong with this answer, or None."""
    status, body = answer.status, answer.body
    if status >= 500:
        return f"status {status}: {body[:300]!r}"
    if answer.refused_by_the_http_parser:
        return None
    if status >= 400 and request.method != "HEAD":
        try:
            error = json.loads(body)["error"]
            if not (error["code"] and error["message"]):
                return f"status {status} with an empty error code or message: {body[:300]!r}"
        except (ValueError, KeyError, TypeError):
            return f"status {status} without a JSON error body: {body[:300]!r}"
    return None


def agent_state(socket_path: Path) -> dict[str, Any]:
    """What fuzzing must not change: the agent's pid, each service's pid/instance/state, and
    the newest event."""
    agent = send(socket_path, FuzzRequest("GET", "/v1/agent", (), (), None)).body
    status = send(socket_path, FuzzRequest("GET", "/v1/status", (), (), None)).body
    last = FuzzRequest("GET", "/v1/events", (("limit", "1"),), (), None)
    newest = json.loads(send(socket_path, last).body)["events"]
    return {
        "agent": json.loads(agent)["pid"],
        "services": {
            s["name"]: (s["pid"], s["instance"], s["state"]) for s in json.loads(status)["services"]
        },
        "newest_event": newest[-1]["id"] if newest else None,
    }


def run_api_fuzz(
    socket_path: Path,
    n: int,
    *,
    seed: int = 0,
    failures: list[str] | None = None,
    on_request: Callable[[FuzzRequest, Answer], None] | None = None,
) -> tuple[int, int]:
    """Send `n` generated requests to the agent on `socket_path`: (cases tried, crashes).

    Each crash is described in `failures` (if given), with the request that caused it. A
    change of the agent's state over the run counts as one more crash. Stops early if the
    agent no longer answers at all.
    """
    found: list[str] = failures if failures is not None else []
    before = agent_state(socket_path)
    services = sorted(before["services"])
    tried = 0
    dead = False

    @settings(
        max_examples=n,
        derandomize=not seed,  # seed 0: the same cases every run; another: cases of that seed
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(requests(services))
    def one(request: FuzzRequest) -> None:
        nonlocal tried, dead
        if dead:
            return
        tried += 1
        try:
            answer = send(socket_path, request)
        except (OSError, http.client.HTTPException) as e:
            found.append(f"{request}: no answer ({type(e).__name__}: {e})")
            try:
                send(socket_path, FuzzRequest("GET", "/v1/agent", (), (), None))
            except (OSError, http.client.HTTPException):
                found.append("the agent stopped answering")
                dead = True
            return
        problem = judge(request, answer)
        if problem is not None:
            found.append(f"{request}: {problem}")
        if on_request is not None:
            on_request(request, answer)

    if seed:
        one = hypothesis.seed(seed)(one)
    one()
    if not dead:
        after = agent_state(socket_path)
        if after != before:
            found.append(f"the agent's state changed: before {before}, after {after}")
    return tried, len(found)


def run_manifest_fuzz(n: int, *, failures: list[str] | None = None) -> tuple[int, int]:
    """Load `n` broken or arbitrary manifests from a file: (cases tried, crashes), where a crash
    is any exception but a ManifestError with a message. The cases are those of
    tests/core/test_manifest_fuzz.py: mutations of the bundled manifests, and arbitrary TOML."""
    found: list[str] = failures if failures is not None else []
    where = Path(__file__).resolve().parents[1] / "core" / "test_manifest_fuzz.py"
    spec = importlib.util.spec_from_file_location("infraveil_manifest_fuzz", where)
    assert spec is not None and spec.loader is not None
    cases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cases)
    tried = 0
    with tempfile.TemporaryDirectory(prefix="ivl-fuzz-") as directory:
        path = Path(directory) / "infraveil.toml"

        @settings(
            max_examples=n,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(cases.mutated_manifests() | cases.arbitrary_toml_manifests())
        def one(data: bytes) -> None:
            nonlocal tried
            tried += 1
            path.write_bytes(data)
            try:
                load_manifest(path)
            except ManifestError as e:
                if not (e.issues and all(i.message.strip() for i in e.issues)):
                    found.append(f"{data[:200]!r}: a ManifestError without a message")
            except Exception as e:
                found.append(f"{data[:200]!r}: {type(e).__name__}: {e}")

        one()
    return tried, len(found)
