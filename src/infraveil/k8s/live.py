"""The user's cluster, read through the `kubernetes` client: pods, events, owners and logs.

The client does what is hard to get right (kubeconfig merging, contexts, certificates, tokens,
exec plugins such as aws/gcloud, in-cluster service accounts); the requests themselves go
through its `ApiClient` as plain GETs whose JSON is kept as the API sent it, so `PodEvidence`
has the camelCase shape evidence.py documents (the typed models would rename every field, and
importing them costs more than a whole diagnosis).

For many pods the number of requests does not grow with the pods but with what failed: one
list for the pods, one for the namespace's events (matched to pods here), one per node for its
events, one per owner up the chain (each asked for once), and the logs of the containers that
restarted or are failing. After the pod list, they all go out through a small thread pool, so
a distant cluster costs a few round trips, not one per request.

    connect(context)                -> Cluster      (errors: K8sConfigError, ClientMissingError)
    gather(cluster, namespace, ...) -> [PodEvidence] (errors: ClusterUnreachableError,
                                                     ClusterDeniedError, PodNotFoundError)

What is forbidden besides the pods themselves (events, logs, owners) does not stop the
diagnosis: the missing permission is said in the evidence's `problems`.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import re
import ssl
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from infraveil.core.errors import InfraveilError, NotFoundError
from infraveil.k8s.evidence import PodEvidence

LOG_TAIL_LINES = 500
"""Lines of each container log read: the end is where a crash explains itself."""

WORKERS = 8
"""Log requests in flight at once: enough to hide latency, few enough not to throttle."""

TIMEOUT = (5.0, 30.0)
"""Connect and read timeouts of every request, in seconds."""

PAGE = 500
"""Items per list request; longer lists are read page by page (`continue`)."""

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

INSTALL_HINT = "pip install 'infraveil[k8s]'"

# Kinds whose owners are looked up, with their API path (an owner of any other kind is named
# from the reference alone: it is the top of the chain or a custom resource).
_OWNER_PATHS = {
    ("apps/v1", "ReplicaSet"): "/apis/apps/v1/namespaces/{ns}/replicasets/{name}",
    ("batch/v1", "Job"): "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
}
_OWNER_DEPTH = 4


class K8sConfigError(InfraveilError):
    """No kubeconfig, an unknown context, or a kubeconfig the client cannot use."""

    code = "k8s_config"


class ClientMissingError(K8sConfigError):
    """The optional `kubernetes` package is not installed."""


class ClusterUnreachableError(InfraveilError):
    """The API server did not answer (refused, timed out, TLS failed), or answered an error
    that is not about the request (500, 503, 429)."""

    code = "k8s_unreachable"


class ClusterDeniedError(InfraveilError):
    """The API server rejected the credentials (401) or RBAC forbids the request (403)."""

    code = "k8s_denied"


class PodNotFoundError(NotFoundError):
    """No pod by that name (or matching that selector) in the namespace."""


@dataclass
class Cluster:
    """A connection to one cluster: the client, and what the kubeconfig context says."""

    api: Any
    """A `kubernetes.client.ApiClient` configured for the context."""
    context: str
    """The context's name, or "in-cluster"."""
    namespace: str
    """The context's namespace (what kubectl uses without -n)."""
    server: str

    def close(self) -> None:
        self.api.close()
        self.api.rest_client.pool_manager.clear()

    def get(self, path: str, what: str, **query: str | int | bool) -> Any:
        """GET `path` as JSON; `what` names the request in errors ("list pods in shop")."""
        return json.loads(self.get_bytes(path, what, **query))

    def get_bytes(self, path: str, what: str, **query: str | int | bool) -> bytes:
        import urllib3

        params = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in query.items()]
        request = self.api.param_serialize(
            "GET",
            path,
            query_params=params,
            header_params={"Accept": "application/json, */*"},
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*request, _request_timeout=TIMEOUT)
            data: bytes = response.read()
        except urllib3.exceptions.HTTPError as e:
            cause = _innermost(e)
            raise ClusterUnreachableError(
                f"cannot reach the Kubernetes API server at {self.server}: {_words(cause)}",
                hint=_TLS_HINT
                if isinstance(cause, ssl.SSLError)
                else f"is the cluster of context {self.context!r} up and reachable from here?"
                " (kubectl cluster-info)",
            ) from None
        except Exception as e:
            # the client turns some TLS failures into an ApiException with status 0
            if getattr(e, "status", None) == 0:
                raise ClusterUnreachableError(
                    f"cannot reach the Kubernetes API server at {self.server}:"
                    f" {' '.join(str(getattr(e, 'reason', e)).split())}",
                    hint=_TLS_HINT,
                ) from None
            raise
        if 200 <= response.status < 300:
            return data
        raise ApiStatus(response.status, data, what, self)


