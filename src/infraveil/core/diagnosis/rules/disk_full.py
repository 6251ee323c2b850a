"""Rule: disk_full — a write failed because the filesystem (or its inodes, or a quota) is full.

Recognises ENOSPC as each runtime words it: `No space left on device` (glibc: Python's
`[Errno 28]`, Go's `write /x: no space left on device`, Java's `IOException`, PostgreSQL's
`could not write to file "pg_wal/..."` / `could not extend file` with `HINT:  Check free disk
space.`), Node's `ENOSPC: no space left on device, write`, Rust's `os error 28`, MySQL's `Disk
is full writing './binlog.000001' (OS errno 28 ...)`, `Disk quota exceeded` (EDQUOT), and
Elasticsearch's `flood stage disk watermark [95%] exceeded`.

Traps: ENOSPC is also what inotify returns when the watch limit is reached (`inotify_add_watch`,
`System limit for number of file watchers reached`) and what System V IPC returns when the
kernel's semaphore or shared-memory limits are reached (PostgreSQL's `could not create
semaphores`, whose hint says it does *not* mean the disk is full): those are kernel_setting's and
are skipped here. PostgreSQL's `could not resize shared memory segment` is /dev/shm being full
(Docker's 64 MB default), which this rule reports with that fix. A full disk is transient from
the service's point of view: freeing space and retrying works.
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues, search_unless
from infraveil.core.diagnosis.finding import Confidence, Finding, Specificity, finding

_FULL = re.compile(
    r"(?i:no space left on device)|ENOSPC|\[Errno 28\]|os error 28|OS errno 28"
    r"|Disk is full|(?i:disk quota exceeded)|EDQUOT|flood stage disk watermark"
)
# ENOSPC that is a kernel limit, not a full disk: kernel_setting's
_NOT_DISK = re.compile(
    r"inotify|fsnotify|[Ww]atch|semget|shmget|could not create semaphores"
    r"|could not create shared memory segment"
)
_SHM = re.compile(r"could not resize shared memory segment|/dev/shm")
_WATERMARK = re.compile(r"disk watermark")
_QUOTA = re.compile(r"(?i:disk quota exceeded)|EDQUOT")
_PATH = re.compile(r"""['"]((?:/|\./)?[^'"\s]+/[^'"\s]+)['"]|(?<![\w.])(/[^\s'"():,;\]]+)""")
_HINT = re.compile(r"HINT:|Check free disk space|Waiting for someone to free")


def rule(c: Clues) -> Finding | None:
    found = search_unless(c, _FULL, _NOT_DISK)
    if found is None:
        return None
    text = found.line.text
    path = _path(text)
    evidence = [c.quote(found.line)]
    hint = next(
        (ln for ln in c.facts.log[found.at + 1 : found.at + 3] if _HINT.search(ln.text)), None
    )
    if hint is not None:
        evidence.append(c.quote(hint))
    look = path if path.startswith("/") else "DIR"
    dir_is = "" if path.startswith("/") else " (DIR: the directory it writes to)"
    confidence = Confidence.HIGH
    confirm = ""
    if _SHM.search(text):
        summary = f"{c.who} ran out of shared memory: /dev/shm is full."
        fix = (
            "Give the container a bigger /dev/shm (`docker run --shm-size=1g`, compose `shm_size`,"
            " or a Kubernetes `emptyDir` with `medium: Memory` mounted at /dev/shm); check with"
            f" `df -h /dev/shm`. Then {c.restart_hint()}."
        )
    elif _WATERMARK.search(text):
        summary = f"{c.who} stopped writing: its disk passed the flood-stage watermark."
        confidence = Confidence.MEDIUM
        confirm = "`df -h` on the data path showing it about 95% full"
        fix = (
            "Free space on the data disk (`df -h` on its data path) or grow it; Elasticsearch"
            " makes indices read-only at the flood stage and lifts the block once usage falls."
            f" Then {c.restart_hint()}."
        )
    elif _QUOTA.search(text):
        summary = f"{c.who} could not write {path or 'to disk'}: its disk quota is exceeded."
        fix = (
            f"Free space owned by the service's user or raise its quota (`quota -s`,"
            f" `repquota`); `du -xh --max-depth=1 {look} | sort -h` shows what grew."
            f" Then {c.restart_hint()}."
        )
    else:
        summary = f"{c.who} could not write {path or 'to disk'}: no space is left on the device."
        fix = (
            f"See what is full: `df -h {look}` (space) and `df -i {look}` (inodes: many small"
            f" files fill them too){dir_is}; `du -xh --max-depth=1 {look} | sort -h` shows what"
            " grew. Free space (old logs, dumps, WAL/binlogs, images: `docker system df`) or grow"
            f" the volume. Then {c.restart_hint()}."
        )
    return finding(
        Category.DISK_FULL,
        summary,
        evidence,
        fix,
        specificity=Specificity.MESSAGE,
        confidence=confidence,
        confirm=confirm,
        at=found.at,
    )


def _path(text: str) -> str:
    for m in _PATH.finditer(text):
        path = (m[1] or m[2]).rstrip(".")
        if not path.startswith("//") and path != "/dev/shm":
            return path
    return ""
