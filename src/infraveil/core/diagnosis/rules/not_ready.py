"""Rule: not_ready — a live instance fails its readiness check, or its startup check while it
boots (nothing is restarted for either; a startup past its deadline is slow_start_killed)."""

from __future__ import annotations

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, failed_probes
from infraveil.core.diagnosis.finding import Confidence, Finding, Specificity, finding


def rule(c: Clues) -> Finding | None:
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
