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

Startup ends at the first passing startup check (readiness, else liveness, or `READY=1`), or,
with no check at all, once the process has stayed up `SETTLE_TIME`. A startup that takes
longer than the instance's deadline is a failure. Three failures in a row with the same
signature (see `signature`; with a diagnosis, its category and evidence) before the service
has run stably halt it (`failed`). A failure the diagnosis calls transient (a dependency that
refused, a name that did not resolve) backs off and never halts; one while a declared
dependency is not ready is not counted at all: the service waits for it instead.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from infraveil.core.diagnosis.finding import Verdict
from infraveil.core.exitstatus import ExitStatus
from infraveil.core.health import is_slow_boot
from infraveil.core.restart import HALTED_RETRY, STABLE_RUN, backoff_delay
from infraveil.core.signature import exit_signature, kill_signature
from infraveil.core.units import format_duration

SETTLE_TIME = 1.0
"""A service with no startup check counts as started once it has stayed up this long."""
CRASH_LOOP = 3
"""The same failure this many times in a row, before a stable run, halts the service."""


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
    """Halted: it fails the same way every time; retried when something it depends on
    changes, slowly on its own, or when a person asks."""


class TimerKind(StrEnum):
    SETTLE = "settle"
    """Startup without a check: it stayed up long enough."""
    RETRY = "retry"
    """The back-off (or the slow retry of a halted service) is over."""
    KILL = "kill"
    """The stop grace period is over."""
    DEADLINE = "deadline"
    """The startup deadline is over (the agent turns it into `StartupTimedOut`)."""


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
    deadline: float = 60.0
    """Seconds this instance may take to start (when it has a startup check)."""
    typical_boot: float | None = None
    """The service's usual boot time, to tell a slow boot; None until a few are known."""


@dataclass(frozen=True)
class SpawnFailed:
    """The command could not be executed at all (missing, not executable, …)."""

    instance: int
    error: str
    deterministic: bool
    """True when trying again as-is cannot help (ENOENT, EACCES, ENOEXEC)."""
    verdict: Verdict | None = None
    """The diagnosis of the failure (a failed preflight check, an exec error)."""


@dataclass(frozen=True)
class ProcessExited:
    instance: int
    status: ExitStatus
    last_line: str = ""
    """The last line the instance wrote, quoted in the event as first evidence."""
    oom: bool = False
    """Killed by the kernel's OOM killer (its cgroup's limit, or the whole host's memory)."""
    memory: str = ""
    """The limit and peak, for the message of an OOM kill."""
    verdict: Verdict | None = None
    """The diagnosis of the exit: its signature, and whether retrying can help."""


@dataclass(frozen=True)
class ReadinessChanged:
    """The startup or readiness check passed (or READY=1 came), or it stopped passing."""

    instance: int
    ready: bool
    detail: str


@dataclass(frozen=True)
class LivenessFailed:
    """The liveness check has failed long enough to restart, unless `excuse` says why not."""

    instance: int
    detail: str
    excuse: str = ""


@dataclass(frozen=True)
class LivenessRecovered:
    instance: int
    detail: str


@dataclass(frozen=True)
class StartupTimedOut:
    instance: int
    detail: str
    """What the startup check said last, e.g. "nothing listening on 127.0.0.1:8080"."""


@dataclass(frozen=True)
class MemoryExceeded:
    """The memory watchdog saw the process tree over its limit (where no cgroup enforces it)."""

    instance: int
    detail: str


@dataclass(frozen=True)
class InputChanged:
    """Something a halted service depends on changed: its manifest entry or a file."""

    what: str


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
    | ReadinessChanged
    | LivenessFailed
    | LivenessRecovered
    | StartupTimedOut
    | MemoryExceeded
    | InputChanged
)

