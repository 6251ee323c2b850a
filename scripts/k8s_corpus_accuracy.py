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

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT / "src", ROOT / "tests"):  # works from a clean checkout, installed or not
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from k8s_corpus.k8s_corpus import CASES, Result, run_all  # noqa: E402

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
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--verbose", "-v", action="store_true", help="print every miss")
    parser.add_argument("--check", action="store_true", help="exit 1 below the targets")
    parser.add_argument("--cases", type=Path, default=CASES, help="the cases directory")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    try:
        results = run_all(args.cases)
    except ImportError as exc:
        print(f"cannot run the doctor: {exc} (is infraveil.k8s built yet?)", file=sys.stderr)
        return 1
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
        for r in results:
            if not (r.category_ok and r.quoted_ok):
                print()
                print("\n".join(describe_miss(r)))

    if args.check and not (cat_ok and quo_ok):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
