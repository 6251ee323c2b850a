"""Rule: evicted — the kubelet evicted the pod to relieve pressure on its node.

The pod is `Failed` with reason `Evicted` and a message naming the resource (`The node was low
on resource: memory. ... Container api was using 9402820Ki, which exceeds its request of 7G.`),
or an `Evicted` event says so; ephemeral-storage limits evict too (`Pod ephemeral local storage
usage exceeds the total limit of containers 1Gi`). Not an OOM kill: the container did not hit
its own limit, the node ran short, and the pods using most beyond their requests went first.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, platform_said
from infraveil.core.diagnosis.finding import Evidence, Finding, Specificity, finding

_EVICTED = re.compile(
    r"The node was low on resource: \[?(?P<resource>[\w-]+(?:\.\w+)?)"
    r"|(?P<storage>ephemeral local storage usage exceeds|exceeded its local ephemeral storage"
    r"|Usage of EmptyDir volume \S+ exceeds)"
    r"|The node had condition: \[(?P<condition>\w+)\]"
    r"|(?P<shutdown>terminated in response to imminent node shutdown|Node is shutting, evicting)",
    re.I,
)
_USING = re.compile(
    r"Container (?P<name>\S+) was using (?P<used>\S+?),? which exceeds its request of"
    r" (?P<req>\S+?)\.?(?:\s|$)"
)


def rule(c: Clues) -> Finding | None:
    kube = c.facts.kube
    if kube is None:
        return None
    said = platform_said(c, _EVICTED, node=True)
    if said is None and kube.pod_reason != "Evicted":
        return None
    evidence: list[Evidence] = []
    if kube.pod_reason == "Evicted":
        evidence.append(Evidence("status.reason", "Evicted"))
    resource = "resources"
    if said is not None:
        evidence.insert(0, said.evidence)
        resource = said["resource"] or ("ephemeral-storage" if said["storage"] else "")
        resource = resource or said["condition"] or ("node shutdown" if said["shutdown"] else "")
    using = _USING.search(said.evidence.text) if said is not None else None
    detail = ""
    if using is not None:
        detail = (
            f"; container {using['name']} used {using['used']}, beyond its request of"
            f" {using['req']}"
        )
    return finding(
        Category.EVICTED,
        f"The kubelet evicted the pod because its node ran short of"
        f" {resource or 'a resource'}{detail}.",
        evidence,
        _fix(resource),
        specificity=Specificity.PLATFORM,
    )


def _fix(resource: str) -> str:
    then = (
        " Evicted pods stay listed until deleted (`kubectl delete pod`); their controller has"
        " already started a replacement."
    )
    if "memory" in resource.lower():
        return (
            "Set the container's `resources.requests.memory` to what it really uses (pods"
            " using more than their request are evicted first; requests = limits makes it"
            " Guaranteed), or give the node more memory." + then
        )
    if "storage" in resource.lower() or "disk" in resource.lower() or "fs" in resource.lower():
        return (
            "Find what fills the node's disk (container logs, emptyDir, images: `crictl rmi"
            " --prune`); give the container `resources.requests`/`limits` of"
            " `ephemeral-storage`, and write large data to a volume instead." + then
        )
    return "Relieve the node (`kubectl describe node` shows its pressure conditions)." + then
