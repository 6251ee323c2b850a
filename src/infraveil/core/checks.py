"""What a health check is and what one probe found: the vocabulary shared by the manifest,
the probe runners (`infraveil.runtime.probes`) and the health verdicts (`infraveil.core.health`).

A check is declared for a *role*: `health` (liveness: is the process still doing its job?) or
`ready` (readiness: may it take work now?). Both use the same kinds of check.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DEFAULT_INTERVAL = 5.0
"""Seconds between probes once the service has started."""
DEFAULT_STARTUP_INTERVAL = 1.0
"""Seconds between readiness probes while the service is starting."""
DEFAULT_TIMEOUT = 3.0
"""Seconds a probe may take before it counts as failed."""


class CheckKind(StrEnum):
    HTTP = "http"
    """GET a path on the service's port; any 2xx or 3xx answer passes."""
    TCP = "tcp"
    """A TCP connection to the port is accepted."""
    EXEC = "exec"
    """A command, run in the service's environment, exits 0."""
    NOTIFY = "notify"
    """systemd's sd_notify protocol: READY=1 ends startup, WATCHDOG=1 keeps a liveness alive."""


class Role(StrEnum):
    HEALTH = "health"
    """Liveness: a service that stays unhealthy is restarted."""
    READY = "ready"
    """Readiness: only changes `ready` (and later routing); never restarts anything."""


@dataclass(frozen=True)
class CheckSpec:
    """One declared (or implied) check, with every default filled in."""

    kind: CheckKind
    port: int | None = None
    """HTTP and TCP: the port probed (the service's `port` unless the check names one)."""
    host: str = "127.0.0.1"
    path: str = "/"
    """HTTP: the path requested."""
    command: tuple[str, ...] = ()
    """exec: argv, run with the service's env, cwd and user."""
    interval: float = DEFAULT_INTERVAL
    startup_interval: float = DEFAULT_STARTUP_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    watchdog: float | None = None
    """notify: the service must send WATCHDOG=1 at least this often (given as WATCHDOG_USEC)."""
    implied: bool = False
    """Not declared: a TCP readiness check implied by `port`."""

    def target(self) -> str:
        """What is probed, for messages: "GET http://127.0.0.1:8080/healthz"."""
        match self.kind:
            case CheckKind.HTTP:
                return f"GET http://{_hostport(self.host, self.port)}{self.path}"
            case CheckKind.TCP:
                return f"TCP {_hostport(self.host, self.port)}"
            case CheckKind.EXEC:
                return "exec " + " ".join(self.command)
            case CheckKind.NOTIFY:
                return "sd_notify"


def _hostport(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class ProbeResult:
    """What one probe found.

    `detail` is quoted to people as evidence, so it says what was seen in their words:
    "HTTP 200", "HTTP 404 for GET /healthz", "nothing listening on 127.0.0.1:8080",
    "no answer within 3s", "exit 1: pg_isready: no response".
    """

    ok: bool
    detail: str
    duration: float = 0.0
    """Seconds the probe took."""
    refused: bool = False
    """The connection was refused: nothing listens on the port (yet)."""
