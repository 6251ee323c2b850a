"""`infraveil up`: start the agent and every service (and the hidden `agent` verb it uses)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import click

from infraveil.api.auth import TOKEN_FILE, ListenAddress, parse_listen
from infraveil.api.client import Client
from infraveil.cli.errors import FAILED
from infraveil.cli.options import manifest_option, output_option, state_dir_option
from infraveil.cli.render import console, emit_json, event_line, render_status
from infraveil.core.errors import AgentAlreadyRunningError, InfraveilError, StateDirError
from infraveil.daemon.agent import Agent, prepare_state_dir
from infraveil.runtime.lock import lock_holder
from infraveil.runtime.manifest_file import load_manifest
from infraveil.store.db import EventRow

AGENT_START_TIMEOUT = 30.0
SETTLE_TIMEOUT = 30.0


def _listen(ctx: click.Context, param: click.Parameter, value: str | None) -> ListenAddress | None:
    if value is None or value == "":
        return None
    try:
        return parse_listen(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def listen_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--listen",
        metavar="[HOST:]PORT",
        envvar="INFRAVEIL_LISTEN",
        callback=_listen,
        help="Also serve the API over TCP (env: INFRAVEIL_LISTEN), on 127.0.0.1 unless HOST is "
        "given. Every TCP request needs `Authorization: Bearer TOKEN`; the token is made on "
        "first use and kept in STATE_DIR/api-token (0600). Port 0 picks a free port (see the "
        "ApiListening event).",
    )(f)


@click.command()
@manifest_option
@state_dir_option
@click.option(
    "-d",
    "--detach",
    is_flag=True,
    help="Run the agent in the background and return once every service has started "
    "(or failed to), showing their status.",
)
@listen_option
@output_option
def up(
    manifest: Path, state_dir: Path, detach: bool, listen: ListenAddress | None, output: str
) -> None:
    """Start the agent and every service of the manifest, dependencies first.

    With --detach it exits 0 when every service is up, 1 when some service is failing (the
    agent keeps running and retrying it; see `infraveil why SERVICE`).

    In the foreground (the default) the agent's events are printed as they happen, and
    Ctrl-C stops every service and the agent (a second Ctrl-C kills what is left).
    Services keep running if the agent itself is killed.
    """
    loaded = load_manifest(manifest)  # an invalid manifest starts nothing
    holder = lock_holder(state_dir)
    if holder is not None:
        raise AgentAlreadyRunningError(
            f"an agent is already running on {state_dir} (pid {holder})",
            hint="see `infraveil status`; `infraveil down` stops it",
        )
    if detach:
        _detach(manifest, state_dir, output, listen)
        return
    out = console()

    def show(row: EventRow) -> None:
        out.print(event_line(row.as_dict()))

    def ready() -> None:
        me = os.path.basename(sys.argv[0]) or "infraveil"
        flag = f" --state-dir {state_dir}" if "INFRAVEIL_STATE_DIR" not in os.environ else ""
        out.print(
            f"[bold]infraveil[/] agent pid {os.getpid()}: {len(loaded.services)} services from "
            f"{loaded.path}. Ctrl-C stops them all.\n"
            f"[dim]In another terminal: {me} status{flag} · {me} logs SERVICE{flag}[/]"
        )

    from infraveil.api.server import serve  # imported only where an agent runs: CLI calls stay fast

    serve_api = functools.partial(serve, listen=listen)
    asyncio.run(Agent(loaded, state_dir, on_event=show, on_ready=ready, serve_api=serve_api).run())


def _detach(manifest: Path, state_dir: Path, output: str, listen: ListenAddress | None) -> None:
    prepare_state_dir(state_dir)
    agent_log = state_dir / "agent.log"
    read_end, write_end = os.pipe()
    with open(agent_log, "ab") as log:
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infraveil",
                "agent",
                "-f",
                str(manifest),
                "--state-dir",
                str(state_dir),
                "--ready-fd",
                str(write_end),
                *(["--listen", str(listen)] if listen is not None else []),
            ],
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # the agent outlives this terminal
        )
    os.close(write_end)
    message = _read_ready(read_end, AGENT_START_TIMEOUT)
    if message != "ready":
        if message.startswith("{"):
            reported = json.loads(message)
            error = InfraveilError(reported["message"], hint=reported.get("hint", ""))
            error.code = reported.get("code", error.code)  # keeps its exit code
            raise error
        tail = _tail(agent_log, 10)
        raise StateDirError(
            "the agent did not start" + (f"; its last words:\n{tail}" if tail else ""),
            hint=f"the whole story is in {agent_log}",
        )
    client = Client(state_dir, unix_only=True)  # the agent it started, whatever INFRAVEIL_URL is
    if listen is not None:
        tcp = client.get("/v1/agent").get("tcp") or str(listen)
        click.echo(
            f"the API also listens on http://{tcp} (TCP): send `Authorization: Bearer TOKEN`"
            f" with the token in {state_dir / TOKEN_FILE}",
            err=True,
        )
    result = client.get("/v1/status", wait="settled", timeout=SETTLE_TIMEOUT)
    troubled = [s for s in result["services"] if s["state"] in ("backoff", "failed")]
    if output == "json":
        emit_json("status", result)
    else:
        render_status(console(), result["services"])
        for s in troubled:
            click.echo(
                f"{s['name']} is not up: {s['reason']} — see `infraveil why {s['name']}`",
                err=True,
            )
    if troubled:  # the agent runs on and keeps retrying; the exit code tells a script
        raise click.exceptions.Exit(FAILED)


def _read_ready(fd: int, timeout: float) -> str:
    """The agent's first word on the ready pipe: `ready`, an error as JSON, or '' if it died."""
    deadline = time.monotonic() + timeout
    data = b""
    try:
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return ""
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data.decode(errors="replace").strip()


def _tail(path: Path, n: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


@click.command(hidden=True)
@manifest_option
@state_dir_option
@click.option("--ready-fd", type=int, default=None, help="Write `ready` (or the error) here.")
@listen_option
def agent(
    manifest: Path, state_dir: Path, ready_fd: int | None, listen: ListenAddress | None
) -> None:
    """Run the agent in the foreground without a terminal (what `up --detach` starts)."""

    told = False

    def tell(text: str) -> None:
        nonlocal told
        if ready_fd is not None and not told:
            told = True
            os.write(ready_fd, text.encode() + b"\n")
            os.close(ready_fd)

    def show(row: EventRow) -> None:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.time))
        print(f"{when} {row.service or '(agent)'} {row.reason}: {row.message}", flush=True)

    from infraveil.api.server import serve

    try:
        loaded = load_manifest(manifest)
        agent = Agent(
            loaded,
            state_dir,
            on_event=show,
            on_ready=lambda: tell("ready"),
            serve_api=functools.partial(serve, listen=listen),
        )
        asyncio.run(agent.run())
    except InfraveilError as e:
        tell(json.dumps({"code": e.code, "message": str(e.message), "hint": e.hint}))
        raise


COMMANDS = (up, agent)
