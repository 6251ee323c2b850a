"""`infraveil debug SERVICE`: a shell in the service's exact environment, cwd and user.

The environment is built as the agent builds it (`service_env`), from the manifest and with
this command's own environment standing in for the agent's. The privileges are dropped the
way the agent's exec checks drop them (`popen_user_kwargs`: groups, gid, then uid). No agent
is needed, except for `--hold`, which asks the agent to keep the service's place while the
shell runs and to restart it afterwards.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from infraveil.api.client import Client, service_path
from infraveil.cli.options import manifest_option, service_argument, state_dir_option
from infraveil.core.errors import ApiError, InfraveilError, UnknownServiceError
from infraveil.core.spec import ServiceSpec
from infraveil.runtime.environment import service_env
from infraveil.runtime.manifest_file import load_manifest
from infraveil.runtime.processes import SpawnError, account_of, popen_user_kwargs

FALLBACK_SHELL = "/bin/sh"
NO_LOGIN = ("nologin", "false")
"""Login shells that refuse every session: a debug shell then falls back to /bin/sh."""


@click.command()
@service_argument
@manifest_option
@state_dir_option
@click.option(
    "-c",
    "--command",
    "command",
    metavar="COMMAND",
    help="Run COMMAND with /bin/sh -c instead of an interactive shell; exit with its code.",
)
@click.option(
    "--hold",
    is_flag=True,
    help="First ask the running agent to hold SERVICE (restart it with its command replaced "
    "by a wait, so nothing else takes its place); restart it with its real command when the "
    "shell exits.",
)
def debug(service: str, manifest: Path, state_dir: Path, command: str | None, hold: bool) -> None:
    """Open a shell as SERVICE would run: its environment, working directory and user.

    The environment is the manifest's (env_file, then env, and INFRAVEIL_SERVICE) over the
    environment of this command, which stands in for the agent's: run it where you ran
    `infraveil up` to get what the service gets. The shell is the user's login shell from
    /etc/passwd (/bin/sh when that is nologin or missing). Switching to the service's `user`
    needs root, as it does for the agent. No agent is needed, except with --hold.

    Exits with the shell's (or COMMAND's) exit code.
    """
    loaded = load_manifest(manifest)
    spec = loaded.services.get(service)
    if spec is None:
        raise UnknownServiceError(service, list(loaded.services))
    session = _session(spec, command)
    if not hold:
        click.echo(session.banner(), err=True)
        raise click.exceptions.Exit(session.run())
    client = Client(state_dir)
    _hold(client, service)
    click.echo(session.banner(), err=True)
    code = 0
    try:
        code = session.run()
    finally:
        _release(client, service)
    raise click.exceptions.Exit(code)


class _Session:
    """One shell to run: argv, env, cwd and the Popen arguments that switch users."""

    def __init__(
        self,
        spec: ServiceSpec,
        argv: list[str],
        env: Mapping[str, str],
        user: str,
        switch: Mapping[str, Any],
        note: str,
    ) -> None:
        self.spec = spec
        self.argv = argv
        self.env = dict(env)
        self.user = user
        self.switch = dict(switch)
        self.note = note

    def banner(self) -> str:
        what = self.argv[0]
        if self.argv[1:2] == ["-c"]:
            command = self.argv[2]
            what = "running " + (command if len(command) <= 60 else command[:59] + "…")
        return (
            f"debug: {self.spec.name} as {self.user} in {self.spec.cwd}, "
            f"{len(self.env)} env vars (the manifest's over this shell's); {what}{self.note}"
        )

    def run(self) -> int:
        """Run the shell in the foreground; its exit code (128+N when killed by signal N)."""
        try:
            child = subprocess.Popen(self.argv, cwd=self.spec.cwd, env=self.env, **self.switch)
        except PermissionError as e:
            raise InfraveilError(
                f"{self.user} cannot start {self.argv[0]} in {self.spec.cwd}: {e.strerror}",
                hint="the service would fail the same way: `infraveil check` says which "
                "directory or file is in the way",
            ) from e
        except OSError as e:
            raise InfraveilError(
                f"cannot start {self.argv[0]} for {self.spec.name}: {e.strerror or e}"
            ) from e
        with _signals_go_to_the_child():
            code = child.wait()
        return 128 - code if code < 0 else code


@contextmanager
def _signals_go_to_the_child() -> Iterator[None]:
    # Ctrl-C and Ctrl-\ reach the whole foreground process group: the shell handles them,
    # and this process must outlive them to report the exit code (and, with --hold, to
    # restart the service). A handler, not SIG_IGN: an ignored signal stays ignored across
    # exec, and the shell's own children could no longer be interrupted.
    def nothing(signum: int, frame: object) -> None:
        pass

    saved = {s: signal.signal(s, nothing) for s in (signal.SIGINT, signal.SIGQUIT)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def _session(spec: ServiceSpec, command: str | None) -> _Session:
    try:
        env = service_env(spec, 0, os.environ)
    except SpawnError as e:
        raise InfraveilError(
            f"cannot build the environment of {spec.name}: {e}",
            hint="the service cannot start either; fix `env_file` in the manifest",
        ) from e
    if not os.path.isdir(spec.cwd):
        raise InfraveilError(
            f"the working directory of {spec.name} does not exist: {spec.cwd}",
            hint=f"create it (mkdir -p {spec.cwd}) or fix `cwd` in the manifest",
        )
    switch: dict[str, Any] = {}
    if spec.user is None:
        entry = pwd.getpwuid(os.geteuid())
    else:
        account = account_of(spec.user)
        if account is None:
            raise InfraveilError(
                f"{spec.name} runs as user {spec.user!r}, which does not exist on this host",
                hint=f"create it (useradd --system {spec.user}) or fix `user` in the manifest",
            )
        if account.uid != os.geteuid() and os.geteuid() != 0:
            me = pwd.getpwuid(os.geteuid()).pw_name
            raise InfraveilError(
                f"cannot become {account.name!r} for {spec.name}: you are {me!r}, not root",
                hint=f"run it with sudo (sudo -E keeps your environment): sudo -E infraveil "
                f"debug {spec.name}",
            )
        entry = pwd.getpwuid(account.uid)
        # as the agent does for a service with a `user` (processes._as_user)
        env.update(HOME=entry.pw_dir, USER=entry.pw_name, LOGNAME=entry.pw_name)
        switch = popen_user_kwargs(spec.user)
    note = ""
    if command is not None:
        argv = [FALLBACK_SHELL, "-c", command]
    else:
        shell = entry.pw_shell
        if not shell or os.path.basename(shell) in NO_LOGIN or not os.access(shell, os.X_OK):
            note = f" ({entry.pw_name}'s login shell is {shell or 'not set'})"
            shell = FALLBACK_SHELL
        argv = [shell]
    return _Session(spec, argv, env, entry.pw_name, switch, note)


def _hold(client: Client, service: str) -> None:
    try:
        client.post(service_path(service, "hold"))
    except ApiError as e:
        raise InfraveilError(
            f"the agent could not hold {service}: {e.message}",
            hint="this agent may not support holding yet (POST /v1/services/NAME/hold); "
            f"without --hold, `infraveil debug {service}` needs no agent",
        ) from e
    click.echo(
        f"debug: {service} is held: the agent restarted it with its command replaced by a "
        "wait; when this shell exits, it is restarted with its real command",
        err=True,
    )


def _release(client: Client, service: str) -> None:
    click.echo(f"debug: restarting {service} with its real command…", err=True)
    try:
        result = client.post(service_path(service, "restart"), wait=60.0)
    except InfraveilError as e:
        raise InfraveilError(
            f"could not restart {service} after the debug shell: {e.message}",
            hint=f"it may still be held; run `infraveil restart {service}`",
        ) from e
    state = (result.get("service") or {}).get("state", "?")
    click.echo(f"debug: {service}: {state}", err=True)


COMMANDS = (debug,)
