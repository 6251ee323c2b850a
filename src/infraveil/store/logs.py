"""Instance log files: `logs/SERVICE/N.log`, one per instance, one line per output line.

Each line is `TIMESTAMP STREAM TEXT`: a UTC timestamp of fixed width (so `--since` is a string
comparison), `out` for what the service wrote (stdout and stderr share one pipe, which keeps
their order — the order is what a person reads a crash by) and `ivl` for infraveil's own
start and exit markers.

A chatty service cannot fill the disk: a file that passes `max_bytes` is rotated once (to
`N.log.1`, replacing an older one), and only the logs of the newest `keep_instances`
instances of a service are kept.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 16 * 1024
"""Longer lines are cut into pieces of this size, so one line cannot hold up the log."""
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP_INSTANCES = 10
OUT = b"out"
MARK = b"ivl"
_TS_LEN = len("2026-11-21T05:14:00.123456Z")
_NAME = re.compile(r"(\d+)\.log\Z")


def timestamp(wall: float) -> str:
    """`2026-11-21T05:14:00.123456Z` for a time.time() value."""
    micro = round(wall * 1_000_000)
    seconds, micro = divmod(micro, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micro:06d}Z"


@dataclass(frozen=True)
class LogLine:
    time: str
    stream: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"time": self.time, "stream": self.stream, "text": self.text}


def parse_line(raw: bytes) -> LogLine:
    text = raw.rstrip(b"\n").decode("utf-8", errors="replace")
    if len(text) > _TS_LEN + 4 and text[_TS_LEN] == " " and text[_TS_LEN + 4] == " ":
        return LogLine(text[:_TS_LEN], text[_TS_LEN + 1 : _TS_LEN + 4], text[_TS_LEN + 5 :])
    return LogLine("", "out", text)


class InstanceLog:
    """Appends one instance's output to its log file, a line at a time, with timestamps."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._partial = b""
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size
        self.last_line = ""
        """The last non-empty line the service wrote: the first evidence of an exit."""

    def write(self, data: bytes, wall: float) -> None:
        """Append what the service wrote; an unfinished last line waits for its end."""
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        while len(self._partial) > MAX_LINE:  # an endless line is stored in pieces, as it comes
            lines.append(self._partial[:MAX_LINE])
            self._partial = self._partial[MAX_LINE:]
        self._append(OUT, lines, wall)

    def mark(self, text: str, wall: float) -> None:
        """Append infraveil's own marker (any unfinished line is closed first).

        A marker is one line: newlines in it (a `python -c` command) are written as `\\n`,
        so no part of it can be read back as the service's output.
        """
        self.flush(wall)
        one_line = text.replace("\r", "\\r").replace("\n", "\\n")
        self._append(MARK, [one_line.encode()], wall, remember=False)

    def flush(self, wall: float) -> None:
        if self._partial:
            partial, self._partial = self._partial, b""
            self._append(OUT, [partial], wall)

    def _append(
        self, stream: bytes, lines: list[bytes], wall: float, remember: bool = True
    ) -> None:
        if not lines:
            return
        prefix = timestamp(wall).encode() + b" " + stream + b" "
        pieces = []
        for line in lines:
            line = line.rstrip(b"\r")
            for start in range(0, max(len(line), 1), MAX_LINE):
                pieces.append(prefix + line[start : start + MAX_LINE] + b"\n")
        if remember:
            for line in reversed(lines):
                if line.strip():
                    self.last_line = line.rstrip(b"\r").decode("utf-8", errors="replace")[:500]
                    break
        blob = b"".join(pieces)
        # One unbuffered write per chunk: if the agent is killed, nothing read from the pipe is
        # left sitting in a user-space buffer.
        os.write(self._fd, blob)
        self._size += len(blob)
        if self._size > self._max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        """Keep the current file as N.log.1 and go on in a fresh N.log.

        Both renames are atomic and N.log never goes missing, so a reader (or `logs -f`)
        looking at it mid-rotation always finds a file.
        """
        old = self.path.with_name(self.path.name + ".1")
        link = self.path.with_name(self.path.name + ".1.tmp")
        fresh = self.path.with_name(self.path.name + ".new")
        _unlink_quietly(link)
        os.link(self.path, link)
        os.replace(link, old)
        fd = os.open(
            fresh, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640
        )
        os.replace(fresh, self.path)
        os.close(self._fd)
        self._fd = fd
        self._size = 0

    def close(self, wall: float) -> None:
        self.flush(wall)
        os.close(self._fd)


