"""Bundles: written by `doctor k8s collect`, read by `doctor k8s --bundle`, as files on disk.

Real directories and real tarballs in a temporary directory; the archives that are damaged are
damaged the way files get damaged (cut short, wrong type, random bytes), never by mocking.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import stat
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infraveil.k8s import bundle
from infraveil.k8s.bundle import BundleError, event_v1, read_bundle, write_bundle
from infraveil.k8s.evidence import UNNAMED, PodEvidence

FIXTURES = Path(__file__).parent / "fixtures" / "bundles"


def pod(
    name: str = "api-7c9d8b6f4d-x7k2p", ns: str = "shop", node: str = "node-1"
) -> dict[str, Any]:
    """A v1 Pod as `kubectl get pod -o json` prints it (the fields the doctor reads)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "api-7c9d8b6f4d", "controller": True}
            ],
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "api",
                    "image": "shop/api:1.4",
                    "resources": {"limits": {"memory": "128Mi"}},
                }
            ],
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "api",
                    "ready": False,
                    "restartCount": 7,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {
                        "terminated": {
                            "reason": "OOMKilled",
                            "exitCode": 137,
                            "startedAt": "2026-11-21T08:00:00Z",
                            "finishedAt": "2026-11-21T08:00:09Z",
                        }
                    },
                }
            ],
        },
    }


def event(
    reason: str, message: str, name: str = "api-7c9d8b6f4d-x7k2p", **extra: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "involvedObject": {"kind": "Pod", "name": name, "namespace": "shop"},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "count": 4,
        **extra,
    }


def evidence(name: str = "api-7c9d8b6f4d-x7k2p", ns: str = "shop") -> PodEvidence:
    return PodEvidence(
        pod=pod(name, ns),
        events=[event("BackOff", "Back-off restarting failed container api", name)],
        node_events=[
            {
                "apiVersion": "v1",
                "kind": "Event",
                "involvedObject": {"kind": "Node", "name": "node-1"},
                "reason": "SystemOOM",
                "message": "System OOM encountered, victim process: api",
                "type": "Warning",
            }
        ],
        owners=["ReplicaSet/api-7c9d8b6f4d", "Deployment/api"],
        previous_logs={"api": "starting\nkilled\n", UNNAMED: "pasted"},
        current_logs={"api": "starting again\n"},
        problems=["events: forbidden (needs `list events` in namespace shop)"],
        source="cluster kind-dev",
    )


def same(a: PodEvidence, b: PodEvidence) -> None:
    assert a.pod == b.pod
    assert a.events == b.events
    assert a.node_events == b.node_events
    assert a.owners == b.owners
    assert a.previous_logs == b.previous_logs
    assert a.current_logs == b.current_logs
    assert a.problems == b.problems


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["api.tar.gz", "api.tgz", "api-bundle"])
def test_what_is_written_reads_back_the_same(tmp_path: Path, name: str) -> None:
    original = evidence()
    write_bundle([original], tmp_path / name)
    (back,) = read_bundle(tmp_path / name)
    same(back, original)
    assert back.source == f"bundle {tmp_path / name}"


