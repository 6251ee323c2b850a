"""infraveil.k8s.doctor: a pod's report — the category, decisive evidence and fix (with a patch
where the fix is in the spec) per failing container, on pods built in the API's real shapes
with the traps DESIGN.md §3 names; and how a person sees it (render_k8s)."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from k8s_pods import (
    container,
    event,
    evidence,
    http_probe,
    pod,
    running,
    status,
    terminated,
    waiting,
)
from rich.console import Console

from infraveil.cli.render_k8s import render_pod_reports
from infraveil.k8s.doctor import ContainerReport, PodReport, _yaml, diagnose_pod
from infraveil.k8s.evidence import UNNAMED, PodEvidence

LIVENESS_KILL = "Container api failed liveness probe, will be restarted"
REFUSED = (
    'Liveness probe failed: Get "http://10.244.1.7:8080/healthz": dial tcp 10.244.1.7:8080:'
    " connect: connection refused"
)


def report_of(r: PodReport, name: str = "api") -> ContainerReport:
    return next(c for c in r.containers if c.view.name == name)


def category(r: PodReport, name: str = "api") -> str:
    d = report_of(r, name).diagnosis
    assert d is not None, f"{name} has no diagnosis: {r.summary}"
    return d.finding.category.value


def quoted(r: PodReport, name: str = "api") -> list[str]:
    d = report_of(r, name).diagnosis
    assert d is not None
    return [e.text for e in d.finding.evidence]


def sources(r: PodReport, name: str = "api") -> list[str]:
    d = report_of(r, name).diagnosis
    assert d is not None
    return [e.source for e in d.finding.evidence]


def slow_start(exit_code: int = 137, reason: str = "Error", ran: float = 35) -> PodEvidence:
    p = pod(
        [container(livenessProbe=http_probe(period=10, failures=3))],
        [status("api", waiting(), terminated(reason, exit_code, start=100, ran=ran), restarts=5)],
    )
    events = [
        event("Unhealthy", REFUSED, count=15, first=10, last=130),
        event("Killing", LIVENESS_KILL, kind="Normal", count=5, first=30, last=130),
        event("BackOff", "Back-off restarting failed container", count=9, first=40, last=200),
    ]
    return evidence(p, events, previous={"api": "loading model weights 40%"})


def test_a_liveness_probe_killing_a_slow_start_gets_a_startup_probe_patch() -> None:
    r = diagnose_pod(slow_start())
    c = report_of(r)
    assert category(r) == "slow_start_killed" and not r.healthy
    assert REFUSED in quoted(r) and LIVENESS_KILL in quoted(r)
    assert "event Warning Unhealthy (x15 over 2m00s)" in sources(r)
    assert c.patch is not None and c.patch.startswith(
        "# kubectl -n shop patch deployment/api --patch-file patch.yaml\n"
    )
    patch = yaml.safe_load(c.patch)
    (spec,) = patch["spec"]["template"]["spec"]["containers"]
    probe = spec["startupProbe"]
    assert spec["name"] == "api"
    assert probe["httpGet"] == {"path": "/healthz", "port": 8080, "scheme": "HTTP"}
    # the Killing event came 30 s after the start (it stopped 5 s later): twice that in 10 s
    # periods, rounded up, 6 × 10 s
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (10, 6)
    assert c.diagnosis is not None and "startupProbe" in c.diagnosis.finding.fix
    assert "twice the 30s it had before the kill" in c.diagnosis.finding.fix
    assert "infraveil.toml" not in c.diagnosis.finding.fix


def test_a_liveness_kill_that_exits_0_is_not_exited_zero() -> None:
    r = diagnose_pod(slow_start(exit_code=0, reason="Completed"))
    assert category(r) == "slow_start_killed"


def test_a_liveness_kill_after_a_long_healthy_run_is_unresponsive() -> None:
    p = pod(
        [container(livenessProbe=http_probe())],
        [status("api", waiting(), terminated("Error", 137, start=0, ran=7200), restarts=1)],
    )
    events = [
        event("Unhealthy", "Liveness probe failed: context deadline exceeded", count=3, last=7190),
        event("Killing", LIVENESS_KILL, kind="Normal", last=7195),
    ]
    r = diagnose_pod(evidence(p, events))
    assert category(r) == "unresponsive"
    assert quoted(r)[:2] == ["Liveness probe failed: context deadline exceeded", LIVENESS_KILL]


def test_oom_killed_with_exit_code_1_gets_a_memory_limit_patch() -> None:
    p = pod(
        [container(resources={"limits": {"memory": "256Mi"}, "requests": {"memory": "128Mi"}})],
        [status("api", waiting(), terminated("OOMKilled", 1, ran=64), restarts=3)],
    )
    r = diagnose_pod(evidence(p, previous={"api": "INFO processing batch 12"}))
    c = report_of(r)
    assert category(r) == "oom_killed"
    assert c.patch is not None
    limits = yaml.safe_load(c.patch)["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert limits == {"limits": {"memory": "512Mi"}}
    assert c.diagnosis is not None and "256Mi" in c.diagnosis.finding.fix


def test_start_error_128_with_the_cause_in_the_message_is_command_not_found() -> None:
    message = (
        "failed to create containerd task: failed to create shim task: OCI runtime create"
        " failed: runc create failed: unable to start container process: exec:"
        ' "gunicorn": executable file not found in $PATH: unknown'
    )
    p = pod(
        [container(command=["gunicorn"])],
        [status("api", waiting(), terminated("StartError", 128, ran=0, message=message))],
    )
    r = diagnose_pod(evidence(p))
    assert category(r) == "command_not_found"
    assert quoted(r)[0] == message
    assert sources(r)[0] == "status.containerStatuses[api].lastState.terminated.message"
    d = report_of(r).diagnosis
    assert d is not None and "gunicorn" in d.finding.summary


def test_a_missing_secret_key_whose_cause_is_only_in_the_events() -> None:
    spec = container(
        env=[{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]
    )
    p = pod([spec], [status("api", waiting("CreateContainerConfigError"))], phase="Pending")
    events = [event("Failed", "Error: couldn't find key pw in Secret shop/db", count=5)]
    r = diagnose_pod(evidence(p, events))
    d = report_of(r).diagnosis
    assert category(r) == "missing_secret" and d is not None
    assert quoted(r) == ["Error: couldn't find key pw in Secret shop/db"]
    assert "env DB_PASSWORD" in d.finding.summary
    assert """kubectl -n shop patch secret db --type merge -p '{"stringData":{"pw":""" in (
        d.finding.fix
    )


