"""Load the crash-log corpus and score the diagnosis engine against it.

Each case is a directory under `cases/` holding `log.txt` (the text as the reporter pasted it)
and `case.toml` (where it came from, the expected category, and a verbatim substring of the
decisive line). See README.md in this directory for the format.
"""

from __future__ import annotations

import signal as _signal
import tomllib
from dataclasses import dataclass
from pathlib import Path

from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import Facts, lines_of
from infraveil.core.diagnosis.finding import Diagnosis

CASES = Path(__file__).resolve().parent / "cases"
"""Where the cases live in a checkout."""

ALLOWED_KEYS = frozenset(
    {"source", "category", "decisive", "exit_code", "signal", "oom_killed", "note"}
)
REQUIRED_KEYS = frozenset({"source", "category", "decisive", "note"})


@dataclass(frozen=True)
class Case:
    """One crash log from a public report, with what a careful engineer concluded."""

    name: str  # the directory name: "017-anisette-entrypoint-segfault"
    path: Path
    text: str  # log.txt, decoded as UTF-8 with replacement
    source: str
    category: str
    decisive: str
    note: str
    exit_code: int | None = None
    signal: str | None = None  # a signal name as the report gives it: "SIGSEGV"
    oom_killed: bool = False
    raw: dict[str, object] | None = None  # case.toml as parsed, for the format checks

    def facts(self) -> Facts:
        """What `doctor` would know from this report: the log, and only what it states."""
        return Facts(
            log=lines_of(self.text),
            log_source="log.txt",
            exit_code=self.exit_code,
            signal=signal_number(self.signal) if self.signal else None,
            oom_killed=self.oom_killed,
        )


@dataclass(frozen=True)
class Result:
    """How the engine did on one case."""

    case: Case
    diagnosis: Diagnosis
    category_ok: bool
    quoted_ok: bool  # some evidence text of the winning finding contains `decisive`

    @property
    def got(self) -> str:
        return self.diagnosis.finding.category.value


def signal_number(name: str) -> int:
    """`SIGSEGV`, `SEGV` or `11` -> 11."""
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    return int(_signal.Signals[text])


def read_text(path: Path) -> str:
    """A log file as a person pasted it: bytes, decoded as UTF-8 with replacement."""
    return path.read_bytes().decode("utf-8", errors="replace")


def load_case(directory: Path) -> Case:
    """One case directory -> a Case (raises on a missing file or a malformed case.toml)."""
    with (directory / "case.toml").open("rb") as f:
        raw = tomllib.load(f)
    exit_code = raw.get("exit_code")
    sig = raw.get("signal")
    return Case(
        name=directory.name,
        path=directory,
        text=read_text(directory / "log.txt"),
        source=str(raw.get("source", "")),
        category=str(raw.get("category", "")),
        decisive=str(raw.get("decisive", "")),
        note=str(raw.get("note", "")),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        signal=str(sig) if sig is not None else None,
        oom_killed=bool(raw.get("oom_killed", False)),
        raw=raw,
    )


def load_cases(root: Path = CASES) -> list[Case]:
    """Every case under `root`, in name order."""
    return [load_case(d) for d in sorted(root.iterdir()) if (d / "case.toml").is_file()]


def run_case(case: Case) -> Result:
    """Run the engine on one case and score it."""
    diagnosis = diagnose(case.facts())
    best = diagnosis.finding
    category_ok = best.category.value == case.category
    quoted_ok = any(case.decisive in e.text for e in best.evidence)
    return Result(case, diagnosis, category_ok, quoted_ok)


def run_all(root: Path = CASES) -> list[Result]:
    """Run the engine on every case."""
    return [run_case(c) for c in load_cases(root)]
