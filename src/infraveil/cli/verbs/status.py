"""`infraveil status`: one row per service."""

from __future__ import annotations

from pathlib import Path

import click

from infraveil.api.client import Client
from infraveil.cli.options import output_option, state_dir_option
from infraveil.cli.render import (
    console,
    emit_json,
    render_root_warning,
    render_status,
    root_warnings,
)


@click.command()
@state_dir_option
@output_option
def status(state_dir: Path, output: str) -> None:
    """One row per service: state, ready, pid, uptime, restarts, last exit, memory, reason.

    When the agent runs as root, a service with no `user` runs as root too: a warning line
    (on stderr) names them. It does not change the exit code.
    """
    result = Client(state_dir).get("/v1/status")
    services = result["services"]
    as_root = [s["name"] for s in services if s.get("root_by_default")]
    agent_warnings = result.get("warnings", [])  # e.g. a store it cannot write
    if output == "json":
        warnings = root_warnings(as_root) + agent_warnings
        emit_json("status", {"services": services, "warnings": warnings})
        return
    render_status(console(), services)
    render_root_warning(console(stderr=True), as_root)
    for warning in agent_warnings:
        click.secho(f"warning: {warning['message']} ({warning['fix']})", fg="yellow", err=True)


COMMANDS = (status,)
