"""The lifecycle core, driven with events and nothing else."""

from __future__ import annotations

import signal
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infraveil.core.exitstatus import ExitStatus
from infraveil.core.lifecycle import (
    CRASH_LOOP,
    SETTLE_TIME,
    TABLE,
    Action,
    CancelTimer,
    DependenciesChanged,
    Emit,
    Event,
    InputChanged,
    LivenessFailed,
    LivenessRecovered,
    MemoryExceeded,
    ProcessExited,
    ReadinessChanged,
    Refused,
    RestartRequested,
    ServiceRecord,
    SetTimer,
    SignalGroup,
    Spawn,
    Spawned,
    SpawnFailed,
    StartRequested,
    StartupTimedOut,
    State,
    StopRequested,
    TimerFired,
    TimerKind,
    step,
)
from infraveil.core.restart import HALTED_RETRY, MAX_DELAY, STABLE_RUN, backoff_delay

CRASH = ExitStatus(code=1)


def run(record: ServiceRecord, *events: Event, start: float = 0.0, dt: float = 0.1):
    """Feed events one after the other, `dt` seconds apart; the final record and all actions."""
    now = start
    actions: list[Action] = []
    for event in events:
        record, out = step(record, event, now)
        actions.extend(out)
        now += dt
    return record, actions


def running(
    name: str = "api", instance: int = 1, pid: int = 100, since: float = 0.0
) -> ServiceRecord:
    return ServiceRecord(
        name, state=State.RUNNING, instance=instance, pid=pid, started_at=since, running_since=since
    )


def reasons(actions: list[Action]) -> list[str]:
    return [a.reason for a in actions if isinstance(a, Emit)]


# ── one transition at a time ─────────────────────────────────────────────────────────────


def test_start_spawns_the_first_instance() -> None:
    record, actions = step(ServiceRecord("api"), StartRequested(), 0.0)
    assert record.state is State.STARTING
    assert record.instance == 1
    assert Spawn(1) in actions


def test_spawned_sets_pid_and_settle_timer() -> None:
    record, _ = step(ServiceRecord("api"), StartRequested(), 0.0)
    record, actions = step(record, Spawned(1, 4242), 5.0)
    assert record.pid == 4242
    assert record.started_at == 5.0
    assert SetTimer(TimerKind.SETTLE, 5.0 + SETTLE_TIME, 1) in actions


def test_staying_up_makes_it_running_and_ready() -> None:
    record, _ = run(ServiceRecord("api"), StartRequested(), Spawned(1, 7))
    record, actions = step(record, TimerFired(TimerKind.SETTLE, 1), 2.0)
    assert record.state is State.RUNNING
    assert record.ready
    assert "Running" in reasons(actions)


def test_start_with_unready_dependencies_waits() -> None:
    record, actions = run(ServiceRecord("api"), DependenciesChanged(("db",)), StartRequested())
    assert record.state is State.PENDING
    assert not any(isinstance(a, Spawn) for a in actions)
    record, actions = step(record, DependenciesChanged(()), 1.0)
    assert record.state is State.STARTING
    assert Spawn(1) in actions


def test_first_crash_after_a_stable_run_restarts_at_once() -> None:
    record = running(since=0.0)
    record, actions = step(record, ProcessExited(1, CRASH, "boom"), STABLE_RUN + 1)
    assert record.state is State.STARTING
    assert Spawn(2) in actions
    assert record.restarts == 1
    assert record.failures == 1
    exited = next(a for a in actions if isinstance(a, Emit) and a.reason == "Exited")
    assert "exited with code 1" in exited.message
    assert "boom" in exited.message