def test_a_directory_has_the_documented_layout_with_files_0644(tmp_path: Path) -> None:
    write_bundle([evidence()], tmp_path / "b")
    files = sorted(
        p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert files == [
        "events.json",
        "logs/-.previous.txt",
        "logs/api.previous.txt",
        "logs/api.txt",
        "node-events.json",
        "owners.json",
        "pod.json",
        "problems.json",
    ]
    for f in files:
        assert stat.S_IMODE((tmp_path / "b" / f).stat().st_mode) == 0o644
    events = json.loads((tmp_path / "b" / "events.json").read_text())
    assert events["kind"] == "EventList" and len(events["items"]) == 1


def test_a_tarball_is_deterministic_in_order_modes_and_bytes(tmp_path: Path) -> None:
    write_bundle([evidence(), evidence("web-1", "front")], tmp_path / "a.tar.gz")
    time.sleep(0)  # nothing below depends on the clock: mtime is fixed at 0
    write_bundle([evidence(), evidence("web-1", "front")], tmp_path / "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert stat.S_IMODE((tmp_path / "a.tar.gz").stat().st_mode) == 0o644
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        files = [(m.name, m.mode, m.mtime, m.uid) for m in tar.getmembers() if m.isfile()]
    assert [f[0] for f in files] == [
        "shop/api-7c9d8b6f4d-x7k2p/pod.json",
        "shop/api-7c9d8b6f4d-x7k2p/events.json",
        "shop/api-7c9d8b6f4d-x7k2p/node-events.json",
        "shop/api-7c9d8b6f4d-x7k2p/owners.json",
        "shop/api-7c9d8b6f4d-x7k2p/problems.json",
        "shop/api-7c9d8b6f4d-x7k2p/logs/-.previous.txt",
        "shop/api-7c9d8b6f4d-x7k2p/logs/api.previous.txt",
        "shop/api-7c9d8b6f4d-x7k2p/logs/api.txt",
        "front/web-1/pod.json",
        "front/web-1/events.json",
        "front/web-1/node-events.json",
        "front/web-1/owners.json",
        "front/web-1/problems.json",
        "front/web-1/logs/-.previous.txt",
        "front/web-1/logs/api.previous.txt",
        "front/web-1/logs/api.txt",
    ]
    assert {(f[1], f[2], f[3]) for f in files} == {(0o644, 0, 0)}


def test_several_pods_each_in_namespace_slash_pod(tmp_path: Path) -> None:
    one, two = evidence(), evidence("web-1", "front")
    write_bundle([one, two], tmp_path / "b")
    back = {e.name: e for e in read_bundle(tmp_path / "b")}
    same(back["api-7c9d8b6f4d-x7k2p"], one)
    same(back["web-1"], two)
    assert back["web-1"].source == f"bundle {tmp_path / 'b'} (front/web-1)"


def test_an_archive_made_by_hand_under_a_top_directory(tmp_path: Path) -> None:
    """`tar czf b.tgz bundle/` puts everything under bundle/: the pod directory is found."""
    write_bundle([evidence()], tmp_path / "bundle")
    with tarfile.open(tmp_path / "b.tgz", "w:gz") as tar:
        tar.add(tmp_path / "bundle", arcname="./bundle")
    (back,) = read_bundle(tmp_path / "b.tgz")
    same(back, evidence())


def test_a_plain_tar_is_read_too(tmp_path: Path) -> None:
    write_bundle([evidence()], tmp_path / "bundle")
    with tarfile.open(tmp_path / "b.tar", "w") as tar:
        tar.add(tmp_path / "bundle", arcname=".")
    (back,) = read_bundle(tmp_path / "b.tar")
    assert back.previous_logs["api"] == "starting\nkilled\n"


# --- what kubectl prints --------------------------------------------------------------------------


def test_a_pod_list_with_all_events_at_the_root(tmp_path: Path) -> None:
    """`kubectl get pods -o json` and `kubectl get events -o json` saved side by side."""
    (tmp_path / "pod.json").write_text(
        json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": [pod("a"), pod("b", node="node-2")]}
        )
    )
    node_event = {
        "involvedObject": {"kind": "Node", "name": "node-2"},
        "reason": "EvictionThresholdMet",
        "message": "Attempting to reclaim memory",
    }
    other_ns = event("BackOff", "elsewhere", "a")
    other_ns["involvedObject"]["namespace"] = "other"
    (tmp_path / "events.json").write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "EventList",
                "items": [
                    event("BackOff", "for a", "a"),
                    event("Failed", "for b", "b"),
                    node_event,
                    other_ns,
                ],
            }
        )
    )
    a, b = read_bundle(tmp_path)
    assert [e["message"] for e in a.events] == ["for a"]
    assert [e["message"] for e in b.events] == ["for b"]
    assert a.node_events == [] and b.node_events == [node_event]
    assert a.source.endswith(" a") and b.source.endswith(" b")


