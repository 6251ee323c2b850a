"""A small real HTTP service whose health the tests steer with files in its working directory.

    python http_service.py PORT [--boot SECONDS] [--db PORT]

- boots for SECONDS (or the number in the file `boot`, if present) before it listens;
- GET /healthz: 200; 503 when `--db PORT` is given and nothing accepts a connection there;
- GET /readyz: 200; 503 while the file `notready` exists;
- once the file `wedge` exists, every request hangs forever: the process stays alive but stops
  answering (it is single-threaded, like many a stuck server). A new instance removes `wedge`;
- anything else: 404.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--boot", type=float, default=0.0)
    parser.add_argument("--db", type=int)
    args = parser.parse_args()
    if os.path.exists("wedge"):
        os.unlink("wedge")
    boot = args.boot
    if os.path.exists("boot"):
        with open("boot") as f:
            boot = float(f.read())
    print(f"booting for {boot}s", flush=True)
    time.sleep(boot)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if os.path.exists("wedge"):
                print("wedged", flush=True)
                time.sleep(10_000)
            if self.path == "/healthz":
                ok = args.db is None or reachable(args.db)
                self.answer(200 if ok else 503, "ok" if ok else "db unreachable")
            elif self.path == "/readyz":
                ready = not os.path.exists("notready")
                self.answer(200 if ready else 503, "ready" if ready else "not ready")
            else:
                self.answer(404, "no such page")

        def answer(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
