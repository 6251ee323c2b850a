"""runtime.payloads.PayloadStore on real archives and directories built in each test."""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from infraveil.core.errors import PayloadError
from infraveil.runtime import payloads
from infraveil.runtime.payloads import Payload, PayloadStore

Member = tuple[tarfile.TarInfo, bytes]
SCRIPT = b"#!/bin/sh\necho hello\n"


def reg(name: str, data: bytes = b"x", mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def directory(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, b""


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, b""


def special(name: str, kind: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, b""


def write_tar(path: Path, members: list[Member], compression: str = "gz") -> Path:
    with tarfile.open(path, f"w:{compression}") as tf:  # type: ignore[call-overload]
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


ZipMember = tuple[str, bytes, int]


def zip_entry(name: str, data: bytes = b"x", mode: int = stat.S_IFREG | 0o644) -> ZipMember:
    """A zip entry made on Unix: name, content and Unix mode (file type included)."""
    return name, data, mode


def write_zip(path: Path, entries: list[ZipMember]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(root: Path) -> list[str]:
    """Whatever is under ROOT besides its three (empty) directories."""
    if not root.exists():
        return []
    layout = {root / "archives", root / "trees", root / "tmp"}
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p not in layout)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "state" / "releases"


@pytest.fixture
def store(root: Path) -> PayloadStore:
    return PayloadStore(root)


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """Where the tests build their payloads, apart from the store."""
    path = tmp_path / "build"
    path.mkdir()
    return path


def sample_tar(build: Path, name: str = "build.tar.gz", extra: bytes = b"") -> Path:
    return write_tar(
        build / name,
        [
            directory("bin"),
            reg("bin/run.sh", SCRIPT, 0o755),
            reg("README", b"read me\n" + extra),
            link("docs", "README"),
        ],
    )


def test_tar_gz_is_stored_and_extracted(store: PayloadStore, root: Path, build: Path) -> None:
    source = sample_tar(build)

    payload = store.add(source)

    sha = sha_of(source)
    assert payload == Payload(
        sha256=sha,
        size=source.stat().st_size,
        files=2,
        archive=root / "archives" / f"{sha}.tar",
        tree=root / "trees" / sha,
    )
    assert payload.archive.read_bytes() == source.read_bytes()
    assert (payload.tree / "bin" / "run.sh").read_bytes() == SCRIPT
    assert mode_of(payload.tree / "bin" / "run.sh") == 0o755
    assert mode_of(payload.tree / "README") == 0o644
    assert os.readlink(payload.tree / "docs") == "README"
    assert store.has(sha) and store.has(sha.upper())
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert leftovers(root) == sorted(
        [
            f"archives/{sha}.tar",
            f"trees/{sha}",
            *(f"trees/{sha}/{p}" for p in ("README", "bin", "bin/run.sh", "docs")),
        ]
    )


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_tar_compression_is_detected_from_content(
    store: PayloadStore, build: Path, compression: str
) -> None:
    source = write_tar(build / "payload.bin", [reg("app.py", b"print(1)\n")], compression)

    payload = store.add(source)

    assert payload.archive.suffix == ".tar"
    assert (payload.tree / "app.py").read_bytes() == b"print(1)\n"


def make_tree(top: Path, mtime: int, *, readme: bytes = b"read me\n") -> Path:
    # Files are created in another order for an even mtime: the canonical tar must not care.
    files = {"bin/run.sh": SCRIPT, "README": readme, "lib/a/b.txt": b"b", "lib/c.txt": b"c"}
    for name in sorted(files, reverse=mtime % 2 == 0):
        path = top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
    (top / "bin" / "run.sh").chmod(0o755)
    (top / "empty").mkdir()
    (top / "lib" / "current").symlink_to("a")
    for path in [top, *top.rglob("*")]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return top


def test_directory_payload_sha_depends_only_on_content(store: PayloadStore, tmp_path: Path) -> None:
    first = store.add(make_tree(tmp_path / "one", mtime=1_000_000))
    second = store.add(make_tree(tmp_path / "two", mtime=2_000_001))
    changed = store.add(make_tree(tmp_path / "three", mtime=1_000_000, readme=b"read mE\n"))

    assert first.sha256 == second.sha256
    assert changed.sha256 != first.sha256
    assert first.files == 4
    assert mode_of(first.tree / "bin" / "run.sh") == 0o755
    assert (first.tree / "empty").is_dir()
    assert (first.tree / "lib" / "current" / "b.txt").read_bytes() == b"b"
    with tarfile.open(first.archive) as tf:
        members = tf.getmembers()
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 0)}


def test_directory_payload_rejects_a_fifo_and_names_it(
    store: PayloadStore, root: Path, tmp_path: Path
) -> None:
    top = make_tree(tmp_path / "app", mtime=0)
    os.mkfifo(top / "lib" / "queue")

    with pytest.raises(PayloadError, match=r"lib/queue is a fifo") as caught:
        store.add(top)

    assert caught.value.hint
    assert leftovers(root) == []


def test_directory_payload_rejects_an_escaping_symlink(
    store: PayloadStore, root: Path, tmp_path: Path
) -> None:
    top = make_tree(tmp_path / "app", mtime=0)
    (top / "lib" / "passwd").symlink_to("../../etc/passwd")

    with pytest.raises(PayloadError, match=r"symlink 'lib/passwd' -> '../../etc/passwd' points"):
        store.add(top)

    assert leftovers(root) == []


def test_zip_is_stored_and_extracted(store: PayloadStore, root: Path, build: Path) -> None:
    source = write_zip(
        build / "build.zip",
        [
            zip_entry("bin/", b"", stat.S_IFDIR | 0o755),
            zip_entry("bin/run.sh", SCRIPT, stat.S_IFREG | 0o755),
            zip_entry("README", b"read me\n"),
            zip_entry("docs", b"README", stat.S_IFLNK | 0o777),
        ],
    )

    payload = store.add(source)

    assert payload.sha256 == sha_of(source)
    assert payload.archive == root / "archives" / f"{payload.sha256}.zip"
    assert payload.files == 2
    assert (payload.tree / "bin" / "run.sh").read_bytes() == SCRIPT
    assert mode_of(payload.tree / "bin" / "run.sh") == 0o755
    assert mode_of(payload.tree / "README") == 0o644
    assert os.readlink(payload.tree / "docs") == "README"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"just some text\n", r"is not a tar or zip archive$"),
        (b"", r"is not a tar or zip archive \(it is empty\)$"),
    ],
    ids=["text", "empty"],
)
def test_not_an_archive(
    store: PayloadStore, root: Path, build: Path, content: bytes, why: str
) -> None:
    source = build / "build.tar.gz"
    source.write_bytes(content)

    with pytest.raises(PayloadError) as caught:
        store.add(source)

    assert re.search(why, caught.value.message)
    assert leftovers(root) == []


