"""The live path (infraveil.k8s.live) through the real `kubernetes` client, against the
stand-in API server: what it gathers for one pod, a selector and a whole namespace, how few
requests that takes, and the errors a person can cause, each saying what to do."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from standin import (
    USER,
    StandIn,
    big_namespace,
    make_certificate,
    recorded,
    shop,
    status_body,
)

from infraveil.k8s import live

API_POD = "api-7c9d8b6f4d-x7k2p"


@pytest.fixture(scope="module")
def api() -> Iterator[StandIn]:
    with StandIn() as server:
        shop(server)
        shop(server, "nologs")
        for pod in recorded("shop-pods.json")["items"]:
            name = pod["metadata"]["name"]
            server.forbid(f"/api/v1/namespaces/nologs/pods/{name}/log", "get", "pods/log", "nologs")
        server.forbid("/api/v1/namespaces/nologs/events", "list", "events", "nologs")
        server.forbid("/api/v1/namespaces/locked/pods", "list", "pods", "locked")
        failure = status_body(500, "InternalError", "etcdserver: request timed out")
        server.reply("/api/v1/namespaces/broken/pods", failure, status=500)
        big_namespace(server)
        yield server


@pytest.fixture
def cluster(
    api: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[live.Cluster]:
    monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path / "config")))
    connected = live.connect()
    yield connected
    connected.close()


def requests_since(api: StandIn, start: int) -> list[str]:
    return [path for _, path, _ in api.requests[start:]]


def test_one_pod_gathers_its_events_node_events_owners_and_previous_log(
    api: StandIn, cluster: live.Cluster
) -> None:
    assert (cluster.context, cluster.namespace) == ("standin", "shop")
    [evidence] = live.gather(cluster, pod=API_POD)
    assert evidence.name == API_POD and evidence.namespace == "shop"
    assert (
        evidence.pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    )
    assert evidence.owners == ["ReplicaSet/api-7c9d8b6f4d", "Deployment/api"]
    assert [e["reason"] for e in evidence.events] == [
        "Scheduled",
        "Pulled",
        "Created",
        "Started",
        "BackOff",
    ]
    assert {e["involvedObject"]["name"] for e in evidence.node_events} == {"node-1"}
    assert "KeyError: 'DATABASE_URL'" in evidence.previous_logs["api"]
    assert evidence.current_logs == {} and evidence.problems == []
    assert evidence.source == "cluster standin"


def test_init_container_logs_and_events_of_the_current_pod_only(cluster: live.Cluster) -> None:
    [db] = live.gather(cluster, "shop", pod="db-0")
    assert db.owners == ["StatefulSet/db"]
    assert "could not translate host name" in db.previous_logs["init-schema"]
    # the Killing event is about the earlier db-0 (another uid): not this pod's history
    assert [e["reason"] for e in db.events] == ["Pulled", "Created", "Started", "BackOff"]


def test_selector_and_all_read_the_namespace_in_a_few_requests(
    api: StandIn, cluster: live.Cluster
) -> None:
    start = len(api.requests)
    pods = live.gather(cluster, selector="app=api")
    assert [p.name for p in pods] == ["api-7c9d8b6f4d-q4m8n", API_POD]
    assert all(len(p.events) == 5 and "api" in p.previous_logs for p in pods)
    paths = requests_since(api, start)
    # one pod list, one event list, one node, the owner chain once, the two logs
    assert len(paths) == 6, paths
    everything = live.gather(cluster, all_pods=True)
    assert [p.name for p in everything] == [
        "api-7c9d8b6f4d-q4m8n",
        API_POD,
        "db-0",
        "web-6d5f7c8b9-h2j4k",
    ]
    web = everything[-1]
    assert web.owners == ["ReplicaSet/web-6d5f7c8b9", "Deployment/web"]
    assert "web" in web.previous_logs  # it restarted once (OOMKilled): that run's log is read


def test_two_hundred_pods_in_one_list_and_a_page_loop(
    api: StandIn, cluster: live.Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "PAGE", 64)
    start = len(api.requests)
    began = time.monotonic()
    pods = live.gather(cluster, "big", all_pods=True)
    took = time.monotonic() - began
    assert len(pods) == 200 and len({p.name for p in pods}) == 200
    failing = [p for p in pods if p.previous_logs and p.events]
    assert len(failing) == 20
    assert all(p.owners[-1].startswith("Deployment/app") for p in pods)
    paths = requests_since(api, start)
    assert paths.count("/api/v1/namespaces/big/pods") == 4  # 200 pods, 64 a page
    assert sum(p.endswith("/log") for p in paths) == 20 + 180  # every restarted container
    assert paths.count("/api/v1/namespaces/default/events") == 4  # once per node
    assert took < 5, f"200 pods took {took:.1f} s"


def test_forbidden_logs_and_events_become_problems_and_gathering_goes_on(
    cluster: live.Cluster,
) -> None:
    [evidence] = live.gather(cluster, "nologs", pod=API_POD)
    assert evidence.previous_logs == {} and evidence.events == []
    assert evidence.owners == ["ReplicaSet/api-7c9d8b6f4d", "Deployment/api"]
    assert evidence.problems == [
        "list events in namespace nologs: forbidden; your user"
        f" ({USER}) needs `list` on `events` in namespace nologs"
        " (check: kubectl auth can-i list events -n nologs)",
        f"read previous logs of container api of pod {API_POD}: forbidden; your user"
        f" ({USER}) needs `get` on `pods/log` in namespace nologs"
        " (check: kubectl auth can-i get pods --subresource=log -n nologs)",
    ]


def test_forbidden_pods_name_the_missing_permission(cluster: live.Cluster) -> None:
    with pytest.raises(live.ClusterDeniedError) as caught:
        live.gather(cluster, "locked", all_pods=True)
    assert str(caught.value) == (
        f"cannot list pods in namespace locked: your user ({USER}) needs `list` on `pods`"
        " in namespace locked (check: kubectl auth can-i list pods -n locked)"
    )


def test_forbidden_text_reads_groups_subresources_and_cluster_scope() -> None:
    assert live.forbidden_text(
        'deployments.apps "api" is forbidden: User "jane" cannot get resource "deployments"'
        ' in API group "apps" in the namespace "shop"'
    ) == (
        "your user (jane) needs `get` on `deployments.apps` in namespace shop"
        " (check: kubectl auth can-i get deployments.apps -n shop)"
    )
    assert live.forbidden_text(
        'nodes is forbidden: User "jane" cannot list resource "nodes" in API group ""'
        " at the cluster scope"
    ) == (
        "your user (jane) needs `list` on `nodes` at the cluster scope"
        " (check: kubectl auth can-i list nodes)"
    )
    assert live.forbidden_text("something else entirely") == "something else entirely"


def test_pod_not_found_names_the_likeliest_pods(cluster: live.Cluster) -> None:
    with pytest.raises(live.PodNotFoundError) as caught:
        live.gather(cluster, pod="api-7c9d8b6f4d-x7k2")
    assert caught.value.message == "no pod 'api-7c9d8b6f4d-x7k2' in namespace shop"
    assert caught.value.hint.startswith(f"pods there: {API_POD}, api-7c9d8b6f4d-q4m8n")
    assert caught.value.code == "not_found"
    with pytest.raises(live.PodNotFoundError, match="no pod in namespace shop matches"):
        live.gather(cluster, selector="app=nothing")


def test_rejected_token_says_log_in_again(
    api: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path / "c", token="expired")))
    cluster = live.connect()
    try:
        with pytest.raises(live.ClusterDeniedError, match="401 Unauthorized") as caught:
            live.gather(cluster, pod=API_POD)
    finally:
        cluster.close()
    assert "log in again" in caught.value.hint


def test_unreachable_server_says_where_and_why(
    api: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path / "c", server=url)))
        cluster = live.connect()
        try:
            with pytest.raises(live.ClusterUnreachableError) as caught:
                live.gather(cluster, pod=API_POD)
        finally:
            cluster.close()
    assert caught.value.message.startswith(f"cannot reach the Kubernetes API server at {url}: ")
    assert "Connection refused" in caught.value.message


def test_no_kubeconfig_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "config"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(live.K8sConfigError) as caught:
        live.connect()
    assert caught.value.message == f"no kubeconfig found: looked at {missing} ($KUBECONFIG)"
    assert "export KUBECONFIG" in caught.value.hint
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(live.K8sConfigError, match=f"looked at {tmp_path}/.kube/config"):
        live.connect()


def test_unknown_context_lists_the_known_ones(
    api: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path / "c")))
    with pytest.raises(live.K8sConfigError) as caught:
        live.connect("prod")
    assert caught.value.message.startswith("no context 'prod' in the kubeconfig")
    assert caught.value.hint == "known contexts: standin, other (kubectl config get-contexts)"
    other = live.connect("other")
    try:
        assert other.namespace == "default"
    finally:
        other.close()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"name": "a", "restartCount": 0, "state": {"running": {}}}, []),
        (
            {"name": "a", "restartCount": 3, "state": {"waiting": {}}, "lastState": {}},
            [("a", True)],
        ),
        (  # restartPolicy Never: the run that failed is the current one
            {"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 2}}},
            [("a", False)],
        ),
        ({"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}}, []),
    ],
)
def test_which_logs_are_read(status: dict[str, object], expected: list[tuple[str, bool]]) -> None:
    assert live.log_requests({"status": {"containerStatuses": [status]}}) == expected


def test_a_running_init_container_holds_the_pod_its_current_log_is_read() -> None:
    pod = {
        "status": {
            "initContainerStatuses": [
                {"name": "wait-db", "restartCount": 0, "state": {"running": {}}},
            ],
            "containerStatuses": [
                {
                    "name": "app",
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "PodInitializing"}},
                }
            ],
        }
    }
    assert live.log_requests(pod) == [("wait-db", False)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters: [\n  - {{broken", "cannot read the kubeconfig {path}: while parsing"),
        ("", "the kubeconfig {path} is empty"),
        (
            "contexts:\n- name: a\n  context: {cluster: x, user: y}\n",
            "the kubeconfig {path} has no current context",
        ),
        (
            "current-context: b\ncontexts:\n- name: a\n  context: {cluster: x, user: y}\n",
            "the current context 'b' of the kubeconfig {path} is not defined in it",
        ),
        (
            "current-context: a\ncontexts:\n- name: a\n  context: {cluster: gone, user: y}\n",
            "cannot use context 'a' of {path}: Invalid kube-config file.",
        ),
    ],
)
def test_a_kubeconfig_it_cannot_use_is_said_with_its_path(
    text: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(live.K8sConfigError) as caught:
        live.connect()
    assert caught.value.message.startswith(message.format(path=path)), caught.value.message


def test_https_with_the_trusted_certificate_and_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("openssl") is None and not os.environ.get("CI"):
        pytest.skip("openssl is not installed (Debian: apt-get install openssl)")
    cert, key = make_certificate(tmp_path)
    with StandIn(tls=(cert, key)) as server:
        shop(server)
        trusted = server.kubeconfig(tmp_path / "trusted", ca=cert)
        monkeypatch.setenv("KUBECONFIG", str(trusted))
        cluster = live.connect()
        try:
            [evidence] = live.gather(cluster, pod=API_POD)
        finally:
            cluster.close()
        assert "api" in evidence.previous_logs
        monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig(tmp_path / "untrusted")))
        cluster = live.connect()
        try:
            with pytest.raises(live.ClusterUnreachableError) as caught:
                live.gather(cluster, pod=API_POD)
        finally:
            cluster.close()
    assert caught.value.message.startswith(
        f"cannot reach the Kubernetes API server at {server.url}"
    )
    assert "certificate verify failed" in caught.value.message
    assert "certificate-authority" in caught.value.hint


def test_a_failing_api_server_is_said_with_its_answer(cluster: live.Cluster) -> None:
    with pytest.raises(live.ClusterUnreachableError) as caught:
        live.gather(cluster, "broken", all_pods=True)
    assert caught.value.message == (
        f"cannot list pods in namespace broken: the API server at {cluster.server} answered"
        " 500 InternalError: etcdserver: request timed out"
    )


def test_the_standin_refuses_in_kube_apiservers_own_words() -> None:
    with StandIn() as server:
        server.forbid("/api/v1/namespaces/shop/pods", "list", "pods", "shop")
        url = f"{server.url}/api/v1/namespaces/shop/pods?limit=500"
        for headers, expected in (
            ({"Authorization": f"Bearer {server.token}"}, recorded("forbidden-pods.json")),
            ({}, recorded("unauthorized.json")),
        ):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10)
            with caught.value as response:
                assert response.status == expected["code"]
                assert json.loads(response.read()) == expected
