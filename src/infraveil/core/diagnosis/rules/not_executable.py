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
    # a shell's own words, with a person's words after them in a paste ("... Permission denied
    # error in my init container"): a shell names what it could not run first
    r"|^(?:/\S*/)?(?:sh|bash|dash|ash|zsh|ksh|busybox): (?:line \d+: |\d+: )?"
    r"(?P<path5>/[^\s:]+): Permission denied\b"
    r"|(?<![^\s:])(?P<script>[^\s:]++): (?P<interp>[^:]{1,200}+): bad interpreter"
    r"|^exec (?P<path2>\S+): permission denied\s*$"
    r"|exec: \\?\"(?P<path3>[^\"\\]+)\\?\": permission denied"
    r"|Failed at step EXEC spawning (?P<path4>\S+): Permission denied"
    r"|cannot execute: (?:Permission denied|required file not found)"
    # runc: the file is there (it was found at create), but the kernel cannot run it: its
    # `#!` interpreter or its ELF loader is missing (a CRLF `#!/bin/sh\r`, a glibc binary on
    # musl), or it is not executable
    r"|exec user process caused:? \\?\"?(?P<interp2>no such file or directory"
    r"|permission denied)"
)


def rule(c: Clues) -> Finding | None:
    f = c.facts
    command = f.command[0] if f.command else "its command"
    if f.spawn_error.startswith("permission denied executing"):
        return _finding(c, command, "", [Evidence("exec", f.spawn_error)], Specificity.PLATFORM)
    if (runtime := _SHELL.search(f.spawn_error)) is not None:
        # a container runtime's exec failure (StartError, ContainerCannotRun), in its words
        path = runtime["path"] or runtime["path2"] or runtime["path3"] or runtime["path5"]
        path = path or runtime["script"]
        evidence = [Evidence(f.spawn_source, f.spawn_error)]
        return _finding(c, path or command, _interp(runtime), evidence, Specificity.PLATFORM)
    found = c.search(_SHELL)
    if found is not None:
        path = (
            found["path"]
            or found["path2"]
            or found["path3"]
            or found["path4"]
            or found["path5"]
            or found["script"]
            or command
        )
        return _finding(
            c, path, _interp(found.match), [c.quote(found.line)], Specificity.MESSAGE, found.at
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


_LOADER = "\0loader"
"""The interpreter when runc says only `no such file or directory` for a file it found."""


def _interp(m: re.Match[str]) -> str:
    if (m["interp2"] or "").startswith("no such"):
        return _LOADER
    return m["interp"] or ""


def _finding(
    c: Clues,
    path: str,
    interpreter: str,
    evidence: list[Evidence],
    specificity: Specificity,
    at: int = -1,
) -> Finding:
    if interpreter == _LOADER:
        file = path if path != "its command" else "ENTRYPOINT"
        summary = (
            f"{c.who} could not start {path}: the `#!` interpreter it names, or the dynamic"
            " loader it was built for, is not in the image."
        )
        fix = (
            f"Check its first line (`head -1 {file} | od -c`: a `\\r` at its end means Windows"
            " line endings, convert it with dos2unix) and that the interpreter exists in the"
            " image (`#!/bin/bash` on Alpine has no bash); a binary built against glibc needs a"
            " glibc base image, or build it static (Go: CGO_ENABLED=0)"
        )
    elif interpreter:
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
