from __future__ import annotations

import pytest

from diagnosis_support import apply, engine
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.rules.heap_exhausted import rule

CASES = [
    ('Exception in thread "main" java.lang.OutOfMemoryError: Java heap space', "-Xmx"),
    ("java.lang.OutOfMemoryError: Metaspace", "MaxMetaspaceSize"),
    (
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        "max-old-space-size",
    ),
    ("fatal error: runtime: out of memory", "GOMEMLIMIT"),
    ("MemoryError", "memory available"),
]


@pytest.mark.parametrize(("line", "knob"), CASES)
def test_each_runtime_names_its_own_knob(line: str, knob: str) -> None:
    f = apply(rule, f"starting\n{line}\n", exit_code=1)
    assert f is not None and f.category is Category.HEAP_EXHAUSTED
    assert f.evidence[0].text == line and knob in f.fix


def test_a_mention_of_memory_is_not_heap_exhaustion() -> None:
    assert apply(rule, "INFO memory usage 30%\nERROR out of patience") is None


def test_heap_exhaustion_wins_over_the_exceptions_that_follow_it() -> None:
    log = (
        'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space\n'
        "\tat com.acme.Cache.put(Cache.java:10)\n"
        'Exception in thread "pool-1" java.lang.IllegalStateException: closed\n'
        "\tat com.acme.Pool.get(Pool.java:3)\n"
    )
    assert engine(log, exit_code=1).finding.category is Category.HEAP_EXHAUSTED
