#!/usr/bin/env python3
"""How fast `why` and `doctor` answer (issue [why]: ≤ 200 ms on a 50 MB log; the corpus in ≤ 2 s).

    .venv/bin/python bench/why.py [--log-mb 50] [--huge-mb 1024] [--repeat 20] [--report PATH]

Measured, each as the median of --repeat runs (times are wall clock):

1. a real agent supervising a service that writes --log-mb of output and then dies of a
   `KeyError: 'DATABASE_URL'`: the time from its exit to the diagnosis being kept is part of
   its restart, and `why` then answers from the store — over the API (`GET /v1/services/big/why`)
   and as a person types it (`infraveil why big`, Python's start-up included);
2. the exit-time diagnosis itself on a --log-mb instance log file (read the tail, count the
   lines before it for real line numbers, run the engine): what an exit costs the agent;
3. `doctor` over the whole corpus of tests/corpus in-process (read, decode, diagnose), and
   one `infraveil doctor --log` command on a --huge-mb file (bounded: only its tail is read).

No peer does this (supervisord, PM2, systemd report an exit code), so there is nothing to
compare against in the same run; the figures stand against the issue's targets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from harness import (
    INFRAVEIL,
    ROOT,
    add_end_loadavg,
    add_results_dir,
    agent_get,
    command_line,
    format_table,
    infraveil_cli_version,
    infraveil_down,
    infraveil_up_detached,
    log,
    machine_info,
    machine_section,
    wait_for,
)

sys.path.insert(0, str(ROOT / "tests"))

from corpus.corpus import load_cases
from infraveil.cli.verbs.doctor import decode_tail
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of
from infraveil.daemon.diagnosing import log_facts
from infraveil.store.logs import read_tail, timestamp

CRASH = """\
import os, sys
line = ("x" * 99 + "\\n").encode()
out = sys.stdout.buffer
for _ in range({lines}):
    out.write(line)
