"""Kinds of evidence the doctor must read however a case words them: pastes that are only an
error line, a docker run, a YAML status fragment, describe fields a web page flattened, pod-level
statuses without containers, markdown inside a table; and fixes that read as Kubernetes ones
(placeholders for what the evidence did not show, a probe's port taken from its events).

Every input here is a different one from the corpus case that revealed the gap (tests/k8s_corpus),
so these check the capability, not that fixture.
"""

from __future__ import annotations

from typing import Any

from k8s_pods import container, event, evidence, pod, status, terminated, waiting

from infraveil.k8s.describe import parse_describe
from infraveil.k8s.doctor import diagnose_pod
from infraveil.k8s.evidence import UNNAMED, PodEvidence


def report(ev: PodEvidence) -> dict[str, Any]:
    return diagnose_pod(ev).as_dict()


def failing(r: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in r["containers"] if c["failing"])
    return found


def texts(c: dict[str, Any]) -> list[str]:
    return [e["text"] for e in c["diagnosis"]["evidence"]]


# --- pastes without describe structure are the program's output ---------------------------------


def test_a_one_line_paste_that_does_not_look_like_a_log_is_still_the_log() -> None:
    # netcat in an init container's wait loop; nothing in it says "error" or has a timestamp
    paste = '    nc: getaddrinfo for host "postgres.db" port 5432: Name or service not known\n'
    ev = parse_describe(paste)
    assert UNNAMED in ev.previous_logs
    c = failing(report(ev))
    assert c["diagnosis"]["category"] == "dns_failure"
    assert any("Name or service not known" in t for t in texts(c))


def test_the_output_of_docker_run_in_the_foreground_is_the_containers_log() -> None:
    paste = (
        "$ docker run --rm -v /srv/pg:/var/lib/postgresql/data postgres:15\n"
        'initdb: error: directory "/var/lib/postgresql/data" exists but is not empty\n'
        'initdb: hint: If you want to create a new database system, either remove or empty the directory "/var/lib/postgresql/data" or run initdb with an argument other than "/var/lib/postgresql/data".\n'  # noqa: E501
    )
    ev = parse_describe(paste)
    assert "exists but is not empty" in ev.previous_logs[UNNAMED]
    c = failing(report(ev))
    assert c["diagnosis"]["category"] == "data_dir"


def test_a_detached_docker_run_prints_no_log() -> None:
    paste = "$ docker run -d --name web nginx:1.25\n3f2b9c0d1e4a\n"
    assert parse_describe(paste).previous_logs == {}


# --- describe fields a paste flattened, and markdown in a table --------------------------------


def test_state_fields_at_the_states_own_indentation_are_its_fields() -> None:
    paste = (
        "    State:          Terminated\n"
        "    Reason:         Error\n"
        "    Exit Code:      2\n"
        "    Started:        Mon, 04 Mar 2024 10:00:00 +0000\n"
        "    Finished:       Mon, 04 Mar 2024 10:00:03 +0000\n"
        "    Ready:          False\n"
        "    Restart Count:  9\n"
    )
    ev = parse_describe(paste)
    [st] = ev.pod["status"]["containerStatuses"]
    assert st["state"]["terminated"] == {
        "reason": "Error",
        "exitCode": 2,
        "startedAt": "2024-03-04T10:00:00Z",
        "finishedAt": "2024-03-04T10:00:03Z",
    }
    assert st["restartCount"] == 9
    assert "reason" not in ev.pod["status"]  # not the pod's reason
    assert not any("could not place" in p for p in ev.problems)


def test_a_last_termination_known_only_by_its_reason_is_a_failure() -> None:
    paste = "    Last State:     Terminated\n      Reason:       Error\n    Ready:          False\n"
    c = failing(report(parse_describe(paste)))
    assert c["last_termination"]["reason"] == "Error"
    assert c["last_termination"]["exit_code"] is None


