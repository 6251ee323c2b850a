"""The agent's HTTP/JSON API, served on a Unix socket that only its owner can use (0600).

Every route is declared once, with the `route` decorator, and the OpenAPI document
(`GET /openapi.json`, and docs/reference/api.md) is generated from those declarations.
Handlers read the agent's published snapshot and the store; the only way they change
anything is by queueing a command for the agent's loop. No route takes a command line: what
runs is what the manifest says (tests/e2e/test_e2e_security.py checks every route for that).

On request (`up --listen`), the same API is also served over TCP, where every request needs
the bearer token (`infraveil.api.auth`). Every answer, errors included, is JSON; a request
body (no route takes one) is refused before it is read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
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
from aiohttp.typedefs import Middleware

from infraveil import __version__
from infraveil.api import views
from infraveil.api.auth import TOKEN_FILE, ListenAddress, bearer_auth, load_or_create_token
from infraveil.api.errors import error_body, status_for
from infraveil.api.metrics import render_metrics
from infraveil.core.errors import (
    InfraveilError,
    NotFoundError,
    StateDirError,
    UnknownServiceError,
)
from infraveil.core.lifecycle import (
    RestartRequested,
    StartRequested,
    State,
    StopRequested,
)
from infraveil.daemon.agent import Agent, HoldRequested, ServiceView, Snapshot
from infraveil.daemon.deploys import DeployRequest
from infraveil.runtime.environment import known_secrets
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
AGENT = web.AppKey("agent", Agent)
LISTENING = web.AppKey("listening", dict[str, str])
"""Where the API listens besides its socket (`tcp`: HOST:PORT), once it does."""
SERVICE = Param("name", "path", "string", "service name")


def route(
    method: str, path: str, summary: str, *params: Param, returns: str = "object"
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, path, summary, params, returns, handler))
        return handler

    return register


def _agent(request: web.Request) -> Agent:
    return request.app[AGENT]


def _view(snapshot: Snapshot, name: str) -> ServiceView:
    view = snapshot.services.get(name)
    if view is None:
        raise UnknownServiceError(name, list(snapshot.services))
    return view


def _int(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        raise _BadRequest(f"query parameter {name!r} must be an integer, got {_shown(raw)}")
    value = int(raw) if len(raw) <= 20 else None  # never convert a 10,000-digit number
    if value is None or not 0 <= value <= MAX_INT:
        raise _BadRequest(
            f"query parameter {name!r} is out of range: {_shown(raw)} (use 0 to {MAX_INT})"
        )
    return value


_INTEGER = re.compile(r"[+-]?[0-9]+")
MAX_INT = 10_000_000


def _float(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw) if len(raw) <= 40 else math.nan
    except ValueError:
        raise _BadRequest(f"query parameter {name!r} must be a number, got {_shown(raw)}") from None
    if not 0 <= value <= 3600:
        raise _BadRequest(f"query parameter {name!r} must be between 0 and 3600")
    return value


def _bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _shown(raw: str, limit: int = 60) -> str:
    """A client's value as an error message quotes it: repr'd (NULs visible), and cut short."""
    return repr(raw) if len(raw) <= limit else repr(raw[:limit]) + f"... ({len(raw)} characters)"


class _BadRequest(Exception):
    pass


# ── routes ──────────────────────────────────────────────────────────────────────────────────


@route(
    "GET",
    "/v1/agent",
    "The agent: pid, version, state directory, manifest, and its TCP address (or null).",
)
async def get_agent(request: web.Request) -> web.StreamResponse:
    info = views.agent_info(_agent(request).snapshot, __version__)
    return web.json_response({**info, "tcp": request.app[LISTENING].get("tcp")})


SETTLED = {State.RUNNING, State.STOPPED, State.BACKOFF, State.FAILED}


@route(
    "GET",
    "/v1/status",
    "One row per service (ServiceStatus).",
    Param("wait", "query", "string", "`settled`: answer once no service is pending or starting"),
    Param("timeout", "query", "number", "seconds to wait at most (default 30)"),
    returns="{services: [ServiceStatus], settled: boolean, warnings: [{warning, message, fix}]}",
)
async def get_status(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    settled = True
    if request.query.get("wait") == "settled":

        def all_settled(s: Snapshot) -> bool:
            return not s.starting and all(v.record.state in SETTLED for v in s.services.values())

        settled = await agent.wait_until(all_settled, _float(request, "timeout", 30.0))
    now = time.monotonic()
    snapshot = agent.snapshot
    rows = [views.service_status(v, now) for v in snapshot.services.values()]
    warnings = []  # the agent's own trouble, beside its services'
    if snapshot.store_error:
        warnings.append(
            {
                "warning": "store_error",
                "message": snapshot.store_error,
                "fix": "free some space (or repair the disk) under the state directory; the"
                " services run on, and what waits in memory is written once it can be",
            }
        )
    logs: LogFiles = agent.logs
    if logs.trouble.error:
        warnings.append(
            {
                "warning": "logs_error",
                "message": f"{logs.trouble.error}; {logs.trouble.dropped} bytes of output"
                " dropped so far",
                "fix": "free some space (or repair the disk) under the state directory; the"
                " services run on, and their logs go on once they can be written",
            }
        )
    return web.json_response({"services": rows, "settled": settled, "warnings": warnings})


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
    mask = known_secrets().text
    instances = [
        {**i.as_dict(), "command": [mask(word) for word in i.command]}  # as the spec's is
        for i in agent.store.instances(name, limit=5)
    ]
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
    """Log lines as served: a known secret value a service printed is masked (its file on
    disk keeps what it wrote, readable only by the agent's user)."""
    mask = known_secrets().text
    return _ndjson(
        [{**line.as_dict(), "text": mask(line.text), "instance": instance} for line in lines]
    )


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
        raise _BadRequest(f"payload must be an absolute path, got {_shown(payload)}")
    version = request.query.get("version") or None
    if version is not None and not VERSION.fullmatch(version):
        raise _BadRequest(
            f"version {_shown(version)} is not a valid label: use 1 to 64 letters, digits, '.',"
            " '_', '+' or '-', starting with a letter or digit"
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
    if sock is None:
        return ""
    if sock.family != socket.AF_UNIX:
        return f"{request.remote} over TCP"
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


@route(
    "POST",
    "/v1/shutdown",
    "Stop every service (dependants first), then the agent; or, with keep_services, only the"
    " agent (an upgrade: the next agent adopts the services).",
    Param("keep_services", "query", "boolean", "exit and leave every service running"),
)
async def shutdown(request: web.Request) -> web.StreamResponse:
    agent = _agent(request)
    keep = _bool(request, "keep_services")
    agent.shutdown(keep_services=keep)
    return web.json_response(
        {"pid": agent.snapshot.pid, "stopping": True, "keep_services": keep}, status=202
    )


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

MAX_BODY = 64 * 1024
"""No route reads a request body; one declared larger than this is refused with 413, unread."""

log = logging.getLogger(__name__)


@web.middleware
async def _no_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request body before anything reads it: every parameter is in the query string.

    aiohttp's own `client_max_size` is only checked when a handler reads the body, so a
    100 MB upload would otherwise be drained into nothing; here its Content-Length is enough.
    """
    length = request.content_length
    if length is not None and length > MAX_BODY:
        response = web.json_response(
            error_body(
                "too_large",
                f"the request body of {length} bytes is over the limit of {MAX_BODY} bytes",
                "this API takes no request body: pass parameters in the query string",
            ),
            status=413,
        )
    elif request.body_exists:
        response = web.json_response(
            error_body(
                "bad_request",
                "this API takes no request body",
                "pass parameters in the query string (see GET /openapi.json)",
            ),
            status=400,
        )
    else:
        return await handler(request)
    response.force_close()  # what is left of the body is not waited for on this connection
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error becomes a JSON body (`{"error": {code, message, hint}}`) here, and only here."""
    try:
        return await handler(request)
    except _BadRequest as e:
        return web.json_response(error_body("bad_request", str(e)), status=400)
    except UnknownServiceError as e:
        body = error_body(e.code, e.message, e.hint, name=e.name, known=list(e.known))
        return web.json_response(body, status=404)
    except InfraveilError as e:
        return web.json_response(error_body(e.code, e.message, e.hint), status=status_for(e))
    except web.HTTPException as e:  # the router's own: no such path (404), wrong method (405)
        if e.status < 400:
            raise
        headers = {k: v for k, v in e.headers.items() if k.lower() == "allow"}
        where = f"{request.method} {_shown(request.path, 200)}"
        if e.status == 405:
            message, hint = f"{where}: wrong method", f"use {headers.get('Allow') or 'none'}"
        elif e.status == 404:
            message, hint = f"{where}: no such endpoint", "see GET /openapi.json for the routes"
        else:
            message, hint = f"{where}: {e.reason}", ""
        body = error_body(_HTTP_CODES.get(e.status, "bad_request"), message, hint)
        return web.json_response(body, status=e.status, headers=headers)
    except (ConnectionError, asyncio.CancelledError):
        raise  # the client went away: there is no one to answer
    except Exception as e:
        if request.writer.output_size > 0:
            raise  # a stream had begun: all that can be done is to cut it short
        log.exception("%s %s failed", request.method, request.path)
        body = error_body(
            "internal",
            f"the agent failed to answer {request.method} {request.path}: {type(e).__name__}: {e}",
            "this is a bug in infraveil; the agent's log has the traceback",
        )
        return web.json_response(body, status=500)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def _over_tcp(request: web.Request) -> bool:
    """Anything not on the Unix socket needs the token (and if in doubt, so does it)."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    return sock is None or sock.family != socket.AF_UNIX


def make_app(agent: Agent, token: str | None = None) -> web.Application:
    """The API; with a `token`, requests that do not come over the Unix socket must carry it."""
    middlewares: list[Middleware] = [_no_bodies, _errors]
    if token is not None:
        middlewares.insert(0, bearer_auth(token, _over_tcp))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
    app[AGENT] = agent
    app[LISTENING] = {}
    for r in ROUTES:
        app.router.add_route(r.method, r.path, r.handler, expect_handler=_no_continue)
    # Last, so that it only gets what no route takes: aiohttp's own 404/405 would skip the
    # Expect handler above, and answer in plain text.
    app.router.add_route("*", r"/{path:[\s\S]*}", _no_route, expect_handler=_no_continue)
    return app


async def _no_continue(request: web.Request) -> None:
    """Never answer `Expect: 100-continue`: no route takes a body, so the client gets its
    answer at once instead of an invitation to send one (which would be refused). aiohttp's
    default would also answer another Expect value in plain text, and fail with a 500 on one
    that is not UTF-8."""


async def _no_route(request: web.Request) -> web.StreamResponse:
    """No route takes this path with this method: 405 with the methods it takes, or 404."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            _, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


async def serve(
    agent: Agent, socket_path: Path, listen: ListenAddress | None = None
) -> web.AppRunner:
    """Serve the API on `socket_path`, readable and writable by the agent's user only, and on
    TCP at `listen` (if given) for requests with the bearer token."""
    _keep_private(agent, socket_path.parent)
    token = load_or_create_token(socket_path.parent) if listen is not None else None
    runner = web.AppRunner(make_app(agent, token), access_log=None, handle_signals=False)
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
    if listen is not None:
        try:
            await _listen_tcp(agent, runner, listen, socket_path.parent / TOKEN_FILE)
        except BaseException:
            await runner.cleanup()
            socket_path.unlink(missing_ok=True)
            raise
    return runner


async def _listen_tcp(
    agent: Agent, runner: web.AppRunner, listen: ListenAddress, token_file: Path
) -> None:
    site = web.TCPSite(runner, listen.host, listen.port, reuse_address=False)
    try:
        await site.start()
    except OSError as e:
        raise StateDirError(
            f"cannot listen on {listen}: {os.strerror(e.errno) if e.errno else e}",
            hint="choose another port with --listen (or INFRAVEIL_LISTEN), or stop what uses it",
        ) from e
    bound = next(a for a in runner.addresses if isinstance(a, tuple))
    where = ListenAddress(bound[0], bound[1], listen.explicit_host)
    runner.app[LISTENING]["tcp"] = str(where)  # the app is frozen; its dict is not
    agent.supervisor.emit(
        None,
        "normal",
        "ApiListening",
        f"the API is on http://{where} too; every request there needs"
        f" `Authorization: Bearer TOKEN` with the token in {token_file} (0600)",
    )
    if not listen.loopback:
        agent.supervisor.emit(
            None,
            "warning",
            "ApiExposed",
            f"the API listens on {where}, which is not a loopback address: anyone who can"
            " reach this host and has the token can start and stop its services; prefer"
            " 127.0.0.1 with an SSH tunnel or a TLS proxy in front",
        )


def _keep_private(agent: Agent, state_dir: Path) -> None:
    """The socket is only the owner's if its directory is: the state directory (and run/ and
    logs/ in it) must belong to the agent's user and be 0700.

    A directory that already existed with a wider mode (a `--state-dir` made by hand, an old
    umask) is tightened, and an event says so: it is the agent's own directory, and logs and
    the token must not stay readable meanwhile. One that belongs to another user is refused:
    that user could replace the socket or the token file at will.
    """
    tightened = []
    for path in (state_dir, state_dir / "run", state_dir / "logs"):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if info.st_uid != os.geteuid():
            raise StateDirError(
                f"the state directory {path} belongs to uid {info.st_uid}, not to the agent's"
                f" user (uid {os.geteuid()}): its owner could take over the agent's socket",
                hint="use a --state-dir that belongs to the user who runs the agent",
            )
        if info.st_mode & 0o077:
            os.chmod(path, 0o700)
            tightened.append(f"{path} ({oct(info.st_mode & 0o777)})")
    if tightened:
        agent.supervisor.emit(
            None,
            "warning",
            "StateDirTightened",
            f"made {', '.join(tightened)} 0700: the state directory holds logs and the API"
            " socket, which only the agent's user may use",
        )
