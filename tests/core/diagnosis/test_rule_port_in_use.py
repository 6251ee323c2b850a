"""port_in_use: EADDRINUSE as each runtime and server words it, and what it is not."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of
from infraveil.core.diagnosis.finding import Confidence, Specificity
from infraveil.core.diagnosis.rules import port_in_use


def facts(text: str, **kw: Any) -> Facts:
    log = lines_of(textwrap.dedent(text).strip("\n"))
    kw.setdefault("exit_code", 1)
    return Facts(log=log, log_source="app.log", **kw)


FIRES = [
    # https://github.com/redis-windows/redis-windows/issues/45
    pytest.param(
        """
        1988:M 05 May 2025 11:23:04.084 # Warning: Could not create server TCP listening socket 127.0.0.1:6379: bind: Address already in use
        1988:M 05 May 2025 11:23:04.085 # Failed listening on port 6379 (tcp), aborting.
        """,  # noqa: E501
        "6379",
        "bind: Address already in use",
        id="redis",
    ),
    # https://github.com/codecrafters-io/build-your-own-redis/issues/125 (Go)
    pytest.param(
        "2024/02/17 10:00:01 main.go:42: listen tcp :6379: bind: address already in use",
        "6379",
        "listen tcp :6379",
        id="go-with-caller",
    ),
    # https://github.com/nodejs/node/issues (Node's emitted 'error' event, as in test_decisive)
    pytest.param(
        """
        node:events:497
              throw er; // Unhandled 'error' event
              ^

        Error: listen EADDRINUSE: address already in use :::3000
            at Server.setupListenHandle [as _listen2] (node:net:1872:16)
        """,
        "3000",
        "EADDRINUSE",
        id="node",
    ),
    # https://github.com/w-digital-scanner/w12scan/issues/73 (docker-proxy, Go)
    pytest.param(
        "Error starting userland proxy: listen tcp 0.0.0.0:6379: bind: address already in use",
        "6379",
        "0.0.0.0:6379",
        id="docker-proxy",
    ),
    # nginx: https://nginx.org/en/docs/ (bind() error as nginx logs it)
    pytest.param(
        "2024/05/02 10:00:01 [emerg] 1#1: bind() to 0.0.0.0:80 failed (98: Address already in use)",
        "port 80",
        "bind() to 0.0.0.0:80",
        id="nginx",
    ),
    # PostgreSQL postmaster: https://www.postgresql.org/docs/current/server-start.html
    pytest.param(
        """
        2024-05-02 10:00:01.000 UTC [1] LOG:  could not bind IPv4 address "0.0.0.0": Address already in use
        2024-05-02 10:00:01.000 UTC [1] HINT:  Is another postmaster already running on port 5432? If not, wait a few seconds and retry.
        """,  # noqa: E501
        "5432",
        "HINT:",
        id="postgres-port-from-hint",
    ),
    # uvicorn: https://github.com/encode/uvicorn/discussions (address tuple)
    pytest.param(
        "ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 8000): address already in use",  # noqa: E501
        "8000",
        "[Errno 98]",
        id="uvicorn-tuple",
    ),
    # Spring Boot failure analyzer: https://docs.spring.io/spring-boot/
    pytest.param(
        "Web server failed to start. Port 8080 was already in use.",
        "8080",
        "Port 8080",
        id="spring-boot",
    ),
]


@pytest.mark.parametrize(("log", "port", "quoted"), FIRES)
def test_fires_naming_the_port(log: str, port: str, quoted: str) -> None:
    f = port_in_use.rule(Clues(facts(log)))
    assert f is not None
    assert f.category is Category.PORT_IN_USE
    assert port in f.summary
    assert any(quoted in e.text for e in f.evidence)
    assert f"sport = :{port.removeprefix('port ')}" in f.fix
    assert f.specificity is Specificity.MESSAGE
    assert f.confidence is Confidence.HIGH
    assert f.deterministic


def test_python_errno_without_port_falls_back_to_the_spec_port() -> None:
    f = port_in_use.rule(Clues(facts("OSError: [Errno 98] Address already in use", ports=(9000,))))
    assert f is not None and "port 9000" in f.summary


NEAR_MISSES = [
    # EADDRNOTAVAIL is binding an address the host does not have, not a port in use
    pytest.param(
        "listen tcp 10.0.0.9:80: bind: cannot assign requested address", id="eaddrnotavail"
    ),
    pytest.param("INFO server listening on :8080", id="listening"),
    pytest.param("ERROR volume data is already mounted", id="other-in-use"),
]


@pytest.mark.parametrize("log", NEAR_MISSES)
def test_does_not_fire(log: str) -> None:
    assert port_in_use.rule(Clues(facts(log))) is None


def test_a_timestamp_or_source_file_is_not_the_port() -> None:
    log = 'level=fatal ts=2024-05-02T10:00:01Z caller=main.go:123 msg="listen tcp 0.0.0.0:9090: bind: address already in use"'  # noqa: E501
    f = port_in_use.rule(Clues(facts(log)))
    assert f is not None and "port 9090" in f.summary


def test_retried_and_then_bound_is_only_a_keyword() -> None:
    # gunicorn retries a port in use: https://github.com/benoitc/gunicorn/blob/master/gunicorn/arbiter.py
    log = """
    [2024-05-02 10:00:01 +0000] [1] [ERROR] Connection in use: ('0.0.0.0', 8000)
    [2024-05-02 10:00:01 +0000] [1] [ERROR] Retrying in 1 second.
    [2024-05-02 10:00:02 +0000] [1] [INFO] Listening at: http://0.0.0.0:8000 (1)
    """
    f = port_in_use.rule(Clues(facts(log)))
    assert f is not None
    assert f.specificity is Specificity.KEYWORD and f.confidence is Confidence.LOW


def test_wins_over_the_traceback_it_ends_in() -> None:
    log = """
    INFO:     Started server process [1]
    Traceback (most recent call last):
      File "/app/main.py", line 9, in <module>
        server.bind(("0.0.0.0", 8000))
    OSError: [Errno 98] Address already in use
    """
    d = diagnose(facts(log, ports=(8000,)))
    assert d.finding.category is Category.PORT_IN_USE
    assert "port 8000" in d.finding.summary
