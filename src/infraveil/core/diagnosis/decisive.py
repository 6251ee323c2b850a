"""The decisive line: the one line of a dead instance's output a person must read.

Each runtime has a detector that knows its own failure shape (a Python traceback's last line,
Java's innermost `Caused by:`, Go's `panic:`, Node's error after the caret block, ...). Choosing
between runtimes when more than one has something to say:

1. Heap exhaustion (JVM `OutOfMemoryError`, Node's `JavaScript heap out of memory`) wins
   wherever it appears: once the heap is gone, every later exception is a consequence.
2. Otherwise the runtime failure whose decisive line is closest to the end wins: an earlier
   traceback was caught and logged, or a wrapper went on after it (`python migrate.py` failed,
   then `exec gunicorn` was not found), and what ended the instance is the last one.
3. A shell's report of how a child died (`Segmentation fault (core dumped)`, `Aborted`,
   `Killed`) says how, never why; it wins only when no runtime failure is in the tail.
4. With no runtime failure at all, the last ERROR/FATAL/CRITICAL/PANIC/`Error:` line (or a
   structured `level=error`, `"level":"fatal"`, klog's `E0513`/`F0513`, MongoDB's `"s":"F"`);
   a structured fatal severity (klog's `F0513`, `"s":"F"`, `level=fatal`, `"level":"panic"`)
   outranks error lines after it (a restart's or a retry's); with none of those either, there
   is nothing to say (`None`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum


@dataclass(frozen=True)
class LogLine:
    """One line of an instance's output."""

    number: int  # 1-based line number in the log it came from
    text: str


@dataclass(frozen=True)
class Decisive:
    """The line that says why an instance died, with the runtime that printed it."""

    line: LogLine
    runtime: str  # python, java, go, node, ruby, dotnet, native, shell or generic
    detail: tuple[LogLine, ...] = ()


class _Weight(IntEnum):
    """How much a detector's finding counts against the others (rules 1-3 above)."""

    ECHO = 0
    FAILURE = 1
    HEAP = 2


@dataclass(frozen=True)
class _Found:
    decisive: Decisive
    at: int  # index of the decisive line in the input
    weight: _Weight = _Weight.FAILURE


_Detector = Callable[[Sequence[LogLine]], "_Found | None"]


def _found(
    lines: Sequence[LogLine],
    at: int,
    runtime: str,
    detail: Sequence[int] = (),
    weight: _Weight = _Weight.FAILURE,
) -> _Found:
    decisive = Decisive(lines[at], runtime, tuple(lines[i] for i in detail))
    return _Found(decisive, at, weight)


def _last(lines: Sequence[LogLine], pattern: re.Pattern[str]) -> int | None:
    for i in range(len(lines) - 1, -1, -1):
        if pattern.search(lines[i].text):
            return i
    return None


# --- Python ---------------------------------------------------------------------------------

_PY_FRAME = re.compile(r'^\s+File "[^"]*", line \d+')
_PY_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?::(?: .*)?)?$")
_PY_CHAIN = re.compile(
    r"^(?:During handling of the above exception|The above exception was the direct cause"
    r"|Traceback \(most recent call last\))"
)
# a line that starts a new log record rather than continuing an exception's message
_LOG_RECORD = re.compile(r"^(?:\d{4}-\d\d-\d\d|\[|\{|level=|time=|ts=)")
_PY_LAUNCH = re.compile(r"^\S*python[\d.]*: (?:can't open file |No module named )")
_PY_CONTINUATION_MAX = 5


def _python(lines: Sequence[LogLine]) -> _Found | None:
    # The last frame belongs to the last traceback, whether or not its `Traceback` heading
    # survived the tail; chained tracebacks therefore need no special case.
    frame = _last(lines, _PY_FRAME)
    launch = _last(lines, _PY_LAUNCH)
    found: _Found | None = None
    if frame is not None:
        found = _python_traceback(lines, frame)
    if launch is not None and (found is None or launch > found.at):
        found = _found(lines, launch, "python")
    return found


def _python_traceback(lines: Sequence[LogLine], frame: int) -> _Found | None:
    at = frame + 1
    while at < len(lines) and (lines[at].text[:1].isspace() or not lines[at].text.strip()):
        at += 1
    if at == len(lines) or not _PY_EXCEPTION.match(lines[at].text):
        return None
    detail: list[int] = []
    if ", in " not in lines[frame].text:
        # a SyntaxError-style block: the frame names the file and line, then the source line
        detail = [i for i in range(frame, at) if lines[i].text.strip().strip("^~ ")]
    for i in range(at + 1, min(at + 1 + _PY_CONTINUATION_MAX, len(lines))):
        text = lines[i].text
        if not text.strip() or _PY_CHAIN.match(text) or _LOG_RECORD.match(text):
            break
        if _SIGNAL_ECHO.match(text) or _NATIVE.match(text) or _is_shell_line(text):
            break  # a wrapper's report, not the message going on
        detail.append(i)
    return _found(lines, at, "python", detail)


