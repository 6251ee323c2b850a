"""Instance log files: rotation keeps them bounded, prune keeps the newest instances, and
reading back (all, --tail, --since) gives exactly the lines that were written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infraveil.store.logs import MAX_LINE, InstanceLog, LogFiles, LogReader, parse_line, timestamp

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
    assert lines[1].time == timestamp(T0 + 2)  # a line is stamped when its end arrives
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
