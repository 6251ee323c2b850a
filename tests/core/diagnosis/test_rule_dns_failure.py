"""dns_failure: a host name did not resolve, in each resolver's words."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of
from infraveil.core.diagnosis.finding import Confidence, Specificity
from infraveil.core.diagnosis.rules import dns_failure


def facts(text: str, **kw: Any) -> Facts:
    log = lines_of(textwrap.dedent(text).strip("\n"))
    kw.setdefault("exit_code", 1)
    return Facts(log=log, log_source="app.log", **kw)


FIRES = [
    # https://github.com/krakend/krakend-ce/issues/514 (Go, Docker's embedded DNS)
    pytest.param(
        "panic: dial tcp: lookup db on 127.0.0.11:53: no such host", "db", Confidence.HIGH, id="go"
    ),
    # glibc EAI_NONAME via libpq: https://www.postgresql.org/docs/current/libpq-connect.html
    pytest.param(
        'psycopg2.OperationalError: could not translate host name "db" to address: Name or service not known',  # noqa: E501
        "db",
        Confidence.HIGH,
        id="libpq",
    ),
    # Node: https://nodejs.org/api/errors.html#common-system-errors (ENOTFOUND)
    pytest.param(
        "Error: getaddrinfo ENOTFOUND redis", "redis", Confidence.HIGH, id="node-enotfound"
    ),
    pytest.param(
        "Error: getaddrinfo EAI_AGAIN api.example.com",
        "api.example.com",
        Confidence.MEDIUM,
        id="node-eai-again",
    ),
    # Java: https://docs.oracle.com/javase/8/docs/api/java/net/UnknownHostException.html
    pytest.param(
        "Caused by: java.net.UnknownHostException: db: Temporary failure in name resolution",
        "db",
        Confidence.MEDIUM,
        id="java-temporary",
    ),
    # redis-py: https://github.com/redis/redis-py/issues (Error -2 connecting to host:port)
    pytest.param(
        "redis.exceptions.ConnectionError: Error -2 connecting to redis:6379. Name or service not known.",  # noqa: E501
        "redis",
        Confidence.HIGH,
        id="redis-py",
    ),
    # nginx resolving upstreams at startup: https://nginx.org/en/docs/http/ngx_http_upstream_module.html
    pytest.param(
        '2024/05/02 10:00:01 [emerg] 1#1: host not found in upstream "app:8000" in /etc/nginx/conf.d/default.conf:5',  # noqa: E501
        "app",
        Confidence.HIGH,
        id="nginx-upstream",
    ),
    # curl: https://curl.se/libcurl/c/libcurl-errors.html (CURLE_COULDNT_RESOLVE_HOST)
    pytest.param(
        "curl: (6) Could not resolve host: example.invalid",
        "example.invalid",
        Confidence.HIGH,
        id="curl",
    ),
]


@pytest.mark.parametrize(("log", "host", "confidence"), FIRES)
def test_fires_naming_the_host(log: str, host: str, confidence: Confidence) -> None:
    f = dns_failure.rule(Clues(facts(log)))
    assert f is not None
    assert f.category is Category.DNS_FAILURE
    assert f"host name {host} " in f.summary
    assert f.evidence[0].text == log
    assert f"getent hosts {host}" in f.fix
    assert not f.deterministic
    assert f.confidence is confidence
    assert f.specificity is Specificity.MESSAGE


def test_a_bare_gaierror_still_fires_without_a_host() -> None:
    f = dns_failure.rule(Clues(facts("socket.gaierror: [Errno -2] Name or service not known")))
    assert f is not None and "a host name" in f.summary


NEAR_MISSES = [
    pytest.param("INFO resolved db to 172.18.0.2", id="resolved"),
    pytest.param("WARN unknown host key for github.com, adding", id="ssh-host-key"),
    pytest.param("Error: connect ECONNREFUSED 127.0.0.1:5432", id="refused-not-dns"),
]


@pytest.mark.parametrize("log", NEAR_MISSES)
def test_does_not_fire(log: str) -> None:
    assert dns_failure.rule(Clues(facts(log))) is None


def test_wins_over_the_node_exception_reading() -> None:
    # https://github.com/Anduin2017 style Node crash: the ENOTFOUND with its code block
    log = """
    node:internal/process/promises:288
                triggerUncaughtException(err, true /* fromPromise */);
                ^

    Error: getaddrinfo ENOTFOUND postgres
        at GetAddrInfoReqWrap.onlookup [as oncomplete] (node:dns:107:26) {
      errno: -3008,
      code: 'ENOTFOUND',
      syscall: 'getaddrinfo',
      hostname: 'postgres'
    }

    Node.js v18.19.0
    """
    d = diagnose(facts(log))
    assert d.finding.category is Category.DNS_FAILURE
    assert "postgres" in d.finding.summary


def test_the_dns_server_refusing_is_dns_not_a_dependency() -> None:
    log = "dial tcp: lookup db on 127.0.0.11:53: read udp 127.0.0.1:5->127.0.0.11:53: read: connection refused"  # noqa: E501
    d = diagnose(facts(log))
    assert d.finding.category is Category.DNS_FAILURE
    assert d.finding.confidence is Confidence.MEDIUM
