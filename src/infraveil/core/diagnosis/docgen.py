"""The category reference (docs/reference/categories.md), rendered from `categories.py`."""

from __future__ import annotations

from infraveil.core.diagnosis.categories import KUBERNETES, MEANING, TRANSIENT, Category


def render_categories_reference() -> str:
    """Markdown for docs/reference/categories.md; a test fails when the file differs from it."""
    out = [
        "# Diagnosis categories",
        "",
        "<!-- Generated from src/infraveil/core/diagnosis/categories.py by"
        " `python scripts/gen_docs.py`; edit that file, not this one. -->",
        "",
        "Every finding of `infraveil why`, `infraveil doctor` and `infraveil check` has one of",
        "these categories (`category` in `-o json`). The ids are stable: new ones are added,",
        "none is renamed. How a guide reads them: [why](../guides/why.md).",
        "",
        "*On repeat* is what the agent does when a service keeps failing this way: a",
        "deterministic failure halts the service after the same failure three times in a row",
        "(it will not fix itself); a transient one backs off and keeps trying. A single",
        "finding can say otherwise for its own case (an OOM kill after a long healthy run is",
        "transient; an outside SIGTERM is, an abort is not).",
        "",
        "| category | meaning | on repeat | where |",
        "|---|---|---|---|",
    ]
    for category in Category:
        repeat = "backs off" if category in TRANSIENT else "halts after 3"
        where = "Kubernetes (`doctor k8s`)" if category in KUBERNETES else "any process"
        out.append(f"| `{category.value}` | {MEANING[category]} | {repeat} | {where} |")
    return "\n".join(out) + "\n"
