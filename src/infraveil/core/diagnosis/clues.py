"""Clues: the facts plus what every rule wants worked out once (the decisive line, searches)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property

from infraveil.core.diagnosis.decisive import Decisive, LogLine, decisive_line
from infraveil.core.diagnosis.facts import Facts, ProbeFact
from infraveil.core.diagnosis.finding import Evidence
from infraveil.core.exitstatus import ExitStatus
from infraveil.core.units import format_duration


@dataclass(frozen=True)
class Match:
    """A pattern found in the log: the line, its index in the tail and the regex match."""

    line: LogLine
    at: int
    match: re.Match[str]

    def __getitem__(self, group: int | str) -> str:
        return self.match[group] or ""


_CASCADE_MAX = 50

MAX_LINES = 400
"""The engine reads the last lines of a tail only: what ended an instance is at its end, and
every rule scanning thousands of lines would make an exit (or `doctor`) slow."""


@dataclass
class Clues:
    facts: Facts
    _index: dict[int, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.facts.log) > MAX_LINES:
            log = self.facts.log[-MAX_LINES:]
            self.facts = replace(self.facts, log=log, log_truncated=True)

    @cached_property
    def decisive(self) -> Decisive | None:
        return decisive_line(self.facts.log)

    @cached_property
    def decisive_at(self) -> int:
        """Index of the decisive line in the tail (-1 without one)."""
        if self.decisive is None:
            return -1
        return self.index_of(self.decisive.line)

    def index_of(self, line: LogLine) -> int:
        if not self._index:
            self._index.update((id(ln), i) for i, ln in enumerate(self.facts.log))
        return self._index.get(id(line), -1)

    def decisive_lines(self) -> Iterator[tuple[LogLine, int]]:
        """The decisive line and its detail lines, with their indexes."""
        if self.decisive is None:
            return
        yield self.decisive.line, self.decisive_at
        for line in self.decisive.detail:
            yield line, self.index_of(line)

    def search(self, pattern: re.Pattern[str], *, decisive_first: bool = True) -> Match | None:
        """The pattern in the decisive line (or its detail) first, else its last occurrence."""
        if decisive_first:
            for line, at in self.decisive_lines():
                if m := pattern.search(line.text):
                    return Match(line, at, m)
        log = self.facts.log
        for i in range(len(log) - 1, -1, -1):
            if m := pattern.search(log[i].text):
                return Match(log[i], i, m)
        return None

    def cascade(self, found: Match, pattern: re.Pattern[str], same: str = "") -> list[Match]:
        """The run of lines just before `found` (and `found`) that report the same error: a
        script whose first write failed fails again on every line after it, and the first is
        where it began. `same`, when given, must be on each line too (the path, say)."""
        log = self.facts.log
        run = [found]
        i = found.at - 1
        while i >= 0 and found.at - i <= _CASCADE_MAX:
            text = log[i].text
            m = pattern.search(text)
            if m is None or (same and same not in text):
                break
            run.insert(0, Match(log[i], i, m))
            i -= 1
        return run

    def on_decisive(self, found: Match) -> bool:
        return any(found.line is line for line, _ in self.decisive_lines())

    def quote(self, line: LogLine) -> Evidence:
        """Evidence quoting a log line verbatim, with where it is."""
        source = self.facts.log_source or "log"
        return Evidence(f"{source} line {line.number}", line.text.strip())

    def quote_decisive(self) -> list[Evidence]:
        return [self.quote(line) for line, _ in self.decisive_lines()][:4]

    @cached_property
    def _exit_in_log(self) -> tuple[int | None, int | None, Match | None]:
        """(exit code, signal, the line) as the log itself reports them, when the facts do not
        have them: a pasted log often ends with its supervisor's or shell's words for it."""
        found = self.search(_EXIT_IN_LOG, decisive_first=False)
        if found is None:
            return None, None, None
        group, value = next((k, v) for k, v in found.match.groupdict().items() if v)
        if group.startswith("code"):
            return int(value), None, found
        if group.startswith("sig"):
            return None, int(value), found
        return None, _SHELL_WORDS[value.lower()], found

    @property
    def exit_code(self) -> int | None:
        """The exit code: from the facts, else from the log's own report of it."""
        f = self.facts
        if f.exit_code is not None or f.signal is not None or f.exit_unknown:
            return f.exit_code
        return self._exit_in_log[0]

    @property
    def signal(self) -> int | None:
        """The fatal signal: from the facts, else from the log's own report of it."""
        f = self.facts
        if f.exit_code is not None or f.signal is not None or f.exit_unknown:
            return f.signal
        return self._exit_in_log[1]

    def exit_evidence(self) -> Evidence | None:
        """The exit status as evidence, when known (the log's line when it came from there)."""
        f = self.facts
        code, signal, reported = self._exit_in_log
        if reported is not None and (code, signal) == (self.exit_code, self.signal):
            return self.quote(reported.line)  # the log says it too: quote its words
        if f.signal is not None:
            text = ExitStatus(signal=f.signal, core_dumped=f.core_dumped).describe()
        elif f.exit_code is not None:
            text = f"exited with code {f.exit_code}"
        else:
            return None
        if f.run_seconds is not None:
            text += f" after {format_duration(f.run_seconds)}"
        kube = f.kube
        if kube is not None and kube.terminated_pasted:
            # pasted describe text: its own field lines, verbatim, then what they add up to
            return Evidence(kube.terminated_path, f"{'; '.join(kube.terminated_pasted)} ({text})")
        if kube is not None and kube.terminated_reason:
            # as kubectl shows it: the runtime's reason (OOMKilled, Completed, Error) first
            return Evidence(kube.terminated_path, f"{kube.terminated_reason}: {text}")
        return Evidence("exit status", text)

    def restart_hint(self) -> str:
        """How to try again once fixed."""
        if self.facts.kube is not None:
            return "let the kubelet restart it (or `kubectl delete pod` to retry at once)"
        if self.facts.service:
            return f"`infraveil restart {self.facts.service}`"
        return "restart it"

    @property
    def who(self) -> str:
        """The service's name for a sentence, or 'the program'."""
        kube = self.facts.kube
        if kube is not None:
            kind = "init container" if kube.init else "container"
            return f"{kind} {kube.container}" if kube.container else f"the {kind}"
        return self.facts.service or "the program"


