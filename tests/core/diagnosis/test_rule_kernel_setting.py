"""kernel_setting: host kernel settings and process limits too low, and the ENOSPC traps."""

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
from infraveil.core.diagnosis.rules import kernel_setting


def facts(text: str, **kw: Any) -> Facts:
    log = lines_of(textwrap.dedent(text).strip("\n"))
    kw.setdefault("exit_code", 1)
    return Facts(log=log, log_source="app.log", **kw)


def test_elasticsearch_vm_max_map_count() -> None:
    # https://github.com/spujadas/elk-docker/issues/334 (Elasticsearch 8 bootstrap check wording)
    log = """
    ERROR: [1] bootstrap checks failed. You must address the points described in the following [1] lines before starting Elasticsearch.
    bootstrap check failure [1] of [1]: max virtual memory areas vm.max_map_count [65530] is too low, increase to at least [262144]
    ERROR: Elasticsearch did not exit normally - check the logs at /usr/share/elasticsearch/logs/docker-cluster.log
    """  # noqa: E501
    f = kernel_setting.rule(Clues(facts(log, service="search")))
    assert f is not None
    assert f.category is Category.KERNEL_SETTING
    assert "65530" in f.summary and "262144" in f.summary
    assert "vm.max_map_count [65530]" in f.evidence[0].text
    assert "sysctl -w 'vm.max_map_count=262144'" in f.fix
    assert "/etc/sysctl.d/99-search.conf" in f.fix
    assert f.confidence is Confidence.HIGH and f.deterministic
    d = diagnose(facts(log))
    assert d.finding.category is Category.KERNEL_SETTING


INOTIFY = [
    # https://github.com/emcrisostomo/fswatch/issues/232
    pytest.param(
        "inotify_add_watch: No space left on device", "max_user_watches", id="inotify-enospc"
    ),
    # https://github.com/gatsbyjs/gatsby/issues/14789
    pytest.param(
        "Error: ENOSPC: System limit for number of file watchers reached, watch '/home/akash/appme/node_modules'",  # noqa: E501
        "max_user_watches",
        id="node-watchers",
    ),
    # https://github.com/notify-rs/notify/issues/103 style Rust error while watching
    pytest.param(
        'Failed to watch filesystem for `src/app.py`: Error { kind: Io(Os { code: 28, kind: Other, message: "No space left on device" }) }',  # noqa: E501
        "max_user_watches",
        id="rust-watch",
    ),
    # fsnotify (Go) running out of inotify instances: https://github.com/fsnotify/fsnotify
    pytest.param(
        'level=error msg="failed to create fsnotify watcher: too many open files"',
        "max_user_instances",
        id="fsnotify-instances",
    ),
]


@pytest.mark.parametrize(("log", "sysctl"), INOTIFY)
def test_inotify_limits_are_kernel_settings_not_a_full_disk(log: str, sysctl: str) -> None:
    f = kernel_setting.rule(Clues(facts(log)))
    assert f is not None
    assert sysctl in f.summary and sysctl in f.fix
    d = diagnose(facts(log))
    assert d.finding.category is Category.KERNEL_SETTING


def test_postgres_semaphores_are_kernel_sem_not_disk() -> None:
    # https://www.postgresql.org/docs/current/kernel-resources.html
    log = """
    2024-05-02 10:00:01.000 UTC [1] FATAL:  could not create semaphores: No space left on device
    2024-05-02 10:00:01.000 UTC [1] DETAIL:  Failed system call was semget(5432001, 17, 03600).
    """
    d = diagnose(facts(log))
    assert d.finding.category is Category.KERNEL_SETTING
    assert "kernel.sem" in d.finding.summary


def test_too_many_open_files_is_medium_with_a_leak_check() -> None:
    f = kernel_setting.rule(Clues(facts("OSError: [Errno 24] Too many open files")))
    assert f is not None
    assert "RLIMIT_NOFILE" in f.summary and "LimitNOFILE" in f.fix
    assert f.confidence is Confidence.MEDIUM and "leak" in f.confirm


def test_elasticsearch_file_descriptors_is_high() -> None:
    log = "max file descriptors [4096] for elasticsearch process is too low, increase to at least [65535]"  # noqa: E501
    f = kernel_setting.rule(Clues(facts(log)))
    assert f is not None and "65535" in f.summary and f.confidence is Confidence.HIGH


def test_a_redis_startup_warning_is_only_a_keyword() -> None:
    # https://github.com/ray-project/ray/issues/11201
    log = "129119:M 04 Oct 2020 12:37:38.852 # WARNING overcommit_memory is set to 0! Background save may fail under low memory condition."  # noqa: E501
    f = kernel_setting.rule(Clues(facts(log)))
    assert f is not None
    assert f.specificity is Specificity.KEYWORD and f.confidence is Confidence.LOW


NEAR_MISSES = [
    pytest.param("OSError: [Errno 28] No space left on device: '/data/out.bin'", id="disk-full"),
    pytest.param("INFO vm.max_map_count is 262144", id="fine-setting"),
    pytest.param("INFO watching /app for changes", id="watching"),
]


@pytest.mark.parametrize("log", NEAR_MISSES)
def test_does_not_fire(log: str) -> None:
    assert kernel_setting.rule(Clues(facts(log))) is None


def test_in_a_pod_the_sysctl_is_set_on_the_nodes_or_by_an_init_container() -> None:
    log = "max virtual memory areas vm.max_map_count [65530] is too low, increase to at least [262144]"  # noqa: E501
    f = kube_support.engine(log, container="opensearch").finding
    assert f.category is Category.KERNEL_SETTING
    assert "every node" in f.fix and "privileged init container" in f.fix
    assert "/etc/sysctl.d/99-opensearch.conf" in f.fix and "infraveil" not in f.fix
