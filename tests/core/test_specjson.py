"""The JSON form of a ServiceSpec: every field back exactly, equal specs as equal text, and
records from another version (unknown keys, missing keys) still read."""

from __future__ import annotations

import dataclasses
import json
import signal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infraveil.core.checks import CheckKind, CheckSpec
from infraveil.core.fields import SERVICE_FIELDS
from infraveil.core.manifest import parse_manifest
from infraveil.core.spec import ServiceSpec
from infraveil.core.specjson import spec_from_json, spec_to_json

TEXT = st.text(max_size=12)
WORDS = st.lists(TEXT, max_size=4).map(tuple)
SECONDS = st.floats(min_value=0, max_value=1e6) | st.integers(0, 3600).map(float)
PORTS = st.none() | st.integers(1, 65535)

CHECK_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "kind": st.sampled_from(CheckKind),
    "port": PORTS,
    "host": st.sampled_from(["127.0.0.1", "::1"]) | TEXT,
    "path": TEXT,
    "command": WORDS,
    "interval": SECONDS,
    "startup_interval": SECONDS,
    "timeout": SECONDS,
    "watchdog": st.none() | SECONDS,
    "implied": st.booleans(),
}
CHECKS = st.none() | st.builds(CheckSpec, **CHECK_FIELDS)

SPEC_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(["api", "db"]) | TEXT,
    "command": st.lists(TEXT, min_size=1, max_size=4).map(tuple),
    "cwd": st.sampled_from(["/srv/app", "/"]) | TEXT,
    "env": st.dictionaries(TEXT, TEXT, max_size=4).map(MappingProxyType),
    "env_file": st.none() | TEXT,
    "secrets": st.none() | TEXT,
    "required_env": WORDS,
    "user": st.none() | TEXT,
    "port": PORTS,
    "depends_on": WORDS,
    "stop_signal": st.sampled_from(signal.Signals),
    "stop_timeout": SECONDS,
    "health": CHECKS,
    "ready": CHECKS,
    "startup_deadline": st.none() | SECONDS,
    "memory": st.none() | st.integers(0, 1 << 50),
    "payload": st.booleans(),
    "cwd_declared": st.booleans(),
    "soak": SECONDS,
    "watch": SECONDS,
    "line": st.none() | st.integers(1, 10_000),
}
SPECS = st.builds(ServiceSpec, **SPEC_FIELDS)


def text(spec: ServiceSpec) -> str:
    return json.dumps(spec_to_json(spec), sort_keys=True, allow_nan=False)


def assert_identical(got: object, want: object, where: str = "spec") -> None:
    """Equal, and of the same types all the way down: SIGTERM == 15 and "http" ==
    CheckKind.HTTP, so == alone would let a plain int or str through."""
    if dataclasses.is_dataclass(want):
        assert type(got) is type(want), where
        for f in dataclasses.fields(want):
            assert_identical(getattr(got, f.name), getattr(want, f.name), f"{where}.{f.name}")
        return
    if isinstance(want, MappingProxyType):
        assert type(got) is MappingProxyType and dict(got) == dict(want), where
        return
    assert type(got) is type(want) and got == want, (where, got, want)


def test_the_strategies_cover_every_field() -> None:
    assert set(SPEC_FIELDS) == {f.name for f in dataclasses.fields(ServiceSpec)}
    assert set(CHECK_FIELDS) == {f.name for f in dataclasses.fields(CheckSpec)}


@given(SPECS)
def test_every_spec_comes_back_exactly_through_json_text(spec: ServiceSpec) -> None:
    again = spec_from_json(json.loads(text(spec)))
    assert again == spec
    assert_identical(again, spec)
    assert text(again) == text(spec)


@given(SPECS)
def test_equal_specs_are_equal_text(spec: ServiceSpec) -> None:
    reordered = dataclasses.replace(
        spec,
        env=MappingProxyType(dict(reversed(spec.env.items()))),
        # an int duration equals its float, and -0.0 equals 0.0
        stop_timeout=int(spec.stop_timeout)
        if spec.stop_timeout.is_integer()
        else spec.stop_timeout,
        soak=-0.0 if spec.soak == 0 else spec.soak,
    )
    assert reordered == spec
    assert text(reordered) == text(spec)


@given(SPECS, SPECS)
def test_different_specs_are_different_text(a: ServiceSpec, b: ServiceSpec) -> None:
    assert (text(a) == text(b)) == (a == b)


@given(
    SPECS, st.sets(st.sampled_from([f for f in SPEC_FIELDS if f not in ("name", "command", "cwd")]))
)
def test_keys_an_older_version_did_not_write_take_their_defaults(
    spec: ServiceSpec, missing: set[str]
) -> None:
    data = {k: v for k, v in spec_to_json(spec).items() if k not in missing}
    defaults = ServiceSpec(name="x", command=("x",), cwd="/")
    expected = dataclasses.replace(spec, **{k: getattr(defaults, k) for k in missing})
    assert_identical(spec_from_json(data), expected)


@given(SPECS)
def test_keys_a_later_version_wrote_are_ignored(spec: ServiceSpec) -> None:
    data = spec_to_json(spec)
    data["gateway"] = {"weight": 3}
    for role in ("health", "ready"):
        if data[role] is not None:
            data[role]["grpc_service"] = "health.v1"
    assert_identical(spec_from_json(data), spec)


