"""What the benchmark scripts share: the machine table of their reports, waits with a deadline,
the fd limit, the run's tagged processes, /proc readers and the `infraveil` commands they start.

Imported by bench/run.py, bench/health.py and bench/probe_cost.py. They are run as scripts
(`python bench/X.py`), which puts this directory first on sys.path. Standard library and
infraveil only: health.py and probe_cost.py run without the bench extra (psutil, supervisor).
Nothing here measures anything; each script keeps its own measurements.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from infraveil.api.client import UnixHTTPConnection

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin/: infraveil (and supervisord, py-spy if there)
INFRAVEIL = str(BIN / "infraveil")

TAG_VAR = "IVBENCH_TAG"
"""Set in the environment of each supervisor a benchmark starts; every service inherits it, so
the processes of one run can be found (and killed) even after their supervisor is gone."""


def log(msg: str) -> None:
    """A timestamped progress line on stderr (stdout is for the summary)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """The benchmark cannot go on: a deadline passed, a command failed, the agent is gone."""


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt, so that a kill cleans up the way Ctrl-C does."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float) -> float:
    """Poll `check` until it holds; the monotonic time it first held. BenchError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ── /proc readers ────────────────────────────────────────────────────────────────────────────


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict ({} if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    except OSError:
        return {}


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie nobody has reaped yet counts as gone)."""
    state = proc_status(pid).get("State", "")
    return bool(state) and not state.startswith(("Z", "X"))


def run_ns(pid: int) -> int | None:
    """Nanoseconds on a CPU of every live thread of `pid` (/proc/PID/task/*/schedstat).

    Exact, unlike the tick-sampled utime/stime (what `top` and psutil's cpu_times() show): a
    process that wakes for well under a scheduler tick (4 ms at HZ=250) is charged a whole tick
    or nothing, while the scheduler accounts every nanosecond a task runs.
    """
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    total = 0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


# ── the run's processes ──────────────────────────────────────────────────────────────────────


def tagged_pids(tag: str, exclude: Iterable[int] = ()) -> list[int]:
    """Live processes of this user whose environment carries `TAG_VAR=tag` (never this one)."""
    skip = {os.getpid(), *exclude}
    needle = f"{TAG_VAR}={tag}\0".encode()
    found = []
    uid = os.getuid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if needle not in f.read() + b"\0":
                    continue
        except OSError:
            continue
        if process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def kill_tagged(tag: str, exclude: Iterable[int] = (), timeout: float = 10.0) -> int:
    """SIGKILL every live process carrying `tag`; how many there were.

    Then waits, at most `timeout` seconds, until none is left: a caller that goes on to remove
    their directories or start the next run should not meet them.
    """
    skip = set(exclude)
    pids = tagged_pids(tag, skip)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if pids:
        with contextlib.suppress(BenchError):
            wait_for("leftovers to die", lambda: not tagged_pids(tag, skip), timeout, 0.1)
    return len(pids)


def kill_child(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """SIGKILL a command this run started if it still runs, and reap it (bounded)."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)


def spawn_logged(
    argv: list[str], output: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `argv` with stdin closed and its stdout and stderr appended to `output`.

    Without `env` it gets this process's environment, which carries no tag: a stop command is
    not one of the run's processes.
    """
    with open(output, "ab") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )


# ── the agent under test ─────────────────────────────────────────────────────────────────────


def infraveil_up_detached(
    manifest: Path, state_dir: Path, output: Path, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start `infraveil up -d`: it exits once every service has settled; the agent stays."""
    argv = [INFRAVEIL, "up", "-d", "-f", str(manifest), "--state-dir", str(state_dir)]
    return spawn_logged([*argv, "-o", "json"], output, env)


def infraveil_down(state_dir: Path, output: Path) -> subprocess.Popen[bytes]:
    """Start `infraveil down -q`: it stops every service, then the agent."""
    return spawn_logged([INFRAVEIL, "down", "-q", "--state-dir", str(state_dir)], output)


def agent_pid(state_dir: Path) -> int | None:
    """The agent's pid, from STATE_DIR/agent.lock (None before it has started)."""
    try:
        words = (state_dir / "agent.lock").read_text().split()
    except OSError:
        return None
    return int(words[0]) if words and words[0].isdigit() else None


def agent_get(state_dir: Path, target: str, timeout: float) -> bytes:
    """GET `target` from the agent's API on its Unix socket; the body. BenchError unless 200."""
    conn = UnixHTTPConnection(str(state_dir / "agent.sock"), timeout=timeout)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise BenchError(f"GET {target}: HTTP {response.status}: {body[:300]!r}")
    return body


# ── the machine and the report ───────────────────────────────────────────────────────────────


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" where it has none, e.g. on ARM)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as `top` shows them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def add_end_loadavg(machine: dict[str, str]) -> None:
    """Turn the `loadavg` taken at the start into "… at the start; … at the end"."""
    machine["loadavg"] += f" at the start; {loadavg()} at the end"


def machine_info(
    infraveil: str,
    *,
    physical_cores: int | None = None,
    versions: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What the report says about the machine, in the order of its table.

    `infraveil` is the version text to show (git's HEAD is added to it); `versions` are other
    packages', shown after it.
    """
    os_name = platform.system()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        ram = f"{kib / 2**20:.1f} GiB"
    git = git_head()
    return {
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cores": f"{os.cpu_count()} logical"
        + (f", {physical_cores} physical" if physical_cores else ""),
        "ram": ram,
        "os": os_name,
        "kernel": f"{platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "infraveil": infraveil + (f", git {git}" if git else ""),
        **(versions or {}),
        "loadavg": loadavg(),
        "nofile": "{} soft / {} hard".format(*resource.getrlimit(resource.RLIMIT_NOFILE)),
    }


def infraveil_cli_version() -> str:
    """What `infraveil --version` prints (or why it could not be run)."""
    try:
        return subprocess.run(
            [INFRAVEIL, "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"({e})"


def git_head() -> str:
    """The checkout's short HEAD, saying so if src/ has uncommitted changes ("" outside git)."""
    git = ["git", "-C", str(ROOT)]
    head = ""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        r = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if r.returncode == 0:
            head = r.stdout.strip()
            dirty = subprocess.run(
                [*git, "status", "--porcelain", "--", "src"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            if dirty.stdout.strip():
                head += " (src/ has uncommitted changes)"
    return head


def machine_section(machine: Mapping[str, str]) -> list[str]:
    """The report's `## Machine` section: a two-column Markdown table."""
    return [
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine.items()),
        "",
    ]


def command_line() -> str:
    """This process's command line, quoted as a shell would take it."""
    return shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))


def format_table(header: list[str], body: list[list[str]], markdown: bool) -> str:
    """A Markdown table, or columns padded to line up in a terminal."""
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in body])
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([fmt.format(*header), sep, *(fmt.format(*line) for line in body)])


def mib(b: float) -> str:
    return f"{b / 2**20:.1f} MiB"


def add_results_dir(parser: argparse.ArgumentParser) -> None:
    """The `--results-dir` option: where the Markdown report goes."""
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=ROOT / "bench" / "results",
        help="where the Markdown report goes (default: bench/results)",
    )


def shown_path(path: Path) -> str:
    """`path` relative to the checkout when it is inside it."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