def test_events_as_a_plain_json_array(tmp_path: Path) -> None:
    (tmp_path / "pod.json").write_text(json.dumps(pod()))
    (tmp_path / "events.json").write_text(json.dumps([event("BackOff", "x")]))
    (ev,) = read_bundle(tmp_path)
    assert [e["reason"] for e in ev.events] == ["BackOff"]


def test_events_k8s_io_v1_events_in_the_core_shape() -> None:
    new = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "api.17a", "namespace": "shop"},
        "regarding": {
            "kind": "Pod",
            "name": "api",
            "namespace": "shop",
            "fieldPath": "spec.containers{api}",
        },
        "note": "Liveness probe failed: HTTP probe failed with statuscode: 500",
        "reason": "Unhealthy",
        "type": "Warning",
        "eventTime": "2026-11-21T08:00:00.000000Z",
        "series": {"count": 12, "lastObservedTime": "2026-11-21T08:05:00.000000Z"},
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
        "deprecatedCount": 3,
    }
    v1 = event_v1(new)
    assert v1["message"] == new["note"]
    assert v1["involvedObject"]["fieldPath"] == "spec.containers{api}"
    assert v1["count"] == 12  # the series is the newer count
    assert v1["lastTimestamp"] == "2026-11-21T08:05:00.000000Z"
    assert v1["source"] == {"component": "kubelet", "host": "node-1"}
    only_deprecated = {k: v for k, v in new.items() if k != "series"}
    assert event_v1(only_deprecated)["count"] == 3
    old = event("BackOff", "x")
    assert event_v1(old) is old


# --- damaged bundles ------------------------------------------------------------------------------


def test_real_files_cut_short_are_read_as_far_as_they_go() -> None:
    (ev,) = read_bundle(FIXTURES / "truncated-real")
    assert ev.name == "memtest" and ev.namespace == "default"
    assert ev.pod["metadata"]["uid"] == "c480d1ba-bec2-11e5-ad45-062d2421a4bd"
    (scheduled,) = ev.events
    assert scheduled["message"] == "Successfully assigned mongo-jpjov-a0cai to 10.172.6.191"
    assert scheduled["firstTimestamp"] == "2015-04-27T04:03:13Z"
    assert ev.problems == [
        "bundle pod.json: cut short or broken at line 10 column 1 (Expecting value); "
        "read what comes before it",
        "bundle events.json: cut short or broken at line 34 column 1 (Expecting value); "
        "read what comes before it",
    ]


def test_a_pod_cut_inside_its_status_keeps_its_spec(tmp_path: Path) -> None:
    text = json.dumps(pod(), indent=2)
    cut = text.index('"restartCount"')
    (tmp_path / "pod.json").write_text(text[:cut])
    (ev,) = read_bundle(tmp_path)
    assert ev.pod["spec"] == pod()["spec"]
    assert ev.pod["metadata"] == pod()["metadata"]
    assert ev.pod["status"]["containerStatuses"] == [{"name": "api", "ready": False}]
    assert ev.problems[0].startswith("bundle pod.json: cut short or broken at line")


def test_events_that_are_not_json_are_named_and_the_pod_is_still_read(tmp_path: Path) -> None:
    (tmp_path / "pod.json").write_text(json.dumps(pod()))
    (tmp_path / "events.json").write_text("LAST SEEN   TYPE   REASON\n5m  Warning  BackOff\n")
    (tmp_path / "owners.json").write_text('{"kind": "ReplicaSet"}')
    (ev,) = read_bundle(tmp_path)
    assert ev.name == "api-7c9d8b6f4d-x7k2p" and ev.events == []
    assert ev.problems == [
        "bundle events.json: not JSON (line 1 column 1: Expecting value); left out",
        "bundle owners.json: not a JSON list of strings; left out",
    ]


def test_a_pod_json_that_cannot_be_read_at_all_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pod.json").write_text("apiVersion: v1\nkind: Pod\n")  # YAML, not JSON
    with pytest.raises(BundleError) as e:
        read_bundle(tmp_path)
    assert "pod.json cannot be read" in e.value.message
    assert "not JSON" in e.value.message
    assert "kubectl get pod POD -o json" in e.value.hint


