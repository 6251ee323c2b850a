"""The agent's SQLite store (WAL): instances, events and the last record of every service.

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

SCHEMA_VERSION = 1
KEEP_EVENTS = 20_000
KEEP_INSTANCES = 50

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
"""


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
            "command": list(self.command),
            "error": self.error,
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
    ) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO instances (service, number, pid, proc_start, started,"
                " command, error, ended) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    service,
                    number,
                    pid,
                    proc_start,
                    started,
                    json.dumps(list(command)),
                    error,
                    started if error else None,
                ),
            )
            self._db.execute(
                "DELETE FROM instances WHERE service = ? AND number <= ?",
                (service, number - KEEP_INSTANCES),
            )

    def end_instance(
        self, service: str, number: int, *, ended: float, exit: ExitStatus, peak_rss: int | None
    ) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE instances SET ended = :ended, exit_code = :code, signal = :signal,"
                " core_dumped = :core, exit_unknown = :unknown,"
                " peak_rss = CASE WHEN :peak IS NULL THEN peak_rss"
                " ELSE max(coalesce(peak_rss, 0), :peak) END"
                " WHERE service = :service AND number = :number",
                {
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

    def instances(self, service: str, limit: int = 10) -> list[InstanceRow]:
        """The newest `limit` instances of a service, newest first."""
        rows = self._db.execute(
            "SELECT service, number, pid, proc_start, started, ended, exit_code, signal,"
            " core_dumped, exit_unknown, peak_rss, command, error FROM instances"
            " WHERE service = ? ORDER BY number DESC LIMIT ?",
            (service, limit),
        ).fetchall()
        return [_instance(r) for r in rows]

    def running_instances(self) -> list[InstanceRow]:
        """Instances that were started and never recorded as ended."""
        rows = self._db.execute(
            "SELECT service, number, pid, proc_start, started, ended, exit_code, signal,"
            " core_dumped, exit_unknown, peak_rss, command, error FROM instances"
            " WHERE ended IS NULL AND pid IS NOT NULL"
        ).fetchall()
        return [_instance(r) for r in rows]

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
        row
    )
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
    )
