from __future__ import annotations

import pytest

from diagnosis_support import apply, engine
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.finding import Confidence
from infraveil.core.diagnosis.rules.missing_env import rule

SAID = [
    ("Error: environment variable DATABASE_URL is not set", "DATABASE_URL"),
    ("panic: required key REDIS_ADDR missing value", "REDIS_ADDR"),
    ('CRITICAL:root:Required environment variable "USER" not available.', "USER"),
    ("/entrypoint.sh: line 4: POSTGRES_PASSWORD: unbound variable", "POSTGRES_PASSWORD"),
    (
        "Error: Database is uninitialized and superuser password is not specified.\n"
        "       You must specify POSTGRES_PASSWORD to a non-empty value for the superuser.",
        "POSTGRES_PASSWORD",
    ),
    (
        "django.core.exceptions.ImproperlyConfigured: Set the SECRET_KEY environment variable",
        "SECRET_KEY",
    ),
    ("Missing `secret_key_base` for 'production' environment", "secret_key_base"),
]


@pytest.mark.parametrize(("log", "name"), SAID)
def test_the_variable_is_named(log: str, name: str) -> None:
    f = apply(rule, log, exit_code=1, service="api")
    assert f is not None and f.category is Category.MISSING_ENV
    assert f.confidence is Confidence.HIGH
    assert name in f.summary and f"Set {name}" in f.fix and "infraveil restart api" in f.fix


def test_a_key_error_read_from_os_environ_is_high_confidence() -> None:
    log = (
        'Traceback (most recent call last):\n  File "/app/app.py", line 3, in <module>\n'
        '    DB = os.environ["DATABASE_URL"]\n  File "<frozen os>", line 679, in __getitem__\n'
        "KeyError: 'DATABASE_URL'\n"
    )
    d = engine(log, exit_code=1)
    assert d.finding.category is Category.MISSING_ENV
    assert d.finding.confidence is Confidence.HIGH
    assert d.finding.evidence[0].text == "KeyError: 'DATABASE_URL'"


def test_a_key_error_without_environ_is_medium_and_says_how_to_confirm() -> None:
    log = "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\nKeyError: 'API_KEY'"
    f = apply(rule, log, exit_code=1)
    assert f is not None and f.confidence is Confidence.MEDIUM and "os.environ" in f.confirm


def test_a_lowercase_key_error_is_a_dict_lookup_not_the_environment() -> None:
    log = "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\nKeyError: 'user'"
    assert apply(rule, log, exit_code=1) is None
