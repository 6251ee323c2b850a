from __future__ import annotations

from diagnosis_support import engine
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts
from infraveil.core.diagnosis.finding import Confidence


def test_no_evidence_says_what_is_missing() -> None:
    d = diagnose(Facts())
    assert d.finding.category is Category.UNKNOWN and d.finding.confidence is Confidence.LOW
    assert "no log" in d.finding.summary and "no exit code or signal" in d.finding.summary


def test_a_log_without_an_error_line_says_how_much_was_read() -> None:
    d = engine("\n".join(f"INFO step {i}" for i in range(30)), exit_code=1)
    assert d.finding.category is Category.UNKNOWN
    assert "no error line in the last 30 lines" in d.finding.summary
    assert d.finding.evidence[0].text == "exited with code 1"


def test_a_problem_with_the_log_itself_is_said() -> None:
    d = diagnose(Facts(log_source="x.log", log_problem="the log is binary data, not text"))
    assert "the log is binary data, not text" in d.finding.summary
