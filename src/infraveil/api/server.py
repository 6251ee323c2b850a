"""The agent's HTTP/JSON API, served on a Unix socket that only its owner can use (0600).

Every route is declared once, with the `route` decorator, and the OpenAPI document
(`GET /openapi.json`, and docs/reference/api.md) is generated from those declarations.
Handlers read the agent's published snapshot and the store; the only way they change
anything is by queueing a command for the agent's loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from infraveil import __version__
from infraveil.api import views
from infraveil.api.errors import error_body, status_for
from infraveil.api.metrics import render_metrics
from infraveil.core.errors import InfraveilError, NotFoundError, UnknownServiceError
from infraveil.core.lifecycle import (
    RestartRequested,
    StartRequested,
    State,
    StopRequested,
)
from infraveil.daemon.agent import Agent, HoldRequested, ServiceView, Snapshot
from infraveil.daemon.deploys import DeployRequest
from infraveil.runtime.processes import describe_process
from infraveil.store.logs import LogFiles, LogLine, LogReader

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path" or "query"
    type: str  # "string", "integer", "number", "boolean"
    description: str


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    params: tuple[Param, ...]
    returns: str
    handler: Handler


ROUTES: list[Route] = []
SERVICE = Param("name", "path", "string", "service name")


def route(
    method: str, path: str, summary: str, *params: Param, returns: str = "object"
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, path, summary, params, returns, handler))
        return handler

    return register


def _agent(request: web.Request) -> Agent:
    agent: Agent = request.app["agent"]
    return agent


def _view(snapshot: Snapshot, name: str) -> ServiceView:
    view = snapshot.services.get(name)
    if view is None:
        raise UnknownServiceError(name, list(snapshot.services))
    return view


def _int(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if value < 0 or value > 10_000_000:
        raise _BadRequest(f"query parameter {name!r} is out of range: {value}")
    return value


def _float(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _BadRequest(f"query parameter {name!r} must be a number, got {raw!r}") from None
    if not 0 <= value <= 3600:
        raise _BadRequest(f"query parameter {name!r} must be between 0 and 3600")
    return value


def _bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


class _BadRequest(Exception):
    pass


# ── routes ──────────────────────────────────────────────────────────────────────────────────


@route("GET", "/v1/agent", "The agent: pid, version, state directory, manifest.")
async def get_agent(request: web.Request) -> web.StreamResponse:
    return web.json_response(views.agent_info(_agent(request).snapshot, __version__))


SETTLED = {State.RUNNING, State.STOPPED, State.BACKOFF, State.FAILED}


@route(
    "GET",
    "/v1/status",
    "One row per service (ServiceStatus).",
    Param("wait", "query", "string", "`settled`: answer once no service is pending or starting"),
    Param("timeout", "query", "number", "seconds to wait at most (default 30)"),
    returns="{services: [ServiceStatus], settled: boolean}",
)
async def get_status(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    settled = True
    if request.query.get("wait") == "settled":

        def all_settled(s: Snapshot) -> bool:
            return not s.starting and all(v.record.state in SETTLED for v in s.services.values())

        settled = await agent.wait_until(all_settled, _float(request, "timeout", 30.0))
    now = time.monotonic()
    rows = [views.service_status(v, now) for v in agent.snapshot.services.values()]
    return web.json_response({"services": rows, "settled": settled})


@route(
    "GET",
    "/v1/services/{name}",
    "Describe one service: status, spec, health checks, recent instances and events.",
    SERVICE,
    returns=(
        "{service: ServiceStatus, spec, health: Health, instances: [Instance], events: [Event]}"
    ),
)
async def describe(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    name = request.match_info["name"]
    view = _view(agent.snapshot, name)
    instances = [i.as_dict() for i in agent.store.instances(name, limit=5)]
    if instances and view.record.live and instances[0]["number"] == view.record.instance:
        instances[0]["peak_memory"] = view.peak_rss
    return web.json_response(
        {
            "service": views.service_status(view),
            "spec": views.spec_json(view.spec),
            "health": views.health(view),
            "instances": instances,
            "events": [e.as_dict() for e in agent.store.events(service=name, limit=20)],
        }
    )


@route(
    "GET",
    "/v1/services/{name}/why",
    "Why SERVICE failed: the diagnosis of its latest failure (or of a given instance), or"
    " what is wrong with it now while it runs but is not ready.",
    SERVICE,
    Param("instance", "query", "integer", "the diagnosis of this instance"),
    returns="{service, instance, healthy, ...Diagnosis, last_failure}",
)
async def why(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    name = request.match_info["name"]
    view = _view(agent.snapshot, name)
    number = _int(request, "instance", None)
    if number is not None:
        row = agent.store.instance(name, number)
        if row is None:
            known = [i.number for i in agent.store.instances(name, limit=10)]
            raise NotFoundError(
                f"{name} has no instance {number}",
                hint=f"its latest instances are {', '.join(map(str, known)) or 'none yet'}",
            )
        return web.json_response(views.why_of_instance(name, row))
    return web.json_response(
        views.why_now(view, agent.snapshot, agent.store.instances(name, limit=10), agent.logs)
    )


@route(
    "GET",
    "/v1/services/{name}/logs",
    "Log lines of one instance as NDJSON (LogLine per line), optionally followed.",
    SERVICE,
    Param("previous", "query", "boolean", "the instance before the latest one"),
    Param("instance", "query", "integer", "a given instance number"),
    Param("tail", "query", "integer", "only the last N lines"),
    Param("since", "query", "string", "only lines at or after this RFC 3339 UTC time"),
    Param("follow", "query", "boolean", "keep streaming new lines, across restarts"),
    returns="NDJSON stream of LogLine",
)
async def logs(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    name = request.match_info["name"]
    view = _view(agent.snapshot, name)
    instance = _int(request, "instance", None)
    if instance is None:
        instance = view.record.instance - 1 if _bool(request, "previous") else view.record.instance
    if instance < 1:
        what = "a previous instance" if _bool(request, "previous") else "any instance yet"
        raise NotFoundError(f"{name} has no {what}", hint="see `infraveil describe " + name + "`")
    log_files: LogFiles = agent.logs
    if instance not in log_files.instances(name):
        kept = ", ".join(map(str, log_files.instances(name))) or "none"
        raise NotFoundError(
            f"no log is kept for instance {instance} of {name}", hint=f"kept: {kept}"
        )
    reader = LogReader(log_files, name, instance)
    try:
        lines = reader.initial(tail=_int(request, "tail", None), since=request.query.get("since"))
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        await response.write(_rows(lines, instance))
        if _bool(request, "follow"):
            await _follow(response, agent, name, instance, reader)
    finally:
        reader.close()
    await response.write_eof()
    return response


FOLLOW_POLL = 0.2
"""How often a followed log is looked at for new lines (only while someone follows)."""


async def _follow(
    response: web.StreamResponse, agent: Agent, name: str, instance: int, reader: LogReader
) -> None:
    """Stream new lines, into each next instance, until the agent is stopping and this
    service's last instance has ended and been read to its exit marker."""
    try:
        while True:
            await asyncio.sleep(FOLLOW_POLL)
            # Look at the agent before the file: an exit is marked in the log before the
            # record says the instance is gone, so reading after this sees it all to the end.
            view = agent.snapshot.services[name]
            finished = agent.snapshot.stopping and not view.record.live
            await response.write(_rows(reader.new(), instance))
            if view.record.instance != instance:
                reader.close()  # a new instance started: follow it from its first line
                instance = view.record.instance
                reader = LogReader(agent.logs, name, instance)
            elif finished:
                return
    finally:
        reader.close()  # the caller closes the first reader; this closes the last one


