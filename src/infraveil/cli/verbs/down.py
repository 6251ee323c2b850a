"""`infraveil down`: stop every service (dependants first), then the agent — or, with
`--keep-services`, only the agent (an upgrade: the next `up` adopts the services)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from infraveil.api.client import Client
from infraveil.cli.options import state_dir_option
from infraveil.cli.render import console, event_line
from infraveil.core.errors import AgentNotRunningError
from infraveil.runtime.lock import lock_holder

LOCK_RELEASE_TIMEOUT = 10.0
SHOWN = ("Stopping", "Stopped", "Killing", "AgentStopped", "AgentLeaving")


@click.command()
@state_dir_option
@click.option("-q", "--quiet", is_flag=True, help="Do not print the stop events.")
@click.option(
    "--keep-services",
    is_flag=True,
    help="Stop only the agent and leave every service running; the next `infraveil up` "
    "adopts them. This is how the agent is upgraded.",
)
def down(state_dir: Path, quiet: bool, keep_services: bool) -> None:
    """Stop every service (whole process trees, dependants first) and the agent.

    Returns once the agent has exited. With no agent running it says so and exits 3.

    With --keep-services the agent exits at once and its services run on, writing their
    output into their pipes until the next agent reads it: nothing is lost.
    """
    client = Client(state_dir)
    pid = client.get("/v1/agent")["pid"]
    # follow the events first, so the stops are shown as they happen; the stream ends
    # when the agent does
    rows = client.stream("/v1/events", limit=1, watch=True)
    client.post("/v1/shutdown", keep_services=keep_services)
    out = console()
    try:
        for row in rows:
            if not quiet and row["reason"] in SHOWN:
                out.print(event_line(row))
    except (ConnectionError, OSError):
        pass  # the agent closed the stream on its way out
    deadline = time.monotonic() + LOCK_RELEASE_TIMEOUT
    while lock_holder(state_dir) in (pid, -1):  # (-1: held, its pid not yet written)
        if time.monotonic() > deadline:
            done = "left its services running" if keep_services else "stopped its services"
            raise AgentNotRunningError(
                f"the agent (pid {pid}) {done} but has not exited",
                hint=f"look at {state_dir / 'agent.log'}",
            )
        time.sleep(0.05)
    if keep_services:
        click.echo(f"agent {pid} exited; its services run on: `infraveil up` adopts them")
    else:
        click.echo(f"agent {pid} stopped")


COMMANDS = (down,)
