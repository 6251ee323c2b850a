"""`infraveil events [SERVICE]`: what happened, oldest first; `-w` keeps watching."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from infraveil.api.client import Client
from infraveil.cli.options import output_option, state_dir_option
from infraveil.cli.render import console, emit_json, event_line, render_events


@click.command()
@click.argument("service", required=False, metavar="[SERVICE]")
@state_dir_option
@click.option(
    "-w", "--watch", is_flag=True, help="After the past events, print new ones as they happen."
)
@click.option("--limit", type=click.IntRange(min=1, max=10_000), default=100, show_default=True)
@output_option
def events(service: str | None, state_dir: Path, watch: bool, limit: int, output: str) -> None:
    """Events of every service (or of SERVICE): starts, exits, back-offs, stops, kills.

    With -o json and -w, one JSON object per line (NDJSON).
    """
    client = Client(state_dir)
    if watch:
        out = console()
        for row in client.stream("/v1/events", service=service, limit=limit, watch=True):
            if output == "json":
                sys.stdout.write(json.dumps(row) + "\n")
                sys.stdout.flush()
            else:
                out.print(event_line(row))
        return
    result = client.get("/v1/events", service=service, limit=limit)
    if output == "json":
        emit_json("events", result)
        return
    render_events(console(), result["events"])


COMMANDS = (events,)
