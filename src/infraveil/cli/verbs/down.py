"""`infraveil down`: stop every service (dependants first), then the agent."""

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


@click.command()
@state_dir_option
@click.option("-q", "--quiet", is_flag=True, help="Do not print the stop events.")
def down(state_dir: Path, quiet: bool) -> None:
    """Stop every service (whole process trees, dependants first) and the agent.

    Returns once the agent has exited. With no agent running it says so and exits 3.
    """
    client = Client(state_dir)
    pid = client.get("/v1/agent")["pid"]
    # follow the events first, so the stops are shown as they happen; the stream ends
    # when the agent does
    rows = client.stream("/v1/events", limit=1, watch=True)
    client.post("/v1/shutdown")
    out = console()
    try:
        for row in rows:
            if not quiet and row["reason"] in ("Stopping", "Stopped", "Killing", "AgentStopped"):
                out.print(event_line(row))
    except (ConnectionError, OSError):
        pass  # the agent closed the stream on its way out
    deadline = time.monotonic() + LOCK_RELEASE_TIMEOUT
    while lock_holder(state_dir) is not None:
        if time.monotonic() > deadline:
            raise AgentNotRunningError(
                f"the agent (pid {pid}) stopped its services but has not exited",
                hint=f"look at {state_dir / 'agent.log'}",
            )
        time.sleep(0.05)
    click.echo(f"agent {pid} stopped")


COMMANDS = (down,)
