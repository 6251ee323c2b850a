"""`infraveil start|stop|restart SERVICE`: ask the agent, and wait for the outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from infraveil.api.client import Client, service_path
from infraveil.cli.errors import FAILED
from infraveil.cli.options import output_option, service_argument, state_dir_option
from infraveil.cli.render import emit_json, last_exit_text
from infraveil.core.errors import CommandRefusedError

ALREADY = {"start": {"running", "starting", "pending"}, "stop": {"stopped"}}
"""Refusals that mean the service is already where it was asked to go: not an error."""


def _control(action: str, service: str, state_dir: Path, wait: float, output: str) -> None:
    client = Client(state_dir)
    try:
        result = client.post(service_path(service, action), wait=wait)
    except CommandRefusedError as e:
        if e.state not in ALREADY.get(action, set()):
            raise
        result = {
            "service": {"name": service, "state": e.state},
            "done": True,
            "message": e.message,
        }
    if output == "json":
        emit_json(action, result)
        return
    s = result["service"]
    click.echo(f"{service}: {_summary(s)}" + ("" if result["done"] else " (still under way)"))
    if action != "stop" and s["state"] in ("backoff", "failed"):
        raise click.exceptions.Exit(FAILED)


def _summary(s: dict[str, Any]) -> str:
    if s["state"] == "running":
        return f"running (pid {s['pid']})"
    if s["state"] in ("backoff", "failed"):
        return f"{s['state']}: {s.get('reason') or last_exit_text(s.get('last_exit'))}"
    return str(s["state"])


def _verb(action: str, doc: str) -> click.Command:
    @click.command(name=action, help=doc)
    @service_argument
    @state_dir_option
    @click.option(
        "--wait",
        type=click.FloatRange(0, 3600),
        default=60.0,
        show_default=True,
        help="Seconds to wait for the outcome (0: return at once).",
    )
    @output_option
    def command(service: str, state_dir: Path, wait: float, output: str) -> None:
        _control(action, service, state_dir, wait, output)

    return command


start = _verb("start", "Start SERVICE (a halted one gets a fresh crash budget).")
stop = _verb(
    "stop",
    "Stop SERVICE: its stop signal to the whole process group, SIGKILL after stop_timeout.",
)
restart = _verb("restart", "Stop SERVICE if it runs, then start a fresh instance.")

COMMANDS = (start, stop, restart)
