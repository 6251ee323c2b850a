"""The deploy gate end to end: the real CLI against a real agent, real release processes and
real archives.

Each payload is a directory (or a tar.gz made from one) with `serve.sh`, which execs the
release's `app.py` (`programs/release_app.py`), a `VERSION` file and a `behaviour` file that
says what this release does: serve, crash on boot, hang, crash later, or need a file.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import random
import shutil
import signal
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Infraveil, alive
from test_e2e_health import free_port, reasons

from waiting import wait_for

pytestmark = pytest.mark.e2e

APP = Path(__file__).parent / "programs" / "release_app.py"
SERVE = '#!/bin/sh\nexec "$PYTHON" app.py\n'


# ── payloads ────────────────────────────────────────────────────────────────────────────────


def payload_dir(where: Path, version: str, behaviour: str = "good") -> Path:
    """A release directory: serve.sh, app.py, VERSION and behaviour."""
    where.mkdir(parents=True)
    serve = where / "serve.sh"
    serve.write_text(SERVE)
    serve.chmod(0o755)
    shutil.copy(APP, where / "app.py")
    (where / "VERSION").write_text(version + "\n")
    (where / "behaviour").write_text(behaviour + "\n")
    return where


def archive(source: Path, target: Path) -> Path:
    """A tar.gz of `source`'s content, with paths relative to its root."""
    with tarfile.open(target, "w:gz") as tf:
        for path in sorted(source.iterdir()):
            tf.add(path, arcname=path.name)
    return target


def api_service(port: int, **overrides: object) -> dict[str, object]:
    """The payload service `api`, quick to soak and to watch unless told otherwise."""
    return {
        "command": "./serve.sh",
        "payload": True,
        "port": port,
        "env": {"PORT": str(port), "PYTHON": sys.executable},
        "soak": "1s",
        "watch": "3s",
        "stop_timeout": "2s",
        **overrides,
    }


# ── what a person sees ──────────────────────────────────────────────────────────────────────


def answer(port: int) -> str | None:
    """What GET / on the port answers (the serving release's version), None if nothing does."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    except OSError:
        return None
    finally:
        conn.close()


def wait_serving(port: int, version: str, timeout: float = 20) -> None:
    wait_for(
        lambda: answer(port) == version,
        timeout,
        lambda: f"port {port} to answer {version} (it answers {answer(port)!r})",
    )


def deploy_json(infraveil: Infraveil, *args: str) -> tuple[int, dict[str, Any]]:
    """`deploy -o json`: its exit code, and the verdict with its steps."""
    result = infraveil.run("deploy", *args, "-o", "json")
    assert result.stdout, infraveil.explain(("deploy", *args), result)
    return result.returncode, json.loads(result.stdout)


def releases(infraveil: Infraveil, name: str = "api") -> dict[str, Any]:
    data = infraveil.json("releases", name)
    assert data["schema"] == "infraveil/v1/releases"
    return data  # type: ignore[no-any-return]


def release(data: dict[str, Any], version: str) -> dict[str, Any]:
    return next(r for r in data["releases"] if r["version"] == version)  # type: ignore[no-any-return]


def wait_outcome(infraveil: Infraveil, version: str, outcome: str, timeout: float = 20) -> None:
    """Poll the releases (over the API) until `version`'s outcome is `outcome`."""
    last: dict[str, Any] = {}

    def reached() -> bool:
        nonlocal last
        last = infraveil.api("/v1/services/api/releases")
        return any(r["version"] == version and r["outcome"] == outcome for r in last["releases"])

    wait_for(reached, timeout, lambda: f"{version} to be {outcome}; releases: {last}")


def pid_of(infraveil: Infraveil, name: str = "api") -> int:
    row = infraveil.wait_for_service(
        name, lambda r: r["state"] == "running" and r["ready"], 20, "to run and be ready"
    )
    return int(row["pid"])