_EXIT_IN_LOG = re.compile(
    r"exited with code (?P<code>\d+)|code=exited, status=(?P<code2>\d+)"
    r"|\bExited \((?P<code3>\d+)\)|\"ExitCode\":\s*(?P<code4>\d+)"
    r"|\bexit(?:ed)? (?:status|code)[:= ]+(?P<code5>\d+)"
    r"|code=(?:killed|dumped), status=(?P<sig>\d+)/|(?:terminated|killed) by signal (?P<sig2>\d+)"
    r"|^(?:\S*sh: (?:line )?\d+: (?:\d+ )?|\[\d+\]\s+\d+ )?"
    r"(?P<word>Aborted|abort|Killed|Segmentation fault|Bus error|Illegal instruction)"
    r"(?: \(core dumped\))?(?:\s|$)",
    re.IGNORECASE,
)
_SHELL_WORDS = {
    "aborted": 6,
    "abort": 6,
    "killed": 9,
    "segmentation fault": 11,
    "bus error": 7,
    "illegal instruction": 4,
}

_PROBE_EVENT = re.compile(
    r"(?P<role>Liveness|Readiness|Startup) probe (?:failed|errored)(?:: (?P<detail>.*))?", re.I
)
_LISTENING = re.compile(
    r"(?:listen\w*|serv(?:ing|er)|bound|start\w*|running|available|accepting)\b[^\n]*?"
    r"(?:\bport[ =:]+(?P<p1>\d{2,5})\b"
    r"|(?:^|[\s/'\"(=@])(?:localhost|\d{1,3}(?:\.\d{1,3}){3}|\[[:\da-fA-F]*\]|\*|[a-z][\w.-]*)?"
    r":(?P<p2>\d{2,5})\b(?![:\d]))",
    re.IGNORECASE,
)


