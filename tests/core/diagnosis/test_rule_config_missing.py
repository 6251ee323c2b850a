"""config_missing: a config or other required file is not there, and what is not this rule's."""

from __future__ import annotations

import textwrap
from typing import Any

import kube_support
import pytest

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of
from infraveil.core.diagnosis.finding import Confidence, Specificity
from infraveil.core.diagnosis.rules import config_missing


def facts(text: str, **kw: Any) -> Facts:
    log = lines_of(textwrap.dedent(text).strip("\n"))
    kw.setdefault("exit_code", 1)
    return Facts(log=log, log_source="app.log", **kw)


FIRES = [
    # Python: https://docs.python.org/3/library/exceptions.html#FileNotFoundError
    pytest.param(
        "FileNotFoundError: [Errno 2] No such file or directory: 'config.yml'",
        "config.yml",
        "relative",
        id="python-relative",
    ),
    # Go os.Open: https://pkg.go.dev/os#PathError
    pytest.param(
        "2024/05/02 10:00:01 open /etc/app/config.yaml: no such file or directory",
        "/etc/app/config.yaml",
        "ls -la /etc/app",
        id="go",
    ),
    # Node (as in test_decisive's node-enoent-with-code)
    pytest.param(
        "Error: ENOENT: no such file or directory, open './config.json'",
        "./config.json",
        "relative",
        id="node",
    ),
    # Java: https://docs.oracle.com/javase/8/docs/api/java/io/FileNotFoundException.html
    pytest.param(
        "java.io.FileNotFoundException: /etc/app/application.yml (No such file or directory)",
        "/etc/app/application.yml",
        "ConfigMap",
        id="java",
    ),
    # nginx include: https://nginx.org/en/docs/ngx_core_module.html#include
    pytest.param(
        '2024/05/02 10:00:01 [emerg] 1#1: open() "/etc/nginx/conf.d/x.conf" failed (2: No such file or directory) in /etc/nginx/nginx.conf:12',  # noqa: E501
        "/etc/nginx/conf.d/x.conf",
        "ls -la /etc/nginx/conf.d",
        id="nginx",
    ),
    # Redis: https://github.com/redis/redis/blob/unstable/src/config.c (can't open config file)
    pytest.param(
        "Fatal error, can't open config file '/usr/local/etc/redis/redis.conf': No such file or directory",  # noqa: E501
        "/usr/local/etc/redis/redis.conf",
        "mount",
        id="redis",
    ),
    # Ruby: https://ruby-doc.org/core/Errno/ENOENT.html
    pytest.param(
        "/app/config/boot.rb:3:in `read': No such file or directory @ rb_sysopen - /app/config/database.yml (Errno::ENOENT)",  # noqa: E501
        "/app/config/database.yml",
        "ls -la /app/config",
        id="ruby",
    ),
]


@pytest.mark.parametrize(("log", "path", "fix"), FIRES)
def test_fires_naming_the_file(log: str, path: str, fix: str) -> None:
    f = config_missing.rule(Clues(facts(log)))
    assert f is not None
    assert f.category is Category.CONFIG_MISSING
    assert path in f.summary
    assert fix in f.fix
    assert f.evidence[0].text == log
    assert f.confidence is Confidence.HIGH and f.deterministic


def test_a_config_path_that_is_a_directory() -> None:
    # https://github.com/src-d/lookout/issues/289 (Docker made a directory for a missing file)
    f = config_missing.rule(
        Clues(facts("Can't open configuration file: read config.yml: is a directory"))
    )
    assert f is not None
    assert "is a directory" in f.summary and "bind mount" in f.fix


NOT_MINE = [
    # the program itself: command_not_found
    pytest.param("exec /docker-entrypoint.sh: no such file or directory", id="exec"),
    pytest.param("Error: spawn python ENOENT", id="spawn"),
    pytest.param(
        "python: can't open file '/app/main.py': [Errno 2] No such file or directory", id="script"
    ),
    pytest.param(
        "/entrypoint.sh: line 3: /app/bin/server: No such file or directory", id="shell-exec"
    ),
    # a library: missing_module
    pytest.param(
        "ImportError: libpq.so.5: cannot open shared object file: No such file or directory",
        id="shared-object",
    ),
    # a server that is not running: dependency_unreachable
    pytest.param(
        'connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory',  # noqa: E501
        id="socket",
    ),
    pytest.param(
        "dial unix /var/run/docker.sock: connect: no such file or directory", id="dial-unix"
    ),
]


@pytest.mark.parametrize("log", NOT_MINE)
def test_does_not_claim_other_categories(log: str) -> None:
    assert config_missing.rule(Clues(facts(log))) is None


def test_a_shell_reading_a_config_file_is_claimed() -> None:
    f = config_missing.rule(
        Clues(facts("/entrypoint.sh: line 3: /etc/app/app.env: No such file or directory"))
    )
    assert f is not None and "/etc/app/app.env" in f.summary


def test_a_warning_with_defaults_is_only_a_keyword() -> None:
    log = "WARN could not read /etc/app/extra.conf: no such file or directory, using defaults"
    f = config_missing.rule(Clues(facts(log)))
    assert f is not None
    assert f.specificity is Specificity.KEYWORD and f.confidence is Confidence.LOW


def test_wins_over_the_traceback_reading() -> None:
    log = """
    Traceback (most recent call last):
      File "/app/settings.py", line 8, in load
        return tomllib.loads(path.read_text())
                             ^^^^^^^^^^^^^^^^
    FileNotFoundError: [Errno 2] No such file or directory: '/etc/app/config.toml'
    """
    d = diagnose(facts(log))
    assert d.finding.category is Category.CONFIG_MISSING
    assert "/etc/app/config.toml" in d.finding.summary


def test_a_volume_mounted_over_a_path_of_the_other_type_in_kubernetes() -> None:
    message = (
        'Error: failed to start container "web": Error response from daemon: OCI runtime create'
        " failed: container_linux.go:367: starting container process caused: process_linux.go:"
        '495: container init caused: rootfs_linux.go:60: mounting "/var/lib/kubelet/pods/9/'
        'volume-subpaths/conf/web/0" to rootfs at "/var/lib/docker/overlay2/a/merged/etc/nginx/'
        'nginx.conf" caused: not a directory: unknown: Are you trying to mount a directory onto'
        " a file (or vice-versa)?"
    )
    f = kube_support.engine(events=(kube_support.warning("Failed", message, 3),)).finding
    assert f.category is Category.CONFIG_MISSING
    assert "/etc/nginx/nginx.conf" in f.summary
    assert f.evidence[0].text == message
    containerd = (
        "failed to create containerd task: failed to create shim task: OCI runtime create"
        " failed: runc create failed: unable to start container process: error during container"
        ' init: error mounting "/var/lib/kubelet/pods/7/volume-subpaths/settings/api/1" to rootfs'
        ' at "/app/settings.json": mount src=/var/lib/kubelet/pods/7/volume-subpaths/settings/'
        "api/1, dst=/app/settings.json: not a directory: unknown"
    )
    f = kube_support.engine(terminated_reason="StartError", terminated_message=containerd).finding
    assert f.category is Category.CONFIG_MISSING and f.specificity is Specificity.PLATFORM
    assert "/app/settings.json" in f.summary and "subPath" in f.fix
