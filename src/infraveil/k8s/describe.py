"""Text pasted from `kubectl describe pod` (and `kubectl logs`) rebuilt into a `PodEvidence`.

People paste what they have: one pod's describe output, often with its logs and a few shell
prompts around it, inside a markdown code fence or quoted with `> `, with tabs (kubectl before
~1.6) or spaces, CRLF line ends, lines wrapped by a browser. The parser rebuilds the v1 Pod and
v1 Event shape from what the text visibly shows (never inventing a field), so the doctor reads
a paste exactly like the API's JSON.

How it reads a paste:

1. Normalise: CRLF, tabs (to 8-column stops, as kubectl's tabwriter assumed), code fences,
   quote markers, a common indentation (a paste inside a markdown list).
2. Split: the describe block starts at `Name:` and ends after its Events table (or where the
   indentation and the keys stop looking like describe output); the rest is logs, with
   `kubectl logs [-p] POD [-c NAME]` lines or `Defaulted container "x"` naming the container.
3. Build a tree from indentation (`Key: value` lines, list lines under them, wrapped values),
   then read it section by section; the Events table by its column positions (taken from its
   dashes or header line), which copes with both the old `FirstSeen LastSeen Count From
   SubobjectPath Type Reason Message` and the new `Type Reason Age From Message` layouts.

Other forms people paste instead, read by the kind of text they are: a pod or a piece of its
status as YAML (`kubectl get pod -o yaml`, a folded `message:`, a bare `reason:`/`exitCode:`
state) or as JSON; `kubectl get events` tables (with or without their header); a `kubectl get
pods` row's STATUS and RESTARTS, and `kubectl logs` answering that a container `is waiting to
start`, when nothing else describes the pod; and, with no structure at all, every line that is
not a prompt is the program's output.

Everything is linear in the size of the text, and nothing here raises on bad input: what could
not be read is said in `PodEvidence.problems` with its line number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infraveil.k8s.evidence import UNNAMED, PodEvidence

MAX_PROBLEMS = 20
"""Problems beyond this many are summed up in one line: a report is read by a person."""

# --- 1. normalising -------------------------------------------------------------------------


@dataclass
class _Line:
    no: int  # 1-based, in the text as given
    indent: int
    text: str  # without indentation or trailing blanks
    raw: str  # tabs expanded, before the indentation is removed (table columns need it)
    orig: str = ""  # as given, tabs kept (an old kubectl's table cells are tab-separated)


_FENCE = re.compile(r"^\s*(```|~~~)")
_QUOTE = re.compile(r"^ {0,3}> ?")


def _normalise(text: str) -> list[_Line]:
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    physical = text.split("\n")
    nonblank = [p for p in physical if p.strip()]
    # (a quote inside a markdown list, or the whole paste indented: quote markers after it)
    common = min((len(p) - len(p.lstrip(" ")) for p in nonblank), default=0)
    if common and all(p[common:].startswith(">") for p in nonblank):
        physical = [p[common:] for p in physical]
        nonblank = [p[common:] for p in nonblank]
    depth = 0  # quote markers to take off: a reply quoting a quote has two ("> > ")
    while (
        depth < 3 and nonblank and sum(1 for p in nonblank if _QUOTE.match(p)) * 2 > len(nonblank)
    ):
        depth += 1
        nonblank = [_QUOTE.sub("", p, count=1) for p in nonblank]
        nonblank = [p for p in nonblank if p.strip()]
    lines: list[_Line] = []
    for no, raw in enumerate(physical, start=1):
        for _ in range(depth):
            raw = _QUOTE.sub("", raw, count=1)
        if _FENCE.match(raw):
            continue  # (a code fence inside the quote too)
        orig = raw.rstrip()
        raw = orig.expandtabs(8)
        text_part = raw.lstrip(" ")
        lines.append(_Line(no, len(raw) - len(text_part), text_part, raw, orig))
    return lines


# --- 2. splitting the describe block from the rest ------------------------------------------

_KEY = re.compile(r"^([^\s:][^:]{0,60}?):(?:\s+(.*))?$")
_PROMPT = re.compile(r"^(?:\(\S+\)\s*)?(?:\S*@\S*\s*)?(?:\[[^\]]*\]\s*)?(?:[$#%>]|PS [^>]*>)\s*\S")
_BARE_PROMPT = re.compile(r"^(?:\(\S+\)\s*)?(?:\[[^\]]*\]\s*)?\S+@\S+\s*[$#]$")
_START = re.compile(r"^`?Name:\s+(\S+)")

TOP_KEYS = {
    "name", "namespace", "priority", "priority class name", "priorityclassname",
    "runtime class name", "service account", "node", "start time", "labels", "annotations",
    "status", "reason", "message", "ip", "ips", "controlled by", "controllers",
    "replication controllers", "created by", "image(s)", "init containers", "containers",
    "ephemeral containers", "conditions", "volumes", "qos class", "qos tier",
    "node-selectors", "tolerations", "events", "nominated node name", "readiness gates",
    "security policy", "topology spread constraints", "scheduling gates", "resource claims",
    "termination grace period", "host ip", "pod ip",
}  # fmt: skip
CONTAINER_KEYS = {
    "container id", "image", "image id", "port", "ports", "host port", "host ports",
    "command", "args", "state", "last state", "last termination state", "ready",
    "restart count", "limits", "requests", "liveness", "readiness", "startup",
    "environment", "environment variables", "environment variables from", "mounts",
    "qos tier", "seccompprofile", "seccomp profile", "started", "restart policy",
    "allocated resources", "resize policy", "devices", "apparmorprofile",
}  # fmt: skip
STATE_KEYS = {"reason", "message", "exit code", "signal", "started", "finished"}
_ALL_KEYS = TOP_KEYS | CONTAINER_KEYS | STATE_KEYS


_COMMAND = re.compile(
    # A command starts the line, after a prompt if any ("(base) me@host:~$ ", "[root@m ~]# ",
    # "% ", "🐳 → ", oh-my-zsh's "➜  ~ ", starship's "❯ "): a log line that mentions `kubectl
    # describe` in passing is no command. Common aliases count (`k`, `kc`, `kubecolor`).
    r"^(?:\([^)]*\)\s*)?(?:[\u279c\u276f]\s+\S+\s+(?:git:\(\S+\)\s+)?(?:\u2717\s+)?)?"
    r"(?:\[[^\]]*\]|[^\s$#%>`]*)\s*(?:[$#%>\u2192\u276f]+\s*)?`?\s*(?:sudo\s+)?"
    r"(?:kubectl|kubecetl|kubeclt|oc|k|kc|kctl|kubecolor|microk8s kubectl|k3s kubectl)"
    r"\s+(?:-\S+\s+\S+\s+)*(describe|logs|get|apply|create|delete|edit|exec|top|version)\b"
)


def _is_prompt(text: str) -> bool:
    """A shell prompt or a kubectl command line: never part of a describe block or of logs."""
    if _COMMAND.search(text.strip().strip("*_`")) or _BARE_PROMPT.match(text):
        return True
    return bool(_PROMPT.match(text)) and bool(
        re.search(r"\b(kubectl|oc|docker|crictl|journalctl|helm|cat|sudo|k)\b", text)
    )


def _key_of(text: str) -> tuple[str, str] | None:
    m = _KEY.match(text)
    if not m:
        return None
    return m.group(1).strip(), (m.group(2) or "").strip()


_FRAGMENT_KEYS = {
    "container id", "image id", "host port", "host ports", "state", "last state",
    "last termination state", "restart count", "liveness", "readiness", "environment",
    "mounts", "init containers", "containers", "conditions", "volumes", "events",
    "controlled by", "qos class", "limits", "requests", "environment variables from", "status",
}  # fmt: skip


def _find_block(lines: list[_Line], begin: int) -> tuple[int, int] | None:
    """The next describe block at or after `begin`, as [start, end) indexes into `lines`.

    A whole description starts at `Name:`; failing that, a fragment (people paste only the
    part they think matters) starts at its first describe field, or at an Events header."""
    for i in range(begin, len(lines)):
        if not _START.match(lines[i].text):
            continue
        # A `Name:` line starts a pod's description only with its usual neighbours near it.
        near = {(_key_of(x.text.lstrip("`")) or ("", ""))[0].lower() for x in lines[i : i + 8]}
        if near & {"namespace", "node", "containers", "status", "labels"}:
            return i, _block_end(lines, i)
    if begin > 0:
        return None
    for i in range(begin, len(lines)):
        kv = _key_of(lines[i].text)
        if kv and kv[0].lower() in _FRAGMENT_KEYS:
            near_keys = [
                (_key_of(x.text) or ("", ""))[0].lower() for x in lines[i + 1 : i + 5] if x.text
            ]
            if kv[0].lower() == "events" or any(k in _ALL_KEYS for k in near_keys):
                # Take in the list lines just above (the end of a command's args, say).
                start = i
                while (
                    start > 0
                    and lines[start - 1].text
                    and lines[start - 1].indent > lines[i].indent
                    and _key_of(lines[start - 1].text) is None
                ):
                    start -= 1
                return start, _block_end(lines, i)
        if _is_table_header(lines[i].text) or _EVENT_ROW.match(lines[i].text):
            return i, _block_end(lines, i, in_events=True)
    return None


def _is_table_header(text: str) -> bool:
    words = text.lstrip("-* ").lower().split()
    return {"reason", "message"} <= set(words) and ("type" in words or "firstseen" in words)


def _block_end(lines: list[_Line], start: int, in_events: bool = False) -> int:
    base = lines[start].indent
    following = _next_nonblank(lines)
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if not line.text:
            nxt = lines[following[i]] if following[i] < len(lines) else None
            if in_events:
                # kubectl prints no blank line inside the table, but a message may end in one.
                if nxt is not None and _EVENT_ROW.match(nxt.text):
                    i += 1
                    continue
                return i
            if nxt is None or not _continues_block(nxt, base):
                return i
            i += 1
            continue
        if _is_prompt(line.text):
            return i
        if line.indent <= base and _START.match(line.text) and i > start:
            return i  # the next pod's description
        kv = _key_of(line.text)
        if line.indent <= base and kv and kv[0].lower() == "events":
            in_events = not kv[1]  # "Events:  <none>" has no table
        i += 1
    return len(lines)


def _next_nonblank(lines: list[_Line]) -> list[int]:
    """For each line, the index of the first non-blank line at or after it (one pass)."""
    out = [len(lines)] * (len(lines) + 1)
    for i in range(len(lines) - 1, -1, -1):
        out[i] = i if lines[i].text else out[i + 1]
    return out


def _continues_block(line: _Line, base: int) -> bool:
    if line.indent > base:
        return True
    kv = _key_of(line.text)
    return kv is not None and kv[0].lower() in TOP_KEYS


# --- 3. the indentation tree ----------------------------------------------------------------


@dataclass
class _Node:
    line: _Line
    key: str | None  # None for a list or table line
    value: str
    children: list[_Node] = field(default_factory=list)
    wrapped: list[_Line] = field(default_factory=list)  # lines that continue `value`

    @property
    def lkey(self) -> str:
        return (self.key or "").lower()

    def full_value(self) -> str:
        """The value with the lines that continue it: wrapped by a browser, or multi-line."""
        if not self.wrapped:
            return self.value
        pieces = [self.value] if self.value else []
        prev_len = len(self.line.raw)
        for w in self.wrapped:
            if pieces:
                pieces.append(_joint(pieces[-1], w, prev_len))
            pieces.append(w.text)
            prev_len = len(w.raw)
        return "".join(pieces)

    def child_values(self) -> list[str]:
        """Lines under this node as text (a list: command, args, labels, mounts)."""
        vals = [v for v in self.full_value().split("\n") if v.strip()]
        for c in self.children:
            vals.append(c.line.text)
            vals.extend(w.text for w in c.wrapped)
        return vals


def _joint(before: str, line: _Line, before_width: int) -> str:
    """How a continuation line joins the text before it.

    A terminal wraps a long line mid-word at its edge ("which e" / "xceeds"): joined as is.
    Anything else is a newline of the text itself (a panic, a multi-line event message)."""
    wrapped = before_width >= 79 and line.indent == 0 and before and line.text
    if wrapped and before[-1].isalnum() and line.text[0].isalnum():
        return ""
    return "\n"


_STATE_HOLDERS = {"state", "last state", "last termination state"}


def _build_tree(lines: list[_Line], base: int) -> list[_Node]:
    roots: list[_Node] = []
    stack: list[_Node] = []
    last: _Node | None = None
    events: _Node | None = None
    flat: _Node | None = None  # a `State:` whose fields a paste put beside it, not under it
    for line in lines:
        if not line.text:
            continue
        text = line.text.strip("`") if line.text.startswith("`") else line.text
        indent = max(0, line.indent - base)
        here = _Line(line.no, indent, text, line.raw, line.orig)
        kv = _key_of(text)
        if events is None and kv is None and (_is_table_header(text) or _EVENT_ROW.match(text)):
            # an Events table whose `Events:` line was not pasted (the fields above it were)
            events = _Node(_Line(line.no, 0, "Events:", "Events:", "Events:"), "Events", "")
            roots.append(events)
            stack = [events]
        if events is not None:
            # The Events table runs to the end of the block, with messages wrapped at column 0.
            events.children.append(_Node(here, None, text))
            continue
        if last is not None and _is_continuation(last, indent, text, kv):
            last.wrapped.append(here)
            continue
        if flat is not None and kv and kv[0].lower() in STATE_KEYS and indent == flat.line.indent:
            # `Last State: Terminated` / `Reason: OOMKilled` / `Exit Code: 137` all at one
            # indentation (a markdown list or a web page flattened them): the state's fields
            last = _Node(here, *kv)
            flat.children.append(last)
            continue
        node = _Node(here, *(kv if kv else (None, text)))
        flat = node if node.lkey in _STATE_HOLDERS and _state_kind(node.value) else None
        while stack and stack[-1].line.indent >= indent:
            stack.pop()
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
        last = node
        if not stack[:-1] and node.lkey == "events":
            events = node
    return roots


def _is_continuation(last: _Node, indent: int, text: str, kv: tuple[str, str] | None) -> bool:
    """Whether a line continues the value above it rather than starting a new field."""
    if last.key is None or not last.value:
        return False
    if kv is not None and kv[0].lower() in _ALL_KEYS:
        return False
    if last.lkey == "message":
        # A termination message printed by kubectl keeps its own newlines at column 0.
        return indent <= last.line.indent or indent > last.line.indent + 2
    # Labels and annotations list their other entries under the first, far to the right.
    if last.lkey in ("labels", "annotations", "node-selectors", "tolerations"):
        return indent > last.line.indent + 4 or (indent == 0 and kv is None)
    # A value wrapped by a browser continues at column 0 and is no `Key:` line.
    return indent == 0 and kv is None and last.line.indent == 0


# --- 4. values ------------------------------------------------------------------------------

_RFC1123 = re.compile(
    r"^(?:[A-Z][a-z]{2},\s+)?(\d{1,2})\s+([A-Z][a-z]{2})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})"
    r"\s+([+-]\d{4}|[A-Z]{2,5})$"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}


def to_rfc3339(text: str) -> str:
    """`Mon, 02 Jan 2006 15:04:05 -0700` -> `2006-01-02T22:04:05Z` (as the API has it).

    Text without a year (an age, "Jul 7 12:54") is kept as it is: the engine can still quote
    it, and inventing a year would make durations wrong."""
    t = text.strip()
    m = _RFC1123.match(t)
    if not m:
        if re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", t):
            return t
        return t
    day, mon, year, hh, mm, ss, zone = m.groups()
    if mon not in _MONTHS:
        return t
    try:
        if zone[0] in "+-":
            dt = datetime.strptime(
                f"{year}-{_MONTHS[mon]:02d}-{int(day):02d} {hh}:{mm}:{ss} {zone}",
                "%Y-%m-%d %H:%M:%S %z",
            )
        elif zone in ("UTC", "GMT", "Z"):
            dt = datetime(int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss), tzinfo=UTC)
        else:
            return t  # a zone abbreviation (PDT, CEST) has no fixed offset we can trust
    except ValueError:
        return t
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def _go_duration(text: str) -> int | None:
    """A Go duration as kubectl prints probe timings ("10s", "1m0s", "500ms") -> seconds."""
    if not re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+", text):
        return None
    total = 0.0
    for num, unit in _DURATION.findall(text):
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return int(total)


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _none(text: str) -> bool:
    return text.strip() in ("", "<none>", "<unset>", "<nil>")


# --- 5. containers --------------------------------------------------------------------------

_PROBE_PARAMS = re.compile(r"\s(delay|timeout|period|#success|#failure)=(\S+)")
_PROBE_FIELDS = {
    "delay": "initialDelaySeconds",
    "timeout": "timeoutSeconds",
    "period": "periodSeconds",
    "#success": "successThreshold",
    "#failure": "failureThreshold",
}


def parse_probe(text: str) -> dict[str, Any] | None:
    """One `Liveness:` value -> a v1 Probe: http-get, exec, tcp-socket or grpc, and timings."""
    text = text.strip()
    m = re.search(r"\s(?:delay|timeout|period|#success|#failure)=", text)
    handler = text[: m.start()].strip() if m else text
    probe: dict[str, Any] = {}
    for key, val in _PROBE_PARAMS.findall(" " + text[m.start() :] if m else ""):
        num = _int(val) if key.startswith("#") else _go_duration(val)
        if num is not None:
            probe[_PROBE_FIELDS[key]] = num
    kind, _, rest = handler.partition(" ")
    rest = rest.strip()
    if kind == "http-get":
        um = re.match(r"^(https?)://([^/:]*)(?::([^/]*))?(/.*)?$", rest, re.IGNORECASE)
        if not um:
            return None
        scheme, host, port, path = um.groups()
        get: dict[str, Any] = {"path": path or "/", "scheme": scheme.upper()}
        if port:
            get["port"] = int(port) if port.isdigit() else port
        if host:
            get["host"] = host
        probe["httpGet"] = get
    elif kind == "exec":
        # kubectl joins the command with spaces inside brackets; a paste may cut the `]` off.
        probe["exec"] = {"command": rest.removeprefix("[").removesuffix("]").split()}
    elif kind == "tcp-socket":
        host, _, port = rest.rpartition(":")
        sock: dict[str, Any] = {"port": int(port) if port.isdigit() else port}
        if host:
            sock["host"] = host
        probe["tcpSocket"] = sock
    elif kind == "grpc":
        gm = re.match(r"^\S*?:(\d+)(?:\s+(\S+))?", rest)
        if not gm:
            return None
        grpc: dict[str, Any] = {"port": int(gm.group(1))}
        if gm.group(2) and gm.group(2) != "<service>":
            grpc["service"] = gm.group(2)
        probe["grpc"] = grpc
    else:
        return None
    return probe


_SECRET_REF = re.compile(
    r"^<set to the key '([^']*)' (in secret|of config map) '([^']*)'>(?:\s+Optional:\s*(\w+))?"
)
_FIELD_REF = re.compile(r"^(.*?)\s*\((v\d[\w.]*):([^)]+)\)$")


def _env_entry(name: str, value: str) -> dict[str, Any]:
    m = _SECRET_REF.match(value)
    if m:
        key, kind, ref, optional = m.groups()
        ref_key = "secretKeyRef" if kind == "in secret" else "configMapKeyRef"
        sel: dict[str, Any] = {"key": key, "name": ref}
        if optional is not None:
            sel["optional"] = optional.lower() == "true"
        return {"name": name, "valueFrom": {ref_key: sel}}
    f = _FIELD_REF.match(value)
    if f:
        entry: dict[str, Any] = {
            "name": name,
            "valueFrom": {"fieldRef": {"apiVersion": f.group(2), "fieldPath": f.group(3)}},
        }
        return entry
    return {"name": name, "value": value}


def _env_from(line: str) -> dict[str, Any] | None:
    m = re.match(
        r"^(\S+)\s+(ConfigMap|Secret)(?:\s+with prefix '([^']*)')?(?:\s+Optional:\s*(\w+))?",
        line,
    )
    if not m:
        return None
    name, kind, prefix, optional = m.groups()
    ref: dict[str, Any] = {"name": name}
    if optional is not None:
        ref["optional"] = optional.lower() == "true"
    entry: dict[str, Any] = {"configMapRef" if kind == "ConfigMap" else "secretRef": ref}
    if prefix:
        entry["prefix"] = prefix
    return entry


def _ports(value: str, host: bool) -> list[dict[str, Any]]:
    out = []
    for part in value.split(","):
        m = re.match(r"^\s*(\d+)(?:/(\w+))?(?:\s+\(([^)]*)\))?", part)
        if m:
            p: dict[str, Any] = {("hostPort" if host else "containerPort"): int(m.group(1))}
            p["protocol"] = m.group(2) or "TCP"
            if m.group(3):
                p["name"] = m.group(3)
            out.append(p)
    return out


def _state_kind(value: str) -> str:
    kind = value.split()[0].lower() if value.split() else ""
    return kind if kind in ("waiting", "running", "terminated") else ""


def _state(node: _Node) -> dict[str, Any] | None:
    """`State: Waiting` with `Reason:`/`Exit Code:`... under it -> a v1 ContainerState."""
    kind = _state_kind(node.value)
    if not kind:
        return None
    inner: dict[str, Any] = {}
    pasted: dict[str, str] = {}  # the field lines as pasted, so evidence quotes them verbatim
    for c in node.children:
        k, v = c.lkey, c.full_value()
        if k == "reason":
            inner["reason"] = v
            pasted["reason"] = c.line.text.strip()
        elif k == "message":
            inner["message"] = v
        elif k == "exit code":
            code = _int(v)
            if code is not None:
                inner["exitCode"] = code
                pasted["exitCode"] = c.line.text.strip()
        elif k == "signal":
            sig = _int(v)
            if sig is not None:
                inner["signal"] = sig
                pasted["signal"] = c.line.text.strip()
        elif k == "started":
            inner["startedAt"] = to_rfc3339(v)
        elif k == "finished":
            inner["finishedAt"] = to_rfc3339(v)
    out: dict[str, Any] = {kind: inner}
    if pasted and kind == "terminated":
        out["x-describe"] = pasted  # taken out by the caller (not a v1 field)
    return out


def _keep_pasted(stat: dict[str, Any], key: str, state: dict[str, Any]) -> None:
    """A state's field lines as pasted go beside the v1 status, under `x-describe` (as an
    event's do): the doctor quotes them verbatim (`Exit Code:    139`)."""
    pasted = state.pop("x-describe", None)
    if pasted:
        stat.setdefault("x-describe", {})[key] = pasted


