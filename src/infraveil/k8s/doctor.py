"""PodEvidence -> PodReport: each failing container explained, with its fix as a concrete change.

Every failing container's facts (facts.py) go through the same engine as infraveil's own
services; this module adds what only a pod needs:

- **Init containers.** Init containers run one after another before the app containers, which
  wait in `PodInitializing` meanwhile; the pod shows `Init:CrashLoopBackOff` / `Init:Error`.
  An init container whose *run* failed (it exited non-zero or was killed) reports the category
  `init_container`; its finding is its own cause's (evidence, fix) with the cause named in the
  summary ("Init container wait-db failed (dependency_unreachable): it could not connect ...")
  and its category in the JSON as `diagnosis.cause`. An init container the kubelet could not
  even *start* (its image, a missing ConfigMap or Secret, its securityContext, the pod network,
  an eviction) reports that platform category itself: nothing of the init container ran. One
  still running (a wait loop that never ends) blocks the pod too and reports what its log
  says, as is.
- **Readiness.** A running container that is not ready is failing; when its log names a cause
  (a certificate it rejects, a config error), that cause wins over "readiness fails", which is
  the symptom, and the probe failure stays in the evidence.
- **Fixes in Kubernetes terms** and, where the fix is in the spec, a strategic-merge patch of
  the workload that owns the pod (`kubectl patch deployment/api --patch-file FILE`): a
  `startupProbe` for a liveness probe that kills a slow start (its budget twice the time the
  container had before the kill), `resources.limits.memory` for an OOM kill, a numeric
  `runAsUser` for `runAsNonRoot`.
- **Several failing containers**: init containers first, then one with a cause of its own
  before one that is only its victim (a sidecar refused by the main container that is down).
- **A healthy pod** says so, and when it ever restarted, why and when it last did.

`now` (for whether a crash is recent) defaults to the latest moment the evidence records: a
live caller may pass the clock's time instead.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import KubeFacts
from infraveil.core.diagnosis.finding import Diagnosis, Finding, Specificity
from infraveil.core.units import format_bytes, format_duration
from infraveil.k8s.evidence import PodEvidence
from infraveil.k8s.facts import ContainerView, containers, evidence_now, parse_quantity, parse_time

_NOT_RUN = frozenset(
    {
        Category.IMAGE_PULL,
        Category.MISSING_CONFIGMAP,
        Category.MISSING_SECRET,
        Category.SECURITY_CONTEXT,
        Category.CNI_FAILURE,
        Category.EVICTED,
    }
)
"""Categories that mean the kubelet never ran the container: an init container's failure of
this kind is reported as itself, not as `init_container`."""

_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


@dataclass
class ContainerReport:
    view: ContainerView
    diagnosis: Diagnosis | None = None
    cause: Category | None = None  # an init container's own cause, when it reports init_container
    patch: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] | None = None
        if self.diagnosis is not None:
            d = self.diagnosis.as_dict()
            d["cause"] = self.cause.value if self.cause is not None else None
        return {**self.view.as_dict(), "diagnosis": d, "patch": self.patch}


@dataclass
class PodReport:
    namespace: str
    name: str
    phase: str
    node: str
    owners: list[str]
    source: str
    healthy: bool
    summary: str
    containers: list[ContainerReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "phase": self.phase,
            "node": self.node,
            "owners": list(self.owners),
            "source": self.source,
            "healthy": self.healthy,
            "summary": self.summary,
            "containers": [c.as_dict() for c in self.containers],
            "problems": list(self.problems),
        }


def diagnose_pod(evidence: PodEvidence, now: datetime | None = None) -> PodReport:
    """The pod's report: a diagnosis (and a patch where the fix is in the spec) per failing
    container. `now` decides whether a past crash is recent; without it, the latest moment the
    evidence records is used (see facts.evidence_now)."""
    pod = _mapping(evidence.pod)
    if pod is not evidence.pod or not isinstance(pod.get("metadata", {}), dict):
        # (the pod's name and namespace are read from its metadata everywhere)
        pod = {**pod, "metadata": {}}
        evidence = replace(
            evidence,
            pod=pod,
            problems=[*evidence.problems, "pod: its metadata is not an object; name unknown"],
        )
    status, spec = _mapping(pod.get("status")), _mapping(pod.get("spec"))
    owners = list(evidence.owners) or _owners_from_metadata(pod)
    views = containers(evidence, now or evidence_now(evidence))
    blocked = _blocking_init(views)
    reports: list[ContainerReport] = []
    unscheduled = _unscheduled(evidence) is not None and not spec.get("nodeName")
    for view in views:
        if view is blocked and not view.failing and view.state == "Running":
            view.failing = True  # a wait loop that never ends holds every app container back
        if unscheduled:
            view.failing = False  # nothing ran: the summary says why it is not scheduled
        reports.append(_report(view, owners) if view.failing else ContainerReport(view))
    problems = list(evidence.problems)
    if not views:
        problems.append("the pod has no containers in its spec or status: nothing to diagnose")
    failing = [r for r in reports if r.view.failing]
    if len(failing) > 1:
        reports.sort(key=_root_first)  # (stable: spec order otherwise)
        failing = [r for r in reports if r.view.failing]
    return PodReport(
        namespace=evidence.namespace,
        name=evidence.name,
        phase=str(status.get("phase") or ""),
        node=str(spec.get("nodeName") or ""),
        owners=owners,
        source=evidence.source,
        healthy=not failing and bool(views) and not unscheduled and not _not_up(reports),
        summary=_summary(evidence, reports, failing),
        containers=reports,
        problems=problems,
    )


def _report(view: ContainerView, owners: list[str]) -> ContainerReport:
    d = _promote_cause(diagnose(view.facts))
    kube = view.facts.kube
    assert kube is not None
    fix, patch = _kubernetes_fix(d.finding, view, kube, owners)
    logs = f"`kubectl logs --previous {kube.pod or 'POD'} -c {view.name or _CONTAINER}`"
    debug = (
        f"`kubectl debug -it {kube.pod or 'POD'} --copy-to=debug"
        f" --container={view.name or _CONTAINER} -- sh`"
    )
    confirm = d.finding.confirm.replace("`infraveil logs --previous`", logs).replace(
        "`infraveil debug`", debug
    )
    d = replace(d, finding=replace(d.finding, fix=fix or d.finding.fix, confirm=confirm))
    cause: Category | None = None
    if view.init and not view.facts.live and d.finding.category not in _NOT_RUN:
        cause = d.finding.category
        inner = d.finding
        said = inner.summary.replace(f"Init container {view.name} ", "it ", 1)
        summary = (
            f"Init container {view.name or '(unnamed)'} failed ({cause.value}): {said} The app"
            " containers wait in PodInitializing until it succeeds."
        )
        d = replace(
            d,
            finding=replace(inner, category=Category.INIT_CONTAINER, summary=summary),
        )
    return ContainerReport(view, d, cause, patch)


_VICTIM = frozenset({Category.DEPENDENCY_UNREACHABLE, Category.UNKNOWN, Category.NOT_READY})


def _root_first(r: ContainerReport) -> tuple[bool, int]:
    """Init containers first (they run first), then a container with a cause of its own before
    one that is only a victim (a sidecar refused by the main container that is down) or
    unexplained, then the containers that are fine."""
    if not r.view.failing or r.diagnosis is None:
        return (not r.view.init, 2)
    return (not r.view.init, int(r.diagnosis.finding.category in _VICTIM))


def _promote_cause(d: Diagnosis) -> Diagnosis:
    """Readiness failing is the symptom: a cause the log names wins, with the probe quoted."""
    if d.finding.category is not Category.NOT_READY:
        return d
    cause = next(
        (
            f
            for f in d.others
            if f.category not in (Category.UNKNOWN, Category.NOT_READY)
            and f.specificity >= Specificity.EXCEPTION
        ),
        None,
    )
    if cause is None:
        return d
    evidence = (*cause.evidence, *d.finding.evidence[:1])
    others = tuple(f for f in (d.finding, *d.others) if f is not cause)
    return Diagnosis(replace(cause, evidence=evidence), others)


def _blocking_init(views: list[ContainerView]) -> ContainerView | None:
    """The init container the pod waits on (running while the app containers wait)."""
    waiting_apps = any(not v.init and v.state == "PodInitializing" for v in views)
    for v in views:
        if v.init and v.state == "Running" and waiting_apps:
            return v
    return None


# ── fixes and patches ────────────────────────────────────────────────────────────────────────


def _kubernetes_fix(
    f: Finding, view: ContainerView, kube: KubeFacts, owners: list[str]
) -> tuple[str, str | None]:
    """(a fix in Kubernetes terms, or "" to keep the rule's; a YAML patch or None)."""
    name = view.name or _CONTAINER  # (a paste that did not name it: a placeholder to fill in)
    kind = "initContainers" if view.init else "containers"
    liveness = kube.probe("liveness")
    if f.category is Category.SLOW_START_KILLED:
        # the startup probe's budget when it has one (it killed the start), else a new one
        # with the liveness probe's check
        base = kube.probe("startup") or liveness
        ran = _time_to_kill(view)
        observed = ran if ran is not None else (base.first_kill if base else 60.0)
        period = base.period if base else 10
        threshold = max(3, math.ceil(2 * observed / period))
        handler = next((dict(p.handler) for p in (base, liveness) if p and p.handler), None)
        probe: dict[str, Any] = {
            **(handler or _check_seen(view) or {"httpGet": {"path": "/healthz", "port": "PORT"}}),
            "periodSeconds": period,
            "failureThreshold": threshold,
        }
        budget = format_duration(period * threshold)
        if base is not None and base.role == "startup":
            what = f"raise its startupProbe's budget to {budget}"
        else:
            same = "the same check as its livenessProbe" if handler else "its health check"
            what = f"add a startupProbe ({same}) allowing {budget}"
        fix = (
            f"Give it time to start: {what} (failureThreshold {threshold} × periodSeconds"
            f" {period}), twice the {format_duration(observed)} it had before the kill; the"
            " livenessProbe only starts once it passes, so a hang is still caught later. Then"
            " find out why the start is slow, if it should not be."
        )
        return fix, _patch(owners, kube, kind, name, {"startupProbe": probe})
    if f.category is Category.OOM_KILLED:
        limit = dict(kube.limits).get("memory")
        limit_bytes = parse_quantity(limit) if limit else None
        if limit_bytes:
            new = f"{math.ceil(limit_bytes * 2 / (1 << 20))}Mi"
            fix = (
                f"Raise its memory limit ({limit}, {format_bytes(limit_bytes)}) if that much is"
                f" legitimate, e.g. to {new} (the request too, if it is below what it uses), or"
                " find what grows: a leak, an unbounded cache or batch, a runtime heap set"
                " larger than the limit (JVM -Xmx, Node --max-old-space-size)."
            )
            change: dict[str, Any] = {"resources": {"limits": {"memory": new}}}
            return fix, _patch(owners, kube, kind, name, change)
        if not set(view.spec) - {"name"}:  # only its status is in the evidence
            return (
                "Its spec is not in the evidence, so its memory limit is unknown: see it with"
                f" `kubectl get pod {kube.pod or 'POD'} -o yaml`; raise `resources.limits.memory`"
                " if what it uses is legitimate (`kubectl top pod`), else find what grows (a"
                " leak, an unbounded cache, a runtime heap set above the limit); without a limit"
                " the node itself ran out of memory (`kubectl describe node`).",
                None,
            )
        return (
            "It has no memory limit of its own, so the node ran out: give it"
            " `resources.requests.memory` and `limits.memory` sized to what it really uses"
            " (`kubectl top pod`), and see what else the node runs (`kubectl describe node`).",
            None,
        )
    if f.category is Category.SECURITY_CONTEXT and "below 1024" in f.summary:
        sysctl = {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}
        return "", _patch(owners, kube, "pod", name, {"securityContext": {"sysctls": [sysctl]}})
    if f.category is Category.SECURITY_CONTEXT:
        change = {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000}}
        return "", _patch(owners, kube, kind, name, change)
    if f.category is Category.PROBE_MISCONFIGURED:
        return (
            "Fix the probe in the pod spec: point its `path` at an endpoint the server serves"
            " without authentication and its `port` at the port the program listens on"
            " (`kubectl get pod -o yaml` shows both), or make the app serve it.",
            None,
        )
    if f.category is Category.UNRESPONSIVE:
        return (
            "It was up, then stopped answering its livenessProbe. Next time, before the kill,"
            f" take a thread dump (`kubectl exec POD -c {name} -- ...`: py-spy dump, jstack,"
            " kill -QUIT for Go) and look for a deadlock or a call without a timeout; check"
            " its CPU limit (throttling) and load (`kubectl top pod`); a too short"
            " `timeoutSeconds` on the probe makes a busy server look dead.",
            None,
        )
    if f.category is Category.NOT_READY:
        return (
            "Nothing is restarted for a readiness failure, but the pod gets no traffic. Find"
            f" what the endpoint waits for in its log (`kubectl logs POD -c {name}`); if the"
            " readinessProbe itself is wrong, fix its path or port in the spec.",
            None,
        )
    if f.category is Category.UNKNOWN and kube.waiting_reason == "CreateContainerConfigError":
        return (
            "The kubelet could not build the container from its spec: read the pod's events"
            f" (`kubectl describe pod {kube.pod or 'POD'}`), which name the ConfigMap, Secret or"
            " key that is missing (create it, or fix the name in the spec) or the"
            " securityContext it cannot meet (`runAsNonRoot` with an image that runs as root).",
            None,
        )
    if f.category is Category.UNKNOWN:
        return (
            f"Read its whole log (`kubectl logs --previous {kube.pod or 'POD'} -c {name}`) and"
            " the pod's events (`kubectl describe pod`); if it prints nothing before it exits,"
            f" run it by hand in a copy of the pod (`kubectl debug -it {kube.pod or 'POD'}"
            f" --copy-to=debug --container={name} -- sh`) and watch where it stops.",
            None,
        )
    if f.category is Category.EXITED_ZERO:
        return (
            f.fix + " In Kubernetes a container that exits is restarted (a CrashLoopBackOff"
            " after a clean exit): an image whose default command is a shell or a one-off"
            " (centos, ubuntu, busybox with no `command`) needs a long-running `command`, and"
            " a one-off task belongs in a Job.",
            None,
        )
    said = " ".join(e.text for e in f.evidence)
    if f.category is Category.TLS_ERROR and re.search(r":10250\b|kubelet", said):
        return (
            "The kubelets' serving certificates are self-signed or lack the node's IP (port"
            " 10250 is the kubelet): turn on signed kubelet serving certificates"
            " (`serverTLSBootstrap: true` in the kubelet config, then approve their CSRs:"
            " `kubectl get csr`, `kubectl certificate approve NAME`), or make the client"
            " (metrics-server) use the nodes' names (`--kubelet-preferred-address-types="
            "Hostname`); `--kubelet-insecure-tls` only hides it, for a test cluster.",
            None,
        )
    if f.category is Category.DNS_FAILURE:
        return (
            "Check the name in the container's configuration: a Service resolves as `NAME` only"
            " from its own namespace, as `NAME.NAMESPACE` (or `NAME.NAMESPACE.svc.cluster.local`)"
            " from others; it must exist (`kubectl get svc -A | grep NAME`), and CoreDNS must"
            " run (`kubectl -n kube-system get pods -l k8s-app=kube-dns`); test from the pod:"
            f" `kubectl exec {kube.pod or 'POD'} -c {name} -- nslookup NAME`. If the name is"
            " another workload that starts later, let the program retry (or wait for it in an"
            " init container).",
            None,
        )
    if f.category is Category.DEPENDENCY_UNREACHABLE:
        return (
            "Check that the dependency runs and is reachable from this pod: its Service has"
            " endpoints (`kubectl get endpoints NAME`), the name and port are right, and it does"
            " not listen on 127.0.0.1 only; a NetworkPolicy may block it. If it is only slower"
            " to start, let the program retry with backoff (or wait for it in an init"
            " container).",
            None,
        )
    if f.category is Category.DATA_DIR and (uid := re.search(r"\(uid (\d+)\)", f.fix)):
        user = int(uid[1])
        change = {"securityContext": {"fsGroup": user}}
        fix = (
            f.fix + f" In Kubernetes: a pod `securityContext.fsGroup: {user}` makes the volume"
            " group-writable for it (not on hostPath volumes); or chown the directory in an"
            " initContainer running as root; or point the data directory at a subdirectory"
            " of the mount (a new volume's root holds `lost+found`)."
        )
        return fix, _patch(owners, kube, "pod", name, change)
    return "", None


