"""The manifest parser: every rule reports file, exact line, the offending value and a hint."""

from __future__ import annotations

import dataclasses
import graphlib
import math
import os
import re
import signal
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infraveil.core.checks import CheckKind, CheckSpec
from infraveil.core.errors import ManifestError, ManifestIssue
from infraveil.core.fieldbase import ParseContext
from infraveil.core.fields import MINIMAL_EXAMPLE, SERVICE_FIELDS
from infraveil.core.manifest import parse_manifest
from infraveil.core.spec import Manifest, ServiceSpec
from infraveil.runtime.manifest_file import load_manifest

PATH = "/srv/app/infraveil.toml"
BASE = "/srv/app"


def toml(*rows: str) -> str:
    """Manifest text whose line N is the Nth argument, so cases state their lines plainly."""
    return "\n".join(rows) + "\n"


def issues_of(source: str) -> list[ManifestIssue]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(source, PATH)
    assert caught.value.issues, "a ManifestError must carry at least one issue"
    return list(caught.value.issues)


def only_issue(source: str) -> ManifestIssue:
    issues = issues_of(source)
    assert len(issues) == 1, "\n".join(map(str, issues))
    return issues[0]


def api(*rows: str) -> str:
    """A one-service manifest: line 1 is the header, line 2 the command, then `rows`."""
    return toml("[services.api]", 'command = "python app.py"', *rows)


# (source, line, words the message must contain, words the hint must contain)
Case = tuple[str, int | None, tuple[str, ...], tuple[str, ...]]

