"""How command results look to a person (tables) and to a program (a versioned JSON envelope).

Verbs return plain data; only this module decides how it looks. Rendering functions take a
rich Console, so tests render into a StringIO at a fixed width and read it as a person would.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from infraveil.core.units import format_bytes, format_duration

SCHEMA_VERSION = "v1"
STATE_STYLE = {
    "running": "green",
    "starting": "cyan",
    "pending": "cyan",
    "stopping": "yellow",
    "stopped": "dim",
    "backoff": "yellow",
    "failed": "bold red",
}


def console(stderr: bool = False) -> Console:
    """A terminal's own width; piped output is not wrapped (like kubectl): grep sees whole rows."""
    file = sys.stderr if stderr else sys.stdout
    width = None if file.isatty() else 250
    return Console(file=file, width=width, highlight=False, soft_wrap=False)


def emit_json(kind: str, data: Mapping[str, Any]) -> None:
    """`{"schema": "infraveil/v1/KIND", ...}`: the envelope every `-o json` output has."""
    sys.stdout.write(json.dumps({"schema": f"infraveil/{SCHEMA_VERSION}/{kind}", **data}, indent=2))
    sys.stdout.write("\n")


def last_exit_text(last_exit: Mapping[str, Any] | None) -> str:
    if not last_exit:
        return "-"
    if last_exit.get("unknown"):
        return "unknown"
    if last_exit.get("signal"):
        return str(last_exit["signal"])
    return f"exit {last_exit.get('code')}"


def state_text(s: Mapping[str, Any]) -> str:
    """ "running", "running (degraded)", "backoff (4.0s)", "failed (halted)"."""
    state = str(s["state"])
    if state == "backoff" and s.get("retry_in") is not None:
        return f"backoff ({format_duration(s['retry_in'])})"
    if state == "failed" and s.get("halted"):
        return "failed (halted)"
    if state == "running" and s.get("degraded"):
        return "running (degraded)"
    return state


def render_status(out: Console, services: Sequence[Mapping[str, Any]]) -> None:
    headers = (
        "NAME",
        "STATE",
        "READY",
        "PID",
        "UPTIME",
        "RESTARTS",
        "LAST EXIT",
        "MEMORY",
        "REASON",
    )
    rows = []
    for s in services:
        state_cell = state_text(s)
        rows.append(
            (
                s["name"],
                state_cell,
                "yes" if s["ready"] else "no",
                str(s["pid"] or "-"),
                format_duration(s["uptime"]) if s.get("uptime") is not None else "-",
                str(s["restarts"]),
                "OOMKilled" if s.get("oom_killed") else last_exit_text(s.get("last_exit")),
                format_bytes(s.get("memory")),
                _reason_cell(s),
            )
        )
    table = Table(box=None, pad_edge=False, header_style="bold")
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers[:-1])]
    for header, width in zip(headers[:-1], widths, strict=True):
        table.add_column(header, no_wrap=True, min_width=width)  # these keep their full width
    # the reason takes what is left (columns are two apart), cut rather than wrapped: one
    # line per service; `describe` has it whole
    spare = out.width - sum(widths) - 2 * len(widths)
    table.add_column(headers[-1], no_wrap=True, overflow="ellipsis", max_width=max(spare, 12))
    for row, s in zip(rows, services, strict=True):
        style = STATE_STYLE.get(s["state"], "")
        table.add_row(row[0], Text(row[1], style), *row[2:])
    out.print(table)


def root_warnings(names: Sequence[str]) -> list[dict[str, str]]:
    """One warning per service that runs as root only because the agent does (`-o json`)."""
    return [
        {
            "service": name,
            "warning": "runs_as_root",
            "message": "runs as root, because the agent does and it sets no `user`",
            "fix": f'set user = "..." in [services.{name}]: an account that owns only what'
            " the service writes",
        }
        for name in names
    ]


def render_root_warning(out: Console, names: Sequence[str]) -> None:
    """One line naming every service that runs as root only because the agent does."""
    if names:
        say(out, Text(root_warning_line(names), "yellow"))


