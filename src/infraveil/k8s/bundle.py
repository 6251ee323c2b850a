"""Bundles: a pod's JSON, its events and its containers' logs, in a directory or a tarball.

`infraveil doctor k8s collect` writes a bundle and `infraveil doctor k8s --bundle` reads one,
so a failure can be diagnosed later, on another machine, or by someone who has no access to
the cluster. A bundle holds what the API returned, untouched; the layout:

    pod.json                        the v1 Pod (`kubectl get pod POD -o json`)
    events.json                     its events (`kubectl get events -o json
                                    --field-selector involvedObject.name=POD`): a v1 EventList,
                                    a `kind: List`, or a JSON array; events.k8s.io/v1 events
                                    are read too
    node-events.json                optional: events about the pod's node (evictions, pressure)
    owners.json                     optional: the owner chain, nearest first, as a JSON list:
                                    ["ReplicaSet/api-5d9f7", "Deployment/api"]
    problems.json                   optional: what `collect` could not gather, as a JSON list
                                    of sentences ("events: forbidden ...")
    logs/<container>.previous.txt   `kubectl logs POD -c <container> --previous`
    logs/<container>.txt            `kubectl logs POD -c <container>`
                                    (logs/-.previous.txt: logs given without a container name)

A bundle is one such pod directory at its root, or several under `<namespace>/<pod>/`. A root
`pod.json` holding a `PodList` or `kind: List` (`kubectl get pods -o json`) with a root
`events.json` holding the events of all of them is accepted too: each event goes to the pod
(or the node) its `involvedObject` names.

Reading is tolerant: a bundle may be a `.tar.gz`, `.tgz` or `.tar` (read in memory, never
extracted; links and devices are ignored) or a directory; a file that is cut short or is not
JSON is named in `problems` and the rest is read. Only a bundle with no readable pod at all is
an error (`BundleError`). Sizes are bounded: a JSON member over `MAX_MEMBER` bytes is refused,
a log over it is read from its end (the crash is at the end), and a bundle over `MAX_TOTAL`
is refused.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from infraveil.core.errors import InfraveilError
from infraveil.k8s.evidence import UNNAMED, PodEvidence

MAX_MEMBER = 8 * 1024 * 1024
"""The largest JSON file read from a bundle (a pod with its status is a few KB)."""
MAX_TOTAL = 64 * 1024 * 1024
"""The largest bundle read: its file (compressed) and all it holds (uncompressed)."""
MAX_UNPACKED = 4 * MAX_TOTAL
"""The largest archive once uncompressed (a huge log is read from its end, so it may exceed
`MAX_TOTAL`; nothing legitimate comes near this)."""
MAX_MEMBERS = 10_000
MAX_PROBLEMS = 50
"""Problems of a bundle beyond this many are not repeated: a report is read by a person."""
UNNAMED_FILE = "-"
"""The file name (before .previous.txt) of logs given without a container name: "-" is no
valid container name, so it never clashes with one."""


class BundleError(InfraveilError):
    """A bundle that cannot be read at all: missing, not a directory or an archive, too big,
    or without a single readable pod.json."""

    code = "bundle_invalid"


# --- reading the files ----------------------------------------------------------------------


@dataclass
class _Files:
    """The bundle's regular files by relative POSIX path, read into memory."""

    data: dict[str, bytes]
    problems: list[str]
    name: str  # the bundle as the user named it, for messages


def _clean(name: str) -> str | None:
    """A member name as a relative path; None for one that would leave the bundle."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".")]
    if not parts or parts[0] == "/" or ".." in parts:
        return None
    return "/".join(parts)


def _is_log(rel: str) -> bool:
    return "/logs/" in f"/{rel}" and rel.endswith((".txt", ".log"))


def _read_dir(root: Path) -> _Files:
    files = _Files({}, [], root.name or str(root))
    total = 0
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for fname in sorted(filenames):
            full = Path(dirpath) / fname
            rel = full.relative_to(root).as_posix()
            count += 1
            if count > MAX_MEMBERS:
                raise BundleError(
                    f"{root}: more than {MAX_MEMBERS} files; this is not a bundle",
                    hint="give the directory `doctor k8s collect` wrote",
                )
            try:
                st = full.lstat()
            except OSError as e:
                files.problems.append(f"bundle {rel}: cannot be read ({e.strerror})")
                continue
            if not full.is_file() or full.is_symlink():
                continue  # links, devices, sockets: never followed
            data = _read_bounded(rel, st.st_size, lambda f=full: f.open("rb"), files)
            if data is None:
                continue
            total += len(data)
            if total > MAX_TOTAL:
                raise _too_big(str(root))
            files.data[rel] = data
    return files


def _read_bounded(rel: str, size: int, opener: Any, files: _Files) -> bytes | None:
    """Read one file within the size bounds: a log's end, or nothing for a huge JSON file."""
    try:
        with opener() as f:
            if size <= MAX_MEMBER:
                data: bytes = f.read(MAX_MEMBER + 1)
                return data[:MAX_MEMBER]
            if _is_log(rel):
                f.seek(size - MAX_MEMBER)
                files.problems.append(
                    f"bundle {rel}: {size // (1024 * 1024)} MB; read only its last "
                    f"{MAX_MEMBER // (1024 * 1024)} MB"
                )
                return bytes(f.read(MAX_MEMBER))
    except (OSError, EOFError, tarfile.TarError, zlib.error) as e:
        files.problems.append(f"bundle {rel}: cannot be read ({_why(e)})")
        return None
    files.problems.append(
        f"bundle {rel}: {size // (1024 * 1024)} MB, over the {MAX_MEMBER // (1024 * 1024)} MB "
        "a JSON file may have; left out"
    )
    return None


