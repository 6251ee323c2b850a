"""Instance log files: `logs/SERVICE/N.log`, one per instance, one line per output line.

Each line is `TIMESTAMP STREAM TEXT`: a UTC timestamp of fixed width (so `--since` is a string
comparison), `out` for what the service wrote (stdout and stderr share one pipe, which keeps
their order — the order is what a person reads a crash by) and `ivl` for infraveil's own
start and exit markers.

A line is stamped when its first bytes arrive, and written at once, finished or not: what the
agent has read from a service is in the file before it reads more, so a kill -9 of the agent
loses none of it (the next agent goes on with an unfinished line).

A chatty service cannot fill the disk: a file that passes `max_bytes` is rotated once (to
`N.log.1`, replacing an older one), and only the logs of the newest `keep_instances`
instances of a service are kept. A disk that is full anyway stops no service: output that
cannot be written is dropped and counted (`WriteTrouble`), and a note marks the gap.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 16 * 1024
"""Longer lines are cut into pieces of this size, so one line cannot hold up the log."""
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP_INSTANCES = 10
OUT = b"out"
MARK = b"ivl"
_TS_LEN = len("2026-11-21T05:14:00.123456Z")
_PREFIX_LEN = _TS_LEN + 5
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


@dataclass
class WriteTrouble:
    """Log writes that fail, shared by the logs of one state directory.

    A log that cannot be written (a full disk, an I/O error) must not stop a service, nor the
    agent's handling of its exit: what cannot be written is dropped and counted here, never
    raised, and the agent reports it. Output is not kept in memory meanwhile: a service that
    writes on would fill it.
    """

    error: str = ""
    """Why log writes fail now ("" while they work): the first failure's words."""
    dropped: int = 0
    """Bytes of log output dropped since writes began to fail (the last time they did)."""
    _failing: set[Path] = field(default_factory=set)
    """Open logs whose last write failed."""

    def failed(self, path: Path, e: OSError, dropped: int) -> None:
        if not self.error:  # (the first words stay until it recovers: one report, not a stream)
            self.error = f"logs: cannot write {path}: {e.strerror or e}"
            self.dropped = 0
        self.dropped += dropped
        self._failing.add(path)

    def worked(self, path: Path) -> None:
        """A write to `path` worked: writes recover once every failing log has written again."""
        self._failing.discard(path)
        if not self._failing:
            self.error = ""

    def closed(self, path: Path) -> None:
        """A failing log that closes has not recovered: the next write that works says so."""
        self._failing.discard(path)