def test_markdown_bold_inside_an_event_message_is_not_the_kubelets() -> None:
    paste = (
        "Events:\n"
        "  Type     Reason   Age                From     Message\n"
        "  ----     ------   ----               ----     -------\n"
        '  Warning  Failed   2m (x6 over 4m)    kubelet  **Error: configmap "nginx-conf" not found**\n'  # noqa: E501
        '  Normal   Pulled   2m (x7 over 4m)    kubelet  Container image "nginx:1.25" already present on machine\n'  # noqa: E501
    )
    ev = parse_describe(paste)
    assert ev.events[0]["message"] == 'Error: configmap "nginx-conf" not found'
    c = failing(report(ev))
    assert c["diagnosis"]["category"] == "missing_configmap"
    assert 'Error: configmap "nginx-conf" not found' in texts(c)


# --- a pod's status as YAML ----------------------------------------------------------------------


def test_a_container_status_fragment_as_yaml() -> None:
    paste = (
        "    lastState:\n"
        "      terminated:\n"
        "        containerID: containerd://4f1c\n"
        "        exitCode: 137\n"
        '        finishedAt: "2023-03-02T10:11:12Z"\n'
        "        reason: OOMKilled\n"
        '        startedAt: "2023-03-02T10:09:02Z"\n'
        "    name: worker\n"
        "    ready: false\n"
        "    restartCount: 12\n"
        "    state:\n"
        "      waiting:\n"
        "        message: back-off 5m0s restarting failed container=worker pod=worker-5d8f7\n"
        "        reason: CrashLoopBackOff\n"
    )
    r = report(parse_describe(paste))
    c = failing(r)
    assert (c["name"], c["state"], c["restarts"]) == ("worker", "CrashLoopBackOff", 12)
    assert c["last_termination"]["seconds"] == 130
    assert c["diagnosis"]["category"] == "oom_killed"
    # its spec is not in the paste: the fix does not claim it has no limit
    assert "no memory limit of its own" not in c["diagnosis"]["fix"]


def test_a_container_statuses_list_as_yaml() -> None:
    paste = (
        "  containerStatuses:\n"
        "  - image: ghcr.io/acme/api:1.4.2\n"
        '    imageID: ""\n'
        "    lastState: {}\n"
        "    name: api\n"
        "    ready: false\n"
        "    restartCount: 0\n"
        "    state:\n"
        "      waiting:\n"
        '        message: secret "api-db-credentials" not found\n'
        "        reason: CreateContainerConfigError\n"
        "  - image: envoyproxy/envoy:v1.29\n"
        "    name: envoy\n"
        "    ready: true\n"
        "    restartCount: 0\n"
        "    state:\n"
        "      running:\n"
        '        startedAt: "2024-05-01T09:00:00Z"\n'
    )
    r = report(parse_describe(paste))
    assert [c["name"] for c in r["containers"]] == ["api", "envoy"]
    c = failing(r)
    assert c["name"] == "api"
    assert c["diagnosis"]["category"] == "missing_secret"


def test_a_pod_status_as_yaml_with_a_folded_quoted_message() -> None:
    paste = (
        "status:\n"
        "  message: 'The node was low on resource: memory. Container app was using 2Gi, which\n"
        "    exceeds its request of 512Mi. '\n"
        "  phase: Failed\n"
        "  reason: Evicted\n"
    )
    ev = parse_describe(paste)
    assert ev.pod["status"]["message"] == (
        "The node was low on resource: memory. Container app was using 2Gi, which exceeds its"
        " request of 512Mi. "
    )
    c = failing(report(ev))
    assert c["diagnosis"]["category"] == "evicted"
    assert "requests.memory" in c["diagnosis"]["fix"]


def test_a_bare_state_as_yaml_is_a_terminated_one_when_it_has_an_exit_code() -> None:
    paste = (
        "exitCode: 1\nreason: Error\nmessage: |\n  panic: open /etc/app/app.yaml: no such file\n"
    )
    ev = parse_describe(paste)
    [st] = ev.pod["status"]["containerStatuses"]
    assert st["state"]["terminated"]["exitCode"] == 1
    assert st["state"]["terminated"]["message"] == "panic: open /etc/app/app.yaml: no such file"


