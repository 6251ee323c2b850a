"""Release payloads: immutable, content-addressed archives and the trees extracted from them.

Layout under ROOT (STATE_DIR/releases):

    archives/<sha256>.tar|.zip    the payload byte for byte as received (a directory payload is
                                  first turned into a canonical tar); its sha256 is its name
    trees/<sha256>/               the extracted tree, the working directory of the service
    tmp/                          uploads being checked; emptied by the next add/prune

A payload comes from a person and may be hostile or broken, so every member of an archive is
checked before anything is extracted (paths, links, types, sizes), the whole archive is read
once to catch truncation, and tarfile's own "data" filter runs on top of those checks. A tree
only appears under its final name by an atomic rename, and a rejected payload leaves nothing
new under ROOT.

Everything here is blocking I/O, serialised by one process-wide lock (the agent calls it from a
thread executor; one agent per state directory is guaranteed by `AgentLock`).
"""

from __future__ import annotations

import errno
import hashlib
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Literal

from infraveil.core.errors import PayloadError, StateDirError

MAX_FILES = 200_000
"""Most entries (files, directories, links) one payload may hold: a guard against bombs."""

MAX_TREE_BYTES = 16 * 1024**3
"""Most bytes the regular files of one payload may add up to, read from the member headers."""

_CHUNK = 1024 * 1024
# Tar writers pad the end of an archive to their record size (10 KiB for GNU tar and Python);
# far more than that after the end-of-archive marker is not padding but a damaged archive.
_MAX_TRAILING_BYTES = 1024 * 1024
_MAX_LINK_HOPS = 40  # as Linux's MAXSYMLINKS
_MAX_LINK_TARGET = 4096  # PATH_MAX: a zip symlink's target is its content
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMPRESSIONS = ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
_COMPRESSION_NAMES = {"gz": "gzip", "bz2": "bzip2"}
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")  # Python >= 3.11.4
# Errors of the disk under ROOT rather than of the payload.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}
_READ_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,  # gzip.BadGzipFile, bz2's "Invalid data stream"
    NotImplementedError,  # a zip compression method Python lacks
    ValueError,
)
_SPECIAL_TYPES = {
    tarfile.FIFOTYPE: "fifo",
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
}
_ONLY_FILES_HINT = "a payload may hold only regular files, directories and symlinks"
_LINK_HINT = "a link may only point inside the payload; use a relative target within it"

# One lock for every store in the process: `add` and `prune` empty ROOT/tmp, which must not
# happen while another thread is filling it.
_LOCK = threading.Lock()

Kind = Literal["tar", "zip"]


@dataclass(frozen=True)
class Payload:
    """One stored release payload."""

    sha256: str
    """Hex digest of the stored archive bytes."""
    size: int
    """Bytes of the stored archive."""
    files: int
    """Regular files in the tree (hard links included: each is a file of the tree)."""
    archive: Path
    """The stored archive: ROOT/archives/<sha256>.<tar|zip>."""
    tree: Path
    """The extracted tree: ROOT/trees/<sha256>."""


@dataclass(frozen=True)
class _Entry:
    """One member of an archive, normalised: what the checks reason about."""

    name: str
    """As written in the archive, for messages."""
    parts: tuple[str, ...]
    kind: Literal["file", "dir", "symlink", "hardlink"]
    link: str = ""
    """A symlink's target as written; a hard link's target path, normalised."""
    mode: int = 0o644


@dataclass(frozen=True)
class _Staged:
    path: Path
    sha256: str
    size: int


