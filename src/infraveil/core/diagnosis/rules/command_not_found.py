"""Rule: command_not_found — the program to run does not exist.

Recognised from the agent's own exec failure (ENOENT), a shell's `not found` (exit 127), a
container runtime's `executable file not found in $PATH` (containerd reports it as exit 128 with
`StartError`: a trap, 128 is not a signal), and systemd's `status=203/EXEC`. Exit 127 alone is
only a hint.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Confidence, Evidence, Finding, Specificity, finding

_NOT_FOUND = re.compile(
    r"exec: \\?\"(?P<c1>[^\"\\]*)\\?\": (?:executable file not found in \$PATH"
    r"|stat \S+: no such file or directory)"
    r"|^exec (?P<c2>\S+): no such file or directory\s*$"
    r"|(?:^|\| )(?:[^\s:|]+: )(?:line \d+: |\d+: )?(?:exec: )?(?P<c3>[^\s:]+):"
    r" (?:command )?not found\s*$"
    r"|^(?:/usr/bin/)?env: ['‘]?(?P<c4>[^'’:]+)['’]?: No such file or directory\s*$"
    r"|Failed (?:at step EXEC spawning|to execute) (?P<c5>\S+?):? No such file or directory"
    r"|status=203/EXEC"
    r"|no such file or directory: unknown|\bno command specified"
)


def rule(c: Clues) -> Finding | None:
    f = c.facts
    command = f.command[0] if f.command else ""
    if f.spawn_error.startswith("command not found"):
        return _finding(c, command, [Evidence("exec", f.spawn_error)], Specificity.PLATFORM, -1)
    if (runtime := _NOT_FOUND.search(f.spawn_error)) is not None:
        # a container runtime's exec failure: containerd's StartError (exit 128), Docker's
        # ContainerCannotRun, in the runtime's words
        name = next((v for v in runtime.groupdict().values() if v), command)
        evidence = [Evidence(f.spawn_source, f.spawn_error)]
        return _finding(c, name, evidence, Specificity.PLATFORM, -1)
    found = c.search(_NOT_FOUND)
    if found is not None:
        name = next((v for v in found.match.groupdict().values() if v), command)
        return _finding(c, name, [c.quote(found.line)], Specificity.MESSAGE, found.at)
    if c.exit_code == 127 and c.signal is None:
        status = c.exit_evidence()
        return finding(
            Category.COMMAND_NOT_FOUND,
            f"{c.who} exited with 127, which shells use for a command that was not found.",
            [status] if status is not None else [],
            "Check that every program its command (or its entrypoint script) runs is installed"
            " and on the PATH it gets.",
            specificity=Specificity.EXIT_CODE,
            confidence=Confidence.LOW,
            confirm="a `not found` line in its output, or `infraveil debug` then `command -v NAME`",
        )
    return None


def _finding(
    c: Clues, name: str, evidence: list[Evidence], specificity: Specificity, at: int
) -> Finding:
    name = name or "its command"
    where = " (the command in infraveil.toml)" if c.facts.service else ""
    return finding(
        Category.COMMAND_NOT_FOUND,
        f"{c.who} could not start: {name} was not found.",
        evidence,
        f"Install {name} or fix its path{where}; a bare name is looked up in the service's"
        f" PATH, so give the absolute path when in doubt (`command -v {name}`). Then"
        f" {c.restart_hint()}.",
        specificity=specificity,
        at=at,
    )