def test_describe_output_is_not_read_as_yaml() -> None:
    paste = (
        "Name:         web-0\nNamespace:    prod\nStatus:       Running\nContainers:\n"
        "  web:\n    Image:  nginx\n    State:  Running\n    Limits:\n      cpu:     500m\n"
        "      memory:  128Mi\n"
    )
    ev = parse_describe(paste)
    assert ev.name == "web-0"
    assert ev.pod["spec"]["containers"][0]["resources"]["limits"]["memory"] == "128Mi"


# --- the pod's own status when it lists no container -------------------------------------------


def test_an_evicted_pod_without_containers_is_diagnosed_from_its_status() -> None:
    paste = (
        "Status:         Failed\n"
        "Reason:         Evicted\n"
        "Message:        The node was low on resource: memory. Container web was using 1243Mi,"
        " which exceeds its request of 256Mi.\n"
    )
    c = failing(report(parse_describe(paste)))
    assert c["diagnosis"]["category"] == "evicted"
    assert "container web used 1243Mi" in c["diagnosis"]["summary"]


def test_an_evicted_pod_object_without_containers() -> None:
    p = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "batch-1", "namespace": "jobs"},
        "status": {
            "phase": "Failed",
            "reason": "Evicted",
            "message": "Pod The node had condition: [MemoryPressure]. ",
        },
    }
    c = failing(report(PodEvidence(p)))
    assert c["diagnosis"]["category"] == "evicted"
    assert "MemoryPressure" in c["diagnosis"]["summary"]


def test_a_pod_with_no_status_words_and_no_containers_has_nothing_to_diagnose() -> None:
    p = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "status": {}}
    r = report(PodEvidence(p))
    assert r["containers"] == []


# --- fixes that read as Kubernetes ones -----------------------------------------------------------


def test_an_unnamed_container_gets_placeholders_not_empty_names() -> None:
    paste = (
        "    State:          Waiting\n"
        "      Reason:       CreateContainerConfigError\n"
        "      Message:      container has runAsNonRoot and image will run as root\n"
    )
    r = report(parse_describe(paste))
    c = failing(r)
    assert c["diagnosis"]["category"] == "security_context"
    assert "name: CONTAINER" in c["patch"] and 'name: ""' not in c["patch"]
    assert "# CONTAINER: the container's name" in c["patch"]
    everything = str(r)
    for empty in ("-c  ", "-c `", "Statuses[]", "--container= "):
        assert empty not in everything


def test_unnamed_logs_are_named_as_kubectl_logs_of_the_pod() -> None:
    c = failing(
        report(parse_describe("Error: listen EADDRINUSE: address already in use :::3000\n"))
    )
    sources = [e["source"] for e in c["diagnosis"]["evidence"]]
    assert any(s.startswith("logs --previous line") for s in sources), sources
    assert "-c  " not in str(c) and "-c `" not in str(c)


def test_a_dns_failure_of_a_pod_is_fixed_in_kubernetes_terms() -> None:
    p = pod(
        [container("worker")],
        [status("worker", waiting(), terminated("Error", 1), restarts=4)],
    )
    log = 'psycopg2.OperationalError: could not translate host name "pg-main" to address: Name or service not known\n'  # noqa: E501
    c = failing(report(evidence(p, previous={"worker": log})))
    assert c["diagnosis"]["category"] == "dns_failure"
    fix = c["diagnosis"]["fix"]
    assert "depends_on" not in fix
    assert "NAME.NAMESPACE" in fix and "kubectl exec api-7c9d8b6f4d-x7k2p -c worker" in fix


def test_a_startup_probe_patch_takes_the_port_the_probe_events_show() -> None:
    # the spec's probes are not in the evidence (a paste of status and events), the kubelet's
    # events say what the liveness probe checked
    p = pod([{"name": "prom"}], [status("prom", waiting(), terminated("Error", 137, ran=47))])
    events = [
        event(
            "Unhealthy",
            'Liveness probe failed: Get "http://10.244.1.7:9090/-/healthy": dial tcp'
            " 10.244.1.7:9090: connect: connection refused",
            count=3,
            first=20,
            last=40,
            container="prom",
        ),
        event(
            "Killing",
            "Container prom failed liveness probe, will be restarted",
            kind="Normal",
            first=41,
            container="prom",
        ),
    ]
    c = failing(report(evidence(p, events)))
    assert c["diagnosis"]["category"] == "slow_start_killed"
    assert "port: 9090" in c["patch"] and "path: /-/healthy" in c["patch"]
    assert "PORT" not in c["patch"]