def root_warning_line(names: Sequence[str]) -> str:
    if len(names) == 1:
        who, where = f"{names[0]} runs", f"[services.{names[0]}]"
    else:
        who, where = f"{', '.join(names)} run", "each one's [services.NAME] table"
    return (
        f"warning: {who} as root (the agent runs as root and no `user` is set);"
        f' set user = "..." in {where}'
    )


def _reason_cell(s: Mapping[str, Any]) -> str:
    """The reason, led by the failure's category while the service is not running well."""
    reason = str(s.get("reason") or "")
    if s.get("diagnosis") and s["state"] in ("backoff", "failed", "pending", "starting"):
        return f"{s['diagnosis']}: {reason}" if reason else str(s["diagnosis"])
    return reason


def render_describe(out: Console, data: Mapping[str, Any]) -> None:
    s, spec = data["service"], data["spec"]
    health = data.get("health") or {}
    out.print(Text(f"Service:      {s['name']}", "bold"))
    state = Text(state_text(s), STATE_STYLE.get(s["state"], ""))
    out.print(Text.assemble("State:        ", state))
    if s.get("reason"):
        out.print(f"Reason:       {s['reason']}")
    release = release_text(s)
    if release:
        out.print(Text(f"Release:      {release}"))
    out.print(f"Ready:        {'yes' if s['ready'] else 'no'}")
    if s.get("degraded"):
        out.print(Text(f"Degraded:     {s['degraded']}", "yellow"))
    out.print(f"PID:          {s['pid'] or '-'}")
    out.print(f"Restarts:     {s['restarts']}")
    if s.get("waiting_for"):
        out.print(f"Waiting for:  {', '.join(s['waiting_for'])}")
    last = s["last_exit"]["text"] if s.get("last_exit") else "-"
    if s.get("oom_killed"):
        last = f"OOMKilled ({last})"
    out.print(f"Last exit:    {last}")
    diagnosed = next((i for i in data["instances"] if i.get("diagnosis")), None)
    if diagnosed is not None:
        d = diagnosed["diagnosis"]
        out.print(
            Text.assemble(
                "Why:          ",
                (d["category"], "bold red"),
                f" (instance {diagnosed['number']}): {d['summary']}",
            )
        )
        for e in d["evidence"][:2]:
            out.print(Text(f"              {e['source']}: {e['text']}", "dim"))
        out.print(f"Fix:          {d['fix']}")
        out.print(Text(f"              (all of it: infraveil why {s['name']})", "dim"))
    out.print(Text("Spec:", "bold"))
    out.print(f"  command:      {' '.join(spec['command'])}")
    out.print(f"  cwd:          {spec['cwd']}")
    for key in ("env_file", "secrets", "user", "port"):
        if spec.get(key) is not None:
            out.print(f"  {key + ':':<14}{spec[key]}")
    if spec.get("depends_on"):
        out.print(f"  depends_on:   {', '.join(spec['depends_on'])}")
    out.print(
        f"  stop:         {spec['stop_signal']}, "
        f"SIGKILL after {format_duration(spec['stop_timeout'])}"
    )
    if spec.get("env"):
        out.print("  env:          " + ", ".join(f"{k}={v}" for k, v in spec["env"].items()))
    _render_health(out, s, spec, health)
    out.print(Text("Instances (newest first):", "bold"))
    if not data["instances"]:
        out.print("  none yet")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("#", "PID", "STARTED", "ENDED", "RAN", "EXIT", "PEAK MEMORY"):
        table.add_column(column, no_wrap=True)
    for i in data["instances"]:
        if i.get("error"):
            exit_text = f"could not start: {i['error']}"
        elif i.get("oom_killed"):
            exit_text = "OOMKilled"
        elif i.get("exit"):
            exit_text = i["exit"]["text"]
        else:
            exit_text = "running"
        ran = i["duration"] if i.get("duration") is not None else time.time() - i["started"]
        table.add_row(
            str(i["number"]),
            str(i["pid"] or "-"),
            _clock(i["started"]),
            _clock(i["ended"]) if i.get("ended") else "-",
            format_duration(ran),
            exit_text,
            format_bytes(i.get("peak_memory")),
        )
    if data["instances"]:
        out.print(table)
        _render_instance_probes(out, data["instances"])
    out.print(Text("Events:", "bold"))
    render_events(out, data["events"], show_service=False)