class ApiStatus(Exception):
    """A non-2xx answer, with the API's `Status` body read (message, reason)."""

    def __init__(self, status: int, body: bytes, what: str, cluster: Cluster) -> None:
        self.status = status
        self.what = what
        self.cluster = cluster
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("kind") == "Status":
            self.message = str(parsed.get("message") or "")
            self.reason = str(parsed.get("reason") or "")
        else:
            self.message = body.decode("utf-8", errors="replace").strip()[:300]
            self.reason = ""
        super().__init__(f"{status} {self.reason}: {self.message}")

    def as_error(self) -> InfraveilError:
        """The error a person reads: what was refused and what to do about it."""
        if self.status == 401:
            return ClusterDeniedError(
                f"the API server at {self.cluster.server} rejected the credentials of context"
                f" {self.cluster.context!r} (401 Unauthorized)",
                hint="they are missing, wrong or expired: log in again (your provider's"
                " `get-credentials`/`login` command) and check `kubectl get pods` works",
            )
        if self.status == 403:
            return ClusterDeniedError(f"cannot {self.what}: {forbidden_text(self.message)}")
        return ClusterUnreachableError(
            f"cannot {self.what}: the API server at {self.cluster.server} answered"
            f" {self.status} {self.reason}: {self.message}".rstrip(": "),
            hint="it may be overloaded or restarting: try again, and check `kubectl get"
            " --raw /readyz`",
        )

    def problem(self) -> str:
        """The same refusal as one line for `PodEvidence.problems` (the diagnosis goes on)."""
        if self.status == 403:
            return f"{self.what}: forbidden; {forbidden_text(self.message)}"
        if self.status == 401:
            return f"{self.what}: credentials rejected (401)"
        if self.status in (400, 404) and self.message:
            # the API's own words say it: 'previous terminated container "api" ... not found'
            return f"{self.what}: {self.message}"
        return f"{self.what}: {self.status} {self.reason}: {self.message}".rstrip(": ")


_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]*)"| at the cluster scope)?'
)


def forbidden_text(message: str) -> str:
    """The permission RBAC refused, from the 403 Status message, as a person asks for it.

    'pods is forbidden: User "u" cannot list resource "pods" in API group "" in the namespace
    "shop"' -> 'your user (u) needs `list` on `pods` in namespace shop (check: kubectl auth
    can-i list pods -n shop)'.
    """
    m = _FORBIDDEN.search(message)
    if m is None:
        return message or "forbidden by RBAC"
    verb, resource = m["verb"], m["resource"]
    base, _, sub = resource.partition("/")
    group = m["group"] or ""
    on = f"{base}.{group}" if group else base
    shown = f"{on}/{sub}" if sub else on
    check = f"kubectl auth can-i {verb} {on}" + (f" --subresource={sub}" if sub else "")
    where = ""
    if m["namespace"]:
        where = f" in namespace {m['namespace']}"
        check += f" -n {m['namespace']}"
    elif "at the cluster scope" in message:
        where = " at the cluster scope"
    return f"your user ({m['user']}) needs `{verb}` on `{shown}`{where} (check: {check})"


_TLS_HINT = (
    "the server's certificate is not the one the kubeconfig trusts: check the cluster's"
    " certificate-authority(-data) and server address (kubectl config view --minify)"
)


def _innermost(error: BaseException) -> BaseException:
    """The innermost cause of a urllib3 error: the OS or TLS error that started it."""
    seen = error
    for _ in range(10):
        reason = getattr(seen, "reason", None)
        nested = reason if isinstance(reason, BaseException) else seen.__cause__ or seen.__context__
        if nested is None or nested is seen:
            break
        seen = nested
    return seen


