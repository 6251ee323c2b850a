"""Following: `events -w`, `logs -f` across a restart, and a service that floods its output."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from e2e_support import Infraveil, wait_for

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
COUNTER = """\
import itertools, time
for i in itertools.count():
    print(f"line {i}", flush=True)
    time.sleep(0.05)
"""


def test_events_watch_streams_a_restart_as_it_happens(infraveil: Infraveil) -> None:
    infraveil.up(
        {"web": {"command": infraveil.script("counter.py", COUNTER), "stop_timeout": "1s"}}
    )
    watch = infraveil.follow("events", "web", "-w", "-o", "json")
    text = infraveil.follow("events", "-w")  # every service, for people
    # the past events come first: once they are there, the stream is live
    watch.wait_for_line(lambda line: '"Running"' in line, 10, "the past Running event")
    text.wait_for_line(lambda line: "AgentStarted" in line, 10, "the past AgentStarted event")
    past = len(watch.lines)

    infraveil.ok("restart", "web")
    watch.wait_for_line(
        lambda line: json.loads(line)["message"].startswith("instance 2 started"),
        10,
        "the Started event of instance 2",
    )
    assert watch.proc.poll() is None, "events -w ended by itself"
    rows = [json.loads(line) for line in watch.lines]
    assert all(row["service"] == "web" for row in rows)
    new = [row["reason"] for row in rows[past:]]
    assert new[: new.index("Started") + 1] == ["Stopping", "Stopped", "Started"]
    ids = [row["id"] for row in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), "events repeated or out of order"
    [started] = [row for row in rows[past:] if row["reason"] == "Started"]
    assert started["instance"] == 2
    assert started["message"] == f"instance 2 started: pid {infraveil.api_service('web')['pid']}"

    line = text.wait_for_line(lambda line: " Stopped " in line, 10, "the Stopped event as text")
    assert re.match(r"\d\d:\d\d:\d\d\s+web\s+Stopped\s+killed by SIGTERM", line), line
    text.wait_for_line(lambda line: "instance 2 started" in line, 10, "the Started event as text")


def test_logs_follow_continues_into_the_next_instance(infraveil: Infraveil) -> None:
    infraveil.up(
        {"counter": {"command": infraveil.script("counter.py", COUNTER), "stop_timeout": "1s"}}
    )
    follow = infraveil.follow("logs", "counter", "-f")
    follow.wait_for_line(lambda line: line == "line 5", 10, "line 5 of instance 1")

    infraveil.ok("restart", "counter")
    follow.wait_for_line(
        lambda line: line.startswith("[infraveil] starting instance 2"), 10, "instance 2's start"
    )
    wait_for(
        lambda: "line 5" in follow.lines[_index_of_start(follow.lines, 2) :],
        10,
        lambda: f"line 5 of instance 2; got {follow.lines[-10:]}",
    )
    assert follow.proc.poll() is None, "logs -f ended at the restart"

    lines = follow.lines
    second = _index_of_start(lines, 2)
    first, after = lines[:second], lines[second:]
    assert first[0].startswith("[infraveil] starting instance 1: ")
    exit_marker = first[-1]
    assert exit_marker.startswith("[infraveil] instance 1 killed by SIGTERM after "), first[-3:]
    numbers = [int(line.split()[1]) for line in first[1:-1]]
    assert numbers == list(range(len(numbers))), "lines of instance 1 lost, repeated or reordered"
    assert len(numbers) >= 6
    numbers = [int(line.split()[1]) for line in after[1:] if line.startswith("line ")]
    assert numbers == list(range(len(numbers)))
    assert len(numbers) >= 6

    # the same log, read back in pieces
    tail = infraveil.ok("logs", "counter", "--tail", "3").stdout.splitlines()
    assert len(tail) == 3
    first_number = int(tail[0].split()[1])
    assert tail == [f"line {first_number + i}" for i in range(3)]
    assert first_number >= 5
    previous = infraveil.ok("logs", "counter", "--previous").stdout.splitlines()
    assert previous == first  # what -f showed of instance 1 is exactly that instance's log
    stamped = infraveil.ok("logs", "counter", "-t", "--since", "1h").stdout.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z ", line) for line in stamped)
    assert stamped[0].endswith("Z [infraveil] starting instance 2: " + after[0].split(": ", 1)[1])


def _index_of_start(lines: list[str], instance: int) -> int:
    prefix = f"[infraveil] starting instance {instance}:"
    return next((i for i, line in enumerate(lines) if line.startswith(prefix)), len(lines))


def test_a_flooding_service_neither_blocks_the_agent_nor_fills_the_disk(
    infraveil: Infraveil,
) -> None:
    flood = "import sys\nline = 'x' * 200 + '\\n'\nwhile True:\n    sys.stdout.write(line)\n"
    infraveil.up({"flood": {"command": infraveil.script("flood.py", flood), "stop_timeout": "1s"}})
    logs = infraveil.state_dir / "logs" / "flood"

    def size() -> int:
        total = 0
        for entry in os.scandir(logs):
            try:
                total += entry.stat().st_size
            except FileNotFoundError:  # rotated away between listing and stat
                pass
        return total

    def progress() -> tuple[int, int]:
        st = (logs / "1.log").stat()
        return st.st_ino, st.st_size  # a new inode: it was rotated, so written to

    before = progress()
    for _ in range(5):
        started = time.monotonic()
        row = infraveil.service("flood")
        took = time.monotonic() - started
        assert took < 2, f"status took {took:.2f}s while a service floods"
        assert row["state"] == "running"
    assert progress() != before, "the service was not flooding while status was asked"

    rotated = logs / "1.log.1"
    wait_for(rotated.exists, 60, "the first rotation (10 MiB written)")
    first_inode = rotated.stat().st_ino
    wait_for(
        lambda: rotated.exists() and rotated.stat().st_ino != first_inode,
        60,
        "a second rotation (~20 MiB written)",
    )
    # ~20 MiB have gone through: what is kept is two files of at most 10 MiB (+ one chunk)
    slack = 1 * MiB
    assert sorted(os.listdir(logs)) == ["1.log", "1.log.1"]
    assert rotated.stat().st_size <= 10 * MiB + slack
    assert (logs / "1.log").stat().st_size <= 10 * MiB + slack
    assert size() <= 2 * 10 * MiB + slack
    assert infraveil.api_service("flood")["state"] == "running"


BIG_WRITER = """\
import os, sys, time
while not os.path.exists("go"):
    time.sleep(0.02)
