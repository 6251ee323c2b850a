"""infraveil.k8s.facts: a pod's JSON, events and logs as the engine's facts, per container —
where each Kubernetes fact lands, how evidence is named, and bad input read without a
traceback."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from k8s_pods import (
    T0,
    at,
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

from infraveil.k8s.evidence import UNNAMED, PodEvidence
from infraveil.k8s.facts import ContainerView, containers, evidence_now, parse_quantity

START_ERROR = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed:"
    ' runc create failed: unable to start container process: exec: "/app/serve": stat'
    " /app/serve: no such file or directory: unknown"
)


def only(views: list[ContainerView], name: str = "api") -> ContainerView:
    return next(v for v in views if v.name == name)


def crashloop(last: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return pod([container(**kw)], [status("api", waiting(), last, restarts=4)])


def test_the_last_termination_gives_exit_code_run_time_and_oom_whatever_the_exit_code() -> None:
    p = crashloop(terminated("OOMKilled", 1, ran=64), resources={"limits": {"memory": "256Mi"}})
    view = only(containers(evidence(p)))
    f = view.facts
    assert (f.exit_code, f.oom_killed, f.run_seconds) == (1, True, 64.0)
    assert f.memory_limit == 256 << 20 and not f.live and f.long_running
    assert view.failing and view.state == "CrashLoopBackOff" and view.restarts == 4
    assert view.last_termination is not None
    assert view.last_termination["reason"] == "OOMKilled"
    assert view.last_termination["seconds"] == 64.0
    assert f.kube is not None
    assert f.kube.terminated_path == "status.containerStatuses[api].lastState.terminated"


def test_a_runtime_start_failure_is_the_spawn_error_named_by_its_field() -> None:
    p = crashloop(terminated("StartError", 128, ran=0, message=START_ERROR))
    f = only(containers(evidence(p))).facts
    assert f.spawn_error == START_ERROR
    assert f.spawn_source == "status.containerStatuses[api].lastState.terminated.message"
    assert f.log == ()  # the message is the runtime's, not the program's output


def test_the_previous_log_is_the_log_of_the_run_that_ended() -> None:
    p = crashloop(terminated())
    ev = evidence(p, previous={"api": "boot\nboom"}, current={"api": "boot again"})
    f = only(containers(ev)).facts
    assert [line.text for line in f.log] == ["boot", "boom"]
    assert f.log_source == "logs --previous -c api"


def test_a_container_that_just_ended_reads_its_current_log() -> None:
    p = pod([container()], [status("api", terminated("Error", 2))], phase="Failed")
    ev = evidence(p, previous={"api": "older run"}, current={"api": "this run"})
    view = only(containers(ev))
    assert view.failing and view.state == "Error"
    assert view.facts.log_source == "logs -c api" and view.facts.log[0].text == "this run"


def test_the_termination_message_stands_in_for_missing_logs() -> None:
    p = crashloop(terminated(message="panic: config: missing DSN\n"))
    f = only(containers(evidence(p))).facts
    assert f.log[0].text == "panic: config: missing DSN"
    assert f.log_source == "status.containerStatuses[api].lastState.terminated.message"


def test_unnamed_logs_belong_to_the_failing_container() -> None:
    p = pod(
        [container("sidecar"), container("api")],
        [status("sidecar", running(), ready=True), status("api", waiting(), terminated())],
    )
    ev = PodEvidence(p, previous_logs={UNNAMED: "Error: boom"})
    views = containers(ev)
    assert only(views).facts.log[0].text == "Error: boom"
    assert only(views).facts.log_source == "logs"
    assert only(views, "sidecar").facts.log == ()


def test_events_go_to_the_container_they_name_and_pod_events_to_all() -> None:
    p = pod(
        [container("sidecar"), container("api")],
        [status("sidecar", running(), ready=True), status("api", waiting(), terminated())],
    )
    events = [
        event("BackOff", "Back-off restarting failed container", count=41, first=0, last=3 * 3600),
        event("Pulled", "Container image pulled", kind="Normal", container="sidecar"),
        event("FailedMount", 'MountVolume.SetUp failed for volume "x"', container=None),
    ]
    views = containers(evidence(p, events))
    mine = [(e.reason, e.source) for e in only(views).facts.events]
    assert mine == [
        ("BackOff", "event Warning BackOff (x41 over 3h00m)"),
        ("FailedMount", "event Warning FailedMount"),
    ]
    assert [e.reason for e in only(views, "sidecar").facts.events] == ["Pulled", "FailedMount"]


def test_without_a_field_path_a_message_naming_another_container_is_not_mine() -> None:
    p = pod(
        [container("sidecar"), container("api")],
        [status("sidecar", running(), ready=True), status("api", waiting(), terminated())],
    )
    e = event("Killing", "Container sidecar failed liveness probe, will be restarted")
    del e["involvedObject"]["fieldPath"]
    assert only(containers(evidence(p, [e]))).facts.events == ()


def test_the_kubelets_liveness_kill_of_this_run_is_the_kill() -> None:
    p = crashloop(terminated("Completed", 0, start=100, ran=35))
    kill = event(
        "Killing",
        "Container api failed liveness probe, will be restarted",
        kind="Normal",
        count=4,
        first=0,
        last=130,
    )
    f = only(containers(evidence(p, [kill]))).facts
    assert f.kill is not None and f.kill.reason == "liveness"
    assert f.kill.source == "event Normal Killing (x4 over 2m10s)"


def test_a_kill_of_an_earlier_run_is_not_this_runs() -> None:
    p = crashloop(terminated("Error", 1, start=600, ran=3))
    kill = event("Killing", "Container api failed liveness probe, will be restarted", last=300)
    assert only(containers(evidence(p, [kill]))).facts.kill is None


def test_a_startup_probe_kill_is_the_startup_deadline() -> None:
    p = crashloop(terminated("Error", 137, ran=300))
    kill = event("Killing", "Container api failed startup probe, will be restarted", last=300)
    f = only(containers(evidence(p, [kill]))).facts
    assert f.kill is not None and f.kill.reason == "deadline"


@pytest.mark.parametrize(
    ("ran", "ready"),
    [
        pytest.param(35, False, id="killed-at-the-first-chance-never-up"),
        pytest.param(3600, True, id="ran-an-hour-then-stopped-answering"),
    ],
)
def test_whether_a_killed_run_was_up_is_inferred_from_the_probes_timing(
    ran: float, ready: bool
) -> None:
    live = http_probe(period=10, failures=3)
    p = crashloop(terminated("Error", 137, start=0, ran=ran), livenessProbe=live)
    kill = event("Killing", "Container api failed liveness probe, will be restarted", last=ran)
    assert only(containers(evidence(p, [kill]))).facts.became_ready is ready


def test_spec_probes_resources_refs_and_security_context_reach_kube_facts() -> None:
    spec = container(
        livenessProbe=http_probe(delay=5, period=7, failures=4),
        resources={"limits": {"memory": "1Gi"}, "requests": {"memory": "512Mi"}},
        env=[
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
        ],
        envFrom=[{"configMapRef": {"name": "api-env"}}],
        volumeMounts=[{"name": "conf", "mountPath": "/etc/api"}],
        securityContext={"runAsNonRoot": True},
    )
    p = pod(
        [spec],
        [status("api", waiting("CreateContainerConfigError"))],
        volumes=[{"name": "conf", "configMap": {"name": "api-conf"}}],
        securityContext={"runAsUser": 1000, "fsGroup": 2000},
        imagePullSecrets=[{"name": "regcred"}],
    )
    kube = only(containers(evidence(p))).facts.kube
    assert kube is not None
    live = kube.probe("liveness")
    assert live is not None and (live.first_kill, live.describe()) == (
        33,
        "http-get http://:8080/healthz",
    )
    assert dict(kube.limits) == {"memory": "1Gi"}
    assert [(r.kind, r.name, r.key, r.via) for r in kube.refs] == [
        ("Secret", "db", "pw", "env DB_PASSWORD"),
        ("ConfigMap", "api-env", "", "envFrom"),
        ("ConfigMap", "api-conf", "", "volume conf"),
    ]
    assert (kube.run_as_non_root, kube.run_as_user, kube.fs_group) == (True, 1000, 2000)
    assert kube.image_pull_secrets == ("regcred",)
    assert kube.waiting_reason == "CreateContainerConfigError"


def test_init_containers_come_first_and_are_not_long_running() -> None:
    p = pod(
        [container()],
        [status("api", waiting("PodInitializing"))],
        init=[container("wait-db", "busybox:1.36")],
        init_statuses=[status("wait-db", waiting(), terminated("Error", 1), restarts=3)],
        phase="Pending",
    )
    views = containers(evidence(p))
    assert [(v.name, v.init, v.failing) for v in views] == [
        ("wait-db", True, True),
        ("api", False, False),
    ]
    assert not views[0].facts.long_running
    assert views[0].facts.kube is not None
    assert views[0].facts.kube.status_path == "status.initContainerStatuses[wait-db]"


def test_a_running_container_with_an_old_crash_is_history_a_recent_one_is_failing() -> None:
    crashed = terminated("Error", 1, start=0, ran=60)
    up = pod([container()], [status("api", running(70), crashed, restarts=1, ready=True)])
    assert not only(containers(evidence(up), T0 + timedelta(hours=5))).failing
    starting = pod([container()], [status("api", running(70), crashed, restarts=1)])
    assert only(containers(evidence(starting), T0 + timedelta(seconds=100))).failing


def test_ready_now_but_restarting_again_and_again_is_failing() -> None:
    crashed = terminated("Error", 137, start=0, ran=600)
    p = pod([container()], [status("api", running(610), crashed, restarts=534, ready=True)])
    assert only(containers(evidence(p), T0 + timedelta(minutes=30))).failing
    assert not only(containers(evidence(p), T0 + timedelta(days=3))).failing


def test_running_a_while_and_never_ready_is_failing() -> None:
    p = pod([container()], [status("api", running(0))])
    assert not only(containers(evidence(p), T0 + timedelta(seconds=20))).failing
    assert only(containers(evidence(p), T0 + timedelta(minutes=5))).failing


def test_now_defaults_to_the_latest_moment_the_evidence_records() -> None:
    p = crashloop(terminated(start=100, ran=5))
    ev = evidence(p, [event("BackOff", "Back-off", first=0, last=500)])
    assert evidence_now(ev) == T0 + timedelta(seconds=500)
    assert evidence_now(PodEvidence({})) is None


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("256Mi", 256 << 20),
        ("1Gi", 1 << 30),
        ("1G", 10**9),
        ("500M", 500 * 10**6),
        ("1.5Gi", 3 << 29),
        ("128974848", 128974848),
        ("1e3", 1000),
        ("64k", 64000),
        ("lots", None),
        ("", None),
    ],
)
def test_kubernetes_quantities_mean_decimal_m_and_g_and_binary_mi_and_gi(
    text: str, size: int | None
) -> None:
    assert parse_quantity(text) == size


@pytest.mark.parametrize(
    "p",
    [
        {},
        {"spec": "oops", "status": []},
        {"spec": {"containers": ["x", {"name": "api", "livenessProbe": "no"}]}},
        {
            "spec": {"containers": [{"name": "api"}]},
            "status": {
                "containerStatuses": [
                    {
                        "name": "api",
                        "restartCount": "many",
                        "state": {"terminated": {"exitCode": "x", "finishedAt": "yesterday"}},
                        "lastState": None,
                    }
                ]
            },
        },
    ],
)
def test_a_malformed_pod_is_read_as_far_as_it_goes(p: dict[str, Any]) -> None:
    views = containers(PodEvidence(p, events=[{"message": 3}, "junk"]))  # type: ignore[list-item]
    for v in views:
        assert v.facts.kube is not None


def test_a_paste_of_logs_only_is_one_failing_container() -> None:
    ev = PodEvidence({}, previous_logs={UNNAMED: "[FATAL] plugin/loop: Loop detected"})
    (view,) = containers(ev)
    assert view.failing and view.facts.log[0].text.startswith("[FATAL]")
    assert at(0) == "2026-11-21T08:00:00Z"


def test_liveness_failures_past_the_threshold_imply_the_kill_an_old_kubelet_did_not_report() -> (
    None
):
    p = crashloop(terminated("Error", 137, ran=40), livenessProbe=http_probe(failures=5))
    failed = "Liveness probe failed: Get http://10.1.2.3:8080/: connection refused"
    f = only(containers(evidence(p, [event("Unhealthy", failed, count=11)]))).facts
    assert f.kill is not None and f.kill.source == "event Warning Unhealthy (x11)"
    assert "after 5 in a row" in f.kill.detail
    few = only(containers(evidence(p, [event("Unhealthy", failed, count=2)]))).facts
    assert few.kill is None


def test_a_run_that_exited_by_itself_is_not_a_kill_whatever_its_probes_said() -> None:
    p = crashloop(terminated("Error", 1, ran=40))
    failed = "Liveness probe failed: Get http://10.1.2.3:8080/: connection refused"
    assert only(containers(evidence(p, [event("Unhealthy", failed, count=11)]))).facts.kill is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = st.sampled_from(
    ["spec", "status", "containers", "containerStatuses", "initContainerStatuses", "state",
     "lastState", "terminated", "waiting", "running", "name", "exitCode", "reason", "message",
     "startedAt", "finishedAt", "restartCount", "livenessProbe", "resources", "env", "volumes"]
)  # fmt: skip
_POD = st.recursive(
    _JSON,
    lambda inner: st.dictionaries(_KEYS, inner, max_size=5) | st.lists(inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=100, deadline=None)
@given(pod_json=st.dictionaries(_KEYS, _POD, max_size=4), events=st.lists(_POD, max_size=3))
def test_no_pod_json_whatever_its_shape_raises(pod_json: dict[str, Any], events: list[Any]) -> None:
    from infraveil.k8s.doctor import diagnose_pod

    ev = PodEvidence(pod_json, events=events, previous_logs={UNNAMED: "Error: x"})
    json.dumps(diagnose_pod(ev).as_dict())