CASES: dict[str, Case] = {
    # -- the document ----------------------------------------------------------------------
    "toml syntax error": (
        toml("x = 1", "[services.api]", 'command = "python', "port = 1"),
        3,
        ("not valid TOML", "line 3"),
        (),
    ),
    "toml error at end of document": (
        toml("[services.api]", "command = [", '  "python",'),
        3,
        ("not valid TOML", "end of document"),
        (),
    ),
    "toml duplicate key": (
        api('command = "again"'),
        3,
        ("not valid TOML",),
        (),
    ),
    "unknown top-level key, close to services": (
        toml("[services.a]", 'command = "x"', "", "[service.b]", 'command = "y"'),
        4,
        ("unknown top-level key 'service'",),
        ("did you mean 'services'?",),
    ),
    "unknown top-level key, nothing close": (
        toml("verbose = true", "[services.a]", 'command = "x"'),
        1,
        ("unknown top-level key 'verbose'",),
        ("[services.NAME]",),
    ),
    "empty manifest": ("", None, ("no services",), ("[services.web]", "command = ")),
    "only comments": (toml("# nothing yet"), None, ("no services",), ("[services.web]",)),
    "empty services table": (toml("# x", "[services]"), 2, ("no services",), ("[services.web]",)),
    "services is not a table": (
        toml('services = "api"'),
        1,
        ("'services' must be a table", "the string 'api'"),
        ("[services.web]",),
    ),
    "services is an array of tables": (
        toml("[[services]]", 'command = "x"'),
        1,
        ("'services' must be a table", "the list"),
        (),
    ),
    "service is not a table": (
        toml("[services]", 'api = "python app.py"'),
        2,
        ("service 'api' must be a table", "the string 'python app.py'"),
        ("[services.api]",),
    ),
    # -- service names ---------------------------------------------------------------------
    "service name with a slash": (
        toml("", '[services."my/svc"]', 'command = "x"'),
        2,
        ("service name 'my/svc'",),
        ("letters, digits",),
    ),
    "service name starting with a dot": (
        toml('[services.".hidden"]', 'command = "x"'),
        1,
        ("service name '.hidden'",),
        ("starting with a letter or digit",),
    ),
    "empty service name": (toml('[services.""]', 'command = "x"'), 1, ("service name ''",), ()),
    "service name of 64 characters": (
        toml(f"[services.{'a' * 64}]", 'command = "x"'),
        1,
        (f"service name '{'a' * 64}'",),
        ("1 to 63",),
    ),
    # -- keys ------------------------------------------------------------------------------
    "unknown key, close to a field": (
        toml("[services.api]", 'comand = "python app.py"', 'command = "x"'),
        2,
        ("unknown key 'comand' in service 'api'",),
        ("did you mean 'command'?",),
    ),
    "unknown key, nothing close": (
        api("zzz = 1"),
        3,
        ("unknown key 'zzz' in service 'api'",),
        ("valid keys: command, env, env_file, required_env, cwd, payload, user, port",),
    ),
    "missing command": (
        toml("[services.api]", "port = 8000"),
        1,
        ("service 'api' has no 'command'",),
        ("command = ",),
    ),
    # -- command ---------------------------------------------------------------------------
    "command is an empty string": (
        toml("[services.api]", "", 'command = ""'),
        3,
        ("service 'api': 'command' is empty",),
        ("command = ",),
    ),
    "command is blank": (
        toml("[services.api]", 'command = "   "'),
        2,
        ("'command' is empty",),
        (),
    ),
    "command is an empty list": (
        toml("[services.api]", "command = []"),
        2,
        ("'command' is an empty list",),
        ('["python", "app.py"]',),
    ),
    "command list holds a number": (
        toml("[services.api]", 'command = ["sleep", 5]'),
        2,
        ("'command' item 2 must be a string", "the integer 5"),
        (),
    ),
    "command list holds an empty string": (
        toml("[services.api]", 'command = ["echo", ""]'),
        2,
        ("'command' item 2 is an empty string",),
        (),
    ),
    "command is a number": (
        toml("[services.api]", "command = 42"),
        2,
        ("'command' must be a string or a list of strings", "the integer 42"),
        (),
    ),
    "command with an unclosed quote": (
        toml("[services.api]", 'command = "python -c \'print(1)"'),
        2,
        ("'command' \"python -c 'print(1)\" cannot be split", "No closing quotation"),
        ("close the quote",),
    ),
    "command with a multi-line string": (
        toml("[services.api]", 'command = """', "python", '-c "1"""'),
        2,
        ("cannot be split",),
        (),
    ),
    **{
        f"command with shell operator {op}": (
            toml("[services.api]", "# a comment", f'command = "run {op} other"'),
            3,
            (f"'command' 'run {op} other'", f"shell operator '{op}'", "no shell runs"),
            (f'command = ["sh", "-c", "run {op} other"]',),
        )
        for op in ("|", "||", "&&", ";", ">", ">>", "<", "&", "2>&1")
    },
    "command with a NUL character": (
        toml("[services.api]", 'command = ["a\\u0000b"]'),
        2,
        ("'command' contains a NUL character",),
        ("\\u0000",),
    ),
    # -- env -------------------------------------------------------------------------------
    "env is a string": (
        api('env = "A=1"'),
        3,
        ("service 'api': 'env' must be a table", "the string 'A=1'"),
        ('env = { LOG_LEVEL = "info" }',),
    ),
    "env value is a list": (
        api('env = { A = "1", B = [1, 2] }'),
        3,
        ("'env' value of 'B' must be a string", "the list [1, 2]"),
        ('B = "..."',),
    ),
    "env value is a date": (
        api("env = { WHEN = 1979-05-27 }"),
        3,
        ("'env' value of 'WHEN'", "1979-05-27"),
        (),
    ),
    "env value is a table, written dotted": (
        api('env.GOOD = "1"', 'env.BAD.X = "2"'),
        4,
        ("'env' value of 'BAD' must be a string", "a table"),
        (),
    ),
    "env name starts with a digit": (
        api("[services.api.env]", 'OK = "1"', '"1A" = "x"'),
        5,
        ("'env' name '1A' is not a valid environment variable name",),
        ("letters, digits and '_'",),
    ),
    "env name with a dash": (
        api('env = { "LOG-LEVEL" = "info" }'),
        3,
        ("'env' name 'LOG-LEVEL'",),
        (),
    ),
    "env value with a NUL character": (
        api('env = { A = "x\\u0000" }'),
        3,
        ("'env' value of 'A' contains a NUL character",),
        (),
    ),
    # -- paths -----------------------------------------------------------------------------
    "cwd with a NUL character": (
        api('cwd = "a\\u0000"'),
        3,
        ("'cwd' 'a\\x00' contains a NUL character",),
        (),
    ),
    "env_file is a number": (
        api("env_file = 1"),
        3,
        ("'env_file' must be a string path", "the integer 1"),
        (),
    ),
    "env_file is empty": (api('env_file = ""'), 3, ("'env_file' is empty",), ()),
    "env_file starts with a tilde": (
        api('env_file = "~/.env"'),
        3,
        ("'env_file' '~/.env'", "not expanded"),
        ("absolute path",),
    ),
    "cwd is a list": (
        api('cwd = ["a"]'),
        3,
        ("'cwd' must be a string path", 'the list ["a"]'),
        (),
    ),
    "cwd is empty": (api('cwd = ""'), 3, ("'cwd' is empty",), ()),
    # -- user ------------------------------------------------------------------------------
    "user is empty": (api('user = ""'), 3, ("service 'api': 'user' is empty",), ()),
    "user is a negative uid": (api("user = -1"), 3, ("'user'", "the integer -1"), ()),
    "user is a boolean": (api("user = true"), 3, ("'user'", "the boolean true"), ()),
    "user is a float": (api("user = 1.5"), 3, ("'user'", "the number 1.5"), ()),
    # -- port ------------------------------------------------------------------------------
    "port is a string": (
        api('port = "80a"'),
        3,
        ("service 'api': 'port' must be an integer from 1 to 65535, got the string '80a'",),
        ("port = 8000",),
    ),
    "port is 0": (api("port = 0"), 3, ("'port'", "the integer 0"), ()),
    "port is too high": (api("port = 65536"), 3, ("'port'", "the integer 65536"), ()),
    "port is a boolean": (api("port = true"), 3, ("'port'", "the boolean true"), ()),
    "port is a float": (api("port = 80.0"), 3, ("'port'", "the number 80.0"), ()),
    "port used twice": (
        toml(
            "[services.api]",
            'command = "a"',
            "port = 8000",
            "[services.web]",
            'command = "b"',
            "port = 8000",
        ),
        6,
        ("service 'web': port 8000 is already used by service 'api' (line 3)",),
        ("its own port",),
    ),
    # -- depends_on ------------------------------------------------------------------------
    "depends_on an unknown service, close to one": (
        toml(
            "[services.api]",
            'command = "a"',
            'depends_on = ["datbase"]',
            "[services.database]",
            'command = "b"',
        ),
        3,
        ("service 'api' depends on 'datbase', which is not declared",),
        ("did you mean 'database'?",),
    ),
    "depends_on an unknown service, nothing close": (
        api('depends_on = ["zzz"]'),
        3,
        ("depends on 'zzz', which is not declared",),
        ("declared services: api",),
    ),
    "depends_on itself": (
        api('depends_on = "api"'),
        3,
        ("service 'api' depends on itself",),
        ("remove 'api' from its depends_on",),
    ),
    "depends_on is a number": (
        api("depends_on = 1"),
        3,
        ("'depends_on' must be a list of service names", "the integer 1"),
        ('depends_on = ["db"]',),
    ),
    "depends_on lists a table": (
        api("depends_on = [{ name = 'db' }]"),
        3,
        ("'depends_on' must list service names", "a table"),
        (),
    ),
    "dependency cycle": (
        toml(
            "[services.a]",
            'command = "a"',
            'depends_on = ["b"]',
            "[services.b]",
            'command = "b"',
            'depends_on = ["c"]',
            "[services.c]",
            'command = "c"',
            'depends_on = ["a"]',
        ),
        3,
        ("dependency cycle: a -> b -> c -> a",),
        ("remove one",),
    ),
    # -- stopping --------------------------------------------------------------------------
    "stop_signal unknown name": (
        api('stop_signal = "FOO"'),
        3,
        ("service 'api': 'stop_signal' 'FOO' is not a signal",),
        ("TERM, INT, QUIT, HUP, KILL, USR1, USR2",),
    ),
    "stop_signal unknown number": (
        api("stop_signal = 999"),
        3,
        ("'stop_signal' 999 is not a signal number",),
        ("TERM",),
    ),
    "stop_signal is a boolean": (
        api("stop_signal = false"),
        3,
        ("'stop_signal' must be a signal name or number", "the boolean false"),
        ("TERM",),
    ),
    "stop_timeout is not a duration": (
        api('stop_timeout = "soon"'),
        3,
        ("'stop_timeout'", "'soon'"),
        ('stop_timeout = "30s"',),
    ),
    "stop_timeout is 0": (api("stop_timeout = 0"), 3, ("'stop_timeout'", "the integer 0"), ()),
    "stop_timeout is negative": (
        api("stop_timeout = -1.5"),
        3,
        ("'stop_timeout'", "the number -1.5"),
        (),
    ),
    "stop_timeout is over an hour": (
        api('stop_timeout = "1h1s"'),
        3,
        ("at most 1h", "the string '1h1s'"),
        (),
    ),
    "stop_timeout is nan": (api("stop_timeout = nan"), 3, ("'stop_timeout'", "nan"), ()),
    "stop_timeout is a boolean": (
        api("stop_timeout = true"),
        3,
        ("'stop_timeout' must be a duration", "the boolean true"),
        (),
    ),
    # -- checks ----------------------------------------------------------------------------
    "health path without a port": (
        api('health = "/healthz"'),
        3,
        ("the http check in 'health' has no port to probe",),
        ("add port = N", 'health = { http = "/healthz", port = N }'),
    ),
    "ready tcp true without a port": (
        api("ready = { tcp = true }"),
        3,
        ("the tcp check in 'ready' has no port",),
        ("ready = { tcp = N }",),
    ),
    "health is not a path": (
        api("port = 80", 'health = "healthz"'),
        4,
        ("'health' 'healthz' is not a path",),
        ('health = "/healthz"',),
    ),
    "health is a number": (
        api("health = 8080"),
        3,
        ("'health' must be an HTTP path or a table", "the integer 8080"),
        ("tcp = 5432",),
    ),
    "check with two kinds": (
        api('ready = { tcp = 5432, exec = "pg_isready" }'),
        3,
        ("exactly one kind of check", "tcp and exec"),
        (),
    ),
    "check with no kind": (
        api('ready = { interval = "2s" }'),
        3,
        ("exactly one kind of check", "found none"),
        (),
    ),
    "check with an unknown key": (
        api("ready = { tcp = 5432, intervall = 2 }"),
        3,
        ("unknown key 'intervall' in 'ready'",),
        ("interval",),
    ),
    "check interval not a duration": (
        api('ready = { tcp = 5432, interval = "often" }'),
        3,
        ("'ready.interval'", "'often'"),
        ('interval = "5s"',),
    ),
    "check timeout too long": (
        api('ready = { tcp = 5432, timeout = "10m" }'),
        3,
        ("'ready.timeout' must be more than 0 and at most 5m",),
        (),
    ),
    "check host is a name": (
        api('ready = { tcp = 5432, host = "db.internal" }'),
        3,
        ("'ready.host' must be an IP address", "'db.internal'"),
        ("names are not looked up",),
    ),
    "check port out of range": (
        api("ready = { tcp = 70000 }"),
        3,
        ("'ready.tcp' must be a port from 1 to 65535", "70000"),
        (),
    ),
    "check exec with a pipe": (
        api('health = { exec = "curl x | grep ok" }'),
        3,
        ("'health.exec'", "shell operator '|'"),
        ("health.exec = [",),
    ),
    "notify is not true": (
        api("ready = { notify = 1 }"),
        3,
        ("'ready.notify' must be true",),
        (),
    ),
    "watchdog on a readiness check": (
        api('ready = { notify = true, watchdog = "10s" }'),
        3,
        ("'ready.watchdog' is for a notify liveness check",),
        (),
    ),
    "startup_interval on a liveness check": (
        api('health = { exec = "true", startup_interval = "2s" }'),
        3,
        ("liveness checks do not run during startup",),
        ("set startup_interval on 'ready'",),
    ),
    # -- memory and startup_deadline -------------------------------------------------------
    "memory with an unknown unit": (
        api('memory = "512X"'),
        3,
        ("'memory' '512X' is not a size",),
        ('memory = "512M"',),
    ),
    "memory negative": (
        api("memory = -5"),
        3,
        ("'memory'", "too little to run a process"),
        ("at least 4.0MiB",),
    ),
    "memory tiny": (api('memory = "12K"'), 3, ("12.0KiB, too little",), ()),
    "memory absurd": (
        api('memory = "99999999G"'),
        3,
        ("'memory'", "is more than 64.0TiB"),
        ("that is no limit",),
    ),
    "memory a boolean": (api("memory = true"), 3, ("the boolean true",), ()),
    "startup_deadline not a duration": (
        api('startup_deadline = "long"'),
        3,
        ("'startup_deadline'", "'long'"),
        ("let infraveil learn it",),
    ),
    # -- required_env ----------------------------------------------------------------------
    "required_env is a table": (
        api('required_env = { DATABASE_URL = "x" }'),
        3,
        (
            "service 'api': 'required_env' must be a list of environment variable names,"
            " got a table",
        ),
        ('required_env = ["DATABASE_URL", "SECRET_KEY"]',),
    ),
    "required_env is a number": (
        api("required_env = 1"),
        3,
        ("'required_env' must be a list", "the integer 1"),
        (),
    ),
    "required_env lists a number": (
        api('required_env = ["A", 1]'),
        3,
        ("'required_env' must list variable names, got the integer 1",),
        ("required_env = [",),
    ),
    "required_env lists a bad name": (
        api("required_env = [", '  "DATABASE_URL",', '  "1PASSWORD",', "]"),
        3,
        ("'required_env' name '1PASSWORD' is not a valid environment variable name",),
        ("letters, digits and '_'",),
    ),
    "required_env lists an empty name": (
        api('required_env = [""]'),
        3,
        ("'required_env' name '' is not a valid",),
        (),
    ),
    # -- payload ---------------------------------------------------------------------------
    "payload is a string": (
        api('payload = "true"'),
        3,
        ("service 'api': 'payload' must be true or false, got the string 'true'",),
        ("payload = true, without quotes",),
    ),
    "payload is a number": (api("payload = 1"), 3, ("'payload'", "the integer 1"), ()),
    # -- soak and watch --------------------------------------------------------------------
    "soak is not a duration": (
        api('soak = "a while"'),
        3,
        ("'soak'", "'a while'"),
        ('soak = "30s"', "soak = 0"),
    ),
    "soak is negative": (
        api("soak = -1"),
        3,
        ("'soak' must be from 0 to 1h, got the integer -1",),
        (),
    ),
    "soak is over an hour": (
        api('soak = "61m"'),
        3,
        ("'soak' must be from 0 to 1h, got the string '61m'",),
        (),
    ),
    "soak is nan": (api("soak = nan"), 3, ("'soak' must be from 0 to 1h", "nan"), ()),
    "soak is a boolean": (
        api("soak = false"),
        3,
        ("'soak' must be a duration, got the boolean false",),
        (),
    ),
    "watch is not a duration": (
        api('watch = "forever"'),
        3,
        ("'watch'", "'forever'"),
        ('watch = "5m"',),
    ),
    "watch is infinite": (api("watch = inf"), 3, ("'watch' must be from 0 to 1h", "inf"), ()),
    "watch is a list": (
        api('watch = ["60s"]'),
        3,
        ("'watch' must be a duration", "the list"),
        (),
    ),
}