class PayloadStore:
    """Stores, verifies and prunes the release payloads under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._archives = root / "archives"
        self._trees = root / "trees"
        self._tmp = root / "tmp"

    def add(self, source: Path, expected_sha256: str | None = None) -> Payload:
        """Store an archive file or a directory and extract it; idempotent for stored content.

        The archive is hashed while it is copied, so what is checked, stored and extracted is
        exactly what was hashed, whatever happens to `source` afterwards.
        """
        display = str(source)
        expected = None if expected_sha256 is None else _normalize_sha(expected_sha256)
        with _LOCK, self._state_dir_errors():
            self._prepare()
            staged = self._stage(source, display)
            try:
                if expected is not None and staged.sha256 != expected:
                    raise PayloadError(
                        f"{display} has sha256 {staged.sha256}, not the expected {expected}: "
                        "it was changed or corrupted after it was built",
                        hint="deploy the file that was built, or pass its sha256 "
                        "(`sha256sum FILE`)",
                    )
                return self._store(staged, display)
            finally:
                _discard(staged.path)  # already gone when it was moved into archives/

    def verify(self, sha256: str) -> Payload:
        """Re-hash a stored archive, and re-extract its tree if the tree is missing."""
        sha = _normalize_sha(sha256)
        with _LOCK, self._state_dir_errors():
            self._prepare()
            archive = self._find_archive(sha)
            if archive is None:
                raise PayloadError(
                    f"release payload {sha[:12]} is missing from {self._archives}",
                    hint="deploy the release again (`infraveil deploy SERVICE --payload ...`)",
                )
            actual, size = _hash_file(archive)
            if actual != sha:
                raise PayloadError(
                    f"release payload {sha[:12]} was modified after it was stored "
                    f"(tampered with?): {archive} has sha256 {actual}, not {sha}",
                    hint=f"deploy the release again, and find out what else writes to {self.root}",
                )
            tree = self._trees / sha
            if tree.is_dir():
                # Counted from the archive: the service may have written into its tree.
                _, files = _unpack(archive, str(archive), None)
            else:
                _, files = self._extract(archive, str(archive), sha)
            return Payload(sha, size, files, archive, tree)

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Remove the archives and trees of every release not in `keep`; return their shas."""
        # A malformed sha in `keep` would silently not match and delete the release it meant.
        kept = {_normalize_sha(sha) for sha in keep}
        removed: set[str] = set()
        with _LOCK, self._state_dir_errors():
            self._prepare()
            for tree in sorted(self._trees.iterdir()):
                if _SHA256.fullmatch(tree.name) and tree.name not in kept:
                    # Out of sight first: a half-removed tree is never visible as a release.
                    doomed = self._trees / f".{tree.name}.tmp-prune"
                    os.rename(tree, doomed)
                    _remove(doomed)
                    removed.add(tree.name)
            for archive in sorted(self._archives.iterdir()):
                sha = archive.name.partition(".")[0]
                if _SHA256.fullmatch(sha) and sha not in kept:
                    archive.unlink()
                    removed.add(sha)
        return sorted(removed)

    def tree(self, sha256: str) -> Path:
        """Where the tree of this release is (or would be) extracted."""
        return self._trees / _normalize_sha(sha256)

    def has(self, sha256: str) -> bool:
        """True if both the archive and the tree of this release are stored."""
        sha = _normalize_sha(sha256)
        return self._find_archive(sha) is not None and (self._trees / sha).is_dir()

    def _prepare(self) -> None:
        """Create the layout, and remove what a crashed add/prune left behind."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for directory in (self._archives, self._trees, self._tmp):
            directory.mkdir(mode=0o700, exist_ok=True)
        for leftover in self._tmp.iterdir():
            _remove(leftover)
        for leftover in self._trees.iterdir():
            if leftover.name.startswith("."):
                _remove(leftover)

    def _stage(self, source: Path, display: str) -> _Staged:
        """Copy (or, for a directory, write the canonical tar of) `source` into ROOT/tmp."""
        fd, name = tempfile.mkstemp(dir=self._tmp, suffix=".payload")
        staged = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                if _is_dir(source, display):
                    _write_canonical_tar(source, display, out)
                    out.flush()
                    os.fsync(out.fileno())
                    sha, size = _hash_file(staged)
                else:
                    sha, size = _copy_hashing(source, display, out)
        except BaseException:
            _discard(staged)
            raise
        return _Staged(staged, sha, size)

    def _store(self, staged: _Staged, display: str) -> Payload:
        tree = self._trees / staged.sha256
        created = not tree.is_dir()
        if created:
            kind, files = self._extract(staged.path, display, staged.sha256)
        else:
            kind, files = _unpack(staged.path, display, None)  # reused; checked all the same
        archive = self._archives / f"{staged.sha256}.{kind}"
        if not archive.exists():
            try:
                os.rename(staged.path, archive)
            except BaseException:
                if created:
                    _discard(tree)
                raise
        return Payload(staged.sha256, staged.size, files, archive, tree)

    def _extract(self, archive: Path, display: str, sha: str) -> tuple[Kind, int]:
        """Check and extract `archive` into trees/<sha>, which appears all at once or not at all."""
        work = Path(tempfile.mkdtemp(prefix=f".{sha}.tmp-", dir=self._trees))
        try:
            os.chmod(work, 0o755)  # the tree is a working directory, not a secret
            kind, files = _unpack(archive, display, work)
            _check_extracted_links(work, display)
            os.rename(work, self._trees / sha)
        except BaseException:
            _discard(work)
            raise
        return kind, files

    def _find_archive(self, sha: str) -> Path | None:
        for kind in ("tar", "zip"):
            path = self._archives / f"{sha}.{kind}"
            if path.is_file():
                return path
        return None

    @contextmanager
    def _state_dir_errors(self) -> Iterator[None]:
        """Errors of the payload are PayloadErrors by now; an OSError left is the disk's."""
        try:
            yield
        except OSError as e:
            where = e.filename or self.root
            raise StateDirError(
                f"cannot store release payloads under {self.root}: {where}: {e.strerror or e}",
                hint="check the permissions and free space of the state directory",
            ) from e


