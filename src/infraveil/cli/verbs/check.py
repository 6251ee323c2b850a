"""`infraveil check`: validate the manifest, then preflight every service; nothing is started."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path

import click

from infraveil.cli.errors import FAILED
from infraveil.cli.options import manifest_option, output_option
from infraveil.cli.render import emit_json, root_warning_line, root_warnings
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.facts import PreflightProblem
from infraveil.core.errors import ManifestError
from infraveil.core.spec import Manifest, ServiceSpec
from infraveil.runtime.environment import known_secrets, read_env_file, service_env
from infraveil.runtime.manifest_file import load_manifest
from infraveil.runtime.preflight import preflight
from infraveil.runtime.processes import SpawnError


@click.command()
@manifest_option
@output_option
def check(manifest: Path, output: str) -> None:
    """Validate the manifest, then run every service's preflight; start nothing.

    Manifest problems are reported as FILE:LINE. A valid manifest is then preflighted as the
    agent does before every start, with the environment this command runs in standing in
    for the agent's: the command resolves and is executable by the service's user (and is
    built for this machine), the working directory, the env_file and the config files named
    in the command exist and can be read, the user exists, the variables in `required_env`
    are set, and the ports are free (a port held by the service's own running instance is
    fine). Each problem is printed as `SERVICE: category — detail`, with the fix on the next
    line. A `payload` service without a `cwd` runs from its release, which exists only once
    deployed: its relative command and files are checked by `infraveil deploy` instead, and
    a note says so.

    Warnings follow the verdict, one line each, and do not change it: the services that would
    run as root because this command (standing in for the agent) runs as root and they set no
    `user`, and each `secrets` file that other users can read. Secret values are masked in
    everything printed.

    Exits 0 when everything passes, 1 when a preflight check fails, 2 when the manifest is
    invalid.
    """
    try:
        loaded = load_manifest(manifest)
    except ManifestError as e:
        if output == "json":
            emit_json("check", {"valid": False, "issues": [vars(i) for i in e.issues]})
            raise click.exceptions.Exit(2) from e
        raise
    found = preflight_all(loaded, os.environ)
    failing = {name: problems for name, problems in found.items() if problems}
    notes = {name: [RELEASE_NOTE] for name, s in loaded.services.items() if s.runs_in_release}
    warnings = check_warnings(loaded)
    mask = known_secrets()  # (preflight_all built every environment: all their secrets)
    if output == "json":
        emit_json(
            "check",
            mask.json(
                {
                    "valid": True,
                    "issues": [],
                    "services": list(loaded.services),
                    "preflight": {
                        name: [asdict(p) for p in problems] for name, problems in found.items()
                    },
                    "notes": notes,
                    "warnings": warnings,
                }
            ),
        )
    else:
        names = ", ".join(loaded.services)
        click.echo(f"{loaded.path}: ok, {len(loaded.services)} services ({names})")
        for name, problems in found.items():
            for note in notes.get(name, ()):
                click.echo(f"{name}: {note}")
            for problem in problems:
                click.echo(mask.text(f"{name}: {problem.category} — {problem.detail}"))
                click.echo(mask.text(f"  fix: {problem.fix}"))
        if failing:
            count = sum(len(p) for p in failing.values())
            click.echo(
                f"preflight: {count} problem{'s' if count != 1 else ''} in "
                f"{_services(len(failing))} (nothing was started)"
            )
        else:
            click.echo(f"preflight: {_services(len(loaded.services))} ready to start")
        # after the verdict: they do not change it (and scripts reading its lines keep them)
        as_root = [w["service"] for w in warnings if w["warning"] == "runs_as_root"]
        if as_root:
            click.echo(root_warning_line(as_root))
        for w in warnings:
            if w["warning"] != "runs_as_root":
                click.echo(f"warning: {w['service']}: {w['message']}; {w['fix']}")
    if failing:
        raise click.exceptions.Exit(FAILED)


RELEASE_NOTE = "runs from its release; the command and its files are checked at deploy"
"""Said of a service that runs in its release, whose relative paths `check` cannot see."""


def preflight_all(manifest: Manifest, base: Mapping[str, str]) -> dict[str, list[PreflightProblem]]:
    """Every service's preflight problems, in manifest order, with the agent's base env."""
    return {name: _preflight_one(spec, base) for name, spec in manifest.services.items()}


def _preflight_one(spec: ServiceSpec, base: Mapping[str, str]) -> list[PreflightProblem]:
    # No release can be seen from here (there may be no agent at all): a service that runs in
    # its release has its relative paths checked by the deploy, against the release itself.
    release_unknown = spec.runs_in_release
    try:
        env = service_env(spec, 0, base)
    except SpawnError:
        # The env_file or the secrets file cannot be read: check the rest with what the agent
        # would have without them. Preflight reports the env_file itself; the agent's own
        # words stand in if not, and for the secrets file. What the files would set is
        # unknown, so a required variable missing without them is not reported: the file is
        # the problem to fix first.
        env = service_env(replace(spec, env_file=None, secrets=None), 0, base)
        problems = preflight(spec, env, running_ok=True, release_unknown=release_unknown)
        problems = [p for p in problems if p.check != "env"]
        unread = _unreadable_files(spec)
        reported = {p.check for p in problems}
        return [p for p in unread if p.check not in reported] + problems
    return preflight(spec, env, running_ok=True, release_unknown=release_unknown)


def _unreadable_files(spec: ServiceSpec) -> list[PreflightProblem]:
    """The env_file and secrets file of `spec` that cannot be read, with the agent's words."""
    problems = []
    for check, path in (("env_file", spec.env_file), ("secrets", spec.secrets)):
        if path is None:
            continue
        what = "env_file" if check == "env_file" else "secrets file"
        try:
            read_env_file(path, what)
        except SpawnError as e:
            fix = f"make the {what} readable by the agent's user, or remove `{check}`"
            problems.append(
                PreflightProblem(check, str(Category.CONFIG_MISSING), str(e), fix, path)
            )
    return problems


def check_warnings(manifest: Manifest) -> list[dict[str, str]]:
    """What is not a failure but should not stay so: services that run as root only because
    the agent does, and secrets files that others can read. In manifest order."""
    as_root = os.geteuid() == 0
    warnings: list[dict[str, str]] = []
    for name, spec in manifest.services.items():
        if as_root and spec.user is None:
            warnings += root_warnings([name])
        if spec.secrets is not None:
            warnings += _secrets_file_warnings(name, spec.secrets)
    return warnings


def _secrets_file_warnings(name: str, path: str) -> list[dict[str, str]]:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:  # unreadable or missing: a preflight problem, reported as such
        return []
    if not mode & 0o077:
        return []
    return [
        {
            "service": name,
            "warning": "secrets_readable",
            "message": f"its secrets file {path} can be read or changed by other users"
            f" (mode {mode:04o})",
            "fix": f"chmod 600 {path}",
        }
    ]


def _services(count: int) -> str:
    return f"{count} service" + ("" if count == 1 else "s")


COMMANDS = (check,)
