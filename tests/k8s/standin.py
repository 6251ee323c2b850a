"""A stand-in Kubernetes API server: real response bodies, served on 127.0.0.1 over plain HTTP.

The real `kubernetes` client (and so the real CLI, given a kubeconfig from `kubeconfig()`)
talks to it as to kube-apiserver: bearer-token auth (401 Status otherwise), pods and events
per namespace with `labelSelector` / `fieldSelector` (equality only, what the live path uses)
and `limit`/`continue` pages, one pod by name (404 Status when absent), logs per container
and `previous`, ReplicaSets/Deployments/… by name. Anything else is a recorded reply keyed by
method, path and the query parameters that matter (`reply()`), e.g. a 403 Status exactly as
kube-apiserver words it (`forbid()`).

    with StandIn() as api:
        api.add_pods("shop", recorded("shop-pods.json")["items"])
        api.kubeconfig(tmp_path / "kubeconfig")

Bodies come from tests/k8s/recorded/ (`recorded()`); `big_namespace()` generates the 200-pod
namespace the benchmark and the scale test read.
"""

from __future__ import annotations

import asyncio
import copy
import json
import ssl
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

RECORDED = Path(__file__).parent / "recorded"
TOKEN = "standin-token-0123456789"
USER = "system:serviceaccount:default:viewer"


def recorded(name: str) -> Any:
    """A recorded body: parsed JSON for .json, text otherwise."""
    path = RECORDED / name
    return json.loads(path.read_text()) if path.suffix == ".json" else path.read_text()


def status_body(code: int, reason: str, message: str, **details: str) -> dict[str, Any]:
    """A v1 Status as kube-apiserver sends it with an error."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        body["details"] = details
    body["code"] = code
    return body


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class _Namespace:
    pods: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[tuple[str, str, bool], str] = field(default_factory=dict)
    """(pod, container, previous) -> text."""
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(resource plural, name) -> object: replicasets, deployments, jobs, ..."""


