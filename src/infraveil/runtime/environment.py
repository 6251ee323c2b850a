"""The environment a service instance gets, and the secrets in it that infraveil must not show.

From lowest to highest precedence: the agent's own environment (what `infraveil up` was run
with, as supervisord and PM2 do, so a virtualenv's PATH keeps working), the `env_file` (read
at every start, so editing it takes effect on the next restart), the manifest's `env`, the
`secrets` file (read at every start too; it wins over `env`, so a placeholder in the
committed manifest never shadows the real secret), and the INFRAVEIL_SERVICE /
INFRAVEIL_INSTANCE variables that tell a service who it is.

Every environment built here also tells `known_secrets` which values in it are secret (see
`infraveil.core.secrets`). That record is per process and only grows: whatever infraveil
prints or stores afterwards — an event, a diagnosis, an API answer — is masked with it, so a
secret cannot leak through a path nobody thought of, and a rotated secret's old value stays
masked in the old events that quote it.
"""

from __future__ import annotations

from collections.abc import Mapping

from infraveil.core.envfile import parse_env_file
from infraveil.core.secrets import Masker, text_secrets
from infraveil.core.spec import ServiceSpec
from infraveil.runtime.processes import SpawnError

_known = Masker()


def known_secrets() -> Masker:
    """A masker for every secret value this process has put in a service's environment."""
    return _known


def remember_secrets(values: frozenset[str]) -> None:
    global _known
    _known = _known.including(values)  # a new immutable Masker: readers never see it half-made


def service_env(spec: ServiceSpec, instance: int, base: Mapping[str, str]) -> dict[str, str]:
    """The full environment of one instance; SpawnError if the env_file or secrets cannot be
    read. Its secret values are added to `known_secrets`."""
    env = dict(base)
    if spec.env_file is not None:
        env.update(read_env_file(spec.env_file, "env_file"))
    env.update(spec.env)
    secrets: dict[str, str] = {}
    if spec.secrets is not None:
        secrets = read_env_file(spec.secrets, "secrets file")
        env.update(secrets)
    env["INFRAVEIL_SERVICE"] = spec.name
    env["INFRAVEIL_INSTANCE"] = str(instance)
    remember_secrets(text_secrets(env, secrets))
    return env


def secret_names(spec: ServiceSpec) -> frozenset[str]:
    """The names set by `spec`'s secrets file (empty when it has none or it cannot be read)."""
    if spec.secrets is None:
        return frozenset()
    try:
        return frozenset(read_env_file(spec.secrets, "secrets file"))
    except SpawnError:
        return frozenset()


def remember_secrets_of(spec: ServiceSpec, base: Mapping[str, str]) -> None:
    """Learn `spec`'s secret values before it starts (an agent that adopts running instances
    must mask what they say before it spawns anything); files that cannot be read are skipped."""

    def read(path: str | None, what: str) -> dict[str, str]:
        try:
            return read_env_file(path, what) if path is not None else {}
        except SpawnError:
            return {}

    secrets = read(spec.secrets, "secrets file")
    env = {**base, **read(spec.env_file, "env_file"), **spec.env, **secrets}
    remember_secrets(text_secrets(env, secrets))


def read_env_file(path: str, what: str) -> dict[str, str]:
    """The KEY=VALUE variables of the file at `path` (`what` names it in the SpawnError)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError as e:
        raise SpawnError(f"{what} not found: {path}", deterministic=True) from e
    except OSError as e:
        raise SpawnError(f"cannot read {what} {path}: {e.strerror}", deterministic=True) from e
    # Bad lines are skipped: their text is not quoted anywhere, since in a secrets file it
    # may be a secret written without its '='.
    values, _problems = parse_env_file(text)
    return values
