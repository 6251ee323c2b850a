"""config_invalid: a config file that does not parse or validate, with the file and line."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of
from infraveil.core.diagnosis.finding import Confidence, Specificity
from infraveil.core.diagnosis.rules import config_invalid


def facts(text: str, **kw: Any) -> Facts:
    log = lines_of(textwrap.dedent(text).strip("\n"))
    kw.setdefault("exit_code", 1)
    return Facts(log=log, log_source="app.log", **kw)


FIRES = [
    # https://github.com/G-Bruin (hfpp2012/nginx-tutorial#4): nginx -t output
    pytest.param(
        """
        nginx: [emerg] unknown directive "google" in /etc/nginx/nginx.conf:49
        nginx: configuration file /etc/nginx/nginx.conf test failed
        """,
        "/etc/nginx/nginx.conf",
        "49",
        'unknown directive "google"',
        "nginx -t",
        id="nginx",
    ),
    # https://github.com/prometheus/alertmanager/issues/2755
    pytest.param(
        """
        level=error ts=2021-11-04T11:29:51.634Z caller=coordinator.go:124 component=configuration msg="Loading configuration file failed" file=/etc/prometheus/alertmanager.yml err="yaml: unmarshal errors:\\n  line 57: field matchers not found in type config.plain\\n  line 60: field matchers not found in type config.plain"
        """,  # noqa: E501
        "/etc/prometheus/alertmanager.yml",
        "57",
        "field matchers not found in type config.plain",
        "amtool check-config /etc/prometheus/alertmanager.yml",
        id="alertmanager",
    ),
    # PyYAML: https://pyyaml.org/wiki/PyYAMLDocumentation (marks name file, line, column)
    pytest.param(
        """
        Traceback (most recent call last):
          File "/app/main.py", line 5, in <module>
            cfg = yaml.safe_load(f)
        yaml.scanner.ScannerError: mapping values are not allowed here
          in "/etc/app.yml", line 3, column 5
        """,
        "/etc/app.yml",
        "3",
        "mapping values are not allowed here",
        "yaml.safe_load",
        id="pyyaml",
    ),
    # PostgreSQL: https://www.postgresql.org/docs/current/config-setting.html
    pytest.param(
        """
        2024-05-02 10:00:01.000 UTC [1] LOG:  syntax error in file "/var/lib/postgresql/data/postgresql.conf" line 12, near token "="
        2024-05-02 10:00:01.000 UTC [1] FATAL:  configuration file "/var/lib/postgresql/data/postgresql.conf" contains errors
        """,  # noqa: E501
        "/var/lib/postgresql/data/postgresql.conf",
        "12",
        "syntax error near token",
        "line 12 of /var/lib/postgresql/data/postgresql.conf",
        id="postgresql",
    ),
    # Redis: https://github.com/redis/redis/blob/unstable/src/config.c (loadServerConfigFromString)
    pytest.param(
        """
        *** FATAL CONFIG FILE ERROR (Redis 7.0.11) ***
        Reading the configuration file, at line 2
        >>> 'foo bar'
        Bad directive or wrong number of arguments
        """,
        "configuration",
        "2",
        "'foo bar': Bad directive",
        "line 2",
        id="redis",
    ),
    # HAProxy: https://docs.haproxy.org/ (config parser alerts)
    pytest.param(
        "[ALERT]    (1) : config : parsing [/usr/local/etc/haproxy/haproxy.cfg:12] : unknown keyword 'foo' in 'global' section",  # noqa: E501
        "/usr/local/etc/haproxy/haproxy.cfg",
        "12",
        "unknown keyword 'foo'",
        "haproxy -c -f",
        id="haproxy",
    ),
    # https://github.com/prometheus-community/helm-charts/issues/3408 style semantic error, no line
    pytest.param(
        'ts=2023-05-22T00:16:24.928Z caller=coordinator.go:118 level=error component=configuration msg="Loading configuration file failed" file=/etc/alertmanager/alertmanager.yml err="undefined receiver \\"x\\" used in route"',  # noqa: E501
        "/etc/alertmanager/alertmanager.yml",
        "",
        'undefined receiver "x" used in route',
        "amtool check-config",
        id="alertmanager-semantic",
    ),
]


@pytest.mark.parametrize(("log", "file", "line", "reason", "fix"), FIRES)
def test_fires_with_file_and_line(log: str, file: str, line: str, reason: str, fix: str) -> None:
    f = config_invalid.rule(Clues(facts(log)))
    assert f is not None
    assert f.category is Category.CONFIG_INVALID
    assert file in f.summary
    if line:
        assert f"at line {line}:" in f.summary
    assert reason in f.summary
    assert fix in f.fix
    assert f.confidence is Confidence.HIGH and f.specificity is Specificity.MESSAGE
    assert f.deterministic


def test_pyyaml_quotes_the_mark_line_too() -> None:
    log = """
    yaml.scanner.ScannerError: mapping values are not allowed here
      in "/etc/app.yml", line 3, column 5
    """
    f = config_invalid.rule(Clues(facts(log)))
    assert f is not None
    assert [e.text for e in f.evidence] == [
        "yaml.scanner.ScannerError: mapping values are not allowed here",
        'in "/etc/app.yml", line 3, column 5',
    ]


def test_a_generic_config_error_is_medium_with_a_confirmation() -> None:
    f = config_invalid.rule(
        Clues(facts("2024-05-02 10:00:01 ERROR Invalid configuration: port must be a number"))
    )
    assert f is not None
    assert "port must be a number" in f.summary
    assert f.confidence is Confidence.MEDIUM and f.confirm


NOT_MINE = [
    # missing files are config_missing's
    pytest.param(
        '2024/05/02 10:00:01 [emerg] 1#1: open() "/etc/nginx/x.conf" failed (2: No such file or directory) in /etc/nginx/nginx.conf:10',  # noqa: E501
        id="nginx-include-missing",
    ),
    pytest.param("ValueError: Invalid config.yaml path: /root/app/config.yaml", id="bad-path"),
    # a name that does not resolve is dns_failure's
    pytest.param(
        '2024/05/02 10:00:01 [emerg] 1#1: host not found in upstream "app:8000" in /etc/nginx/conf.d/default.conf:5',  # noqa: E501
        id="nginx-upstream-dns",
    ),
    # a JSON body that is not a config file (an HTTP response)
    pytest.param(
        """
        Traceback (most recent call last):
          File "/app/x.py", line 3, in <module>
            r.json()
        requests.exceptions.JSONDecodeError: Expecting value: line 1 column 1 (char 0)
        """,
        id="json-response",
    ),
    pytest.param("INFO configuration loaded from /etc/app/config.yml", id="loaded"),
]


@pytest.mark.parametrize("log", NOT_MINE)
def test_does_not_fire(log: str) -> None:
    assert config_invalid.rule(Clues(facts(log))) is None


def test_a_json_config_file_being_read_is_claimed() -> None:
    log = """
    Traceback (most recent call last):
      File "/app/settings.py", line 3, in <module>
        cfg = json.load(open("/etc/app/config.json"))
    json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)
    """
    f = config_invalid.rule(Clues(facts(log)))
    assert f is not None and "/etc/app/config.json" in f.summary


def test_wins_over_the_traceback_reading() -> None:
    log = """
    Traceback (most recent call last):
      File "/app/main.py", line 5, in <module>
        cfg = tomllib.load(f)
    tomllib.TOMLDecodeError: Invalid value (at line 3, column 8)
    """
    d = diagnose(facts(log))
    assert d.finding.category is Category.CONFIG_INVALID
    assert "at line 3" in d.finding.summary


# --- a schema error beats a loose DNS pattern on the same line -------------------------------


def test_an_unknown_field_whose_name_ends_in_host_is_a_config_error() -> None:
    # Loki's config with a field named like a host (`field redishost not found in type ...`)
    log = (
        'level=error ts=2024-03-01T10:00:00Z msg="Loading configuration file failed"'
        ' err="yaml: unmarshal errors:\\n  line 12: field redishost not found in type'
        ' cache.RedisConfig"'
    )
    f = config_invalid.rule(Clues(facts(log)))
    assert f is not None and f.category is Category.CONFIG_INVALID
    assert "field redishost not found in type cache.RedisConfig" in f.summary


def test_a_field_called_host_that_the_schema_lacks_is_a_config_error() -> None:
    log = "yaml: unmarshal errors:\n  line 4: field host not found in type config.ServerConfig"
    f = config_invalid.rule(Clues(facts(log)))
    assert f is not None and f.category is Category.CONFIG_INVALID


def test_a_host_that_does_not_resolve_in_a_config_is_still_not_this_rule() -> None:
    log = (
        '2024/05/02 10:00:01 [emerg] 1#1: host not found in upstream "api:8080" in'
        " /etc/nginx/conf.d/app.conf:7"
    )
    assert config_invalid.rule(Clues(facts(log))) is None
    assert diagnose(facts(log)).finding.category is Category.DNS_FAILURE