def test_one_bad_pod_among_several_is_left_out_and_said(tmp_path: Path) -> None:
    write_bundle([evidence(), evidence("web-1", "front")], tmp_path / "b")
    (tmp_path / "b" / "front" / "web-1" / "pod.json").write_bytes(b"\xff\xfe garbage")
    (ev,) = read_bundle(tmp_path / "b")
    assert ev.name == "api-7c9d8b6f4d-x7k2p"
    assert "bundle front/web-1/pod.json: not UTF-8 text (byte 0); left out" in ev.problems


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p / "missing.tar.gz", "No such file or directory"),
        (lambda p: (p / "notes.txt").write_text("hello") and p / "notes.txt", "neither gzip"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no pod.json in it"),
    ],
    ids=["missing", "not-an-archive", "no-pod"],
)
def test_what_is_not_a_bundle_says_what_to_give(tmp_path: Path, make: Any, words: str) -> None:
    with pytest.raises(BundleError) as e:
        read_bundle(make(tmp_path))
    assert words in e.value.message
    assert "doctor k8s collect" in e.value.hint
    assert e.value.code == "bundle_invalid"


def test_an_archive_cut_short_keeps_the_members_before_the_cut(tmp_path: Path) -> None:
    big = evidence()
    big.current_logs = {"api": os.urandom(300_000).hex()}  # incompressible, after pod.json
    write_bundle([big], tmp_path / "b.tar.gz")
    data = (tmp_path / "b.tar.gz").read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    (ev,) = read_bundle(tmp_path / "cut.tar.gz")
    assert ev.pod == big.pod
    assert ev.previous_logs["api"] == "starting\nkilled\n"
    assert any(p.startswith("bundle cut.tar.gz: the archive ends early") for p in ev.problems)


def test_links_devices_and_paths_outside_are_ignored(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = json.dumps(pod()).encode()
        info = tarfile.TarInfo("pod.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("events.json")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        dev = tarfile.TarInfo("logs/api.previous.txt")
        dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
        tar.addfile(dev)
        evil = tarfile.TarInfo("../../owners.json")
        evil.size = 2
        tar.addfile(evil, io.BytesIO(b"[]"))
    (tmp_path / "b.tgz").write_bytes(buf.getvalue())
    (ev,) = read_bundle(tmp_path / "b.tgz")
    assert ev.events == [] and ev.previous_logs == {} and ev.owners == []
    assert ev.problems == ["bundle ../../owners.json: a path outside the bundle; ignored"]
    assert not (tmp_path.parent.parent / "owners.json").exists()


def test_a_symlink_in_a_directory_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "pod.json").write_text(json.dumps(pod()))
    (tmp_path / "secret.json").write_text(json.dumps([event("X", "secret")]))
    (tmp_path / "events.json").symlink_to(tmp_path / "secret.json")
    (ev,) = read_bundle(tmp_path)
    assert ev.events == []


def test_sizes_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "MAX_MEMBER", 4096)
    (tmp_path / "pod.json").write_text(json.dumps(pod()))
    (tmp_path / "events.json").write_text(json.dumps([event("BackOff", "x" * 5000)]))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "api.previous.txt").write_text("early line\n" * 1000 + "the crash\n")
    (ev,) = read_bundle(tmp_path)
    assert ev.events == []
    assert ev.previous_logs["api"].endswith("the crash\n")
    assert len(ev.previous_logs["api"]) == 4096
    assert "bundle events.json: 0 MB, over the 0 MB a JSON file may have; left out" in ev.problems
    monkeypatch.setattr(bundle, "MAX_TOTAL", 4500)
    with pytest.raises(BundleError) as e:
        read_bundle(tmp_path)
    assert "this is not a bundle of a few pods" in e.value.message


