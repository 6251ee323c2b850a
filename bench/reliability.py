"""The reliability report: what survives the agent's death, and what hostile input does to it.

    .venv/bin/python bench/reliability.py            # the full run: 3 to 4 minutes on 2 cores
    .venv/bin/python bench/reliability.py --quick    # fewer kills and cases: about 1.5 minutes

Prints one summary and writes it, with the machine and every figure, to
`bench/results/reliability-YYYY-MM-DD.md` (`-quick`, other counts and failed runs get a suffix,
so none replaces a full report). The figures:

- services kept across N agent kills (N = 10, 50 services of `sleep infinity`): after each
  `kill -9` of the agent and `infraveil up -d`, the services whose process (pid *and* start
  time), instance number and state the next agent kept, its `Adopted` events, and how long
  `up -d` took to bring the next agent up and adopt them all;
- lines lost / duplicated across N agent kills: a service writing a numbered line every
  10 ms, ≥ 20 of them each time while no agent reads; the log must hold each number once;
- M random kills (M = 40; a seeded RNG, the seed is printed): the agent killed while it
  starts, or while services crash and restart and CLI commands run. After each: corrupt
  stores (`PRAGMA integrity_check`), services with two live instances, live instances the
  store does not record, and events a client had received from the API that are not in the
  store;
- fuzz cases tried and crashes found: `tests/e2e/fuzzing.py`'s `run_api_fuzz` against a running
  agent, and its `run_manifest_fuzz` (each is "not run" where that file lacks it);
- the peer: supervisord 4 killed with `kill -9` while 50 programs run, then started again —
  its programs kept, and copies of them left running (`--no-peer` skips it).

The infraveil scenarios are the functions of tests/e2e/test_e2e_resilience.py (the CI runs them
with smaller numbers) and run the real CLI through its `Infraveil` helper, in temp dirs;
everything they start is stopped and killed on every way out. It needs what the tests need
(`pip install -e '.[test,bench]'`: pytest, hypothesis; supervisor for the peer). Exit status:
0 every figure is clean, 1 something was lost, duplicated or corrupt, or crashed, 2 the run
could not be made, 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    ROOT,
    add_end_loadavg,
    add_results_dir,
    command_line,
    format_table,
    infraveil_cli_version,
    interrupt_on_sigterm,
    log,
    machine_info,
    machine_section,
    process_alive,
    raise_fd_limit,
    shown_path,
)

sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

import psutil  # noqa: E402  (after the path: the scenarios live with the tests)
import test_e2e_resilience as scenarios  # noqa: E402
from e2e_support import Infraveil  # noqa: E402

DEFAULTS = {"kills": 10, "services": 50, "faults": 40, "fuzz": 2000}
QUICK = {"kills": 3, "services": 50, "faults": 10, "fuzz": 300}


@dataclass
class Figures:
    kept: dict[str, Any] | None = None
    lines: dict[str, Any] | None = None
    faults: dict[str, Any] | None = None
    api_fuzz: tuple[int, int] | None = None
    manifest_fuzz: tuple[int, int] | None = None
    peer: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    """Scenario → why it could not be run to the end (its traceback)."""


@contextmanager
def agent_dir() -> Iterator[Infraveil]:
    """An `Infraveil` in temp dirs of its own; `down`, then everything it started is killed."""
    workdir = Path(tempfile.mkdtemp(prefix="ivrel-"))
    state_dir = Path(tempfile.mkdtemp(prefix="ivrel-state-"))  # short: the socket path
    iv = Infraveil(workdir, state_dir, uuid.uuid4().hex)
    try:
        yield iv
    finally:
        try:
            leftovers = iv.cleanup()
            if leftovers:
                log(f"`infraveil down` left {len(leftovers)} process(es); killed")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            shutil.rmtree(state_dir, ignore_errors=True)


def run_scenario(figures: Figures, name: str, run: Callable[[], None]) -> None:
    """Run one scenario; a failure is recorded for the report and the others still run."""
    log(f"{name}: start")
    t0 = time.monotonic()
    try:
        run()
    except KeyboardInterrupt:
        raise
    except BaseException:  # pytest's Failed (a timed-out wait) is a BaseException too
        figures.errors[name] = traceback.format_exc()
        log(f"{name}: FAILED\n{figures.errors[name]}")
    log(f"{name}: done in {time.monotonic() - t0:.0f} s")


def kept_across_kills(figures: Figures, services: int, kills: int) -> None:
    with agent_dir() as iv:
        manifest = scenarios.sleepers(services)
        iv.up(manifest)
        result = scenarios.keep_across_kills(iv, manifest, kills)
        figures.kept = asdict(result)
        figures.kept["duplicates"] = scenarios.duplicates(iv)
        figures.kept["unrecorded"] = scenarios.unrecorded(iv)


def lines_across_kills(figures: Figures, kills: int) -> None:
    with agent_dir() as iv:
        result = scenarios.lines_across_kills(iv, iv.workdir / "count", kills)
        figures.lines = asdict(result)


def fault_injection(figures: Figures, rounds: int, seed: int) -> None:
    with agent_dir() as iv:
        services = scenarios.fault_services(iv.workdir / "count")
        result = scenarios.fault_injection(iv, services, seed, rounds)
        figures.faults = asdict(result)


def fuzz(figures: Figures, cases: int) -> None:
    try:
        import fuzzing  # tests/e2e/fuzzing.py (needs hypothesis: the dev extra)
    except ImportError as e:
        raise RuntimeError(f"tests/e2e/fuzzing.py cannot be imported: {e}") from e
    with agent_dir() as iv:
        iv.up(scenarios.sleepers(5))
        figures.api_fuzz = fuzzing.run_api_fuzz(iv.state_dir / "agent.sock", cases)
    manifest_fuzz = getattr(fuzzing, "run_manifest_fuzz", None)
    if manifest_fuzz is not None:
        figures.manifest_fuzz = manifest_fuzz(cases)


def peer_supervisord(figures: Figures, services: int) -> None:
    """supervisord killed -9 with `services` programs, then started again: what it kept."""
    import run  # bench/run.py: its supervisord harness (needs the bench extra)

    with run.Supervisord(run.service_names(services), with_starts=False) as h:
        run.start_and_wait(h, 120)
        before = h.pids()
        started = {name: psutil.Process(pid).create_time() for name, pid in before.items()}
        assert h.launcher is not None
        h.launcher.send_signal(signal.SIGKILL)
        h.launcher.wait(timeout=10)
        survived = sum(process_alive(pid) for pid in before.values())
        run.start_and_wait(h, 120)
        after = h.pids()
        kept = sum(
            after.get(name) == pid and psutil.Process(pid).create_time() == started[name]
            for name, pid in before.items()
        )
        copies = [pid for name, pid in before.items() if process_alive(pid) and after[name] != pid]
        orphans = len(copies)
        for pid in copies:  # nobody supervises them: the harness's graceful stop would wait
            os.kill(pid, signal.SIGKILL)
        figures.peer = {
            "services": len(before),
            "alive_after_kill": survived,
            "kept": kept,
            "copies_left_running": orphans,
        }


# ── the report ──────────────────────────────────────────────────────────────────────────────


def clean(figures: Figures) -> bool:
    """Nothing lost, duplicated, corrupt or crashed, and every scenario ran."""
    if figures.errors:
        return False
    kept, lines, faults = figures.kept, figures.lines, figures.faults
    ok = True
    if kept is not None:
        ok &= all(k == kept["services"] for k in kept["kept"])
        ok &= not kept["duplicates"] and not kept["unrecorded"]
    if lines is not None:
        ok &= not lines["missing"] and not lines["duplicated"] and lines["out_of_order"] == 0
    if faults is not None:
        ok &= not any(faults[k] for k in ("corrupt", "duplicated", "unrecorded", "lost_events"))
    for fuzzed in (figures.api_fuzz, figures.manifest_fuzz):
        ok &= fuzzed is None or fuzzed[1] == 0
    return bool(ok)


def summary_rows(figures: Figures, p: argparse.Namespace) -> list[list[str]]:
    def not_run(name: str) -> str:
        return "failed (see below)" if name in figures.errors else "not run"

    rows: list[list[str]] = []
    kept = figures.kept
    if kept is not None:
        per_kill = kept["kept"]
        restart = sorted(kept["restart_seconds"])
        rows += [
            [
                f"services kept across {kept['kills']} agent kills ({kept['services']} services)",
                f"{min(per_kill)}/{kept['services']} at worst"
                f" ({sum(per_kill)}/{kept['services'] * kept['kills']} in all)",
                "all",
            ],
            [
                "Adopted events per kill",
                f"{min(kept['adopted'])}–{max(kept['adopted'])}",
                str(kept["services"]),
            ],
            [
                "`up -d` after a kill → next agent up, all adopted",
                f"median {restart[len(restart) // 2]:.2f} s, max {restart[-1]:.2f} s",
                "—",
            ],
            [
                "services with two live instances / unrecorded live instances, after",
                f"{len(kept['duplicates'])} / {len(kept['unrecorded'])}",
                "0 / 0",
            ],
        ]
    else:
        rows.append([f"services kept across {p.kills} agent kills", not_run("kept"), "all"])
    lines = figures.lines
    if lines is not None:
        rows.append(
            [
                f"lines lost / duplicated / out of order across {lines['kills']} agent kills",
                f"{len(lines['missing'])} / {len(lines['duplicated'])} / {lines['out_of_order']}"
                f" of {lines['written']} lines",
                "0 / 0 / 0",
            ]
        )
    else:
        rows.append([f"lines lost across {p.kills} agent kills", not_run("lines"), "0"])
    faults = figures.faults
    if faults is not None:
        rounds = faults["rounds"]
        rows += [
            [
                f"corrupt stores after {rounds} random kills (seed {faults['seed']})",
                f"{len(faults['corrupt'])}",
                "0",
            ],
            [
                "  services with two live instances / unrecorded live instances",
                f"{len(faults['duplicated'])} / {len(faults['unrecorded'])}",
                "0 / 0",
            ],
            [
                "  acknowledged events lost",
                f"{len(faults['lost_events'])} of {faults['acknowledged']}",
                "0",
            ],
            [
                "  kills while the agent started / CLI commands run meanwhile",
                f"{faults['killed_starting']} / {faults['commands']}",
                "—",
            ],
        ]
    else:
        rows.append([f"corrupt stores after {p.faults} random kills", not_run("faults"), "0"])
    if figures.api_fuzz is not None:
        tried, crashes = figures.api_fuzz
        rows.append(["API fuzz: cases tried / crashes found", f"{tried} / {crashes}", "— / 0"])
    else:
        rows.append(["API fuzz: cases tried / crashes found", not_run("fuzz"), "— / 0"])
    if figures.manifest_fuzz is not None:
        tried, crashes = figures.manifest_fuzz
        rows.append(["manifest fuzz: cases tried / crashes found", f"{tried} / {crashes}", "— / 0"])
    else:
        rows.append(["manifest fuzz: cases tried / crashes found", "not run", "— / 0"])
    peer = figures.peer
    if peer is not None:
        rows.append(
            [
                f"supervisord 4 killed -9 with {peer['services']} programs, started again:"
                " programs kept / old copies still running beside the new ones",
                f"{peer['kept']} / {peer['copies_left_running']}",
                "—",
            ]
        )
    elif not p.no_peer:
        rows.append(["supervisord killed -9, started again", not_run("peer"), "—"])
    return rows


def report_path(out_dir: Path, started: dt.datetime, p: argparse.Namespace, ok: bool) -> Path:
    name = f"reliability-{started:%Y-%m-%d}"
    counts = {k: getattr(p, k) for k in DEFAULTS}
    if p.quick:
        name += "-quick"
    elif counts != DEFAULTS:
        name += "-" + "-".join(f"{k}{v}" for k, v in counts.items() if DEFAULTS[k] != v)
    if not ok:
        name += "-partial"
    return out_dir / f"{name}.md"


def write_report(
    path: Path,
    started: dt.datetime,
    elapsed: float,
    machine: dict[str, str],
    figures: Figures,
    p: argparse.Namespace,
) -> None:
    verdict = "every figure clean" if clean(figures) else "NOT CLEAN: see the figures"
    out = [
        f"# infraveil reliability — {started:%Y-%m-%d} on {machine['host']}",
        "",
        f"- **Date:** {started:%Y-%m-%d %H:%M:%S %Z} (run took {elapsed:.0f} s)",
        f"- **Command:** `{command_line()}` (in `{os.getcwd()}`)",
        f"- **Verdict:** {verdict}",
        "",
        *machine_section(machine),
        "## Summary",
        "",
        format_table(["figure", "value", "target"], summary_rows(figures, p), markdown=True),
        "",
        "## How",
        "",
        "The scenarios are the functions of `tests/e2e/test_e2e_resilience.py`, run with the"
        " numbers above (the CI runs 1 kill with 50 services, 3 kills for the lines and 15"
        " random kills). Each runs the real CLI against a real agent in temp dirs.",
        "",
        "- *Kept*: the pid, the process start time (psutil `create_time`), the instance number"
        " and the state `running` of every service before the kill and after `up -d` started"
        " the next agent.",
        "- *Lines*: `tests/e2e/programs/numbered.py` writes `line N` every 10 ms, one `write(2)`"
        " per line; after each kill the test waits until it wrote ≥ 20 lines with no agent"
        " reading, then starts the next agent; at the end `infraveil logs` must show 0…N once"
        " each, in order.",
        "- *Random kills*: 6 steady services, 4 that exit with a random code after 0.05–1.5 s,"
        " and one writing lines. A quarter of the kills come 0–0.8 s after the next agent took"
        " its lock (adopting and starting); the rest 0–1.5 s after its API answers, while a"
        " thread runs `restart`, `stop`/`start`, `status` and `events` and SIGKILLs services,"
        " and `events -w -o json` follows. After each kill, with no agent running: `PRAGMA"
        " integrity_check` on a read-only connection; per service at most one live process"
        " group (from /proc, by INFRAVEIL_SERVICE) and one instance recorded as running;"
        " every event the follower received is in the store, unchanged. Once an agent"
        " answers: every live process group is its service's recorded running instance.",
        "- *Fuzz*: `tests/e2e/fuzzing.py` (Hypothesis): generated requests to every endpoint of"
        " an agent running 5 services; a crash is no answer, a 5xx, an error without its JSON"
        " body, or any change of the agent's state. Manifests: mutations of the bundled ones"
        " and arbitrary TOML, loaded from a file; a crash is any exception but a"
        " `ManifestError` with a message.",
        "- *Peer*: supervisord 4 (bench/run.py's harness: `sleep 100000` programs,"
        " autorestart) killed with SIGKILL and started again with the same configuration. Its"
        " programs outlive it, unsupervised, and the new supervisord starts a second copy of"
        " each: what a service holding a port or a lock file would not survive.",
        "",
        "An agent killed between spawning an instance and recording it in the store leaves a"
        " process no row knows. The next agent finds it by the FIFO it holds"
        " (`run/NAME.N.pipe`) and kills it before it starts the service (event"
        " `LeftoverKilled`): the random kills rarely land in that window of well under a"
        " millisecond, so `test_an_instance_spawned_but_never_recorded_is_killed_before_the_"
        "next_one_starts` makes it on purpose.",
        "",
        "No window is left where output is only in the agent's memory: it leaves the pipe by"
        " splice(2) into a spool file (one system call), and the next agent writes a chunk it"
        " finds there again from the log position recorded before it (runtime/capture.py)."
        " The pipe keeps everything else: it is the service's own, and outlives the agent.",
        "",
    ]
    for name, trace in figures.errors.items():
        out += [f"## {name}: failed", "", "```", trace.rstrip(), "```", ""]
    out += [
        "## Raw figures",
        "",
        "```json",
        json.dumps(asdict(figures), indent=1, default=str),
        "```",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer kills and cases (~1.5 min)")
    ap.add_argument("--kills", type=int, help=f"agent kills ({DEFAULTS['kills']})")
    ap.add_argument("--services", type=int, help=f"services kept ({DEFAULTS['services']})")
    ap.add_argument("--faults", type=int, help=f"random kills ({DEFAULTS['faults']})")
    ap.add_argument("--fuzz", type=int, help=f"API fuzz cases ({DEFAULTS['fuzz']})")
    ap.add_argument("--seed", type=int, help="the random kills' seed (default: a random one)")
    ap.add_argument("--no-peer", action="store_true", help="skip supervisord")
    add_results_dir(ap)
    p = ap.parse_args(argv)
    base = QUICK if p.quick else DEFAULTS
    for key, value in base.items():
        if getattr(p, key) is None:
            setattr(p, key, value)
    if min(p.kills, p.services, p.faults) < 1 or p.fuzz < 0:
        ap.error("every count must be at least 1")
    seed = p.seed if p.seed is not None else random.randrange(2**32)

    interrupt_on_sigterm()
    raise_fd_limit()
    started = dt.datetime.now().astimezone()
    t0 = time.monotonic()
    versions = {"psutil": importlib.metadata.version("psutil")}
    if not p.no_peer:
        try:
            versions["supervisor"] = importlib.metadata.version("supervisor")
        except importlib.metadata.PackageNotFoundError:
            log("supervisor is not installed (pip install -e '.[bench]'): no peer figure")
            p.no_peer = True
    machine = machine_info(infraveil_cli_version(), versions=versions)
    log(f"machine: {machine['cpu']}, {machine['cores']}, {machine['ram']}; seed {seed}")
    figures = Figures()
    try:
        run_scenario(figures, "kept", lambda: kept_across_kills(figures, p.services, p.kills))
        run_scenario(figures, "lines", lambda: lines_across_kills(figures, p.kills))
        run_scenario(figures, "faults", lambda: fault_injection(figures, p.faults, seed))
        if p.fuzz:
            run_scenario(figures, "fuzz", lambda: fuzz(figures, p.fuzz))
        if not p.no_peer:
            run_scenario(figures, "peer", lambda: peer_supervisord(figures, p.services))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    add_end_loadavg(machine)
    ok = clean(figures)
    print(format_table(["figure", "value", "target"], summary_rows(figures, p), markdown=False))
    path = report_path(p.results_dir, started, p, not figures.errors)
    write_report(path, started, time.monotonic() - t0, machine, figures, p)
    print(f"\nreport: {shown_path(path)}")
    if figures.errors:
        return 2 if len(figures.errors) == 3 + bool(p.fuzz) + (not p.no_peer) else 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
