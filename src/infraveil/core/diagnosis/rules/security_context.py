"""Rule: security_context — the pod's securityContext forbids what the image does.

The kubelet refuses to create a container whose securityContext says `runAsNonRoot: true` when
the image runs as root (`container has runAsNonRoot and image will run as root`) or names its
user by name, which it cannot check (`image has non-numeric user (nginx), cannot verify user is
non-root`). The fix is a numeric `runAsUser` in the container's securityContext (the patch is
built by `doctor k8s`), or an image whose `USER` is a non-root uid.

The other side of the same rule: a container running as a non-root user (its securityContext,
or its image's `USER`) may not listen on a port below 1024 (nginx's `bind() to 0.0.0.0:80
failed (13: Permission denied)`, Go's `listen tcp :80: bind: permission denied`, Node's
`listen EACCES`, Apache's `AH00072`).

A container the securityContext runs as a non-root uid that tries to take a path over (`chown:
/data: Operation not permitted`, `chown: changing ownership of '/x'`): only root with CHOWN may;
the pod's `fsGroup` is how Kubernetes hands a volume to a non-root user.

And the namespace's admission policy refusing a pod whose securityContext breaks it: `violates
PodSecurity "restricted:latest": ...`, OpenShift's `unable to validate against any security
context constraint`, the old PodSecurityPolicy's `unable to admit pod` (the ReplicaSet's
`FailedCreate` event: no pod exists).
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, non_root_uid, platform_said
from infraveil.core.diagnosis.finding import Finding, Specificity, finding

_NON_ROOT = re.compile(
    r"runAsNonRoot and image (?:will run as root|has non-numeric user \((?P<user>[^)]*)\))"
    r"|runAsUser breaks non-root policy|runAsNonRoot and image has non-numeric user",
    re.IGNORECASE,
)


# a privileged port refused to a non-root user, in the servers' and runtimes' words
_LOW_PORT = re.compile(
    r"bind\(\) to \S*:(?P<p1>\d+) failed \(13: Permission denied\)"
    r"|listen tcp \S*:(?P<p2>\d+): bind: permission denied"
    r"|listen EACCES: permission denied \S*:(?P<p3>\d+)"
    r"|\(13\)Permission denied: AH00072: make_sock: could not bind to address \S*:(?P<p4>\d+)"
    r"|[Cc]ould not bind to \S*?:?(?:port )?(?P<p5>\d+).*[Pp]ermission denied"
    r"|(?:BindException|bind): Permission denied.*?:(?P<p6>\d+)\b"
)
_PRIVILEGED = 1024


# the namespace's admission policy refusing the pod itself (its ReplicaSet's `FailedCreate`)
_ADMISSION = re.compile(
    r"violates PodSecurity \\?\"(?P<level>[^\"\\]+)\\?\": (?P<what>.+)"
    r"|unable to validate against any (?P<scc>security context constraint)"
    r"|PodSecurityPolicy: unable to (?:admit|validate) pod",
    re.IGNORECASE,
)


_CHOWN = re.compile(
    r"\b(?:chown|chgrp): (?:changing (?:ownership|group) of )?'?(?P<path>/[^\s':]+?)/?'?:"
    r" Operation not permitted"
)


def rule(c: Clues) -> Finding | None:
    said = platform_said(c, _NON_ROOT)
    if said is None:
        return _admission(c) or _privileged_port(c) or _chown_as_non_root(c)
    if said["user"]:
        why = f"its image names its user ({said['user']}) instead of a uid, which it cannot check"
    else:
        why = "its image runs as root"
    return finding(
        Category.SECURITY_CONTEXT,
        f"The kubelet will not start {c.who}: its securityContext requires `runAsNonRoot`,"
        f" and {why}.",
        [said.evidence],
        "Set a numeric non-root user in the container's securityContext (`runAsUser: 1000`,"
        " and `runAsGroup`/`fsGroup` for its files), or build the image with `USER 1000`;"
        " dropping `runAsNonRoot` only hides it.",
        specificity=Specificity.PLATFORM,
    )


def _admission(c: Clues) -> Finding | None:
    """The pod was not even created: its securityContext breaks the namespace's policy."""
    said = platform_said(c, _ADMISSION)
    if said is None:
        return None
    if said["level"]:
        policy = f'Pod Security "{said["level"]}"'
        fix = (
            "Change the pod template's securityContext to what the policy asks (the message"
            " lists each field: `runAsNonRoot: true`, `allowPrivilegeEscalation: false`,"
            " `capabilities: {drop: [ALL]}`, `seccompProfile: {type: RuntimeDefault}`), or, if"
            " the workload really needs more, label its namespace with a looser level"
            " (`kubectl label ns NAMESPACE pod-security.kubernetes.io/enforce=baseline"
            " --overwrite`)."
        )
    else:
        policy = "security context constraints" if said["scc"] else "PodSecurityPolicy"
        fix = (
            "Change the pod template's securityContext to what the namespace's policy allows"
            " (the message says which field), or grant the workload's service account a policy"
            " that allows it (OpenShift: `oc adm policy add-scc-to-user SCC -z SERVICEACCOUNT`)."
        )
    return finding(
        Category.SECURITY_CONTEXT,
        f"The pod was not created: its securityContext breaks the namespace's {policy} policy.",
        [said.evidence],
        fix,
        specificity=Specificity.PLATFORM,
    )


def _chown_as_non_root(c: Clues) -> Finding | None:
    """A chown refused to a container its securityContext runs as a non-root uid."""
    uid = non_root_uid(c)
    if uid is None or (found := c.search(_CHOWN)) is None:
        return None
    path = found["path"]
    return finding(
        Category.SECURITY_CONTEXT,
        f"{c.who} may not change the owner of {path}: its securityContext runs it as uid {uid},"
        " and only root (with the CHOWN capability) may.",
        [c.quote(found.line)],
        f"Let Kubernetes hand the volume to the user instead: set `securityContext.fsGroup:"
        f" {uid}` on the pod and drop the chown; or run only the step that chowns as root"
        " (`runAsUser: 0` on that init container, with `capabilities.add: [CHOWN]` if the"
        f" policy drops all). Then {c.restart_hint()}.",
        specificity=Specificity.MESSAGE,
        at=found.at,
    )


def _privileged_port(c: Clues) -> Finding | None:
    """A container that runs as a non-root user may not listen below port 1024."""
    if c.facts.kube is None:
        return None  # (for a process, its user is the agent's to choose)
    found = c.search(_LOW_PORT)
    if found is None:
        return None
    port = int(next(v for v in found.match.groupdict().values() if v))
    if port >= _PRIVILEGED:
        return None
    return finding(
        Category.SECURITY_CONTEXT,
        f"{c.who} may not listen on port {port}: ports below 1024 need root (or the"
        " NET_BIND_SERVICE capability), and it runs as a non-root user.",
        [c.quote(found.line)],
        "Listen on a port of 1024 or more (e.g. 8080; nginx: `listen 8080;` or the"
        " nginx-unprivileged image) and point the Service's `targetPort` at it; or let"
        " non-root users bind low ports in this pod: `securityContext.sysctls:"
        ' [{name: net.ipv4.ip_unprivileged_port_start, value: "0"}]`.',
        specificity=Specificity.MESSAGE,
        at=found.at,
    )
