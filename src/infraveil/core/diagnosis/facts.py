"""Facts: everything the engine may look at about one failure, gathered by whoever has them.

The agent fills these in for an instance it supervised (exit status, its own kill reason, probe
results, the log tail, preflight, dependency states); `doctor` fills in what a person gives it
(a log file, an exit code, a signal, events). Nothing here does I/O: the engine is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from infraveil.core.diagnosis.decisive import LogLine


@dataclass(frozen=True)
class ProbeFact:
    """The latest result of one of the instance's checks."""

    role: str  # startup, liveness or readiness
    kind: str  # http, tcp, exec or notify
    target: str  # what was probed: "GET http://127.0.0.1:8080/healthz", "127.0.0.1:5432"
    ok: bool
    detail: str  # the probe's own words: "HTTP 404 Not Found for GET /x"
    refused: bool = False  # the connection was refused: nothing listening there
    failures: int = 0  # failures in a row up to this result


@dataclass(frozen=True)
class EventFact:
    """An event about the service (from the agent, or a file given to `doctor --events`)."""

    reason: str
    message: str
    source: str = "event"  # where it came from, quoted with it: "event 08:01:02", "events.txt:4"
    count: int = 1  # how many times it happened (Kubernetes folds repeats into one event)
    warning: bool = False  # a Warning event (Kubernetes), not a Normal one


@dataclass(frozen=True)
class KillFact:
    """The agent itself ended the instance, and why."""

    reason: str  # "liveness", "deadline" (startup deadline) or "memory" (the RSS watchdog)
    detail: str  # the agent's message: "liveness failed 3 times over 15 s: HTTP 500 ..."
    source: str = "agent"  # who ended it, quoted with it: "agent", "event Killing (x4 over 9m)"


@dataclass(frozen=True)
class PreflightProblem:
    """A preflight check that failed before a start: the service was not started."""

    check: str  # command, interpreter, cwd, env_file, file, user, port, env
    category: str  # a Category value
    detail: str  # the evidence, in plain words: "/opt/app/run.sh is not executable (mode 0644)"
    fix: str  # what to do now
    subject: str = ""  # the path, port, user or variable concerned


@dataclass(frozen=True)
class DependencyFact:
    """A service this one depends on (`depends_on`), as the agent sees it now."""

    name: str
    ready: bool
    state: str = ""  # "running", "failed (halted)", ...


@dataclass(frozen=True)
class KubeProbe:
    """A probe in a Kubernetes container's spec, with its timing (the API's defaults filled in)."""

    role: str  # startup, liveness or readiness
    handler: dict[str, object] = field(hash=False)  # the spec's: {"httpGet": {"port": 8080}}
    initial_delay: int = 0
    period: int = 10
    timeout: int = 1
    failure_threshold: int = 3

    @property
    def first_kill(self) -> int:
        """Seconds from the container's start to the earliest moment this probe can fail it."""
        return self.initial_delay + self.period * self.failure_threshold

    def describe(self) -> str:
        """The handler as `kubectl describe` shows it: "http-get http://:8080/healthz"."""
        http = self.handler.get("httpGet")
        if isinstance(http, dict):
            scheme = str(http.get("scheme") or "HTTP").lower()
            return f"http-get {scheme}://:{http.get('port', '')}{http.get('path', '/')}"
        tcp = self.handler.get("tcpSocket")
        if isinstance(tcp, dict):
            return f"tcp-socket :{tcp.get('port', '')}"
        ex = self.handler.get("exec")
        if isinstance(ex, dict):
            command = ex.get("command") or []
            return "exec [" + " ".join(str(a) for a in command) + "]"
        grpc = self.handler.get("grpc")
        if isinstance(grpc, dict):
            return f"grpc :{grpc.get('port', '')}"
        return "probe"


@dataclass(frozen=True)
class KubeRef:
    """A ConfigMap or Secret a Kubernetes container needs, and how (a volume, envFrom, a key)."""

    kind: str  # "ConfigMap" or "Secret"
    name: str
    key: str = ""  # one key of it (an env var's valueFrom), or "" for all of it
    via: str = ""  # "env DB_PASSWORD", "envFrom", "volume config"
    optional: bool = False


@dataclass(frozen=True)
class KubeFacts:
    """What Kubernetes says about one container of a pod, beyond what a process has.

    Only `doctor k8s` fills this in; rules that need the platform's own words (a waiting reason,
    the kubelet's events, the spec) read it, and rules about processes never need it.
    """

    pod: str
    namespace: str = "default"
    container: str = ""
    init: bool = False
    image: str = ""
    status_path: str = ""  # how evidence names the status: "status.containerStatuses[api]"
    waiting_reason: str = ""  # state.waiting.reason: CrashLoopBackOff, ErrImagePull, ...
    waiting_message: str = ""
    terminated_reason: str = ""  # of the run diagnosed: OOMKilled, Error, Completed, StartError
    terminated_message: str = ""
    terminated_path: str = ""  # "status.containerStatuses[api].lastState.terminated"
    # the termination's field lines as the user pasted them (`Exit Code:    139`), to quote
    terminated_pasted: tuple[str, ...] = ()
    restarts: int = 0
    pod_phase: str = ""
    pod_reason: str = ""  # status.reason: Evicted, NodeLost, ...
    pod_message: str = ""
    node: str = ""
    probes: tuple[KubeProbe, ...] = ()
    limits: tuple[tuple[str, str], ...] = ()  # resources.limits as given: ("memory", "256Mi")
    requests: tuple[tuple[str, str], ...] = ()
    refs: tuple[KubeRef, ...] = ()
    mounts: tuple[tuple[str, str], ...] = ()  # (volume name, mount path)
    run_as_non_root: bool | None = None  # the container's, else the pod's securityContext
    run_as_user: int | None = None
    fs_group: int | None = None
    image_pull_secrets: tuple[str, ...] = ()
    node_events: tuple[EventFact, ...] = ()
    owner: str = ""  # the top of the owner chain: "Deployment/api", "" for a bare pod
    status_known: bool = True  # False: only its logs or events were given (a partial paste)

    def probe(self, role: str) -> KubeProbe | None:
        return next((p for p in self.probes if p.role == role), None)


