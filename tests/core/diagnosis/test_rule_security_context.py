"""security_context: runAsNonRoot against an image that runs as root or names its user."""

from __future__ import annotations

import pytest
from kube_support import apply, engine, warning

from diagnosis_support import apply as apply_process
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.finding import Specificity
from infraveil.core.diagnosis.rules.security_context import rule


def test_run_as_non_root_and_an_image_running_as_root() -> None:
    message = (
        'Error: container has runAsNonRoot and image will run as root (pod: "hello_default(1)",'
        " container: hello)"
    )
    f = apply(
        rule, events=(warning("Failed", message, 4),), waiting_reason="CreateContainerConfigError"
    )
    assert f is not None and f.category is Category.SECURITY_CONTEXT
    assert f.specificity is Specificity.PLATFORM and f.evidence[0].text == message
    assert "runs as root" in f.summary and "runAsUser: 1000" in f.fix


def test_an_image_naming_its_user_by_name() -> None:
    message = (
        "container has runAsNonRoot and image has non-numeric user (nginx), cannot verify user"
        " is non-root"
    )
    f = apply(rule, waiting_reason="CreateContainerConfigError", waiting_message=message)
    assert f is not None and "(nginx)" in f.summary
    assert f.evidence[0].source == "status.containerStatuses[api].state.waiting.message"


def test_nothing_about_run_as_non_root() -> None:
    assert apply(rule, events=(warning("Failed", "Error: ErrImagePull"),)) is None
    # a process's log saying it is not the kubelet (a pod's paste read as logs may be)
    assert apply_process(rule, "container has runAsNonRoot and image will run as root") is None


def test_a_pod_paste_read_as_logs_still_holds_the_kubelets_words() -> None:
    line = (
        "  Warning  Failed  5s (x3 over 37s)  kubelet  Error: container has runAsNonRoot and"
        " image will run as root"
    )
    f = apply(rule, f"Events:\n{line}", status_known=False)
    assert f is not None and f.evidence[0].source == "logs --previous -c api line 2"
    # a program of a pod whose status is known only logs about others' objects
    assert apply(rule, f"Events:\n{line}") is None


@pytest.mark.parametrize(
    ("line", "port"),
    [
        (
            "2023/01/01 00:00:00 [emerg] 1#1: bind() to 0.0.0.0:80 failed (13: Permission denied)",
            80,
        ),
        ("listen tcp :443: bind: permission denied", 443),
        ("Error: listen EACCES: permission denied 0.0.0.0:80", 80),
        (
            "(13)Permission denied: AH00072: make_sock: could not bind to address [::]:80",
            80,
        ),
    ],
)
def test_a_non_root_container_may_not_listen_below_1024(line: str, port: int) -> None:
    f = apply(rule, f"starting\n{line}", exit_code=1)
    assert f is not None and f.category is Category.SECURITY_CONTEXT
    assert f"port {port}" in f.summary and f.evidence[0].text == line
    assert "net.ipv4.ip_unprivileged_port_start" in f.fix
    assert engine(f"starting\n{line}", exit_code=1).finding.category is Category.SECURITY_CONTEXT


def test_a_high_port_or_a_process_is_not_this() -> None:
    assert apply(rule, "listen tcp :8080: bind: permission denied") is None
    assert apply_process(rule, "listen tcp :80: bind: permission denied") is None


def test_a_pod_the_namespaces_pod_security_level_refuses() -> None:
    message = (
        'Error creating: pods "api-7d9-xk2" is forbidden: violates PodSecurity "baseline:latest":'
        ' host namespaces (hostNetwork=true), hostPort (container "api" uses hostPort 8080)'
    )
    f = apply(rule, events=(warning("FailedCreate", message),))
    assert f is not None and f.category is Category.SECURITY_CONTEXT
    assert 'Pod Security "baseline:latest"' in f.summary
    assert "pod-security.kubernetes.io/enforce" in f.fix


def test_openshifts_security_context_constraints() -> None:
    message = (
        'Error creating: pods "db-1" is forbidden: unable to validate against any security context'
        " constraint: [provider restricted: .spec.securityContext.fsGroup: Invalid value:"
        " []int64{999}: 999 is not an allowed group]"
    )
    f = apply(rule, events=(warning("FailedCreate", message),))
    assert f is not None and "security context constraints" in f.summary
    assert "add-scc-to-user" in f.fix
