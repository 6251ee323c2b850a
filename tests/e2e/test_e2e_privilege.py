"""Least privilege and secrets, end to end: the real CLI against a real agent.

- `user = "name"` drops to that user and all its groups before exec (a real account made for
  the test, with a supplementary group), and the service can still write to its output by
  name (`/dev/stdout`) and in its working directory;
- when the agent runs as root, `check` and `status` warn about services with no `user`;
- secret values (by name, from a `secrets` file, or a URL's password) reach the service's own
  environment intact, and appear nowhere infraveil shows anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import Infraveil, http_get, python, wait_for

pytestmark = pytest.mark.e2e

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"),
    reason="creating accounts and switching users needs root",
)


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    extra_group: str
    extra_gid: int


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def account() -> Iterator[Account]:
    """A system user of its own, with its own primary group and one supplementary group."""
    suffix = uuid.uuid4().hex[:8]
    name, extra = f"ivl-u-{suffix}", f"ivl-g-{suffix}"
    _run("groupadd", "--system", extra)
    try:
        _run(
            "useradd",
            "--system",
            "--user-group",
            "--groups",
            extra,
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        )
        try:
            entry = pwd.getpwnam(name)
            import grp

            yield Account(name, entry.pw_uid, entry.pw_gid, extra, grp.getgrnam(extra).gr_gid)
        finally:
            _run("userdel", name)  # (its own group goes with it)
    finally:
        _run("groupdel", extra)


def _proc_ids(pid: int) -> dict[str, list[int]]:
    """The Uid, Gid and Groups lines of /proc/PID/status (real, effective, saved, fs)."""
    ids = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                ids[key] = [int(v) for v in value.split()]
    return ids


@needs_root
def test_user_drops_to_the_account_and_its_groups_and_root_is_warned_about(
    infraveil: Infraveil, account: Account
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ivl-priv-"))
    try:
        os.chown(workdir, account.uid, account.gid)
        script = (
            "id; echo HOME=$HOME USER=$USER LOGNAME=$LOGNAME;"
            " echo via-dev-stdout > /dev/stdout; echo via-dev-stderr > /dev/stderr;"
            " touch written-here && echo cwd-writable; exec sleep 1000"
        )
        infraveil.up(
            {
                "priv": {
                    "command": ["sh", "-c", script],
                    "user": account.name,
                    "cwd": str(workdir),
                },
                "rooty": {"command": ["sleep", "1000"]},
            }
        )
        row = infraveil.wait_for_service("priv", lambda r: r["state"] == "running", 10, "runs")
        ids = _proc_ids(row["pid"])
        assert ids["Uid"] == [account.uid] * 4, ids  # real, effective, saved and fs uid
        assert ids["Gid"] == [account.gid] * 4, ids
        assert sorted(ids["Groups"]) == sorted({account.gid, account.extra_gid}), ids

        def log() -> str:
            return infraveil.ok("logs", "priv").stdout

        wait_for(lambda: "cwd-writable" in log(), 10, lambda: f"the id lines; log:\n{log()}")
        text = log()
        id_line = next(line for line in text.splitlines() if line.startswith("uid="))
        assert id_line.startswith(f"uid={account.uid}({account.name}) gid={account.gid}("), text
        assert f"{account.extra_gid}({account.extra_group})" in id_line.split("groups=")[1]
        assert f"HOME=/nonexistent USER={account.name} LOGNAME={account.name}" in text
        assert "via-dev-stdout" in text and "via-dev-stderr" in text, text
        assert (workdir / "written-here").stat().st_uid == account.uid

        # the agent runs as root: a service with no `user` is warned about, the other not
        status = infraveil.ok("status")
        warning = next(line for line in status.stderr.splitlines() if "warning:" in line)
        assert "rooty runs as root" in warning and "priv" not in warning, status.stderr
        assert 'user = "..."' in warning
        data = json.loads(infraveil.ok("status", "-o", "json").stdout)
        as_root = [w for w in data["warnings"] if w["warning"] == "runs_as_root"]
        assert [w["service"] for w in as_root] == ["rooty"], data["warnings"]
        rows = {r["name"]: r for r in data["services"]}
        assert rows["rooty"]["root_by_default"] and not rows["priv"]["root_by_default"]

        check = infraveil.run("check", "-f", str(infraveil.manifest), state_dir=False)
        assert check.returncode == 0, infraveil.explain(("check",), check)  # not an error
        assert check.stdout.splitlines()[-2:] == [
            "preflight: 2 services ready to start",
            "warning: rooty runs as root (the agent runs as root and no `user` is set);"
            ' set user = "..." in [services.rooty]',
        ], check.stdout
        checked = json.loads(
            infraveil.run(
                "check", "-f", str(infraveil.manifest), "-o", "json", state_dir=False
            ).stdout
        )
        assert [(w["service"], w["warning"]) for w in checked["warnings"]] == [
            ("rooty", "runs_as_root")
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ── secrets ─────────────────────────────────────────────────────────────────────────────────

REPORT = """\
import hashlib, json, os, sys, time
names = ["DB_PASSWORD", "API_TOKEN", "OPAQUE", "DATABASE_URL", "LOG_LEVEL"]
got = {n: hashlib.sha256(os.environ[n].encode()).hexdigest() for n in names}
out = os.environ["REPORT_TO"]
with open(out + ".tmp", "w") as f:
    json.dump(got, f)
