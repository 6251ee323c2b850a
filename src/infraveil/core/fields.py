"""Every field of a `[services.NAME]` table, declared once.

The parser (`infraveil.core.manifest`) and the reference docs (`infraveil.core.docgen_manifest`)
both iterate `SERVICE_FIELDS`; a field is described nowhere else. Each field's `parse` turns the
raw TOML value into the value `ServiceSpec` holds, or raises `InvalidValue` with a message that
names the offending value and a hint; the parser adds the service name and the line.

Checks that need more than one field or more than one service (duplicate ports, unknown or
cyclic `depends_on`) live in the parser, because a field's `parse` sees only its own value.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NoReturn

from infraveil.core.units import parse_duration

REQUIRED = "—"
"""The `default` of a field that has none: the manifest must set it."""

SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
"""What a service name may be; names become file names, so no '/', no leading '.'."""

SERVICE_NAME_RULE = "1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"

MINIMAL_EXAMPLE = """\
[services.web]
command = "python -m http.server 8000"
port = 8000
"""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHELL_OPERATORS = frozenset({"|", "||", "&&", ";", ">", ">>", "<", "&", "2>&1"})
_COMMON_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2")
_MAX_STOP_TIMEOUT = 3600.0


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


@dataclass(frozen=True)
class Field:
    """One manifest field: what users read about it and how its raw value is parsed."""

    name: str
    type: str
    """Human type, e.g. "string or list of strings"."""
    default: str
    """Human default, or REQUIRED."""
    description: str
    example: str
    """One TOML line that sets the field."""
    parse: Callable[[object, ParseContext], Any]
    when_absent: Callable[[ParseContext], Any] | None = None
    """The spec value when the manifest omits the field; None keeps ServiceSpec's default."""

    @property
    def required(self) -> bool:
        """Whether a service without this field is an error (read from `default`, so docs agree)."""
        return self.default == REQUIRED


def describe_value(value: object) -> str:
    """A raw TOML value as a message shows it: "the string '80a'", "a table", "the integer 3"."""
    if isinstance(value, str):
        return f"the string {_shorten(repr(value))}"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"the integer {_shorten(str(value))}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, list):
        return f"the list {_shorten(json.dumps(value, default=str))}" if value else "an empty list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return f"the date/time {value.isoformat()}"
    return f"the value {_shorten(repr(value))}"


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _invalid(message: str, hint: str = "") -> NoReturn:
    raise InvalidValue(Problem(message, hint))


def _parse_command(raw: object, ctx: ParseContext) -> tuple[str, ...]:
    if isinstance(raw, str):
        if not raw.strip():
            _invalid(
                "'command' is empty", 'write the program to run, e.g. command = "python app.py"'
            )
        try:
            argv = shlex.split(raw)
        except ValueError as exc:
            _invalid(
                f"'command' {_shorten(repr(raw))} cannot be split into words: {exc}",
                "close the quote, or write command as a list of strings",
            )
        # Operators are found among the unquoted words only: "tr '|' ," is not a pipe.
        try:
            words = shlex.split(raw, posix=False)
        except ValueError:
            words = argv
        operators = [w for w in words if w in _SHELL_OPERATORS]
        if operators:
            _invalid(
                f"'command' {_shorten(repr(raw))} uses the shell operator {operators[0]!r},"
                " but no shell runs",
                f"write command = {json.dumps(['sh', '-c', raw])}",
            )
    elif isinstance(raw, list):
        if not raw:
            _invalid("'command' is an empty list", 'write e.g. command = ["python", "app.py"]')
        for i, word in enumerate(raw):
            if not isinstance(word, str):
                _invalid(
                    f"'command' item {i + 1} must be a string, got {describe_value(word)}",
                    "quote every word of the command",
                )
        argv = list(raw)
        if "" in argv:
            _invalid(
                f"'command' item {argv.index('') + 1} is an empty string",
                "remove it; every word of the command must have text",
            )
    else:
        _invalid(
            f"'command' must be a string or a list of strings, got {describe_value(raw)}",
            'write e.g. command = "python app.py"',
        )
    if any("\0" in word for word in argv):
        _invalid("'command' contains a NUL character", "remove the \\u0000 escape")
    return tuple(argv)


