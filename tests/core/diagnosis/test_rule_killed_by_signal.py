from __future__ import annotations

import signal

from diagnosis_support import apply, engine, quoted
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.finding import Confidence

ABORT = (
    "terminate called after throwing an instance of 'std::runtime_error'\n"
    "  what():  n1.back != null\n"
)


def test_an_abort_quotes_the_programs_own_reason() -> None:
    d = engine(ABORT, signal=signal.SIGABRT, core_dumped=True)
    assert d.finding.category is Category.KILLED_BY_SIGNAL and d.finding.deterministic
    assert any("terminate called" in t for t in quoted(d.finding))


def test_a_shells_abort_report_stands_for_the_signal_when_none_is_given() -> None:
    log = ABORT + "[1]    8051 abort (core dumped)  ./papara -t pa.tree\n"
    d = engine(log)
    assert d.finding.category is Category.KILLED_BY_SIGNAL
    assert "SIGABRT" in d.finding.summary


def test_an_outside_sigterm_is_transient() -> None:
    from infraveil.core.diagnosis.rules.killed_by_signal import rule

    f = apply(rule, "serving", signal=signal.SIGTERM)
    assert f is not None and not f.deterministic and "outside" in f.summary
    assert f.confidence is Confidence.HIGH


def test_exit_134_is_how_a_shell_reports_sigabrt() -> None:
    from infraveil.core.diagnosis.rules.killed_by_signal import rule

    f = apply(rule, "", exit_code=134)
    assert f is not None and "SIGABRT" in f.summary and "exit code 134" in f.confirm
    assert apply(rule, "", exit_code=1) is None