def test_a_startup_probe_patch_without_any_known_port_says_what_port_to_fill_in() -> None:
    p = pod([{"name": "app"}], [status("app", waiting(), terminated("Error", 137, ran=35))])
    events = [
        event(
            "Killing",
            "Container app failed liveness probe, will be restarted",
            kind="Normal",
            first=34,
            container="app",
        )
    ]
    c = failing(report(evidence(p, events)))
    assert c["diagnosis"]["category"] == "slow_start_killed"
    assert "port: PORT" in c["patch"]
    assert "# PORT: the port its health endpoint listens on" in c["patch"]


# --- other commands' output people paste --------------------------------------------------------


def test_kubectl_get_events_table() -> None:
    paste = (
        "$ kubectl get events -n web\n"
        "LAST SEEN   TYPE      REASON        OBJECT          MESSAGE\n"
        "3m12s       Normal    Scheduled     pod/web-0       Successfully assigned web/web-0 to node-2\n"  # noqa: E501
        '2m5s        Warning   FailedMount   pod/web-0       MountVolume.SetUp failed for volume "certs" : secret "web-tls" not found\n'  # noqa: E501
    )
    ev = parse_describe(paste)
    assert ev.name == "web-0"
    mount = ev.events[1]
    assert (mount["reason"], mount["type"]) == ("FailedMount", "Warning")
    assert mount["involvedObject"]["kind"] == "Pod"
    c = failing(report(ev))
    assert c["diagnosis"]["category"] == "missing_secret"


def test_old_kubectl_get_events_table_names_the_container() -> None:
    paste = (
        "LASTSEEN   FIRSTSEEN   COUNT     NAME        KIND      SUBOBJECT                  TYPE      REASON    SOURCE                MESSAGE\n"  # noqa: E501
        '5m         5m          1         mongo-0     Pod       spec.containers{mongo}     Warning   Failed    kubelet, gke-node-1   Error: failed to start container "mongo": Error response from daemon: OCI runtime create failed: container_linux.go:348: starting container process caused "exec: \\"/entrypoint.sh\\": permission denied": unknown\n'  # noqa: E501
        "1m         5m          12        mongo-0     Pod       spec.containers{mongo}     Warning   BackOff   kubelet, gke-node-1   Back-off restarting failed container\n"  # noqa: E501
    )
    ev = parse_describe(paste)
    assert ev.events[1]["count"] == 12
    assert ev.events[0]["involvedObject"]["fieldPath"] == "spec.containers{mongo}"
    c = failing(report(ev))
    assert c["name"] == "mongo"
    # the runtime's start failure is only in the event: it is the start failure all the same
    assert c["diagnosis"]["category"] == "not_executable"


def test_a_get_events_row_that_lost_its_alignment_and_other_pods_events() -> None:
    paste = (
        "LAST SEEN   TYPE      REASON      OBJECT           MESSAGE\n"
        '40s         Normal    Pulled      pod/cache-1      Container image "redis:7" already present on machine\n'  # noqa: E501
        "2m   Warning   Failed   pod/api-0   Error: couldn't find key DB_URL in Secret web/api\n"
        "1m   Warning   BackOff  pod/api-0   Back-off restarting failed container\n"
    )
    ev = parse_describe(paste)
    assert ev.name == "api-0"
    assert [e["reason"] for e in ev.events] == ["Failed", "BackOff"]
    assert ev.events[0]["message"] == "Error: couldn't find key DB_URL in Secret web/api"
    assert any("about 2 pods" in p for p in ev.problems)
    assert failing(report(ev))["diagnosis"]["category"] == "missing_secret"


