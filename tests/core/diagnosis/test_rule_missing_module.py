from __future__ import annotations

import pytest

from diagnosis_support import apply, engine
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.rules.missing_module import rule

CASES = [
    ("ModuleNotFoundError: No module named 'flask'", "flask"),
    ("ImportError: libGL.so.1: cannot open shared object file: No such file or directory", ""),
    (
        'Exception in thread "main" java.lang.NoClassDefFoundError: org/slf4j/LoggerFactory',
        "org/slf4j/LoggerFactory",
    ),
    ("Error: Could not find or load main class com.acme.Main", "com.acme.Main"),
    ("Error: Cannot find module 'express'", "express"),
    (
        "/usr/bin/app: error while loading shared libraries: libssl.so.1.1: cannot open shared"
        " object file: No such file or directory",
        "libssl.so.1.1",
    ),
    (
        "Error loading shared library libstdc++.so.6: No such file or directory (needed by"
        " /usr/local/bin/h2o)",
        "libstdc++.so.6",
    ),
    ("<internal:kernel_require>:85:in `require': cannot load such file -- pg (LoadError)", "pg"),
]


@pytest.mark.parametrize(("line", "name"), CASES)
def test_what_is_missing_is_named(line: str, name: str) -> None:
    f = apply(rule, f"booting\n{line}\n", exit_code=1)
    assert f is not None and f.category is Category.MISSING_MODULE
    assert f.evidence[0].text == line and name in f.summary


def test_a_module_that_loaded_is_not_missing() -> None:
    assert apply(rule, "loaded module flask\nINFO listening") is None


def test_it_outranks_the_generic_exception_reading() -> None:
    log = (
        'Traceback (most recent call last):\n  File "/app/a.py", line 1, in <module>\n'
        "    import flask\nModuleNotFoundError: No module named 'flask'\n"
    )
    d = engine(log, exit_code=1)
    assert d.finding.category is Category.MISSING_MODULE
    assert Category.STARTUP_EXCEPTION in [o.category for o in d.others]
