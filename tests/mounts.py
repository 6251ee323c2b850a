"""Small real filesystems for the tests of full and read-only state directories.

A tmpfs of a few hundred KiB is a disk that fills up in milliseconds, and one remounted
read-only is a state directory nobody can write, root included (as root, mode bits do not
stop writes). Mounting needs root: without it the tests skip, unless CI is set, where they
must run.
"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FILLER = "filler"


def need_root_to_mount() -> None:
    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("mounting a small tmpfs needs root")


@contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A fresh tmpfs of `size` (`512k`, `8m`), unmounted (lazily if busy) and removed after."""
    need_root_to_mount()
    where = Path(tempfile.mkdtemp(prefix="ivl-fs-"))
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)
        os.rmdir(where)


def remount_read_only(where: Path) -> None:
    _mount("-o", "remount,ro", str(where))


def fill(where: Path) -> Path:
    """Write into `where` until its filesystem is full (ENOSPC); the file that filled it."""
    filler = where / FILLER
    chunk = b"\0" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]  # the last few KiB, down to the last byte
    finally:
        os.close(fd)
    assert os.statvfs(where).f_bavail == 0, "the filesystem still has room"
    return filler


def make_room(where: Path) -> None:
    (where / FILLER).unlink()


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"mount {' '.join(args)} failed: {result.stderr.strip()}")
        pytest.skip(f"cannot mount here: {result.stderr.strip()}")