def test_a_pod_pasted_as_json() -> None:
    paste = (
        "$ kubectl get pod cache-0 -n cache -o json\n"
        "{\n"
        '  "apiVersion": "v1", "kind": "Pod",\n'
        '  "metadata": {"name": "cache-0", "namespace": "cache"},\n'
        '  "spec": {"containers": [{"name": "redis", "image": "redis:7",\n'
        '            "resources": {"limits": {"memory": "64Mi"}}}]},\n'
        '  "status": {"phase": "Running", "containerStatuses": [{"name": "redis",\n'
        '    "state": {"waiting": {"reason": "CrashLoopBackOff"}},\n'
        '    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},\n'
        '    "ready": false, "restartCount": 7}]}\n'
        "}\n"
    )
    ev = parse_describe(paste)
    assert (ev.namespace, ev.name) == ("cache", "cache-0")
    c = failing(report(ev))
    assert c["diagnosis"]["category"] == "oom_killed"
    assert 'memory: "128Mi"' in c["patch"]


def test_json_log_lines_beside_a_description_are_logs_not_a_pod() -> None:
    paste = (
        "Name:         api-1\nNamespace:    default\nStatus:       Running\nContainers:\n"
        "  api:\n    Image:          acme/api:1\n    State:          Waiting\n"
        "      Reason:       CrashLoopBackOff\n    Last State:     Terminated\n"
        "      Reason:       Error\n      Exit Code:    1\n    Restart Count:  3\n"
        "Events:  <none>\n\n$ kubectl logs api-1 --previous\n"
        '{"level":"info","msg":"start","status":{"phase":"boot","reason":"init"}}\n'
        '{"level":"fatal","msg":"dial tcp 10.0.0.9:5432: connect: connection refused"}\n'
    )
    ev = parse_describe(paste)
    assert ev.name == "api-1"
    c = failing(report(ev))
    assert c["diagnosis"]["category"] == "dependency_unreachable"


def test_kubectl_logs_prefix_is_taken_off_the_lines() -> None:
    p = pod([container("grafana")], [status("grafana", waiting(), terminated("Error", 1))])
    log = (
        '[pod/grafana-7b9c/grafana] logger=settings t=2024-03-01T10:00:00Z level=info msg="Starting"\n'  # noqa: E501
        "[pod/grafana-7b9c/grafana] Error: ✗ failed to open database: unable to open database"
        " file: permission denied\n"
    )
    c = failing(report(evidence(p, previous={"grafana": log})))
    assert c["diagnosis"]["category"] == "data_dir"
    assert texts(c)[0].startswith("Error: ✗ failed to open database")


def test_a_start_failure_whose_runtime_message_is_only_in_the_event() -> None:
    # the status has StartError with exit 128 but no message (an older kubelet, a trimmed paste)
    last = terminated("StartError", 128, ran=0)
    del last["terminated"]["containerID"]
    p = pod([container("api")], [status("api", waiting(), last, restarts=3)])
    message = (
        "Error: failed to create containerd task: failed to create shim task: OCI runtime create"
        ' failed: runc create failed: unable to start container process: exec: "/app/server":'
        " stat /app/server: no such file or directory: unknown"
    )
    c = failing(report(evidence(p, [event("Failed", message, count=4)])))
    assert c["diagnosis"]["category"] == "command_not_found"
    assert message in texts(c)


def test_a_failed_event_of_a_run_that_exited_by_itself_is_not_its_start_failure() -> None:
    p = pod([container("api")], [status("api", waiting(), terminated("Error", 1), restarts=3)])
    message = 'Error: failed to start container "api": OCI runtime start failed: permission denied'
    log = 'FATAL: password authentication failed for user "shop"\n'
    c = failing(report(evidence(p, [event("Failed", message)], previous={"api": log})))
    assert c["diagnosis"]["category"] != "not_executable"


# --- what kubectl itself answered around the paste ---------------------------------------------


def test_kubectl_logs_answering_that_the_container_waits_to_start() -> None:
    paste = (
        "$ kubectl logs -n shop cart-5f7d8c9b6-abcde\n"
        'Error from server (BadRequest): container "cart" in pod "cart-5f7d8c9b6-abcde" is'
        " waiting to start: trying and failing to pull image\n"
    )
    ev = parse_describe(paste)
    assert ev.name == "cart-5f7d8c9b6-abcde"
    assert ev.previous_logs == {}  # kubectl's answer is not the container's output
    c = failing(report(ev))
    assert (c["name"], c["state"]) == ("cart", "ImagePullBackOff")
    assert c["diagnosis"]["category"] == "image_pull"


