"""The environment a service instance gets.

From lowest to highest precedence: the agent's own environment (what `infraveil up` was run
with, as supervisord and PM2 do, so a virtualenv's PATH keeps working), the `env_file` (read
at every start, so editing it takes effect on the next restart), the manifest's `env`, and the
INFRAVEIL_SERVICE / INFRAVEIL_INSTANCE variables that tell a service who it is.
"""

from __future__ import annotations

from collections.abc import Mapping

from infraveil.core.envfile import parse_env_file
from infraveil.core.spec import ServiceSpec
from infraveil.runtime.processes import SpawnError


def service_env(spec: ServiceSpec, instance: int, base: Mapping[str, str]) -> dict[str, str]:
    """The full environment of one instance; SpawnError if the env_file cannot be read."""
    env = dict(base)
    if spec.env_file is not None:
        try:
            with open(spec.env_file, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except FileNotFoundError as e:
            raise SpawnError(f"env_file not found: {spec.env_file}", deterministic=True) from e
        except OSError as e:
            raise SpawnError(
                f"cannot read env_file {spec.env_file}: {e.strerror}", deterministic=True
            ) from e
        values, _problems = parse_env_file(text)  # bad lines are reported by `check`
        env.update(values)
    env.update(spec.env)
    env["INFRAVEIL_SERVICE"] = spec.name
    env["INFRAVEIL_INSTANCE"] = str(instance)
    return env
