"""`infraveil deploy|releases|rollback`: releases through the gate, and which one runs.

The agent runs the gate; these verbs send the request and follow its NDJSON rows. `follow`
turns the rows into a `DeployResult` (data); render.py's `DeployProgress` prints them as they
arrive, so the rendering is tested with canned rows and no agent.
"""

from __future__ import annotations

import http.client
import os
import re
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from infraveil.api.client import Client, service_path
from infraveil.cli.errors import FAILED
from infraveil.cli.options import (
    complete_service,
    output_option,
    service_argument,
    state_dir_option,
)
from infraveil.cli.render import (
    DeployProgress,
    console,
    emit_json,
    render_changes_note,
    render_releases,
)
from infraveil.core.errors import InfraveilError

OK_OUTCOMES = frozenset({"live", "unchanged"})
"""The verdicts a deploy or rollback exits 0 with; every other one (or none) exits 1."""
SHA256 = re.compile(r"[0-9a-f]{64}")

Row = dict[str, Any]


def stopped_sentence(service: str) -> str:
    """What a person hears when the rows end without a verdict: the agent went away."""
    return (
        "the agent stopped before the deploy ended; the next agent resolves it (rolls back a"
        f" release that was not promoted): see `infraveil releases {service}`"
    )


@dataclass(frozen=True)
class DeployResult:
    """A deploy's (or rollback's) rows as they came: its steps, then its verdict if one came."""

    service: str
    kind: str
    steps: list[Row]
    verdict: Row | None

    @property
    def ok(self) -> bool:
        return self.verdict is not None and self.verdict.get("outcome") in OK_OUTCOMES

    @property
    def sentence(self) -> str:
        if self.verdict is None:
            return stopped_sentence(self.service)
        return str(self.verdict["sentence"])

    def as_json(self) -> Row:
        """The verdict with its steps (`-o json`); "interrupted" when no verdict came."""
        if self.verdict is not None:
            return {**self.verdict, "steps": self.steps}
        return {
            "service": self.service,
            "version": self.steps[-1].get("version") if self.steps else None,
            "kind": self.kind,
            "outcome": "interrupted",
            "live": False,
            "sentence": self.sentence,
            "steps": self.steps,
        }


def follow(
    service: str,
    kind: str,
    rows: Iterable[Row],
    on_row: Callable[[Row], None] | None = None,
) -> DeployResult:
    """Read the rows up to the verdict, handing each to `on_row` as it arrives.

    A connection that breaks mid-stream (the agent was stopped or killed) ends the rows like a
    clean end does: either way no verdict came, and the result says so.
    """
    steps: list[Row] = []
    verdict: Row | None = None
    iterator = iter(rows)
    try:
        while verdict is None:
            try:
                row = next(iterator)
            except StopIteration:
                break
            except (OSError, http.client.HTTPException, ValueError):  # a cut or half row
                break
            if on_row is not None:
                on_row(row)
            if row.get("type") == "verdict":
                verdict = row
            else:
                steps.append(row)
    finally:
        if isinstance(iterator, Generator):
            iterator.close()  # the connection
    return DeployResult(service, kind, steps, verdict)


def _run(
    client: Client, service: str, kind: str, query: Mapping[str, Any], output: str
) -> DeployResult:
    """Send one deploy (or rollback) and follow it; a table is printed as the rows arrive."""
    # (an unknown service, a deploy under way, an unknown version raise here, before any row)
    rows = client.stream(service_path(service, kind), method="POST", **query)
    progress = DeployProgress(console(), kind) if output == "table" else None
    try:
        result = follow(service, kind, rows, progress.row if progress is not None else None)
    except KeyboardInterrupt:
        click.echo(
            f"\nthe {kind} goes on in the agent; `infraveil releases {service}` shows where it is",
            err=True,
        )
        raise
    if progress is not None and result.verdict is None:
        progress.stopped(result.sentence)
    return result


def _deploy_changed(client: Client, output: str) -> None:
    """Deploy every service whose manifest entry changed, in start order; stop at a failure."""
    changes = client.get("/v1/changes")
    changed, added, removed = changes["changed"], changes["added"], changes["removed"]
    out = console()
    if output == "table":
        render_changes_note(out, added, removed)
        if not changed:
            click.echo("nothing to deploy: every service runs its manifest entry")
    results: list[DeployResult] = []

    def emit() -> None:
        emit_json(
            "deploys",
            {
                "deploys": [r.as_json() for r in results],
                "not_deployed": changed[len(results) :],
                "added": added,
                "removed": removed,
            },
        )

    try:
        for name in changed:
            if results and output == "table":
                click.echo()
            results.append(_run(client, name, "deploy", {}, output))
            if not results[-1].ok:
                break
    except InfraveilError:
        if output == "json" and results:  # what was deployed before the error still counts
            emit()
        raise
    left = changed[len(results) :]
    if output == "json":
        emit()
    elif left:
        click.echo(f"not deployed, as {results[-1].service} did not go live: {', '.join(left)}")
    if not all(r.ok for r in results):
        raise click.exceptions.Exit(FAILED)


