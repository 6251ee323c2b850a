#!/usr/bin/env python3
"""Run the diagnosis engine over the crash-log corpus and print its accuracy per category.

    .venv/bin/python scripts/corpus_accuracy.py [--verbose] [--check]

The corpus is tests/corpus/cases/ (real crash logs from public bug reports, each with the
category a careful engineer concluded and the line that proves it). Targets: the right category
for >= 95 % of the cases, and the decisive line quoted in the winning finding's evidence for
>= 90 %. --verbose prints every miss; --check exits 1 below either target.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT / "src", ROOT / "tests"):  # works from a clean checkout, installed or not
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from corpus import accuracy  # noqa: E402
from corpus.corpus import CASES, Result, run_all  # noqa: E402


def _miss(r: Result) -> list[str]:
    f = r.diagnosis.finding
    what = [] if r.category_ok else ["category"]
    if not (r.category_ok and r.quoted_ok):
        what.append("quote")
    lines = [
        f"MISS {r.case.name} ({', '.join(what)})",
        f"  expected: {r.case.category}   got: {r.got} ({f.confidence.value})",
        f"  decisive: {r.case.decisive!r}",
        f"  summary:  {f.summary}",
    ]
    lines += [f"  evidence: [{e.source}] {e.text}" for e in f.evidence]
    if r.diagnosis.others:
        lines.append("  others:   " + ", ".join(o.category.value for o in r.diagnosis.others))
    lines.append(f"  source:   {r.case.source}")
    return lines


def main(argv: list[str] | None = None) -> int:
    return accuracy.main(argv, __doc__ or "", CASES, run_all, _miss)


if __name__ == "__main__":
    sys.exit(main())