class LogFiles:
    """Where the instance logs of a state directory are, and how to read them back."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep_instances: int = DEFAULT_KEEP_INSTANCES,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.keep_instances = keep_instances

    def path(self, service: str, instance: int) -> Path:
        return self.root / service / f"{instance}.log"

    def open(self, service: str, instance: int) -> InstanceLog:
        (self.root / service).mkdir(parents=True, exist_ok=True)
        return InstanceLog(self.path(service, instance), self.max_bytes)

    def instances(self, service: str) -> list[int]:
        """Instance numbers that still have a log, oldest first."""
        try:
            names = os.listdir(self.root / service)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for n in names if (m := _NAME.match(n)))

    def prune(self, service: str) -> None:
        """Delete the logs of all but the newest `keep_instances` instances."""
        for number in self.instances(service)[: -self.keep_instances]:
            for suffix in ("", ".1"):
                try:
                    os.unlink(str(self.path(service, number)) + suffix)
                except FileNotFoundError:
                    pass

    def read(
        self, service: str, instance: int, *, tail: int | None = None, since: str | None = None
    ) -> list[LogLine]:
        """The lines of one instance, oldest first: all, the last `tail`, or those since a time."""
        reader = LogReader(self, service, instance)
        try:
            return reader.initial(tail=tail, since=since)
        finally:
            reader.close()


class LogReader:
    """Reads one instance's log from where it stands now on, through rotations (`logs -f`).

    It keeps the file open: when the writer rotates, the file it has becomes final (renamed
    to N.log.1, never written again), so the reader reads it to the end before it opens the
    new N.log. Lines are never skipped, neither at a rotation nor between the first read
    and the following ones.
    """

    def __init__(self, files: LogFiles, service: str, instance: int) -> None:
        self._path = files.path(service, instance)
        self._fd: int | None = None
        self._offset = 0
        self._open()

    def _open(self) -> None:
        try:
            self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._fd = None
        self._offset = 0

    def initial(self, *, tail: int | None = None, since: str | None = None) -> list[LogLine]:
        """The lines already written (all, the last `tail`, or since a time); `new()` goes on."""
        raw = self._complete_lines()
        rotated = self._path.with_name(self._path.name + ".1")
        if (tail is None or len(raw) < tail) and rotated.exists():
            older = rotated.read_bytes()
            if self._fd is None or os.stat(rotated).st_ino != os.fstat(self._fd).st_ino:
                raw = older.splitlines() + raw
        if tail is not None:
            raw = raw[-tail:] if tail else []
        lines = [parse_line(r) for r in raw]
        if since is not None:
            lines = [line for line in lines if line.time >= since]
        return lines

    def new(self) -> list[LogLine]:
        """The complete lines written since the last call."""
        if self._fd is None:
            self._open()
            if self._fd is None:
                return []
        raw = self._complete_lines()
        try:
            current = os.stat(self._path).st_ino
        except FileNotFoundError:
            current = None
        if current is not None and current != os.fstat(self._fd).st_ino:
            raw += self._complete_lines(final=True)  # rotated: ours is final, read it out
            os.close(self._fd)
            self._open()
            raw += self._complete_lines()
        return [parse_line(r) for r in raw]

    def _complete_lines(self, final: bool = False) -> list[bytes]:
        if self._fd is None:
            return []
        data = b""
        while chunk := os.pread(self._fd, 1 << 20, self._offset + len(data)):
            data += chunk
        end = len(data) if final else data.rfind(b"\n") + 1
        self._offset += end
        return data[:end].splitlines()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


TAIL_BYTES = 256 * 1024
"""How much of a log's end the diagnosis reads: a crash is explained by its last lines."""
COUNT_LINES_UP_TO = 128 * 1024 * 1024
"""Up to this size the lines before the tail are counted, so evidence gives real line numbers;
beyond it, reading the whole file would cost more than a quick answer allows."""


@dataclass(frozen=True)
class Tail:
    """The end of a file, as raw lines, and where they sit in it."""

    lines: list[bytes]
    first_number: int | None
    """1-based line number of lines[0] in the file; None when the file was too big to count."""
    truncated: bool
    """The file has more before these lines."""
    size: int


def read_tail(path: Path, max_bytes: int = TAIL_BYTES) -> Tail:
    """The last `max_bytes` of a file, cut at a line start, in bounded time and memory.

    OSError (not found, not readable) is the caller's to report.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start = max(0, size - max_bytes)
        f.seek(start)
        data = f.read(max_bytes)
        if start > 0:
            cut = data.find(b"\n")
            data = data[cut + 1 :] if cut >= 0 else b""
            start = size - len(data)
        first: int | None = 1
        if start > 0:
            first = _count_newlines(f, start) + 1 if size <= COUNT_LINES_UP_TO else None
    return Tail(data.splitlines(), first, start > 0, size)


def _count_newlines(f: BinaryIO, end: int) -> int:
    f.seek(0)
    count = 0
    left = end
    while left > 0:
        chunk = f.read(min(left, 1 << 20))
        if not chunk:
            break
        count += chunk.count(b"\n")
        left -= len(chunk)
    return count


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
