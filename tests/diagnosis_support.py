"""Helpers for the diagnosis rule tests: facts from a pasted log, and a rule's verdict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of
from infraveil.core.diagnosis.finding import Diagnosis, Finding


def facts(log: str = "", **kw: Any) -> Facts:
    """Facts with `log` as the instance's output (named app.log in evidence)."""
    return Facts(log=lines_of(log), log_source="app.log", **kw)


def apply(rule: Callable[[Clues], Finding | None], log: str = "", **kw: Any) -> Finding | None:
    return rule(Clues(facts(log, **kw)))


def engine(log: str = "", **kw: Any) -> Diagnosis:
    return diagnose(facts(log, **kw))


def quoted(f: Finding) -> list[str]:
    """The evidence texts of a finding."""
    return [e.text for e in f.evidence]
