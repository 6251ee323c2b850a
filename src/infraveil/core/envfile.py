"""The `env_file` format: KEY=VALUE lines, as docker and systemd's EnvironmentFile read them.

Blank lines and `#` comments are skipped, an optional `export ` prefix is allowed, and a value
wrapped in matching single or double quotes loses them (double quotes also understand \\n,
\\t, \\" and \\\\). No variable expansion happens: a `$` is kept as written, so a secret with
a dollar sign in it arrives intact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class EnvFileProblem:
    line: int
    message: str


def parse_env_file(text: str) -> tuple[dict[str, str], list[EnvFileProblem]]:
    """Variables in `text`, and the lines that could not be read (reported, not fatal)."""
    values: dict[str, str] = {}
    problems: list[EnvFileProblem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            problems.append(EnvFileProblem(number, f"not a KEY=VALUE line: {raw.strip()[:80]!r}"))
            continue
        values[name] = _unquote(value.strip())
    return values, problems


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), value[1:-1])
    if " #" in value:  # an unquoted value may carry a trailing comment
        value = value.split(" #", 1)[0].rstrip()
    return value
