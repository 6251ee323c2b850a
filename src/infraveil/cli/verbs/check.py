"""`infraveil check`: validate the manifest, then preflight every service; nothing is started."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path

import click

from infraveil.cli.errors import FAILED
from infraveil.cli.options import manifest_option, output_option
from infraveil.cli.render import emit_json
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.facts import PreflightProblem
from infraveil.core.errors import ManifestError
from infraveil.core.spec import Manifest, ServiceSpec
from infraveil.runtime.environment import service_env
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
    if output == "json":
        emit_json(
            "check",
            {
                "valid": True,
                "issues": [],
                "services": list(loaded.services),
                "preflight": {
                    name: [asdict(p) for p in problems] for name, problems in found.items()
                },
                "notes": notes,
            },
        )
    else:
        names = ", ".join(loaded.services)
        click.echo(f"{loaded.path}: ok, {len(loaded.services)} services ({names})")
        for name, problems in found.items():
            for note in notes.get(name, ()):
                click.echo(f"{name}: {note}")
            for problem in problems:
                click.echo(f"{name}: {problem.category} — {problem.detail}")
                click.echo(f"  fix: {problem.fix}")
        if failing:
            count = sum(len(p) for p in failing.values())
            click.echo(
                f"preflight: {count} problem{'s' if count != 1 else ''} in "
                f"{_services(len(failing))} (nothing was started)"
            )
        else:
            click.echo(f"preflight: {_services(len(loaded.services))} ready to start")
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
    except SpawnError as e:
        # The env_file cannot be read: check the rest with what the agent would have without
        # it. Preflight reports the env_file itself; the agent's own words stand in if not.
        # What the file would set is unknown, so a required variable missing without it is
        # not reported: the env_file is the problem to fix first.
        env = service_env(replace(spec, env_file=None), 0, base)
        problems = preflight(spec, env, running_ok=True, release_unknown=release_unknown)
        problems = [p for p in problems if p.check != "env"]
        if not any(p.check == "env_file" for p in problems):
            problems.insert(0, _env_file_problem(spec, str(e)))
        return problems
    return preflight(spec, env, running_ok=True, release_unknown=release_unknown)


def _env_file_problem(spec: ServiceSpec, error: str) -> PreflightProblem:
    return PreflightProblem(
        "env_file",
        str(Category.CONFIG_MISSING),
        error,
        "make the env_file readable by the agent's user, or remove `env_file`",
        spec.env_file or "",
    )


def _services(count: int) -> str:
    return f"{count} service" + ("" if count == 1 else "s")


COMMANDS = (check,)