@dataclass(frozen=True)
class Facts:
    """One failure's evidence. Everything is optional: `doctor` may know only a log."""

    service: str = ""
    instance: int | None = None
    exit_code: int | None = None
    signal: int | None = None  # a signal number
    core_dumped: bool = False
    exit_unknown: bool = False  # ended while no agent (its parent) was there to see how
    spawn_error: str = ""  # the command could not be executed at all (the OS error)
    oom_killed: bool = False  # the kernel's OOM killer (cgroup or host) ended it
    memory_limit: int | None = None  # bytes
    peak_memory: int | None = None  # bytes
    run_seconds: float | None = None
    became_ready: bool = False  # passed its startup/readiness check at least once
    typical_boot: float | None = None  # seconds a boot usually takes, once some are known
    kill: KillFact | None = None
    log: tuple[LogLine, ...] = ()  # the instance's last lines, in order
    log_source: str = ""  # how to name the log in evidence: "logs/api/3.log", "crash.txt"
    log_truncated: bool = False  # the log had more than the tail given here
    log_problem: str = ""  # why there are no lines: "the log is empty", "... binary ..."
    probes: tuple[ProbeFact, ...] = ()
    events: tuple[EventFact, ...] = ()
    preflight: tuple[PreflightProblem, ...] = ()
    dependencies: tuple[DependencyFact, ...] = ()
    command: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()  # ports the spec says it listens on
    long_running: bool = True  # a service, not a job: exiting at all is a failure
    live: bool = False  # the instance is still running (why on a not-ready service)
    spawn_source: str = "exec"  # how evidence names `spawn_error`'s origin
    kube: KubeFacts | None = None  # a Kubernetes container (`doctor k8s`); None for a process


def lines_of(text: str, first: int = 1) -> tuple[LogLine, ...]:
    """Numbered lines of `text` (as a person pasted it), the first numbered `first`, with the
    prefix a log collector put on every line taken off (see `strip_collector_prefix`)."""
    lines = strip_collector_prefix([strip_colours(line) for line in _split(text)])
    return tuple(LogLine(first + i, line) for i, line in enumerate(lines))


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# the same codes after a copy from a terminal or a web page lost their ESC: "[31mERROR[0m"
_BARE_SGR = re.compile(r"\[\d{1,3}(?:;\d{1,3})*m(?!\])|\[m(?![\w\]])")
_BARE_RESET = re.compile(r"\[0m|\[m(?![\w\]])")


def strip_colours(line: str) -> str:
    """A line without the terminal colour codes a program wrote into it (so a quote reads as
    the program's words); codes that lost their ESC only when a reset code says they are."""
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if "m" in line and _BARE_RESET.search(line):
        line = _BARE_SGR.sub("", line)
    return line


_COLLECTOR_PREFIXES = (
    # journalctl (short and short-iso): "Nov 21 08:00:01 host app[123]: "
    re.compile(
        r"^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT[\d:.]+(?:[+-]\d\d:?\d\d|Z)?)"
        r" \S+ [\w.@/-]+(?:\[\d+\])?: "
    ),
    # docker compose: "api-1  | ", "web_1 | "
    re.compile(r"^[\w.-]+\s*\| "),
    # kubectl logs --prefix (and -l, --all-containers): "[pod/api-5d9f/api] "
    re.compile(r"^\[pod/[^/\]\s]+/[^\]\s]+\] "),
    # docker logs -t, kubectl logs --timestamps: "2026-11-21T08:00:01.123456789Z "
    re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) "),
)
_PREFIX_SHARE = 0.6


def strip_collector_prefix(lines: list[str]) -> list[str]:
    """Lines with the prefix a log collector put on each of them (journalctl, docker compose,
    `docker logs -t`) taken off, so a traceback's indentation and a program's own line start
    are as the program wrote them. Only a prefix on most lines counts: a program's own
    timestamps on some lines are left alone. Lines without it are kept as they are."""
    for _ in range(2):  # compose output can carry timestamps too
        nonblank = [line for line in lines if line.strip()]
        if not nonblank:
            return lines
        for prefix in _COLLECTOR_PREFIXES:
            hits = sum(1 for line in nonblank if prefix.match(line))
            if hits >= _PREFIX_SHARE * len(nonblank) and hits >= 2:
                lines = [prefix.sub("", line, count=1) for line in lines]
                break
        else:
            return lines
    return lines


def _split(text: str) -> Iterable[str]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines
