"""Small builders of v1 Pod and Event JSON in the API's real shapes, for the engine's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from infraveil.k8s.evidence import PodEvidence

T0 = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    """The API's timestamp `seconds` after T0."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def terminated(
    reason: str = "Error",
    exit_code: int = 1,
    *,
    start: float = 0,
    ran: float = 5,
    message: str | None = None,
    signal: int | None = None,
) -> dict[str, Any]:
    t: dict[str, Any] = {
        "reason": reason,
        "exitCode": exit_code,
        "startedAt": at(start),
        "finishedAt": at(start + ran),
        "containerID": "containerd://0123abcd",
    }
    if message is not None:
        t["message"] = message
    if signal is not None:
        t["signal"] = signal
    return {"terminated": t}


def waiting(reason: str = "CrashLoopBackOff", message: str | None = None) -> dict[str, Any]:
    w: dict[str, Any] = {"reason": reason}
    if message is not None:
        w["message"] = message
    return {"waiting": w}


def running(start: float = 0) -> dict[str, Any]:
    return {"running": {"startedAt": at(start)}}


def status(
    name: str,
    state: dict[str, Any],
    last: dict[str, Any] | None = None,
    *,
    restarts: int = 0,
    ready: bool = False,
    image: str = "registry.example.com/shop/api:1.4.2",
) -> dict[str, Any]:
    return {
        "name": name,
        "state": state,
        "lastState": last or {},
        "ready": ready,
        "restartCount": restarts,
        "image": image,
        "started": "running" in state,
    }


def container(
    name: str = "api", image: str = "registry.example.com/shop/api:1.4.2", **extra: Any
) -> dict[str, Any]:
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", **extra}


def http_probe(
    path: str = "/healthz",
    port: int = 8080,
    *,
    delay: int = 0,
    period: int = 10,
    failures: int = 3,
    timeout: int = 1,
) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "initialDelaySeconds": delay,
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
        "successThreshold": 1,
    }


def pod(
    containers: list[dict[str, Any]],
    statuses: list[dict[str, Any]],
    *,
    init: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    name: str = "api-7c9d8b6f4d-x7k2p",
    namespace: str = "shop",
    phase: str = "Running",
    reason: str | None = None,
    message: str | None = None,
    owned: bool = True,
    **spec: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": "5f0e-77"}
    if owned:
        metadata["labels"] = {"app": "api", "pod-template-hash": "7c9d8b6f4d"}
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "api-7c9d8b6f4d",
                "controller": True,
                "uid": "9a1",
            }
        ]
    st: dict[str, Any] = {"phase": phase, "containerStatuses": statuses, "hostIP": "10.0.0.5"}
    if init_statuses is not None:
        st["initContainerStatuses"] = init_statuses
    if reason is not None:
        st["reason"] = reason
    if message is not None:
        st["message"] = message
    body: dict[str, Any] = {"containers": containers, "nodeName": "node-1", **spec}
    if init is not None:
        body["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": body, "status": st}


def event(
    reason: str,
    message: str,
    *,
    kind: str = "Warning",
    count: int = 1,
    first: float = 0,
    last: float | None = None,
    container: str | None = "api",
    init: bool = False,
) -> dict[str, Any]:
    involved: dict[str, Any] = {"kind": "Pod", "name": "api-7c9d8b6f4d-x7k2p"}
    if container is not None:
        involved["fieldPath"] = f"spec.{'initContainers' if init else 'containers'}{{{container}}}"
    return {
        "kind": "Event",
        "type": kind,
        "reason": reason,
        "message": message,
        "count": count,
        "firstTimestamp": at(first),
        "lastTimestamp": at(first if last is None else last),
        "involvedObject": involved,
        "source": {"component": "kubelet", "host": "node-1"},
    }


def evidence(
    p: dict[str, Any],
    events: list[dict[str, Any]] | None = None,
    *,
    previous: dict[str, str] | None = None,
    current: dict[str, str] | None = None,
    node_events: list[dict[str, Any]] | None = None,
) -> PodEvidence:
    return PodEvidence(
        p,
        events=events or [],
        node_events=node_events or [],
        previous_logs=previous or {},
        current_logs=current or {},
        source="test",
    )