def _normalize_sha(value: str) -> str:
    sha = value.strip().lower()
    if not _SHA256.fullmatch(sha):
        raise PayloadError(
            f"{value!r} is not a sha256 (64 hex digits)",
            hint="use the full digest, as `sha256sum FILE` prints it",
        )
    return sha


def _is_dir(source: Path, display: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(source).st_mode)
    except FileNotFoundError:
        raise PayloadError(
            f"{display} does not exist", hint="pass an archive file or a directory"
        ) from None
    except OSError as e:
        raise PayloadError(f"cannot read {display}: {e.strerror}") from e


def _copy_hashing(source: Path, display: str, out: BinaryIO) -> tuple[str, int]:
    """Copy `source` into `out`, hashing exactly the bytes written: one read of the source."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise PayloadError(f"cannot read {display}: {e.strerror}") from e
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PayloadError(
                f"{display} is not a regular file or a directory",
                hint="pass an archive file or a directory",
            )
        while True:
            try:
                chunk = src.read(_CHUNK)
            except OSError as e:
                raise PayloadError(f"cannot read {display}: {e.strerror}") from e
            if not chunk:
                break
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    out.flush()
    os.fsync(out.fileno())
    return digest.hexdigest(), size


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _write_canonical_tar(source: Path, display: str, out: BinaryIO) -> None:
    """Write `source` as a tar that depends only on its content: same tree, same sha256.

    Entries come depth first with names sorted; owners and times are dropped, and of each mode
    only the permission bits are kept. It is not compressed: a compressor's output may change
    with its version, and the sha256 with it.
    """
    count = 0
    total = 0
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, path, st in _walk_sorted(source):
            count += 1
            if count > MAX_FILES:
                raise _too_many(display)
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tf.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                total += st.st_size
                if total > MAX_TREE_BYTES:
                    raise _too_big(display)
                _add_file(tf, info, path)
            else:
                raise PayloadError(
                    f"{path} is a {_file_type(st.st_mode)}",
                    hint=f"{_ONLY_FILES_HINT}; remove it from {display}",
                )


def _walk_sorted(top: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(name in the archive, path, lstat) of everything under `top`, depth first, sorted."""

    def children(directory: Path, prefix: str) -> list[tuple[str, Path]]:
        try:
            names = sorted(os.listdir(directory))
        except OSError as e:
            raise PayloadError(f"cannot read {directory}: {e.strerror}") from e
        return [(prefix + name, directory / name) for name in reversed(names)]

    pending = children(top, "")
    while pending:
        name, path = pending.pop()
        try:
            st = os.lstat(path)
        except OSError as e:
            raise PayloadError(f"cannot read {path}: {e.strerror}") from e
        yield name, path, st
        if stat.S_ISDIR(st.st_mode):
            pending.extend(children(path, name + "/"))


