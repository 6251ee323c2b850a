"""The inputs of a halted service, watched on real files."""

from __future__ import annotations

from pathlib import Path

from infraveil.core.spec import ServiceSpec
from infraveil.daemon.inputs import MIN_GAP, InputWatch, inputs_of


def test_inputs_are_the_manifest_env_file_command_file_and_files_the_failure_names(
    tmp_path: Path,
) -> None:
    spec = ServiceSpec(
        "api", ("./serve.sh", "--port", "80"), str(tmp_path), env_file=str(tmp_path / ".env")
    )
    failure = "FileNotFoundError: [Errno 2] No such file or directory: 'conf/app.yml'"
    assert inputs_of(spec, "/srv/infraveil.toml", failure) == [
        "/srv/infraveil.toml",
        str(tmp_path / ".env"),
        str(tmp_path / "serve.sh"),
        str(tmp_path / "conf" / "app.yml"),
    ]
    # a program found on PATH is not a file of the service's; the directory is not watched
    plain = ServiceSpec("api", ("python3", "app.py"), str(tmp_path))
    assert inputs_of(plain, "/srv/infraveil.toml", "exited with code 1") == ["/srv/infraveil.toml"]


def test_a_file_that_appears_changes_is_seen_once_and_retries_keep_a_gap(tmp_path: Path) -> None:
    config = tmp_path / "app.yml"
    other = tmp_path / "other.yml"
    watch = InputWatch()
    watch.watch("api", [str(config), str(other)])
    assert watch.changed(now=0.0) == []
    config.write_text("a: 1\n")
    assert watch.changed(now=1.0) == [("api", str(config))]
    assert watch.changed(now=2.0) == []  # seen: not again
    watch.retried("api", now=2.0)
    other.write_text("b: 2\n")
    assert watch.changed(now=3.0) == []  # within the gap after a retry: later
    assert watch.changed(now=2.0 + MIN_GAP) == [("api", str(other))]
    watch.forget("api")
    config.write_text("a: 2\n")
    assert watch.changed(now=1000.0) == []
    assert not watch.watching


def test_a_halted_service_watches_its_secrets_file(tmp_path: Path) -> None:
    """A service that fails for a wrong password (its failure names no file) starts again
    when its secrets file is fixed, as it does for its env_file."""
    secrets = tmp_path / "app.secrets"
    secrets.write_text("DB_PASSWORD=wrong\n")
    spec = ServiceSpec(
        "api",
        ("python3", "app.py"),
        str(tmp_path),
        env_file=str(tmp_path / ".env"),
        secrets=str(secrets),
    )
    paths = inputs_of(spec, "/srv/infraveil.toml", "exited with code 1")
    assert paths == ["/srv/infraveil.toml", str(tmp_path / ".env"), str(secrets)]
    watch = InputWatch()
    watch.watch("api", paths)
    assert watch.changed(now=0.0) == []
    secrets.write_text("DB_PASSWORD=right-one\n")
    assert watch.changed(now=1.0) == [("api", str(secrets))]
