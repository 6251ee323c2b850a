"""Rule: slow_start_killed — a check (or the startup deadline) ended a service still starting.

The trap (DESIGN.md §3): a slow start with no error at all. Nothing in the output is wrong;
the instance was simply ended before it finished booting. The evidence is the kill itself, how
long the instance had run (against its usual boot time), and the last thing it printed.
"""

from __future__ import annotations

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, failed_probes
from infraveil.core.diagnosis.finding import Confidence, Evidence, Finding, Specificity, finding
from infraveil.core.units import format_duration


def rule(c: Clues) -> Finding | None:
    f = c.facts
    evidence: list[Evidence] = []
    if f.kill is not None and f.kill.reason in ("deadline", "liveness") and not f.became_ready:
        if f.kill.source != "agent":
            # the platform's kill (kubelet's event) says only that; its probe failure says why
            evidence.extend(e for _, e in failed_probes(c, "liveness", "startup")[-1:])
        evidence.append(Evidence(f.kill.source, f.kill.detail))
    else:
        kills = [e for e in f.events if "liveness probe" in e.message and "restart" in e.message]
        startup = failed_probes(c, "liveness", "startup")
        if not kills or not startup or f.became_ready:
            return None
        evidence.extend([startup[-1][1], Evidence(kills[-1].source, kills[-1].message)])
    if f.log:
        evidence.append(c.quote(f.log[-1]))
    ran = f.run_seconds
    budget = max(2 * ran, 30.0) if ran is not None else 120.0
    summary = f"{c.who} was still starting when it was ended"
    if ran is not None:
        summary += f" after {format_duration(ran)}"
    if f.typical_boot is not None:
        summary += f" (its boots usually take {format_duration(f.typical_boot)})"
    error = c.decisive is not None and c.decisive.runtime != "generic"
    summary += (
        f"; its last error was: {c.decisive.line.text.strip()}"
        if error and c.decisive is not None
        else ": nothing in its output says it failed"
    )
    return finding(
        Category.SLOW_START_KILLED,
        summary + ".",
        evidence,
        f'Give it time to start: `startup_deadline = "{budget:.0f}s"` in its entry in'
        " infraveil.toml (the agent otherwise learns the deadline from its successful boots),"
        " or a `notify` check so it says itself when it is up; then find why the boot is slow"
        f" if it should not be. Then {c.restart_hint()}.",
        specificity=Specificity.PROBE,
        confidence=Confidence.MEDIUM if error else Confidence.HIGH,
        confirm="a boot that completes when given longer (`infraveil logs --previous` shows"
        " how far it got)",
    )