class _Reader:
    """Reads the tree of one describe block into the Pod dict, noting what it skipped."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.unknown: list[str] = []
        self.owners: list[str] = []

    def problem(self, line: _Line, what: str) -> None:
        self.problems.append(f"describe line {line.no}: {what}")

    def skip(self, node: _Node) -> None:
        self.unknown.append(f"line {node.line.no} {node.key or node.line.text[:40]!r}")

    # -- the pod --

    def pod(self, roots: list[_Node]) -> tuple[dict[str, Any], list[_Node]]:
        meta: dict[str, Any] = {}
        spec: dict[str, Any] = {}
        status: dict[str, Any] = {}
        events: list[_Node] = []
        orphans = [n for n in roots if n.lkey in CONTAINER_KEYS and n.lkey not in TOP_KEYS]
        if orphans:
            # A fragment that starts inside a container: its fields have no container above
            # them. Init containers are printed first, so fields before `Containers:` are an
            # init container's.
            first = roots.index(orphans[0])
            later = [n.lkey for n in roots[first:]]
            init = "containers" in later
            holder = _Node(orphans[0].line, UNNAMED, "", children=orphans)
            spec_c, stat_c = self.container(holder)
            spec["initContainers" if init else "containers"] = [spec_c]
            status["initContainerStatuses" if init else "containerStatuses"] = [stat_c]
            self.problems.append(
                f"describe line {orphans[0].line.no}: container fields without the container's "
                "name (the paste starts inside a container); read as an unnamed "
                + ("init container" if init else "container")
            )
        for node in roots:
            k, v = node.lkey, node.full_value()
            if node in orphans:
                continue
            if k == "name":
                meta["name"] = v
            elif k == "namespace":
                meta["namespace"] = v
            elif k == "priority":
                if _int(v) is not None:
                    spec["priority"] = _int(v)
            elif k in ("priority class name", "priorityclassname"):
                if not _none(v):
                    spec["priorityClassName"] = v
            elif k == "service account":
                if not _none(v):
                    spec["serviceAccountName"] = v
            elif k == "node":
                name, _, ip = v.partition("/")
                if not _none(name):
                    spec["nodeName"] = name
                if ip and not _none(ip):
                    status["hostIP"] = ip
            elif k == "start time":
                status["startTime"] = to_rfc3339(v)
            elif k == "labels":
                labels = self.pairs(node, "=")
                if labels:
                    meta["labels"] = labels
            elif k == "annotations":
                ann = self.pairs(node, ":")
                if ann:
                    meta["annotations"] = ann
            elif k == "status":
                if v:
                    status["phase"] = v.split()[0]
            elif k == "reason":
                if v:
                    status["reason"] = v
            elif k == "message":
                if v:
                    status["message"] = v
            elif k in ("ip", "pod ip"):
                if not _none(v):
                    status["podIP"] = v
            elif k == "ips":
                ips = [c.value for c in node.children if c.lkey == "ip" and c.value]
                if ips:
                    status["podIPs"] = [{"ip": ip} for ip in ips]
            elif k in ("controlled by", "controllers", "replication controllers", "created by"):
                self.owner(node, meta)
            elif k in ("containers", "init containers"):
                init = k == "init containers"
                specs, stats = self.containers(node)
                key_s = "initContainers" if init else "containers"
                key_st = "initContainerStatuses" if init else "containerStatuses"
                if specs:
                    spec[key_s] = spec.get(key_s, []) + specs
                if stats:
                    status[key_st] = status.get(key_st, []) + stats
            elif k == "conditions":
                conds = self.conditions(node)
                if conds:
                    status["conditions"] = conds
            elif k == "volumes":
                vols = self.volumes(node)
                if vols:
                    spec["volumes"] = vols
            elif k in ("qos class", "qos tier"):
                if v:
                    status["qosClass"] = v
            elif k == "node-selectors":
                sel = self.pairs(node, "=")
                if sel:
                    spec["nodeSelector"] = sel
            elif k == "events":
                events.append(node)
            elif k in TOP_KEYS:
                pass  # known and of no use to the diagnosis (tolerations, image(s), ...)
            else:
                self.skip(node)
        pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta}
        if spec:
            pod["spec"] = spec
        if status:
            pod["status"] = status
        return pod, events

    def pairs(self, node: _Node, sep: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in node.child_values():
            item = item.strip()
            if _none(item):
                continue
            k, found, v = item.partition(sep)
            if found:
                out[k.strip()] = v.strip()
        return out

    def owner(self, node: _Node, meta: dict[str, Any]) -> None:
        v = node.full_value()
        m = re.match(r"^([A-Z]\w+)/(\S+)$", v)
        if m:
            kind, name = m.groups()
            meta["ownerReferences"] = [{"kind": kind, "name": name, "controller": True}]
            self.owners.append(f"{kind}/{name}")
            return
        m = re.match(r"^(\S+)\s+\(\d+/\d+ replicas created\)$", v)
        if m:  # kubectl 1.0-1.2: "Replication Controllers:  name (1/1 replicas created)"
            self.owners.append(f"ReplicationController/{m.group(1)}")
            return
        if v and not _none(v):
            self.owners.append(v)

    # -- containers --

    def containers(self, section: _Node) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        specs: list[dict[str, Any]] = []
        stats: list[dict[str, Any]] = []
        for node in section.children:
            if node.key is None or node.value:
                self.skip(node)
                continue
            spec, stat = self.container(node)
            specs.append(spec)
            stats.append(stat)
        return specs, stats

    def container(self, node: _Node) -> tuple[dict[str, Any], dict[str, Any]]:
        name = node.key or ""
        spec: dict[str, Any] = {"name": name}
        stat: dict[str, Any] = {"name": name}
        resources: dict[str, Any] = {}
        for c in node.children:
            k, v = c.lkey, c.full_value()
            if k == "container id":
                if v:
                    stat["containerID"] = v
            elif k == "image":
                spec["image"] = v
                stat["image"] = v
            elif k == "image id":
                if v:
                    stat["imageID"] = v
            elif k in ("port", "ports", "host port", "host ports"):
                host = k.startswith("host")
                ports = _ports(v, host) if not _none(v) else []
                if host:
                    for p, hp in zip(spec.get("ports", []), ports, strict=False):
                        if hp["hostPort"]:
                            p["hostPort"] = hp["hostPort"]
                elif ports:
                    spec["ports"] = ports
            elif k in ("command", "args"):
                vals = c.child_values()
                if vals:
                    spec[k] = vals
            elif k == "state":
                st = _state(c)
                if st is None:
                    self.problem(c.line, f"could not read the container state {v!r}")
                else:
                    _keep_pasted(stat, "state", st)
                    stat["state"] = st
            elif k in ("last state", "last termination state"):
                st = _state(c)
                if st is not None:
                    _keep_pasted(stat, "lastState", st)
                    stat["lastState"] = st
                elif not _none(v):
                    self.problem(c.line, f"could not read the last state {v!r}")
            elif k == "ready":
                stat["ready"] = v.lower() == "true"
            elif k == "restart count":
                n = _int(v)
                if n is None:
                    self.problem(c.line, f"could not read the restart count {v!r}")
                else:
                    stat["restartCount"] = n
            elif k in ("limits", "requests"):
                amounts = self.pairs(c, ":")
                if amounts:
                    resources[k] = amounts
            elif k in ("liveness", "readiness", "startup"):
                probe = parse_probe(v)
                if probe is None:
                    self.problem(c.line, f"could not read the {k} probe {v!r}")
                else:
                    spec[f"{k}Probe"] = probe
            elif k in ("environment", "environment variables"):
                env = self.env(c)
                if env:
                    spec["env"] = env
            elif k == "environment variables from":
                env_from = []
                for item in c.child_values():
                    ef = _env_from(item.strip())
                    if ef is None:
                        self.problem(c.line, f"could not read the envFrom line {item.strip()!r}")
                    else:
                        env_from.append(ef)
                if env_from:
                    spec["envFrom"] = env_from
            elif k == "mounts":
                mounts = self.mounts(c)
                if mounts:
                    spec["volumeMounts"] = mounts
            elif k in CONTAINER_KEYS:
                pass
            else:
                self.skip(c)
        if resources:
            spec["resources"] = resources
        return spec, stat

    def env(self, node: _Node) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not _none(node.value):
            kv = _key_of(node.value)  # an old kubectl put the first variable on the same line
            if kv:
                out.append(_env_entry(*kv))
        for c in node.children:
            if c.key is None:
                if out and "value" in out[-1]:  # a multi-line value
                    out[-1]["value"] += "\n" + c.line.text
                continue
            value = c.full_value()
            out.append(_env_entry(c.key, value))
            for sub in c.children:  # a multi-line value printed under its name
                if "value" in out[-1]:
                    out[-1]["value"] += "\n" + sub.line.text
        return out

    def mounts(self, node: _Node) -> list[dict[str, Any]]:
        out = []
        for item in node.child_values():
            m = re.match(r"^(\S+)\s+from\s+(\S+)\s*\((r[ow])(?:,\s*path=\"?([^\")]*)\"?)?\)", item)
            if m:
                mount: dict[str, Any] = {"mountPath": m.group(1), "name": m.group(2)}
                if m.group(3) == "ro":
                    mount["readOnly"] = True
                if m.group(4):
                    mount["subPath"] = m.group(4)
                out.append(mount)
            elif not _none(item):
                self.problem(node.line, f"could not read the mount {item.strip()!r}")
        return out

    # -- the rest of the pod --

    def conditions(self, node: _Node) -> list[dict[str, Any]]:
        out = []
        for item in node.child_values():
            parts = item.split()
            if len(parts) < 2 or parts[:2] == ["Type", "Status"] or set(parts[0]) <= {"-"}:
                continue
            if parts[1] in ("True", "False", "Unknown"):
                out.append({"type": parts[0], "status": parts[1]})
        return out

    def volumes(self, node: _Node) -> list[dict[str, Any]]:
        out = []
        for vol in node.children:
            if vol.key is None or vol.value:
                continue
            fields = {c.lkey: c.full_value() for c in vol.children if c.key}
            vtype = fields.get("type", "")
            entry: dict[str, Any] = {"name": vol.key}
            optional = fields.get("optional", "").lower()
            opt = {"optional": optional == "true"} if optional in ("true", "false") else {}
            if vtype.startswith("ConfigMap"):
                entry["configMap"] = {"name": fields.get("name", ""), **opt}
            elif vtype.startswith("Secret"):
                entry["secret"] = {"secretName": fields.get("secretname", ""), **opt}
            elif vtype.startswith("PersistentVolumeClaim"):
                claim: dict[str, Any] = {"claimName": fields.get("claimname", "")}
                if fields.get("readonly", "").lower() == "true":
                    claim["readOnly"] = True
                entry["persistentVolumeClaim"] = claim
            elif vtype.startswith("HostPath"):
                hp: dict[str, Any] = {"path": fields.get("path", "")}
                if fields.get("hostpathtype"):
                    hp["type"] = fields["hostpathtype"]
                entry["hostPath"] = hp
            elif vtype.startswith("EmptyDir"):
                ed: dict[str, Any] = {}
                if fields.get("medium"):
                    ed["medium"] = fields["medium"]
                if fields.get("sizelimit") and not _none(fields["sizelimit"]):
                    ed["sizeLimit"] = fields["sizelimit"]
                entry["emptyDir"] = ed
            elif vtype.startswith("Projected"):
                sources: list[dict[str, Any]] = []
                if fields.get("configmapname"):
                    sources.append({"configMap": {"name": fields["configmapname"]}})
                entry["projected"] = {"sources": sources}
            out.append(entry)
        return out


# --- 6. the Events table --------------------------------------------------------------------

_AGE = r"(?:<unknown>|<invalid>|\d+(?:\.\d+)?(?:ms|[smhdy])(?:\d+[smh])*)"
_COUNT = re.compile(rf"^({_AGE})(?:\s+\(x(\d+)\s+over\s+({_AGE})\))?$")
_FIELDPATH = re.compile(r"^(spec\.(?:initContainers|containers|ephemeralContainers)\{[^}]*\})")
_TYPES = ("Normal", "Warning")
_EVENT_ROW = re.compile(
    rf"^(?:(Normal|Warning)\s+\S+\s+{_AGE}\b|{_AGE}\s+{_AGE}\s+\d+\s+(?:\{{|\S+\s))"
)
"""A row of an Events table, new (`Warning  BackOff  2m ...`) or old (`16m  42s  11  {kubelet`)."""
_LOOSE_OLD = re.compile(
    rf"^({_AGE})\s+({_AGE})\s+(\d+)\s+(\{{[^}}]*\}}|\S+)\s+"
    r"(?:(spec\.\S+\}|implicitly required container \S+)\s+)?(?:(Normal|Warning)\s+)?"
    r"(\S+)\s+(.*)$"
)
_LOOSE_NEW = re.compile(
    rf"^(Normal|Warning)\s+(\S+)\s+({_AGE}(?:\s+\(x\d+\s+over\s+{_AGE}\))?)\s+"
    r"(\S+(?:,\s+\S+)?)\s+(.*)$"
)


def _cells(line: _Line) -> list[tuple[int, str]]:
    """(start column, text) of each cell of a table row.

    kubectl pads columns with tabs (before 1.6) or with two spaces or more; a cell itself
    holds single spaces ("kubelet, node-1", "{kubelet node-1}", "21m (x5 over 23m)")."""
    if "\t" in line.orig:
        cells = []
        col = 0
        for part in line.orig.split("\t"):
            stripped = part.strip(" ")
            if stripped:
                cells.append((col + len(part) - len(part.lstrip(" ")), stripped))
            col += len(part)
            col = (col // 8 + 1) * 8
        return cells
    return [(m.start(), m.group(0)) for m in re.finditer(r"\S+(?: \S+)*", line.raw)]


def _is_time(text: str) -> bool:
    return bool(_COUNT.match(text)) or to_rfc3339(text) != text


class _EventReader:
    """Reads the rows of one Events table (old or new layout) into v1 Event dicts.

    Cells are read in order and recognised by what they hold (a type, an age, a count), not
    only by column: pasted tables lose their alignment, and an empty column (no source, no
    sub-object) leaves no cell behind."""

    def __init__(self, reader: _Reader, name: str, namespace: str) -> None:
        self.reader = reader
        self.name = name
        self.namespace = namespace

    def read(self, node: _Node) -> list[dict[str, Any]]:
        if node.value and _none(node.value):  # "Events:  <none>"
            return []
        rows = _flatten(node)
        header_i = next(
            (i for i, r in enumerate(rows) if {"reason", "message"} <= set(r.text.lower().split())),
            None,
        )
        columns = ["type", "reason", "age", "from", "message"]
        first = next((r for r in rows if r.text), None)
        if first is not None and not first.text.startswith(_TYPES) and _EVENT_ROW.match(first.text):
            columns = ["firstseen", "lastseen", "count", "from", "subobjectpath", "type", "reason"]
            columns.append("message")
        message_col: int | None = None
        body = rows
        if header_i is not None and _GET_EVENTS.search(rows[header_i].text):
            return self.read_get(rows, header_i)
        if header_i is not None:
            header = rows[header_i]
            columns = [w.lower() for w in header.text.lstrip("-* ").split()]
            nxt = rows[header_i + 1] if header_i + 1 < len(rows) else None
            dashes = nxt if nxt is not None and set(nxt.text.replace(" ", "")) <= {"-"} else None
            source = dashes if dashes is not None else header
            starts = [c[0] for c in _cells(source)]
            if len(starts) == len(columns) and "\t" not in source.orig:
                message_col = starts[-1]
            body = rows[header_i + (2 if dashes else 1) :]
        events: list[dict[str, Any]] = []
        parts: list[list[str]] = []  # each event's message, piece by piece (joined once)
        width = 0
        for line in body:
            ev = self.event(columns, message_col, line)
            if ev is not None:
                events.append(ev)
                parts.append([ev["message"]])
                width = len(line.raw)
            elif events and line.text:
                # A message that goes on below its row: its own newlines, or a wrapped line.
                pieces = parts[-1]
                pieces.extend((_joint(pieces[-1], line, width), line.text))
                width = len(line.raw)
            elif line.text:
                self.reader.problem(line, f"could not read the Events table row {line.text[:60]!r}")
        for ev, pieces in zip(events, parts, strict=True):
            # `**` is markdown's bold, typed into a table pasted outside a code fence; the
            # kubelet never writes it
            ev["message"] = "".join(pieces).replace("**", "")
        return events

    def read_get(self, rows: list[_Line], header_i: int) -> list[dict[str, Any]]:
        """`kubectl get events` (`LAST SEEN TYPE REASON OBJECT MESSAGE`, the older `LASTSEEN
        FIRSTSEEN COUNT NAME KIND SUBOBJECT TYPE REASON SOURCE MESSAGE`, or `-o wide`): cells
        by the header's columns, the message to the end of its row (or of its column)."""
        header = rows[header_i]
        columns = [
            (m.start(), m.group(0).lower().replace(" ", ""))
            for m in re.finditer(r"\S+(?: \S+)*", header.raw)
        ]
        names = [c for _, c in columns]
        events: list[dict[str, Any]] = []
        for line in rows[header_i + 1 :]:
            if not line.text or set(line.text.replace(" ", "")) <= {"-"}:
                continue
            row = self.get_row(columns, line)
            if row is None:
                if events and line.text:  # a message wrapped onto the next line
                    events[-1]["message"] += "\n" + line.text
                continue
            events.append(self.get_event(row, line))
        if "message" not in names:
            self.reader.problem(header, "an events table without a MESSAGE column")
        return events

    def get_row(self, columns: list[tuple[int, str]], line: _Line) -> dict[str, str] | None:
        raw = line.raw
        row: dict[str, str] = {}
        aligned = True
        for i, (start, name) in enumerate(columns):
            end = columns[i + 1][0] if i + 1 < len(columns) else len(raw)
            row[name] = raw[start:end].strip() if start < len(raw) else ""
            cut = 0 < start < len(raw) and raw[start - 1] != " "  # a cell cut in two
            if cut or (name != "message" and re.search(r"\s{2}", row[name])):
                aligned = False
        if aligned and row.get("type") in _TYPES and row.get("reason"):
            return row
        # columns that lost their alignment: cells apart by two spaces or more, in order
        cells = re.split(r"\s{2,}|\t+", line.text.strip())
        names = [n for _, n in columns]
        if (
            "type" not in names
            or len(cells) < len(names)
            or cells[names.index("type")] not in _TYPES
        ):
            return None
        last = names.index("message") if "message" in names else len(names) - 1
        tail = len(cells) - (len(names) - 1 - last)
        row = dict(zip(names[:last], cells[:last], strict=False))
        row[names[last]] = "  ".join(cells[last:tail])
        row.update(zip(names[last + 1 :], cells[tail:], strict=False))
        return row

    def get_event(self, row: dict[str, str], line: _Line) -> dict[str, Any]:
        involved: dict[str, Any] = {}
        obj = row.get("object", "")
        if "/" in obj:
            kind, _, name = obj.partition("/")
            involved = {"kind": kind[:1].upper() + kind[1:], "name": name}
        elif row.get("name"):
            involved = {"kind": row.get("kind") or "Pod", "name": row["name"]}
        if self.namespace:
            involved["namespace"] = self.namespace
        path = row.get("subobject", "")
        if _FIELDPATH.match(path):
            involved["fieldPath"] = path
        reason = row.get("reason", "")
        ev: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "involvedObject": involved,
            "reason": reason,
            "message": row.get("message", "").replace("**", ""),
            "type": row.get("type") or ("Warning" if _warning_reason(reason) else "Normal"),
            "count": 1,
        }
        seen = row.get("lastseen", "")
        m = _COUNT.match(seen)
        if m and m.group(2):
            ev["count"] = int(m.group(2))
        if (count := _int(row.get("count", ""))) is not None:
            ev["count"] = count
        src = self.source(row.get("source", ""))
        if src:
            ev["source"] = src
        ev["x-describe"] = {"line": line.no, "age": seen} if seen else {"line": line.no}
        return ev

    def row(self, columns: list[str], message_col: int | None, line: _Line) -> dict[str, str]:
        cells = _cells(line)
        if not cells:
            return {}
        if columns[0] == "type":
            return self.new_row(cells, message_col, line)
        return self.old_row(columns, cells, line)

    def new_row(
        self, cells: list[tuple[int, str]], message_col: int | None, line: _Line
    ) -> dict[str, str]:
        if len(cells) < 3 or cells[0][1] not in _TYPES or not _COUNT.match(cells[2][1]):
            return self.loose(line.text)
        out = {"type": cells[0][1], "reason": cells[1][1], "age": cells[2][1]}
        rest = cells[3:]
        if rest and (len(rest) >= 2 and (message_col is None or rest[0][0] < message_col - 1)):
            out["from"] = rest[0][1]
            rest = rest[1:]
        if rest:
            out["message"] = self.tail(line, rest[0][0])
        return out

    def old_row(
        self, columns: list[str], cells: list[tuple[int, str]], line: _Line
    ) -> dict[str, str]:
        # FirstSeen LastSeen Count From SubobjectPath [Type] Reason Message
        if len(cells) < 5 or not (_is_time(cells[0][1]) and _is_time(cells[1][1])):
            return self.loose_old(line.text)
        if _int(cells[2][1]) is None:
            return self.loose_old(line.text)
        out = {"firstseen": cells[0][1], "lastseen": cells[1][1], "count": cells[2][1]}
        out["from"] = cells[3][1]
        rest = cells[4:]
        at = next((i for i, c in enumerate(rest[:2]) if c[1] in _TYPES), None)
        if at is not None:
            if at == 1:
                out["subobjectpath"] = rest[0][1]
            out["type"] = rest[at][1]
            rest = rest[at + 1 :]
        elif "type" in columns:
            return {}
        elif len(rest) >= 3:
            out["subobjectpath"] = rest[0][1]
            rest = rest[1:]
        if not rest:
            return {}
        out["reason"] = rest[0][1]
        if len(rest) > 1:
            out["message"] = (
                self.tail(line, rest[1][0])
                if "\t" not in line.orig
                else " ".join(c[1] for c in rest[1:])
            )
        return out

    def tail(self, line: _Line, col: int) -> str:
        """The text from a column to the end: a message keeps its own spacing."""
        return line.raw[col:].strip()

    def loose_old(self, text: str) -> dict[str, str]:
        """An old-layout row whose columns lost their alignment."""
        m = _LOOSE_OLD.match(text)
        if not m:
            return {}
        names = ("firstseen", "lastseen", "count", "from", "subobjectpath", "type", "reason")
        out = {k: v for k, v in zip(names, m.groups(), strict=False) if v}
        out["message"] = m.group(8)
        return out

    def loose(self, text: str) -> dict[str, str]:
        """A row whose columns lost their alignment (spaces collapsed by a web page)."""
        m = _LOOSE_NEW.match(text)
        if not m:
            return {}
        t, reason, age, src, msg = m.groups()
        return {"type": t, "reason": reason, "age": age, "from": src, "message": msg}

    def event(
        self, columns: list[str], message_col: int | None, line: _Line
    ) -> dict[str, Any] | None:
        row = self.row(columns, message_col, line)
        if not row.get("reason"):
            return None
        involved = {"kind": "Pod", "name": self.name, "namespace": self.namespace}
        ev: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "involvedObject": {k: v for k, v in involved.items() if v},  # only what is known
            "reason": row["reason"],
            "message": row.get("message", ""),
            "type": row.get("type") or ("Warning" if _warning_reason(row["reason"]) else "Normal"),
            "count": 1,
        }
        describe: dict[str, Any] = {"line": line.no}
        if "age" in row:
            describe["age"] = row["age"]
            m = _COUNT.match(row["age"])
            if m and m.group(2):
                ev["count"] = int(m.group(2))
        for col, api in (("firstseen", "firstTimestamp"), ("lastseen", "lastTimestamp")):
            if col in row:
                stamp = to_rfc3339(row[col])
                if stamp != row[col]:
                    ev[api] = stamp
                else:
                    describe[col] = row[col]
        count = _int(row.get("count", ""))
        if count is not None:
            ev["count"] = count
        source = row.get("from", "")
        path = row.get("subobjectpath", "")
        fp = _FIELDPATH.match(source)
        if fp:  # a kubectl that printed "spec.containers{x}" where the source goes
            path, source = fp.group(1), source[fp.end() :].strip(" ,")
        src = self.source(source)
        if src:
            ev["source"] = src
        msg_fp = _FIELDPATH.match(ev["message"])
        if msg_fp and ev["message"][msg_fp.end() : msg_fp.end() + 1] == ":":
            # kubectl 1.33+ puts the container's field path before the message.
            path = msg_fp.group(1)
            ev["message"] = ev["message"][msg_fp.end() + 1 :].strip()
        if path:
            ev["involvedObject"]["fieldPath"] = path
        ev["x-describe"] = describe
        return ev

    def source(self, text: str) -> dict[str, str]:
        text = text.strip()
        if not text or _none(text):
            return {}
        if text.startswith("{") and text.endswith("}"):  # kubectl <= 1.5: "{kubelet node-1}"
            comp, _, host = text[1:-1].strip().partition(" ")
        else:  # "kubelet, node-1" (1.6-1.19) or "kubelet" (1.20+)
            comp, _, host = text.partition(",")
        out = {"component": comp.strip()}
        if host.strip():
            out["host"] = host.strip()
        return out


