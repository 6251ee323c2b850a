"""Output capture through the instance FIFO, wired exactly as daemon/supervisor.py wires it.

make_fifo + FifoReader feed an InstanceLog while the child runs; when the exit is observed the
reader is drained before anything else, then closed, then the log is closed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from infraveil.runtime.capture import FifoReader, Spool
from infraveil.runtime.processes import Exit, ExitWatcher, make_fifo, open_fifo_reader
from infraveil.store.logs import InstanceLog, LogFiles, restore_position

# stdout and stderr alternate line by line with unbuffered writes, then a burst that is still
# in the pipe when the process ends, then a last line with no newline, then the exit.
INTERLEAVED = """
import os
for i in range({n}):
    os.write(1 if i % 2 == 0 else 2, b"line %d from %s\\n" % (i, b"out" if i % 2 == 0 else b"err"))
os.write(1, b"".join(b"burst %d\\n" % i for i in range({burst})))
os.write(2, b"the last words, no newline")
os._exit(5)  # at once: no interpreter shutdown that would give the reader time to catch up
"""


def _expected(n: int, burst: int) -> list[str]:
    return (
        [f"line {i} from {'out' if i % 2 == 0 else 'err'}" for i in range(n)]
        + [f"burst {i}" for i in range(burst)]
        + ["the last words, no newline"]
    )


def _capture(children, watch_exit, tmp_path: Path, argv: list[str]) -> tuple[Exit, Path]:
    """Run `argv` to its end with its output captured into logs/svc/1.log; the exit and path."""
    logs = LogFiles(tmp_path / "logs")

    async def main() -> Exit:
        loop = asyncio.get_running_loop()
        fifo = str(tmp_path / "svc.1.pipe")
        rfd = make_fifo(fifo)
        log = logs.open("svc", 1)
        spool = Spool(str(tmp_path / "svc.1.spool"))
        reader = FifoReader(
            loop, rfd, lambda data: log.write(data, time.time()), spool, log.position
        )
        watcher = ExitWatcher(loop)
        try:
            child = children.spawn(children.launch(argv, fifo=fifo))
            exit = await asyncio.wait_for(await watch_exit(watcher, child), 30)
            reader.drain()  # what the supervisor does first when an exit is observed
        finally:
            reader.close()
            watcher.close()
            log.close(time.time())
            os.unlink(fifo)
        return exit

    return asyncio.run(main()), logs.path("svc", 1)


def test_all_output_reaches_the_log_in_order(children, watch_exit, tmp_path: Path) -> None:
    n, burst = 2000, 60_000  # ~700 KB burst: in the pipe, unread, at the moment of the exit
    exit, _ = _capture(
        children, watch_exit, tmp_path, [sys.executable, "-c", INTERLEAVED.format(n=n, burst=burst)]
    )
    assert exit.status.code == 5
    lines = LogFiles(tmp_path / "logs").read("svc", 1)
    assert [line.text for line in lines] == _expected(n, burst)
    assert {line.stream for line in lines} == {"out"}
    assert all(line.time.endswith("Z") and len(line.time) == 27 for line in lines)


def test_output_larger_than_the_pipe_is_read_while_the_child_runs(
    children, watch_exit, tmp_path: Path
) -> None:
    """3 MiB is more than the 1 MiB pipe: the child only ends if the reader keeps up."""
    n = 40_000  # lines of ~80 bytes
    code = (
        "import sys\n"
        f"for i in range({n}):\n"
        "    sys.stdout.write('%07d ' % i + 'x' * 72 + '\\n')\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('done')\n"
    )
    exit, _ = _capture(children, watch_exit, tmp_path, [sys.executable, "-c", code])
    assert exit.status.code == 0
    texts = [line.text for line in LogFiles(tmp_path / "logs").read("svc", 1)]
    assert len(texts) == n + 1
    assert texts[-1] == "done"
    assert [int(t.split()[0]) for t in texts[:-1]] == list(range(n))


def test_output_of_a_killed_child_is_kept(
    children, watch_exit, wait_for_async, tmp_path: Path
) -> None:
    """What a process wrote before SIGKILL is in the log, with a partial line closed off."""
    logs = LogFiles(tmp_path / "logs")
    code = "import os, time\nos.write(1, b'ready\\nhalf a line')\ntime.sleep(1000)\n"

    async def main() -> Exit:
        loop = asyncio.get_running_loop()
        fifo = str(tmp_path / "svc.1.pipe")
        rfd = make_fifo(fifo)
        log = logs.open("svc", 1)
        seen: list[bytes] = []

        def sink(data: bytes) -> None:
            seen.append(data)
            log.write(data, time.time())

        reader = FifoReader(loop, rfd, sink)
        watcher = ExitWatcher(loop)
        try:
            child = children.spawn(children.launch([sys.executable, "-c", code], fifo=fifo))
            done = await watch_exit(watcher, child)
            await wait_for_async(lambda: b"half a line" in b"".join(seen), 10, "the output")
            os.killpg(child.pid, signal.SIGKILL)
            exit = await asyncio.wait_for(done, 10)
            reader.drain()
        finally:
            reader.close()
            watcher.close()
            log.close(time.time())
            os.unlink(fifo)
        return exit

    exit = asyncio.run(main())
    assert exit.status.signal == signal.SIGKILL
    assert [line.text for line in logs.read("svc", 1)] == ["ready", "half a line"]


def test_child_survives_a_closed_reader_and_a_new_reader_gets_its_output(
    children, watch_exit, wait_for_async, tmp_path: Path, alive: Callable[[int], bool]
) -> None:
    """The agent dies (its read end closes); the service writes on; a new agent reads it.

    `sh` keeps the default SIGPIPE disposition (Python would ignore it), so if the pipe had no
    reader left, its `echo` would kill it.
    """
    go = tmp_path / "go"
    wrote = tmp_path / "wrote"
    script = (
        "echo before; "
        f"while [ ! -e {go} ]; do sleep 0.02; done; "
        "echo after one; echo after two >&2; printf 'after three'; "
        f": > {wrote}; exec sleep 1000"
    )
    logs = LogFiles(tmp_path / "logs")

    async def main() -> tuple[list[str], list[str], bool, bool]:
        loop = asyncio.get_running_loop()
        fifo = str(tmp_path / "svc.1.pipe")
        first_log = logs.open("svc", 1)
        reader = FifoReader(loop, make_fifo(fifo), lambda d: first_log.write(d, time.time()))
        watcher = ExitWatcher(loop)
        second: FifoReader | None = None
        second_log: InstanceLog | None = None
        try:
            child = children.spawn(children.launch(["sh", "-c", script], fifo=fifo))
            done = await watch_exit(watcher, child)
            await wait_for_async(
                lambda: first_log.last_line == "before", 10, "the first line to be read"
            )
            reader.close()  # the agent is gone: nobody but the child holds a read end
            first_log.close(time.time())
            go.touch()
            await wait_for_async(wrote.exists, 10, "the child to write while nobody reads")
            survived = alive(child.pid) and not done.done()

            # a new agent opens the FIFO by its name and reads what waited in the pipe
            second_log = InstanceLog(tmp_path / "second.log")
            log = second_log
            second = FifoReader(loop, open_fifo_reader(fifo), lambda d: log.write(d, time.time()))
            await wait_for_async(
                lambda: log.last_line == "after two", 10, "the new reader to get the output"
            )
            still_alive = alive(child.pid) and not done.done()
            os.killpg(child.pid, signal.SIGKILL)
            await asyncio.wait_for(done, 10)
            second.drain()
        finally:
            if second is not None:
                second.close()
            if second_log is not None:
                second_log.close(time.time())
            watcher.close()
        before = [line.text for line in logs.read("svc", 1)]
        after = [
            line.split(" ", 2)[2] for line in (tmp_path / "second.log").read_text().splitlines()
        ]
        return before, after, survived, still_alive

    before, after, survived, still_alive = asyncio.run(main())
    assert before == ["before"]
    assert survived, "the child died when the agent's read end was closed (SIGPIPE?)"
    assert still_alive
    assert after == ["after one", "after two", "after three"]


def _lines(path: Path) -> list[str]:
    return [line.split(" ", 2)[2] for line in path.read_text().splitlines()]


def _killed_mid_chunk(tmp_path: Path, written_before_kill: int) -> Path:
    """A reader killed with a chunk moved out of the pipe and `written_before_kill` bytes of it
    in the log (the agent died between its splice and the end of its write), then the next
    agent's recovery, as the supervisor does it on adoption."""
    logs = LogFiles(tmp_path / "logs")
    path = logs.path("svc", 1)
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        log = logs.open("svc", 1)
        log.write(b"one\ntwo\n", time.time())
        os.write(w, b"three\nfour\n")
        spool = Spool(str(tmp_path / "svc.1.spool"))
        chunk = spool.take(r, log.position())
        assert chunk == b"three\nfour\n"
        try:
            os.read(r, 100)
            raise AssertionError("the chunk is still in the pipe")
        except BlockingIOError:
            pass
        if written_before_kill:
            stamped = b"2026-11-21T08:00:00.000000Z out " + chunk
            with open(path, "ab") as f:
                f.write(stamped[:written_before_kill])
        # killed here: no done(); the next agent finds the chunk and the log's position
        pending = Spool(str(tmp_path / "svc.1.spool")).pending()
        assert pending is not None and pending[1] == chunk
        assert restore_position(path, pending[0])
        again = logs.open("svc", 1)
        again.write(pending[1], time.time())
        again.close(time.time())
    finally:
        os.close(r)
        os.close(w)
    return path


