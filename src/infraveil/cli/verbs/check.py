"""`infraveil check`: validate the manifest; nothing is started."""

from __future__ import annotations

from pathlib import Path

import click

from infraveil.cli.options import manifest_option, output_option
from infraveil.cli.render import emit_json
from infraveil.core.errors import ManifestError
from infraveil.runtime.manifest_file import load_manifest


@click.command()
@manifest_option
@output_option
def check(manifest: Path, output: str) -> None:
    """Validate the manifest and report every problem as FILE:LINE; start nothing.

    Exits 0 when the manifest is valid, 2 when it is not.
    """
    try:
        loaded = load_manifest(manifest)
    except ManifestError as e:
        if output == "json":
            emit_json("check", {"valid": False, "issues": [vars(i) for i in e.issues]})
            raise click.exceptions.Exit(2) from e
        raise
    if output == "json":
        emit_json("check", {"valid": True, "issues": [], "services": list(loaded.services)})
        return
    names = ", ".join(loaded.services)
    click.echo(f"{loaded.path}: ok, {len(loaded.services)} services ({names})")


COMMANDS = (check,)