_INSTANCE_EVENTS = (
    Spawned,
    SpawnFailed,
    ProcessExited,
    TimerFired,
    ReadinessChanged,
    LivenessFailed,
    LivenessRecovered,
    StartupTimedOut,
    MemoryExceeded,
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
class RecordBoot:
    """Remember how long this instance took to start, to learn the startup deadline."""

    instance: int
    seconds: float


@dataclass(frozen=True)
class RecordFailure:
    """Keep why this instance failed with its record, for `describe` and `why`."""

    instance: int
    what: str
    headline: str = ""
    """What happened without the explanation ("exited with code 1 after 0.8s"): the deploy
    gate quotes the diagnosis's evidence after it instead."""


@dataclass(frozen=True)
class Refused:
    """The event is not legal now; nothing changed."""

    reason: str


Action = Spawn | SignalGroup | SetTimer | CancelTimer | Emit | RecordBoot | RecordFailure | Refused


# ── the record ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ServiceRecord:
    """Everything the lifecycle knows about one service; replaced, never mutated."""

    name: str
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0
    startup_check: bool = False
    """Startup ends at a passing check (else: after staying up `SETTLE_TIME`)."""
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
    """Its dependencies that are not ready."""
    reason: str = ""
    """Why the service is in its state, in a few words for `status`."""
    ready: bool = False
    """Started and passing its readiness check: dependants may start, traffic may come."""
    deadline: float | None = None
    """The startup deadline of the current instance, in seconds."""
    typical_boot: float | None = None
    degraded: str = ""
    """Why a failing liveness check is not restarting the service ("" when it is not)."""
    signature: str = ""
    """The signature of the last failure."""
    oom_killed: bool = False
    """The last instance was killed for its memory (by the kernel or the watchdog)."""
    same_failures: int = 0
    """Failures in a row with that signature, before a stable run."""
    kill_reason: str = ""
    """Set while the agent stops an instance because it failed (liveness, deadline, memory):
    its exit then counts as that failure, not as a requested stop."""
    kill_signature: str = ""
    diagnosis: str = ""
    """The diagnosis category of the last failure ("" when unknown or none yet)."""

    @property
    def live(self) -> bool:
        """A process of this service may exist."""
        return self.pid is not None


Transition = tuple[ServiceRecord, tuple[Action, ...]]
Handler = Callable[[ServiceRecord, Event, float], Transition]


def step(record: ServiceRecord, event: Event, now: float) -> Transition:
    """Apply one event to one service record."""
    if isinstance(event, _INSTANCE_EVENTS) and event.instance != record.instance:
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
        ready=False,
        degraded="",
        kill_reason="",
        kill_signature="",
        restarts=r.restarts + (1 if by_policy else 0),
        reason=reason,
    )
    return record, (CancelTimer(TimerKind.RETRY), Spawn(n))


def _start(r: ServiceRecord, _: Event, now: float) -> Transition:
    """A person asked: start now, or wait for dependencies; a halted service gets a fresh budget."""
    r = replace(r, failures=0, same_failures=0, signature="")
    if r.waiting_for:
        return _wait_for_dependencies(r, f"waiting for {', '.join(r.waiting_for)} to be ready")
    return _spawn(r, by_policy=False, reason="starting")


def _wait_for_dependencies(r: ServiceRecord, message: str) -> Transition:
    waiting = ", ".join(r.waiting_for)
    return replace(r, state=State.PENDING, retry_at=None, reason=f"waiting for {waiting}"), (
        CancelTimer(TimerKind.RETRY),
        Emit("normal", "Waiting", message),
    )


def _stop(r: ServiceRecord, _: Event, now: float) -> Transition:
    """Stop a live instance: stop signal to its group now, SIGKILL when the grace is over.

    If the spawn has not been confirmed yet (no pid), the signal goes out when it is.
    """
    r = replace(r, state=State.STOPPING, then_start=False, ready=False, degraded="", kill_reason="")
    if r.pid is None:
        return replace(r, reason="stopping once started"), _cancel_startup_timers()
    return _signal_stop(r, now)


def _cancel_startup_timers() -> tuple[Action, ...]:
    return (CancelTimer(TimerKind.SETTLE), CancelTimer(TimerKind.DEADLINE))


def _signal_stop(r: ServiceRecord, now: float) -> Transition:
    assert r.pid is not None
    sig = signal.Signals(r.stop_signal).name
    return replace(r, reason=r.kill_reason or f"sent {sig}"), (
        *_cancel_startup_timers(),
        SignalGroup(r.instance, r.pid, r.stop_signal),
        SetTimer(TimerKind.KILL, now + r.stop_timeout, r.instance),
        Emit("normal", "Stopping", f"sent {sig}; SIGKILL in {format_duration(r.stop_timeout)}"),
    )


def _kill_for(
    r: ServiceRecord, now: float, *, reason: str, message: str, signature: str, at_once: bool
) -> Transition:
    """End an instance that failed while alive; its exit then counts as this failure."""
    pid = r.pid
    assert pid is not None
    r = replace(
        r,
        state=State.STOPPING,
        then_start=False,
        ready=False,
        degraded="",
        kill_reason=message,
        kill_signature=signature,
    )
    told = Emit("warning", reason, message)
    if at_once:
        return replace(r, reason=message), (
            *_cancel_startup_timers(),
            told,
            SignalGroup(r.instance, pid, signal.SIGKILL),
        )
    record, actions = _signal_stop(r, now)
    return record, (told, *actions)


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
    return replace(record, then_start=True, failures=0, same_failures=0, signature=""), actions