_CONTAINER = "CONTAINER"
"""The container's name in commands and patches when the evidence did not give it."""

_PROBED_URL = re.compile(
    r"(?:Liveness|Startup|Readiness) probe failed: (?:Get|HTTP probe failed[^:]*:)?\s*\"?"
    r"(?P<scheme>https?)://[^/\s\"]*?:(?P<port>\d+)(?P<path>/[^\s\"?]*)?",
    re.IGNORECASE,
)
_PROBED_TCP = re.compile(
    r"(?:Liveness|Startup|Readiness) probe failed: dial tcp \S*?:(?P<port>\d+)", re.IGNORECASE
)


def _check_seen(view: ContainerView) -> dict[str, Any] | None:
    """The probe's check as its failure events show it, when the spec is not in the evidence:
    `Liveness probe failed: Get "http://10.1.2.3:8080/healthz": ...` is an httpGet of /healthz
    on port 8080; `dial tcp 10.1.2.3:5432: ...` a tcpSocket on 5432."""
    for e, _ in view.timed:
        if (m := _PROBED_URL.search(e.message)) is not None:
            get: dict[str, Any] = {"path": m["path"] or "/", "port": int(m["port"])}
            if m["scheme"].lower() == "https":
                get["scheme"] = "HTTPS"
            return {"httpGet": get}
        if (m := _PROBED_TCP.search(e.message)) is not None:
            return {"tcpSocket": {"port": int(m["port"])}}
    ports = view.facts.ports
    if len(ports) == 1:  # the one port it declares
        return {"httpGet": {"path": "/healthz", "port": ports[0]}}
    return None


