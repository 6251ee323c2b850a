"""Rule: not_ready — a live instance fails its readiness check, or its startup check while it
boots (nothing is restarted for either; a startup past its deadline is slow_start_killed).

For a pod, the program's own access log may show it too: the kubelet's readiness requests
(`kube-probe/1.x`) answered with a server error (503): the app says it is not ready."""

from __future__ import annotations

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, failed_probes, probe_requests
from infraveil.core.diagnosis.finding import Confidence, Finding, Specificity, finding


def rule(c: Clues) -> Finding | None:
    if c.facts.kill is None and (found := _from_access_log(c)) is not None:
        return found
    if not c.facts.live or c.facts.kill is not None:
        return None
    failing = failed_probes(c, "readiness", "startup")
    if not failing:
        return None
    probe, evidence = failing[-1]
    if c.facts.became_ready:
        summary = f"{c.who} is running but not ready: its readiness check fails ({probe.detail})."
    else:
        summary = f"{c.who} is still starting: its {probe.role} check fails ({probe.detail})."
    return finding(
        Category.NOT_READY,
        summary,
        [evidence],
        "Nothing is restarted for this. Find what the readiness endpoint waits for (usually a"
        " dependency or a warm-up) in its output (`infraveil logs "
        f"{c.facts.service or 'SVC'}`); if the check is wrong, fix `ready` in infraveil.toml.",
        specificity=Specificity.PROBE,
        confidence=Confidence.MEDIUM,
        confirm="the readiness endpoint's own answer (`curl -v` on it) naming what it waits for",
    )


def _from_access_log(c: Clues) -> Finding | None:
    request = next(
        (r for r in probe_requests(c) if r.status >= 500 and r.role == "readiness"), None
    )
    if request is None:
        return None
    times = f" ({request.count} requests)" if request.count > 1 else ""
    return finding(
        Category.NOT_READY,
        f"{c.who} is not ready: it answers the kubelet's readiness requests to {request.path}"
        f" with {request.status}{times}, so Kubernetes sends it no traffic.",
        [c.quote(request.found.line)],
        f"Nothing is restarted for this. Find what {request.path} waits for (a dependency, a"
        " migration, a warm-up) in the lines around it and in the app's health output (`kubectl"
        f" exec` then `curl -v localhost:PORT{request.path}`), and fix that.",
        specificity=Specificity.EXCEPTION,
        confidence=Confidence.MEDIUM,
        confirm=f"the answer of {request.path} (`curl -v`) naming the check that fails",
        at=request.found.at,
    )
