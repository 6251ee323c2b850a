"""Rule: not_executable — the file exists but cannot be executed (126, EACCES, bad interpreter).

A script's `#!` naming an interpreter that is not there (`bad interpreter: No such file or
directory`, often `/bin/bash^M` from Windows line endings) is this category, not
command_not_found: the file is there; what it asks for is not.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Confidence, Evidence, Finding, Specificity, finding

_SHELL = re.compile(
    r"^(?:[^\s:]+: )(?:line \d+: |\d+: )?(?P<path>[^\s:]+): Permission denied\s*$"
    r"|(?<![^\s:])(?P<script>[^\s:]++): (?P<interp>[^:]{1,200}+): bad interpreter"
    r"|^exec (?P<path2>\S+): permission denied\s*$"
    r"|exec: \"(?P<path3>[^\"]+)\": permission denied"
    r"|Failed at step EXEC spawning (?P<path4>\S+): Permission denied"
    r"|cannot execute: (?:Permission denied|required file not found)"
)


def rule(c: Clues) -> Finding | None:
    f = c.facts
    command = f.command[0] if f.command else "its command"
    if f.spawn_error.startswith("permission denied executing"):
        return _finding(c, command, "", [Evidence("exec", f.spawn_error)], Specificity.PLATFORM)
    found = c.search(_SHELL)
    if found is not None:
        path = (
            found["path"]
            or found["path2"]
            or found["path3"]
            or found["path4"]
            or found["script"]
            or command
        )
        return _finding(
            c, path, found["interp"], [c.quote(found.line)], Specificity.MESSAGE, found.at
        )
    if c.exit_code == 126 and c.signal is None:
        status = c.exit_evidence()
        return finding(
            Category.NOT_EXECUTABLE,
            f"{c.who} exited with 126: a command it ran exists but could not be executed.",
            [status] if status is not None else [],
            "Check the execute bit (`ls -l`), the `#!` line and the mount options (noexec) of"
            " what it runs.",
            specificity=Specificity.EXIT_CODE,
            confidence=Confidence.LOW,
            confirm="a `Permission denied` or `bad interpreter` line in its output",
        )
    return None


def _finding(
    c: Clues,
    path: str,
    interpreter: str,
    evidence: list[Evidence],
    specificity: Specificity,
    at: int = -1,
) -> Finding:
    if interpreter:
        if "^M" in interpreter or "\r" in interpreter:
            what = "its `#!` line ends in a carriage return (Windows line endings)"
            fix = f"Convert it to Unix line endings (`sed -i 's/\\r$//' {path}` or dos2unix)"
        else:
            what = f"the interpreter its `#!` line names ({interpreter.strip()}) is not usable"
            fix = "Install that interpreter or fix the `#!` line (e.g. `#!/usr/bin/env python3`)"
        summary = f"{c.who} could not start {path}: {what}."
    else:
        summary = f"{c.who} could not execute {path}: permission denied."
        fix = (
            f"Make it executable (`chmod +x {path}`) for the user the service runs as, and"
            " check that its filesystem is not mounted noexec"
        )
    return finding(
        Category.NOT_EXECUTABLE,
        summary,
        evidence,
        f"{fix}; then {c.restart_hint()}.",
        specificity=specificity,
        at=at,
    )
