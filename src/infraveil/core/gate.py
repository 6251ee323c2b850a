"""The deploy gate of one release: every phase, event, action and transition, in this one file.

`step(gate, event, now) -> (gate, actions)` is a pure function like the lifecycle's: no clock
(`now` is a monotonic time passed in), no I/O. The agent feeds it what happened to the
payload and to the instances the lifecycle starts, and carries out what it answers. An event
that is not expected in the current phase leaves the gate unchanged and answers `Refused`.

    verifying ─► preflight ─► starting ─ready─► soaking ─soak over─► watching ─watch over─► passed
        │            │            │                │                     │
        ▼            ▼            └───── failed ───┴─────────────────────┤
     rejected     rejected                                               ▼
    (nothing touched)                 rolling_back ─ready─► rolled_back
                                           │
                                           └─failed─► rollback_failed   (never a second rollback)

A failure after the start goes back to the known-good release; with none to go back to, the
service is stopped (`failed`): a release that failed its gate never keeps running. The
candidate may crash and be restarted by the lifecycle; the *same* failure signature a second
time (not necessarily in a row) fails the gate at once, without waiting out the deadline.

The gate does not know how a release is started or replaced: `StartCandidate`, `StartRelease`
and `Promote` are carried out by a strategy in the agent (today: replace — stop the old
instance, start the new one). Blue/green behind the gateway is another strategy for the same
machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import Any

from infraveil.core.units import format_duration


class Phase(StrEnum):
    VERIFYING = "verifying"
    """The payload's hash and archive are being checked."""
    PREFLIGHT = "preflight"
    """The candidate's command, files, env and ports are being checked; nothing runs yet."""
    STARTING = "starting"
    """The candidate was started; waiting for it to be ready within its startup deadline."""
    SOAKING = "soaking"
    """Ready; it must stay ready, with no restart, for the soak time."""
    WATCHING = "watching"
    """Promoted (current); a crash in the watch time still rolls it back."""
    ROLLING_BACK = "rolling_back"
    """The candidate failed; the known-good release is being started again."""
    PASSED = "passed"
    """Watched through: the release is current and known-good."""
    REJECTED = "rejected"
    """Failed verify or preflight: nothing running was touched."""
    ROLLED_BACK = "rolled_back"
    """Failed; the known-good release is running and ready again."""
    FAILED = "failed"
    """Failed, with no known-good release to go back to: the service was stopped."""
    ROLLBACK_FAILED = "rollback_failed"
    """Failed, and the known-good release failed too: no further rollback is tried."""
    SUPERSEDED = "superseded"
    """Promoted, but a newer deploy began before its watch was over: current, not known-good."""

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {
        Phase.PASSED,
        Phase.REJECTED,
        Phase.ROLLED_BACK,
        Phase.FAILED,
        Phase.ROLLBACK_FAILED,
        Phase.SUPERSEDED,
    }
)


class Kind(StrEnum):
    DEPLOY = "deploy"
    """A new payload, or the manifest's changes, going live."""
    ROLLBACK = "rollback"
    """A person asked for an earlier release (`infraveil rollback`)."""


class TimerKind(StrEnum):
    HEALTHY = "healthy"
    """The candidate's startup deadline is over."""
    SOAK = "soak"
    """The candidate stayed ready for the whole soak."""
    WATCH = "watch"
    """The promoted release has been watched long enough."""
    ROLLBACK = "rollback"
    """The known-good release's startup deadline is over."""


@dataclass(frozen=True)
class Failure:
    """Why a release failed, as the sentence and `releases` quote it."""

    what: str
    """What happened: "exited with code 1 after 0.8s", "did not become ready within 10s"."""
    evidence: str = ""
    """The decisive line or check result, quoted as is."""
    category: str = ""
    """The diagnosis category ("" when there is none)."""
    instance: int | None = None
    """The instance that failed (for `infraveil why SERVICE --instance N`)."""

    def describe(self) -> str:
        return f"{self.what} — `{self.evidence}`" if self.evidence else self.what


