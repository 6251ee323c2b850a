"""Carries out the deploy gate (`core.gate`) of each release: one deploy at a time per service.

A deploy runs on the agent's loop like everything else. The pure gate decides; this module
verifies payloads (in a worker thread: hashing and extracting an archive must not hold the
loop), preflights the candidate, and starts, promotes or rolls back releases through the
service's lifecycle. It learns how the release being started fares by watching every step of
the service's lifecycle (`Supervisor.on_step`): instances numbered above `watching_from` are
the release's.

The strategy is *replace*: the candidate takes the service's place (stop the old instance,
start the new one), and a rollback does the same with the known-good release. Blue/green
behind the gateway will be a second strategy for the same gate.

Everything a gate decides is saved as it happens (the deploys table), and only a promotion
moves the service's `current` release. An agent that dies mid-deploy is therefore followed by
one that runs the current release and resolves the gate it finds unfinished: rolled back
before the promotion, watched again after it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infraveil.core import gate as g
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import PreflightProblem
from infraveil.core.errors import (
    CommandRefusedError,
    InfraveilError,
    NotFoundError,
    PayloadError,
    UnknownServiceError,
)
from infraveil.core.lifecycle import (
    DependenciesChanged,
    Emit,
    RecordFailure,
    RestartRequested,
    ServiceRecord,
    State,
    StopRequested,
)
from infraveil.core.spec import ServiceSpec
from infraveil.core.specjson import spec_from_json, spec_to_json
from infraveil.core.units import format_bytes, format_duration
from infraveil.daemon.diagnosing import start_facts
from infraveil.daemon.supervisor import Supervisor
from infraveil.runtime.environment import service_env
from infraveil.runtime.manifest_file import load_manifest
from infraveil.runtime.payloads import Payload, PayloadStore
from infraveil.runtime.preflight import preflight
from infraveil.runtime.processes import SpawnError
from infraveil.store.db import ReleaseRow, Store

Row = dict[str, Any]
"""One line of a deploy's progress, as the API streams it."""

_EVENT_REASONS = {
    "verify": "Verified",
    "preflight": "PreflightPassed",
    "start": "DeployStarting",
    "healthy": "DeployHealthy",
    "soak": "Soaked",
    "promote": "Promoted",
    "watch": "Watched",
    "failed": "GateFailed",
    "rollback": "RollingBack",
    "rolled back": "RolledBack",
    "rollback failed": "RollbackFailed",
}


_FAILED = (g.Phase.REJECTED, g.Phase.ROLLED_BACK, g.Phase.FAILED, g.Phase.ROLLBACK_FAILED)
"""How a gate ends when its release failed."""


@dataclass(frozen=True)
class DeployRequest:
    service: str
    payload: str | None = None
    """Absolute path of the payload (an archive or a directory); None: the manifest's entry."""
    version: str | None = None
    sha256: str | None = None
    """The payload's expected sha256, if the person deploying knows it."""
    rollback: bool = False
    to: str | None = None
    """The release to roll back to (None: the known-good)."""
    by: str = ""
    """Who asked (the client process), for the lock's refusal message."""


@dataclass(frozen=True)
class VerifyDone:
    """Queued by the verify worker thread; handled on the agent's loop."""

    service: str
    deploy_id: int
    outcome: asyncio.Future[Payload | None]
    """Done: the payload, or the error verifying it raised."""


@dataclass(frozen=True)
class GateTimerDue:
    service: str
    deploy_id: int
    kind: g.TimerKind


@dataclass
class Candidate:
    """The release a gate is about: its version, the manifest entry it runs, its payload."""

    version: str
    spec: ServiceSpec
    """As the manifest declares it (its `cwd` is made the payload's tree when it runs)."""
    sha256: str | None = None
    size: int | None = None
    files: int | None = None
    tree: Path | None = None
    recorded: bool = False
    """It has its row in the store's releases."""


@dataclass
class Deploy:
    """A gate under way, with what the agent needs to carry out its actions."""

    id: int
    gate: g.Gate
    request: DeployRequest
    candidate: Candidate
    started_mono: float
    started_wall: float
    watching_from: int = 0
    """Instances numbered above this belong to the release being started."""
    timers: dict[g.TimerKind, asyncio.TimerHandle] = field(default_factory=dict)
    listeners: list[asyncio.Queue[Row | None]] = field(default_factory=list)
    diagnosis: dict[str, Any] | None = None
    """The diagnosis of the failure that failed the gate."""
    sentence: str = ""
    """The deploy's answer, once decided."""


