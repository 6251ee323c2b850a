"""`infraveil`: the command group, and the one place where errors become exit codes."""

from __future__ import annotations

import importlib
import sys

import click

from infraveil import __version__
from infraveil.cli.errors import INTERNAL, exit_code_for
from infraveil.core.errors import InfraveilError, ManifestError

VERBS: dict[str, str] = {
    "up": "up",
    "agent": "up",  # hidden: what `up` starts in the background
    "down": "down",
    "status": "status",
    "describe": "describe",
    "why": "why",
    "logs": "logs",
    "events": "events",
    "start": "control",
    "stop": "control",
    "restart": "control",
    "deploy": "deploy",
    "releases": "deploy",
    "rollback": "deploy",
    "check": "check",
    "debug": "debug",
    "doctor": "doctor",
}
"""Each verb and the module of cli/verbs/ that declares it (its COMMANDS)."""


class LazyGroup(click.Group):
    """Imports a verb's module only when that verb runs: `infraveil why` must not pay for the
    agent's aiohttp or the diagnosis engine's rules (a CLI call is mostly imports)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = VERBS.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"infraveil.cli.verbs.{module_name}")
        commands: tuple[click.Command, ...] = module.COMMANDS
        return next(c for c in commands if c.name == cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 ok, 1 the command reported a failure, 2 usage or manifest error, "
    "3 no agent running, 4 no such service, 5 an agent is already running, 6 refused, "
    "7 state directory unusable, 8 unexpected API error, 9-11 Kubernetes config, unreachable or "
    "denied (doctor k8s), 70 a bug in infraveil. "
    "Shell completion: "
    'eval "$(_INFRAVEIL_COMPLETE=bash_source infraveil)" (or zsh_source, fish_source).',
)
@click.version_option(__version__, "--version", prog_name="infraveil")
def cli() -> None:
    """Run the services of infraveil.toml, keep them up, and say why they fail.

    \b
    Start:    infraveil up [--detach]       then  infraveil status
    Look:     infraveil describe SERVICE    infraveil logs SERVICE --previous    infraveil events -w
    Explain:  infraveil why SERVICE         infraveil doctor --log crash.txt     infraveil check
              infraveil doctor k8s POD -n NAMESPACE    (Kubernetes pods in CrashLoopBackOff)
    Control:  infraveil restart SERVICE     infraveil down
    Release:  infraveil deploy SERVICE --payload FILE|DIR    infraveil deploy (changed entries)
              infraveil releases SERVICE    infraveil rollback SERVICE
    """


def main() -> None:
    try:
        # without standalone mode, click returns (not raises) the code of a click.exceptions.Exit
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except ManifestError as e:
        for issue in e.issues:
            click.echo(f"error: {issue}", err=True)
        sys.exit(exit_code_for(e))
    except InfraveilError as e:
        click.echo(f"error: {e.message}", err=True)
        if e.hint:
            click.echo(f"hint: {e.hint}", err=True)
        sys.exit(exit_code_for(e))
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # `infraveil logs x | head`
        sys.exit(0)
    except Exception as e:  # a bug of ours: one line for the person, the traceback for the report
        import tempfile
        import traceback

        with tempfile.NamedTemporaryFile(
            "w", prefix="infraveil-crash-", suffix=".txt", delete=False
        ) as f:
            traceback.print_exc(file=f)
        click.echo(f"error: infraveil failed unexpectedly: {type(e).__name__}: {e}", err=True)
        click.echo(
            f"hint: this is a bug; the traceback is in {f.name} — please report it", err=True
        )
        sys.exit(INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)
