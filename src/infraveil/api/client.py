"""The CLI's client of the agent API: plain HTTP/1.1 over the agent's Unix socket.

The standard library's http.client does the HTTP; only the connection is pointed at a Unix
socket. A CLI call pays no import of an async stack for one request.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

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
    def __init__(self, state_dir: Path, timeout: float | None = 120.0) -> None:
        self.state_dir = state_dir
        self.socket = state_dir / "agent.sock"
        self.timeout = timeout

    def _send(
        self, method: str, path: str, query: dict[str, Any] | None, timeout: float | None
    ) -> tuple[UnixHTTPConnection, http.client.HTTPResponse]:
        target = path
        if query:
            clean = {k: _q(v) for k, v in query.items() if v is not None and v is not False}
            if clean:
                target += "?" + urlencode(clean)
        conn = UnixHTTPConnection(str(self.socket), timeout)
        try:
            headers = {"Content-Length": "0"} if method == "POST" else {}
            conn.request(method, target, headers=headers)
            return conn, conn.getresponse()
        except (FileNotFoundError, ConnectionRefusedError) as e:
            conn.close()
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


def _rows(conn: UnixHTTPConnection, response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    with closing(conn):
        while line := response.readline():
            yield json.loads(line)


def service_path(name: str, *rest: str) -> str:
    return "/".join(["/v1/services", quote(name, safe=""), *rest])


def _q(value: Any) -> str:
    if value is True:
        return "true"
    return str(value)
