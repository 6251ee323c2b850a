from __future__ import annotations

from diagnosis_support import apply, engine, quoted
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.facts import KillFact
from infraveil.core.diagnosis.finding import Confidence
from infraveil.core.diagnosis.rules.exited_zero import rule


def test_a_daemonizing_server_is_told_to_stay_in_the_foreground() -> None:
    f = apply(rule, "Starting nginx daemon\nforking to background", exit_code=0, run_seconds=0.2)
    assert f is not None and f.category is Category.EXITED_ZERO
    assert f.confidence is Confidence.HIGH and "daemon off;" in f.fix
    assert "forking to background" in quoted(f)


def test_a_quiet_exit_zero_is_said_plainly() -> None:
    f = apply(rule, "", exit_code=0, run_seconds=0.1)
    assert f is not None and "printed nothing" in f.summary


def test_the_log_can_report_the_exit_itself() -> None:
    f = apply(rule, "CONTAINER   STATUS\ne14   Exited (0) 5 seconds ago   proxy")
    assert f is not None and "e14   Exited (0) 5 seconds ago   proxy" in quoted(f)


def test_a_probe_kill_that_exits_zero_is_not_this() -> None:
    # the trap: the agent ended it (a liveness kill), the program just exited cleanly on TERM
    kill = KillFact("liveness", "liveness failed 3 times over 15s: HTTP 500")
    assert apply(rule, "shutting down", exit_code=0, kill=kill, became_ready=True) is None
    assert engine("shutting down", exit_code=0, kill=kill, became_ready=True).finding.category is (
        Category.UNRESPONSIVE
    )


def test_a_job_is_allowed_to_finish() -> None:
    assert apply(rule, "done", exit_code=0, long_running=False) is None
