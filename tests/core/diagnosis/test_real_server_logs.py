"""The engine on the real output of real programs, captured verbatim under `real_logs/`.

Each capture is what the program wrote (stdout and stderr together, as the agent records them)
when run by hand the way `tests/e2e/test_e2e_why_servers.py` runs it under the agent, on
Debian 12 with its own packages (PostgreSQL 15, Redis 7.0, nginx 1.22, Alertmanager 0.25,
Python 3.11, dash). The exit status is the one the program really ended with.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of

REAL_LOGS = Path(__file__).parent / "real_logs"


@dataclass(frozen=True)
class Capture:
    log: str  # file name under real_logs/
    category: str
    decisive: str  # a piece of the line that must be quoted in the evidence
    exit_code: int | None = None
    signal: int | None = None


CAPTURES = [
    # postgres -D DIR, run as postgres, on an initdb'd data directory chowned to root
    Capture(
        "postgresql_data_dir_wrong_ownership.log",
        "data_dir",
        'FATAL:  data directory "/tmp/ivlcap/pgreal/data" has wrong ownership',
        exit_code=1,
    ),
    # prometheus-alertmanager --config.file=... on a route naming an undeclared receiver
    Capture(
        "alertmanager_undefined_receiver.log",
        "config_invalid",
        'err="undefined receiver \\"team-pager\\" used in route"',
        exit_code=1,
    ),
    # the same on a file that is not valid YAML
    Capture(
        "alertmanager_yaml_error.log",
        "config_invalid",
        'err="yaml: line 3: did not find expected key"',
        exit_code=1,
    ),
    # redis-server --port P --bind 127.0.0.1 --appendonly no --dir DIR, P bound by another process
    Capture(
        "redis_port_in_use.log",
        "port_in_use",
        "Could not create server TCP listening socket 127.0.0.1:48259:"
        " bind: Address already in use",
        exit_code=1,
    ),
    # nginx -e stderr -c nginx.conf -g 'daemon off;' with a misspelt directive on line 9
    Capture(
        "nginx_unknown_directive.log",
        "config_invalid",
        'unknown directive "proxy_passs" in /tmp/ivlcap/ngx/nginx.conf:9',
        exit_code=1,
    ),
    # tests/e2e/programs/settings_app/app.py without DATABASE_URL
    Capture("python_missing_env.log", "missing_env", "KeyError: 'DATABASE_URL'", exit_code=1),
    # tests/e2e/programs/db_worker.sh: psql against a port where nothing listens
    Capture(
        "psql_connection_refused.log",
        "dependency_unreachable",
        'psql: error: connection to server at "127.0.0.1", port 54685 failed: Connection refused',
        exit_code=2,
    ),
    # python3 -c "import ctypes; ...; ctypes.string_at(0)": a real SIGSEGV, nothing said
    Capture("python_segfault.log", "segfault", "SIGSEGV", signal=signal.SIGSEGV),
    # sh -c 'ivl-no-such-command --serve'
    Capture(
        "sh_command_not_found.log",
        "command_not_found",
        "sh: 1: ivl-no-such-command: not found",
        exit_code=127,
    ),
    # sh -c ./run.sh, with run.sh mode 0644
    Capture(
        "sh_not_executable.log", "not_executable", "./run.sh: Permission denied", exit_code=126
    ),
]
"""`redis_daemonized.log` is empty on purpose: `redis-server --daemonize yes` says nothing and
its foreground process exits 0 (tested below)."""


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda c: c.log.removesuffix(".log"))
def test_the_engine_names_the_cause_and_quotes_the_decisive_line(capture: Capture) -> None:
    text = (REAL_LOGS / capture.log).read_text()
    facts = Facts(
        log=lines_of(text),
        exit_code=capture.exit_code,
        signal=capture.signal,
        log_source=capture.log,
    )
    found = diagnose(facts).as_dict()
    quoted = any(capture.decisive in e["text"] for e in found["evidence"])
    if found["category"] != capture.category or not quoted:
        pytest.fail(
            f"expected {capture.category} with evidence quoting {capture.decisive!r}; got:\n"
            + json.dumps(found, indent=2)
        )


def test_a_redis_that_daemonizes_exits_zero_having_said_nothing() -> None:
    text = (REAL_LOGS / "redis_daemonized.log").read_text()
    assert text == ""
    found = diagnose(
        Facts(log=lines_of(text), exit_code=0, log_source="redis_daemonized.log")
    ).as_dict()
    assert found["category"] == "exited_zero", found
    assert any("code 0" in e["text"] for e in found["evidence"]), found
