"""What is known about one pod, however it was gathered: the shape every source fills in.

The pod and its events keep the Kubernetes API's own JSON shape (a v1 `Pod`, v1 `Event`s), so
the facts are read in one place (facts.py) whether they came from the API, a bundle written by
`kubectl get -o json`, or `kubectl describe` text rebuilt into that shape (describe.py). A
source that cannot fill a field leaves it out; it never invents one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UNNAMED = ""
"""The key of logs given without a container name (a paste, `--logs FILE`): they belong to the
container that failed, which the doctor picks (the one failing container, or the one that
restarted most)."""


@dataclass
class PodEvidence:
    """One pod: its object, the events about it and its node, and its containers' logs."""

    pod: dict[str, Any]
    """The v1 Pod (`kubectl get pod -o json`): metadata, spec (containers, initContainers,
    probes, resources, volumes, securityContext), status (phase, reason, message,
    containerStatuses, initContainerStatuses with state/lastState/restartCount)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    """v1 Events whose involvedObject is the pod (reason, message, type, count,
    firstTimestamp, lastTimestamp or eventTime, involvedObject.fieldPath, source)."""

    node_events: list[dict[str, Any]] = field(default_factory=list)
    """v1 Events whose involvedObject is the pod's node (evictions, pressure, CNI)."""

    owners: list[str] = field(default_factory=list)
    """The owner chain, nearest first: ["ReplicaSet/api-5d9f7", "Deployment/api"]."""

    previous_logs: dict[str, str] = field(default_factory=dict)
    """Container name -> `kubectl logs --previous -c NAME` (the run that ended). `UNNAMED`
    for logs given without a container name."""

    current_logs: dict[str, str] = field(default_factory=dict)
    """Container name -> `kubectl logs -c NAME` (the current run: an init container still
    failing, a container that never restarted)."""

    problems: list[str] = field(default_factory=list)
    """What could not be gathered or parsed, in plain words, for the report: "events: forbidden
    (needs `list events` in namespace shop)", "describe line 41: unknown field 'Foo'"."""

    source: str = ""
    """Where this came from, for the report: "cluster kind-dev", "bundle api.tar.gz",
    "describe.txt"."""

    @property
    def namespace(self) -> str:
        return str(self.pod.get("metadata", {}).get("namespace") or "default")

    @property
    def name(self) -> str:
        return str(self.pod.get("metadata", {}).get("name") or "")