def _rows(lines: list[LogLine], instance: int) -> bytes:
    return _ndjson([{**line.as_dict(), "instance": instance} for line in lines])


def _ndjson(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


@route(
    "GET",
    "/v1/events",
    "Recorded events, oldest first; with watch, an NDJSON stream that goes on.",
    Param("service", "query", "string", "only this service's events"),
    Param("limit", "query", "integer", "at most this many past events (default 100)"),
    Param("watch", "query", "boolean", "after the past events, stream new ones as NDJSON"),
    returns="{events: [Event]}, or NDJSON of Event with watch",
)
async def events(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    service = request.query.get("service") or None
    if service is not None:
        _view(agent.snapshot, service)
    limit = _int(request, "limit", 100) or 100
    if not _bool(request, "watch"):
        rows = agent.store.events(service=service, limit=limit)
        return web.json_response({"events": [e.as_dict() for e in rows]})
    queue = agent.watch_events()  # subscribe first, so nothing falls between past and new
    try:
        past = agent.store.events(service=service, limit=limit)
        last_id = past[-1].id if past else 0
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        await response.write(_ndjson([e.as_dict() for e in past]))
        while (row := await queue.get()) is not None:
            if row.id > last_id and (service is None or row.service == service):
                await response.write(_ndjson([row.as_dict()]))
        await response.write_eof()
        return response
    finally:
        agent.unwatch_events(queue)


ACTIONS: dict[
    str, Callable[[], StartRequested | StopRequested | RestartRequested | HoldRequested]
] = {
    "start": StartRequested,
    "stop": StopRequested,
    "restart": RestartRequested,
    "hold": HoldRequested,
}
WAIT_FOR: dict[str, Callable[[ServiceView, int], bool]] = {
    "start": lambda v, n: v.record.state in SETTLED and v.record.instance > n,
    "restart": lambda v, n: v.record.state in SETTLED and v.record.instance > n,
    "hold": lambda v, n: v.record.state in SETTLED and v.record.instance > n,
    "stop": lambda v, n: v.record.state is State.STOPPED or not v.record.live,
}


@route(
    "POST",
    "/v1/services/{name}/deploy",
    "Take a new release of SERVICE through the gate: a payload, or its manifest entry as the"
    " manifest now says it. Streams the gate's steps as they pass; the last row is the verdict.",
    SERVICE,
    Param("payload", "query", "string", "absolute path of a payload archive or directory"),
    Param("version", "query", "string", "the release's label (default: the next vN)"),
    Param("sha256", "query", "string", "the payload's expected sha256"),
    returns="NDJSON stream of DeployStep rows, then one DeployVerdict",
)
async def deploy(request: web.Request) -> web.StreamResponse:
    payload = request.query.get("payload") or None
    if payload is not None and not os.path.isabs(payload):
        raise _BadRequest(f"payload must be an absolute path, got {payload!r}")
    version = request.query.get("version") or None
    if version is not None and not VERSION.fullmatch(version):
        raise _BadRequest(
            f"version {version!r} is not a valid label: use 1 to 64 letters, digits, '.', '_',"
            " '+' or '-', starting with a letter or digit"
        )
    deploy_request = DeployRequest(
        request.match_info["name"],
        payload=payload,
        version=version,
        sha256=request.query.get("sha256") or None,
        by=_peer(request),
    )
    return await _stream_deploy(request, deploy_request)


@route(
    "POST",
    "/v1/services/{name}/rollback",
    "Roll SERVICE back to its known-good release (or a named kept one), through the gate.",
    SERVICE,
    Param("to", "query", "string", "the version to roll back to (default: the known-good)"),
    returns="NDJSON stream of DeployStep rows, then one DeployVerdict",
)
async def rollback(request: web.Request) -> web.StreamResponse:
    deploy_request = DeployRequest(
        request.match_info["name"],
        rollback=True,
        to=request.query.get("to") or None,
        by=_peer(request),
    )
    return await _stream_deploy(request, deploy_request)


VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


async def _stream_deploy(request: web.Request, deploy_request: DeployRequest) -> web.StreamResponse:
    """Stream a deploy's rows until its verdict. A client that goes away does not stop the
    deploy: the gate runs in the agent, to its end."""
    agent = _agent(request)
    queue = await agent.deploy(deploy_request)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    while (row := await queue.get()) is not None:
        await response.write(_ndjson([row]))
    await response.write_eof()
    return response


def _peer(request: web.Request) -> str:
    """Who is asking, from the Unix socket's peer credentials: "pid 4242 (infraveil deploy …)"."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None or sock.family != socket.AF_UNIX:
        return ""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return ""
    pid, _, _ = struct.unpack("3i", raw)
    return describe_process(pid)


@route(
    "GET",
    "/v1/services/{name}/releases",
    "SERVICE's kept releases (newest first), which is current and known-good, and a deploy"
    " under way.",
    SERVICE,
    returns="{service, current, known_good, waiting_for_first_deploy, deploy, releases: [Release]}",
)
async def releases(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    return web.json_response(agent.deploys.releases(request.match_info["name"]))


@route(
    "GET",
    "/v1/changes",
    "Services whose manifest entry differs from what they run (what `infraveil deploy` with"
    " no service would deploy).",
    returns="{changed: [name], added: [name], removed: [name]}",
)
async def changes(request: web.Request) -> web.StreamResponse:
    return web.json_response(_agent(request).deploys.changes())


@route(
    "POST",
    "/v1/services/{name}/{action}",
    "start, stop or restart a service, or hold it (restart it with its command replaced by a"
    " wait, for `debug --hold`; any other action ends the hold); waits until it has happened"
    " (or the wait is over).",
    SERVICE,
    Param("action", "path", "string", "start | stop | restart | hold"),
    Param("wait", "query", "number", "seconds to wait for the outcome (default 60; 0: don't)"),
    returns="{service: ServiceStatus, done: boolean, message: string}",
)
async def control(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    name, action = request.match_info["name"], request.match_info["action"]
    if action not in ACTIONS:
        raise _BadRequest(f"unknown action {action!r}: use start, stop, restart or hold")
    view = _view(agent.snapshot, name)
    wait = _float(request, "wait", 60.0)
    before = view.record.instance
    refused = await agent.command(name, ACTIONS[action]())
    if refused is not None:
        return web.json_response(
            error_body(
                "refused", refused, service=views.service_status(agent.snapshot.services[name])
            ),
            status=409,
        )
    done = await agent.wait_until(lambda s: WAIT_FOR[action](s.services[name], before), wait)
    return web.json_response(
        {
            "service": views.service_status(agent.snapshot.services[name]),
            "done": done,
            "message": f"{action} of {name} {'done' if done else 'under way'}",
        }
    )


@route("POST", "/v1/shutdown", "Stop every service (dependants first), then the agent.")
async def shutdown(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    agent.shutdown()
    return web.json_response({"pid": agent.snapshot.pid, "stopping": True}, status=202)


@route("GET", "/metrics", "Prometheus exposition: state, ready, restarts, last exit, memory.")
async def metrics(request: web.Request) -> web.StreamResponse:
    body, content_type = render_metrics(_agent(request).snapshot)
    return web.Response(body=body, headers={"Content-Type": content_type})


@route("GET", "/openapi.json", "This API, as an OpenAPI 3.1 document.")
async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document())


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in ROUTES:
        paths.setdefault(r.path, {})[r.method.lower()] = {
            "summary": r.summary,
            "parameters": [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.where == "path",
                    "description": p.description,
                    "schema": {"type": p.type},
                }
                for p in r.params
            ],
            "responses": {"200": {"description": r.returns}},
        }
    schemas = {
        name: {
            "type": "object",
            "properties": {f: {"description": d} for f, d in fields.items()},
        }
        for name, fields in views.SCHEMAS.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "infraveil agent API", "version": __version__},
        "paths": paths,
        "components": {"schemas": schemas},
    }


# ── serving ─────────────────────────────────────────────────────────────────────────────────


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except _BadRequest as e:
        return web.json_response(error_body("bad_request", str(e)), status=400)
    except UnknownServiceError as e:
        body = error_body(e.code, e.message, e.hint, name=e.name, known=list(e.known))
        return web.json_response(body, status=404)
    except InfraveilError as e:
        return web.json_response(error_body(e.code, e.message, e.hint), status=status_for(e))


def make_app(agent: Agent) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=64 * 1024)
    app["agent"] = agent
    for r in ROUTES:
        app.router.add_route(r.method, r.path, r.handler)
    return app


async def serve(agent: Agent, socket_path: Path) -> web.AppRunner:
    """Serve the API on `socket_path`, readable and writable by the agent's user only."""
    runner = web.AppRunner(make_app(agent), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        socket_path.unlink()  # left by an agent that was killed; the lock says it is gone
    except FileNotFoundError:
        pass
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where others may connect
    try:
        site = web.UnixSite(runner, str(socket_path))
        await site.start()
    finally:
        os.umask(old_umask)
    os.chmod(socket_path, 0o600)
    return runner
