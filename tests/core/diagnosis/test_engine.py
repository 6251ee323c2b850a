"""The engine as a whole: ranking between rules, bounds on what it reads, and its JSON."""

from __future__ import annotations

import time

import pytest

from diagnosis_support import engine
from infraveil.core.diagnosis.categories import MEANING, Category
from infraveil.core.diagnosis.clues import MAX_LINES


def test_a_specific_message_on_the_decisive_line_beats_the_generic_exception() -> None:
    log = (
        'Traceback (most recent call last):\n  File "/app/db.py", line 4, in connect\n'
        'psycopg2.OperationalError: connection to server at "127.0.0.1", port 5432 failed:'
        " Connection refused\n"
    )
    d = engine(log, exit_code=1)
    assert d.finding.category is Category.DEPENDENCY_UNREACHABLE
    assert not d.finding.deterministic  # a victim: back off, do not halt
    assert Category.STARTUP_EXCEPTION in [o.category for o in d.others]


def test_others_name_each_other_category_once() -> None:
    d = engine("Segmentation fault (core dumped)", exit_code=139, signal=None)
    categories = [d.finding.category, *(o.category for o in d.others)]
    assert len(categories) == len(set(categories))


def test_the_json_has_the_documented_fields() -> None:
    data = engine("Error: Cannot find module 'express'", exit_code=1).as_dict()
    assert set(data) == {
        "category", "summary", "evidence", "fix", "confidence", "deterministic", "confirm",
        "others",
    }  # fmt: skip
    assert data["evidence"] == [
        {"source": "app.log line 1", "text": "Error: Cannot find module 'express'"},
        {"source": "exit status", "text": "exited with code 1"},  # every answer says how it ended
    ]


def test_only_the_last_lines_are_read() -> None:
    old_error = "ModuleNotFoundError: No module named 'old'"
    log = "\n".join([old_error, *(f"INFO step {i}" for i in range(MAX_LINES))])
    assert engine(log, exit_code=1).finding.category is Category.UNKNOWN


@pytest.mark.parametrize("line", ["a" * 26000, "'A" * 13000, "x: " * 9000, "word " * 5200])
def test_long_lines_never_make_it_hang(line: str) -> None:
    # a regex that backtracks on a long line turns one exit into minutes of a blocked agent;
    # the bound is far above the real cost (a fraction of a second) and only catches that
    started = time.monotonic()
    engine("\n".join([line] * 5), exit_code=1)
    assert time.monotonic() - started < 10


def test_every_category_has_a_meaning() -> None:
    assert set(MEANING) == set(Category)