def test_a_configmap_volume_that_will_not_mount_keeps_the_pod_creating() -> None:
    spec = container(volumeMounts=[{"name": "conf", "mountPath": "/etc/api"}])
    p = pod(
        [spec],
        [status("api", waiting("ContainerCreating"))],
        phase="Pending",
        volumes=[{"name": "conf", "configMap": {"name": "api-conf"}}],
    )
    mount = 'MountVolume.SetUp failed for volume "conf" : configmap "api-conf" not found'
    r = diagnose_pod(evidence(p, [event("FailedMount", mount, count=12, container=None)]))
    d = report_of(r).diagnosis
    assert category(r) == "missing_configmap" and d is not None
    assert "volume conf" in d.finding.summary and "mount it" in d.finding.summary
    assert "kubectl -n shop create configmap api-conf" in d.finding.fix


def test_run_as_non_root_with_a_root_image_gets_a_run_as_user_patch() -> None:
    p = pod(
        [container(securityContext={"runAsNonRoot": True})],
        [status("api", waiting("CreateContainerConfigError"))],
        phase="Pending",
    )
    error = "Error: container has runAsNonRoot and image will run as root (pod: ...)"
    r = diagnose_pod(evidence(p, [event("Failed", error, count=4)]))
    c = report_of(r)
    assert category(r) == "security_context" and c.patch is not None
    ctx = yaml.safe_load(c.patch)["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert ctx["runAsUser"] == 1000 and ctx["runAsNonRoot"] is True


@pytest.mark.parametrize(
    ("words", "fix_says"),
    [
        ("manifest unknown: manifest unknown", "Fix the image name or tag"),
        ("pull access denied for api, repository does not exist or may require", "private"),
        ("unexpected status code 401 Unauthorized", "docker-registry regcred"),
        ("dial tcp: lookup registry.example.com: no such host", "reachable from the node"),
    ],
)
def test_image_pull_failures_say_what_to_fix_for_the_exact_image(words: str, fix_says: str) -> None:
    p = pod([container()], [status("api", waiting("ImagePullBackOff", "Back-off pulling"))])
    image = "registry.example.com/shop/api:1.4.2"
    failed = f'Failed to pull image "{image}": rpc error: code = Unknown desc = {words}'
    events = [event("Failed", failed, count=4), event("Failed", "Error: ErrImagePull", count=4)]
    r = diagnose_pod(evidence(p, events))
    d = report_of(r).diagnosis
    assert category(r) == "image_pull" and d is not None
    assert quoted(r)[0] == failed and "ImagePullBackOff" in quoted(r)
    assert image in d.finding.summary and fix_says in d.finding.fix


def test_image_pull_with_only_the_waiting_reason() -> None:
    p = pod([container()], [status("api", waiting("ErrImagePull"))], phase="Pending")
    r = diagnose_pod(evidence(p))
    assert category(r) == "image_pull" and "ErrImagePull" in quoted(r)


def init_pod(init_state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    return pod(
        [container()],
        [status("api", waiting("PodInitializing"))],
        init=[container("wait-db", "busybox:1.36", command=["sh", "-c", "nc -z db 5432"])],
        init_statuses=[status("wait-db", init_state, last, restarts=4, image="busybox:1.36")],
        phase="Pending",
    )


def test_a_failing_init_container_reports_init_container_and_its_own_cause() -> None:
    p = init_pod(waiting(), terminated("Error", 1, ran=2))
    log = "connecting to db:5432\nERROR: could not connect to server: Connection refused"
    r = diagnose_pod(evidence(p, previous={"wait-db": log}))
    c = report_of(r, "wait-db")
    assert category(r, "wait-db") == "init_container"
    assert c.cause is not None and c.cause.value == "dependency_unreachable"
    assert c.as_dict()["diagnosis"]["cause"] == "dependency_unreachable"
    assert "ERROR: could not connect to server: Connection refused" in quoted(r, "wait-db")
    assert report_of(r).diagnosis is None and not report_of(r).view.failing
    assert "PodInitializing" in r.summary and "init container wait-db" in r.summary


def test_an_init_container_that_cannot_be_pulled_reports_the_pull() -> None:
    p = init_pod(waiting("ImagePullBackOff"))
    r = diagnose_pod(evidence(p))
    assert category(r, "wait-db") == "image_pull"
    assert report_of(r, "wait-db").cause is None


def test_an_init_container_stuck_in_its_wait_loop_reports_what_its_log_says() -> None:
    p = init_pod(running(0))
    log = "nslookup: can't resolve 'db.shop'\nwaiting for db\nnslookup: can't resolve 'db.shop'"
    r = diagnose_pod(evidence(p, current={"wait-db": log}))
    assert category(r, "wait-db") == "dns_failure"


def test_an_evicted_pod_says_which_resource_and_who_used_it() -> None:
    message = (
        "The node was low on resource: memory. Container api was using 9402820Ki, which"
        " exceeds its request of 7G. "
    )
    p = pod(
        [container()],
        [status("api", terminated("ContainerStatusUnknown", 137, ran=900))],
        phase="Failed",
        reason="Evicted",
        message=message,
    )
    r = diagnose_pod(evidence(p))
    d = report_of(r).diagnosis
    assert category(r) == "evicted" and d is not None
    assert message.strip() in quoted(r)
    assert "9402820Ki" in d.finding.summary and "requests.memory" in d.finding.fix


def test_a_coredns_forwarding_loop() -> None:
    p = pod([container("coredns")], [status("coredns", waiting(), terminated(), restarts=7)])
    log = (
        ".:53\n[INFO] plugin/reload: Running configuration MD5 = 3d3f6363f05ccd60e0f885f0eca6c5ff\n"
        '[FATAL] plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone ".", see'
        ' https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO 4547991504243258144."'
    )
    r = diagnose_pod(evidence(p, previous={"coredns": log}))
    assert category(r, "coredns") == "dns_loop"
    assert sources(r, "coredns")[0] == "logs --previous -c coredns line 3"


def test_flannel_without_a_pod_cidr() -> None:
    p = pod([container("kube-flannel")], [status("kube-flannel", waiting(), terminated())])
    log = (
        "I0411 06:25:44.372668       1 vxlan.go:120] VXLAN config: VNI=1 Port=0\n"
        "E0411 06:25:44.372839       1 main.go:289] Error registering network: failed to"
        ' acquire lease: node "ip-172-31-23-54" pod cidr not assigned'
    )
    r = diagnose_pod(evidence(p, previous={"kube-flannel": log}))
    d = report_of(r, "kube-flannel").diagnosis
    assert category(r, "kube-flannel") == "cni_failure" and d is not None
    assert "--allocate-node-cidrs" in d.finding.fix


def test_calico_node_not_ready_because_bgp_is_down() -> None:
    p = pod([container("calico-node")], [status("calico-node", running(0), ready=False)])
    probe = (
        "Readiness probe failed: calico/node is not ready: BIRD is not ready: BGP not"
        " established with 10.0.1.1"
    )
    r = diagnose_pod(evidence(p, [event("Unhealthy", probe, count=300, container="calico-node")]))
    assert category(r, "calico-node") == "cni_failure" and probe in quoted(r, "calico-node")


def test_a_readiness_failure_whose_log_names_the_cause_reports_the_cause() -> None:
    p = pod([container("metrics-server")], [status("metrics-server", running(0), ready=False)])
    log = (
        'E1121 08:00:10.1 1 scraper.go:140] "Failed to scrape node" err="Get'
        ' \\"https://10.0.0.5:10250/metrics/resource\\": x509: cannot validate certificate for'
        ' 10.0.0.5 because it doesn\'t contain any IP SANs" node="node-1"'
    )
    probe = "Readiness probe failed: HTTP probe failed with statuscode: 500"
    ev = evidence(
        p,
        [event("Unhealthy", probe, count=40, container="metrics-server")],
        current={"metrics-server": log},
    )
    r = diagnose_pod(ev)
    d = report_of(r, "metrics-server").diagnosis
    assert category(r, "metrics-server") == "tls_error" and d is not None
    assert log in quoted(r, "metrics-server") and probe in quoted(r, "metrics-server")
    assert "serverTLSBootstrap: true" in d.finding.fix


def test_a_healthy_pod_says_so_and_when_it_last_restarted() -> None:
    p = pod(
        [container()],
        [
            status(
                "api",
                running(7200),
                terminated("OOMKilled", 137, start=0, ran=7000),
                restarts=1,
                ready=True,
            )
        ],
    )
    r = diagnose_pod(evidence(p), now=None)
    assert r.healthy and report_of(r).diagnosis is None
    assert "is healthy: 1/1 containers ready" in r.summary
    assert "OOMKilled, exit code 137 at 2026-11-21 09:56:40 UTC" in r.summary


def test_a_healthy_pod_that_never_restarted() -> None:
    p = pod([container()], [status("api", running(0), ready=True)])
    r = diagnose_pod(evidence(p))
    assert r.healthy and r.summary.endswith("It never restarted.")


@pytest.mark.parametrize(
    "p",
    [{}, {"kind": "Pod", "metadata": {"name": "x"}}, {"spec": [], "status": "garbage"}],
)
def test_a_pod_without_containers_is_reported_not_a_traceback(p: dict[str, Any]) -> None:
    r = diagnose_pod(PodEvidence(p, problems=["pod.json: truncated at byte 812"]))
    assert not r.healthy and "truncated" in r.problems[0]
    assert any("no containers" in problem for problem in r.problems)
    json.dumps(r.as_dict())


def test_logs_given_without_a_container_name_are_diagnosed() -> None:
    log = "Traceback (most recent call last):\n  File \"app.py\", line 3\nKeyError: 'DATABASE_URL'"
    r = diagnose_pod(PodEvidence({}, previous_logs={UNNAMED: log}, source="paste.txt"))
    assert not r.healthy and r.containers[0].diagnosis is not None
    assert r.containers[0].diagnosis.finding.category.value == "missing_env"


def test_the_json_shape() -> None:
    d = diagnose_pod(slow_start()).as_dict()
    assert set(d) == {
        "namespace", "name", "phase", "node", "owners", "source", "healthy", "summary",
        "containers", "problems",
    }  # fmt: skip
    assert d["owners"] == ["ReplicaSet/api-7c9d8b6f4d", "Deployment/api"]
    (c,) = d["containers"]
    assert set(c) == {
        "name", "init", "state", "ready", "restarts", "failing", "last_termination",
        "diagnosis", "patch",
    }  # fmt: skip
    assert c["last_termination"] == {
        "reason": "Error",
        "exit_code": 137,
        "signal": None,
        "message": None,
        "started": "2026-11-21T08:01:40Z",
        "finished": "2026-11-21T08:02:15Z",
        "seconds": 35.0,
    }
    assert c["diagnosis"]["category"] == "slow_start_killed" and c["diagnosis"]["cause"] is None
    json.dumps(d)


def test_a_bare_pod_gets_a_patch_for_its_manifest() -> None:
    p = pod(
        [container(resources={"limits": {"memory": "100M"}})],
        [status("api", waiting(), terminated("OOMKilled", 137))],
        owned=False,
    )
    c = report_of(diagnose_pod(evidence(p)))
    assert c.patch is not None and c.patch.startswith("# a pod's spec cannot be changed")
    assert yaml.safe_load(c.patch)["spec"]["containers"][0]["resources"]["limits"] == {
        "memory": "191Mi"
    }


def test_twenty_failing_pods_are_diagnosed_well_under_a_second() -> None:
    log = "\n".join(f"INFO step {i}" for i in range(300)) + "\nError: boom"
    evidences = [slow_start() for _ in range(10)]
    for _ in range(10):
        p = pod([container()], [status("api", waiting(), terminated(), restarts=3)])
        evidences.append(evidence(p, previous={"api": log}))
    begin = time.perf_counter()
    reports = [diagnose_pod(e) for e in evidences]
    assert time.perf_counter() - begin < 0.5
    assert all(not r.healthy for r in reports)


def render(reports: list[PodReport]) -> str:
    out = io.StringIO()
    render_pod_reports(
        Console(file=out, width=120, highlight=False), [r.as_dict() for r in reports]
    )
    return out.getvalue()


def test_the_report_as_a_person_reads_it() -> None:
    text = render([diagnose_pod(slow_start())])
    assert "Pod shop/api-7c9d8b6f4d-x7k2p  failing (Running)" in text
    assert "owned by ReplicaSet/api-7c9d8b6f4d < Deployment/api" in text
    assert (
        "container api: CrashLoopBackOff, not ready, 5 restarts; last ended Error (exit 137)"
        in (text)
    )
    assert "slow_start_killed" in text and "Evidence:" in text
    assert "event Warning Unhealthy (x15 over 2m00s):" in text
    assert "Patch:" in text and "        startupProbe:" in text


def test_several_pods_failing_first_then_a_count() -> None:
    healthy = diagnose_pod(evidence(pod([container()], [status("api", running(0), ready=True)])))
    init = init_pod(waiting(), terminated("Error", 1, ran=2))
    failing = diagnose_pod(evidence(init, previous={"wait-db": "Error: timeout"}))
    text = render([healthy, failing])
    assert text.index("failing (Pending)") < text.index("healthy")
    assert "Its own cause:" in text
    assert text.rstrip().endswith("2 pods, 1 failing")


def test_a_pod_without_containers_is_unknown_not_failing() -> None:
    text = render([diagnose_pod(evidence({"metadata": {"name": "x", "namespace": "shop"}}))])
    assert "Pod shop/x  unknown" in text
    assert "failing" not in text.splitlines()[0]


def test_a_liveness_probe_answered_with_404_is_misconfigured() -> None:
    p = pod(
        [container(livenessProbe=http_probe("/health"))],
        [status("api", waiting(), terminated("Completed", 0, ran=40), restarts=3)],
    )
    events = [
        event(
            "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 404", count=9
        ),
        event("Killing", LIVENESS_KILL, kind="Normal", count=3),
    ]
    r = diagnose_pod(evidence(p, events, previous={"api": "Listening on :8080"}))
    d = report_of(r).diagnosis
    assert category(r) == "probe_misconfigured" and d is not None
    assert "infraveil.toml" not in d.finding.fix and "`path`" in d.finding.fix


def test_a_liveness_probe_on_another_port_than_the_program_listens_on() -> None:
    p = pod(
        [container(livenessProbe=http_probe(port=28081))],
        [status("api", waiting(), terminated("Error", 143, ran=40), restarts=3)],
    )
    probe = "Liveness probe failed: dial tcp 100.64.20.45:28081: connect: connection refused"
    events = [event("Unhealthy", probe, count=9), event("Killing", LIVENESS_KILL, kind="Normal")]
    log = "Startup completed in 2253ms. Server Running: http://kafka-gui-65fcb6f9f8-qmc64:8080"
    r = diagnose_pod(evidence(p, events, previous={"api": log}))
    assert category(r) == "probe_misconfigured" and probe in quoted(r) and log in quoted(r)


def test_a_container_whose_image_just_exits_0_is_told_about_commands_and_jobs() -> None:
    p = pod(
        [container("centos", "centos:7")],
        [status("centos", waiting(), terminated("Completed", 0, ran=0), restarts=6)],
    )
    r = diagnose_pod(evidence(p, [event("BackOff", "Back-off restarting failed container")]))
    d = report_of(r, "centos").diagnosis
    assert category(r, "centos") == "exited_zero" and d is not None
    assert "Completed: exited with code 0" in quoted(r, "centos")[0]
    assert "long-running `command`" in d.finding.fix and "Job" in d.finding.fix


def test_no_evidence_at_all_says_how_to_get_some_with_kubectl() -> None:
    p = pod([container()], [status("api", waiting(), terminated("Error", 1, ran=1), restarts=2)])
    d = report_of(diagnose_pod(evidence(p))).diagnosis
    assert d is not None and d.finding.category.value == "unknown"
    assert "kubectl logs --previous api-7c9d8b6f4d-x7k2p -c api" in d.finding.fix
    assert "kubectl debug" in d.finding.fix


def test_an_unscheduled_pod_says_why_and_diagnoses_no_container() -> None:
    p = pod([container()], [], phase="Pending")
    del p["spec"]["nodeName"]
    why = "0/3 nodes are available: 3 Insufficient memory."
    r = diagnose_pod(evidence(p, [event("FailedScheduling", why, container=None)]))
    assert not r.healthy and r.summary.endswith(f"is not scheduled on any node: {why}")
    assert all(c.diagnosis is None for c in r.containers)


def test_one_bundle_pod_is_diagnosed_well_under_200_ms() -> None:
    log = "\n".join(f"INFO request {i} served" for i in range(5000)) + "\npanic: boom"
    p = pod([container()], [status("api", waiting(), terminated("Error", 2), restarts=9)])
    events = [event("Unhealthy", f"Readiness probe failed: {i}") for i in range(200)]
    ev = evidence(p, events, previous={"api": log})
    begin = time.perf_counter()
    r = diagnose_pod(ev)
    assert time.perf_counter() - begin < 0.2
    assert category(r) == "startup_exception"


def test_not_ready_now_is_diagnosed_not_a_crash_from_days_ago() -> None:
    old_crash = terminated("OOMKilled", 137, start=0, ran=60)
    p = pod([container()], [status("api", running(3 * 86400), old_crash, restarts=1)])
    probe = "Readiness probe failed: HTTP probe failed with statuscode: 503"
    ev = evidence(
        p,
        [event("Unhealthy", probe, count=30, first=3 * 86400 + 10, last=3 * 86400 + 600)],
        current={"api": "waiting for cache warm-up"},
    )
    r = diagnose_pod(ev)
    c = report_of(r)
    assert category(r) == "not_ready" and probe in quoted(r)
    assert c.view.last_termination is not None
    assert c.view.last_termination["reason"] == "OOMKilled"  # still shown, as history


def test_a_container_with_its_own_cause_comes_before_the_sidecar_it_takes_down() -> None:
    reloader = "config-reloader"
    p = pod(
        [container(reloader), container("prometheus")],
        [
            status(reloader, waiting(), terminated(), restarts=4),
            status("prometheus", waiting(), terminated(), restarts=4),
        ],
    )
    refused = (
        'level=error msg="function failed. Retrying" err="trigger reload: Post'
        ' http://127.0.0.1:9090/-/reload: dial tcp 127.0.0.1:9090: connect: connection refused"'
    )
    config = (
        'level=error msg="Error loading config (--config.file=/etc/prometheus/config.yaml)"'
        ' err="parsing YAML file /etc/prometheus/config.yaml: yaml: unmarshal errors:\\n'
        '  line 661: field honor_timestamps not found in type config.plain"'
    )
    r = diagnose_pod(evidence(p, previous={reloader: refused, "prometheus": config}))
    assert [c.view.name for c in r.containers] == ["prometheus", reloader]
    assert category(r, "prometheus") == "config_invalid"
    assert category(r, reloader) == "dependency_unreachable"


def test_a_startup_probe_that_kills_the_start_gets_a_larger_budget() -> None:
    startup = {"exec": {"command": ["pg_isready"]}, "periodSeconds": 5, "failureThreshold": 12}
    p = pod(
        [container(startupProbe=startup, livenessProbe=http_probe())],
        [status("api", waiting(), terminated("Error", 137, ran=65), restarts=2)],
    )
    kill = event("Killing", "Container api failed startup probe, will be restarted", last=65)
    c = report_of(diagnose_pod(evidence(p, [kill])))
    assert c.diagnosis is not None and c.diagnosis.finding.category.value == "slow_start_killed"
    assert "raise its startupProbe's budget to 2m10s" in c.diagnosis.finding.fix
    assert c.patch is not None
    probe = yaml.safe_load(c.patch)["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert probe == {
        "exec": {"command": ["pg_isready"]},
        "periodSeconds": 5,
        "failureThreshold": 26,
    }


def test_a_postgres_data_directory_with_the_wrong_owner_gets_an_fs_group_patch() -> None:
    p = pod(
        [container("postgres", "postgres:16")],
        [status("postgres", waiting(), terminated("Error", 1, ran=1), restarts=5)],
    )
    log = (
        '2026-11-21 08:00:01.000 UTC [1] FATAL:  data directory "/var/lib/postgresql/data" has'
        " wrong ownership\n2026-11-21 08:00:01.000 UTC [1] HINT:  The server must be started by"
        " the user that owns the data directory."
    )
    c = report_of(diagnose_pod(evidence(p, previous={"postgres": log})), "postgres")
    assert c.diagnosis is not None and c.diagnosis.finding.category.value == "data_dir"
    assert c.patch is not None
    assert yaml.safe_load(c.patch)["spec"]["template"]["spec"] == {
        "securityContext": {"fsGroup": 999}
    }
    assert "fsGroup: 999" in c.diagnosis.finding.fix


def test_nginx_as_non_root_on_port_80_gets_a_sysctl_patch() -> None:
    p = pod(
        [container("web", "nginx:1.27", securityContext={"runAsUser": 101})],
        [status("web", waiting(), terminated("Error", 1, ran=1), restarts=3)],
    )
    log = "nginx: [emerg] bind() to 0.0.0.0:80 failed (13: Permission denied)"
    c = report_of(diagnose_pod(evidence(p, previous={"web": log})), "web")
    assert c.diagnosis is not None and c.diagnosis.finding.category.value == "security_context"
    assert c.patch is not None
    assert yaml.safe_load(c.patch)["spec"]["template"]["spec"]["securityContext"] == {
        "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    }


def test_a_pod_still_starting_is_neither_healthy_nor_failing() -> None:
    p = pod([container()], [status("api", waiting("ContainerCreating"))], phase="Pending")
    r = diagnose_pod(evidence(p))
    assert not r.healthy and all(c.diagnosis is None for c in r.containers)
    assert r.summary.endswith(
        "is not up yet, and nothing says it is failing: api ContainerCreating."
    )


def test_a_finished_job_pod_is_healthy() -> None:
    p = pod(
        [container("migrate")],
        [status("migrate", terminated("Completed", 0, ran=12))],
        phase="Succeeded",
        restartPolicy="Never",
    )
    r = diagnose_pod(evidence(p))
    assert r.healthy and "0/1 containers ready" not in r.summary


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=12)
_VALUE = st.recursive(
    st.booleans() | st.integers() | _TEXT,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(_TEXT.filter(bool), inner, min_size=1, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_TEXT.filter(bool), _VALUE, min_size=1, max_size=4))
def test_patches_read_back_as_what_was_meant(value: dict[str, Any]) -> None:
    assert yaml.safe_load(_yaml(value)) == value