class StandIn:
    """The server; a context manager that runs it in a thread with its own event loop."""

    def __init__(
        self, token: str = TOKEN, *, latency: float = 0.0, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.token = token
        self.tls = tls
        """(certificate, key): serve HTTPS with them (make_certificate() makes a pair)."""
        self.latency = latency
        """Seconds each answer waits: a remote cluster's round trip, for the benchmark."""
        self.namespaces: dict[str, _Namespace] = {}
        self.replies: list[tuple[str, str, dict[str, str], Reply]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        """Every request served: (method, path, query)."""
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # ── content ──────────────────────────────────────────────────────────────────────────

    def ns(self, name: str) -> _Namespace:
        return self.namespaces.setdefault(name, _Namespace())

    def add_pods(self, namespace: str, pods: list[dict[str, Any]]) -> None:
        self.ns(namespace).pods.extend(pods)

    def add_events(self, namespace: str, events: list[dict[str, Any]]) -> None:
        self.ns(namespace).events.extend(events)

    def add_log(
        self, namespace: str, pod: str, container: str, text: str, *, previous: bool = True
    ) -> None:
        self.ns(namespace).logs[(pod, container, previous)] = text

    def add_object(self, namespace: str, resource: str, obj: dict[str, Any]) -> None:
        self.ns(namespace).objects[(resource, obj["metadata"]["name"])] = obj

    def reply(
        self,
        path: str,
        body: Mapping[str, Any] | str,
        *,
        status: int = 200,
        method: str = "GET",
        **query: str,
    ) -> None:
        """Answer `method path` (with at least these query parameters) with `body`; the most
        specific recorded reply wins over the namespace model."""
        if isinstance(body, str):
            reply = Reply(status, body.encode(), "text/plain")
        else:
            reply = Reply(status, json.dumps(body).encode())
        self.replies.append((method, path, dict(query), reply))

    def forbid(self, path: str, verb: str, resource: str, namespace: str, **query: str) -> None:
        """403 on `path`, worded as kube-apiserver's RBAC authorizer words it."""
        base, _, sub = resource.partition("/")
        name = path.split("/")[-2] if sub else ""
        subject = f'{base} "{name}"' if name else base
        message = (
            f'{subject} is forbidden: User "{USER}" cannot {verb} resource "{resource}"'
            f' in API group "" in the namespace "{namespace}"'
        )
        details = {"name": name, "kind": base} if name else {"kind": base}
        self.reply(path, status_body(403, "Forbidden", message, **details), status=403, **query)

    # ── serving ──────────────────────────────────────────────────────────────────────────

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def kubeconfig(
        self,
        path: Path,
        *,
        token: str | None = None,
        namespace: str = "shop",
        context: str = "standin",
        server: str | None = None,
        ca: Path | None = None,
    ) -> Path:
        """A kubeconfig whose current context points the client at this server (trusting the
        certificate `ca` when it serves HTTPS)."""
        # JSON is YAML: no yaml library needed to write it
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "standin",
                    "cluster": {
                        "server": server or self.url,
                        **({"certificate-authority": str(ca)} if ca else {}),
                    },
                }
            ],
            "users": [{"name": "viewer", "user": {"token": token or self.token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": "standin", "user": "viewer", "namespace": namespace},
                },
                {
                    "name": "other",
                    "context": {"cluster": "standin", "user": "viewer", "namespace": "default"},
                },
            ],
            "current-context": context,
        }
        path.write_text(json.dumps(config, indent=2))
        return path

    def __enter__(self) -> StandIn:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start())
            except BaseException as e:
                failure.append(e)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="k8s-standin", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise failure[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        context = None
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.requests.append((request.method, request.path, query))
        if self.latency:
            await asyncio.sleep(self.latency)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            reply = _json(401, status_body(401, "Unauthorized", "Unauthorized"))
        else:
            reply = self._recorded(request.method, request.path, query) or self._model(
                request.path, query
            )
        return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)

    def _recorded(self, method: str, path: str, query: dict[str, str]) -> Reply | None:
        best: tuple[int, Reply] | None = None
        for m, p, q, reply in self.replies:
            matches = m == method and p == path and all(query.get(k) == v for k, v in q.items())
            if matches and (best is None or len(q) >= best[0]):
                best = (len(q), reply)
        return best[1] if best else None

    def _model(self, path: str, query: dict[str, str]) -> Reply:
        parts = path.strip("/").split("/")
        # /api/v1/namespaces/NS/RESOURCE[/NAME[/log]]  or  /apis/GROUP/VERSION/namespaces/...
        try:
            at = parts.index("namespaces")
        except ValueError:
            return _not_found_path()
        rest = parts[at + 1 :]
        if not rest or rest[0] not in self.namespaces:
            if len(rest) >= 3:
                return _json(404, _not_found(rest[1], rest[2]))
            return _json(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []})
        ns = self.namespaces[rest[0]]
        match rest[1:]:
            case ["pods"]:
                return _json(200, _page(_select(ns.pods, query), query, "PodList"))
            case ["events"]:
                return _json(200, _page(_select(ns.events, query), query, "EventList"))
            case ["pods", name]:
                pod = next((p for p in ns.pods if p["metadata"]["name"] == name), None)
                return _json(200, pod) if pod else _json(404, _not_found("pods", name))
            case ["pods", name, "log"]:
                if not any(p["metadata"]["name"] == name for p in ns.pods):
                    return _json(404, _not_found("pods", name))
                previous = query.get("previous") == "true"
                container = query.get("container", "")
                text = ns.logs.get((name, container, previous))
                if text is None:
                    word = "previous terminated" if previous else ""
                    message = f'{word} container "{container}" in pod "{name}" not found'
                    return _json(400, status_body(400, "BadRequest", message.strip()))
                tail = int(query.get("tailLines", "0") or 0)
                lines = text.splitlines(keepends=True)
                return Reply(200, "".join(lines[-tail:] if tail else lines).encode(), "text/plain")
            case [resource, name]:
                obj = ns.objects.get((resource, name))
                return _json(200, obj) if obj else _json(404, _not_found(resource, name))
        return _not_found_path()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by openssl."""
    cert, key = directory / "server.crt", directory / "server.key"
    key_type = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            *key_type,
            "-days",
            "2",
            *subject,
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def _json(status: int, body: Any) -> Reply:
    return Reply(status, json.dumps(body).encode())


def _not_found(resource: str, name: str) -> dict[str, Any]:
    return status_body(404, "NotFound", f'{resource} "{name}" not found', name=name, kind=resource)


def _not_found_path() -> Reply:
    return _json(
        404, status_body(404, "NotFound", "the server could not find the requested resource")
    )


def _select(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    """Equality label and field selectors (`a=b,c=d`), as the API applies them."""
    chosen = items
    labels = _pairs(query.get("labelSelector", ""))
    if labels:
        chosen = [
            i for i in chosen if all(i["metadata"].get("labels", {}).get(k) == v for k, v in labels)
        ]
    fields = _pairs(query.get("fieldSelector", ""))
    if fields:
        chosen = [i for i in chosen if all(_field(i, k) == v for k, v in fields)]
    return chosen


def _pairs(selector: str) -> list[tuple[str, str]]:
    pairs = []
    for term in filter(None, selector.split(",")):
        key, _, value = term.replace("==", "=").partition("=")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _field(item: dict[str, Any], dotted: str) -> str:
    value: Any = item
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def _page(items: list[dict[str, Any]], query: dict[str, str], kind: str) -> dict[str, Any]:
    start = int(query.get("continue") or 0)
    limit = int(query.get("limit") or 0) or len(items) or 1
    page = items[start : start + limit]
    metadata: dict[str, Any] = {"resourceVersion": "48213"}
    if start + limit < len(items):
        metadata["continue"] = str(start + limit)
    return {"kind": kind, "apiVersion": "v1", "metadata": metadata, "items": page}


# ── the recorded shop namespace, and a big generated one ───────────────────────────────────


def shop(api: StandIn, namespace: str = "shop") -> None:
    """The recorded namespace `shop` (served as `namespace`): two crash-looping api pods (a
    missing env var), a healthy web pod that was OOM-killed once, db-0 whose init container
    fails, their events, the node's events, the owner chain and the containers' logs."""
    pods = recorded("shop-pods.json")["items"]
    events = recorded("shop-events.json")["items"]
    for item in pods + events:
        item["metadata"]["namespace"] = namespace
    for event in events:
        event["involvedObject"]["namespace"] = namespace
    api.add_pods(namespace, pods)
    api.add_events(namespace, events)
    if "default" not in api.namespaces:
        api.add_events("default", recorded("node-events.json")["items"])
    for resource, item in recorded("shop-owners.json"):
        item["metadata"]["namespace"] = namespace
        api.add_object(namespace, resource, item)
    for pod in ("api-7c9d8b6f4d-x7k2p", "api-7c9d8b6f4d-q4m8n"):
        api.add_log(namespace, pod, "api", recorded("api.previous.txt"))
    api.add_log(namespace, "web-6d5f7c8b9-h2j4k", "web", recorded("web.previous.txt"))
    api.add_log(namespace, "db-0", "init-schema", recorded("init-schema.previous.txt"))


def big_namespace(
    api: StandIn, namespace: str = "big", *, pods: int = 200, failing: int = 20, nodes: int = 4
) -> None:
    """`pods` pods of 10 Deployments over `nodes` nodes, `failing` of them crash-looping like
    shop's api pod (each with its events and previous log), the rest healthy like web."""
    items = recorded("shop-pods.json")["items"]
    sick = next(p for p in items if p["metadata"]["name"].startswith("api-"))
    well = next(p for p in items if p["metadata"]["name"].startswith("web-"))
    events = recorded("shop-events.json")["items"]
    sick_events = [e for e in events if e["involvedObject"]["name"] == sick["metadata"]["name"]]
    log = recorded("api.previous.txt")
    made: list[dict[str, Any]] = []
    made_events: list[dict[str, Any]] = []
    for n in range(pods):
        template = sick if n % (pods // failing) == 0 else well
        pod = copy.deepcopy(template)
        deployment = f"app{n % 10}"
        replicaset = f"{deployment}-5f6c7d8e9"
        name = f"{replicaset}-{n:05d}"
        meta = pod["metadata"]
        meta.update(name=name, namespace=namespace, uid=f"00000000-0000-4000-8000-{n:012d}")
        meta["labels"] = {"app": deployment, "pod-template-hash": "5f6c7d8e9"}
        meta["ownerReferences"][0]["name"] = replicaset
        pod["spec"]["nodeName"] = f"node-{n % nodes + 1}"
        made.append(pod)
        if template is sick:
            container = sick["spec"]["containers"][0]["name"]
            api.add_log(namespace, name, container, log)
            for e in sick_events:
                event = copy.deepcopy(e)
                event["metadata"]["namespace"] = namespace
                event["metadata"]["name"] = f"{name}.{e['metadata']['name'].split('.')[-1]}"
                event["involvedObject"].update(name=name, namespace=namespace, uid=meta["uid"])
                made_events.append(event)
    api.add_pods(namespace, made)
    api.add_events(namespace, made_events)
    for d in range(10):
        deployment = f"app{d}"
        owners = recorded("shop-owners.json")
        rs = copy.deepcopy(next(o for r, o in owners if r == "replicasets"))
        rs["metadata"].update(name=f"{deployment}-5f6c7d8e9", namespace=namespace)
        rs["metadata"]["ownerReferences"][0]["name"] = deployment
        api.add_object(namespace, "replicasets", rs)
        dep = copy.deepcopy(next(o for r, o in owners if r == "deployments"))
        dep["metadata"].update(name=deployment, namespace=namespace)
        api.add_object(namespace, "deployments", dep)


Setup = Callable[[StandIn], None]
