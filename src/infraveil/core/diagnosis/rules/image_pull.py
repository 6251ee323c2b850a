"""Rule: image_pull — the node cannot pull the container's image.

The container waits in `ErrImagePull` / `ImagePullBackOff` (`InvalidImageName`,
`ErrImageNeverPull`); the kubelet's `Failed to pull image "X": ...` event says why in the
registry's or runtime's words, and that decides the fix: a name or tag that does not exist, a
private registry without `imagePullSecrets`, a registry the node cannot reach or whose
certificate it does not trust, a rate limit, an image without a build for the node's
architecture. Docker Hub answers a private and a non-existent repository alike (`pull access
denied ... repository does not exist or may require 'docker login'`): the fix says both.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, Said, platform_all
from infraveil.core.diagnosis.finding import Confidence, Evidence, Finding, Specificity, finding

_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "ImageInspectError",
    }
)
_PULL = re.compile(
    r"Failed to pull image \\?\"(?P<image>[^\"\\]+)\\?\"|Error: (?P<reason>ErrImagePull"
    r"|ImagePullBackOff|InvalidImageName|ErrImageNeverPull)|Back-off pulling image"
    r"|couldn't parse image reference|Container image \"[^\"]+\" is not present with pull policy",
    re.IGNORECASE,
)
_FAILED = re.compile(r"Failed to pull image \\?\"(?P<image>[^\"\\]+)\\?\"")
# the lines that carry the registry's or runtime's own error, not only the back-off
_CAUSE = re.compile(
    r"Failed to pull image|\b(?:ErrImagePull|ErrImageNeverPull|InvalidImageName)\b"
    r"|(?:rpc error|Error response from daemon|failed to (?:pull and unpack|resolve reference))"
    r".*(?:manifest|pull|registr|repositor)",
    re.IGNORECASE,
)
_RELATED = re.compile(f"{_PULL.pattern}|{_CAUSE.pattern}", re.IGNORECASE)
# (the registry's or runtime's words, the kind of failure), most specific first
_KINDS = (
    (
        re.compile(r"no (?:matching manifest|match for platform)|platform .* not supported", re.I),
        "arch",
    ),
    (re.compile(r"toomanyrequests|rate limit|429 Too Many Requests", re.I), "rate"),
    (re.compile(r"server gave HTTP response to HTTPS client", re.I), "plain_http"),
    (re.compile(r"x509|certificate", re.I), "tls"),
    (re.compile(r"pull access denied|may require .docker login", re.I), "denied_or_missing"),
    (
        re.compile(
            r"unauthori[sz]ed|authentication required|403 Forbidden|denied|\b401\b"
            r"|no basic auth credentials",
            re.I,
        ),
        "auth",
    ),
    (
        re.compile(
            r"no such host|i/o timeout|connection refused|network is unreachable"
            r"|TLS handshake timeout|deadline exceeded|dial tcp \\S+: (?:connect|i/o)",
            re.I,
        ),
        "network",
    ),
    (
        re.compile(r"not found|manifest unknown|name unknown|does not exist|NotFound", re.I),
        "missing",
    ),
    (re.compile(r"no space left on device", re.I), "disk"),
    (
        re.compile(
            r"InvalidImageName|couldn't parse image reference|invalid reference format", re.I
        ),
        "invalid",
    ),
    (re.compile(r"ErrImageNeverPull|is not present with pull policy of Never", re.I), "never"),
)
_WHAT = {
    "arch": "has no build for the node's CPU architecture",
    "rate": "the registry refuses more pulls for now (rate limit)",
    "tls": "the node does not trust the registry's certificate",
    "plain_http": "the registry answers in plain HTTP and the node asks for HTTPS",
    "denied_or_missing": "the registry says it does not exist or needs a login",
    "auth": "the registry refuses it without credentials",
    "missing": "it does not exist (the name or the tag is wrong)",
    "network": "the node cannot reach the registry",
    "disk": "the node has no space left for it",
    "invalid": "its name is not a valid image reference",
    "never": "its pull policy is Never and the node does not have it",
    "": "the pull fails",
}
_TRANSIENT = frozenset({"rate", "network", "disk"})


def rule(c: Clues) -> Finding | None:
    kube = c.facts.kube
    if kube is None:
        return None
    waiting = kube.waiting_reason if kube.waiting_reason in _REASONS else ""
    # of every line about the pull, the one giving the registry's own words for why it fails
    # (a kind of failure below), then one that carries an error at all, then the first
    candidates = list(platform_all(c, _RELATED))
    if not candidates and not waiting:
        return None
    said = (
        max(candidates, key=lambda s: (_kind(s.evidence.text) != "", _cause_rank(s)))
        if candidates
        else None
    )
    evidence: list[Evidence] = []
    text = ""
    if said is not None:
        evidence.append(said.evidence)
        text = said.evidence.text
    if waiting:
        evidence.append(Evidence(f"{kube.status_path}.state.waiting.reason", waiting))
        if kube.waiting_message and kube.waiting_message not in text:
            text += " " + kube.waiting_message
            evidence.append(
                Evidence(f"{kube.status_path}.state.waiting.message", kube.waiting_message)
            )
    kind = _kind(text or waiting)
    named = next((m["image"] for s in candidates if (m := _FAILED.search(s.evidence.text))), "")
    image = named or kube.image or _image_in(candidates) or "its image"
    return finding(
        Category.IMAGE_PULL,
        f"The node cannot pull the image of {c.who}, {image}: {_WHAT[kind]}.",
        evidence,
        _fix(kind, image, kube.namespace, kube.image_pull_secrets),
        specificity=Specificity.PLATFORM,
        confidence=Confidence.HIGH if kind else Confidence.MEDIUM,
        deterministic=kind not in _TRANSIENT,
        confirm="" if kind else f"`kubectl describe pod` events naming why pulling {image} fails",
    )


def _kind(text: str) -> str:
    return next((k for p, k in _KINDS if p.search(text)), "")


def _cause_rank(said: Said) -> int:
    text = said.evidence.text
    return 2 if _FAILED.search(text) else 1 if _CAUSE.search(text) else 0


_IMAGE = re.compile(r"(?:pulling image|image) \\?\"(?P<image>[^\"\\\s]+)\\?\"", re.IGNORECASE)


def _image_in(candidates: list[Said]) -> str:
    """The image a pull line names (`Back-off pulling image "x"`), when no status does."""
    return next((m["image"] for s in candidates if (m := _IMAGE.search(s.evidence.text))), "")


def _fix(kind: str, image: str, namespace: str, secrets: tuple[str, ...]) -> str:
    check = (
        f"check that `{image}` exists (`docker manifest inspect {image}` or the registry's page)"
    )
    auth = (
        f"the pod's `imagePullSecrets` ({', '.join(secrets)}) must hold credentials for its"
        " registry"
        if secrets
        else "for a private registry, create a pull secret (`kubectl -n"
        f" {namespace} create secret docker-registry regcred --docker-server=REGISTRY"
        " --docker-username=USER --docker-password=...`) and name it in the pod's"
        " `imagePullSecrets`"
    )
    fixes = {
        "arch": f"Pull or build `{image}` for the node's architecture (`kubectl get node -o"
        " wide`; build with `docker buildx build --platform linux/amd64,linux/arm64`), or"
        " schedule the pod on nodes of the image's architecture (`kubernetes.io/arch`).",
        "rate": "Wait, or log the pulls in (an `imagePullSecrets` with an account raises the"
        " limit), or mirror the image into your own registry.",
        "plain_http": "Serve the registry over HTTPS, or tell each node's runtime that it is a"
        " plain-HTTP registry (containerd: /etc/containerd/certs.d/REGISTRY/hosts.toml with"
        ' `server = "http://REGISTRY"`; Docker: `insecure-registries` in daemon.json).',
        "tls": "Give the node's container runtime the registry's CA (containerd:"
        " /etc/containerd/certs.d/REGISTRY/ca.crt), or use a certificate signed by a CA it"
        " trusts.",
        "denied_or_missing": f"Fix the name or tag if it is wrong ({check}); if it is private,"
        f" {auth}.",
        "auth": f"Give the pod credentials: {auth}.",
        "missing": f"Fix the image name or tag in the spec: {check}; tags are case-sensitive"
        " and `latest` exists only if someone pushed it.",
        "network": "Make the registry reachable from the node (DNS, proxy, firewall):"
        f" `crictl pull {image}` on the node shows the error first-hand.",
        "disk": "Free disk space on the node (`crictl rmi --prune`) or give it a larger disk.",
        "invalid": "Write a valid image reference in the spec (`registry/name:tag`), not"
        f" `{image}`.",
        "never": f"Set `imagePullPolicy: IfNotPresent`, or load `{image}` onto the node first.",
        "": f"Read the kubelet's `Failed to pull image` event: {check}; {auth}.",
    }
    return fixes[kind]
