"""Rule: unresponsive — a running service stopped answering its liveness check and was ended.

The check did its job: the instance had been up (it passed its checks), then hung, deadlocked
or drowned in load. What hung it is not in a failed check; a thread dump taken before the kill
is what tells.
"""

from __future__ import annotations

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, failed_probes
from infraveil.core.diagnosis.finding import Confidence, Evidence, Finding, Specificity, finding
from infraveil.core.units import format_duration


def rule(c: Clues) -> Finding | None:
    f = c.facts
    if f.kill is None or f.kill.reason != "liveness" or not f.became_ready:
        return None
    evidence = [Evidence(f.kill.source, f.kill.detail)]
    if f.kill.source != "agent":  # the platform's kill says only that; its probe failure says why
        evidence[:0] = [e for _, e in failed_probes(c, "liveness")[-1:]]
    if f.log:
        evidence.append(c.quote(f.log[-1]))
    ran = f" after {format_duration(f.run_seconds)}" if f.run_seconds is not None else ""
    return finding(
        Category.UNRESPONSIVE,
        f"{c.who} stopped answering its liveness check{ran} and was restarted.",
        evidence,
        "Next time it hangs, take a thread dump before the restart (`py-spy dump --pid PID`,"
        " `jstack PID`, `kill -QUIT PID` for Go) and look for a deadlock or a call without a"
        " timeout; check the load it had (`infraveil describe`).",
        specificity=Specificity.PROBE,
        confidence=Confidence.MEDIUM,
        confirm="a thread dump showing where it was stuck",
    )
