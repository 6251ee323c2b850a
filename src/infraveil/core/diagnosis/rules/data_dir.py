"""Rule: data_dir — a data directory with the wrong owner, mode or contents, or one in use.

Recognises the servers' own words: PostgreSQL's `data directory "D" has wrong ownership` / `has
invalid permissions` / `has group or world access`, initdb's `directory "D" exists but is not
empty` and `could not change permissions of directory`, `database files are incompatible with
server`, `"D" is not a valid data directory`, a stale `lock file "postmaster.pid" already exists`;
MySQL/MariaDB's `--initialize specified but the data directory has files in it`, `The designated
data directory D is unusable`, `Can't create/write to file '...' (OS errno 13 ...)`, InnoDB's
`Unable to lock ./ibdata1`; MongoDB's `Data directory D not found`, `lock file on a read-only
directory`, `Another mongod instance is already running`; Redis's RDB/AOF `Permission denied` and
damaged-file messages; Elasticsearch's `failed to obtain node locks`; Grafana's `GF_PATHS_DATA=...
is not writable`; Prometheus's `lock DB directory`; SQLite's `attempt to write a readonly
database` and `unable to open database file: permission denied`; `chown`/`chgrp` refused
(`Operation not permitted`: no root or CAP_CHOWN, or an NFS root_squash volume); stored state
the server refuses (`doesn't match stored clusterId`, Kafka's `Invalid cluster.id in`, `Was the
raft log corrupted, truncated, or lost?`). Otherwise a refusal in any of its words (`Permission
denied`, `Operation not permitted`, EACCES, EPERM, errno 13/1, Java's `AccessDeniedException`,
`Unable to access`) on a path under a data or state directory (`.../data`, `/var/lib/...`,
`/srv/...`) or on a volume the pod mounts there (not a ConfigMap's or Secret's under /etc), the
line nearest the end that names such a path.

Traps: `Permission denied` executing a program is not_executable's (lines about exec, spawn or
an interpreter are skipped), and on any other path (a config under /etc, a pid file under /run)
it is not a data directory. A read-only mount is read_only_fs's. The fix names the directory and
the command (`chown -R USER DIR`, `chmod 700 DIR`, PGDATA on a subdirectory, ...), with the
user the server's official image runs as when the server is recognised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, Match, non_root_uid
from infraveil.core.diagnosis.finding import Confidence, Finding, Specificity, finding


@dataclass(frozen=True)
class _Kind:
    pattern: re.Pattern[str]  # group "dir" (or "path", a file in it) when the line names it
    kind: str  # ownership, permissions, not_empty, in_use, incompatible, missing, denied, damaged
    confidence: Confidence = Confidence.HIGH
    server: str = ""  # whose message it is (the account its image runs as), when only it says so


def _k(
    pattern: str, kind: str, confidence: Confidence = Confidence.HIGH, server: str = ""
) -> _Kind:
    return _Kind(re.compile(pattern), kind, confidence, server)


_MEDIUM = Confidence.MEDIUM
_KINDS = (
    # PostgreSQL and initdb
    _k(r'data directory "(?P<dir>[^"]+)" has wrong ownership', "ownership"),
    _k(
        r'data directory "(?P<dir>[^"]+)" has (?:invalid permissions|group or world access)', "mode"
    ),
    _k(r'directory "(?P<dir>[^"]+)" exists but is not empty', "not_empty"),
    _k(
        r'could not change permissions of directory "(?P<dir>[^"]+)": Operation not permitted',
        "ownership",
    ),
    _k(r"chmod: changing permissions of '(?P<dir>[^']+)': Operation not permitted", "ownership"),
    _k(r"chown: changing ownership of '(?P<dir>[^']+?)/?': Operation not permitted", "chown"),
    # busybox's and BSD's shorter forms: `chown: /var/lib/app: Operation not permitted`
    _k(r"\b(?:chown|chgrp): '?(?P<dir>/[^\s':]+?)/?'?: Operation not permitted", "chown"),
    _k(r"\bchmod: '?(?P<dir>/[^\s':]+?)/?'?: Operation not permitted", "ownership"),
    _k(r"database files are incompatible with server", "incompatible"),
    _k(r'"(?P<dir>[^"]+)" is not a valid data directory', "missing"),
    _k(r'could not access directory "(?P<dir>[^"]+)": No such file', "missing"),
    _k(r'could not access directory "(?P<dir>[^"]+)": Permission denied', "denied"),
    _k(r'lock file "(?P<path>[^"]+)" already exists', "in_use", _MEDIUM),
    # MySQL / MariaDB
    _k(r"--initialize specified but the data directory (?:has files in it|exists)", "not_empty"),
    _k(r"The designated data directory (?P<dir>\S+?)/? is unusable", "not_empty"),
    _k(r"Can't create/write to file '(?P<path>[^']+)' \((?:OS errno|Errcode:) 13", "denied"),
    _k(
        r"does not have the access rights to the directory|Operating system error number 13",
        "denied",
    ),
    _k(r"InnoDB: Unable to lock (?P<path>\S+),? error: 11", "in_use"),
    _k(
        r"Can't open and lock privilege tables: Table 'mysql\.\w+' doesn't exist",
        "missing",
        _MEDIUM,
    ),
    # MongoDB
    _k(r"Data directory (?P<dir>/\S+?) not found", "missing"),
    _k(r"lock file on a read-only directory: (?P<dir>/[^\s\"',]+)", "denied", _MEDIUM),
    _k(r"Another mongod instance is already running on the (?P<dir>/\S+) directory", "in_use"),
    _k(r"DBPathInUse: Unable to lock the lock file: (?P<path>/[^\s\"',]+)", "in_use"),
    # Redis
    _k(r"Can't open the append-only file(?:: (?P<path>\S+))?: Permission denied", "denied"),
    _k(r"in server root dir (?P<dir>/[^)\s]+)\) for saving: Permission denied", "denied"),
    _k(r"can't open the RDB file (?P<path>\S+) for reading: Permission denied", "denied"),
    _k(
        r"Bad file format reading the append only file|Wrong signature trying to load DB",
        "damaged",
        _MEDIUM,
    ),
    # Elasticsearch, Grafana, Prometheus, SQLite
    _k(r"failed to obtain node locks, tried \[\[(?P<dir>[^\]]+)\]\]", "locks", _MEDIUM),
    _k(r"GF_PATHS_DATA='(?P<dir>[^']+)' is not writable", "ownership"),
    _k(r"lock DB directory: resource temporarily unavailable", "in_use"),
    _k(r"opening storage failed: .*?(?P<path>/[^\s:\"]+): permission denied", "denied"),
    _k(r"attempt to write a readonly database", "denied", _MEDIUM),
    # state on the volume that does not belong to this instance (another cluster's, a lost or
    # truncated log): a server that refuses its own stored state
    _k(
        r"(?i:doesn't|does not|did not|didn't) match (?:the )?stored \w+"
        r"|Invalid cluster\.id in:? (?P<path>/[^\s,]+?)\.? "
        r"|(?i:raft log|write-ahead log|\bWAL\b)[^\n]{0,40}?(?:corrupt|truncated|lost)"
        r"|(?i:stored|persisted|on-disk) (?:cluster ?id|node ?id|cluster uuid)[^\n]{0,40}?"
        r"(?i:mismatch|differs|does not match)",
        "stale",
        _MEDIUM,
    ),
    _k(r"unable to open database file:? (?:\(?\w+\)? ?)?[Pp]ermission denied", "denied", _MEDIUM),
)
# one pass over the log for all of them (group names may repeat, so they are dropped here)
_SPECIFIC = re.compile("|".join(re.sub(r"\?P<\w+>", "", k.pattern.pattern) for k in _KINDS))
# Permission denied on a path; whether it is a data directory is decided on the path.
# (EPERM and "Unable to access" too: the same refusal as a filesystem or a server words it)
_DENIED = re.compile(
    r"(?i:permission denied|operation not permitted|unable to access\b)|EACCES|EPERM"
    r"|\[Errno (?:13|1)\]|AccessDeniedException|os error (?:13|1)\b"
)
# what a program is not allowed to run is not_executable's (not "Error executing 'step'")
_NOT_DATA = re.compile(
    r"(?i)\bexec(?:ve?)?\b|\bexecute\b|cannot execute|interpreter|spawn|\bsudo\b|/proc/|/sys/"
    r"|jarfile"
)
_PATH = re.compile(r"(?<![\w.])/[^\s\"'():,;\[\]<>=`]+")
# a relative path as tools quote it (GNU `mkdir: cannot create directory ‘data/zk’`, Node's
# `mkdir 'data/db'`): an entrypoint run in its working directory often names its data so
_QUOTED_RELATIVE = re.compile(
    r"[‘'\"`](?P<path>(?:\.{1,2}/)?[\w.-]+(?:/[\w.-]+)+|\.{1,2}/[\w.-]+)/?[’'\"`]"
)
_QUOTED_WORD = re.compile(r"[‘'\"`](?P<word>[\w.-]+)[’'\"`]")
_DATA_SEGMENTS = frozenset({"data", "db", "pgdata", "storage", "state", "datadir", "dbdata"})
_STATE_ROOTS = ("/var/lib/", "/var/cache/", "/var/spool/", "/var/opt/", "/srv/")
_DETAIL = re.compile(
    r"HINT:|DETAIL:|hint:|It contains|Using a mount point|Is another|Another mongod"
    r"|The error means|is unusable|maybe these locations"
)
# (words in the log, the account the server's official image runs as, its default directory)
_SERVERS = (
    (
        # PostgreSQL's own phrasing counts even when its name is nowhere in the tail
        re.compile(
            r"postgres|PostgreSQL|initdb|PGDATA|postmaster|data directory \"[^\"]+\" has"
            r"|database files are incompatible|is not a valid data directory"
        ),
        "postgres",
        "postgres (uid 999)",
        "/var/lib/postgresql/data",
    ),
    (
        re.compile(r"mysqld|MySQL|MariaDB|InnoDB|\[MY-|--initialize"),
        "mysql",
        "mysql (uid 999)",
        "/var/lib/mysql",
    ),
    (
        re.compile(r"mongod|MongoDB|WiredTiger|Data directory /\S+ not found"),
        "mongodb",
        "mongodb (uid 999)",
        "/data/db",
    ),
    (re.compile(r"[Rr]edis|RDB file|append.only file"), "redis", "redis (uid 999)", "/data"),
    (
        re.compile(r"[Ee]lasticsearch|node locks"),
        "elasticsearch",
        "elasticsearch (uid 1000)",
        "/usr/share/elasticsearch/data",
    ),
    (re.compile(r"[Gg]rafana|GF_PATHS"), "grafana", "grafana (uid 472)", "/var/lib/grafana"),
    (
        re.compile(r"[Pp]rometheus|queries\.active|lock DB directory"),
        "nobody",
        "nobody (uid 65534)",
        "/prometheus",
    ),
)


def rule(c: Clues) -> Finding | None:
    found = c.search(_SPECIFIC)
    if found is not None:
        spec = next(k for k in _KINDS if k.pattern.search(found.line.text))
        m = spec.pattern.search(found.line.text)
        assert m is not None
        groups = m.groupdict()
        directory = groups.get("dir") or _parent(groups.get("path") or "")
        kind, confidence = spec.kind, spec.confidence
        if kind == "chown" and non_root_uid(c) is not None:
            confidence = Confidence.LOW  # its securityContext's doing (security_context)
    else:
        denied = _denied_on_data(c)
        if denied is None:
            return None
        found, directory, confidence = denied
        kind = "denied"
    log = c.facts.log
    near = log[max(0, found.at - 3) : found.at + 4]
    after = log[found.at + 1 : found.at + 4]
    detail = next((ln for ln in after if _DETAIL.search(ln.text)), None)
    if not directory:
        directory = _directory_nearby([ln.text for ln in near])
    user, described, default = _server(" ".join(ln.text for ln in near))
    evidence = [c.quote(found.line)]
    if detail is None:  # servers often say it twice: quote the other line about the same thing
        detail = next(
            (
                ln
                for ln in near
                if ln.text.strip() != found.line.text.strip() and _SPECIFIC.search(ln.text)
            ),
            None,
        )
    if detail is not None:
        evidence.append(c.quote(detail))
    shown = directory or (f"its data directory ({default} by default)" if default else "")
    shown = shown or "its data directory"
    directory = directory or default
    return finding(
        Category.DATA_DIR,
        f"{c.who} cannot use {shown}: {_WHAT[kind]}.",
        evidence,
        _fix(c, kind, directory, user, described),
        specificity=Specificity.MESSAGE,
        confidence=confidence,
        confirm=""
        if confidence is Confidence.HIGH
        else f"`ls -ld {directory or 'DIR'}` (owner and mode) and `findmnt -T {directory or 'DIR'}`"
        " as the service's user sees them",
        at=found.at,
    )


def _denied_on_data(c: Clues) -> tuple[Match, str, Confidence] | None:
    """The refusal on a data path closest to the end (the decisive line first): a server
    often ends on a line without the path ("Terminating: Operation not permitted")."""
    mounts = c.facts.kube.mounts if c.facts.kube is not None else ()
    candidates = [
        Match(ln, at, m) for ln, at in c.decisive_lines() if (m := _DENIED.search(ln.text))
    ]
    log = c.facts.log
    candidates += [
        Match(log[i], i, m)
        for i in range(len(log) - 1, -1, -1)
        if (m := _DENIED.search(log[i].text))
    ]
    candidates = [m for m in candidates if not _NOT_DATA.search(m.line.text)]
    for found in candidates:
        for path in _PATH.findall(found.line.text):
            if directory := _data_dir(path) or _mounted(path, mounts):
                return found, directory, Confidence.MEDIUM
        for m in _QUOTED_RELATIVE.finditer(found.line.text):
            if directory := _data_dir(m["path"].lstrip("./") or "."):
                return found, directory, Confidence.MEDIUM
        # one word, when the refusal is of creating it (`mkdir: can't create directory 'data'`)
        if _WRITE_OP.search(found.line.text):
            for m in _QUOTED_WORD.finditer(found.line.text):
                if m["word"].lower() in _DATA_SEGMENTS:
                    return found, m["word"], Confidence.MEDIUM
    # a write refused anywhere the program keeps its files (not the system's): the same fix,
    # on weaker evidence (`EACCES: permission denied, mkdir '/app/uploads'`)
    for found in candidates:
        if not _WRITE_OP.search(found.line.text):
            continue
        for path in _PATH.findall(found.line.text):
            if not path.startswith(_SYSTEM_PATHS) and path.count("/") >= 2:
                return found, path.rstrip("/").rsplit("/", 1)[0], Confidence.LOW
    return None


_WRITE_OP = re.compile(
    r"(?i)\b(?:mkdir|creat|create|write|writ(?:e|ing) to|touch|rename|unlink|cannot create"
    r"|can't create|could not create|open\(\) \S+ failed)"
)
_SYSTEM_PATHS = (
    "/etc/",
    "/proc/",
    "/sys/",
    "/dev/",
    "/run/",
    "/var/run/",
    "/usr/",
    "/bin/",
    "/sbin/",
    "/lib",
    "/root/",
    "/home/",
    "/boot/",
    "/tmp/",
    "/docker-entrypoint",
    "/entrypoint",
)


def _mounted(path: str, mounts: tuple[tuple[str, str], ...]) -> str:
    """The pod's volume mount a path is on (not a Secret's or the service account's)."""
    for _, mount in mounts:
        mount = mount.rstrip("/")
        if (
            mount not in _SYSTEM_MOUNTS
            and (path + "/").startswith(mount + "/")
            and not mount.startswith(_NOT_DATA_MOUNTS)
        ):
            return mount
    return ""


