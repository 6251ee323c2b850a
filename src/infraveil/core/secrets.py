"""What looks secret in a service's environment, and how it is kept out of what infraveil shows.

A value is secret when its variable's name looks secret (`looks_secret`: PASSWORD, SECRET,
TOKEN, KEY, CREDENTIAL, PRIVATE, ... in any case) or when it comes from the service's
`secrets` file, whatever its name. The password part of a URL (`postgres://u:PASS@h/db`) is
secret in any variable and in any text.

Secrets are masked in what infraveil *shows* (`describe`, `status`, events, diagnoses, the
API), never in what a service *gets*: the process's environment keeps the real values. Text
that may quote a value (an event message, a log line used as evidence, a preflight detail)
has every occurrence of a known secret value replaced, because a name cannot be recognised
there, only the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

MASK = "***"

MIN_TEXT_SECRET = 4
"""Shorter values are masked where they are shown as a variable, not searched for in text:
a secret "42" or "on" would turn every message that happens to contain it into noise, and
masking it would tell a reader nothing they could not guess."""

_HARMLESS = frozenset({"true", "false", "none", "null", "unset", "empty", "default"})
"""Values of secret-looking variables that are flags or placeholders, not secrets
(`GITHUB_TOKEN_ENABLED=true`): masking them in text would hide ordinary words."""

_MIN_NUMERIC_SECRET = 8
"""A shorter number (`KEY_PORT=8080`, `TOKEN_TTL=3600`) is not searched for in text either: it
would mask every port, size and duration that happens to be written the same way."""

_SECRET_WORDS = (
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "PRIVATE",
)
"""Anywhere in a name: `DB_PASSWORD`, `SECRET_KEY_BASE`, `APIKEY`, `AWS_CREDENTIALS`."""

_SECRET_PARTS = frozenset({"PASS", "PWD", "PW", "AUTH", "CREDS", "COOKIE", "SALT"})
"""Whole `_`-separated parts of a name: `SMTP_PASS`, `DB_PWD`, `BASIC_AUTH` (but not
`COMPASS_URL` or `PASSENGER_MODE`)."""

_NOT_SECRET = frozenset({"PWD", "OLDPWD"})
"""The shell's working directories, which only look like a password."""

_LOCATION_PARTS = frozenset({"FILE", "PATH", "DIR", "SOCK", "SOCKET"})
"""A last part that says the value is where a secret is, not the secret (`SSL_KEY_FILE`,
`DB_PASSWORD_FILE`, `SSH_AUTH_SOCK`): the path is shown, since a diagnosis that cannot name
the missing file explains nothing."""

_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]{0,31}://)(?P<userinfo>[^\s/?#@]*(?:@[^\s/?#@]*)*)@"
)
"""A URL with credentials, up to the last '@' before its path: a password may hold an '@'.
(The scheme's length is bounded so that a long run of letters is not rescanned from each.)"""

_MAX_ROUNDS = 8


def looks_secret(name: str) -> bool:
    """Whether a variable called `name` holds a secret, judged by its name alone."""
    upper = name.upper()
    if upper in _NOT_SECRET:
        return False
    parts = [p for p in upper.split("_") if p]
    if parts and parts[-1] in _LOCATION_PARTS:
        return False
    return any(word in upper for word in _SECRET_WORDS) or any(p in _SECRET_PARTS for p in parts)


def mask_url_credentials(text: str) -> str:
    """`postgres://app:s3cret@db/app` → `postgres://app:***@db/app`, anywhere in `text`.

    Only the part after the user name's ':' is masked (`ssh://git@host` has no password);
    the user name helps a reader tell which account failed.
    """

    def replace(match: re.Match[str]) -> str:
        userinfo = match["userinfo"]
        user, colon, _password = userinfo.partition(":")
        if not colon:
            return match[0]
        return f"{match['scheme']}{user}:{MASK}@"

    return _URL.sub(replace, text)


def text_secrets(env: Mapping[str, str], secret_names: Iterable[str] = ()) -> frozenset[str]:
    """The values of `env` to search for and mask in free text.

    Those of secret-looking names and of `secret_names` (a secrets file's), and the password
    of every URL in any value, except values too short or too ordinary to search for.
    """
    names = set(secret_names)
    found: set[str] = set()
    for name, value in env.items():
        if name in names or looks_secret(name):
            found.add(value)
        for match in _URL.finditer(value):
            _user, colon, password = match["userinfo"].partition(":")
            if colon:
                found.add(password)
    return frozenset(v for v in found if searchable(v))


def searchable(value: str) -> bool:
    """Whether `value` is distinctive enough to be searched for and masked in free text."""
    if len(value) < MIN_TEXT_SECRET or value.lower() in _HARMLESS:
        return False
    return not (value.isdigit() and len(value) < _MIN_NUMERIC_SECRET)


@dataclass(frozen=True)
class Masker:
    """Masks known secret values (and URL passwords) in text, env tables and JSON data."""

    values: frozenset[str] = field(default_factory=frozenset)

    def including(self, values: Iterable[str]) -> Masker:
        """This masker, also masking `values` (too short or ordinary ones are left out)."""
        more = {v for v in values if searchable(v)}
        if more <= self.values:
            return self
        return Masker(self.values | more)

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self.values:
            return None
        # longest first, so a secret that contains another is masked whole
        ordered = sorted(self.values, key=lambda v: (-len(v), v))
        return re.compile("|".join(re.escape(v) for v in ordered))

    def text(self, text: str) -> str:
        """`text` with every known secret value and every URL password replaced by MASK.

        Repeated until nothing changes: a replacement can join the text around it into
        another secret (never in practice, but a mask must not be defeated by construction).
        """
        for _ in range(_MAX_ROUNDS):
            masked = mask_url_credentials(self._values_masked(text))
            if masked == text:
                return masked
            text = masked
        return MASK  # it kept changing: show nothing rather than risk showing a secret

    def _values_masked(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None:
            return text
        while True:  # each replacement is shorter than what it replaces: this ends
            masked = pattern.sub(MASK, text)
            if masked == text:
                return text
            text = masked

    def env(self, env: Mapping[str, str], secret_names: Iterable[str] = ()) -> dict[str, str]:
        """`env` as it may be shown: secret values whole as MASK, the rest with `text`."""
        names = set(secret_names)
        return {
            name: MASK if name in names or looks_secret(name) else self.text(value)
            for name, value in env.items()
        }

    def json(self, data: Any) -> Any:
        """`data` (JSON values) with every string in it passed through `text`."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, Mapping):
            return {key: self.json(value) for key, value in data.items()}
        if isinstance(data, list | tuple):
            return [self.json(value) for value in data]
        return data
