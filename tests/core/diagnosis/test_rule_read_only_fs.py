"""read_only_fs: writes refused by a read-only mount (EROFS)."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of
from infraveil.core.diagnosis.finding import Confidence
from infraveil.core.diagnosis.rules import read_only_fs


def facts(text: str, **kw: Any) -> Facts:
    log = lines_of(textwrap.dedent(text).strip("\n"))
    kw.setdefault("exit_code", 1)
    return Facts(log=log, log_source="app.log", **kw)


FIRES = [
    # https://github.com/jgeusebroek/docker-privatebin/issues/10 (nginx under --read-only)
    pytest.param(
        '2024/05/02 10:00:01 [emerg] 12#12: mkdir() "/var/lib/nginx/tmp/client_body" failed (30: Read-only file system)',  # noqa: E501
        "/var/lib/nginx/tmp/client_body",
        "at /var/lib/nginx/tmp,",
        id="nginx",
    ),
    # Python: https://docs.python.org/3/library/errno.html#errno.EROFS
    pytest.param(
        "OSError: [Errno 30] Read-only file system: '/app/static/x.css'",
        "/app/static/x.css",
        "findmnt -T /app/static/x.css",
        id="python",
    ),
    # Node: https://nodejs.org/api/errors.html (EROFS)
    pytest.param(
        "Error: EROFS: read-only file system, open '/app/data.json'",
        "/app/data.json",
        "readOnlyRootFilesystem",
        id="node",
    ),
    # PostgreSQL lock file on a read-only /var/run: https://www.postgresql.org/docs/current/server-start.html
    pytest.param(
        '2024-05-02 10:00:01 UTC [1] FATAL:  could not create lock file "/var/run/postgresql/.s.PGSQL.5432.lock": Read-only file system',  # noqa: E501
        "/var/run/postgresql/.s.PGSQL.5432.lock",
        "at /var/run/postgresql,",
        id="postgres",
    ),
    # Go: https://pkg.go.dev/syscall#EROFS
    pytest.param("mkdir /config/cache: read-only file system", "/config/cache", "tmpfs", id="go"),
]


@pytest.mark.parametrize(("log", "path", "fix"), FIRES)
def test_fires_naming_the_path(log: str, path: str, fix: str) -> None:
    f = read_only_fs.rule(Clues(facts(log)))
    assert f is not None
    assert f.category is Category.READ_ONLY_FS
    assert path in f.summary
    assert fix in f.fix
    assert f.evidence[0].text == log
    assert f.confidence is Confidence.HIGH and f.deterministic


def test_a_kernel_remount_points_at_the_disk() -> None:
    log = """
    EXT4-fs error (device sda1): ext4_journal_check_start:83: Detected aborted journal
    EXT4-fs (sda1): Remounting filesystem read-only
    OSError: [Errno 30] Read-only file system: '/srv/app/state.db'
    """
    f = read_only_fs.rule(Clues(facts(log)))
    assert f is not None
    assert "dmesg" in f.fix and len(f.evidence) == 2


NEAR_MISSES = [
    pytest.param("PermissionError: [Errno 13] Permission denied: '/data/x'", id="permission"),
    pytest.param("INFO mounting /config read-only as requested", id="info-ro"),
]


@pytest.mark.parametrize("log", NEAR_MISSES)
def test_does_not_fire(log: str) -> None:
    assert read_only_fs.rule(Clues(facts(log))) is None


def test_wins_over_the_traceback_and_a_supervisor_echo() -> None:
    log = """
    Traceback (most recent call last):
      File "/app/run.py", line 4, in <module>
        os.makedirs("/app/cache")
    OSError: [Errno 30] Read-only file system: '/app/cache'
    """
    d = diagnose(facts(log))
    assert d.finding.category is Category.READ_ONLY_FS
    assert "/app/cache" in d.finding.summary
