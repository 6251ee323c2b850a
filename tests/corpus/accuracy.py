"""The accuracy report both corpora print (scripts/corpus_accuracy.py and
scripts/k8s_corpus_accuracy.py): a table per category, the totals against the targets, the
time, and on request every miss."""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

CATEGORY_TARGET = 0.95
QUOTED_TARGET = 0.90


class Scored(Protocol):
    """What both corpora's results have: the case (with its expected category) and the score."""

    @property
    def case(self) -> Any: ...
    @property
    def category_ok(self) -> bool: ...
    @property
    def quoted_ok(self) -> bool: ...


def _pct(n: int, total: int) -> float:
    return 100.0 * n / total if total else 0.0


def table(results: Sequence[Scored]) -> list[str]:
    by_category: dict[str, list[Scored]] = defaultdict(list)
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


def assert_targets(results: Sequence[Scored], describe_miss: Callable[[Any], str]) -> None:
    """The tests' form of `--check`: fail below either target, listing every miss."""
    total = len(results)
    correct = sum(r.category_ok for r in results)
    quoted = sum(r.category_ok and r.quoted_ok for r in results)
    report = "\n".join(describe_miss(r) for r in results if not (r.category_ok and r.quoted_ok))
    assert correct / total >= CATEGORY_TARGET, (
        f"category correct {correct}/{total} = {_pct(correct, total):.1f} % "
        f"< {100 * CATEGORY_TARGET:.0f} %\n{report}"
    )
    assert quoted / total >= QUOTED_TARGET, (
        f"decisive quoted {quoted}/{total} = {_pct(quoted, total):.1f} % "
        f"< {100 * QUOTED_TARGET:.0f} %\n{report}"
    )


def main(
    argv: list[str] | None,
    doc: str,
    cases: Path,
    run_all: Callable[[Path], Sequence[Scored]],
    describe_miss: Callable[[Any], list[str]],
) -> int:
    """The scripts' command line: [--verbose] [--check] [--cases DIR]; the exit status."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--verbose", "-v", action="store_true", help="print every miss")
    parser.add_argument("--check", action="store_true", help="exit 1 below the targets")
    parser.add_argument("--cases", type=Path, default=cases, help="the cases directory")
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

    print("\n".join(table(results)))
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
