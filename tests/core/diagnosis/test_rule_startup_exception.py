from __future__ import annotations

from diagnosis_support import apply, engine, quoted
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.finding import Confidence, Specificity
from infraveil.core.diagnosis.rules.startup_exception import rule

PYTHON = """Traceback (most recent call last):
  File "/app/main.py", line 9, in <module>
    app = create_app()
  File "/app/factory.py", line 3, in create_app
    raise RuntimeError("plugin registry is empty")
RuntimeError: plugin registry is empty
"""


def test_the_terminal_exception_is_quoted_verbatim() -> None:
    f = apply(rule, PYTHON, exit_code=1, run_seconds=0.8)
    assert f is not None and f.category is Category.STARTUP_EXCEPTION
    assert f.specificity is Specificity.EXCEPTION
    assert quoted(f)[0] == "RuntimeError: plugin registry is empty"
    assert "while starting (0.8s after start)" in f.summary


def test_a_go_panic_quotes_the_panic_and_the_first_user_frame() -> None:
    log = (
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
        "[signal SIGSEGV: segmentation violation code=0x1 addr=0x98 pc=0xe1d30f]\n\n"
        "goroutine 1 [running]:\nmain.main()\n\t/app/main.go:69 +0x1af\n"
    )
    d = engine(log, exit_code=2)
    assert d.finding.category is Category.STARTUP_EXCEPTION  # not a segfault of native code
    assert quoted(d.finding)[0].startswith("panic: runtime error")
    assert "/app/main.go:69 +0x1af" in quoted(d.finding)


def test_a_generic_error_line_is_only_a_keyword() -> None:
    f = apply(rule, "INFO up\nERROR something went wrong\nINFO bye", exit_code=1)
    assert f is not None and f.specificity is Specificity.KEYWORD
    assert f.confidence is Confidence.LOW


def test_a_clean_log_says_nothing() -> None:
    assert apply(rule, "INFO starting\nINFO listening", exit_code=1) is None