def noise(size: int) -> bytes:
    return random.Random(size).randbytes(size)  # incompressible, so a cut lands in the data


def cut_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def cut_end_marker(path: Path) -> None:
    """Drop the end-of-archive blocks: a tar cut exactly at a member boundary."""
    data = path.read_bytes()
    path.write_bytes(data[: 512 + 20_000 + 480])  # header and padded data of the one member


@pytest.mark.parametrize(
    ("compression", "damage"),
    [("gz", cut_half), ("xz", cut_half), ("", cut_half), ("", cut_end_marker)],
    ids=["tar.gz-half", "tar.xz-half", "tar-half", "tar-at-member-boundary"],
)
def test_truncated_archive(
    store: PayloadStore,
    root: Path,
    build: Path,
    compression: str,
    damage: Callable[[Path], None],
) -> None:
    source = write_tar(build / "build.tar.gz", [reg("blob", noise(20_000))], compression)
    damage(source)

    with pytest.raises(PayloadError, match=r"build.tar.gz is truncated or corrupt \(.+\): rebuild"):
        store.add(source)

    assert leftovers(root) == []


def test_expected_sha_mismatch_names_both_hashes(
    store: PayloadStore, root: Path, build: Path
) -> None:
    source = sample_tar(build)
    built = sha_of(source)
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    source.write_bytes(data)

    with pytest.raises(PayloadError) as caught:
        store.add(source, expected_sha256=built)

    assert caught.value.message == (
        f"{source} has sha256 {sha_of(source)}, not the expected {built}: "
        "it was changed or corrupted after it was built"
    )
    assert leftovers(root) == []


def test_expected_sha_accepts_upper_case_and_rejects_malformed(
    store: PayloadStore, build: Path
) -> None:
    source = sample_tar(build)

    assert store.add(source, expected_sha256=sha_of(source).upper()).sha256 == sha_of(source)
    with pytest.raises(PayloadError, match=r"'abc123' is not a sha256 \(64 hex digits\)"):
        store.add(source, expected_sha256="abc123")