# --- Java / JVM -----------------------------------------------------------------------------

_JAVA_FRAME = re.compile(r"^\s+(?:at [\w$./<>-]+\([^()]*\)|\.\.\. \d+ (?:more|common frames))")
_JAVA_CAUSE = re.compile(r"^Caused by: ")
_JAVA_HEADING = re.compile(
    r"^(?:Exception in thread \".*\" )?(?:[\w$]+\.)+[\w$]*(?:Exception|Error|Throwable)\b"
)
_JAVA_OOM = re.compile(r"java\.lang\.OutOfMemoryError")
_JAVA_LAUNCHER = re.compile(
    r"^Error: (?:Could not find or load main class|Unable to access jarfile"
    r"|Invalid or corrupt jarfile|LinkageError occurred while loading main class)"
)
_SPRING_FAILED = re.compile(r"^\s*APPLICATION FAILED TO START\s*$")


def _java_heap(lines: Sequence[LogLine]) -> _Found | None:
    at = _last(lines, _JAVA_OOM)
    return None if at is None else _found(lines, at, "java", weight=_Weight.HEAP)


def _java(lines: Sequence[LogLine]) -> _Found | None:
    spring = _spring_boot(lines)
    if spring is not None:
        # the failure analyzer's description is written for people; the stack is not
        return spring
    last_frame = _last(lines, _JAVA_FRAME)
    if last_frame is None:
        return _java_launcher(lines)
    start = last_frame
    while start > 0:
        above = lines[start - 1].text
        if not (_JAVA_FRAME.match(above) or _JAVA_CAUSE.match(above) or above.startswith("\t")):
            if _JAVA_HEADING.match(above):
                start -= 1
            break
        start -= 1
    causes = [i for i in range(start, last_frame) if _JAVA_CAUSE.match(lines[i].text)]
    top = start if _JAVA_HEADING.match(lines[start].text) else None
    if causes:
        return _found(lines, causes[-1], "java", [] if top is None else [top])
    if top is not None:
        return _found(lines, top, "java")
    return _java_launcher(lines)


def _java_launcher(lines: Sequence[LogLine]) -> _Found | None:
    launcher = _last(lines, _JAVA_LAUNCHER)
    if launcher is None:
        return None
    # `Error: Could not find or load main class X` is followed by its reason, frameless
    after = launcher + 1
    if after < len(lines) and _JAVA_CAUSE.match(lines[after].text):
        return _found(lines, after, "java", [launcher])
    return _found(lines, launcher, "java")


def _spring_boot(lines: Sequence[LogLine]) -> _Found | None:
    banner = _last(lines, _SPRING_FAILED)
    if banner is None:
        return None
    description = _text_after(lines, banner, "Description:")
    if description is None:
        return None
    action = _text_after(lines, description, "Action:")
    return _found(lines, description, "java", [] if action is None else [action])


def _text_after(lines: Sequence[LogLine], start: int, heading: str) -> int | None:
    """The first non-blank line after `heading`, looking no further than a few lines."""
    for i in range(start + 1, min(start + 12, len(lines))):
        if lines[i].text.strip() == heading:
            for j in range(i + 1, min(i + 4, len(lines))):
                if lines[j].text.strip():
                    return j
            return None
    return None


# --- Go -------------------------------------------------------------------------------------

# (client-go's crash handler logs `Observed a panic: ...` through klog before it re-panics)
_GO_PANIC = re.compile(
    r"^(?:panic: |fatal error: )|^[EF]\d{4} [\d:. ]+\d+ \S+\] Observed a panic: "
)
_GO_SIGNAL = re.compile(r"^\[signal [A-Z]+")
_GO_GOROUTINE = re.compile(r"^goroutine \d+ \[")


def _go(lines: Sequence[LogLine]) -> _Found | None:
    at = _last(lines, _GO_PANIC)
    if at is None:
        return None
    # a re-panic (`panic: A [recovered]` then `\tpanic: B`) keeps the first as the reason
    while at > 0 and _GO_PANIC.match(lines[at - 1].text):
        at -= 1
    detail: list[int] = []
    i = at + 1
    if i < len(lines) and _GO_SIGNAL.match(lines[i].text):
        detail.append(i)
    frame = _go_user_frame(lines, at + 1)
    if frame is not None:
        detail.extend(frame)
    return _found(lines, at, "go", detail)


