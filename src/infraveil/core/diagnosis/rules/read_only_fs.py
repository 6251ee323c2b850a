"""Rule: read_only_fs — the service wrote to a filesystem mounted read-only (EROFS).

Recognises `Read-only file system` however it is framed: Python's `OSError: [Errno 30]`, Go's
`mkdir /x: read-only file system`, Node's `EROFS: read-only file system, open '/x'`, Java's
`FileSystemException: /x: Read-only file system`, nginx's `mkdir() "/x" failed (30: Read-only
file system)`, PostgreSQL's `could not create lock file "/x": Read-only file system`, a shell's
`cannot touch '/x': Read-only file system`, Rust's `os error 30`. The summary names the path.

Traps: a container with a read-only root filesystem (`docker run --read-only`, Kubernetes
`readOnlyRootFilesystem: true`) needs a writable mount where the program writes; a host
filesystem the kernel remounted read-only after I/O errors needs the disk looked at, not a
chmod. Neither is the service's user lacking permission (data_dir).
"""

from __future__ import annotations

import re

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Finding, Specificity, finding

_READ_ONLY = re.compile(r"(?i:read-only file ?system)|EROFS|\[Errno 30\]|os error 30")
_PATH = re.compile(r"""['"](/[^'"]+)['"]|(?<![\w.])(/[^\s'"():,;]+)""")
_REMOUNTED = re.compile(r"[Rr]emounting filesystem read-only")


def rule(c: Clues) -> Finding | None:
    found = c.search(_READ_ONLY)
    if found is None:
        return None
    path = _path(found.line.text)
    evidence = [c.quote(found.line)]
    remount = c.search(_REMOUNTED, decisive_first=False)
    if remount is not None:
        evidence.append(c.quote(remount.line))
    where = path or "a path"
    directory = path.rsplit("/", 1)[0] or "/" if path else "the directory it writes to"
    if remount is not None:
        fix = (
            f"The kernel remounted the filesystem read-only after errors: see `dmesg` and"
            f" `findmnt -T {path or '/'}`, check the disk (fsck, SMART) before remounting it"
            f" read-write. Then {c.restart_hint()}."
        )
    else:
        fix = (
            f"{where} is on a read-only mount (`findmnt -T {path or 'PATH'}` shows `ro`). In a"
            " container with a read-only root filesystem (`--read-only`, Kubernetes"
            f" `readOnlyRootFilesystem: true`), mount a writable volume (tmpfs/emptyDir) at"
            f" {directory}, or configure the program to write somewhere writable; a volume"
            f" mounted `:ro` must be made writable if it is meant to be. Then {c.restart_hint()}."
        )
    return finding(
        Category.READ_ONLY_FS,
        f"{c.who} could not write {where}: it is on a read-only filesystem.",
        evidence,
        fix,
        specificity=Specificity.MESSAGE,
        at=found.at,
    )


def _path(text: str) -> str:
    for m in _PATH.finditer(text):
        path = (m[1] or m[2]).rstrip(".")
        if path.count("/") >= 1 and not path.startswith("//"):
            return path
    return ""
