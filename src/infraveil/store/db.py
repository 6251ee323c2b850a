"""The agent's SQLite store (WAL): instances, events, boot times and the last record of every
service.

Only the agent writes; every write is its own short transaction, so a killed agent leaves a
consistent database (SQLite's journal takes care of the rest). `synchronous=NORMAL` in WAL
mode keeps a commit far under a millisecond: a crash of the *agent* loses nothing, and only a
power loss can lose the last commits — an acceptable trade for a supervisor's bookkeeping.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infraveil.core.errors import StateDirError
from infraveil.core.exitstatus import ExitStatus

SCHEMA_VERSION = 3
KEEP_EVENTS = 20_000
KEEP_INSTANCES = 50
KEEP_BOOTS = 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS instances (
    service     TEXT NOT NULL,
    number      INTEGER NOT NULL,
    pid         INTEGER,
    proc_start  REAL,            -- the process's own start time: guards against pid reuse
    started     REAL NOT NULL,   -- wall clock
    ended       REAL,
    exit_code   INTEGER,
    signal      INTEGER,
    core_dumped INTEGER NOT NULL DEFAULT 0,
    exit_unknown INTEGER NOT NULL DEFAULT 0,
    peak_rss    INTEGER,
    command     TEXT NOT NULL,   -- JSON argv
    error       TEXT,            -- why it could not be started, if it could not
    PRIMARY KEY (service, number)
);
CREATE TABLE IF NOT EXISTS events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    time     REAL NOT NULL,
    service  TEXT,
    instance INTEGER,
    kind     TEXT NOT NULL,
    reason   TEXT NOT NULL,
    message  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_service ON events (service, id);
CREATE TABLE IF NOT EXISTS services (name TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS boots (
    service  TEXT NOT NULL,
    instance INTEGER NOT NULL,
    seconds  REAL NOT NULL,      -- from spawn to the first passing startup check
    time     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS boots_by_service ON boots (service, time);
"""

_ADDED_COLUMNS = {
    # schema 2 ([health]); added to a schema-1 store in place
    "oom": "INTEGER NOT NULL DEFAULT 0",
    "memory_limit": "INTEGER",
    "cgroup": "TEXT",
    "notify": "TEXT",
    "probes": "TEXT",
    "failure": "TEXT",
    # schema 3 ([why]): the diagnosis of an ended instance, as JSON
    "diagnosis": "TEXT",
}
"""Instance columns added after schema 1, with their SQL types."""

_INSTANCE_COLUMNS = (
    "service, number, pid, proc_start, started, ended, exit_code, signal, core_dumped,"
    " exit_unknown, peak_rss, command, error, oom, memory_limit, cgroup, notify, probes, failure,"
    " diagnosis"
)


@dataclass(frozen=True)
class InstanceRow:
    service: str
    number: int
    pid: int | None
    proc_start: float | None
    started: float
    ended: float | None
    exit: ExitStatus | None
    peak_rss: int | None
    command: tuple[str, ...]
    error: str | None
    oom: bool = False
    memory_limit: int | None = None
    cgroup: str | None = None
    """The instance's own cgroup, if it has one."""
    notify: str | None = None
    """Its NOTIFY_SOCKET address, if it has one (a new agent binds it again)."""
    probes: dict[str, Any] | None = None
    """Per check role: the last probe results, kept when the instance ends."""
    failure: str | None = None
    """Why the instance ended, as the lifecycle said it (for a failed instance)."""
    diagnosis: dict[str, Any] | None = None
    """The diagnosis engine's finding for a failed instance (`why`)."""

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "pid": self.pid,
            "started": self.started,
            "ended": self.ended,
            "duration": self.duration,
            "exit": self.exit.as_dict() if self.exit else None,
            "peak_memory": self.peak_rss,
            "memory_limit": self.memory_limit,
            "oom_killed": self.oom,
            "command": list(self.command),
            "error": self.error,
            "failure": self.failure,
            "probes": self.probes or {},
            "diagnosis": self.diagnosis,
        }


