"""PodEvidence -> one diagnosis `Facts` per container: Kubernetes' facts in the engine's terms.

Wherever Kubernetes means what a process supervisor means, the fact goes where the existing
rules already look, so they work unchanged: `lastState.terminated` gives the exit code, signal,
OOM flag (`reason: OOMKilled`, whatever the exit code) and run time; a runtime's start failure
(`StartError`, `ContainerCannotRun`, `RunContainerError`) is `spawn_error`; the kubelet's
`Killing ... failed liveness probe` event for the run that ended is the `kill` (so a probe kill
that exits 0 is not `exited_zero`); the previous run's log is the log. What only Kubernetes has
(waiting reasons, the spec's probes, references to ConfigMaps and Secrets, the node's events) is
in `KubeFacts`, for the Kubernetes rules. Evidence is named as a kubectl user sees it:
`status.containerStatuses[api].lastState.terminated.reason`, `event Warning BackOff (x41 over
3h)`, `logs --previous -c api line 12`.

Pure: no clock (`now` is an argument, see `evidence_now`), no I/O. Whatever is missing or
malformed in the pod JSON is skipped, never a traceback: a paste may hold only half a pod.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infraveil.core.diagnosis.clues import MAX_LINES
from infraveil.core.diagnosis.decisive import LogLine
from infraveil.core.diagnosis.facts import (
    EventFact,
    Facts,
    KillFact,
    KubeFacts,
    KubeProbe,
    KubeRef,
    lines_of,
)
from infraveil.core.units import format_duration
from infraveil.k8s.evidence import UNNAMED, PodEvidence

RECENT = 600.0
"""A running container whose last crash ended less than this many seconds ago is still
failing (a crash loop is briefly `Running` between back-offs); an older one is history."""

NOT_READY_AFTER = 60.0
"""A running container still not ready this many seconds after it started is failing."""

FLAPPING = 3
"""This many restarts with a failed last run in the last day: failing, even if ready now."""

_STARTING = frozenset({"ContainerCreating", "PodInitializing", ""})
_START_FAILURES = frozenset(
    {"StartError", "ContainerCannotRun", "RunContainerError", "CreateContainerError"}
)
_RUNTIME_START = re.compile(
    r"failed to (?:create|start) (?:containerd task|shim task|container)|OCI runtime \w+ failed"
    r"|starting container process caused|error during container init|container create failed"
    r"|runc create failed|unable to start container process"
    r"|Error response from daemon: (?:OCI runtime|failed to create|cannot start)",
    re.IGNORECASE,
)
"""A container runtime's words for a start that failed, as the kubelet's `Failed` event
repeats them (`Error: failed to create containerd task: ... exec: "x": permission denied`)."""
_PROBE_KILL = re.compile(r"failed (?P<role>liveness|startup) probe", re.IGNORECASE)
_NAMES_CONTAINER = re.compile(r"\b[Cc]ontainer \"?(?P<name>[a-z0-9][a-z0-9.-]*)\"?[ ,:]")


_NOT_NAMES = frozenset(
    {"image", "runtime", "process", "init", "has", "is", "with", "for", "id", "create", "start"}
    | {"creation", "exited", "died", "failed", "name", "status", "in", "which", "that", "was"}
    | {"created", "started", "killed", "killing", "stopped", "restarted", "ready", "running"}
)
"""Words after "container" in an event that are not a container's name ("Container image")."""
_EVENT_NAMES = re.compile(r"\b[Cc]ontainer \"?(?P<name>[a-z0-9][a-z0-9.-]*)\"?(?=[ ,:]|$)")
_CONTAINER_PATH = re.compile(r"spec\.(?:initContainers|containers)\{(?P<name>[^}]+)\}")

Timed = tuple[EventFact, datetime | None]
"""An event and when it last happened (None when the source did not say)."""


