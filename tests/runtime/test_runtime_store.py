"""store.db.Store on a real SQLite file: events, instances and records, and a reopened store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from infraveil.core.errors import StateDirError
from infraveil.core.exitstatus import ExitStatus
from infraveil.store.db import KEEP_INSTANCES, Store

T0 = 1_900_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state.db")
    try:
        yield s
    finally:
        s.close()


def _add(store: Store, service: str | None, reason: str, t: float) -> int:
    row = store.add_event(
        time=t,
        service=service,
        instance=None if service is None else 1,
        kind="warning" if reason == "Exited" else "normal",
        reason=reason,
        message=f"{service} {reason}",
    )
    return row.id


def test_events_round_trip(store: Store) -> None:
    row = store.add_event(
        time=T0,
        service="api",
        instance=4,
        kind="warning",
        reason="Exited",
        message="exited with code 3 after 0.1s; last line: boom",
    )
    [back] = store.events()
    assert back == row
    assert back.as_dict() == {
        "id": row.id,
        "time": T0,
        "service": "api",
        "instance": 4,
        "type": "warning",
        "reason": "Exited",
        "message": "exited with code 3 after 0.1s; last line: boom",
    }


def test_events_filters_and_order(store: Store) -> None:
    plan = [
        (None, "AgentStarted"),
        ("a", "Started"),
        ("b", "Started"),
        ("a", "Running"),
        ("b", "Exited"),
        ("a", "Stopping"),
        ("b", "BackOff"),
        ("a", "Stopped"),
    ]
    ids = [_add(store, service, reason, T0 + i) for i, (service, reason) in enumerate(plan)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    everything = store.events()
    assert [e.id for e in everything] == ids  # oldest first
    assert [(e.service, e.reason) for e in everything] == plan

    assert [e.id for e in store.events(after=ids[2])] == ids[3:]
    assert store.events(after=ids[-1]) == []

    a = store.events(service="a")
    assert [e.reason for e in a] == ["Started", "Running", "Stopping", "Stopped"]
    assert all(e.service == "a" for e in a)

    # limit keeps the *newest* events, still oldest first
    assert [e.id for e in store.events(limit=3)] == ids[-3:]
    assert [e.reason for e in store.events(service="b", limit=2)] == ["Exited", "BackOff"]
    assert [e.reason for e in store.events(service="b", after=ids[2], limit=1)] == ["BackOff"]
    assert store.events(service="nobody") == []


def test_instances_add_end_and_newest_first(store: Store) -> None:
    store.add_instance("api", 1, pid=101, proc_start=T0, started=T0, command=["app", "--x"])
    store.add_instance("api", 2, pid=102, proc_start=T0 + 5, started=T0 + 5, command=["app"])
    store.add_instance("web", 1, pid=201, proc_start=T0, started=T0, command=["web"])
    store.end_instance("api", 1, ended=T0 + 4.5, exit=ExitStatus(code=3), peak_rss=1000)

    api = store.instances("api")
    assert [i.number for i in api] == [2, 1]
    second, first = api
    assert first.pid == 101
    assert first.command == ("app", "--x")
    assert first.ended == T0 + 4.5
    assert first.duration == 4.5
    assert first.exit == ExitStatus(code=3)
    assert first.peak_rss == 1000
    assert first.error is None
    assert second.ended is None and second.exit is None and second.duration is None

    running = {(i.service, i.number) for i in store.running_instances()}
    assert running == {("api", 2), ("web", 1)}

    store.end_instance("api", 2, ended=T0 + 6, exit=ExitStatus(signal=9), peak_rss=None)
    [latest] = store.instances("api", limit=1)
    assert latest.exit == ExitStatus(signal=9)
    assert latest.as_dict()["exit"]["signal"] == "SIGKILL"
    assert {(i.service, i.number) for i in store.running_instances()} == {("web", 1)}


def test_an_instance_that_could_not_start(store: Store) -> None:
    store.add_instance(
        "ghost",
        1,
        pid=None,
        proc_start=None,
        started=T0,
        command=["nope"],
        error="command not found: nope",
    )
    [row] = store.instances("ghost")
    assert row.error == "command not found: nope"
    assert row.pid is None
    assert row.ended == T0  # it ended the moment it failed to start
    assert row.exit is None
    assert store.running_instances() == []


def test_peak_memory_is_kept_when_the_end_has_none(store: Store) -> None:
    store.add_instance("api", 1, pid=1, proc_start=None, started=T0, command=["x"])
    store.end_instance("api", 1, ended=T0 + 1, exit=ExitStatus(code=0), peak_rss=None)
    assert store.instances("api")[0].peak_rss is None
    store.end_instance("api", 1, ended=T0 + 1, exit=ExitStatus(code=0), peak_rss=500)
    store.end_instance("api", 1, ended=T0 + 1, exit=ExitStatus(code=0), peak_rss=200)
    assert store.instances("api")[0].peak_rss == 500  # the highest sample wins


def test_old_instances_are_dropped(store: Store) -> None:
    for n in range(1, KEEP_INSTANCES + 6):
        store.add_instance("api", n, pid=n, proc_start=None, started=T0 + n, command=["x"])
    kept = store.instances("api", limit=1000)
    assert [i.number for i in kept] == list(range(KEEP_INSTANCES + 5, 5, -1))


def test_a_reopened_store_sees_everything(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = Store(path)
    try:
        ids = [_add(first, "a", reason, T0 + i) for i, reason in enumerate(["Started", "Exited"])]
        first.add_instance("a", 1, pid=42, proc_start=T0, started=T0, command=["sleep", "1"])
        first.end_instance("a", 1, ended=T0 + 1, exit=ExitStatus(signal=15), peak_rss=7)
        first.add_instance("a", 2, pid=43, proc_start=T0 + 2, started=T0 + 2, command=["sleep"])
        first.save_record("a", {"name": "a", "state": "running", "instance": 2})
        first.save_record("a", {"name": "a", "state": "backoff", "instance": 2})
    finally:
        first.close()

    second = Store(path)
    try:
        assert [e.id for e in second.events()] == ids
        assert [e.reason for e in second.events()] == ["Started", "Exited"]
        numbers = [(i.number, i.pid, i.exit) for i in second.instances("a")]
        assert numbers == [(2, 43, None), (1, 42, ExitStatus(signal=15))]
        assert [i.number for i in second.running_instances()] == [2]
        assert second.records() == {"a": {"name": "a", "state": "backoff", "instance": 2}}
        # ids go on increasing after the reopen
        assert _add(second, "a", "Started", T0 + 3) > ids[-1]
    finally:
        second.close()


def test_the_store_is_sqlite_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store(path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("4",)
    finally:
        db.close()


SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema', '1');
CREATE TABLE instances (
    service TEXT NOT NULL, number INTEGER NOT NULL, pid INTEGER, proc_start REAL,
    started REAL NOT NULL, ended REAL, exit_code INTEGER, signal INTEGER,
    core_dumped INTEGER NOT NULL DEFAULT 0, exit_unknown INTEGER NOT NULL DEFAULT 0,
    peak_rss INTEGER, command TEXT NOT NULL, error TEXT, PRIMARY KEY (service, number)
);
INSERT INTO instances (service, number, pid, started, ended, exit_code, command)
    VALUES ('api', 7, 123, 1.0, 2.0, 1, '["app"]');
"""


