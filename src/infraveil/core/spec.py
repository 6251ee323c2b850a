"""What a validated manifest says: immutable specs the rest of infraveil runs from.

The manifest parser (`infraveil.core.manifest`) is the only producer of these; every path in
a spec is already absolute (resolved against the manifest's directory), every duration is in
seconds, and every cross-reference (depends_on) has been checked.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from infraveil.core.checks import CheckKind, CheckSpec


def _empty_env() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ServiceSpec:
    """One `[services.NAME]` table."""

    name: str
    command: tuple[str, ...]
    """argv; a string command was split like a shell would split words (no shell runs)."""
    cwd: str
    """Absolute working directory (defaults to the manifest's directory)."""
    env: Mapping[str, str] = field(default_factory=_empty_env)
    env_file: str | None = None
    """Absolute path of a KEY=VALUE file read at every start; `env` wins over it."""
    secrets: str | None = None
    """Absolute path of a KEY=VALUE file read at every start, like `env_file`, whose values are
    secret whatever their names (masked wherever infraveil shows them); it wins over `env`."""
    required_env: tuple[str, ...] = ()
    """Variables that must be set and non-empty in the service's environment (preflight)."""
    user: str | None = None
    port: int | None = None
    depends_on: tuple[str, ...] = ()
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 10.0
    health: CheckSpec | None = None
    """The liveness check, if declared."""
    ready: CheckSpec | None = None
    """The readiness check, if declared (see `readiness` for the implied one)."""
    startup_deadline: float | None = None
    """A fixed startup deadline; None: learned from the service's boots."""
    memory: int | None = None
    """Memory limit in bytes for the whole process tree."""
    payload: bool = False
    """It runs its current release's payload, and is not started before a first deploy."""
    cwd_declared: bool = False
    """The manifest sets `cwd`; else `cwd` is the manifest's directory, which a `payload`
    service does not run in (see `runs_in_release`)."""
    soak: float = 10.0
    """Seconds a new release must stay ready with no restart before it is promoted."""
    watch: float = 60.0
    """Seconds a promoted release is watched; a crash or liveness restart in them rolls it back."""
    line: int | None = None
    """Line of the service's table in the manifest, for messages."""

    @property
    def readiness(self) -> CheckSpec | None:
        """The readiness check: declared, or implied by `port` (a TCP connect)."""
        if self.ready is not None:
            return self.ready
        if self.port is not None:
            return CheckSpec(CheckKind.TCP, port=self.port, implied=True)
        return None

    @property
    def runs_in_release(self) -> bool:
        """Its working directory is its current release's directory, not `cwd`.

        Then a relative command or file is in the release, which only exists once deployed.
        """
        return self.payload and not self.cwd_declared

    @property
    def startup_check(self) -> CheckSpec | None:
        """What ends the startup: readiness, else liveness; None: staying up for a second."""
        return self.readiness or self.health


@dataclass(frozen=True)
class Manifest:
    path: str
    """Absolute path of the manifest file."""
    services: Mapping[str, ServiceSpec]
    """In manifest order."""

    def start_order(self) -> tuple[str, ...]:
        """Names with every service after the ones it depends on (manifest order otherwise).

        The parser has rejected cycles and unknown names, so this always terminates.
        """
        done: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for dep in self.services[name].depends_on:
                visit(dep)
            done.append(name)

        for name in self.services:
            visit(name)
        return tuple(done)

    def dependants(self, name: str) -> tuple[str, ...]:
        return tuple(s.name for s in self.services.values() if name in s.depends_on)