_GET_EVENTS = re.compile(r"(?i)\bLAST ?SEEN\b.*\b(?:OBJECT|KIND)\b|\bOBJECT\b.*\bMESSAGE\b")
"""The header of `kubectl get events` (not describe's Events table)."""


def _warning_reason(reason: str) -> bool:
    r = reason.lower()
    return any(w in r for w in ("fail", "backoff", "unhealthy", "err", "kill", "evict", "oom"))


def _flatten(node: _Node) -> list[_Line]:
    out: list[_Line] = []
    for c in node.children:
        out.append(c.line)
        out.extend(c.wrapped)
        out.extend(_flatten(c))
    return out


# --- 7. logs around the describe block ------------------------------------------------------

_DEFAULTED = re.compile(r'^Defaulted container "([^"]+)" out of:')
_LOGS_FROM = re.compile(r"^Logs? (?:from|of)\s+(?:container\s+)?(\S+?)(?:\s+in\s+\S+)?:?$", re.I)


_NAME = re.compile(r"^(?:pods?/)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_OTHER_LOGS = re.compile(
    r"\b(?:docker|podman|nerdctl|crictl)\s+(?:container\s+)?logs\b|\bjournalctl\b"
    # a container run in the foreground prints its own output: the same program's logs
    r"|\b(?:docker|podman|nerdctl)\s+(?:container\s+)?run\b(?!.*\s(?:-d|--detach)\b)"
)


