"""What the engine says: findings, each with its evidence quoted, its fix and its weight."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from infraveil.core.diagnosis.categories import TRANSIENT, Category
from infraveil.core.signature import normalise


class Confidence(StrEnum):
    HIGH = "high"
    """The evidence names the cause outright."""
    MEDIUM = "medium"
    """The evidence points at the cause; the finding says what would confirm it."""
    LOW = "low"
    """A hint only (an exit-code class, a keyword)."""


class Specificity(IntEnum):
    """How specific a finding's signal is; the engine ranks findings by it (DESIGN.md §3)."""

    KEYWORD = 1
    """A keyword somewhere in the output."""
    EXIT_CODE = 2
    """An exit code or signal class: a hint, never a verdict alone."""
    EXCEPTION = 3
    """The terminal exception or error line, with no more specific reading of it."""
    MESSAGE = 4
    """A specific failure message (address in use, variable not set, config error at a line)."""
    PROBE = 5
    """The agent ended the instance because a check failed."""
    PLATFORM = 6
    """An explicit reason from the platform: OOM kill, exec failure, failed preflight."""


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence, quoted verbatim, with where it came from."""

    source: str  # "logs/api/3.log line 42", "exit status", "liveness check", "preflight"
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "text": self.text}


@dataclass(frozen=True)
class Finding:
    """One explanation of a failure."""

    category: Category
    summary: str  # one sentence: what happened
    evidence: tuple[Evidence, ...]
    fix: str  # something a person can do now
    confidence: Confidence
    specificity: Specificity
    deterministic: bool = field(default=True)
    confirm: str = ""  # what would confirm it, when confidence is not high
    at: int = -1  # index of the evidence in the log tail (later wins ties); -1: not the log

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category.value,
            "summary": self.summary,
            "evidence": [e.as_dict() for e in self.evidence],
            "fix": self.fix,
            "confidence": self.confidence.value,
            "deterministic": self.deterministic,
            "confirm": self.confirm or None,
        }


def finding(
    category: Category,
    summary: str,
    evidence: list[Evidence] | tuple[Evidence, ...],
    fix: str,
    *,
    specificity: Specificity,
    confidence: Confidence = Confidence.HIGH,
    deterministic: bool | None = None,
    confirm: str = "",
    at: int = -1,
) -> Finding:
    """A finding whose `deterministic` defaults to what its category usually is."""
    if deterministic is None:
        deterministic = category not in TRANSIENT
    if summary.startswith(
        ("the program", "the container", "the init container", "container ", "init container ")
    ):
        summary = summary[0].upper() + summary[1:]
    return Finding(
        category,
        summary,
        tuple(evidence),
        fix,
        confidence,
        specificity,
        deterministic,
        confirm,
        at,
    )


@dataclass(frozen=True)
class Diagnosis:
    """The engine's answer: the best finding first, then the others it also found."""

    finding: Finding
    others: tuple[Finding, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.finding.as_dict(),
            "others": [
                {"category": f.category.value, "summary": f.summary, "confidence": f.confidence}
                for f in self.others
            ],
        }

    @property
    def verdict(self) -> Verdict:
        """What the lifecycle needs of it: which crash this is, and whether retrying helps."""
        f = self.finding
        first = f.evidence[0].text if f.evidence else ""
        return Verdict(
            f.category.value, f.deterministic, f"{f.category.value}|{normalise(first)}", f.summary
        )


@dataclass(frozen=True)
class Verdict:
    """A diagnosis as the lifecycle uses it (core/lifecycle.py): a deterministic failure halts
    after the same signature three times; a transient one backs off and keeps trying."""

    category: str
    deterministic: bool
    signature: str
    """The category and its first evidence with run-to-run noise taken out."""
    summary: str

    @property
    def known(self) -> bool:
        return self.category != Category.UNKNOWN
