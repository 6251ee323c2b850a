"""How `infraveil doctor k8s` looks to a person: per pod, its summary, then each failing
container's diagnosis (as `why` shows a service's) with the patch to apply, and the healthy
containers in one line each. Takes `PodReport.as_dict()`s, so `-o json` and this show the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from infraveil.cli.render import render_diagnosis
from infraveil.core.units import format_duration


def render_pod_reports(out: Console, reports: Sequence[Mapping[str, Any]]) -> None:
    """Every pod in turn, failing pods first (the order given is kept within each group)."""
    ordered = sorted(reports, key=lambda r: bool(r.get("healthy")))
    for i, report in enumerate(ordered):
        if i:
            out.print()
        _render_pod(out, report)
    if len(reports) > 1:
        failing = sum(1 for r in reports if not r.get("healthy"))
        out.print()
        out.print(Text(f"{len(reports)} pods, {failing} failing", "bold"))


def _render_pod(out: Console, r: Mapping[str, Any]) -> None:
    title = f"Pod {r.get('namespace')}/{r.get('name') or '(unnamed)'}"
    style = "bold green" if r.get("healthy") else "bold red"
    out.print(Text.assemble((title, "bold"), "  ", (_pod_state(r), style)))
    details = [
        f"node {r['node']}" if r.get("node") else "",
        f"owned by {' < '.join(r['owners'])}" if r.get("owners") else "",
        f"from {r['source']}" if r.get("source") else "",
    ]
    if any(details):
        out.print(Text("  " + ", ".join(d for d in details if d), "dim"))
    out.print(f"  {r.get('summary', '')}")
    for c in r.get("containers") or []:
        out.print()
        _render_container(out, c)
    for problem in r.get("problems") or []:
        out.print(Text(f"  could not read: {problem}", "yellow"))


def _pod_state(r: Mapping[str, Any]) -> str:
    if r.get("healthy"):
        return "healthy"
    containers = r.get("containers") or []
    if not containers:
        state = "unknown"  # nothing in the evidence says how its containers fare
    elif any(c.get("failing") for c in containers):
        state = "failing"
    else:
        state = "not ready"  # unscheduled, or still starting: nothing has failed
    return f"{state} ({r['phase']})" if r.get("phase") else state


def _render_container(out: Console, c: Mapping[str, Any]) -> None:
    kind = "init container" if c.get("init") else "container"
    ready = "ready" if c.get("ready") else "not ready"
    head = f"  {kind} {c.get('name') or '(unnamed)'}: {c.get('state')}, {ready}"
    head += f", {c.get('restarts', 0)} restart{'s' if c.get('restarts') != 1 else ''}"
    last = c.get("last_termination")
    if last:
        head += f"; last ended {_termination(last)}"
    out.print(Text(head, "bold" if c.get("failing") else ""))
    d = c.get("diagnosis")
    if not c.get("failing") or d is None:
        return
    out.print()
    render_diagnosis(out, d, indent="    ")
    if d.get("cause"):
        out.print(Text.assemble(("    Its own cause: ", "bold"), str(d["cause"])))
    if c.get("patch"):
        out.print()
        out.print(Text("    Patch:", "bold"))
        for line in str(c["patch"]).rstrip("\n").split("\n"):
            out.print(Text(f"      {line}", "cyan"))


def _termination(t: Mapping[str, Any]) -> str:
    """ "OOMKilled (exit 137) after 1m04s"."""
    text = str(t.get("reason") or "terminated")
    if t.get("signal"):
        text += f" (signal {t['signal']})"
    elif t.get("exit_code") is not None:
        text += f" (exit {t['exit_code']})"
    if t.get("seconds") is not None:
        text += f" after {format_duration(float(t['seconds']))}"
    return text
