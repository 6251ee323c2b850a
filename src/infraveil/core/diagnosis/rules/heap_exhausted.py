"""Rule: heap_exhausted — the runtime's own heap ran out (JVM, Node, Go, Python MemoryError).

Not `oom_killed`: nobody killed the process; the runtime hit its own ceiling (`-Xmx`,
`--max-old-space-size`, GOMEMLIMIT) and gave up. When the kernel killed it too, the platform
finding ranks higher and this one stays as a second opinion.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Finding, Specificity, finding

_HEAP = re.compile(
    r"java\.lang\.OutOfMemoryError(?:: (?P<java>[^\r\n]*))?"
    r"|(?P<node>JavaScript heap out of memory|Reached heap limit Allocation failed)"
    r"|(?P<go>^fatal error: runtime: out of memory)"
    r"|(?P<python>^(?:\w+\.)*MemoryError\b)"
    r"|(?P<dotnet>System\.OutOfMemoryException)"
)


def rule(c: Clues) -> Finding | None:
    found = c.search(_HEAP)
    if found is None:
        return None
    if found["java"].strip() in {"Metaspace", "Compressed class space"}:
        knob = "-XX:MaxMetaspaceSize (class metadata, not objects; a class-loader leak is usual)"
    elif found["java"].startswith(
        ("unable to create native thread", "unable to create new native")
    ):
        knob = "the thread limit (`ulimit -u`, systemd TasksMax) or a thread leak"
    elif found["java"] or found.line.text.find("java.lang.OutOfMemoryError") >= 0:
        knob = "-Xmx (or -XX:MaxRAMPercentage) in the JVM options"
    elif found["node"]:
        knob = "NODE_OPTIONS=--max-old-space-size=<MiB>"
    elif found["go"]:
        knob = "the memory it may use (GOMEMLIMIT, the limit it runs under)"
    else:
        knob = "the memory available to it"
    return finding(
        Category.HEAP_EXHAUSTED,
        f"{c.who} ran out of heap: the runtime's own memory ceiling, not a kill from outside.",
        [c.quote(found.line)],
        f"Raise {knob} if the data really needs it, or find what holds memory (a heap dump"
        f" at the failure: -XX:+HeapDumpOnOutOfMemoryError for the JVM); then"
        f" {c.restart_hint()}.",
        specificity=Specificity.MESSAGE,
        at=found.at,
        deterministic=not c.facts.became_ready,
    )
