"""The same failure in the other words and formats real programs use for it: severity letters
and fields, errno names, permission refusals on data paths and mounted volumes, stored state
that does not fit, kernel settings written from a container, libraries loaded at run time,
the kubelet's probes in the program's own access log, and cascades of one error.

Each input is a different program than the corpus case that showed the gap: these test the
kind of evidence, not a fixture's wording."""

from __future__ import annotations

import textwrap

from kube_support import apply as kube_apply
from kube_support import engine as kube_engine
from kube_support import kube_facts

from diagnosis_support import apply, engine, quoted
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, probe_requests
from infraveil.core.diagnosis.decisive import decisive_line
from infraveil.core.diagnosis.facts import KubeProbe, lines_of
from infraveil.core.diagnosis.finding import Confidence
from infraveil.core.diagnosis.rules import (
    data_dir,
    kernel_setting,
    missing_module,
    not_ready,
    probe_misconfigured,
    read_only_fs,
)


def log(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


# --- the decisive line: severity as a letter or a field ----------------------------------------


def test_a_klog_fatal_line_is_decisive_over_the_next_runs_info_lines() -> None:
    lines = lines_of(
        log("""
        I1121 08:00:01.000001       1 main.go:40] Starting cloud-controller-manager
        F1121 08:00:01.200000       1 main.go:88] failed to load cloud config: open /etc/cloud/cloud.conf: no such file or directory
        I1121 08:05:02.000001       1 main.go:40] Starting cloud-controller-manager
        I1121 08:05:02.100000       1 flags.go:64] FLAG: --v="2"
        """)  # noqa: E501
    )
    d = decisive_line(lines)
    assert d is not None and d.line.text.startswith("F1121 08:00:01.2")


def test_a_structured_fatal_line_outranks_error_lines_after_it() -> None:
    for fatal, later in (
        (
            "F1121 08:00:01.2 1 server.go:495] failed to create listener: bind: address in use",
            "E1121 08:05:01.0 1 reflector.go:138] failed to list *v1.Node: connection refused",
        ),
        (
            'time="2026-11-21T08:00:01Z" level=fatal msg="cannot open database: no such host"',
            'time="2026-11-21T08:00:06Z" level=error msg="metrics push failed: EOF"',
        ),
        (
            '{"level":"panic","msg":"invalid raft state"}',
            '{"level":"error","msg":"rafthttp: failed to dial peer"}',
        ),
    ):
        d = decisive_line(lines_of(f"starting\n{fatal}\n{later}\n"))
        assert d is not None and d.line.text == fatal


def test_without_a_fatal_line_the_last_error_line_is_decisive() -> None:
    d = decisive_line(lines_of("ERROR first problem\nERROR second problem\n"))
    assert d is not None and d.line.text == "ERROR second problem"


def test_a_klog_error_letter_counts_as_an_error_line() -> None:
    lines = lines_of(
        "I1121 08:00:01.0 1 a.go:1] up\nE1121 08:00:02.0 1 b.go:2] sync failed: timeout\n"
    )
    d = decisive_line(lines)
    assert d is not None and "sync failed" in d.line.text


def test_json_severity_fields_count_as_error_lines() -> None:
    for line in (
        '{"t":{"$date":"2026-11-21T08:00:00Z"},"s":"F","c":"CONTROL","msg":"Fatal assertion"}',
        '{"severity":"ERROR","message":"cannot reach spanner"}',
        '{"level":"FATAL","msg":"bad flag"}',
    ):
        lines = lines_of(f'{{"s":"I","msg":"start"}}\n{line}\n{{"s":"I","msg":"more"}}\n')
        d = decisive_line(lines)
        assert d is not None and d.line.text == line


def test_info_lines_in_json_are_not_errors() -> None:
    assert decisive_line(lines_of('{"s":"I","msg":"Waiting for connections"}\n')) is None


# --- data_dir: the refusal however it is worded ----------------------------------------------


def test_an_errno_name_on_a_data_path_is_a_data_directory_refusal() -> None:
    # "executing" is not an exec of a program
    text = "Error while executing migrations: EACCES: permission denied, open '/srv/app/state/lock'"
    f = apply(data_dir.rule, text, exit_code=1)
    assert f is not None and f.category is Category.DATA_DIR
    assert "/srv/app/state" in f.fix and quoted(f)[0] == text


def test_executing_a_program_that_is_denied_is_still_not_a_data_directory() -> None:
    assert apply(data_dir.rule, "exec /data/bin/run.sh: permission denied", exit_code=1) is None


def test_eperm_on_a_data_file_is_quoted_though_the_last_line_has_no_path() -> None:
    text = log("""
        time="2026-11-21T08:00:00Z" level=error msg="open /var/lib/registry/docker/registry/v2/repositories: operation not permitted"
        time="2026-11-21T08:00:00Z" level=fatal msg="storage driver failed: operation not permitted"
        """)  # noqa: E501
    f = apply(data_dir.rule, text, exit_code=1)
    assert f is not None and f.category is Category.DATA_DIR
    assert "/var/lib/registry" in f.summary
    assert "v2/repositories: operation not permitted" in quoted(f)[0]


def test_unable_to_access_a_storage_path_is_a_data_directory_refusal() -> None:
    text = (
        "java.lang.IllegalStateException: Unable to access 'path.data' (/usr/share/opensearch/data)"
    )
    d = engine(text, exit_code=1)
    assert d.finding.category is Category.DATA_DIR
    assert text in quoted(d.finding)


def test_a_refusal_on_a_path_mounted_from_a_volume_is_that_volumes() -> None:
    f = kube_apply(
        data_dir.rule,
        "Error: open /uploads/avatars/17.png: permission denied",
        mounts=(("uploads", "/uploads"), ("config", "/etc/app")),
    )
    assert f is not None and f.category is Category.DATA_DIR and "/uploads" in f.summary


def test_a_refusal_on_a_mounted_config_file_is_not_a_data_directory() -> None:
    f = kube_apply(
        data_dir.rule,
        "Error: open /etc/app/config.yaml: permission denied",
        mounts=(("config", "/etc/app"),),
    )
    assert f is None


def test_a_write_refused_where_the_app_keeps_its_files_is_a_weak_data_directory_finding() -> None:
    text = "Error: EACCES: permission denied, mkdir '/app/uploads/avatars'"
    f = apply(data_dir.rule, text, exit_code=1)
    assert f is not None and f.category is Category.DATA_DIR
    assert f.confidence is Confidence.LOW and "/app/uploads" in f.summary


def test_reading_a_file_or_writing_a_system_path_is_not_a_data_directory() -> None:
    for text in (
        "Error: open /app/config.yml: permission denied",
        "npm ERR! Error: EACCES: permission denied, mkdir '/root/.npm/_cacache'",
        "sh: can't create /etc/nginx/conf.d/default.conf: Permission denied",
    ):
        assert apply(data_dir.rule, text, exit_code=1) is None, text


def test_busybox_chown_refused_names_capabilities_and_fsgroup() -> None:
    text = "chown: /opt/sonarqube/extensions: Operation not permitted"
    f = apply(data_dir.rule, text, exit_code=1)
    assert f is not None and f.category is Category.DATA_DIR
    assert "/opt/sonarqube/extensions" in f.summary
    assert "CHOWN" in f.fix and "fsGroup" in f.fix and "root_squash" in f.fix


def test_stored_state_from_another_cluster_is_the_data_directory_not_a_crash() -> None:
    text = log("""
        [2026-11-21 08:00:00,000] ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)
        java.lang.RuntimeException: Invalid cluster.id in: /var/lib/kafka/data/meta.properties. Expected 4L6g3nShT-eMCtK--X86sw, but read q1Sh-9_ISia_zwGINzRvyQ
        \tat kafka.server.KafkaRaftServer$.initializeLogDirs(KafkaRaftServer.scala:184)
        """)  # noqa: E501
    d = engine(text, exit_code=1)
    assert d.finding.category is Category.DATA_DIR
    assert "/var/lib/kafka/data" in d.finding.fix and "PersistentVolumeClaim" in d.finding.fix


def test_a_lost_raft_log_is_the_data_directory() -> None:
    text = (
        '{"level":"panic","ts":"2026-11-21T08:00:00Z","caller":"raft/log.go:203","msg":'
        '"tocommit(2090) is out of range [lastIndex(0)]. Was the raft log corrupted,'
        ' truncated, or lost?"}'
    )
    d = engine(text, exit_code=2)
    assert d.finding.category is Category.DATA_DIR


# --- kernel settings written from a container ----------------------------------------------


def test_a_write_to_proc_sys_refused_is_a_kernel_setting() -> None:
    text = "E1121 08:00:00.1 1 proxier.go:9] write /proc/sys/net/ipv4/ip_forward: permission denied"
    f = apply(kernel_setting.rule, text, exit_code=1)
    assert f is not None and f.category is Category.KERNEL_SETTING
    assert "net.ipv4.ip_forward" in f.summary and "sysctl" in f.fix
    assert engine(text, exit_code=1).finding.category is Category.KERNEL_SETTING


def test_proc_sys_mounted_read_only_is_a_kernel_setting_not_a_read_only_volume() -> None:
    text = "Error: open /proc/sys/vm/overcommit_memory: read-only file system"
    d = engine(text, exit_code=1)
    assert d.finding.category is Category.KERNEL_SETTING
    assert "vm.overcommit_memory" in d.finding.summary


def test_sysctls_own_refusals_name_the_key() -> None:
    for text, key in (
        ("sysctl: permission denied on key 'net.core.somaxconn'", "net.core.somaxconn"),
        ('sysctl: setting key "vm.max_map_count": Read-only file system', "vm.max_map_count"),
    ):
        d = engine(text, exit_code=255)
        assert d.finding.category is Category.KERNEL_SETTING, text
        assert key in d.finding.summary


# --- a library loaded at run time ----------------------------------------------------------


def test_a_library_the_program_could_not_load_is_missing() -> None:
    text = log("""
        2026/11/21 08:00:00 Initializing hardware monitor
        2026/11/21 08:00:00 ERROR: Unable to load the libvirt library
        2026/11/21 08:00:00 Make sure the libvirt client package is installed on the host.
        2026/11/21 08:00:00 See https://example.org/docs/install for details.
        """)
    d = engine(text, exit_code=1)
    assert d.finding.category is Category.MISSING_MODULE
    assert "libvirt" in d.finding.summary
    assert "Unable to load the libvirt library" in quoted(d.finding)[0]


def test_a_shared_library_file_that_failed_to_load_is_named() -> None:
    text = "RuntimeError: failed to load shared library 'libonnxruntime.so.1.16': not found"
    f = apply(missing_module.rule, text, exit_code=1)
    assert f is not None and "libonnxruntime.so.1.16" in f.summary


# --- the kubelet's probes in the program's own access log --------------------------------


def _nginx(path: str, status: int, second: int, agent: str = "kube-probe/1.29") -> str:
    return (
        f'10.244.1.1 - - [21/Nov/2026:08:00:{second:02d} +0000] "GET {path} HTTP/1.1"'
        f' {status} 153 "-" "{agent}"'
    )


def test_probe_requests_answered_404_are_a_wrong_probe() -> None:
    lines = [_nginx("/healthz", 404, s) for s in (0, 10, 20)]
    text = "\n".join(["nginx: ready", _nginx("/", 404, 1, "Mozilla/5.0"), *lines])
    d = kube_engine(text)
    f = d.finding
    assert f.category is Category.PROBE_MISCONFIGURED
    assert quoted(f)[0] == lines[0]  # the first of them
    assert "/healthz" in f.summary and "3 requests" in f.summary


def test_successful_probe_requests_and_other_clients_404s_say_nothing() -> None:
    text = "\n".join([_nginx("/healthz", 200, 0), _nginx("/missing", 404, 1, "curl/8.0")])
    assert probe_requests(Clues(kube_facts(text))) == []
    assert kube_apply(probe_misconfigured.rule, text) is None


def test_readiness_requests_answered_503_in_a_json_access_log_are_not_ready() -> None:
    text = (
        '{"ts":"2026-11-21T08:00:00Z","method":"GET","path":"/api/ready","status":503,'
        '"user_agent":"kube-probe/1.28"}'
    )
    ready = KubeProbe("readiness", {"httpGet": {"path": "/api/ready", "port": 8080}})
    f = kube_apply(not_ready.rule, text, probes=(ready,))
    assert f is not None and f.category is Category.NOT_READY
    assert "/api/ready" in f.summary and "503" in f.summary


def test_a_liveness_path_answered_500_is_not_read_as_readiness() -> None:
    text = 'level=info msg=request path=/livez status=500 user_agent="kube-probe/1.30"'
    assert kube_apply(not_ready.rule, text) is None


# --- a cascade of one error: the first line is where it began ----------------------------


def test_a_cascade_of_the_same_read_only_error_quotes_its_first_line() -> None:
    first = "cp: cannot create regular file '/usr/share/nginx/html/env.js': Read-only file system"
    last = "/docker-entrypoint.d/40-env.sh: line 7: /usr/share/nginx/html/env.js: Read-only file system"  # noqa: E501
    f = apply(read_only_fs.rule, f"starting\n{first}\n{last}\n", exit_code=1)
    assert f is not None and quoted(f)[:2] == [first, last]
    assert "2 lines" in f.summary


def test_a_single_read_only_error_is_quoted_once() -> None:
    text = "mkdir /var/cache/app: read-only file system"
    f = apply(read_only_fs.rule, f"booting\n{text}\n", exit_code=1)
    assert f is not None and quoted(f) == [text] and "lines" not in f.summary


# --- the termination as pasted ---------------------------------------------------------------


def test_the_exit_status_quotes_the_pasted_field_lines() -> None:
    facts = kube_facts(
        exit_code=134,
        terminated_reason="Error",
        terminated_pasted=("Reason:       Error", "Exit Code:    134"),
    )
    status = Clues(facts).exit_evidence()
    assert status is not None and "Exit Code:    134" in status.text


# --- chown refused: the volume, or the securityContext when it runs as non-root ------------


def test_chown_refused_to_a_container_run_as_non_root_is_its_security_context() -> None:
    text = "chown: changing ownership of '/var/lib/mysql': Operation not permitted"
    d = kube_engine(text, run_as_user=1001)
    assert d.finding.category is Category.SECURITY_CONTEXT
    assert "uid 1001" in d.finding.summary and "fsGroup: 1001" in d.finding.fix
    assert text in quoted(d.finding)


def test_chown_refused_to_a_root_container_stays_the_volumes() -> None:
    text = "chown: /var/lib/mysql: Operation not permitted"
    assert kube_engine(text, run_as_user=0).finding.category is Category.DATA_DIR
    assert kube_engine(text).finding.category is Category.DATA_DIR
