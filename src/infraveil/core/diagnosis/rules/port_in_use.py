"""Rule: port_in_use — the address the service wants to listen on is already taken.

Recognises EADDRINUSE however it is spelt: `Address already in use` (glibc: Python's `[Errno 98]`,
Redis's `Could not create server TCP listening socket *:6379: bind: ...`, nginx's `bind() to
0.0.0.0:80 failed (98: ...)`, PostgreSQL's `could not bind IPv4 address`, Java's
`BindException`, Rust's `os error 98`), Go's `listen tcp :8080: bind: address already in use`,
Node's `listen EADDRINUSE: address already in use :::3000`, Spring Boot's `Port 8080 was already
in use`, gunicorn's `Connection in use: ('0.0.0.0', 8000)`, Windows' `Only one usage of each
socket address`. The port comes from the line (`host:port`, `port N`, a Python address tuple),
then a detail or hint line (PostgreSQL's `Is another postmaster already running on port 5432?`,
Redis's `Failed listening on port 6379`), then the spec's single port.

Traps: `Cannot assign requested address` (EADDRNOTAVAIL: binding an address this host does not
have) is a different mistake and is not claimed. A `file.go:123` caller or a timestamp is not a
port. gunicorn retries a port in use and may then bind it: a later `Listening at` makes the
evidence a keyword only (see `dependency_unreachable.superseded`).
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, superseded
from infraveil.core.diagnosis.finding import Confidence, Finding, Specificity, finding

_IN_USE = re.compile(
    r"(?i:address already in use)|EADDRINUSE|[Aa]ddress in use|already in use"
    r"|Connection in use: |Only one usage of each socket address"
)
_NOT_PORT = re.compile(r"(?i:cannot assign requested address)|[Vv]olume .* already in use|name \"")
_PORT_WORD = re.compile(r"\b[Pp]ort (\d{1,5})\b|\bon port (\d{1,5})")
_TUPLE = re.compile(r"\(['\"][^'\"]*['\"], (\d{1,5})\)")
_HOST_PORT = re.compile(
    r"(?<![\w:.\-/])(\*|\[[0-9a-fA-F:.%\w]*\]|::|(?:\d{1,3}\.){3}\d{1,3}|[A-Za-z][\w.-]*)?"
    r":(\d{1,5})(?![\d.]|\w)"
)
_SOURCE_FILE = re.compile(r"\.(?:go|py|js|ts|java|rb|rs|c|cc|cpp|kt|cs|ex|exs|php)$")
_DETAIL = re.compile(r"HINT:|Failed listening on port|Is another|Retrying in")


def rule(c: Clues) -> Finding | None:
    found = c.search(_IN_USE)
    if found is None or _NOT_PORT.search(found.line.text):
        return None
    log = c.facts.log
    after = log[found.at + 1 : found.at + 4]
    port = _port(found.line.text)
    for line in after:
        if port or not _DETAIL.search(line.text):
            break
        port = _port_word(line.text)
    if not port and len(c.facts.ports) == 1:
        port = str(c.facts.ports[0])
    evidence = [c.quote(found.line)]
    detail = next((ln for ln in after if _DETAIL.search(ln.text)), None)
    if detail is not None:
        evidence.append(c.quote(detail))
    late = superseded(c, found)
    where = f"port {port}" if port else "its port"
    return finding(
        Category.PORT_IN_USE,
        f"{c.who} could not listen on {where}: the address is already in use.",
        evidence,
        _fix(c, port),
        specificity=Specificity.KEYWORD if late else Specificity.MESSAGE,
        confidence=Confidence.LOW if late else Confidence.HIGH,
        confirm="the port was retried and may have been bound later: check what ended it"
        if late
        else "",
        at=found.at,
    )


def _port(text: str) -> str:
    if port := _port_word(text):
        return port
    if m := _TUPLE.search(text):
        return m[1]
    ports = [
        m[2]
        for m in _HOST_PORT.finditer(text)
        if not (m[1] and _SOURCE_FILE.search(m[1])) and 0 < int(m[2]) < 65536
    ]
    return ports[-1] if ports else ""


def _port_word(text: str) -> str:
    m = _PORT_WORD.search(text)
    return (m[1] or m[2]) if m else ""


def _fix(c: Clues, port: str) -> str:
    if port:
        who = (
            f"See which process holds port {port}: `ss -ltnp 'sport = :{port}'`"
            f" (or `lsof -iTCP:{port} -sTCP:LISTEN`)"
        )
    else:
        who = "See which process holds the port: `ss -ltnp` lists listeners and their owners"
    return (
        f"{who}. If it is an older copy of this service (a daemonized or orphaned instance), stop"
        " it; otherwise stop the other program or give this service another port (its `ports`"
        " and its own listen setting must agree, and two instances cannot share one port)."
        f" Then {c.restart_hint()}."
    )
