"""The JSON shapes of the API. Field names here are stable: add fields, never rename them.

Each function turns immutable agent data into plain dicts; the field list of each shape is
documented in docs/reference/api.md (generated from `SCHEMAS` below).
"""

from __future__ import annotations

import signal
import time
from typing import Any

from infraveil.core.spec import ServiceSpec
from infraveil.daemon.agent import ServiceView, Snapshot

SCHEMAS: dict[str, dict[str, str]] = {
    "ServiceStatus": {
        "name": "service name",
        "state": "pending | starting | running | stopping | stopped | backoff | failed",
        "ready": "true when the service is up and ready (for now: running)",
        "pid": "pid of the current instance's main process, or null",
        "instance": "number of the latest instance (1 for the first start; 0 never started)",
        "uptime": "seconds since the current instance started, or null",
        "restarts": "starts made by the restart policy after failures",
        "last_exit": "how the previous instance ended: {code, signal, core_dumped, unknown, text}",
        "reason": "why the service is in its state, in a few words",
        "waiting_for": "dependencies not running yet",
        "retry_in": "seconds until the next start while backing off or halted, or null",
        "memory": "resident bytes of the whole process group (sampled), or null",
        "peak_memory": "highest sampled resident bytes of the current instance, or null",
    },
    "Instance": {
        "number": "instance number",
        "pid": "main process id",
        "started": "start time, seconds since the epoch",
        "ended": "end time, or null while running",
        "duration": "seconds it ran, or null while running",
        "exit": "{code, signal, core_dumped, unknown, text}, or null while running",
        "peak_memory": "highest sampled resident bytes of its process group",
        "command": "the argv it ran",
        "error": "why it could not be started at all, or null",
    },
    "Event": {
        "id": "increasing id",
        "time": "seconds since the epoch",
        "service": "service name, or null for the agent's own events",
        "instance": "instance number, or null",
        "type": "normal | warning",
        "reason": "one CamelCase word: Started, Running, Exited, BackOff, Failed, Stopping, ...",
        "message": "what happened, in a sentence",
    },
    "LogLine": {
        "time": "when infraveil read the line (UTC, RFC 3339)",
        "stream": "out for the service's output (stdout and stderr), ivl for infraveil's markers",
        "text": "the line",
    },
}


def service_status(view: ServiceView, now_mono: float | None = None) -> dict[str, Any]:
    record = view.record
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
        "reason": record.reason,
        "waiting_for": list(record.waiting_for),
        "retry_in": retry_in,
        "memory": view.rss,
        "peak_memory": view.peak_rss,
    }


def spec_json(spec: ServiceSpec) -> dict[str, Any]:
    return {
        "command": list(spec.command),
        "cwd": spec.cwd,
        "env": dict(spec.env),
        "env_file": spec.env_file,
        "user": spec.user,
        "port": spec.port,
        "depends_on": list(spec.depends_on),
        "stop_signal": signal.Signals(spec.stop_signal).name,
        "stop_timeout": spec.stop_timeout,
    }


def agent_info(snapshot: Snapshot, version: str) -> dict[str, Any]:
    return {
        "pid": snapshot.pid,
        "version": version,
        "started": snapshot.started_wall,
        "state_dir": snapshot.state_dir,
        "manifest": snapshot.manifest,
        "stopping": snapshot.stopping,
    }
