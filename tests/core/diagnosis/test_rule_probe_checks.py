"""The rules that read the agent's checks: probe_misconfigured, slow_start_killed,
unresponsive and not_ready — and how they rank against each other (each rule's own cases are
in its own test below)."""

from __future__ import annotations

from diagnosis_support import apply, engine, quoted
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.facts import EventFact, KillFact, ProbeFact
from infraveil.core.diagnosis.finding import Confidence
from infraveil.core.diagnosis.rules import (
    not_ready,
    probe_misconfigured,
    slow_start_killed,
    unresponsive,
)

HEALTHZ = "GET http://127.0.0.1:8080/healthz"


def probe(role: str, detail: str, *, refused: bool = False, ok: bool = False) -> ProbeFact:
    return ProbeFact(role, "http", HEALTHZ, ok, detail, refused, 0 if ok else 3)


def test_probe_misconfigured_a_404_means_the_check_is_wrong() -> None:
    p = probe("liveness", "HTTP 404 Not Found for GET /healthz")
    f = apply(probe_misconfigured.rule, "serving", probes=(p,), live=True)
    assert f is not None and f.category is Category.PROBE_MISCONFIGURED
    assert "404" in f.summary and quoted(f) == ["HTTP 404 Not Found for GET /healthz"]


def test_probe_misconfigured_a_refused_port_while_the_program_listens_elsewhere() -> None:
    p = probe("startup", "nothing listening on 127.0.0.1:8080", refused=True)
    log = "2026-11-21 08:00:01 INFO  * Running on http://127.0.0.1:5000"
    f = apply(probe_misconfigured.rule, log, probes=(p,))
    assert f is not None and "port 8080" in f.summary and "listens on 5000" in f.summary
    assert log in quoted(f)


def test_probe_misconfigured_a_timestamp_is_not_a_port() -> None:
    p = probe("startup", "nothing listening on 127.0.0.1:8080", refused=True)
    assert apply(probe_misconfigured.rule, "started at 12:01:03", probes=(p,)) is None
    assert apply(probe_misconfigured.rule, "listening on :8080", probes=(p,)) is None


def test_slow_start_killed_a_slow_start_with_no_error_at_all() -> None:
    kill = KillFact("deadline", "not ready within the startup deadline of 60s")
    f = apply(slow_start_killed.rule, "loading model 40%", kill=kill, run_seconds=60.2)
    assert f is not None and f.category is Category.SLOW_START_KILLED
    assert f.confidence is Confidence.HIGH and "nothing in its output says it failed" in f.summary
    assert 'startup_deadline = "120s"' in f.fix
    assert "loading model 40%" in quoted(f)


def test_slow_start_killed_from_kubelet_events() -> None:
    events = (
        EventFact(
            "Unhealthy",
            "Liveness probe failed: Get http://10.1.2.3:8080/: dial tcp"
            " 10.1.2.3:8080: connect: connection refused",
            "events.txt:3",
        ),
        EventFact(
            "Killing", "Container app failed liveness probe, will be restarted", "events.txt:4"
        ),
    )
    f = apply(slow_start_killed.rule, "Initializing caches...", events=events, exit_code=137)
    assert f is not None and f.category is Category.SLOW_START_KILLED


def test_unresponsive_a_running_service_that_stopped_answering() -> None:
    kill = KillFact("liveness", "liveness failed 3 times over 15s: no answer within 3.0s")
    f = apply(unresponsive.rule, "GET /slow", kill=kill, became_ready=True, run_seconds=3600)
    assert f is not None and f.category is Category.UNRESPONSIVE and not f.deterministic
    assert apply(unresponsive.rule, "", kill=kill, became_ready=False) is None


def test_not_ready_only_for_a_live_instance() -> None:
    p = probe("readiness", "HTTP 503 Service Unavailable for GET /ready")
    f = apply(not_ready.rule, "waiting for db", probes=(p,), live=True)
    assert f is not None and f.category is Category.NOT_READY and "503" in f.summary
    assert apply(not_ready.rule, "", probes=(p,), live=False) is None


def test_a_wrong_check_outranks_the_slow_start_reading_of_the_same_kill() -> None:
    kill = KillFact("liveness", "liveness failed 3 times")
    p = probe("liveness", "HTTP 401 Unauthorized for GET /healthz")
    d = engine("serving", kill=kill, probes=(p,), run_seconds=30)
    assert d.finding.category is Category.PROBE_MISCONFIGURED
    assert Category.SLOW_START_KILLED in [o.category for o in d.others]