def _add_file(tf: tarfile.TarFile, info: tarfile.TarInfo, path: Path) -> None:
    try:
        # O_NOFOLLOW: the file was a regular file when listed; if it has been swapped for a
        # link since, do not read whatever the link points to.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise PayloadError(f"cannot read {path}: {e.strerror}") from e
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PayloadError(f"{path} changed while it was being read", hint="try again")
        info.size = st.st_size
        try:
            tf.addfile(info, f)
        except OSError as e:
            if e.errno in _DISK_ERRNOS:
                raise  # writing the tar under ROOT failed, not reading the file
            detail = e.strerror or "it shrank"  # tarfile's short read has no errno
            raise PayloadError(
                f"cannot read {path}: {detail}",
                hint="deploy from a directory that nothing writes to meanwhile",
            ) from e


def _unpack(archive: Path, display: str, dest: Path | None) -> tuple[Kind, int]:
    """Check every member of `archive`, reading it whole; extract it into `dest` if given.

    Returns the kind of archive and its number of regular files.
    """
    kind, compression = _detect(archive, display)
    if kind == "zip":
        with _reading(display, "zip"):
            zf = zipfile.ZipFile(archive)
        with zf:
            with _reading(display, "zip"):
                items = _scan_zip(zf, display)
            files = _check_entries([entry for _, entry in items], display)
            if dest is not None:
                with _extracting(display, dest):
                    _extract_zip(zf, items, dest)
        return kind, files
    with _open_tar(archive, display, compression) as tf:
        with _reading(display, compression):
            members, entries = _scan_tar(tf, display)
        files = _check_entries(entries, display)
        if dest is not None:
            with _extracting(display, dest):
                _extract_tar(tf, members, dest)
    return kind, files


def _open_tar(archive: Path, display: str, compression: str) -> tarfile.TarFile:
    """Open a tar with its compression (detected from its content), or say why it cannot be."""
    with _reading(display, compression):
        if compression == "gz":
            return tarfile.open(archive, "r:gz")
        if compression == "bz2":
            return tarfile.open(archive, "r:bz2")
        if compression == "xz":
            return tarfile.open(archive, "r:xz")
        return tarfile.open(archive, "r:")


def _detect(archive: Path, display: str) -> tuple[Kind, str]:
    """The kind of archive and its compression, from its content (names can say anything)."""
    with open(archive, "rb") as f:
        head = f.read(tarfile.BLOCKSIZE)
    for magic, compression in _COMPRESSIONS:
        if head.startswith(magic):
            return "tar", compression
    if head[257:262] == b"ustar":
        return "tar", ""
    if head.startswith(_ZIP_MAGICS):
        return "zip", ""
    if head and tarfile.is_tarfile(archive):  # a pre-POSIX tar has no magic at all
        return "tar", ""
    raise PayloadError(
        f"{display} is not a tar or zip archive" + ("" if head else " (it is empty)"),
        hint="pass a .tar, .tar.gz, .tar.bz2, .tar.xz or .zip file, or a directory",
    )


def _scan_tar(tf: tarfile.TarFile, display: str) -> tuple[list[tarfile.TarInfo], list[_Entry]]:
    """Check each member's header and read its data, before anything is extracted."""
    members: list[tarfile.TarInfo] = []
    entries: list[_Entry] = []
    total = 0
    for member in tf:
        if len(entries) >= MAX_FILES:
            raise _too_many(display)
        entry = _tar_entry(member, display)
        if entry.kind == "file":
            total += member.size
            if total > MAX_TREE_BYTES:
                raise _too_big(display)
            _drain(tf.extractfile(member))  # a truncated stream fails here, not half-extracted
        if not entry.parts:
            continue  # "./": the release directory itself
        # What the checks approved is what gets extracted: "./a//b" becomes "a/b".
        member.name = "/".join(entry.parts)
        if entry.kind == "hardlink":
            member.linkname = entry.link
        members.append(member)
        entries.append(entry)
    _check_tar_end(tf, display)
    return members, entries


def _tar_entry(member: tarfile.TarInfo, display: str) -> _Entry:
    name = member.name
    parts = _member_parts(name, display)
    kind: Literal["file", "dir", "symlink", "hardlink"]
    if member.isdir():
        kind = "dir"
    elif member.isreg():
        kind = "file"
    elif member.issym():
        kind = "symlink"
    elif member.islnk():
        kind = "hardlink"
    else:
        what = _SPECIAL_TYPES.get(member.type)
        raise PayloadError(
            f"{display}: member {name!r} "
            + (f"is a {what}" if what else f"has the unsupported type {member.type!r}"),
            hint=_ONLY_FILES_HINT,
        )
    if not parts and kind != "dir":
        raise PayloadError(
            f"{display}: member {name!r} would replace the release directory itself",
            hint="rebuild the archive with paths relative to the payload's root",
        )
    link = member.linkname
    if kind == "hardlink":
        link = _hardlink_target(name, link, display)
    return _Entry(name, parts, kind, link)