_SYSTEM_MOUNTS = frozenset({"", "/tmp", "/dev/shm"})
_NOT_DATA_MOUNTS = ("/etc", "/var/run/secrets", "/run/secrets")  # configuration, credentials


_WHAT = {
    "ownership": "it is owned by another user than the one the server runs as",
    "mode": "its permissions are too open or wrong for the server",
    "not_empty": "it already has files in it, so the server will not initialise it",
    "in_use": "another instance holds its lock (or a stale lock file was left behind)",
    "locks": "the server could not lock it (not writable, or another node uses it)",
    "incompatible": "its files were written by an incompatible server version",
    "missing": "it does not exist or was never initialised",
    "denied": "the server's user is not allowed to write there",
    "damaged": "a data file in it is damaged",
    "chown": "it may not take the directory over (no root or CAP_CHOWN in the container, or a"
    " volume that refuses a change of owner)",
    "stale": "it holds state this instance refuses (another cluster's, or a lost or truncated log)",
}


def _data_dir(path: str) -> str:
    """The data directory a path is in, or '' when the path is not under one."""
    if path.endswith(".sh"):
        return ""
    parts = path.rstrip("/").split("/")
    hits = [i for i, part in enumerate(parts) if part.lower() in _DATA_SEGMENTS]
    if hits:
        return "/".join(parts[: hits[-1] + 1]) or "/"
    for root in _STATE_ROOTS:
        if (path + "/").startswith(root):
            depth = root.count("/") + 1
            return "/".join(parts[:depth]) if len(parts) >= depth else ""
    return ""


