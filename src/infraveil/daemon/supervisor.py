"""Carries out what the lifecycle core decides, for every service of one manifest.

The supervisor is driven by the agent's single loop: `handle()` steps the pure core with an
event, then executes the actions it returns — spawning, signalling, timers, events. An action
whose result is itself an event (a spawn gives `Spawned` or `SpawnFailed`; a change in a
service's readiness changes what its dependants wait for) is fed back at once, before the next
queued event, so no other event can come between an action and its result.

It also turns the runtime's observations into lifecycle events: probe results (through the
verdicts of `core.health`), sd_notify messages, memory samples, and changes to the files a
halted service depends on.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from infraveil.core.checks import CheckKind
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, PreflightProblem
from infraveil.core.diagnosis.finding import Verdict
from infraveil.core.errors import ManifestError
from infraveil.core.exitstatus import ExitStatus
from infraveil.core.health import (
    CheckState,
    Deadline,
    liveness_excuse,
    startup_deadline,
    stays_unhealthy,
    typical_boot,
    unhealthy_summary,
)
from infraveil.core.lifecycle import (
    CancelTimer,
    DependenciesChanged,
    Emit,
    Event,
    InputChanged,
    LivenessFailed,
    LivenessRecovered,
    MemoryExceeded,
    ProcessExited,
    ReadinessChanged,
    RecordBoot,
    RecordFailure,
    Refused,
    RestartRequested,
    ServiceRecord,
    SetTimer,
    SignalGroup,
    Spawn,
    Spawned,
    SpawnFailed,
    StartRequested,
    StartupTimedOut,
    State,
    TimerFired,
    TimerKind,
    step,
)
from infraveil.core.spec import Manifest, ServiceSpec
from infraveil.core.units import format_bytes, format_duration
from infraveil.daemon.diagnosing import dependency_facts, exit_facts, start_facts
from infraveil.daemon.inputs import InputWatch, inputs_of
from infraveil.daemon.probing import (
    NotifyReceived,
    Phase,
    ProbeDone,
    Prober,
    history_json,
    needs_notify,
    probe_states,
)
from infraveil.runtime.capture import FifoReader, Spool
from infraveil.runtime.cgroups import CgroupError, Cgroups, InstanceCgroup, KernelLog
from infraveil.runtime.environment import known_secrets, remember_secrets_of, service_env
from infraveil.runtime.manifest_file import load_manifest
from infraveil.runtime.notify import NotifySocket
from infraveil.runtime.preflight import preflight
from infraveil.runtime.processes import (
    Exit,
    ExitWatcher,
    Launch,
    SpawnError,
    make_fifo,
    open_fifo_reader,
    popen_user_kwargs,
    signal_group,
    spawn,
)
from infraveil.runtime.procfs import process_start_time
from infraveil.store.db import EventRow, InstanceRow, Store
from infraveil.store.logs import InstanceLog, LogFiles, restore_position

HOLD_COMMAND = (sys.executable, "-c", "import signal; signal.pause()")
"""What a held service runs: a process that waits, in the service's place, until stopped."""
REMOVED_STOP_TIMEOUT = 10.0
"""Seconds between SIGTERM and SIGKILL for an instance whose service left the manifest."""