def _member_parts(name: str, display: str) -> tuple[str, ...]:
    """The path components of a member, refusing any that could land outside the tree."""
    if name.startswith("/"):
        raise PayloadError(
            f"{display}: member {name!r} has an absolute path",
            hint="paths in a payload are relative to its root (`tar -C DIR -czf FILE .`)",
        )
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise PayloadError(
            f"{display}: member {name!r} climbs out of the release directory with '..'",
            hint="rebuild the archive with paths relative to the payload's root",
        )
    return parts


def _hardlink_target(name: str, linkname: str, display: str) -> str:
    parts = tuple(part for part in linkname.split("/") if part not in ("", "."))
    if linkname.startswith("/") or ".." in parts:
        raise PayloadError(
            f"{display}: hard link {name!r} -> {linkname!r} points outside the payload",
            hint=_LINK_HINT,
        )
    return "/".join(parts)


def _check_tar_end(tf: tarfile.TarFile, display: str) -> None:
    """Fail unless the members end at an end-of-archive block and the stream ends soon after.

    tarfile stops quietly at a missing or garbled header, so a tar cut at a member boundary
    would otherwise pass for a smaller, complete one. Reading the stream to its end also makes
    the decompressor check its own trailer (gzip's CRC and length).
    """
    stream = tf.fileobj
    assert stream is not None  # an open TarFile always has one
    stream.seek(tf.offset)
    block = stream.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE:
        raise _corrupt(display, f"no end-of-archive marker after byte {tf.offset}")
    if block.count(0) != len(block):
        raise _corrupt(display, f"unreadable member header at byte {tf.offset}")
    trailing = len(block)
    while chunk := stream.read(_CHUNK):
        trailing += len(chunk)
        if trailing > _MAX_TRAILING_BYTES:
            raise _corrupt(display, "more than 1 MiB of data after the end of the archive")


def _scan_zip(zf: zipfile.ZipFile, display: str) -> list[tuple[zipfile.ZipInfo, _Entry]]:
    """Check each entry and read its data (which checks its CRC), before anything is extracted."""
    infos = zf.infolist()
    if len(infos) > MAX_FILES:
        raise _too_many(display)
    if sum(info.file_size for info in infos) > MAX_TREE_BYTES:
        raise _too_big(display)  # zipfile never inflates an entry past its declared size
    items: list[tuple[zipfile.ZipInfo, _Entry]] = []
    for info in infos:
        entry = _zip_entry(zf, info, display)
        if entry.kind == "file":
            _drain(zf.open(info))
        if entry.parts:
            items.append((info, entry))
    return items


def _zip_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, display: str) -> _Entry:
    name = info.filename
    parts = _member_parts(name, display)
    if info.flag_bits & 0x1:
        raise PayloadError(
            f"{display}: member {name!r} is encrypted", hint="rebuild the zip without a password"
        )
    # Unix modes live in the high 16 bits of external_attr, when the zip was made on Unix.
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    file_type = stat.S_IFMT(mode)
    if info.is_dir() or file_type == stat.S_IFDIR:
        return _Entry(name, parts, "dir")
    if not parts:
        raise PayloadError(
            f"{display}: member {name!r} would replace the release directory itself",
            hint="rebuild the archive with paths relative to the payload's root",
        )
    if file_type == stat.S_IFLNK:
        # Info-ZIP stores a symlink as an entry whose content is its target. It becomes a real
        # symlink, under the same rules as a tar's (zipfile.extract would instead write a small
        # file holding the target, which is not what was zipped).
        if info.file_size > _MAX_LINK_TARGET:
            raise PayloadError(
                f"{display}: symlink {name!r} has a {info.file_size}-byte target",
                hint="a symlink's target is at most 4096 bytes; the zip is corrupt",
            )
        return _Entry(name, parts, "symlink", os.fsdecode(zf.read(info)))
    if file_type not in (0, stat.S_IFREG):
        raise PayloadError(
            f"{display}: member {name!r} is a {_file_type(mode)}", hint=_ONLY_FILES_HINT
        )
    return _Entry(name, parts, "file", mode=_file_mode(mode) if mode & 0o777 else 0o644)


