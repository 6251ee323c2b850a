"""The lifecycle core's health rules: startup checks and deadlines, readiness, liveness,
crash-loop halting, dependencies and memory — driven with events and nothing else."""

from __future__ import annotations

import signal

from infraveil.core.diagnosis.finding import Verdict
from infraveil.core.exitstatus import ExitStatus
from infraveil.core.lifecycle import (
    CRASH_LOOP,
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
    RecordBoot,
    ServiceRecord,
    SetTimer,
    SignalGroup,
    Spawn,
    Spawned,
    StartRequested,
    StartupTimedOut,
    State,
    StopRequested,
    TimerFired,
    TimerKind,
    step,
)
from infraveil.core.restart import HALTED_RETRY, STABLE_RUN

CRASH = ExitStatus(code=1)


def emitted(actions: tuple[Action, ...] | list[Action]) -> dict[str, str]:
    return {a.reason: a.message for a in actions if isinstance(a, Emit)}


def signals(actions: tuple[Action, ...] | list[Action]) -> list[int]:
    return [a.signum for a in actions if isinstance(a, SignalGroup)]


def started(*, startup_check: bool = True, at: float = 0.0, deadline: float = 60.0):
    """A service spawned at `at` (instance 1, pid 100) that is starting."""
    record, _ = step(ServiceRecord("api", startup_check=startup_check), StartRequested(), at)
    record, actions = step(record, Spawned(1, 100, deadline=deadline), at)
    return record, actions


def ready_at(t: float, *, since: float = 0.0) -> ServiceRecord:
    record, _ = started(at=since)
    record, _ = step(record, ReadinessChanged(1, True, "HTTP 200"), t)
    return record


def crash(record: ServiceRecord, at: float, line: str = "KeyError: 'QUEUE_URL'", **kw: object):
    return step(record, ProcessExited(record.instance, CRASH, line, **kw), at)  # type: ignore[arg-type]


def respawn(record: ServiceRecord, at: float) -> ServiceRecord:
    """Let a backing-off service retry, and confirm the spawn."""
    if record.state is State.BACKOFF:
        record, _ = step(record, TimerFired(TimerKind.RETRY, record.instance), at)
    assert record.state is State.STARTING, record
    record, _ = step(record, Spawned(record.instance, 100 + record.instance), at)
    return record


# ── startup ──────────────────────────────────────────────────────────────────────────────


def test_a_startup_check_sets_the_deadline_instead_of_the_settle_timer() -> None:
    record, actions = started(at=5.0, deadline=42.0)
    assert SetTimer(TimerKind.DEADLINE, 47.0, 1) in actions
    assert not any(isinstance(a, SetTimer) and a.kind is TimerKind.SETTLE for a in actions)
    assert record.deadline == 42.0


def test_startup_ends_at_the_first_passing_check_and_records_the_boot() -> None:
    record, _ = started(at=10.0)
    record, actions = step(record, ReadinessChanged(1, False, "nothing listening"), 11.0)
    assert record.state is State.STARTING and actions == ()  # a failure only waits
    record, actions = step(record, ReadinessChanged(1, True, "HTTP 200"), 30.0)
    assert record.state is State.RUNNING and record.ready
    assert RecordBoot(1, 20.0) in actions
    assert CancelTimer(TimerKind.DEADLINE) in actions
    assert emitted(actions)["Ready"] == "ready after 20s: HTTP 200"


def test_a_boot_much_slower_than_usual_is_an_event_even_when_it_succeeds() -> None:
    record, _ = step(ServiceRecord("api", startup_check=True), StartRequested(), 0.0)
    record, _ = step(record, Spawned(1, 100, deadline=60.0, typical_boot=4.0), 0.0)
    _, actions = step(record, ReadinessChanged(1, True, "HTTP 200"), 12.0)
    assert "usually takes 4.0s" in emitted(actions)["SlowStart"]
    record, _ = step(ServiceRecord("api", startup_check=True), StartRequested(), 0.0)
    record, _ = step(record, Spawned(1, 100, deadline=60.0, typical_boot=4.0), 0.0)
    _, actions = step(record, ReadinessChanged(1, True, "HTTP 200"), 5.0)
    assert "SlowStart" not in emitted(actions)