def _logs_command(text: str) -> tuple[bool | None, str | None, bool]:
    """A command line -> (previous?, container or None, is a logs command).

    `kubectl logs` names its container with -c or a second argument; `docker logs`,
    `crictl logs`, `journalctl` and `docker run` in the foreground print logs too, of a
    container they do not name."""
    text = text.strip().strip("*_`").strip()  # markdown emphasis around a command
    m = _COMMAND.search(text)
    if not m or m.group(1) != "logs":
        if _OTHER_LOGS.search(text):
            return (None, None, True)
        return (False, None, False)
    args = text[m.end() :].split()
    previous = False
    container: str | None = None
    positional: list[str] = []
    i = 0
    while i < len(args):
        a = args[i].strip("`*'\"")
        if a in ("|", ">", "2>&1", ">>"):
            break
        if a in ("-p", "--previous", "--previous=true"):
            previous = True
        elif a in ("-c", "--container") and i + 1 < len(args):
            container = args[i + 1].strip("`*'\"")
            i += 1
        elif a.startswith("--container="):
            container = a.split("=", 1)[1]
        elif a.startswith("-c") and len(a) > 2 and not a.startswith("--"):
            container = a[2:]
        elif a in ("-n", "--namespace", "--tail", "--since", "--context", "-l", "--selector"):
            i += 1
        elif _NAME.match(a):
            positional.append(a)
        i += 1
    if container is None and len(positional) >= 2:
        container = positional[1]
    return (previous, container, True)


