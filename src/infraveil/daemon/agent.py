"""The agent: one queue, one consumer, one owner of all mutable state.

Everything that happens — a process exit, a timer, an API command, a signal to the agent, a
memory sample — is put on one asyncio queue; `run()` takes items off it one at a time and is
the only code that changes service state. Signal handlers only enqueue. The API reads only
immutable `Snapshot`s, built on the first read after a change.
"""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from infraveil import __version__
from infraveil.core.errors import InfraveilError, StateDirError, UnknownServiceError
from infraveil.core.lifecycle import (
    DependenciesChanged,
    Event,
    ServiceRecord,
    StartRequested,
    State,
    StopRequested,
)
from infraveil.core.spec import Manifest, ServiceSpec
from infraveil.daemon.deploys import DeployRequest, Deploys, GateTimerDue, Row, VerifyDone
from infraveil.daemon.inputs import POLL_EVERY
from infraveil.daemon.probing import (
    NotifyReceived,
    Phase,
    ProbeDone,
    ProbeStats,
    ProbeView,
    probe_states,
)
from infraveil.daemon.supervisor import ExitObserved, Supervisor, TimerDue, record_from_json
from infraveil.runtime.cgroups import Cgroups
from infraveil.runtime.lock import AgentLock
from infraveil.runtime.payloads import PayloadStore
from infraveil.runtime.procfs import rss_by_group
from infraveil.store.db import EventRow, Store, StoreWriteError
from infraveil.store.logs import LogFiles


class Closable(Protocol):
    async def cleanup(self) -> None: ...


_NO_CHECKS: Mapping[Phase, ProbeView] = MappingProxyType({})

MEMORY_SAMPLE_EVERY = 10.0
"""Seconds between memory samples of every service (one pass over /proc, or its cgroup)."""
YIELD_EVERY = 0.005
"""Seconds of work on queued inputs after which the agent lets the event loop run."""
WATCHDOG_SAMPLE_EVERY = 1.0
"""Seconds between samples of the services whose memory limit the RSS watchdog enforces."""
ROOM_NEEDED = 64 * 1024
"""Bytes the agent must be able to write into its state directory to start."""


@dataclass(frozen=True)
class ServiceView:
    spec: ServiceSpec
    record: ServiceRecord
    started_wall: float | None
    rss: int | None
    peak_rss: int | None
    checks: Mapping[Phase, ProbeView] = field(default_factory=lambda: _NO_CHECKS)
    """The live instance's checks and their results, by phase (startup, ready, health)."""
    deadline: str = ""
    """The next startup deadline and where it comes from."""
    memory_limit: int | None = None
    memory_enforced_by: str = ""
    """"cgroup", "watchdog" or "" (no limit)."""
    notify_status: str = ""
    release: str | None = None
    """The version of the release it runs (None: it runs its manifest entry)."""
    deploying: str = ""
    """The phase of a deploy under way ("" when there is none)."""


@dataclass(frozen=True)
class Snapshot:
    """What the agent knows at one moment; never changes once published."""

    services: Mapping[str, ServiceView]
    pid: int
    started_wall: float
    state_dir: str
    manifest: str
    stopping: bool
    cgroups: str = ""
    """"cgroup v1", "cgroup v2", or why cgroups cannot be used."""
    starting: bool = False
    """Still going through the services to start them (at agent start)."""
    probes: ProbeStats | None = None
    store_error: str = ""
    """Why the store cannot be written now ("" while it can): the services run on regardless."""


@dataclass(frozen=True)
class HoldRequested:
    """`debug --hold`: restart the service with its command replaced by a wait."""


@dataclass(frozen=True)
class Command:
    service: str
    event: Event | HoldRequested
    reply: asyncio.Future[str | None]


@dataclass(frozen=True)
class DeployCommand:
    request: DeployRequest
    reply: asyncio.Future[asyncio.Queue[Row | None]]