# ── events (past tense) ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Verified:
    detail: str
    """What was checked, e.g. "sha256 3f2a9c…, 12 files"."""


@dataclass(frozen=True)
class VerifyFailed:
    detail: str


@dataclass(frozen=True)
class PreflightPassed:
    detail: str = ""


@dataclass(frozen=True)
class PreflightFailed:
    failure: Failure


@dataclass(frozen=True)
class CandidateStarted:
    """An instance of the release being started (the candidate, or the known-good in a
    rollback) was spawned."""

    instance: int
    pid: int
    deadline: float
    """Its startup deadline in seconds (learned from the service's boots, or declared)."""


@dataclass(frozen=True)
class CandidateReady:
    detail: str


@dataclass(frozen=True)
class CandidateNotReady:
    detail: str


@dataclass(frozen=True)
class CandidateFailed:
    """An instance of the release being started failed (exited, was killed, did not spawn)."""

    failure: Failure
    signature: str
    """The lifecycle's signature of the failure: the same one twice fails the gate at once."""
    halted: bool = False
    """The lifecycle will not start it again on its own (a deterministic failure)."""


@dataclass(frozen=True)
class NotHealthyInTime:
    """The `HEALTHY` (or `ROLLBACK`) timer fired; `detail` is what the startup check said."""

    detail: str


@dataclass(frozen=True)
class TimerFired:
    kind: TimerKind


@dataclass(frozen=True)
class Superseded:
    """A person began another deploy (or a rollback) of the service during the watch."""

    by: str
    """The version of the newer deploy."""


@dataclass(frozen=True)
class Interrupted:
    """The agent that ran this gate ended before the gate did; a new agent resumes it."""

    why: str


Event = (
    Verified
    | VerifyFailed
    | PreflightPassed
    | PreflightFailed
    | CandidateStarted
    | CandidateReady
    | CandidateNotReady
    | CandidateFailed
    | NotHealthyInTime
    | TimerFired
    | Superseded
    | Interrupted
)


# ── actions (imperative) ─────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Verify:
    """Check the payload (hash, archive, safe extraction)."""


@dataclass(frozen=True)
class RunPreflight:
    """Preflight the candidate's spec in its release directory."""


@dataclass(frozen=True)
class StartCandidate:
    """Start the candidate release in the service's place (how: the strategy's business)."""


@dataclass(frozen=True)
class StartRelease:
    """Start this earlier release again (the rollback)."""

    version: str


@dataclass(frozen=True)
class StopService:
    """Stop the service: a release that failed its gate does not keep running."""


@dataclass(frozen=True)
class Promote:
    """The candidate becomes the current release (the strategy finishes the switch)."""


@dataclass(frozen=True)
class MarkKnownGood:
    """The candidate has passed the gate and the watch: it is known-good."""


@dataclass(frozen=True)
class SetTimer:
    kind: TimerKind
    at: float


@dataclass(frozen=True)
class CancelTimer:
    kind: TimerKind


@dataclass(frozen=True)
class Report:
    """A step of the gate, for the person deploying and the event log."""

    step: str
    """verify, preflight, start, healthy, soak, promote, failed, rollback, rolled back, …"""
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Decided:
    """The deploy's answer: `live` at the promotion, else the failure, in one sentence.

    A promoted release that fails its watch is decided a second time (not live): the person
    who deployed has had their answer; the sentence goes to the release and the events.
    """

    live: bool
    sentence: str


@dataclass(frozen=True)
class Refused:
    reason: str


Action = (
    Verify
    | RunPreflight
    | StartCandidate
    | StartRelease
    | StopService
    | Promote
    | MarkKnownGood
    | SetTimer
    | CancelTimer
    | Report
    | Decided
    | Refused
)