def _logs_pod(text: str) -> str | None:
    """The pod a `kubectl logs` command line names (`kubectl logs -n shop pod/api-0 -c x`)."""
    text = text.strip().strip("*_`").strip()
    m = _COMMAND.search(text)
    if not m or m.group(1) != "logs":
        return None
    args = text[m.end() :].split()
    i = 0
    while i < len(args):
        a = args[i].strip("`*'\"")
        if a in ("|", ">", "2>&1", ">>"):
            return None
        if a in ("-c", "--container", "-n", "--namespace", "--tail", "--since", "--context"):
            i += 2
            continue
        if a in ("-l", "--selector"):
            return None  # pods by label: which one is not said
        if not a.startswith("-") and _NAME.match(a):
            return a.removeprefix("pods/").removeprefix("pod/")
        i += 1
    return None


_GET_TABLE = re.compile(r"^(?:NAMESPACE\s+)?NAME\s+READY\s+STATUS\b")


_LOGLIKE = re.compile(
    r"\d{2}:\d{2}:\d{2}|^[IWEF]\d{4}\s|\b(?:ERROR|WARN(?:ING)?|INFO|DEBUG|FATAL|CRITICAL|PANIC)\b"
    r"|\b(?:panic|Traceback|Exception|Error|error|exception|fatal|failed|refused|denied)\b"
    r"|^\s+at\s|^goroutine\s|level=|^\[|^\{|\w+\.\w+:\d+"
)


def _looks_like_logs(lines: list[str]) -> bool:
    """Whether unlabelled text near a description is a program's output rather than prose."""
    return any(_LOGLIKE.search(x) for x in lines if x.strip())


@dataclass
class _LogSegment:
    container: str | None
    previous: bool | None  # None: nothing said (a bare paste, `docker logs`)
    lines: list[str]
    first_line: int
    labelled: bool = False  # a command or a header said these are logs


def _log_segments(lines: list[_Line]) -> tuple[list[_LogSegment], int]:
    """Text outside the describe block -> log segments; and how many lines were dropped."""
    segments: list[_LogSegment] = []
    current: _LogSegment | None = _LogSegment(None, None, [], lines[0].no if lines else 0)
    dropped = 0
    in_table = False  # a `kubectl get pods` table: the pods' states, not logs
    for line in lines:
        text = line.raw.rstrip()
        stripped = text.strip()
        if _is_prompt(stripped):
            in_table = False
            cmd = _logs_command(stripped)
            if current is not None and any(x.strip() for x in current.lines):
                segments.append(current)
            if cmd[2]:
                current = _LogSegment(cmd[1], cmd[0], [], line.no + 1, labelled=True)
            else:
                current = None  # the output of another command: not logs
                dropped += 1
            continue
        header = _DEFAULTED.match(stripped) or _LOGS_FROM.match(stripped)
        if header:
            if current is None:
                current = _LogSegment(header.group(1), None, [], line.no + 1, labelled=True)
            elif current.container is None:
                current.container, current.labelled = header.group(1), True
            continue
        if _NOT_STARTED.search(stripped) or _GET_EVENT_ROW.match(stripped):
            continue  # kubectl's answer, not the container's output (see _kubectl_said)
        if _GET_TABLE.match(stripped):
            in_table = True
        elif not stripped:
            in_table = False
        if in_table or current is None or _EVENT_ROW.match(stripped) or _GET_ROW.match(stripped):
            if stripped:
                dropped += 1  # another command's output, or another pod's events
            continue
        current.lines.append(text)
    if current is not None and any(x.strip() for x in current.lines):
        segments.append(current)
    return segments, dropped


# --- 8. a pod's status pasted as YAML -------------------------------------------------------

_YKEY = re.compile(r"^(?P<key>[A-Za-z_][\w.\-/]*):(?:\s+(?P<value>.*?))?\s*$")
_YAML_FIELDS = frozenset(
    {
        "apiVersion", "kind", "metadata", "spec", "status", "containerStatuses",
        "initContainerStatuses", "containers", "initContainers", "state", "lastState",
        "waiting", "terminated", "running", "exitCode", "reason", "message", "restartCount",
        "ready", "started", "startedAt", "finishedAt", "containerID", "imageID", "image",
        "name", "phase", "conditions", "signal", "hostIP", "podIP", "startTime", "qosClass",
        "livenessProbe", "readinessProbe", "startupProbe", "resources", "limits", "requests",
        "volumeMounts", "volumes", "env", "envFrom", "securityContext", "ports",
        "containerPort", "nodeName", "namespace", "ownerReferences", "labels",
    }
)  # fmt: skip
_YAML_STATUS = frozenset(
    {"status", "containerStatuses", "initContainerStatuses", "state", "lastState", "waiting",
     "terminated", "exitCode", "reason", "message", "phase"}
)  # fmt: skip
_TERMINATED_REASONS = frozenset(
    {"OOMKilled", "Error", "Completed", "ContainerCannotRun", "StartError", "DeadlineExceeded"}
)


