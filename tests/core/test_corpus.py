"""The engine against the crash-log corpus (tests/corpus/): real logs from public bug reports.

Targets (the issue): the right category for >= 95 % of the cases, and the decisive line quoted
in the winning finding's evidence for >= 90 %. `scripts/corpus_accuracy.py -v` shows the misses.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from corpus import accuracy
from corpus.corpus import (
    ALLOWED_KEYS,
    REQUIRED_KEYS,
    Case,
    Result,
    load_cases,
    run_all,
    signal_number,
)
from infraveil.core.diagnosis.categories import Category

KNOWN = {c.value for c in Category}

CASES = load_cases()


def _describe(r: Result) -> str:
    f = r.diagnosis.finding
    evidence = "; ".join(e.text for e in f.evidence) or "(none)"
    return (
        f"{r.case.name}: expected {r.case.category}, got {r.got}"
        f" — {f.summary} — evidence: {evidence[:200]}"
    )


def test_the_corpus_has_enough_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_is_well_formed(case: Case) -> None:
    raw = case.raw or {}
    assert set(raw) >= REQUIRED_KEYS, f"missing keys: {sorted(REQUIRED_KEYS - set(raw))}"
    assert set(raw) <= ALLOWED_KEYS, f"unknown keys: {sorted(set(raw) - ALLOWED_KEYS)}"
    url = urlparse(case.source)
    assert url.scheme in {"http", "https"} and url.netloc, f"source is not a URL: {case.source}"
    assert case.category in KNOWN, f"unknown category {case.category!r}"
    assert case.decisive, "decisive is empty"
    assert case.decisive in case.text, "decisive does not occur verbatim in log.txt"
    assert case.note.strip(), "note is empty"
    assert case.text.strip(), "log.txt is empty"
    if "exit_code" in raw:
        assert isinstance(raw["exit_code"], int) and 0 <= raw["exit_code"] <= 255
    if "signal" in raw:
        signal_number(str(raw["signal"]))  # a known signal name or number
    if "oom_killed" in raw:
        assert isinstance(raw["oom_killed"], bool)


def test_case_names_are_unique_and_numbered() -> None:
    numbers = [c.name.split("-", 1)[0] for c in CASES]
    assert all(n.isdigit() and len(n) == 3 for n in numbers)
    assert len(set(numbers)) == len(numbers)


def test_engine_meets_the_corpus_targets() -> None:
    accuracy.assert_targets(run_all(), _describe)
