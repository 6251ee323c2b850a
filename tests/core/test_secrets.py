"""What looks secret, and masking: a masked output never contains a secret value."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infraveil.core.secrets import (
    MASK,
    MIN_TEXT_SECRET,
    Masker,
    looks_secret,
    mask_url_credentials,
    searchable,
    text_secrets,
)


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASSWORD",
        "password",
        "MYSQL_ROOT_PASSWD",
        "GPG_PASSPHRASE",
        "SECRET_KEY_BASE",
        "client_secret",
        "GITHUB_TOKEN",
        "api_key",
        "APIKEY",
        "STRIPE_SECRET",
        "AWS_SECRET_ACCESS_KEY",
        "GOOGLE_CREDENTIALS",
        "PRIVATE_PEM",
        "SMTP_PASS",
        "DB_PWD",
        "BASIC_AUTH",
        "SESSION_COOKIE",
        "PASSWORD_SALT",
    ],
)
def test_names_that_look_secret(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "HOME",
        "LOG_LEVEL",
        "DATABASE_URL",  # not by its name: its password part is masked as a URL's
        "PWD",
        "OLDPWD",
        "COMPASS_URL",
        "PASSENGER_MODE",
        "AUTHOR",
        "SSL_KEY_FILE",  # where the key is, not the key: a diagnosis must be able to name it
        "DB_PASSWORD_FILE",
        "SSH_AUTH_SOCK",
        "TLS_PRIVATE_KEY_PATH",
    ],
)
def test_names_that_do_not_look_secret(name: str) -> None:
    assert not looks_secret(name)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgres://app:s3cret@db:5432/app", "postgres://app:***@db:5432/app"),
        ("redis://:tok@cache:6379/0", "redis://:***@cache:6379/0"),
        ("amqp://u:p@ss@rabbit/vh", "amqp://u:***@rabbit/vh"),  # an unencoded '@' in it
        (
            "could not connect to mysql+pymysql://root:pw@db/x (timeout); retrying",
            "could not connect to mysql+pymysql://root:***@db/x (timeout); retrying",
        ),
        ("a=postgres://a:1@h b=postgres://b:2@h", "a=postgres://a:***@h b=postgres://b:***@h"),
        ("ssh://git@github.com/x.git", "ssh://git@github.com/x.git"),  # no password
        ("https://example.com/a@b", "https://example.com/a@b"),  # an '@' in the path
        ("mail me at a@b.c:443", "mail me at a@b.c:443"),
        ("no url here", "no url here"),
    ],
)
def test_url_passwords_are_masked_anywhere_in_text(text: str, masked: str) -> None:
    assert mask_url_credentials(text) == masked
    assert Masker().text(text) == masked


def test_text_secrets_are_secret_names_values_secrets_files_and_url_passwords() -> None:
    env = {
        "DB_PASSWORD": "hunter22",
        "FROM_FILE": "opaque-value",
        "DATABASE_URL": "postgres://app:dsn-pass@db/app",
        "LOG_LEVEL": "debug",
        "GITHUB_TOKEN_ENABLED": "true",  # a flag, not a secret: never searched for in text
        "API_KEY": "abc",  # too short to search for in text (masked as a variable, below)
    }
    assert text_secrets(env, ["FROM_FILE"]) == {"hunter22", "opaque-value", "dsn-pass"}
    shown = Masker(text_secrets(env, ["FROM_FILE"])).env(env, ["FROM_FILE"])
    assert shown == {
        "DB_PASSWORD": MASK,
        "FROM_FILE": MASK,
        "DATABASE_URL": "postgres://app:***@db/app",
        "LOG_LEVEL": "debug",
        "GITHUB_TOKEN_ENABLED": MASK,
        "API_KEY": MASK,
    }


def test_a_value_is_masked_wherever_it_is_quoted() -> None:
    masker = Masker().including(["hunter22", "opaque-value"])
    message = "exited with code 1: FATAL: password authentication failed (hunter22)"
    assert masker.text(message) == "exited with code 1: FATAL: password authentication failed (***)"
    other = {"PLAIN": "prefix-opaque-value-suffix"}
    assert masker.env(other) == {"PLAIN": "prefix-***-suffix"}
    data = {
        "summary": "bad hunter22",
        "evidence": [{"source": "log:3", "text": "opaque-value!"}, 3, None, True],
    }
    assert masker.json(data) == {
        "summary": "bad ***",
        "evidence": [{"source": "log:3", "text": "***!"}, 3, None, True],
    }


def test_a_secret_that_contains_another_is_masked_whole() -> None:
    masker = Masker().including(["abcd", "abcdefgh"])
    assert masker.text("x abcdefgh y abcd") == "x *** y ***"


def test_short_and_ordinary_values_are_not_searched_for() -> None:
    masker = Masker().including(["on", "abc", "true", "False", "8080", "3600"])
    assert masker.values == frozenset()
    assert masker.text("true, on and abc: port 8080 for 3600s") == (
        "true, on and abc: port 8080 for 3600s"
    )
    assert masker.including([]) is masker
    assert Masker().including(["12345678"]).text("pin 12345678") == "pin ***"  # long enough
    # where they are shown as a variable, they are masked all the same
    assert masker.env({"API_KEY": "abc", "KEY_PORT": "8080"}) == {"API_KEY": MASK, "KEY_PORT": MASK}


# ── properties ──────────────────────────────────────────────────────────────────────────────

SECRET = st.text(min_size=MIN_TEXT_SECRET, max_size=24).filter(searchable)
TEXT = st.text(max_size=60)


@settings(max_examples=300)
@given(secrets=st.lists(SECRET, min_size=1, max_size=4), parts=st.lists(TEXT, max_size=6))
def test_a_masked_text_never_contains_a_secret(secrets: list[str], parts: list[str]) -> None:
    # the secrets are interleaved with arbitrary text: whatever is around them, even other
    # secrets or the mask itself, the result holds none of them
    text = "".join(p + secrets[i % len(secrets)] for i, p in enumerate(parts)) + secrets[0]
    masked = Masker().including(secrets).text(text)
    for secret in secrets:
        assert secret not in masked


@settings(max_examples=200)
@given(
    env=st.dictionaries(
        st.text(string.ascii_letters + "_", min_size=1, max_size=12), TEXT, max_size=6
    ),
    secret_name=st.sampled_from(["DB_PASSWORD", "api_token", "SECRET", "X_KEY", "FROM_FILE"]),
    value=SECRET,
)
def test_a_masked_env_never_shows_a_secret_value(
    env: dict[str, str], secret_name: str, value: str
) -> None:
    env = {**env, secret_name: value}
    masker = Masker(text_secrets(env, ["FROM_FILE"]))
    shown = masker.env(env, ["FROM_FILE"])
    assert shown[secret_name] == MASK
    assert all(value not in v for v in shown.values())


@settings(max_examples=200)
@given(
    user=st.text(string.ascii_letters + string.digits + "_.-", max_size=10),
    password=st.text(min_size=1, max_size=20).filter(
        lambda p: not any(c.isspace() or c in "/?#" for c in p)
    ),
    scheme=st.sampled_from(["postgres", "postgresql+psycopg", "redis", "amqps", "mongodb+srv"]),
    before=st.sampled_from(["", "connecting to ", "DATABASE_URL="]),
)
def test_a_url_password_is_masked_whatever_it_holds(
    user: str, password: str, scheme: str, before: str
) -> None:
    url = f"{before}{scheme}://{user}:{password}@db.internal:5432/app"
    assert Masker().text(url) == f"{before}{scheme}://{user}:***@db.internal:5432/app"


@given(text=st.text(max_size=200).filter(lambda t: "://" not in t))
def test_text_without_secrets_or_urls_is_left_alone(text: str) -> None:
    assert Masker().including(["\0never-there\0"]).text(text) == text
