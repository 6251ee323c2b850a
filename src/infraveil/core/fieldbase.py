"""What every manifest field's parser shares: its context, its problems, and value wording."""

from __future__ import annotations

import datetime
import json
import shlex
from dataclasses import dataclass
from typing import NoReturn

from infraveil.core.units import parse_duration


@dataclass(frozen=True)
class ParseContext:
    """What a field's `parse` may know besides its raw value."""

    base_dir: str
    """Absolute directory of the manifest; relative paths are resolved against it."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a raw value."""

    message: str
    hint: str = ""
    key: tuple[str, ...] = ()
    """Path below the field (e.g. ("FOO",) for env.FOO), so the issue points at that line."""


class InvalidValue(Exception):
    """A raw value that cannot become a spec value; the parser turns each problem into an issue."""

    def __init__(self, *problems: Problem) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def describe_value(value: object) -> str:
    """A raw TOML value as a message shows it: "the string '80a'", "a table", "the integer 3"."""
    if isinstance(value, str):
        return f"the string {shorten(repr(value))}"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"the integer {shorten(str(value))}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, list):
        return f"the list {shorten(json.dumps(value, default=str))}" if value else "an empty list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return f"the date/time {value.isoformat()}"
    return f"the value {shorten(repr(value))}"


def shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def invalid(message: str, hint: str = "") -> NoReturn:
    raise InvalidValue(Problem(message, hint))


def parse_duration_value(
    name: str,
    raw: object,
    *,
    at_most: float,
    at_most_text: str,
    hint: str,
    zero_ok: bool = False,
) -> float:
    """A duration ("30s", "1m30s" or a number of seconds): more than 0, at most `at_most`.

    `zero_ok`: 0 is allowed too, for a duration whose 0 means "do not wait" (`soak`).
    """
    if isinstance(raw, str):
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            invalid(f"{name} {exc}", hint)
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = float(raw)
    else:
        invalid(f"{name} must be a duration, got {describe_value(raw)}", hint)
    # Written as "not within" so that NaN is refused too.
    if zero_ok and not 0 <= seconds <= at_most:
        invalid(f"{name} must be from 0 to {at_most_text}, got {describe_value(raw)}", hint)
    if not zero_ok and not 0 < seconds <= at_most:
        invalid(
            f"{name} must be more than 0 and at most {at_most_text}, got {describe_value(raw)}",
            hint,
        )
    return seconds or 0.0  # "-0" is 0, not -0.0


_SHELL_OPERATORS = frozenset({"|", "||", "&&", ";", ">", ">>", "<", "&", "2>&1"})


def parse_argv(name: str, key: str, raw: object) -> tuple[str, ...]:
    """A command line: a string split like a shell splits words (no shell runs), or a list.

    `name` is how messages call the value ("'command'"), `key` how a hint writes it.
    """
    if isinstance(raw, str):
        if not raw.strip():
            invalid(f"{name} is empty", f'write the program to run, e.g. {key} = "python app.py"')
        try:
            argv = shlex.split(raw)
        except ValueError as exc:
            invalid(
                f"{name} {shorten(repr(raw))} cannot be split into words: {exc}",
                f"close the quote, or write {key} as a list of strings",
            )
        # Operators are found among the unquoted words only: "tr '|' ," is not a pipe.
        try:
            words = shlex.split(raw, posix=False)
        except ValueError:
            words = argv
        operators = [w for w in words if w in _SHELL_OPERATORS]
        if operators:
            invalid(
                f"{name} {shorten(repr(raw))} uses the shell operator {operators[0]!r},"
                " but no shell runs",
                f"write {key} = {json.dumps(['sh', '-c', raw])}",
            )
    elif isinstance(raw, list):
        if not raw:
            invalid(f"{name} is an empty list", f'write e.g. {key} = ["python", "app.py"]')
        for i, word in enumerate(raw):
            if not isinstance(word, str):
                invalid(
                    f"{name} item {i + 1} must be a string, got {describe_value(word)}",
                    "quote every word of the command",
                )
        argv = list(raw)
        if "" in argv:
            invalid(
                f"{name} item {argv.index('') + 1} is an empty string",
                "remove it; every word of the command must have text",
            )
    else:
        invalid(
            f"{name} must be a string or a list of strings, got {describe_value(raw)}",
            f'write e.g. {key} = "python app.py"',
        )
    if any("\0" in word for word in argv):
        invalid(f"{name} contains a NUL character", "remove the \\u0000 escape")
    return tuple(argv)
