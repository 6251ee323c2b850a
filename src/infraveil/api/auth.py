"""Who may drive the agent over TCP: a bearer token, and the address the listener binds.

The Unix socket needs no token: its file mode (0600, in a 0700 state directory) is the access
control, and the kernel enforces it. A TCP port has no owner, so the opt-in TCP listener
(`up --listen [HOST:]PORT`) requires `Authorization: Bearer <token>` on every request.

The token is generated on first use and kept in `STATE_DIR/api-token` (0600), so agents that
come later (a restart, an upgrade) accept the same token and clients need not be told again.
It is written to a private temporary file and hard-linked into place: the file is complete and
0600 from the instant it has its name, and of two writers only one wins.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from infraveil.api.errors import error_body
from infraveil.core.errors import StateDirError

TOKEN_FILE = "api-token"
DEFAULT_HOST = "127.0.0.1"
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ListenAddress:
    """Where the TCP listener binds; `explicit_host` is False when only a port was given."""

    host: str
    port: int
    explicit_host: bool = False

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """`PORT`, `HOST:PORT` or `[IPV6]:PORT` → a ListenAddress (127.0.0.1 unless a host is said).

    Port 0 asks the kernel for a free port; the agent's `ApiListening` event says which.
    """
    raw = text.strip()
    host, sep, port_text = raw.rpartition(":")
    if not sep:
        host, port_text = "", raw
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:8750")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535, e.g. 8750")
    if sep and not host:
        raise ValueError(f"{text!r}: the host is empty; write PORT or HOST:PORT")
    return ListenAddress(host or DEFAULT_HOST, int(port_text), explicit_host=bool(host))


def is_loopback(host: str) -> bool:
    """True for localhost and addresses in 127.0.0.0/8 or ::1 (never reachable from elsewhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def load_or_create_token(state_dir: Path) -> str:
    """The agent's API token from `STATE_DIR/api-token`, made (0600, never wider) if missing.

    A token file that others could read, or that is not the agent's user's own, is refused:
    the token may have leaked, and only deleting the file (a new token is made) fixes that.
    """
    path = state_dir / TOKEN_FILE
    try:
        return _read_token(path)
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    temporary = state_dir / f".{TOKEN_FILE}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, token.encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)  # fails if another writer was first: then use theirs
        except FileExistsError:
            return _read_token(path)
    except OSError as e:
        raise StateDirError(
            f"cannot write the API token file {path}: {e.strerror or e}",
            hint="the state directory must be writable by the agent's user",
        ) from e
    finally:
        temporary.unlink(missing_ok=True)
    return token


def _read_token(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise _bad_token_file(path, f"cannot be opened ({e.strerror or e})") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _bad_token_file(path, "is not a regular file")
        if info.st_uid != os.geteuid():
            raise _bad_token_file(path, f"belongs to uid {info.st_uid}, not to the agent's user")
        if info.st_mode & 0o077:
            mode = oct(stat.S_IMODE(info.st_mode))
            raise _bad_token_file(path, f"can be read by others (mode {mode}): it may have leaked")
        raw = os.read(fd, 1024)
    finally:
        os.close(fd)
    token = raw.decode("ascii", errors="replace").strip()
    if len(token) < 32 or not set(token) <= _TOKEN_CHARS:
        raise _bad_token_file(path, "does not hold a token (43 URL-safe characters)")
    return token


def _bad_token_file(path: Path, what: str) -> StateDirError:
    return StateDirError(
        f"the API token file {path} {what}",
        hint=f"delete it (`rm {path}`): the agent makes a new token, and TCP clients need that one",
    )


def bearer_auth(token: str, needs_token: Callable[[web.Request], bool]) -> Middleware:
    """Middleware: a request for which `needs_token` holds must carry `Bearer <token>`.

    Refused requests get 401 before their handler runs, so nothing happens. The comparison
    takes the same time wherever the first wrong character is (`hmac.compare_digest`).
    """
    expected = token.encode()

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not needs_token(request):
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8", "surrogateescape"), expected
        ):
            return await handler(request)
        wrong = bool(given)
        body = error_body(
            "unauthorized",
            "the API token is wrong" if wrong else "this API needs a bearer token over TCP",
            "send `Authorization: Bearer TOKEN`; the token is in the file api-token of the"
            " agent's state directory (readable only by the agent's user)",
        )
        challenge = 'Bearer realm="infraveil"' + (', error="invalid_token"' if wrong else "")
        response = web.json_response(body, status=401, headers={"WWW-Authenticate": challenge})
        response.force_close()  # an unauthenticated peer gets one answer per connection
        return response

    return authenticate