def test_a_missed_deadline_stops_the_instance_and_counts_as_its_own_failure() -> None:
    record, _ = started(deadline=60.0)
    record, actions = step(record, StartupTimedOut(1, "nothing listening on 127.0.0.1:8080"), 60.0)
    assert record.state is State.STOPPING
    assert signals(actions) == [signal.SIGTERM]
    message = emitted(actions)["StartupTimeout"]
    assert message == (
        "did not become ready within its startup deadline of 1m00s:"
        " nothing listening on 127.0.0.1:8080"
    )
    record, actions = step(record, ProcessExited(1, ExitStatus(signal=signal.SIGTERM)), 60.5)
    assert record.state is State.STARTING  # the first failure restarts at once
    assert Spawn(2) in actions
    assert record.failures == 1
    assert record.signature == "deadline|nothing listening on #.#.#.#:#"


def test_without_a_check_the_service_is_up_and_ready_once_it_stayed_up() -> None:
    record, actions = started(startup_check=False)
    assert SetTimer(TimerKind.SETTLE, 1.0, 1) in actions
    record, _ = step(record, TimerFired(TimerKind.SETTLE, 1), 1.0)
    assert record.state is State.RUNNING and record.ready


# ── readiness and liveness ───────────────────────────────────────────────────────────────


def test_readiness_failure_only_flips_ready_and_never_kills() -> None:
    record = ready_at(2.0)
    record, actions = step(record, ReadinessChanged(1, False, "HTTP 503 for GET /readyz"), 50.0)
    assert record.state is State.RUNNING and not record.ready
    assert not signals(actions)
    assert emitted(actions)["NotReady"] == "readiness check failed: HTTP 503 for GET /readyz"
    record, actions = step(record, ReadinessChanged(1, False, "HTTP 503 for GET /readyz"), 55.0)
    assert actions == ()  # no flip, no event
    record, actions = step(record, ReadinessChanged(1, True, "HTTP 200"), 60.0)
    assert record.ready and "Ready" in emitted(actions)


def test_a_service_that_stays_unhealthy_is_restarted_and_it_counts_as_a_failure() -> None:
    record = ready_at(2.0)
    detail = "failed 4 times over 15s: no answer within 3s (GET /healthz)"
    record, actions = step(record, LivenessFailed(1, detail), 100.0)
    assert record.state is State.STOPPING and signals(actions) == [signal.SIGTERM]
    assert emitted(actions)["Unhealthy"] == f"liveness check {detail}"
    record, actions = step(record, ProcessExited(1, ExitStatus(signal=signal.SIGTERM)), 101.0)
    # it had run stably before: restarted at once, as a first failure
    assert record.state is State.STARTING and Spawn(2) in actions
    assert record.signature.startswith("liveness|")


def test_an_excused_liveness_failure_marks_degraded_instead_of_restarting() -> None:
    record = ready_at(2.0)
    excuse = "its dependency db is not ready"
    record, actions = step(record, LivenessFailed(1, "failed 3 times", excuse), 100.0)
    assert record.state is State.RUNNING and record.degraded == excuse
    assert not signals(actions)
    assert excuse in emitted(actions)["Degraded"]
    record, actions = step(record, LivenessFailed(1, "failed 4 times", excuse), 105.0)
    assert actions == ()  # said once
    storm = "6 of 10 services are failing their liveness checks at once"
    record, actions = step(record, LivenessFailed(1, "failed 5 times", storm), 106.0)
    assert actions == () and record.degraded == storm  # a new wording is kept, not announced
    record, actions = step(record, LivenessRecovered(1, "HTTP 200"), 110.0)
    assert record.degraded == "" and "Recovered" in emitted(actions)


def test_a_stop_during_a_liveness_kill_leaves_the_service_stopped() -> None:
    record = ready_at(2.0)
    record, _ = step(record, LivenessFailed(1, "failed"), 100.0)
    record, actions = step(record, StopRequested(), 100.5)
    assert "Stopping" in emitted(actions)
    record, actions = step(record, ProcessExited(1, ExitStatus(signal=signal.SIGTERM)), 101.0)
    assert record.state is State.STOPPED and not any(isinstance(a, Spawn) for a in actions)


# ── crash loops ──────────────────────────────────────────────────────────────────────────


def test_the_same_crash_three_times_while_starting_halts_the_service() -> None:
    record, _ = started()
    now = 0.0
    for n in range(1, CRASH_LOOP + 1):
        now += 0.5
        record, actions = crash(record, now, f"KeyError: 'QUEUE_URL' at 0x7f{n}a2b")
        if n < CRASH_LOOP:
            now = record.retry_at or now
            record = respawn(record, now)
    assert record.state is State.FAILED
    assert record.reason.startswith("failed the same way 3 times in a row: exited with code 1")
    assert "KeyError: 'QUEUE_URL'" in record.reason
    assert SetTimer(TimerKind.RETRY, now + HALTED_RETRY, record.instance) in actions
    assert "Halted" in emitted(actions)


