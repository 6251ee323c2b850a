"""`infraveil status`: one row per service."""

from __future__ import annotations

from pathlib import Path

import click

from infraveil.api.client import Client
from infraveil.cli.options import output_option, state_dir_option
from infraveil.cli.render import console, emit_json, render_status


@click.command()
@state_dir_option
@output_option
def status(state_dir: Path, output: str) -> None:
    """One row per service: state, ready, pid, uptime, restarts, last exit, memory, reason."""
    result = Client(state_dir).get("/v1/status")
    if output == "json":
        emit_json("status", {"services": result["services"]})
        return
    render_status(console(), result["services"])


COMMANDS = (status,)
