from __future__ import annotations

from diagnosis_support import apply, engine, quoted
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.facts import PreflightProblem
from infraveil.core.diagnosis.finding import Specificity
from infraveil.core.diagnosis.rules.preflight import rule

NOT_EXEC = PreflightProblem(
    "command", "not_executable", "/srv/run.sh is not executable (mode 0644)", "chmod +x", ""
)
PORT = PreflightProblem("port", "port_in_use", "port 6379 is held by redis-server", "ss", "6379")


def test_the_first_problem_is_the_finding_and_all_are_quoted() -> None:
    f = apply(rule, preflight=(NOT_EXEC, PORT), service="api")
    assert f is not None and f.category is Category.NOT_EXECUTABLE
    assert f.specificity is Specificity.PLATFORM
    assert f.summary == "api was not started: /srv/run.sh is not executable (mode 0644)."
    assert quoted(f) == [NOT_EXEC.detail, PORT.detail] and f.fix == "chmod +x"


def test_no_problems_no_finding() -> None:
    assert apply(rule) is None


def test_a_preflight_finding_outranks_anything_in_an_old_log() -> None:
    d = engine("KeyError: 'X'", preflight=(PORT,))
    assert d.finding.category is Category.PORT_IN_USE


def test_a_required_variable_missing_at_preflight_is_missing_env_with_its_detail() -> None:
    missing = PreflightProblem(
        "env",
        "missing_env",
        "DATABASE_URL is not set (listed in required_env)",
        'set it: env = { DATABASE_URL = "..." } in [services.api], '
        "or give the service an env_file that sets it",
        "DATABASE_URL",
    )
    d = engine(preflight=(missing,), service="api")
    assert d.finding.category is Category.MISSING_ENV
    assert d.finding.summary == (
        "api was not started: DATABASE_URL is not set (listed in required_env)."
    )
    assert quoted(d.finding) == [missing.detail] and d.finding.fix == missing.fix
