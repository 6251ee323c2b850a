from __future__ import annotations

from diagnosis_support import apply
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.finding import Specificity
from infraveil.core.diagnosis.rules.wrong_arch import rule


def test_exec_format_error_from_a_container_runtime() -> None:
    f = apply(rule, "exec /usr/local/bin/app: exec format error", exit_code=1)
    assert f is not None and f.category is Category.WRONG_ARCH and "uname -m" in f.fix


def test_a_shell_that_cannot_run_the_binary() -> None:
    f = apply(rule, "bash: ./app: cannot execute binary file: Exec format error", exit_code=126)
    assert f is not None and f.evidence[0].text.endswith("Exec format error")


def test_the_agents_own_exec_failure() -> None:
    err = "cannot execute /srv/app: exec format error (a script without a #! line, or ...)"
    f = apply(rule, spawn_error=err)
    assert f is not None and f.specificity is Specificity.PLATFORM


def test_other_format_words_are_not_it() -> None:
    assert apply(rule, "ERROR: invalid date format in row 3", exit_code=1) is None
