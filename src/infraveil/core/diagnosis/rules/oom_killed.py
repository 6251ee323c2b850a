"""Rule: oom_killed — the kernel (cgroup or host) or the agent's watchdog ended it for memory.

Traps (DESIGN.md §3): an OOM kill with exit 255 (a wrapper turned SIGKILL into its own exit
code) and an OOM kill with clean logs. The OOM flag comes from the cgroup or the kernel log, not
from the exit code, so neither misleads it; exit 137 with "Killed" and no flag is only a hint.
"""

from __future__ import annotations

import re
import signal

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Confidence, Evidence, Finding, Specificity, finding
from infraveil.core.units import format_bytes

# the kernel's own lines, most telling first (oom_reaper only says it reaped the victim)
_KERNEL = (
    re.compile(r"Memory cgroup out of memory: Kill|Out of memory: Kill(?:ed)? process"),
    re.compile(r"oom-kill:|invoked oom-killer|\"OOMKilled\":\s*true|Reason:\s+OOMKilled"),
    re.compile(r"oom_reaper: reaped process"),
)


def rule(c: Clues) -> Finding | None:
    f = c.facts
    memory = _memory(f.memory_limit, f.peak_memory)
    fix = _fix(c, f.memory_limit)
    if f.oom_killed or (f.kill is not None and f.kill.reason == "memory"):
        evidence: list[Evidence] = []
        if f.kill is not None and f.kill.reason == "memory":
            evidence.append(Evidence("agent (memory watchdog)", f.kill.detail))
        elif f.kube is None or not f.kube.terminated_reason:
            evidence.append(Evidence("kernel", "OOM kill of this instance" + _paren(memory)))
        # (Kubernetes: the exit status below is quoted with its `OOMKilled` reason)
        if (status := c.exit_evidence()) is not None:
            evidence.append(status)
        elif f.kube is not None and f.kube.terminated_reason:  # (no exit code shown)
            path = f"{f.kube.terminated_path}.reason"
            evidence.append(Evidence(path, f.kube.terminated_reason))
        if c.decisive is not None:
            evidence.extend(c.quote_decisive()[:1])
        return finding(
            Category.OOM_KILLED,
            f"{c.who} was killed for using too much memory{_paren(memory)}.",
            evidence,
            fix,
            specificity=Specificity.PLATFORM,
            # at boot it will do it again; after a long run it may be a leak or a load peak
            deterministic=not f.became_ready,
        )
    kernel = next(
        (found for p in _KERNEL if (found := c.search(p, decisive_first=False)) is not None), None
    )
    if kernel is not None:
        return finding(
            Category.OOM_KILLED,
            f"{c.who} was killed by the kernel's OOM killer.",
            [c.quote(kernel.line)],
            fix,
            specificity=Specificity.MESSAGE,
            at=kernel.at,
            deterministic=False,
        )
    if c.signal == signal.SIGKILL or c.exit_code == 128 + signal.SIGKILL:
        evidence = [e for e in (c.exit_evidence(),) if e is not None]
        if (shell := c.search(_SHELL_KILLED, decisive_first=False)) is not None:
            evidence.append(c.quote(shell.line))
        return finding(
            Category.OOM_KILLED,
            f"{c.who} was killed with SIGKILL, which is most often the OOM killer.",
            evidence,
            fix,
            specificity=Specificity.EXIT_CODE,
            confidence=Confidence.LOW,
            deterministic=False,
            confirm="`dmesg | grep -i oom` or `journalctl -k | grep -i oom` naming its pid",
        )
    return None


_SHELL_KILLED = re.compile(r"^(?:\S*sh: (?:line )?\d+: (?:\d+ )?)?Killed\b")


def _memory(limit: int | None, peak: int | None) -> str:
    parts = []
    if limit is not None:
        parts.append(f"limit {format_bytes(limit)}")
    if peak is not None:
        parts.append(f"peak {format_bytes(peak)}")
    return ", ".join(parts)


def _paren(text: str) -> str:
    return f" ({text})" if text else ""


def _fix(c: Clues, limit: int | None) -> str:
    if limit is not None:
        suggested = format_bytes(limit * 2)
        where = (
            f"the `memory` of {c.facts.service} in infraveil.toml"
            if c.facts.service
            else ("its memory limit")
        )
        return (
            f"Raise {where} (e.g. to {suggested}) if that much is legitimate, or find what"
            " grows: compare the peak with a normal run, and look for a leak or an unbounded"
            " cache or batch."
        )
    return (
        "The host ran out of memory: see which process grew (`dmesg | grep -i oom` lists the"
        " victims and their RSS); give the service a `memory` limit so it alone is killed."
    )
