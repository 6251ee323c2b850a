"""Rule: a failed preflight check — the service was not started, and this is why.

Preflight (runtime/preflight.py) checks what can be known before exec: the command, its `#!`
interpreter, cwd, env_file, config files named in the command, the user, the port. Its problems
carry their own category and fix; this rule only turns the first into a finding.
"""

from __future__ import annotations

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Evidence, Finding, Specificity, finding


def rule(c: Clues) -> Finding | None:
    if not c.facts.preflight:
        return None
    first, *rest = c.facts.preflight
    evidence = [Evidence(f"preflight ({p.check})", p.detail) for p in (first, *rest)]
    return finding(
        Category(first.category),
        f"{c.who} was not started: {first.detail}.",
        evidence[:3],
        first.fix,
        specificity=Specificity.PLATFORM,
    )
