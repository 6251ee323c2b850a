"""store.db.Store on a disk that fills up: writes wait in memory, in order, and are written once
there is room again; the connection stays usable; a request that needs its write at once is
refused with the reason. On a real (tiny) tmpfs and a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from infraveil.core.errors import StateDirError
from infraveil.core.exitstatus import ExitStatus
from infraveil.store import db
from infraveil.store.db import Store, StoreWriteError
from mounts import fill, make_room, tmpfs

T0 = 1_900_000_000.0
ROOM = "2m"


@pytest.fixture
def disk() -> Iterator[Path]:
    with tmpfs(ROOM) as where:
        yield where


def _event(store: Store, n: int) -> int:
    return store.add_event(
        time=T0 + n, service="web", instance=1, kind="normal", reason="Tick", message=f"tick {n}"
    ).id


def _write_until_refused(store: Store, first: int) -> int:
    """Add events until one has to wait (a full disk is noticed when the WAL must grow)."""
    n = first
    while not store.error:
        _event(store, n)
        n += 1
        assert n < first + 5000, "the store never noticed the full disk"
    return n


def test_a_full_disk_keeps_writes_in_memory_and_writes_them_in_order_once_there_is_room(
    disk: Path,
) -> None:
    store = Store(disk / "state.db")
    try:
        store.add_instance("web", 1, pid=100, proc_start=1.0, started=T0, command=["web"])
        before = [_event(store, n) for n in range(3)]
        fill(disk)
        n = _write_until_refused(store, 3)
        assert store.error.startswith(f"store: cannot write {disk / 'state.db'}: ")
        assert "database or disk is full" in store.error
        assert "0B free on its filesystem" in store.error

        # every later write waits too, and the ids handed out stay in sequence
        waiting_ids = [_event(store, m) for m in range(n, n + 5)]
        store.end_instance("web", 1, ended=T0 + 99, exit=ExitStatus(code=3), peak_rss=None)
        assert store.deferred >= 6
        assert store.running_instances()  # reads still work, and show what is written
        assert not store.retry()

        make_room(disk)
        assert store.retry()
        assert store.error == "" and store.deferred == 0
        ids = [e.id for e in store.events(limit=10_000)]
        assert ids == list(range(before[0], waiting_ids[-1] + 1)), "an event lost or reordered"
        assert [e.message for e in store.events(limit=5)] == [f"tick {m}" for m in range(n, n + 5)]
        assert store.running_instances() == []
        row = store.instance("web", 1)
        assert row is not None and row.exit == ExitStatus(code=3)
        # and the connection is as good as new
        assert _event(store, 10_000) == waiting_ids[-1] + 1
    finally:
        store.close()
    with sqlite3.connect(disk / "state.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_writes_resume_without_a_retry_call_once_there_is_room(disk: Path) -> None:
    store = Store(disk / "state.db")
    try:
        fill(disk)
        n = _write_until_refused(store, 0)
        make_room(disk)
        _event(store, n)  # the next write writes what waited first
        assert store.error == "" and store.deferred == 0
        assert [e.message for e in store.events(limit=2)] == [f"tick {n - 1}", f"tick {n}"]
    finally:
        store.close()


def test_a_request_that_needs_its_write_is_refused_with_the_reason(disk: Path) -> None:
    store = Store(disk / "state.db")
    try:
        fill(disk)
        _write_until_refused(store, 0)
        with pytest.raises(StoreWriteError) as refused:
            store.add_release(
                "web", "v1", sha256=None, size=None, spec={"command": ["web"]}, created=T0
            )
        assert "database or disk is full" in refused.value.message
        assert "free some space" in refused.value.hint
        with pytest.raises(StoreWriteError):
            store.add_deploy("web", "v1", started=T0, by="", gate={})

        make_room(disk)
        release = store.add_release(
            "web", "v1", sha256=None, size=None, spec={"command": ["web"]}, created=T0
        )
        assert (release.version, release.serial) == ("v1", 1)  # the refused one left no trace
        assert store.add_deploy("web", "v1", started=T0, by="", gate={}) == 1
    finally:
        store.close()


def test_a_store_that_cannot_be_created_on_a_full_disk_says_where_and_why(disk: Path) -> None:
    fill(disk)
    with pytest.raises(StateDirError) as refused:
        Store(disk / "state.db")
    assert f"cannot use the store {disk / 'state.db'}: " in refused.value.message
    assert "full" in refused.value.message


def test_beyond_the_limit_the_oldest_kept_writes_are_lost_and_counted(
    disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "MAX_DEFERRED", 3)
    store = Store(disk / "state.db")
    try:
        fill(disk)
        n = _write_until_refused(store, 0)  # the first refused write is kept: 1 waiting
        for m in range(n, n + 4):
            _event(store, m)
        assert (store.deferred, store.lost) == (3, 2)
        make_room(disk)
        assert store.retry()
        assert [e.message for e in store.events(limit=3)] == [
            f"tick {m}" for m in range(n + 1, n + 4)
        ]
        assert store.lost == 2
    finally:
        store.close()