@dataclass
class _YNode:
    indent: int
    key: str | None  # None: a list item
    value: str | None  # None: a mapping or list follows
    children: list[_YNode] = field(default_factory=list)


def _looks_like_yaml(lines: list[_Line]) -> bool:
    """Whether the text is a pod's (or a container's) status as YAML (`kubectl get -o yaml`,
    often only a piece of it) rather than describe output: its keys are the API's camelCase
    field names, not describe's capitalised words."""
    yaml_keys: set[str] = set()
    hits = describe = 0
    for line in lines:
        m = _YKEY.match(line.text.removeprefix("- ").lstrip())
        if m is None:
            continue
        key = m["key"]
        if key in _YAML_FIELDS:
            hits += 1
            yaml_keys.add(key)
        elif key[:1].isupper() and key.lower() in _ALL_KEYS:
            describe += 1
    return hits >= 2 and hits > describe and bool(yaml_keys & _YAML_STATUS)


def _yaml_tree(lines: list[_Line]) -> tuple[_YNode, set[int]]:
    """A forgiving reader of block YAML: mappings, lists, plain, quoted (folded over lines) and
    block scalars; indentation only decides what a line belongs to, so a fragment whose
    lines a web page shifted is still read. Returns the root and the indexes of lines used."""
    root = _YNode(-1, None, None)
    stack = [root]
    used: set[int] = set()
    scalar: _YNode | None = None  # the last scalar, which a plain continuation line extends
    i = 0
    while i < len(lines):
        line = lines[i]
        text, indent = line.text, line.indent
        if not text or text.startswith("#"):
            i += 1
            continue
        if text == "-" or text.startswith("- "):
            rest = text[1:].lstrip()
            while len(stack) > 1 and (
                stack[-1].indent > indent or (stack[-1].indent == indent and stack[-1].key is None)
            ):
                stack.pop()
            item = _YNode(indent, None, None)
            stack[-1].children.append(item)
            stack.append(item)
            used.add(i)
            indent += len(text) - len(rest)
            text = rest
            if not text:
                i += 1
                continue
            if _YKEY.match(text) is None:
                item.value = _yaml_unquote(text)
                scalar = None
                i += 1
                continue
        m = _YKEY.match(text)
        if m is not None and m["key"][:1].isupper() and " " in (m["value"] or ""):
            # prose beside the YAML (`Error: couldn't find key ...`, `Warning: ...`): the API's
            # field names are camelCase, and a capitalised one holding a sentence is a message
            scalar = None
            i += 1
            continue
        if m is None:
            if scalar is not None and indent > scalar.indent and scalar.value is not None:
                scalar.value += " " + text  # a plain scalar folded over lines
                used.add(i)
            i += 1
            continue
        while len(stack) > 1 and stack[-1].indent >= indent and stack[-1] is not root:
            if stack[-1].key is None and stack[-1].indent < indent:
                break
            stack.pop()
        node = _YNode(indent, m["key"], m["value"] or None)
        stack[-1].children.append(node)
        used.add(i)
        i += 1
        scalar = None
        if node.value is None:
            stack.append(node)
            continue
        value = node.value
        if value[:1] in ("'", '"') and not _closed(value):
            while i < len(lines) and not _closed(value):
                value += " " + lines[i].text
                used.add(i)
                i += 1
        elif value in ("|", "|-", "|+", ">", ">-", ">+"):
            block: list[str] = []
            while i < len(lines) and (not lines[i].text or lines[i].indent > node.indent):
                block.append(lines[i].text)
                used.add(i)
                i += 1
            value = ("\n" if value[0] == "|" else " ").join(block).strip()
            node.value = value
            continue
        node.value = _yaml_unquote(value)
        scalar = node
    return root, used


def _closed(value: str) -> bool:
    """Whether a quoted YAML scalar ends (its closing quote, not an escaped one)."""
    quote, body = value[0], value[1:]
    if quote == "'":
        return "'" in body.replace("''", "")
    return re.search(r'(?<!\\)"', body.replace("\\\\", "")) is not None


def _yaml_unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
    return value


def _yaml_value(node: _YNode) -> Any:
    if node.value is not None:
        return _yaml_scalar(node.value) if node.key is not None or not node.children else None
    if node.children and all(c.key is None for c in node.children):
        return [
            _yaml_scalar(c.value) if c.value is not None and not c.children else _yaml_map(c)
            for c in node.children
        ]
    return _yaml_map(node)


def _yaml_map(node: _YNode) -> dict[str, Any]:
    return {c.key: _yaml_value(c) for c in node.children if c.key is not None}


def _yaml_scalar(value: str) -> Any:
    if value in ("{}", "[]"):
        return {} if value == "{}" else []
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if value in ("true", "false"):
        return value == "true"
    if value in ("null", "~"):
        return None
    return value


def _yaml_pod(tree: dict[str, Any]) -> dict[str, Any] | None:
    """The pod a YAML (or JSON) paste shows: a whole Pod, its status, one container's status,
    or one container state (unnamed: the paste did not say whose); of a list, its first pod."""
    items = tree.get("items")
    if isinstance(items, list):
        first = next((x for x in items if isinstance(x, dict)), None)
        return _yaml_pod(first) if first is not None else None
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {}}
    if tree.get("kind") not in (None, "Pod"):
        return None  # a Deployment's manifest, a ConfigMap: not the pod's state
    if "spec" in tree or "metadata" in tree or "status" in tree:
        for key in ("metadata", "spec", "status"):
            if isinstance(tree.get(key), dict):
                pod[key] = tree[key]
        # a manifest without its status says nothing of how the pod fails
        said = {"containerStatuses", "initContainerStatuses", "phase", "reason"}
        return pod if said & pod.get("status", {}).keys() else None
    if {"containerStatuses", "initContainerStatuses", "phase"} & tree.keys():
        pod["status"] = tree
        return pod
    status: dict[str, Any]
    if {"state", "lastState", "restartCount"} & tree.keys():
        status = dict(tree)
    elif {"waiting", "terminated", "running"} & tree.keys():
        status = {"state": tree}
    elif {"reason", "exitCode"} & tree.keys():
        ended = {"exitCode", "finishedAt", "signal"} & tree.keys() or (
            str(tree.get("reason")) in _TERMINATED_REASONS
        )
        status = {"state": {"terminated" if ended else "waiting": tree}}
    else:
        return None
    status.setdefault("name", UNNAMED)
    pod["status"] = {"containerStatuses": [status]}
    return pod


_JSON_START = re.compile(r"^[ \t]*\{", re.MULTILINE)


def _pod_like(value: Any) -> bool:
    """A pod, a list of pods, a pod's status or a container's status: not a JSON log line."""
    if not isinstance(value, dict):
        return False
    if value.get("kind") in ("Pod", "List", "PodList"):
        return True
    status, state = value.get("status"), value.get("state")
    if isinstance(status, dict) and {"phase", "containerStatuses", "reason"} & status.keys():
        return True
    if isinstance(state, dict) and {"waiting", "terminated", "running"} & state.keys():
        return True
    return isinstance(value.get("containerStatuses"), list)


def _read_json(text: str, source: str) -> tuple[PodEvidence, str] | None:
    """A pod pasted as JSON (`kubectl get pod -o json`, or its status), and the text around
    it (a prompt, logs). None when no JSON object in the text is a pod or a status."""
    decoder = json.JSONDecoder()
    for m in _JSON_START.finditer(text):
        start = text.index("{", m.start())
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        pod = _yaml_pod(value) if _pod_like(value) else None
        if pod is None:
            continue
        evidence = PodEvidence(pod=pod, source=source)
        if not pod["metadata"].get("name"):
            evidence.problems.append(
                "describe: read a pod status pasted as JSON without the pod's name"
            )
        return evidence, text[:start] + "\n" + text[end:]
    return None


def _read_yaml(lines: list[_Line], source: str) -> tuple[PodEvidence, list[_Line]] | None:
    """A YAML paste as evidence, and the lines it did not use (logs, words around it)."""
    root, used = _yaml_tree(lines)
    pod = _yaml_pod(_yaml_map(root))
    if pod is None:
        return None
    problems = []
    if not pod["metadata"].get("name"):
        problems.append(
            "describe: read a pod status pasted as YAML without the pod's name (only part of"
            " `kubectl get pod -o yaml` was pasted)"
        )
    evidence = PodEvidence(pod=pod, source=source, problems=problems)
    return evidence, [x for i, x in enumerate(lines) if i not in used]


# --- 9. what kubectl itself said around the paste -------------------------------------------

_NOT_STARTED = re.compile(
    r'container \\?"(?P<container>[^"\\]+)\\?" in pod \\?"(?P<pod>[^"\\]+)\\?" is waiting to'
    r" start: (?P<why>.+?)\s*$"
)
# the kubelet's words for the waiting reasons it rewords (kubelet_pods.go, validateContainerLog)
_NOT_STARTED_REASONS = {
    "image can't be pulled": "ErrImagePull",
    "trying and failing to pull image": "ImagePullBackOff",
}
_WAITING_WORD = re.compile(r"^[A-Z][A-Za-z]+(?:Error|BackOff|Pull|Name|Creating|Initializing)$")
_TERMINATED_WORDS = frozenset(
    {"OOMKilled", "Error", "Completed", "ContainerCannotRun", "StartError", "DeadlineExceeded"}
)


def _kubectl_said(evidence: PodEvidence, lines: list[_Line], problems: list[str]) -> None:
    """What kubectl's own output around a paste says about the pod, when the paste has no
    description of it: `kubectl logs` answering that a container `is waiting to start:
    REASON`, a `kubectl get pods` row's STATUS and RESTARTS, the pod a `kubectl logs`
    command names. Only fills in what the evidence lacks."""
    pod = evidence.pod
    if not isinstance(pod.get("metadata"), dict) or not isinstance(pod.get("status", {}), dict):
        return
    meta = pod.setdefault("metadata", {})
    status = pod.setdefault("status", {})
    known = bool(status.get("containerStatuses") or status.get("initContainerStatuses"))
    known = known or bool(_dict_of(pod.get("spec")).get("containers"))
    pods_named: list[str] = []
    rows = [m for line in lines if (m := _GET_EVENT_ROW.match(line.text.strip()))]
    if rows and not evidence.events:
        # `kubectl get events` rows without their header (LAST SEEN TYPE REASON OBJECT MESSAGE)
        events = [_row_event(m, evidence.namespace) for m in rows]
        evidence.events = (
            _one_pods_events(events, meta, problems)
            if not meta.get("name")
            else [
                e
                for e in events
                if e["involvedObject"].get("name") in (meta["name"], None)
                or e["involvedObject"].get("kind") != "Pod"
            ]
        )
    for line in lines:
        text = line.text.strip().strip("`")
        if (m := _NOT_STARTED.search(text)) is not None and not known:
            why = m["why"]
            reason = _NOT_STARTED_REASONS.get(why, why)
            st = {"name": m["container"], "state": {"waiting": {"reason": reason}}}
            status["containerStatuses"] = [st]
            meta.setdefault("name", m["pod"])
            known = True
        elif _is_prompt(text) and (named := _logs_pod(text)) is not None:
            pods_named.append(named)
    if not known:
        row = _failing_get_row(lines, pods_named)
        if row is not None:
            # its container is the one whose logs were given, if they name one
            logged = {*evidence.previous_logs, *evidence.current_logs} - {UNNAMED}
            _status_from_row(pod, row, logged.pop() if len(logged) == 1 else UNNAMED)
            problems.append(
                f"describe: read the pod's state from the `kubectl get pods` row of {row['name']}"
                " (no description of it)"
            )
    if not meta.get("name") and len(set(pods_named)) == 1:
        meta["name"] = pods_named[0]