HOSTILE_TARS: list[tuple[str, list[Member], str]] = [
    ("absolute", [reg("/tmp/evil")], r"member '/tmp/evil' has an absolute path"),
    ("dotdot", [reg("../evil")], r"member '../evil' climbs out"),
    ("dotdot-inside", [reg("a/../../evil")], r"member 'a/../../evil' climbs out"),
    ("symlink-absolute", [link("etc", "/etc")], r"symlink 'etc' -> '/etc' is absolute"),
    ("symlink-up", [link("etc", "../../etc")], r"symlink 'etc' -> '../../etc' points outside"),
    (
        "symlink-chain",  # lexically d/etc, really ../etc
        [directory("d"), link("d/up", ".."), link("x", "d/up/../etc")],
        r"symlink 'x' -> 'd/up/../etc' points outside",
    ),
    ("symlink-loop", [link("a", "b/x"), link("b", "a/y")], r"symlink 'a' -> 'b/x' is part of a"),
    ("hardlink-up", [link("passwd", "../../etc/passwd", tarfile.LNKTYPE)], r"hard link 'passwd'"),
    ("hardlink-absolute", [link("passwd", "/etc/passwd", tarfile.LNKTYPE)], r"points outside"),
    (
        "hardlink-later",
        [link("a", "b", tarfile.LNKTYPE), reg("b")],
        r"hard link 'a' -> 'b' does not name a regular file earlier",
    ),
    (
        "through-symlinked-dir",
        [directory("real"), link("d", "real"), reg("d/file")],
        r"member 'd/file' is inside 'd', which is a symlink in the same archive",
    ),
    (
        "overwrite-symlink",
        [reg("target"), link("a", "target"), reg("a")],
        r"member 'a' appears twice",
    ),
    ("fifo", [special("queue", tarfile.FIFOTYPE)], r"member 'queue' is a fifo"),
    ("device", [special("null", tarfile.CHRTYPE)], r"member 'null' is a character device"),
    ("root-as-file", [reg("./")], r"would replace the release directory"),
]


@pytest.mark.parametrize(
    ("members", "why"), [case[1:] for case in HOSTILE_TARS], ids=[c[0] for c in HOSTILE_TARS]
)
def test_hostile_tar_is_rejected_before_extraction(
    store: PayloadStore, root: Path, build: Path, members: list[Member], why: str
) -> None:
    source = write_tar(build / "build.tar.gz", [reg("ok.txt"), *members])

    with pytest.raises(PayloadError, match=why) as caught:
        store.add(source)

    assert str(caught.value).startswith(f"{source}: ")
    assert caught.value.hint
    assert leftovers(root) == []
    assert sorted(p.name for p in build.parent.iterdir()) == ["build", "state"]


HOSTILE_ZIPS: list[tuple[str, list[ZipMember], str]] = [
    ("dotdot", [zip_entry("../evil")], r"member '../evil' climbs out"),
    ("absolute", [zip_entry("/tmp/evil")], r"member '/tmp/evil' has an absolute path"),
    (
        "symlink-up",
        [zip_entry("etc", b"../../etc", stat.S_IFLNK | 0o777)],
        r"symlink 'etc' -> '../../etc' points outside",
    ),
    (
        "through-symlinked-dir",
        [zip_entry("d", b"sub", stat.S_IFLNK | 0o777), zip_entry("d/file")],
        r"member 'd/file' is inside 'd'",
    ),
    ("fifo", [zip_entry("queue", b"", stat.S_IFIFO | 0o644)], r"member 'queue' is a fifo"),
]


@pytest.mark.parametrize(
    ("entries", "why"), [case[1:] for case in HOSTILE_ZIPS], ids=[c[0] for c in HOSTILE_ZIPS]
)
def test_hostile_zip_is_rejected_before_extraction(
    store: PayloadStore, root: Path, build: Path, entries: list[ZipMember], why: str
) -> None:
    source = write_zip(build / "build.zip", [zip_entry("ok.txt"), *entries])

    with pytest.raises(PayloadError, match=why):
        store.add(source)

    assert leftovers(root) == []
    assert sorted(p.name for p in build.parent.iterdir()) == ["build", "state"]


