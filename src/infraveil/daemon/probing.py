"""Runs the checks of every live instance on their cadence, and receives sd_notify messages.

The prober only *runs* probes and keeps their results; what a result means (startup over,
ready or not, restart or not) is decided by the supervisor with the pure rules of
`core.health` and `core.lifecycle`. Each finished probe is queued to the agent's loop as a
`ProbeDone`, like every other input, so no result can race a state change.

Cadence, per instance:

- while **starting**, only the startup check runs (readiness, else liveness): first after
  50 ms, then 100, 200, 400 ms, then every `startup_interval` (1 s). The ramp finds a fast
  boot fast, which keeps learned boot times close to the truth;
- while a release goes through the deploy gate (`fast`), its startup check runs every
  `FAST_STARTUP` after the ramp: promotion must not be late by a probe interval, and one
  service probed ten times a second for a few seconds costs nothing;
- once **running**, readiness and liveness run every `interval` (5 s), at a fixed rate from
  when they were due, never overlapping themselves;
- nothing runs while the instance is stopping, and no liveness check ever runs while starting.

Probes at a cadence of a second or more are due on a 100 ms grid (`GRID`): 500 services
with two checks each then share a wake-up twenty at a time instead of waking the loop 200
times a second.

A notify check does not poll: `READY=1` ends the startup; as liveness, every `watchdog`
period must have seen a `WATCHDOG=1` (`WATCHDOG=trigger` fails the period at once).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, cast

from infraveil.core.checks import CheckKind, CheckSpec, ProbeResult
from infraveil.core.health import CheckState, observe
from infraveil.core.spec import ServiceSpec
from infraveil.core.units import format_duration
from infraveil.runtime.notify import NotifySocket, process_group_of
from infraveil.runtime.probes import Address, ProbeReactor, Results, address_of, exec_probe

STARTUP_RAMP = (0.05, 0.1, 0.2, 0.4)
"""Delays of the first startup probes, before the `startup_interval` cadence."""
FAST_STARTUP = 0.1
"""Seconds between startup probes of a release in the deploy gate."""
GRID = 0.1
"""Probes after the ramp are due on a 100 ms grid, so that the probes of many services share
the loop's wake-ups: one wake-up costs about as much CPU as a probe (measured in
bench/probe_cost.py: 264 µs a probe one at a time, 116 µs twenty at a time, on a 2-core VM)."""


class Phase(StrEnum):
    STARTUP = "startup"
    """The check that ends the startup (readiness, else liveness), while starting."""
    READY = "ready"
    HEALTH = "health"


@dataclass(frozen=True)
class ProbeDone:
    """Queued when a probe finishes; handled by the agent's loop."""

    service: str
    instance: int
    phase: Phase
    result: ProbeResult
    wall: float


@dataclass(frozen=True)
class NotifyReceived:
    service: str
    instance: int
    pairs: Mapping[str, str]
    sender: int | None


@dataclass
class ProbeStats:
    """How punctual the probes are, for /metrics and the benchmark."""

    started: int = 0
    late: int = 0
    """Probes that started more than one period after they were due."""
    max_lateness: float = 0.0


@dataclass
class InstanceProbes:
    """The checks of one live instance and what they found."""

    service: str
    instance: int
    pid: int
    checks: dict[Phase, CheckSpec]
    states: dict[Phase, CheckState] = field(default_factory=dict)
    running: bool = False
    notify: NotifySocket | None = None
    notify_status: str = ""
    """The last STATUS= the service sent."""
    last_ping: float | None = None
    """Loop time of the last WATCHDOG=1."""
    triggered: bool = False
    """WATCHDOG=trigger came: the current watchdog period fails."""
    watchdog: float | None = None
    timers: dict[Phase, asyncio.TimerHandle] = field(default_factory=dict)
    last_due: dict[Phase, float] = field(default_factory=dict)
    """When the latest probe of each phase was due: the next one is due a period later."""
    exec_tasks: dict[Phase, asyncio.Future[Any]] = field(default_factory=dict)
    addresses: dict[Phase, Address | None] = field(default_factory=dict)
    rounds: dict[Phase, int] = field(default_factory=dict)
    fast: bool = False
    """Startup probes every `FAST_STARTUP` (a release in the deploy gate)."""

    def active(self) -> tuple[Phase, ...]:
        if self.running:
            return tuple(p for p in (Phase.READY, Phase.HEALTH) if p in self.checks)
        return (Phase.STARTUP,) if Phase.STARTUP in self.checks else ()


def checks_of(spec: ServiceSpec) -> dict[Phase, CheckSpec]:
    checks: dict[Phase, CheckSpec] = {}
    if spec.startup_check is not None:
        checks[Phase.STARTUP] = spec.startup_check
    if spec.readiness is not None:
        checks[Phase.READY] = spec.readiness
    if spec.health is not None:
        checks[Phase.HEALTH] = spec.health
    return checks


