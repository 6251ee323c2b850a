"""Rule: exited_zero (not written yet)."""

from __future__ import annotations

from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Finding


def rule(c: Clues) -> Finding | None:
    return None
