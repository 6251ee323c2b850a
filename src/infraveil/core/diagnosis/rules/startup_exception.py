"""Rule: startup_exception — the terminal exception or panic, with no more specific reading.

Any runtime's decisive line (a Python traceback's last line, Java's innermost `Caused by:`, a
Go `panic:`, Node's `Error:`, ...) says the program itself gave up. More specific rules read the
same line (a missing variable, an address in use) and outrank this one; this is the fallback that
still quotes the decisive line. A generic ERROR line (no runtime failure shape) counts only as a
keyword.
"""

from __future__ import annotations

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Confidence, Finding, Specificity, finding
from infraveil.core.units import format_duration

_ECHO_ONLY = {"native", "shell"}  # how it died, not why: the signal rules read these


def rule(c: Clues) -> Finding | None:
    decisive = c.decisive
    if decisive is None or decisive.runtime in _ECHO_ONLY:
        return None
    f = c.facts
    generic = decisive.runtime == "generic"
    when = "while starting" if not f.became_ready else "while running"
    if f.run_seconds is not None:
        when += f" ({format_duration(f.run_seconds)} after start)"
    what = "logged an error and exited" if generic else "stopped on an unhandled error"
    line = decisive.line.text.strip()
    return finding(
        Category.STARTUP_EXCEPTION,
        f"{c.who} {what} {when}: {_clip(line)}",
        c.quote_decisive(),
        "Read the quoted error and the lines above it in"
        f" {_logs_command(c)}; it names what the program could not do. Fix that in"
        f" the code or its inputs, then {c.restart_hint()}.",
        specificity=Specificity.KEYWORD if generic else Specificity.EXCEPTION,
        confidence=Confidence.MEDIUM if not generic else Confidence.LOW,
        confirm="the same line at the end of every failed instance's log"
        " (`infraveil logs --previous`) means it is the cause, not a symptom",
        at=c.decisive_at,
    )


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _logs_command(c: Clues) -> str:
    if c.facts.service:
        return f"`infraveil logs {c.facts.service} --previous`"
    return c.facts.log_source or "the log"
