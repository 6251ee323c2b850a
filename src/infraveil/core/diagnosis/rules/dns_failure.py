"""Rule: dns_failure — a host name did not resolve.

Recognises the resolver's own words across runtimes: glibc's `Name or service not known`
(EAI_NONAME), `Temporary failure in name resolution` (EAI_AGAIN), `No address associated with
hostname`, musl's `Name does not resolve`, macOS's `nodename nor servname provided`; Node's
`getaddrinfo ENOTFOUND db` / `EAI_AGAIN`; Go's `lookup db on 127.0.0.11:53: no such host` (and
`server misbehaving`, an i/o timeout or a refused query to the DNS server); libpq's `could not
translate host name "db" to address`; Java's `UnknownHostException: db`; MySQL's `Unknown MySQL
server host 'db'`; curl's `Could not resolve host`; urllib3's `Failed to resolve 'db'`; .NET's
`No such host is known`; nginx's `host not found in upstream "app:8000"`; busybox's
`nslookup: can't resolve 'db'` and `bad address 'db'` (an init container's wait loop). The
summary names the host when the line gives it.

Traps: a DNS failure is transient from this service's side (the name may appear once the other
container starts), so it is not deterministic; NXDOMAIN-style answers are high confidence, a
temporary failure or a timeout medium. Go's `lookup X on R:53: ... connection refused` is the
resolver refusing, so it is this rule's, not dependency_unreachable's. A failure that was retried
and then recovered is only a keyword (see `dependency_unreachable.superseded`).
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, superseded
from infraveil.core.diagnosis.finding import Confidence, Finding, Specificity, finding

_TEMPORARY = (
    r"Temporary failure in name resolution|EAI_AGAIN|server misbehaving"
    r"|lookup \S+ on \S+: (?:read udp \S+: )?(?:i/o timeout|read: connection refused)"
)
_IS_TEMPORARY = re.compile(_TEMPORARY)
_RESOLVE = re.compile(
    r"(?P<absent>Name or service not known|[Nn]o such host|ENOTFOUND|Name does not resolve"
    r"|nodename nor servname provided|No address associated with hostname"
    r"|could not translate host name|UnknownHostException|Unknown MySQL server host"
    r"|Could not resolve host|Failed to resolve '|host not found in upstream"
    r"|getaddrinfo failed|\bUnknown host\b(?! key)|Could not resolve hostname"
    r"|nslookup: can't resolve '|\b(?:ping|wget|nc): bad address ')"
    rf"|(?P<temporary>{_TEMPORARY})"
)
_HOSTS = tuple(
    re.compile(p)
    for p in (
        r"lookup ([^\s:]+)(?: on \S+)?: ",
        r"getaddrinfo (?:ENOTFOUND|EAI_AGAIN) ([^\s:,]+)",
        r'could not translate host name "([^"]+)"',
        r"UnknownHostException: ([^\s:;]+)",
        r"Unknown MySQL server host '([^']+)'",
        r"Could not resolve host(?:name)?:? '?([^\s:';]+)",
        r"Failed to resolve '([^']+)'",
        r"(?:can't resolve|bad address) '([^':]+)",
        r'host not found in upstream "([^":]+)',
        r"connecting to ([\w.-]+):\d+\.",
        r"host='([^']+)'",
        r"Unknown host:? '?([\w.-]+)",
        r"\bfor (?:host )?'?([\w.-]+\.[\w-]+)'?: (?:Name|Temporary)",
    )
)


def rule(c: Clues) -> Finding | None:
    found = c.search(_RESOLVE)
    if found is None:
        return None
    temporary = _IS_TEMPORARY.search(found.line.text) is not None
    texts = [line.text for line in c.facts.log[found.at : found.at + 2]]
    if c.on_decisive(found):
        texts.extend(line.text for line, _ in c.decisive_lines())
    host = _host(texts)
    name = f"the host name {host}" if host else "a host name"
    how = (
        "could not be resolved right now (a temporary DNS failure)"
        if temporary
        else ("does not resolve")
    )
    late = superseded(c, found)
    confidence = Confidence.LOW if late else Confidence.MEDIUM if temporary else Confidence.HIGH
    return finding(
        Category.DNS_FAILURE,
        f"{c.who} failed because {name} {how}.",
        [c.quote(found.line)],
        _fix(c, host, temporary),
        specificity=Specificity.KEYWORD if late else Specificity.MESSAGE,
        confidence=confidence,
        deterministic=False,
        confirm=_confirm(host, temporary, late),
        at=found.at,
    )


def _host(texts: list[str]) -> str:
    for text in texts:
        for pattern in _HOSTS:
            if m := pattern.search(text):
                return m[1].strip("[]")
    return ""


def _fix(c: Clues, host: str, temporary: bool) -> str:
    name = host or "the name"
    check = f"`getent hosts {host or 'NAME'}` from where the service runs"
    if temporary:
        first = (
            f"The resolver did not answer: check {check}, the nameservers in /etc/resolv.conf and"
            " that they are reachable"
        )
    else:
        first = (
            f"Check the spelling of {name} in the service's configuration and that it exists"
            f" ({check}); a container or compose service name resolves only on the same network"
            " and only while that container runs"
        )
    return (
        f"{first}; if it names another service, list it in `depends_on` so it is up first."
        f" Then {c.restart_hint()}."
    )


def _confirm(host: str, temporary: bool, late: bool) -> str:
    if late:
        return "the lookup was retried or followed by another failure: check what ended it"
    if temporary:
        return f"`getent hosts {host or 'NAME'}` failing or hanging from the same host/container"
    return ""
