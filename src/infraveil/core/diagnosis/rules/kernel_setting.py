"""Rule: kernel_setting — a host kernel setting or process limit is too low for the service.

Recognises Elasticsearch/OpenSearch bootstrap checks (`max virtual memory areas vm.max_map_count
[65530] is too low, increase to at least [262144]`, `max file descriptors [4096] ... is too low`,
`max number of threads [...] is too low`, `memory locking requested ... but memory is not
locked`); the inotify limits, whose errors are misleading (`inotify_add_watch: No space left on
device`, Node's `ENOSPC: System limit for number of file watchers reached`, `too many open files`
from inotify/fsnotify: fs.inotify.max_user_watches / max_user_instances); System V IPC limits
(PostgreSQL's `could not create semaphores: No space left on device`: kernel.sem); running out of
file descriptors (`Too many open files`, EMFILE, errno 24: RLIMIT_NOFILE); and, only as weak
hints, startup warnings that name a sysctl (Redis's `WARNING overcommit_memory is set to 0`,
`somaxconn`, MongoDB's `vm.max_map_count is too low`).

Traps: ENOSPC from inotify is not a full disk (disk_full skips it). Containers share the host's
kernel: a sysctl is set on the host (or by a privileged init container), not in the image.
`Too many open files` can be a descriptor leak rather than a low limit, so it is medium.
A warning Redis prints at every start is not why it died: keyword only.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, Match
from infraveil.core.diagnosis.finding import Confidence, Finding, Specificity, finding

_ES_CHECK = re.compile(
    r"max virtual memory areas vm\.max_map_count \[(?P<map>\d+)\] (?:is|likely) too low,"
    r" increase to at least \[(?P<map_min>\d+)\]"
    r"|max file descriptors \[(?P<fd>\d+)\] for \S+ process is too low, increase to at least"
    r" \[(?P<fd_min>\d+)\]"
    r"|max number of threads \[(?P<thr>\d+)\] for user \[\S+\] is too low, increase to at least"
    r" \[(?P<thr_min>\d+)\]"
    r"|(?P<memlock>memory locking requested for \S+ process but memory is not locked)"
)
_INOTIFY = re.compile(
    r"(?i)(?P<watches>system limit for number of file watchers reached"
    r"|inotify[ _]?(?:add[ _]?watch|watch)[^\n]*?(?:no space left on device|ENOSPC)"
    r"|\bwatch(?:ing)?\b[^\n]*?(?:no space left on device|ENOSPC|os error 28)"
    r"|inotify watch limit)"
    r"|(?P<instances>(?:inotify|fsnotify)[^\n]*?too many open files"
    r"|too many open files[^\n]*?(?:inotify|fsnotify)|inotify instance limit)"
)
_IPC = re.compile(r"could not create semaphores[^\n]*No space left on device")
_NOFILE = re.compile(
    r"(?i:too many open files)|EMFILE|\[Errno 24\]|os error 24|accept4?: too many open files"
)
_WARNING = re.compile(
    r"(?P<overcommit>overcommit_memory is set to 0)"
    r"|(?P<somaxconn>/proc/sys/net/core/somaxconn is set to the lower value of \d+)"
    r"|(?P<mapcount>vm\.max_map_count is too low)"
    r"|(?P<thp>Transparent Huge Pages \(THP\) support enabled)"
)
# a write to a kernel setting the container may not make (no privilege, or the host's kernel
# no longer allows it from a network namespace): the setting belongs on the node
_PROC_SYS = re.compile(
    r"/proc/sys/(?P<key>[\w./-]+?)['\"]?:? [^\n]*?(?i:permission denied|operation not permitted"
    r"|read-only file system)"
    r"|(?i:permission denied|operation not permitted|read-only file system)[^\n]*?"
    r"/proc/sys/(?P<key2>[\w./-]+)"
    r"|(?i:permission denied) on key ['\"]?(?P<key3>[\w.]+)"
    r"|setting key ['\"]?(?P<key4>[\w.]+)['\"]?: (?i:read-only file system|permission denied"
    r"|operation not permitted)"
)
_BOOTSTRAP = re.compile(r"bootstrap checks? failed|bootstrap check failure")


def rule(c: Clues) -> Finding | None:
    if (found := c.search(_ES_CHECK)) is not None:
        return _es(c, found)
    if (found := c.search(_INOTIFY)) is not None:
        name = (
            "fs.inotify.max_user_watches" if found["watches"] else "fs.inotify.max_user_instances"
        )
        value = "524288" if found["watches"] else "8192"
        what = "file watches" if found["watches"] else "inotify instances"
        return _sysctl(c, found, name, value, f"{c.who} hit the kernel's limit on {what} ({name}).")
    if (found := c.search(_IPC)) is not None:
        return _sysctl(
            c,
            found,
            "kernel.sem",
            "250 32000 100 128",
            f"{c.who} hit the kernel's limit on System V semaphores (kernel.sem).",
        )
    if (found := c.search(_PROC_SYS)) is not None:
        key = found["key"] or found["key2"] or found["key3"] or found["key4"]
        key = key.strip("/").replace("/", ".")
        return _proc_sys(c, found, key)
    if (found := c.search(_NOFILE)) is not None:
        return _nofile(c, found, None, Confidence.MEDIUM)
    if (found := c.search(_WARNING, decisive_first=False)) is not None:
        return _warning(c, found)
    return None


def _es(c: Clues, found: Match) -> Finding:
    if found["map"]:
        return _sysctl(
            c,
            found,
            "vm.max_map_count",
            found["map_min"],
            f"{c.who} refused to start: vm.max_map_count is {found['map']}, it needs at least"
            f" {found['map_min']}.",
        )
    if found["fd"]:
        return _nofile(c, found, found["fd_min"], Confidence.HIGH)
    if found["thr"]:
        return _limit(
            c,
            found,
            f"{c.who} refused to start: its process limit is {found['thr']} threads, it needs at"
            f" least {found['thr_min']}.",
            f"`LimitNPROC={found['thr_min']}` in its systemd unit, `ulimit -u {found['thr_min']}`"
            f" in the shell that starts it, or `--ulimit nproc={found['thr_min']}` for a container",
        )
    return _limit(
        c,
        found,
        f"{c.who} refused to start: it asked to lock its memory but the memlock limit forbids it.",
        "`LimitMEMLOCK=infinity` in its systemd unit, `ulimit -l unlimited` in the shell that"
        " starts it, or `--ulimit memlock=-1:-1` for a container (or turn memory locking off)",
    )


def _sysctl(c: Clues, found: Match, name: str, value: str, summary: str) -> Finding:
    evidence = [c.quote(found.line)]
    if (boot := c.search(_BOOTSTRAP, decisive_first=False)) is not None and boot.at != found.at:
        evidence.append(c.quote(boot.line))
    kube = c.facts.kube
    owner = c.facts.service or (kube.container if kube is not None else "") or "infraveil"
    conf = f"/etc/sysctl.d/99-{owner}.conf"
    where = (
        "On every node that may run it (containers share the node's kernel)"
        if kube is not None
        else "On the host (containers share its kernel)"
    )
    fix = (
        f"{where}: `sudo sysctl -w '{name}={value}'`, and to keep"
        f" it across reboots `echo '{name} = {value}' | sudo tee {conf}` then `sudo sysctl"
        f" --system`; check with `sysctl {name}`."
    )
    if kube is not None:
        fix += (
            " Or set it from the pod: a privileged init container running `sysctl -w"
            f" {name}={value}` (charts often have one, e.g. Elasticsearch's"
            " `sysctlInitContainer`)."
        )
    fix += f" Then {c.restart_hint()}."
    return finding(
        Category.KERNEL_SETTING,
        summary,
        evidence,
        fix,
        specificity=Specificity.MESSAGE,
        at=found.at,
    )


def _proc_sys(c: Clues, found: Match, key: str) -> Finding:
    return finding(
        Category.KERNEL_SETTING,
        f"{c.who} stopped because it may not change the kernel setting {key} from where it runs.",
        [c.quote(found.line)],
        f"Set {key} where it is allowed and stop the program from setting it: on the host (every"
        f" node that may run it) `sudo sysctl -w {key}=VALUE`, persisted in /etc/sysctl.d/; or"
        " turn off the program's option that writes it (kube-proxy: `conntrack.maxPerCore: 0`),"
        " or run it with the privilege it needs (`securityContext.privileged`, or the sysctl in"
        f" the pod's `securityContext.sysctls` when it is namespaced). Then {c.restart_hint()}.",
        specificity=Specificity.MESSAGE,
        at=found.at,
    )


def _limit(c: Clues, found: Match, summary: str, how: str) -> Finding:
    return finding(
        Category.KERNEL_SETTING,
        summary,
        [c.quote(found.line)],
        f"Raise the limit for the service: {how}. Then {c.restart_hint()}.",
        specificity=Specificity.MESSAGE,
        at=found.at,
    )


def _nofile(c: Clues, found: Match, needed: str | None, confidence: Confidence) -> Finding:
    want = needed or "65536"
    summary = (
        f"{c.who} ran out of file descriptors: its open-files limit (RLIMIT_NOFILE) is too low"
        + (f"; it needs at least {needed}." if needed else " or it leaks descriptors.")
    )
    return finding(
        Category.KERNEL_SETTING,
        summary,
        [c.quote(found.line)],
        f"Raise its open-files limit: `LimitNOFILE={want}` in its systemd unit (or the agent's),"
        f" `ulimit -n {want}` in the shell that starts it, or `--ulimit nofile={want}:{want}` for"
        f" a container; check the limit it got with `grep 'open files' /proc/PID/limits`."
        f" Then {c.restart_hint()}.",
        specificity=Specificity.MESSAGE,
        confidence=confidence,
        confirm=""
        if confidence is Confidence.HIGH
        else "`ls /proc/PID/fd | wc -l` near the limit in `/proc/PID/limits`; if the count keeps"
        " growing under steady load it is a descriptor leak, not a low limit",
        at=found.at,
    )


def _warning(c: Clues, found: Match) -> Finding:
    if found["overcommit"]:
        name, value = "vm.overcommit_memory", "1"
    elif found["somaxconn"]:
        name, value = "net.core.somaxconn", "1024"
    elif found["mapcount"]:
        name, value = "vm.max_map_count", "262144"
    else:
        name, value = "transparent_hugepage", "never"
    fix = (
        f"A startup warning, rarely the reason it stopped: if it matters, set `{name}={value}` on"
        " the host (`sudo sysctl -w`, persisted in /etc/sysctl.d/)"
        if name != "transparent_hugepage"
        else "A startup warning, rarely the reason it stopped: if it matters, run `echo never |"
        " sudo tee /sys/kernel/mm/transparent_hugepage/enabled` on the host"
    )
    return finding(
        Category.KERNEL_SETTING,
        f"{c.who} warned that the host's {name} is not what it recommends.",
        [c.quote(found.line)],
        fix + ".",
        specificity=Specificity.KEYWORD,
        confidence=Confidence.LOW,
        confirm="an error after the warning that names memory, connections or the setting",
        at=found.at,
    )