def _check_entries(entries: list[_Entry], display: str) -> int:
    """Check what no single member shows alone: links, and paths through links; count files."""
    links = _Links({entry.parts: entry.link for entry in entries if entry.kind == "symlink"})
    seen: dict[tuple[str, ...], str] = {}
    files = 0
    for entry in entries:
        for depth in range(1, len(entry.parts)):
            if entry.parts[:depth] in links.targets:
                link = "/".join(entry.parts[:depth])
                raise PayloadError(
                    f"{display}: member {entry.name!r} is inside {link!r}, "
                    "which is a symlink in the same archive",
                    hint="extracting it would write through the link; archive the real "
                    "directory instead",
                )
        earlier = seen.get(entry.parts)
        if earlier is not None and not earlier == entry.kind == "dir":
            raise PayloadError(
                f"{display}: member {entry.name!r} appears twice in the archive",
                hint="rebuild the archive so that each path appears once",
            )
        seen[entry.parts] = entry.kind
        if entry.kind == "symlink":
            _check_symlink(entry, links, display)
        elif entry.kind == "hardlink" and seen.get(tuple(entry.link.split("/"))) not in (
            "file",
            "hardlink",
        ):
            raise PayloadError(
                f"{display}: hard link {entry.name!r} -> {entry.link!r} does not name a "
                "regular file earlier in the archive",
                hint="rebuild the archive; a hard link may only repeat a file stored before it",
            )
        if entry.kind in ("file", "hardlink"):
            files += 1
    return files


class _LinkLoop(Exception):
    pass


class _Links:
    """The archive's symlinks, resolved as the kernel will once they are on disk.

    Resolving lexically is not enough: with `d/up -> ..` (inside), `x -> d/up/../etc` looks
    like `d/etc` but is `../etc`.
    """

    def __init__(self, targets: dict[tuple[str, ...], str]) -> None:
        self.targets = targets
        self._hops = 0

    def lands_inside(self, start: tuple[str, ...], target: str) -> bool:
        """True if `target`, followed from directory `start`, stays inside the tree."""
        self._hops = 0
        return self._resolve(start, target) is not None

    def _resolve(self, start: tuple[str, ...], target: str) -> tuple[str, ...] | None:
        if target.startswith("/"):
            return None
        path = list(start)
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not path:
                    return None
                path.pop()
                continue
            path.append(part)
            link = self.targets.get(tuple(path))
            if link is not None:
                self._hops += 1
                if self._hops > _MAX_LINK_HOPS:
                    raise _LinkLoop
                resolved = self._resolve(tuple(path[:-1]), link)
                if resolved is None:
                    return None
                path = list(resolved)
        return tuple(path)


def _check_symlink(entry: _Entry, links: _Links, display: str) -> None:
    where = f"{display}: symlink {entry.name!r} -> {entry.link!r}"
    if not entry.link:
        raise PayloadError(f"{display}: symlink {entry.name!r} has an empty target")
    if entry.link.startswith("/"):
        raise PayloadError(f"{where} is absolute", hint=_LINK_HINT)
    try:
        inside = links.lands_inside(entry.parts[:-1], entry.link)
    except _LinkLoop:
        raise PayloadError(
            f"{where} is part of a symlink loop", hint="rebuild the archive without the loop"
        ) from None
    if not inside:
        raise PayloadError(f"{where} points outside the payload", hint=_LINK_HINT)


def _extract_tar(tf: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path) -> None:
    if _HAS_DATA_FILTER:
        # On top of the checks above: it also drops owners, setuid and group/other write bits,
        # and keeps the executable bits.
        tf.extractall(dest, members, filter="data")
        return
    # Python < 3.11.4 has no filters: do by hand what "data" does to modes and owners.
    for member in members:
        member.mode = _file_mode(member.mode) if member.isreg() or member.islnk() else 0o755
        member.uid, member.gid = os.geteuid(), os.getegid()
        member.uname = member.gname = ""
    tf.extractall(dest, members)


