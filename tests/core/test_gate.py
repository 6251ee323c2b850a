"""The deploy gate, driven with events and nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infraveil.core.gate import (
    Action,
    CancelTimer,
    CandidateFailed,
    CandidateNotReady,
    CandidateReady,
    CandidateStarted,
    Decided,
    Event,
    Failure,
    Gate,
    Interrupted,
    Kind,
    MarkKnownGood,
    NotHealthyInTime,
    Phase,
    PreflightFailed,
    PreflightPassed,
    Promote,
    Refused,
    Report,
    RunPreflight,
    SetTimer,
    StartCandidate,
    StartRelease,
    StopService,
    Superseded,
    TimerFired,
    TimerKind,
    Verified,
    Verify,
    VerifyFailed,
    begin,
    gate_from_json,
    gate_to_json,
    step,
)

VERIFIED = Verified("sha256 3f2a9c…, 12 files")
PREFLIGHT_OK = PreflightPassed()
STARTED = CandidateStarted(instance=1, pid=4242, deadline=10.0)
RESTARTED = CandidateStarted(instance=2, pid=4243, deadline=10.0)
READY = CandidateReady("HTTP 200 from GET /healthz")
NOT_READY = CandidateNotReady("HTTP 503 from GET /readyz")
NEVER_READY = NotHealthyInTime("nothing listening on 127.0.0.1:8080")
INTERRUPTED = Interrupted("the agent restarted")
SOAK_OVER = TimerFired(TimerKind.SOAK)
WATCH_OVER = TimerFired(TimerKind.WATCH)

MISSING_ENV = Failure(
    "exited with code 1 after 0.8s", "KeyError: 'DATABASE_URL'", "missing_env", instance=1
)
SEGFAULT = Failure("killed by SIGSEGV after 2.0s", "Segmentation fault", "segfault", instance=3)
PORT_IN_USE = Failure("port 8080 is in use", "held by pid 77 (nginx)", "port_in_use")

WHY = "(see `infraveil why api`)"
NO_FURTHER = "infraveil does not roll back further."


def crashed(
    signature: str = "a", *, halted: bool = False, failure: Failure = MISSING_ENV
) -> CandidateFailed:
    return CandidateFailed(failure, signature, halted=halted)


def begun(
    version: str = "v2",
    *,
    previous: str | None = "v1",
    known_good: str | None = "v1",
    kind: Kind = Kind.DEPLOY,
    soak: float = 10.0,
    watch: float = 60.0,
) -> Gate:
    gate, actions = begin(
        "api",
        version,
        previous=previous,
        known_good=known_good,
        kind=kind,
        soak=soak,
        watch=watch,
    )
    assert actions == (Verify(),)
    return gate


def run(gate: Gate, *events: Event, start: float, dt: float = 1.0):
    """Feed events one after the other, `dt` seconds apart; the final gate and all actions."""
    now = start
    actions: list[Action] = []
    for event in events:
        gate, out = step(gate, event, now)
        actions.extend(out)
        now += dt
    return gate, actions


def of(kind: type, actions: list[Action] | tuple[Action, ...]) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def decided(actions: list[Action] | tuple[Action, ...]) -> Decided:
    (answer,) = of(Decided, actions)
    return answer


def starting(**kw: Any) -> Gate:
    return run(begun(**kw), VERIFIED, PREFLIGHT_OK, STARTED, start=0.0)[0]


def soaking(**kw: Any) -> Gate:
    return run(starting(**kw), READY, start=10.0)[0]


def watching(**kw: Any) -> Gate:
    return run(soaking(**kw), SOAK_OVER, start=20.0)[0]


def rolling_back(**kw: Any) -> Gate:
    return run(starting(**kw), crashed(halted=True), start=10.0)[0]


REACH: dict[Phase, Callable[[], Gate]] = {
    Phase.VERIFYING: begun,
    Phase.PREFLIGHT: lambda: run(begun(), VERIFIED, start=0.0)[0],
    Phase.STARTING: starting,
    Phase.SOAKING: soaking,
    Phase.WATCHING: watching,
    Phase.ROLLING_BACK: rolling_back,
    Phase.PASSED: lambda: run(watching(), WATCH_OVER, start=30.0)[0],
    Phase.REJECTED: lambda: run(begun(), VerifyFailed("sha256 mismatch"), start=0.0)[0],
    Phase.ROLLED_BACK: lambda: run(rolling_back(), STARTED, READY, start=20.0)[0],
    Phase.FAILED: lambda: run(starting(known_good=None), crashed(halted=True), start=10.0)[0],
    Phase.ROLLBACK_FAILED: lambda: run(rolling_back(), STARTED, NEVER_READY, start=20.0)[0],
    Phase.SUPERSEDED: lambda: run(watching(), Superseded("v3"), start=30.0)[0],
}
FINAL = [p for p in Phase if p.final]


def test_every_phase_can_be_reached() -> None:
    for phase, reach in REACH.items():
        assert reach().phase is phase
    assert set(REACH) == set(Phase)


# ── 1. the happy path ────────────────────────────────────────────────────────────────────


def test_a_good_release_goes_through_every_step_and_becomes_known_good() -> None:
    gate = begun()
    assert gate.phase is Phase.VERIFYING

    gate, actions = step(gate, VERIFIED, 1.0)
    assert gate.phase is Phase.PREFLIGHT
    assert RunPreflight() in actions
    assert Report("verify", VERIFIED.detail) in actions

    gate, actions = step(gate, PREFLIGHT_OK, 2.0)
    assert gate.phase is Phase.STARTING
    assert StartCandidate() in actions

    gate, actions = step(gate, CandidateStarted(1, 4242, deadline=10.0), 3.0)
    assert gate.phase is Phase.STARTING
    assert gate.started
    assert of(SetTimer, actions) == [SetTimer(TimerKind.HEALTHY, 13.0)]

    gate, actions = step(gate, READY, 5.0)
    assert gate.phase is Phase.SOAKING
    assert CancelTimer(TimerKind.HEALTHY) in actions
    assert of(SetTimer, actions) == [SetTimer(TimerKind.SOAK, 15.0)]
    assert not of(Promote, actions)

    gate, actions = step(gate, SOAK_OVER, 15.0)
    assert gate.phase is Phase.WATCHING
    assert gate.promoted
    assert of(Promote, actions) == [Promote()]
    assert of(SetTimer, actions) == [SetTimer(TimerKind.WATCH, 75.0)]
    assert decided(actions) == Decided(
        True, "v2 is live; a crash in the next 1m00s still rolls it back to v1."
    )
    assert not of(MarkKnownGood, actions)

    gate, actions = step(gate, WATCH_OVER, 160.0)
    assert gate.phase is Phase.PASSED
    assert gate.failure is None
    assert of(MarkKnownGood, actions) == [MarkKnownGood()]
    assert not of(Decided, actions)  # the person deploying had their answer at the promotion


def test_the_whole_run_starts_one_candidate_and_never_the_old_release() -> None:
    gate, actions = run(
        begun(), VERIFIED, PREFLIGHT_OK, STARTED, READY, SOAK_OVER, WATCH_OVER, start=0.0
    )
    assert gate.phase is Phase.PASSED
    assert of(StartCandidate, actions) == [StartCandidate()]
    assert not of(StartRelease, actions)
    assert not of(StopService, actions)
    assert [a.live for a in of(Decided, actions)] == [True]


def test_no_soak_promotes_right_when_ready() -> None:
    gate, actions = step(starting(soak=0.0), READY, 100.0)
    assert gate.phase is Phase.WATCHING
    assert of(Promote, actions) == [Promote()]
    assert of(SetTimer, actions) == [SetTimer(TimerKind.WATCH, 160.0)]
    assert decided(actions).live
    assert Report("soak", "no soak") in actions


def test_no_watch_makes_it_known_good_at_the_promotion() -> None:
    gate, actions = step(soaking(watch=0.0), SOAK_OVER, 100.0)
    assert gate.phase is Phase.PASSED
    assert of(Promote, actions) == [Promote()]
    assert of(MarkKnownGood, actions) == [MarkKnownGood()]
    assert actions.index(Promote()) < actions.index(MarkKnownGood())
    assert not of(SetTimer, actions)
    assert decided(actions) == Decided(True, "v2 is live.")


def test_no_soak_and_no_watch_passes_at_ready() -> None:
    gate, actions = step(starting(soak=0.0, watch=0.0), READY, 100.0)
    assert gate.phase is Phase.PASSED
    assert of(Promote, actions) == [Promote()]
    assert of(MarkKnownGood, actions) == [MarkKnownGood()]


def test_a_restart_while_starting_keeps_the_first_deadline() -> None:
    gate, _ = run(begun(), VERIFIED, PREFLIGHT_OK, start=0.0)
    gate, actions = step(gate, CandidateStarted(1, 10, deadline=10.0), 100.0)
    assert SetTimer(TimerKind.HEALTHY, 110.0) in actions
    gate, _ = step(gate, crashed("a"), 101.0)
    gate, actions = step(gate, CandidateStarted(2, 11, deadline=10.0), 102.0)
    assert gate.phase is Phase.STARTING
    assert not of(SetTimer, actions)  # the deadline runs from the first start


# ── 2. a crash on boot ───────────────────────────────────────────────────────────────────


def test_a_first_crash_while_starting_is_forgiven() -> None:
    gate, actions = step(starting(), crashed("a"), 100.0)
    assert gate.phase is Phase.STARTING
    assert gate.signatures == ("a",)
    assert gate.failure is None
    (report,) = of(Report, actions)
    assert report.warning
    assert MISSING_ENV.evidence in report.message
    assert not of(StartRelease, actions)
    assert not of(Decided, actions)


def test_the_same_crash_twice_rolls_back_to_the_known_good() -> None:
    gate, actions = run(starting(), crashed("a"), RESTARTED, crashed("a"), start=100.0)
    assert gate.phase is Phase.ROLLING_BACK
    assert of(StartRelease, actions) == [StartRelease("v1")]
    assert gate.failure is not None
    assert "the second time" in gate.failure.what
    assert gate.failure.evidence == MISSING_ENV.evidence
    assert not gate.started
    assert gate.signatures == ()  # the known-good starts with a clean slate
    assert CancelTimer(TimerKind.HEALTHY) in actions
    assert not of(Decided, actions)  # decided once the known-good is back


def test_a_different_crash_the_second_time_keeps_starting() -> None:
    gate, actions = run(
        starting(), crashed("a"), RESTARTED, crashed("b", failure=SEGFAULT), start=100.0
    )
    assert gate.phase is Phase.STARTING
    assert gate.signatures == ("a", "b")
    assert not of(StartRelease, actions)


def test_a_halted_crash_fails_the_gate_at_once() -> None:
    gate, actions = step(starting(), crashed("a", halted=True), 100.0)
    assert gate.phase is Phase.ROLLING_BACK
    assert gate.failure == MISSING_ENV
    assert of(StartRelease, actions) == [StartRelease("v1")]


def test_the_known_good_back_and_ready_ends_rolled_back_with_one_clear_sentence() -> None:
    gate, _ = run(starting(), crashed("a"), RESTARTED, crashed("a"), start=100.0)
    gate, actions = run(gate, CandidateStarted(5, 900, deadline=30.0), start=200.0)
    assert gate.phase is Phase.ROLLING_BACK
    assert of(SetTimer, actions) == [SetTimer(TimerKind.ROLLBACK, 230.0)]

    gate, actions = step(gate, READY, 210.0)
    assert gate.phase is Phase.ROLLED_BACK
    assert CancelTimer(TimerKind.ROLLBACK) in actions
    answer = decided(actions)
    assert not answer.live
    assert answer.sentence == (
        "v2 failed the gate: exited with code 1 after 0.8s, the second time"
        " — `KeyError: 'DATABASE_URL'` (see `infraveil why api`);"
        " rolled back: v1 is serving again."
    )
    for part in ("v2", MISSING_ENV.what, f"`{MISSING_ENV.evidence}`", WHY, "v1 is serving again"):
        assert part in answer.sentence


# ── 3. never healthy ─────────────────────────────────────────────────────────────────────


def test_not_ready_within_the_startup_deadline_rolls_back() -> None:
    gate, actions = step(starting(), NEVER_READY, 100.0)
    assert gate.phase is Phase.ROLLING_BACK
    assert of(StartRelease, actions) == [StartRelease("v1")]
    assert gate.failure is not None
    assert "startup deadline" in gate.failure.what
    assert gate.failure.evidence == NEVER_READY.detail
    gate, actions = run(gate, STARTED, READY, start=200.0)
    assert f"`{NEVER_READY.detail}`" in decided(actions).sentence


# ── 4. the soak ──────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "event",
    [NOT_READY, crashed("a"), crashed("a", halted=True)],
    ids=["not ready", "first crash", "halted crash"],
)
def test_any_failure_during_the_soak_fails_the_gate_at_once(event: Event) -> None:
    gate, actions = step(soaking(), event, 100.0)
    assert gate.phase is Phase.ROLLING_BACK
    assert of(StartRelease, actions) == [StartRelease("v1")]
    assert CancelTimer(TimerKind.SOAK) in actions
    assert not of(Promote, actions)


def test_not_ready_during_the_soak_says_so() -> None:
    gate, _ = step(soaking(), NOT_READY, 100.0)
    assert gate.failure == Failure("stopped being ready during the soak", NOT_READY.detail)


# ── 5. the watch ─────────────────────────────────────────────────────────────────────────


def test_a_crash_during_the_watch_rolls_back_to_the_known_good_from_begin() -> None:
    gate, actions = step(watching(), crashed("a"), 100.0)
    assert gate.phase is Phase.ROLLING_BACK
    assert gate.known_good == "v1"  # the candidate never became known-good
    assert of(StartRelease, actions) == [StartRelease("v1")]
    assert CancelTimer(TimerKind.WATCH) in actions
    assert not of(MarkKnownGood, actions)
    (failed,) = [r for r in of(Report, actions) if r.step == "failed"]
    assert "(after its promotion)" in failed.message

    gate, actions = run(gate, STARTED, READY, start=200.0)
    assert gate.phase is Phase.ROLLED_BACK
    answer = decided(actions)
    assert not answer.live
    assert answer.sentence.startswith("v2 failed its watch: ")
    assert answer.sentence.endswith("v1 is serving again.")


def test_a_crash_during_the_watch_with_no_known_good_stops_it_and_says_when() -> None:
    gate, actions = step(watching(known_good=None), crashed("a"), 100.0)
    assert gate.phase is Phase.FAILED
    assert StopService() in actions
    sentence = decided(actions).sentence
    assert "failed its watch" in sentence
    assert "(after its promotion)" in sentence


def test_a_newer_deploy_during_the_watch_ends_it_without_making_it_known_good() -> None:
    gate, actions = step(watching(), Superseded("v3"), 40.0)
    assert gate.phase is Phase.SUPERSEDED and gate.phase.final
    assert CancelTimer(TimerKind.WATCH) in actions
    assert not of(MarkKnownGood, actions) and not of(StartRelease, actions)
    assert not of(Decided, actions)  # the person had "live" already; the newer deploy speaks now
    for phase in (Phase.STARTING, Phase.SOAKING, Phase.ROLLING_BACK):
        before = REACH[phase]()
        after, refused = step(before, Superseded("v3"), 40.0)
        assert after == before and len(refused) == 1 and isinstance(refused[0], Refused)


def test_the_watch_timer_after_a_failure_in_the_watch_is_refused() -> None:
    gate, _ = step(watching(), crashed("a"), 100.0)
    after, actions = step(gate, WATCH_OVER, 160.0)
    assert after == gate
    assert of(MarkKnownGood, actions) == []
    assert len(actions) == 1
    assert isinstance(actions[0], Refused)


# ── 6. rejected before anything ran ──────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("events", "sentence"),
    [
        (
            (VerifyFailed("sha256 mismatch: expected 3f2a, got 9c1b"),),
            "v2 was rejected at verify: sha256 mismatch: expected 3f2a, got 9c1b;"
            " v1 kept serving (it was not touched).",
        ),
        (
            (VERIFIED, PreflightFailed(PORT_IN_USE)),
            "v2 was rejected at preflight: port 8080 is in use — `held by pid 77 (nginx)`;"
            " v1 kept serving (it was not touched).",
        ),
    ],
    ids=["verify", "preflight"],
)
def test_a_rejected_release_touches_nothing(events: tuple[Event, ...], sentence: str) -> None:
    gate, actions = run(begun(), *events, start=0.0)
    assert gate.phase is Phase.REJECTED
    assert not gate.touched
    assert gate.failure is not None
    assert decided(actions) == Decided(False, sentence)
    assert not of(StartCandidate, actions)
    assert not of(StartRelease, actions)
    assert not of(StopService, actions)


def test_a_rejected_first_deploy_says_nothing_was_changed() -> None:
    gate, actions = run(
        begun(previous=None, known_good=None), VERIFIED, PreflightFailed(PORT_IN_USE), start=0.0
    )
    assert gate.phase is Phase.REJECTED
    sentence = decided(actions).sentence
    assert sentence.endswith("; nothing was changed.")
    assert "kept serving" not in sentence
    assert not of(StopService, actions)


# ── 7. no known-good (the first deploy) ──────────────────────────────────────────────────


@pytest.mark.parametrize(
    "event",
    [crashed("a", halted=True), NEVER_READY, INTERRUPTED],
    ids=["halted crash", "never ready", "interrupted"],
)
def test_a_failure_with_no_known_good_stops_the_service(event: Event) -> None:
    gate, actions = step(starting(previous=None, known_good=None), event, 100.0)
    assert gate.phase is Phase.FAILED
    assert of(StopService, actions) == [StopService()]
    assert not of(StartRelease, actions)
    sentence = decided(actions).sentence
    assert not decided(actions).live
    assert "there is no known-good release to go back to" in sentence
    assert "api was stopped" in sentence
    # `why` is pointed to when an instance failed, not when the agent was restarted
    assert (WHY in sentence) is (event is not INTERRUPTED)


def test_the_first_deploy_failing_reads_as_one_sentence() -> None:
    _, actions = step(starting(known_good=None), crashed("a", halted=True), 100.0)
    assert decided(actions).sentence == (
        "v2 failed the gate: exited with code 1 after 0.8s — `KeyError: 'DATABASE_URL'`"
        " (see `infraveil why api`); there is no known-good release to go back to,"
        " so api was stopped."
    )


def test_the_first_deploy_can_still_soak_and_pass() -> None:
    gate, actions = run(
        begun(previous=None, known_good=None),
        VERIFIED,
        PREFLIGHT_OK,
        STARTED,
        READY,
        SOAK_OVER,
        WATCH_OVER,
        start=0.0,
    )
    assert gate.phase is Phase.PASSED
    assert of(MarkKnownGood, actions) == [MarkKnownGood()]


# ── 8. the known-good fails too ──────────────────────────────────────────────────────────


def _rollback_started() -> Gate:
    return run(rolling_back(), CandidateStarted(7, 990, deadline=30.0), start=20.0)[0]


@pytest.mark.parametrize(
    ("events", "second_what"),
    [
        (
            (crashed("z", failure=SEGFAULT), crashed("z", failure=SEGFAULT)),
            "killed by SIGSEGV after 2.0s, the second time",
        ),
        ((crashed("z", halted=True, failure=SEGFAULT),), "killed by SIGSEGV after 2.0s"),
        ((NEVER_READY,), "did not become ready within its startup deadline"),
    ],
    ids=["same crash twice", "halted", "never ready"],
)
def test_a_failing_known_good_is_not_rolled_back_further(
    events: tuple[Event, ...], second_what: str
) -> None:
    gate, actions = run(_rollback_started(), *events, start=200.0)
    assert gate.phase is Phase.ROLLBACK_FAILED
    assert gate.failure == MISSING_ENV  # the candidate's failure is kept
    assert gate.rollback_failure is not None
    assert gate.rollback_failure.what == second_what
    assert not of(StartRelease, actions)
    assert not of(StartCandidate, actions)
    assert CancelTimer(TimerKind.ROLLBACK) in actions
    answer = decided(actions)
    assert not answer.live
    assert answer.sentence.startswith(f"v2 failed the gate: {MISSING_ENV.describe()}; ")
    assert f"rolling back to v1 failed too: {second_what}" in answer.sentence
    why = "" if events[-1] is INTERRUPTED else WHY
    assert answer.sentence.endswith(f"{why}. Nothing of api is serving; {NO_FURTHER}")


def test_a_first_different_crash_of_the_known_good_is_forgiven() -> None:
    gate, actions = run(_rollback_started(), crashed("z", failure=SEGFAULT), start=200.0)
    assert gate.phase is Phase.ROLLING_BACK
    assert gate.signatures == ("z",)
    assert not of(StartRelease, actions)
    assert not of(Decided, actions)


def test_the_candidates_signature_does_not_count_against_the_known_good() -> None:
    # the candidate failed with "a"; the known-good failing with "a" once is its first time
    gate, _ = run(starting(), crashed("a"), RESTARTED, crashed("a"), start=100.0)
    gate, _ = run(gate, STARTED, crashed("a"), start=200.0)
    assert gate.phase is Phase.ROLLING_BACK


# ── 9. a rollback asked for by a person ──────────────────────────────────────────────────


def _rollback_to_known_good(**kw: Any) -> Gate:
    return begun("v1", previous="v2", known_good="v1", kind=Kind.ROLLBACK, **kw)


def test_the_known_good_deployed_again_is_never_rolled_back_to_itself() -> None:
    again = begun("v1", previous="v1", known_good="v1", kind=Kind.DEPLOY)
    gate, actions = run(
        again, VERIFIED, PREFLIGHT_OK, STARTED, crashed("a", halted=True), start=0.0
    )
    assert gate.phase is Phase.ROLLBACK_FAILED
    assert not of(StartRelease, actions) and not of(StopService, actions)
    sentence = decided(actions).sentence
    assert sentence.startswith("v1 failed the gate: ")
    assert "v1 is itself the known-good release, so there is nothing to go back to" in sentence
    # and its promise at promotion does not mention a rollback to itself
    _, live = run(again, VERIFIED, PREFLIGHT_OK, STARTED, READY, SOAK_OVER, start=0.0)
    assert decided(live).sentence == "v1 is live; it is watched for 1m00s."


@pytest.mark.parametrize(
    "events",
    [
        (VERIFIED, PREFLIGHT_OK, STARTED, crashed("a", halted=True)),
        (VERIFIED, PREFLIGHT_OK, STARTED, crashed("a"), RESTARTED, crashed("a")),
        (VERIFIED, PREFLIGHT_OK, STARTED, NEVER_READY),
        (VERIFIED, PREFLIGHT_OK, STARTED, READY, NOT_READY),
        (VERIFIED, PREFLIGHT_OK, STARTED, READY, SOAK_OVER, crashed("a")),
        (VERIFIED, PREFLIGHT_OK, STARTED, INTERRUPTED),
    ],
    ids=["halted", "same crash twice", "never ready", "not ready", "watch", "interrupted"],
)
def test_a_rollback_to_the_known_good_is_never_rolled_back(events: tuple[Event, ...]) -> None:
    gate, actions = run(_rollback_to_known_good(), *events, start=0.0)
    assert gate.phase is Phase.ROLLBACK_FAILED
    assert not of(StartRelease, actions)
    assert not of(StopService, actions)
    answer = of(Decided, actions)[-1]  # a failed watch is decided a second time
    assert not answer.live
    assert answer.sentence.startswith("rolling back to v1 failed: ")
    why = "" if events[-1] is INTERRUPTED else WHY
    assert answer.sentence.endswith(f"{why}. Nothing of api is serving; {NO_FURTHER}")
    # and it is over: nothing more happens to it
    after, more = step(gate, crashed("a"), 1000.0)
    assert after == gate
    assert len(more) == 1
    assert isinstance(more[0], Refused)


def test_a_rollback_to_an_older_release_falls_back_to_the_known_good() -> None:
    gate = begun("v0", previous="v2", known_good="v1", kind=Kind.ROLLBACK)
    gate, actions = run(gate, VERIFIED, PREFLIGHT_OK, STARTED, crashed("a", halted=True), start=0.0)
    assert gate.phase is Phase.ROLLING_BACK
    assert of(StartCandidate, actions) == [StartCandidate()]
    assert of(StartRelease, actions) == [StartRelease("v1")]
    gate, actions = run(gate, STARTED, READY, start=200.0)
    assert gate.phase is Phase.ROLLED_BACK
    assert decided(actions).sentence.startswith("v0 failed the gate: ")


def test_a_rollback_to_the_known_good_that_passes_is_known_good_again() -> None:
    gate, actions = run(
        _rollback_to_known_good(), VERIFIED, PREFLIGHT_OK, STARTED, READY, start=0.0
    )
    gate, more = run(gate, SOAK_OVER, WATCH_OVER, start=200.0)
    assert gate.phase is Phase.PASSED
    assert of(MarkKnownGood, [*actions, *more]) == [MarkKnownGood()]


# ── 10. a gate found unfinished by a new agent ───────────────────────────────────────────


@pytest.mark.parametrize("phase", [Phase.VERIFYING, Phase.PREFLIGHT])
def test_interrupted_before_the_start_rejects_and_touches_nothing(phase: Phase) -> None:
    gate, actions = step(REACH[phase](), INTERRUPTED, 500.0)
    assert gate.phase is Phase.REJECTED
    assert not gate.touched
    answer = decided(actions)
    assert not answer.live
    assert INTERRUPTED.why in answer.sentence
    assert answer.sentence.endswith("v1 kept serving (it was not touched).")
    assert not of(StartCandidate, actions)
    assert not of(StartRelease, actions)
    assert not of(StopService, actions)


@pytest.mark.parametrize("phase", [Phase.STARTING, Phase.SOAKING])
def test_interrupted_before_the_promotion_rolls_back(phase: Phase) -> None:
    gate, actions = step(REACH[phase](), INTERRUPTED, 500.0)
    assert gate.phase is Phase.ROLLING_BACK
    assert of(StartRelease, actions) == [StartRelease("v1")]
    assert gate.failure is not None
    assert INTERRUPTED.why in gate.failure.what
    assert "before it was promoted" in gate.failure.what


def test_interrupted_while_watching_watches_a_whole_window_again() -> None:
    before = watching()
    gate, actions = step(before, INTERRUPTED, 500.0)
    assert gate == before
    assert of(SetTimer, actions) == [SetTimer(TimerKind.WATCH, 560.0)]
    assert not of(StartRelease, actions)
    assert not of(Promote, actions)
    assert not of(Decided, actions)


def test_interrupted_while_rolling_back_starts_the_known_good_again_with_a_clean_slate() -> None:
    before, _ = run(_rollback_started(), crashed("z", failure=SEGFAULT), start=200.0)
    assert before.started
    assert before.signatures == ("z",)
    gate, actions = step(before, INTERRUPTED, 500.0)
    assert gate.phase is Phase.ROLLING_BACK
    assert of(StartRelease, actions) == [StartRelease("v1")]
    assert not gate.started
    assert gate.signatures == ()
    assert gate.failure == before.failure
    # the same crash again is the known-good's first since the restart
    gate, _ = run(gate, STARTED, crashed("z", failure=SEGFAULT), start=510.0)
    assert gate.phase is Phase.ROLLING_BACK


@pytest.mark.parametrize("phase", FINAL)
def test_interrupted_after_the_end_is_refused(phase: Phase) -> None:
    before = REACH[phase]()
    gate, actions = step(before, INTERRUPTED, 500.0)
    assert gate == before
    assert len(actions) == 1
    assert isinstance(actions[0], Refused)


# ── 11. illegal events ───────────────────────────────────────────────────────────────────

EVERY_EVENT: list[Event] = [
    VERIFIED,
    VerifyFailed("sha256 mismatch"),
    PREFLIGHT_OK,
    PreflightFailed(PORT_IN_USE),
    STARTED,
    READY,
    NOT_READY,
    crashed("a"),
    crashed("a", halted=True),
    NEVER_READY,
    *(TimerFired(kind) for kind in TimerKind),
    INTERRUPTED,
]

ILLEGAL: list[tuple[Phase, Event]] = [
    (Phase.VERIFYING, PREFLIGHT_OK),
    (Phase.VERIFYING, STARTED),
    (Phase.VERIFYING, READY),
    (Phase.VERIFYING, crashed("a")),
    (Phase.VERIFYING, SOAK_OVER),
    (Phase.PREFLIGHT, VERIFIED),
    (Phase.PREFLIGHT, VerifyFailed("late")),
    (Phase.PREFLIGHT, STARTED),
    (Phase.PREFLIGHT, READY),
    (Phase.STARTING, VERIFIED),
    (Phase.STARTING, PREFLIGHT_OK),
    (Phase.STARTING, NOT_READY),
    (Phase.STARTING, TimerFired(TimerKind.HEALTHY)),  # the agent reports it as NotHealthyInTime
    (Phase.STARTING, SOAK_OVER),
    (Phase.STARTING, WATCH_OVER),
    (Phase.SOAKING, STARTED),
    (Phase.SOAKING, READY),
    (Phase.SOAKING, NEVER_READY),
    (Phase.SOAKING, TimerFired(TimerKind.HEALTHY)),
    (Phase.SOAKING, WATCH_OVER),
    (Phase.SOAKING, TimerFired(TimerKind.ROLLBACK)),
    (Phase.WATCHING, STARTED),
    (Phase.WATCHING, READY),
    (Phase.WATCHING, NEVER_READY),
    (Phase.WATCHING, SOAK_OVER),
    (Phase.WATCHING, PREFLIGHT_OK),
    (Phase.ROLLING_BACK, VERIFIED),
    (Phase.ROLLING_BACK, PREFLIGHT_OK),
    (Phase.ROLLING_BACK, NOT_READY),
    (Phase.ROLLING_BACK, TimerFired(TimerKind.ROLLBACK)),
    (Phase.ROLLING_BACK, SOAK_OVER),
    (Phase.ROLLING_BACK, WATCH_OVER),
    *((phase, event) for phase in FINAL for event in EVERY_EVENT),
]


@pytest.mark.parametrize(
    ("phase", "event"), ILLEGAL, ids=[f"{p}-{type(e).__name__}" for p, e in ILLEGAL]
)
def test_an_illegal_event_changes_nothing_and_says_why(phase: Phase, event: Event) -> None:
    before = REACH[phase]()
    gate, actions = step(before, event, 1000.0)
    assert gate == before
    assert len(actions) == 1
    assert isinstance(actions[0], Refused)
    assert actions[0].reason


# ── 12. a gate outlives its agent ────────────────────────────────────────────────────────


def roundtrip(gate: Gate) -> Gate:
    return gate_from_json(json.loads(json.dumps(gate_to_json(gate))))


MORE_GATES: list[Callable[[], Gate]] = [
    lambda: run(starting(), crashed("a"), RESTARTED, crashed("b"), start=10.0)[0],  # signatures
    lambda: run(watching(), crashed("a"), start=30.0)[0],  # promoted and failed
    lambda: run(_rollback_started(), crashed("z", halted=True, failure=SEGFAULT), start=30.0)[0],
    lambda: run(_rollback_to_known_good(), VERIFIED, start=0.0)[0],
    lambda: begun(previous=None, known_good=None, soak=0.0, watch=0.0),
    lambda: begun(soak=2.5, watch=0.5),
]


@pytest.mark.parametrize(
    "reach",
    [*REACH.values(), *MORE_GATES],
    ids=[*(str(p) for p in REACH), *(f"more{i}" for i in range(len(MORE_GATES)))],
)
def test_a_saved_gate_reads_back_the_same(reach: Callable[[], Gate]) -> None:
    gate = reach()
    assert roundtrip(gate) == gate


def test_a_gate_read_back_carries_on_where_it_was() -> None:
    gate = roundtrip(rolling_back())
    gate, actions = run(gate, STARTED, READY, start=100.0)
    assert gate.phase is Phase.ROLLED_BACK
    assert MISSING_ENV.evidence in decided(actions).sentence


def test_a_saved_gate_with_unknown_keys_still_reads() -> None:
    gate = watching()
    data = gate_to_json(gate) | {"strategy": "blue_green", "gateway": {"weight": 10}}
    assert gate_from_json(data) == gate


def test_a_gate_saved_by_an_earlier_agent_reads_with_defaults() -> None:
    gate = gate_from_json({"service": "api", "version": "v2", "phase": "soaking"})
    assert gate == Gate(
        "api", "v2", previous=None, known_good=None, phase=Phase.SOAKING, soak=10.0, watch=60.0
    )
    data = gate_to_json(rolling_back())
    for optional in ("kind", "soak", "watch", "started", "signatures", "rollback_failure"):
        del data[optional]
    gate = gate_from_json(data)
    assert gate.phase is Phase.ROLLING_BACK
    assert gate.known_good == "v1"
    assert gate.failure == MISSING_ENV
    assert gate.kind is Kind.DEPLOY
    assert gate.signatures == ()


def test_a_saved_failure_with_unknown_keys_still_reads() -> None:
    data = gate_to_json(rolling_back())
    data["failure"] = {**data["failure"], "hint": "set DATABASE_URL in /srv/api/.env"}
    assert gate_from_json(data).failure == MISSING_ENV


# ── sentences that must be true ──────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "gate",
    [
        pytest.param(soaking, id="deploy with a known-good"),
        pytest.param(
            lambda: soaking(previous=None, known_good=None),
            id="first deploy",
        ),
        pytest.param(
            lambda: run(
                _rollback_to_known_good(), VERIFIED, PREFLIGHT_OK, STARTED, READY, start=0.0
            )[0],
            id="rollback to the known-good",
        ),
    ],
)
def test_the_live_sentence_promises_a_rollback_only_when_a_crash_would_roll_back(
    gate: Callable[[], Gate],
) -> None:
    soaked, actions = step(gate(), SOAK_OVER, 100.0)
    assert soaked.phase is Phase.WATCHING
    promise = "rolls it back" in decided(actions).sentence
    _, after_crash = step(soaked, crashed("a"), 110.0)
    assert promise == bool(of(StartRelease, after_crash))


def test_the_same_failure_a_second_time_fails_even_with_another_between() -> None:
    gate, _ = run(
        starting(),
        crashed("a"),
        RESTARTED,
        crashed("b", failure=SEGFAULT),
        RESTARTED,
        crashed("a"),
        start=100.0,
    )
    assert gate.phase is Phase.ROLLING_BACK
    assert gate.failure is not None and gate.failure.what.endswith(", the second time")


# ── 13. properties over any sequence of events ───────────────────────────────────────────

EVENTS = st.sampled_from(
    [
        # the events that move a gate forward come up more often, so that runs get far
        *[VERIFIED] * 3,
        VerifyFailed("sha256 mismatch"),
        *[PREFLIGHT_OK] * 3,
        PreflightFailed(PORT_IN_USE),
        *[STARTED] * 2,
        RESTARTED,
        CandidateStarted(9, 99, deadline=0.0),
        *[READY] * 3,
        NOT_READY,
        crashed("a"),
        crashed("b", failure=SEGFAULT),
        crashed("a", halted=True),
        crashed("b", halted=True, failure=SEGFAULT),
        NEVER_READY,
        *[SOAK_OVER] * 2,
        *[WATCH_OVER] * 2,
        TimerFired(TimerKind.HEALTHY),
        TimerFired(TimerKind.ROLLBACK),
        Superseded("v3"),
        INTERRUPTED,
    ]
)
GATES = st.builds(
    lambda version, previous, known_good, kind, soak, watch: begin(
        "api",
        version,
        previous=previous,
        known_good=known_good,
        kind=kind,
        soak=soak,
        watch=watch,
    ),
    version=st.sampled_from(["v1", "v2"]),
    previous=st.sampled_from([None, "v1", "v0"]),
    known_good=st.sampled_from([None, "v1"]),
    kind=st.sampled_from(Kind),
    soak=st.sampled_from([0.0, 10.0]),
    watch=st.sampled_from([0.0, 60.0]),
)


AHEAD = (VERIFIED, PREFLIGHT_OK, STARTED, READY, SOAK_OVER)
"""A good start that a history may begin with, so that runs get into every phase."""


@settings(max_examples=300, deadline=None)
@given(
    GATES,
    st.integers(0, len(AHEAD)),
    st.lists(st.tuples(EVENTS, st.floats(0.0, 90.0)), max_size=25),
)
def test_no_sequence_of_events_breaks_the_gate(
    begun_: tuple[Gate, tuple[Action, ...]], ahead: int, rest: list[tuple[Event, float]]
) -> None:
    gate, first = begun_
    history = [(event, 1.0) for event in AHEAD[:ahead]] + rest
    seen: list[Action] = list(first)
    now = 0.0
    final_since: Gate | None = None
    rollback_never = gate.kind is Kind.ROLLBACK and gate.version == gate.known_good
    for event, dt in history:
        now += dt
        before = gate
        gate, actions = step(before, event, now)  # never raises
        refused = of(Refused, actions)

        # a refusal is the whole answer and changes nothing
        if refused:
            assert actions == (refused[0],)
            assert gate == before
            continue
        # over is over: once final, every later event is refused
        assert final_since is None
        if gate.phase.final:
            final_since = gate

        starts = of(StartRelease, actions)
        assert len(starts) <= 1
        if starts:
            # only the known-good is started again, only after a failure, only on the way into
            # the rollback (or when a new agent takes a rollback over), never for a rollback
            assert starts == [StartRelease(str(gate.known_good))]
            assert gate.failure is not None
            assert gate.phase is Phase.ROLLING_BACK
            assert before.phase is not Phase.ROLLING_BACK or isinstance(event, Interrupted)
            assert not rollback_never
        if before.phase is Phase.ROLLING_BACK:
            assert gate.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK, Phase.ROLLBACK_FAILED)
        if of(Promote, actions):
            assert before.failure is None
            assert not before.promoted
        if of(StopService, actions):
            assert gate.known_good is None
            assert gate.phase is Phase.FAILED
        for timer in of(SetTimer, actions):
            assert timer.at >= now
        # promotion comes only from being ready (at once with no soak) or from the soak
        if gate.promoted and not before.promoted:
            assert before.phase in (Phase.SOAKING, Phase.STARTING)
        seen.extend(actions)
        assert roundtrip(gate) == gate

    if final_since is not None:
        assert gate == final_since

    kinds = [type(a) for a in seen]
    failed = gate.failure is not None
    assert kinds.count(StartCandidate) <= 1
    assert kinds.count(Promote) <= 1
    if StartCandidate in kinds:
        assert kinds.index(Verify) < kinds.index(RunPreflight) < kinds.index(StartCandidate)
    if MarkKnownGood in kinds:
        assert kinds.count(MarkKnownGood) == 1
        assert Promote in kinds
        assert kinds.index(Promote) < kinds.index(MarkKnownGood)
        assert not failed
        assert gate.phase is Phase.PASSED
    if StartRelease in kinds:
        assert failed
        assert gate.known_good is not None
    if gate.phase is Phase.REJECTED:
        assert StartCandidate not in kinds
        assert StartRelease not in kinds
        assert StopService not in kinds
    if gate.phase is Phase.FAILED:
        assert gate.known_good is None
    answers = of(Decided, seen)
    assert sum(a.live for a in answers) <= 1
    no = [a for a in answers if not a.live]
    if gate.phase.final and gate.phase not in (Phase.PASSED, Phase.SUPERSEDED):
        assert len(no) == 1
        assert answers[-1] == no[0]
    else:
        assert no == []
    if gate.phase in (Phase.PASSED, Phase.SUPERSEDED):
        assert answers == [Decided(True, answers[0].sentence)]
