"""data_dir: a data directory's owner, mode, contents or lock, per server, and what is not one."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of
from infraveil.core.diagnosis.finding import Confidence, Specificity
from infraveil.core.diagnosis.rules import data_dir


def facts(text: str, **kw: Any) -> Facts:
    log = lines_of(textwrap.dedent(text).strip("\n"))
    kw.setdefault("exit_code", 1)
    return Facts(log=log, log_source="app.log", **kw)


FIRES = [
    # https://github.com/Painted-Fox/docker-postgresql/issues/32
    pytest.param(
        """
        2014-09-22 19:34:14 UTC FATAL:  data directory "/data" has wrong ownership
        2014-09-22 19:34:14 UTC HINT:  The server must be started by the user that owns the data directory.
        """,  # noqa: E501
        "/data",
        "chown -R postgres:postgres /data",
        "HINT:",
        id="postgres-ownership",
    ),
    # https://github.com/Solinea/goldstone-server/issues/444
    pytest.param(
        """
        waiting for server to start....FATAL:  data directory "/var/lib/postgresql/data" has group or world access
        DETAIL:  Permissions should be u=rwx (0700).
        """,  # noqa: E501
        "/var/lib/postgresql/data",
        "chmod 700 /var/lib/postgresql/data",
        "DETAIL:",
        id="postgres-mode",
    ),
    # initdb on a mount point: https://github.com/docker-library/postgres/issues/263
    pytest.param(
        """
        initdb: error: directory "/var/lib/postgresql/data" exists but is not empty
        initdb: detail: It contains a lost+found directory, perhaps due to it being a mount point.
        initdb: hint: Using a mount point directly as the data directory is not recommended.
        """,
        "/var/lib/postgresql/data",
        "PGDATA to a subdirectory",
        "lost+found",
        id="initdb-not-empty",
    ),
    # https://github.com/docker-library/mysql/issues/280
    pytest.param(
        """
        2017-04-08T00:44:56.022067Z 0 [ERROR] --initialize specified but the data directory has files in it. Aborting.
        2017-04-08T00:44:56.022080Z 0 [ERROR] Aborting
        """,  # noqa: E501
        "/var/lib/mysql",
        "ls -la /var/lib/mysql",
        "--initialize specified",
        id="mysql-initialize",
    ),
    # Grafana image: https://grafana.com/docs/grafana/latest/setup-grafana/installation/docker/
    pytest.param(
        """
        GF_PATHS_DATA='/var/lib/grafana' is not writable.
        You may have issues with file permissions, more information here: http://docs.grafana.org/installation/docker/#migrate-to-v51-or-later
        mkdir: can't create directory '/var/lib/grafana/plugins': Permission denied
        """,
        "/var/lib/grafana",
        "chown -R grafana:grafana /var/lib/grafana",
        "",
        id="grafana",
    ),
    # MongoDB: https://www.mongodb.com/docs/manual/reference/configuration-options/#mongodb-setting-storage.dbPath
    pytest.param(
        '{"t":{"$date":"2024-05-02T10:00:01.000+00:00"},"s":"E","c":"CONTROL","id":20557,"ctx":"initandlisten","msg":"DBException in initAndListen, terminating","attr":{"error":"NonExistentPath: Data directory /data/db not found. Create the missing directory or specify another path using (1) the --dbpath command line option, or (2) by adding the \'storage.dbPath\' option in the configuration file."}}',  # noqa: E501
        "/data/db",
        "mounted at /data/db",
        "",
        id="mongodb-missing",
    ),
    # PostgreSQL major version: https://www.postgresql.org/docs/current/pgupgrade.html
    pytest.param(
        """
        2024-05-02 10:00:01.000 UTC [1] FATAL:  database files are incompatible with server
        2024-05-02 10:00:01.000 UTC [1] DETAIL:  The data directory was initialized by PostgreSQL version 13, which is not compatible with this version 16.2.
        """,  # noqa: E501
        "/var/lib/postgresql/data",
        "pg_upgrade",
        "version 13",
        id="postgres-incompatible",
    ),
]


@pytest.mark.parametrize(("log", "directory", "fix", "second"), FIRES)
def test_fires_naming_the_directory(log: str, directory: str, fix: str, second: str) -> None:
    f = data_dir.rule(Clues(facts(log)))
    assert f is not None
    assert f.category is Category.DATA_DIR
    assert directory in f.summary
    assert fix in f.fix
    if second:
        assert any(second in e.text for e in f.evidence)
    assert f.specificity is Specificity.MESSAGE and f.deterministic


def test_permission_denied_under_a_data_directory_is_medium() -> None:
    f = data_dir.rule(
        Clues(facts("PermissionError: [Errno 13] Permission denied: '/app/data/app.db'"))
    )
    assert f is not None
    assert "/app/data" in f.summary
    assert f.confidence is Confidence.MEDIUM and "ls -ld /app/data" in f.confirm


NEAR_MISSES = [
    # a config file, not a data directory
    pytest.param(
        "PermissionError: [Errno 13] Permission denied: '/etc/app/config.yml'", id="config"
    ),
    # permission denied executing the program is not_executable's
    pytest.param("exec /data/app: permission denied", id="exec"),
    pytest.param("/entrypoint.sh: line 4: /srv/app/run.sh: Permission denied", id="script"),
    pytest.param("open /var/run/nginx.pid: permission denied", id="pid-file"),
    # read-only mounts are read_only_fs's
    pytest.param("OSError: [Errno 30] Read-only file system: '/var/lib/app/x'", id="read-only"),
]


@pytest.mark.parametrize("log", NEAR_MISSES)
def test_does_not_fire(log: str) -> None:
    assert data_dir.rule(Clues(facts(log))) is None


def test_wins_over_the_fatal_line_reading() -> None:
    # https://github.com/immich-app/immich/issues/15360 (initdb output, then the FATAL)
    log = """
    fixing permissions on existing directory /var/lib/postgresql/data ... ok
    creating subdirectories ... ok
    2025-01-15 13:16:49.637 UTC [83] FATAL:  data directory "/var/lib/postgresql/data" has wrong ownership
    2025-01-15 13:16:49.637 UTC [83] HINT:  The server must be started by the user that owns the data directory.
    child process exited with exit code 1
    initdb: removing contents of data directory "/var/lib/postgresql/data"
    """  # noqa: E501
    d = diagnose(facts(log))
    assert d.finding.category is Category.DATA_DIR
    assert "chown -R postgres:postgres /var/lib/postgresql/data" in d.finding.fix


def test_sqlite_that_cannot_open_its_database_file_for_permissions() -> None:
    log = """
        logger=sqlstore level=info msg="Connecting to DB" dbtype=sqlite3
        Error: ✗ failed to open database: unable to open database file: permission denied
    """
    f = data_dir.rule(Clues(facts(log)))
    assert f is not None and f.category is Category.DATA_DIR
    assert "unable to open database file: permission denied" in f.evidence[0].text
    assert diagnose(facts(log)).finding.category is Category.DATA_DIR


def test_sqlite_that_cannot_open_a_missing_file_is_not_a_permission_problem() -> None:
    log = "Error: unable to open database file: no such file or directory\n"
    f = data_dir.rule(Clues(facts(log)))
    assert f is None or "permission" not in f.summary.lower()


def test_an_entrypoint_that_may_not_chown_its_data_directory() -> None:
    # an NFS volume with root_squash: the image's entrypoint cannot take the directory over
    log = "chown: changing ownership of '/bitnami/redis/data': Operation not permitted\n"
    f = data_dir.rule(Clues(facts(log)))
    assert f is not None and f.category is Category.DATA_DIR
    assert "/bitnami/redis/data" in f.fix


# --- a data directory named relative to the working directory --------------------------------


def test_a_relative_data_path_a_tool_quotes_is_a_data_directory() -> None:
    # an entrypoint run in /opt/app creating its store under ./db
    log = "mkdir: cannot create directory './db/journal': Permission denied"
    f = data_dir.rule(Clues(facts(log)))
    assert f is not None and f.category is Category.DATA_DIR
    assert f.confidence is Confidence.MEDIUM
    assert f.evidence[0].text == log


def test_a_relative_path_that_is_not_data_is_not_a_data_directory() -> None:
    log = "mkdir: cannot create directory ‘logs/app’: Permission denied"
    assert data_dir.rule(Clues(facts(log))) is None


def test_a_data_directory_created_by_its_bare_name() -> None:
    log = "mkdir: can't create directory 'data': Permission denied"
    f = data_dir.rule(Clues(facts(log)))
    assert f is not None and f.category is Category.DATA_DIR


def test_a_quoted_data_word_without_a_write_is_not_a_data_directory() -> None:
    log = "ERROR: permission denied for schema 'data'"
    assert data_dir.rule(Clues(facts(log))) is None
