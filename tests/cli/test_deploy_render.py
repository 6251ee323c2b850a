"""`deploy`, `rollback` and `releases` as a person sees them: canned agent rows rendered into a
StringIO at a fixed width, with no agent and no colour."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any, cast

import pytest
from rich.console import Console

from infraveil.cli.render import DeployProgress, release_text, render_describe, render_releases
from infraveil.cli.verbs.deploy import DeployResult, follow

Row = dict[str, Any]


def step(name: str, elapsed: float, message: str, *, warning: bool = False, v: str = "v42") -> Row:
    return {
        "type": "step", "service": "api", "version": v, "step": name, "message": message,
        "warning": warning, "elapsed": elapsed,
    }  # fmt: skip


def verdict(outcome: str, sentence: str, *, v: str = "v42", kind: str = "deploy") -> Row:
    return {
        "type": "verdict", "service": "api", "version": v, "kind": kind, "sha256": "3f2a" * 16,
        "outcome": outcome, "live": outcome == "live", "previous": "v41", "known_good": "v41",
        "sentence": sentence, "failure": None, "rollback_failure": None, "evidence": "",
        "elapsed": 1.9, "deploy": 7,
    }  # fmt: skip


LIVE_SENTENCE = "v42 is live; a crash in the next 1m still rolls it back to v41."
LIVE = [
    step("verify", 0.01, "sha256 3f2a9c1b2d4e…, 12 files, 48.0 KiB"),
    step("preflight", 0.02, "command, files, user, env and ports are fine"),
    step("start", 0.05, "instance 7 (pid 4242); ready within 1m"),
    step("healthy", 1.2, "ready after 1.1s: GET http://127.0.0.1:8000/healthz: 200"),
    step("soak", 11.214, "ready with no restart for 10s"),
    step("promote", 11.21, "v42 is current"),
    verdict("live", LIVE_SENTENCE),
]
ROLLED_BACK_SENTENCE = (
    "v42 failed at healthy: exited with code 1 — `KeyError: 'QUEUE_URL'` (see `infraveil why"
    " api`); v41 is running again and ready."
)
ROLLED_BACK = [
    step("verify", 0.01, "sha256 3f2a9c1b2d4e…, 12 files, 48.0 KiB"),
    step("preflight", 0.02, "command, files, user, env and ports are fine"),
    step("start", 0.05, "instance 7 (pid 4242); ready within 1m"),
    step("failed", 0.9, "exited with code 1 — `KeyError: 'QUEUE_URL'`", warning=True),
    step("rollback", 0.91, "starting v41 again"),
    step("rolled back", 1.8, "v41 is running and ready"),
    verdict("rolled_back", ROLLED_BACK_SENTENCE),
]
REJECTED_SENTENCE = (
    "v42 was rejected at preflight: port 8000 is in use by pid 99 (nginx); nothing was touched."
)
REJECTED = [
    step("verify", 0.01, "sha256 3f2a9c1b2d4e…, 12 files, 48.0 KiB"),
    step("preflight", 0.03, "port 8000 is in use by pid 99 (nginx)", warning=True),
    verdict("rejected", REJECTED_SENTENCE),
]


def console() -> Console:
    return Console(file=io.StringIO(), width=100, color_system=None)


def lines(out: Console) -> list[str]:
    text = out.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in text.splitlines()]


def watched(rows: Iterable[Row], kind: str = "deploy") -> tuple[DeployResult, list[str]]:
    """Follow canned rows as `deploy` follows the agent's, printing each as it arrives."""
    out = console()
    progress = DeployProgress(out, kind)
    result = follow("api", kind, rows, progress.row)
    if result.verdict is None:
        progress.stopped(result.sentence)
    return result, lines(out)


def test_a_live_deploy_prints_each_step_aligned_then_the_sentence() -> None:
    result, printed = watched(LIVE)
    assert printed == [
        "deploying v42 to api",
        "  verify       0.01s  sha256 3f2a9c1b2d4e…, 12 files, 48.0 KiB",
        "  preflight    0.02s  command, files, user, env and ports are fine",
        "  start        0.05s  instance 7 (pid 4242); ready within 1m",
        "  healthy      1.20s  ready after 1.1s: GET http://127.0.0.1:8000/healthz: 200",
        "  soak        11.21s  ready with no restart for 10s",
        "  promote     11.21s  v42 is current",
        LIVE_SENTENCE,
    ]
    assert result.ok and len(result.steps) == 6


def test_a_rolled_back_deploy_quotes_its_sentence_verbatim_and_fails() -> None:
    result, printed = watched(ROLLED_BACK)
    assert printed[0] == "deploying v42 to api"
    assert printed[4] == "  failed       0.90s  exited with code 1 — `KeyError: 'QUEUE_URL'`"
    assert printed[6] == "  rolled back  1.80s  v41 is running and ready"
    assert printed[-1] == ROLLED_BACK_SENTENCE  # backticks and quotes as the agent wrote them
    assert not result.ok


