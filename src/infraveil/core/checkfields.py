"""The manifest's `health` and `ready` fields: a path (HTTP on the service's port) or a table.

The keys of the table are declared once in `CHECK_KEYS`; the parser and the reference docs
both read it. A check's port is filled in by the manifest parser afterwards (from the
service's `port`), because a field's parser sees only its own value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from infraveil.core.checks import (
    DEFAULT_INTERVAL,
    DEFAULT_STARTUP_INTERVAL,
    DEFAULT_TIMEOUT,
    CheckKind,
    CheckSpec,
    Role,
)
from infraveil.core.fieldbase import (
    InvalidValue,
    ParseContext,
    Problem,
    describe_value,
    parse_argv,
    parse_duration_value,
    shorten,
)
from infraveil.core.units import format_duration

DEFAULT_WATCHDOG = 30.0
"""A notify liveness check with no `watchdog`: the service must send WATCHDOG=1 this often."""


@dataclass(frozen=True)
class CheckKey:
    """One key of a check table, for the reference docs."""

    name: str
    type: str
    default: str
    description: str


CHECK_KEYS: tuple[CheckKey, ...] = (
    CheckKey("http", "string (path)", "—", "GET this path on the port; any 2xx or 3xx passes."),
    CheckKey(
        "tcp",
        "integer (port) or true",
        "—",
        "A TCP connection to this port (true: the service's `port`) is accepted.",
    ),
    CheckKey(
        "exec",
        "string or list of strings",
        "—",
        "This command exits 0. It runs with the service's env, working directory and user.",
    ),
    CheckKey(
        "notify",
        "true",
        "—",
        "systemd's sd_notify: the service gets `NOTIFY_SOCKET`; `READY=1` ends its startup,"
        " and as `health` it must send `WATCHDOG=1` at least every `watchdog`.",
    ),
    CheckKey("port", "integer", "the service's `port`", "The port an `http` check requests."),
    CheckKey(
        "host",
        "string (IP address)",
        "127.0.0.1",
        "The address probed by `http` and `tcp` checks (`localhost` means 127.0.0.1).",
    ),
    CheckKey(
        "interval",
        "duration",
        format_duration(DEFAULT_INTERVAL),
        "Time between probes once the service has started.",
    ),
    CheckKey(
        "startup_interval",
        "duration",
        format_duration(DEFAULT_STARTUP_INTERVAL),
        "Time between readiness probes while the service is starting.",
    ),
    CheckKey(
        "timeout",
        "duration",
        format_duration(DEFAULT_TIMEOUT),
        "A probe that takes longer fails.",
    ),
    CheckKey(
        "watchdog",
        "duration",
        format_duration(DEFAULT_WATCHDOG),
        "`notify` liveness only: how often WATCHDOG=1 must come (given as `WATCHDOG_USEC`).",
    ),
)

_KINDS = ("http", "tcp", "exec", "notify")
_KEYS = {k.name for k in CHECK_KEYS}
_MAX_INTERVAL = 3600.0
_MAX_TIMEOUT = 300.0


def check_parser(role: Role) -> Callable[[object, ParseContext], CheckSpec]:
    """The parser of the `health` or `ready` field."""
    field = str(role)
    example = '"/healthz"' if role is Role.HEALTH else '"/readyz"'

    def parse(raw: object, ctx: ParseContext) -> CheckSpec:
        if isinstance(raw, str):
            if not raw.startswith("/"):
                raise InvalidValue(
                    Problem(
                        f"'{field}' {shorten(repr(raw))} is not a path",
                        f"write an HTTP path such as {field} = {example}, or a table such as"
                        f' {field} = {{ tcp = 5432 }} or {{ exec = "pg_isready" }}',
                    )
                )
            return CheckSpec(CheckKind.HTTP, path=_path(field, raw))
        if not isinstance(raw, dict):
            raise InvalidValue(
                Problem(
                    f"'{field}' must be an HTTP path or a table, got {describe_value(raw)}",
                    f"write e.g. {field} = {example} or {field} = {{ tcp = 5432 }}",
                )
            )
        return _table(role, raw)

    return parse


def _table(role: Role, raw: dict[str, object]) -> CheckSpec:
    field = str(role)
    problems: list[Problem] = []
    for key in raw:
        if key not in _KEYS:
            problems.append(
                Problem(
                    f"unknown key {key!r} in '{field}'",
                    "valid keys: " + ", ".join(sorted(_KEYS)),
                    (key,),
                )
            )
    kinds = [k for k in _KINDS if k in raw]
    if len(kinds) != 1:
        found = " and ".join(kinds) if kinds else "none"
        problems.append(
            Problem(
                f"'{field}' must name exactly one kind of check (http, tcp, exec or notify),"
                f" found {found}",
                f'write e.g. {field} = {{ http = "/healthz" }}',
            )
        )
    if problems:
        raise InvalidValue(*problems)
    kind = CheckKind(kinds[0])
    values: dict[str, object] = {}
    for key, value in raw.items():
        try:
            values.update(_key(role, kind, key, value))
        except InvalidValue as exc:
            problems += [Problem(p.message, p.hint, (key, *p.key)) for p in exc.problems]
    if problems:
        raise InvalidValue(*problems)
    if kind is CheckKind.NOTIFY and role is Role.HEALTH:
        values.setdefault("watchdog", DEFAULT_WATCHDOG)
    return CheckSpec(kind, **values)  # type: ignore[arg-type]


def _key(role: Role, kind: CheckKind, key: str, value: object) -> dict[str, object]:
    """The CheckSpec values one key of the table sets."""
    name = f"'{role}.{key}'"
    if key == "http":
        if not isinstance(value, str) or not value.startswith("/"):
            _fail(
                f"{name} must be a path starting with '/', got {describe_value(value)}",
                f'write e.g. {role} = {{ http = "/healthz" }}',
            )
        return {"path": _path(name, value)}
    if key == "tcp":
        if value is True:
            return {}
        return {"port": _port(name, value)}
    if key == "exec":
        return {"command": parse_argv(name, f"{role}.exec", value)}
    if key == "notify":
        if value is not True:
            _fail(
                f"{name} must be true, got {describe_value(value)}",
                f"write {role} = {{ notify = true }}",
            )
        return {}
    if key == "port":
        if kind is not CheckKind.HTTP:
            _fail(f"{name} is for http checks", "for tcp, write the port as tcp = PORT")
        return {"port": _port(name, value)}
    if key == "host":
        if kind not in (CheckKind.HTTP, CheckKind.TCP):
            _fail(f"{name} is for http and tcp checks", "remove it")
        return {"host": _address(name, value)}
    if key == "watchdog":
        if kind is not CheckKind.NOTIFY or role is not Role.HEALTH:
            _fail(
                f"{name} is for a notify liveness check",
                'write it as health = { notify = true, watchdog = "30s" }',
            )
        return {"watchdog": _duration(name, key, value, _MAX_INTERVAL, "1h")}
    if key == "startup_interval" and role is not Role.READY:
        _fail(
            f"{name}: liveness checks do not run during startup",
            "set startup_interval on 'ready' instead",
        )
    if key in ("interval", "startup_interval"):
        return {key: _duration(name, key, value, _MAX_INTERVAL, "1h")}
    assert key == "timeout"
    return {"timeout": _duration(name, key, value, _MAX_TIMEOUT, "5m")}


def _fail(message: str, hint: str) -> NoReturn:
    raise InvalidValue(Problem(message, hint))


def _path(name: str, value: str) -> str:
    if any(c.isspace() or ord(c) < 32 for c in value):
        _fail(
            f"{name} {shorten(repr(value))} contains spaces or control characters",
            "encode them in the URL (%20)",
        )
    return value


def _address(name: str, value: object) -> str:
    """An IP address: probes connect without a name lookup (which would need a thread)."""
    if value == "localhost":
        return "127.0.0.1"
    text = value.strip("[]") if isinstance(value, str) else ""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        _fail(
            f"{name} must be an IP address, got {describe_value(value)}",
            'write e.g. host = "127.0.0.1" or "::1" (names are not looked up)',
        )


def _port(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        _fail(
            f"{name} must be a port from 1 to 65535, got {describe_value(value)}",
            "write the port number without quotes",
        )
    return value


def _duration(name: str, key: str, value: object, at_most: float, at_most_text: str) -> float:
    hint = f'write e.g. {key} = "5s"'
    return parse_duration_value(name, value, at_most=at_most, at_most_text=at_most_text, hint=hint)