class InstanceLog:
    """Appends one instance's output to its log file, with timestamps, as it comes.

    Every byte read from the service reaches the file before the next read: an unfinished
    line is written at once (stamped when its first bytes arrive) and goes on with the next
    write, so an agent killed at any moment loses nothing it read. The next agent reopens the
    file and goes on with that line.
    """

    def __init__(
        self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, trouble: WriteTrouble | None = None
    ) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self.trouble = trouble if trouble is not None else WriteTrouble()
        self._fd: int | None = None
        self._size = 0
        self._in_line = False
        """The file ends in an `out` line this log goes on with."""
        self._line_len = 0
        self._current = b""
        """The text of that line so far (at most MAX_LINE bytes)."""
        self._mid_line = False
        """The file's last byte is not a newline."""
        self._held: list[bytes] = []
        """Markers that wait for the end of the line the service is writing."""
        self._dropped = 0
        """Bytes not written since this log last wrote (a note in the file marks the gap)."""
        self._why = ""
        self.last_line = ""
        """The last non-empty line the service wrote: the first evidence of an exit."""
        try:
            self._open()
        except OSError as e:
            self._failed(e, 0)

    def _open(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._fd = fd
        self._size = os.fstat(fd).st_size
        if self._size == 0:
            return
        start = max(0, self._size - (MAX_LINE + _PREFIX_LEN + 1))
        tail = os.pread(fd, self._size - start, start)
        if tail.endswith(b"\n"):
            return
        # an earlier agent wrote part of a line (and was killed): go on with it
        self._mid_line = True
        cut = tail.rfind(b"\n")
        if cut < 0 and start > 0:
            return  # no line start in sight: end that line before writing
        last = tail[cut + 1 :]
        if len(last) >= _PREFIX_LEN and last[_TS_LEN:_PREFIX_LEN] == b" " + OUT + b" ":
            self._in_line = True
            self._current = last[_PREFIX_LEN:]
            self._line_len = len(self._current)

    def write(self, data: bytes, wall: float) -> None:
        """Append what the service wrote, an unfinished last line included."""
        if not data:
            return
        preamble = self._preamble(wall)
        prefix = timestamp(wall).encode() + b" " + OUT + b" "
        out: list[bytes] = []
        parts = data.split(b"\n")
        for i, part in enumerate(parts):
            ends = i < len(parts) - 1
            if ends:
                part = part.rstrip(b"\r")
            while part:
                if self._in_line and self._line_len >= MAX_LINE:
                    self._end_line(out)  # an endless line is stored in pieces, as it comes
                if not self._in_line:
                    self._start_line(out, prefix)
                piece = part[: MAX_LINE - self._line_len]
                part = part[len(piece) :]
                out.append(piece)
                self._line_len += len(piece)
                self._current += piece
            if ends:
                if not self._in_line:
                    self._start_line(out, prefix)
                self._end_line(out)
        self._write(preamble, b"".join(out))

    def mark(self, text: str, wall: float, *, cut: bool = True) -> None:
        """Append infraveil's own marker.

        An unfinished line of the service's is ended first; with `cut=False` (a marker that
        is news, not an end: an adoption) the marker waits for that line's end instead, so
        the line is not cut in two. A marker is one line: newlines in it (a `python -c`
        command) are written as `\\n`, so no part of it can be read back as output.
        """
        preamble = self._preamble(wall)
        one_line = text.replace("\r", "\\r").replace("\n", "\\n")
        line = timestamp(wall).encode() + b" " + MARK + b" " + one_line.encode() + b"\n"
        if self._in_line and not cut:
            self._held.append(line)
            self._write(preamble, b"")
            return
        out: list[bytes] = []
        if self._in_line:
            self._end_line(out)
        out.append(line)
        self._write(preamble, b"".join(out))

    def position(self) -> bytes:
        """Where the file stands before the next chunk of output (its inode and size): what a
        `Spool` records, so that a chunk a killed agent may have written in part is written
        again from there (`restore_position`). A rotation that is due happens now, so that
        none happens inside the chunk."""
        if self._fd is None:
            return b""
        if self._size > self._max_bytes and not self._mid_line:
            self._rotate()
        try:
            return f"{os.fstat(self._fd).st_ino} {self._size}".encode()
        except OSError:
            return b""

    def retry(self, wall: float) -> bool:
        """Try again to write to a log whose writes failed (its note of the gap, or just to
        open it); True once it works. A quiet service's log recovers this way too."""
        if self._dropped or self._fd is None:
            self._write(self._preamble(wall), b"")
        return not self._dropped and self._fd is not None

    def _start_line(self, out: list[bytes], prefix: bytes) -> None:
        out.append(prefix)
        self._in_line = True
        self._line_len = 0
        self._current = b""

    def _end_line(self, out: list[bytes]) -> None:
        out.append(b"\n")
        if self._current.strip():
            self.last_line = self._current.rstrip(b"\r").decode("utf-8", errors="replace")[:500]
        self._in_line = False
        self._current = b""
        out.extend(self._held)
        self._held.clear()

    def _preamble(self, wall: float) -> bytes:
        """What goes before the next bytes: the end of a line the file was left in (a kill,
        a failed write) that cannot go on, and a note where output was dropped."""
        pieces = []
        if self._dropped:
            self._in_line = False  # what was dropped ends the line: the rest is a new one
            self._current = b""
            if self._mid_line:
                pieces.append(b"\n")
            note = (
                f"{self._dropped} bytes of output could not be written here ({self._why});"
                " they are lost"
            )
            pieces.append(timestamp(wall).encode() + b" " + MARK + b" " + note.encode() + b"\n")
        elif self._mid_line and not self._in_line:
            pieces.append(b"\n")
        return b"".join(pieces)

    def _write(self, preamble: bytes, body: bytes) -> None:
        """Write, rotating at a line's end when the file is full; never raise: a write that
        fails is counted as dropped (the gap is noted in the file once writes work again)."""
        blob = preamble + body
        if not blob and self._fd is not None:
            return
        cut = blob.rfind(b"\n") + 1
        if cut == 0 and self._mid_line:
            cut = len(blob)  # no line ends here: no rotation either
        written = 0
        try:
            if self._fd is None:
                self._open()
            for piece in (blob[:cut], blob[cut:]):
                if self._size > self._max_bytes and not self._mid_line:
                    self._rotate()
                # one unbuffered write (a short one on a filling disk is carried on)
                while piece:
                    assert self._fd is not None
                    n = os.write(self._fd, piece)
                    written += n
                    self._size += n
                    self._mid_line = piece[n - 1 : n] != b"\n"
                    piece = piece[n:]
        except OSError as e:
            self._failed(e, min(len(blob) - written, len(body)))
            return
        if self._dropped:
            self._dropped = 0
            self._why = ""
        self.trouble.worked(self.path)

    def _failed(self, e: OSError, dropped: int) -> None:
        self._dropped += dropped
        self._why = self._why or (e.strerror or str(e))
        self.trouble.failed(self.path, e, dropped)

    def _rotate(self) -> None:
        """Keep the current file as N.log.1 and go on in a fresh N.log.

        Both renames are atomic and N.log never goes missing, so a reader (or `logs -f`)
        looking at it mid-rotation always finds a file. It happens only where a line ends, so
        no line is split over the two files. One that fails is tried again after a later line.
        """
        assert self._fd is not None
        old = self.path.with_name(self.path.name + ".1")
        link = self.path.with_name(self.path.name + ".1.tmp")
        fresh = self.path.with_name(self.path.name + ".new")
        try:
            _unlink_quietly(link)
            os.link(self.path, link)
            os.replace(link, old)
            fd = os.open(
                fresh, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640
            )
        except OSError:
            return
        try:
            os.replace(fresh, self.path)
        except OSError:
            os.close(fd)
            return
        os.close(self._fd)
        self._fd = fd
        self._size = 0

    def close(self, wall: float, *, ended: bool = True) -> None:
        """Let go of the file, ending an unfinished line of an instance that has `ended`.

        `ended=False` (the agent leaves, its services run on): the line stays unfinished, and
        the next agent goes on with it. A marker held for its end is news of this agent's, and
        goes with it.
        """
        if ended and self._in_line:
            preamble = self._preamble(wall)  # (before the line ends: it looks at where it is)
            out: list[bytes] = []
            if self._in_line:
                self._end_line(out)
            self._write(preamble, b"".join(out))
        self.trouble.closed(self.path)
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None


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
        self.trouble = WriteTrouble()

    def path(self, service: str, instance: int) -> Path:
        return self.root / service / f"{instance}.log"

    def open(self, service: str, instance: int) -> InstanceLog:
        """The log of an instance, appended to; never raises (see `WriteTrouble`)."""
        try:
            (self.root / service).mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # the log cannot be opened either, and says why
        return InstanceLog(self.path(service, instance), self.max_bytes, self.trouble)

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
                except OSError:  # gone already, or a disk that fails: tried again next time
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


def restore_position(path: Path, mark: bytes) -> bool:
    """Cut the log at `path` back to `mark` (`InstanceLog.position()` before the chunk a killed
    agent was writing), so that chunk is written again whole; True if it did.

    False when the mark does not fit the file (none was taken, or the file is another since):
    the chunk is then written after what is there — nothing is lost, a part may show twice.
    """
    try:
        inode, size = (int(x) for x in mark.split())
        info = os.stat(path)
        if info.st_ino != inode or info.st_size < size:
            return False
        os.truncate(path, size)
    except (ValueError, OSError):
        return False
    return True
