"""Instance log files: rotation keeps them bounded, prune keeps the newest instances, and
reading back (all, --tail, --since) gives exactly the lines that were written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infraveil.store.logs import (
    MAX_LINE,
    InstanceLog,
    LogFiles,
    LogReader,
    WriteTrouble,
    parse_line,
    timestamp,
)

T0 = 1_900_000_000.0  # a fixed wall clock: timestamps in the files are then known exactly


def _line(i: int) -> bytes:
    return b"message number %06d " % i + b"." * 20 + b"\n"


def test_rotation_keeps_two_bounded_files_and_the_newest_lines(tmp_path: Path) -> None:
    max_bytes = 4096
    logs = LogFiles(tmp_path, max_bytes=max_bytes)
    log = logs.open("svc", 3)
    n = 2000  # ~140 KB: dozens of rotations
    for i in range(n):
        log.write(_line(i), T0 + i)
    log.close(T0 + n)

    assert sorted(os.listdir(tmp_path / "svc")) == ["3.log", "3.log.1"]
    longest = len(timestamp(T0)) + len(" out ") + len(_line(0))
    for name in ("3.log", "3.log.1"):
        size = (tmp_path / "svc" / name).stat().st_size
        assert 0 < size <= max_bytes + longest, f"{name} is {size} bytes"

    numbers = [int(line.text.split()[2]) for line in logs.read("svc", 3)]
    assert numbers, "the rotated logs hold no lines"
    assert numbers == list(range(n - len(numbers), n)), "lines lost or reordered in rotation"
    # the rotated file holds a full file's worth, so about two files' worth is kept
    assert len(numbers) * longest > max_bytes


def test_rotation_bounds_big_writes_too(tmp_path: Path) -> None:
    """One write of a whole pipe chunk (64 KiB) may overshoot once, never grow without end."""
    max_bytes = 100_000
    log = InstanceLog(tmp_path / "1.log", max_bytes)
    chunk = b"".join(_line(i) for i in range(64 * 1024 // len(_line(0))))
    for round_ in range(40):  # ~2.6 MB
        log.write(chunk, T0 + round_)
    log.close(T0 + 40)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["1.log", "1.log.1"]
    overhead = len(chunk) + chunk.count(b"\n") * (len(timestamp(T0)) + 5)
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= max_bytes + overhead


def test_a_reopened_log_appends_and_counts_the_existing_size(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    first = InstanceLog(path, max_bytes=2000)
    for i in range(10):
        first.write(_line(i), T0)
    first.close(T0)
    size = path.stat().st_size
    second = InstanceLog(path, max_bytes=size + 100)  # already nearly full
    for i in range(10, 13):
        second.write(_line(i), T0)
    second.close(T0)
    assert (tmp_path / "1.log.1").exists(), "the size written before reopening was not counted"
    texts = [
        parse_line(raw).text
        for p in (tmp_path / "1.log.1", path)
        for raw in p.read_bytes().splitlines()
    ]
    assert [int(t.split()[2]) for t in texts] == list(range(13))


def test_partial_lines_markers_and_carriage_returns(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    log = logs.open("svc", 1)
    log.mark("starting instance 1: demo", T0)
    log.write(b"hel", T0 + 1)
    log.write(b"lo\r\nwor", T0 + 2)
    log.write(b"ld\n\n", T0 + 3)
    log.write(b"unfinished", T0 + 4)
    log.mark("instance 1 exited with code 1 after 4.0s", T0 + 5)
    log.close(T0 + 6)
    lines = logs.read("svc", 1)
    assert [(line.stream, line.text) for line in lines] == [
        ("ivl", "starting instance 1: demo"),
        ("out", "hello"),
        ("out", "world"),
        ("out", ""),
        ("out", "unfinished"),  # closed off by the marker, not glued to it
        ("ivl", "instance 1 exited with code 1 after 4.0s"),
    ]
    # a line is stamped when its first bytes arrive: they are in the file from then on
    assert lines[1].time == timestamp(T0 + 1)
    assert log.last_line == "unfinished"


def test_a_line_longer_than_max_line_is_cut_not_lost(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    log = logs.open("svc", 1)
    long = bytes(ord("a") + i % 26 for i in range(MAX_LINE * 2 + 1000))
    log.write(long[:5000], T0)
    log.write(long[5000:], T0)  # never a newline: the pending line must not grow forever
    log.write(b"\nnext\n", T0)
    log.close(T0)
    texts = [line.text for line in logs.read("svc", 1)]
    assert texts[-1] == "next"
    pieces = texts[:-1]
    assert all(len(p) <= MAX_LINE for p in pieces)
    assert "".join(pieces).encode() == long


def test_prune_keeps_only_the_newest_instances_with_their_rotations(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path, max_bytes=200, keep_instances=3)
    for n in range(1, 8):
        log = logs.open("svc", n)
        for i in range(20):  # enough to rotate every instance's log
            log.write(_line(i), T0)
        log.close(T0)
    assert logs.instances("svc") == list(range(1, 8))
    logs.prune("svc")
    assert logs.instances("svc") == [5, 6, 7]
    assert sorted(os.listdir(tmp_path / "svc")) == [
        "5.log",
        "5.log.1",
        "6.log",
        "6.log.1",
        "7.log",
        "7.log.1",
    ]
    logs.prune("svc")  # idempotent
    assert logs.instances("svc") == [5, 6, 7]


def test_prune_orders_instances_numerically(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path, keep_instances=2)
    for n in (9, 10, 11, 100):
        logs.open("svc", n).close(T0)
    (tmp_path / "svc" / "notes.txt").write_text("not a log")
    logs.prune("svc")
    assert logs.instances("svc") == [11, 100]
    assert (tmp_path / "svc" / "notes.txt").exists()


def test_instances_of_an_unknown_service_is_empty(tmp_path: Path) -> None:
    assert LogFiles(tmp_path).instances("nobody") == []
    LogFiles(tmp_path).prune("nobody")  # nothing to do, no error


@pytest.fixture
def rotated(tmp_path: Path) -> tuple[LogFiles, list[str]]:
    """Instance 1 of svc: 3000 lines, one per second from T0, over 3.log.1 and 3.log."""
    logs = LogFiles(tmp_path, max_bytes=100_000)
    log = logs.open("svc", 1)
    for i in range(3000):
        log.write(_line(i), T0 + i)
    log.close(T0 + 3000)
    assert (tmp_path / "svc" / "1.log.1").exists()
    return logs, [_line(i).decode().rstrip("\n") for i in range(3000)]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 100, 1000, 1500, 2999, 3000, 5000])
def test_tail_gives_the_last_n_lines_across_the_rotation(
    rotated: tuple[LogFiles, list[str]], n: int
) -> None:
    logs, written = rotated
    everything = [line.text for line in logs.read("svc", 1)]
    assert everything == written[-len(everything) :]
    tail = [line.text for line in logs.read("svc", 1, tail=n)]
    assert tail == (everything[-n:] if n else [])


def test_since_gives_lines_at_or_after_a_time(rotated: tuple[LogFiles, list[str]]) -> None:
    logs, written = rotated
    lines = logs.read("svc", 1, since=timestamp(T0 + 2990))
    assert [line.text for line in lines] == written[2990:]
    assert logs.read("svc", 1, since=timestamp(T0 + 5000)) == []
    half = logs.read("svc", 1, since=timestamp(T0 + 2990.5))
    assert [line.text for line in half] == written[2991:]


def test_tail_and_since_together(rotated: tuple[LogFiles, list[str]]) -> None:
    logs, written = rotated
    lines = logs.read("svc", 1, tail=5, since=timestamp(T0 + 2997))
    assert [line.text for line in lines] == written[2997:]


def test_timestamps_sort_as_strings(tmp_path: Path) -> None:
    stamps = [timestamp(T0 + d) for d in (0, 0.000001, 0.5, 1, 59.999999, 60, 3600, 86400)]
    assert stamps == sorted(stamps)
    assert len({len(s) for s in stamps}) == 1
    assert timestamp(0.0) == "1970-01-01T00:00:00.000000Z"


def test_a_marker_with_newlines_stays_a_marker(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    log = logs.open("svc", 1)
    log.mark("starting instance 1: python3 -c 'import time\nprint(1)\ntime.sleep(9)'", T0)
    log.write(b"real output\n", T0 + 1)
    log.close(T0 + 2)
    lines = logs.read("svc", 1)
    assert [line.stream for line in lines] == ["ivl", "out"]
    assert all(line.time for line in lines), "a line without timestamp is dropped by --since"
    assert logs.read("svc", 1, since=timestamp(T0)) == lines


def test_a_long_unfinished_line_ended_later_gains_no_empty_line(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    log = logs.open("svc", 1)
    log.write(b"x" * (2 * MAX_LINE + 100), T0)  # no newline yet: full pieces go out, 100 wait
    log.write(b"\nnext\n", T0 + 1)
    log.close(T0 + 2)
    texts = [line.text for line in logs.read("svc", 1)]
    assert texts == ["x" * MAX_LINE, "x" * MAX_LINE, "x" * 100, "next"]


def test_a_reader_follows_through_a_rotation_without_losing_a_line(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path, max_bytes=4096)  # a rotation every ~45 lines
    log = logs.open("svc", 1)
    log.write(b"".join(_line(i) for i in range(10)), T0)
    reader = LogReader(logs, "svc", 1)
    seen = [line.text for line in reader.initial()]
    for i in range(10, 400):
        log.write(_line(i), T0 + i)
        if i % 37 == 0:  # read now and then, as `logs -f` polls: at least once per rotation
            seen += [line.text for line in reader.new()]
    seen += [line.text for line in reader.new()]
    reader.close()
    log.close(T0 + 500)
    assert (tmp_path / "svc" / "1.log.1").exists(), "no rotation happened"
    assert seen == [_line(i).decode().rstrip("\n") for i in range(400)]


def test_every_byte_written_is_in_the_file_before_the_next_write(tmp_path: Path) -> None:
    """An unfinished line is in the file at once: an agent killed now has lost none of it."""
    path = tmp_path / "1.log"
    log = InstanceLog(path)
    log.write(b"one\ntw", T0)
    assert path.read_bytes().endswith(b" out one\n" + timestamp(T0).encode() + b" out tw")
    log.write(b"o\nthr", T0 + 1)
    assert path.read_bytes().endswith(b" out two\n" + timestamp(T0 + 1).encode() + b" out thr")
    # readers serve finished lines only: the unfinished one is not shown cut short
    reader = LogReader(LogFiles(tmp_path.parent), tmp_path.name, 1)
    assert [line.text for line in reader.initial()] == ["one", "two"]
    reader.close()
    log.close(T0 + 2)


def test_the_next_agent_goes_on_with_a_line_the_killed_one_left_unfinished(
    tmp_path: Path,
) -> None:
    logs = LogFiles(tmp_path)
    first = logs.open("svc", 1)  # the killed agent's: it never closes its log
    first.write(b"before\nhalf a li", T0)
    second = logs.open("svc", 1)  # the next agent's, adopting the instance
    second.mark("instance 1 adopted by a new agent (pid 7)", T0 + 1, cut=False)
    second.write(b"ne\nafter\n", T0 + 2)
    lines = logs.read("svc", 1)
    assert [(line.stream, line.text) for line in lines] == [
        ("out", "before"),
        ("out", "half a line"),  # one line, stamped when it began
        ("ivl", "instance 1 adopted by a new agent (pid 7)"),  # after it, not inside it
        ("out", "after"),
    ]
    assert [line.time for line in lines] == [timestamp(T0)] * 2 + [timestamp(T0 + 1)] + [
        timestamp(T0 + 2)
    ]
    assert second.last_line == "after"
    second.close(T0 + 3)
    first.close(T0 + 3)


def test_an_adoption_marker_waits_only_for_the_end_of_the_line(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    logs.open("svc", 1).write(b"x" * (MAX_LINE - 1), T0)
    log = logs.open("svc", 1)
    log.mark("adopted", T0 + 1, cut=False)
    log.write(b"yy", T0 + 2)  # the line reaches MAX_LINE and is cut: the marker goes there
    log.mark("instance 1 exited with code 0 after 2s", T0 + 3)
    log.close(T0 + 3)
    assert [(line.stream, line.text) for line in logs.read("svc", 1)] == [
        ("out", "x" * (MAX_LINE - 1) + "y"),
        ("ivl", "adopted"),
        ("out", "y"),
        ("ivl", "instance 1 exited with code 0 after 2s"),
    ]


def test_a_torn_marker_left_by_a_killed_agent_is_ended_not_continued(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    path.write_bytes(timestamp(T0).encode() + b" ivl starting inst")  # killed mid-write
    log = InstanceLog(path)
    log.write(b"output\n", T0 + 1)
    log.close(T0 + 1)
    assert [
        (line.stream, line.text) for line in map(parse_line, path.read_bytes().splitlines())
    ] == [
        ("ivl", "starting inst"),
        ("out", "output"),
    ]


def test_a_log_that_cannot_be_written_drops_and_counts_instead_of_raising(
    tmp_path: Path,
) -> None:
    """A write that fails (here: the file is a directory, so it cannot even be opened) must not
    raise into the agent's handling of a start or an exit; the gap is noted once it works."""
    trouble = WriteTrouble()
    path = tmp_path / "1.log"
    path.mkdir()
    log = InstanceLog(path, trouble=trouble)  # no exception
    log.mark("starting instance 1: demo", T0)
    log.write(b"lost line\n", T0 + 1)
    log.write(b"lost too", T0 + 2)
    assert trouble.error == f"logs: cannot write {path}: Is a directory"
    assert trouble.dropped > len(b"lost line\nlost too")  # with their timestamps
    dropped = trouble.dropped
    assert log.retry(T0 + 3) is False

    path.rmdir()  # writable again
    assert log.retry(T0 + 4) is True
    assert trouble.error == "" and trouble.dropped == dropped  # the episode's total stays
    log.write(b"kept\n", T0 + 5)
    log.close(T0 + 6)
    lines = [parse_line(raw) for raw in path.read_bytes().splitlines()]
    assert [(line.stream, line.text) for line in lines] == [
        (
            "ivl",
            f"{dropped} bytes of output could not be written here (Is a directory); they are lost",
        ),
        ("out", "kept"),
    ]


