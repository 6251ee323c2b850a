"""Hostile input to every API endpoint of a real agent: it never crashes, answers every request
with a clear error, and changes nothing (the fuzzing itself is in tests/e2e/fuzzing.py)."""

from __future__ import annotations

from collections import Counter
from urllib.parse import quote, unquote

import pytest
from e2e_support import Infraveil, alive, python
from fuzzing import (
    NO_SUCH_SERVICE,
    STREAMING_FLAGS,
    TRUTHY,
    Answer,
    FuzzRequest,
    judge,
    make_safe,
    run_api_fuzz,
    run_manifest_fuzz,
    send,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from infraveil.api.server import ROUTES

pytestmark = pytest.mark.e2e

CASES = 600
"""About 3 ms a request: some 2 s for the run."""


def test_every_endpoint_survives_fuzzing_and_nothing_changes(infraveil: Infraveil) -> None:
    infraveil.up(
        {
            "web": {"command": python("import time; time.sleep(1000)"), "stop_timeout": "1s"},
            "ghost": {"command": "ivl-no-such-command-xyz"},  # failed: settled, and a name
        }
    )
    sock = infraveil.state_dir / "agent.sock"
    agent = infraveil.agent_pid()
    pid = infraveil.api_service("web")["pid"]
    statuses: Counter[int] = Counter()
    routes: Counter[str] = Counter()

    def seen(request: FuzzRequest, answer: Answer) -> None:
        statuses[answer.status] += 1
        routes[request.path.split("/")[2] if request.path.count("/") > 1 else request.path] += 1

    failures: list[str] = []
    tried, crashes = run_api_fuzz(sock, CASES, failures=failures, on_request=seen)

    assert crashes == 0, "\n".join(failures[:20])
    assert tried == CASES
    assert infraveil.agent_pid() == agent and alive(agent)
    assert alive(pid) and infraveil.api_service("web")["pid"] == pid
    # the run reached the handlers, not only the router: every kind of answer came back
    assert {200, 400, 404, 405} <= set(statuses), statuses
    assert statuses[200] > CASES // 50, statuses
    assert {"services", "events", "status", "agent"} <= set(routes), routes

    # and the oracle can say no: a restart halfway through a run is reported as a change
    def restart_once(request: FuzzRequest, answer: Answer) -> None:
        if not failures:
            failures.append("restarted")
            restart = FuzzRequest("POST", "/v1/services/web/restart", (("wait", "10"),), (), None)
            assert send(sock, restart).status == 200

    tried, crashes = run_api_fuzz(sock, 20, seed=1, failures=failures, on_request=restart_once)
    assert tried == 20 and crashes == 2  # "restarted", then the change the run found
    assert failures[-1].startswith("the agent's state changed"), failures


JSON_ERROR = b'{"error": {"code": "bad_request", "message": "m", "hint": ""}}'
JSON = {"content-type": "application/json"}
TEXT = {"content-type": "text/plain; charset=utf-8"}


@pytest.mark.parametrize(
    ("method", "answer", "wrong"),
    [
        ("GET", Answer(11, 200, JSON, b"{}"), False),
        ("GET", Answer(11, 400, JSON, JSON_ERROR), False),
        ("GET", Answer(10, 400, TEXT, b"Invalid method encountered"), False),  # aiohttp's parser
        ("HEAD", Answer(11, 405, JSON, b""), False),
        ("GET", Answer(11, 500, JSON, JSON_ERROR), True),
        ("GET", Answer(11, 502, TEXT, b"bad gateway"), True),
        ("GET", Answer(11, 404, TEXT, b"404: Not Found"), True),  # aiohttp's, not the API's
        ("GET", Answer(11, 417, TEXT, b"Unknown Expect: x"), True),
        ("GET", Answer(10, 413, TEXT, b"too large"), True),
        ("GET", Answer(11, 400, JSON, b'{"error": {"code": "", "message": ""}}'), True),
        ("POST", Answer(11, 409, JSON, b"[]"), True),
    ],
)
def test_the_fuzzers_judge_can_say_no(method: str, answer: Answer, wrong: bool) -> None:
    request = FuzzRequest(method, "/v1/status", (), (), None)
    assert (judge(request, answer) is not None) == wrong


def test_fuzzing_never_sends_a_request_that_could_act() -> None:
    """make_safe, checked on its own: a bodiless POST never names a real service or shutdown,
    and no GET asks to stream for ever."""
    services = ["web", "db"]
    names = st.sampled_from(services) | st.text(max_size=8)
    paths = st.builds(
        lambda route, name, action: route.path.replace("{name}", name).replace("{action}", action),
        st.sampled_from(ROUTES),
        names,
        st.sampled_from(["start", "stop", "restart", "hold"]) | st.text(max_size=5),
    )

    @settings(max_examples=300, derandomize=True, database=None, deadline=None)
    @given(
        paths,
        st.lists(st.tuples(st.sampled_from(["watch", "follow", "x"]), st.text(max_size=5))),
    )
    def check(raw_path: str, query: list[tuple[str, str]]) -> None:
        safe = make_safe(FuzzRequest("POST", quote(raw_path, safe="/"), (), (), None), services)
        decoded = unquote(safe.path)
        assert "shutdown" not in decoded
        assert not any(name in decoded for name in services)
        if raw_path != decoded:
            assert NO_SUCH_SERVICE in decoded or "shut-down" in decoded
        got = make_safe(FuzzRequest("GET", "/v1/events", tuple(query), (), None), services)
        assert not [v for k, v in got.query if k in STREAMING_FLAGS and v.lower() in TRUTHY]

    check()


def test_the_manifest_fuzz_counts_for_the_reliability_report() -> None:
    failures: list[str] = []
    assert run_manifest_fuzz(60, failures=failures) == (60, 0), failures