def test_a_schema_1_store_is_upgraded_in_place_and_keeps_its_instances(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_1)
    db.close()
    store = Store(path)
    try:
        [old] = store.instances("api")
        assert old.number == 7 and old.exit == ExitStatus(code=1) and not old.oom
        store.add_instance(
            "api", 8, pid=5, proc_start=None, started=3.0, command=["app"], memory_limit=64 << 20
        )
        store.end_instance(
            "api",
            8,
            ended=4.0,
            exit=ExitStatus(signal=9),
            peak_rss=70 << 20,
            oom=True,
            probes={"ready": [{"ok": True}]},
        )
        store.set_failure("api", 8, "OOMKilled after 1.0s")
        new = store.instances("api")[0]
        assert (new.oom, new.memory_limit, new.peak_rss) == (True, 64 << 20, 70 << 20)
        assert new.probes == {"ready": [{"ok": True}]}
        assert new.failure == "OOMKilled after 1.0s"
        # schema 3: a failed instance keeps its diagnosis
        assert new.diagnosis is None and old.diagnosis is None
        store.set_diagnosis("api", 8, {"category": "oom_killed", "summary": "killed"})
        assert store.instances("api")[0].diagnosis == {
            "category": "oom_killed",
            "summary": "killed",
        }
        assert store.instance("api", 8) == store.instances("api")[0]
        assert store.instance("api", 99) is None
        # schema 4: releases and deploys
        store.add_release("api", "v1", sha256=None, size=None, spec={"name": "api"}, created=5.0)
        assert store.release("api", "v1") is not None
    finally:
        store.close()


def test_releases_keep_the_newest_five_and_never_the_current_or_known_good(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "state.db")
    try:
        for n in range(1, 9):
            version = store.next_version("api")
            assert version == f"v{n}"
            store.add_release(
                "api", version, sha256=f"{n:064x}", size=n, spec={"n": n}, created=float(n)
            )
        store.set_pointers("api", current="v2", known_good="v1")
        store.prune_releases("api")
        kept = [r.version for r in store.releases("api")]
        assert kept == ["v8", "v7", "v6", "v5", "v4", "v2", "v1"]
        assert store.payloads_in_use() == {f"{n:064x}" for n in (1, 2, 4, 5, 6, 7, 8)}
        # a label is never given out twice, even once its release is pruned
        assert store.next_version("api") == "v9"
        assert store.pointers("api") == ("v2", "v1")
        store.set_pointers("api", current="v8")  # known-good left as it was
        assert store.pointers("api") == ("v8", "v1")
        assert store.pointers("web") == (None, None)
    finally:
        store.close()


def test_an_unfinished_deploy_is_found_by_the_next_agent(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    done = store.add_deploy("api", "v1", started=1.0, by="pid 1", gate={"phase": "verifying"})
    store.save_deploy(done, {"phase": "passed"}, ended=2.0, sentence="v1 is live.")
    open_id = store.add_deploy("api", "v2", started=3.0, by="pid 2", gate={"phase": "verifying"})
    store.save_deploy(open_id, {"phase": "soaking"})
    store.close()
    store = Store(tmp_path / "state.db")
    try:
        [unfinished] = store.unfinished_deploys()
        assert (unfinished.id, unfinished.version, unfinished.gate) == (
            open_id,
            "v2",
            {"phase": "soaking"},
        )
        assert [d.sentence for d in store.deploys("api")] == ["", "v1 is live."]
    finally:
        store.close()


def test_boots_are_kept_per_service_newest_twenty_oldest_first(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        for i in range(25):
            store.add_boot("api", i, seconds=float(i), time=100.0 + i)
        store.add_boot("db", 1, seconds=9.0, time=1.0)
        assert store.boots("api") == [float(i) for i in range(5, 25)]
        assert store.boots("db") == [9.0]
        assert store.boots("nothing") == []
    finally:
        store.close()


def test_an_unusable_path_is_a_state_dir_error(tmp_path: Path) -> None:
    with pytest.raises(StateDirError) as caught:
        Store(tmp_path)  # a directory, not a database file
    assert str(tmp_path) in caught.value.message
    assert caught.value.hint
