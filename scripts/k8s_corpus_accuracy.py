#!/usr/bin/env python3
"""Run `infraveil doctor k8s` over the Kubernetes corpus and print its accuracy per category.

    .venv/bin/python scripts/k8s_corpus_accuracy.py [--verbose] [--check]

The corpus is tests/k8s_corpus/cases/ (real pod failures from public bug reports: describe
output, pastes and bundles, each with the category the thread supports and the line that proves
it). Targets: the right category for >= 95 % of the cases, and the decisive line quoted in the
scored finding's evidence for >= 90 %. --verbose prints every miss; --check exits 1 below either
target.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT / "src", ROOT / "tests"):  # works from a clean checkout, installed or not
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from corpus import accuracy  # noqa: E402
from k8s_corpus.k8s_corpus import CASES, Result, run_all  # noqa: E402


def describe_miss(r: Result) -> list[str]:
    """A miss as a person debugging the doctor wants it: expected, got, and the evidence."""
    what = [] if r.category_ok else ["category"]
    if not (r.category_ok and r.quoted_ok):
        what.append("quote")
    expected = r.case.category + (f" (cause {r.case.cause})" if r.case.cause else "")
    got = r.got + (f" (cause {r.got_cause})" if r.got_cause else "")
    lines = [
        f"MISS {r.case.name} ({', '.join(what)})",
        f"  expected: {expected}   got: {got}",
        f"  decisive: {r.case.decisive!r}",
    ]
    if r.error:
        lines += [f"  error:    {line}" for line in r.error.splitlines()]
    if r.scored is not None:
        init = "init " if r.scored.get("init") else ""
        lines.append(
            f"  scored:   {init}container {r.scored.get('name')!r}"
            f" state={r.scored.get('state')} restarts={r.scored.get('restarts')}"
        )
    elif r.report is not None:
        names = [f"{c.get('name')!r}" for c in r.report.get("containers") or []]
        lines.append(f"  containers: {', '.join(names) or '(none)'}; none failing")
    d = r.diagnosis
    if d is not None:
        lines.append(f"  summary:  {d.get('summary')}")
        for e in d.get("evidence") or []:
            lines.append(f"  evidence: [{e.get('source')}] {e.get('text')}")
        others = [str(o.get("category")) for o in d.get("others") or []]
        if others:
            lines.append("  others:   " + ", ".join(others))
    if r.report is not None and r.report.get("problems"):
        lines += [f"  problem:  {p}" for p in r.report["problems"][:5]]
    lines.append(f"  source:   {r.case.source}")
    return lines


def main(argv: list[str] | None = None) -> int:
    return accuracy.main(argv, __doc__ or "", CASES, run_all, describe_miss)


if __name__ == "__main__":
    sys.exit(main())