def test_a_rejected_deploy_ends_with_its_sentence_and_fails() -> None:
    result, printed = watched(REJECTED)
    assert printed == [
        "deploying v42 to api",
        "  verify       0.01s  sha256 3f2a9c1b2d4e…, 12 files, 48.0 KiB",
        "  preflight    0.03s  port 8000 is in use by pid 99 (nginx)",
        REJECTED_SENTENCE,
    ]
    assert not result.ok


def test_a_rollback_is_announced_as_one() -> None:
    rows = [
        step("preflight", 0.01, "command, files, user, env and ports are fine", v="v41"),
        verdict("live", "v41 is live.", v="v41", kind="rollback"),
    ]
    result, printed = watched(rows, kind="rollback")
    assert printed[0] == "rolling api back to v41"
    assert printed[-1] == "v41 is live." and result.ok


def test_nothing_to_deploy_is_one_line_and_not_a_failure() -> None:
    sentence = "api already runs v42 with this manifest entry: nothing to deploy"
    rows = [{"type": "verdict", "service": "api", "outcome": "unchanged", "sentence": sentence}]
    result, printed = watched(rows)
    assert printed == [sentence]
    assert result.ok
    assert result.as_json() == {**rows[0], "steps": []}


def test_a_long_soak_reads_in_minutes() -> None:
    _, printed = watched([step("soak", 610.0, "ready with no restart for 10m")])
    assert printed[1] == "  soak        10m10s  ready with no restart for 10m"


def test_a_stream_without_a_verdict_says_the_agent_stopped_and_fails() -> None:
    result, printed = watched(LIVE[:4])
    assert printed[-1] == (
        "the agent stopped before the deploy ended; the next agent resolves it (rolls back a"
        " release that was not promoted): see `infraveil releases api`"
    )
    assert not result.ok
    assert result.as_json()["outcome"] == "interrupted"
    assert result.as_json()["version"] == "v42"


def test_a_connection_cut_mid_stream_is_a_stream_without_a_verdict() -> None:
    def cut() -> Iterator[Row]:
        yield from LIVE[:2]
        raise ConnectionResetError("the agent went away")

    result, printed = watched(cut())
    assert [s["step"] for s in result.steps] == ["verify", "preflight"]
    assert result.verdict is None and "the agent stopped" in printed[-1]


def test_json_is_the_verdict_with_its_steps(capsys: pytest.CaptureFixture[str]) -> None:
    from infraveil.cli.render import emit_json

    result = follow("api", "deploy", iter(ROLLED_BACK))  # -o json prints nothing meanwhile
    emit_json("deploy", result.as_json())
    printed = json.loads(capsys.readouterr().out)
    assert printed["schema"] == "infraveil/v1/deploy"
    assert printed["outcome"] == "rolled_back" and printed["live"] is False
    assert printed["sentence"] == ROLLED_BACK_SENTENCE
    assert [s["step"] for s in printed["steps"]] == [
        "verify", "preflight", "start", "failed", "rollback", "rolled back",
    ]  # fmt: skip
    assert all(s["type"] == "step" for s in printed["steps"])


# ── releases ────────────────────────────────────────────────────────────────────────────────

NOW = 1_790_000_000.0
FAILED_MESSAGE = "v43 failed at soak: exited with code 1 — `KeyError: 'QUEUE_URL'`."


def release(version: str, outcome: str, **fields: Any) -> Row:
    return {
        "version": version, "sha256": None, "size": None, "created": NOW, "outcome": outcome,
        "message": "", "diagnosis": None, "current": False, "known_good": False, **fields,
    }  # fmt: skip


def releases_of(rows: list[Row], **fields: Any) -> Row:
    return {
        "service": "api", "current": None, "known_good": None,
        "waiting_for_first_deploy": False, "deploy": None, "releases": rows, **fields,
    }  # fmt: skip


def rendered_releases(data: Row) -> list[str]:
    out = console()
    render_releases(out, data)
    return lines(out)


def test_releases_mark_current_and_known_good_and_say_why_one_failed() -> None:
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(NOW))
    data = releases_of(
        [
            release("v43", "failed", sha256="ab" * 32, message=FAILED_MESSAGE),
            release("v42", "live", sha256="3f2a9c1b2d4e" + "0" * 52, current=True),
            release("v41", "good", known_good=True),
            release("v40", "good", current=True, known_good=True),
        ]
    )
    header, v43, why, v42, v41, v40 = rendered_releases(data)
    assert header.split() == ["VERSION", "SHA256", "CREATED", "OUTCOME"]
    assert v43 == f"v43      abababababab  {created}  failed"
    assert why == f"  {FAILED_MESSAGE}"
    assert v42 == f"v42      3f2a9c1b2d4e  {created}  live     current"
    assert v41 == f"v41      —             {created}  good     known-good"
    assert v40.endswith("good     current, known-good")
    # the columns line up under their headers
    for name in ("SHA256", "CREATED", "OUTCOME"):
        assert all(line[header.index(name) - 2 : header.index(name)] == "  " for line in (v43, v41))