def _read_tar(path: Path) -> _Files:
    files = _Files({}, [], path.name)
    total = 0
    try:
        tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed below, after the members
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise BundleError(
            f"{path}: not a readable .tar.gz or .tar ({_why(e)})",
            hint="give the file `doctor k8s collect -o FILE.tar.gz` wrote, or its directory",
        ) from None
    try:
        count = 0
        for member in _members(tar, files):
            count += 1
            if count > MAX_MEMBERS:
                raise BundleError(
                    f"{path}: more than {MAX_MEMBERS} members; this is not a bundle",
                    hint="give the file `doctor k8s collect` wrote",
                )
            if member.offset_data + max(member.size, 0) > MAX_UNPACKED:
                # Even skipping a member means decompressing it: a gzip bomb stops here.
                raise _too_big(f"{path} (uncompressed)")
            if not member.isfile():
                continue  # directories, links, devices, fifos: never followed
            rel = _clean(member.name)
            if rel is None:
                files.problems.append(f"bundle {member.name}: a path outside the bundle; ignored")
                continue
            total += min(member.size, MAX_MEMBER)
            if total > MAX_TOTAL:
                raise _too_big(str(path))
            m = member
            data = _read_bounded(rel, member.size, lambda m=m: _opened(tar, m), files)
            if data is not None:
                if len(data) < min(member.size, MAX_MEMBER):
                    files.problems.append(
                        f"bundle {rel}: cut short ({len(data)} of {member.size} bytes)"
                    )
                files.data[rel] = data
    finally:
        tar.close()
    return files


