from __future__ import annotations

import pytest

from diagnosis_support import apply, quoted
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.finding import Confidence, Specificity
from infraveil.core.diagnosis.rules.command_not_found import rule

LINES = [
    ("/entrypoint.sh: line 3: gunicorn: command not found", "gunicorn"),
    ("server-1  | /bin/sh: 1: gunicorn: not found", "gunicorn"),
    (
        "ERROR: for node  Cannot start service node: OCI runtime create failed: starting container"
        ' process caused "exec: \\"docker-entrypoint.sh\\": executable file not found in $PATH":'
        " unknown",
        "docker-entrypoint.sh",
    ),
    (
        'starting container process caused "exec: \\"/usr/local/bin/gunicorn\\": stat'
        ' /usr/local/bin/gunicorn: no such file or directory"',
        "/usr/local/bin/gunicorn",
    ),
    ("/usr/bin/env: 'python': No such file or directory", "python"),
    ("app.service: Main process exited, code=exited, status=203/EXEC", ""),
]


@pytest.mark.parametrize(("line", "name"), LINES)
def test_the_missing_program_is_named(line: str, name: str) -> None:
    f = apply(rule, line)
    assert f is not None and f.category is Category.COMMAND_NOT_FOUND
    assert quoted(f) == [line]  # verbatim, whatever prefix it carries
    assert name in f.summary


def test_the_agents_exec_failure_is_a_platform_fact() -> None:
    f = apply(rule, spawn_error="command not found: /opt/x", command=("/opt/x",))
    assert f is not None and f.specificity is Specificity.PLATFORM and "/opt/x" in f.summary


def test_exit_127_alone_is_a_hint() -> None:
    f = apply(rule, "", exit_code=127)
    assert f is not None and f.confidence is Confidence.LOW and f.confirm


def test_a_missing_data_file_is_not_a_missing_command() -> None:
    assert apply(rule, "cat: /data/x.csv: No such file or directory", exit_code=1) is None
