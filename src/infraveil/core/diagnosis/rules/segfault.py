"""Rule: segfault — the process died of SIGSEGV (139 through a shell).

The signal from the exit status is a fact; exit code 139 (a shell or container runtime
reporting 128 + 11) or a `Segmentation fault` line is evidence of the same. Why it segfaulted
is in the lines before (a native library, a sanitizer report, a core dump), quoted when there.
"""

from __future__ import annotations

import re
import signal

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Evidence, Finding, Specificity, finding

_SEGV = re.compile(
    r"Segmentation fault|SIGSEGV|segfault at [0-9a-f]+|signal 11\b"
    r"|AddressSanitizer: (?:SEGV|heap-use-after-free|stack-buffer-overflow|heap-buffer-overflow)"
)


def rule(c: Clues) -> Finding | None:
    f = c.facts
    # a Go panic's "[signal SIGSEGV: segmentation violation ...]" is a runtime panic the
    # program could have recovered from, not a crash of native code: startup_exception reads it
    go = c.decisive is not None and c.decisive.runtime == "go"
    line = None if go else c.search(_SEGV)
    evidence: list[Evidence] = []
    if c.signal == signal.SIGSEGV or line is not None:
        specificity = Specificity.MESSAGE
    elif c.exit_code == 128 + signal.SIGSEGV:
        specificity = Specificity.EXIT_CODE
    else:
        return None
    if (status := c.exit_evidence()) is not None:
        evidence.append(status)
    if line is not None:
        evidence.append(c.quote(line.line))
    dumped = " and dumped core" if f.core_dumped else ""
    return finding(
        Category.SEGFAULT,
        f"{c.who} crashed with a segmentation fault{dumped}: native code read or wrote memory"
        " it does not own.",
        evidence,
        "Get the stack of the crash: `coredumpctl gdb` (or gdb on the core file) then `bt`;"
        " with Python, run it with PYTHONFAULTHANDLER=1 to print the Python stack. A recent"
        " upgrade of a native library or extension is the usual suspect: pin back to the last"
        " version that worked.",
        specificity=specificity,
        at=line.at if line is not None else -1,
    )