_BEFORE_START = frozenset(
    {
        "ContainerCreating", "CreateContainerConfigError", "CreateContainerError",
        "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
    }
)  # fmt: skip
"""Waiting reasons of a container that has not been started yet: it has written no log."""
MAX_NEVER_RAN_LINES = 20


def _never_ran(evidence: PodEvidence, problems: list[str]) -> None:
    """Text pasted next to the state of a container that has never run (waiting to be created,
    its image not pulled, restarted 0 times) is not its log: it has none. It is what the
    kubelet said about it (`Error: couldn't find key ... in ConfigMap ...`, as `describe`'s
    events show it), so it is read as the kubelet's event messages."""
    status = _dict_of(evidence.pod.get("status"))
    lists = [status.get(key) for key in ("initContainerStatuses", "containerStatuses")]
    statuses = [st for x in lists if isinstance(x, list) for st in x if isinstance(st, dict)]
    for st in statuses:
        waiting = _dict_of(_dict_of(st.get("state")).get("waiting"))
        if waiting.get("reason") not in _BEFORE_START or (
            _int(str(st.get("restartCount", 0))) or 0
        ):
            continue
        if _dict_of(_dict_of(st.get("lastState")).get("terminated")):
            continue  # it ran before: the text may be that run's log
        name = str(st.get("name") or "")
        key = name if name in evidence.previous_logs else UNNAMED
        if len(statuses) > 1 and key == UNNAMED:
            continue  # whose words they are is not known
        text = evidence.previous_logs.get(key, "")
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        if not lines or len(lines) > MAX_NEVER_RAN_LINES or evidence.events:
            continue
        del evidence.previous_logs[key]
        involved: dict[str, Any] = {
            "kind": "Pod",
            "name": _dict_of(evidence.pod.get("metadata")).get("name"),
        }
        if name:
            field = "initContainers" if st in (lists[0] or []) else "containers"
            involved["fieldPath"] = f"spec.{field}{{{name}}}"
        evidence.events = [
            {
                "kind": "Event",
                "involvedObject": involved,
                "reason": "Failed",
                "message": line,
                "type": "Warning",
                "source": {"component": "kubelet"},
                "count": 1,
            }
            for line in lines
        ]
        problems.append(
            f"describe: read the text beside the state {waiting['reason']} as the kubelet's"
            " messages, not as logs (a container that never started has written none)"
        )
        return


_GET_EVENT_ROW = re.compile(
    rf"^(?P<age>{_AGE}(?:\s+\(x\d+ over {_AGE}\))?)\s+(?P<type>Normal|Warning)\s+(?P<reason>\w+)"
    r"\s+(?P<kind>[a-z][\w.-]*)/(?P<name>\S+)\s+(?P<message>\S.*)$"
)
"""A `kubectl get events` row: `42m  Warning  Failed  pod/api-0  Error: ErrImagePull`."""


def _row_event(m: re.Match[str], namespace: str) -> dict[str, Any]:
    kind = m["kind"].split(".")[0]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "involvedObject": {
            "kind": kind[:1].upper() + kind[1:],
            "name": m["name"],
            "namespace": namespace,
        },
        "reason": m["reason"],
        "message": m["message"].replace("**", ""),
        "type": m["type"],
        "count": int(c[1]) if (c := re.search(r"\(x(\d+)", m["age"])) else 1,
        "x-describe": {"age": m["age"]},
    }


def _dict_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _failing_get_row(lines: list[_Line], named: list[str]) -> dict[str, str] | None:
    """The row of a `kubectl get pods` table about the pod the paste is about: the one a
    `kubectl logs` names, else the only one not Running nor Completed."""
    rows: list[dict[str, str]] = []
    columns: list[str] = []
    for line in lines:
        text = line.text.strip()
        if _GET_TABLE.match(text):
            columns = [c.lower() for c in re.split(r"\s{2,}|\t+", text)]
            continue
        if not columns and (m := _GET_ROW.match(text)) is not None:
            rows.append({k: v for k, v in m.groupdict().items() if v})  # a row without header
            continue
        if not columns or not text:
            columns = [] if not text else columns
            continue
        cells = re.split(r"\s{2,}|\t+", text)
        if len(cells) < 3:
            columns = []
            continue
        rows.append(dict(zip(columns, cells, strict=False)))
    mine = [r for r in rows if r.get("name") in named]
    if mine:
        return mine[-1]
    bad = [r for r in rows if r.get("status") not in ("Running", "Completed", "Succeeded", None)]
    return bad[0] if len(bad) == 1 else None


_GET_ROW = re.compile(
    r"^(?:(?P<namespace>[a-z0-9][a-z0-9-]*)\s+)?(?P<name>[a-z0-9][a-z0-9.-]*)\s+(?P<ready>\d+/\d+)"
    r"\s+(?P<status>[A-Za-z][\w:-]*(?:\d+/\d+)?)\s+(?P<restarts>\d+(?: \([^)]*\))?)"
    rf"\s+(?P<age>{_AGE})(?:\s|$)"
)
"""A `kubectl get pods` row pasted without its header: NAME READY STATUS RESTARTS AGE (and
`-o wide`'s columns after, `-A`'s NAMESPACE before)."""


def _status_from_row(pod: dict[str, Any], row: dict[str, str], name: str) -> None:
    meta, status = pod["metadata"], pod["status"]
    meta.setdefault("name", row.get("name", ""))
    if row.get("namespace"):
        meta.setdefault("namespace", row["namespace"])
    shown = row.get("status", "")
    restarts = _int((row.get("restarts") or "").split(" ")[0])
    ready_part = (row.get("ready") or "").partition("/")[0]
    st: dict[str, Any] = {"name": name, "ready": ready_part.isdigit() and ready_part != "0"}
    if restarts is not None:
        st["restartCount"] = restarts
    init = shown.startswith("Init:")
    word = shown.removeprefix("Init:")
    if shown in ("Evicted", "NodeLost", "Shutdown", "UnexpectedAdmissionError"):
        status.update(phase="Failed", reason=shown)
        return
    if word in _TERMINATED_WORDS:
        st["state"] = {"terminated": {"reason": word}}
    elif _WAITING_WORD.match(word):
        st["state"] = {"waiting": {"reason": word}}
    elif word == "Running":
        st["state"] = {"running": {}}
    else:
        return  # "Init:0/1", "Pending", "Terminating": nothing about why
    status["initContainerStatuses" if init else "containerStatuses"] = [st]


# --- the entry point ------------------------------------------------------------------------


def parse_describe(text: str, logs: str | None = None, source: str = "") -> PodEvidence:
    """Rebuild a pod, its events and its logs from `kubectl describe pod` text.

    The text may hold the logs too (`kubectl logs --previous` output before or after the
    description); `logs` is a second text holding only logs. Never raises on what it is given:
    what could not be read is in `problems`."""
    problems: list[str] = []
    lines = _normalise(text)
    found = _find_block(lines, 0)
    whole = found is not None and _START.match(lines[found[0]].text) is not None
    if not whole and _looks_like_yaml(lines) and (as_yaml := _read_yaml(lines, source)):
        # (a whole description wins over YAML beside it: the manifest the pod came from)
        evidence, outside = as_yaml
        _attach_logs(evidence, outside, logs, problems)
        _never_ran(evidence, problems)
        evidence.problems.extend(problems[:MAX_PROBLEMS])
        return evidence
    if found is None and "{" in text and (as_json := _read_json(text, source)) is not None:
        evidence, rest = as_json
        _attach_logs(evidence, _normalise(rest), logs, problems)
        _never_ran(evidence, problems)
        evidence.problems.extend(problems[:MAX_PROBLEMS])
        return evidence
    if found is None:
        problems.append(
            "describe: no `kubectl describe pod` output found (it starts with a `Name:` line "
            "followed by `Namespace:`); read the text as logs only"
        )
        pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {}}
        evidence = PodEvidence(pod=pod, source=source)
        outside = lines
    else:
        evidence, outside = _read_blocks(lines, found, source, problems)
    _attach_logs(evidence, outside, logs, problems, bare=found is None)
    _kubectl_said(evidence, outside, problems)
    if found is None:
        _never_ran(evidence, problems)
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS], f"describe: {more} more problems not shown"]
    evidence.problems.extend(problems)
    return evidence


MAX_BLOCKS = 20
"""Descriptions read from one text at most (a paste of a whole namespace's is cut there)."""


def _read_blocks(
    lines: list[_Line], found: tuple[int, int], source: str, problems: list[str]
) -> tuple[PodEvidence, list[_Line]]:
    """The description to diagnose when the text holds several (`kubectl describe pods -l
    app=x`, or a healthy pod's next to the one that fails): the first whose containers show a
    failure, else the first; and the lines that are its logs (around the first description,
    or after the one chosen)."""
    blocks = [found]
    while len(blocks) < MAX_BLOCKS and (nxt := _find_block(lines, blocks[-1][1])) is not None:
        blocks.append(nxt)
    read = []
    for start, end in blocks:
        own: list[str] = []
        read.append((_read_block(lines[start:end], source, own), own))
    chosen = next((i for i, (ev, _) in enumerate(read) if _shows_failure(ev.pod)), 0)
    evidence, own = read[chosen]
    problems.extend(own)
    if len(blocks) > 1:
        others = ", ".join(ev.name or "?" for i, (ev, _) in enumerate(read) if i != chosen)
        which = "the first" if chosen == 0 else "the first whose containers show a failure"
        problems.append(
            f"describe line {lines[blocks[chosen][0]].no}: the text holds more than one pod"
            f" description; read {evidence.name or '?'}, {which} (the others: {others})"
        )
    start, end = blocks[chosen]
    after = blocks[chosen + 1][0] if chosen + 1 < len(blocks) else len(lines)
    before = lines[:start] if chosen == 0 else []
    return evidence, before + lines[end:after]


