"""Load the Kubernetes corpus and score `infraveil doctor k8s` against it.

Each case is a directory under `cases/`: `case.toml` (where it came from, the expected category,
a verbatim substring of the decisive line) and the evidence as the reporter posted it, in one of
three forms: `describe.txt` (+ `logs.txt`), `paste.txt` (describe text and logs mixed), or a
bundle (`pod.json`, `events.json`, `logs/<container>.previous.txt`, ...). The evidence is read
exactly as the CLI reads it (`--describe FILE [--logs FILE]`, `--describe PASTE`, `--bundle DIR`)
and diagnosed by `diagnose_pod`; the finding of one container is scored. See README.md here.
"""

from __future__ import annotations

import json
import tomllib
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infraveil.k8s.evidence import PodEvidence

CASES = Path(__file__).resolve().parent / "cases"
"""Where the cases live in a checkout."""

ALLOWED_KEYS = frozenset({"source", "category", "cause", "decisive", "container", "note"})
REQUIRED_KEYS = frozenset({"source", "category", "decisive", "note"})

DESCRIBE, LOGS, PASTE, POD = "describe.txt", "logs.txt", "paste.txt", "pod.json"
BUNDLE_FILES = frozenset({"pod.json", "events.json", "node-events.json", "owners.json"})
KINDS = ("describe", "paste", "bundle")
INIT = "init_container"


def read_text(path: Path) -> str:
    """A file as a person pasted it: bytes, decoded as UTF-8 with replacement."""
    return path.read_bytes().decode("utf-8", errors="replace")


def _kind(directory: Path) -> str:
    """Which form the evidence takes; "mixed" or "none" when the case is malformed."""
    present = [
        kind
        for kind, marker in (("describe", DESCRIBE), ("paste", PASTE), ("bundle", POD))
        if (directory / marker).is_file()
    ]
    if len(present) == 1:
        return present[0]
    return "mixed" if present else "none"


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (a decisive quote may hold characters JSON escapes)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@dataclass(frozen=True)
class Case:
    """One pod from a public report, with what the thread's resolution supports."""

    name: str  # the directory name: "017-calico-node-restarting-bird-confd"
    path: Path
    kind: str  # "describe", "paste", "bundle" (or "mixed"/"none": malformed)
    source: str
    category: str
    decisive: str
    note: str
    cause: str | None = None  # for an init container: the category of its own failure
    container: str | None = None  # the container whose finding is scored
    raw: dict[str, object] | None = None  # case.toml as parsed, for the format checks

    def files(self) -> dict[str, str]:
        """Every evidence file, by its path inside the case directory, as text."""
        found: dict[str, str] = {}
        for p in sorted(self.path.rglob("*")):
            if p.is_file() and p.name != "case.toml":
                found[p.relative_to(self.path).as_posix()] = read_text(p)
        return found

    def searchable(self) -> list[str]:
        """The texts `decisive` must occur in: each file as written, and for JSON files every
        string value decoded (`\\"` in the file is `"` in the value)."""
        texts: list[str] = []
        for name, text in self.files().items():
            texts.append(text)
            if name.endswith(".json"):
                try:
                    texts.extend(_strings(json.loads(text)))
                except ValueError:
                    pass  # a truncated JSON file is a fine case; only its raw text counts
        return texts

    def evidence(self) -> PodEvidence:
        """What `infraveil doctor k8s` would read from these files."""
        if self.kind == "bundle":
            from infraveil.k8s.bundle import read_bundle

            pods = read_bundle(self.path)
            if not pods:
                raise ValueError(f"{self.name}: read_bundle found no pod")
            return pods[0]
        from infraveil.k8s.describe import parse_describe

        if self.kind == "describe":
            logs_file = self.path / LOGS
            logs = read_text(logs_file) if logs_file.is_file() else None
            return parse_describe(read_text(self.path / DESCRIBE), logs, source=DESCRIBE)
        if self.kind == "paste":
            return parse_describe(read_text(self.path / PASTE), None, source=PASTE)
        raise ValueError(f"{self.name}: evidence is {self.kind}; want exactly one of {KINDS}")


def load_case(directory: Path) -> Case:
    """One case directory -> a Case (raises on a missing or malformed case.toml)."""
    with (directory / "case.toml").open("rb") as f:
        raw = tomllib.load(f)
    cause, container = raw.get("cause"), raw.get("container")
    return Case(
        name=directory.name,
        path=directory,
        kind=_kind(directory),
        source=str(raw.get("source", "")),
        category=str(raw.get("category", "")),
        decisive=str(raw.get("decisive", "")),
        note=str(raw.get("note", "")),
        cause=str(cause) if cause is not None else None,
        container=str(container) if container is not None else None,
        raw=raw,
    )