def test_links_inside_the_tree_are_fine(store: PayloadStore, build: Path) -> None:
    source = write_tar(
        build / "build.tar.gz",
        [
            directory("lib/v1"),
            reg("lib/v1/mod.py", b"x = 1\n"),
            link("lib/current", "v1"),
            link("lib/v1/root", "../.."),
            link("mod.py", "lib/current/mod.py"),
            link("same.py", "lib/v1/mod.py", tarfile.LNKTYPE),
        ],
    )

    payload = store.add(source)

    assert (payload.tree / "mod.py").read_bytes() == b"x = 1\n"
    assert (payload.tree / "same.py").stat().st_ino == (
        payload.tree / "lib/v1/mod.py"
    ).stat().st_ino
    assert payload.files == 2


@pytest.mark.parametrize(
    ("limit", "value", "why"),
    [
        ("MAX_FILES", 2, r"has more than 2 entries"),
        ("MAX_TREE_BYTES", 10, r"would extract to more than 10 bytes"),
    ],
)
def test_bomb_limits_come_from_the_headers(
    store: PayloadStore,
    root: Path,
    build: Path,
    monkeypatch: pytest.MonkeyPatch,
    limit: str,
    value: int,
    why: str,
) -> None:
    monkeypatch.setattr(payloads, limit, value)
    tar = write_tar(build / "build.tar.gz", [reg("a", b"0123456"), reg("b", b"0123456"), reg("c")])
    zip_ = write_zip(build / "build.zip", [zip_entry(n, b"0123456") for n in "abc"])

    for source in (tar, zip_):
        with pytest.raises(PayloadError, match=why):
            store.add(source)

    assert leftovers(root) == []


def test_adding_the_same_archive_twice_reuses_it(store: PayloadStore, build: Path) -> None:
    source = sample_tar(build)
    first = store.add(source)
    inode = first.tree.stat().st_ino

    again = store.add(source, expected_sha256=first.sha256)

    assert again == first
    assert first.tree.stat().st_ino == inode


def test_crash_leftovers_are_removed_by_the_next_add(
    store: PayloadStore, root: Path, build: Path
) -> None:
    first = store.add(sample_tar(build))
    (root / "tmp" / "tmpabc.payload").write_bytes(b"half an upload")
    (root / "trees" / f".{first.sha256}.tmp-abc" / "sub").mkdir(parents=True)

    second = store.add(sample_tar(build, "other.tar.gz", extra=b"!"))

    assert list((root / "tmp").iterdir()) == []
    assert {p.name for p in (root / "trees").iterdir()} == {first.sha256, second.sha256}


def test_verify_detects_a_modified_archive(store: PayloadStore, build: Path) -> None:
    payload = store.add(sample_tar(build))
    data = bytearray(payload.archive.read_bytes())
    data[-1] ^= 0x01
    payload.archive.write_bytes(data)

    with pytest.raises(PayloadError, match=r"was modified after it was stored \(tampered with\?\)"):
        store.verify(payload.sha256)


def test_verify_reports_a_missing_archive(store: PayloadStore, root: Path, build: Path) -> None:
    payload = store.add(sample_tar(build))
    payload.archive.unlink()

    with pytest.raises(PayloadError) as caught:
        store.verify(payload.sha256)

    assert caught.value.message == (
        f"release payload {payload.sha256[:12]} is missing from {root / 'archives'}"
    )
    assert "deploy" in caught.value.hint


def test_verify_re_extracts_a_deleted_tree(store: PayloadStore, build: Path) -> None:
    payload = store.add(sample_tar(build))
    shutil.rmtree(payload.tree)

    assert store.verify(payload.sha256) == payload
    assert (payload.tree / "bin" / "run.sh").read_bytes() == SCRIPT
    assert mode_of(payload.tree / "bin" / "run.sh") == 0o755


def test_prune_keeps_only_the_given_releases(store: PayloadStore, root: Path, build: Path) -> None:
    kept, gone1, gone2 = (
        store.add(sample_tar(build, f"b{i}.tar.gz", extra=bytes([i]))) for i in range(3)
    )

    removed = store.prune([kept.sha256.upper()])

    assert removed == sorted([gone1.sha256, gone2.sha256])
    assert store.has(kept.sha256)
    assert not store.has(gone1.sha256) and not store.has(gone2.sha256)
    assert leftovers(root) == sorted(
        str(p.relative_to(root)) for p in [kept.archive, kept.tree, *kept.tree.rglob("*")]
    )
    assert store.prune([kept.sha256]) == []