def release_text(s: Mapping[str, Any]) -> str:
    """ "v3", "v3 (a deploy is under way: soaking)", or "" when it has no release."""
    release, phase = s.get("release"), s.get("deploying")
    if phase == "watching":
        return f"{release} (live, watched: a crash rolls it back)"
    if phase:
        where = release or "its manifest entry"
        return f"{where} (a deploy is under way: {_phase_text(phase)})"
    return str(release or "")


def _render_health(
    out: Console, s: Mapping[str, Any], spec: Mapping[str, Any], health: Mapping[str, Any]
) -> None:
    out.print(Text("Health:", "bold"))
    for role, label in (("health", "liveness:"), ("ready", "readiness:")):
        check = spec.get(role)
        if check is None:
            out.print(f"  {label:<14}none")
            continue
        how = check["target"]
        if "interval" in check:
            how += f" every {format_duration(check['interval'])}"
            how += f", timeout {format_duration(check['timeout'])}"
        if check.get("watchdog") is not None:
            how += f", WATCHDOG=1 at least every {format_duration(check['watchdog'])}"
        if check.get("implied_by_port"):
            how += " (implied by port)"
        out.print(f"  {label:<14}{how}")
    if health.get("startup_deadline"):
        out.print(f"  {'deadline:':<14}{health['startup_deadline']}")
    if spec.get("memory") is not None:
        limit = f"{format_bytes(spec['memory'])}"
        if health.get("memory_enforced_by"):
            limit += f" (enforced by {health['memory_enforced_by']})"
        out.print(f"  {'memory limit:':<14}{limit}")
    if health.get("notify_status"):
        out.print(f"  {'status:':<14}{health['notify_status']} (sd_notify STATUS=)")
    for phase, check in (health.get("checks") or {}).items():
        out.print(f"  {phase} probes of instance {s['instance']} ({check['target']}):")
        for r in check["history"][-5:]:
            mark = Text("pass", "green") if r["ok"] else Text("FAIL", "red")
            out.print(Text.assemble("    ", _clock(r["time"]), "  ", mark, "  ", r["detail"]))


def _render_instance_probes(out: Console, instances: Sequence[Mapping[str, Any]]) -> None:
    """One line per ended instance that failed or had probes: why, and its last probe."""
    for i in instances:
        if not i.get("ended"):
            continue
        lines = []
        if i.get("failure"):
            lines.append(i["failure"])
        for phase, check in (i.get("probes") or {}).items():
            last = check["history"][-1] if check["history"] else None
            if last is not None:
                verdict = "passing" if check["passing"] else "failing"
                lines.append(f"{phase} check {verdict}: {last['detail']}")
        for n, line in enumerate(lines):
            out.print(f"  {'#' + str(i['number']) if n == 0 else '':<4} {line}")


def render_why(out: Console, data: Mapping[str, Any]) -> None:
    """`why`: the finding, its evidence quoted with where it is, and the fix."""
    if data.get("healthy") or "category" not in data:
        out.print(Text(str(data["summary"]), "green" if data.get("healthy") else ""))
        last = data.get("last_failure")
        if last:
            out.print()
            out.print(Text(f"Its last failure (instance {last['instance']}):", "bold"))
            render_diagnosis(out, last, indent="  ")
        return
    render_diagnosis(out, data)