@pytest.mark.parametrize(("source", "line", "message", "hint"), CASES.values(), ids=CASES.keys())
def test_each_rule_reports_one_issue_at_its_line(
    source: str, line: int | None, message: tuple[str, ...], hint: tuple[str, ...]
) -> None:
    issue = only_issue(source)
    assert issue.file == PATH
    assert issue.line == line, str(issue)
    for words in message:
        assert words in issue.message, str(issue)
    for words in hint:
        assert words in issue.hint, str(issue)
    assert issue.hint, f"every issue says what to do: {issue}"


ACCEPTED: dict[str, tuple[str, str, object]] = {
    "command list": ('command = ["a b", "c"]', "command", ("a b", "c")),
    "command with quotes": ("command = \"sh -c 'echo hi'\"", "command", ("sh", "-c", "echo hi")),
    "command with an escaped operator": ('command = "echo \\\\|"', "command", ("echo", "|")),
    "env int": ("env = { N = 4 }", "env", {"N": "4"}),
    "env float": ("env = { R = 0.5 }", "env", {"R": "0.5"}),
    "env bools": ("env = { T = true, F = false }", "env", {"T": "true", "F": "false"}),
    "env empty value": ('env = { E = "" }', "env", {"E": ""}),
    "env_file absolute": ('env_file = "/etc/app.env"', "env_file", "/etc/app.env"),
    "env_file relative": ('env_file = "conf/../.env"', "env_file", f"{BASE}/.env"),
    "cwd relative": ('cwd = "./backend/"', "cwd", f"{BASE}/backend"),
    "cwd dot": ('cwd = "."', "cwd", BASE),
    "user name": ('user = "postgres"', "user", "postgres"),
    "user uid": ("user = 0", "user", "0"),
    "port low": ("port = 1", "port", 1),
    "port high": ("port = 65535", "port", 65535),
    "depends_on one string": ('depends_on = "db"', "depends_on", ("db",)),
    "depends_on twice the same": ('depends_on = ["db", "db"]', "depends_on", ("db",)),
    "depends_on empty": ("depends_on = []", "depends_on", ()),
    "stop_signal TERM": ('stop_signal = "TERM"', "stop_signal", signal.SIGTERM),
    "stop_signal SIGINT": ('stop_signal = "SIGINT"', "stop_signal", signal.SIGINT),
    "stop_signal lower case": ('stop_signal = "quit"', "stop_signal", signal.SIGQUIT),
    "stop_signal number": ("stop_signal = 1", "stop_signal", signal.SIGHUP),
    "stop_signal USR2": ('stop_signal = " usr2 "', "stop_signal", signal.SIGUSR2),
    "stop_timeout duration": ('stop_timeout = "1m30s"', "stop_timeout", 90.0),
    "stop_timeout ms": ('stop_timeout = "500ms"', "stop_timeout", 0.5),
    "stop_timeout bare string": ('stop_timeout = "5"', "stop_timeout", 5.0),
    "stop_timeout int": ("stop_timeout = 5", "stop_timeout", 5.0),
    "stop_timeout an hour": ('stop_timeout = "1h"', "stop_timeout", 3600.0),
    "memory M": ('memory = "512M"', "memory", 512 << 20),
    "memory GiB": ('memory = "1.5GiB"', "memory", 3 << 29),
    "memory lower-case k": ('memory = "8192k"', "memory", 8 << 20),
    "memory bytes": ("memory = 67108864", "memory", 64 << 20),
    "startup_deadline": ('startup_deadline = "5m"', "startup_deadline", 300.0),
    "required_env list": (
        'required_env = ["DATABASE_URL", "_X1"]',
        "required_env",
        ("DATABASE_URL", "_X1"),
    ),
    "required_env one string": ('required_env = "SECRET"', "required_env", ("SECRET",)),
    "required_env twice the same": ('required_env = ["A", "B", "A"]', "required_env", ("A", "B")),
    "required_env empty": ("required_env = []", "required_env", ()),
    "payload true": ("payload = true", "payload", True),
    "payload false": ("payload = false", "payload", False),
    "soak duration": ('soak = "1m30s"', "soak", 90.0),
    "soak 0": ("soak = 0", "soak", 0.0),
    "soak 0s": ('soak = "0s"', "soak", 0.0),
    "soak minus 0 is 0": ('soak = "-0"', "soak", 0.0),
    "soak an hour": ('soak = "1h"', "soak", 3600.0),
    "soak float": ("soak = 2.5", "soak", 2.5),
    "watch duration": ('watch = "5m"', "watch", 300.0),
    "watch 0": ("watch = 0", "watch", 0.0),
    "watch an hour": ("watch = 3600", "watch", 3600.0),
}


