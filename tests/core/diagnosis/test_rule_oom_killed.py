from __future__ import annotations

import signal

from diagnosis_support import apply, engine, quoted
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.facts import KillFact
from infraveil.core.diagnosis.finding import Confidence, Specificity
from infraveil.core.diagnosis.rules.oom_killed import rule


def test_the_kernel_flag_is_the_verdict_with_limit_and_peak_even_with_clean_logs() -> None:
    f = apply(rule, "", exit_code=255, oom_killed=True, memory_limit=64 << 20, peak_memory=64 << 20)
    assert f is not None and f.category is Category.OOM_KILLED
    assert f.specificity is Specificity.PLATFORM and f.confidence is Confidence.HIGH
    assert "limit 64.0MiB, peak 64.0MiB" in f.summary
    assert "exited with code 255" in quoted(f)  # the trap: OOM with exit 255
    assert "e.g. to 128.0MiB" in f.fix


def test_the_agents_watchdog_kill_is_quoted() -> None:
    kill = KillFact("memory", "OOMKilled: limit 64.0MiB, peak 70.0MiB")
    f = apply(rule, "working", signal=signal.SIGKILL, kill=kill, memory_limit=64 << 20)
    assert f is not None and quoted(f)[0] == "OOMKilled: limit 64.0MiB, peak 70.0MiB"


def test_a_kernel_log_line_in_the_output_names_the_kill() -> None:
    log = (
        "[ 7093.5] uwsgi invoked oom-killer: gfp_mask=0x6000c0\n"
        "[ 7093.6] Memory cgroup out of memory: Killed process 63214 (uwsgi)\n"
        "[ 7093.7] oom_reaper: reaped process 63214 (uwsgi)"
    )
    f = apply(rule, log)
    assert f is not None and f.category is Category.OOM_KILLED
    assert quoted(f) == ["[ 7093.6] Memory cgroup out of memory: Killed process 63214 (uwsgi)"]


def test_a_false_oom_flag_is_not_evidence() -> None:
    assert apply(rule, '"OOMKilled": false,\n"ExitCode": 1') is None


def test_bare_sigkill_is_a_low_confidence_hint_quoting_the_shells_words() -> None:
    f = apply(rule, "bash: line 1: 7 Killed ( python train.py )", exit_code=137)
    assert f is not None and f.confidence is Confidence.LOW and f.confirm
    assert "bash: line 1: 7 Killed ( python train.py )" in quoted(f)
    assert apply(rule, "done", exit_code=1) is None


def test_the_flag_outranks_an_exception_in_the_log() -> None:
    log = 'Traceback (most recent call last):\n  File "a.py", line 1, in <module>\nMemoryError'
    d = engine(log, exit_code=1, oom_killed=True)
    assert d.finding.category is Category.OOM_KILLED
    assert Category.HEAP_EXHAUSTED in [o.category for o in d.others]
