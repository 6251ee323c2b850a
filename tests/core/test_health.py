"""Health verdicts and failure signatures: pure functions, checked against their rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infraveil.core.checks import ProbeResult
from infraveil.core.exitstatus import ExitStatus
from infraveil.core.health import (
    DEADLINE_MAX,
    DEADLINE_MIN,
    DEFAULT_DEADLINE,
    HISTORY,
    LIVENESS_WINDOW,
    MIN_BOOTS,
    CheckState,
    is_slow_boot,
    liveness_excuse,
    observe,
    percentile,
    startup_deadline,
    stays_unhealthy,
    typical_boot,
    unhealthy_summary,
)
from infraveil.core.signature import exit_signature, files_named, kill_signature, normalise

OK = ProbeResult(True, "HTTP 200")
BAD = ProbeResult(False, "no answer within 3s (GET /healthz)")


def feed(results: list[tuple[float, ProbeResult]]) -> CheckState:
    state = CheckState()
    for now, result in results:
        state, _ = observe(state, result, now, wall=1000 + now)
    return state


def test_the_first_result_and_every_change_is_a_flip() -> None:
    state, flipped = observe(CheckState(), OK, 0.0, 0.0)
    assert flipped and state.passing
    state, flipped = observe(state, OK, 5.0, 5.0)
    assert not flipped
    state, flipped = observe(state, BAD, 10.0, 10.0)
    assert flipped and state.passing is False and state.failing_since == 10.0


def test_liveness_needs_three_failures_over_fifteen_seconds() -> None:
    # three quick failures are not enough: a blip
    assert not stays_unhealthy(feed([(0, BAD), (1, BAD), (2, BAD)]), now=2.0)
    # a long time with only two failures is not enough either
    assert not stays_unhealthy(feed([(0, BAD), (20, BAD)]), now=20.0)
    state = feed([(0, BAD), (5, BAD), (10, BAD), (15, BAD)])
    assert stays_unhealthy(state, now=15.0)
    assert unhealthy_summary(state, 15.0) == (
        "failed 4 times over 15s: no answer within 3s (GET /healthz)"
    )
    # one pass in between starts the count over
    assert not stays_unhealthy(feed([(0, BAD), (5, BAD), (10, OK), (15, BAD)]), now=15.0)


@given(st.lists(st.tuples(st.floats(0, 5), st.booleans()), max_size=60))
def test_unhealthy_only_after_a_run_of_failures_spanning_the_window(
    steps: list[tuple[float, bool]],
) -> None:
    state, now, run_start, run = CheckState(), 0.0, None, 0
    for dt, ok in steps:
        now += dt
        state, _ = observe(state, OK if ok else BAD, now, now)
        run_start, run = (None, 0) if ok else (run_start if run else now, run + 1)
        expected = run >= 3 and run_start is not None and now - run_start >= LIVENESS_WINDOW
        assert stays_unhealthy(state, now) == expected
    assert len(state.history) <= HISTORY


def test_the_deadline_is_the_default_until_a_few_boots_are_known() -> None:
    assert startup_deadline([]).seconds == DEFAULT_DEADLINE
    assert startup_deadline([4.0] * (MIN_BOOTS - 1)).learned_from == 0
    learned = startup_deadline([4.0] * MIN_BOOTS)
    assert learned.seconds == 12.0 and learned.learned_from == MIN_BOOTS
    assert "learned from 3 boots" in learned.describe()


def test_the_deadline_is_three_times_p95_clamped() -> None:
    assert startup_deadline([0.2, 0.3, 0.25]).seconds == DEADLINE_MIN
    assert startup_deadline([400.0, 500.0, 450.0]).seconds == DEADLINE_MAX
    boots = [20.0] * 19 + [40.0]
    assert startup_deadline(boots).seconds == pytest.approx(3 * percentile(boots, 95))
    assert startup_deadline(boots, fixed=900.0).describe() == "15m00s (set in the manifest)"


@given(st.lists(st.floats(0, 10_000), max_size=50))
def test_the_learned_deadline_always_stays_within_its_bounds(boots: list[float]) -> None:
    seconds = startup_deadline(boots).seconds
    assert DEADLINE_MIN <= seconds <= DEADLINE_MAX or seconds == DEFAULT_DEADLINE


def test_slow_boots_are_more_than_twice_the_usual_and_two_seconds_more() -> None:
    assert typical_boot([1.0, 2.0]) is None
    assert typical_boot([1.0, 2.0, 30.0]) == 2.0
    assert is_slow_boot(4.5, 2.0) and not is_slow_boot(3.9, 2.0)
    assert not is_slow_boot(0.5, 0.2)  # twice as long, but not two seconds longer
    assert not is_slow_boot(100.0, None)


def test_liveness_excuses() -> None:
    assert liveness_excuse(("db",), 1, 10) == "its dependency db is not ready"
    assert liveness_excuse(("db", "cache"), 0, 0) == "its dependency db, cache are not ready"
    assert "6 of 10 services" in liveness_excuse((), 6, 10)
    assert liveness_excuse((), 5, 10) == ""  # half is not most
    assert liveness_excuse((), 2, 2) == ""  # two services are no storm
    assert liveness_excuse((), 1, 10) == ""


def test_signatures_ignore_what_changes_between_runs_of_the_same_crash() -> None:
    a = "2026-11-21T05:14:03.123Z ERROR [pid 4242] connect to 10.0.0.7:5432 failed after 3.2s"
    b = "2026-11-22 07:01:59,9 ERROR [pid 17] connect to 10.0.0.9:5432 failed after 12.75s"
    assert normalise(a) == normalise(b)
    assert normalise(
        "\x1b[31mpanic\x1b[0m at 0x7ffd3a2b id 9b2f7c1e-8a7d-4c1b-9e2f-1a2b3c4d5e6f"
    ) == ("panic at <hex> id <id>")
    assert normalise("x" * 500) == "x" * 200
    crash = ExitStatus(code=1)
    assert exit_signature(crash, "KeyError: 'A'") != exit_signature(crash, "KeyError: 'B'")
    assert exit_signature(crash, "boom") != exit_signature(ExitStatus(code=2), "boom")
    assert exit_signature(ExitStatus(signal=9), "x", oom=True) == "oom"
    assert exit_signature(ExitStatus(signal=11), "x") == "signal 11|x"
    assert kill_signature("liveness", "HTTP 500 for GET /h") == "liveness|HTTP # for GET /h"


def test_files_named_in_a_failure_are_found() -> None:
    assert files_named(
        "FileNotFoundError: [Errno 2] No such file or directory: '/etc/app/config.yml'"
    ) == ["/etc/app/config.yml"]
    assert files_named("open config/settings.toml: no such file; see 'settings.toml'") == [
        "settings.toml"
    ]
    assert files_named("cannot read /srv/a.env and /srv/b.env.") == ["/srv/a.env", "/srv/b.env"]
    assert files_named("GET http://127.0.0.1:8080/healthz: HTTP 500") == []
    assert files_named("exited with code 1 after 0.3s") == []