def test_a_create_container_config_error_without_events_says_where_to_look() -> None:
    paste = (
        'Error from server (BadRequest): container "app" in pod "app-0" is waiting to start:'
        " CreateContainerConfigError\n"
    )
    c = failing(report(parse_describe(paste)))
    d = c["diagnosis"]
    assert d["category"] == "unknown"
    assert d["evidence"][0]["text"] == "CreateContainerConfigError"
    assert "ConfigMap, Secret or key" in d["fix"] and "kubectl describe pod app-0" in d["fix"]


def test_a_get_pods_row_is_the_state_of_a_pod_pasted_with_nothing_else() -> None:
    paste = (
        "$ kubectl get pods\n"
        "NAME                      READY   STATUS      RESTARTS      AGE\n"
        "api-7c9d8b6f4d-x7k2p      1/1     Running     0             2d\n"
        "worker-6b8f9d7c4-q9z2x    0/1     OOMKilled   4 (50s ago)   3m\n"
    )
    ev = parse_describe(paste)
    assert ev.name == "worker-6b8f9d7c4-q9z2x"
    c = failing(report(ev))
    assert (c["state"], c["restarts"]) == ("OOMKilled", 4)
    assert c["diagnosis"]["category"] == "oom_killed"
    assert c["diagnosis"]["evidence"][0]["text"] == "OOMKilled"


def test_a_get_pods_row_of_an_init_container_takes_the_logs_container_name() -> None:
    paste = (
        "$ kubectl get pods -n data\n"
        "NAME          READY   STATUS                  RESTARTS   AGE\n"
        "pg-0          0/1     Init:CrashLoopBackOff   5          4m\n"
        "pg-1          0/1     Init:CrashLoopBackOff   5          4m\n"
        "$ kubectl logs pg-0 -c init-chown -n data\n"
        "chown: /var/lib/postgresql/data: Operation not permitted\n"
    )
    ev = parse_describe(paste)
    assert ev.name == "pg-0"
    c = failing(report(ev))
    assert (c["name"], c["init"]) == ("init-chown", True)


def test_an_evicted_get_pods_row() -> None:
    paste = (
        "NAME                 READY   STATUS    RESTARTS   AGE\n"
        "report-28100-abcde   0/1     Evicted   0          6h\n"
    )
    c = failing(report(parse_describe(paste)))
    assert c["diagnosis"]["category"] == "evicted"


def test_events_alone_name_their_container_by_its_words() -> None:
    paste = (
        "Events:\n"
        "  Type     Reason   Age                 From     Message\n"
        "  ----     ------   ----                ----     -------\n"
        '  Normal   Pulled   3m (x5 over 6m)     kubelet  Container image "acme/cart:2" already present on machine\n'  # noqa: E501
        "  Warning  BackOff  1m (x25 over 6m)    kubelet  Back-off restarting failed container cart in pod cart-0_shop(77a1)\n"  # noqa: E501
    )
    c = failing(report(parse_describe(paste)))
    assert c["name"] == "cart"  # not "image", from the other event


def test_events_naming_two_containers_name_none() -> None:
    paste = (
        "Events:\n"
        "  Type     Reason   Age   From     Message\n"
        "  ----     ------   ----  ----     -------\n"
        "  Normal   Started  3m    kubelet  Started container sidecar\n"
        "  Warning  BackOff  1m    kubelet  Back-off restarting failed container cart in pod x\n"
    )
    c = failing(report(parse_describe(paste)))
    assert c["name"] == ""


def test_get_events_rows_without_their_header() -> None:
    paste = (
        "3m    Warning   FailedMount   pod/api-0    MountVolume.SetUp failed for volume"
        ' "settings" : configmap "api-settings" not found\n'
        "3m    Normal    Scheduled     pod/api-0    Successfully assigned shop/api-0 to n1\n"
        "9m    Normal    Killing       pod/api-old  Stopping container api\n"
    )
    ev = parse_describe(paste)
    assert ev.name == "api-0" and len(ev.events) == 2
    assert ev.previous_logs == {}
    assert failing(report(ev))["diagnosis"]["category"] == "missing_configmap"