def test_quick_second_crash_backs_off_one_second() -> None:
    record = running(since=0.0)
    record, _ = step(record, ProcessExited(1, CRASH), STABLE_RUN + 1)
    record, _ = step(record, Spawned(2, 101), STABLE_RUN + 1)
    now = STABLE_RUN + 1.5
    record, actions = step(record, ProcessExited(2, CRASH), now)
    assert record.state is State.BACKOFF
    timer = next(a for a in actions if isinstance(a, SetTimer))
    assert timer.kind is TimerKind.RETRY
    assert 0.9 <= timer.at - now <= 1.1
    assert not any(isinstance(a, Spawn) for a in actions)
    record, actions = step(record, TimerFired(TimerKind.RETRY, 2), timer.at)
    assert record.state is State.STARTING
    assert Spawn(3) in actions
    assert record.restarts == 2


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [
        (1, 0.0, 0.0),
        (2, 0.9, 1.1),
        (3, 1.8, 2.2),
        (4, 3.6, 4.4),
        (5, 7.2, 8.8),
        (12, 270.0, 330.0),
        (40, 270.0, 330.0),
    ],
)
def test_backoff_doubles_from_one_second_to_five_minutes(
    failures: int, low: float, high: float
) -> None:
    assert low <= backoff_delay("api", failures) <= high


def test_backoff_jitter_differs_between_services() -> None:
    delays = {backoff_delay(f"svc{i}", 5) for i in range(20)}
    assert len(delays) > 10


def test_a_stable_run_resets_the_backoff() -> None:
    record = replace(running(since=100.0), failures=7)
    record, actions = step(record, ProcessExited(1, CRASH), 100.0 + STABLE_RUN + 0.1)
    assert record.failures == 1
    assert Spawn(2) in actions


def test_a_short_run_does_not_reset_the_backoff() -> None:
    record = replace(running(since=100.0), failures=7)
    record, _actions = step(record, ProcessExited(1, CRASH), 100.0 + STABLE_RUN - 1)
    assert record.failures == 8
    assert record.state is State.BACKOFF


def test_exit_zero_of_a_long_running_service_is_a_failure() -> None:
    record, actions = step(running(), ProcessExited(1, ExitStatus(code=0)), STABLE_RUN + 1)
    assert record.state is State.STARTING  # restarted like any crash
    exited = next(a for a in actions if isinstance(a, Emit) and a.reason == "Exited")
    assert exited.kind == "warning"
    assert "must not exit" in exited.message


def test_command_not_found_halts_with_the_reason() -> None:
    record, _ = step(ServiceRecord("api"), StartRequested(), 0.0)
    record, actions = step(record, SpawnFailed(1, "command not found: nope", True), 0.0)
    assert record.state is State.FAILED
    assert "command not found: nope" in record.reason
    assert SetTimer(TimerKind.RETRY, HALTED_RETRY, 1) in actions  # never dead forever
    assert not any(isinstance(a, Spawn) for a in actions)


def test_a_transient_spawn_failure_backs_off() -> None:
    record, _ = run(ServiceRecord("api"), StartRequested(), SpawnFailed(1, "fork: EAGAIN", False))
    assert record.state is State.STARTING  # first failure: at once
    record, _ = step(record, SpawnFailed(2, "fork: EAGAIN", False), 0.2)
    assert record.state is State.BACKOFF


def test_stop_signals_the_group_then_kills_after_the_timeout() -> None:
    record = replace(running(pid=55), stop_signal=int(signal.SIGINT), stop_timeout=3.0)
    record, actions = step(record, StopRequested(), 10.0)
    assert record.state is State.STOPPING
    assert SignalGroup(1, 55, signal.SIGINT) in actions
    assert SetTimer(TimerKind.KILL, 13.0, 1) in actions
    record, actions = step(record, TimerFired(TimerKind.KILL, 1), 13.0)
    assert SignalGroup(1, 55, signal.SIGKILL) in actions
    assert record.state is State.STOPPING
    record, actions = step(record, ProcessExited(1, ExitStatus(signal=9)), 13.1)
    assert record.state is State.STOPPED
    assert record.pid is None
    assert CancelTimer(TimerKind.KILL) in actions
    assert not any(isinstance(a, Spawn) for a in actions)


def test_an_exit_while_stopping_is_not_a_failure() -> None:
    record, _ = run(running(), StopRequested(), ProcessExited(1, ExitStatus(code=0)))
    assert record.state is State.STOPPED
    assert record.restarts == 0
    assert record.failures == 0