def _go_user_frame(lines: Sequence[LogLine], start: int) -> list[int] | None:
    """The first frame of the panicking goroutine outside the runtime and standard library."""
    in_goroutine = False
    for i in range(start, len(lines)):
        text = lines[i].text
        if _GO_GOROUTINE.match(text):
            if in_goroutine:
                return None  # only the first goroutine is the one that panicked
            in_goroutine = True
            continue
        if not in_goroutine or not text.strip() or text[:1].isspace():
            continue
        if _go_is_user(text.removeprefix("created by ")):
            has_file = i + 1 < len(lines) and lines[i + 1].text.startswith("\t")
            return [i, i + 1] if has_file else [i]
    return None


def _go_is_user(function: str) -> bool:
    name = function.split("(", 1)[0]
    slash = name.rfind("/")
    package = name[: name.find(".", slash + 1)] if "." in name[slash + 1 :] else name
    # standard library import paths have no dot in their first element; modules do
    return package == "main" or "." in package.split("/", 1)[0]


# --- Node -----------------------------------------------------------------------------------

_NODE_HEAP = re.compile(r"^FATAL ERROR: .*JavaScript heap out of memory")
_NODE_CARET = re.compile(r"^\s*\^+\s*$")
_NODE_LOCATION = re.compile(r"^\S.*:\d+$")
_NODE_FRAME = re.compile(r"^\s+at (?:.* \(.*:\d+:\d+\)|\S+:\d+:\d+|.* \(native\))$")
_NODE_HEADING = re.compile(r"^(?:\w*Error|\w*Exception)(?: \[\w+\])?: ")
_NODE_FOOTER = re.compile(r"^Node\.js v\d+")
_NODE_PROPERTY = re.compile(r"^  (?:code|syscall|path|address|port|hostname|dest): ")


def _node_heap(lines: Sequence[LogLine]) -> _Found | None:
    at = _last(lines, _NODE_HEAP)
    return None if at is None else _found(lines, at, "node", weight=_Weight.HEAP)


def _node(lines: Sequence[LogLine]) -> _Found | None:
    at = _node_after_caret(lines)
    if at is None:
        at = _node_stack_heading(lines)
    if at is None:
        return None
    return _found(lines, at, "node", _node_properties(lines, at))


def _node_after_caret(lines: Sequence[LogLine]) -> int | None:
    # Node prints `file:line`, the source line, a caret line, a blank line, then the error.
    for i in range(len(lines) - 1, 1, -1):
        if _NODE_CARET.match(lines[i].text) and _NODE_LOCATION.match(lines[i - 2].text):
            for j in range(i + 1, min(i + 4, len(lines))):
                if lines[j].text.strip():
                    return j
            return None
    return None


def _node_stack_heading(lines: Sequence[LogLine]) -> int | None:
    for i in range(len(lines) - 2, -1, -1):
        if _NODE_HEADING.match(lines[i].text) and _NODE_FRAME.match(lines[i + 1].text):
            return i
    return None


def _node_properties(lines: Sequence[LogLine], at: int) -> list[int]:
    found: list[int] = []
    in_block = lines[at].text.endswith("{")
    for i in range(at + 1, len(lines)):
        text = lines[i].text
        if not text.strip() or _NODE_FOOTER.match(text):
            break
        if in_block and text.startswith("}"):
            break
        if in_block and _NODE_PROPERTY.match(text):
            found.append(i)
        in_block = in_block or text.endswith("{")
    return found


# --- Ruby -----------------------------------------------------------------------------------

_RUBY_TOP = re.compile(r"^\S+:\d+:in [`'][^']*': .* \([A-Z]\w*(?:::[A-Z]\w*)*\)$")


def _ruby(lines: Sequence[LogLine]) -> _Found | None:
    at = _last(lines, _RUBY_TOP)
    return None if at is None else _found(lines, at, "ruby")


# --- .NET -----------------------------------------------------------------------------------

_DOTNET_TOP = re.compile(r"^Unhandled [Ee]xception[.:] ")
_DOTNET_INNER = re.compile(r"^ ---> ")
_DOTNET_STACK = re.compile(r"^\s+(?:at |--- End of)")


def _dotnet(lines: Sequence[LogLine]) -> _Found | None:
    top = _last(lines, _DOTNET_TOP)
    if top is None:
        return None
    inner = None
    for i in range(top + 1, len(lines)):
        if _DOTNET_STACK.match(lines[i].text):
            break
        if _DOTNET_INNER.match(lines[i].text):
            inner = i
    if inner is None:
        return _found(lines, top, "dotnet")
    return _found(lines, inner, "dotnet", [top])


# --- native crashes -------------------------------------------------------------------------

