from __future__ import annotations

import signal

from diagnosis_support import apply, quoted
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.finding import Specificity
from infraveil.core.diagnosis.rules.segfault import rule


def test_the_signal_from_the_exit_status_is_the_verdict() -> None:
    f = apply(rule, "", signal=signal.SIGSEGV, core_dumped=True)
    assert f is not None and f.category is Category.SEGFAULT and "dumped core" in f.summary
    assert quoted(f) == ["killed by SIGSEGV (core dumped)"]


def test_the_shells_report_is_quoted() -> None:
    f = apply(rule, "loading plugin\nSegmentation fault (core dumped)", exit_code=139)
    assert f is not None and "Segmentation fault (core dumped)" in quoted(f)
    assert f.specificity is Specificity.MESSAGE


def test_exit_139_alone_is_a_hint() -> None:
    f = apply(rule, "", exit_code=139)
    assert f is not None and f.specificity is Specificity.EXIT_CODE


def test_a_go_panic_mentioning_sigsegv_is_not_a_segfault() -> None:
    log = "panic: runtime error: invalid memory address\n[signal SIGSEGV: segmentation violation]\n"
    log += "\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:9 +0x1d\n"
    assert apply(rule, log, exit_code=2) is None
