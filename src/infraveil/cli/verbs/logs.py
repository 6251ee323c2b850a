"""`infraveil logs SERVICE`: the output of an instance, like `kubectl logs`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from infraveil.api.client import Client, service_path
from infraveil.cli.options import service_argument, state_dir_option
from infraveil.cli.render import log_line
from infraveil.core.units import parse_duration
from infraveil.store.logs import timestamp


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return timestamp(time.time() - parse_duration(value))
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command()
@service_argument
@state_dir_option
@click.option("-p", "--previous", is_flag=True, help="The instance before the latest one.")
@click.option(
    "--instance", type=click.IntRange(min=1), help="A given instance number (see describe)."
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines, across restarts.")
@click.option("--tail", type=click.IntRange(min=0), help="Only the last N lines.")
@click.option("--since", callback=_since, help="Only lines newer than a duration, e.g. 10m, 1h30m.")
@click.option("-t", "--timestamps", is_flag=True, help="Show when each line was written.")
def logs(
    service: str,
    state_dir: Path,
    previous: bool,
    instance: int | None,
    follow: bool,
    tail: int | None,
    since: str | None,
    timestamps: bool,
) -> None:
    """Print the output (stdout and stderr, in order) of SERVICE's latest instance.

    Lines marked [infraveil] are the agent's own: when the instance started and how it ended.
    """
    rows = Client(state_dir).stream(
        service_path(service, "logs"),
        previous=previous,
        instance=instance,
        follow=follow,
        tail=tail,
        since=since,
    )
    for row in rows:
        click.echo(log_line(row, timestamps=timestamps))


COMMANDS = (logs,)
