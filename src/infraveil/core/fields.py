"""Every field of a `[services.NAME]` table, declared once.

The parser (`infraveil.core.manifest`) and the reference docs (`infraveil.core.docgen_manifest`)
both iterate `SERVICE_FIELDS`; a field is described nowhere else. Each field's `parse` turns the
raw TOML value into the value `ServiceSpec` holds, or raises `InvalidValue` with a message that
names the offending value and a hint; the parser adds the service name and the line.

Checks that need more than one field or more than one service (duplicate ports, unknown or
cyclic `depends_on`) live in the parser, because a field's `parse` sees only its own value.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from infraveil.core.checkfields import check_parser
from infraveil.core.checks import Role
from infraveil.core.fieldbase import (
    InvalidValue,
    ParseContext,
    Problem,
    describe_value,
    invalid,
    parse_argv,
    parse_duration_value,
    shorten,
)
from infraveil.core.units import format_bytes, parse_size

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
_COMMON_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2")
_MAX_STOP_TIMEOUT = 3600.0
_MIN_MEMORY = 4 << 20
_MAX_MEMORY = 64 << 40
_MAX_STARTUP_DEADLINE = 86400.0
_MAX_GATE_WAIT = 3600.0


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
    declared_flag: str | None = None
    """A ServiceSpec attribute the parser sets to whether the manifest has this field, for a
    default that must be told from the same value written out (`cwd_declared`)."""

    @property
    def required(self) -> bool:
        """Whether a service without this field is an error (read from `default`, so docs agree)."""
        return self.default == REQUIRED


def _parse_command(raw: object, ctx: ParseContext) -> tuple[str, ...]:
    return parse_argv("'command'", "command", raw)


def _env_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


def _parse_env(raw: object, ctx: ParseContext) -> Mapping[str, str]:
    if not isinstance(raw, dict):
        invalid(
            f"'env' must be a table of NAME = \"value\", got {describe_value(raw)}",
            'write e.g. env = { LOG_LEVEL = "info" }',
        )
    problems: list[Problem] = []
    env: dict[str, str] = {}
    for name, value in raw.items():
        if not _ENV_NAME.fullmatch(name):
            problems.append(
                Problem(
                    f"'env' name {shorten(repr(name))} is not a valid environment variable name",
                    "use letters, digits and '_', not starting with a digit",
                    (name,),
                )
            )
        text = _env_text(value)
        if text is None:
            problems.append(
                Problem(
                    f"'env' value of {shorten(repr(name))} must be a string,"
                    f" got {describe_value(value)}",
                    f'quote it: {name} = "..."',
                    (name,),
                )
            )
        elif "\0" in text:
            problems.append(
                Problem(
                    f"'env' value of {shorten(repr(name))} contains a NUL character",
                    "environment values cannot hold \\u0000",
                    (name,),
                )
            )
        else:
            env[name] = text
    if problems:
        raise InvalidValue(*problems)
    return MappingProxyType(env)


def _parse_required_env(raw: object, ctx: ParseContext) -> tuple[str, ...]:
    hint = 'write e.g. required_env = ["DATABASE_URL", "SECRET_KEY"]'
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        invalid(
            f"'required_env' must be a list of environment variable names,"
            f" got {describe_value(raw)}",
            hint,
        )
    problems: list[Problem] = []
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            problems.append(
                Problem(
                    f"'required_env' must list variable names, got {describe_value(item)}",
                    hint,
                )
            )
        elif not _ENV_NAME.fullmatch(item):
            problems.append(
                Problem(
                    f"'required_env' name {shorten(repr(item))} is not a valid environment"
                    " variable name",
                    "use letters, digits and '_', not starting with a digit",
                )
            )
        elif item not in names:
            names.append(item)
    if problems:
        raise InvalidValue(*problems)
    return tuple(names)


def _parse_payload(raw: object, ctx: ParseContext) -> bool:
    if not isinstance(raw, bool):
        invalid(
            f"'payload' must be true or false, got {describe_value(raw)}",
            "write payload = true, without quotes",
        )
    return raw


def _path_parser(field: str, example: str) -> Callable[[object, ParseContext], str]:
    def parse(raw: object, ctx: ParseContext) -> str:
        if not isinstance(raw, str):
            invalid(
                f"'{field}' must be a string path, got {describe_value(raw)}",
                f'write the path in quotes, e.g. {field} = "{example}"',
            )
        if not raw.strip():
            invalid(f"'{field}' is empty", "remove it, or give a path")
        if "\0" in raw:
            invalid(
                f"'{field}' {shorten(repr(raw))} contains a NUL character",
                "remove the \\u0000 escape",
            )
        # "~" is a shell feature; expanding it would make the spec depend on $HOME.
        if raw.startswith("~"):
            invalid(
                f"'{field}' {shorten(repr(raw))} starts with '~', which is not expanded",
                "write an absolute path, or one relative to the manifest's directory",
            )
        return os.path.normpath(os.path.join(ctx.base_dir, raw))

    return parse


def _parse_user(raw: object, ctx: ParseContext) -> str:
    hint = 'write e.g. user = "postgres" or user = 999'
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 0:
            invalid(
                f"'user' must be a user name or a uid of 0 or more, got {describe_value(raw)}", hint
            )
        return str(raw)
    if not isinstance(raw, str):
        invalid(f"'user' must be a user name or a numeric uid, got {describe_value(raw)}", hint)
    if not raw.strip():
        invalid("'user' is empty", "remove it to run as the agent's user, or name a user")
    return raw


def _parse_port(raw: object, ctx: ParseContext) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= 65535:
        invalid(
            f"'port' must be an integer from 1 to 65535, got {describe_value(raw)}",
            "write e.g. port = 8000, without quotes",
        )
    return raw


def _parse_depends_on(raw: object, ctx: ParseContext) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list):
        invalid(
            f"'depends_on' must be a list of service names, got {describe_value(raw)}",
            'write e.g. depends_on = ["db"]',
        )
    names: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item:
            invalid(
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
            invalid(f"'stop_signal' {raw} is not a signal number", hint)
    if not isinstance(raw, str):
        invalid(f"'stop_signal' must be a signal name or number, got {describe_value(raw)}", hint)
    name = raw.strip().upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return signal.Signals[name]
    except KeyError:
        invalid(f"'stop_signal' {shorten(repr(raw))} is not a signal", hint)


def _parse_stop_timeout(raw: object, ctx: ParseContext) -> float:
    return parse_duration_value(
        "'stop_timeout'",
        raw,
        at_most=_MAX_STOP_TIMEOUT,
        at_most_text="1h",
        hint='write e.g. stop_timeout = "30s"',
    )


def _parse_memory(raw: object, ctx: ParseContext) -> int:
    hint = 'write e.g. memory = "512M" (K, M, G, T: binary units)'
    if isinstance(raw, str):
        try:
            size = parse_size(raw)
        except ValueError as exc:
            invalid(f"'memory' {exc}", hint)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        size = raw
    else:
        invalid(f"'memory' must be a size such as \"512M\", got {describe_value(raw)}", hint)
    if size < _MIN_MEMORY:
        invalid(
            f"'memory' {describe_value(raw)} is {format_bytes(size)}, too little to run a process",
            f"give at least {format_bytes(_MIN_MEMORY)}, or remove the limit",
        )
    if size > _MAX_MEMORY:
        invalid(
            f"'memory' {describe_value(raw)} is more than {format_bytes(_MAX_MEMORY)}",
            "that is no limit: remove it, or give the size the service really needs",
        )
    return size


def _parse_startup_deadline(raw: object, ctx: ParseContext) -> float:
    return parse_duration_value(
        "'startup_deadline'",
        raw,
        at_most=_MAX_STARTUP_DEADLINE,
        at_most_text="1d",
        hint='write e.g. startup_deadline = "5m", or remove it to let infraveil learn it',
    )


def _parse_soak(raw: object, ctx: ParseContext) -> float:
    return parse_duration_value(
        "'soak'",
        raw,
        at_most=_MAX_GATE_WAIT,
        at_most_text="1h",
        hint='write e.g. soak = "30s", or soak = 0 to promote as soon as it is ready',
        zero_ok=True,
    )


def _parse_watch(raw: object, ctx: ParseContext) -> float:
    return parse_duration_value(
        "'watch'",
        raw,
        at_most=_MAX_GATE_WAIT,
        at_most_text="1h",
        hint='write e.g. watch = "5m", or watch = 0 not to watch a promoted release',
        zero_ok=True,
    )


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
        name="required_env",
        type="list of strings (environment variable names)",
        default="none",
        description=(
            "Variables the service cannot start without. Preflight (before every start and"
            " every deploy) fails, and nothing is started, when one is unset or empty in the"
            " service's environment (`env`, `env_file` and the agent's environment)."
        ),
        example='required_env = ["DATABASE_URL", "SECRET_KEY"]',
        parse=_parse_required_env,
    ),
    Field(
        name="cwd",
        type="string (path)",
        default="the manifest's directory (a `payload` service: its release's directory)",
        description="The working directory of the service, relative to the manifest's directory.",
        example='cwd = "backend"',
        parse=_path_parser("cwd", "backend"),
        when_absent=lambda ctx: ctx.base_dir,
        declared_flag="cwd_declared",
    ),
    Field(
        name="payload",
        type="boolean",
        default="false",
        description=(
            "The service runs the payload of its current release (`infraveil deploy NAME"
            " --payload FILE|DIR`): its working directory is the release's directory unless"
            " `cwd` is set, and until its first deploy it is not started (its status says it"
            " waits for one)."
        ),
        example="payload = true",
        parse=_parse_payload,
    ),
    Field(
        name="user",
        type="string or integer",
        default="the agent's user",
        description=(
            "The user to run the service as, by name or numeric uid. Before the command runs,"
            " the agent switches to that user and all its groups (supplementary ones included)"
            " and sets `HOME`, `USER` and `LOGNAME`; it must be able to (usually: it runs as"
            " root). When the agent runs as root, a service with no `user` runs as root too,"
            " and `infraveil check` and `infraveil status` warn about it."
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
    Field(
        name="health",
        type="string (HTTP path) or table",
        default="none",
        description=(
            "The liveness check. A path is an HTTP GET on `port` (any 2xx or 3xx passes); a"
            " table declares another kind (see [Checks](#checks)). It does not run while the"
            " service is starting. A service that stays unhealthy (3 failures in a row over at"
            " least 15 s) is restarted, unless a dependency it declares is not ready or most"
            " services are failing at once: then it is marked degraded, not restarted."
        ),
        example='health = "/healthz"',
        parse=check_parser(Role.HEALTH),
    ),
    Field(
        name="ready",
        type="string (HTTP path) or table",
        default="a TCP check of `port`, if `port` is set",
        description=(
            "The readiness check, same forms as `health`. The service's startup ends at its"
            " first success; afterwards it only changes whether the service is `ready` (and"
            " so whether its dependants may start): it never restarts anything. With no"
            " `ready`, `port` implies a TCP check; with neither, the first passing `health`"
            " probe ends the startup, and with no check at all the service is up once it has"
            " stayed up for a second."
        ),
        example='ready = { http = "/readyz", startup_interval = "2s" }',
        parse=check_parser(Role.READY),
    ),
    Field(
        name="startup_deadline",
        type="duration",
        default="learned: 60s, then 3x the p95 of recent boots (10s to 10m)",
        description=(
            "How long the service may take to become ready before the attempt counts as a"
            " failure. Leave it out and infraveil learns it from the service's real boots;"
            " set it only for a boot that is known to be long once in a while."
        ),
        example='startup_deadline = "5m"',
        parse=_parse_startup_deadline,
    ),
    Field(
        name="memory",
        type='size ("512M", "2G") or integer bytes',
        default="no limit",
        description=(
            "The most memory the service's processes may use together. It is enforced by a"
            " cgroup where the agent can create one, else by a watchdog on the process tree's"
            " resident memory; a service that goes over is killed and reported as OOM-killed,"
            " with its peak and the limit. K, M, G and T are binary units (M = MiB)."
        ),
        example='memory = "512M"',
        parse=_parse_memory,
    ),
    Field(
        name="soak",
        type='duration ("30s", "1m") or number of seconds',
        default="10s",
        description=(
            "How long a new release must stay ready with no restart before it is promoted"
            " (`infraveil deploy`). From 0 (promote once ready) to 1h."
        ),
        example='soak = "30s"',
        parse=_parse_soak,
    ),
    Field(
        name="watch",
        type='duration ("5m", "90s") or number of seconds',
        default="60s",
        description=(
            "How long a promoted release is watched: a crash or a liveness failure that"
            " restarts it in this time rolls it back. From 0 (not watched) to 1h."
        ),
        example='watch = "5m"',
        parse=_parse_watch,
    ),
    Field(
        name="secrets",
        type="string (path)",
        default="none",
        description=(
            "A file of `KEY=VALUE` lines, like `env_file`, whose values are secrets: they are"
            " masked (`***`) in `describe`, `status`, events, diagnoses and the API, whatever"
            " the variable is called, and so is any occurrence of them in a message. It is read"
            " at every start, relative to the manifest's directory, and wins over `env` and"
            " `env_file`. The service itself gets the real values. Keep it out of version"
            " control and readable by the agent's user only (`chmod 600`); `infraveil check`"
            " warns when others can read it. Variables whose names look secret (`*PASSWORD*`,"
            " `*SECRET*`, `*TOKEN*`, `*KEY*`, ...) are masked wherever they come from."
        ),
        example='secrets = "/etc/infraveil/api.secrets"',
        parse=_path_parser("secrets", "api.secrets"),
    ),
)