CHECKS: dict[str, tuple[tuple[str, ...], str, CheckSpec | None]] = {
    "a path is http on the service port": (
        ("port = 8000", 'health = "/healthz"'),
        "health",
        CheckSpec(CheckKind.HTTP, port=8000, path="/healthz"),
    ),
    "http with its own port and cadence": (
        ('health = { http = "/h", port = 9000, interval = "10s", timeout = "1s" }',),
        "health",
        CheckSpec(CheckKind.HTTP, port=9000, path="/h", interval=10.0, timeout=1.0),
    ),
    "tcp true takes the service port": (
        ("port = 5432", "ready = { tcp = true }"),
        "ready",
        CheckSpec(CheckKind.TCP, port=5432),
    ),
    "tcp on another host": (
        ('ready = { tcp = 6379, host = "::1", startup_interval = "250ms" }',),
        "ready",
        CheckSpec(CheckKind.TCP, port=6379, host="::1", startup_interval=0.25),
    ),
    "exec string": (
        ('health = { exec = "pg_isready -q" }',),
        "health",
        CheckSpec(CheckKind.EXEC, command=("pg_isready", "-q")),
    ),
    "notify liveness gets the default watchdog": (
        ("health = { notify = true }",),
        "health",
        CheckSpec(CheckKind.NOTIFY, watchdog=30.0),
    ),
    "notify readiness": (("ready = { notify = true }",), "ready", CheckSpec(CheckKind.NOTIFY)),
    "localhost is 127.0.0.1": (
        ('ready = { tcp = 6379, host = "localhost" }',),
        "ready",
        CheckSpec(CheckKind.TCP, port=6379, host="127.0.0.1"),
    ),
    "port implies tcp readiness": (
        ("port = 8000",),
        "readiness",
        CheckSpec(CheckKind.TCP, port=8000, implied=True),
    ),
    "no port and no check: nothing": ((), "readiness", None),
    "liveness ends startup when nothing else does": (
        ('health = { exec = "true" }',),
        "startup_check",
        CheckSpec(CheckKind.EXEC, command=("true",)),
    ),
}


