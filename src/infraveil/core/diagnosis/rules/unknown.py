"""Rule of last resort: `unknown`, saying which evidence is missing (never a guess)."""

from __future__ import annotations

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Confidence, Evidence, Finding, Specificity, finding


def finding_for(c: Clues) -> Finding:
    """What the engine says when no rule found anything: what it saw and what it lacked."""
    f = c.facts
    evidence: list[Evidence] = []
    kube = f.kube
    if kube is not None and kube.waiting_reason and kube.waiting_reason != "CrashLoopBackOff":
        # what Kubernetes says it waits on, though no rule can say why from it alone
        path = f"{kube.status_path}.state.waiting"
        evidence.append(Evidence(f"{path}.reason", kube.waiting_reason))
        if kube.waiting_message:
            evidence.append(Evidence(f"{path}.message", kube.waiting_message))
    if (status := c.exit_evidence()) is not None:
        evidence.append(status)
    missing: list[str] = []
    if f.log_problem:
        missing.append(f.log_problem)
    elif not f.log:
        missing.append("no output at all" if f.log_source else "no log")
    elif c.decisive is None:
        missing.append(f"no error line in the last {len(f.log)} lines of output")
        last = next((line for line in reversed(f.log) if line.text.strip()), None)
        if last is not None:
            evidence.append(c.quote(last))  # the last thing it said, for a person to judge
    else:
        evidence.extend(c.quote_decisive())
    if c.exit_code is None and c.signal is None and not f.live:
        missing.append("no exit code or signal" if not f.exit_unknown else "exit status unknown")
    lacking = "; ".join(missing) or "no rule recognises this evidence"
    what = f"{c.who} failed and the evidence does not say why ({lacking})"
    fix = (
        "Run it by hand in its exact environment"
        + (f" (`infraveil debug {f.service}`)" if f.service else "")
        + " and watch where it stops; raise its log level if it has one"
    )
    if not f.log and f.service:
        fix += "; a program that prints nothing before exiting often writes to a file of its own"
    return finding(
        Category.UNKNOWN,
        what + ".",
        evidence,
        fix + ".",
        specificity=Specificity.KEYWORD,
        confidence=Confidence.LOW,
        confirm="an error line in the output, an exit code or a signal would settle it",
    )