def _env_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _parse_env(raw: object, ctx: ParseContext) -> Mapping[str, str]:
    if not isinstance(raw, dict):
        _invalid(
            f"'env' must be a table of NAME = \"value\", got {describe_value(raw)}",
            'write e.g. env = { LOG_LEVEL = "info" }',
        )
    problems: list[Problem] = []
    env: dict[str, str] = {}
    for name, value in raw.items():
        if not _ENV_NAME.fullmatch(name):
            problems.append(
                Problem(
                    f"'env' name {_shorten(repr(name))} is not a valid environment variable name",
                    "use letters, digits and '_', not starting with a digit",
                    (name,),
                )
            )
        text = _env_text(value)
        if text is None:
            problems.append(
                Problem(
                    f"'env' value of {_shorten(repr(name))} must be a string,"
                    f" got {describe_value(value)}",
                    f'quote it: {name} = "..."',
                    (name,),
                )
            )
        elif "\0" in text:
            problems.append(
                Problem(
                    f"'env' value of {_shorten(repr(name))} contains a NUL character",
                    "environment values cannot hold \\u0000",
                    (name,),
                )
            )
        else:
            env[name] = text
    if problems:
        raise InvalidValue(*problems)
    return MappingProxyType(env)


def _path_parser(field: str, example: str) -> Callable[[object, ParseContext], str]:
    def parse(raw: object, ctx: ParseContext) -> str:
        if not isinstance(raw, str):
            _invalid(
                f"'{field}' must be a string path, got {describe_value(raw)}",
                f'write the path in quotes, e.g. {field} = "{example}"',
            )
        if not raw.strip():
            _invalid(f"'{field}' is empty", "remove it, or give a path")
        if "\0" in raw:
            _invalid(
                f"'{field}' {_shorten(repr(raw))} contains a NUL character",
                "remove the \\u0000 escape",
            )
        # "~" is a shell feature; expanding it would make the spec depend on $HOME.
        if raw.startswith("~"):
            _invalid(
                f"'{field}' {_shorten(repr(raw))} starts with '~', which is not expanded",
                "write an absolute path, or one relative to the manifest's directory",
            )
        return os.path.normpath(os.path.join(ctx.base_dir, raw))

    return parse


def _parse_user(raw: object, ctx: ParseContext) -> str:
    hint = 'write e.g. user = "postgres" or user = 999'
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 0:
            _invalid(
                f"'user' must be a user name or a uid of 0 or more, got {describe_value(raw)}", hint
            )
        return str(raw)
    if not isinstance(raw, str):
        _invalid(f"'user' must be a user name or a numeric uid, got {describe_value(raw)}", hint)
    if not raw.strip():
        _invalid("'user' is empty", "remove it to run as the agent's user, or name a user")
    return raw


def _parse_port(raw: object, ctx: ParseContext) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= 65535:
        _invalid(
            f"'port' must be an integer from 1 to 65535, got {describe_value(raw)}",
            "write e.g. port = 8000, without quotes",
        )
    return raw


def _parse_depends_on(raw: object, ctx: ParseContext) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        _invalid(
            f"'depends_on' must be a list of service names, got {describe_value(raw)}",
            'write e.g. depends_on = ["db"]',
        )
    names: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item:
            _invalid(
                f"'depends_on' must list service names, got {describe_value(item)}",
                'write e.g. depends_on = ["db"]',
            )
        if item not in names:
            names.append(item)
    return tuple(names)