# ── the record ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Gate:
    """One release on its way through the gate; replaced, never mutated."""

    service: str
    version: str
    previous: str | None
    """The release that was current when the deploy began (None: the first deploy)."""
    known_good: str | None
    """Where a failure rolls back to (None: nowhere)."""
    kind: Kind = Kind.DEPLOY
    soak: float = 10.0
    watch: float = 60.0
    phase: Phase = Phase.VERIFYING
    started: bool = False
    """The instance being started (candidate, or known-good in a rollback) was spawned."""
    deadline: float = 0.0
    """Its startup deadline in seconds (0 until it was spawned)."""
    signatures: tuple[str, ...] = ()
    """Failure signatures of the release being started, in this phase."""
    failure: Failure | None = None
    """Why the candidate failed."""
    rollback_failure: Failure | None = None
    """Why the known-good failed too."""
    promoted: bool = False
    """The candidate was promoted (the deploy already answered that it is live)."""

    @property
    def touched(self) -> bool:
        """The running service has been changed (the candidate was started)."""
        return self.phase not in (Phase.VERIFYING, Phase.PREFLIGHT, Phase.REJECTED)


Transition = tuple[Gate, tuple[Action, ...]]
Handler = Callable[[Gate, Any, float], Transition]


def begin(
    service: str,
    version: str,
    *,
    previous: str | None,
    known_good: str | None,
    kind: Kind = Kind.DEPLOY,
    soak: float = 10.0,
    watch: float = 60.0,
) -> Transition:
    """A new gate for `version`; its first action is to verify the payload."""
    gate = Gate(service, version, previous, known_good, kind, soak, watch)
    return gate, (Verify(),)


def step(gate: Gate, event: Event, now: float) -> Transition:
    """Apply one event to one gate."""
    if isinstance(event, Interrupted):
        return _interrupted(gate, event, now)
    handler = TABLE.get((gate.phase, type(event)))
    if handler is None:
        return gate, (Refused(f"{type(event).__name__} is not expected while {gate.phase}"),)
    return handler(gate, event, now)


# ── sentences ───────────────────────────────────────────────────────────────────────────────


def _see_why(gate: Gate, failure: Failure) -> str:
    """Where the whole diagnosis is, when an instance failed (not for an agent restart)."""
    if failure.instance is None and not failure.category and not failure.evidence:
        return ""  # e.g. the agent was restarted: nothing failed that `why` could explain
    return f" (see `infraveil why {gate.service}`)"


def _kept(gate: Gate) -> str:
    if gate.previous is None:
        return "nothing was changed"
    return f"{gate.previous} kept serving (it was not touched)"


# ── transitions ─────────────────────────────────────────────────────────────────────────────


def _verified(g: Gate, e: Verified, now: float) -> Transition:
    return replace(g, phase=Phase.PREFLIGHT), (Report("verify", e.detail), RunPreflight())


def _reject(g: Gate, step_name: str, what: str, failure: Failure | None) -> Transition:
    sentence = f"{g.version} was rejected at {step_name}: {what}; {_kept(g)}."
    return replace(g, phase=Phase.REJECTED, failure=failure), (
        Report(step_name, what, warning=True),
        Decided(False, sentence),
    )


def _verify_failed(g: Gate, e: VerifyFailed, now: float) -> Transition:
    return _reject(g, "verify", e.detail, Failure(e.detail))


def _preflight_passed(g: Gate, e: PreflightPassed, now: float) -> Transition:
    return replace(g, phase=Phase.STARTING, started=False, signatures=()), (
        Report("preflight", e.detail or "passed"),
        StartCandidate(),
    )


def _preflight_failed(g: Gate, e: PreflightFailed, now: float) -> Transition:
    return _reject(g, "preflight", e.failure.describe(), e.failure)


def _started(g: Gate, e: CandidateStarted, now: float) -> Transition:
    """An instance of the release being started was spawned: its deadline runs from the first."""
    what = f"instance {e.instance} (pid {e.pid})"
    rollback = g.phase is Phase.ROLLING_BACK
    said = "rollback" if rollback else "start"
    if g.started:
        return g, (Report(said, f"{what}, after a restart"),)
    timer = TimerKind.ROLLBACK if rollback else TimerKind.HEALTHY
    if rollback:
        what = f"{g.known_good}: {what}"
    return replace(g, started=True, deadline=e.deadline), (
        Report(said, f"{what}; ready within {format_duration(e.deadline)}"),
        SetTimer(timer, now + e.deadline),
    )