def test_an_events_table_right_below_flattened_state_fields() -> None:
    # a web page took the indentation and the `Events:` line away
    paste = (
        "Last State: Terminated\n"
        "Reason: Error\n"
        "Exit Code: 1\n"
        "Type Reason Age From Message\n"
        "---- ------ ---- ---- -------\n"
        'Warning Failed 2m (x3 over 4m) kubelet Error: secret "stripe-key" not found\n'
    )
    ev = parse_describe(paste)
    [st] = ev.pod["status"]["containerStatuses"]
    assert st["lastState"]["terminated"] == {"reason": "Error", "exitCode": 1}
    assert [e["reason"] for e in ev.events] == ["Failed"]
    assert failing(report(ev))["diagnosis"]["category"] == "missing_secret"


def test_words_around_logs_are_still_not_the_log() -> None:
    paste = (
        "My pod keeps restarting, any idea why?\n"
        "$ kubectl logs api-0\n"
        "Error: listen EADDRINUSE: address already in use :::3000\n"
    )
    ev = parse_describe(paste)
    assert ev.previous_logs == {UNNAMED: "Error: listen EADDRINUSE: address already in use :::3000"}
    assert ev.name == "api-0"


def test_fixes_and_checks_of_process_rules_speak_kubernetes_in_a_pod() -> None:
    p = pod([container("api")], [status("api", waiting(), terminated("Error", 127), restarts=3)])
    c = failing(report(evidence(p, previous={"api": "starting...\n"})))
    assert c["diagnosis"]["category"] == "command_not_found"
    assert "infraveil" not in c["diagnosis"]["confirm"]
    assert "kubectl debug -it api-7c9d8b6f4d-x7k2p" in c["diagnosis"]["confirm"]
    log = "Error: open conf/app.yaml: no such file or directory\n"
    c = failing(report(evidence(p, previous={"api": log})))
    assert c["diagnosis"]["category"] == "config_missing"
    assert "workingDir" in c["diagnosis"]["fix"] and "infraveil.toml" not in c["diagnosis"]["fix"]


def test_a_manifest_pasted_with_the_logs_is_not_the_pods_state() -> None:
    paste = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - name: api\n        image: acme/api:1\n"
        "        env:\n        - name: MODE\n          value: prod\n"
        "status:\n  replicas: 1\n"
        "\n$ kubectl logs api-5d9f-x\n"
        "Error: Cannot find module 'express'\n"
    )
    ev = parse_describe(paste)
    c = failing(report(ev))
    assert c["diagnosis"]["category"] == "missing_module"


def test_a_whole_description_wins_over_yaml_beside_it() -> None:
    paste = (
        "Name:         api-0\nNamespace:    shop\nStatus:       Running\nContainers:\n"
        "  api:\n    State:          Waiting\n      Reason:       CrashLoopBackOff\n"
        "    Last State:     Terminated\n      Reason:       OOMKilled\n      Exit Code:    137\n"
        "    Restart Count:  4\n"
        "\nstatus:\n  phase: Running\n  reason: Unknown\n  message: not this\n"
    )
    ev = parse_describe(paste)
    assert ev.name == "api-0"
    assert failing(report(ev))["diagnosis"]["category"] == "oom_killed"


def test_a_pod_whose_metadata_is_not_an_object_is_still_diagnosed() -> None:
    p = pod([container("api")], [status("api", waiting("ErrImagePull"))])
    p["metadata"] = "api-0"
    r = report(PodEvidence(p))
    assert failing(r)["diagnosis"]["category"] == "image_pull"
    assert any("metadata is not an object" in x for x in r["problems"])


def test_yaml_whose_values_are_not_of_the_expected_kind_is_no_traceback() -> None:
    for paste in (
        "containerStatuses: x\nreason:\nmessage: [a]\n",
        "status:\n  containerStatuses:\n  - state: 3\n    name: {}\n  phase: Running\n",
        "reason:\n  waiting: 1\nexitCode: x\n",
    ):
        report(parse_describe(paste))  # (what it concludes is not the point: no traceback)