def test_different_crashes_back_off_without_halting() -> None:
    record, _ = started()
    now = 0.0
    for word in ("alpha", "beta", "gamma", "delta", "epsilon"):
        now += 0.5
        record, _ = crash(record, now, f"error: {word}")
        assert record.state is not State.FAILED
        now = record.retry_at or now
        record = respawn(record, now)


MISSING_ENV = Verdict(
    "missing_env", True, "missing_env|KeyError: 'QUEUE_URL'", "worker needs QUEUE_URL."
)
REFUSED = Verdict(
    "dependency_unreachable",
    False,
    "dependency_unreachable|connection refused: #.#.#.#:#",
    "worker could not connect to 10.0.0.5:5432.",
)


def test_a_deterministic_diagnosis_halts_after_three_and_says_why() -> None:
    record, _ = started()
    now = 0.0
    for n in range(1, CRASH_LOOP + 1):
        now += 0.5
        # the last lines differ (a pointer, a pid): the diagnosis still sees the same failure
        record, actions = crash(record, now, f"at 0x7f{n}", verdict=MISSING_ENV)
        if n < CRASH_LOOP:
            assert record.state is State.BACKOFF or record.state is State.STARTING
            now = record.retry_at or now
            record = respawn(record, now)
    assert record.state is State.FAILED and record.diagnosis == "missing_env"
    assert record.reason.endswith("exited with code 1 after 0.5s: worker needs QUEUE_URL.")
    halted = emitted(actions)["Halted"]
    assert "worker needs QUEUE_URL; not restarting" in halted


def test_a_transient_diagnosis_backs_off_and_never_halts() -> None:
    record, _ = started()
    now = 0.0
    for _ in range(CRASH_LOOP * 4):
        now += 0.5
        record, _ = crash(record, now, "connection refused", verdict=REFUSED)
        assert record.state is State.BACKOFF or record.state is State.STARTING
        assert record.diagnosis == "dependency_unreachable"
        now = record.retry_at or now
        record = respawn(record, now)
    assert record.failures == CRASH_LOOP * 4  # the back-off still grows


def test_a_hang_the_agent_ended_is_transient_and_keeps_its_category() -> None:
    hang = Verdict("unresponsive", False, "unresponsive|x", "web stopped answering.")
    record = ready_at(1.0)
    now = 2.0
    for n in range(1, CRASH_LOOP + 3):
        # hangs soon after each start: never a stable run, the same kill every time
        record, _ = step(record, LivenessFailed(n, "failed 3 times over 15s: no answer"), now)
        exited = ProcessExited(n, ExitStatus(signal=signal.SIGTERM), verdict=hang)
        record, _ = step(record, exited, now + 0.5)
        assert record.state is not State.FAILED and record.diagnosis == "unresponsive"
        assert record.signature.startswith("liveness|")  # the kill's signature is kept
        now = (record.retry_at or now) + 0.1
        record = respawn(record, now)
        record, _ = step(record, ReadinessChanged(record.instance, True, "ok"), now + 0.1)
        now += 1.0


def test_an_unknown_diagnosis_keeps_the_last_line_signature() -> None:
    unknown = Verdict("unknown", False, "unknown|", "no evidence")
    record, _ = started()
    now = 0.0
    for n in range(1, CRASH_LOOP + 1):
        now += 0.5
        record, _ = crash(record, now, "the same last line", verdict=unknown)
        if n < CRASH_LOOP:
            now = record.retry_at or now
            record = respawn(record, now)
    assert record.state is State.FAILED  # three identical crashes are the evidence
    assert "last line: the same last line" in record.reason and record.diagnosis == ""


def test_a_stable_run_starts_the_count_over() -> None:
    record, _ = started()
    now = 0.0
    for _ in range(CRASH_LOOP + 2):
        record, _ = step(record, ReadinessChanged(record.instance, True, "ok"), now + 1)
        now += 1 + STABLE_RUN + 1
        record, _ = crash(record, now)
        assert record.state is State.STARTING and record.same_failures == 1
        record = respawn(record, now)