def _stop_idle(r: ServiceRecord, _: Event, now: float) -> Transition:
    """Stop a service with no process: pending, backing off or halted."""
    return replace(r, state=State.STOPPED, retry_at=None, reason="stopped by request"), (
        CancelTimer(TimerKind.RETRY),
        Emit("normal", "Stopped", "stopped by request"),
    )


def _spawned(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, Spawned)
    r = replace(
        r,
        pid=event.pid,
        started_at=now,
        deadline=event.deadline if r.startup_check else None,
        typical_boot=event.typical_boot,
        reason="starting",
    )
    started = Emit("normal", "Started", f"instance {r.instance} started: pid {event.pid}")
    if r.startup_check:
        return r, (SetTimer(TimerKind.DEADLINE, now + event.deadline, r.instance), started)
    return r, (SetTimer(TimerKind.SETTLE, now + SETTLE_TIME, r.instance), started)


def _settled(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, TimerFired)
    if event.kind is not TimerKind.SETTLE or r.pid is None:
        return r, (Refused(f"{event.kind} timer is not expected while starting"),)
    up = format_duration(SETTLE_TIME)
    return replace(r, state=State.RUNNING, running_since=now, ready=True, reason=""), (
        Emit("normal", "Running", f"stayed up {up} (no check declared)"),
    )


def _startup_check(r: ServiceRecord, event: Event, now: float) -> Transition:
    """The startup check answered: a pass ends the startup; a failure waits for the next."""
    assert isinstance(event, ReadinessChanged)
    if not event.ready or r.pid is None or r.started_at is None:
        return r, ()
    boot = now - r.started_at
    r = replace(r, state=State.RUNNING, running_since=now, ready=True, reason="")
    actions: list[Action] = [
        CancelTimer(TimerKind.DEADLINE),
        RecordBoot(r.instance, boot),
        Emit("normal", "Ready", f"ready after {format_duration(boot)}: {event.detail}"),
    ]
    if is_slow_boot(boot, r.typical_boot):
        assert r.typical_boot is not None
        actions.append(
            Emit(
                "warning",
                "SlowStart",
                f"took {format_duration(boot)} to become ready;"
                f" it usually takes {format_duration(r.typical_boot)}",
            )
        )
    return r, tuple(actions)


def _readiness(r: ServiceRecord, event: Event, now: float) -> Transition:
    """Readiness only changes `ready`; it never restarts anything."""
    assert isinstance(event, ReadinessChanged)
    if event.ready == r.ready:
        return r, ()
    if event.ready:
        return replace(r, ready=True), (Emit("normal", "Ready", event.detail),)
    return replace(r, ready=False), (
        Emit("warning", "NotReady", f"readiness check failed: {event.detail}"),
    )


def _startup_timed_out(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, StartupTimedOut)
    if r.pid is None or r.deadline is None:
        return r, (Refused("no startup deadline is running"),)
    message = (
        f"did not become ready within its startup deadline of"
        f" {format_duration(r.deadline)}: {event.detail}"
    )
    return _kill_for(
        r,
        now,
        reason="StartupTimeout",
        message=message,
        signature=kill_signature("deadline", event.detail),
        at_once=False,
    )


def _liveness_failed(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, LivenessFailed)
    if event.excuse:
        already = bool(r.degraded)
        r = replace(r, degraded=event.excuse, reason=f"degraded: {event.excuse}")
        if already:  # said once; the excuse's wording may change ("6 of 10", "7 of 10")
            return r, ()
        return r, (
            Emit(
                "warning",
                "Degraded",
                f"liveness check {event.detail}; not restarting: {event.excuse}",
            ),
        )
    return _kill_for(
        r,
        now,
        reason="Unhealthy",
        message=f"liveness check {event.detail}",
        signature=kill_signature("liveness", event.detail),
        at_once=False,
    )


def _liveness_recovered(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, LivenessRecovered)
    if not r.degraded:
        return r, ()
    return replace(r, degraded="", reason=""), (
        Emit("normal", "Recovered", f"liveness check passes again: {event.detail}"),
    )


