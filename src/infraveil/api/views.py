"""The JSON shapes of the API. Field names here are stable: add fields, never rename them.

Each function turns immutable agent data into plain dicts; the field list of each shape is
documented in docs/reference/api.md (generated from `SCHEMAS` below).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from infraveil.core.checks import CheckKind, CheckSpec
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.lifecycle import State
from infraveil.core.spec import ServiceSpec
from infraveil.daemon.agent import ServiceView, Snapshot
from infraveil.daemon.diagnosing import dependency_facts, live_facts
from infraveil.daemon.probing import history_json
from infraveil.runtime.environment import known_secrets, secret_names
from infraveil.store.db import InstanceRow
from infraveil.store.logs import LogFiles

SCHEMAS: dict[str, dict[str, str]] = {
    "ServiceStatus": {
        "name": "service name",
        "state": "pending | starting | running | stopping | stopped | backoff | failed",
        "ready": "true once started and while its readiness check passes (dependants wait"
        " for this)",
        "pid": "pid of the current instance's main process, or null",
        "instance": "number of the latest instance (1 for the first start; 0 never started)",
        "uptime": "seconds since the current instance started, or null",
        "restarts": "starts made by the restart policy after failures",
        "last_exit": "how the previous instance ended: {code, signal, core_dumped, unknown, text}",
        "oom_killed": "true when the previous instance was killed for its memory use",
        "reason": "why the service is in its state, in a few words",
        "waiting_for": "dependencies that are not ready",
        "degraded": "why its failing liveness check is not restarting it, or null",
        "halted": "true when it failed the same way again and again and is not restarted"
        " (state failed)",
        "retry_in": "seconds until the next start while backing off or halted, or null",
        "memory": "resident bytes of the whole process group (sampled), or null",
        "peak_memory": "highest resident bytes of the current instance so far, or null",
        "memory_limit": "the `memory` limit in bytes, or null",
        "diagnosis": "the category of the last failure (see `infraveil why`), or null",
        "release": "the version of the release it runs, or null (it runs its manifest entry)",
        "deploying": "the phase of a deploy under way (verifying, preflight, starting,"
        " soaking, watching, rolling_back), or null",
        "root_by_default": "true when it runs as root only because the agent does and it sets"
        " no `user` (`status` and `check` warn: give it one)",
    },
    "Health": {
        "checks": "the live instance's probes by phase (startup, ready, health): {target,"
        " passing, probes, history: [{time, ok, detail}]}",
        "startup_deadline": "the next boot's deadline and where it comes from, or null",
        "memory_enforced_by": "cgroup | watchdog (the RSS watchdog), or null",
        "notify_status": "the last STATUS= the service sent over sd_notify, or null",
    },
    "Instance": {
        "number": "instance number",
        "pid": "main process id",
        "started": "start time, seconds since the epoch",
        "ended": "end time, or null while running",
        "duration": "seconds it ran, or null while running",
        "exit": "{code, signal, core_dumped, unknown, text}, or null while running",
        "peak_memory": "highest resident bytes: its cgroup's exact peak, else the larger of the"
        " kernel's figure for its largest process (wait4) and the sampled group total",
        "memory_limit": "its memory limit in bytes, or null",
        "oom_killed": "true when it was killed for using more memory than allowed",
        "command": "the argv it ran",
        "error": "why it could not be started at all, or null",
        "failure": "why it failed, as the lifecycle said it (null for a requested stop)",
        "probes": "its probe results by phase, kept when it ended: {target, passing, probes,"
        " history}",
        "diagnosis": "why it failed: Diagnosis, or null (running, or stopped on request)",
    },
    "Diagnosis": {
        "category": "what kind of failure: a stable id (oom_killed, missing_env,"
        " config_invalid, ..., unknown); see docs/guides/why.md",
        "summary": "what happened, in one sentence",
        "evidence": "[{source, text}]: the decisive evidence quoted verbatim, with where it is"
        " (log file and line, exit status, a check's result, preflight)",
        "fix": "what a person can do now",
        "confidence": "high | medium | low",
        "deterministic": "true when retrying as-is cannot help (it halts after three);"
        " false for transient failures (they back off and retry)",
        "confirm": "what would confirm it when confidence is not high, or null",
        "others": "[{category, summary, confidence}]: other findings that also apply",
    },
    "Event": {
        "id": "increasing id",
        "time": "seconds since the epoch",
        "service": "service name, or null for the agent's own events",
        "instance": "instance number, or null",
        "type": "normal | warning",
        "reason": "one CamelCase word: Started, Ready, Exited, BackOff, Halted, Unhealthy, ...",
        "message": "what happened, in a sentence",
    },
    "Release": {
        "version": "its label (v1, v2, … unless --version named it)",
        "sha256": "the payload's sha256, or null (a release of the manifest entry only)",
        "size": "the payload archive's size in bytes, or null",
        "created": "when it was first deployed, seconds since the epoch",
        "outcome": "deploying | live (promoted, being watched) | good (passed its gate and"
        " watch) | rejected (failed verify or preflight: nothing was touched) | failed (failed"
        " its gate or watch) | superseded (promoted, but another deploy replaced it before its"
        " watch was over) | baseline (what ran before the first deploy)",
        "message": "the deploy's sentence for a release that failed, or empty",
        "diagnosis": "why it failed its gate: Diagnosis, or null",
        "current": "true for the release the service runs",
        "known_good": "true for the release a failed deploy rolls back to",
    },
    "DeployStep": {
        "type": "step",
        "service": "service name",
        "version": "the release going through the gate",
        "step": "verify | preflight | start | healthy | soak | promote | watch | failed |"
        " rollback | rolled back | rollback failed",
        "message": "what happened at this step",
        "warning": "true for a failure",
        "elapsed": "seconds since the deploy began",
    },
    "DeployVerdict": {
        "type": "verdict",
        "service": "service name",
        "version": "the release that was deployed (or rolled back to)",
        "kind": "deploy | rollback",
        "sha256": "the payload's sha256, or null",
        "outcome": "live | rejected | rolled_back | failed | rollback_failed | unchanged",
        "live": "true only when the new release is live",
        "previous": "the release that was current when the deploy began, or null",
        "known_good": "the release a failure rolls back to, or null",
        "sentence": "the verdict in one sentence, as the CLI prints it",
        "failure": "{what, evidence, category, instance, diagnosis} of the failure, or null",
        "rollback_failure": "the same, for a known-good that failed too, or null",
        "evidence": "the decisive evidence quoted, or empty",
        "elapsed": "seconds from the request to the verdict",
        "deploy": "the deploy's id",
    },
    "LogLine": {
        "time": "when infraveil read the line (UTC, RFC 3339)",
        "stream": "out for the service's output (stdout and stderr), ivl for infraveil's markers",
        "text": "the line",
    },
}


def service_status(view: ServiceView, now_mono: float | None = None) -> dict[str, Any]:
    """The status row; what the record says in words may quote a secret, which is masked."""
    record = view.record
    mask = known_secrets().text
    now_mono = time.monotonic() if now_mono is None else now_mono
    retry_in = None
    if record.retry_at is not None:
        retry_in = round(max(0.0, record.retry_at - now_mono), 3)
    return {
        "name": record.name,
        "state": str(record.state),
        "ready": record.ready,
        "pid": record.pid,
        "instance": record.instance,
        "uptime": round(time.time() - view.started_wall, 3) if view.started_wall else None,
        "restarts": record.restarts,
        "last_exit": record.last_exit.as_dict() if record.last_exit else None,
        "oom_killed": record.oom_killed,
        "reason": mask(record.reason),
        "waiting_for": list(record.waiting_for),
        "retry_in": retry_in,
        "memory": view.rss,
        "peak_memory": view.peak_rss,
        "degraded": mask(record.degraded) or None,
        "halted": record.state is State.FAILED,
        "memory_limit": view.memory_limit,
        "diagnosis": record.diagnosis or None,
        "release": view.release,
        "deploying": view.deploying or None,
        "root_by_default": root_by_default(view.spec),
    }


def root_by_default(spec: ServiceSpec) -> bool:
    """It runs as root because the agent does, not because its manifest entry asks to."""
    return spec.user is None and os.geteuid() == 0


def health(view: ServiceView) -> dict[str, Any]:
    """How the service's health is watched and what the checks of its live instance found.

    Masked: a probe's detail quotes what an exec check printed, and STATUS= is the service's.
    """
    return _masked(
        {
            "checks": history_json(view.checks),
            "startup_deadline": view.deadline or None,
            "memory_enforced_by": view.memory_enforced_by or None,
            "notify_status": view.notify_status or None,
        }
    )


def check_json(check: CheckSpec | None) -> dict[str, Any] | None:
    if check is None:
        return None
    out: dict[str, Any] = {"kind": str(check.kind), "target": check.target()}
    if check.kind is not CheckKind.NOTIFY:
        out |= {"interval": check.interval, "timeout": check.timeout}
    if check.watchdog is not None:
        out["watchdog"] = check.watchdog
    if check.implied:
        out["implied_by_port"] = True
    return out


def spec_json(spec: ServiceSpec) -> dict[str, Any]:
    """The manifest entry, with its secret env values masked (the process has the real ones)."""
    masker = known_secrets()
    return {
        "command": [masker.text(word) for word in spec.command],
        "cwd": spec.cwd,
        "env": masker.env(spec.env, secret_names(spec)),
        "env_file": spec.env_file,
        "secrets": spec.secrets,
        "user": spec.user,
        "port": spec.port,
        "depends_on": list(spec.depends_on),
        "stop_signal": signal.Signals(spec.stop_signal).name,
        "stop_timeout": spec.stop_timeout,
        "health": check_json(spec.health),
        "ready": check_json(spec.readiness),
        "startup_deadline": spec.startup_deadline,
        "memory": spec.memory,
    }


def agent_info(snapshot: Snapshot, version: str) -> dict[str, Any]:
    return {
        "pid": snapshot.pid,
        "version": version,
        "started": snapshot.started_wall,
        "state_dir": snapshot.state_dir,
        "manifest": snapshot.manifest,
        "stopping": snapshot.stopping,
        "cgroups": snapshot.cgroups,
    }


def why_of_instance(name: str, row: InstanceRow) -> dict[str, Any]:
    """The diagnosis of one instance, or what it was if it did not fail."""
    return _masked(_why_of_instance(name, row))


def _why_of_instance(name: str, row: InstanceRow) -> dict[str, Any]:
    base = {"service": name, "instance": row.number}
    if row.diagnosis is not None:
        return {**base, "healthy": False, **row.diagnosis}
    if row.ended is None:
        what = f"instance {row.number} of {name} is running"
    elif row.exit is not None and not row.failure:
        what = f"instance {row.number} of {name} was stopped on request ({row.exit.describe()})"
    else:
        what = f"instance {row.number} of {name} ended before diagnoses were kept"
    return {**base, "healthy": row.ended is None, "summary": f"{what}: nothing to explain."}


def why_now(
    view: ServiceView, snapshot: Snapshot, instances: list[InstanceRow], logs: LogFiles
) -> dict[str, Any]:
    """The latest failure while the service is failing, the live problem while it runs but is
    not ready or is degraded, else "healthy" with the last failure it had, if any.

    Masked like everything shown: a live diagnosis quotes log lines that were never stored.
    """
    return _masked(_why_now(view, snapshot, instances, logs))


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    masked: dict[str, Any] = known_secrets().json(data)
    return masked


def _why_now(
    view: ServiceView, snapshot: Snapshot, instances: list[InstanceRow], logs: LogFiles
) -> dict[str, Any]:
    record = view.record
    name = record.name
    latest = next((i for i in instances if i.diagnosis is not None), None)
    failing = record.state in (State.BACKOFF, State.FAILED) or (
        record.state in (State.PENDING, State.STARTING) and record.diagnosis
    )
    if failing and latest is not None:
        stored = latest.diagnosis or {}
        return {"service": name, "instance": latest.number, "healthy": False, **stored}
    if record.live and (not record.ready or record.degraded):
        records = {n: v.record for n, v in snapshot.services.items()}
        deps = dependency_facts(view.spec, records)
        facts = live_facts(
            view.spec,
            record,
            log_path=logs.path(name, record.instance),
            probes=history_json(view.checks),
            dependencies=deps,
        )
        diagnosis = diagnose(facts)
        if diagnosis.finding.category is not Category.UNKNOWN:
            return {
                "service": name,
                "instance": record.instance,
                "healthy": False,
                **diagnosis.as_dict(),
                "last_failure": _last_failure(latest),
            }
    if record.state is State.STARTING:
        what = f"{name} is starting (instance {record.instance})"
    elif record.live:
        what = f"{name} is running and ready"
    else:
        what = f"{name} is {record.state}"
    return {
        "service": name,
        "instance": record.instance or None,
        "healthy": True,
        "summary": f"{what}: nothing to explain.",
        "last_failure": _last_failure(latest),
    }


def _last_failure(row: InstanceRow | None) -> dict[str, Any] | None:
    if row is None or row.diagnosis is None:
        return None
    return {"instance": row.number, "ended": row.ended, **row.diagnosis}
