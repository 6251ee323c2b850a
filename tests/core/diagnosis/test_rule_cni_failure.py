"""cni_failure: the pod network plugin failing, from its own log, its probe events, or the
kubelet's sandbox errors for any pod on that node."""

from __future__ import annotations

from dataclasses import replace

from kube_support import apply, kube_facts, warning

from diagnosis_support import apply as apply_log
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import EventFact, KillFact
from infraveil.core.diagnosis.rules.cni_failure import rule


def test_flannel_without_a_pod_cidr_from_its_log() -> None:
    line = (
        "E0411 06:25:44.372839 1 main.go:289] Error registering network: failed to acquire"
        ' lease: node "ip-172-31-23-54" pod cidr not assigned'
    )
    f = apply_log(rule, f"I0411 vxlan.go:120] VXLAN config\n{line}", exit_code=1)
    assert f is not None and f.category is Category.CNI_FAILURE
    assert [e.text for e in f.evidence] == [line] and "pod CIDR" in f.summary
    assert "--allocate-node-cidrs=true" in f.fix


def test_calico_bgp_from_the_readiness_event() -> None:
    probe = (
        "Readiness probe failed: calico/node is not ready: BIRD is not ready: BGP not"
        " established with 10.0.1.1"
    )
    f = apply(rule, events=(warning("Unhealthy", probe, 300),), container="calico-node")
    assert f is not None and f.evidence[0].text == probe and "BGP" in f.summary
    assert "TCP 179" in f.fix


def test_calico_felix_not_live_outranks_the_liveness_kill_it_caused() -> None:
    probe = (
        "Liveness probe failed: calico/node is not ready: Felix is not live: Get"
        ' "http://localhost:9099/liveness": dial tcp [::1]:9099: connect: connection refused'
    )
    kill = EventFact("Killing", "Container calico-node failed liveness probe, will be restarted")
    events = (warning("Unhealthy", probe, 20), kill)
    facts = kube_facts(events=events, container="calico-node", exit_code=0)
    d = diagnose(replace(facts, kill=KillFact("liveness", kill.message, "event Killing")))
    assert d.finding.category is Category.CNI_FAILURE and "Felix" in d.finding.summary
    assert probe in [e.text for e in d.finding.evidence]
    assert Category.SLOW_START_KILLED in [o.category for o in d.others]


def test_a_pod_whose_sandbox_gets_no_network() -> None:
    sandbox = (
        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network"
        ' for sandbox "9c1": plugin type="flannel" failed (add): open /run/flannel/subnet.env:'
        " no such file or directory"
    )
    f = apply(rule, events=(warning("FailedCreatePodSandBox", sandbox, 30),))
    assert f is not None and "CNI plugin" in f.summary and "/etc/cni/net.d" in f.fix


def test_a_node_whose_network_plugin_is_not_ready() -> None:
    node = warning("NetworkNotReady", "network is not ready: container runtime network not ready")
    f = apply(rule, node_events=(node,))
    assert f is not None and f.category is Category.CNI_FAILURE


def test_a_calico_pod_failing_for_another_reason_is_not_this() -> None:
    assert apply(rule, "calico-node starting\nError: boom", container="calico-node") is None
    assert apply(rule, events=(warning("BackOff", "Back-off restarting failed container"),)) is None


def test_flannel_that_cannot_reach_the_api_server_is_the_pod_network_failing() -> None:
    line = (
        "E0505 10:00:00.1 1 main.go:243] Failed to create SubnetManager: error retrieving pod"
        " spec for 'kube-system/kube-flannel-ds-x': Get https://10.96.0.1:443/api/v1/namespaces"
        "/kube-system/pods/kube-flannel-ds-x: dial tcp 10.96.0.1:443: i/o timeout"
    )
    d = diagnose(kube_facts(line, exit_code=1, container="kube-flannel"))
    assert d.finding.category is Category.CNI_FAILURE and "10.96.0.1:443" in d.finding.fix
    assert Category.DEPENDENCY_UNREACHABLE in [o.category for o in d.others]
