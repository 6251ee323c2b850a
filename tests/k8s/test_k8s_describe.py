"""`kubectl describe pod` text, as people paste it, rebuilt into the API's Pod and Event shape.

The fixtures under fixtures/describe/ are real pastes from public bug reports (each with its
source URL in a .source file beside it), across kubectl versions from 1.0 (tabs, FirstSeen /
LastSeen) to 1.34 (field paths before event messages). Each test checks the facts the paste
visibly holds; the invariance tests check that the same text pasted another way (CRLF, quoted,
fenced, indented) reads the same.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infraveil.k8s.describe import parse_describe, parse_probe, to_rfc3339
from infraveil.k8s.evidence import UNNAMED, PodEvidence

FIXTURES = Path(__file__).parent / "fixtures" / "describe"
ALL = sorted(p.name for p in FIXTURES.glob("*.txt"))


def read(name: str) -> PodEvidence:
    return parse_describe((FIXTURES / name).read_text(encoding="utf-8"), source=name)


def container(ev: PodEvidence, name: str, init: bool = False) -> dict[str, Any]:
    key = "initContainers" if init else "containers"
    return next(c for c in ev.pod["spec"][key] if c["name"] == name)


def status(ev: PodEvidence, name: str, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    return next(c for c in ev.pod["status"][key] if c["name"] == name)


def by_reason(ev: PodEvidence, reason: str) -> list[dict[str, Any]]:
    return [e for e in ev.events if e["reason"] == reason]


def test_every_fixture_has_its_source_beside_it() -> None:
    assert len(ALL) >= 12
    for name in ALL:
        source = (FIXTURES / name).with_suffix(".source").read_text()
        assert source.startswith("https://github.com/"), name


# --- whole descriptions ---------------------------------------------------------------------


def test_kubectl_1_0_tabs_and_full_dates() -> None:
    ev = read("k8s-10861-simmemleak-2015.txt")
    meta = ev.pod["metadata"]
    assert (meta["name"], meta["namespace"], meta["labels"]) == (
        "simmemleak-hra99",
        "default",
        {"name": "simmemleak"},
    )
    assert ev.pod["spec"]["nodeName"] == "kubernetes-minion-tf0f"
    assert ev.pod["status"]["hostIP"] == "10.240.216.66"
    c = container(ev, "simmemleak")
    assert c["resources"]["limits"] == {"cpu": "100m", "memory": "50Mi"}
    s = status(ev, "simmemleak")
    assert s["state"] == {"running": {"startedAt": "2015-07-07T19:54:41Z"}}
    assert (s["ready"], s["restartCount"]) == (False, 5)
    assert ev.owners == ["ReplicationController/simmemleak"]
    assert ev.pod["status"]["conditions"] == [{"type": "Ready", "status": "False"}]
    # The old table: no Type column, full dates as First/LastSeen, a sub-object path.
    scheduled, pulled = ev.events
    assert scheduled["reason"] == "scheduled"
    assert scheduled["source"] == {"component": "scheduler"}
    assert scheduled["firstTimestamp"] == "2015-07-07T19:53:51Z"
    assert pulled["source"] == {"component": "kubelet", "host": "kubernetes-minion-tf0f"}
    assert pulled["involvedObject"]["fieldPath"] == "implicitly required container POD"
    assert pulled["message"].startswith('Pod container image "gcr.io/google_containers/pause')
    assert ev.problems == [
        "describe: skipped 1 line(s) that are neither the description nor logs (shell "
        "prompts, other commands' output, words around the paste)"
    ]


def test_coredns_crash_loop_with_probe_and_resources() -> None:
    ev = read("coredns-deployment-161-2019.txt")
    assert ev.name == "coredns-99649559f-wqjf8"
    assert ev.namespace == "kube-system"
    assert ev.pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert ev.pod["status"]["startTime"] == "2019-04-30T03:56:00Z"
    assert ev.pod["metadata"]["labels"] == {
        "k8s-app": "kube-dns",
        "pod-template-hash": "99649559f",
    }
    assert ev.pod["metadata"]["ownerReferences"] == [
        {"kind": "ReplicaSet", "name": "coredns-99649559f", "controller": True}
    ]
    c = container(ev, "coredns")
    assert c["args"] == ["-conf", "/etc/coredns/Corefile"]
    assert [p["containerPort"] for p in c["ports"]] == [53, 53, 9153]
    assert [p["protocol"] for p in c["ports"]] == ["UDP", "TCP", "TCP"]
    assert c["resources"] == {
        "limits": {"memory": "170Mi"},
        "requests": {"cpu": "100m", "memory": "70Mi"},
    }
    assert c["livenessProbe"] == {
        "httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
        "initialDelaySeconds": 60,
        "timeoutSeconds": 5,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 5,
    }
    s = status(ev, "coredns")
    assert s["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert s["lastState"]["terminated"] == {
        "reason": "Error",
        "exitCode": 1,
        "startedAt": "2019-04-30T03:59:00Z",
        "finishedAt": "2019-04-30T03:59:00Z",
    }
    assert s["restartCount"] == 5
    assert ev.problems == []


def test_flattened_by_a_web_page_reads_like_the_original() -> None:
    flat = read("opsnull-509-flattened-2019.txt")
    assert flat.name == "coredns-56f56989d6-kqkpp"
    assert flat.pod["metadata"]["labels"] == {
        "k8s-app": "kube-dns",
        "pod-template-hash": "56f56989d6",
    }
    c = container(flat, "coredns")
    assert c["args"] == ["-conf", "/etc/coredns/Corefile"]
    assert c["resources"]["requests"] == {"cpu": "100m", "memory": "70Mi"}
    assert c["livenessProbe"]["httpGet"]["port"] == 8080
    s = status(flat, "coredns")
    assert s["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert s["lastState"]["terminated"]["exitCode"] == 2
    assert s["lastState"]["terminated"]["startedAt"] == "2019-08-11T03:09:35Z"
    assert s["lastState"]["terminated"]["finishedAt"] == "2019-08-11T03:10:05Z"
    assert s["restartCount"] == 64


def test_evicted_pod_with_a_message_wrapped_mid_word() -> None:
    ev = read("treetracker-49-evicted-wrapped-2021.txt")
    st_ = ev.pod["status"]
    assert (st_["phase"], st_["reason"]) == ("Failed", "Evicted")
    assert st_["message"] == (
        "The node was low on resource: memory. Container treetracker-pgpool was using "
        "1275700Ki, which exceeds its request of 0."
    )
    c = container(ev, "treetracker-pgpool")
    assert {"name": "POSTGRES_USERNAME", "value": "xxxx"} in c["env"]
    assert c["volumeMounts"][0] == {"mountPath": "/config", "name": "pgpool-config"}
    assert c["volumeMounts"][2]["readOnly"] is True
    assert ev.pod["spec"]["volumes"] == [
        {"name": "pgpool-config", "configMap": {"name": "pgpool-config", "optional": False}},
        {"name": "oiddir", "emptyDir": {}},
    ]


def test_evicted_pod_limits_and_requests() -> None:
    ev = read("k9s-174-evicted-2019.txt")
    assert ev.pod["status"]["reason"] == "Evicted"
    assert "exceeds its request of 7G" in ev.pod["status"]["message"]
    assert "nodeName" in ev.pod["spec"] and "hostIP" not in ev.pod["status"]
    c = container(ev, "proprietary-crawler")
    assert c["resources"]["limits"] == {"cpu": "8", "memory": "10G"}
    assert c["livenessProbe"]["periodSeconds"] == 3
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/proprietary-crawler/health"


def test_calico_running_not_ready_with_exec_probe_cut_short() -> None:
    ev = read("calico-2290-readiness-2018.txt")
    c = container(ev, "calico-node")
    assert c["livenessProbe"]["httpGet"] == {
        "path": "/liveness",
        "port": 9099,
        "scheme": "HTTP",
        "host": "localhost",
    }
    # The excerpt ends inside "#failure=6": what is there is read, the cut value is not.
    assert c["readinessProbe"]["exec"]["command"] == [
        "/bin/calico-node",
        "-bird-ready",
        "-felix-ready",
    ]
    assert c["readinessProbe"]["successThreshold"] == 1
    assert "failureThreshold" not in c["readinessProbe"]
    s = status(ev, "calico-node")
    assert s["state"] == {"running": {"startedAt": "2018-09-27T05:06:17Z"}}
    assert s["ready"] is False
    assert ev.owners == ["DaemonSet/calico-node"]


def test_backtick_before_name_and_annotations_with_colons() -> None:
    ev = read("calico-8745-backtick-2024.txt")
    assert ev.name == "calico-node-wpght"
    assert ev.pod["spec"]["serviceAccountName"] == "calico-node"
    assert ev.pod["spec"]["priorityClassName"] == "system-node-critical"
    assert ev.pod["metadata"]["annotations"]["hash.operator.tigera.io/system"] == (
        "fdde45054a8ae4f629960ce37570929502e59449"
    )
    assert ev.pod["status"]["podIPs"] == [{"ip": "172.29.225.217"}]
    assert [c["name"] for c in ev.pod["spec"]["initContainers"]] == ["flexvol-driver"]


def test_pending_pod_from_kubectl_1_2() -> None:
    ev = read("k8s-22005-imagepull-2016.txt")
    assert ev.pod["status"]["phase"] == "Pending"
    s = status(ev, "fluentd-elasticsearch")
    assert s["state"] == {"waiting": {"reason": "ImagePullBackOff"}}
    assert container(ev, "fluentd-elasticsearch")["resources"] == {
        "limits": {"cpu": "100m"},
        "requests": {"cpu": "100m"},
    }
    assert ev.problems == [
        "describe: skipped 1 line(s) that are neither the description nor logs (shell "
        "prompts, other commands' output, words around the paste)"
    ]


def test_whole_paste_indented_with_a_panic_before_it() -> None:
    ev = read("pgo-4312-indented-with-logs-2025.txt")
    assert ev.name == "pgo-86d5685c85-kjspd"
    assert ev.pod["metadata"]["labels"]["app.kubernetes.io/version"] == "5.8.3"
    assert ev.pod["status"]["startTime"] == "2025-10-05T16:44:29Z"
    assert container(ev, "operator")["image"] == "registry.developers.crunchydata.c"
    # The Go panic pasted before the prompt is the program's output; the prompt is not.
    logs = ev.previous_logs[UNNAMED]
    assert logs.startswith("goroutine 1 [running]:")
    assert "main.go:206" in logs
    assert "raphy@raohy" not in logs


def test_next_pods_description_after_a_prompt_drops_the_earlier_events() -> None:
    ev = read("website-56173-imagepull-2026.txt")
    assert ev.name == "kubernetes-bootcamp-68cf47c9c8-m4zqr"
    assert ev.events == []  # the rows above belong to another pod
    assert ev.previous_logs == {}
    assert status(ev, "kubernetes-bootcamp")["containerID"].startswith("docker://15804ac4")


# --- fragments --------------------------------------------------------------------------------


def test_init_container_section_only() -> None:
    ev = read("k8s-94216-init-crashloop-2020.txt")
    s = status(ev, "init", init=True)
    assert s["lastState"]["terminated"] == {
        "reason": "Error",
        "message": "Failed to fetch /opt/mule/conf/rtfv1.yml. statusCode=403",
        "exitCode": 1,
        "startedAt": "2020-08-25T08:20:35Z",
        "finishedAt": "2020-08-25T08:20:35Z",
    }
    assert s["restartCount"] == 16
    assert "env" not in container(ev, "init", init=True)
    assert ev.previous_logs == {}  # the question around the paste is not logs
    assert any("no `Name:` line" in p for p in ev.problems)


def test_fragment_of_container_state_only() -> None:
    ev = read("kube-eventer-285-oomkilled-exit1-2024.txt")
    s = status(ev, UNNAMED)
    assert s["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert s["lastState"]["terminated"]["exitCode"] == 1
    assert s["lastState"]["terminated"]["startedAt"] == "2024-01-04T09:52:29Z"
    assert s["restartCount"] == 3
    assert any("without the container's name" in p for p in ev.problems)


def test_fragment_with_config_map_env_conditions_and_host_paths() -> None:
    ev = read("calico-2370-init-env-2019.txt")
    c = container(ev, UNNAMED)
    env = {e["name"]: e for e in c["env"]}
    assert env["CNI_CONF_NAME"]["value"] == "10-calico.conflist"
    assert env["KUBERNETES_NODE_NAME"]["valueFrom"] == {
        "fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}
    }
    assert env["CNI_MTU"]["valueFrom"] == {
        "configMapKeyRef": {"key": "veth_mtu", "name": "calico-config", "optional": False}
    }
    assert c["command"] == ["/install-cni.sh"]
    conds = {x["type"]: x["status"] for x in ev.pod["status"]["conditions"]}
    assert conds == {
        "Initialized": "True",
        "Ready": "False",
        "ContainersReady": "False",
        "PodScheduled": "True",
    }
    vols = {v["name"]: v for v in ev.pod["spec"]["volumes"]}
    assert vols["lib-modules"]["hostPath"] == {"path": "/lib/modules"}


def test_fragment_with_secret_env_and_named_probe_port() -> None:
    ev = read("kubeblocks-1404-secret-env-2023.txt")
    c = container(ev, UNNAMED)
    env = {e["name"]: e for e in c["env"]}
    assert env["DATA_SOURCE_PASS"]["valueFrom"] == {
        "secretKeyRef": {
            "key": "postgres-password",
            "name": "mypg-conn-credential",
            "optional": False,
        }
    }
    assert env["KB_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["DATA_SOURCE_URI"]["value"] == "127.0.0.1:5432/postgres?sslmode=disable"
    assert c["envFrom"] == [{"configMapRef": {"name": "mypg-postgresql-env", "optional": False}}]
    assert c["livenessProbe"]["httpGet"]["port"] == "http-metrics"


def test_fragment_starting_in_an_init_containers_args() -> None:
    ev = read("bitnami-charts-2682-probe-kill-2020.txt")
    init = status(ev, UNNAMED, init=True)
    assert init["state"]["terminated"]["reason"] == "Completed"
    s = status(ev, "postgres-postgresql")
    assert s["state"] == {"running": {"startedAt": "2020-07-11T02:43:45Z"}}
    assert s["lastState"]["terminated"] == {
        "reason": "Error",
        "exitCode": 137,
        "startedAt": "2020-07-11T01:51:26Z",
        "finishedAt": "2020-07-11T02:43:45Z",
    }
    assert s["restartCount"] == 534
    cmd = container(ev, "postgres-postgresql")["livenessProbe"]["exec"]["command"]
    assert cmd[:4] == ["/bin/sh", "-c", "exec", "pg_isready"]


# --- Events tables ------------------------------------------------------------------------------


def test_old_table_with_tabs_type_column_and_sub_object() -> None:
    ev = read("k8s-25096-configmap-2016.txt")
    assert [e["reason"] for e in ev.events] == ["Scheduled", "FailedMount", "FailedSync", "Pulling"]
    mount = by_reason(ev, "FailedMount")[0]
    assert mount["type"] == "Warning"
    assert mount["message"].endswith('configmaps "nginx-template" not found')
    assert mount["source"] == {
        "component": "kubelet",
        "host": "ip-10-115-0-133.eu-west-1.compute.internal",
    }
    assert by_reason(ev, "Pulling")[0]["involvedObject"]["fieldPath"] == (
        "spec.containers{nginx-ingress-lb}"
    )
    assert "fieldPath" not in mount["involvedObject"]


def test_old_table_padded_with_spaces_and_counts() -> None:
    ev = read("stackanetes-48-configmap-2016.txt")
    assert [(e["reason"], e["count"]) for e in ev.events] == [
        ("Scheduled", 1),
        ("FailedMount", 90),
        ("FailedSync", 90),
    ]
    assert ev.events[1]["source"] == {"component": "kubelet", "host": "10.3.9.6"}


def test_new_table_with_counts_over_ages() -> None:
    ev = read("coredns-6236-events-2023.txt")
    assert [(e["reason"], e["count"], e["type"]) for e in ev.events] == [
        ("Scheduled", 1, "Normal"),
        ("Pulled", 5, "Normal"),
        ("Created", 5, "Normal"),
        ("Failed", 5, "Warning"),
        ("BackOff", 101, "Warning"),
    ]
    failed = by_reason(ev, "Failed")[0]
    assert "applying cgroup configuration" in failed["message"]
    assert failed["source"] == {"component": "kubelet"}
    assert failed["x-describe"] == {"line": 11, "age": "21m (x5 over 23m)"}


def test_table_without_its_events_line_and_an_old_source_form() -> None:
    ev = read("autotune-35-configmap-2021.txt")
    failed = by_reason(ev, "Failed")[0]
    assert failed["message"] == 'Error: configmap "autotune-config-key" not'
    assert failed["count"] == 12
    assert failed["source"] == {"component": "kubelet", "host": "minikube"}
    assert ev.previous_logs == {}  # the `kubectl get pods` table is not logs


def test_table_pasted_as_a_list_item_with_a_misaligned_row() -> None:
    ev = read("calico-2308-events-bullet-2018.txt")
    assert len(ev.events) == 9
    unhealthy = by_reason(ev, "Unhealthy")
    assert [u["type"] for u in unhealthy] == ["Warning", "Warning"]
    assert unhealthy[1]["message"].startswith("Readiness probe failed: calico/node is not ready")
    assert unhealthy[1]["source"] == {"component": "kubelet", "host": "k8s-node131"}
    assert not any("could not read" in p for p in ev.problems)


def test_failed_mount_of_missing_config_maps() -> None:
    ev = read("crc-1693-failedmount-2020.txt")
    mounts = by_reason(ev, "FailedMount")
    assert len(mounts) == 2
    assert 'configmap "eap-app-build-artifacts-4-sys-config" not found' in mounts[0]["message"]
    assert by_reason(ev, "AddedInterface")[0]["source"] == {"component": "multus"}


def test_logs_named_by_kubectls_defaulted_container_line() -> None:
    ev = read("siderolabs-omni-892-logs-only-2025.txt")
    assert list(ev.previous_logs) == ["kube-flannel"]
    assert ev.previous_logs["kube-flannel"].startswith("I0201 10:58:44.492184")
    assert "CrashLoopBackOff" not in ev.previous_logs["kube-flannel"]  # the get table
    assert any("no `kubectl describe pod` output" in p for p in ev.problems)


# --- the same text pasted other ways ------------------------------------------------------------

WHOLE = [
    "coredns-deployment-161-2019.txt",
    "treetracker-49-evicted-wrapped-2021.txt",
    "k9s-174-evicted-2019.txt",
    "k8s-10861-simmemleak-2015.txt",
    "coredns-6236-events-2023.txt",
    "calico-2370-init-env-2019.txt",
]


def _fenced(text: str) -> str:
    return "Here is the output:\n\n```\n" + text + "\n```\n"


def _quoted(text: str) -> str:
    return "\n".join("> " + x if x else ">" for x in text.split("\n"))


def _indented(text: str) -> str:
    return "\n".join("    " + x if x else x for x in text.split("\n"))


@pytest.mark.parametrize("name", WHOLE)
@pytest.mark.parametrize(
    "variant",
    [
        lambda t: t.replace("\n", "\r\n"),
        _fenced,
        _quoted,
        _indented,
        lambda t: _quoted(_fenced(t)).replace("\n", "\r\n"),
    ],
    ids=["crlf", "fenced", "quoted", "indented", "quoted-fenced-crlf"],
)
def test_a_paste_reads_the_same_however_it_was_pasted(name: str, variant: Any) -> None:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    plain = parse_describe(text)
    other = parse_describe(variant(text))
    assert other.pod == plain.pod
    assert [(e["reason"], e["message"], e["count"]) for e in other.events] == [
        (e["reason"], e["message"], e["count"]) for e in plain.events
    ]


# --- mixed pastes and logs ------------------------------------------------------------------------

DESCRIBE = (FIXTURES / "coredns-deployment-161-2019.txt").read_text(encoding="utf-8")


def test_logs_after_a_kubectl_logs_previous_line_go_to_that_container() -> None:
    paste = (
        "$ kubectl describe pod coredns-99649559f-wqjf8 -n kube-system\n"
        + DESCRIBE
        + "\n$ kubectl logs --previous coredns-99649559f-wqjf8 -n kube-system -c coredns\n"
        'plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone "."\n'
    )
    ev = parse_describe(paste)
    assert ev.previous_logs == {
        "coredns": 'plugin/loop: Loop (127.0.0.1:55953 -> :53) detected for zone "."'
    }
    assert ev.name == "coredns-99649559f-wqjf8"


def test_bare_logs_after_the_description_are_the_run_that_ended() -> None:
    ev = parse_describe(DESCRIBE + "\n\n2019-04-30T03:59:00Z [FATAL] plugin/loop: Loop detected\n")
    assert ev.previous_logs == {UNNAMED: "2019-04-30T03:59:00Z [FATAL] plugin/loop: Loop detected"}
    assert ev.current_logs == {}


def test_logs_without_previous_of_a_running_container_are_the_current_run() -> None:
    text = (FIXTURES / "calico-2290-readiness-2018.txt").read_text(encoding="utf-8")
    paste = (
        text + "\n\n$ kubectl logs -n kube-system calico-node-nnp4b\nbird: Mesh_1: Socket error\n"
    )
    ev = parse_describe(paste)
    assert ev.current_logs == {UNNAMED: "bird: Mesh_1: Socket error"}
    assert ev.previous_logs == {}


def test_a_logs_file_is_the_previous_run() -> None:
    ev = parse_describe(DESCRIBE, logs="[FATAL] plugin/loop: Loop detected\r\n")
    assert ev.previous_logs == {UNNAMED: "[FATAL] plugin/loop: Loop detected"}


def test_termination_message_on_several_lines_at_column_zero() -> None:
    text = DESCRIBE.replace(
        "      Reason:       Error\n",
        "      Reason:       Error\n      Message:      panic: open /etc/app.yaml: no such file\n"
        "goroutine 1 [running]:\nmain.main()\n",
    )
    ev = parse_describe(text)
    term = status(ev, "coredns")["lastState"]["terminated"]
    assert term["message"] == (
        "panic: open /etc/app.yaml: no such file\ngoroutine 1 [running]:\nmain.main()"
    )
    assert term["exitCode"] == 1
    assert status(ev, "coredns")["restartCount"] == 5


def test_an_event_message_on_several_lines() -> None:
    text = (
        "Name:         api-1\nNamespace:    shop\nStatus:       Running\nEvents:\n"
        "  Type     Reason  Age   From     Message\n"
        "  ----     ------  ----  ----     -------\n"
        '  Warning  Failed  10s   kubelet  Error: failed to create containerd task: exec: "/app":'
        "\nstat /app: no such file or directory: unknown\n"
        "  Warning  BackOff  5s (x3 over 9s)  kubelet  Back-off restarting failed container\n"
    )
    ev = parse_describe(text)
    failed, backoff = ev.events
    assert failed["message"].endswith("\nstat /app: no such file or directory: unknown")
    assert backoff["count"] == 3
    assert failed["involvedObject"] == {"kind": "Pod", "name": "api-1", "namespace": "shop"}


def test_field_path_before_the_message_of_kubectl_1_33() -> None:
    text = (
        "Name:  web\nNamespace:  default\nEvents:\n"
        "  Type     Reason   Age  From     Message\n"
        "  ----     ------   ---  ----     -------\n"
        "  Warning  Failed   1m   kubelet  spec.initContainers{migrate}: Error: ErrImagePull\n"
    )
    (event,) = parse_describe(text).events
    assert event["involvedObject"]["fieldPath"] == "spec.initContainers{migrate}"
    assert event["message"] == "Error: ErrImagePull"


def test_two_descriptions_read_the_first_and_say_so() -> None:
    other = DESCRIBE.replace("coredns-99649559f-wqjf8", "coredns-99649559f-zzzzz")
    ev = parse_describe(DESCRIBE + "\n" + other)
    assert ev.name == "coredns-99649559f-wqjf8"
    assert any("more than one pod description" in p and "zzzzz" in p for p in ev.problems)


def test_unknown_fields_are_counted_not_fatal() -> None:
    text = DESCRIBE.replace(
        "Status:             Running\n",
        "Status:             Running\nFancy New Field:    yes\n",
    ).replace("    Ready:          False\n", "    Ready:          False\n    Sparkle:  on\n")
    ev = parse_describe(text)
    assert status(ev, "coredns")["restartCount"] == 5
    (problem,) = ev.problems
    assert "skipped 2 line(s)" in problem and "'Fancy New Field'" in problem


def test_unreadable_values_are_named_with_their_line() -> None:
    text = DESCRIBE.replace("Restart Count:  5", "Restart Count:  five").replace(
        "Liveness:     http-get", "Liveness:     carrier-pigeon"
    )
    problems = parse_describe(text).problems
    assert "describe line 31: could not read the restart count 'five'" in problems
    assert any(
        p.startswith("describe line 37: could not read the liveness probe") for p in problems
    )


def test_nothing_describe_like_is_said_not_raised() -> None:
    ev = parse_describe("")
    assert ev.pod["metadata"] == {} and ev.events == []
    assert ev.problems and "no `kubectl describe pod` output" in ev.problems[0]


# --- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tue, 30 Apr 2019 11:59:00 +0800", "2019-04-30T03:59:00Z"),
        ("Mon, 02 Jan 2006 15:04:05 -0700", "2006-01-02T22:04:05Z"),
        ("Sat, 11 Jul 2020 02:43:45 +0000", "2020-07-11T02:43:45Z"),
        ("11 Jul 2020 02:43:45 UTC", "2020-07-11T02:43:45Z"),
        ("Tue, 07 Jul 2015 12:54:41 PDT", "Tue, 07 Jul 2015 12:54:41 PDT"),  # no offset known
        ("Jul 7 12:54:41", "Jul 7 12:54:41"),  # no year: kept as text
        ("36m", "36m"),
        ("Tue, 31 Feb 2019 11:59:00 +0800", "Tue, 31 Feb 2019 11:59:00 +0800"),
    ],
)
def test_rfc1123_dates_become_rfc3339(text: str, expected: str) -> None:
    assert to_rfc3339(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "http-get https://:https/livez delay=0s timeout=15s period=10s #success=1 #failure=8",
            {
                "httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"},
                "initialDelaySeconds": 0,
                "timeoutSeconds": 15,
                "periodSeconds": 10,
                "successThreshold": 1,
                "failureThreshold": 8,
            },
        ),
        (
            "tcp-socket :5432 delay=1m30s timeout=1s period=10s #success=1 #failure=3",
            {
                "tcpSocket": {"port": 5432},
                "initialDelaySeconds": 90,
                "timeoutSeconds": 1,
                "periodSeconds": 10,
                "successThreshold": 1,
                "failureThreshold": 3,
            },
        ),
        (
            "exec [cat /tmp/healthy] delay=5s timeout=1s period=5s #success=1 #failure=3",
            {
                "exec": {"command": ["cat", "/tmp/healthy"]},
                "initialDelaySeconds": 5,
                "timeoutSeconds": 1,
                "periodSeconds": 5,
                "successThreshold": 1,
                "failureThreshold": 3,
            },
        ),
        (
            "grpc <pod>:9090 <service> delay=0s timeout=1s period=10s #success=1 #failure=3",
            {
                "grpc": {"port": 9090},
                "initialDelaySeconds": 0,
                "timeoutSeconds": 1,
                "periodSeconds": 10,
                "successThreshold": 1,
                "failureThreshold": 3,
            },
        ),
        (
            "http-get http://:8080/ready",
            {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}},
        ),
        ("magic 8080 delay=1s", None),
    ],
)
def test_probes(text: str, expected: dict[str, Any] | None) -> None:
    assert parse_probe(text) == expected


# --- robustness and speed ---------------------------------------------------------------------

_LINES = [
    "Name:  x",
    "Namespace:  y",
    "Containers:",
    "  app:",
    "    State:  Waiting",
    "      Reason:  CrashLoopBackOff",
    "    Last State:  Terminated",
    "      Exit Code:  137",
    "      Message:  boom",
    "Events:",
    "  Type  Reason  Age  From  Message",
    "  ----  ------  ---  ----  -------",
    "  Warning  BackOff  1m (x3 over 2m)  kubelet  Back-off",
    "  18m  8s  90  {kubelet n}  Warning  FailedMount  x",
    "Init Containers:",
    "Volumes:",
    "  v:",
    "    Type:  ConfigMap",
    "Environment:",
    "  K:  <set to the key 'a' in secret 'b'>  Optional: false",
    "    Liveness:  http-get http://:8080/ delay=1s",
    "Labels:  a=b",
    "```",
    "> ",
    "$ kubectl logs -p x -c app",
    "\t\t",
    "",
]


@settings(
    max_examples=150,
    deadline=1000,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_LINES),
            st.text(max_size=60),
            st.builds(lambda a, b: a + b, st.sampled_from(_LINES), st.text(max_size=10)),
        ),
        max_size=60,
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_any_text_is_read_without_raising(lines: list[str], sep: str) -> None:
    ev = parse_describe(sep.join(lines), logs=sep.join(reversed(lines)))
    assert isinstance(ev.pod, dict) and isinstance(ev.problems, list)
    assert all(isinstance(p, str) for p in ev.problems)


@settings(max_examples=100, deadline=1000)
@given(st.sampled_from(ALL), st.data())
def test_cut_or_damaged_fixtures_are_read_without_raising(name: str, data: st.DataObject) -> None:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    cut = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.text(max_size=20))
    at = data.draw(st.integers(0, cut))
    parse_describe(text[:at] + junk + text[at:cut])


def test_parsing_is_fast_and_linear() -> None:
    text = (FIXTURES / "coredns-deployment-161-2019.txt").read_text(encoding="utf-8")
    parse_describe(text)  # compile the patterns once
    start = time.perf_counter()
    for _ in range(20):
        parse_describe(text)
    assert (time.perf_counter() - start) / 20 < 0.005
    # A paste 200 times longer (a huge Events table) takes about 200 times as long, not more.
    rows = "".join(
        f"  Warning  BackOff  {i}m (x{i} over 3h)  kubelet  Back-off restarting failed container\n"
        for i in range(1, 4001)
    )
    big = text + "Events:\n  Type  Reason  Age  From  Message\n  ----  ------  ---  ----  -------\n"
    start = time.perf_counter()
    ev = parse_describe(big + rows)
    assert len(ev.events) == 4000
    assert time.perf_counter() - start < 1.0


# --- shapes found in real reports: bare rows, a few fields, other commands around them ----------


def test_bare_event_rows_without_header_or_events_line() -> None:
    ev = parse_describe(
        "the pod keeps failing:\n"
        '  Normal   Pulled     2s (x5 over 54s)  kubelet  Container image "demo:0.15.6" already'
        " present on machine\n"
        "  Warning  Failed     2s (x5 over 54s)  kubelet  Error: couldn't find key VALUE in Secret"
        " default/aegis\n"
    )
    assert [(e["reason"], e["count"], e["type"]) for e in ev.events] == [
        ("Pulled", 5, "Normal"),
        ("Failed", 5, "Warning"),
    ]
    assert ev.events[1]["message"] == "Error: couldn't find key VALUE in Secret default/aegis"
    assert ev.previous_logs == {}


def test_bare_old_rows_with_collapsed_spaces_and_multi_line_messages() -> None:
    ev = parse_describe(
        "  1m    1m  1   {kubelet pool-ijcs}    spec.containers{db}  Normal  Started     Started"
        " container with docker id 2a158eecfcfd\n"
        "  16m   42s 11  {kubelet pool-ijcs}    spec.containers{db}  Warning Unhealthy   Liveness"
        " probe failed:   % Total\n"
        "                                 Dload  Upload\n"
        "  0     0 --:--:--     0curl: (7) Failed to connect to localhost port 8080: Connection"
        " refused\n"
        "\n"
        "  16m   23s 31  {kubelet pool-ijcs}    spec.containers{db}  Warning Unhealthy   Readiness"
        " probe failed: curl: (7)\n"
    )
    started, liveness, readiness = ev.events
    assert started["source"] == {"component": "kubelet", "host": "pool-ijcs"}
    assert (liveness["count"], liveness["type"]) == (11, "Warning")
    assert liveness["involvedObject"]["fieldPath"] == "spec.containers{db}"
    assert liveness["message"].startswith("Liveness probe failed:")
    assert liveness["message"].endswith("port 8080: Connection refused")
    assert readiness["count"] == 31


def test_a_few_pod_fields_without_name() -> None:
    ev = parse_describe(
        "Status:         Failed\nReason:         Evicted\n"
        "Message:        The node was low on resource: ephemeral-storage.\n"
    )
    assert ev.pod["status"] == {
        "phase": "Failed",
        "reason": "Evicted",
        "message": "The node was low on resource: ephemeral-storage.",
    }


def test_other_commands_output_is_not_logs_but_docker_logs_are() -> None:
    ev = parse_describe(
        "$ kubectl get pods\n"
        "NAME      READY   STATUS       RESTARTS   AGE\n"
        "mysql-2   0/2     Init:Error   4          2m25s\n"
        "[root@worker-2 ~]# docker logs ef1\n"
        'Ncat: Could not resolve hostname "mysql-1.mysql": Name or service not known.\n'
        "[root@k8s-master ~]# k logs -f my-cluster-0 -c init-mysql\n"
        "bash: line 2: hostname: command not found\n"
        "$ kubectl logs -n kured kured-qmr4r        ✔\n"
        "Invalid value for env var named KURED_METRICS_PORT\n"
    )
    assert ev.previous_logs == {
        UNNAMED: 'Ncat: Could not resolve hostname "mysql-1.mysql": Name or service not known.\n'
        "Invalid value for env var named KURED_METRICS_PORT",
        "init-mysql": "bash: line 2: hostname: command not found",
    }
    assert "Init:Error" not in str(ev.previous_logs)


def test_secret_claim_and_projected_volumes_and_signal() -> None:
    text = (
        "Name:         db-0\nNamespace:    data\nContainers:\n  db:\n"
        "    Image:          postgres:16\n"
        "    State:          Waiting\n      Reason:       CrashLoopBackOff\n"
        "    Last State:     Terminated\n      Reason:       Error\n"
        "      Exit Code:    139\n      Signal:       11\n"
        '    Mounts:\n      /var/lib/postgresql/data from data (rw,path="pgdata")\n'
        "Volumes:\n"
        "  data:\n    Type:       PersistentVolumeClaim (a reference to a PersistentVolumeClaim in"
        " the same namespace)\n    ClaimName:  data-db-0\n    ReadOnly:   false\n"
        "  creds:\n    Type:        Secret (a volume populated by a Secret)\n"
        "    SecretName:  db-creds\n    Optional:    false\n"
        "  kube-api-access-x:\n    Type:                    Projected (a volume that contains"
        " injected data from multiple sources)\n    TokenExpirationSeconds:  3607\n"
        "    ConfigMapName:           kube-root-ca.crt\n    ConfigMapOptional:       <nil>\n"
    )
    ev = parse_describe(text)
    assert ev.pod["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}},
        {"name": "creds", "secret": {"secretName": "db-creds", "optional": False}},
        {
            "name": "kube-api-access-x",
            "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]},
        },
    ]
    assert container(ev, "db")["volumeMounts"] == [
        {"mountPath": "/var/lib/postgresql/data", "name": "data", "subPath": "pgdata"}
    ]
    assert status(ev, "db")["lastState"]["terminated"] == {
        "reason": "Error",
        "exitCode": 139,
        "signal": 11,
    }
    assert ev.problems == []


def test_commands_in_markdown_bold_name_their_containers_and_mentions_are_not_commands() -> None:
    ev = parse_describe(
        "**kubectl logs prom-0 -c config-reloader**\n\n"
        'level=error msg="reload request failed: connect: connection refused"\n\n'
        "**kubectl logs prom-0 -c prometheus**\n\n"
        'level=error err="error loading config: field honor_timestamps not found"\n'
        'level=info msg="see kubectl describe pod prom-0 for details"\n'
        "level=info msg=done\n"
    )
    assert list(ev.previous_logs) == ["config-reloader", "prometheus"]
    assert ev.previous_logs["prometheus"].endswith("level=info msg=done")


@pytest.mark.parametrize(
    "text",
    [
        "Events:\n  Type  Reason  Age  From  Message\n  ----  ------  ---  ----  -------\n"
        "  Warning  Failed  1m  kubelet  start\n" + "continued line of the message\n" * 20000,
        "Name: x\nNamespace: y\nContainers:\n  a:\n    Last State: Terminated\n"
        "      Message: boom\n" + "goroutine 1 [running]:\n" * 20000,
        "Name: x\nNamespace: y\n" + "\n" * 50000 + "Containers:\n  a:\n    Image: b\n",
        "Name: x\nNamespace: y\n" + "".join(" " * i + f"k{i}:\n" for i in range(2000)),
        "kubectl logs " + "-a b " * 20000 + "\n" + "a " * 200000,
    ],
    ids=["long-event-message", "long-termination-message", "blank-lines", "deep", "long-lines"],
)
def test_pathological_pastes_stay_linear(text: str) -> None:
    start = time.perf_counter()
    parse_describe(text)
    assert time.perf_counter() - start < 1.5
