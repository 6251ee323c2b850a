"""The agent's SQLite store (WAL): instances, events, boot times, the last record of every
service, and its releases and deploys.

Only the agent writes; every write is its own short transaction, so a killed agent leaves a
consistent database (SQLite's journal takes care of the rest). `synchronous=NORMAL` in WAL
mode keeps a commit far under a millisecond: a crash of the *agent* loses nothing, and only a
power loss can lose the last commits — an acceptable trade for a supervisor's bookkeeping.

A running agent must outlive a store it cannot write (a full disk, an I/O error, a file made
read-only): its services matter more than its bookkeeping. So a write is data (its SQL
statements), run as one transaction; one that fails is rolled back and kept in memory, in
order (at most `MAX_DEFERRED`), and written before the next write or at the next `retry()`;
`error` says why meanwhile. Only the writes whose caller must know at once (a new release, a
new deploy: a person's request) raise `StoreWriteError` instead.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infraveil.core.errors import StateDirError
from infraveil.core.exitstatus import ExitStatus
from infraveil.core.units import format_bytes

SCHEMA_VERSION = 4
KEEP_EVENTS = 20_000
KEEP_INSTANCES = 50
KEEP_BOOTS = 20
KEEP_RELEASES = 5
"""Releases kept per service, besides the current and the known-good (never pruned)."""
KEEP_DEPLOYS = 200
MAX_DEFERRED = 10_000
"""Writes kept in memory while the store cannot be written; beyond that the oldest are lost."""
PRUNE_EVENTS_EVERY = 1000
"""Event ids between two prunes of old events."""

Statement = tuple[str, Sequence[Any] | Mapping[str, Any]]
"""One SQL statement and its parameters; a write is a few of them, run as one transaction."""


class StoreWriteError(StateDirError):
    """The store could not be written (full disk, I/O error, read-only): nothing was changed."""


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
-- schema 4 ([gate])
CREATE TABLE IF NOT EXISTS releases (
    service   TEXT NOT NULL,
    version   TEXT NOT NULL,
    serial    INTEGER NOT NULL,  -- order of creation within the service
    sha256    TEXT,              -- the payload's; NULL: a release of the manifest entry only
    size      INTEGER,
    spec      TEXT NOT NULL,     -- JSON of the ServiceSpec it runs with
    created   REAL NOT NULL,
    outcome   TEXT NOT NULL DEFAULT '',
    message   TEXT NOT NULL DEFAULT '',
    diagnosis TEXT,              -- JSON: the diagnosis of the failure that failed its gate
    PRIMARY KEY (service, version)
);
CREATE TABLE IF NOT EXISTS deployments (
    service    TEXT PRIMARY KEY,
    current    TEXT,
    known_good TEXT,
    serial     INTEGER NOT NULL DEFAULT 0   -- the last release serial given out
);
CREATE TABLE IF NOT EXISTS deploys (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    service  TEXT NOT NULL,
    version  TEXT NOT NULL,
    started  REAL NOT NULL,
    ended    REAL,
    by       TEXT NOT NULL DEFAULT '',
    gate     TEXT NOT NULL,      -- JSON of the gate record (core.gate), saved at every step
    sentence TEXT NOT NULL DEFAULT ''
);
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
class ReleaseRow:
    service: str
    version: str
    serial: int
    sha256: str | None
    size: int | None
    spec: dict[str, Any]
    created: float
    outcome: str
    """"" while its gate runs; then live, good, rejected, failed, rolled back, baseline."""
    message: str
    diagnosis: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "created": self.created,
            "outcome": self.outcome or "deploying",
            "message": self.message,
            "diagnosis": self.diagnosis,
        }


@dataclass(frozen=True)
class DeployRow:
    id: int
    service: str
    version: str
    started: float
    ended: float | None
    by: str
    gate: dict[str, Any]
    sentence: str


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
            (last_event,) = self._db.execute(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
                " coalesce((SELECT max(id) FROM events), 0))"
            ).fetchone()
        except sqlite3.DatabaseError as e:
            raise StateDirError(
                f"cannot use the store {path}: {e}{_free_space(path)}",
                hint="check the state directory's permissions and free space",
            ) from e
        self._last_event_id: int = last_event
        """Event ids are given here, not by SQLite, so that a kept event has its id at once."""
        self._deferred: deque[tuple[Statement, ...]] = deque()
        self.error = ""
        """Why the store cannot be written now ("" while it can)."""
        self.lost = 0
        """Kept writes dropped because too many were waiting (since this store was opened)."""

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (where WAL mode reports a full disk) leaves the transaction
            # open, and SQLite may already have rolled back on its own: end it either way, or
            # every later BEGIN fails and the connection is lost for good.
            if self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    def close(self) -> None:
        self.retry()  # a last chance for what was kept in memory
        self._db.close()

    # ── writing, when the store may not be writable ──────────────────────────────────────

    @property
    def deferred(self) -> int:
        """Writes kept in memory, waiting for the store to be writable again."""
        return len(self._deferred)

    def retry(self) -> bool:
        """Write what was kept, oldest first; True when nothing is left waiting."""
        while self._deferred:
            try:
                self._run(self._deferred[0])
            except sqlite3.OperationalError as e:
                self._failed(e)
                return False
            self._deferred.popleft()
        self.error = ""
        return True

    def _write(self, *statements: Statement) -> None:
        """Run one write now, or keep it for later if the store cannot be written; later
        writes wait behind a kept one, so the store sees every write in its order."""
        if self._deferred and not self.retry():
            self._defer(statements)
            return
        try:
            self._run(statements)
        except sqlite3.OperationalError as e:
            self._failed(e)
            self._defer(statements)
            return
        self.error = ""

    def _write_now(self, *statements: Statement) -> None:
        """Run one write now, or raise StoreWriteError (for a request that depends on it)."""
        if not self.retry():
            raise self._write_error()
        try:
            self._run(statements)
        except sqlite3.OperationalError as e:
            self._failed(e)
            raise self._write_error() from e
        self.error = ""

    def _run(self, statements: Sequence[Statement]) -> None:
        with self._tx():
            for sql, params in statements:
                self._db.execute(sql, params)

    def _defer(self, statements: tuple[Statement, ...]) -> None:
        if len(self._deferred) >= MAX_DEFERRED:
            self._deferred.popleft()
            self.lost += 1
        self._deferred.append(statements)

    def _failed(self, e: sqlite3.OperationalError) -> None:
        if not self.error:  # (the first words stay until it recovers: one report, not a stream)
            self.error = f"store: cannot write {self.path}: {e}{_free_space(self.path)}"

    def _write_error(self) -> StoreWriteError:
        return StoreWriteError(
            self.error, hint="free some space (or repair the disk) under the state directory"
        )

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
        self._write(
            (
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
            ),
            (
                "DELETE FROM instances WHERE service = ? AND number <= ?",
                (service, number - KEEP_INSTANCES),
            ),
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
        self._write(
            (
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
        )

    def set_failure(self, service: str, number: int, failure: str) -> None:
        """Record why an ended instance failed (the lifecycle's words)."""
        self._write(
            (
                "UPDATE instances SET failure = ? WHERE service = ? AND number = ?",
                (failure, service, number),
            )
        )

    def set_diagnosis(self, service: str, number: int, diagnosis: dict[str, Any]) -> None:
        """Record the diagnosis of an ended (or never started) instance."""
        self._write(
            (
                "UPDATE instances SET diagnosis = ? WHERE service = ? AND number = ?",
                (json.dumps(diagnosis), service, number),
            )
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
        self._write(
            ("INSERT INTO boots VALUES (?, ?, ?, ?)", (service, instance, seconds, time)),
            (
                "DELETE FROM boots WHERE service = ? AND rowid NOT IN (SELECT rowid FROM boots"
                " WHERE service = ? ORDER BY time DESC LIMIT ?)",
                (service, service, KEEP_BOOTS),
            ),
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
        """Record an event; it has its id (and reaches followers) even if its write waits."""
        self._last_event_id += 1
        event_id = self._last_event_id
        insert: Statement = (
            "INSERT INTO events (id, time, service, instance, kind, reason, message)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event_id, time, service, instance, kind, reason, message),
        )
        if event_id % PRUNE_EVENTS_EVERY == 0:
            self._write(insert, ("DELETE FROM events WHERE id <= ?", (event_id - KEEP_EVENTS,)))
        else:
            self._write(insert)
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
        self._write(("INSERT OR REPLACE INTO services VALUES (?, ?)", (name, json.dumps(record))))

    def records(self) -> dict[str, dict[str, Any]]:
        rows = self._db.execute("SELECT name, record FROM services").fetchall()
        return {name: json.loads(record) for name, record in rows}

    # ── releases and deploys ─────────────────────────────────────────────────────────────

    def add_release(
        self,
        service: str,
        version: str,
        *,
        sha256: str | None,
        size: int | None,
        spec: dict[str, Any],
        created: float,
        outcome: str = "",
        message: str = "",
    ) -> ReleaseRow:
        """Record a new release (its version must be new for the service).

        Raises StoreWriteError if the store cannot be written: a release is a person's
        request, and they must hear that it was not recorded.
        """
        self._write_now(
            ("INSERT OR IGNORE INTO deployments (service) VALUES (?)", (service,)),
            ("UPDATE deployments SET serial = serial + 1 WHERE service = ?", (service,)),
            (
                "INSERT INTO releases (service, version, serial, sha256, size, spec, created,"
                " outcome, message) SELECT ?, ?, serial, ?, ?, ?, ?, ?, ? FROM deployments"
                " WHERE service = ?",
                (
                    service,
                    version,
                    sha256,
                    size,
                    _canonical(spec),
                    created,
                    outcome,
                    message,
                    service,
                ),
            ),
        )
        found = self.release(service, version)
        assert found is not None
        return found

    def next_version(self, service: str) -> str:
        """The label of the service's next release when none is given: v1, v2, … (never reused,
        even after the older ones were pruned)."""
        row = self._db.execute(
            "SELECT serial FROM deployments WHERE service = ?", (service,)
        ).fetchone()
        n = (row[0] if row else 0) + 1
        while self.release(service, f"v{n}") is not None:  # a label someone gave by hand
            n += 1
        return f"v{n}"

    def release(self, service: str, version: str) -> ReleaseRow | None:
        row = self._db.execute(
            f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE service = ? AND version = ?",
            (service, version),
        ).fetchone()
        return None if row is None else _release(row)

    def releases(self, service: str) -> list[ReleaseRow]:
        """The service's kept releases, newest first."""
        rows = self._db.execute(
            f"SELECT {_RELEASE_COLUMNS} FROM releases WHERE service = ? ORDER BY serial DESC",
            (service,),
        ).fetchall()
        return [_release(r) for r in rows]

    def set_release_outcome(
        self,
        service: str,
        version: str,
        outcome: str,
        message: str = "",
        diagnosis: dict[str, Any] | None = None,
    ) -> None:
        self._write(
            (
                "UPDATE releases SET outcome = ?, message = ?,"
                " diagnosis = coalesce(?, diagnosis) WHERE service = ? AND version = ?",
                (
                    outcome,
                    message,
                    json.dumps(diagnosis) if diagnosis is not None else None,
                    service,
                    version,
                ),
            )
        )

    def pointers(self, service: str) -> tuple[str | None, str | None]:
        """(current, known-good) release versions of the service."""
        row = self._db.execute(
            "SELECT current, known_good FROM deployments WHERE service = ?", (service,)
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def set_pointers(
        self, service: str, *, current: str | None = None, known_good: str | None = None
    ) -> None:
        """Move the current and/or known-good pointer (None: leave it as it is)."""
        self._write(
            ("INSERT OR IGNORE INTO deployments (service) VALUES (?)", (service,)),
            (
                "UPDATE deployments SET current = coalesce(?, current),"
                " known_good = coalesce(?, known_good) WHERE service = ?",
                (current, known_good, service),
            ),
        )

    def prune_releases(self, service: str, keep: int = KEEP_RELEASES) -> None:
        """Keep the newest `keep` releases, and always the current and the known-good."""
        # (the pointers are read when the write runs: a kept write sees the ones set before it)
        self._write(
            (
                "DELETE FROM releases WHERE service = :s AND version NOT IN"
                " (SELECT coalesce(current, '') FROM deployments WHERE service = :s"
                " UNION ALL SELECT coalesce(known_good, '') FROM deployments WHERE service = :s)"
                " AND serial NOT IN (SELECT serial FROM releases WHERE service = :s"
                " ORDER BY serial DESC LIMIT :keep)",
                {"s": service, "keep": keep},
            )
        )

    def payloads_in_use(self) -> set[str]:
        """The sha256 of every payload some kept release runs (the others may be removed)."""
        rows = self._db.execute("SELECT DISTINCT sha256 FROM releases WHERE sha256 IS NOT NULL")
        return {r[0] for r in rows}

    def add_deploy(
        self, service: str, version: str, *, started: float, by: str, gate: dict[str, Any]
    ) -> int:
        """Record a new deploy; its id. Raises StoreWriteError if the store cannot be written
        (a deploy is a person's request: it does not begin)."""
        self._write_now(
            (
                "INSERT INTO deploys (service, version, started, by, gate) VALUES (?, ?, ?, ?, ?)",
                (service, version, started, by, json.dumps(gate)),
            ),
            (
                "DELETE FROM deploys WHERE id <= (SELECT max(id) FROM deploys) - ?",
                (KEEP_DEPLOYS,),
            ),
        )
        (deploy_id,) = self._db.execute("SELECT max(id) FROM deploys").fetchone()
        return int(deploy_id)

    def save_deploy(
        self,
        deploy_id: int,
        gate: dict[str, Any],
        *,
        ended: float | None = None,
        sentence: str | None = None,
    ) -> None:
        """Save the gate after a step; `ended` once it is over, `sentence` once decided."""
        self._write(
            (
                "UPDATE deploys SET gate = ?, ended = coalesce(?, ended),"
                " sentence = coalesce(?, sentence) WHERE id = ?",
                (json.dumps(gate), ended, sentence, deploy_id),
            )
        )

    def unfinished_deploys(self) -> list[DeployRow]:
        """Deploys whose gate was not over when the agent that ran them ended."""
        rows = self._db.execute(
            f"SELECT {_DEPLOY_COLUMNS} FROM deploys WHERE ended IS NULL ORDER BY id"
        ).fetchall()
        return [_deploy(r) for r in rows]

    def deploys(self, service: str, limit: int = 20) -> list[DeployRow]:
        """The service's latest deploys, newest first."""
        rows = self._db.execute(
            f"SELECT {_DEPLOY_COLUMNS} FROM deploys WHERE service = ? ORDER BY id DESC LIMIT ?",
            (service, limit),
        ).fetchall()
        return [_deploy(r) for r in rows]


_RELEASE_COLUMNS = (
    "service, version, serial, sha256, size, spec, created, outcome, message, diagnosis"
)
_DEPLOY_COLUMNS = "id, service, version, started, ended, by, gate, sentence"


def _free_space(path: Path) -> str:
    """How much room is left where the store lives, as a note for an error message."""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return ""
    return f" ({format_bytes(st.f_bavail * st.f_frsize)} free on its filesystem)"


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _release(row: tuple[Any, ...]) -> ReleaseRow:
    service, version, serial, sha, size, spec, created, outcome, message, diagnosis = row
    return ReleaseRow(
        service,
        version,
        serial,
        sha,
        size,
        json.loads(spec),
        created,
        outcome,
        message,
        json.loads(diagnosis) if diagnosis else None,
    )


def _deploy(row: tuple[Any, ...]) -> DeployRow:
    deploy_id, service, version, started, ended, by, gate, sentence = row
    return DeployRow(deploy_id, service, version, started, ended, by, json.loads(gate), sentence)


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