@dataclass
class ContainerView:
    """One container of a pod as the doctor reports it, with the facts the engine reads."""

    name: str
    init: bool
    state: str  # CrashLoopBackOff, Running, Completed, Init:Error's "Error", ...
    ready: bool
    restarts: int
    failing: bool
    facts: Facts
    last_termination: dict[str, Any] | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    timed: tuple[Timed, ...] = ()  # its events with when they last happened

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "init": self.init,
            "state": self.state,
            "ready": self.ready,
            "restarts": self.restarts,
            "failing": self.failing,
            "last_termination": self.last_termination,
        }


def parse_time(value: Any) -> datetime | None:
    """An API timestamp ("2026-11-21T08:00:01Z", with or without fraction), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def evidence_now(evidence: PodEvidence) -> datetime | None:
    """The latest moment the evidence itself records: "now" for a bundle read later, so a
    crash loop collected yesterday is still a crash loop when it is diagnosed today."""
    times: list[datetime] = []
    for e in [*evidence.events, *evidence.node_events]:
        for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
            if (t := parse_time(_dict(e).get(key))) is not None:
                times.append(t)
    status = _dict(evidence.pod.get("status"))
    for s in _statuses(status, "containerStatuses") + _statuses(status, "initContainerStatuses"):
        for part in ("state", "lastState"):
            for st in _dict(s.get(part)).values():
                for key in ("startedAt", "finishedAt"):
                    if (t := parse_time(_dict(st).get(key))) is not None:
                        times.append(t)
    return max(times) if times else None


def parse_quantity(value: Any) -> int | None:
    """Bytes in a Kubernetes quantity ("256Mi", "1G", "1.5Gi", "512000000", "1e9"), or None.

    Unlike infraveil's own sizes, Kubernetes' M and G are decimal; Mi and Gi are binary.
    """
    m = re.fullmatch(r"\s*([0-9.]+(?:[eE][+-]?\d+)?)\s*([KMGTPE]i?|k|m)?\s*", str(value or ""))
    if m is None:
        return None
    try:
        number = float(m[1])
    except ValueError:
        return None
    unit = m[2] or ""
    if unit == "m":
        return int(number / 1000)
    powers = {"k": 1, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
    if unit.endswith("i"):
        return int(number * 1024 ** powers[unit[0]])
    return int(number * 1000 ** powers[unit]) if unit else int(number)


def containers(evidence: PodEvidence, now: datetime | None = None) -> list[ContainerView]:
    """Every container of the pod, init containers first, with its facts.

    Logs given without a container name (`UNNAMED`) are the failing container's (the one that
    failed, else the one that restarted most).
    """
    pod = evidence.pod
    spec, status = _dict(pod.get("spec")), _dict(pod.get("status"))
    now = now or evidence_now(evidence)
    events = [_event(e) for e in evidence.events if isinstance(e, dict)]
    node_events = tuple(ev for _, ev, _ in (_event(e) for e in evidence.node_events if _dict(e)))
    names = {
        str(_dict(c).get("name"))
        for key in ("containers", "initContainers")
        for c in _list(spec.get(key))
    }
    views: list[ContainerView] = []
    for init, spec_key, status_key in (
        (True, "initContainers", "initContainerStatuses"),
        (False, "containers", "containerStatuses"),
    ):
        by_name = {str(s.get("name")): s for s in _statuses(status, status_key)}
        specs = [_dict(c) for c in _list(spec.get(spec_key))]
        # a status without a spec (a paste with only the status) still counts
        known = {str(c.get("name")) for c in specs}
        specs += [{"name": n} for n in by_name if n not in known]
        for c in specs:
            name = str(c.get("name") or "")
            mine = tuple((ev, t) for path, ev, t in events if _about(path, ev, name, names))
            views.append(
                _view(evidence, c, by_name.get(name, {}), init, status_key, mine, node_events, now)
            )
    if not views:
        views = _from_logs_and_events(evidence, events, node_events, now)
    _give_unnamed_logs(evidence, views, now)
    return views


def _from_logs_and_events(
    evidence: PodEvidence,
    events: list[tuple[str, EventFact, datetime | None]],
    node_events: tuple[EventFact, ...],
    now: datetime | None,
) -> list[ContainerView]:
    """Containers known only by their logs or events (a paste without the pod): each is taken
    to be the one that failed, since that is what a person pastes. A pod whose own status says
    why it failed (`Evicted`, with its message) but lists no container is one unnamed container
    too, so the pod-level cause is diagnosed rather than "nothing to diagnose"."""
    names = list(dict.fromkeys([*evidence.previous_logs, *evidence.current_logs]))
    paths = list(
        dict.fromkeys(m["name"] for path, _, _ in events if (m := _CONTAINER_PATH.match(path)))
    )
    if not names and len(paths) > 1:
        # events naming several containers by field path: one container each, with its own
        # events; those with a warning are the ones failing (all, if none has one)
        many = [
            _view(
                evidence,
                {"name": name},
                {},
                False,
                "containerStatuses",
                tuple((ev, t) for path, ev, t in events if _about(path, ev, name, set(paths))),
                node_events,
                now,
            )
            for name in paths
        ]
        warned = [v for v in many if any(ev.warning for ev, _ in v.timed)]
        for v in warned or many:
            v.failing = True
        return many
    if not names:  # the container the events name (`spec.containers{mongo}`, `Container
        # mongo failed liveness probe`), if they name only one
        said = {
            m["name"]
            for _, ev, _ in events
            for m in _EVENT_NAMES.finditer(ev.message)
            if m["name"] not in _NOT_NAMES
        }
        names = list(paths) if len(paths) == 1 else list(said) if len(said) == 1 else []
    status = _dict(evidence.pod.get("status"))
    pod_said = (
        bool(status.get("reason") or status.get("message")) or status.get("phase") == "Failed"
    )
    if not names and not events and not node_events and not pod_said:
        return []
    views = []
    for name in names or [UNNAMED]:
        timed = tuple((ev, t) for _, ev, t in events)
        view = _view(
            evidence, {"name": name}, {}, False, "containerStatuses", timed, node_events, now
        )
        view.failing = True
        views.append(view)
    return views


def _give_unnamed_logs(
    evidence: PodEvidence, views: list[ContainerView], now: datetime | None
) -> None:
    if UNNAMED not in evidence.previous_logs and UNNAMED not in evidence.current_logs:
        return
    if not views:
        return
    target = next((v for v in views if v.failing), None) or max(views, key=lambda v: v.restarts)
    if any(target.name in logs for logs in (evidence.previous_logs, evidence.current_logs)):
        return
    logs = PodEvidence(
        evidence.pod,
        previous_logs={target.name: evidence.previous_logs.get(UNNAMED, "")},
        current_logs={target.name: evidence.current_logs.get(UNNAMED, "")},
    )
    spec = target.spec or {"name": target.name}
    status = _status_of(evidence.pod, target.name, target.init)
    rebuilt = _view(
        logs,
        spec,
        status,
        target.init,
        "initContainerStatuses" if target.init else "containerStatuses",
        target.timed,
        target.facts.kube.node_events if target.facts.kube else (),
        now,
        log_name="logs",
    )
    views[views.index(target)] = rebuilt


def _status_of(pod: dict[str, Any], name: str, init: bool) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    for s in _statuses(_dict(pod.get("status")), key):
        if s.get("name") == name:
            return s
    return {}


def _view(
    evidence: PodEvidence,
    spec: dict[str, Any],
    status: dict[str, Any],
    init: bool,
    status_key: str,
    timed: tuple[Timed, ...],
    node_events: tuple[EventFact, ...],
    now: datetime | None,
    log_name: str = "",
) -> ContainerView:
    pod = evidence.pod
    events = tuple(e for e, _ in timed)
    pod_spec, pod_status = _dict(pod.get("spec")), _dict(pod.get("status"))
    name = str(spec.get("name") or status.get("name") or "")
    path = f"status.{status_key}[{name or '(unnamed)'}]"
    state, last = _dict(status.get("state")), _dict(status.get("lastState"))
    waiting, running = _dict(state.get("waiting")), _dict(state.get("running"))
    # the run diagnosed: the one that just ended, else the one before (what a crash loop shows)
    term, term_path, logs_key = _dict(state.get("terminated")), f"{path}.state.terminated", "cur"
    if not term:
        term, term_path, logs_key = (
            _dict(last.get("terminated")),
            f"{path}.lastState.terminated",
            "prev",
        )
    restarts = _int(status.get("restartCount")) or 0
    ready = bool(status.get("ready"))
    shown_term = term
    finished = parse_time(term.get("finishedAt"))
    not_ready_now = running and not ready and logs_key == "prev" and _readiness_failing(events)
    if not_ready_now and not _recent(finished, now):
        term = {}  # not ready now is the problem; a crash a moment ago would be (a crash loop)
    started, finished = parse_time(term.get("startedAt")), parse_time(term.get("finishedAt"))
    if started is not None and started.year < 2000:
        started = None  # the runtime's zero time: the container never started
    ran = (finished - started).total_seconds() if started and finished else None
    reason = str(term.get("reason") or "")
    exit_code = _int(term.get("exitCode"))
    signal = _int(term.get("signal")) or None
    waiting_reason = str(waiting.get("reason") or "")
    waiting_message = str(waiting.get("message") or "")
    pod_reason = str(pod_status.get("reason") or "")

    # the state as `kubectl get pod` words it
    if waiting:
        shown = waiting_reason or "Waiting"
    elif running:
        shown = "Running"
    elif state.get("terminated"):
        shown = reason or ("Completed" if exit_code == 0 else "Error")
    else:
        shown = pod_reason or "Unknown"

    live = bool(running) and not term
    probes = _probes(spec)
    kill = None if live else _kill(timed, started, probes, exit_code if term else None)
    security = {**_dict(pod_spec.get("securityContext")), **_dict(spec.get("securityContext"))}
    limits = _dict(_dict(spec.get("resources")).get("limits"))
    requests = _dict(_dict(spec.get("resources")).get("requests"))

    # which log belongs to the run diagnosed, and how to name it
    previous = evidence.previous_logs.get(name)
    current = evidence.current_logs.get(name)
    # (`kubectl logs` of a pod without -c: a paste that did not name its container)
    c_opt = f" -c {name}" if name else ""
    if term and logs_key == "prev":
        chosen = [(previous, f"logs --previous{c_opt}"), (current, f"logs{c_opt}")]
    else:
        chosen = [(current, f"logs{c_opt}"), (previous, f"logs --previous{c_opt}")]
    text, source = next(((t, s) for t, s in chosen if t), ("", ""))
    if text and log_name:
        source = log_name
    spawn_error, spawn_source = "", "exec"
    message = str(term.get("message") or "")
    if reason in _START_FAILURES and message:
        spawn_error, spawn_source = message, f"{term_path}.message"
    elif waiting_reason in _START_FAILURES and waiting_message:
        spawn_error, spawn_source = waiting_message, f"{path}.state.waiting.message"
    elif (started_late := _start_failed_event(events, reason, exit_code)) is not None:
        # the runtime's message only in the events (a paste of them without the status)
        spawn_error, spawn_source = started_late.message, started_late.source
    if not spawn_error and not text and message.strip():
        # terminationMessagePolicy FallbackToLogsOnError, or the program's own message
        text, source = message, f"{term_path}.message"

    facts = Facts(
        exit_code=exit_code,
        signal=signal,
        oom_killed=reason == "OOMKilled",
        spawn_error=spawn_error,
        spawn_source=spawn_source,
        memory_limit=parse_quantity(limits.get("memory")) if "memory" in limits else None,
        run_seconds=ran if ran is not None and ran >= 0 else None,
        became_ready=_became_ready(live, ready, ran, kill, probes, pod_spec),
        kill=kill,
        log=_tail(text),
        log_source=source,
        log_truncated=text.count("\n") >= MAX_LINES,
        events=events,
        command=tuple(str(a) for a in [*_list(spec.get("command")), *_list(spec.get("args"))]),
        ports=tuple(
            p for c in _list(spec.get("ports")) if (p := _int(_dict(c).get("containerPort")))
        ),
        long_running=not init and str(pod_spec.get("restartPolicy") or "Always") == "Always",
        live=live,
        kube=KubeFacts(
            pod=evidence.name,
            namespace=evidence.namespace,
            container=name,
            init=init,
            image=str(spec.get("image") or status.get("image") or ""),
            status_path=path,
            waiting_reason=waiting_reason,
            waiting_message=waiting_message,
            terminated_reason=reason,
            terminated_message=message,
            terminated_path=term_path,
            terminated_pasted=_pasted(status, "state" if logs_key == "cur" else "lastState"),
            restarts=restarts,
            pod_phase=str(pod_status.get("phase") or ""),
            pod_reason=pod_reason,
            pod_message=str(pod_status.get("message") or ""),
            node=str(pod_spec.get("nodeName") or ""),
            probes=probes,
            limits=tuple((str(k), str(v)) for k, v in limits.items()),
            requests=tuple((str(k), str(v)) for k, v in requests.items()),
            refs=_refs(spec, pod_spec),
            mounts=tuple(
                (str(_dict(m).get("name")), str(_dict(m).get("mountPath")))
                for m in _list(spec.get("volumeMounts"))
            ),
            run_as_non_root=security.get("runAsNonRoot")
            if isinstance(security.get("runAsNonRoot"), bool)
            else None,
            run_as_user=_int(security.get("runAsUser")),
            fs_group=_int(_dict(pod_spec.get("securityContext")).get("fsGroup")),
            image_pull_secrets=tuple(
                str(_dict(s).get("name")) for s in _list(pod_spec.get("imagePullSecrets"))
            ),
            node_events=node_events,
            owner=evidence.owners[-1] if evidence.owners else "",
            status_known=bool(status),
        ),
    )
    last_termination = _termination(shown_term) if shown_term else None
    failing = _failing(
        waiting_reason,
        bool(state.get("terminated")),
        reason,
        exit_code if term else None,
        bool(running),
        ready,
        restarts,
        parse_time(running.get("startedAt")),
        finished,
        events,
        pod_reason,
        now,
    )
    return ContainerView(
        name, init, shown, ready, restarts, failing, facts, last_termination, spec, timed
    )


def _start_failed_event(
    events: tuple[EventFact, ...], reason: str, exit_code: int | None
) -> EventFact | None:
    """The kubelet's event repeating the runtime's start failure, for a run that did not end
    by an exit of its own (no termination known, a start failure, or 126-128)."""
    if reason and reason not in _START_FAILURES and exit_code not in (None, 126, 127, 128):
        return None
    return next(
        (e for e in events if e.warning and _RUNTIME_START.search(e.message) is not None), None
    )


def _termination(t: dict[str, Any]) -> dict[str, Any]:
    """A `terminated` state as the report shows it."""
    started, finished = parse_time(t.get("startedAt")), parse_time(t.get("finishedAt"))
    seconds = None
    if started and finished and started.year >= 2000 and finished >= started:
        seconds = (finished - started).total_seconds()
    return {
        "reason": str(t.get("reason") or "") or None,
        "exit_code": _int(t.get("exitCode")),
        "signal": _int(t.get("signal")) or None,
        "message": str(t.get("message") or "") or None,
        "started": t.get("startedAt"),
        "finished": t.get("finishedAt"),
        "seconds": seconds,
    }


def _recent(finished: datetime | None, now: datetime | None) -> bool:
    return finished is not None and now is not None and (now - finished).total_seconds() < RECENT


def _readiness_failing(events: tuple[EventFact, ...]) -> bool:
    return any("Readiness probe failed" in e.message for e in events)


def _tail(text: str) -> tuple[LogLine, ...]:
    """The last lines of a log, numbered as in the whole log (the engine reads no more)."""
    if not text:
        return ()
    lines = text.split("\n", text.count("\n") - MAX_LINES) if text.count("\n") > MAX_LINES else None
    if lines is None:
        return lines_of(text)
    skipped = len(lines) - 1
    return lines_of(lines[-1], first=skipped + 1)


def _failing(
    waiting_reason: str,
    ended: bool,
    reason: str,
    exit_code: int | None,
    running: bool,
    ready: bool,
    restarts: int,
    started: datetime | None,
    finished: datetime | None,
    events: tuple[EventFact, ...],
    pod_reason: str,
    now: datetime | None,
) -> bool:
    """Whether this container is failing now (a past restart of a healthy one is history)."""
    if pod_reason == "Evicted":
        return True
    if waiting_reason and waiting_reason not in _STARTING:
        return True
    if ended:
        return exit_code not in (0, None) or reason not in ("Completed", "")
    warned = any(e.warning for e in events)
    if (
        not running
        and not waiting_reason
        and (finished is not None or exit_code is not None or reason not in ("", "Completed"))
    ):
        return True  # only its last termination is known (a paste of part of describe)
    if not running:
        # waiting to be created (a volume that will not mount, a sandbox without a network),
        # or no state at all
        return warned and waiting_reason != "PodInitializing"
    if not ready and _readiness_failing(events):
        return True
    if not ready and started and now and (now - started).total_seconds() > NOT_READY_AFTER:
        return True  # running for a while and still not ready
    if restarts:
        age = (now - finished).total_seconds() if now and finished else None
        if any(e.reason == "BackOff" and e.warning for e in events):
            return True  # still backing off between crashes
        if restarts >= FLAPPING and reason != "Completed" and (age is None or age < 86400):
            return True  # ready now, but it keeps restarting
        if ready:
            return False  # up and ready since: the crash is history
        return _recent(finished, now) or (finished is None and warned)
    return False


def _became_ready(
    live: bool,
    ready: bool,
    ran: float | None,
    kill: KillFact | None,
    probes: tuple[KubeProbe, ...],
    pod_spec: dict[str, Any],
) -> bool:
    """Whether the run diagnosed was up before it ended. Kubernetes does not record it for a
    past run, so it is inferred: liveness checks only start after a startup probe succeeded,
    and a run much longer than the earliest a liveness probe can kill it passed that probe
    for a while (a kill at the earliest moment never passed it: a slow start)."""
    if live:
        return ready
    if kill is None or kill.reason != "liveness":
        return False
    if any(p.role == "startup" for p in probes):
        return True
    liveness = next((p for p in probes if p.role == "liveness"), None)
    if liveness is None or ran is None:
        return False
    grace = _int(pod_spec.get("terminationGracePeriodSeconds"))
    latest = (
        liveness.first_kill
        + liveness.timeout * liveness.failure_threshold
        + (30 if grace is None else grace)
        + liveness.period
    )
    return ran > latest


def _kill(
    timed: tuple[Timed, ...],
    started: datetime | None,
    probes: tuple[KubeProbe, ...],
    exit_code: int | None,
) -> KillFact | None:
    """The kubelet's probe kill of the run that ended (a kill only of earlier runs is not it:
    its last time is before this run started). An old kubelet (or a paste of part of the
    events) may show only the liveness failures: `failureThreshold` of them in a row is a
    kill, when the run did not end some other way (an exit code of its own)."""
    for e, last in reversed(timed):
        m = _PROBE_KILL.search(e.message)
        if m is None:
            continue
        if last is not None and started is not None and (started - last).total_seconds() > 2:
            continue
        role = m["role"].lower()
        return KillFact("liveness" if role == "liveness" else "deadline", e.message, e.source)
    if exit_code not in (None, 0, 137, 143) or any(_PROBE_KILL.search(e.message) for e, _ in timed):
        return None  # it ended by itself, or the kills seen were of earlier runs
    liveness = next((p for p in probes if p.role == "liveness"), None)
    threshold = liveness.failure_threshold if liveness else 3
    for e, _ in reversed(timed):
        if e.message.startswith("Liveness probe failed") and e.count >= threshold:
            detail = (
                f"the liveness probe failed {e.count} times; after {threshold} in a row"
                " (failureThreshold) the kubelet restarts the container"
            )
            return KillFact("liveness", detail, e.source)
    return None


def _probes(spec: dict[str, Any]) -> tuple[KubeProbe, ...]:
    found = []
    for role in ("startup", "liveness", "readiness"):
        p = _dict(spec.get(f"{role}Probe"))
        if not p:
            continue
        handler = {k: v for k, v in p.items() if k in ("httpGet", "tcpSocket", "exec", "grpc")}
        found.append(
            KubeProbe(
                role,
                handler,
                _int(p.get("initialDelaySeconds")) or 0,
                _int(p.get("periodSeconds")) or 10,
                _int(p.get("timeoutSeconds")) or 1,
                _int(p.get("failureThreshold")) or 3,
            )
        )
    return tuple(found)


def _refs(spec: dict[str, Any], pod_spec: dict[str, Any]) -> tuple[KubeRef, ...]:
    refs: list[KubeRef] = []
    for env in _list(spec.get("env")):
        source = _dict(_dict(env).get("valueFrom"))
        for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            ref = _dict(source.get(key))
            if ref:
                refs.append(
                    KubeRef(
                        kind,
                        str(ref.get("name") or ""),
                        str(ref.get("key") or ""),
                        f"env {_dict(env).get('name')}",
                        bool(ref.get("optional")),
                    )
                )
    for src in _list(spec.get("envFrom")):
        for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = _dict(_dict(src).get(key))
            if ref:
                refs.append(
                    KubeRef(
                        kind, str(ref.get("name") or ""), "", "envFrom", bool(ref.get("optional"))
                    )
                )
    mounted = {str(_dict(m).get("name")) for m in _list(spec.get("volumeMounts"))}
    for volume in _list(pod_spec.get("volumes")):
        v = _dict(volume)
        if str(v.get("name")) not in mounted:
            continue
        cm, secret = _dict(v.get("configMap")), _dict(v.get("secret"))
        if cm:
            name = str(cm.get("name") or "")
            refs.append(
                KubeRef("ConfigMap", name, "", f"volume {v.get('name')}", bool(cm.get("optional")))
            )
        if secret:
            name = str(secret.get("secretName") or "")
            refs.append(
                KubeRef("Secret", name, "", f"volume {v.get('name')}", bool(secret.get("optional")))
            )
    return tuple(refs)


def _event(e: dict[str, Any]) -> tuple[str, EventFact, datetime | None]:
    """(the field path it is about, the event as a fact named as kubectl shows it)."""
    involved = _dict(e.get("involvedObject")) or _dict(e.get("regarding"))
    path = str(involved.get("fieldPath") or "")
    kind = str(e.get("type") or "")
    reason = str(e.get("reason") or "")
    message = str(e.get("message") or e.get("note") or "")
    count = (
        _int(e.get("count"))
        or _int(_dict(e.get("series")).get("count"))
        or _int(e.get("deprecatedCount"))
        or 1
    )
    first = parse_time(e.get("firstTimestamp")) or parse_time(e.get("deprecatedFirstTimestamp"))
    last = (
        parse_time(e.get("lastTimestamp"))
        or parse_time(_dict(e.get("series")).get("lastObservedTime"))
        or parse_time(e.get("eventTime"))
    )
    source = " ".join(p for p in ("event", kind, reason) if p)
    if count > 1:
        over = ""
        if first is not None and last is not None and last > first:
            over = f" over {format_duration((last - first).total_seconds())}"
        source += f" (x{count}{over})"
    fact = EventFact(reason, message, source, count, kind.lower() == "warning")
    return path, fact, last


def _about(path: str, event: EventFact, name: str, names: set[str]) -> bool:
    """Whether an event of the pod is about this container: its field path names it, or,
    without one (describe text, pod-level events), its message names no other container."""
    if path:
        m = re.match(r"spec\.(initContainers|containers)\{(?P<name>[^}]*)\}", path)
        return m is None or m["name"] == name
    m = _NAMES_CONTAINER.search(event.message)
    return m is None or m["name"] == name or m["name"] not in names


def _pasted(status: dict[str, Any], key: str) -> tuple[str, ...]:
    """A termination's field lines as pasted in describe text (the parser keeps them beside
    the status, under `x-describe`)."""
    lines = _dict(_dict(status.get("x-describe")).get(key))
    return tuple(str(lines[k]) for k in ("reason", "exitCode", "signal") if lines.get(k))


def _statuses(status: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [s for s in _list(status.get(key)) if isinstance(s, dict)]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None