def test_a_halted_service_retries_when_an_input_changes_and_halts_again_at_once() -> None:
    record, _ = started()
    now = 0.0
    while record.state is not State.FAILED:
        now += 0.5
        record, _ = crash(record, now, "FileNotFoundError: /etc/app/config.yml")
        if record.state is not State.FAILED:
            now = record.retry_at or now
            record = respawn(record, now)
    record, actions = step(record, InputChanged("/etc/app/config.yml"), now + 5)
    assert record.state is State.STARTING
    assert emitted(actions)["Retrying"] == "/etc/app/config.yml changed; trying again"
    record = respawn(record, now + 5)
    record, _ = crash(record, now + 6, "FileNotFoundError: /etc/app/config.yml")
    assert record.state is State.FAILED  # the change did not help: no three more tries
    # a person's restart gives it a fresh budget
    record, _ = step(record, StartRequested(), now + 10)
    assert record.same_failures == 0 and record.state is State.STARTING


def test_a_crash_while_a_dependency_is_down_is_not_counted_and_waits_for_it() -> None:
    record = ready_at(2.0)
    record, _ = step(record, DependenciesChanged(("db",)), 20.0)
    assert record.state is State.RUNNING and "db" in record.reason
    for _ in range(5):
        record, actions = crash(record, 21.0, "connection refused: db:5432")
        assert record.state is State.PENDING
        assert record.failures == 0 and record.same_failures == 0
        assert "not counted" in emitted(actions)["Waiting"]
        record, actions = step(record, DependenciesChanged(()), 30.0)
        assert record.state is State.STARTING
        record, _ = step(record, Spawned(record.instance, 100 + record.instance), 30.0)
        record, _ = step(record, ReadinessChanged(record.instance, True, "ok"), 31.0)
        record, _ = step(record, DependenciesChanged(("db",)), 32.0)


def test_a_back_off_retry_waits_for_dependencies_that_are_not_ready() -> None:
    record, _ = started()
    record, _ = crash(record, 0.5, "one")
    record = respawn(record, 0.5)
    record, _ = crash(record, 1.0, "two")
    assert record.state is State.BACKOFF
    record, _ = step(record, DependenciesChanged(("db",)), 1.1)
    record, _ = step(record, TimerFired(TimerKind.RETRY, record.instance), record.retry_at or 2)
    assert record.state is State.PENDING and record.reason == "waiting for db"


def test_a_halted_service_retries_when_its_dependency_becomes_ready_again() -> None:
    record = ServiceRecord("api", state=State.FAILED, instance=3, same_failures=CRASH_LOOP)
    record, _ = step(record, DependenciesChanged(("db",)), 1.0)
    assert record.state is State.FAILED
    record, actions = step(record, DependenciesChanged(()), 2.0)
    assert record.state is State.STARTING and Spawn(4) in actions
    assert "db is ready again" in emitted(actions)["Retrying"]


# ── memory ───────────────────────────────────────────────────────────────────────────────


def test_the_memory_watchdog_kills_at_once_and_the_exit_is_an_oom_kill() -> None:
    record = ready_at(2.0)
    record, actions = step(record, MemoryExceeded(1, "limit 64.0MiB, peak 70.0MiB"), 3.0)
    assert signals(actions) == [signal.SIGKILL]
    assert emitted(actions)["OOMKilled"] == "OOMKilled: limit 64.0MiB, peak 70.0MiB"
    record, _ = step(record, ProcessExited(1, ExitStatus(signal=signal.SIGKILL)), 3.1)
    assert record.signature == "oom"


def test_a_kernel_oom_kill_is_reported_as_such_not_as_sigkill() -> None:
    record = ready_at(2.0)
    event = ProcessExited(1, ExitStatus(signal=9), oom=True, memory="limit 64.0MiB, peak 64.0MiB")
    record, actions = step(record, event, 3.0)
    message = emitted(actions)["OOMKilled"]
    assert message.startswith("OOMKilled after ") and "limit 64.0MiB, peak 64.0MiB" in message
    assert record.signature == "oom"


def test_instance_events_for_an_older_instance_are_refused() -> None:
    record = ready_at(2.0)
    events: list[Event] = [
        ReadinessChanged(0, False, "x"),
        LivenessFailed(0, "x"),
        StartupTimedOut(0, "x"),
        MemoryExceeded(0, "x"),
    ]
    for event in events:
        after, actions = step(record, event, 5.0)
        assert after == record and len(actions) == 1