def test_releases_show_a_deploy_under_way_and_who_started_it() -> None:
    by = "pid 4242 (ops): infraveil deploy api --payload build.tar.gz"
    data = releases_of(
        [release("v43", "deploying"), release("v42", "good", current=True, known_good=True)],
        deploy={"version": "v43", "phase": "soaking", "kind": "deploy", "by": by, "started": NOW},
    )
    assert rendered_releases(data)[0] == f"a deploy of v43 is under way (soaking), by {by}"
    data["deploy"] = {"version": "v41", "phase": "rolling_back", "kind": "rollback", "by": ""}
    assert rendered_releases(data)[0] == "a rollback to v41 is under way (rolling back)"


def test_a_service_waiting_for_its_first_deploy_says_how_to_make_it() -> None:
    printed = rendered_releases(releases_of([], waiting_for_first_deploy=True))
    assert printed == [
        "api waits for its first deploy: infraveil deploy api --payload FILE|DIR",
        "api has no releases yet",
    ]


def test_a_service_with_no_releases_says_so() -> None:
    printed = rendered_releases(releases_of([]))
    assert printed[0] == "api has no releases yet"
    assert printed[1].startswith("hint: ") and "`infraveil deploy api`" in printed[1]


# ── describe ────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("release_", "deploying", "text"),
    [
        (None, None, ""),
        ("v3", None, "v3"),
        ("v3", "soaking", "v3 (a deploy is under way: soaking)"),
        (None, "rolling_back", "its manifest entry (a deploy is under way: rolling back)"),
    ],
)
def test_describe_shows_the_release_it_runs(
    release_: str | None, deploying: str | None, text: str
) -> None:
    assert release_text({"release": release_, "deploying": deploying}) == text


def test_describe_has_a_release_line_only_for_a_service_with_releases() -> None:
    service = {
        "name": "api", "state": "running", "ready": True, "pid": 4242, "restarts": 0,
        "last_exit": None, "release": "v3", "deploying": "soaking",
    }  # fmt: skip
    spec = {"command": ["./api"], "cwd": "/srv/api", "stop_signal": "SIGTERM", "stop_timeout": 10}
    data = {"service": service, "spec": spec, "instances": [], "events": []}
    out = console()
    render_describe(out, data)
    assert "Release:      v3 (a deploy is under way: soaking)" in lines(out)
    out = console()
    render_describe(out, {**data, "service": {**service, "release": None, "deploying": None}})
    assert not any(line.startswith("Release:") for line in lines(out))


# ── deploy with no service: every changed manifest entry, in order ─────────────────────────


class FakeClient:
    """The two calls `deploy` makes, answered with canned data (the real ones are e2e tests)."""

    def __init__(self, changes: Row, streams: dict[str, list[Row]]) -> None:
        self.changes = changes
        self.streams = streams
        self.deployed: list[str] = []

    def get(self, path: str, **query: Any) -> Row:
        assert path == "/v1/changes"
        return self.changes

    def stream(self, path: str, *, method: str = "GET", **query: Any) -> Iterator[Row]:
        assert method == "POST" and path.endswith("/deploy")
        name = path.split("/")[-2]
        self.deployed.append(name)
        return iter(self.streams[name])


def for_service(name: str, rows: list[Row]) -> list[Row]:
    return [{**row, "service": name} for row in rows]


def deploy_changed(client: FakeClient, output: str) -> int:
    import click

    from infraveil.api.client import Client
    from infraveil.cli.verbs.deploy import _deploy_changed

    try:
        _deploy_changed(cast(Client, client), output)
    except click.exceptions.Exit as e:
        return e.exit_code
    return 0


def test_deploying_every_change_stops_at_the_first_that_does_not_go_live(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = FakeClient(
        {"changed": ["db", "api", "web"], "added": ["cache"], "removed": []},
        {"db": for_service("db", LIVE), "api": ROLLED_BACK, "web": LIVE},
    )
    assert deploy_changed(client, "table") == 1
    assert client.deployed == ["db", "api"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("note: added: cache — ") and "`infraveil down`" in printed[0]
    assert printed[1] == "deploying v42 to db"
    assert "" in printed and "deploying v42 to api" in printed
    assert printed[-2] == ROLLED_BACK_SENTENCE
    assert printed[-1] == "not deployed, as api did not go live: web"


def test_deploying_every_change_as_json_is_a_list_of_verdicts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = FakeClient(
        {"changed": ["db", "api"], "added": [], "removed": []},
        {"db": for_service("db", LIVE), "api": LIVE},
    )
    assert deploy_changed(client, "json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["schema"] == "infraveil/v1/deploys"
    assert [(d["service"], d["outcome"]) for d in printed["deploys"]] == [
        ("db", "live"),
        ("api", "live"),
    ]
    assert len(printed["deploys"][0]["steps"]) == 6 and printed["not_deployed"] == []


def test_nothing_changed_is_nothing_to_deploy(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient({"changed": [], "added": [], "removed": []}, {})
    assert deploy_changed(client, "table") == 0
    assert capsys.readouterr().out == "nothing to deploy: every service runs its manifest entry\n"