def test_restart_stops_then_starts_a_fresh_instance() -> None:
    record, actions = run(running(), RestartRequested(), ProcessExited(1, ExitStatus(signal=15)))
    assert record.state is State.STARTING
    assert record.instance == 2
    assert Spawn(2) in actions
    assert record.restarts == 0  # asked for, not a failure


def test_stop_while_restarting_cancels_the_start() -> None:
    record, _ = run(running(), RestartRequested(), StopRequested(), ProcessExited(1, CRASH))
    assert record.state is State.STOPPED


def test_start_of_a_failed_service_gets_a_fresh_budget() -> None:
    record = ServiceRecord("api", state=State.FAILED, instance=4, failures=3)
    record, actions = step(record, StartRequested(), 0.0)
    assert record.state is State.STARTING
    assert record.failures == 0
    assert Spawn(5) in actions


@pytest.mark.parametrize(
    ("record", "event"),
    [
        (running(), StartRequested()),
        (ServiceRecord("api"), StopRequested()),
        (ServiceRecord("api"), ProcessExited(0, CRASH)),
        (running(instance=3), ProcessExited(2, CRASH)),  # a late exit of an older instance
        (running(instance=3), TimerFired(TimerKind.SETTLE, 2)),  # a stale timer
        (ServiceRecord("api", state=State.STOPPING, instance=1, pid=3), StopRequested()),
    ],
)
def test_illegal_events_change_nothing_and_say_why(record: ServiceRecord, event: Event) -> None:
    after, actions = step(record, event, 1.0)
    assert after == record
    assert len(actions) == 1
    assert isinstance(actions[0], Refused)
    assert actions[0].reason


def test_every_state_handles_dependency_changes() -> None:
    for state in State:
        assert (state, DependenciesChanged) in TABLE


# ── properties over any sequence of events ──────────────────────────────────────────────


KINDS = st.sampled_from(
    [
        "start",
        "stop",
        "restart",
        "spawned",
        "spawn_failed",
        "exited",
        "settle",
        "retry",
        "kill",
        "deps_down",
        "deps_up",
        "stale_exit",
        "ready",
        "not_ready",
        "unhealthy",
        "unhealthy_excused",
        "recovered",
        "deadline",
        "memory",
        "input_changed",
        "oom_exit",
    ]
)
HISTORIES = st.lists(st.tuples(KINDS, st.integers(0, 3), st.floats(0.0, 400.0)), max_size=40)
"""Event templates; instance numbers are filled in from the live record while replaying."""


def materialise(kind: str, n: int, record: ServiceRecord, pid: int) -> Event:
    i = record.instance
    return {
        "start": StartRequested(),
        "stop": StopRequested(),
        "restart": RestartRequested(),
        "spawned": Spawned(i, pid),
        "spawn_failed": SpawnFailed(i, "nope", n % 2 == 0),
        "exited": ProcessExited(i, ExitStatus(code=n)),
        "settle": TimerFired(TimerKind.SETTLE, i),
        "retry": TimerFired(TimerKind.RETRY, i),
        "kill": TimerFired(TimerKind.KILL, i),
        "deps_down": DependenciesChanged(("db",)),
        "deps_up": DependenciesChanged(()),
        "stale_exit": ProcessExited(max(0, i - 1 - n), ExitStatus(signal=9)),
        "ready": ReadinessChanged(i, True, "HTTP 200"),
        "not_ready": ReadinessChanged(i, False, "HTTP 503 for GET /readyz"),
        "unhealthy": LivenessFailed(i, "failed 3 times over 15s: HTTP 500"),
        "unhealthy_excused": LivenessFailed(i, "failed", excuse="its dependency db is not ready"),
        "recovered": LivenessRecovered(i, "HTTP 200"),
        "deadline": StartupTimedOut(i, "nothing listening on 127.0.0.1:8080"),
        "memory": MemoryExceeded(i, "limit 64.0MiB, peak 70.0MiB"),
        "input_changed": InputChanged("env file /srv/.env"),
        "oom_exit": ProcessExited(i, ExitStatus(signal=9), oom=True),
    }[kind]