def _memory_exceeded(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, MemoryExceeded)
    if r.pid is None:
        return r, (Refused("no process to kill"),)
    return _kill_for(
        r,
        now,
        reason="OOMKilled",
        message=f"OOMKilled: {event.detail}",
        signature="oom",
        at_once=True,
    )


def _failed_run(r: ServiceRecord, event: Event, now: float) -> Transition:
    """The instance ended without being asked to: restart at once, back off, wait, or halt."""
    assert isinstance(event, ProcessExited | SpawnFailed)
    deterministic = False
    last_exit: ExitStatus | None
    if r.kill_reason:
        assert isinstance(event, ProcessExited)
        what, signature, last_exit = r.kill_reason, r.kill_signature, event.status
        headline = what
        reason = ""  # the kill was announced already
    elif isinstance(event, ProcessExited):
        ran = now - r.started_at if r.started_at is not None else 0.0
        if event.oom:
            what = f"OOMKilled after {format_duration(ran)}"
            if event.memory:
                what += f" ({event.memory})"
        else:
            what = f"{event.status.describe()} after {format_duration(ran)}"
        headline = what
        verdict = event.verdict
        if verdict is not None and verdict.known:
            if not event.oom:  # the OOM words say it all already
                what += f": {verdict.summary}"
            signature = verdict.signature
        else:
            if event.status.code == 0:
                what += " (a long-running service must not exit; does it daemonize?)"
            if event.last_line:
                what += f"; last line: {event.last_line}"
            signature = exit_signature(event.status, event.last_line, oom=event.oom)
        last_exit = event.status
        reason = "OOMKilled" if event.oom else "Exited"
    else:
        what = event.error
        signature = kill_signature("spawn", event.error)
        if event.verdict is not None:
            what, signature = event.verdict.summary, event.verdict.signature
        headline = f"could not start: {event.error}"
        last_exit = r.last_exit
        deterministic = event.deterministic
        reason = "SpawnFailed"

    stable = r.running_since is not None and now - r.running_since >= STABLE_RUN
    verdict = event.verdict if event.verdict is not None and event.verdict.known else None
    # (an instance the agent ended keeps the kill's signature, but the diagnosis still says
    # whether trying again can help: a hang is transient, a boot too slow for its deadline not)
    transient = verdict is not None and not verdict.deterministic
    r = replace(
        r,
        diagnosis=verdict.category if verdict is not None else "",
        pid=None,
        last_exit=last_exit,
        oom_killed=r.kill_signature == "oom"
        or (isinstance(event, ProcessExited) and event.oom and not r.kill_reason),
        then_start=False,
        ready=False,
        degraded="",
        kill_reason="",
        kill_signature="",
        deadline=None,
    )
    actions: list[Action] = [
        *_cancel_startup_timers(),
        CancelTimer(TimerKind.KILL),
        RecordFailure(r.instance, what, headline),
    ]
    if reason:
        actions.append(Emit("warning", reason, what))

    if r.waiting_for and not deterministic:
        # Not its fault: a dependency is down. Wait for it instead of spending the budget.
        waiting = ", ".join(r.waiting_for)
        record, waits = _wait_for_dependencies(
            r, f"not counted as a failure: {waiting} is not ready; restarting once it is"
        )
        return record, (*actions, *waits)

    failures = 1 if stable else r.failures + 1
    same = 1 if stable or signature != r.signature else r.same_failures + 1
    if deterministic:
        same = max(same, CRASH_LOOP)
    elif transient:
        same = min(same, CRASH_LOOP - 1)
    r = replace(r, failures=failures, signature=signature, same_failures=same)

    if same >= CRASH_LOOP:
        why = what if deterministic else f"failed the same way {same} times in a row: {what}"
        retry = now + HALTED_RETRY
        return replace(r, state=State.FAILED, retry_at=retry, reason=why), (
            *actions,
            SetTimer(TimerKind.RETRY, retry, r.instance),
            Emit(
                "warning",
                "Halted",
                f"{why.rstrip('.')}; not restarting until something it depends on changes or you"
                " ask"
                f" (next try in {format_duration(HALTED_RETRY)})",
            ),
        )
    delay = backoff_delay(r.name, failures)
    if delay == 0:
        record, spawn = _spawn(r, by_policy=True, reason="restarting")
        return record, (*actions, *spawn)
    retry = now + delay
    return replace(r, state=State.BACKOFF, retry_at=retry, reason=what), (
        *actions,
        SetTimer(TimerKind.RETRY, retry, r.instance),
        Emit(
            "warning",
            "BackOff",
            f"restarting in {format_duration(delay)} ({failures} failures in a row)",
        ),
    )


