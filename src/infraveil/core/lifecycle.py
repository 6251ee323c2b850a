"""The lifecycle of one service: every state, event, action and transition, in this one file.

`step(record, event, now) -> (record, actions)` is a pure function: no clock (`now` is a
monotonic time passed in), no I/O. Events are past tense (what happened), actions are
imperative (what the runtime must do). An event that is not legal in the current state leaves
the record unchanged and answers with a single `Refused` action saying why.

    (re)start ──► pending ──deps ready──► starting ──stays up / ready──► running
                    │                        │  ▲                          │
                    │                        │  └────── backoff ◄──────────┤ exited (not asked)
                    │                        │            │ halted         │
                    ▼                        ▼            ▼                ▼
                 stopped ◄──exited──── stopping ◄──── stop ───────── failed

The transition table (`TABLE`) is at the bottom: one row per (state, event) pair that is
legal; everything else is refused.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from infraveil.core.exitstatus import ExitStatus
from infraveil.core.restart import HALTED_RETRY, STABLE_RUN, backoff_delay
from infraveil.core.units import format_duration

SETTLE_TIME = 1.0
"""A service with no readiness check counts as started once it has stayed up this long."""


class State(StrEnum):
    PENDING = "pending"
    """Asked to run; waiting for the services it depends on."""
    STARTING = "starting"
    """Spawned; not yet known to be up."""
    RUNNING = "running"
    """Up (and ready, while no readiness check is declared)."""
    STOPPING = "stopping"
    """Sent its stop signal; waiting for it to exit (then SIGKILL after stop_timeout)."""
    STOPPED = "stopped"
    """Not running, because a person (or `down`) asked for that."""
    BACKOFF = "backoff"
    """Failed; waiting out the back-off delay before the next start."""
    FAILED = "failed"
    """Halted: it cannot be started as it is; retried only slowly, or when a person asks."""


class TimerKind(StrEnum):
    SETTLE = "settle"
    """Startup without a check: it stayed up long enough."""
    RETRY = "retry"
    """The back-off (or the slow retry of a halted service) is over."""
    KILL = "kill"
    """The stop grace period is over."""


# ── events (past tense) ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class StartRequested:
    """A person or `up` asked the service to run."""


@dataclass(frozen=True)
class StopRequested:
    """A person or `down` asked the service to stop."""


@dataclass(frozen=True)
class RestartRequested:
    """A person asked for a fresh instance (stop if running, then start)."""


@dataclass(frozen=True)
class DependenciesChanged:
    """The services this one depends on that are not running yet (empty: all are)."""

    waiting_for: tuple[str, ...]


@dataclass(frozen=True)
class Spawned:
    instance: int
    pid: int


@dataclass(frozen=True)
class SpawnFailed:
    """The command could not be executed at all (missing, not executable, …)."""

    instance: int
    error: str
    deterministic: bool
    """True when trying again as-is cannot help (ENOENT, EACCES, ENOEXEC)."""


@dataclass(frozen=True)
class ProcessExited:
    instance: int
    status: ExitStatus
    last_line: str = ""
    """The last line the instance wrote, quoted in the event as first evidence."""


@dataclass(frozen=True)
class TimerFired:
    kind: TimerKind
    instance: int
    """The instance the timer was set for; a timer left over from an older one is ignored."""


Event = (
    StartRequested
    | StopRequested
    | RestartRequested
    | DependenciesChanged
    | Spawned
    | SpawnFailed
    | ProcessExited
    | TimerFired
)


# ── actions (imperative) ─────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Spawn:
    instance: int


@dataclass(frozen=True)
class SignalGroup:
    """Send `signum` to the process group of the instance."""

    instance: int
    pid: int
    signum: int


@dataclass(frozen=True)
class SetTimer:
    kind: TimerKind
    at: float
    instance: int


@dataclass(frozen=True)
class CancelTimer:
    kind: TimerKind


@dataclass(frozen=True)
class Emit:
    """Record an event for people: `kind` is normal or warning, `reason` a CamelCase word."""

    kind: str
    reason: str
    message: str


@dataclass(frozen=True)
class Refused:
    """The event is not legal now; nothing changed."""

    reason: str


Action = Spawn | SignalGroup | SetTimer | CancelTimer | Emit | Refused


# ── the record ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ServiceRecord:
    """Everything the lifecycle knows about one service; replaced, never mutated."""

    name: str
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0
    state: State = State.STOPPED
    instance: int = 0
    """Number of the latest instance (0: never started)."""
    pid: int | None = None
    started_at: float | None = None
    """Monotonic time the current instance was spawned."""
    running_since: float | None = None
    failures: int = 0
    """Failed runs in a row since the last stable run."""
    restarts: int = 0
    """Starts made by the restart policy after a failure."""
    retry_at: float | None = None
    last_exit: ExitStatus | None = None
    then_start: bool = False
    """Stopping on the way to a start (restart, or start asked while stopping)."""
    waiting_for: tuple[str, ...] = ()
    reason: str = ""
    """Why the service is in its state, in a few words for `status`."""

    @property
    def ready(self) -> bool:
        return self.state is State.RUNNING

    @property
    def live(self) -> bool:
        """A process of this service may exist."""
        return self.pid is not None


Transition = tuple[ServiceRecord, tuple[Action, ...]]
Handler = Callable[[ServiceRecord, Event, float], Transition]


def step(record: ServiceRecord, event: Event, now: float) -> Transition:
    """Apply one event to one service record."""
    if isinstance(event, Spawned | SpawnFailed | ProcessExited | TimerFired) and (
        event.instance != record.instance
    ):
        return record, (
            Refused(f"event for instance {event.instance}, current is {record.instance}"),
        )
    if isinstance(event, Spawned | SpawnFailed) and record.pid is not None:
        return record, (Refused(f"instance {event.instance} has already been spawned"),)
    handler = TABLE.get((record.state, type(event)))
    if handler is None:
        return record, (Refused(_refusal(record, event)),)
    return handler(record, event, now)


def _refusal(record: ServiceRecord, event: Event) -> str:
    if isinstance(event, StartRequested):
        return f"{record.name} is already {record.state}"
    if isinstance(event, StopRequested):
        return f"{record.name} is already {record.state}"
    return f"{type(event).__name__} is not expected while {record.name} is {record.state}"


# ── transitions ─────────────────────────────────────────────────────────────────────────────


def _spawn(r: ServiceRecord, *, by_policy: bool, reason: str) -> Transition:
    n = r.instance + 1
    record = replace(
        r,
        state=State.STARTING,
        instance=n,
        pid=None,
        started_at=None,
        running_since=None,
        retry_at=None,
        then_start=False,
        restarts=r.restarts + (1 if by_policy else 0),
        reason=reason,
    )
    return record, (CancelTimer(TimerKind.RETRY), Spawn(n))


def _start(r: ServiceRecord, _: Event, now: float) -> Transition:
    """A person asked: start now, or wait for dependencies; a halted service gets a fresh budget."""
    r = replace(r, failures=0)
    if r.waiting_for:
        waiting = ", ".join(r.waiting_for)
        return replace(r, state=State.PENDING, reason=f"waiting for {waiting}"), (
            CancelTimer(TimerKind.RETRY),
            Emit("normal", "Waiting", f"waiting for {waiting} to be running"),
        )
    return _spawn(r, by_policy=False, reason="starting")


def _stop(r: ServiceRecord, _: Event, now: float) -> Transition:
    """Stop a live instance: stop signal to its group now, SIGKILL when the grace is over.

    If the spawn has not been confirmed yet (no pid), the signal goes out when it is.
    """
    r = replace(r, state=State.STOPPING, then_start=False)
    if r.pid is None:
        return replace(r, reason="stopping once started"), (CancelTimer(TimerKind.SETTLE),)
    return _signal_stop(r, now)


def _signal_stop(r: ServiceRecord, now: float) -> Transition:
    assert r.pid is not None
    sig = signal.Signals(r.stop_signal).name
    return replace(r, reason=f"sent {sig}"), (
        CancelTimer(TimerKind.SETTLE),
        SignalGroup(r.instance, r.pid, r.stop_signal),
        SetTimer(TimerKind.KILL, now + r.stop_timeout, r.instance),
        Emit("normal", "Stopping", f"sent {sig}; SIGKILL in {format_duration(r.stop_timeout)}"),
    )


def _spawned_while_stopping(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, Spawned)
    record, actions = _signal_stop(replace(r, pid=event.pid, started_at=now), now)
    return record, (
        Emit("normal", "Started", f"instance {r.instance} started: pid {event.pid}"),
        *actions,
    )


def _spawn_failed_while_stopping(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, SpawnFailed)
    if r.then_start:
        return _failed_run(replace(r, state=State.STARTING), event, now)
    return replace(r, state=State.STOPPED, reason=""), (
        Emit("warning", "SpawnFailed", event.error),
    )


def _restart_live(r: ServiceRecord, event: Event, now: float) -> Transition:
    record, actions = _stop(r, event, now)
    return replace(record, then_start=True, failures=0), actions


def _stop_idle(r: ServiceRecord, _: Event, now: float) -> Transition:
    """Stop a service with no process: pending, backing off or halted."""
    return replace(r, state=State.STOPPED, retry_at=None, reason="stopped by request"), (
        CancelTimer(TimerKind.RETRY),
        Emit("normal", "Stopped", "stopped by request"),
    )


def _spawned(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, Spawned)
    return replace(r, pid=event.pid, started_at=now, reason="starting"), (
        SetTimer(TimerKind.SETTLE, now + SETTLE_TIME, r.instance),
        Emit("normal", "Started", f"instance {r.instance} started: pid {event.pid}"),
    )


def _settled(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, TimerFired)
    if event.kind is not TimerKind.SETTLE or r.pid is None:
        return r, (Refused(f"{event.kind} timer is not expected while starting"),)
    up = format_duration(SETTLE_TIME)
    return replace(r, state=State.RUNNING, running_since=now, reason=""), (
        Emit("normal", "Running", f"stayed up {up} (no readiness check declared)"),
    )


def _failed_run(r: ServiceRecord, event: Event, now: float) -> Transition:
    """The instance ended without being asked to: restart at once, back off, or halt."""
    assert isinstance(event, ProcessExited | SpawnFailed)
    if isinstance(event, ProcessExited):
        ran = now - r.started_at if r.started_at is not None else 0.0
        what = f"{event.status.describe()} after {format_duration(ran)}"
        if event.status.code == 0:
            what += " (a long-running service must not exit; does it daemonize?)"
        if event.last_line:
            what += f"; last line: {event.last_line}"
        last_exit: ExitStatus | None = event.status
        deterministic = False
    else:
        what = event.error
        last_exit = r.last_exit
        deterministic = event.deterministic

    stable = r.running_since is not None and now - r.running_since >= STABLE_RUN
    failures = 1 if stable else r.failures + 1
    r = replace(r, pid=None, last_exit=last_exit, failures=failures, then_start=False)
    exited = Emit("warning", "Exited" if isinstance(event, ProcessExited) else "SpawnFailed", what)
    cancel = CancelTimer(TimerKind.SETTLE)

    if deterministic:
        retry = now + HALTED_RETRY
        return replace(r, state=State.FAILED, retry_at=retry, reason=what), (
            cancel,
            exited,
            SetTimer(TimerKind.RETRY, retry, r.instance),
            Emit("warning", "Failed", f"{what}; not restarting until it changes or you ask"),
        )
    delay = backoff_delay(r.name, failures)
    if delay == 0:
        record, actions = _spawn(r, by_policy=True, reason="restarting")
        return record, (cancel, exited, *actions)
    retry = now + delay
    return replace(r, state=State.BACKOFF, retry_at=retry, reason=what), (
        cancel,
        exited,
        SetTimer(TimerKind.RETRY, retry, r.instance),
        Emit(
            "warning",
            "BackOff",
            f"restarting in {format_duration(delay)} ({failures} failures in a row)",
        ),
    )


def _exited_while_stopping(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, ProcessExited)
    r = replace(r, pid=None, last_exit=event.status, running_since=None)
    cancel = CancelTimer(TimerKind.KILL)
    stopped = Emit("normal", "Stopped", event.status.describe())
    if r.then_start:
        record, actions = _start(r, event, now)
        return record, (cancel, stopped, *actions)
    return replace(r, state=State.STOPPED, reason=""), (cancel, stopped)


def _grace_over(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, TimerFired)
    if event.kind is not TimerKind.KILL or r.pid is None:  # (a stale SETTLE, or no pid yet)
        return r, (Refused(f"{event.kind} timer is not expected while stopping"),)
    grace = format_duration(r.stop_timeout)
    return replace(r, reason="sent SIGKILL"), (
        SignalGroup(r.instance, r.pid, signal.SIGKILL),
        Emit("warning", "Killing", f"still running {grace} after its stop signal; sent SIGKILL"),
    )


def _retry(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, TimerFired)
    if event.kind is not TimerKind.RETRY:
        return r, (Refused(f"{event.kind} timer is not expected while {r.state}"),)
    return _spawn(r, by_policy=True, reason="restarting")


def _start_after_stop(r: ServiceRecord, _: Event, now: float) -> Transition:
    return replace(r, then_start=True), (Emit("normal", "Queued", "will start once stopped"),)


def _cancel_pending_start(r: ServiceRecord, _: Event, now: float) -> Transition:
    if not r.then_start:
        return r, (Refused(f"{r.name} is already stopping"),)
    return replace(r, then_start=False), (Emit("normal", "Stopping", "restart cancelled"),)


def _dependencies(r: ServiceRecord, event: Event, now: float) -> Transition:
    """Remember what this service waits for; a pending one starts when that is nothing."""
    assert isinstance(event, DependenciesChanged)
    r = replace(r, waiting_for=event.waiting_for)
    if r.state is State.PENDING:
        if not event.waiting_for:
            return _spawn(r, by_policy=False, reason="starting")
        return replace(r, reason=f"waiting for {', '.join(event.waiting_for)}"), ()
    return r, ()


_ALL_STATES = tuple(State)

TABLE: dict[tuple[State, type], Handler] = {
    **{(s, DependenciesChanged): _dependencies for s in _ALL_STATES},
    # pending: asked to run, dependencies not running yet
    (State.PENDING, StopRequested): _stop_idle,
    (State.PENDING, RestartRequested): _start,
    # starting: spawned, not yet known to be up
    (State.STARTING, Spawned): _spawned,
    (State.STARTING, SpawnFailed): _failed_run,
    (State.STARTING, TimerFired): _settled,
    (State.STARTING, ProcessExited): _failed_run,
    (State.STARTING, StopRequested): _stop,
    (State.STARTING, RestartRequested): _restart_live,
    # running
    (State.RUNNING, ProcessExited): _failed_run,
    (State.RUNNING, StopRequested): _stop,
    (State.RUNNING, RestartRequested): _restart_live,
    # stopping: waiting for the exit
    (State.STOPPING, Spawned): _spawned_while_stopping,
    (State.STOPPING, SpawnFailed): _spawn_failed_while_stopping,
    (State.STOPPING, ProcessExited): _exited_while_stopping,
    (State.STOPPING, TimerFired): _grace_over,
    (State.STOPPING, StartRequested): _start_after_stop,
    (State.STOPPING, RestartRequested): _start_after_stop,
    (State.STOPPING, StopRequested): _cancel_pending_start,
    # stopped by request
    (State.STOPPED, StartRequested): _start,
    (State.STOPPED, RestartRequested): _start,
    # backing off after a failure
    (State.BACKOFF, TimerFired): _retry,
    (State.BACKOFF, StartRequested): _start,
    (State.BACKOFF, RestartRequested): _start,
    (State.BACKOFF, StopRequested): _stop_idle,
    # halted
    (State.FAILED, TimerFired): _retry,
    (State.FAILED, StartRequested): _start,
    (State.FAILED, RestartRequested): _start,
    (State.FAILED, StopRequested): _stop_idle,
}