def load_cases(root: Path = CASES) -> list[Case]:
    """Every case under `root`, in name order."""
    return [load_case(d) for d in sorted(root.iterdir()) if (d / "case.toml").is_file()]


# --- scoring ----------------------------------------------------------------------------------


def pick_container(containers: list[dict[str, Any]], name: str | None) -> dict[str, Any] | None:
    """The container a case scores: the named one, else the first failing one, init containers
    first (Kubernetes runs them before the others, so theirs is the failure that blocks)."""
    if name is not None:
        return next((c for c in containers if c.get("name") == name), None)
    failing = [c for c in containers if c.get("failing")]
    failing.sort(key=lambda c: not c.get("init"))  # stable: report order within each group
    return failing[0] if failing else None


def inner_cause(diagnosis: dict[str, Any]) -> dict[str, Any] | None:
    """An init container's own cause when the doctor reports it beside `init_container`: a
    `cause` that is a category id or a finding with one."""
    cause = diagnosis.get("cause")
    if isinstance(cause, str):
        return {"category": cause, "evidence": []}
    if isinstance(cause, dict) and isinstance(cause.get("category"), str):
        return cause
    return None


def evidence_texts(diagnosis: dict[str, Any]) -> list[str]:
    """The quoted evidence of a finding, and of its inner cause if it names one."""
    items = list(diagnosis.get("evidence") or [])
    cause = inner_cause(diagnosis)
    if cause is not None:
        items += list(cause.get("evidence") or [])
    return [str(e.get("text", "")) for e in items if isinstance(e, dict)]


def category_matches(case: Case, got: str, cause: str | None) -> bool:
    """Whether the finding's category is the case's: an init container may be reported as
    `init_container` naming its cause, or by its cause alone; a case with `cause` wants that
    cause either way."""
    if case.cause is not None:
        return got == case.cause or (got == case.category and cause == case.cause)
    return got == case.category or (got == INIT and cause == case.category)


@dataclass(frozen=True)
class Result:
    """How the doctor did on one case."""

    case: Case
    report: dict[str, Any] | None  # PodReport.as_dict(); None when the doctor raised
    scored: dict[str, Any] | None  # the container entry that was scored, if there was one
    category_ok: bool
    quoted_ok: bool  # some evidence text of the scored finding contains `decisive`
    error: str = ""  # what the pipeline raised: a traceback on a real case is a miss too

    @property
    def diagnosis(self) -> dict[str, Any] | None:
        d = self.scored.get("diagnosis") if self.scored else None
        return d if isinstance(d, dict) else None

    @property
    def got(self) -> str:
        """The category found, or why there is none."""
        if self.error:
            return "error"
        if self.scored is None:
            return "no failing container"
        d = self.diagnosis
        return str(d.get("category")) if d else "no diagnosis"

    @property
    def got_cause(self) -> str | None:
        d = self.diagnosis
        cause = inner_cause(d) if d else None
        return str(cause["category"]) if cause else None


def score(case: Case, report: dict[str, Any]) -> Result:
    """Score a report (PodReport.as_dict()) against what the case expects."""
    scored = pick_container(list(report.get("containers") or []), case.container)
    diagnosis = scored.get("diagnosis") if scored else None
    if not isinstance(diagnosis, dict):
        return Result(case, report, scored, False, False)
    cause = inner_cause(diagnosis)
    category_ok = category_matches(
        case, str(diagnosis.get("category")), str(cause["category"]) if cause else None
    )
    quoted_ok = any(case.decisive in text for text in evidence_texts(diagnosis))
    return Result(case, report, scored, category_ok, quoted_ok)


def run_case(case: Case) -> Result:
    """Read the evidence as the CLI does, diagnose it, and score the result.

    Without the doctor nothing can be measured, so its ImportError propagates; anything else
    that raises (a reader not built yet, a traceback on real input) is this case's miss, kept
    with its last frames for the report."""
    from infraveil.k8s.doctor import diagnose_pod

    try:
        report = diagnose_pod(case.evidence()).as_dict()
    except Exception as exc:
        frames = traceback.format_exception(exc)
        return Result(case, None, None, False, False, error="".join(frames[-3:]).strip())
    return score(case, report)


def run_all(root: Path = CASES) -> list[Result]:
    """Run the doctor on every case."""
    return [run_case(c) for c in load_cases(root)]
