"""`infraveil doctor --log FILE`: the diagnosis engine on a crash log from anywhere.

The log may come from journalctl, supervisord, `docker logs`, a CI job or a paste: the prefix
a collector put on every line is taken off (core/diagnosis/facts.py), and only the end of the
file is read (`store.logs.TAIL_BYTES`), so a 1 GB log costs what a small one does.
"""

from __future__ import annotations

import json
import signal as signals
import sys
from pathlib import Path
from typing import Any

import click

from infraveil.cli.options import output_option
from infraveil.cli.render import console, emit_json, render_diagnosis
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import EventFact, Facts, lines_of
from infraveil.core.units import format_bytes
from infraveil.store.logs import TAIL_BYTES, Tail, read_tail

_BINARY_SHARE = 0.1
"""A tail with more than this share of NUL and other control bytes is not text."""


@click.group(invoke_without_command=True)
@click.option(
    "--log",
    "log_file",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    help="The crash log (- for stdin). Only its last 256 KiB are read.",
)
@click.option("--exit-code", type=click.IntRange(0, 255), help="The exit code, if known.")
@click.option(
    "--signal",
    "signal_name",
    metavar="SIG",
    help="The signal that ended it, if known: SIGSEGV, SEGV or 11.",
)
@click.option(
    "--events",
    "events_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Events about it: one per line (kubectl describe's Events, journal lines), or"
    " `kubectl get events -o json`.",
)
@output_option
@click.pass_context
def doctor(
    ctx: click.Context,
    log_file: Path | None,
    exit_code: int | None,
    signal_name: str | None,
    events_file: Path | None,
    output: str,
) -> None:
    """Explain a crash from its log, with no agent: the same engine as `infraveil why`.

    \b
    infraveil doctor --log crash.txt --exit-code 1
    journalctl -u api -n 500 --no-pager | infraveil doctor --log -
    docker logs api 2>&1 | infraveil doctor --log - --exit-code 137

    Prints the category, one sentence, the decisive evidence quoted with its line number,
    and the fix. Exits 0 when it found a cause, 1 when the finding is `unknown`.
    """
    if ctx.invoked_subcommand is not None:
        return
    if log_file is None and exit_code is None and signal_name is None and events_file is None:
        raise click.UsageError("give at least --log FILE (or --exit-code, --signal, --events)")
    facts_kwargs: dict[str, Any] = {"exit_code": exit_code, "signal": _signal(signal_name)}
    read = ""
    if log_file is not None:
        tail = _read(log_file)
        source = "stdin" if str(log_file) == "-" else str(log_file)
        text, problem = decode_tail(tail.lines)
        if problem:
            facts_kwargs["log_source"] = source
            facts_kwargs["log_problem"] = problem
        else:
            first = tail.first_number or 1
            facts_kwargs["log"] = lines_of(text, first)
            facts_kwargs["log_source"] = source if tail.first_number else f"{source} (tail)"
            facts_kwargs["log_truncated"] = tail.truncated
        read = f"{source}: {format_bytes(tail.size)}"
        if tail.truncated:
            read += f", the last {format_bytes(min(tail.size, TAIL_BYTES))} read"
    if events_file is not None:
        facts_kwargs["events"] = _events(events_file)
    diagnosis = diagnose(Facts(**facts_kwargs))
    if output == "json":
        emit_json("diagnosis", diagnosis.as_dict())
    else:
        out = console()
        if read:
            out.print(f"[dim]{read}[/dim]")
        render_diagnosis(out, diagnosis.as_dict())
    if diagnosis.finding.category == "unknown":
        raise click.exceptions.Exit(1)


def _signal(name: str | None) -> int | None:
    if name is None:
        return None
    text = name.strip().upper()
    if text.isdigit():
        number = int(text)
        if 0 < number < signals.NSIG:
            return number
    else:
        try:
            return int(signals.Signals[text if text.startswith("SIG") else "SIG" + text])
        except KeyError:
            pass
    raise click.BadParameter(f"{name!r} is not a signal; write SIGSEGV, SEGV or 11")


def _read(path: Path) -> Tail:
    if str(path) == "-":
        # a pipe has no end to seek to: keep only the last TAIL_BYTES while reading it
        kept, size, lines_before = b"", 0, 0
        while chunk := sys.stdin.buffer.read(1 << 20):
            size += len(chunk)
            kept += chunk
            if len(kept) > 2 * TAIL_BYTES:
                dropped, kept = kept[:-TAIL_BYTES], kept[-TAIL_BYTES:]
                lines_before += dropped.count(b"\n")
        if size > len(kept) and len(kept) > TAIL_BYTES:
            dropped, kept = kept[:-TAIL_BYTES], kept[-TAIL_BYTES:]
            lines_before += dropped.count(b"\n")
        if size > len(kept):
            cut = kept.find(b"\n") + 1
            lines_before += 1 if cut else 0
            kept = kept[cut:]
        return Tail(kept.splitlines(), lines_before + 1, size > len(kept), size)
    try:
        return read_tail(path)
    except FileNotFoundError:
        raise click.BadParameter(f"{path}: no such file", param_hint="--log") from None
    except OSError as e:
        raise click.BadParameter(f"{path}: {e.strerror}", param_hint="--log") from None


def decode_tail(lines: list[bytes]) -> tuple[str, str]:
    """The text of the tail, and what is wrong with it if it cannot be read as a log."""
    data = b"\n".join(lines)
    if not data.strip():
        return "", "the log is empty"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), ""
    control = sum(1 for b in data[:65536] if b < 9 or 13 < b < 32)
    if control > _BINARY_SHARE * min(len(data), 65536):
        return "", "the log is binary data, not text"
    return data.decode("utf-8", errors="replace"), ""


def _events(path: Path) -> tuple[EventFact, ...]:
    try:
        # the tail only, like the log: a huge events dump costs no more than a small one
        data = b"\n".join(read_tail(path).lines).decode("utf-8", errors="replace")
    except OSError as e:
        raise click.BadParameter(f"{path}: {e.strerror}", param_hint="--events") from None
    parsed: Any
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict | list):
        items = parsed.get("items", []) if isinstance(parsed, dict) else parsed
        return tuple(
            EventFact(str(i.get("reason", "")), str(i.get("message", "")), f"{path} event {n}")
            for n, i in enumerate(items, 1)
            if isinstance(i, dict)
        )
    return tuple(
        EventFact("", line.strip(), f"{path}:{n}")
        for n, line in enumerate(data.splitlines(), 1)
        if line.strip()
    )


COMMANDS = (doctor,)
