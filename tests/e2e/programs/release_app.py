"""A release's program for the deploy gate tests: copied into a payload as `app.py`.

It reads what to do from the file `behaviour` in its working directory (the release's tree):

- `good`: listen on $PORT; GET / answers the content of the file `VERSION`;
- `crash`: read `DATABASE_URL` from the environment, which is not set: a KeyError traceback,
  exit 1;
- `hang`: never listen (a release that never becomes ready);
- `crash-after N`: listen like `good`, then exit 1 after N seconds with an error line;
- `needs FILE`: exit 1 with "FATAL: cannot open FILE" unless FILE exists; else like `good`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def serve(version: str) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = version.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    print(f"{version} listening on {os.environ['PORT']} in {os.getcwd()}", flush=True)
    return server


def main() -> None:
    with open("behaviour") as f:
        behaviour, _, argument = f.read().strip().partition(" ")
    with open("VERSION") as f:
        version = f.read().strip()
    print(f"{version}: behaviour {behaviour} {argument}".rstrip(), flush=True)
    if behaviour == "crash":
        url = os.environ["DATABASE_URL"]
        print(f"connecting to {url}")
    elif behaviour == "hang":
        while True:
            time.sleep(3600)
    elif behaviour == "needs" and not os.path.exists(argument):
        print(f"FATAL: cannot open {argument}", file=sys.stderr, flush=True)
        sys.exit(1)
    server = serve(version)
    if behaviour == "crash-after":

        def crash() -> None:
            time.sleep(float(argument))
            print("FATAL: lost the connection to the job queue", file=sys.stderr, flush=True)
            os._exit(1)

        threading.Thread(target=crash, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
