"""Kubernetes evidence reaching the rules written for processes (DESIGN.md §3 traps): a
runtime's start failure as the spawn error, the kubelet's probe kill as the kill, the
terminated reason quoted with the exit status, and the wait-loop and crash-handler wordings
Kubernetes workloads print."""

from __future__ import annotations

from dataclasses import replace

from kube_support import kube_facts

from diagnosis_support import engine
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import EventFact, KillFact
from infraveil.core.diagnosis.finding import Specificity

TERMINATED = "status.containerStatuses[api].lastState.terminated"


def start_error(message: str, reason: str = "StartError", code: int = 128) -> Category:
    facts = kube_facts(exit_code=code, terminated_reason=reason)
    facts = replace(facts, spawn_error=message, spawn_source=f"{TERMINATED}.message")
    d = diagnose(facts)
    assert d.finding.specificity is Specificity.PLATFORM
    assert d.finding.evidence[0].source == f"{TERMINATED}.message"
    return d.finding.category


def test_containerd_start_error_128_is_command_not_found() -> None:
    message = (
        "failed to create containerd task: failed to create shim task: OCI runtime create"
        ' failed: runc create failed: unable to start container process: exec: "": executable'
        " file not found in $PATH: unknown"
    )
    assert start_error(message) is Category.COMMAND_NOT_FOUND


def test_dockers_container_cannot_run_permission_denied_is_not_executable() -> None:
    message = (
        "OCI runtime create failed: container_linux.go:349: starting container process caused"
        ' "exec: \\"/docker-entrypoint.sh\\": permission denied": unknown'
    )
    category = start_error(message, "ContainerCannotRun", 126)
    assert category is Category.NOT_EXECUTABLE


def test_exec_format_error_from_the_runtime_is_wrong_arch() -> None:
    message = "exec /usr/local/bin/app: exec format error"
    assert start_error(message, "Error", 1) is Category.WRONG_ARCH


def test_oom_killed_quotes_the_terminated_reason_whatever_the_exit_code() -> None:
    facts = replace(kube_facts(exit_code=1, terminated_reason="OOMKilled"), oom_killed=True)
    d = diagnose(replace(facts, run_seconds=20.0))
    assert d.finding.category is Category.OOM_KILLED
    assert [(e.source, e.text) for e in d.finding.evidence] == [
        (TERMINATED, "OOMKilled: exited with code 1 after 20s")
    ]


def test_the_kubelets_liveness_kill_quotes_the_probe_failure_first() -> None:
    probe = EventFact(
        "Unhealthy", "Liveness probe failed: Get http://10.1.2.3:8080/: EOF", "event Unhealthy"
    )
    kill = KillFact("liveness", "Container api failed liveness probe", "event Normal Killing")
    facts = replace(kube_facts(events=(probe,), exit_code=0), kill=kill, run_seconds=40.0)
    d = diagnose(facts)
    assert d.finding.category is Category.SLOW_START_KILLED  # exits 0, yet not exited_zero
    assert [e.source for e in d.finding.evidence][:2] == ["event Unhealthy", "event Normal Killing"]
    up = diagnose(replace(facts, became_ready=True))
    assert up.finding.category is Category.UNRESPONSIVE
    assert [e.source for e in up.finding.evidence][:2] == [
        "event Unhealthy",
        "event Normal Killing",
    ]


def test_busybox_wait_loops_that_cannot_resolve() -> None:
    for line in ("nslookup: can't resolve 'db.shop'", "wget: bad address 'db.shop:80'"):
        d = engine(f"waiting for db\n{line}", exit_code=1)
        assert d.finding.category is Category.DNS_FAILURE and "db.shop" in d.finding.summary


def test_a_required_variable_named_outranks_the_invalid_configuration_it_causes() -> None:
    log = (
        'time="2018-10-22T20:59:21Z" level=error msg="SYRINGE_TIER is a required variable."\n'
        'time="2018-10-22T20:59:21Z" level=fatal msg="Invalid configuration. Please re-run'
        ' Syringe with appropriate env variables"'
    )
    d = engine(log, exit_code=1)
    assert d.finding.category is Category.MISSING_ENV and "SYRINGE_TIER" in d.finding.summary


def test_client_gos_observed_panic_is_the_decisive_line() -> None:
    line = (
        'E0224 06:12:54.982793       1 runtime.go:66] Observed a panic: "invalid memory address'
        ' or nil pointer dereference" (runtime error: invalid memory address or nil pointer'
        " dereference)"
    )
    log = (
        f"I0224 06:12:54.972835       1 leaderelection.go:185] attempting to acquire lease\n{line}"
    )
    d = engine(log)
    assert d.finding.category is Category.STARTUP_EXCEPTION
    assert d.finding.evidence[0].text == line


def test_with_nothing_recognised_the_last_line_printed_is_quoted() -> None:
    d = engine("starting\nFailed to fetch /opt/conf/app.yml. statusCode=403", exit_code=1)
    assert d.finding.category is Category.UNKNOWN
    assert "Failed to fetch /opt/conf/app.yml. statusCode=403" in [
        e.text for e in d.finding.evidence
    ]


def test_a_kubernetes_container_is_named_as_such() -> None:
    d = diagnose(kube_facts("Error: boom", exit_code=1))
    assert d.finding.summary.startswith("Container api ")
    assert "kubectl delete pod" in d.finding.fix
    init = diagnose(kube_facts("Error: boom", exit_code=1, init=True, container="wait-db"))
    assert init.finding.summary.startswith("Init container wait-db ")


def test_an_image_without_a_command_and_a_spec_without_one() -> None:
    message = 'failed to generate container "3f2a" spec: no command specified'
    facts = replace(kube_facts(), spawn_error=message, spawn_source="waiting.message")
    assert diagnose(facts).finding.category is Category.COMMAND_NOT_FOUND