@pytest.mark.parametrize(("rows", "attribute", "expected"), CHECKS.values(), ids=CHECKS.keys())
def test_checks(rows: tuple[str, ...], attribute: str, expected: CheckSpec | None) -> None:
    spec = parse_manifest(api(*rows), PATH).services["api"]
    assert getattr(spec, attribute) == expected


@pytest.mark.parametrize(("row", "field", "value"), ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_values(row: str, field: str, value: object) -> None:
    rows = ["[services.api]", row] + ([] if field == "command" else ['command = "x"'])
    rows += ["[services.db]", 'command = "d"']
    spec = parse_manifest(toml(*rows), PATH).services["api"]
    assert getattr(spec, field) == value


def test_quoted_operator_is_an_argument_not_a_pipe() -> None:
    spec = parse_manifest(api().replace("python app.py", "tr '|' ,"), PATH).services["api"]
    assert spec.command == ("tr", "|", ",")


def test_list_command_may_hold_operator_words() -> None:
    spec = parse_manifest(toml("[services.api]", 'command = ["tr", "|", ","]'), PATH)
    assert spec.services["api"].command == ("tr", "|", ",")


def test_every_problem_is_reported_in_one_error() -> None:
    source = toml(
        "[services.api]",  # 1
        'comand = "python app.py"',  # 2  unknown key; and api has no command
        'port = "80a"',  # 3
        "env = { A = [1], B = {} }",  # 4  two bad values
        "[services.web]",  # 5
        'command = "a | b"',  # 6
        "port = 8000",  # 7
        'depends_on = ["db"]',  # 8
        "[services.worker]",  # 9
        'command = "w"',  # 10
        "port = 8000",  # 11
        'stop_signal = "NOPE"',  # 12
        "[servics.x]",  # 13
    )
    found = [(i.line, i.message) for i in issues_of(source)]
    expected = [
        (1, "service 'api' has no 'command'"),
        (2, "unknown key 'comand' in service 'api'"),
        (3, "'port' must be an integer from 1 to 65535, got the string '80a'"),
        (4, "'env' value of 'A'"),
        (4, "'env' value of 'B'"),
        (6, "shell operator '|'"),
        (8, "depends on 'db', which is not declared"),
        (11, "port 8000 is already used by service 'web' (line 7)"),
        (12, "'stop_signal' 'NOPE'"),
        (13, "unknown top-level key 'servics'"),
    ]
    assert len(found) == len(expected), found
    for (line, message), (want_line, want_words) in zip(found, expected, strict=True):
        assert line == want_line and want_words in message, (line, message)


def test_two_separate_cycles_are_two_issues_and_tangled_ones_one() -> None:
    def service(name: str, *deps: str) -> str:
        return f'[services.{name}]\ncommand = "x"\ndepends_on = {list(deps)!r}\n'.replace("'", '"')

    source = (
        service("a", "b")  # lines 1-3
        + service("b", "a", "c")  # 4-6
        + service("c", "b")  # 7-9: a, b, c form one tangle with two cycles
        + service("d", "e")  # 10-12
        + service("e", "d")  # 13-15
        + service("f", "a")  # 16-18: depends on a cycle without being in one
    )
    cycles = [(i.line, i.message) for i in issues_of(source)]
    assert cycles == [
        (3, "dependency cycle: a -> b -> a"),
        (12, "dependency cycle: d -> e -> d"),
    ]


def test_long_cycle_is_reported_without_hanging() -> None:
    count = 300
    source = "".join(
        f'[services.s{i}]\ncommand = "x"\ndepends_on = ["s{(i + 1) % count}"]\n'
        for i in range(count)
    )
    [issue] = issues_of(source)
    assert issue.line == 3
    assert issue.message.startswith("dependency cycle: s0 -> s1 -> s2 ")
    assert issue.message.endswith(f"s{count - 1} -> s0")


def test_soak_minus_zero_is_plain_zero() -> None:
    spec = parse_manifest(api('soak = "-0"'), PATH).services["api"]
    assert math.copysign(1.0, spec.soak) == 1.0


def test_cwd_declared_says_whether_the_manifest_sets_cwd() -> None:
    source = toml(
        "[services.a]",
        'command = "x"',
        "[services.b]",
        'command = "x"',
        'cwd = "."',  # the same directory as the default, but said
    )
    services = parse_manifest(source, PATH).services
    assert (services["a"].cwd, services["a"].cwd_declared) == (BASE, False)
    assert (services["b"].cwd, services["b"].cwd_declared) == (BASE, True)


def test_a_payload_service_runs_in_its_release_unless_it_sets_cwd() -> None:
    source = toml(
        "[services.api]",
        'command = "./server"',
        "payload = true",
        "[services.worker]",
        'command = "./worker"',
        "payload = true",
        'cwd = "/srv/shared"',
        "[services.db]",
        'command = "postgres"',
    )
    services = parse_manifest(source, PATH).services
    assert services["api"].runs_in_release
    assert services["worker"].payload and not services["worker"].runs_in_release
    assert not services["db"].payload and not services["db"].runs_in_release


def test_full_manifest_becomes_these_specs() -> None:
    source = toml(
        "# the demo",
        "[services.db]",
        "command = \"postgres -D '/var/lib/my pg'\"",
        "user = 999",
        'stop_signal = "sigint"',
        'stop_timeout = "1m30s"',
        "",
        "[services.api]",
        'command = ["python", "-m", "uvicorn", "app:app"]',
        'env = { LOG_LEVEL = "info", WORKERS = 4, DEBUG = false, RATIO = 0.5 }',
        'env_file = ".env"',
        'cwd = "backend/../srv"',
        'user = "www-data"',
        "port = 8000",
        'depends_on = "db"',
        "stop_signal = 15",
        "stop_timeout = 2.5",
        "",
        "[services.web]",
        'command = "node server.js"',
        'cwd = "/opt/web"',
        'env_file = "/etc/web.env"',
        'stop_signal = "KILL"',
        "stop_timeout = 3600",
        "payload = true",
        'required_env = ["WEB_TOKEN", "DATABASE_URL"]',
        'soak = "30s"',
        "watch = 0",
    )
    manifest = parse_manifest(source, PATH)
    assert manifest.path == PATH
    assert list(manifest.services) == ["db", "api", "web"]
    assert manifest.services["db"] == ServiceSpec(
        name="db",
        command=("postgres", "-D", "/var/lib/my pg"),
        cwd=BASE,
        user="999",
        stop_signal=signal.SIGINT,
        stop_timeout=90.0,
        line=2,
    )
    assert manifest.services["api"] == ServiceSpec(
        name="api",
        command=("python", "-m", "uvicorn", "app:app"),
        cwd=f"{BASE}/srv",
        cwd_declared=True,
        env={"LOG_LEVEL": "info", "WORKERS": "4", "DEBUG": "false", "RATIO": "0.5"},
        env_file=f"{BASE}/.env",
        user="www-data",
        port=8000,
        depends_on=("db",),
        stop_signal=signal.SIGTERM,
        stop_timeout=2.5,
        line=8,
    )
    assert manifest.services["web"] == ServiceSpec(
        name="web",
        command=("node", "server.js"),
        cwd="/opt/web",
        cwd_declared=True,
        env_file="/etc/web.env",
        stop_signal=signal.SIGKILL,
        stop_timeout=3600.0,
        payload=True,
        required_env=("WEB_TOKEN", "DATABASE_URL"),
        soak=30.0,
        watch=0.0,
        line=19,
    )


def test_omitted_fields_take_their_defaults() -> None:
    spec = parse_manifest(toml("[services.api]", 'command = "run"'), PATH).services["api"]
    assert spec == ServiceSpec(name="api", command=("run",), cwd=BASE, line=1)
    # The documented defaults are the ones that apply.
    fields = {f.name: f for f in SERVICE_FIELDS}
    context = ParseContext(base_dir=BASE)
    assert fields["stop_signal"].parse(fields["stop_signal"].default, context) == spec.stop_signal
    assert fields["stop_timeout"].parse(fields["stop_timeout"].default, context) == (
        spec.stop_timeout
    )
    assert fields["soak"].parse(fields["soak"].default, context) == spec.soak == 10.0
    assert fields["watch"].parse(fields["watch"].default, context) == spec.watch == 60.0
    assert fields["payload"].default == "false" and spec.payload is False
    assert fields["required_env"].default == "none" and spec.required_env == ()
    assert spec.cwd_declared is False and not spec.runs_in_release


def test_relative_manifest_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    manifest = parse_manifest(toml("[services.api]", 'command = "x"', 'cwd = "sub"'), "m.toml")
    assert manifest.path == str(tmp_path / "m.toml")
    assert manifest.services["api"].cwd == str(tmp_path / "sub")
    with pytest.raises(ManifestError) as caught:
        parse_manifest("nope = 1", "m.toml")
    assert caught.value.issues[0].file == str(tmp_path / "m.toml")


def test_services_may_be_written_as_dotted_keys_and_inline_tables() -> None:
    source = toml(
        'services.api.command = "a"',
        "services.api.port = 1",
        "[services.web]",
        'command = "b"',
        "port = 1",
    )
    [issue] = issues_of(source)
    assert (issue.line, issue.message) == (
        5,
        "service 'web': port 1 is already used by service 'api' (line 2)",
    )
    manifest = parse_manifest(toml("services = { api = { command = 'a' } }"), PATH)
    assert manifest.services["api"].line == 1


def test_start_order_puts_dependencies_first() -> None:
    source = toml(
        "[services.web]",
        'command = "w"',
        'depends_on = ["api", "cache"]',
        "[services.api]",
        'command = "a"',
        'depends_on = ["db"]',
        "[services.tool]",
        'command = "t"',
        "[services.db]",
        'command = "d"',
        "[services.cache]",
        'command = "c"',
    )
    manifest = parse_manifest(source, PATH)
    assert manifest.start_order() == ("db", "api", "cache", "web", "tool")
    assert manifest.dependants("db") == ("api",)


# -- fields.py is the one declaration ----------------------------------------------------


def test_fields_are_exactly_the_spec_fields() -> None:
    declared = [f.name for f in SERVICE_FIELDS]
    flags = [f.declared_flag for f in SERVICE_FIELDS if f.declared_flag is not None]
    spec_fields = [f.name for f in dataclasses.fields(ServiceSpec)]
    assert sorted(declared + flags) == sorted(set(spec_fields) - {"name", "line"})
    assert len(set(declared + flags)) == len(declared + flags)


@pytest.mark.parametrize("field", SERVICE_FIELDS, ids=lambda f: f.name)
def test_every_field_is_documented_and_its_example_parses(field: Any) -> None:
    assert field.type and field.default and field.description.endswith(".")
    assert re.fullmatch(rf"{field.name} = .+", field.example)
    rows = [field.example] if field.name == "command" else ['command = "x"', field.example]
    if field.name == "depends_on":
        rows += ["[services.db]", 'command = "d"', "[services.cache]", 'command = "c"']
    if field.name in ("health", "ready"):
        rows.append("port = 8000")
    manifest = parse_manifest(toml("[services.api]", *rows), PATH)
    assert "api" in manifest.services


def test_minimal_example_is_a_valid_manifest() -> None:
    assert len(parse_manifest(MINIMAL_EXAMPLE, PATH).services) == 1


# -- load_manifest -------------------------------------------------------------------------


def test_load_manifest_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "infraveil.toml"
    path.write_text(toml("[services.api]", 'command = "x"', 'env_file = ".env"'))
    manifest = load_manifest(path)
    assert manifest.path == str(path)
    assert manifest.services["api"].env_file == str(tmp_path / ".env")
    assert manifest.services["api"].cwd == str(tmp_path)


def test_load_manifest_reports_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    [issue] = caught.value.issues
    assert issue.file == str(path) and issue.line is None
    assert str(path) in issue.message and "create it" in issue.hint


def test_load_manifest_reports_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    [issue] = caught.value.issues
    assert "is a directory" in issue.message and issue.hint


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_load_manifest_reports_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "infraveil.toml"
    path.write_text(MINIMAL_EXAMPLE)
    path.chmod(0)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    [issue] = caught.value.issues
    assert f"cannot read {path}" in issue.message and "may read it" in issue.hint


def test_load_manifest_reports_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "infraveil.toml"
    path.write_bytes(b'[services.api]\ncommand = "caf\xe9"\n')
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    [issue] = caught.value.issues
    assert (issue.line, issue.message) == (2, "the manifest is not UTF-8 text (byte 0xe9)")


def test_absurdly_nested_values_are_a_manifest_error() -> None:
    depth = 50_000
    [issue] = issues_of("x = " + "[" * depth + "]" * depth)
    assert issue.file == PATH


# -- never anything but a Manifest or a ManifestError ----------------------------------------


def check_outcome(source: str) -> Manifest | None:
    """Parse `source`; a ManifestError is fine, any other exception fails the test."""
    try:
        manifest = parse_manifest(source, PATH)
    except ManifestError as exc:
        line_count = max(1, source.count("\n") + 1)
        assert exc.issues
        for issue in exc.issues:
            assert issue.file == PATH and issue.message
            assert issue.line is None or 1 <= issue.line <= line_count, issue
        return None
    order = manifest.start_order()
    assert sorted(order) == sorted(manifest.services)
    for name, spec in manifest.services.items():
        assert all(order.index(dep) < order.index(name) for dep in spec.depends_on)
        assert os.path.isabs(spec.cwd) and spec.command
    return manifest


FRAGMENTS = [
    "[services.api]",
    "[services.db]",
    '[services."a b"]',
    "[[services]]",
    "[services]",
    'command = "python app.py"',
    "command = ['a', '|', 'b']",
    'command = "a && b"',
    "command = [",
    "]",
    '"x",',
    'comand = "x"',
    "port = 8000",
    'port = "80"',
    'depends_on = ["db"]',
    'depends_on = ["api"]',
    "depends_on = 'api'",
    "env = { A = 1, B = true }",
    "env.C = [1]",
    'stop_signal = "TERM"',
    "stop_signal = 99",
    'stop_timeout = "1m"',
    "stop_timeout = inf",
    'cwd = "~"',
    'user = ""',
    '"""',
    "# comment",
    "",
    "x = ",
    "services.web.command = 'w'",
]


@given(st.text())
def test_arbitrary_text_never_raises_anything_else(source: str) -> None:
    check_outcome(source)


@given(st.binary().map(lambda b: b.decode("utf-8", errors="replace")))
def test_arbitrary_bytes_never_raise_anything_else(source: str) -> None:
    check_outcome(source)


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("\n".join))
def test_manifest_like_text_never_raises_anything_else(source: str) -> None:
    check_outcome(source)