def _ready(g: Gate, e: CandidateReady, now: float) -> Transition:
    actions: tuple[Action, ...] = (CancelTimer(TimerKind.HEALTHY), Report("healthy", e.detail))
    if g.soak <= 0:
        record, promoted = _promote(replace(g, phase=Phase.SOAKING), now)
        return record, (*actions, *promoted)
    return replace(g, phase=Phase.SOAKING), (
        *actions,
        SetTimer(TimerKind.SOAK, now + g.soak),
    )


def _soaked(g: Gate, e: TimerFired, now: float) -> Transition:
    if e.kind is not TimerKind.SOAK:
        return g, (Refused(f"{e.kind} timer is not expected while soaking"),)
    return _promote(g, now)


def _promote(g: Gate, now: float) -> Transition:
    soak = format_duration(g.soak)
    said = f"ready with no restart for {soak}" if g.soak > 0 else "no soak"
    actions: list[Action] = [
        Report("soak", said),
        Promote(),
        Report("promote", f"{g.version} is current"),
    ]
    sentence = f"{g.version} is live"
    if g.watch <= 0:
        actions += [MarkKnownGood(), Decided(True, sentence + ".")]
        return replace(g, phase=Phase.PASSED, promoted=True), tuple(actions)
    watch = format_duration(g.watch)
    if _rolls_back(g):
        sentence += f"; a crash in the next {watch} still rolls it back to {g.known_good}."
    elif g.known_good is None:
        sentence += f"; a crash in the next {watch} stops it (there is no known-good release)."
    else:
        sentence += f"; it is watched for {watch}."
    actions += [SetTimer(TimerKind.WATCH, now + g.watch), Decided(True, sentence)]
    return replace(g, phase=Phase.WATCHING, promoted=True), tuple(actions)


def _watched(g: Gate, e: TimerFired, now: float) -> Transition:
    if e.kind is not TimerKind.WATCH:
        return g, (Refused(f"{e.kind} timer is not expected while watching"),)
    return replace(g, phase=Phase.PASSED), (
        Report("watch", f"no failure in {format_duration(g.watch)}: {g.version} is known-good"),
        MarkKnownGood(),
    )


def _candidate_failed(g: Gate, e: CandidateFailed, now: float) -> Transition:
    """In the start: once is forgiven (the lifecycle restarts it), the same twice is not."""
    if g.phase is Phase.STARTING and not e.halted and e.signature not in g.signatures:
        return replace(g, signatures=(*g.signatures, e.signature)), (
            Report("start", f"{e.failure.describe()}; started again", warning=True),
        )
    if g.phase is Phase.STARTING and e.signature in g.signatures:
        failure = replace(e.failure, what=f"{e.failure.what}, the second time")
        return _fail(g, failure, now)
    return _fail(g, e.failure, now)


def _not_ready(g: Gate, e: CandidateNotReady, now: float) -> Transition:
    return _fail(g, Failure("stopped being ready during the soak", e.detail), now)


def _late(g: Gate) -> str:
    return f"did not become ready within its startup deadline of {format_duration(g.deadline)}"


def _not_healthy(g: Gate, e: NotHealthyInTime, now: float) -> Transition:
    return _fail(g, Failure(_late(g), e.detail), now)


def _rolls_back(g: Gate) -> bool:
    """A failure of this gate's release starts another release: not when there is no
    known-good, and not when this release *is* the known-good (a rollback to it, or the same
    version deployed again) — a release is never rolled back to itself."""
    return g.known_good is not None and g.known_good != g.version