def runnable(spec: ServiceSpec, tree: Path | None) -> ServiceSpec:
    """The spec a release runs with: in its payload's tree, unless the manifest sets `cwd`."""
    if tree is None or spec.cwd_declared:
        return spec
    return replace(spec, cwd=str(tree))


def _same_entry(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two manifest entries (as JSON) say the same; where in the file does not count."""

    def text(entry: Mapping[str, Any]) -> str:
        return json.dumps({k: v for k, v in entry.items() if k != "line"}, sort_keys=True)

    return text(a) == text(b)


class Deploys:
    """The agent's deploys: requests, their gates, and the lifecycle steps they watch."""

    def __init__(
        self,
        supervisor: Supervisor,
        store: Store,
        payloads: PayloadStore,
        loop: asyncio.AbstractEventLoop,
        enqueue: Callable[[object], None],
        base_env: Mapping[str, str],
    ) -> None:
        self.supervisor = supervisor
        self.store = store
        self.payloads = payloads
        self.loop = loop
        self.enqueue = enqueue
        self.base_env = base_env
        self.active: dict[str, Deploy] = {}
        """The deploy under way of each service (one at a time), until it is promoted."""
        self.current: dict[str, str] = {}
        """The release each service runs (a copy of the store's pointer: the agent's views
        read it at every snapshot)."""
        self.watches: dict[str, Deploy] = {}
        """Promoted releases being watched: they do not hold a service's deploy lock."""
        self._pending: deque[tuple[str, int, g.Event]] = deque()
        self._frozen = False
        supervisor.on_step = self._observe

    # ── at agent start ───────────────────────────────────────────────────────────────────

    def apply_releases(self) -> set[str]:
        """Run every service that has a release with that release's spec; the names of the
        services that wait for their first deploy (not to be started)."""
        sup = self.supervisor
        waiting = set()
        for name, spec in sup.manifest.services.items():
            current, _ = self.store.pointers(name)
            release = self.store.release(name, current) if current is not None else None
            if current is not None:
                self.current[name] = current
            if release is None:
                if spec.payload:
                    waiting.add(name)
                    sup.records[name] = replace(
                        sup.records[name], reason="waiting for its first deploy"
                    )
                continue
            released = spec_from_json(release.spec)
            unknown = [d for d in released.depends_on if d not in sup.manifest.services]
            if unknown:
                sup.emit(
                    name,
                    "warning",
                    "ReleaseNotUsed",
                    f"release {release.version} depends on {', '.join(unknown)}, which the"
                    f" manifest no longer has: {name} runs its manifest entry instead",
                )
                continue
            tree = self.payloads.tree(release.sha256) if release.sha256 else None
            sup.use_spec(runnable(released, tree))
            sup.released[name] = released
            if not _same_entry(spec_to_json(spec), release.spec):
                sup.emit(
                    name,
                    "normal",
                    "ManifestChanged",
                    f"runs release {release.version}; its manifest entry has changed since:"
                    f" `infraveil deploy {name}` takes the change through the gate",
                )
        return waiting

    def resume(self) -> None:
        """Bring every deploy an earlier agent left unfinished to a consistent end."""
        for row in self.store.unfinished_deploys():
            name = row.service
            if name not in self.supervisor.records or name in self.active:
                self.store.save_deploy(row.id, row.gate, ended=time.time())
                continue
            gate = g.gate_from_json(row.gate)
            if gate.phase.final:  # (ended, but the agent died before it said so)
                self.store.save_deploy(row.id, row.gate, ended=time.time())
                continue
            spec = self.supervisor.manifest.services[name]
            release = self.store.release(name, gate.version)
            candidate = Candidate(gate.version, spec)
            if release is not None:
                candidate = self._candidate_of(release)
            deploy = Deploy(
                row.id,
                gate,
                DeployRequest(name, by=row.by),
                candidate,
                started_mono=time.monotonic(),
                started_wall=row.started,
                # a promoted release's instance may have been adopted: it is watched too
                watching_from=self.supervisor.records[name].instance - 1,
            )
            self.active[name] = deploy
            self._pending.append((name, row.id, g.Interrupted("the agent was restarted")))
        self.flush()

    # ── requests ─────────────────────────────────────────────────────────────────────────

    def request(self, req: DeployRequest) -> asyncio.Queue[Row | None]:
        """Begin a deploy (or rollback); its progress rows arrive on the returned queue.

        Raises what a person must hear before anything happens: an unknown service, a deploy
        already under way, a release that does not exist, a manifest with errors.
        """
        name = req.service
        sup = self.supervisor
        if name not in sup.records:
            raise UnknownServiceError(name, list(sup.manifest.services))
        if self._frozen:
            raise CommandRefusedError(
                "the agent is shutting down", hint="deploy once it has been started again"
            )
        busy = self.active.get(name)
        if busy is not None:
            ago = format_duration(time.monotonic() - busy.started_mono)
            who = f" by {busy.request.by}" if busy.request.by else ""
            raise CommandRefusedError(
                f"a deploy of {busy.gate.version} to {name} is under way ({busy.gate.phase},"
                f" started {ago} ago{who})",
                hint=f"wait for it to end; `infraveil releases {name}` shows where it is",
                state=str(sup.records[name].state),
            )
        queue: asyncio.Queue[Row | None] = asyncio.Queue()
        prepared = self._prepare_rollback(req) if req.rollback else self._prepare_deploy(req)
        if isinstance(prepared, str):  # nothing to do: say so, and that is all
            queue.put_nowait(
                {"type": "verdict", "service": name, "outcome": "unchanged", "sentence": prepared}
            )
            queue.put_nowait(None)
            return queue
        candidate, kind = prepared
        current, known_good = self.store.pointers(name)
        if known_good is None and current is not None:
            # the first release is still in its watch: it passed its gate and serves, which
            # makes it a better place to go back to than stopping the service
            live = self.store.release(name, current)
            if live is not None and live.outcome == "live":
                known_good = current
        spec = candidate.spec
        gate, actions = g.begin(
            name,
            candidate.version,
            previous=current,
            known_good=known_good,
            kind=kind,
            soak=spec.soak,
            watch=spec.watch,
        )
        wall = time.time()
        deploy_id = self.store.add_deploy(
            name, candidate.version, started=wall, by=req.by, gate=g.gate_to_json(gate)
        )
        deploy = Deploy(deploy_id, gate, req, candidate, time.monotonic(), wall)
        deploy.listeners.append(queue)
        self.active[name] = deploy
        what = "rollback to" if kind is g.Kind.ROLLBACK else "deploy of"
        sup.emit(
            name,
            "normal",
            "DeployRequested",
            f"{what} {candidate.version}" + (f" by {req.by}" if req.by else ""),
        )
        self._carry_out(deploy, actions)
        self.flush()
        return queue

    def _prepare_deploy(self, req: DeployRequest) -> tuple[Candidate, g.Kind] | str:
        name = req.service
        sup = self.supervisor
        fresh = load_manifest(sup.manifest.path)  # a ManifestError says what is wrong, where
        spec = fresh.services.get(name)
        if spec is None:
            raise CommandRefusedError(
                f"{name} is no longer in {sup.manifest.path}",
                hint="adding or removing a service takes an agent restart"
                " (`infraveil down`, then `infraveil up`)",
            )
        missing = [d for d in spec.depends_on if d not in sup.records]
        if missing:
            raise CommandRefusedError(
                f"{name} now depends on {', '.join(missing)}, which the agent does not run",
                hint="adding a service takes an agent restart (`infraveil down`, then `up`)",
            )
        current, _ = self.store.pointers(name)
        live = self.store.release(name, current) if current is not None else None
        where = f"[services.{name}] in {sup.manifest.path}"
        if req.payload is not None and not spec.payload:
            raise CommandRefusedError(
                f"{name} does not run a payload",
                hint=f"add `payload = true` to {where}: it then runs in the release's directory",
            )
        entry = spec_to_json(spec)
        if req.payload is None:
            if spec.payload and live is None:
                raise CommandRefusedError(
                    f"{name} has no release yet",
                    hint=f"deploy its first payload: `infraveil deploy {name} --payload FILE|DIR`",
                )
            if live is not None and _same_entry(entry, live.spec) and req.version is None:
                return (
                    f"{name} already runs {live.version} with this manifest entry:"
                    " nothing to deploy"
                )
            running = sup.held.get(name, sup.manifest.services[name])
            if live is None and _same_entry(entry, spec_to_json(running)):
                return f"{name}'s manifest entry has not changed: nothing to deploy"
        if live is None and not spec.payload:
            live = self._baseline(name)
        version = req.version or self.store.next_version(name)
        candidate = Candidate(version, spec)
        if req.payload is None and live is not None:
            candidate = replace(
                self._candidate_of(live), version=version, spec=spec, recorded=False
            )
        existing = self.store.release(name, version)
        if existing is not None and req.payload is None:
            self._check_same_release(existing, candidate.sha256, entry)
            candidate = replace(self._candidate_of(existing), spec=spec)
        return candidate, g.Kind.DEPLOY

    def _baseline(self, name: str) -> ReleaseRow:
        """The first deploy of a service that ran from the manifest: what it ran becomes a
        release too (known-good), so that a failed deploy has something to roll back to."""
        sup = self.supervisor
        spec = sup.held.get(name, sup.manifest.services[name])
        version = self.store.next_version(name)
        row = self.store.add_release(
            name,
            version,
            sha256=None,
            size=None,
            spec=spec_to_json(spec),
            created=time.time(),
            outcome="baseline",
            message="the manifest entry it ran before its first deploy",
        )
        self._point(name, current=version, known_good=version)
        sup.released[name] = spec
        return row

    def _prepare_rollback(self, req: DeployRequest) -> tuple[Candidate, g.Kind] | str:
        name = req.service
        current, known_good = self.store.pointers(name)
        target = req.to or known_good
        if target is None:
            raise CommandRefusedError(
                f"{name} has no known-good release to roll back to", hint=self._kept_hint(name)
            )
        release = self.store.release(name, target)
        if release is None:
            raise NotFoundError(f"{name} has no release {target}", hint=self._kept_hint(name))
        record = self.supervisor.records[name]
        if target == current and record.state is State.RUNNING and record.ready:
            return f"{name} already runs {target}, and it is ready: nothing to roll back"
        return self._candidate_of(release), g.Kind.ROLLBACK

    def _kept_hint(self, name: str) -> str:
        releases = self.store.releases(name)
        if not releases:
            return f"{name} has no releases yet: `infraveil deploy {name}` makes the first"
        kept = ", ".join(f"{r.version} ({r.outcome or 'deploying'})" for r in releases)
        return f"its releases: {kept} (`infraveil releases {name}`)"

    def _candidate_of(self, release: ReleaseRow) -> Candidate:
        return Candidate(
            release.version,
            spec_from_json(release.spec),
            release.sha256,
            release.size,
            tree=self.payloads.tree(release.sha256) if release.sha256 else None,
            recorded=True,
        )

    @staticmethod
    def _check_same_release(
        existing: ReleaseRow, sha256: str | None, entry: Mapping[str, Any]
    ) -> None:
        """A version names one release: the same label for other content is refused."""
        if existing.sha256 != sha256:
            raise CommandRefusedError(
                f"version {existing.version} of {existing.service} is already the release with"
                f" sha256 {existing.sha256 or '(no payload)'}; this payload has sha256"
                f" {sha256 or '(no payload)'}",
                hint="a version names one content: give this one a new --version",
            )
        if not _same_entry(existing.spec, entry):
            raise CommandRefusedError(
                f"version {existing.version} of {existing.service} was released with another"
                " manifest entry",
                hint="a version names one release: give this one a new --version",
            )

    # ── inputs from the loop ─────────────────────────────────────────────────────────────

    def verified(self, done: VerifyDone) -> None:
        deploy = self._deploy(done.service, done.deploy_id)
        if deploy is None:
            return
        try:
            payload = done.outcome.result()
        except PayloadError as e:
            self._feed(deploy, g.VerifyFailed(e.message + (f" ({e.hint})" if e.hint else "")))
        except OSError as e:
            self._feed(deploy, g.VerifyFailed(f"cannot read the payload: {e}"))
        except CommandRefusedError as e:
            self._feed(deploy, g.VerifyFailed(f"{e.message} ({e.hint})"))
        else:
            self._verified(deploy, payload)
        self.flush()

    def _verified(self, deploy: Deploy, payload: Payload | None) -> None:
        c = deploy.candidate
        if payload is not None:
            existing = self.store.release(deploy.gate.service, c.version)
            if existing is not None and not c.recorded:
                try:
                    self._check_same_release(existing, payload.sha256, spec_to_json(c.spec))
                except CommandRefusedError as e:
                    self._feed(deploy, g.VerifyFailed(f"{e.message} ({e.hint})"))
                    return
                c.recorded = True
            c.sha256, c.size, c.files, c.tree = (
                payload.sha256,
                payload.size,
                payload.files,
                payload.tree,
            )
            detail = (
                f"sha256 {payload.sha256[:12]}…, {payload.files} files,"
                f" {format_bytes(payload.size)}"
            )
        else:
            detail = "no payload: the manifest entry of the service"
        if not c.recorded:
            self.store.add_release(
                deploy.gate.service,
                c.version,
                sha256=c.sha256,
                size=c.size,
                spec=spec_to_json(c.spec),
                created=time.time(),
            )
            c.recorded = True
        self._feed(deploy, g.Verified(detail))

    def timer_due(self, due: GateTimerDue) -> None:
        deploy = self._deploy(due.service, due.deploy_id)
        if deploy is None:
            return
        deploy.timers.pop(due.kind, None)
        if due.kind in (g.TimerKind.HEALTHY, g.TimerKind.ROLLBACK):
            said = self.supervisor.startup_said(due.service)
            self._feed(deploy, g.NotHealthyInTime(said))
        else:
            self._feed(deploy, g.TimerFired(due.kind))
        self.flush()

    def _deploy(self, service: str, deploy_id: int) -> Deploy | None:
        for deploys in (self.active, self.watches):
            deploy = deploys.get(service)
            if deploy is not None and deploy.id == deploy_id:
                return deploy
        return None

    def under_way(self, service: str) -> Deploy | None:
        """The service's deploy under way, else the promoted release being watched."""
        return self.active.get(service) or self.watches.get(service)

    def _feed(self, deploy: Deploy, event: g.Event) -> None:
        self._pending.append((deploy.gate.service, deploy.id, event))

    def freeze(self) -> None:
        """The agent is shutting down: no gate moves any more (a timer firing now must not
        start a release while every service is being stopped). The next agent resumes them."""
        self._frozen = True
        self._pending.clear()
        for deploy in (*self.active.values(), *self.watches.values()):
            for handle in deploy.timers.values():
                handle.cancel()
            deploy.timers.clear()

    def flush(self) -> None:
        """Step the gates with what happened; called after every input of the agent's loop."""
        if self._frozen:
            self._pending.clear()
            return
        while self._pending:
            name, deploy_id, event = self._pending.popleft()
            deploy = self._deploy(name, deploy_id)
            if deploy is None:
                continue
            self._step(deploy, event)

    def _step(self, deploy: Deploy, event: g.Event) -> None:
        name = deploy.gate.service
        gate, actions = g.step(deploy.gate, event, time.monotonic())
        deploy.gate = gate
        self._carry_out(deploy, actions)
        ended = time.time() if gate.phase.final else None
        self.store.save_deploy(deploy.id, g.gate_to_json(gate), ended=ended)
        self.supervisor.changed.add(name)  # `status` shows the deploy's phase
        if gate.phase.final:
            self._end(deploy)
        elif gate.phase is g.Phase.WATCHING and self.active.get(name) is deploy:
            # promoted: the person has their answer, and may deploy again during the watch
            del self.active[name]
            self.watches[name] = deploy
        elif gate.phase is not g.Phase.WATCHING and self.watches.get(name) is deploy:
            # the watched release failed: its rollback takes the service again, and a newer
            # deploy that has not touched it yet gives way (it would replace the rollback)
            del self.watches[name]
            newer = self.active.pop(name, None)
            self.active[name] = deploy
            if newer is not None:
                why = f"{gate.version} failed its watch and is being rolled back"
                self._step(newer, g.Interrupted(why))

    # ── watching the release being started ───────────────────────────────────────────────

    def _observe(
        self,
        name: str,
        before: ServiceRecord,
        after: ServiceRecord,
        actions: tuple[object, ...],
    ) -> None:
        """Turn a step of the service's lifecycle into what the gate cares about."""
        deploy = self.active.get(name)
        if deploy is None or not deploy.gate.touched:  # (a newer deploy still verifying)
            deploy = self.watches.get(name)
        if deploy is None or after.instance <= deploy.watching_from:
            return
        said = {a.reason: a.message for a in actions if isinstance(a, Emit)}
        if after.pid is not None and before.pid is None and after.state is State.STARTING:
            deadline = after.deadline
            if deadline is None:
                deadline = self.supervisor.deadline_of(name).seconds
            self._feed(deploy, g.CandidateStarted(after.instance, after.pid, deadline))
        if after.ready and not before.ready and after.state is State.RUNNING:
            detail = said.get("Ready") or said.get("Running") or "ready"
            self._feed(deploy, g.CandidateReady(detail))
        elif before.ready and not after.ready and after.state is State.RUNNING:
            self._feed(deploy, g.CandidateNotReady(said.get("NotReady", "not ready")))
        for action in actions:
            if isinstance(action, RecordFailure) and action.instance > deploy.watching_from:
                failure = self._failure(name, action)
                halted = after.state is State.FAILED
                self._feed(deploy, g.CandidateFailed(failure, after.signature, halted))

    def _failure(self, name: str, failed: RecordFailure) -> g.Failure:
        """The gate's words for a failed instance: what happened, and the diagnosis's evidence."""
        row = self.store.instance(name, failed.instance)
        diagnosis = row.diagnosis if row is not None else None
        evidence, category = "", ""
        if diagnosis is not None:
            category = diagnosis.get("category", "")
            quoted = [
                e["text"] for e in diagnosis.get("evidence", ()) if e["source"] != "exit status"
            ]
            evidence = quoted[0] if quoted else ""
        return g.Failure(failed.headline or failed.what, evidence, category, failed.instance)

    # ── actions ──────────────────────────────────────────────────────────────────────────

    def _carry_out(self, deploy: Deploy, actions: tuple[g.Action, ...]) -> None:
        name = deploy.gate.service
        for action in actions:
            match action:
                case g.Verify():
                    self._verify(deploy)
                case g.RunPreflight():
                    self._preflight(deploy)
                case g.StartCandidate():
                    c = deploy.candidate
                    self._start(deploy, c.spec, c.tree)
                case g.StartRelease(version=version):
                    self._start_release(deploy, version)
                case g.StopService():
                    self.supervisor.fast_startup.discard(name)
                    self.supervisor.handle(name, StopRequested())
                case g.Promote():
                    self.supervisor.fast_startup.discard(name)
                    self._point(name, current=deploy.gate.version)
                    self.store.set_release_outcome(name, deploy.gate.version, "live")
                    self.supervisor.released[name] = deploy.candidate.spec
                    self._prune(name)
                case g.MarkKnownGood():
                    self._point(name, known_good=deploy.gate.version)
                    self.store.set_release_outcome(name, deploy.gate.version, "good")
                    self._prune(name)
                case g.SetTimer(kind=kind, at=at):
                    self._cancel_timer(deploy, kind)
                    due = GateTimerDue(name, deploy.id, kind)
                    deploy.timers[kind] = self.loop.call_at(at, self.enqueue, due)
                case g.CancelTimer(kind=kind):
                    self._cancel_timer(deploy, kind)
                case g.Report(step=step, message=message, warning=warning):
                    self._report(deploy, step, message, warning)
                case g.Decided(live=live, sentence=sentence):
                    self._decided(deploy, live, sentence)
                case g.Refused():
                    pass

    def _verify(self, deploy: Deploy) -> None:
        req, c = deploy.request, deploy.candidate
        source = Path(req.payload) if req.payload is not None else None
        expected = req.sha256

        def work() -> Payload | None:
            if source is not None:
                return self.payloads.add(source, expected)
            if c.sha256 is not None:
                return self.payloads.verify(c.sha256)
            return None

        outcome = self.loop.run_in_executor(None, work)
        name = deploy.gate.service
        outcome.add_done_callback(lambda f: self.enqueue(VerifyDone(name, deploy.id, f)))

    def _preflight(self, deploy: Deploy) -> None:
        name = deploy.gate.service
        c = deploy.candidate
        spec = runnable(c.spec, c.tree)
        number = self.supervisor.records[name].instance + 1
        try:
            env = service_env(spec, number, self.base_env)
            problems = preflight(spec, env, running_ok=True)
        except SpawnError as e:
            problems = [PreflightProblem("env_file", "config_missing", str(e), "", "")]
        if not problems:
            self._feed(deploy, g.PreflightPassed("command, files, user, env and ports are fine"))
            return
        diagnosis = diagnose(start_facts(spec, number=number, preflight=problems))
        deploy.diagnosis = diagnosis.as_dict()
        first = problems[0]
        what = first.detail + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        failure = g.Failure(what, "", diagnosis.verdict.category)
        self._feed(deploy, g.PreflightFailed(failure))

    def _start(self, deploy: Deploy, spec: ServiceSpec, tree: Path | None) -> None:
        """Replace: the release takes the service's place (the lifecycle stops the old)."""
        name = deploy.gate.service
        sup = self.supervisor
        watched = self.watches.get(name)
        if watched is not None and watched is not deploy:
            # the release being watched is replaced: current until then, never known-good
            self._feed(watched, g.Superseded(deploy.gate.version))
        sup.release(name)  # a `debug --hold` ends here
        before = sup.manifest.services[name]
        sup.use_spec(runnable(spec, tree))
        if spec.depends_on != before.depends_on:
            sup.handle(name, DependenciesChanged(sup.waiting_for(name)))
        deploy.watching_from = sup.records[name].instance
        sup.fast_startup.add(name)
        sup.handle(name, RestartRequested())

    def _start_release(self, deploy: Deploy, version: str) -> None:
        name = deploy.gate.service
        release = self.store.release(name, version)
        missing = ""
        if release is None:
            missing = f"release {version} is no longer kept"
        elif release.sha256 is not None and not self.payloads.has(release.sha256):
            missing = f"the payload of {version} ({release.sha256[:12]}…) is missing"
        if release is None or missing:
            failure = g.Failure(f"cannot start {version}: {missing}")
            self._feed(deploy, g.CandidateFailed(failure, "release-missing", halted=True))
            return
        self.supervisor.released[name] = spec_from_json(release.spec)
        c = self._candidate_of(release)
        self._start(deploy, c.spec, c.tree)

    def _point(
        self, name: str, *, current: str | None = None, known_good: str | None = None
    ) -> None:
        """Move the service's current and/or known-good release."""
        self.store.set_pointers(name, current=current, known_good=known_good)
        if current is not None:
            self.current[name] = current

    def _prune(self, name: str) -> None:
        """Forget the service's oldest releases, and remove payloads no release runs.

        Not while a payload is being verified: its sha is not known (nor kept) until it is
        stored, and the store's lock would hold the loop. The next promotion prunes instead.
        """
        self.store.prune_releases(name)
        if any(d.gate.phase is g.Phase.VERIFYING for d in self.active.values()):
            return
        keep = self.store.payloads_in_use()
        keep.update(d.candidate.sha256 for d in self.active.values() if d.candidate.sha256)
        try:
            self.payloads.prune(keep)
        except InfraveilError as e:
            self.supervisor.emit(name, "warning", "PruneFailed", f"old payloads not removed: {e}")

    def _cancel_timer(self, deploy: Deploy, kind: g.TimerKind) -> None:
        handle = deploy.timers.pop(kind, None)
        if handle is not None:
            handle.cancel()

    def _report(self, deploy: Deploy, step: str, message: str, warning: bool) -> None:
        elapsed = time.monotonic() - deploy.started_mono
        row = {
            "type": "step",
            "service": deploy.gate.service,
            "version": deploy.gate.version,
            "step": step,
            "message": message,
            "warning": warning,
            "elapsed": round(elapsed, 3),
        }
        self._send(deploy, row)
        reason = _EVENT_REASONS.get(step, "Deploy")
        kind = "warning" if warning else "normal"
        self.supervisor.emit(deploy.gate.service, kind, reason, f"{deploy.gate.version}: {message}")

    def _decided(self, deploy: Deploy, live: bool, sentence: str) -> None:
        gate = deploy.gate
        deploy.sentence = sentence
        self.store.save_deploy(deploy.id, g.gate_to_json(gate), sentence=sentence)
        reason = "DeployLive" if live else "DeployFailed"
        self.supervisor.emit(gate.service, "normal" if live else "warning", reason, sentence)
        self._send(deploy, self.verdict(deploy, live, sentence))
        for queue in deploy.listeners:  # the person deploying has their answer
            queue.put_nowait(None)
        deploy.listeners.clear()

    def verdict(self, deploy: Deploy, live: bool, sentence: str) -> Row:
        """The deploy's answer as data (`infraveil deploy -o json`)."""
        gate = deploy.gate
        failure = gate.rollback_failure or gate.failure
        return {
            "type": "verdict",
            "service": gate.service,
            "version": gate.version,
            "kind": str(gate.kind),
            "sha256": deploy.candidate.sha256,
            "outcome": "live" if live else str(gate.phase),
            "live": live,
            "previous": gate.previous,
            "known_good": gate.known_good,
            "sentence": sentence,
            "failure": _failure_json(gate.failure, self._diagnosis_of(deploy)),
            "rollback_failure": _failure_json(gate.rollback_failure, None),
            "evidence": failure.evidence if failure is not None else "",
            "elapsed": round(time.monotonic() - deploy.started_mono, 3),
            "deploy": deploy.id,
        }

    def _diagnosis_of(self, deploy: Deploy) -> dict[str, Any] | None:
        """The diagnosis of what failed the gate: preflight's, or the failed instance's."""
        failure = deploy.gate.failure
        if deploy.diagnosis is None and failure is not None and failure.instance is not None:
            row = self.store.instance(deploy.gate.service, failure.instance)
            deploy.diagnosis = row.diagnosis if row is not None else None
        return deploy.diagnosis

    def _send(self, deploy: Deploy, row: Row) -> None:
        for queue in deploy.listeners:
            queue.put_nowait(row)

    def _end(self, deploy: Deploy) -> None:
        """The gate is over: record the release's outcome and let go of the service."""
        gate = deploy.gate
        name = gate.service
        for deploys in (self.active, self.watches):
            if deploys.get(name) is deploy:
                del deploys[name]
        self.supervisor.changed.add(name)
        self.supervisor.fast_startup.discard(name)
        for handle in deploy.timers.values():
            handle.cancel()
        deploy.timers.clear()
        if gate.phase in (g.Phase.ROLLED_BACK, g.Phase.ROLLBACK_FAILED) and gate.known_good:
            # the service runs the known-good again (or tries to): that is what a new agent runs
            self._point(name, current=gate.known_good)
        # (a failed rollback to the known-good does not unmake it: it passed its own gate)
        known_good_again = gate.version == gate.known_good
        if gate.phase in _FAILED and deploy.candidate.recorded and not known_good_again:
            diagnosis = self._diagnosis_of(deploy)
            outcome = "rejected" if gate.phase is g.Phase.REJECTED else "failed"
            self.store.set_release_outcome(name, gate.version, outcome, deploy.sentence, diagnosis)
            self._prune(name)  # (failed releases count toward the five kept, too)
        elif gate.phase is g.Phase.SUPERSEDED:
            self.store.set_release_outcome(name, gate.version, "superseded", deploy.sentence)
        for queue in deploy.listeners:
            queue.put_nowait(None)
        deploy.listeners.clear()

    # ── for the API ──────────────────────────────────────────────────────────────────────

    def releases(self, name: str) -> dict[str, Any]:
        """The service's kept releases, which is current and known-good, and any deploy."""
        sup = self.supervisor
        if name not in sup.records:
            raise UnknownServiceError(name, list(sup.manifest.services))
        current, known_good = self.store.pointers(name)
        rows = []
        for release in self.store.releases(name):
            data = release.as_dict()
            data["current"] = release.version == current
            data["known_good"] = release.version == known_good
            rows.append(data)
        deploy = self.under_way(name)
        under_way = None
        if deploy is not None:
            under_way = {
                "version": deploy.gate.version,
                "phase": str(deploy.gate.phase),
                "kind": str(deploy.gate.kind),
                "by": deploy.request.by,
                "started": deploy.started_wall,
            }
        spec = sup.manifest.services[name]
        return {
            "service": name,
            "current": current,
            "known_good": known_good,
            "waiting_for_first_deploy": spec.payload and current is None,
            "deploy": under_way,
            "releases": rows,
        }

    def changes(self) -> dict[str, list[str]]:
        """Services whose manifest entry (as the file says it now) differs from what they run."""
        sup = self.supervisor
        fresh = load_manifest(sup.manifest.path)  # a ManifestError says what is wrong, where
        changed = []
        for name in sup.manifest.start_order():
            spec = fresh.services.get(name)
            if spec is None:
                continue
            running = sup.released.get(name) or sup.held.get(name, sup.manifest.services[name])
            if not _same_entry(spec_to_json(spec), spec_to_json(running)):
                changed.append(name)
        return {
            "changed": changed,
            "added": [n for n in fresh.services if n not in sup.manifest.services],
            "removed": [n for n in sup.manifest.services if n not in fresh.services],
        }

    def close(self) -> None:
        for deploy in (*self.active.values(), *self.watches.values()):
            for handle in deploy.timers.values():
                handle.cancel()
            for queue in deploy.listeners:
                queue.put_nowait(None)


def _failure_json(failure: g.Failure | None, diagnosis: dict[str, Any] | None) -> Row | None:
    if failure is None:
        return None
    return {
        "what": failure.what,
        "evidence": failure.evidence,
        "category": failure.category,
        "instance": failure.instance,
        "diagnosis": diagnosis,
    }