def test_a_chunk_the_agent_took_from_the_pipe_survives_its_kill(tmp_path: Path) -> None:
    assert _lines(_killed_mid_chunk(tmp_path, 0)) == ["one", "two", "three", "four"]


def test_a_chunk_half_written_when_the_agent_died_is_written_once(tmp_path: Path) -> None:
    # (40 bytes: the stamp and part of the first line of the chunk)
    assert _lines(_killed_mid_chunk(tmp_path, 40)) == ["one", "two", "three", "four"]


def test_a_spool_that_was_emptied_has_nothing_pending(tmp_path: Path) -> None:
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        spool = Spool(str(tmp_path / "s.spool"))
        os.write(w, b"x\n")
        assert spool.take(r, b"1 0") == b"x\n"
        spool.done()
        assert Spool(str(tmp_path / "s.spool")).pending() is None
        try:
            spool.take(r, b"1 2")
            raise AssertionError("an empty pipe gave something")
        except BlockingIOError:
            pass
        assert Spool(str(tmp_path / "s.spool")).pending() is None  # a mark alone is no chunk
    finally:
        os.close(r)
        os.close(w)


def test_a_mark_that_does_not_fit_the_log_cuts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    path.write_bytes(b"abc\n")
    assert not restore_position(path, b"")
    assert not restore_position(path, b"12 2")  # another file (inode)
    assert not restore_position(path, f"{path.stat().st_ino} 99".encode())  # longer than it
    assert path.read_bytes() == b"abc\n"
