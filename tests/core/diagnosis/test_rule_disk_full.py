"""disk_full: ENOSPC on a write, and the ENOSPC that is not a full disk."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of
from infraveil.core.diagnosis.finding import Confidence, Specificity
from infraveil.core.diagnosis.rules import disk_full


def facts(text: str, **kw: Any) -> Facts:
    log = lines_of(textwrap.dedent(text).strip("\n"))
    kw.setdefault("exit_code", 1)
    return Facts(log=log, log_source="app.log", **kw)


FIRES = [
    # https://github.com/postgres/postgres (xlog.c: could not write to file), corpus case 045 shape
    pytest.param(
        """
        2024-05-02 10:00:01.000 UTC [1] PANIC:  could not write to file "pg_wal/xlogtemp.29": No space left on device
        """,  # noqa: E501
        "pg_wal/xlogtemp.29",
        "df -h DIR",
        id="postgres-wal",
    ),
    # Python: https://docs.python.org/3/library/errno.html#errno.ENOSPC
    pytest.param(
        "OSError: [Errno 28] No space left on device: '/data/out.bin'",
        "/data/out.bin",
        "df -i /data/out.bin",
        id="python",
    ),
    # Go os.File.Write: https://pkg.go.dev/syscall#ENOSPC
    pytest.param(
        "write /var/lib/registry/blobs/x: no space left on device",
        "/var/lib/registry/blobs/x",
        "du -xh",
        id="go",
    ),
    # MySQL: https://dev.mysql.com/doc/refman/8.0/en/full-disk.html
    pytest.param(
        "2024-01-01T00:00:00.000Z 0 [ERROR] [MY-000035] [Server] Disk is full writing './binlog.000002' (OS errno 28 - No space left on device). Waiting for someone to free space... Retry in 60 secs.",  # noqa: E501
        "./binlog.000002",
        "docker system df",
        id="mysql",
    ),
    # Node: https://nodejs.org/api/errors.html (ENOSPC)
    pytest.param(
        "Error: ENOSPC: no space left on device, write", "to disk", "df -h DIR", id="node"
    ),
]


@pytest.mark.parametrize(("log", "where", "fix"), FIRES)
def test_fires(log: str, where: str, fix: str) -> None:
    f = disk_full.rule(Clues(facts(log)))
    assert f is not None
    assert f.category is Category.DISK_FULL
    assert where in f.summary
    assert fix in f.fix
    assert f.evidence[0].text == textwrap.dedent(log).strip()
    assert not f.deterministic  # freeing space and retrying works
    assert f.specificity is Specificity.MESSAGE


def test_postgres_shared_memory_is_dev_shm_with_its_fix() -> None:
    # https://github.com/docker-library/postgres/issues/416
    log = 'ERROR:  could not resize shared memory segment "/PostgreSQL.1234" to 8388608 bytes: No space left on device'  # noqa: E501
    f = disk_full.rule(Clues(facts(log)))
    assert f is not None
    assert "/dev/shm" in f.summary and "--shm-size" in f.fix


def test_quota_exceeded() -> None:
    f = disk_full.rule(
        Clues(facts("OSError: [Errno 122] Disk quota exceeded: '/home/app/cache/x'"))
    )
    assert f is not None and "quota" in f.summary


NEAR_MISSES = [
    # inotify's ENOSPC is the watch limit: https://github.com/emcrisostomo/fswatch/issues/232
    pytest.param("inotify_add_watch: No space left on device", id="inotify"),
    pytest.param(
        "Error: ENOSPC: System limit for number of file watchers reached, watch '/app/src'",
        id="node-watchers",
    ),
    # SysV semaphores: https://www.postgresql.org/docs/current/kernel-resources.html
    pytest.param("FATAL:  could not create semaphores: No space left on device", id="semaphores"),
    pytest.param("INFO 12 GB free on /data", id="free-space"),
]


@pytest.mark.parametrize("log", NEAR_MISSES)
def test_does_not_fire(log: str) -> None:
    assert disk_full.rule(Clues(facts(log))) is None


def test_wins_over_the_signal_it_caused() -> None:
    # PostgreSQL PANICs (SIGABRT) when WAL cannot be written: the disk, not the signal, is why
    log = """
    2024-05-02 10:00:01.000 UTC [61] PANIC:  could not write to file "pg_wal/xlogtemp.61": No space left on device
    2024-05-02 10:00:01.010 UTC [1] LOG:  WAL writer process (PID 61) was terminated by signal 6: Aborted
    2024-05-02 10:00:01.010 UTC [1] LOG:  terminating any other active server processes
    """  # noqa: E501
    d = diagnose(facts(log, exit_code=None, signal=6))
    assert d.finding.category is Category.DISK_FULL
    assert d.finding.confidence is Confidence.HIGH