class PreflightFailed(Exception):
    """Preflight found problems: the instance is not started (reported like a spawn error)."""

    def __init__(self, problems: list[PreflightProblem]) -> None:
        super().__init__("; ".join(p.detail for p in problems))
        self.problems = problems
        # a port held by someone else may be let go of; everything else needs a change
        self.deterministic = any(p.category != Category.PORT_IN_USE for p in problems)


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
    cgroup: InstanceCgroup | None = None
    memory_limit: int | None = None
    started_mono: float = 0.0

    def sample(self, rss: int | None) -> None:
        if rss is not None:
            self.rss = rss
            self.peak_rss = max(self.peak_rss or 0, rss)

    def sample_peak(self, peak: int | None) -> None:
        if peak is not None:
            self.peak_rss = max(self.peak_rss or 0, peak)


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
    cgroups: Cgroups | None = None
    """Where instance cgroups go; None (or unavailable): the RSS watchdog enforces `memory`."""
    records: dict[str, ServiceRecord] = field(init=False)
    live: dict[str, LiveInstance] = field(init=False, default_factory=dict)
    changed: set[str] = field(init=False, default_factory=set)
    """Services whose view changed since the agent last published (it clears this)."""
    _timers: dict[tuple[str, TimerKind], asyncio.TimerHandle] = field(
        init=False, default_factory=dict
    )
    _boots: dict[str, list[float]] = field(init=False, default_factory=dict)
    _notify: dict[str, NotifySocket] = field(init=False, default_factory=dict)
    """Notify sockets of instances spawned and not yet handed to the prober."""
    _probe_results: dict[tuple[str, int], dict[str, Any]] = field(init=False, default_factory=dict)
    """Probe histories of ended probing, kept for their instance's record."""
    _manifest_mtime: int | None = field(init=False, default=None)
    _startup_last: dict[str, str] = field(init=False, default_factory=dict)
    """What each service's startup check said when its last startup deadline passed."""
    _leftover_fifos: dict[str, list[str]] | None = field(init=False, default=None)
    """FIFOs found in the run directory at the agent's start, by service, not yet looked at."""
    held: dict[str, ServiceSpec] = field(init=False, default_factory=dict)
    """Services held by `debug --hold`, with the spec they run with otherwise."""
    released: dict[str, ServiceSpec] = field(init=False, default_factory=dict)
    """Services that run a release, with the manifest entry of that release: their entry
    changes only through `deploy`."""
    fast_startup: set[str] = field(init=False, default_factory=set)
    """Services whose next instances probe their startup fast (a release in the deploy gate)."""
    on_step: Callable[[str, ServiceRecord, ServiceRecord, tuple[object, ...]], None] | None = None
    _logs_error: str = field(init=False, default="")
    """The log write error last reported (an event is recorded when it changes)."""
    """Told of every step of a service's lifecycle (the deploy gates watch their releases)."""

    def __post_init__(self) -> None:
        self.watcher = ExitWatcher(self.loop)
        self.records = {name: _fresh_record(spec) for name, spec in self.manifest.services.items()}
        self.prober = Prober(
            self.loop,
            self.enqueue,
            env_for=self._probe_env,
            popen_for=lambda name: popen_user_kwargs(self.manifest.services[name].user),
            cwd_for=lambda name: self.manifest.services[name].cwd,
        )
        self.inputs = InputWatch()
        self.kernel_log = KernelLog()
        for spec in self.manifest.services.values():  # (adopted instances speak before a spawn)
            remember_secrets_of(spec, self.base_env)

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
                # an event about an instance (its exit, a timer of its) is recorded with that
                # instance, even when the same step already numbered the next one
                about: int | None = getattr(ev, "instance", None)
                follow = self._execute(service, action, about)
                if follow is not None:
                    work.append((service, follow))
            after = self.records[service]
            if self.on_step is not None:
                self.on_step(service, before, after, actions)
            if after != before:
                self._state_changed(service, before, after)
                if before.ready != after.ready:
                    work.extend(self._dependants_changed(service))
                self.store.save_record(service, _record_json(after))
        self._watch_logs()  # (a start or an exit marker may have found the disk full)
        return refused

    def _state_changed(self, name: str, before: ServiceRecord, after: ServiceRecord) -> None:
        """Start, switch or stop the instance's probes, and watch a halted service's inputs."""
        self.changed.add(name)
        spec = self.manifest.services[name]
        if after.state is State.STARTING and after.pid is not None and before.pid is None:
            notify = self._notify.pop(name, None)
            fast = name in self.fast_startup
            self.prober.start(
                name, after.instance, after.pid, spec, running=False, notify=notify, fast=fast
            )
        elif after.state is State.RUNNING and before.state is State.STARTING:
            self.prober.now_running(name)
        elif after.state not in (State.STARTING, State.RUNNING):
            ended = self.prober.stop(name)
            if ended is not None and ended.states:
                self._probe_results[(name, ended.instance)] = history_json(probe_states(ended))
        if after.state is State.FAILED and before.state is not State.FAILED:
            self.inputs.watch(name, inputs_of(spec, self.manifest.path, after.reason))
        elif after.state is not State.FAILED and before.state is State.FAILED:
            self.inputs.forget(name)

    def exited(self, observed: ExitObserved) -> None:
        """An instance ended: keep its last output, clean up its group, then tell the core."""
        live = self.live.get(observed.service)
        if live is None or live.number != observed.instance:
            return
        del self.live[observed.service]
        wall = time.time()
        name = observed.service
        live.reader.drain()  # its last lines are in the pipe now: never lose them
        status = observed.exit.status
        oom = self.records[name].kill_signature == "oom"  # the RSS watchdog killed it
        if live.cgroup is not None:
            live.sample_peak(live.cgroup.peak_memory())
            oom = oom or live.cgroup.oom_kills() > 0
            live.cgroup.kill()  # nothing of an ended instance outlives it, not even a setsid
        elif status.signal == signal.SIGKILL and not self.records[name].kill_reason:
            # no cgroup to ask: the kernel log says whether its OOM killer sent this SIGKILL
            oom = self.kernel_log.oom_killed(live.pid, since=live.started_mono) is True
        live.sample_peak(observed.exit.peak_rss)  # wait4's: the peak of its largest process
        signal_group(live.pid, signal.SIGKILL)
        live.reader.close()
        _unlink(live.fifo)
        _unlink(_spool_path(live.fifo))
        if live.cgroup is not None and not live.cgroup.remove():
            self.loop.call_later(1.0, _remove_later, live.cgroup)
        ran = format_duration(wall - live.started_wall)
        said = "was OOM-killed" if oom else status.describe()
        live.log.mark(f"instance {live.number} {said} after {ran}", wall)
        live.log.close(wall)
        probing = self.prober.stop(name)
        if probing is not None and probing.instance == live.number and probing.states:
            self._probe_results[(name, live.number)] = history_json(probe_states(probing))
        probes = self._probe_results.pop((name, live.number), None)
        self.store.end_instance(
            name,
            live.number,
            ended=wall,
            exit=status,
            peak_rss=live.peak_rss,
            oom=oom,
            probes=probes,
        )
        memory = ""
        if live.memory_limit is not None:
            memory = f"limit {format_bytes(live.memory_limit)}, peak {format_bytes(live.peak_rss)}"
        elif live.peak_rss is not None:
            memory = f"peak {format_bytes(live.peak_rss)}"
        record = self.records[name]
        verdict = None
        if record.state is not State.STOPPING or record.kill_reason:
            # a failure, not a stop someone asked for: explain it before the lifecycle decides
            facts = exit_facts(
                self.manifest.services[name],
                record,
                number=live.number,
                status=status,
                log_path=self.logs.path(name, live.number),
                run_seconds=time.monotonic() - live.started_mono,
                oom=oom,
                memory_limit=live.memory_limit,
                peak_memory=live.peak_rss,
                probes=probes,
                dependencies=dependency_facts(self.manifest.services[name], self.records),
            )
            verdict = self._diagnose(name, live.number, facts)
        exited = ProcessExited(
            live.number,
            status,
            known_secrets().text(live.log.last_line),  # it becomes the reason, events, a deploy's
            oom=oom,
            memory=memory,
            verdict=verdict,
        )
        self.handle(name, exited)

    def _diagnose(self, name: str, number: int, facts: Facts) -> Verdict:
        """Run the engine on an instance's failure and keep the answer with the instance."""
        diagnosis = diagnose(facts)
        # its evidence quotes the service's own words, which may hold a secret value
        self.store.set_diagnosis(name, number, known_secrets().json(diagnosis.as_dict()))
        return diagnosis.verdict

    def adopt(self, row: InstanceRow, saved: ServiceRecord | None) -> bool:
        """Take over an instance a previous agent started, if it is still that process.

        The pid alone is not proof (pids are reused): its start time must match the one
        recorded when it was spawned. Its output waited in its FIFO; reading goes on from there.
        """
        name = row.service
        alive = row.pid is not None and _same_process(row.pid, row.proc_start)
        wall = time.time()
        if alive and name not in self.records:
            self._stop_removed(row)
            return False
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
            self.changed.add(name)
            self._mark_ended(name, row.number, f"instance {row.number} {status.describe()}", wall)
            if name in self.records:
                # what is left of its group (a child that outlived it) goes, as after any exit
                self._end_leftovers(name)
            if name in self.records and saved is not None:
                # (the instance counter already stands at the newest number in the store)
                # it ended while no agent watched: the agent's start brings it back, a restart
                self.records[name] = replace(
                    self.records[name],
                    restarts=saved.restarts + 1,
                    failures=saved.failures,
                    last_exit=status,
                )
            return False
        fifo = str(self.run_dir / f"{name}.{row.number}.pipe")
        spool = _open_spool(fifo)
        log = self._log_with_spool(name, row.number, spool, wall)
        # (after the line the service may be in the middle of: this log goes on with it)
        log.mark(
            f"instance {row.number} adopted by a new agent (pid {os.getpid()})", wall, cut=False
        )
        reader = FifoReader(
            self.loop,
            open_fifo_reader(fifo),
            lambda d: self._output(log, d),
            spool,
            log.position,
        )
        cgroup = None
        if row.cgroup is not None and self.cgroups is not None:
            cgroup = self.cgroups.open(row.cgroup)
        self.live[name] = LiveInstance(
            name,
            row.number,
            row.pid,
            row.started,
            fifo,
            reader,
            log,
            cgroup=cgroup,
            memory_limit=row.memory_limit,
            peak_rss=row.peak_rss,
            started_mono=time.monotonic() - (wall - row.started),
        )
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
            ready=base.ready if saved is not None else True,
            reason="",
        )
        notify = None
        if row.notify is not None:
            try:
                notify = self.prober.open_notify(name, row.number, row.notify)
            except OSError as e:
                self.emit(name, "warning", "NotifyLost", f"cannot bind {row.notify} again: {e}")
        spec = self.manifest.services[name]
        self.prober.start(name, row.number, row.pid, spec, running=True, notify=notify)
        self._end_leftovers(name)
        self.changed.add(name)
        self.emit(
            name,
            "normal",
            "Adopted",
            f"instance {row.number} (pid {row.pid}) kept running",
            instance=row.number,
        )
        self._watch_logs()
        return True

    def _stop_removed(self, row: InstanceRow) -> None:
        """Stop a running instance whose service left the manifest while no agent ran.

        Nothing would ever supervise or stop it, and were the service put back, a second copy
        would start beside it. Its group gets SIGTERM now and SIGKILL after the default stop
        timeout if it is still that process (its manifest entry, with its own stop signal and
        timeout, is gone).
        """
        assert row.pid is not None
        signal_group(row.pid, signal.SIGTERM)
        self.loop.call_later(REMOVED_STOP_TIMEOUT, _kill_if_same, row.pid, row.proc_start)
        status = ExitStatus(unknown=True)
        self.store.end_instance(
            row.service, row.number, ended=time.time(), exit=status, peak_rss=None
        )
        self.emit(
            row.service,
            "warning",
            "Removed",
            f"instance {row.number} (pid {row.pid}) still ran, but {row.service} is no longer in"
            f" the manifest: sent SIGTERM; SIGKILL in {format_duration(REMOVED_STOP_TIMEOUT)}",
            instance=row.number,
        )

    def memory_sampled(self, rss_by_pid: Mapping[int, int], *, everyone: bool) -> None:
        """Record memory samples; the watchdog kills an instance over its limit.

        A cgroup is read directly (its own exact figures); otherwise the process group's RSS
        from one pass over /proc is used. `everyone`: a full sample (every 10 s), else only
        the instances whose limit the watchdog enforces (every second).
        """
        for name, live in list(self.live.items()):
            if live.cgroup is not None:
                if everyone:
                    live.sample(live.cgroup.current_memory())
                    live.sample_peak(live.cgroup.peak_memory())
                    self.changed.add(name)
                continue
            if not everyone and live.memory_limit is None:
                continue
            live.sample(rss_by_pid.get(live.pid))
            self.changed.add(name)
            limit = live.memory_limit
            if limit is not None and live.rss is not None and live.rss > limit:
                detail = (
                    f"memory limit {format_bytes(limit)} exceeded: the process tree used"
                    f" {format_bytes(live.rss)} (enforced by the RSS watchdog: no cgroup)"
                )
                self.handle(name, MemoryExceeded(live.number, detail))

    def watchdog_groups(self) -> set[int]:
        """Process groups whose memory the watchdog must sample every second."""
        return {
            live.pid
            for live in self.live.values()
            if live.cgroup is None and live.memory_limit is not None
        }

    # ── probes, notify messages and inputs ───────────────────────────────────────────────

    def probe_done(self, done: ProbeDone) -> None:
        recorded = self.prober.record(done)
        if recorded is None:
            return
        probes, state, flipped = recorded
        name = done.service
        self.changed.add(name)
        record = self.records[name]
        check = probes.checks[done.phase]
        if done.result.ok and not flipped and not record.degraded:
            return  # the usual case, 200 times a second with 500 services: nothing to do
        detail = f"{check.target()}: {done.result.detail}"
        if done.phase is Phase.STARTUP:
            if done.result.ok:
                self.handle(name, ReadinessChanged(done.instance, True, detail))
        elif done.phase is Phase.READY:
            if flipped:
                self.handle(name, ReadinessChanged(done.instance, done.result.ok, detail))
        elif flipped and not (done.result.ok and state.probes == 1):  # not a first pass
            kind = "normal" if done.result.ok else "warning"
            reason = "LivenessPassing" if done.result.ok else "LivenessFailing"
            self.emit(name, kind, reason, detail, instance=done.instance)
        if done.phase is not Phase.HEALTH:
            return
        if done.result.ok:
            if record.degraded:
                self.handle(name, LivenessRecovered(done.instance, detail))
            return
        now = self.loop.time()
        if not stays_unhealthy(state, now):
            return
        excuse = liveness_excuse(record.waiting_for, *self._liveness_failing())
        if record.degraded and not excuse:
            # the shared cause is gone but it still fails: give it a fresh window to recover
            probes.states[Phase.HEALTH] = CheckState(
                passing=False,
                failures=1,
                failing_since=now,
                last=state.last,
                history=state.history,
                probes=state.probes,
            )
            self.handle(name, LivenessRecovered(done.instance, "the shared cause is gone"))
            return
        summary = unhealthy_summary(state, now)
        self.handle(name, LivenessFailed(done.instance, f"{check.target()} {summary}", excuse))

    def _liveness_failing(self) -> tuple[int, int]:
        """Of the running services with a liveness check: how many fail it now, how many."""
        failing = checked = 0
        for name, probes in self.prober.instances.items():
            state = probes.states.get(Phase.HEALTH)
            if Phase.HEALTH not in probes.checks or self.records[name].state is not State.RUNNING:
                continue
            checked += 1
            failing += state is not None and state.passing is False
        return failing, checked

    def notified(self, message: NotifyReceived) -> None:
        probes = self.prober.notified(message)
        if probes is None:
            return
        self.changed.add(message.service)
        startup = probes.checks.get(Phase.STARTUP)
        if (
            message.pairs.get("READY") == "1"
            and startup is not None
            and startup.kind is CheckKind.NOTIFY
        ):
            detail = "sd_notify: READY=1"
            if probes.notify_status:
                detail += f" ({probes.notify_status})"
            self.handle(message.service, ReadinessChanged(message.instance, True, detail))

    def inputs_tick(self) -> None:
        """Retry halted services whose manifest entry or files changed (and logs that could
        not be written: a quiet service's log notices too that there is room again)."""
        if self.logs.trouble.error:
            for live in self.live.values():
                live.log.retry(time.time())
            self._watch_logs()
        if not self.inputs.watching:
            return
        now = time.monotonic()
        for name, path in self.inputs.changed(now):
            if self.records[name].state is not State.FAILED:
                continue
            if path == self.manifest.path:
                what = self._reload_entry(name)
                if what is None:
                    continue
            else:
                what = path
            self.inputs.retried(name, now)
            self.handle(name, InputChanged(what))

    def _reload_entry(self, name: str) -> str | None:
        """Take a halted service's changed manifest entry; what changed, or None."""
        try:
            fresh = load_manifest(self.manifest.path)
        except ManifestError as e:
            first = e.issues[0]
            self.emit(
                name,
                "warning",
                "ManifestInvalid",
                f"the manifest changed but has errors, so it was not read:"
                f" line {first.line}: {first.message}",
            )
            return None
        new = fresh.services.get(name)
        old = self.manifest.services[name]
        if new is None or new == self.released.get(name, old):
            return None
        if name in self.released:
            self.emit(
                name,
                "normal",
                "ManifestChanged",
                f"its manifest entry changed; it runs a release, so `infraveil deploy {name}`"
                " takes the change through the gate",
            )
            return None
        if new.depends_on != old.depends_on:
            self.emit(
                name,
                "warning",
                "ManifestChanged",
                "its depends_on changed: restart the agent (or deploy) to take that in",
            )
            return None
        self.use_spec(new)
        return "its manifest entry"

    def use_spec(self, new: ServiceSpec) -> None:
        """Run the service with `new` from its next start on."""
        services = dict(self.manifest.services)
        services[new.name] = new
        self.manifest = replace(self.manifest, services=MappingProxyType(services))
        self.changed.add(new.name)
        self.records[new.name] = replace(
            self.records[new.name],
            stop_signal=int(new.stop_signal),
            stop_timeout=new.stop_timeout,
            startup_check=new.startup_check is not None,
        )

    # ── debug --hold ─────────────────────────────────────────────────────────────────────

    def hold(self, name: str) -> str | None:
        """Restart `name` with its command replaced by a wait (`infraveil debug --hold`).

        Same user, cwd, env and memory limit, no checks and no preflight: a person looks
        around in the service's place while nothing restarts it. Any restart, start or stop
        request ends the hold and puts the real command back.
        """
        spec = self.manifest.services[name]
        if name not in self.held:
            self.held[name] = spec
            held = replace(spec, command=HOLD_COMMAND, health=None, ready=None, port=None)
            self.use_spec(held)
        record = self.records[name]
        event: Event = RestartRequested() if record.live else StartRequested()
        return self.handle(name, event)

    def release(self, name: str) -> None:
        """Put the real command back after a hold (before the restart that asks for it)."""
        original = self.held.pop(name, None)
        if original is not None:
            self.use_spec(original)

    # ── actions ──────────────────────────────────────────────────────────────────────────

    def _execute(self, name: str, action: object, about: int | None = None) -> Event | None:
        match action:
            case Spawn(instance=n):
                return self._spawn(name, n)
            case SignalGroup(pid=pid, signum=signum):
                signal_group(pid, signum)
            case SetTimer(kind=kind, at=at, instance=n):
                self._cancel_timer(name, kind)
                due = TimerDue(name, TimerFired(kind, n))
                self._timers[(name, kind)] = self.loop.call_at(at, self.enqueue, due)
            case RecordBoot(instance=n, seconds=seconds):
                self.store.add_boot(name, n, seconds, time.time())
                self._boot_history(name).append(seconds)
            case RecordFailure(instance=n, what=what):
                self.store.set_failure(name, n, known_secrets().text(what))
            case CancelTimer(kind=kind):
                self._cancel_timer(name, kind)
            case Emit(kind=kind, reason=reason, message=message):
                number = self.records[name].instance if about is None else about
                self.emit(name, kind, reason, message, instance=number)
        return None

    def _output(self, log: InstanceLog, data: bytes) -> None:
        log.write(data, time.time())
        if self.logs.trouble.error != self._logs_error:
            self._watch_logs()

    def _watch_logs(self) -> None:
        """Report log writes failing (and working again) once, as it happens: output that
        cannot be written is dropped, never a reason to stop or to fail a service."""
        trouble = self.logs.trouble
        if trouble.error == self._logs_error:
            return
        self._logs_error = trouble.error
        if trouble.error:
            self.emit(
                None,
                "warning",
                "LogWriteError",
                f"{trouble.error}; {trouble.dropped} bytes of output dropped; every service"
                " keeps running, and its output is dropped (and counted) until there is room",
            )
        else:
            self.emit(
                None,
                "normal",
                "LogsRecovered",
                f"logs: {self.logs.root} can be written again; {trouble.dropped} bytes of"
                " output were dropped meanwhile (a line in each log says where)",
            )

    def _mark_ended(self, name: str, number: int, text: str, wall: float) -> None:
        """Mark the end of an instance that ended while no agent ran in its log, if it has
        one: it ends the line that instance may have left unfinished."""
        if name in self.records and number in self.logs.instances(name):
            fifo = str(self.run_dir / f"{name}.{number}.pipe")
            spool = _open_spool(fifo) if os.path.exists(_spool_path(fifo)) else None
            log = self._log_with_spool(name, number, spool, wall)
            if spool is not None:
                spool.close()
            log.mark(text, wall)
            log.close(wall)

    def _log_with_spool(
        self, name: str, number: int, spool: Spool | None, wall: float
    ) -> InstanceLog:
        """The instance's log, with the chunk of output a killed agent left in its spool
        written to it (again, from where the log stood before it: see runtime/capture.py)."""
        pending = spool.pending() if spool is not None else None
        if pending is not None:
            restore_position(self.logs.path(name, number), pending[0])
        log = self.logs.open(name, number)
        if spool is not None and pending is not None:
            log.write(pending[1], wall)
            try:
                spool.done()
            except OSError:
                pass
        return log

    def emit(
        self, service: str | None, kind: str, reason: str, message: str, instance: int | None = None
    ) -> EventRow:
        row = self.store.add_event(
            time=time.time(),
            service=service,
            instance=instance,
            kind=kind,
            reason=reason,
            message=known_secrets().text(message),  # it may quote an env value or a log line
        )
        self.on_event(row)
        return row

    def timer_due(self, due: TimerDue) -> None:
        """A timer of the core fired; the startup deadline gets the check's last word."""
        event: Event = due.event
        if due.event.kind is TimerKind.DEADLINE:
            said = self.startup_said(due.service)
            self._startup_last[due.service] = said
            event = StartupTimedOut(due.event.instance, known_secrets().text(said))
        self.handle(due.service, event)

    def startup_said(self, name: str) -> str:
        probes = self.prober.instances.get(name)
        if probes is None:  # (its probes end with the instance: what they said at its deadline)
            return self._startup_last.get(name, "no startup check result")
        check = probes.checks.get(Phase.STARTUP)
        state = probes.states.get(Phase.STARTUP)
        if check is not None and check.kind is CheckKind.NOTIFY:
            return "the service never sent READY=1 to NOTIFY_SOCKET"
        if check is None or state is None or state.last is None:
            return "its startup check never answered"
        return f"{check.target()}: {state.last.detail} ({state.probes} probes)"

    def _boot_history(self, name: str) -> list[float]:
        if name not in self._boots:
            self._boots[name] = self.store.boots(name)
        return self._boots[name]

    def deadline_of(self, name: str) -> Deadline:
        """The next boot's startup deadline, and how it came about (for `describe`)."""
        spec = self.manifest.services[name]
        return startup_deadline(self._boot_history(name), spec.startup_deadline)

    def _probe_env(self, name: str, number: int) -> Mapping[str, str]:
        try:
            return service_env(self.manifest.services[name], number, self.base_env)
        except SpawnError:  # an env_file gone since the start: probe with what is left
            return {**self.base_env, **self.manifest.services[name].env}

    def _spawn(self, name: str, number: int) -> Event:
        self._end_leftovers(name)
        spec = self.manifest.services[name]
        wall = time.time()
        log = self.logs.open(name, number)
        self.logs.prune(name)
        log.mark(f"starting instance {number}: {shlex.join(spec.command)}", wall)
        fifo = str(self.run_dir / f"{name}.{number}.pipe")
        rfd = make_fifo(fifo)
        cgroup: InstanceCgroup | None = None
        notify: NotifySocket | None = None
        try:
            env = service_env(spec, number, self.base_env)
            problems = preflight(spec, env) if name not in self.held else []
            if problems:
                raise PreflightFailed(problems)
            if needs_notify(spec):
                notify = self.prober.open_notify(name, number)
                env["NOTIFY_SOCKET"] = notify.address
                if spec.health is not None and spec.health.watchdog is not None:
                    env["WATCHDOG_USEC"] = str(int(spec.health.watchdog * 1_000_000))
            cgroup = self._cgroup_for(name, number, spec)
            procs = cgroup.procs_file if cgroup is not None else None
            child = spawn(Launch(spec.command, spec.cwd, env, fifo, spec.user, procs))
        except (SpawnError, PreflightFailed) as e:
            error = known_secrets().text(str(e))
            os.close(rfd)
            _unlink(fifo)
            if notify is not None:
                notify.close()
            if cgroup is not None:
                cgroup.remove()
            log.mark(f"instance {number} could not start: {error}", wall)
            log.close(wall)
            self.store.add_instance(
                name,
                number,
                pid=None,
                proc_start=None,
                started=wall,
                command=spec.command,
                error=error,
            )
            if isinstance(e, PreflightFailed):
                facts = start_facts(spec, number=number, preflight=e.problems)
            else:
                facts = start_facts(spec, number=number, spawn_error=error)
            verdict = self._diagnose(name, number, facts)
            return SpawnFailed(number, error, e.deterministic, verdict)
        pid = child.pid
        reader = FifoReader(
            self.loop,
            rfd,
            lambda data: self._output(log, data),
            _open_spool(fifo),
            log.position,
        )
        self.live[name] = LiveInstance(
            name,
            number,
            pid,
            wall,
            fifo,
            reader,
            log,
            cgroup=cgroup,
            memory_limit=spec.memory,
            started_mono=time.monotonic(),
        )
        self.watcher.watch(pid, lambda exit: self.enqueue(ExitObserved(name, number, exit)), child)
        self.store.add_instance(
            name,
            number,
            pid=pid,
            proc_start=process_start_time(pid),
            started=wall,
            command=spec.command,
            memory_limit=spec.memory,
            cgroup=cgroup.path if cgroup is not None else None,
            notify=notify.address if notify is not None else None,
        )
        if notify is not None:
            self._notify[name] = notify
        boots = self._boot_history(name)
        deadline = startup_deadline(boots, spec.startup_deadline)
        return Spawned(number, pid, deadline=deadline.seconds, typical_boot=typical_boot(boots))

    def _end_leftovers(self, name: str) -> None:
        """Kill what runs of `name` outside its live instance, once per agent, and drop the FIFOs.

        Every instance holds its FIFO (`<run>/<name>.<n>.pipe`) open, and so does every process
        it starts. A FIFO in the run directory that is not the live instance's is left by an
        earlier agent: an instance that ended while no agent ran (nobody holds it, or a child
        that outlived it does), or one that agent spawned and was killed before recording —
        a process no store row knows. Its holders are killed before the service runs under
        this agent: never two copies of one service. Holding the FIFO is the proof they are
        ours (a pid or a process group alone could have been reused).
        """
        if self._leftover_fifos is None:
            self._leftover_fifos = _fifos_by_service(self.run_dir)
        paths = self._leftover_fifos.pop(name, [])
        live = self.live.get(name)
        for path in paths:
            if live is not None and path == live.fifo:
                continue
            number = Path(path).name.rsplit(".", 2)[1]
            row = self.store.instance(name, int(number))
            if row is not None and row.ended is None and row.pid is not None:
                # recorded as running: adopting it (or not) is `adopt`'s to decide; look again then
                self._leftover_fifos.setdefault(name, []).append(path)
                continue
            killed = _kill_holders(path)
            _unlink(path)
            _unlink(_spool_path(path))
            if killed:
                self.emit(
                    name,
                    "warning",
                    "LeftoverKilled",
                    f"pid {', '.join(map(str, killed))} still ran for instance {number}, which"
                    " no agent supervised (its agent died before it could record or stop it):"
                    " killed, so that one copy of the service runs",
                )

    def _cgroup_for(self, name: str, number: int, spec: ServiceSpec) -> InstanceCgroup | None:
        """A cgroup for an instance with a memory limit (None without one).

        Only where there is a limit to enforce: moving a process into a cgroup waits for an
        RCU grace period in the kernel (10-20 ms on the hosts measured), which would multiply
        every restart's latency. Without one, the peak comes from wait4 and sampling, and a
        stop reaches the process group.
        """
        if spec.memory is None or self.cgroups is None or not self.cgroups.available:
            return None
        try:
            return self.cgroups.create(name, number, spec.memory)
        except CgroupError as e:
            if spec.memory is not None:
                self.emit(
                    name,
                    "warning",
                    "NoCgroup",
                    f"{e}; the memory limit is enforced by the RSS watchdog instead",
                    instance=number,
                )
            return None

    def _cancel_timer(self, name: str, kind: TimerKind) -> None:
        handle = self._timers.pop((name, kind), None)
        if handle is not None:
            handle.cancel()

    def _dependants_changed(self, name: str) -> list[tuple[str, Event]]:
        return [
            (d, DependenciesChanged(self.waiting_for(d))) for d in self.manifest.dependants(name)
        ]

    def waiting_for(self, name: str) -> tuple[str, ...]:
        """The dependencies of `name` that are not ready."""
        deps = self.manifest.services[name].depends_on
        return tuple(d for d in deps if not self.records[d].ready)

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
        self.prober.close()
        self.kernel_log.close()
        for notify in self._notify.values():
            notify.close()
        self._notify.clear()
        for live in self.live.values():
            live.reader.close()
            live.log.close(time.time(), ended=False)  # the next agent goes on with its log
        self.watcher.close()