def cwd_of(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/cwd")


def trees(infraveil: Infraveil) -> list[str]:
    root = infraveil.state_dir / "releases" / "trees"
    return sorted(os.listdir(root)) if root.is_dir() else []


def tree_of(infraveil: Infraveil, version: str) -> str:
    """Where `version` of api is extracted: the working directory of its processes."""
    sha = release(releases(infraveil), version)["sha256"]
    return str(infraveil.state_dir / "releases" / "trees" / sha)


def first_release(infraveil: Infraveil, tmp_path: Path, **overrides: object) -> int:
    """`up` with the payload service api, and v1 (good) deployed; its port.

    Its watch is 1 s unless told otherwise: most tests wait for v1 to be known-good first.
    """
    port = free_port()
    infraveil.up({"api": api_service(port, **{"watch": "1s", **overrides})})
    v1 = payload_dir(tmp_path / "v1", "v1")
    result = infraveil.run("deploy", "api", "--payload", str(v1))
    assert result.returncode == 0, infraveil.explain(("deploy",), result)
    wait_serving(port, "v1")
    return port


# ── tests ───────────────────────────────────────────────────────────────────────────────────


def test_a_payload_service_waits_for_its_first_deploy_then_goes_live(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = free_port()
    infraveil.up({"api": api_service(port)})
    row = infraveil.service("api")
    assert (row["state"], row["pid"], row["release"]) == ("stopped", None, None), row
    assert row["reason"] == "waiting for its first deploy", row
    assert "Reason:       waiting for its first deploy" in infraveil.ok("describe", "api").stdout
    started = infraveil.run("start", "api")
    assert started.returncode == 6, infraveil.explain(("start", "api"), started)
    assert "infraveil deploy api --payload" in started.stderr
    waiting = infraveil.ok("releases", "api").stdout
    assert "api waits for its first deploy: infraveil deploy api --payload FILE|DIR" in waiting

    v1 = payload_dir(tmp_path / "v1", "v1")
    result = infraveil.run("deploy", "api", "--payload", str(v1))
    assert result.returncode == 0, infraveil.explain(("deploy",), result)
    lines = result.stdout.splitlines()
    assert lines[0] == "deploying v1 to api"
    steps = [line.split()[0] for line in lines[1:-1]]
    assert steps == ["verify", "preflight", "start", "healthy", "soak", "promote"], lines
    for line in lines[1:-1]:
        assert line.split()[1].endswith("s") and float(line.split()[1][:-1]) >= 0, line
    assert lines[-1].startswith("v1 is live"), lines
    row = infraveil.api_service("api")
    assert (row["release"], row["deploying"]) == ("v1", "watching"), row
    wait_serving(port, "v1")
    pid = pid_of(infraveil)
    tree = cwd_of(pid)
    assert tree.startswith(str(infraveil.state_dir / "releases" / "trees") + "/"), tree
    assert os.path.exists(os.path.join(tree, "app.py"))

    wait_outcome(infraveil, "v1", "good")
    data = releases(infraveil)
    assert (data["current"], data["known_good"]) == ("v1", "v1")
    assert release(data, "v1")["sha256"] == os.path.basename(tree)
    row = infraveil.wait_for_service("api", lambda r: not r["deploying"], 20, "to end its deploy")
    assert (row["release"], row["pid"]) == ("v1", pid), row
    assert "Release:      v1\n" in infraveil.ok("describe", "api").stdout
    names = reasons(infraveil.events("api"))
    assert in_order(names, "DeployRequested", "Promoted", "DeployLive", "Watched"), names


def in_order(names: list[str], *expected: str) -> bool:
    """`expected` appear in `names` in this order (not necessarily next to each other)."""
    rest = iter(names)
    return all(name in rest for name in expected)


def test_a_release_that_crashes_on_boot_fails_the_gate_and_the_known_good_serves_again(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = first_release(infraveil, tmp_path)
    wait_outcome(infraveil, "v1", "good")
    before = infraveil.service("api")
    crash = archive(payload_dir(tmp_path / "v2", "v2", "crash"), tmp_path / "crash.tar.gz")

    code, verdict = deploy_json(infraveil, "api", "--payload", str(crash))
    assert code == 1, verdict
    sentence = verdict["sentence"]
    assert sentence.startswith("v2 failed the gate: exited with code 1"), sentence
    assert "`KeyError: 'DATABASE_URL'`" in sentence
    assert "(see `infraveil why api`)" in sentence
    assert sentence.endswith("v1 is serving again."), sentence
    assert verdict["outcome"] == "rolled_back" and verdict["live"] is False
    steps = [s["step"] for s in verdict["steps"]]
    assert in_order(steps, "verify", "preflight", "start", "failed", "rollback", "rolled back")

    wait_serving(port, "v1")
    after = infraveil.service("api")
    assert after["pid"] != before["pid"] and after["instance"] > before["instance"], after
    assert cwd_of(after["pid"]) == tree_of(infraveil, "v1")
    assert (after["release"], after["deploying"], after["ready"]) == ("v1", None, True), after

    data = releases(infraveil)
    assert (data["current"], data["known_good"], data["deploy"]) == ("v1", "v1", None)
    v2 = release(data, "v2")
    assert (v2["outcome"], v2["message"]) == ("failed", sentence)
    assert v2["diagnosis"]["category"] == "missing_env"
    assert release(data, "v1")["outcome"] == "good"
    table = infraveil.ok("releases", "api").stdout
    assert f"  {sentence}" in table

    why = infraveil.json("why", "api", "--instance", str(verdict["failure"]["instance"]))
    assert why["category"] == "missing_env"
    assert "DATABASE_URL" in why["summary"]
    names = reasons(infraveil.events("api"))
    assert in_order(names, "DeployRequested", "GateFailed", "RollingBack", "RolledBack"), names
    assert in_order(names, "RolledBack", "DeployFailed"), names


def test_a_release_that_never_becomes_ready_fails_at_its_startup_deadline(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = first_release(infraveil, tmp_path, startup_deadline="2s")
    wait_outcome(infraveil, "v1", "good")
    hang = payload_dir(tmp_path / "v2", "v2", "hang")

    result = infraveil.run("deploy", "api", "--payload", str(hang))
    assert result.returncode == 1, infraveil.explain(("deploy",), result)
    lines = result.stdout.splitlines()
    start = next(line for line in lines if line.split()[0] == "start")
    assert start.endswith("; ready within 2.0s"), start
    failed = next(line for line in lines if line.split()[0] == "failed")
    assert float(failed.split()[1][:-1]) >= 2.0, failed
    sentence = lines[-1]
    assert sentence.startswith(
        "v2 failed the gate: did not become ready within its startup deadline of 2.0s"
    ), sentence
    assert sentence.endswith("rolled back: v1 is serving again."), sentence

    wait_serving(port, "v1")
    data = releases(infraveil)
    assert (data["current"], data["known_good"]) == ("v1", "v1")
    assert release(data, "v2")["outcome"] == "failed"


def test_a_release_that_crashes_during_its_watch_is_rolled_back_after_it_went_live(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = first_release(infraveil, tmp_path)
    wait_outcome(infraveil, "v1", "good")
    infraveil.write_manifest({"api": api_service(port, soak="2s", watch="60s")})
    v2 = payload_dir(tmp_path / "v2", "v2", "crash-after 20")

    result = infraveil.run("deploy", "api", "--payload", str(v2))
    assert result.returncode == 0, infraveil.explain(("deploy",), result)
    assert result.stdout.splitlines()[-1] == (
        "v2 is live; a crash in the next 1m00s still rolls it back to v1."
    )
    assert answer(port) == "v2"
    assert releases(infraveil)["current"] == "v2"

    wait_outcome(infraveil, "v2", "failed", timeout=40)
    wait_serving(port, "v1")
    data = releases(infraveil)
    assert (data["current"], data["known_good"], data["deploy"]) == ("v1", "v1", None)
    message = release(data, "v2")["message"]
    assert message.startswith("v2 failed its watch: exited with code 1"), message
    assert message.endswith("rolled back: v1 is serving again."), message
    events = infraveil.events("api")
    names = reasons(events)
    assert in_order(names, "DeployLive", "GateFailed", "RollingBack", "RolledBack", "DeployFailed")
    failed = [e for e in events if e["reason"] == "DeployFailed"]
    assert len(failed) == 1 and "v2 failed its watch" in failed[0]["message"], failed


def corrupt_archives(tmp_path: Path) -> list[tuple[str, Path, list[str], str]]:
    """(what, the payload, extra deploy options, what the rejection says) of bad payloads."""
    cases: list[tuple[str, Path, list[str], str]] = []
    tmp_path.mkdir()

    text = tmp_path / "x.tar.gz"
    text.write_text("this is not an archive\n")
    cases.append(("not an archive", text, [], f"{text} is not a tar or zip archive"))

    # random bytes do not compress: ~600 KB of archive, of which half is cut away
    big = payload_dir(tmp_path / "big", "v9")
    noise = random.Random(42)
    for i in range(10):
        (big / f"blob{i}.bin").write_bytes(noise.randbytes(60_000))
    whole = archive(big, tmp_path / "big.tar.gz")
    data = whole.read_bytes()
    assert len(data) > 500_000
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    cases.append(("truncated", truncated, [], f"{truncated} is truncated or corrupt ("))

    def members(name: str, *infos: tuple[tarfile.TarInfo, bytes]) -> Path:
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as tf:
            for info, content in infos:
                info.size = len(content)
                tf.addfile(info, io.BytesIO(content) if content else None)
        return path

    def file(name: str, content: bytes) -> tuple[tarfile.TarInfo, bytes]:
        return tarfile.TarInfo(name), content

    climbing = members("climbing.tar.gz", file("serve.sh", SERVE.encode()), file("../evil", b"x"))
    message = f"{climbing}: member '../evil' climbs out of the release directory with '..'"
    cases.append(("path traversal", climbing, [], message))

    link = tarfile.TarInfo("config")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc"
    linking = members("linking.tar.gz", file("serve.sh", SERVE.encode()), (link, b""))
    message = f"{linking}: symlink 'config' -> '/etc' is absolute"
    cases.append(("symlink to /etc", linking, [], message))

    built = archive(payload_dir(tmp_path / "built", "v9"), tmp_path / "built.tar.gz")
    expected = hashlib.sha256(built.read_bytes()).hexdigest()
    content = bytearray(built.read_bytes())
    content[len(content) // 2] ^= 0xFF
    tampered = tmp_path / "tampered.tar.gz"
    tampered.write_bytes(bytes(content))
    actual = hashlib.sha256(content).hexdigest()
    message = f"{tampered} has sha256 {actual}, not the expected {expected}"
    cases.append(("tampered", tampered, ["--sha256", expected], message))
    return cases


def test_bad_payloads_are_rejected_at_verify_and_nothing_is_touched(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = first_release(infraveil, tmp_path)
    wait_outcome(infraveil, "v1", "good")
    pid = pid_of(infraveil)
    kept = trees(infraveil)
    assert len(kept) == 1

    for what, payload, options, message in corrupt_archives(tmp_path / "bad"):
        result = infraveil.run("deploy", "api", "--payload", str(payload), *options)
        assert result.returncode == 1, f"{what}: " + infraveil.explain(("deploy",), result)
        lines = result.stdout.splitlines()
        assert lines[0] == "deploying v2 to api", (what, lines)
        assert [line.split()[0] for line in lines[1:-1]] == ["verify"], (what, lines)
        sentence = lines[-1]
        assert sentence.startswith(f"v2 was rejected at verify: {message}"), (what, sentence)
        assert sentence.endswith("; v1 kept serving (it was not touched)."), (what, sentence)
        row = infraveil.service("api")
        assert (row["pid"], row["state"], row["ready"]) == (pid, "running", True), (what, row)
        assert answer(port) == "v1", what
        assert trees(infraveil) == kept, what
        data = releases(infraveil)
        assert [r["version"] for r in data["releases"]] == ["v1"], (what, data)
        assert (data["current"], data["known_good"]) == ("v1", "v1"), what
    rejected = [e for e in infraveil.events("api") if e["reason"] == "DeployFailed"]
    assert len(rejected) == 5 and all("rejected at verify" in e["message"] for e in rejected)


def test_a_missing_env_var_is_caught_by_preflight_before_anything_is_touched(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = first_release(infraveil, tmp_path)
    wait_outcome(infraveil, "v1", "good")
    pid = pid_of(infraveil)
    infraveil.write_manifest({"api": api_service(port, required_env=["DATABASE_URL"])})
    good2 = payload_dir(tmp_path / "good2", "v2")

    result = infraveil.run("deploy", "api", "--payload", str(good2))
    assert result.returncode == 1, infraveil.explain(("deploy",), result)
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["verify", "preflight"], lines
    assert lines[-1].startswith("v2 was rejected at preflight: DATABASE_URL is not set"), lines
    assert lines[-1].endswith("; v1 kept serving (it was not touched)."), lines
    row = infraveil.service("api")
    assert (row["pid"], row["ready"]) == (pid, True), row
    assert answer(port) == "v1"
    data = releases(infraveil)
    assert (data["current"], data["known_good"]) == ("v1", "v1")
    assert release(data, "v2")["outcome"] == "rejected"


def test_rollback_to_a_named_release_and_what_it_says_when_there_is_none(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = free_port()
    idle = {"command": [sys.executable, "-c", "import time; time.sleep(1000)"]}
    infraveil.up({"api": api_service(port, watch="1s"), "idle": idle})
    for version in ("v1", "v2"):
        result = infraveil.run(
            "deploy", "api", "--payload", str(payload_dir(tmp_path / version, version))
        )
        assert result.returncode == 0, infraveil.explain(("deploy",), result)
        wait_serving(port, version)
        wait_outcome(infraveil, version, "good")

    result = infraveil.run("rollback", "api", "--to", "v1")
    assert result.returncode == 0, infraveil.explain(("rollback",), result)
    lines = result.stdout.splitlines()
    assert lines[0] == "rolling api back to v1", lines
    assert lines[-1].startswith("v1 is live"), lines
    wait_serving(port, "v1")
    data = releases(infraveil)
    assert data["current"] == "v1" and release(data, "v1")["current"] is True
    wait_outcome(infraveil, "v1", "good")

    unknown = infraveil.run("rollback", "api", "--to", "v9")
    assert unknown.returncode == 4, infraveil.explain(("rollback",), unknown)
    assert unknown.stderr.splitlines() == [
        "error: api has no release v9",
        "hint: its releases: v2 (good), v1 (good) (`infraveil releases api`)",
    ]
    assert answer(port) == "v1"

    nowhere = infraveil.run("rollback", "idle")
    assert nowhere.returncode == 6, infraveil.explain(("rollback",), nowhere)
    assert nowhere.stderr.splitlines() == [
        "error: idle has no known-good release to roll back to",
        "hint: idle has no releases yet: `infraveil deploy idle` makes the first",
    ]


def test_when_the_known_good_fails_too_there_is_no_second_rollback(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    marker.touch()
    port = free_port()
    infraveil.up({"api": api_service(port, watch="1s")})
    v1 = payload_dir(tmp_path / "v1", "v1", f"needs {marker}")
    infraveil.ok("deploy", "api", "--payload", str(v1))
    wait_serving(port, "v1")
    wait_outcome(infraveil, "v1", "good")
    marker.unlink()
    crash = payload_dir(tmp_path / "v2", "v2", "crash")

    code, verdict = deploy_json(infraveil, "api", "--payload", str(crash))
    assert code == 1, verdict
    sentence = verdict["sentence"]
    assert sentence.startswith("v2 failed the gate: exited with code 1"), sentence
    assert "; rolling back to v1 failed too: " in sentence
    assert f"`FATAL: cannot open {marker}`" in sentence
    assert sentence.endswith("Nothing of api is serving; infraveil does not roll back further."), (
        sentence
    )
    assert verdict["outcome"] == "rollback_failed"
    assert verdict["rollback_failure"]["evidence"] == f"FATAL: cannot open {marker}"
    data = releases(infraveil)
    assert (data["current"], data["known_good"], data["deploy"]) == ("v1", "v1", None)
    assert release(data, "v2")["outcome"] == "failed"
    assert release(data, "v1")["outcome"] == "good"
    assert answer(port) is None
    names = reasons(infraveil.events("api"))
    assert in_order(names, "GateFailed", "RollingBack", "RollbackFailed", "DeployFailed"), names
    assert names.count("RollingBack") >= 1 and "RolledBack" not in names


def test_a_version_names_one_content(infraveil: Infraveil, tmp_path: Path) -> None:
    port = free_port()
    infraveil.up({"api": api_service(port, watch="1s")})
    one = archive(payload_dir(tmp_path / "one", "1.0"), tmp_path / "one.tar.gz")
    other = archive(payload_dir(tmp_path / "other", "1.0-other"), tmp_path / "other.tar.gz")
    one_sha = hashlib.sha256(one.read_bytes()).hexdigest()
    other_sha = hashlib.sha256(other.read_bytes()).hexdigest()
    infraveil.ok("deploy", "api", "--payload", str(one), "--version", "1.0")
    wait_serving(port, "1.0")
    wait_outcome(infraveil, "1.0", "good")
    pid = pid_of(infraveil)

    result = infraveil.run("deploy", "api", "--payload", str(other), "--version", "1.0")
    assert result.returncode == 1, infraveil.explain(("deploy",), result)
    sentence = result.stdout.splitlines()[-1]
    assert sentence.startswith(
        f"1.0 was rejected at verify: version 1.0 of api is already the release with sha256"
        f" {one_sha}; this payload has sha256 {other_sha}"
    ), sentence
    assert infraveil.service("api")["pid"] == pid
    assert answer(port) == "1.0"

    # the same content under the same version: the same release, through the gate again
    code, verdict = deploy_json(infraveil, "api", "--payload", str(one), "--version", "1.0")
    assert code == 0, verdict
    assert verdict["sha256"] == one_sha and verdict["sentence"].startswith("1.0 is live")
    assert "start" in [s["step"] for s in verdict["steps"]]
    wait_serving(port, "1.0")
    assert pid_of(infraveil) != pid  # a new instance of the same release
    data = releases(infraveil)
    assert [(r["version"], r["sha256"]) for r in data["releases"]] == [("1.0", one_sha)]
    assert data["current"] == "1.0"
    wait_outcome(infraveil, "1.0", "good")


def test_one_deploy_at_a_time_and_no_stop_during_it(infraveil: Infraveil, tmp_path: Path) -> None:
    port = first_release(infraveil, tmp_path)
    wait_outcome(infraveil, "v1", "good")
    infraveil.write_manifest({"api": api_service(port, soak="5s")})
    first = infraveil.follow("deploy", "api", "--payload", str(payload_dir(tmp_path / "v2", "v2")))
    first.wait_for_line(lambda line: line.split()[:1] == ["healthy"], 20, "v2 to be healthy")

    second = infraveil.run("deploy", "api", "--payload", str(payload_dir(tmp_path / "v3", "v3")))
    assert second.returncode == 6, infraveil.explain(("deploy",), second)
    error = second.stderr.splitlines()[0]
    assert error.startswith("error: a deploy of v2 to api is under way (soaking, started "), error
    assert f" by pid {first.proc.pid} (" in error and "infraveil deploy api --payload" in error
    stop = infraveil.run("stop", "api")
    assert stop.returncode == 6, infraveil.explain(("stop",), stop)
    assert "a deploy of v2 to api is under way (soaking)" in stop.stderr
    under_way = releases(infraveil)["deploy"]
    assert (under_way["version"], under_way["phase"]) == ("v2", "soaking")
    described = infraveil.ok("describe", "api").stdout
    assert "Release:      v1 (a deploy is under way: soaking)" in described

    assert first.proc.wait(timeout=30) == 0, first.lines
    assert first.lines[-1].startswith("v2 is live"), first.lines
    assert answer(port) == "v2"


def test_deploy_without_an_agent_says_how_to_start_one(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    infraveil.write_manifest({"api": api_service(free_port())})
    result = infraveil.run("deploy", "api", "--payload", str(payload_dir(tmp_path / "v1", "v1")))
    assert result.returncode == 3, infraveil.explain(("deploy",), result)
    assert "infraveil up" in result.stderr.splitlines()[-1], result.stderr


def test_a_deploy_interrupted_by_an_agent_restart_is_rolled_back(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = first_release(infraveil, tmp_path)
    wait_outcome(infraveil, "v1", "good")
    infraveil.write_manifest({"api": api_service(port, soak="30s")})
    following = infraveil.follow(
        "deploy", "api", "--payload", str(payload_dir(tmp_path / "v2", "v2"))
    )
    following.wait_for_line(lambda line: line.split()[:1] == ["healthy"], 20, "v2 to be healthy")
    wait_serving(port, "v2")
    agent = infraveil.agent_pid()
    os.kill(agent, signal.SIGKILL)
    wait_for(lambda: not alive(agent), 10, "the agent to die")
    assert following.proc.wait(timeout=20) == 1
    assert "the agent stopped before the deploy ended" in following.lines[-1], following.lines

    infraveil.ok("up", "-d", "-f", str(infraveil.manifest))
    wait_outcome(infraveil, "v2", "failed")
    wait_serving(port, "v1")
    data = releases(infraveil)
    assert (data["current"], data["known_good"], data["deploy"]) == ("v1", "v1", None)
    message = release(data, "v2")["message"]
    assert message.startswith("v2 failed the gate: the agent was restarted before it was promoted")
    assert message.endswith("rolled back: v1 is serving again."), message
    row = infraveil.service("api")
    assert cwd_of(row["pid"]).endswith(release(data, "v1")["sha256"])
    assert row["deploying"] is None


def test_a_manifest_change_goes_through_the_gate_and_a_broken_one_is_rolled_back(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    port = free_port()
    server = infraveil.script(
        "greeter.py",
        "import os\n"
        "from http.server import BaseHTTPRequestHandler, HTTPServer\n"
        "class Handler(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body = os.environ['GREETING'].encode()\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "HTTPServer(('127.0.0.1', int(os.environ['PORT'])), Handler).serve_forever()\n",
    )

    def web(greeting: str, command: list[str] = server) -> dict[str, dict[str, object]]:
        env = {"PORT": str(port), "GREETING": greeting}
        fields = {"command": command, "port": port, "env": env, "soak": "1s", "watch": "3s"}
        return {"web": {**fields, "stop_timeout": "2s"}}

    infraveil.up(web("hello"))
    wait_serving(port, "hello")
    infraveil.write_manifest(web("bonjour"))
    result = infraveil.run("deploy", "web")
    assert result.returncode == 0, infraveil.explain(("deploy", "web"), result)
    assert result.stdout.splitlines()[-1].startswith("v2 is live"), result.stdout
    wait_serving(port, "bonjour")
    data = releases(infraveil, "web")
    outcomes = [(r["version"], r["outcome"]) for r in data["releases"]]
    assert outcomes == [("v2", "live"), ("v1", "baseline")], outcomes
    assert (data["current"], data["known_good"]) == ("v2", "v1")
    wait_for(
        lambda: infraveil.api("/v1/services/web/releases")["known_good"] == "v2",
        20,
        "v2 to be watched through",
    )

    infraveil.write_manifest(web("hola", [sys.executable, "-c", "raise SystemExit(1)"]))
    result = infraveil.run("deploy", "web")
    assert result.returncode == 1, infraveil.explain(("deploy", "web"), result)
    sentence = result.stdout.splitlines()[-1]
    assert sentence.startswith("v3 failed the gate: exited with code 1"), sentence
    assert sentence.endswith("rolled back: v2 is serving again."), sentence
    wait_serving(port, "bonjour")
    data = releases(infraveil, "web")
    assert (data["current"], data["known_good"]) == ("v2", "v2")
    assert release(data, "v3")["outcome"] == "failed"

    infraveil.write_manifest(web("bonjour"))
    nothing = infraveil.run("deploy")
    assert nothing.returncode == 0, infraveil.explain(("deploy",), nothing)
    assert nothing.stdout.splitlines() == [
        "nothing to deploy: every service runs its manifest entry"
    ]


@pytest.mark.parametrize(
    ("request_", "code", "said"),
    [
        (("deploy", "api"), 0, "api already runs v1 with this manifest entry: nothing to deploy"),
        (
            ("deploy", "api", "--payload", "NOT-AN-ARCHIVE"),
            1,
            "v1 kept serving (it was not touched)",
        ),
        (("rollback", "api", "--to", "v9"), 4, "error: api has no release v9"),
    ],
    ids=["nothing-to-deploy", "rejected-at-verify", "unknown-rollback-target"],
)
def test_a_request_that_changes_nothing_does_not_end_the_watch_of_the_live_release(
    infraveil: Infraveil, tmp_path: Path, request_: tuple[str, ...], code: int, said: str
) -> None:
    port = first_release(infraveil, tmp_path, watch="5s")
    assert releases(infraveil)["deploy"]["phase"] == "watching"
    bad = tmp_path / "x.tar.gz"
    bad.write_text("not an archive\n")
    args = [str(bad) if arg == "NOT-AN-ARCHIVE" else arg for arg in request_]

    result = infraveil.run(*args)
    assert result.returncode == code, infraveil.explain(args, result)
    assert said in result.stdout + result.stderr
    assert answer(port) == "v1"
    # nothing was changed: v1 is still being watched, and becomes known-good at the end of it
    under_way = releases(infraveil)["deploy"]
    assert under_way is not None and (under_way["version"], under_way["phase"]) == (
        "v1",
        "watching",
    ), under_way
    wait_outcome(infraveil, "v1", "good")
    assert releases(infraveil)["known_good"] == "v1"


def test_status_says_the_deploy_is_over_as_soon_as_the_watch_is_over(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    # slow readiness probes once it runs: nothing else refreshes the view meanwhile
    first_release(infraveil, tmp_path, watch="3s", ready={"tcp": True, "interval": "1m"})
    assert infraveil.api_service("api")["deploying"] == "watching"
    wait_outcome(infraveil, "v1", "good")
    row = infraveil.api_service("api")
    assert (row["release"], row["deploying"]) == ("v1", None), row
    assert "Release:      v1\n" in infraveil.ok("describe", "api").stdout


def test_a_failed_redeploy_of_the_known_good_version_does_not_mark_it_failed(
    infraveil: Infraveil, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    marker.touch()
    port = free_port()
    infraveil.up({"api": api_service(port, watch="1s")})
    v1 = archive(payload_dir(tmp_path / "v1", "v1", f"needs {marker}"), tmp_path / "v1.tar.gz")
    infraveil.ok("deploy", "api", "--payload", str(v1))
    wait_outcome(infraveil, "v1", "good")
    marker.unlink()

    code, verdict = deploy_json(infraveil, "api", "--payload", str(v1), "--version", "v1")
    assert code == 1, verdict
    data = releases(infraveil)
    v1_row = release(data, "v1")
    # a release cannot be both failed and the one a failure rolls back to
    assert not (v1_row["outcome"] == "failed" and v1_row["known_good"]), v1_row
    # and v1 is not "rolled back" to v1
    assert "rolling back to v1 failed too" not in verdict["sentence"], verdict["sentence"]