def needs_notify(spec: ServiceSpec) -> bool:
    return any(c.kind is CheckKind.NOTIFY for c in checks_of(spec).values())


EnvFor = Callable[[str, int], Mapping[str, str]]
PopenFor = Callable[[str], Mapping[str, Any]]


class Prober:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        enqueue: Callable[[object], None],
        env_for: EnvFor,
        popen_for: PopenFor,
        cwd_for: Callable[[str], str],
    ) -> None:
        self._loop = loop
        self._enqueue = enqueue
        self._env_for = env_for
        self._popen_for = popen_for
        self._cwd_for = cwd_for
        self.instances: dict[str, InstanceProbes] = {}
        self.stats = ProbeStats()
        self._reactor = ProbeReactor(loop, self._results)
        self._slots: dict[float, list[tuple[InstanceProbes, Phase]]] = {}
        """Probes due at each grid time; one timer per time, not one per probe."""

    # ── lifecycle of an instance's probes ────────────────────────────────────────────────

    def open_notify(self, service: str, instance: int, address: str | None = None) -> NotifySocket:
        """The instance's notify socket; made before the spawn, because its address is in the
        instance's environment. Messages are queued to the loop as `NotifyReceived`."""

        def received(pairs: Mapping[str, str], sender: int | None) -> None:
            self._enqueue(NotifyReceived(service, instance, dict(pairs), sender))

        return NotifySocket.open(self._loop, received, address)

    def start(
        self,
        service: str,
        instance: int,
        pid: int,
        spec: ServiceSpec,
        *,
        running: bool,
        notify: NotifySocket | None,
        fast: bool = False,
    ) -> None:
        """Begin probing a live instance (starting, or already running when adopted)."""
        self.stop(service)
        checks = checks_of(spec)
        probes = InstanceProbes(
            service, instance, pid, checks, running=running, notify=notify, fast=fast
        )
        health = checks.get(Phase.HEALTH)
        if health is not None and health.kind is CheckKind.NOTIFY:
            probes.watchdog = health.watchdog
            probes.last_ping = self._loop.time()
        self.instances[service] = probes
        self._schedule_all(probes)

    def now_running(self, service: str) -> None:
        """Startup is over: from now on readiness and liveness run at their `interval`."""
        probes = self.instances.get(service)
        if probes is None or probes.running:
            return
        self._cancel(probes)
        probes.running = True
        probes.last_ping = self._loop.time()
        self._schedule_all(probes)

    def stop(self, service: str) -> InstanceProbes | None:
        """No more probes for the service's instance; its results are returned for the record."""
        probes = self.instances.pop(service, None)
        if probes is not None:
            self._cancel(probes)
            if probes.notify is not None:
                probes.notify.close()
        return probes

    def close(self) -> None:
        for service in list(self.instances):
            self.stop(service)
        self._reactor.close()

    # ── results ──────────────────────────────────────────────────────────────────────────

    def record(self, done: ProbeDone) -> tuple[InstanceProbes, CheckState, bool] | None:
        """Keep a finished probe's result and schedule the next one; None if it is stale."""
        probes = self.instances.get(done.service)
        if probes is None or probes.instance != done.instance:
            return None
        if done.phase not in probes.active():
            return None  # the phase is over (e.g. a startup probe that ended after startup)
        before = probes.states.get(done.phase, CheckState())
        state, flipped = observe(before, done.result, self._loop.time(), done.wall)
        probes.states[done.phase] = state
        self._schedule(probes, done.phase)
        return probes, state, flipped

    def notified(self, message: NotifyReceived) -> InstanceProbes | None:
        """Apply a notify message; the instance's probes if it came from the service."""
        probes = self.instances.get(message.service)
        if probes is None or probes.instance != message.instance:
            return None
        if message.sender is None or process_group_of(message.sender) != probes.pid:
            return None  # not from the service's process group: not the service speaking
        pairs = message.pairs
        if "STATUS" in pairs:
            probes.notify_status = pairs["STATUS"][:200]
        watchdog = pairs.get("WATCHDOG")
        if watchdog == "1":
            probes.last_ping = self._loop.time()
        elif watchdog == "trigger":
            probes.triggered = True
        usec = pairs.get("WATCHDOG_USEC", "")
        if usec.isdigit() and int(usec) > 0 and probes.watchdog is not None:
            probes.watchdog = int(usec) / 1e6
        return probes

    # ── scheduling ───────────────────────────────────────────────────────────────────────

    def _schedule_all(self, probes: InstanceProbes) -> None:
        for phase in probes.active():
            self._schedule(probes, phase)

    def _schedule(self, probes: InstanceProbes, phase: Phase) -> None:
        check = probes.checks[phase]
        if check.kind is CheckKind.NOTIFY and phase is not Phase.HEALTH:
            return  # READY=1 says it; nothing to poll
        n = probes.rounds.get(phase, 0)
        probes.rounds[phase] = n + 1
        if phase is Phase.HEALTH and check.kind is CheckKind.NOTIFY:
            assert probes.watchdog is not None
            delay = probes.watchdog
        elif phase is Phase.STARTUP:
            ramp = STARTUP_RAMP[n] if n < len(STARTUP_RAMP) else check.startup_interval
            delay = min(ramp, check.startup_interval)
            if probes.fast:
                delay = min(delay, FAST_STARTUP)
        else:
            delay = check.interval
        now = self._loop.time()
        due = now + delay
        if delay >= 1.0:
            # a fixed rate: a period after the last one was due, not after it finished
            previous = probes.last_due.get(phase)
            if previous is not None and previous + delay > now:
                due = previous + delay
            due = math.ceil(due / GRID - 1e-9) * GRID
        probes.last_due[phase] = due
        if delay < 1.0:
            probes.timers[phase] = self._loop.call_at(due, self._due, probes, phase, due)
            return
        slot = self._slots.get(due)
        if slot is None:
            slot = self._slots[due] = []
            self._loop.call_at(due, self._slot_due, due)
        slot.append((probes, phase))

    def _slot_due(self, due: float) -> None:
        for probes, phase in self._slots.pop(due, ()):
            # (an instance that ended, or a phase that is over, keeps no probe here)
            if self.instances.get(probes.service) is probes and probes.last_due.get(phase) == due:
                self._due(probes, phase, due)

    def _due(self, probes: InstanceProbes, phase: Phase, due: float) -> None:
        probes.timers.pop(phase, None)
        lateness = self._loop.time() - due
        self.stats.started += 1
        self.stats.max_lateness = max(self.stats.max_lateness, lateness)
        check = probes.checks[phase]
        period = check.interval if probes.running else check.startup_interval
        if lateness > period:
            self.stats.late += 1
        if check.kind is CheckKind.NOTIFY:
            result = self._watchdog_result(probes, due)
            self._enqueue(ProbeDone(probes.service, probes.instance, phase, result, time.time()))
            return
        key = (probes.service, probes.instance, phase)
        if check.kind is CheckKind.EXEC:
            task = asyncio.ensure_future(self._run_exec(probes, check))
            task.add_done_callback(
                lambda t: None if t.cancelled() else self._results([(key, t.result())])
            )
            probes.exec_tasks[phase] = task
            return
        assert check.port is not None
        address = probes.addresses.get(phase)
        if address is None:
            address = probes.addresses[phase] = address_of(check.host, check.port)
        if address is None:  # the manifest allows only IP addresses: never a lookup here
            self._results([(key, ProbeResult(False, f"{check.host} is not an IP address"))])
        elif check.kind is CheckKind.HTTP:
            self._reactor.http(key, address, check.host, check.port, check.path, check.timeout)
        else:
            self._reactor.tcp(key, address, check.host, check.port, check.timeout)

    def _results(self, results: Results) -> None:
        wall = time.time()
        for key, result in results:
            service, instance, phase = cast(tuple[str, int, Phase], key)
            self._enqueue(ProbeDone(service, instance, phase, result, wall))

    async def _run_exec(self, probes: InstanceProbes, check: CheckSpec) -> ProbeResult:
        return await exec_probe(
            check.command,
            env=self._env_for(probes.service, probes.instance),
            cwd=self._cwd_for(probes.service),
            timeout=check.timeout,
            popen_kwargs=self._popen_for(probes.service),
        )

    def _watchdog_result(self, probes: InstanceProbes, due: float) -> ProbeResult:
        assert probes.watchdog is not None
        period = format_duration(probes.watchdog)
        if probes.triggered:
            probes.triggered = False
            return ProbeResult(False, "the service sent WATCHDOG=trigger")
        last = probes.last_ping
        if last is None or due - last > probes.watchdog:
            return ProbeResult(False, f"no WATCHDOG=1 within {period}")
        return ProbeResult(True, "WATCHDOG=1")

    def _cancel(self, probes: InstanceProbes) -> None:
        for handle in probes.timers.values():
            handle.cancel()
        probes.timers.clear()
        for task in probes.exec_tasks.values():
            task.cancel()
        probes.exec_tasks.clear()
        for phase in Phase:
            self._reactor.cancel((probes.service, probes.instance, phase))
        probes.rounds.clear()
        probes.last_due.clear()


ProbeView = tuple[CheckSpec, CheckState]
"""A check and what its probes found; both immutable, so snapshots can share them."""


def probe_states(probes: InstanceProbes) -> Mapping[Phase, ProbeView]:
    return MappingProxyType(
        {phase: (probes.checks[phase], state) for phase, state in probes.states.items()}
    )


def history_json(states: Mapping[Phase, ProbeView]) -> dict[str, Any]:
    """Probe results by phase, for the store and the API."""
    return {
        str(phase): {
            "target": check.target(),
            "passing": state.passing,
            "probes": state.probes,
            "history": [{"time": r.wall, "ok": r.ok, "detail": r.detail} for r in state.history],
        }
        for phase, (check, state) in states.items()
    }