out.flush()
print("Traceback (most recent call last):", flush=True)
print('  File "/app/settings.py", line 3, in <module>', flush=True)
os.environ["DATABASE_URL"]
"""


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn: object, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - t)
    return median_ms(samples)


def agent_case(work: Path, log_mb: int, repeat: int) -> dict[str, float]:
    state = Path(tempfile.mkdtemp(prefix="ivl-bench-why-"))
    manifest = work / "infraveil.toml"
    lines = log_mb * 2**20 // 100
    script = work / "crash.py"
    script.write_text(CRASH.format(lines=lines))
    manifest.write_text(f'[services.big]\ncommand = ["{sys.executable}", "{script}"]\n')
    up = infraveil_up_detached(manifest, state, work / "up.log", env=dict(os.environ))
    try:
        up.wait(timeout=120)

        def diagnosed() -> bool:
            body = json.loads(agent_get(state, "/v1/services/big/why", 10))
            return body.get("category") == "missing_env"

        began = time.monotonic()
        waited = wait_for("the diagnosis of big", diagnosed, 120, 0.2) - began
        log(f"big diagnosed {waited:.1f} s after `up` returned (it wrote {log_mb} MB first)")
        api = timed(lambda: agent_get(state, "/v1/services/big/why", 10), repeat)
        cli_argv = [INFRAVEIL, "why", "big", "--state-dir", str(state)]
        cli = timed(lambda: subprocess.run(cli_argv, capture_output=True, check=True), 5)
        return {"api": api, "cli": cli}
    finally:
        infraveil_down(state, work / "down.log").wait(timeout=60)


def exit_time_case(work: Path, log_mb: int, repeat: int) -> float:
    path = work / "1.log"
    stamp = timestamp(time.time()).encode()
    row = stamp + b" out " + b"y" * 64 + b"\n"
    with open(path, "wb") as f:
        chunk = row * (2**20 // len(row))
        for _ in range(log_mb):
            f.write(chunk)
        for text in ("Traceback (most recent call last):", "KeyError: 'DATABASE_URL'"):
            f.write(stamp + b" out " + text.encode() + b"\n")

    def run() -> None:
        lines, truncated = log_facts(path)
        d = diagnose(Facts(log=lines, log_source=str(path), log_truncated=truncated, exit_code=1))
        assert d.finding.category == "missing_env", d.finding

    return timed(run, repeat)


def corpus_case(repeat: int) -> tuple[int, float]:
    cases = load_cases(ROOT / "tests" / "corpus" / "cases")

    def run() -> None:
        for case in cases:
            tail = read_tail(case.path / "log.txt")
            text, _ = decode_tail(tail.lines)
            diagnose(Facts(log=lines_of(text), log_source="log.txt", exit_code=case.exit_code))

    return len(cases), timed(run, repeat)


def huge_case(work: Path, huge_mb: int) -> float:
    path = work / "huge.log"
    chunk = (b"INFO request served in 3 ms\n" * (2**20 // 28))[: 2**20]
    with open(path, "wb") as f:
        for _ in range(huge_mb):
            f.write(chunk)
        f.write(b"ERROR: listen tcp :8080: bind: address already in use\n")
    argv = [INFRAVEIL, "doctor", "--log", str(path), "-o", "json"]
    return timed(lambda: subprocess.run(argv, capture_output=True, check=True), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log-mb", type=int, default=50)
    parser.add_argument("--huge-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--report", type=Path, help="write the Markdown report here")
    add_results_dir(parser)
    args = parser.parse_args()
    machine = machine_info(infraveil_cli_version())
    with tempfile.TemporaryDirectory(prefix="ivl-bench-why-") as tmp:
        work = Path(tmp)
        log(f"agent: a service that writes {args.log_mb} MB, then crashes")
        agent = agent_case(work, args.log_mb, args.repeat)
        log("exit-time diagnosis on a log file of that size")
        exit_ms = exit_time_case(work, args.log_mb, args.repeat)
        log("doctor over the corpus")
        count, corpus_ms = corpus_case(args.repeat)
        log(f"doctor on a {args.huge_mb} MB file")
        huge_ms = huge_case(work, args.huge_mb)
    add_end_loadavg(machine)
    rows = [
        [
            f"why over the API (instance wrote {args.log_mb} MB)",
            f"{agent['api']:.1f} ms",
            "≤ 200 ms",
        ],
        [
            "`infraveil why big` (whole command, Python start-up included)",
            f"{agent['cli']:.0f} ms",
            "≤ 200 ms",
        ],
        [f"exit-time diagnosis of a {args.log_mb} MB log file", f"{exit_ms:.1f} ms", "-"],
        [f"doctor over the corpus ({count} logs, in-process)", f"{corpus_ms:.0f} ms", "≤ 2 s"],
        [f"`infraveil doctor --log` on a {args.huge_mb} MB file", f"{huge_ms:.0f} ms", "bounded"],
    ]
    header = ["what", "median", "target"]
    print(format_table(header, rows, markdown=False))
    report = args.report or args.results_dir / f"{date.today()}-why-vm.md"
    report.write_text(
        "\n".join(
            [
                "# `why` and `doctor`: how fast they answer",
                "",
                f"Run: `{command_line()}`",
                "",
                format_table(header, rows, markdown=True),
                "",
                "Reading it: `why` answers from the diagnosis the agent kept when the instance"
                " ended, so its time does not grow with the log; the log's size is paid once, at"
                " the exit (third row: read the last 256 KiB, count the lines before them for real"
                " line numbers, run the engine on the last 400 lines). The agent rotates an"
                " instance's log at 10 MiB, so a real exit reads at most a fifth of that file."
                " The whole `infraveil why` command is mostly Python starting and importing the"
                " CLI (verbs are imported only when they run).",
                "",
                *machine_section(machine),
            ]
        )
    )
    log(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
