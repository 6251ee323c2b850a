"""Rule: missing_configmap — a ConfigMap (or one key of it) the container needs does not exist.

Kubernetes: the kubelet cannot build the container (`CreateContainerConfigError`, whose cause is
often only in the events: `Error: configmap "app" not found`, `couldn't find key DB in ConfigMap
shop/app`) or cannot mount the volume (`FailedMount ... configmap "app" not found`, the pod stays
in `ContainerCreating`). The fix is the `kubectl` command that creates it, or the key in it,
with the reference in the spec named so a typo can be fixed instead. `missing_secret` reads the
same words about Secrets through `missing_ref` below.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, platform_said
from infraveil.core.diagnosis.facts import KubeRef
from infraveil.core.diagnosis.finding import Finding, Specificity, finding


def _pattern(kind: str) -> re.Pattern[str]:
    lower = kind.lower()
    return re.compile(
        rf"{lower}s? \\?\"(?P<name>[^\"\\]+)\\?\" not found"
        rf"|couldn't find key (?P<key>\S+) in {kind} (?:(?P<ns>[^/\s]+)/)?(?P<name2>[^\s,]+)"
        rf"|{lower} references non-existent (?:config|secret) key: (?P<key2>\S+)",
        re.IGNORECASE,
    )


_VOLUME = re.compile(r'for volume "([^"]+)"')
_PATTERNS = {"ConfigMap": _pattern("ConfigMap"), "Secret": _pattern("Secret")}
_CATEGORY = {"ConfigMap": Category.MISSING_CONFIGMAP, "Secret": Category.MISSING_SECRET}


def rule(c: Clues) -> Finding | None:
    return missing_ref(c, "ConfigMap")


def missing_ref(c: Clues, kind: str) -> Finding | None:
    """The finding for a missing ConfigMap or Secret (`kind`), or its missing key."""
    kube = c.facts.kube
    said = platform_said(c, _PATTERNS[kind])
    if kube is None or said is None:
        return None
    volume = _VOLUME.search(said.evidence.text)
    if volume is not None and kube.mounts and volume[1] not in {v for v, _ in kube.mounts}:
        return None  # a volume of the pod that another container mounts
    key = said["key"] or said["key2"]
    name = said["name"] or said["name2"]
    ref = _ref(kube.refs, kind, name, key)
    if not name and ref is not None:
        name = ref.name
    namespace = said["ns"] or kube.namespace
    shown = f"{kind} {name or '(unnamed)'}"
    what = f"key {key} of {shown}" if key else shown
    via = f" (its {ref.via})" if ref is not None and ref.via else ""
    blocked = "mount it" if said.evidence.text.startswith("MountVolume") else "start it"
    lower = kind.lower()
    if key:
        field = "stringData" if kind == "Secret" else "data"
        value = f'{{"{field}":{{"{key}":"VALUE"}}}}'
        create = f"kubectl -n {namespace} patch {lower} {name} --type merge -p '{value}'"
    elif kind == "Secret":
        create = f"kubectl -n {namespace} create secret generic {name} --from-literal=KEY=VALUE"
    else:
        create = f"kubectl -n {namespace} create configmap {name} --from-file=FILE"
    return finding(
        _CATEGORY[kind],
        f"{c.who} needs {what}{via}, which does not exist, so the kubelet cannot {blocked}.",
        [said.evidence],
        f"Create it: `{create}` (with the real values), or fix the name in the pod spec if it"
        " is a typo, or mark the reference `optional: true` if the container can do without"
        " it. The kubelet retries by itself once it exists.",
        specificity=Specificity.PLATFORM,
    )


def _ref(refs: tuple[KubeRef, ...], kind: str, name: str, key: str) -> KubeRef | None:
    """The reference in the spec the message is about (the one with that key, else name)."""
    mine = [r for r in refs if r.kind == kind and (not name or r.name == name)]
    return next((r for r in mine if key and r.key == key), mine[0] if mine else None)
