"""The `secrets` file: read at every start, wins over `env`, and its values become known secrets."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from infraveil.core.secrets import MASK
from infraveil.core.spec import ServiceSpec
from infraveil.runtime.environment import (
    known_secrets,
    remember_secrets_of,
    secret_names,
    service_env,
)
from infraveil.runtime.processes import SpawnError


def _spec(tmp_path: Path, **fields: object) -> ServiceSpec:
    return ServiceSpec(name="api", command=("true",), cwd=str(tmp_path), **fields)  # type: ignore[arg-type]


def test_the_secrets_file_wins_over_env_and_env_file_and_its_values_are_known(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text("SHARED=from-env-file\nPLAIN=plain-from-file\n")
    (tmp_path / "api.secrets").write_text(
        "# real values\nSHARED=from-secrets-7f3a\nexport OPAQUE='quoted value 91c2'\n"
    )
    spec = _spec(
        tmp_path,
        env_file=str(tmp_path / ".env"),
        secrets=str(tmp_path / "api.secrets"),
        env=MappingProxyType({"SHARED": "manifest-placeholder", "LOG_LEVEL": "info"}),
    )
    env = service_env(spec, 3, {"PATH": "/usr/bin", "SHARED": "from-agent"})
    assert env["SHARED"] == "from-secrets-7f3a"
    assert env["OPAQUE"] == "quoted value 91c2"  # the process gets the real value
    assert env["PLAIN"] == "plain-from-file"
    assert env["LOG_LEVEL"] == "info"
    assert (env["INFRAVEIL_SERVICE"], env["INFRAVEIL_INSTANCE"]) == ("api", "3")
    assert secret_names(spec) == {"SHARED", "OPAQUE"}
    # a secrets file's values are secret whatever their names
    said = known_secrets().text("OPAQUE is 'quoted value 91c2', SHARED is from-secrets-7f3a")
    assert said == f"OPAQUE is '{MASK}', SHARED is {MASK}"
    assert known_secrets().text("plain-from-file") == "plain-from-file"


def test_a_missing_secrets_file_is_a_deterministic_spawn_error(tmp_path: Path) -> None:
    spec = _spec(tmp_path, secrets=str(tmp_path / "nope.secrets"))
    with pytest.raises(SpawnError, match=r"secrets file not found: .*nope\.secrets") as error:
        service_env(spec, 1, {})
    assert error.value.deterministic
    assert secret_names(spec) == frozenset()


def test_secrets_are_known_before_any_start_and_unreadable_files_are_skipped(
    tmp_path: Path,
) -> None:
    (tmp_path / "api.secrets").write_text("ANYTHING=before-start-5d1e\n")
    spec = _spec(
        tmp_path,
        env_file=str(tmp_path / "missing.env"),
        secrets=str(tmp_path / "api.secrets"),
        env=MappingProxyType({"DB_PASSWORD": "manifest-pw-2b8c"}),
    )
    remember_secrets_of(spec, {"GITHUB_TOKEN": "agent-token-44aa"})
    masked = known_secrets().text("before-start-5d1e manifest-pw-2b8c agent-token-44aa")
    assert masked == f"{MASK} {MASK} {MASK}"


@pytest.mark.parametrize("what", ["env_file", "secrets"])
def test_a_missing_env_or_secrets_file_is_diagnosed_as_config_missing(
    tmp_path: Path, what: str
) -> None:
    from infraveil.core.diagnosis.engine import diagnose
    from infraveil.daemon.diagnosing import start_facts

    spec = _spec(tmp_path, **{what: str(tmp_path / "missing")})
    with pytest.raises(SpawnError) as error:
        service_env(spec, 1, {})
    diagnosis = diagnose(start_facts(spec, number=1, spawn_error=str(error.value)))
    assert str(diagnosis.finding.category) == "config_missing"
    assert str(tmp_path / "missing") in diagnosis.finding.summary
