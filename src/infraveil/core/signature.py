"""Failure signatures: what makes two failures "the same crash".

A signature is the kind of failure (an exit code or signal, an OOM kill, a failed liveness
check, a missed startup deadline, a command that cannot run) plus the decisive log line with
what changes from run to run taken out: timestamps, pids, addresses, ports, durations and other
numbers. Three identical signatures in a row while starting halt a service (see `lifecycle`):
the same crash with the same line every time will not fix itself by retrying.
"""

from __future__ import annotations

import re

from infraveil.core.exitstatus import ExitStatus

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TIMESTAMP = re.compile(
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
    r"|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d"
    r"|\b\d\d:\d\d:\d\d(?:[.,]\d+)?"
)
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-f]{12,}\b")
_NUMBER = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")
MAX_LINE = 200


def normalise(line: str) -> str:
    """The decisive line with what differs between two runs of the same failure taken out."""
    text = _ANSI.sub("", line)
    text = _TIMESTAMP.sub("<time>", text)
    text = _UUID.sub("<id>", text)
    text = _HEX.sub("<hex>", text)
    text = _NUMBER.sub("#", text)
    return _SPACE.sub(" ", text).strip()[:MAX_LINE]


def exit_signature(status: ExitStatus, line: str, *, oom: bool = False) -> str:
    """The signature of an instance that ended on its own (or was OOM-killed)."""
    if oom:
        return "oom"
    if status.unknown:
        kind = "exit ?"
    elif status.signal is not None:
        kind = f"signal {status.signal}"
    else:
        kind = f"exit {status.code}"
    return f"{kind}|{normalise(line)}"


def kill_signature(kind: str, detail: str) -> str:
    """The signature of an instance the agent ended: kind is liveness, deadline or spawn."""
    return f"{kind}|{normalise(detail)}"


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(/(?:[\w.@+-]+/)*[\w.@+-]+)")
_QUOTED_FILE = re.compile(r"""['"`]((?:\.{0,2}/)?(?:[\w.@+-]+/)*[\w@+-]+\.\w{1,10})['"`]""")


def files_named(text: str) -> list[str]:
    """Paths of files a failure message names ("/etc/app/config.yml", "'settings.toml'"), in
    order, without repeats. A halted service is retried when one of them changes."""
    found: list[str] = []
    for pattern in (_ABSOLUTE_PATH, _QUOTED_FILE):
        for m in pattern.finditer(text):
            path = m.group(1).rstrip(".")
            if path not in found and path != "/":
                found.append(path)
    return found