def _extract_zip(
    zf: zipfile.ZipFile, items: list[tuple[zipfile.ZipInfo, _Entry]], dest: Path
) -> None:
    # By hand, because zipfile.extractall drops the modes (so the executable bits) and
    # writes symlinks as plain files.
    for info, entry in items:
        path = dest.joinpath(*entry.parts)
        if entry.kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if entry.kind == "symlink":
            os.symlink(entry.link, path)
            continue
        # O_EXCL and O_NOFOLLOW: never write into something already there, least of all
        # through a link.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(path, flags, 0o600), "wb") as out, zf.open(info) as data:
            shutil.copyfileobj(data, out, _CHUNK)
        os.chmod(path, entry.mode)


def _check_extracted_links(tree: Path, display: str) -> None:
    """Fail if any symlink on disk resolves outside `tree`.

    A second opinion on `_Links`, from the kernel's own resolution of what was extracted.
    """
    root = os.path.realpath(tree)
    for directory, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                real = os.path.realpath(path)
                if os.path.commonpath([real, root]) != root:
                    member = os.path.relpath(path, tree)
                    raise PayloadError(
                        f"{display}: symlink {member!r} points outside the payload",
                        hint=_LINK_HINT,
                    )


@contextmanager
def _reading(display: str, compression: str) -> Iterator[None]:
    """Turn what a damaged archive makes tarfile, zipfile or a decompressor raise into one error."""
    try:
        yield
    except _READ_ERRORS as e:
        detail = str(e) or type(e).__name__
        label = _COMPRESSION_NAMES.get(compression, compression)
        raise _corrupt(display, f"{label}: {detail}" if label else detail) from e


@contextmanager
def _extracting(display: str, dest: Path) -> Iterator[None]:
    try:
        yield
    except tarfile.FilterError as e:
        raise PayloadError(
            f"{display}: tarfile's data filter refused it: {e}",
            hint="rebuild the archive with plain files, directories and links inside it",
        ) from e
    except OSError as e:
        if e.errno in _DISK_ERRNOS:
            raise  # the disk under ROOT, not the payload
        where = f" ({os.path.relpath(e.filename, dest)})" if e.filename else ""
        raise PayloadError(
            f"{display} cannot be extracted: {e.strerror or e}{where}",
            hint="rebuild the archive; a path may appear once and a file cannot be a directory",
        ) from e
    except _READ_ERRORS as e:
        raise _corrupt(display, str(e) or type(e).__name__) from e


def _drain(stream: IO[bytes] | None) -> None:
    if stream is None:
        return
    with stream:
        while stream.read(_CHUNK):
            pass


def _file_mode(mode: int) -> int:
    """A file's mode as tarfile's "data" filter makes it: executable stays executable."""
    mode &= 0o755
    if not mode & 0o100:
        mode &= ~0o111
    return mode | 0o600


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def _corrupt(display: str, detail: str) -> PayloadError:
    return PayloadError(
        f"{display} is truncated or corrupt ({detail}): rebuild it",
        hint="if it was copied from elsewhere, copy it again and compare `sha256sum` on both sides",
    )


def _too_many(display: str) -> PayloadError:
    return PayloadError(
        f"{display} has more than {MAX_FILES} entries",
        hint="the limit guards against decompression bombs; ship fewer, larger files",
    )


def _too_big(display: str) -> PayloadError:
    return PayloadError(
        f"{display} would extract to more than {MAX_TREE_BYTES:,} bytes",
        hint="the limit guards against decompression bombs; ship a smaller payload",
    )


def _remove(path: Path) -> None:
    """Remove a file or a whole tree, even one with read-only directories in it."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    # A payload may hold a read-only directory, whose entries cannot be unlinked as it is.
    os.chmod(path, 0o700)
    for directory, dirnames, _ in os.walk(path):
        for name in dirnames:
            sub = os.path.join(directory, name)
            if not os.path.islink(sub):
                os.chmod(sub, 0o700)
    shutil.rmtree(path)


def _discard(path: Path) -> None:
    """`_remove` while another error is on its way out: that error is the one to report."""
    try:
        _remove(path)
    except OSError:
        pass
