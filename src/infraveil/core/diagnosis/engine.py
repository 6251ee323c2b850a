"""The diagnosis engine: facts in, ranked findings out. Pure: no clock, no files, no processes.

Every rule (one per module under `rules/`) looks at the same clues and may return a finding.
Findings are ranked by the specificity of their signal (DESIGN.md §3: an explicit platform
reason > a check that ended the instance > a specific failure message > the terminal exception
> an exit-code class > a keyword), then by whether their evidence is the decisive line, then by
confidence, then by how late in the output their evidence is (what ended the instance comes
last). With no finding at all, the answer is `unknown`, saying what evidence was missing.
"""

from __future__ import annotations

from dataclasses import replace

from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.facts import Facts
from infraveil.core.diagnosis.finding import Confidence, Diagnosis, Finding
from infraveil.core.diagnosis.rules import RULES, unknown

_CONFIDENCE = {Confidence.HIGH: 2, Confidence.MEDIUM: 1, Confidence.LOW: 0}


def diagnose(facts: Facts) -> Diagnosis:
    """The best explanation of one failure, and the other findings that also apply."""
    clues = Clues(facts)
    found = [f for rule in RULES if (f := rule(clues)) is not None]
    if not found:
        return Diagnosis(unknown.finding_for(clues))
    found.sort(key=lambda f: _rank(clues, f), reverse=True)
    best, *others = found
    status = clues.exit_evidence()
    if status is not None and status not in best.evidence and best.evidence:
        # every answer says how the instance ended, beside what explains it
        best = replace(best, evidence=(*best.evidence, status))
    seen = {best.category}
    rest: list[Finding] = []
    for f in others:
        if f.category not in seen:
            seen.add(f.category)
            rest.append(f)
    return Diagnosis(best, tuple(rest))


def _rank(clues: Clues, f: Finding) -> tuple[int, int, int, int]:
    on_decisive = int(clues.decisive is not None and f.at == clues.decisive_at and f.at >= 0)
    return (f.specificity, on_decisive, _CONFIDENCE[f.confidence], f.at)