def _shows_failure(pod: dict[str, Any]) -> bool:
    status = _dict_of(pod.get("status"))
    if status.get("reason") == "Evicted":
        return True
    for key in ("initContainerStatuses", "containerStatuses"):
        for st in status.get(key) or []:
            waiting = _dict_of(_dict_of(st.get("state")).get("waiting"))
            if waiting.get("reason") not in (None, "", "ContainerCreating", "PodInitializing"):
                return True
            if (st.get("restartCount") or 0) > 0 and not st.get("ready"):
                return True
            ended = _dict_of(_dict_of(st.get("state")).get("terminated"))
            if ended and ended.get("reason") != "Completed":
                return True
    return False


def _read_block(block: list[_Line], source: str, problems: list[str]) -> PodEvidence:
    # A fragment may start deeper than the sections after it: measure from the leftmost line.
    base = min((x.indent for x in block if x.text), default=0)
    if _is_table_header(block[0].text) or _EVENT_ROW.match(block[0].text):
        # An Events table (or only its rows) pasted without its `Events:` line.
        block = [_Line(block[0].no, base, "Events:", " " * base + "Events:", "Events:"), *block]
    if _flattened(block):
        block = _reindent(block)
        base = 0
    roots = _build_tree(block, base)
    reader = _Reader()
    pod, event_nodes = reader.pod(roots)
    meta = pod["metadata"]
    events: list[dict[str, Any]] = []
    er = _EventReader(reader, str(meta.get("name", "")), str(meta.get("namespace", "")))
    for node in event_nodes:
        events.extend(er.read(node))
    if not meta.get("name"):
        events = _one_pods_events(events, meta, problems)
    problems.extend(reader.problems)
    if reader.unknown:
        shown = ", ".join(reader.unknown[:3])
        more = f" and {len(reader.unknown) - 3} more" if len(reader.unknown) > 3 else ""
        problems.append(
            f"describe: skipped {len(reader.unknown)} line(s) it could not place ({shown}{more}); "
            "a newer or older kubectl may print fields this reader does not know"
        )
    if not meta.get("name"):
        problems.append(
            "describe: the paste has no `Name:` line (only part of the description was "
            "pasted); the pod's name, namespace and status are unknown"
        )
    spec = pod.get("spec", {})
    if not spec.get("containers") and not spec.get("initContainers"):
        problems.append(
            "describe: no Containers section found; the paste may be cut short (paste the "
            "whole `kubectl describe pod` output)"
        )
    return PodEvidence(pod=pod, events=events, owners=reader.owners, source=source)


def _one_pods_events(
    events: list[dict[str, Any]], meta: dict[str, Any], problems: list[str]
) -> list[dict[str, Any]]:
    """Events that name their pod (`kubectl get events`) without a description around them:
    the pod is theirs; of several pods, the one with the most warnings (the others' events
    are not about it), with the events of other kinds of object (its ReplicaSet's)."""
    warnings: dict[str, int] = {}
    for ev in events:
        obj = ev.get("involvedObject", {})
        if obj.get("kind") == "Pod" and obj.get("name"):
            warnings[obj["name"]] = warnings.get(obj["name"], 0) + (ev.get("type") == "Warning")
    if not warnings:
        return events
    name = max(warnings, key=lambda n: warnings[n])  # (the first listed of equals)
    meta["name"] = name
    if len(warnings) > 1:
        problems.append(
            f"describe: the events are about {len(warnings)} pods; read those of {name}, the one"
            " with the most warnings"
        )
    return [
        ev
        for ev in events
        if ev.get("involvedObject", {}).get("kind") != "Pod"
        or ev.get("involvedObject", {}).get("name") in (name, None)
    ]


def _flattened(block: list[_Line]) -> bool:
    """Whether a web page stripped the indentation (container names sit at column 0), or
    squeezed it to one level (a container's fields beside its name, not under it)."""
    for i, line in enumerate(block[:-1]):
        kv = _key_of(line.text)
        if kv and kv[0].lower() in ("containers", "init containers") and not kv[1]:
            nxt = block[i + 1]
            nkv = _key_of(nxt.text)
            if nkv is None or nkv[1] or nkv[0].lower() in _ALL_KEYS:
                return False
            if nxt.indent <= line.indent:
                return True
            after = block[i + 2] if i + 2 < len(block) else None
            akv = _key_of(after.text) if after is not None else None
            return (
                after is not None
                and after.indent == nxt.indent
                and akv is not None
                and akv[0].lower() in CONTAINER_KEYS
            )
    return False


_LIST_FIELDS = {
    "command", "args", "limits", "requests", "environment", "environment variables",
    "environment variables from", "mounts", "state", "last state", "last termination state",
}  # fmt: skip
_VOLUME_KEYS = {
    "type", "name", "optional", "secretname", "claimname", "readonly", "path", "hostpathtype",
    "medium", "sizelimit", "configmapname", "configmapoptional", "tokenexpirationseconds",
    "downwardapi", "server", "fstype",
}  # fmt: skip


def _reindent(block: list[_Line]) -> list[_Line]:
    """Give a flattened description back the indentation kubectl printed, from its keys."""
    out: list[_Line] = []
    section = ""
    sub = ""
    for line in block:
        kv = _key_of(line.text)
        k = kv[0].lower() if kv else ""
        indent = 0
        in_containers = section in ("containers", "init containers")
        if (
            kv
            and k in TOP_KEYS
            and not (
                (in_containers and (k in CONTAINER_KEYS or k in STATE_KEYS))
                or (section == "volumes" and k in _VOLUME_KEYS)
            )
        ):
            section, sub = k, ""
        elif in_containers:
            if kv and not kv[1] and k not in CONTAINER_KEYS and k not in STATE_KEYS:
                indent, sub = 2, ""
            elif sub in ("state", "last state", "last termination state") and k in STATE_KEYS:
                indent = 6
            elif kv and k in CONTAINER_KEYS:
                indent, sub = 4, (k if k in _LIST_FIELDS else "")
            else:
                indent = 6
        elif section == "volumes":
            indent = 2 if kv and not kv[1] and k not in _VOLUME_KEYS else 4
        elif section in ("conditions", "events"):
            indent = 2
        out.append(_Line(line.no, indent, line.text, " " * indent + line.text, line.orig))
    return out


def _attach_logs(
    evidence: PodEvidence,
    outside: list[_Line],
    logs: str | None,
    problems: list[str],
    bare: bool = False,
) -> None:
    """The logs around the description (and in `logs`) into the evidence. `bare`: the text
    has no description at all, so when nothing in it looks like a log, whatever is not a
    prompt is the program's output (a one-line paste of an error need not look like a log
    line to be one)."""
    segments, dropped = _log_segments(outside) if outside else ([], 0)
    if logs is not None and logs.strip():
        logs_lines = _normalise(logs)
        extra, _ = _log_segments(logs_lines)
        # A logs file is `kubectl logs --previous` output unless a line in it says otherwise.
        for seg in extra:
            seg.labelled = True
            if seg.previous is None:
                seg.previous = True
        segments.extend(extra)
    running = _running(evidence.pod)
    kept = []
    # with no description, and nothing that looks like a log either, all of it is the log
    bare = bare and not any(seg.labelled or _looks_like_logs(seg.lines) for seg in segments)
    for seg in segments:
        if seg.labelled or bare or _looks_like_logs(seg.lines):
            kept.append(seg)
        else:  # the question around the paste, not the program's output
            dropped += sum(1 for x in seg.lines if x.strip())
    segments = kept
    if dropped:
        problems.append(
            f"describe: skipped {dropped} line(s) that are neither the description nor logs "
            "(shell prompts, other commands' output, words around the paste)"
        )
    for seg in segments:
        body = "\n".join(_dedent(_unfold([_unmark(x) for x in seg.lines]))).strip("\n")
        if not body.strip():
            continue
        name = seg.container if seg.container is not None else UNNAMED
        # `kubectl logs` of a container that is not running shows the run that ended, and a
        # bare paste next to a crash is that run too; only a running container's logs without
        # `--previous` are the current run's.
        previous = seg.previous is not False or not (
            name in running or (name == UNNAMED and bool(running) and len(running) == 1)
        )
        target = evidence.previous_logs if previous else evidence.current_logs
        target[name] = f"{target[name]}\n{body}" if name in target else body


_OPEN_SCALAR = re.compile(r"^(?P<indent> *)(?:- )?[A-Za-z_][\w.\-/]*: (?P<value>['\"].*)$")
_FOLD_MAX = 30
_MARKUP = re.compile(
    r"^(?P<indent>\s*)(?P<mark>\*\*|__|\*|_)(?=[^\s*_])(?P<body>.*?[^\s*_\\])(?P=mark)(?P<rest>\s.*)?$"
)


def _unfold(lines: list[str]) -> list[str]:
    """A quoted YAML value folded over lines (`kubectl get -o yaml` wraps a long `message:` at
    about 80 columns, its continuation lines indented deeper) as the one line it is, so a
    rule reads the message as the kubelet wrote it. A value not closed within `_FOLD_MAX`
    lines, or whose next line is not indented deeper, is left as it is."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        end = _fold_end(lines, i)
        if end is None:
            out.append(lines[i])
            i += 1
        else:
            out.append(" ".join([lines[i].rstrip(), *(x.strip() for x in lines[i + 1 : end])]))
            i = end
    return out


def _fold_end(lines: list[str], i: int) -> int | None:
    """The index after the last line of the quoted value opened on line `i`, or None when
    line `i` opens none or it is not closed on deeper-indented lines."""
    m = _OPEN_SCALAR.match(lines[i])
    if m is None or _closed(m["value"]):
        return None
    joined, base = lines[i].rstrip(), len(m["indent"])
    for j in range(i + 1, min(len(lines), i + 1 + _FOLD_MAX)):
        nxt = lines[j]
        if not nxt.strip() or len(nxt) - len(nxt.lstrip(" ")) <= base:
            return None
        joined = f"{joined} {nxt.strip()}"
        if _closed(joined[m.start("value") :]):
            return j + 1
    return None


def _unmark(line: str) -> str:
    """A log line without the Markdown emphasis a person wrapped around it in an issue
    (`**/bin/sh: x: Permission denied**`): a rule anchored at the line's start reads the
    program's words. Only a pair at the line's start, closed before a blank or the end, counts:
    `*** stack smashing detected ***`, `* item` and `**kwargs` are left alone."""
    m = _MARKUP.match(line)
    if m is None or (m["rest"] and m["mark"].startswith("_")):
        return line  # (`__main__: ... __init__ x`: underscores inside a line are a program's)
    return f"{m['indent']}{m['body']}{m['rest'] or ''}"


def _running(pod: dict[str, Any]) -> set[str]:
    """The containers running now (a pasted YAML or JSON pod may have any shape)."""
    status = _dict_of(pod.get("status"))
    lists = [status.get(key) for key in ("containerStatuses", "initContainerStatuses")]
    statuses = [st for x in lists if isinstance(x, list) for st in x if isinstance(st, dict)]
    return {str(st.get("name", "")) for st in statuses if "running" in _dict_of(st.get("state"))}


def _dedent(lines: list[str]) -> list[str]:
    indents = [len(x) - len(x.lstrip(" ")) for x in lines if x.strip()]
    cut = min(indents) if indents else 0
    return [x[cut:] for x in lines]
