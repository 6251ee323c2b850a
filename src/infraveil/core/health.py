"""Health verdicts, pure: what a run of probe results means, how long a boot may take, and
when a failing liveness check is a dependency blip rather than a reason to restart.

Nothing here reads a clock: `now` is passed in (monotonic seconds), like everywhere in the core.

- **Liveness** restarts only a process that *stays* unhealthy: at least `LIVENESS_FAILURES`
  failed probes in a row spanning at least `LIVENESS_WINDOW` seconds. One slow answer, a GC
  pause or a deploy of a dependency does not kill anything.
- **The startup deadline** is learned: `DEFAULT_DEADLINE` until `MIN_BOOTS` boots are known,
  then `DEADLINE_FACTOR` × the 95th percentile of the recent boots, clamped to
  [`DEADLINE_MIN`, `DEADLINE_MAX`]. A boot much slower than usual is worth an event even when
  it succeeds: it is often the first sign of a problem (a growing migration, a slow disk).
- **Storm guard**: a liveness failure while a declared dependency is not ready, or while most
  services fail theirs at once, has a shared cause; restarting would only add load.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from infraveil.core.checks import ProbeResult
from infraveil.core.units import format_duration

LIVENESS_FAILURES = 3
LIVENESS_WINDOW = 15.0
DEFAULT_DEADLINE = 60.0
MIN_BOOTS = 3
DEADLINE_FACTOR = 3.0
DEADLINE_MIN = 10.0
DEADLINE_MAX = 600.0
BOOTS_KEPT = 20
"""Boot durations kept per service; the deadline follows the recent ones."""
SLOW_BOOT_FACTOR = 2.0
SLOW_BOOT_MARGIN = 2.0
"""A boot is slow when it takes more than twice the median and at least 2 s more."""
HISTORY = 10
"""Probe results kept per check of an instance, for `describe`."""
STORM_MIN_SERVICES = 3
"""A storm needs at least this many services with liveness checks (one of two is no 'most')."""


@dataclass(frozen=True)
class ProbeRecord:
    """One probe result as `describe` shows it."""

    wall: float
    ok: bool
    detail: str


@dataclass(frozen=True)
class CheckState:
    """The run of results of one check of one instance."""

    passing: bool | None = None
    """None until the first result."""
    failures: int = 0
    """Failed probes in a row."""
    failing_since: float | None = None
    """`now` of the first of them."""
    last: ProbeResult | None = None
    history: tuple[ProbeRecord, ...] = ()
    probes: int = 0
    """Probes run in all."""


def observe(
    state: CheckState, result: ProbeResult, now: float, wall: float
) -> tuple[CheckState, bool]:
    """Add one result; also whether the check flipped (its first result counts as a flip)."""
    flipped = state.passing is not result.ok
    history = (*state.history[1 - HISTORY :], ProbeRecord(wall, result.ok, result.detail))
    # (built directly, not with dataclasses.replace: this runs for every probe)
    if result.ok:
        return CheckState(True, 0, None, result, history, state.probes + 1), flipped
    since = state.failing_since if state.failing_since is not None else now
    failures = state.failures + 1
    return CheckState(False, failures, since, result, history, state.probes + 1), flipped


def stays_unhealthy(state: CheckState, now: float) -> bool:
    """Whether a liveness check has failed long enough to restart the service."""
    return (
        state.failures >= LIVENESS_FAILURES
        and state.failing_since is not None
        and now - state.failing_since >= LIVENESS_WINDOW
    )


def unhealthy_summary(state: CheckState, now: float) -> str:
    """ "failed 4 times over 16s: no answer within 3s (GET /healthz)"."""
    span = now - state.failing_since if state.failing_since is not None else 0.0
    detail = state.last.detail if state.last is not None else "no result"
    return f"failed {state.failures} times over {format_duration(span)}: {detail}"


@dataclass(frozen=True)
class Deadline:
    seconds: float
    learned_from: int
    """How many boots it was computed from (0: the default)."""
    fixed: bool = False
    """Set in the manifest (`startup_deadline`), not learned."""

    def describe(self) -> str:
        if self.fixed:
            return f"{format_duration(self.seconds)} (set in the manifest)"
        if not self.learned_from:
            return f"{format_duration(self.seconds)} (default, until {MIN_BOOTS} boots are known)"
        return f"{format_duration(self.seconds)} (learned from {self.learned_from} boots)"


def startup_deadline(boots: Sequence[float], fixed: float | None = None) -> Deadline:
    """How long the next boot may take, from the durations of the service's recent boots."""
    if fixed is not None:
        return Deadline(fixed, 0, fixed=True)
    recent = [b for b in boots[-BOOTS_KEPT:] if math.isfinite(b) and b >= 0]
    if len(recent) < MIN_BOOTS:
        return Deadline(DEFAULT_DEADLINE, 0)
    seconds = DEADLINE_FACTOR * percentile(recent, 95)
    return Deadline(min(max(seconds, DEADLINE_MIN), DEADLINE_MAX), len(recent))


def typical_boot(boots: Sequence[float]) -> float | None:
    """The median of the recent boots, once there are enough to call anything typical."""
    recent = boots[-BOOTS_KEPT:]
    return statistics.median(recent) if len(recent) >= MIN_BOOTS else None


def is_slow_boot(seconds: float, typical: float | None) -> bool:
    if typical is None:
        return False
    return seconds > SLOW_BOOT_FACTOR * typical and seconds - typical >= SLOW_BOOT_MARGIN


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct`th percentile by linear interpolation (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of nothing")
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def liveness_excuse(waiting_for: Sequence[str], failing: int, checked: int) -> str:
    """Why a failing liveness check should not restart its service now ("" if it should).

    `waiting_for`: its declared dependencies that are not ready. `failing` of `checked`: the
    running services with a liveness check, and how many of them are failing it right now.
    """
    if waiting_for:
        names = ", ".join(waiting_for)
        verb = "is" if len(waiting_for) == 1 else "are"
        return f"its dependency {names} {verb} not ready"
    if checked >= STORM_MIN_SERVICES and failing * 2 > checked:
        return (
            f"{failing} of {checked} services are failing their liveness checks at once,"
            " which points at a shared cause"
        )
    return ""