def test_cri_os_start_failure_in_an_event() -> None:
    paste = (
        "  Warning  Failed  10s (x3 over 30s)  kubelet  Error: container create failed:"
        ' time="2024-04-02T10:00:00Z" level=error msg="runc create failed: unable to start'
        ' container process: exec: \\"/usr/bin/tini\\": stat /usr/bin/tini: no such file or'
        ' directory"\n'
    )
    c = failing(report(parse_describe(paste)))
    assert c["name"] == ""  # "container create failed" names no container
    assert c["diagnosis"]["category"] == "command_not_found"
    assert "/usr/bin/tini" in c["diagnosis"]["summary"]


def _description(name: str, state: str, last: str, ready: str, restarts: int) -> str:
    return (
        f"Name:         {name}\nNamespace:    shop\nStatus:       Running\nContainers:\n"
        f"  api:\n    Image:          acme/api:1\n{state}{last}"
        f"    Ready:          {ready}\n    Restart Count:  {restarts}\nEvents:  <none>\n"
    )


def test_of_several_descriptions_the_failing_one_is_read() -> None:
    healthy = _description("api-a", "    State:          Running\n", "", "True", 0)
    crashing = _description(
        "api-b",
        "    State:          Waiting\n      Reason:       CrashLoopBackOff\n",
        "    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    1\n",
        "False",
        6,
    )
    paste = (
        f"$ kubectl describe pods -l app=api\n{healthy}\n{crashing}\n"
        "$ kubectl logs api-b --previous\n"
        "Error: listen EADDRINUSE: address already in use :::3000\n"
    )
    ev = parse_describe(paste)
    assert ev.name == "api-b"
    assert any("read api-b" in p and "api-a" in p for p in ev.problems)
    assert failing(report(ev))["diagnosis"]["category"] == "port_in_use"


def test_a_quote_of_a_quote_with_a_code_fence_inside() -> None:
    paste = (
        "> > ```\n"
        '> > 2m   Warning   Failed   pod/web-1   Error: secret "web-env" not found\n'
        '> > 2m   Normal    Pulled   pod/web-1   Container image "nginx" already present\n'
        "> > ```\n"
    )
    ev = parse_describe(paste)
    assert ev.name == "web-1" and len(ev.events) == 2
    assert failing(report(ev))["diagnosis"]["category"] == "missing_secret"


def test_an_indented_quote() -> None:
    paste = "    > Status:  Failed\n    > Reason:  Evicted\n    > Message: Pod The node had condition: [DiskPressure].\n"  # noqa: E501
    assert failing(report(parse_describe(paste)))["diagnosis"]["category"] == "evicted"


def test_the_pod_a_logs_command_names_skips_its_options() -> None:
    paste = "$ kubectl logs -n payments --tail 20 pod/ledger-7f9c-2x --previous\npanic: boom\n"
    assert parse_describe(paste).name == "ledger-7f9c-2x"


def test_a_description_whose_indentation_was_squeezed_to_one_level() -> None:
    paste = (
        "Name: worker-0\nNamespace: jobs\nStatus: Running\nContainers:\n"
        " worker:\n"
        " Image: acme/worker:5\n"
        " State: Waiting\n"
        " Reason: CrashLoopBackOff\n"
        " Last State: Terminated\n"
        " Reason: OOMKilled\n"
        " Exit Code: 137\n"
        " Ready: False\n"
        " Restart Count: 8\n"
        " Limits:\n"
        " memory: 256Mi\n"
        "Events: <none>\n"
    )
    ev = parse_describe(paste)
    [st] = ev.pod["status"]["containerStatuses"]
    assert st["name"] == "worker" and st["restartCount"] == 8
    assert st["lastState"]["terminated"] == {"reason": "OOMKilled", "exitCode": 137}
    c = failing(report(ev))
    assert c["diagnosis"]["category"] == "oom_killed"
    assert 'memory: "512Mi"' in c["patch"]