def _record_json(record: ServiceRecord) -> dict[str, Any]:
    data = asdict(record)  # the nested ExitStatus becomes a dict too
    data["state"] = str(record.state)
    return data


def record_from_json(data: dict[str, Any]) -> ServiceRecord:
    """A record saved by an earlier agent; fields it did not know keep their defaults."""
    known = {f.name for f in fields(ServiceRecord)}
    exit_data = data.get("last_exit")
    return ServiceRecord(
        **{
            **{k: v for k, v in data.items() if k in known},
            "state": State(data["state"]),
            "last_exit": ExitStatus(**exit_data) if exit_data else None,
            "waiting_for": tuple(data.get("waiting_for", ())),
        }
    )


def _fresh_record(spec: ServiceSpec) -> ServiceRecord:
    return ServiceRecord(
        spec.name,
        stop_signal=int(spec.stop_signal),
        stop_timeout=spec.stop_timeout,
        startup_check=spec.startup_check is not None,
    )


def _remove_later(cgroup: InstanceCgroup) -> None:
    """Remove an ended instance's cgroup once its last process is gone (best effort)."""
    try:
        cgroup.remove()
    except CgroupError:
        pass


def _same_process(pid: int, recorded_start: float | None) -> bool:
    """`pid` is still the process started at `recorded_start`, and has not ended.

    An instance that ended while no agent ran may still be a zombie (its new parent, init,
    has not reaped it yet): it has its start time, but it is not running.
    """
    started = process_start_time(pid)
    return (
        started is not None
        and recorded_start is not None
        and abs(started - recorded_start) < 0.05
        and not _zombie(pid)
    )


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True  # gone since we looked: as good as a zombie
    return stat[stat.rfind(b")") + 2 :].split()[0] in (b"Z", b"X")


