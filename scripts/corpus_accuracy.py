#!/usr/bin/env python3
"""Run the diagnosis engine over the crash-log corpus and print its accuracy per category.

    .venv/bin/python scripts/corpus_accuracy.py [--verbose] [--check]

The corpus is tests/corpus/cases/ (real crash logs from public bug reports, each with the
category a careful engineer concluded and the line that proves it). Targets: the right category
for >= 95 % of the cases, and the decisive line quoted in the winning finding's evidence for
>= 90 %. --verbose prints every miss; --check exits 1 below either target.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT / "src", ROOT / "tests"):  # works from a clean checkout, installed or not
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from corpus.corpus import CASES, Result, run_all  # noqa: E402

CATEGORY_TARGET = 0.95
QUOTED_TARGET = 0.90


def _pct(n: int, total: int) -> float:
    return 100.0 * n / total if total else 0.0


def _table(results: list[Result]) -> list[str]:
    by_category: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_category[r.case.category].append(r)
    width = max([len("category"), *(len(c) for c in by_category)])
    lines = [f"{'category':<{width}}  {'cases':>5}  {'correct':>7}  {'quoted':>6}"]
    lines.append("-" * len(lines[0]))
    for category in sorted(by_category):
        rs = by_category[category]
        correct = sum(r.category_ok for r in rs)
        quoted = sum(r.category_ok and r.quoted_ok for r in rs)
        lines.append(f"{category:<{width}}  {len(rs):>5}  {correct:>7}  {quoted:>6}")
    return lines


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", "-v", action="store_true", help="print every miss")
    parser.add_argument("--check", action="store_true", help="exit 1 below the targets")
    parser.add_argument("--cases", type=Path, default=CASES, help="the cases directory")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    results = run_all(args.cases)
    elapsed = time.perf_counter() - started
    total = len(results)
    if not total:
        print(f"no cases under {args.cases}", file=sys.stderr)
        return 1
    correct = sum(r.category_ok for r in results)
    quoted = sum(r.category_ok and r.quoted_ok for r in results)

    print("\n".join(_table(results)))
    print()
    cat_pct, quo_pct = _pct(correct, total), _pct(quoted, total)
    cat_ok, quo_ok = cat_pct >= 100 * CATEGORY_TARGET, quo_pct >= 100 * QUOTED_TARGET
    print(
        f"category correct: {correct}/{total} = {cat_pct:.1f} %"
        f"  (target {100 * CATEGORY_TARGET:.0f} %: {'met' if cat_ok else 'NOT met'})"
    )
    print(
        f"decisive quoted:  {quoted}/{total} = {quo_pct:.1f} %"
        f"  (target {100 * QUOTED_TARGET:.0f} %: {'met' if quo_ok else 'NOT met'})"
    )
    print(f"time: {elapsed:.3f} s for {total} cases ({1000 * elapsed / total:.2f} ms a case)")

    if args.verbose:
        misses = [r for r in results if not (r.category_ok and r.quoted_ok)]
        for r in misses:
            print()
            print("\n".join(_miss(r)))

    if args.check and not (cat_ok and quo_ok):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