pad = "y" * 1000
for i in range({n}):
    sys.stdout.write(f"{{i:08d}} {{pad}}\\n")
    if i % 100 == 0:
        sys.stdout.flush()
        time.sleep(0.01)
print("done", flush=True)
time.sleep(1000)
"""


def test_logs_follow_loses_nothing_across_a_rotation(infraveil: Infraveil) -> None:
    n = 12_000  # ~12 MiB of log: one rotation at 10 MiB
    writer = infraveil.script("big.py", BIG_WRITER.format(n=n))
    infraveil.up({"big": {"command": writer, "stop_timeout": "1s"}})
    follow = infraveil.follow("logs", "big", "-f")
    follow.wait_for_line(lambda line: "starting instance 1" in line, 10, "the start marker")
    (infraveil.workdir / "go").touch()
    follow.wait_for_line(lambda line: line == "done", 60, "the writer's last line")
    assert (infraveil.state_dir / "logs" / "big" / "1.log.1").exists(), "no rotation happened"
    numbers = [int(line.split()[0]) for line in follow.lines if line[:1].isdigit()]
    missing = sorted(set(range(n)) - set(numbers))
    assert not missing, f"{len(missing)} lines lost, from {missing[0]} to {missing[-1]}"
    assert numbers == list(range(n))


STEADY_WRITER = """\
import sys, time
pad = "z" * 300
for i in range({n}):
    sys.stdout.write(f"{{i:08d}} {{pad}}\\n")
    if i % 20 == 0:
        sys.stdout.flush()
        time.sleep(0.002)
print("done", flush=True)
time.sleep(1000)
"""


def test_logs_follow_started_mid_flow_loses_nothing(infraveil: Infraveil) -> None:
    n = 20_000  # ~7 MiB written at ~3 MiB/s: no rotation
    writer = infraveil.script("steady.py", STEADY_WRITER.format(n=n))
    infraveil.up({"steady": {"command": writer, "stop_timeout": "1s"}})
    log = infraveil.state_dir / "logs" / "steady" / "1.log"
    wait_for(lambda: log.stat().st_size > 2 * MiB, 20, "2 MiB of log before following")
    follow = infraveil.follow("logs", "steady", "-f")
    follow.wait_for_line(lambda line: line == "done", 60, "the writer's last line")
    assert not (log.parent / "1.log.1").exists(), "rotated: this test is about something else"
    numbers = [int(line.split()[0]) for line in follow.lines if line[:1].isdigit()]
    missing = sorted(set(range(n)) - set(numbers))
    assert not missing, f"{len(missing)} lines lost, from {missing[0]} to {missing[-1]}"
    assert numbers == list(range(n))
