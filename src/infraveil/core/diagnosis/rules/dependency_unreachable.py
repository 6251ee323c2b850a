"""Rule: dependency_unreachable — a dependency refused the connection, timed out or has no route.

Recognises the refusal as each runtime and client words it: `Connection refused` (glibc, Java's
`ConnectException`, curl), `ECONNREFUSED` (Node), Go's `dial tcp HOST:PORT: connect: connection
refused`, libpq's `connection to server at "H", port P failed: Connection refused` and its older
two-line `could not connect to server` + `Is the server running on host ...`, redis-py's
`Error 111 connecting to H:P`, asyncpg's `Connect call failed ('H', P)`, MySQL's `Can't connect to
MySQL server on 'H' (111)` and JDBC's `Communications link failure`, Kafka's `could not be
established. Broker may not be available`; timeouts (`Connection timed out`, `ETIMEDOUT`, Go's
`i/o timeout`, libpq's `timeout expired`), `No route to host` and a local server's missing Unix
socket. The summary names the HOST:PORT when the line (or libpq's detail lines) gives it. An
entrypoint's own wait loop counts too: it announces what it waits for (`Trying to connect to
PostgreSQL server db...`, `waiting 15 seconds for db:5432`), then gives up in its own words
(`timeout reached before the port went into state "inuse"`, `timeout occurred`, `gave up`).

Traps: this service is a victim, so the finding is never deterministic. A DNS failure worded by
Go as `lookup db on 127.0.0.11:53: ... connection refused` is the resolver refusing: dns_failure.
A refusal that was retried and then recovered (`connected`, `listening on` after it), or that a
later unrelated crash superseded, is still reported but only as a keyword, so it does not outrank
what really ended the instance; a proxy's per-request `proxy error` / `while connecting to
upstream` is medium confidence, since a proxy whose upstream is down keeps running. "refused"
in another sense (a login, a request, a relay) is not a connection refusal and is not matched.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, search_unless, superseded
from infraveil.core.diagnosis.decisive import LogLine
from infraveil.core.diagnosis.facts import DependencyFact
from infraveil.core.diagnosis.finding import Confidence, Evidence, Finding, Specificity, finding

# Lines that are a name-resolution failure, whatever else they say: dns_failure's.
_DNS = (
    r"lookup \S+ on \S+|Name or service not known|name resolution|ENOTFOUND|EAI_AGAIN"
    r"|UnknownHostException|could not translate host name|Unknown MySQL server host"
    r"|nodename nor servname|[Nn]o such host|Could not resolve host"
)
_IS_DNS = re.compile(_DNS)
_UNREACHABLE = re.compile(
    r"(?:"
    r"(?P<refused>[Cc]onnection refused|ECONNREFUSED|actively refused it|Connect call failed"
    r"|Connection to \S+ refused"
    r"|Communications link failure|Can't connect to (?:MySQL|MariaDB) server on"
    r"|could not be established\. Broker may not be available|Error 111 connecting)"
    r"|(?P<timeout>[Cc]onnection timed out|[Cc]onnect timed out|ETIMEDOUT"
    r"|dial (?:tcp|udp)[46]? \S+: i/o timeout|failed: timeout expired|Connect timeout"
    r"|ConnectTimeoutError)"
    r"|(?P<unreachable>[Nn]o route to host|EHOSTUNREACH|[Nn]etwork is unreachable|ENETUNREACH)"
    r"|(?P<socket>on (?:Unix domain )?socket \"[^\"]+\"(?: failed: No such file)?"
    r"|[Cc]an't connect to local (?:MySQL|MariaDB) server through socket"
    r"|dial unix \S+: connect: no such file|connect ENOENT /\S+\.sock))"
)
# Where the connection went, in the words of each client (group 1: host, group 2: port).
_TARGETS = tuple(
    re.compile(p)
    for p in (
        r'connection to server at "([^"]+)"(?: \([^)]*\))?, port (\d+)',
        r"dial (?:tcp|udp)[46]? \[?([\w.:-]+?)\]?:(\d+): ",
        r"(?:ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH) \[?([\w.:-]+?)\]?:(\d+)",
        r"connecting to \[?([\w.:-]+?)\]?:(\d+)",
        r"Failed to connect to (\S+) port (\d+)",
        r"Connect call failed \('([^']+)', (\d+)",
        r"Can't connect to (?:MySQL|MariaDB) server on '([^':]+)(?::(\d+))?'",
        r"host='([^']+)', port=(\d+)",
        r"\([\w.-]+/([\d.]+):(\d+)\)",
        r"Connection refused: (?:[\w.-]*/)?([\w.-]+):(\d+)",
        r"Connection to ([\w.-]+):(\d+) refused",
        r"\b([\w.-]+):(\d+): \[Errno",
        r'on host "([^"]+)"(?: \([^)]*\))? and accepting\s+TCP/IP connections on port (\d+)',
        r"\bto \[?([\w.-]+|[\d.]+)\]?:(\d+)\b",
    )
)
_SOCKET_PATH = re.compile(r"socket [\"']([^\"']+)[\"']|dial unix (\S+?):|ENOENT (/\S+\.sock)")
# A proxy failing a request to its upstream: the proxy itself is up, so this rarely ended it.
_PER_REQUEST = re.compile(
    r"proxy error|while connecting to upstream|upstream connect error|[Bb]ad [Gg]ateway"
)
_HINT = re.compile(r"Is the server running|HINT:|Broker may not be available")

_KIND_WORDS = {
    "refused": "the connection was refused (nothing is listening there)",
    "timeout": "the connection timed out",
    "unreachable": "there is no route to it",
    "socket": "no server is listening on that Unix socket",
}


# A wait for a dependency that gave up: an entrypoint announces what it waits for ("Trying to
# connect to PostgreSQL server db...", "waiting for redis:6379"), then its own words for a
# timeout ("timeout reached before the port went into state ...", "gave up waiting").
_WAITING = re.compile(
    r"(?i)\b(?:trying to (?:connect|reach)|attempting to connect|connecting|waiting"
    r"(?: \d+ \w+)?)(?: for| to| on| until)+\s+(?P<what>\S.*)"
)
_GAVE_UP = re.compile(
    r"(?i)\btimed out\b|\btimeout (?:reached|occurred|waiting|exceeded|expired|after|while)\b"
    r"|\bgave up\b|\bgiving up\b|\bretries exhausted\b|\b(?:max(?:imum)?|all) (?:number of )?"
    r"(?:retries|attempts)\b|\bnot (?:available|reachable|ready) after\b"
)
_WAIT_WINDOW = 60
"""How many lines after the announcement its give-up may come (retries print in between)."""


def rule(c: Clues) -> Finding | None:
    found = search_unless(c, _UNREACHABLE, _IS_DNS)
    if found is None:
        return _gave_up_waiting(c)
    kind = next(k for k in _KIND_WORDS if found[k])
    log = c.facts.log
    window = log[found.at : found.at + 4]
    texts = [line.text for line in window]
    if c.on_decisive(found):
        texts.extend(line.text for line, _ in c.decisive_lines())
    host, port = _target(texts)
    evidence = [c.quote(found.line)]
    hint = next((ln for ln in window[1:] if _HINT.search(ln.text)), None)
    if hint is not None:
        evidence.append(c.quote(hint))
    down = [d for d in c.facts.dependencies if not d.ready]
    evidence.extend(Evidence("dependency", f"{d.name} is {d.state or 'not ready'}") for d in down)

    if kind == "socket":
        what = _socket_path(window) or "a local server's socket"
    elif host:
        what = f"{host}:{port}" if port else host
    elif down:
        what = down[0].name
    else:
        what = "a dependency"
    summary = f"{c.who} could not connect to {what}: {_KIND_WORDS[kind]}."

    late = superseded(c, found)
    confidence = Confidence.HIGH if kind in ("refused", "socket") else Confidence.MEDIUM
    per_request = _PER_REQUEST.search(found.line.text) is not None
    if per_request:
        confidence = Confidence.MEDIUM
    if late:
        confidence = Confidence.LOW
    return finding(
        Category.DEPENDENCY_UNREACHABLE,
        summary,
        evidence,
        _fix(c, kind, host, port, down),
        specificity=Specificity.KEYWORD if late else Specificity.MESSAGE,
        confidence=confidence,
        deterministic=False,
        confirm=_confirm(kind, host, port, late, per_request),
        at=found.at,
    )


def _gave_up_waiting(c: Clues) -> Finding | None:
    """A dependency announced, then waited for in vain (the client's own timeout words)."""
    gave_up = search_unless(c, _GAVE_UP, _IS_DNS)
    if gave_up is None:
        return None
    log = c.facts.log
    announced = None
    for i in range(gave_up.at, max(-1, gave_up.at - _WAIT_WINDOW), -1):
        if (m := _WAITING.search(log[i].text)) is not None and not _IS_DNS.search(log[i].text):
            announced = (log[i], m["what"])
            break
    if announced is None:
        return None
    line, what = announced
    host, port = _announced_target(what)
    target = f"{host}:{port}" if host and port else host or "a dependency"
    evidence = [c.quote(gave_up.line)]
    if line is not gave_up.line:
        evidence.append(c.quote(line))
    late = superseded(c, gave_up)
    return finding(
        Category.DEPENDENCY_UNREACHABLE,
        f"{c.who} waited for {target} and gave up: it did not answer in time.",
        evidence,
        _fix(c, "timeout", host, port, []),
        specificity=Specificity.KEYWORD if late else Specificity.MESSAGE,
        confidence=Confidence.LOW if late else Confidence.MEDIUM,
        deterministic=False,
        confirm=_confirm("timeout", host, port, late, False),
        at=gave_up.at,
    )


_HOST_PORT = re.compile(r"\b([a-z0-9][\w.-]*[a-z0-9]):(\d{2,5})\b", re.I)
_HOSTISH = re.compile(r"^[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*$")


def _announced_target(what: str) -> tuple[str, str]:
    """The host (and port) in what an entrypoint said it waits for, if it names one: a
    HOST:PORT, else a word that looks like a host name (with a dot or a dash, as Services'
    names have), else nothing (`waiting for the database` names no host)."""
    if m := _HOST_PORT.search(what):
        return m[1], m[2]
    words = [w.strip(".,;:'\"()[]`") for w in what.split()]
    hosts = [w for w in words if _HOSTISH.match(w) and ("-" in w or "." in w)]
    return (hosts[-1] if hosts else ""), ""


def _target(texts: list[str]) -> tuple[str, str]:
    joined = " ".join(t.strip() for t in texts)
    for text in (texts[0], joined):
        for pattern in _TARGETS:
            if m := pattern.search(text):
                return m[1], m[2] or ""
    return "", ""


def _socket_path(window: tuple[LogLine, ...]) -> str:
    for line in window:
        if m := _SOCKET_PATH.search(line.text):
            return next(g for g in m.groups() if g)
    return ""


def _fix(c: Clues, kind: str, host: str, port: str, down: list[DependencyFact]) -> str:
    name = down[0].name if down else ""
    where = f"{host}:{port}" if host and port else host or "the dependency"
    if kind == "socket":
        start = "Start the database server this service talks to (or point it at a TCP host)"
    elif kind == "refused":
        probe = f" (`nc -vz {host} {port}` from here; `ss -ltnp 'sport = :{port}'` on its host)"
        start = (
            f"Check that {name or where} is running and listening on that address and port"
            f"{probe if host and port else ''}; a server bound to 127.0.0.1 refuses connections"
            " from other hosts and containers"
        )
    elif kind == "timeout":
        start = (
            f"Check that {where} is up and that no firewall, security group or network policy"
            " drops the traffic (a timeout, unlike a refusal, means nothing answered)"
        )
    else:
        start = f"Check the network path to {where} (routes, VPN, container network)"
    wait = (
        f"; if {name} is just slower to start, keep `depends_on` with a readiness check so this"
        " service waits for it"
        if name
        else "; if it is just slower to start, list it in `depends_on` with a readiness check"
        " (or retry with backoff) so this service waits for it"
    )
    return f"{start}{wait}. Then {c.restart_hint()}."


def _confirm(kind: str, host: str, port: str, late: bool, per_request: bool) -> str:
    if per_request and not late:
        return (
            "a proxy failing requests to its upstream keeps running: check that nothing else in"
            " the output (its own listen or config error) ended it"
        )
    if late:
        return (
            "this failure was retried or followed by another: check whether the connection"
            " succeeded later and what ended the instance"
        )
    if kind in ("refused", "socket"):
        return ""
    target = f"{host} {port}" if host and port else "HOST PORT"
    return f"`nc -vz -w 5 {target}` from the same host or container timing out too"