def _fail(g: Gate, failure: Failure, now: float) -> Transition:
    """The candidate failed: roll back to the known-good, or stop the service if there is none."""
    cancel = tuple(CancelTimer(k) for k in (TimerKind.HEALTHY, TimerKind.SOAK, TimerKind.WATCH))
    said = failure.describe() + (" (after its promotion)" if g.promoted else "")
    failed = f"{g.version} failed {'its watch' if g.promoted else 'the gate'}: {said}"
    told = Report("failed", said, warning=True)
    if g.known_good == g.version:
        # this *is* the known-good: never roll back a rollback, nor a release to itself
        if g.kind is Kind.ROLLBACK:
            sentence = f"rolling back to {g.version} failed: {said}{_see_why(g, failure)}."
        else:
            sentence = (
                f"{failed}{_see_why(g, failure)}. {g.version} is itself the known-good"
                " release, so there is nothing to go back to."
            )
        sentence += f" Nothing of {g.service} is serving; infraveil does not roll back further."
        return replace(g, phase=Phase.ROLLBACK_FAILED, failure=failure), (
            *cancel,
            told,
            Decided(False, sentence),
        )
    if g.known_good is None:
        sentence = (
            f"{failed}{_see_why(g, failure)}; there is no known-good release to go back to, so"
        )
        sentence += f" {g.service} was stopped."
        return replace(g, phase=Phase.FAILED, failure=failure), (
            *cancel,
            told,
            StopService(),
            Decided(False, sentence),
        )
    return replace(g, phase=Phase.ROLLING_BACK, failure=failure, started=False, signatures=()), (
        *cancel,
        told,
        Report("rollback", f"starting {g.known_good} again"),
        StartRelease(g.known_good),
    )


def _rollback_ready(g: Gate, e: CandidateReady, now: float) -> Transition:
    assert g.failure is not None and g.known_good is not None
    failed = "its watch" if g.promoted else "the gate"
    sentence = (
        f"{g.version} failed {failed}: {g.failure.describe()}{_see_why(g, g.failure)};"
        f" rolled back: {g.known_good} is serving again."
    )
    return replace(g, phase=Phase.ROLLED_BACK), (
        CancelTimer(TimerKind.ROLLBACK),
        Report("rolled back", f"{g.known_good} is ready: {e.detail}"),
        Decided(False, sentence),
    )


def _rollback_failed(g: Gate, failure: Failure) -> Transition:
    """The known-good failed too: say so, and roll back no further.

    The service is left to the lifecycle with the known-good's spec: its restart policy halts
    a failure that repeats, and retries one that is transient (a database that is down), so
    the known-good comes back on its own when the outside cause goes away.
    """
    assert g.failure is not None and g.known_good is not None
    failed = "its watch" if g.promoted else "the gate"
    sentence = (
        f"{g.version} failed {failed}: {g.failure.describe()}; rolling back to {g.known_good}"
        f" failed too: {failure.describe()}{_see_why(g, failure)}."
        f" Nothing of {g.service} is serving; infraveil does not roll back further."
    )
    return replace(g, phase=Phase.ROLLBACK_FAILED, rollback_failure=failure), (
        CancelTimer(TimerKind.ROLLBACK),
        Report("rollback failed", failure.describe(), warning=True),
        Decided(False, sentence),
    )


def _rollback_candidate_failed(g: Gate, e: CandidateFailed, now: float) -> Transition:
    if not e.halted and e.signature not in g.signatures:
        return replace(g, signatures=(*g.signatures, e.signature)), (
            Report("rollback", f"{e.failure.describe()}; started again", warning=True),
        )
    what = e.failure.what + (", the second time" if e.signature in g.signatures else "")
    return _rollback_failed(g, replace(e.failure, what=what))


def _rollback_not_healthy(g: Gate, e: NotHealthyInTime, now: float) -> Transition:
    return _rollback_failed(
        g, Failure("did not become ready within its startup deadline", e.detail)
    )


def _superseded(g: Gate, e: Superseded, now: float) -> Transition:
    """A newer deploy takes over: this release stays current, but never became known-good."""
    return replace(g, phase=Phase.SUPERSEDED), (
        CancelTimer(TimerKind.WATCH),
        Report("watch", f"ended early: {e.by} is being deployed; {g.version} is not known-good"),
    )


