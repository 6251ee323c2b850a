"""dependency_unreachable: refused, timed out, unreachable or a missing local socket."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import DependencyFact, Facts, lines_of
from infraveil.core.diagnosis.finding import Confidence, Specificity
from infraveil.core.diagnosis.rules import dependency_unreachable


def facts(text: str, **kw: Any) -> Facts:
    log = lines_of(textwrap.dedent(text).strip("\n"))
    kw.setdefault("exit_code", 1)
    return Facts(log=log, log_source="app.log", **kw)


FIRES = [
    # https://github.com/worldveil/dejavu/issues/306 (psycopg2 >= 2.9 / libpq 14)
    pytest.param(
        """
        psycopg2.OperationalError: connection to server at "localhost" (127.0.0.1), port 5432 failed: Connection refused
                Is the server running on that host and accepting TCP/IP connections?
        """,  # noqa: E501
        "localhost:5432",
        Confidence.HIGH,
        id="libpq-new",
    ),
    # https://github.com/aphonsoar/Receita_Federal_do_Brasil_-_Dados_Publicos_CNPJ/issues/11
    pytest.param(
        """
        psycopg2.OperationalError: could not connect to server: Connection refused
        \tIs the server running on host "localhost" (127.0.0.1) and accepting
        \tTCP/IP connections on port 5432?
        """,
        "localhost:5432",
        Confidence.HIGH,
        id="libpq-old-two-lines",
    ),
    # Go net.Dial: https://github.com/golang/go/issues (dial tcp ...: connect: connection refused)
    pytest.param(
        "panic: dial tcp 10.0.0.5:5432: connect: connection refused",
        "10.0.0.5:5432",
        Confidence.HIGH,
        id="go",
    ),
    # https://github.com/nodezoo/nodezoo-workshop/issues/34 style Node client error
    pytest.param(
        "Error: connect ECONNREFUSED 127.0.0.1:6379", "127.0.0.1:6379", Confidence.HIGH, id="node"
    ),
    # redis-py: https://github.com/redis/redis-py/issues (Error 111 connecting to host:port)
    pytest.param(
        "redis.exceptions.ConnectionError: Error 111 connecting to redis:6379. Connection refused.",
        "redis:6379",
        Confidence.HIGH,
        id="redis-py",
    ),
    # asyncpg: https://github.com/MagicStack/asyncpg/issues (Connect call failed)
    pytest.param(
        "OSError: Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432), [Errno 99] Cannot assign requested address",  # noqa: E501
        "127.0.0.1:5432",
        Confidence.HIGH,
        id="asyncpg",
    ),
    # PgJDBC: https://github.com/pgjdbc/pgjdbc (Connection to host:port refused)
    pytest.param(
        "org.postgresql.util.PSQLException: Connection to localhost:5432 refused. Check that the hostname and port are correct and that the postmaster is accepting TCP/IP connections.",  # noqa: E501
        "localhost:5432",
        Confidence.HIGH,
        id="pgjdbc",
    ),
    # Go i/o timeout: https://github.com/golang/go/issues (dial tcp ...: i/o timeout)
    pytest.param(
        'level=error msg="db: dial tcp 10.1.2.3:3306: i/o timeout"',
        "10.1.2.3:3306",
        Confidence.MEDIUM,
        id="go-timeout",
    ),
    # libpq Unix socket: https://www.postgresql.org/docs/current/libpq-connect.html
    pytest.param(
        """
        psycopg2.OperationalError: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory
        \tIs the server running locally and accepting connections on that socket?
        """,  # noqa: E501
        "/var/run/postgresql/.s.PGSQL.5432",
        Confidence.HIGH,
        id="unix-socket",
    ),
]


@pytest.mark.parametrize(("log", "target", "confidence"), FIRES)
def test_fires_naming_the_target(log: str, target: str, confidence: Confidence) -> None:
    f = dependency_unreachable.rule(Clues(facts(log)))
    assert f is not None
    assert f.category is Category.DEPENDENCY_UNREACHABLE
    assert target in f.summary
    assert f.evidence[0].text == textwrap.dedent(log).strip().splitlines()[0].strip()
    assert not f.deterministic  # a victim: retrying can work once the dependency is back
    assert f.specificity is Specificity.MESSAGE
    assert f.confidence is confidence
    assert f.confirm or confidence is Confidence.HIGH


def test_quotes_the_libpq_hint_line() -> None:
    log = """
    psycopg2.OperationalError: connection to server at "127.0.0.1", port 5432 failed: Connection refused
    \tIs the server running on that host and accepting TCP/IP connections?
    """  # noqa: E501
    f = dependency_unreachable.rule(Clues(facts(log)))
    assert f is not None and len(f.evidence) == 2
    assert f.evidence[1].text.startswith("Is the server running")


def test_names_the_not_ready_dependency() -> None:
    deps = (DependencyFact("db", ready=False, state="failed (halted)"),)
    f = dependency_unreachable.rule(
        Clues(facts("Caused by: java.net.ConnectException: Connection refused", dependencies=deps))
    )
    assert f is not None
    assert "db" in f.summary
    assert any(e.source == "dependency" and "failed (halted)" in e.text for e in f.evidence)


NEAR_MISSES = [
    pytest.param("ERROR login refused for user bob", id="login-refused"),
    pytest.param("WARN relay access refused by policy", id="relay-refused"),
    # the resolver refusing a query is a DNS failure, not this dependency refusing
    pytest.param(
        "dial tcp: lookup db on 127.0.0.11:53: read udp 127.0.0.1:5->127.0.0.11:53: read: connection refused",  # noqa: E501
        id="dns-server-refused",
    ),
    pytest.param("INFO connected to db:5432", id="success"),
]


@pytest.mark.parametrize("log", NEAR_MISSES)
def test_does_not_fire(log: str) -> None:
    assert dependency_unreachable.rule(Clues(facts(log))) is None


def test_a_refusal_inside_a_traceback_wins_over_the_exception_reading() -> None:
    # https://github.com/paulpierre/RasaGPT/issues/35 (SQLAlchemy wrapping psycopg2)
    log = """
    Traceback (most recent call last):
      File "/app/main.py", line 12, in <module>
        engine.connect()
      File "/usr/local/lib/python3.11/site-packages/sqlalchemy/engine/base.py", line 3268, in connect
        return self._connection_cls(self)
    sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at "db" (172.18.0.2), port 5432 failed: Connection refused
    \tIs the server running on that host and accepting TCP/IP connections?
    """  # noqa: E501
    d = diagnose(facts(log))
    assert d.finding.category is Category.DEPENDENCY_UNREACHABLE
    assert "db:5432" in d.finding.summary
    assert not d.finding.deterministic


def test_a_retried_refusal_then_a_later_crash_does_not_win() -> None:
    log = """
    2024-05-02 10:00:01 ERROR could not connect to db:5432: connection refused, retrying in 2s
    2024-05-02 10:00:03 INFO connected to db:5432
    Traceback (most recent call last):
      File "/app/main.py", line 30, in <module>
        bucket = settings["BUCKET"]
    KeyError: 'BUCKET'
    """
    f = dependency_unreachable.rule(Clues(facts(log)))
    assert f is not None  # still evidence...
    assert f.specificity is Specificity.KEYWORD and f.confidence is Confidence.LOW
    d = diagnose(facts(log))
    assert d.finding.category is not Category.DEPENDENCY_UNREACHABLE  # ...but not the verdict


def test_a_proxy_error_does_not_outrank_the_proxys_own_bind_failure() -> None:
    # https://github.com/urfave/negroni/issues/10
    log = """
    [negroni] listening on :3000
    [negroni] listen tcp :3000: bind: address already in use
    2014/05/21 14:25:36 http: proxy error: dial tcp 127.0.0.1:3001: connection refused
    """
    f = dependency_unreachable.rule(Clues(facts(log)))
    assert f is not None and f.confidence is Confidence.MEDIUM
    assert diagnose(facts(log)).finding.category is Category.PORT_IN_USE


# An entrypoint that waits for a dependency in its own words, then gives up.
GAVE_UP = [
    pytest.param(
        """
        wait-for-it.sh: waiting 15 seconds for mysql-primary.db:3306
        wait-for-it.sh: timeout occurred after waiting 15 seconds for mysql-primary.db:3306
        """,
        "mysql-primary.db:3306",
        id="wait-for-it",
    ),
    pytest.param(
        """
        2024-02-01 10:00:00 INFO Connecting to broker rabbitmq-ha.messaging ...
        2024-02-01 10:00:30 WARN still no answer, retrying
        2024-02-01 10:01:00 ERROR gave up after 3 attempts
        """,
        "rabbitmq-ha.messaging",
        id="announced-then-gave-up",
    ),
    pytest.param(
        """
        Waiting for the database to come up
        Timed out.
        """,
        "a dependency",
        id="no-host-named",
    ),
]


@pytest.mark.parametrize(("log", "target"), GAVE_UP)
def test_a_wait_for_a_dependency_that_gave_up(log: str, target: str) -> None:
    f = dependency_unreachable.rule(Clues(facts(log)))
    assert f is not None and f.category is Category.DEPENDENCY_UNREACHABLE
    assert f"waited for {target} and gave up" in f.summary
    assert f.specificity is Specificity.MESSAGE and not f.deterministic
    assert diagnose(facts(log)).finding.category is Category.DEPENDENCY_UNREACHABLE


@pytest.mark.parametrize(
    "log",
    [
        "request timed out, retrying\nok",  # a timeout with nothing announced before it
        "waiting for leader lease\nacquired lease\n",  # a wait that did not time out
        "Waiting for db.internal:5432\nlookup db.internal on 10.96.0.10:53: no such host: timed out",  # noqa: E501
    ],
)
def test_a_timeout_without_an_announced_wait_is_not_one(log: str) -> None:
    assert dependency_unreachable.rule(Clues(facts(log))) is None