@dataclass(frozen=True)
class Shutdown:
    force: bool = False
    keep_services: bool = False
    """Exit and leave every service running (an upgrade): the next agent adopts them."""


@dataclass(frozen=True)
class MemorySampled:
    rss_by_pid: Mapping[int, int]
    everyone: bool
    """A full sample; else only the groups the RSS watchdog enforces a limit on."""


@dataclass(frozen=True)
class InputsTick:
    """Time to look at what halted services depend on."""


@dataclass(frozen=True)
class StartNext:
    """Start the next service in dependency order (then queue another StartNext).

    One service per queue item, so that what the first services do (their probe results,
    their exits) is handled between the starts of the next ones: with hundreds of services,
    starting them all in one go would hold the loop for seconds and skew every boot time.
    """


@dataclass
class Agent:
    manifest: Manifest
    state_dir: Path
    on_event: Callable[[EventRow], None] = lambda row: None
    on_ready: Callable[[], None] = lambda: None
    serve_api: Callable[[Agent, Path], Awaitable[Closable]] | None = None
    """Starts the API on the agent's socket (the API sits above the daemon; the CLI wires it)."""
    base_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _snapshot: Snapshot | None = field(init=False, default=None)
    _dirty: bool = field(init=False, default=True)
    _waiting: int = field(init=False, default=0)
    """Callers in `wait_until`."""
    _queue: asyncio.Queue[object] = field(init=False)
    _changed: asyncio.Event = field(init=False)
    _watchers: set[asyncio.Queue[EventRow | None]] = field(init=False, default_factory=set)
    _stopping: bool = field(init=False, default=False)
    _leaving: bool = field(init=False, default=False)
    _store_error: str = field(init=False, default="")
    """The store error last reported (an event is recorded when it changes)."""
    _started_wall: float = field(init=False, default_factory=time.time)
    _views: dict[str, ServiceView] = field(init=False, default_factory=dict)
    _to_start: list[tuple[str, bool]] = field(init=False, default_factory=list)
    """(service, whether to start it) still to go through at startup, in dependency order."""
    _cgroups: Cgroups | None = field(init=False, default=None)
    use_cgroups: bool = field(
        default_factory=lambda: os.environ.get("INFRAVEIL_CGROUPS", "").lower() != "off"
    )
    """False (INFRAVEIL_CGROUPS=off): no cgroups; the RSS watchdog enforces `memory`."""

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "agent.sock"

    # ── running ──────────────────────────────────────────────────────────────────────────

    async def run(self) -> None:
        """Run until every service has stopped after a shutdown request."""
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._changed = asyncio.Event()
        prepare_state_dir(self.state_dir)
        raise_open_file_limit()
        lock = AgentLock(self.state_dir)
        lock.acquire()
        store = Store(self.state_dir / "state.db")
        self.store = store
        self.logs = LogFiles(self.state_dir / "logs")
        if self.use_cgroups:
            self._cgroups = Cgroups.detect(self.state_dir)
            if self._cgroups.available:
                self._cgroups.prune(keep=store.cgroups_in_use())
        self.supervisor = Supervisor(
            self.manifest,
            store,
            self.logs,
            self.state_dir / "run",
            loop,
            self._queue.put_nowait,
            self._event_recorded,
            base_env=self.base_env,
            cgroups=self._cgroups,
        )
        self.deploys = Deploys(
            self.supervisor,
            store,
            PayloadStore(self.state_dir / "releases"),
            loop,
            self._queue.put_nowait,
            self.base_env,
        )
        server: Closable | None = None
        tickers: list[asyncio.Task[None]] = []
        try:
            if self.serve_api is not None:
                server = await self.serve_api(self, self.socket_path)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._on_signal)
            self.supervisor.emit(
                None, "normal", "AgentStarted", f"agent {__version__} pid {os.getpid()}"
            )
            self._say_how_memory_is_limited()
            waiting = self.deploys.apply_releases()
            adopted = self._adopt_previous_instances()
            self._to_start = [
                (name, name not in adopted and name not in waiting)
                for name in self.manifest.start_order()
            ]
            self.deploys.resume()
            self._publish()
            self.on_ready()  # the API answers from here on; services start next
            self._queue.put_nowait(StartNext())
            tickers = [
                asyncio.create_task(self._sample_memory()),
                asyncio.create_task(self._tick(POLL_EVERY, InputsTick)),
            ]
            await self._consume()
            if not self._leaving:
                self.supervisor.emit(None, "normal", "AgentStopped", "every service stopped")
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            for ticker in tickers:
                ticker.cancel()
            for watcher in list(self._watchers):
                watcher.put_nowait(None)
            if server is not None:
                await server.cleanup()
                self.socket_path.unlink(missing_ok=True)  # no agent: no socket to find
            self.deploys.close()
            self.supervisor.close()
            self._release_cgroups()
            store.close()
            lock.release()

    def _release_cgroups(self) -> None:
        """Remove this agent's cgroup parent once no instance is left in it (best effort)."""
        cgroups = self._cgroups
        if cgroups is None or cgroups.parent is None or self.supervisor.live:
            return
        cgroups.prune(keep=())
        try:
            os.rmdir(cgroups.parent)
        except OSError:  # an instance that outlives the agent keeps it, as it should
            pass

    def _say_how_memory_is_limited(self) -> None:
        limited = [s.name for s in self.manifest.services.values() if s.memory is not None]
        if not limited or (self._cgroups is not None and self._cgroups.available):
            return
        why = self._cgroups.why_not if self._cgroups is not None else "cgroups are turned off"
        self.supervisor.emit(
            None,
            "warning",
            "NoCgroups",
            f"memory limits of {', '.join(limited)} are enforced by an RSS watchdog (sampled"
            f" every {WATCHDOG_SAMPLE_EVERY:.0f}s), not by the kernel: {why}",
        )

    def _adopt_previous_instances(self) -> set[str]:
        """Services whose instance, started by an earlier agent, is still running (kept as is).

        Every service also goes on numbering its instances where the store left off, so an
        agent restart (or `down` then `up`) never reuses an instance number, its record or
        its log file.
        """
        for name in self.manifest.services:
            newest = self.store.instances(name, limit=1)
            if newest:
                record = self.supervisor.records[name]
                self.supervisor.records[name] = replace(record, instance=newest[0].number)
        saved = {
            name: record_from_json(data)
            for name, data in self.store.records().items()
            if name in self.manifest.services
        }
        adopted = set()
        for row in self.store.running_instances():
            if self.supervisor.adopt(row, saved.get(row.service)):
                adopted.add(row.service)
        return adopted

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        since_yield = loop.time()
        while True:
            item = await self._queue.get()
            try:
                self._dispatch(item)
                self.deploys.flush()  # the gates hear what the lifecycle steps just did
            except (OSError, StoreWriteError) as e:
                self._report_trouble(item, e)
            self._watch_store()
            if self._leaving:
                self._publish()
                return
            if self._stopping and self._advance_shutdown():
                self._publish()
                return
            self._publish()
            if self._queue.empty():
                since_yield = loop.time()
            elif loop.time() - since_yield > YIELD_EVERY:
                # a long batch: let timers, I/O and API requests in
                await asyncio.sleep(0)
                since_yield = loop.time()

    def _dispatch(self, item: object) -> None:
        match item:
            case StartNext():
                self._start_next()
            case ExitObserved():
                self.supervisor.exited(item)
            case ProbeDone():
                self.supervisor.probe_done(item)
            case NotifyReceived():
                self.supervisor.notified(item)
            case TimerDue():
                self.supervisor.timer_due(item)
            case Command(service=name, event=event, reply=reply):
                if name not in self.supervisor.records:
                    reply.set_exception(UnknownServiceError(name, list(self.manifest.services)))
                elif (busy := self._busy(name)) is not None:
                    reply.set_result(busy)
                elif isinstance(event, HoldRequested):
                    reply.set_result(self.supervisor.hold(name))
                else:
                    self.supervisor.release(name)  # any request ends a hold
                    reply.set_result(self.supervisor.handle(name, event))
            case DeployCommand(request=request, reply=reply):
                try:
                    reply.set_result(self.deploys.request(request))
                except InfraveilError as e:
                    reply.set_exception(e)
            case VerifyDone():
                self.deploys.verified(item)
            case GateTimerDue():
                self.deploys.timer_due(item)
            case MemorySampled(rss_by_pid=rss, everyone=everyone):
                self.supervisor.memory_sampled(rss, everyone=everyone)
            case InputsTick():
                self.store.retry()  # a quiet agent notices too that there is room again
                self.supervisor.inputs_tick()
            case Shutdown(keep_services=True):
                self._leave()
            case Shutdown(force=force):
                if not self._stopping:
                    self._stopping = True
                    self.deploys.freeze()  # a gate ends when the next agent starts
                    self.supervisor.emit(None, "normal", "ShuttingDown", "stopping every service")
                elif force:
                    self.supervisor.kill_all()

    def _leave(self) -> None:
        """Exit without stopping anything: the services go on writing into their FIFOs (they
        hold them open read-write, so no write fails while no agent reads), and the next
        agent adopts them from their instance records. This is how the agent is upgraded."""
        self._leaving = True
        self._to_start.clear()
        self.deploys.freeze()  # a gate ends when the next agent starts
        running = sorted(self.supervisor.live)
        names = ", ".join(running) if running else "none"
        self.supervisor.emit(
            None,
            "normal",
            "AgentLeaving",
            f"exiting and leaving {len(running)} services running for the next agent: {names}",
        )

    def _watch_store(self) -> None:
        """Report the store becoming unwritable (and writable again) once, as it happens."""
        error = self.store.error
        if error == self._store_error:
            return
        self._store_error = error
        if error:
            self.supervisor.emit(
                None,
                "warning",
                "StoreError",
                f"{error}; every service keeps running, and what the agent records waits in"
                " memory until it can be written",
            )
        else:
            lost = self.store.lost
            self.supervisor.emit(
                None,
                "normal",
                "StoreRecovered",
                f"store: {self.store.path} can be written again; what waited in memory is written"
                + (f", but for the {lost} oldest records, which were lost" if lost else ""),
            )
        self._publish()

    def _report_trouble(self, item: object, e: OSError | StoreWriteError) -> None:
        """A disk that fails under the agent (a full disk, an I/O error) must not end it: its
        services matter more than one of its records or log lines."""
        what = str(e)
        if isinstance(e, OSError):  # `PATH: No space left on device`, as far as it says
            what = f"{e.filename}: {e.strerror}" if e.filename else (e.strerror or what)
        if isinstance(item, Command | DeployCommand) and not item.reply.done():
            item.reply.set_exception(StateDirError(what, hint="the agent goes on; try again"))
        try:
            self.supervisor.emit(
                None,
                "warning",
                "AgentError",
                f"could not handle {type(item).__name__}: {what}; the agent goes on",
            )
        except OSError:  # (the emit itself reaches the agent's own log, on the same disk)
            pass

    def _busy(self, name: str) -> str | None:
        """Why a person may not start, stop or restart `name` now (None: they may)."""
        deploy = self.deploys.active.get(name)  # (a release being watched does not hold it)
        if deploy is not None:
            return (
                f"a deploy of {deploy.gate.version} to {name} is under way ({deploy.gate.phase}):"
                f" wait for it to end (`infraveil releases {name}`)"
            )
        if self.manifest.services[name].payload and name not in self.deploys.current:
            return (
                f"{name} has no release yet: deploy one with"
                f" `infraveil deploy {name} --payload FILE|DIR`"
            )
        return None

    def _start_next(self) -> None:
        if not self._to_start or self._stopping:
            self._to_start.clear()
            return
        name, start = self._to_start.pop(0)
        self.supervisor.handle(name, DependenciesChanged(self.supervisor.waiting_for(name)))
        if start:
            self.supervisor.handle(name, StartRequested())
        if self._to_start:
            self._queue.put_nowait(StartNext())

    def _advance_shutdown(self) -> bool:
        """Stop each service once nothing that depends on it is still up; True when all are down."""
        sup = self.supervisor
        for name in reversed(self.manifest.start_order()):
            record = sup.records[name]
            if record.state in (State.STOPPED, State.STOPPING):
                continue
            if any(sup.records[d].live for d in self.manifest.dependants(name)):
                continue
            sup.handle(name, StopRequested())
        return not sup.live and all(not r.live for r in sup.records.values())

    def _on_signal(self) -> None:
        self._queue.put_nowait(Shutdown(force=self._stopping))

    async def _sample_memory(self) -> None:
        """Every second for the watchdog's few groups; every 10 s for every service."""
        every = round(MEMORY_SAMPLE_EVERY / WATCHDOG_SAMPLE_EVERY)
        tick = 0
        while True:
            await asyncio.sleep(WATCHDOG_SAMPLE_EVERY)
            tick += 1
            if tick % every == 0:
                groups = {live.pid for live in self.supervisor.live.values() if live.cgroup is None}
                self._queue.put_nowait(MemorySampled(rss_by_group(groups), everyone=True))
            elif groups := self.supervisor.watchdog_groups():
                self._queue.put_nowait(MemorySampled(rss_by_group(groups), everyone=False))

    async def _tick(self, every: float, item: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(every)
            self._queue.put_nowait(item())

    # ── for the API ──────────────────────────────────────────────────────────────────────

    async def command(self, service: str, event: Event | HoldRequested) -> str | None:
        """Queue a command for one service; the refusal reason, or None when accepted."""
        reply: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Command(service, event, reply))
        return await reply

    async def deploy(self, request: DeployRequest) -> asyncio.Queue[Row | None]:
        """Begin a deploy or rollback; its progress rows (then None) arrive on the queue."""
        reply: asyncio.Future[asyncio.Queue[Row | None]] = (
            asyncio.get_running_loop().create_future()
        )
        self._queue.put_nowait(DeployCommand(request, reply))
        return await reply

    def shutdown(self, *, keep_services: bool = False) -> None:
        """Stop every service, then exit; or (keep_services) exit and leave them running."""
        self._queue.put_nowait(Shutdown(keep_services=keep_services))

    async def wait_until(self, done: Callable[[Snapshot], bool], timeout: float) -> bool:
        """Wait for a published snapshot for which `done` holds; False on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not done(self.snapshot):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            changed = self._changed
            self._waiting += 1
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return done(self.snapshot)
            finally:
                self._waiting -= 1
        return True

    def watch_events(self) -> asyncio.Queue[EventRow | None]:
        queue: asyncio.Queue[EventRow | None] = asyncio.Queue(maxsize=10_000)
        self._watchers.add(queue)
        return queue

    def unwatch_events(self, queue: asyncio.Queue[EventRow | None]) -> None:
        self._watchers.discard(queue)

    def _event_recorded(self, row: EventRow) -> None:
        for watcher in list(self._watchers):
            try:
                watcher.put_nowait(row)
            except asyncio.QueueFull:  # a follower that stopped reading is let go
                self._watchers.discard(watcher)
                watcher.get_nowait()  # make room for the end-of-stream marker
                watcher.put_nowait(None)
        try:
            self.on_event(row)
        except OSError:  # the agent's own log, on a full disk: the event is in the store
            pass

    @property
    def snapshot(self) -> Snapshot:
        """What the agent knows now, as an immutable snapshot.

        Built when first read after a change, not at every change: with hundreds of services
        probed every few seconds, most states are never looked at. Reads happen only between
        two inputs (everything runs on one loop), so a snapshot is always consistent.
        """
        if self._dirty or self._snapshot is None:
            self._snapshot = self._build_snapshot()
            self._dirty = False
        return self._snapshot

    def _publish(self) -> None:
        """The state changed: the next read builds a fresh snapshot; waiters look again."""
        self._dirty = True
        if self._waiting:  # (most changes have nobody waiting: no new Event for them)
            self._changed.set()
            self._changed = asyncio.Event()

    def _build_snapshot(self) -> Snapshot:
        """A new snapshot; only the services that changed get new views."""
        sup = self.supervisor
        changed = sup.changed if self._views else self.manifest.services
        for name in changed:  # every change of a record or a live instance marks its service
            self._views[name] = self._view(name)
        sup.changed.clear()
        cgroups = self._cgroups
        if cgroups is None:
            cgroups_text = "off"
        elif cgroups.available:
            cgroups_text = f"cgroup v{cgroups.version}"
        else:
            cgroups_text = f"unavailable: {cgroups.why_not}"
        return Snapshot(
            services=MappingProxyType(dict(self._views)),  # in manifest order: built so first
            pid=os.getpid(),
            started_wall=self._started_wall,
            state_dir=str(self.state_dir),
            manifest=self.manifest.path,
            stopping=self._stopping,
            cgroups=cgroups_text,
            starting=bool(self._to_start),
            probes=replace(sup.prober.stats),  # a copy: the prober's own keeps counting
            store_error=self._store_error,
        )

    def _view(self, name: str) -> ServiceView:
        sup = self.supervisor
        spec = sup.manifest.services[name]
        live = sup.live.get(name)
        probes = sup.prober.instances.get(name)
        deploy = self.deploys.under_way(name)
        enforced = ""
        if spec.memory is not None and live is not None:
            enforced = "cgroup" if live.cgroup is not None else "watchdog"
        return ServiceView(
            spec=spec,
            record=sup.records[name],
            started_wall=live.started_wall if live else None,
            rss=live.rss if live else None,
            peak_rss=live.peak_rss if live else None,
            checks=probe_states(probes) if probes is not None else _NO_CHECKS,
            deadline=sup.deadline_of(name).describe() if spec.startup_check is not None else "",
            memory_limit=spec.memory,
            memory_enforced_by=enforced,
            notify_status=probes.notify_status if probes is not None else "",
            release=self.deploys.current.get(name),
            deploying=str(deploy.gate.phase) if deploy is not None else "",
        )


def raise_open_file_limit() -> None:
    """Lift the agent's soft limit on open files to its hard limit.

    The agent holds about three descriptors per service (pidfd, output pipe, log file), so the
    common soft limit of 1024 would stop it at ~330 services. Services inherit the raised
    limit; a program that still uses select() and opens more than 1024 files would notice.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):  # a container may refuse: keep what we have
            pass


def prepare_state_dir(state_dir: Path) -> None:
    """Create the state directory (0700: only its owner may read logs or drive the agent)."""
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("run", "logs"):
            (state_dir / sub).mkdir(mode=0o700, exist_ok=True)
    except OSError as e:
        raise StateDirError(
            f"cannot use state directory {state_dir}: cannot create {e.filename}: {e.strerror}",
            hint="choose a writable --state-dir (or INFRAVEIL_STATE_DIR)",
        ) from e
    # An empty file can be created on a full disk: write some real bytes, as the store will.
    probe = state_dir / ".write-test"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            left = ROOM_NEEDED
            while left > 0:  # (a nearly full disk takes part of a write: the next one fails)
                left -= os.write(fd, bytes(left))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        full = e.errno in (errno.ENOSPC, errno.EDQUOT)
        raise StateDirError(
            f"cannot use state directory {state_dir}: cannot write {probe}: {e.strerror}",
            hint=("free some space there" if full else "make it writable for the agent's user")
            + ", or choose another --state-dir (or INFRAVEIL_STATE_DIR)",
        ) from e
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:  # (a read-only state dir: its error is the one to report)
            pass