def _time_to_kill(view: ContainerView) -> float | None:
    """Seconds from the run's start to the kubelet's kill (its event's time), else to its end
    (which adds the grace period the program took to stop)."""
    ran = view.facts.run_seconds
    kill, last = view.facts.kill, view.last_termination or {}
    started = parse_time(last.get("started"))
    when = next((t for e, t in view.timed if kill and e.source == kill.source and t), None)
    if started is None or when is None:
        return ran
    seconds = (when - started).total_seconds()
    return seconds if 0 < seconds <= (ran if ran is not None else seconds) + 2 else ran


def _patch(owners: list[str], kube: KubeFacts, kind: str, name: str, change: dict[str, Any]) -> str:
    """A strategic-merge patch of the pod's workload (containers are merged by name)."""
    owner = owners[-1] if owners else ""
    owner_kind, _, owner_name = owner.partition("/")
    pod_spec: dict[str, Any] = change if kind == "pod" else {kind: [{"name": name, **change}]}
    if owner_kind in _TEMPLATE_PATHS:
        body: dict[str, Any] = pod_spec
        for key in reversed(_TEMPLATE_PATHS[owner_kind]):
            body = {key: body}
        target = f"{owner_kind.lower()}/{owner_name}"
        head = f"# kubectl -n {kube.namespace} patch {target} --patch-file patch.yaml\n"
    else:
        body = {"spec": pod_spec}
        head = (
            "# a pod's spec cannot be changed in place: put this in its manifest and recreate it\n"
        )
    if name == _CONTAINER and kind != "pod":
        head += f"# {_CONTAINER}: the container's name (the evidence did not show it)\n"
    if "PORT" in _yaml(change).split():
        head += "# PORT: the port its health endpoint listens on\n"
    return head + _yaml(body)