def _exited_while_stopping(r: ServiceRecord, event: Event, now: float) -> Transition:
    assert isinstance(event, ProcessExited)
    if r.kill_reason:
        return _failed_run(r, event, now)
    r = replace(r, pid=None, last_exit=event.status, running_since=None, oom_killed=event.oom)
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
    if r.waiting_for:
        waiting = ", ".join(r.waiting_for)
        return _wait_for_dependencies(r, f"restarting once {waiting} is ready")
    return _spawn(r, by_policy=True, reason="restarting")


def _input_changed(r: ServiceRecord, event: Event, now: float) -> Transition:
    """Something a halted service depends on changed: try again (the failure count stays, so
    the same failure halts it again at once)."""
    assert isinstance(event, InputChanged)
    record, actions = _spawn(r, by_policy=True, reason="retrying")
    return record, (Emit("normal", "Retrying", f"{event.what} changed; trying again"), *actions)


def _start_after_stop(r: ServiceRecord, _: Event, now: float) -> Transition:
    r = replace(r, then_start=True, kill_reason="", kill_signature="")
    return r, (Emit("normal", "Queued", "will start once stopped"),)


def _cancel_pending_start(r: ServiceRecord, _: Event, now: float) -> Transition:
    if r.kill_reason:
        return replace(r, kill_reason="", kill_signature=""), (
            Emit("normal", "Stopping", "will stay stopped (no restart after this kill)"),
        )
    if not r.then_start:
        return r, (Refused(f"{r.name} is already stopping"),)
    return replace(r, then_start=False), (Emit("normal", "Stopping", "restart cancelled"),)


def _dependencies(r: ServiceRecord, event: Event, now: float) -> Transition:
    """Remember which dependencies are not ready; act on it where the state cares."""
    assert isinstance(event, DependenciesChanged)
    before, now_waiting = r.waiting_for, event.waiting_for
    r = replace(r, waiting_for=now_waiting)
    names = ", ".join(now_waiting)
    if r.state is State.PENDING:
        if not now_waiting:
            return _spawn(r, by_policy=r.failures > 0, reason="starting")
        return replace(r, reason=f"waiting for {names}"), ()
    if r.state is State.FAILED and before and not now_waiting:
        record, actions = _spawn(r, by_policy=True, reason="retrying")
        ready = ", ".join(before)
        return record, (
            Emit("normal", "Retrying", f"{ready} is ready again; trying again"),
            *actions,
        )
    if r.state is State.RUNNING and now_waiting and not before:
        reason = r.reason or f"dependency {names} not ready"
        return replace(r, reason=reason), (
            Emit("warning", "DependencyNotReady", f"{names} is not ready; {r.name} keeps running"),
        )
    if r.state is State.RUNNING and before and not now_waiting:
        reason = "" if r.reason.startswith("dependency ") else r.reason
        return replace(r, reason=reason), (
            Emit("normal", "DependencyReady", f"{', '.join(before)} is ready again"),
        )
    return r, ()


_ALL_STATES = tuple(State)

TABLE: dict[tuple[State, type], Handler] = {
    **{(s, DependenciesChanged): _dependencies for s in _ALL_STATES},
    # pending: asked to run, dependencies not ready yet
    (State.PENDING, StopRequested): _stop_idle,
    (State.PENDING, RestartRequested): _start,
    # starting: spawned, not yet known to be up
    (State.STARTING, Spawned): _spawned,
    (State.STARTING, SpawnFailed): _failed_run,
    (State.STARTING, TimerFired): _settled,
    (State.STARTING, ReadinessChanged): _startup_check,
    (State.STARTING, StartupTimedOut): _startup_timed_out,
    (State.STARTING, MemoryExceeded): _memory_exceeded,
    (State.STARTING, ProcessExited): _failed_run,
    (State.STARTING, StopRequested): _stop,
    (State.STARTING, RestartRequested): _restart_live,
    # running
    (State.RUNNING, ReadinessChanged): _readiness,
    (State.RUNNING, LivenessFailed): _liveness_failed,
    (State.RUNNING, LivenessRecovered): _liveness_recovered,
    (State.RUNNING, MemoryExceeded): _memory_exceeded,
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
    (State.FAILED, InputChanged): _input_changed,
    (State.FAILED, StartRequested): _start,
    (State.FAILED, RestartRequested): _start,
    (State.FAILED, StopRequested): _stop_idle,
}
