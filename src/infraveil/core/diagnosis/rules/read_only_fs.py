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
from infraveil.core.diagnosis.clues import Clues, search_unless
from infraveil.core.diagnosis.finding import Finding, Specificity, finding

_READ_ONLY = re.compile(r"(?i:read-only file ?system)|EROFS|\[Errno 30\]|os error 30")
_PATH = re.compile(r"""['"](/[^'"]+)['"]|(?<![\w.])(/[^\s'"():,;]+)""")
_REMOUNTED = re.compile(r"[Rr]emounting filesystem read-only")


# /proc/sys is read-only in an unprivileged container: a kernel setting (kernel_setting's)
_NOT_HERE = re.compile(r"/proc/sys/|sysctl: setting key")


def rule(c: Clues) -> Finding | None:
    found = search_unless(c, _READ_ONLY, _NOT_HERE)
    if found is None:
        return None
    path = _path(found.line.text)
    # a script's first failed write, then the same failure on every line after it: the first
    # is where it began (quoted first), the last is where it stopped
    run = c.cascade(found, _READ_ONLY, path)
    evidence = [c.quote(m.line) for m in (run[0], found)[: 1 if len(run) == 1 else 2]]
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
    again = f" ({len(run)} lines report it)" if len(run) > 1 else ""
    return finding(
        Category.READ_ONLY_FS,
        f"{c.who} could not write {where}: it is on a read-only filesystem{again}.",
        evidence,
        fix,
        specificity=Specificity.MESSAGE,
        at=found.at,
    )


def _path(text: str) -> str:
    """The path the error is about: the one nearest its words (a shell names the script first,
    `sh: line 7: /x: Read-only file system`; Node and Python name the path after them)."""
    said = _READ_ONLY.search(text)
    where = said.start() if said is not None else 0
    paths = [
        (abs(m.start() - where), path)
        for m in _PATH.finditer(text)
        if (path := (m[1] or m[2]).rstrip(".")).count("/") >= 1 and not path.startswith("//")
    ]
    return min(paths)[1] if paths else ""