# A tiny TOML writer, so that generated documents are valid TOML and reach the manifest rules.

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def dump_key(key: str) -> str:
    return key if _BARE.fullmatch(key) else dump_value(key)


def dump_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = "".join(
            "\\\\" if c == "\\" else '\\"' if c == '"' else f"\\u{ord(c):04x}" if _control(c) else c
            for c in value
        )
        return f'"{escaped}"'
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(dump_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{dump_key(k)} = {dump_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def _control(c: str) -> bool:
    return ord(c) < 0x20 or ord(c) == 0x7F


def dump_document(document: dict[str, Any]) -> tuple[str, dict[str, int]]:
    """TOML text for {top-level key: {name: table}}, and the line of each name's header."""
    rows: list[str] = []
    header_lines: dict[str, int] = {}
    for top, tables in document.items():
        for name, table in tables.items():
            rows.append(f"[{dump_key(top)}.{dump_key(name)}]")
            header_lines[name] = len(rows)
            rows += [f"{dump_key(k)} = {dump_value(v)}" for k, v in table.items()]
    return "\n".join(rows) + "\n", header_lines


NAMES = st.sampled_from(["api", "db", "web", "worker", "a b", "", ".x"]) | st.text(max_size=5)
SCALARS: st.SearchStrategy[Any] = (
    st.text(max_size=12)
    | st.integers(-5, 70_000)
    | st.floats()
    | st.booleans()
    | st.sampled_from(["TERM", "sigint", "10s", "1h1s", "a | b", "x 'y", "~/x", "8000"])
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "command": st.sampled_from(["python app.py", "a | b", "", "x 'y"]) | VALUES,
    "port": st.sampled_from([8000, 8001, 0, 65536, "80a"]),
    "depends_on": st.lists(NAMES, max_size=3) | NAMES | VALUES,
    "env": st.dictionaries(st.text(max_size=6), SCALARS, max_size=3) | VALUES,
    "required_env": st.lists(st.sampled_from(["A", "DATABASE_URL", "1X", ""])) | VALUES,
    "payload": st.booleans() | VALUES,
    "soak": st.sampled_from([0, "0s", "10s", "2h", -1]) | VALUES,
    "watch": st.sampled_from([0, "60s", "1h1s"]) | VALUES,
}


@st.composite
def service_tables(draw: st.DrawFn) -> dict[str, Any]:
    table: dict[str, Any] = {}
    keys = [f.name for f in SERVICE_FIELDS] + ["comand", "ports", "zzz"]
    for key in draw(st.lists(st.sampled_from(keys), unique=True, max_size=6)):
        table[key] = draw(FIELD_VALUES.get(key, VALUES))
    return table


DOCUMENTS = st.dictionaries(
    st.sampled_from(["services", "services", "service", "x"]),
    st.dictionaries(NAMES, service_tables(), max_size=4),
    max_size=2,
)


@given(DOCUMENTS)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_generated_manifests_never_raise_anything_else(document: dict[str, Any]) -> None:
    source, header_lines = dump_document(document)
    manifest = check_outcome(source)
    if manifest is not None:
        for name, spec in manifest.services.items():
            assert spec.line == header_lines[name]


POOL = ["api", "db", "web", "worker", "cache"]


@st.composite
def plausible_services(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """Manifests that are valid but for ports and depends_on, so those checks meet each other."""
    services: dict[str, dict[str, Any]] = {}
    for name in draw(st.lists(st.sampled_from(POOL), unique=True, min_size=1)):
        table: dict[str, Any] = {"command": draw(st.sampled_from(["run it", ["run", "it"]]))}
        if draw(st.booleans()):
            table["port"] = draw(st.sampled_from([8000, 8001, 8002, 9000]))
        if draw(st.booleans()):
            table["depends_on"] = draw(st.lists(st.sampled_from(POOL), max_size=3))
        services[name] = table
    return services


def is_valid(services: dict[str, dict[str, Any]]) -> bool:
    """An independent oracle for the cross-service rules, using graphlib for cycles."""
    ports = [t["port"] for t in services.values() if "port" in t]
    if len(ports) != len(set(ports)):
        return False
    graph = {name: set(t.get("depends_on", ())) for name, t in services.items()}
    if any(name in deps or not deps <= services.keys() for name, deps in graph.items()):
        return False
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        return False
    return True


@given(plausible_services())
def test_cross_service_rules_agree_with_an_oracle(services: dict[str, dict[str, Any]]) -> None:
    source, header_lines = dump_document({"services": services})
    manifest = check_outcome(source)
    assert (manifest is not None) == is_valid(services), source
    if manifest is not None:
        assert list(manifest.services) == list(services)
        for name, spec in manifest.services.items():
            assert spec.line == header_lines[name]
            assert spec.depends_on == tuple(dict.fromkeys(services[name].get("depends_on", ())))


@given(DOCUMENTS.filter(lambda d: "nan" not in repr(d)))
def test_the_test_writer_writes_valid_toml(document: dict[str, Any]) -> None:
    # Keeps the test above honest: what it feeds the parser is TOML, not mostly syntax errors.
    source, _ = dump_document(document)
    assert tomllib.loads(source) == {k: v for k, v in document.items() if v}
