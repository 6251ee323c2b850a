"""Carries out what the lifecycle core decides, for every service of one manifest.

The supervisor is driven by the agent's single loop: `handle()` steps the pure core with an
event, then executes the actions it returns — spawning, signalling, timers, events. An action
whose result is itself an event (a spawn gives `Spawned` or `SpawnFailed`; a change in a
service's state changes what its dependants wait for) is fed back at once, before the next
queued event, so no other event can come between an action and its result.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from infraveil.core.exitstatus import ExitStatus
from infraveil.core.lifecycle import (
    CancelTimer,
    DependenciesChanged,
    Emit,
    Event,
    ProcessExited,
    Refused,
    ServiceRecord,
    SetTimer,
    SignalGroup,
    Spawn,
    Spawned,
    SpawnFailed,
    State,
    TimerFired,
    TimerKind,
    step,
)
from infraveil.core.spec import Manifest
from infraveil.core.units import format_duration
from infraveil.runtime.capture import FifoReader
from infraveil.runtime.environment import service_env
from infraveil.runtime.processes import (
    Exit,
    ExitWatcher,
    Launch,
    SpawnError,
    make_fifo,
    open_fifo_reader,
    signal_group,
    spawn,
)
from infraveil.runtime.procfs import process_start_time
from infraveil.store.db import EventRow, InstanceRow, Store
from infraveil.store.logs import InstanceLog, LogFiles


@dataclass
class LiveInstance:
    """The OS resources of one running instance: its pid, its output pipe and its log."""

    service: str
    number: int
    pid: int
    started_wall: float
    fifo: str
    reader: FifoReader
    log: InstanceLog
    rss: int | None = None
    peak_rss: int | None = None


@dataclass(frozen=True)
class ExitObserved:
    """Queued by the exit watcher; handled by the loop like every other input."""

    service: str
    instance: int
    exit: Exit


@dataclass(frozen=True)
class TimerDue:
    service: str
    event: TimerFired


Enqueue = Callable[[object], None]


@dataclass
class Supervisor:
    manifest: Manifest
    store: Store
    logs: LogFiles
    run_dir: Path
    loop: asyncio.AbstractEventLoop
    enqueue: Enqueue
    on_event: Callable[[EventRow], None]
    base_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    records: dict[str, ServiceRecord] = field(init=False)
    live: dict[str, LiveInstance] = field(init=False, default_factory=dict)
    _timers: dict[tuple[str, TimerKind], asyncio.TimerHandle] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self.watcher = ExitWatcher(self.loop)
        self.records = {
            name: ServiceRecord(
                name, stop_signal=int(spec.stop_signal), stop_timeout=spec.stop_timeout
            )
            for name, spec in self.manifest.services.items()
        }

    # ── input ────────────────────────────────────────────────────────────────────────────

    def handle(self, name: str, event: Event) -> str | None:
        """Step `name` with `event` and carry out the actions; the refusal reason, if refused."""
        refused: str | None = None
        work: list[tuple[str, Event]] = [(name, event)]
        while work:
            service, ev = work.pop(0)
            before = self.records[service]
            after, actions = step(before, ev, time.monotonic())
            self.records[service] = after
            for action in actions:
                if isinstance(action, Refused):
                    if service == name and ev is event:
                        refused = action.reason
                    continue
                follow = self._execute(service, action)
                if follow is not None:
                    work.append((service, follow))
            if (before.state is State.RUNNING) != (after.state is State.RUNNING):
                work.extend(self._dependants_changed(service))
            if after != before:
                self.store.save_record(service, _record_json(self.records[service]))
        return refused

    def exited(self, observed: ExitObserved) -> None:
        """An instance ended: keep its last output, clean up its group, then tell the core."""
        live = self.live.get(observed.service)
        if live is None or live.number != observed.instance:
            return
        del self.live[observed.service]
        wall = time.time()
        live.reader.drain()  # its last lines are in the pipe now: never lose them
        signal_group(live.pid, signal.SIGKILL)  # nothing of an ended instance outlives it
        live.reader.close()
        _unlink(live.fifo)
        status = observed.exit.status
        ran = format_duration(wall - live.started_wall)
        live.log.mark(f"instance {live.number} {status.describe()} after {ran}", wall)
        live.log.close(wall)
        self.store.end_instance(
            live.service, live.number, ended=wall, exit=status, peak_rss=live.peak_rss
        )
        self.handle(live.service, ProcessExited(live.number, status, live.log.last_line))

    def adopt(self, row: InstanceRow, saved: ServiceRecord | None) -> bool:
        """Take over an instance a previous agent started, if it is still that process.

        The pid alone is not proof (pids are reused): its start time must match the one
        recorded when it was spawned. Its output waited in its FIFO; reading goes on from there.
        """
        name = row.service
        alive = row.pid is not None and _same_process(row.pid, row.proc_start)
        wall = time.time()
        if not alive or name not in self.records or row.pid is None:
            status = ExitStatus(unknown=True)
            self.store.end_instance(name, row.number, ended=wall, exit=status, peak_rss=None)
            self.emit(
                name,
                "warning",
                "Exited",
                f"instance {row.number} {status.describe()}",
                instance=row.number,
            )
            if name in self.records and saved is not None:
                # (the instance counter already stands at the newest number in the store)
                self.records[name] = replace(
                    self.records[name],
                    restarts=saved.restarts,
                    failures=saved.failures,
                    last_exit=status,
                )
            return False
        fifo = str(self.run_dir / f"{name}.{row.number}.pipe")
        log = self.logs.open(name, row.number)
        log.mark(f"instance {row.number} adopted by a new agent (pid {os.getpid()})", wall)
        reader = FifoReader(self.loop, open_fifo_reader(fifo), lambda d: log.write(d, time.time()))
        self.live[name] = LiveInstance(name, row.number, row.pid, row.started, fifo, reader, log)
        number = row.number
        self.watcher.watch(row.pid, lambda exit: self.enqueue(ExitObserved(name, number, exit)))
        now = time.monotonic()
        base = saved if saved is not None else self.records[name]
        self.records[name] = replace(
            self.records[name],
            state=State.RUNNING,
            instance=row.number,
            pid=row.pid,
            started_at=now - (wall - row.started),
            running_since=now,
            restarts=base.restarts,
            failures=base.failures,
            last_exit=base.last_exit,
            reason="",
        )
        self.emit(
            name,
            "normal",
            "Adopted",
            f"instance {row.number} (pid {row.pid}) kept running",
            instance=row.number,
        )
        return True

    def memory_sampled(self, rss_by_pid: Mapping[int, int]) -> None:
        for live in self.live.values():
            rss = rss_by_pid.get(live.pid)
            if rss is not None:
                live.rss = rss
                live.peak_rss = max(live.peak_rss or 0, rss)

    # ── actions ──────────────────────────────────────────────────────────────────────────

    def _execute(self, name: str, action: object) -> Event | None:
        match action:
            case Spawn(instance=n):
                return self._spawn(name, n)
            case SignalGroup(pid=pid, signum=signum):
                signal_group(pid, signum)
            case SetTimer(kind=kind, at=at, instance=n):
                self._cancel_timer(name, kind)
                due = TimerDue(name, TimerFired(kind, n))
                self._timers[(name, kind)] = self.loop.call_at(at, self.enqueue, due)
            case CancelTimer(kind=kind):
                self._cancel_timer(name, kind)
            case Emit(kind=kind, reason=reason, message=message):
                self.emit(name, kind, reason, message, instance=self.records[name].instance)
        return None

    def emit(
        self, service: str | None, kind: str, reason: str, message: str, instance: int | None = None
    ) -> EventRow:
        row = self.store.add_event(
            time=time.time(),
            service=service,
            instance=instance,
            kind=kind,
            reason=reason,
            message=message,
        )
        self.on_event(row)
        return row

    def _spawn(self, name: str, number: int) -> Event:
        spec = self.manifest.services[name]
        wall = time.time()
        log = self.logs.open(name, number)
        self.logs.prune(name)
        log.mark(f"starting instance {number}: {shlex.join(spec.command)}", wall)
        fifo = str(self.run_dir / f"{name}.{number}.pipe")
        rfd = make_fifo(fifo)
        try:
            env = service_env(spec, number, self.base_env)
            child = spawn(Launch(spec.command, spec.cwd, env, fifo, spec.user))
        except SpawnError as e:
            os.close(rfd)
            _unlink(fifo)
            log.mark(f"instance {number} could not start: {e}", wall)
            log.close(wall)
            self.store.add_instance(
                name,
                number,
                pid=None,
                proc_start=None,
                started=wall,
                command=spec.command,
                error=str(e),
            )
            return SpawnFailed(number, str(e), e.deterministic)
        pid = child.pid
        reader = FifoReader(self.loop, rfd, lambda data: log.write(data, time.time()))
        self.live[name] = LiveInstance(name, number, pid, wall, fifo, reader, log)
        self.watcher.watch(pid, lambda exit: self.enqueue(ExitObserved(name, number, exit)), child)
        self.store.add_instance(
            name,
            number,
            pid=pid,
            proc_start=process_start_time(pid),
            started=wall,
            command=spec.command,
        )
        return Spawned(number, pid)

    def _cancel_timer(self, name: str, kind: TimerKind) -> None:
        handle = self._timers.pop((name, kind), None)
        if handle is not None:
            handle.cancel()

    def _dependants_changed(self, name: str) -> list[tuple[str, Event]]:
        return [
            (d, DependenciesChanged(self.waiting_for(d))) for d in self.manifest.dependants(name)
        ]

    def waiting_for(self, name: str) -> tuple[str, ...]:
        """The dependencies of `name` that are not running."""
        deps = self.manifest.services[name].depends_on
        return tuple(d for d in deps if self.records[d].state is not State.RUNNING)

    # ── shutdown ─────────────────────────────────────────────────────────────────────────

    def kill_all(self) -> None:
        """SIGKILL every live group at once (a second Ctrl-C)."""
        for live in self.live.values():
            signal_group(live.pid, signal.SIGKILL)

    def close(self) -> None:
        """Let go of every OS resource; services still running keep running."""
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for live in self.live.values():
            live.reader.close()
            live.log.close(time.time())
        self.watcher.close()


def _record_json(record: ServiceRecord) -> dict[str, Any]:
    data = asdict(record)  # the nested ExitStatus becomes a dict too
    data["state"] = str(record.state)
    return data


def record_from_json(data: dict[str, Any]) -> ServiceRecord:
    exit_data = data.get("last_exit")
    return ServiceRecord(
        **{
            **data,
            "state": State(data["state"]),
            "last_exit": ExitStatus(**exit_data) if exit_data else None,
            "waiting_for": tuple(data.get("waiting_for", ())),
        }
    )


def _same_process(pid: int, recorded_start: float | None) -> bool:
    started = process_start_time(pid)
    return (
        started is not None and recorded_start is not None and abs(started - recorded_start) < 0.05
    )


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
