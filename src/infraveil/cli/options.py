"""Options every verb shares, and where their defaults come from."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
MANIFEST_NAME = "infraveil.toml"


def default_state_dir() -> Path:
    """$INFRAVEIL_STATE_DIR, else $XDG_STATE_HOME/infraveil, else ~/.local/state/infraveil."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "infraveil"


def state_dir_option(f: F) -> F:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="INFRAVEIL_STATE_DIR",
        default=default_state_dir,
        show_default="$XDG_STATE_HOME/infraveil or ~/.local/state/infraveil",
        help="Where the agent keeps its socket, store and logs (env: INFRAVEIL_STATE_DIR). "
        "Several agents can run side by side with different state directories.",
    )(f)


def manifest_option(f: F) -> F:
    return click.option(
        "-f",
        "--file",
        "manifest",
        type=click.Path(dir_okay=False, path_type=Path),
        default=MANIFEST_NAME,
        show_default=True,
        help="The manifest to read.",
    )(f)


def output_option(f: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="table for people; json for programs (stable field names, see docs/reference/api.md).",
    )(f)


def complete_service(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Service names from the manifest, for shell completion (never fails)."""
    from infraveil.runtime.manifest_file import load_manifest

    path = ctx.params.get("manifest") or MANIFEST_NAME
    try:
        names = list(load_manifest(path).services)
    except Exception:  # completion must never print a traceback into a shell
        return []
    return [n for n in names if n.startswith(incomplete)]


def service_argument(f: F) -> F:
    return click.argument("service", metavar="SERVICE", shell_complete=complete_service)(f)
