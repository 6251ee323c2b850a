"""`infraveil describe SERVICE`: spec, recent instances and events of one service."""

from __future__ import annotations

from pathlib import Path

import click

from infraveil.api.client import Client, service_path
from infraveil.cli.options import output_option, service_argument, state_dir_option
from infraveil.cli.render import console, emit_json, render_describe


@click.command()
@service_argument
@state_dir_option
@output_option
def describe(service: str, state_dir: Path, output: str) -> None:
    """The spec of SERVICE, its current and last instances (start, end, exit, how long it ran,
    peak memory) and its recent events."""
    result = Client(state_dir).get(service_path(service))
    if output == "json":
        emit_json("describe", result)
        return
    render_describe(console(), result)


COMMANDS = (describe,)
