"""Rule: cni_failure — the pod network plugin (Flannel, Calico, the runtime's CNI) is failing.

Read from the plugin's own words wherever they appear: the plugin's log (Flannel cannot lease a
subnet because the node has no pod CIDR: `pod cidr not assigned`, `failed to get pod CIDR`; its
other fatal errors, `Failed to create SubnetManager: ...`, `Error registering network: ...`),
its probe events (calico-node's `calico/node is not ready: BIRD is not ready: BGP not
established with X`, `Felix is not live`, `bird/confd is not live`), and the kubelet's words
for any pod on a node whose network is down (`FailedCreatePodSandBox ... failed to set up
sandbox container ... network`, `NetworkPluginNotReady`, `cni plugin not initialized`,
`/run/flannel/subnet.env: no such file or directory`). A liveness kill of calico-node is its
symptom, not a slow start: this rule ranks as the platform's explicit reason.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, platform_said
from infraveil.core.diagnosis.finding import Evidence, Finding, Specificity, finding

_CIDR = (
    r"pod ?cidr not assigned|failed to get pod ?cidr|node \S+ has no pod ?cidr"
    r"|podCIDR.*(?:empty|not set)"
)
_KINDS = (
    (re.compile(_CIDR, re.I), "cidr"),
    (
        re.compile(
            r"BGP not established|BIRD is not ready|bird(?:/confd)? is not (?:live|ready)"
            r"|BIRD socket",
            re.I,
        ),
        "bgp",
    ),
    (re.compile(r"Felix is not (?:live|ready)|calico/node is not ready", re.I), "felix"),
    (
        re.compile(
            r"subnet\.env: no such file|cni plugin not initialized|NetworkPluginNotReady"
            r"|network plugin (?:is )?not ready|runtime network not ready"
            r"|failed to (?:set ?up|setup) (?:network|sandbox container)"
            r"|networkPlugin cni failed|plugin type=\"?\w+\"? failed",
            re.I,
        ),
        "sandbox",
    ),
    (
        re.compile(
            r"Failed to create SubnetManager|Error registering network|failed to register network"
            r"|Couldn't fetch network config|Failed to find (?:any valid )?interface",
            re.I,
        ),
        "flannel",
    ),
)
_ANY = re.compile("|".join(f"(?:{p.pattern})" for p, _ in _KINDS), re.I)
_WHAT = {
    "cidr": "its node has no pod CIDR, so Flannel cannot lease a subnet for it",
    "bgp": "calico-node's BGP (BIRD) has no session with its peers, so routes to other nodes"
    " are missing",
    "felix": "calico-node's Felix agent is not live or ready",
    "sandbox": "the node's CNI plugin could not set up the pod's network",
    "flannel": "Flannel could not set up the node's network",
}
_FIX = {
    "cidr": "Give nodes pod CIDRs: run the controller-manager with `--allocate-node-cidrs=true"
    " --cluster-cidr=CIDR` matching Flannel's `Network` in kube-flannel-cfg (kubeadm: `kubeadm"
    " init --pod-network-cidr=10.244.0.0/16`), or set one on the node: `kubectl patch node"
    ' NODE -p \'{"spec":{"podCIDR":"10.244.N.0/24"}}\'`; then delete the flannel pod.',
    "bgp": "Let the nodes peer: open TCP 179 between them (security groups, firewalld), and make"
    " calico-node pick the right interface (`IP_AUTODETECTION_METHOD=interface=eth0` or"
    " `can-reach=GATEWAY` on the calico-node DaemonSet); `calicoctl node status` shows each"
    " peer's state.",
    "felix": "Read calico-node's own log (`kubectl -n kube-system logs POD -c calico-node"
    " --previous`) for why Felix is not up: most often it cannot reach the API server"
    " (service CIDR routes, kube-proxy), or it lacks CPU/memory (raise its requests).",
    "flannel": "Read Flannel's error: most often it cannot reach the API server (the"
    " `kubernetes` Service, 10.96.0.1:443 by default: kube-proxy not running on the node, a"
    " firewall), or its `net-conf.json` (`Network`, `Backend`) or interface (`--iface`) is"
    " wrong for the node; then delete the flannel pod on that node.",
    "sandbox": "Fix the network plugin on the node first: `kubectl -n kube-system get pods -o"
    " wide` for its pods on that node (flannel, calico-node, cilium, ...) and their logs;"
    " /etc/cni/net.d must hold its config. Pods on that node start once it is healthy.",
}


def rule(c: Clues) -> Finding | None:
    evidence: Evidence
    found = c.search(_ANY, decisive_first=False)
    said = platform_said(c, _ANY, node=True)
    if said is not None:
        evidence, text, at = said.evidence, said.evidence.text, -1
    elif found is not None:
        evidence, text, at = c.quote(found.line), found.line.text, found.at
    else:
        return None
    kind = next(k for p, k in _KINDS if p.search(text))
    if found is not None and said is not None:
        # the plugin's own log line names the cause better than the probe event that saw it
        extra = c.quote(found.line)
        evidences = [evidence, extra] if extra.text != evidence.text else [evidence]
    else:
        evidences = [evidence]
    return finding(
        Category.CNI_FAILURE,
        f"The pod network is failing for {c.who}: {_WHAT[kind]}.",
        evidences,
        _FIX[kind],
        specificity=Specificity.PLATFORM,
        at=at,
    )