def _parent(path: str) -> str:
    if not path.startswith("/"):
        return ""
    return _data_dir(path) or path.rsplit("/", 1)[0] or "/"


def _directory_nearby(texts: list[str]) -> str:
    for text in texts:
        if m := re.search(
            r'data directory "([^"]+)"|data directory (/\S+?)/? |datadir[= ](/\S+)', text
        ):
            return next(g for g in m.groups() if g)
    return ""


def _server(text: str) -> tuple[str, str, str]:
    for pattern, user, described, default in _SERVERS:
        if pattern.search(text):
            return user, described, default
    return "", "", ""


def _fix(c: Clues, kind: str, directory: str, user: str, described: str) -> str:
    d = directory or "the data directory"
    account = user or "USER"
    who = (
        f" (the account it runs as: {described} in its official image)"
        if described
        else (" (USER: the account the service runs as)")
    )
    then = f" Then {c.restart_hint()}."
    chown = f"`chown -R {account}:{account} {d}`"
    if kind == "ownership":
        mode = f" and `chmod 700 {d}`" if user == "postgres" else ""
        return (
            f"Give the directory to the server's user: {chown}{mode}{who}. If it is a bind mount"
            " whose owner cannot change (Windows, some NFS/SMB shares), use a named volume; in"
            " Kubernetes set `securityContext.fsGroup`." + then
        )
    if kind == "mode":
        return (
            f"`chmod 700 {d}` (PostgreSQL accepts 0700, or 0750 with group read), and check it is"
            f" owned by the server's user: {chown}{who}." + then
        )
    if kind == "not_empty":
        pg = (
            f"; PostgreSQL on a fresh mount point (its `lost+found`): set PGDATA to a subdirectory"
            f" such as {d.rstrip('/')}/pgdata"
            if user == "postgres"
            else ""
        )
        return (
            f"{d} already holds files (`ls -la {d}`): point the server at an empty directory{pg},"
            " or, once you are sure they are not needed (a half-done earlier initialisation),"
            " move them away." + then
        )
    if kind in ("in_use", "locks"):
        return (
            f"Another process is using {d} (a second replica or container on the same volume, or"
            f" an old instance still running): find it with `fuser -vm {d}` or `lsof +D {d}` and"
            " stop it. Only when nothing uses the directory, remove the stale lock file the"
            " message names; if the lock is refused for permissions, fix the owner: "
            f"{chown}{who}." + then
        )
    if kind == "incompatible":
        return (
            f"The files in {d} were written by another major version: run the version that"
            " created them, or upgrade the data (PostgreSQL: `pg_upgrade`, or dump with the old"
            " version and restore into the new one). Do not delete the directory to get past"
            " this." + then
        )
    if kind == "missing":
        return (
            f"Check that the volume with the data is mounted at {d} and the path is right; for a"
            f" new installation create and initialise it, owned by the server's user: {chown}"
            f"{who}." + then
        )
    if kind == "chown":
        return (
            f"The container may not change the owner of {d}. Either it runs without root or"
            " without the CHOWN capability (a `securityContext` with `capabilities.drop: [ALL]`,"
            " `runAsNonRoot`, or a PodSecurityPolicy/Pod Security admission that drops it): give"
            " the step that chowns `capabilities.add: [CHOWN]` and root, or drop the chown and"
            " set `securityContext.fsGroup` so Kubernetes hands the volume to the group; or the"
            " volume refuses owner changes (NFS with root_squash): set the owner on the server,"
            f" {chown}{who}." + then
        )
    if kind == "stale":
        return (
            f"The volume's stored state does not fit this instance: it was written by another"
            f" cluster or installation, or part of it was lost. If it can be discarded, empty"
            f" {d} (in Kubernetes: delete the pod's PersistentVolumeClaim so a fresh one is"
            " made); otherwise point the instance back at the cluster that wrote it, or restore"
            " the directory from a backup." + then
        )
    if kind == "damaged":
        return (
            f"A data file in {d} is damaged (often after a crash or a full disk): keep a copy,"
            " then repair it (Redis: `redis-check-aof --fix`, `redis-check-rdb`) or restore from"
            " a backup." + then
        )
    return (
        f"Let the server's user write {d}: {chown}{who}; check with `ls -ld {d}`. In a container,"
        " run as the image's user or set `securityContext.fsGroup`." + then
    )