def _opened(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Any:
    f = tar.extractfile(member)
    if f is None:
        raise OSError("not a regular file")
    return f


def _members(tar: tarfile.TarFile, files: _Files) -> Iterator[tarfile.TarInfo]:
    """The archive's members, stopping (and saying so) where a cut-short archive ends."""
    while True:
        try:
            member = tar.next()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            files.problems.append(f"bundle {files.name}: the archive ends early ({_why(e)})")
            return
        if member is None:
            return
        yield member


def _why(e: BaseException) -> str:
    if isinstance(e, tarfile.ReadError) and "could not be opened" in str(e):
        return "neither gzip-compressed nor a plain tar archive"
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _too_big(where: str) -> BundleError:
    return BundleError(
        f"{where}: over {MAX_TOTAL // (1024 * 1024)} MB; this is not a bundle of a few pods",
        hint="collect one pod at a time (`doctor k8s collect POD -o FILE.tar.gz`)",
    )


def _load(path: Path) -> _Files:
    try:
        st = path.stat()
    except OSError as e:
        raise BundleError(
            f"{path}: {e.strerror or 'cannot be read'}",
            hint="give a bundle directory or the .tar.gz `doctor k8s collect` wrote",
        ) from None
    if path.is_dir():
        return _read_dir(path)
    if st.st_size > MAX_TOTAL:
        raise _too_big(str(path))
    return _read_tar(path)


# --- JSON, tolerant of a file cut short -----------------------------------------------------


def _json(files: _Files, rel: str) -> tuple[Any, bool]:
    """(the parsed document or None, whether it is complete). Problems name the member."""
    raw = files.data.get(rel)
    if raw is None:
        return None, False
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        files.problems.append(f"bundle {rel}: not UTF-8 text (byte {e.start}); left out")
        return None, False
    if not text.strip():
        files.problems.append(f"bundle {rel}: empty")
        return None, False
    try:
        return json.loads(text), True
    except json.JSONDecodeError as e:
        repaired = _repair(text)
        if repaired is not None:
            files.problems.append(
                f"bundle {rel}: cut short or broken at line {e.lineno} column {e.colno} "
                f"({e.msg}); read what comes before it"
            )
            return repaired, False
        files.problems.append(
            f"bundle {rel}: not JSON (line {e.lineno} column {e.colno}: {e.msg}); left out"
        )
        return None, False
    except RecursionError:
        files.problems.append(f"bundle {rel}: nested too deeply to be a Kubernetes object")
        return None, False


_TRIES = 40


def _repair(text: str) -> Any | None:
    """The longest readable prefix of a JSON document cut short, with its brackets closed.

    One pass records, at each comma, closing bracket or closing quote, the brackets still
    open; the last few such cuts are tried from the end. Linear in the text (and in the
    number of tries)."""
    stack: list[str] = []
    cuts: list[tuple[int, str]] = []
    in_str = False
    esc = False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
                if stack:  # the end of a value, or of a key (then the try fails and moves on)
                    cuts.append((i + 1, "".join(reversed(stack))))
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            if len(stack) > 200:
                return None
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack or stack[-1] != ch:
                break
            stack.pop()
            cuts.append((i + 1, "".join(reversed(stack))))
            if not stack:
                break
        elif ch == ",":
            cuts.append((i, "".join(reversed(stack))))
        if len(cuts) > 4 * _TRIES:
            del cuts[: 2 * _TRIES]
    # Each try parses the text again: a big file gets fewer tries (about 4 MB parsed in all).
    tries = max(3, min(_TRIES, 4_000_000 // max(1, len(text))))
    for end, closers in reversed(cuts[-tries:]):
        try:
            return json.loads(text[:end] + closers)
        except (json.JSONDecodeError, RecursionError):
            continue
    return None


# --- the Kubernetes shapes ------------------------------------------------------------------


def _items(doc: Any, rel: str, files: _Files, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """A list of objects from a `*List`, a `kind: List`, a JSON array, or one object."""
    if isinstance(doc, list):
        items = doc
    elif isinstance(doc, dict) and isinstance(doc.get("items"), list):
        items = doc["items"]
    elif isinstance(doc, dict) and (doc.get("kind") in kinds or "metadata" in doc):
        items = [doc]
    else:
        files.problems.append(f"bundle {rel}: neither a {' nor a '.join(kinds)} nor a list")
        return []
    out = [x for x in items if isinstance(x, dict)]
    if len(out) < len(items):
        files.problems.append(f"bundle {rel}: {len(items) - len(out)} item(s) are not objects")
    return out


def event_v1(ev: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event in the core v1 shape (note -> message, regarding ->
    involvedObject, deprecatedCount / series.count -> count); a v1 Event unchanged."""
    if "involvedObject" in ev or not ("regarding" in ev or "note" in ev):
        return ev
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": ev.get("metadata", {}),
        "involvedObject": ev.get("regarding") or {},
        "reason": ev.get("reason", ""),
        "message": ev.get("note", ""),
        "type": ev.get("type", "Normal"),
    }
    series = ev.get("series") if isinstance(ev.get("series"), dict) else {}
    count = (series or {}).get("count") or ev.get("deprecatedCount")
    out["count"] = count if isinstance(count, int) and count > 0 else 1
    for new, old in (
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
    ):
        if ev.get(new):
            out[old] = ev[new]
    if series and series.get("lastObservedTime") and "lastTimestamp" not in out:
        out["lastTimestamp"] = series["lastObservedTime"]
    if ev.get("eventTime"):
        out["eventTime"] = ev["eventTime"]
    source = ev.get("deprecatedSource") or {}
    if not source and ev.get("reportingController"):
        source = {"component": ev["reportingController"]}
        if ev.get("reportingInstance"):
            source["host"] = ev["reportingInstance"]
    if source:
        out["source"] = source
    return out


def _events(files: _Files, rel: str) -> list[dict[str, Any]]:
    doc, _ = _json(files, rel)
    if doc is None:
        return []
    return [event_v1(e) for e in _items(doc, rel, files, ("EventList", "List", "Event"))]


def _strings(files: _Files, rel: str) -> list[str]:
    doc, _ = _json(files, rel)
    if doc is None:
        return []
    if not isinstance(doc, list):
        files.problems.append(f"bundle {rel}: not a JSON list of strings; left out")
        return []
    return [str(x) for x in doc if isinstance(x, str | int | float)]


def _log_index(files: _Files) -> dict[str, list[tuple[str, bytes]]]:
    """Log files by the pod directory they belong to ("" or "ns/pod/"), in one pass."""
    index: dict[str, list[tuple[str, bytes]]] = {}
    for rel, data in files.data.items():
        head, sep, fname = rel.rpartition("logs/")
        if sep and (head == "" or head.endswith("/")) and "/" not in fname:
            index.setdefault(head, []).append((fname, data))
    return index


def _logs(entries: list[tuple[str, bytes]]) -> tuple[dict[str, str], dict[str, str]]:
    previous: dict[str, str] = {}
    current: dict[str, str] = {}
    for fname, data in sorted(entries):
        for suffix in (".txt", ".log"):
            if fname.endswith(suffix):
                stem = fname[: -len(suffix)]
                break
        else:
            continue
        target = current
        if stem.endswith(".previous"):
            stem, target = stem[: -len(".previous")], previous
        name = UNNAMED if stem in (UNNAMED_FILE, "") else stem
        target[name] = data.decode("utf-8", errors="replace")
    return previous, current


def _pod_dirs(files: _Files) -> list[str]:
    """Prefixes ("" or "ns/pod/") of every directory holding a pod.json, in order."""
    return sorted(
        rel[: -len("pod.json")]
        for rel in files.data
        if rel == "pod.json" or rel.endswith("/pod.json")
    )


def read_bundle(path: Path) -> list[PodEvidence]:
    """Every pod in a bundle directory or archive, with its events and logs.

    Raises `BundleError` only when nothing can be read; anything less is in the evidence's
    `problems`, naming the file."""
    files = _load(path)
    dirs = _pod_dirs(files)
    if not dirs:
        names = ", ".join(sorted(files.data)[:5]) or "nothing"
        raise BundleError(
            f"{path}: no pod.json in it (it holds {names})",
            hint="a bundle has pod.json, events.json and logs/ at its root or under "
            "<namespace>/<pod>/ (what `doctor k8s collect` writes)",
        )
    evidences: list[PodEvidence] = []
    by_dir: list[tuple[str, PodEvidence]] = []
    unreadable: list[str] = []
    logs = _log_index(files)
    for prefix in dirs:
        found = _read_pod_dir(files, prefix, str(path), len(dirs), logs.get(prefix, []))
        if not found:
            unreadable.append(f"{prefix}pod.json")
        evidences.extend(found)
        by_dir.extend((prefix, ev) for ev in found)
    if not evidences:
        raise BundleError(
            f"{path}: {', '.join(unreadable)} cannot be read: "
            + "; ".join(p.removeprefix("bundle ") for p in files.problems[:3]),
            hint="pod.json must be `kubectl get pod POD -o json` output; collect it again",
        )
    # A problem goes with the pods of the directory it names; one about the bundle as a whole
    # (an archive cut short, a pod.json left out) goes with every pod: each report must say
    # what its diagnosis could not see.
    for problem in files.problems[:MAX_PROBLEMS]:
        rel = problem.removeprefix("bundle ").split(":", 1)[0]
        owner = max((d for d in dirs if d and rel.startswith(d)), key=len, default="")
        if owner in _unreadable_dirs(unreadable):
            owner = ""
        for prefix, ev in by_dir:
            if (owner == "" or prefix == owner) and problem not in ev.problems:
                ev.problems.append(problem)
    return evidences


def _unreadable_dirs(unreadable: list[str]) -> set[str]:
    return {u[: -len("pod.json")] for u in unreadable}


def _read_pod_dir(
    files: _Files, prefix: str, where: str, n_dirs: int, log_files: list[tuple[str, bytes]]
) -> list[PodEvidence]:
    rel = f"{prefix}pod.json"
    doc, _complete = _json(files, rel)
    if not isinstance(doc, dict):
        if doc is not None:
            files.problems.append(f"bundle {rel}: not a Pod object; left out")
        return []
    events = _events(files, f"{prefix}events.json")
    node_events = _events(files, f"{prefix}node-events.json")
    owners = _strings(files, f"{prefix}owners.json")
    collected = _strings(files, f"{prefix}problems.json")
    previous, current = _logs(log_files)
    source = f"bundle {where}" + (f" ({prefix.rstrip('/')})" if prefix and n_dirs > 1 else "")
    if doc.get("kind") in ("PodList", "List") or isinstance(doc.get("items"), list):
        pods = [
            p
            for p in _items(doc, rel, files, ("PodList", "List", "Pod"))
            if p.get("kind", "Pod") == "Pod"
        ]
        out = []
        for pod in pods:
            ev = _evidence(pod, events, node_events, source)
            if len(pods) == 1:
                ev.owners, ev.previous_logs, ev.current_logs = owners, previous, current
            ev.problems.extend(collected)
            out.append(ev)
        return out
    if not isinstance(doc.get("metadata"), dict):
        files.problems.append(f"bundle {rel}: a Pod without metadata; read what is there")
    return [
        PodEvidence(
            pod=doc,
            events=events,
            node_events=node_events,
            owners=owners,
            previous_logs=previous,
            current_logs=current,
            problems=list(collected),
            source=source,
        )
    ]


def _evidence(
    pod: dict[str, Any],
    events: list[dict[str, Any]],
    node_events: list[dict[str, Any]],
    source: str,
) -> PodEvidence:
    """One pod of a list, with the events (and node events) that name it."""
    meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    name, ns = (meta or {}).get("name"), (meta or {}).get("namespace") or "default"
    node = (pod.get("spec") or {}).get("nodeName") if isinstance(pod.get("spec"), dict) else None
    mine: list[dict[str, Any]] = []
    on_node: list[dict[str, Any]] = list(node_events)
    for e in events:
        involved = e.get("involvedObject")
        obj: dict[str, Any] = involved if isinstance(involved, dict) else {}
        kind = obj.get("kind")
        if kind == "Pod" and obj.get("name") == name and (obj.get("namespace") or ns) == ns:
            mine.append(e)
        elif kind == "Node" and node and obj.get("name") == node:
            on_node.append(e)
    return PodEvidence(pod=pod, events=mine, node_events=on_node, source=f"{source} {name}")


# --- writing --------------------------------------------------------------------------------


def _safe(part: str) -> str:
    """A namespace, pod or container name as one path component."""
    cleaned = part.replace("/", "_").replace("\\", "_").strip(".")
    return cleaned or "_"


def bundle_members(evidences: list[PodEvidence]) -> list[tuple[str, bytes]]:
    """The files of a bundle, as (relative path, content), in the order they are written."""
    members: list[tuple[str, bytes]] = []
    several = len(evidences) > 1
    for ev in evidences:
        prefix = f"{_safe(ev.namespace)}/{_safe(ev.name or 'pod')}/" if several else ""
        files: list[tuple[str, Any]] = [
            ("pod.json", ev.pod),
            ("events.json", {"apiVersion": "v1", "kind": "EventList", "items": ev.events}),
        ]
        if ev.node_events:
            files.append(
                (
                    "node-events.json",
                    {"apiVersion": "v1", "kind": "EventList", "items": ev.node_events},
                )
            )
        if ev.owners:
            files.append(("owners.json", ev.owners))
        if ev.problems:
            files.append(("problems.json", ev.problems))
        for rel, doc in files:
            text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
            members.append((prefix + rel, text.encode("utf-8")))
        for logs, suffix in ((ev.previous_logs, ".previous.txt"), (ev.current_logs, ".txt")):
            for name in sorted(logs):
                stem = UNNAMED_FILE if name == UNNAMED else _safe(name)
                members.append((f"{prefix}logs/{stem}{suffix}", logs[name].encode("utf-8")))
    return members


def write_bundle(evidences: list[PodEvidence], path: Path) -> None:
    """Write evidences in the bundle layout: a .tar.gz (or .tgz) when the path says so, else
    a directory. Same evidences, same bytes: members in a fixed order, mode 0644, no times
    or owners from this machine."""
    members = bundle_members(evidences)
    name = path.name.lower()
    try:
        if name.endswith((".tar.gz", ".tgz")):
            _write_tar(members, path)
        else:
            _write_dir(members, path)
    except OSError as e:
        raise BundleError(
            f"{path}: cannot write the bundle ({e.strerror or e})",
            hint="choose a path in a directory you can write to",
        ) from None


def _write_tar(members: list[tuple[str, bytes]], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as raw:
        with (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            dirs: set[str] = set()
            for rel, data in members:
                parts = rel.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d not in dirs:
                        dirs.add(d)
                        tar.addfile(_info(d + "/", 0, tarfile.DIRTYPE, 0o755))
                tar.addfile(_info(rel, len(data), tarfile.REGTYPE, 0o644), io.BytesIO(data))
        raw.flush()
        os.fsync(raw.fileno())
    tmp.chmod(0o644)
    tmp.replace(path)


def _info(name: str, size: int, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _write_dir(members: list[tuple[str, bytes]], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in members:
        target = root.joinpath(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        target.chmod(0o644)
