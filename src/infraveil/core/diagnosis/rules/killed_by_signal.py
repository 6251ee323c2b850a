"""Rule: killed_by_signal — a fatal signal other than SIGSEGV (SIGABRT, SIGBUS, an outside
SIGKILL or SIGTERM, ...).

SIGABRT means the program aborted itself (a failed assertion, `terminate called after throwing`,
glibc detecting heap corruption): the line before the abort says why and is quoted. A SIGKILL
or SIGTERM nobody in the agent sent came from outside (a person, a script, the OOM killer when
its flag was not seen): that is transient from the service's point of view.
"""

from __future__ import annotations

import re
import signal

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Confidence, Evidence, Finding, Specificity, finding

_ABORT = re.compile(
    r"terminate called after throwing|Assertion [`'].*' failed|double free or corruption"
    r"|malloc\(\): |free\(\): invalid|stack smashing detected|Aborted|SIGABRT|Bus error"
    r"|Illegal instruction|runtime: program exceeds|fatal error: "
)
_SELF = {signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGTRAP}
_OUTSIDE = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT}


def rule(c: Clues) -> Finding | None:
    number, from_status = c.signal, c.facts.signal is not None
    if number is None and c.exit_code is not None and 128 < c.exit_code < 160:
        number, from_status = c.exit_code - 128, False
    if number is None or number == signal.SIGSEGV:
        return None
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    evidence: list[Evidence] = []
    if (status := c.exit_evidence()) is not None:
        evidence.append(status)
    why = c.search(_ABORT) if number in _SELF else None
    if why is not None:
        evidence.append(c.quote(why.line))
    if number in _SELF:
        summary = f"{c.who} aborted itself with {name}"
        summary += f": {why.line.text.strip()}" if why is not None else ""
        fix = (
            "The quoted line is the program's own reason; get the stack with `coredumpctl gdb`"
            " then `bt` if it is not enough. A SIGILL after moving hosts means a binary built"
            " for newer CPU instructions."
        )
        deterministic = True
    else:
        summary = f"{c.who} was killed by {name}, sent from outside the service"
        fix = (
            "Find who sent it: a person, a deploy script, a host watchdog, or the OOM killer"
            " (`journalctl -k | grep -i -e oom -e killed`)."
        )
        deterministic = False
    return finding(
        Category.KILLED_BY_SIGNAL,
        summary + ".",
        evidence,
        fix,
        specificity=Specificity.MESSAGE
        if from_status or why is not None
        else Specificity.EXIT_CODE,
        confidence=Confidence.HIGH if why is not None or from_status else Confidence.LOW,
        deterministic=deterministic,
        confirm=""
        if from_status or c.exit_code is None
        else f"exit code {c.exit_code} is how a shell reports {name}",
        at=why.at if why is not None else -1,
    )