os.replace(out + ".tmp", out)
print("started", flush=True)
time.sleep(1000)
"""

CRASH = """\
import os, sys
e = os.environ
print("connecting to", e["DATABASE_URL"], flush=True)
print(f"FATAL: password {e['DB_PASSWORD']} rejected; token={e['API_TOKEN']} opaque={e['OPAQUE']}",
      file=sys.stderr, flush=True)
sys.exit(1)
"""


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_secrets_reach_the_service_and_nothing_that_infraveil_shows(
    infraveil: Infraveil,
) -> None:
    secret = {
        "DB_PASSWORD": "pw-" + uuid.uuid4().hex,
        "API_TOKEN": "tok-" + uuid.uuid4().hex,  # from the secrets file
        "OPAQUE": "opq-" + uuid.uuid4().hex,  # from the secrets file, a name that looks plain
        "DSN_PASSWORD": "dsn-" + uuid.uuid4().hex,  # only inside DATABASE_URL
    }
    secrets_file = infraveil.workdir / "app.secrets"
    secrets_file.write_text(f"API_TOKEN={secret['API_TOKEN']}\nOPAQUE='{secret['OPAQUE']}'\n")
    secrets_file.chmod(0o600)
    url = f"postgres://app:{secret['DSN_PASSWORD']}@127.0.0.1:1/app"
    common = {
        "env": {
            "DB_PASSWORD": secret["DB_PASSWORD"],
            "DATABASE_URL": url,
            "LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
        },
        "secrets": "app.secrets",
    }
    got_path = infraveil.workdir / "got.json"
    infraveil.up(
        {
            "app": {
                **common,
                "command": infraveil.script("report.py", REPORT),
                "env": {**common["env"], "REPORT_TO": str(got_path)},  # (no file argument:
            },  # preflight would want a .json named in the command to exist)
            "crasher": {
                # a secret on its command line too: instances show the command they ran
                "command": [
                    *infraveil.script("crash.py", CRASH),
                    f"--db-password={secret['DB_PASSWORD']}",
                ],
                **common,
            },
        }
    )
    watch = infraveil.follow("events", "-w", "-o", "json")

    # the service itself gets the real values
    got = wait_for(
        lambda: got_path.exists() and json.loads(got_path.read_text()),
        10,
        "the service to report its environment",
    )
    assert got == {
        "DB_PASSWORD": _sha(secret["DB_PASSWORD"]),
        "API_TOKEN": _sha(secret["API_TOKEN"]),
        "OPAQUE": _sha(secret["OPAQUE"]),
        "DATABASE_URL": _sha(url),
        "LOG_LEVEL": _sha("info"),
    }

    # the crasher quoted every secret in its last line: the Exited event quotes it masked
    def exited() -> list[dict[str, object]]:
        return [
            e
            for e in infraveil.api("/v1/events", service="crasher")["events"]
            if e["reason"] == "Exited"
        ]

    first = wait_for(exited, 10, "the crasher's Exited event")[0]
    assert "FATAL: password *** rejected; token=*** opaque=***" in str(first["message"]), first
    diagnosed = wait_for(
        lambda: next(
            (i for i in infraveil.describe("crasher")["instances"] if i["diagnosis"]), None
        ),
        10,
        "a diagnosed crasher instance",
    )
    watch.wait_for_line(lambda line: "Exited" in line, 10, "the Exited event in the stream")

    shown = {
        "describe app": infraveil.ok("describe", "app").stdout,
        "describe crasher": infraveil.ok("describe", "crasher").stdout,
        "describe -o json": json.dumps([infraveil.describe(n) for n in ("app", "crasher")]),
        "status": infraveil.ok("status").stdout,
        "status -o json": infraveil.ok("status", "-o", "json").stdout,
        "events -o json": json.dumps(infraveil.events()),
        "events": infraveil.ok("events", "--limit", "1000").stdout,
        "why crasher": infraveil.ok("why", "crasher").stdout,
        "why -o json": infraveil.ok("why", "crasher", "-o", "json").stdout,
        "logs crasher": infraveil.ok("logs", "crasher").stdout,
        "logs crasher -t": infraveil.ok("logs", "crasher", "--timestamps").stdout,
        "events -w": "\n".join(watch.lines),
        "agent.log": infraveil.agent_log(),
    }
    sock = infraveil.state_dir / "agent.sock"
    for path in (
        "/v1/status",
        "/v1/services/app",
        "/v1/services/crasher",
        "/v1/services/crasher/why",
        "/v1/services/crasher/logs",
        f"/v1/services/crasher/why?instance={diagnosed['number']}",
        "/v1/events",
        "/metrics",
        "/v1/agent",
    ):
        status, _, body = http_get(sock, path)
        assert status == 200, (path, body[:300])
        shown[f"GET {path}"] = body.decode()
    for where, text in shown.items():
        for name, value in secret.items():
            assert value not in text, f"{name}'s value is shown by {where}:\n{text[:3000]}"

    # and masked, not merely left out: the env table says which variables are set
    env = infraveil.describe("app")["spec"]["env"]
    assert env == {
        "DB_PASSWORD": "***",
        "DATABASE_URL": "postgres://app:***@127.0.0.1:1/app",
        "LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
        "REPORT_TO": str(got_path),
    }
    assert infraveil.describe("app")["spec"]["secrets"] == str(secrets_file)
    assert "DB_PASSWORD=***" in shown["describe app"]
    assert f"secrets:      {secrets_file}" in shown["describe app"]
    evidence = json.dumps(diagnosed["diagnosis"]["evidence"])
    assert "***" in evidence, evidence
    # served logs are masked line by line; the file on disk keeps what the service wrote
    assert "FATAL: password *** rejected; token=*** opaque=***" in shown["logs crasher"]
    assert "connecting to postgres://app:***@127.0.0.1:1/app" in shown["logs crasher"]
    assert "--db-password=***" in shown["logs crasher"]  # its start marker quotes the command
    assert secret["DB_PASSWORD"] in (infraveil.state_dir / "logs/crasher/1.log").read_text()
    assert diagnosed["command"][-1] == "--db-password=***"

    # `debug` is the one place a person sees the real values, by design
    debug = infraveil.run(
        "debug",
        "app",
        "-f",
        str(infraveil.manifest),
        "-c",
        'printf %s "$API_TOKEN"',
        state_dir=False,
    )
    assert debug.returncode == 0, infraveil.explain(("debug",), debug)
    assert debug.stdout == secret["API_TOKEN"]


def test_check_warns_about_a_secrets_file_others_can_read_and_masks_what_it_prints(
    infraveil: Infraveil,
) -> None:
    token = "tok-" + uuid.uuid4().hex
    secrets_file = infraveil.workdir / "app.secrets"
    secrets_file.write_text(f"API_TOKEN={token}\n")
    secrets_file.chmod(0o644)
    path = infraveil.write_manifest(
        {
            "app": {
                "command": python("pass"),
                "secrets": "app.secrets",
                "user": str(os.geteuid()),  # (no root warning: this test is about the file)
                "required_env": ["STILL_MISSING"],
            },
            "lost": {"command": python("pass"), "secrets": "missing.secrets"},
        }
    )
    check = infraveil.run("check", "-f", str(path), state_dir=False)
    assert check.returncode == 1, check.stdout  # the missing variable and the missing file
    out = check.stdout
    assert (
        f"warning: app: its secrets file {secrets_file} can be read or changed by other users"
        f" (mode 0644); chmod 600 {secrets_file}"
    ) in out.splitlines(), out
    assert f"lost: config_missing — secrets file not found: {infraveil.workdir}" in out, out
    assert token not in out
    data = json.loads(infraveil.run("check", "-f", str(path), "-o", "json", state_dir=False).stdout)
    assert ("app", "secrets_readable") in [(w["service"], w["warning"]) for w in data["warnings"]]
    assert [p["check"] for p in data["preflight"]["lost"]] == ["secrets"]

    secrets_file.chmod(0o600)
    quiet = infraveil.run("check", "-f", str(path), state_dir=False)
    assert "can be read or changed" not in quiet.stdout
