"""Facts for the diagnosis engine, from what the agent knows about an instance.

The engine (core/diagnosis) is pure; this module reads what it needs: the end of the
instance's log (bounded: `store.logs.TAIL_BYTES`), its recorded probe results, how the agent
ended it if it did, its memory figures, its dependencies' readiness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from infraveil.core.diagnosis.decisive import LogLine
from infraveil.core.diagnosis.facts import (
    DependencyFact,
    Facts,
    KillFact,
    PreflightProblem,
    ProbeFact,
)
from infraveil.core.exitstatus import ExitStatus
from infraveil.core.lifecycle import ServiceRecord
from infraveil.core.spec import ServiceSpec
from infraveil.store.logs import MARK, parse_line, read_tail

_ROLE = {"startup": "startup", "ready": "readiness", "health": "liveness"}
"""Probe phases (daemon/probing.py) by the names people know them by."""
_KILL = {"liveness": "liveness", "deadline": "deadline", "oom": "memory"}
"""The lifecycle's kill signatures (core/lifecycle.py) by the kind of kill."""


def log_facts(path: Path) -> tuple[tuple[LogLine, ...], bool]:
    """The instance's last lines (its own output only, numbered as in the file), and whether
    the log had more before them. A missing or unreadable log is no lines."""
    try:
        tail = read_tail(path)
    except OSError:
        return (), False
    first = tail.first_number or 1
    lines: list[LogLine] = []
    for i, raw in enumerate(tail.lines):
        line = parse_line(raw)
        if line.stream != MARK.decode():
            lines.append(LogLine(first + i, line.text))
    return tuple(lines), tail.truncated


def probe_facts(probes: Mapping[str, Any] | None) -> tuple[ProbeFact, ...]:
    """The last result of each check, from the probe history the agent keeps (history_json)."""
    facts: list[ProbeFact] = []
    for phase, data in (probes or {}).items():
        history: Sequence[Mapping[str, Any]] = data.get("history") or []
        if not history:
            continue
        last = history[-1]
        failures = 0
        for result in reversed(history):
            if result.get("ok"):
                break
            failures += 1
        target = str(data.get("target", ""))
        detail = str(last.get("detail", ""))
        facts.append(
            ProbeFact(
                role=_ROLE.get(phase, phase),
                kind=_kind(target),
                target=target,
                ok=bool(last.get("ok")),
                detail=detail,
                refused=detail.startswith("nothing listening"),
                failures=failures,
            )
        )
    return tuple(facts)


def _kind(target: str) -> str:
    if target.startswith("GET "):
        return "http"
    if target.startswith("TCP "):
        return "tcp"
    if target.startswith("exec "):
        return "exec"
    return "notify" if target == "sd_notify" else ""


def dependency_facts(
    spec: ServiceSpec, records: Mapping[str, ServiceRecord]
) -> list[DependencyFact]:
    """The service's `depends_on`, each with whether it is ready now."""
    return [
        DependencyFact(d, records[d].ready, str(records[d].state))
        for d in spec.depends_on
        if d in records
    ]


def kill_fact(record: ServiceRecord) -> KillFact | None:
    """How the agent ended the instance, if it did (set while it was being stopped)."""
    if not record.kill_reason:
        return None
    kind = record.kill_signature.split("|", 1)[0]
    return KillFact(_KILL.get(kind, kind), record.kill_reason)


def exit_facts(
    spec: ServiceSpec,
    record: ServiceRecord,
    *,
    number: int,
    status: ExitStatus,
    log_path: Path,
    run_seconds: float,
    oom: bool,
    memory_limit: int | None,
    peak_memory: int | None,
    probes: Mapping[str, Any] | None,
    dependencies: Sequence[DependencyFact],
) -> Facts:
    """Everything known about an instance that just ended."""
    return _instance_facts(
        spec,
        record,
        log_path,
        probes,
        dependencies,
        instance=number,
        exit_code=status.code,
        signal=status.signal,
        core_dumped=status.core_dumped,
        exit_unknown=status.unknown,
        oom_killed=oom,
        memory_limit=memory_limit,
        peak_memory=peak_memory,
        run_seconds=run_seconds,
        typical_boot=record.typical_boot,
        kill=kill_fact(record),
    )


def live_facts(
    spec: ServiceSpec,
    record: ServiceRecord,
    *,
    log_path: Path,
    probes: Mapping[str, Any] | None,
    dependencies: Sequence[DependencyFact],
) -> Facts:
    """A running instance that is not ready or not healthy (`why` on a live service)."""
    return _instance_facts(
        spec, record, log_path, probes, dependencies, instance=record.instance, live=True
    )


def _instance_facts(
    spec: ServiceSpec,
    record: ServiceRecord,
    log_path: Path,
    probes: Mapping[str, Any] | None,
    dependencies: Sequence[DependencyFact],
    **facts: Any,
) -> Facts:
    lines, truncated = log_facts(log_path)
    return Facts(
        service=spec.name,
        became_ready=record.running_since is not None,
        log=lines,
        log_source=str(log_path),
        log_truncated=truncated,
        probes=probe_facts(probes),
        dependencies=tuple(dependencies),
        command=spec.command,
        ports=_ports(spec),
        **facts,
    )


def start_facts(
    spec: ServiceSpec,
    *,
    number: int,
    spawn_error: str = "",
    preflight: Sequence[PreflightProblem] = (),
    dependencies: Sequence[DependencyFact] = (),
) -> Facts:
    """What is known about an instance that could not be started."""
    return Facts(
        service=spec.name,
        instance=number,
        spawn_error=spawn_error,
        preflight=tuple(preflight),
        dependencies=tuple(dependencies),
        command=spec.command,
        ports=_ports(spec),
    )


def _ports(spec: ServiceSpec) -> tuple[int, ...]:
    checks = (spec.health, spec.ready)
    ports = {c.port for c in checks if c is not None and c.port is not None}
    if spec.port is not None:
        ports.add(spec.port)
    return tuple(sorted(ports))
