"""A small real web app that reads its settings (`settings.py`) at import.

    DATABASE_URL=postgresql://... PORT=8000 python app.py

GET / answers which database it would use; without DATABASE_URL it never gets to listen.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, HTTPServer

import settings


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"using {settings.DATABASE_URL.split('@')[-1]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    print(f"app: loading settings done, listening on port {settings.PORT}", flush=True)
    HTTPServer(("127.0.0.1", settings.PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