def render_diagnosis(out: Console, d: Mapping[str, Any], indent: str = "") -> None:
    confidence = f"{d['confidence']} confidence"
    kind = "deterministic: retrying as-is will not help" if d["deterministic"] else "transient"
    out.print(Text.assemble(indent, (str(d["category"]), "bold red"), f"  ({confidence}; {kind})"))
    out.print(f"{indent}{d['summary']}")
    if d.get("evidence"):
        out.print()
        out.print(Text(f"{indent}Evidence:", "bold"))
        for e in d["evidence"]:
            out.print(Text(f"{indent}  {e['source']}:", "dim"))
            out.print(Text(f"{indent}    {e['text']}"))
    out.print()
    out.print(Text.assemble((f"{indent}Fix: ", "bold"), str(d["fix"])))
    if d.get("confirm"):
        out.print(Text.assemble((f"{indent}To confirm: ", "bold"), str(d["confirm"])))
    others = d.get("others") or []
    if others:
        out.print(Text(f"{indent}Also possible:", "bold"))
        for o in others:
            out.print(f"{indent}  {o['category']} ({o['confidence']}): {o['summary']}")


def render_events(
    out: Console, events: Sequence[Mapping[str, Any]], *, show_service: bool = True
) -> None:
    if not events:
        out.print("  no events")
        return
    for e in events:
        out.print(event_line(e, show_service=show_service))


def event_line(e: Mapping[str, Any], *, show_service: bool = True) -> Text:
    """`12:00:01  api  Exited  exited with code 1 after 0.8s` (warnings stand out)."""
    style = "yellow" if e["type"] == "warning" else ""
    parts = [Text(_clock(e["time"]), "dim"), Text("  ")]
    if show_service:
        parts += [Text(f"{e['service'] or '(agent)':<12}", "bold"), Text(" ")]
    # (the longest reasons, DependencyNotReady and LivenessFailing, keep the messages aligned)
    parts += [Text(f"{e['reason']:<18}", style), Text(" "), Text(e["message"], style)]
    return Text.assemble(*parts)


def log_line(row: Mapping[str, Any], *, timestamps: bool) -> str:
    text = row["text"] if row["stream"] != "ivl" else f"[infraveil] {row['text']}"
    return f"{row['time']} {text}" if timestamps else text


def _clock(wall: float) -> str:
    """Local time of day, with the date when it is not today."""
    if time.strftime("%Y-%m-%d", time.localtime(wall)) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", time.localtime(wall))
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall))


# ── deploys ─────────────────────────────────────────────────────────────────────────────────

STEP_WIDTH = 12
"""Wide enough for every step but "rollback failed", which is rare and pushes its line over."""
VERDICT_STYLE = {
    "live": "green",
    "unchanged": "",
    "rejected": "yellow",
    "rolled_back": "yellow",
    "failed": "bold red",
    "rollback_failed": "bold red",
}
OUTCOME_STYLE = {
    "live": "green",
    "good": "green",
    "deploying": "cyan",
    "rejected": "yellow",
    "failed": "red",
}
FAILED_STEPS = {"failed", "rollback failed"}


def say(out: Console, text: Text) -> None:
    """One line as it is, however long: the terminal wraps it, so a command in it copies
    whole and a pipe gets one line per step (rich flushes after each print: people watch)."""
    out.print(text, soft_wrap=True)


class DeployProgress:
    """A deploy's rows printed as they arrive (people watch it live; rich flushes each line).

    `deploying v42 to api` at the first row, one aligned line per step, then the verdict's
    sentence on its own line.
    """

    def __init__(self, out: Console, kind: str) -> None:
        self.out = out
        self.kind = kind
        self.started = False

    def row(self, row: Mapping[str, Any]) -> None:
        if not self.started and row.get("version"):
            header = deploy_header(self.kind, str(row["service"]), str(row["version"]))
            say(self.out, Text(header, "bold"))
        self.started = True
        if row["type"] == "step":
            say(self.out, deploy_step_line(row))
        else:
            say(self.out, deploy_verdict_line(row))

    def stopped(self, sentence: str) -> None:
        """The stream ended with no verdict: the agent went away mid-deploy."""
        say(self.out, Text(sentence, "bold red"))


def deploy_header(kind: str, service: str, version: str) -> str:
    if kind == "rollback":
        return f"rolling {service} back to {version}"
    return f"deploying {version} to {service}"