@dataclass(frozen=True)
class EventRow:
    id: int
    time: float
    service: str | None
    instance: int | None
    kind: str
    reason: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "service": self.service,
            "instance": self.instance,
            "type": self.kind,
            "reason": self.reason,
            "message": self.message,
        }


class Store:
    """One connection, used only from the agent's event-loop thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)  # commits on its own; every statement is idempotent
            with self._tx():
                have = {row[1] for row in self._db.execute("PRAGMA table_info(instances)")}
                for column, sql_type in _ADDED_COLUMNS.items():
                    if column not in have:
                        self._db.execute(f"ALTER TABLE instances ADD COLUMN {column} {sql_type}")
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),)
                )
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                )
        except sqlite3.DatabaseError as e:
            raise StateDirError(
                f"cannot use the store {path}: {e}",
                hint="check the state directory's permissions and free space",
            ) from e
        self._events_since_prune = 0

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # ── instances ────────────────────────────────────────────────────────────────────────

    def add_instance(
        self,
        service: str,
        number: int,
        *,
        pid: int | None,
        proc_start: float | None,
        started: float,
        command: Sequence[str],
        error: str | None = None,
        memory_limit: int | None = None,
        cgroup: str | None = None,
        notify: str | None = None,
    ) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO instances (service, number, pid, proc_start, started,"
                " command, error, ended, memory_limit, cgroup, notify)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    service,
                    number,
                    pid,
                    proc_start,
                    started,
                    json.dumps(list(command)),
                    error,
                    started if error else None,
                    memory_limit,
                    cgroup,
                    notify,
                ),
            )
            self._db.execute(
                "DELETE FROM instances WHERE service = ? AND number <= ?",
                (service, number - KEEP_INSTANCES),
            )

    def end_instance(
        self,
        service: str,
        number: int,
        *,
        ended: float,
        exit: ExitStatus,
        peak_rss: int | None,
        oom: bool = False,
        probes: dict[str, Any] | None = None,
    ) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE instances SET ended = :ended, exit_code = :code, signal = :signal,"
                " core_dumped = :core, exit_unknown = :unknown, oom = :oom,"
                " probes = coalesce(:probes, probes),"
                " peak_rss = CASE WHEN :peak IS NULL THEN peak_rss"
                " ELSE max(coalesce(peak_rss, 0), :peak) END"
                " WHERE service = :service AND number = :number",
                {
                    "oom": int(oom),
                    "probes": json.dumps(probes) if probes else None,
                    "ended": ended,
                    "code": exit.code,
                    "signal": exit.signal,
                    "core": int(exit.core_dumped),
                    "unknown": int(exit.unknown),
                    "peak": peak_rss,
                    "service": service,
                    "number": number,
                },
            )

    def set_failure(self, service: str, number: int, failure: str) -> None:
        """Record why an ended instance failed (the lifecycle's words)."""
        with self._tx():
            self._db.execute(
                "UPDATE instances SET failure = ? WHERE service = ? AND number = ?",
                (failure, service, number),
            )

    def set_diagnosis(self, service: str, number: int, diagnosis: dict[str, Any]) -> None:
        """Record the diagnosis of an ended (or never started) instance."""
        with self._tx():
            self._db.execute(
                "UPDATE instances SET diagnosis = ? WHERE service = ? AND number = ?",
                (json.dumps(diagnosis), service, number),
            )

    def instance(self, service: str, number: int) -> InstanceRow | None:
        row = self._db.execute(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE service = ? AND number = ?",
            (service, number),
        ).fetchone()
        return None if row is None else _instance(row)

    def instances(self, service: str, limit: int = 10) -> list[InstanceRow]:
        """The newest `limit` instances of a service, newest first."""
        rows = self._db.execute(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances"
            " WHERE service = ? ORDER BY number DESC LIMIT ?",
            (service, limit),
        ).fetchall()
        return [_instance(r) for r in rows]

    def running_instances(self) -> list[InstanceRow]:
        """Instances that were started and never recorded as ended."""
        rows = self._db.execute(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE ended IS NULL AND pid IS NOT NULL"
        ).fetchall()
        return [_instance(r) for r in rows]

    def cgroups_in_use(self) -> list[str]:
        rows = self._db.execute(
            "SELECT cgroup FROM instances WHERE ended IS NULL AND cgroup IS NOT NULL"
        ).fetchall()
        return [r[0] for r in rows]

    # ── boots (to learn each service's startup deadline) ──────────────────────────────────

    def add_boot(self, service: str, instance: int, seconds: float, time: float) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO boots VALUES (?, ?, ?, ?)", (service, instance, seconds, time)
            )
            self._db.execute(
                "DELETE FROM boots WHERE service = ? AND rowid NOT IN (SELECT rowid FROM boots"
                " WHERE service = ? ORDER BY time DESC LIMIT ?)",
                (service, service, KEEP_BOOTS),
            )

    def boots(self, service: str) -> list[float]:
        """The durations of the service's recent boots, oldest first."""
        rows = self._db.execute(
            "SELECT seconds FROM boots WHERE service = ? ORDER BY time DESC LIMIT ?",
            (service, KEEP_BOOTS),
        ).fetchall()
        return [r[0] for r in reversed(rows)]

    # ── events ───────────────────────────────────────────────────────────────────────────

    def add_event(
        self,
        *,
        time: float,
        service: str | None,
        instance: int | None,
        kind: str,
        reason: str,
        message: str,
    ) -> EventRow:
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO events (time, service, instance, kind, reason, message)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (time, service, instance, kind, reason, message),
            )
            event_id = cur.lastrowid
            assert event_id is not None
            self._events_since_prune += 1
            if self._events_since_prune >= 1000:
                self._events_since_prune = 0
                self._db.execute("DELETE FROM events WHERE id <= ?", (event_id - KEEP_EVENTS,))
        return EventRow(event_id, time, service, instance, kind, reason, message)

    def events(
        self, *, service: str | None = None, after: int = 0, limit: int = 100
    ) -> list[EventRow]:
        """The newest `limit` events (of one service, or all) after id `after`, oldest first."""
        where, args = "id > ?", [after]
        if service is not None:
            where += " AND service = ?"
            args.append(service)  # type: ignore[arg-type]
        rows = self._db.execute(
            f"SELECT id, time, service, instance, kind, reason, message FROM events"
            f" WHERE {where} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [EventRow(*r) for r in reversed(rows)]

    # ── service records (for the agent that comes after this one) ──────────────────────────

    def save_record(self, name: str, record: dict[str, Any]) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO services VALUES (?, ?)", (name, json.dumps(record))
            )

    def records(self) -> dict[str, dict[str, Any]]:
        rows = self._db.execute("SELECT name, record FROM services").fetchall()
        return {name: json.loads(record) for name, record in rows}


def _instance(row: tuple[Any, ...]) -> InstanceRow:
    (service, number, pid, proc_start, started, ended, code, sig, core, unknown, peak, cmd, err) = (
        row[:13]
    )
    oom, memory_limit, cgroup, notify, probes, failure, diagnosis = row[13:]
    exit_status = None
    if ended is not None and err is None:
        exit_status = ExitStatus(
            code=code, signal=sig, core_dumped=bool(core), unknown=bool(unknown)
        )
    return InstanceRow(
        service,
        number,
        pid,
        proc_start,
        started,
        ended,
        exit_status,
        peak,
        tuple(json.loads(cmd)),
        err,
        oom=bool(oom),
        memory_limit=memory_limit,
        cgroup=cgroup,
        notify=notify,
        probes=json.loads(probes) if probes else None,
        failure=failure,
        diagnosis=json.loads(diagnosis) if diagnosis else None,
    )
