"""Rule: wrong_arch — exec format error: a binary for another CPU, or not a program at all."""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Evidence, Finding, Specificity, finding

_FORMAT = re.compile(
    r"exec format error|Exec format error|cannot execute binary file"
    r"|ENOEXEC|wrong ELF class|ELF[^\n]*: (?:wrong|unsupported) (?:architecture|machine)"
)


def rule(c: Clues) -> Finding | None:
    f = c.facts
    if "exec format error" in f.spawn_error:
        evidence = [Evidence(f.spawn_source, f.spawn_error)]
        at, specificity = -1, Specificity.PLATFORM
    else:
        found = c.search(_FORMAT)
        if found is None:
            return None
        evidence, at, specificity = [c.quote(found.line)], found.at, Specificity.MESSAGE
    return finding(
        Category.WRONG_ARCH,
        f"{c.who} could not start: the kernel cannot execute the file (built for another CPU"
        " architecture, or a script without a `#!` line).",
        evidence,
        "Compare `file PROGRAM` with `uname -m`: rebuild or pull the build for this"
        " architecture (e.g. linux/amd64 vs linux/arm64), or add a `#!` line to the script;"
        f" then {c.restart_hint()}.",
        specificity=specificity,
        at=at,
    )