def deploy_step_line(row: Mapping[str, Any]) -> Text:
    """`  soak        11.21s  ready with no restart for 10s` (failures stand out)."""
    step = str(row["step"])
    style = ""
    if row.get("warning"):
        style = "bold red" if step in FAILED_STEPS else "yellow"
    elapsed = step_elapsed(float(row.get("elapsed") or 0.0))
    return Text.assemble(
        "  ", (f"{step:<{STEP_WIDTH}}", style), f"{elapsed:>6}", "  ", (str(row["message"]), style)
    )


def step_elapsed(seconds: float) -> str:
    """Hundredths while a step is quick (0.05s, 11.21s); a soak of minutes reads 10m00s."""
    return f"{seconds:.2f}s" if seconds < 60 else format_duration(seconds)


def deploy_verdict_line(verdict: Mapping[str, Any]) -> Text:
    return Text(str(verdict["sentence"]), VERDICT_STYLE.get(str(verdict["outcome"]), "bold red"))


def render_changes_note(out: Console, added: Sequence[str], removed: Sequence[str]) -> None:
    """Services added to or removed from the manifest do not go through a deploy."""
    parts = [
        f"{what}: {', '.join(names)}"
        for what, names in (("added", added), ("removed", removed))
        if names
    ]
    if parts:
        note = f"note: {'; '.join(parts)} — adding or removing a service is not a deploy: it"
        note += " takes an agent restart (`infraveil down`, then `infraveil up`)"
        say(out, Text(note, "yellow"))


def render_releases(out: Console, data: Mapping[str, Any]) -> None:
    """`releases`: a deploy under way, then the kept releases (newest first), with the
    sentence of each that failed on the line under it."""
    name = str(data["service"])
    under_way = data.get("deploy")
    if under_way:
        what = "rollback to" if under_way.get("kind") == "rollback" else "deploy of"
        busy = f"a {what} {under_way['version']} is under way ({_phase_text(under_way['phase'])})"
        if under_way["phase"] == "watching":  # (promoted: it holds nothing, it is watched)
            busy = f"{under_way['version']} is live and watched: a crash in its watch rolls it back"
        elif under_way.get("by"):
            busy += f", by {under_way['by']}"
        say(out, Text(busy, "cyan"))
    if data.get("waiting_for_first_deploy"):
        say(
            out,
            Text(f"{name} waits for its first deploy: infraveil deploy {name} --payload FILE|DIR"),
        )
    releases = data["releases"]
    if not releases:
        say(out, Text(f"{name} has no releases yet"))
        if not data.get("waiting_for_first_deploy"):
            say(
                out,
                Text(
                    f"hint: it runs its manifest entry; `infraveil deploy {name}` takes a change"
                    " of that entry through the gate",
                    "dim",
                ),
            )
        return
    headers = ("VERSION", "SHA256", "CREATED", "OUTCOME", "")
    rows = [
        (
            str(r["version"]),
            str(r["sha256"])[:12] if r.get("sha256") else "—",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"])),
            str(r["outcome"]),
            _release_marks(r),
        )
        for r in releases
    ]
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[Text]) -> Text:
        padded = []
        for cell, width in zip(cells, widths, strict=True):
            padded += [cell, Text(" " * (width - len(cell)) + "  ")]
        text = Text.assemble(*padded)
        text.rstrip()
        return text

    say(out, line([Text(h, "bold") for h in headers]))
    for row, r in zip(rows, releases, strict=True):
        cells = [Text(c) for c in row]
        cells[3].stylize(OUTCOME_STYLE.get(row[3], ""))
        say(out, line(cells))
        if r.get("message"):
            say(out, Text(f"  {r['message']}"))


def _release_marks(r: Mapping[str, Any]) -> str:
    return ", ".join(
        m for m, on in (("current", r["current"]), ("known-good", r["known_good"])) if on
    )


def _phase_text(phase: str) -> str:
    return phase.replace("_", " ")