def test_the_form_is_plain_and_readable() -> None:
    spec = ServiceSpec(
        name="api",
        command=("python", "app.py"),
        cwd="/srv/app",
        env=MappingProxyType({"LOG_LEVEL": "info"}),
        port=8000,
        stop_signal=signal.SIGINT,
        health=CheckSpec(CheckKind.HTTP, port=8000, path="/healthz"),
        required_env=("DATABASE_URL",),
        payload=True,
        line=3,
    )
    assert spec_to_json(spec) == {
        "name": "api",
        "command": ["python", "app.py"],
        "cwd": "/srv/app",
        "env": {"LOG_LEVEL": "info"},
        "env_file": None,
        "secrets": None,
        "required_env": ["DATABASE_URL"],
        "user": None,
        "port": 8000,
        "depends_on": [],
        "stop_signal": "SIGINT",
        "stop_timeout": 10.0,
        "health": {
            "kind": "http",
            "port": 8000,
            "host": "127.0.0.1",
            "path": "/healthz",
            "command": [],
            "interval": 5.0,
            "startup_interval": 1.0,
            "timeout": 3.0,
            "watchdog": None,
            "implied": False,
        },
        "ready": None,
        "startup_deadline": None,
        "memory": None,
        "payload": True,
        "cwd_declared": False,
        "soak": 10.0,
        "watch": 60.0,
        "line": 3,
    }


def test_an_oldest_record_needs_only_name_command_and_cwd() -> None:
    spec = spec_from_json({"name": "api", "command": ["run"], "cwd": "/srv"})
    assert_identical(spec, ServiceSpec(name="api", command=("run",), cwd="/srv"))
    assert spec_from_json({"name": "api", "command": ["run"], "cwd": "/srv", "soak": 5}).soak == 5.0


DAMAGED: dict[str, tuple[dict[str, Any], str]] = {
    "no command": ({"name": "api", "cwd": "/"}, "command: missing, and it has no default"),
    "a command not an array": (
        {"name": "api", "command": "run", "cwd": "/"},
        "command: expected an array",
    ),
    "a word not a string": (
        {"name": "api", "command": ["run", 1], "cwd": "/"},
        "command[1]: expected a string, got 1",
    ),
    "a port as text": (
        {"name": "api", "command": ["run"], "cwd": "/", "port": "80"},
        "port: expected an integer, got '80'",
    ),
    "a boolean port": (
        {"name": "api", "command": ["run"], "cwd": "/", "port": True},
        "port: expected an integer, got True",
    ),
    "a signal number": (
        {"name": "api", "command": ["run"], "cwd": "/", "stop_signal": 15},
        "stop_signal: 15 is not a Signals",
    ),
    "an unknown check kind": (
        {"name": "api", "command": ["run"], "cwd": "/", "ready": {"kind": "grpc"}},
        "ready.kind: 'grpc' is not a CheckKind",
    ),
    "a check without a kind": (
        {"name": "api", "command": ["run"], "cwd": "/", "ready": {"port": 1}},
        "ready.kind: missing, and it has no default",
    ),
    "an env value not a string": (
        {"name": "api", "command": ["run"], "cwd": "/", "env": {"N": 4}},
        "env.N: expected a string, got 4",
    ),
}


@pytest.mark.parametrize(("data", "message"), DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_record_is_a_value_error_naming_the_key(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        spec_from_json(data)
    assert message in str(caught.value)


def test_every_service_of_a_real_manifest_comes_back_exactly() -> None:
    rows = [
        "[services.db]",
        "command = \"postgres -D '/var/lib/my pg'\"",
        "user = 999",
        "port = 5432",
        'ready = { exec = "pg_isready -q", interval = "2s", startup_interval = "250ms" }',
        'health = { tcp = true, timeout = "1s" }',
        'stop_signal = "INT"',
        'stop_timeout = "1m30s"',
        'memory = "1G"',
        'startup_deadline = "5m"',
        "",
        "[services.api]",
        'command = ["python", "-m", "uvicorn", "app:app", "--config=./app.toml"]',
        'env = { LOG_LEVEL = "info", WORKERS = 4, DEBUG = false }',
        'env_file = ".env"',
        'secrets = "/etc/infraveil/api.secrets"',
        'required_env = ["DATABASE_URL", "SECRET_KEY"]',
        "payload = true",
        "port = 8000",
        'health = { http = "/healthz", interval = "10s" }',
        'ready = { http = "/readyz", host = "::1" }',
        'depends_on = ["db"]',
        'soak = "30s"',
        "watch = 0",
        "",
        "[services.worker]",
        'command = "./worker --queue default"',
        'cwd = "worker"',
        "payload = true",
        'health = { notify = true, watchdog = "20s" }',
        "ready = { notify = true }",
        "stop_signal = 3",
        "soak = 0",
        'watch = "1h"',
    ]
    manifest = parse_manifest("\n".join(rows) + "\n", "/srv/app/infraveil.toml")
    set_somewhere = {
        f.name
        for f in SERVICE_FIELDS
        for spec in manifest.services.values()
        if getattr(spec, f.name) != getattr(ServiceSpec(name="x", command=("x",), cwd=""), f.name)
    }
    assert set_somewhere == {f.name for f in SERVICE_FIELDS}, "the manifest sets every field"
    for spec in manifest.services.values():
        again = spec_from_json(json.loads(text(spec)))
        assert_identical(again, spec, spec.name)
        assert again.readiness == spec.readiness and again.runs_in_release == spec.runs_in_release
