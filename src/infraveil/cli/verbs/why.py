"""`infraveil why SERVICE`: why it failed, with the evidence quoted and the fix."""

from __future__ import annotations

from pathlib import Path

import click

from infraveil.api.client import Client, service_path
from infraveil.cli.options import output_option, service_argument, state_dir_option
from infraveil.cli.render import console, emit_json, render_why


@click.command()
@service_argument
@click.option("--instance", type=click.IntRange(min=1), help="Explain this (older) instance.")
@state_dir_option
@output_option
def why(service: str, instance: int | None, state_dir: Path, output: str) -> None:
    """Why SERVICE failed: what happened in one sentence, the decisive evidence quoted with
    where it came from (log file and line, exit status, a check's answer, preflight), and the
    fix.

    Without --instance: its latest failure while it is failing (backoff, halted), or what is
    wrong now while it runs but is not ready; a healthy service says so, with its last
    failure if it had one. -o json gives category, summary, evidence, fix, confidence and
    deterministic (see docs/guides/why.md for the categories).
    """
    query = {"instance": instance} if instance is not None else {}
    result = Client(state_dir).get(service_path(service, "why"), **query)
    if output == "json":
        emit_json("why", result)
        return
    render_why(console(), result)


COMMANDS = (why,)