def _interrupted(g: Gate, e: Interrupted, now: float) -> Transition:
    """A new agent found this gate unfinished: bring it to a consistent end.

    Before the start nothing was touched (rejected); between the start and the promotion the
    candidate is not trusted (rolled back); a promoted release is watched again for a whole
    window; a rollback under way starts the known-good again.
    """
    if g.phase.final:
        return g, (Refused(f"the gate is over ({g.phase})"),)
    if g.phase in (Phase.VERIFYING, Phase.PREFLIGHT):
        return _reject(g, str(g.phase), f"{e.why} before anything was changed", None)
    if g.phase in (Phase.STARTING, Phase.SOAKING):
        return _fail(g, Failure(f"{e.why} before it was promoted"), now)
    if g.phase is Phase.WATCHING:
        return g, (
            Report("watch", f"{e.why}; watching {g.version} for {format_duration(g.watch)} again"),
            SetTimer(TimerKind.WATCH, now + g.watch),
        )
    assert g.known_good is not None
    return replace(g, started=False, signatures=()), (
        Report("rollback", f"{e.why}; starting {g.known_good} again"),
        StartRelease(g.known_good),
    )


TABLE: Mapping[tuple[Phase, type], Handler] = {
    (Phase.VERIFYING, Verified): _verified,
    (Phase.VERIFYING, VerifyFailed): _verify_failed,
    (Phase.PREFLIGHT, PreflightPassed): _preflight_passed,
    (Phase.PREFLIGHT, PreflightFailed): _preflight_failed,
    (Phase.STARTING, CandidateStarted): _started,
    (Phase.STARTING, CandidateReady): _ready,
    (Phase.STARTING, CandidateFailed): _candidate_failed,
    (Phase.STARTING, NotHealthyInTime): _not_healthy,
    (Phase.SOAKING, CandidateFailed): _candidate_failed,
    (Phase.SOAKING, CandidateNotReady): _not_ready,
    (Phase.SOAKING, TimerFired): _soaked,
    (Phase.WATCHING, CandidateFailed): _candidate_failed,
    (Phase.WATCHING, TimerFired): _watched,
    (Phase.WATCHING, Superseded): _superseded,
    (Phase.ROLLING_BACK, CandidateStarted): _started,
    (Phase.ROLLING_BACK, CandidateReady): _rollback_ready,
    (Phase.ROLLING_BACK, CandidateFailed): _rollback_candidate_failed,
    (Phase.ROLLING_BACK, NotHealthyInTime): _rollback_not_healthy,
}


# ── persistence (a gate outlives the agent that began it) ───────────────────────────────────


def gate_to_json(gate: Gate) -> dict[str, Any]:
    data = asdict(gate)
    data["phase"] = str(gate.phase)
    data["kind"] = str(gate.kind)
    data["signatures"] = list(gate.signatures)
    return data


def gate_from_json(data: Mapping[str, Any]) -> Gate:
    """A gate saved by an earlier agent; fields it did not know keep their defaults."""

    known = {f.name for f in fields(Failure)}

    def failure(raw: Any) -> Failure | None:
        return Failure(**{k: v for k, v in raw.items() if k in known}) if raw else None

    return Gate(
        service=data["service"],
        version=data["version"],
        previous=data.get("previous"),
        known_good=data.get("known_good"),
        kind=Kind(data.get("kind", Kind.DEPLOY)),
        soak=float(data.get("soak", 10.0)),
        watch=float(data.get("watch", 60.0)),
        phase=Phase(data.get("phase", Phase.VERIFYING)),
        started=bool(data.get("started", False)),
        deadline=float(data.get("deadline", 0.0)),
        signatures=tuple(data.get("signatures", ())),
        failure=failure(data.get("failure")),
        rollback_failure=failure(data.get("rollback_failure")),
        promoted=bool(data.get("promoted", False)),
    )