def failed_probes(c: Clues, *roles: str) -> list[tuple[ProbeFact, Evidence]]:
    """Failed check results of the given roles, as facts and as quotable evidence: the agent's
    own probe results first, then probe events (`doctor --events`, kubelet's wording)."""
    found: list[tuple[ProbeFact, Evidence]] = []
    for p in c.facts.probes:
        if p.role in roles and not p.ok:
            source = f"{p.role} check ({p.kind} {p.target})".replace(" )", ")")
            found.append((p, Evidence(source, p.detail)))
    for e in c.facts.events:
        m = _PROBE_EVENT.search(e.message)
        if m is not None and m["role"].lower() in roles:
            detail = (m["detail"] or e.message).strip()
            fact = ProbeFact(m["role"].lower(), "", "", False, detail, "refused" in detail)
            found.append((fact, Evidence(e.source, e.message.strip())))
    if not found and c.facts.kube is not None and not c.facts.kube.status_known:
        # a pod's paste read as logs may hold the kubelet's probe events
        for line in c.facts.log:
            m = _PROBE_EVENT.search(line.text)
            if m is not None and m["role"].lower() in roles:
                detail = (m["detail"] or "").strip()
                fact = ProbeFact(m["role"].lower(), "", "", False, detail, "refused" in detail)
                found.append((fact, c.quote(line)))
    return found


@dataclass(frozen=True)
class ProbeRequest:
    """A kubelet probe request as the program's own access log recorded it (its user agent is
    `kube-probe/1.x`): the path asked for and the status the program answered."""

    path: str
    status: int
    role: str  # liveness, readiness or startup when the spec's path or the path says so, or ""
    found: Match
    count: int  # how many requests to the same path got the same answer


_KUBE_PROBE = re.compile(r"kube-probe/")
_REQUEST_PATH = re.compile(
    r"\"(?:GET|HEAD|POST) (?P<p1>/\S*) HTTP/[\d.]+\""
    r"|\bpath[:=]\"?(?P<p2>/[^\s\",\]]*)"
    r"|\"(?:path|uri|url|request_uri|requestURI)\"\s*:\s*\"(?P<p3>/[^\"]*)\""
)
_REQUEST_STATUS = re.compile(
    r"\"(?:GET|HEAD|POST) /\S* HTTP/[\d.]+\" (?P<s1>[1-5]\d\d)\b"
    r"|\b(?:status|status_code|statusCode|code)[:=]\"?(?P<s2>[1-5]\d\d)\b"
    r"|\"(?:status|status_code|statusCode|code)\"\s*:\s*\"?(?P<s3>[1-5]\d\d)\b"
)


def probe_requests(c: Clues) -> list[ProbeRequest]:
    """The kubelet's probe requests the program answered with an error (4xx/5xx), from its own
    access log: the probe's result seen from the other side. The first request of each (path,
    status) is the one quoted: the rest repeat it."""
    seen: dict[tuple[str, int], ProbeRequest] = {}
    for i, line in enumerate(c.facts.log):
        text = line.text
        if not _KUBE_PROBE.search(text):
            continue
        path_m = _REQUEST_PATH.search(text)
        status_m = _REQUEST_STATUS.search(text)
        if path_m is None or status_m is None:
            continue
        status = int(next(v for v in status_m.groups() if v))
        if status < 400:
            continue
        path = next(v for v in path_m.groups() if v)
        key = (path, status)
        if key in seen:
            seen[key] = replace(seen[key], count=seen[key].count + 1)
        else:
            seen[key] = ProbeRequest(path, status, _role_of(c, path), Match(line, i, status_m), 1)
    return list(seen.values())


def _role_of(c: Clues, path: str) -> str:
    kube = c.facts.kube
    bare = path.split("?", 1)[0]
    if kube is not None:
        for probe in kube.probes:
            http = probe.handler.get("httpGet")
            if isinstance(http, dict) and str(http.get("path") or "/") == bare:
                return probe.role
    lowered = bare.lower()
    if "ready" in lowered or "readiness" in lowered:
        return "readiness"
    if "live" in lowered or "startup" in lowered:
        return "startup" if "startup" in lowered else "liveness"
    return ""


def non_root_uid(c: Clues) -> int | str | None:
    """The non-root uid a container's securityContext runs it as ("non-root" when only
    `runAsNonRoot` says so), None when it may run as root or nothing says."""
    kube = c.facts.kube
    if kube is None:
        return None
    if kube.run_as_user is not None:
        return kube.run_as_user if kube.run_as_user != 0 else None
    return "non-root" if kube.run_as_non_root else None


def listening_port(c: Clues) -> tuple[int, Match] | None:
    """The port the program says it listens on ("Listening on http://0.0.0.0:8081"), if any."""
    found = c.search(_LISTENING, decisive_first=False)
    if found is None:
        return None
    return int(found["p1"] or found["p2"]), found