def _parse_stop_signal(raw: object, ctx: ParseContext) -> signal.Signals:
    hint = "use one of " + ", ".join(_COMMON_SIGNALS)
    if isinstance(raw, int) and not isinstance(raw, bool):
        try:
            return signal.Signals(raw)
        except ValueError:
            _invalid(f"'stop_signal' {raw} is not a signal number", hint)
    if not isinstance(raw, str):
        _invalid(f"'stop_signal' must be a signal name or number, got {describe_value(raw)}", hint)
    name = raw.strip().upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return signal.Signals[name]
    except KeyError:
        _invalid(f"'stop_signal' {_shorten(repr(raw))} is not a signal", hint)


def _parse_stop_timeout(raw: object, ctx: ParseContext) -> float:
    hint = 'write e.g. stop_timeout = "30s"'
    if isinstance(raw, str):
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            _invalid(f"'stop_timeout' {exc}", hint)
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = float(raw)
    else:
        _invalid(f"'stop_timeout' must be a duration, got {describe_value(raw)}", hint)
    # Written as "not within" so that NaN is refused too.
    if not 0 < seconds <= _MAX_STOP_TIMEOUT:
        _invalid(
            f"'stop_timeout' must be more than 0 and at most 1h, got {describe_value(raw)}", hint
        )
    return seconds


SERVICE_FIELDS: tuple[Field, ...] = (
    Field(
        name="command",
        type="string or list of strings",
        default=REQUIRED,
        description=(
            "The program to run and its arguments. A string is split into words the way a shell"
            " splits them, but no shell runs: pipes, redirections and `&&` are not interpreted,"
            ' so write `["sh", "-c", "..."]` when you need them.'
        ),
        example='command = "python -m uvicorn app:app --port 8000"',
        parse=_parse_command,
    ),
    Field(
        name="env",
        type="table of strings",
        default="none",
        description=(
            "Environment variables set for the service. Numbers and booleans are turned into"
            " text; a variable set here wins over the same one in `env_file`."
        ),
        example='env = { LOG_LEVEL = "info", WORKERS = 4 }',
        parse=_parse_env,
    ),
    Field(
        name="env_file",
        type="string (path)",
        default="none",
        description=(
            "A file of `KEY=VALUE` lines read at every start, relative to the manifest's"
            " directory. A missing file is reported by `infraveil check`, not here."
        ),
        example='env_file = ".env"',
        parse=_path_parser("env_file", ".env"),
    ),
    Field(
        name="cwd",
        type="string (path)",
        default="the manifest's directory",
        description="The working directory of the service, relative to the manifest's directory.",
        example='cwd = "backend"',
        parse=_path_parser("cwd", "backend"),
        when_absent=lambda ctx: ctx.base_dir,
    ),
    Field(
        name="user",
        type="string or integer",
        default="the agent's user",
        description=(
            "The user to run the service as, by name or numeric uid. The agent must be able to"
            " switch to it (usually: run as root)."
        ),
        example='user = "postgres"',
        parse=_parse_user,
    ),
    Field(
        name="port",
        type="integer (1 to 65535)",
        default="none",
        description=(
            "The TCP port the service listens on. Two services cannot declare the same port."
        ),
        example="port = 8000",
        parse=_parse_port,
    ),
    Field(
        name="depends_on",
        type="list of strings",
        default="none",
        description=(
            "Services to start before this one. Each must be declared in the same manifest,"
            " and dependencies cannot form a cycle."
        ),
        example='depends_on = ["db", "cache"]',
        parse=_parse_depends_on,
    ),
    Field(
        name="stop_signal",
        type="string or integer",
        default="TERM",
        description=(
            'The signal that asks the service to stop, by name ("TERM", "SIGINT", "quit")'
            " or number. It is sent to the service's whole process group."
        ),
        example='stop_signal = "INT"',
        parse=_parse_stop_signal,
    ),
    Field(
        name="stop_timeout",
        type='duration ("30s", "1m30s") or number of seconds',
        default="10s",
        description=(
            "How long to wait after `stop_signal` before sending SIGKILL. More than 0, at most 1h."
        ),
        example='stop_timeout = "30s"',
        parse=_parse_stop_timeout,
    ),
)