def _words(error: BaseException) -> str:
    # urllib3 prefixes "<urllib3.connection.HTTPConnection object at 0x...>: "
    text = re.sub(r"^<[^>]+>: ", "", str(error)) or type(error).__name__
    return " ".join(text.split())


# ── connecting ─────────────────────────────────────────────────────────────────────────────


def kubeconfig_paths() -> list[Path]:
    """Where the kubeconfig is looked for, in order: $KUBECONFIG (a list), else ~/.kube/config."""
    value = os.environ.get("KUBECONFIG")
    if value:
        return [Path(p).expanduser() for p in value.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def in_cluster() -> bool:
    """Running in a pod with a service account (what kubectl would use there too)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and IN_CLUSTER_TOKEN.is_file()


def connect(context: str | None = None) -> Cluster:
    """A client for `context` (default: the kubeconfig's current context, or in-cluster)."""
    try:
        from kubernetes import config as _kube_config
        from kubernetes.client import ApiClient, Configuration
    except ImportError:
        raise ClientMissingError(
            "reading a live cluster needs the `kubernetes` Python package, which is not installed",
            hint=f"{INSTALL_HINT}; or diagnose offline: --bundle DIR|FILE.tar.gz or"
            " --describe FILE",
        ) from None
    kube_config: Any = _kube_config  # the client's functions carry no annotations
    paths = kubeconfig_paths()
    found = [p for p in paths if p.is_file()]
    configuration = Configuration()
    if not found:
        if context is None and in_cluster():
            try:
                kube_config.load_incluster_config(client_configuration=configuration)
            except Exception as e:  # ConfigException: a token or CA file it cannot use
                raise K8sConfigError(
                    f"cannot use this pod's service account: {_one_line(e)}",
                    hint="mount its token (automountServiceAccountToken) or give a kubeconfig",
                ) from None
            configuration.retries = 1
            namespace = _read_text(IN_CLUSTER_NAMESPACE) or "default"
            return Cluster(ApiClient(configuration), "in-cluster", namespace, configuration.host)
        looked = ", ".join(str(p) for p in paths)
        source = "$KUBECONFIG" if os.environ.get("KUBECONFIG") else "the default path"
        raise K8sConfigError(
            f"no kubeconfig found: looked at {looked} ({source})",
            hint="point KUBECONFIG at one (export KUBECONFIG=/path/to/config), or write it"
            " with your provider's `get-credentials` command; offline, use --bundle or"
            " --describe",
        )
    contexts, current, used = _contexts(found)
    config_file = os.pathsep.join(str(p) for p in used)
    if not used:
        raise K8sConfigError(
            f"the kubeconfig {os.pathsep.join(str(p) for p in found)} is empty",
            hint="write it with your provider's `get-credentials` command, or point KUBECONFIG"
            " at another one",
        )
    known = ", ".join(contexts) or "none"
    if context is not None and context not in contexts:
        raise K8sConfigError(
            f"no context {context!r} in the kubeconfig {config_file}",
            hint=f"known contexts: {known} (kubectl config get-contexts)",
        )
    if context is None and current not in contexts:
        raise K8sConfigError(
            f"the current context {current!r} of the kubeconfig {config_file} is not defined in it"
            if current
            else f"the kubeconfig {config_file} has no current context",
            hint=f"pass --context NAME (known: {known}) or run `kubectl config use-context NAME`",
        )
    chosen = context or current
    try:
        kube_config.load_kube_config(
            config_file=config_file,
            context=chosen,
            client_configuration=configuration,
            persist_config=False,
        )
    except Exception as e:  # ConfigException, a missing certificate file, an exec plugin...
        raise K8sConfigError(
            f"cannot use context {chosen!r} of {config_file}: {_one_line(e)}",
            hint="check its cluster, user and certificate files (kubectl config view --minify)",
        ) from None
    # one retry, not urllib3's three: an unreachable server is said in seconds, not a minute
    configuration.retries = 1
    namespace = contexts[chosen] or "default"
    return Cluster(ApiClient(configuration), chosen, namespace, configuration.host)


def _contexts(paths: list[Path]) -> tuple[dict[str, str], str, list[Path]]:
    """The contexts of the kubeconfig files (name -> namespace), the current one, and the files
    that hold anything. As kubectl merges them: the first file to name a context or set the
    current context wins; an empty file is skipped, not an error."""
    yaml: Any = importlib.import_module("yaml")  # the client's dependency; no stubs installed

    contexts: dict[str, str] = {}
    current = ""
    used: list[Path] = []
    for path in paths:
        try:
            with path.open(encoding="utf-8") as f:
                config = yaml.safe_load(f)
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
            raise K8sConfigError(
                f"cannot read the kubeconfig {path}: {_one_line(e)}",
                hint="check it with `kubectl config view`",
            ) from None
        if not config:
            continue
        if not isinstance(config, dict):
            raise K8sConfigError(
                f"the kubeconfig {path} is not a kubeconfig (a YAML mapping)",
                hint="check it with `kubectl config view`",
            )
        used.append(path)
        for entry in config.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name"):
                namespace = (entry.get("context") or {}).get("namespace") or ""
                contexts.setdefault(str(entry["name"]), str(namespace))
        current = current or str(config.get("current-context") or "")
    return contexts, current, used


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# ── gathering ──────────────────────────────────────────────────────────────────────────────


def gather(
    cluster: Cluster,
    namespace: str | None = None,
    *,
    pod: str | None = None,
    selector: str | None = None,
    all_pods: bool = False,
    tail_lines: int = LOG_TAIL_LINES,
    workers: int = WORKERS,
) -> list[PodEvidence]:
    """The evidence for one pod, the pods matching `selector`, or every pod of the namespace.

    Raises PodNotFoundError when nothing matches, ClusterDeniedError when the pods themselves
    may not be read, ClusterUnreachableError when the server does not answer.
    """
    if pod is None and not selector and not all_pods:
        raise ValueError("gather: give pod, selector or all_pods")
    ns = namespace or cluster.namespace
    pods = _pods(cluster, ns, pod=pod, selector=selector)
    source = f"cluster {cluster.context}"
    evidences = [PodEvidence(pod=p, source=source) for p in pods]
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="k8s-gather")
    try:
        # every request but the owners' parents is known now: send them all, then read the
        # answers in order, so the evidence (and its problems) does not depend on timing
        events = pool.submit(_events, cluster, ns, pod)
        nodes = sorted({_node(e) for e in evidences} - {""})
        node_events = {node: pool.submit(_node_events, cluster, node) for node in nodes}
        logs = [
            (
                e,
                container,
                previous,
                pool.submit(_log, cluster, ns, e.name, container, previous, tail_lines),
            )
            for e in evidences
            for container, previous in log_requests(e.pod)
        ]
        owners = _owner_chains(cluster, ns, evidences, pool)
        _attach_events(evidences, events.result())
        for e in evidences:
            found = node_events[_node(e)].result() if _node(e) else []
            if isinstance(found, ApiStatus):
                e.problems.append(found.problem())
            else:
                e.node_events.extend(found)
        for e, (chain, problem) in zip(evidences, owners, strict=True):
            e.owners = chain
            if problem:
                e.problems.append(problem)
        for e, container, previous, future in logs:
            text, problem = future.result()
            if problem:
                if problem not in e.problems:
                    e.problems.append(problem)
            else:
                (e.previous_logs if previous else e.current_logs)[container] = text
    finally:
        # an unreachable server must not be asked the queued requests one by one
        pool.shutdown(wait=True, cancel_futures=True)
    return evidences


def _node(evidence: PodEvidence) -> str:
    return str(evidence.pod.get("spec", {}).get("nodeName") or "")


def _pods(
    cluster: Cluster, ns: str, *, pod: str | None, selector: str | None
) -> list[dict[str, Any]]:
    base = f"/api/v1/namespaces/{quote(ns, safe='')}/pods"
    if pod is not None:
        try:
            found = cluster.get(f"{base}/{quote(pod, safe='')}", f"get pod {pod} in {ns}")
        except ApiStatus as e:
            if e.status == 404:
                raise _not_found(cluster, ns, pod) from None
            raise e.as_error() from None
        return [found]
    query: dict[str, str | int | bool] = {"labelSelector": selector} if selector else {}
    try:
        items = _list(cluster, base, f"list pods in namespace {ns}", **query)
    except ApiStatus as e:
        raise e.as_error() from None
    if not items:
        if selector:
            raise PodNotFoundError(
                f"no pod in namespace {ns} matches the selector {selector!r}",
                hint=f"kubectl get pods -n {ns} --show-labels",
            )
        raise PodNotFoundError(
            f"namespace {ns} has no pods (or does not exist)",
            hint="pick one with -n NAMESPACE (kubectl get pods -A)",
        )
    return sorted(items, key=lambda p: str(p.get("metadata", {}).get("name", "")))


def _not_found(cluster: Cluster, ns: str, pod: str) -> PodNotFoundError:
    """The pod is not there: name a few that are, the likeliest first."""
    try:
        items = _list(cluster, f"/api/v1/namespaces/{quote(ns, safe='')}/pods", "list pods")
    except ApiStatus:
        items = []
    names = sorted(str(p.get("metadata", {}).get("name", "")) for p in items)
    if not names:
        return PodNotFoundError(
            f"no pod {pod!r} in namespace {ns}: the namespace has no pods (or does not exist)",
            hint="pick the namespace with -n NAMESPACE (kubectl get pods -A)",
        )
    close = difflib.get_close_matches(pod, names, n=5, cutoff=0.3)
    shown = close + [n for n in names if n not in close][: max(0, 5 - len(close))]
    more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    return PodNotFoundError(
        f"no pod {pod!r} in namespace {ns}",
        hint=f"pods there: {', '.join(shown)}{more} (kubectl get pods -n {ns})",
    )


def _list(cluster: Cluster, path: str, what: str, **query: str | int | bool) -> list[Any]:
    items: list[Any] = []
    token = ""
    while True:
        page = cluster.get(
            path, what, limit=PAGE, **query, **({"continue": token} if token else {})
        )
        items.extend(i for i in page.get("items") or [] if isinstance(i, dict))
        token = str((page.get("metadata") or {}).get("continue") or "")
        if not token:
            return items


def _events(cluster: Cluster, ns: str, pod: str | None) -> list[dict[str, Any]] | ApiStatus:
    """The namespace's pod events (one pod's, when one was asked for)."""
    query: dict[str, str | int | bool] = {}
    if pod is not None:
        query["fieldSelector"] = f"involvedObject.kind=Pod,involvedObject.name={pod}"
    try:
        return _list(
            cluster,
            f"/api/v1/namespaces/{quote(ns, safe='')}/events",
            f"list events in namespace {ns}",
            **query,
        )
    except ApiStatus as e:
        return e


def _attach_events(evidences: list[PodEvidence], events: list[dict[str, Any]] | ApiStatus) -> None:
    if isinstance(events, ApiStatus):
        for e in evidences:
            e.problems.append(events.problem())
        return
    by_name = {e.name: e for e in evidences}
    for event in _by_time(events):
        involved = event.get("involvedObject") or {}
        if involved.get("kind") not in (None, "Pod"):
            continue
        about = by_name.get(str(involved.get("name") or ""))
        if about is None:
            continue
        uid = about.pod.get("metadata", {}).get("uid")
        if uid and involved.get("uid") and involved["uid"] != uid:
            continue  # about an earlier pod of the same name (a StatefulSet's, a re-created one)
        about.events.append(event)


def _by_time(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    def when(e: dict[str, Any]) -> str:
        return str(
            e.get("lastTimestamp")
            or e.get("eventTime")
            or e.get("firstTimestamp")
            or (e.get("metadata") or {}).get("creationTimestamp")
            or ""
        )

    return sorted(events, key=when)


def _node_events(cluster: Cluster, node: str) -> list[dict[str, Any]] | ApiStatus:
    """A node's events: evictions, pressure, network. The kubelet records them in `default`."""
    try:
        return _by_time(
            _list(
                cluster,
                "/api/v1/namespaces/default/events",
                f"list events of node {node} (namespace default)",
                fieldSelector=f"involvedObject.kind=Node,involvedObject.name={node}",
            )
        )
    except ApiStatus as e:
        return e


def _controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    found: dict[str, Any] | None = next(
        (r for r in refs if r.get("controller")), refs[0] if refs else None
    )
    return found


def _key(ref: dict[str, Any]) -> str:
    return f"{ref.get('kind')}/{ref.get('name')}"


def _owner(cluster: Cluster, ns: str, ref: dict[str, Any]) -> dict[str, Any] | ApiStatus:
    template = _OWNER_PATHS[(str(ref.get("apiVersion")), str(ref.get("kind")))]
    path = template.format(ns=quote(ns, safe=""), name=quote(str(ref["name"]), safe=""))
    try:
        found: dict[str, Any] = cluster.get(path, f"get {str(ref['kind']).lower()} {ref['name']}")
        return found
    except ApiStatus as e:
        return e


def _owner_chains(
    cluster: Cluster, ns: str, evidences: list[PodEvidence], pool: ThreadPoolExecutor
) -> list[tuple[list[str], str]]:
    """Each pod's controllers, nearest first (ReplicaSet -> Deployment, Job -> CronJob), and
    what could not be read; each owner is asked for once, one level at a time."""
    parents: dict[str, dict[str, Any]] = {}
    refused: dict[str, str] = {}
    level = {_key(r): r for r in filter(None, (_controller(e.pod) for e in evidences))}
    for _ in range(_OWNER_DEPTH):
        asked = {
            key: pool.submit(_owner, cluster, ns, ref)
            for key, ref in level.items()
            if key not in parents
            and key not in refused
            and (str(ref.get("apiVersion")), str(ref.get("kind"))) in _OWNER_PATHS
        }
        level = {}
        for key, future in asked.items():
            owner = future.result()
            if isinstance(owner, ApiStatus):
                if owner.status != 404:  # gone since: the chain just ends there
                    refused[key] = owner.problem()
                continue
            parent = _controller(owner)
            if parent is not None:
                parents[key] = parent
                level[_key(parent)] = parent
        if not level:
            break
    chains: list[tuple[list[str], str]] = []
    for e in evidences:
        ref = _controller(e.pod)
        if ref is None:
            chains.append(([], ""))
            continue
        chain = [_key(ref)]
        while chain[-1] in parents and len(chain) <= _OWNER_DEPTH:
            chain.append(_key(parents[chain[-1]]))
        problem = next((refused[k] for k in chain if k in refused), "")
        chains.append((chain, problem))
    return chains


def log_requests(pod: dict[str, Any]) -> list[tuple[str, bool]]:
    """(container, previous) for every log worth reading: the run that ended of each container
    that restarted, and the current run of one that ended (restartPolicy Never) or of an init
    container that has not succeeded (it still holds the pod back)."""
    status = pod.get("status") or {}
    wanted: list[tuple[str, bool]] = []
    for init, key in ((True, "initContainerStatuses"), (False, "containerStatuses")):
        for s in status.get(key) or []:
            name = str(s.get("name") or "")
            state = s.get("state") or {}
            last = s.get("lastState") or {}
            if int(s.get("restartCount") or 0) > 0 or "terminated" in last:
                wanted.append((name, True))
            failed_run = (state.get("terminated") or {}).get("exitCode") not in (None, 0)
            if failed_run or (init and "running" in state):
                wanted.append((name, False))
    return wanted


def _log(
    cluster: Cluster, ns: str, name: str, container: str, previous: bool, tail_lines: int
) -> tuple[str, str]:
    """A container's log (the run that ended, with `previous`), or the problem reading it."""
    path = f"/api/v1/namespaces/{quote(ns, safe='')}/pods/{quote(name, safe='')}/log"
    what = f"{'previous logs' if previous else 'logs'} of container {container} of pod {name}"
    try:
        data = cluster.get_bytes(
            path, f"read {what}", container=container, previous=previous, tailLines=tail_lines
        )
    except ApiStatus as e:
        return "", e.problem()
    return data.decode("utf-8", errors="replace"), ""