def _finish(result: DeployResult, output: str) -> None:
    if output == "json":
        emit_json(result.kind, result.as_json())
    if not result.ok:
        raise click.exceptions.Exit(FAILED)


def _absolute(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # the agent resolves nothing against the CLI's working directory
    return os.path.abspath(value) if value is not None else None


def _sha256(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not SHA256.fullmatch(value.lower()):
        raise click.BadParameter(f"{value!r} is not a sha256: write its 64 hex digits")
    return value.lower()


@click.command()
@click.argument("service", required=False, metavar="[SERVICE]", shell_complete=complete_service)
@click.option(
    "--payload",
    type=click.Path(exists=True, path_type=str),
    callback=_absolute,
    metavar="FILE|DIR",
    help="The release: an archive (.tar, .tar.gz, .zip, …) or a directory. The service runs in "
    "its extracted tree. Needs `payload = true` in the service's manifest entry.",
)
@click.option(
    "--version",
    metavar="V",
    help="The release's label (default: the next vN). A label names one content: reusing it "
    "for other content is refused.",
)
@click.option(
    "--sha256",
    metavar="HEX",
    callback=_sha256,
    help="The payload's expected sha256: a payload that does not match is rejected at verify.",
)
@state_dir_option
@output_option
def deploy(
    service: str | None,
    payload: str | None,
    version: str | None,
    sha256: str | None,
    state_dir: Path,
    output: str,
) -> None:
    """Take a new release of SERVICE through the gate — verify, preflight, start, healthy,
    soak, promote — and roll it back to the known-good release if it fails. Each step is
    printed as it passes; the last line is the verdict. After the promotion the release is
    still watched: a crash in the watch time rolls it back too (see `infraveil releases`).

    With --payload, the release is that archive or directory; without it, the release is
    SERVICE's manifest entry as infraveil.toml says it now. Without SERVICE, every service
    whose manifest entry changed is deployed, one after the other, stopping at the first
    that does not go live (adding or removing a service takes `infraveil down`, then `up`).

    Interrupting the command (Ctrl-C) does not stop the deploy: the agent carries it to its
    end. Exit 0 when the release is live (or nothing changed); 1 when it was rejected, failed
    or rolled back (`infraveil why SERVICE` says why); 3 when no agent runs; 4 for an unknown
    service; 6 when another deploy of it is under way (the message says whose).
    """
    client = Client(state_dir)
    if service is None:
        if payload is not None or version is not None or sha256 is not None:
            raise click.UsageError(
                "--payload, --version and --sha256 need a SERVICE: "
                "infraveil deploy SERVICE --payload FILE|DIR"
            )
        _deploy_changed(client, output)
        return
    if sha256 is not None and payload is None:
        raise click.UsageError("--sha256 checks a --payload: give both")
    query = {"payload": payload, "version": version, "sha256": sha256}
    _finish(_run(client, service, "deploy", query, output), output)


@click.command()
@service_argument
@click.option(
    "--to",
    metavar="VERSION",
    help="A kept release to go back to (default: the known-good one; see `infraveil releases`).",
)
@state_dir_option
@output_option
def rollback(service: str, to: str | None, state_dir: Path, output: str) -> None:
    """Put SERVICE back on its known-good release (or --to a kept one), through the same gate
    as a deploy: verify, preflight, start, healthy, soak, promote. Each step is printed as it
    passes; the last line is the verdict.

    Interrupting the command (Ctrl-C) does not stop the rollback. Exit 0 when the release is
    live again (or already ran and was ready); 1 when it failed too; 3 when no agent runs; 4
    for an unknown service or version; 6 when a deploy of it is under way or it has no
    known-good release.
    """
    result = _run(Client(state_dir), service, "rollback", {"to": to}, output)
    _finish(result, output)


@click.command()
@service_argument
@state_dir_option
@output_option
def releases(service: str, state_dir: Path, output: str) -> None:
    """SERVICE's kept releases, newest first: version, payload sha256, when it was created,
    its outcome (deploying, live, good, rejected, failed, baseline), which one is current and
    which is known-good (what a failed deploy rolls back to), and why each failed one failed.
    A deploy under way is shown above, with who started it.

    Exit 0; 3 when no agent runs; 4 for an unknown service.
    """
    result = Client(state_dir).get(service_path(service, "releases"))
    if output == "json":
        emit_json("releases", result)
        return
    render_releases(console(), result)


COMMANDS = (deploy, releases, rollback)