def _owners_from_metadata(pod: dict[str, Any]) -> list[str]:
    """The owner chain from `metadata.ownerReferences` (a ReplicaSet named `<deployment>-<the
    pod-template-hash label>` belongs to that Deployment)."""
    meta = _mapping(pod.get("metadata"))
    refs: list[Any] = meta.get("ownerReferences") or []
    refs = refs if isinstance(refs, list) else []
    ref = next((r for r in refs if isinstance(r, dict) and r.get("controller")), None)
    ref = ref or next((r for r in refs if isinstance(r, dict)), None)
    if ref is None:
        return []
    owners = [f"{ref.get('kind')}/{ref.get('name')}"]
    labels = _mapping(meta.get("labels"))
    hash_ = str(labels.get("pod-template-hash") or "")
    rs = str(ref.get("name") or "")
    if ref.get("kind") == "ReplicaSet" and hash_ and rs.endswith("-" + hash_):
        owners.append(f"Deployment/{rs[: -len(hash_) - 1]}")
    return owners


def _yaml(value: Any, indent: int = 0) -> str:
    """Block YAML for plain dicts, lists and scalars (the patches above need no more)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                lines.append(f"{pad}{_scalar(k)}:\n{_yaml(v, indent + 2)}")
            else:
                lines.append(f"{pad}{_scalar(k)}: {_scalar(v)}\n")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                body = _yaml(item, indent + 2)
                lines.append(f"{pad}- {body[indent + 2 :]}")
            else:
                lines.append(f"{pad}- {_scalar(item)}\n")
    return "".join(lines)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, dict | list):
        return "{}" if isinstance(v, dict) else "[]"
    s = str(v)
    if _PLAIN.fullmatch(s) and not _RESERVED.fullmatch(s):
        return s
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


# what YAML reads back as the same plain string; anything else is quoted
_PLAIN = re.compile(r"[A-Za-z_/.][\w./ -]*(?<! )")
_RESERVED = re.compile(
    r"(?i:true|false|yes|no|on|off|y|n|null|~|\.inf|\.nan)|[-+]?[\d._]+(?:e[-+]?\d+)?"
)


# ── the one-line summary ─────────────────────────────────────────────────────────────────────


def _summary(
    evidence: PodEvidence, reports: list[ContainerReport], failing: list[ContainerReport]
) -> str:
    pod = f"Pod {evidence.namespace}/{evidence.name or '(unnamed)'}"
    if failing:
        parts = []
        for r in failing:
            d = r.diagnosis
            what = d.finding.category.value if d is not None else "failing"
            if r.cause is not None:
                what += f" ({r.cause.value})"
            kind = "init container" if r.view.init else "container"
            parts.append(f"{kind} {r.view.name or '(unnamed)'}: {what}")
        text = f"{pod} is failing: " + "; ".join(parts)
        if any(r.view.init for r in failing) and any(
            not r.view.init and r.view.state == "PodInitializing" for r in reports
        ):
            text += (
                " (the app containers wait in PodInitializing until the init containers succeed)"
            )
        return text + "."
    spec = _mapping(_mapping(evidence.pod).get("spec"))
    if (unscheduled := _unscheduled(evidence)) is not None and not spec.get("nodeName"):
        return f"{pod} is not scheduled on any node: {unscheduled}"
    if not reports:
        return f"{pod}: no containers found in the evidence."
    if starting := _not_up(reports):
        states = ", ".join(f"{r.view.name or '(unnamed)'} {r.view.state}" for r in starting)
        return f"{pod} is not up yet, and nothing says it is failing: {states}."
    text = f"{pod} is healthy: {_readiness(reports)}."
    restarted = [r for r in reports if r.view.restarts and r.view.last_termination]
    if restarted:
        last = max(
            restarted,
            key=lambda r: (
                str(r.view.last_termination.get("finished") or "")
                if r.view.last_termination
                else ""
            ),
        )
        t = last.view.last_termination or {}
        how = t.get("reason") or "Error"
        code = t.get("exit_code")
        if code is not None:
            how += f", exit code {code}"
        when = t.get("finished")
        at = ""
        if when and (finished := parse_time(when)) is not None:
            at = f" at {finished.strftime('%Y-%m-%d %H:%M:%S UTC')}"
        text += (
            f" Container {last.view.name or '(unnamed)'} has restarted {last.view.restarts} time"
            f"{'s' if last.view.restarts != 1 else ''}; the last time it ended was {how}{at}."
        )
    elif not any(r.view.restarts for r in reports):
        text += " It never restarted."
    return text


def _not_up(reports: list[ContainerReport]) -> list[ContainerReport]:
    """App containers neither ready nor done (starting, or waiting for the init containers)."""
    return [
        r for r in reports if not r.view.init and not r.view.ready and r.view.state != "Completed"
    ]


def _readiness(reports: list[ContainerReport]) -> str:
    apps = [r for r in reports if not r.view.init]
    ready = sum(1 for r in apps if r.view.ready or r.view.state == "Completed")
    return f"{ready}/{len(apps)} containers ready"


def _unscheduled(evidence: PodEvidence) -> str | None:
    for e in evidence.events:
        if isinstance(e, dict) and e.get("reason") == "FailedScheduling":
            return str(e.get("message") or "FailedScheduling").strip()
    return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
