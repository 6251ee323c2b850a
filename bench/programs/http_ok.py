#!/usr/bin/env python3
"""A tiny HTTP service for bench/health.py: 200 on /healthz and /readyz, 404 elsewhere.

    python bench/programs/http_ok.py PORT

The standard library's `http.server`, single-threaded (one request at a time, as a health
endpoint of a small service often is), on 127.0.0.1:PORT. It prints nothing: its output would
go through infraveil's log pipes and add to the agent's CPU, which is what is being measured.

The answer is written in one `send`, because infraveil's probe closes the connection as soon as
it has the status line: a second write could meet a reset, and the server would print a
traceback.

If `HTTP_OK_LOG_DIR` is set (bench/health.py sets it; every service inherits the agent's
environment), each request appends `<time.monotonic()> <path>` to `$HTTP_OK_LOG_DIR/PORT.log`.
On Linux the monotonic clock is the same in every process, so the benchmark can see from the
service's side when each probe arrived, independently of what the agent reports.
"""

from __future__ import annotations

import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TextIO

PATHS = frozenset({"/healthz", "/readyz"})
OK = (
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    b"Connection: close\r\n\r\nok\n"
)
NOT_FOUND = (
    b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n"
    b"Connection: close\r\n\r\nnot found\n"
)


def open_request_log(port: int) -> TextIO | None:
    directory = os.environ.get("HTTP_OK_LOG_DIR")
    if not directory:
        return None
    return open(os.path.join(directory, f"{port}.log"), "a", buffering=1)


class Handler(BaseHTTPRequestHandler):
    request_log: TextIO | None = None

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if self.request_log is not None:
            self.request_log.write(f"{time.monotonic():.6f} {path}\n")
        self.wfile.write(OK if path in PATHS else NOT_FOUND)

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(HTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away early is not worth a traceback in the service's log


def main() -> None:
    port = int(sys.argv[1])
    Handler.request_log = open_request_log(port)
    with QuietServer(("127.0.0.1", port), Handler) as server:
        # not serve_forever(): it wakes every 0.5 s to look for a shutdown request, and 500
        # servers doing that would add 1000 wake-ups a second to the machine being measured
        server.timeout = None
        while True:
            server.handle_request()


if __name__ == "__main__":
    main()