@settings(max_examples=600, deadline=None)
@given(HISTORIES, st.booleans())
def test_no_history_breaks_the_invariants(
    history: list[tuple[str, int, float]], startup_check: bool
) -> None:
    record = ServiceRecord("api", startup_check=startup_check)
    now = 0.0
    pid = 1000
    for kind, n, dt in history:
        now += dt
        pid += 1
        before = record
        event = materialise(kind, n, record, pid)
        record, actions = step(record, event, now)
        spawns = [a for a in actions if isinstance(a, Spawn)]

        # never two processes: a spawn only happens when no instance is live
        assert len(spawns) <= 1
        if spawns:
            assert before.pid is None or isinstance(event, ProcessExited)
            assert spawns[0].instance == before.instance + 1
        # instance numbers only go up
        assert record.instance >= before.instance
        # a stopped service is quiet: nothing spawns it but a request
        if before.state is State.STOPPED and spawns:
            assert isinstance(event, StartRequested | RestartRequested)
        # a halted service spawns only when asked, on its slow retry timer, when an input of
        # it changed, or when a dependency it was waiting for became ready
        if before.state is State.FAILED and spawns:
            assert (
                isinstance(event, StartRequested | RestartRequested | InputChanged)
                or event == TimerFired(TimerKind.RETRY, before.instance)
                or (event == DependenciesChanged(()) and before.waiting_for)
            )
        # readiness never kills or restarts anything
        if isinstance(event, ReadinessChanged):
            assert not spawns
            assert not any(isinstance(a, SignalGroup) for a in actions)
        # an excused liveness failure never kills either
        if isinstance(event, LivenessFailed) and event.excuse:
            assert not any(isinstance(a, SignalGroup) for a in actions)
        # flags agree with the state
        if record.ready or record.degraded:
            assert record.state is State.RUNNING
        if record.kill_reason:
            assert record.state is State.STOPPING
        if record.state is State.FAILED:
            assert record.same_failures >= CRASH_LOOP
        # states agree with the pid
        if record.state in (State.STOPPED, State.BACKOFF, State.FAILED, State.PENDING):
            assert record.pid is None
        if record.state is State.RUNNING:
            assert record.pid is not None
        # a refusal changes nothing
        if any(isinstance(a, Refused) for a in actions):
            assert record == before


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.floats(0.0, 30.0).filter(lambda u: abs(u - STABLE_RUN) > 1e-6), min_size=1, max_size=30
    )
)
def test_a_crash_loop_never_restarts_faster_than_its_backoff(uptimes: list[float]) -> None:
    """Whatever the run lengths, after a short run the next start waits its back-off."""
    record = ServiceRecord("api")
    record, _ = step(record, StartRequested(), 0.0)
    now = 0.0
    for i, up in enumerate(uptimes, start=1):
        record, _ = step(record, Spawned(record.instance, i), now)
        record, _ = step(record, TimerFired(TimerKind.SETTLE, record.instance), now + SETTLE_TIME)
        now += SETTLE_TIME + up
        failures_before = record.failures
        # a different last line each time: no two failures alike, so nothing halts
        line = f"error {'x' * i}"
        record, actions = step(record, ProcessExited(record.instance, CRASH, line), now)
        stable = up >= STABLE_RUN
        expected_failures = 1 if stable else failures_before + 1
        assert record.failures == expected_failures
        if expected_failures == 1:
            assert record.state is State.STARTING
        else:
            assert record.state is State.BACKOFF
            timer = next(a for a in actions if isinstance(a, SetTimer))
            assert timer.at - now == pytest.approx(backoff_delay("api", expected_failures))
            assert timer.at - now <= MAX_DELAY * 1.1
            now = timer.at
            record, _ = step(record, TimerFired(TimerKind.RETRY, record.instance), now)
            assert record.state is State.STARTING
