"""The sd_notify receiver with real datagrams from real processes."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
import sys

import pytest

from infraveil.runtime.notify import NotifySocket, parse_message, process_group_of
from waiting import wait_for_async

Received = list[tuple[dict[str, str], int | None]]

# What a service does: the NOTIFY_SOCKET variable, with `@` for the abstract namespace (NUL).
SEND = """
import os, socket, sys
address = os.environ["NOTIFY_SOCKET"]
if address.startswith("@"):
    address = "\\0" + address[1:]
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    for message in sys.argv[1:]:
        s.sendto(message.encode(), address)
"""


def send(address: str, payload: bytes) -> None:
    """Send one datagram from this process, as sd_notify(3) would."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(payload, b"\0" + address[1:].encode())


def test_ready_from_a_child_process_comes_with_its_pid() -> None:
    async def main() -> tuple[Received, int, str]:
        received: Received = []
        loop = asyncio.get_running_loop()
        notify = NotifySocket.open(loop, lambda pairs, pid: received.append((dict(pairs), pid)))
        try:
            env = {**os.environ, "NOTIFY_SOCKET": notify.address}
            child = subprocess.Popen([sys.executable, "-c", SEND, "READY=1"], env=env)
            try:
                await wait_for_async(lambda: received, 10, "READY=1 from the child")
            finally:
                assert child.wait(10) == 0
            return received, child.pid, notify.address
        finally:
            notify.close()

    received, pid, address = asyncio.run(main())
    assert received == [({"READY": "1"}, pid)]
    assert address.startswith("@infraveil/")


def test_several_pairs_in_one_datagram_and_malformed_lines_ignored() -> None:
    async def main() -> Received:
        received: Received = []
        loop = asyncio.get_running_loop()
        notify = NotifySocket.open(loop, lambda pairs, pid: received.append((dict(pairs), pid)))
        try:
            send(notify.address, b"READY=1\nSTATUS=serving 12 clients\n")
            send(notify.address, b"garbage\n=no key\nSTATUS=a=b\n\nWATCHDOG=1")
            await wait_for_async(lambda: len(received) == 2, 10, "two messages")
            return received
        finally:
            notify.close()

    received = asyncio.run(main())
    assert received == [
        ({"READY": "1", "STATUS": "serving 12 clients"}, os.getpid()),
        ({"STATUS": "a=b", "WATCHDOG": "1"}, os.getpid()),
    ]


def test_every_queued_datagram_is_delivered_in_order() -> None:
    async def main() -> tuple[int, Received]:
        received: Received = []
        loop = asyncio.get_running_loop()
        notify = NotifySocket.open(loop, lambda pairs, pid: received.append((dict(pairs), pid)))
        try:
            # Fill the socket's queue (net.unix.max_dgram_qlen) before the loop reads any...
            queued = 0
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.setblocking(False)
                while queued < 1000:
                    try:
                        s.sendto(f"STATUS={queued}".encode(), b"\0" + notify.address[1:].encode())
                    except BlockingIOError:
                        break
                    queued += 1
            # ...then a sender that blocks whenever the queue is full, as services do.
            messages = [f"STATUS={queued + i}" for i in range(300)]
            env = {**os.environ, "NOTIFY_SOCKET": notify.address}
            child = subprocess.Popen([sys.executable, "-c", SEND, *messages], env=env)
            try:
                total = queued + len(messages)
                await wait_for_async(lambda: len(received) == total, 10, f"{total} messages")
            finally:
                assert child.wait(10) == 0
            return queued, received
        finally:
            notify.close()

    queued, received = asyncio.run(main())
    assert queued > 0
    assert [pairs["STATUS"] for pairs, _ in received] == [str(i) for i in range(queued + 300)]


def test_an_oversized_datagram_is_dropped() -> None:
    async def main() -> Received:
        received: Received = []
        loop = asyncio.get_running_loop()
        notify = NotifySocket.open(loop, lambda pairs, pid: received.append((dict(pairs), pid)))
        try:
            send(notify.address, b"STATUS=" + b"x" * 5000 + b"\nREADY=1")
            send(notify.address, b"READY=1")
            await wait_for_async(lambda: received, 10, "the second message")
            return received
        finally:
            notify.close()

    assert asyncio.run(main()) == [({"READY": "1"}, os.getpid())]


def test_the_same_address_can_be_bound_again_after_close() -> None:
    async def main() -> tuple[str, str, Received]:
        received: Received = []
        loop = asyncio.get_running_loop()
        first = NotifySocket.open(loop, lambda pairs, pid: None)
        address = first.address
        with pytest.raises(OSError) as taken:
            NotifySocket.open(loop, lambda pairs, pid: None, address=address)
        assert taken.value.errno == errno.EADDRINUSE
        first.close()
        second = NotifySocket.open(
            loop, lambda pairs, pid: received.append((dict(pairs), pid)), address=address
        )
        try:
            send(address, b"READY=1")
            await wait_for_async(lambda: received, 10, "READY=1 on the re-bound socket")
            return address, second.address, received
        finally:
            second.close()

    address, again, received = asyncio.run(main())
    assert again == address
    assert received == [({"READY": "1"}, os.getpid())]


def test_close_is_idempotent_and_releases_the_name() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        notify = NotifySocket.open(loop, lambda pairs, pid: None)
        notify.close()
        notify.close()
        with pytest.raises(ConnectionRefusedError):
            send(notify.address, b"READY=1")

    asyncio.run(main())


def test_an_address_must_be_abstract() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError, match="abstract"):
            NotifySocket.open(loop, lambda pairs, pid: None, address="/run/notify.sock")

    asyncio.run(main())


@pytest.mark.parametrize(
    ("data", "pairs"),
    [
        (b"READY=1", {"READY": "1"}),
        (b"READY=1\nSTATUS=ok\n", {"READY": "1", "STATUS": "ok"}),
        (b"STATUS=a=b", {"STATUS": "a=b"}),
        (b"STATUS=", {"STATUS": ""}),
        (b"nonsense\n=x\n KEY=1\n", {}),
        (b"STATUS=\xff", {"STATUS": "\ufffd"}),
        (b"", {}),
    ],
)
def test_parse_message(data: bytes, pairs: dict[str, str]) -> None:
    assert parse_message(data) == pairs


def test_process_group_of() -> None:
    assert process_group_of(os.getpid()) == os.getpgrp()
    # a command name with spaces and parentheses must not shift the fields
    code = "open('/proc/self/comm', 'w').write('a) b (c'); print(flush=True); input()"
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()  # the name is set
        with open(f"/proc/{child.pid}/comm") as f:
            assert f.read().strip() == "a) b (c"
        assert process_group_of(child.pid) == child.pid
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert process_group_of(child.pid) is None
