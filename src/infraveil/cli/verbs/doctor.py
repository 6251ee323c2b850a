"""`infraveil doctor --log FILE`: the diagnosis engine on a crash log from anywhere.

The log may come from journalctl, supervisord, `docker logs`, a CI job or a paste: the prefix
a collector put on every line is taken off (core/diagnosis/facts.py), and only the end of the
file is read (`store.logs.TAIL_BYTES`), so a 1 GB log costs what a small one does.
"""

from __future__ import annotations

import json
import signal as signals
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from infraveil.cli.options import output_option
from infraveil.cli.render import console, emit_json, render_diagnosis
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import EventFact, Facts, lines_of
from infraveil.core.units import format_bytes
from infraveil.k8s.evidence import PodEvidence
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
    Kubernetes pods: `infraveil doctor k8s --help`.
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


# ── doctor k8s ─────────────────────────────────────────────────────────────────────────────


class _PodOrCommand(click.Group):
    """`doctor k8s [POD]` beside `doctor k8s collect POD`.

    A group's own positional argument would swallow the subcommand's name (`collect` read as
    a pod), so the group declares none: the first word that is not an option is the
    subcommand if one has that name, else the pod (moved to the hidden `--pod`). A pod that
    is really called `collect` is given as `pod/collect`, as kubectl takes it.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = list(args)
        takes_value = {
            name
            for p in self.params
            if isinstance(p, click.Option) and not p.is_flag and not p.count
            for name in (*p.opts, *p.secondary_opts)
        }
        i = 0
        while i < len(args):
            word = args[i]
            if word == "--":
                args[i : i + 2] = [f"--pod={args[i + 1]}"] if i + 1 < len(args) else []
                break
            if word.startswith("-") and word != "-":
                i += 2 if word in takes_value else 1
                continue
            if word not in self.commands:
                args[i] = f"--pod={word}"
            break
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return ["[POD | -l SELECTOR | --all | --bundle PATH | --describe FILE]", "[OPTIONS]"]


def _pod_name(value: str | None) -> str | None:
    """`pod/api-1`, `pods/api-1` and `api-1` name the same pod (kubectl's forms)."""
    if value is None:
        return None
    kind, slash, name = value.partition("/")
    if slash and kind.lower() in ("pod", "pods", "po"):
        return name
    if slash:
        raise click.BadParameter(f"{value!r} is not a pod; give its name, or pod/NAME")
    return value


def _namespace_option(f: Any) -> Any:
    return click.option(
        "-n",
        "--namespace",
        metavar="NAMESPACE",
        help="The namespace (default: the kubeconfig context's, else default).",
    )(f)


def _context_option(f: Any) -> Any:
    return click.option(
        "--context",
        metavar="CONTEXT",
        help="The kubeconfig context to use (default: the current one). KUBECONFIG is honoured.",
    )(f)


@doctor.group(
    "k8s",
    cls=_PodOrCommand,
    invoke_without_command=True,
    epilog="The live cluster is read with the `kubernetes` client (pip install"
    " 'infraveil[k8s]'); --bundle and --describe need nothing but the files. Exit codes: 0 every"
    " pod healthy or every failure explained, 1 a failing container whose cause is unknown,"
    " 2 wrong use, 4 no such pod, 9 no usable kubeconfig or context (or no client),"
    " 10 cluster unreachable, 11 credentials rejected or RBAC forbids it."
    " Guide: docs/guides/k8s.md.",
)
@click.option("--pod", "pod", hidden=True)
@click.option(
    "-l", "--selector", metavar="SELECTOR", help="Pods with these labels: app=api,tier=web."
)
@click.option("--all", "all_pods", is_flag=True, help="Every pod in the namespace.")
@_namespace_option
@_context_option
@click.option(
    "--bundle",
    type=click.Path(exists=True, path_type=Path),
    help="Offline: a bundle directory or .tar.gz (what `doctor k8s collect` writes).",
)
@click.option(
    "--describe",
    "describe_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path, allow_dash=True),
    help="Offline: text from `kubectl describe pod` (- for stdin); logs pasted after it are"
    " found too.",
)
@click.option(
    "--logs",
    "logs_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --describe: the output of `kubectl logs --previous`.",
)
@output_option
@click.pass_context
def k8s(
    ctx: click.Context,
    pod: str | None,
    selector: str | None,
    all_pods: bool,
    namespace: str | None,
    context: str | None,
    bundle: Path | None,
    describe_file: Path | None,
    logs_file: Path | None,
    output: str,
) -> None:
    """Explain Kubernetes pods that crash-loop or do not start: for each failing container
    (init containers too) the cause, the decisive evidence quoted, and the fix as a change.

    \b
    infraveil doctor k8s api-7c9d8b6f4d-x7k2p -n shop     one pod of your cluster
    infraveil doctor k8s -l app=api -n shop               the pods with these labels
    infraveil doctor k8s --all -n shop --context prod     every pod of the namespace
    infraveil doctor k8s --bundle api.tar.gz              offline: a bundle (`collect` writes it)
    infraveil doctor k8s --describe describe.txt --logs previous.txt
    kubectl describe pod api-1 | infraveil doctor k8s --describe -
    infraveil doctor k8s collect api-7c9d8b6f4d-x7k2p -n shop -o api.tar.gz

    Reads the pod, its events and its node's events, its owners (ReplicaSet -> Deployment,
    StatefulSet, DaemonSet, Job), and the previous logs of every container that restarted.
    What it may not read (events or logs forbidden by RBAC) is said, and the diagnosis goes
    on without it. A healthy pod says so, with its last restart's reason if it had one.
    """
    if ctx.invoked_subcommand is not None:
        return
    pod = _pod_name(pod)
    live = [x for x in (pod, selector, all_pods or None) if x is not None]
    offline = [x for x in (bundle, describe_file) if x is not None]
    if len(live) + len(offline) != 1:
        raise click.UsageError(
            "say which pods: POD, -l SELECTOR or --all (live), or --bundle PATH or"
            " --describe FILE (offline) — exactly one of them"
        )
    if logs_file is not None and describe_file is None:
        raise click.UsageError("--logs goes with --describe (a bundle has its own logs)")
    if offline and (namespace or context):
        raise click.UsageError("-n and --context are for the live cluster; the files name the pod")
    if bundle is not None:
        evidences = _read_bundle(bundle)
    elif describe_file is not None:
        evidences = [_read_describe(describe_file, logs_file)]
    else:
        evidences = _gather(context, namespace, pod=pod, selector=selector, all_pods=all_pods)
    from infraveil.k8s.doctor import diagnose_pod

    # a live cluster is diagnosed as of now; files as of the latest moment they record
    now = None if offline else datetime.now(UTC)
    reports = [diagnose_pod(e, now=now).as_dict() for e in evidences]
    if output == "json":
        emit_json("k8s_pods", {"pods": reports})
    else:
        from infraveil.cli.render_k8s import render_pod_reports

        render_pod_reports(console(), reports)
    if any(_unexplained(r) for r in reports):
        raise click.exceptions.Exit(1)


def _unexplained(report: dict[str, Any]) -> bool:
    """A failing container whose finding is `unknown`: the exit status says so (as --log)."""
    return any(
        c.get("failing") and (c.get("diagnosis") or {}).get("category", "unknown") == "unknown"
        for c in report.get("containers") or []
    )


def _gather(
    context: str | None,
    namespace: str | None,
    *,
    pod: str | None,
    selector: str | None = None,
    all_pods: bool = False,
) -> list[PodEvidence]:
    from infraveil.k8s import live

    cluster = live.connect(context)
    try:
        return live.gather(cluster, namespace, pod=pod, selector=selector, all_pods=all_pods)
    finally:
        cluster.close()


def _read_bundle(path: Path) -> list[PodEvidence]:
    from infraveil.k8s.bundle import read_bundle

    evidences = read_bundle(path)  # BundleError (exit 2) when no pod in it can be read
    if not evidences:
        raise click.BadParameter(
            f"{path}: no pod in it (a bundle holds pod.json, events.json and logs/)",
            param_hint="--bundle",
        )
    return evidences


def _read_describe(path: Path, logs_path: Path | None) -> PodEvidence:
    from infraveil.k8s.describe import parse_describe

    if str(path) == "-":
        text, source = sys.stdin.read(), "stdin"
    else:
        text, source = _text_of(path, "--describe"), str(path)
    logs = _text_of(logs_path, "--logs") if logs_path is not None else None
    return parse_describe(text, logs, source=source)


def _text_of(path: Path, option: str) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        raise click.BadParameter(f"{path}: {e.strerror}", param_hint=option) from None


@k8s.command(short_help="Write one pod's bundle (pod, events, logs) to share or diagnose later.")
@click.argument("pod", metavar="POD")
@_namespace_option
@_context_option
@click.option(
    "-o",
    "--output",
    "bundle_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write the bundle: FILE.tar.gz, or a directory.",
)
def collect(pod: str, namespace: str | None, context: str | None, bundle_path: Path) -> None:
    """Gather one pod's evidence into a bundle, to share or to diagnose later (--bundle).

    \b
    infraveil doctor k8s collect api-7c9d8b6f4d-x7k2p -n shop -o api.tar.gz
    infraveil doctor k8s --bundle api.tar.gz

    The bundle holds pod.json, events.json, node-events.json, owners.json and
    logs/<container>.previous.txt: what `doctor k8s` reads, as the API returned it. It holds
    the pod's spec (environment values included, Secrets not): read it before sharing it.
    """
    from infraveil.k8s.bundle import write_bundle

    name = _pod_name(pod)
    evidences = _gather(context, namespace, pod=name)
    write_bundle(evidences, bundle_path)
    out = console()
    for e in evidences:
        logs = [f"{c} (previous)" for c in e.previous_logs] + list(e.current_logs)
        out.print(
            Text(
                f"wrote {bundle_path}: pod {e.namespace}/{e.name}, {len(e.events)} events,"
                f" {len(e.node_events)} node events, logs: {', '.join(logs) or 'none'}"
            )
        )
        for problem in e.problems:
            out.print(Text.assemble(("not gathered: ", "yellow"), problem))
    out.print(Text(f"diagnose it with: infraveil doctor k8s --bundle {bundle_path}"))


COMMANDS = (doctor,)
