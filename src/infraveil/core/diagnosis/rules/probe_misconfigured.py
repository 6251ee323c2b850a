"""Rule: probe_misconfigured — the check itself is wrong, not the service.

The evidence: the check gets an answer that only a wrong check gets (HTTP 404/401/403/405: the
server is up and says the path does not exist or is not allowed), or it knocks on a port where
nothing listens while the program's own output says it listens on another one. The answer may
be the kubelet's (a probe event) or the program's own access log (a `kube-probe/1.x` request
answered 404): the same result seen from the other side.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, failed_probes, listening_port, probe_requests
from infraveil.core.diagnosis.facts import ProbeFact
from infraveil.core.diagnosis.finding import Finding, Specificity, finding

_STATUS = re.compile(r"\b(?:HTTP |statuscode: |status code )(?P<code>40[01345])\b")
_PORT = re.compile(r":(?P<port>\d{2,5})\b(?!.*:\d)")
_MEANING = {
    "400": "rejects the request",
    "401": "requires authentication",
    "403": "forbids it",
    "404": "does not have that path",
    "405": "does not allow that method",
}


def _restarts_first(found: tuple[ProbeFact, object]) -> int:
    return {"liveness": 0, "startup": 1}.get(found[0].role, 2)


def rule(c: Clues) -> Finding | None:
    # the probe that restarts the container first: its failure is the one that matters most
    failed = sorted(failed_probes(c, "startup", "liveness", "readiness"), key=_restarts_first)
    for probe, evidence in failed:
        if (m := _STATUS.search(probe.detail)) is not None:
            code = m["code"]
            return finding(
                Category.PROBE_MISCONFIGURED,
                f"The {probe.role} check of {c.who} is wrong: the server answers, and {code}"
                f" means it {_MEANING[code]}.",
                [evidence],
                "Point the check at a path the server serves without authentication (e.g. the"
                " app's health endpoint) in the `health`/`ready` setting of infraveil.toml,"
                f" or make the app serve it; then {c.restart_hint()}.",
                specificity=Specificity.PROBE,
            )
    for request in probe_requests(c):
        code = str(request.status)
        if code not in _MEANING:
            continue
        role = request.role or "Kubernetes"
        times = f" ({request.count} requests)" if request.count > 1 else ""
        return finding(
            Category.PROBE_MISCONFIGURED,
            f"The {role} probe of {c.who} is wrong: its own access log shows the kubelet's"
            f" requests to {request.path} answered {code}{times}, which means it {_MEANING[code]}.",
            [c.quote(request.found.line)],
            f"Point the probe's `httpGet.path` (and port) at an endpoint the server serves"
            f" without authentication (its health endpoint: check the app's docs for the path"
            f" under its configured prefix), or make the app serve {request.path}; then"
            f" {c.restart_hint()}.",
            specificity=Specificity.MESSAGE,
            at=request.found.at,
        )
    said = listening_port(c)
    if said is None:
        return None
    listens, where = said
    for probe, evidence in failed:
        m = _PORT.search(probe.target or probe.detail)
        if not probe.refused or m is None or int(m["port"]) == listens:
            continue
        return finding(
            Category.PROBE_MISCONFIGURED,
            f"The {probe.role} check of {c.who} knocks on port {m['port']}, but the program"
            f" says it listens on {listens}.",
            [evidence, c.quote(where.line)],
            f"Make them agree: set the check's `port` to {listens}, or start the program on"
            f" {m['port']}; then {c.restart_hint()}.",
            specificity=Specificity.PROBE,
            at=where.at,
        )
    return None