def _fifos_by_service(run_dir: Path) -> dict[str, list[str]]:
    """The instance FIFOs in the run directory (`<service>.<n>.pipe`), by service."""
    found: dict[str, list[str]] = {}
    try:
        names = os.listdir(run_dir)
    except FileNotFoundError:
        return found
    for entry in names:
        parts = entry.rsplit(".", 2)
        if len(parts) == 3 and parts[2] == "pipe" and parts[1].isdigit():
            found.setdefault(parts[0], []).append(str(run_dir / entry))
    return found


def _kill_holders(fifo: str) -> list[int]:
    """SIGKILL the process groups of the processes that hold `fifo` open; their pids."""
    try:
        # no reader: nobody holds it (each holder has it open read-write), no /proc walk needed
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
    except OSError:
        return []
    try:
        target = os.stat(fifo)
    except OSError:
        return []
    holders = []
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fds = os.listdir(f"/proc/{entry.name}/fd")
        except OSError:  # gone, or not ours to look at
            continue
        for fd in fds:
            try:
                st = os.stat(f"/proc/{entry.name}/fd/{fd}")
            except OSError:
                continue
            if st.st_ino == target.st_ino and st.st_dev == target.st_dev:
                holders.append(int(entry.name))
                break
    for pid in holders:
        try:
            group = os.getpgid(pid)
            if group != os.getpgrp():
                os.killpg(group, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return holders


def _kill_if_same(pid: int, recorded_start: float | None) -> None:
    if _same_process(pid, recorded_start):
        signal_group(pid, signal.SIGKILL)


def _spool_path(fifo: str) -> str:
    """The spool beside an instance's FIFO: `<run>/<name>.<n>.spool`."""
    return fifo.removesuffix(".pipe") + ".spool"


def _open_spool(fifo: str) -> Spool | None:
    """The instance's spool, or None where it cannot be made (a full disk): its output is then
    read as it was before spools, and only a kill at the wrong instant could lose a chunk."""
    try:
        return Spool(_spool_path(fifo))
    except OSError:
        return None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