_NATIVE = re.compile(
    r"^(?:\*\*\* stack smashing detected \*\*\*"
    r"|\*\*\* Error in `"
    r"|(?:free|malloc|realloc|calloc|munmap_chunk|malloc_consolidate)\(\): "
    r"|double free or corruption"
    r"|corrupted (?:size|double-linked)"
    r"|Fatal glibc error: "
    r"|==\d+==ERROR: \w+Sanitizer: "
    r"|terminate called )"
)
_CXX_WHAT = re.compile(r"^\s+what\(\): ")
_SANITIZER_SUMMARY = re.compile(r"^SUMMARY: \w+Sanitizer: ")
_SIGNAL_ECHO = re.compile(
    r"^(?:.*: line \d+: +\d+ )?"
    r"(?:Segmentation fault|Aborted|Bus error|Illegal instruction|Killed)\b"
)


def _native(lines: Sequence[LogLine]) -> _Found | None:
    at = _last(lines, _NATIVE)
    if at is None:
        echo = _last(lines, _SIGNAL_ECHO)
        return None if echo is None else _found(lines, echo, "native", weight=_Weight.ECHO)
    after = at + 1
    if lines[at].text.startswith("terminate called"):
        # the exception's message is on the next line; the `terminate` line names its type
        if after < len(lines) and _CXX_WHAT.match(lines[after].text):
            return _found(lines, after, "native", [at])
        return _found(lines, at, "native")
    if lines[at].text.startswith("=="):
        summary = next(
            (i for i in range(after, len(lines)) if _SANITIZER_SUMMARY.match(lines[i].text)),
            None,
        )
        return _found(lines, at, "native", [] if summary is None else [summary])
    return _found(lines, at, "native")


# --- shell entrypoints ----------------------------------------------------------------------

_SHELL = re.compile(
    r"^(?P<who>[^\s:]+): (?:line \d+: |\d+: )?.+?: "
    r"(?:command not found|not found|Permission denied|No such file or directory"
    r"|cannot execute binary file.*|cannot execute: .+|bad interpreter: .+|Exec format error)"
    r"\s*$"
)
_SHELL_NAMES = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox", "env"})
_CONTAINER_EXEC = re.compile(
    r"exec: \"[^\"]*\": executable file not found in \$PATH"
    r"|^exec \S+: (?:no such file or directory|exec format error|permission denied)$"
)


def _is_shell_line(text: str) -> bool:
    if _CONTAINER_EXEC.search(text):
        return True
    match = _SHELL.match(text)
    if match is None:
        return False
    who = match["who"]
    # a shell, or a script path as bash and dash name it; `cat: x: No such file` is not one
    return who.rsplit("/", 1)[-1] in _SHELL_NAMES or "/" in who or who.endswith(".sh")


def _shell(lines: Sequence[LogLine]) -> _Found | None:
    for i in range(len(lines) - 1, -1, -1):
        if _is_shell_line(lines[i].text):
            return _found(lines, i, "shell")
    return None


# --- generic fallback -----------------------------------------------------------------------

_GENERIC = re.compile(
    r"\b(?:ERROR|FATAL|CRITICAL|PANIC)\b|Error:|\[(?:emerg|alert|crit)\]"
    r"|\blevel=\"?(?i:error|fatal|panic|critical|crit|emerg)\b"
    r"|\"(?:level|severity|lvl)\"\s*:\s*\"(?i:error|fatal|panic|critical|crit|emerg)\""
    # severity as a letter: klog/glog `E0513 15:57:17.447425 ...`, `F0513 ...`; MongoDB's
    # structured log `"s":"E"` / `"s":"F"`
    r"|^[EF]\d{4} \d\d:\d\d:\d\d|\"s\"\s*:\s*\"[EF]\""
)


# a structured fatal severity: the program ended there, so what follows (error lines of a
# restart, a retry loop's complaints) came after the reason
_STRUCTURED_FATAL = re.compile(
    r"^F\d{4} \d\d:\d\d:\d\d|\"s\"\s*:\s*\"F\""
    r"|\blevel=\"?(?i:fatal|panic)\b|\"(?:level|severity)\"\s*:\s*\"(?i:fatal|panic)\""
)


def _generic(lines: Sequence[LogLine]) -> _Found | None:
    at = _last(lines, _STRUCTURED_FATAL)
    if at is None:
        at = _last(lines, _GENERIC)
    return None if at is None else _found(lines, at, "generic")


_DETECTORS: tuple[_Detector, ...] = (
    _java_heap,
    _node_heap,
    _python,
    _java,
    _go,
    _node,
    _ruby,
    _dotnet,
    _native,
    _shell,
)


def decisive_line(lines: Sequence[LogLine]) -> Decisive | None:
    """The line of `lines` (an instance's output, in order) that says why it died.

    The line returned is always one of `lines`, verbatim; `None` when nothing in the tail looks
    like a failure. See the module docstring for how runtimes are weighed against each other.
    """
    found = [f for detect in _DETECTORS if (f := detect(lines)) is not None]
    if found:
        return max(found, key=lambda f: (f.weight, f.at)).decisive
    fallback = _generic(lines)
    return None if fallback is None else fallback.decisive
