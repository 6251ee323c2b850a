"""The CLI's client of the agent API: plain HTTP/1.1 over the agent's Unix socket.

The standard library's http.client does the HTTP; only the connection is pointed at a Unix
socket. A CLI call pays no import of an async stack for one request.

With `INFRAVEIL_URL=http://HOST:PORT` the CLI talks to an agent's TCP listener instead (one
started with `--listen`), sending `INFRAVEIL_TOKEN` — or, if that is not set, the token in the
state directory's `api-token`, for an agent on this host — as its bearer token.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from infraveil.api.errors import error_from_body
from infraveil.core.errors import AgentNotRunningError, ApiError


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client pointed at a Unix socket (also used by bench/ for supervisord's socket)."""

    def __init__(self, path: str, timeout: float | None = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def not_running(state_dir: Path) -> AgentNotRunningError:
    return AgentNotRunningError(
        f"no agent is running on {state_dir}",
        hint="start one with `infraveil up --detach` in the directory of infraveil.toml "
        "(or `-f FILE`); use the same --state-dir",
    )


class Client:
    def __init__(
        self, state_dir: Path, timeout: float | None = 120.0, *, unix_only: bool = False
    ) -> None:
        """A client of the agent on `state_dir`'s socket, or at $INFRAVEIL_URL (unless
        `unix_only`: `up` talks to the agent it has just started, whatever the environment)."""
        self.state_dir = state_dir
        self.socket = state_dir / "agent.sock"
        self.timeout = timeout
        self.url = None if unix_only else (os.environ.get("INFRAVEIL_URL") or None)
        self._tcp = _parse_url(self.url) if self.url else None

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._tcp is None:
            return UnixHTTPConnection(str(self.socket), timeout)
        return http.client.HTTPConnection(*self._tcp, timeout=timeout)

    def _headers(self, method: str) -> dict[str, str]:
        headers = {"Content-Length": "0"} if method == "POST" else {}
        if self._tcp is not None:
            token = os.environ.get("INFRAVEIL_TOKEN") or _token_in(self.state_dir)
            if token:
                headers["Authorization"] = f"Bearer {token}"
        return headers

    def _send(
        self, method: str, path: str, query: dict[str, Any] | None, timeout: float | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        target = path
        if query:
            clean = {k: _q(v) for k, v in query.items() if v is not None and v is not False}
            if clean:
                target += "?" + urlencode(clean)
        conn = self._connection(timeout)
        try:
            conn.request(method, target, headers=self._headers(method))
            return conn, conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError) as e:
            conn.close()
            if self.url is not None:
                raise AgentNotRunningError(
                    f"no agent answers at {self.url} (INFRAVEIL_URL)",
                    hint="the agent must run with `--listen`; unset INFRAVEIL_URL to use the"
                    " agent of --state-dir",
                ) from e
            raise not_running(self.state_dir) from e
        except PermissionError as e:
            conn.close()
            raise AgentNotRunningError(
                f"not allowed to use the agent socket {self.socket}",
                hint="the API is only for the user the agent runs as",
            ) from e
        except BaseException:
            conn.close()
            raise

    def get(self, path: str, **query: Any) -> Any:
        return self._request("GET", path, query)

    def post(self, path: str, **query: Any) -> Any:
        return self._request("POST", path, query)

    def _request(self, method: str, path: str, query: dict[str, Any]) -> Any:
        conn, response = self._send(method, path, query, self.timeout)
        with closing(conn):  # one request per connection, closed once the answer is read
            return self._json(response)

    def stream(self, path: str, *, method: str = "GET", **query: Any) -> Iterator[dict[str, Any]]:
        """NDJSON rows as they arrive (no timeout: a follow goes on until the agent ends it).

        The request is sent now, not at the first iteration, so a caller can subscribe before
        it triggers what it wants to watch, and an error answer (unknown service, refused)
        raises here, before any row. The connection closes when the rows end or the iterator
        is closed. POST is for commands that report their progress as rows (deploy, rollback).
        """
        conn, response = self._send(method, path, query, None)
        if response.status >= 400:
            with closing(conn):
                self._json(response)
        return _rows(conn, response)

    @staticmethod
    def _json(response: http.client.HTTPResponse) -> Any:
        raw = response.read()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            raise ApiError(
                f"the agent answered {response.status} with a body that is not JSON"
            ) from None
        if response.status >= 400:
            raise error_from_body(body)
        return body


def _parse_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ApiError(
            f"INFRAVEIL_URL must be http://HOST:PORT, got {url!r}",
            hint="the agent's API speaks plain HTTP: reach a remote one through an SSH tunnel"
            " or a TLS proxy",
        )
    return parts.hostname, port


def _token_in(state_dir: Path) -> str:
    try:
        return (state_dir / "api-token").read_text().strip()
    except OSError:
        return ""


def _rows(
    conn: http.client.HTTPConnection, response: http.client.HTTPResponse
) -> Iterator[dict[str, Any]]:
    with closing(conn):
        while line := response.readline():
            yield json.loads(line)


def service_path(name: str, *rest: str) -> str:
    return "/".join(["/v1/services", quote(name, safe=""), *rest])


def _q(value: Any) -> str:
    if value is True:
        return "true"
    return str(value)