def test_writes_recover_once_every_failing_log_has_written(tmp_path: Path) -> None:
    logs = LogFiles(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.log").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "1.log").mkdir()
    a, b = logs.open("a", 1), logs.open("b", 1)
    assert logs.trouble.error.startswith("logs: cannot write ")
    (tmp_path / "a" / "1.log").rmdir()
    assert a.retry(T0)
    assert logs.trouble.error, "b still fails"
    b.close(T0)  # an instance ends while its log fails: that is no recovery
    assert logs.trouble.error
    logs.open("c", 1).write(b"ok\n", T0)  # a write that works is
    assert logs.trouble.error == ""
    a.close(T0)


def test_closing_ends_an_ended_instances_line_once_and_leaves_a_running_ones_open(
    tmp_path: Path,
) -> None:
    logs = LogFiles(tmp_path)
    ended = logs.open("svc", 1)
    ended.write(b"one\ntwo, no newline", T0)
    ended.close(T0 + 1)  # the instance ended: its line is finished as it is
    assert (tmp_path / "svc" / "1.log").read_bytes().endswith(b" out two, no newline\n")
    assert [line.text for line in logs.read("svc", 1)] == ["one", "two, no newline"]

    running = logs.open("svc", 2)
    running.write(b"half", T0)
    running.close(T0 + 1, ended=False)  # the agent leaves; the next one goes on with the line
    assert (tmp_path / "svc" / "2.log").read_bytes().endswith(b" out half")
    going_on = logs.open("svc", 2)
    going_on.write(b" and the rest\n", T0 + 2)
    going_on.close(T0 + 3)
    assert [line.text for line in logs.read("svc", 2)] == ["half and the rest"]