def test_a_gzip_bomb_stops_at_the_unpacked_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle, "MAX_UNPACKED", 1024 * 1024)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = json.dumps(pod()).encode()
        info = tarfile.TarInfo("pod.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        zeros = tarfile.TarInfo("logs/api.txt")
        zeros.size = 4 * 1024 * 1024
        tar.addfile(zeros, io.BytesIO(bytes(zeros.size)))
    (tmp_path / "bomb.tar.gz").write_bytes(buf.getvalue())
    assert (tmp_path / "bomb.tar.gz").stat().st_size < 64 * 1024
    with pytest.raises(BundleError) as e:
        read_bundle(tmp_path / "bomb.tar.gz")
    assert "(uncompressed): over" in e.value.message


def test_write_to_a_place_that_cannot_be_written_says_so(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(BundleError) as e:
        write_bundle([evidence()], tmp_path / "file" / "b.tar.gz")
    assert "cannot write the bundle" in e.value.message


# --- fuzz: nothing but BundleError, and never a hang --------------------------------------------


def _read_bytes(data: bytes, suffix: str) -> list[PodEvidence] | None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"b{suffix}"
        path.write_bytes(data)
        try:
            return read_bundle(path)
        except BundleError:
            return None


@settings(max_examples=80, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.sampled_from([".tar.gz", ".tar", ".tgz"]))
def test_random_bytes_are_a_bundle_error(data: bytes, suffix: str) -> None:
    _read_bytes(data, suffix)


def _tarball() -> bytes:
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as d:
        write_bundle([evidence()], Path(d) / "b.tar.gz")
        buf.write((Path(d) / "b.tar.gz").read_bytes())
    return buf.getvalue()


TARBALL = _tarball()
RAW_TAR = gzip.decompress(TARBALL)


@settings(max_examples=80, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(TARBALL)), st.binary(max_size=64), st.booleans())
def test_a_damaged_real_archive_never_raises_anything_else(
    cut: int, junk: bytes, raw: bool
) -> None:
    base = RAW_TAR if raw else TARBALL
    at = cut % (len(base) + 1)
    _read_bytes(base[:at] + junk + base[at + len(junk) :], ".tar" if raw else ".tar.gz")


@settings(max_examples=80, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["pod.json", "events.json", "node-events.json", "owners.json"]),
    st.data(),
)
def test_truncated_or_mangled_json_files_never_raise_anything_else(
    name: str, data: st.DataObject
) -> None:
    good = {
        "pod.json": json.dumps(pod(), indent=1),
        "events.json": json.dumps({"kind": "EventList", "items": [event("BackOff", "x")] * 3}),
        "node-events.json": json.dumps([{"involvedObject": 3}, "x", None]),
        "owners.json": json.dumps(["ReplicaSet/a", 3, None]),
    }
    text = good[name]
    cut = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.text(max_size=8))
    good[name] = text[:cut] + junk
    with tempfile.TemporaryDirectory() as d:
        for fname, content in good.items():
            (Path(d) / fname).write_text(content)
        try:
            evs = read_bundle(Path(d))
        except BundleError:
            assert name == "pod.json"
            return
        assert all(isinstance(e.pod, dict) for e in evs)


@settings(max_examples=40, deadline=2000)
@given(
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=5), c),
        max_leaves=20,
    )
)
def test_any_json_in_any_file_never_raises_anything_else(doc: Any) -> None:
    with tempfile.TemporaryDirectory() as d:
        for fname in ("pod.json", "events.json", "owners.json", "problems.json"):
            (Path(d) / fname).write_text(json.dumps(doc))
        try:
            read_bundle(Path(d))
        except BundleError:
            pass


# --- speed ----------------------------------------------------------------------------------------


def test_reading_a_bundle_takes_a_few_milliseconds(tmp_path: Path) -> None:
    ev = evidence()
    ev.events = [copy.deepcopy(ev.events[0]) for _ in range(200)]
    ev.previous_logs = {"api": "line of log output\n" * 5000}
    write_bundle([ev], tmp_path / "b.tar.gz")
    write_bundle([ev], tmp_path / "d")
    for path in (tmp_path / "b.tar.gz", tmp_path / "d"):
        read_bundle(path)
        start = time.perf_counter()
        for _ in range(5):
            read_bundle(path)
        assert (time.perf_counter() - start) / 5 < 0.02, path
