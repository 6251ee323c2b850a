"""Rule: exited_zero — a long-running service exited 0 (it daemonized, or had nothing to do).

A supervisor needs its service in the foreground: a program that forks into the background and
exits 0 looks finished. The trap: a check that killed the instance can also end with 0 (it
handled SIGTERM cleanly), so this rule stays quiet when the agent ended the instance.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Confidence, Evidence, Finding, Specificity, finding

_DAEMON = re.compile(
    r"daemoniz|daemon(?:ise|ize)?d?\b|in the background|backgrounding|forking|detach"
    r"|Starting \S+ (?:daemon|server)\b|started? (?:as|in) (?:a )?daemon",
    re.IGNORECASE,
)
_FOREGROUND_FLAGS = (
    "nginx: `daemon off;` in its config (or `-g 'daemon off;'`); redis: `--daemonize no`;"
    " PostgreSQL: run `postgres -D DIR`, not `pg_ctl start`; Apache: `-DFOREGROUND`;"
    " most others: a `--foreground`/`-f`/`--no-daemon` flag"
)


def rule(c: Clues) -> Finding | None:
    f = c.facts
    if c.exit_code != 0 or c.signal is not None or not f.long_running or f.kill is not None:
        return None
    status = c.exit_evidence()
    evidence: list[Evidence] = [status] if status is not None else []
    daemon = c.search(_DAEMON, decisive_first=False)
    if daemon is not None:
        evidence.append(c.quote(daemon.line))
    elif f.log:
        evidence.append(c.quote(f.log[-1]))
    short = f.run_seconds is not None and f.run_seconds < 10
    summary = f"{c.who} exited with code 0, but a service must keep running in the foreground"
    if daemon is not None:
        summary += ": it looks like it started itself in the background."
    elif not f.log:
        summary += ", and it printed nothing."
    else:
        summary += "."
    return finding(
        Category.EXITED_ZERO,
        summary,
        evidence,
        f"Run it in the foreground ({_FOREGROUND_FLAGS}); if it is a one-off job, it does"
        " not belong in a long-running service.",
        specificity=Specificity.MESSAGE,
        confidence=Confidence.HIGH if daemon is not None or short else Confidence.MEDIUM,
        confirm="`ps -ef` showing it still running without a supervisor, or its own docs on a"
        " foreground flag",
        at=daemon.at if daemon is not None else -1,
    )