# A failure the output got past: recovered from, or replaced by a later crash not chained to it.
_RECOVERED = re.compile(
    r"(?i)(?<!not )(?<!n't )(?<!failed )(?<!while )\b(?:connected to|successfully connected"
    r"|connection (?:established"
    r"|succeeded|successful)|ready to accept connections|listening (?:on|at)\b"
    r"|application startup complete|server started)"
)
_CHAIN = re.compile(
    r"^(?:The above exception was the direct cause|During handling of the above exception"
    r"|Caused by: )"
)


def search_unless(c: Clues, pattern: re.Pattern[str], unless: re.Pattern[str]) -> Match | None:
    """`c.search(pattern)` skipping lines `unless` matches (another category's wording).

    Checking the exclusion only on candidate lines keeps the search one plain regex scan per
    line; a `^(?!...)` lookahead would cost every line of the tail a second scan.
    """
    for line, at in c.decisive_lines():
        if (m := pattern.search(line.text)) and not unless.search(line.text):
            return Match(line, at, m)
    log = c.facts.log
    for i in range(len(log) - 1, -1, -1):
        text = log[i].text
        if (m := pattern.search(text)) and not unless.search(text):
            return Match(log[i], i, m)
    return None


def superseded(c: Clues, found: Match) -> bool:
    """Whether the output went on past `found`: a later recovery or an unrelated crash.

    A failure that was retried and then recovered, or that a later runtime failure (not chained
    to it) replaced as the reason the instance died, is evidence but not the verdict.
    """
    if c.on_decisive(found):
        return False
    log = c.facts.log
    if any(_RECOVERED.search(line.text) for line in log[found.at + 1 :]):
        return True
    d = c.decisive
    if d is None or d.runtime == "generic" or c.decisive_at <= found.at:
        return False
    return not any(_CHAIN.match(line.text) for line in log[found.at + 1 : c.decisive_at])


@dataclass(frozen=True)
class Said:
    """A platform message that matched: where it was said (quotable) and the match."""

    evidence: Evidence
    match: re.Match[str]
    count: int = 1  # how often (an event's count)

    def __getitem__(self, group: int | str) -> str:
        return self.match[group] or ""


def platform_said(c: Clues, pattern: re.Pattern[str], *, node: bool = False) -> Said | None:
    """The first of Kubernetes' own words about the container that match: its waiting and
    termination messages, the pod's status message, then its events (the most repeated one
    first: what keeps happening), then, with `node`, its node's events; for a container known
    only from a paste read as logs, its log. None for a process."""
    return next(platform_all(c, pattern, node=node), None)


def platform_all(c: Clues, pattern: re.Pattern[str], *, node: bool = False) -> Iterator[Said]:
    """Every one of Kubernetes' own words that match, in `platform_said`'s order (for a
    rule that must pick the line giving the cause among several saying the same thing: a
    back-off beside the pull error behind it). The log's lines come last line first."""
    kube = c.facts.kube
    if kube is None:
        return
    said = [
        (f"{kube.status_path}.state.waiting.message", kube.waiting_message, 1),
        (f"{kube.terminated_path}.message", kube.terminated_message, 1),
        ("status.message", kube.pod_message, 1),
    ]
    # an old kubelet (before ~1.8) put its message where the reason goes: a sentence, not a
    # CamelCase word (`Reason: Couldn't find key password in Secret shop/db`)
    said += [
        (path, text, 1)
        for path, text in (
            (f"{kube.status_path}.state.waiting.reason", kube.waiting_reason),
            (f"{kube.terminated_path}.reason", kube.terminated_reason),
        )
        if " " in text.strip()
    ]
    events = sorted(c.facts.events, key=lambda e: -e.count)
    if node:
        events += sorted(kube.node_events, key=lambda e: -e.count)
    said += [(e.source, e.message, e.count) for e in events]
    for source, text, count in said:
        if text and (m := pattern.search(text)) is not None:
            yield Said(Evidence(source, text.strip()), m, count)
    if kube.status_known:
        return  # (a program's log about other pods' objects is not the kubelet's word)
    # a paste that could only be read as logs may still hold the kubelet's own words
    log = c.facts.log
    for i in range(len(log) - 1, -1, -1):
        if (m := pattern.search(log[i].text)) is not None:
            yield Said(c.quote(log[i]), m)
