"""Write the generated reference docs from their single declarations.

    python scripts/gen_docs.py           rewrite every generated file that is out of date
    python scripts/gen_docs.py --check   only report stale files; exit 1 if there are any

Each output is one entry in OUTPUTS (path relative to the repository → render function);
tests/core/test_docs_fresh.py checks every entry, so a new one is covered by adding it here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# So the script runs from a checkout even where infraveil is not installed.
sys.path.insert(0, str(ROOT / "src"))

from infraveil.cli.docgen import render_api_reference, render_cli_reference  # noqa: E402
from infraveil.core.diagnosis.docgen import render_categories_reference  # noqa: E402
from infraveil.core.docgen_manifest import render_manifest_reference  # noqa: E402

OUTPUTS: dict[str, Callable[[], str]] = {
    "docs/reference/manifest.md": render_manifest_reference,
    "docs/reference/cli.md": render_cli_reference,
    "docs/reference/api.md": render_api_reference,
    "docs/reference/categories.md": render_categories_reference,
}


def stale_outputs() -> list[tuple[Path, str]]:
    """(file, wanted text) for every output whose file is missing or differs."""
    stale = []
    for relative, render in OUTPUTS.items():
        target = ROOT / relative
        text = render()
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            stale.append((target, text))
    return stale


def main(argv: list[str]) -> int:
    """Rewrite (or with --check, list) the stale outputs; the exit status says if any were."""
    check = "--check" in argv
    stale = stale_outputs()
    for target, text in stale:
        shown = target.relative_to(ROOT)
        if check:
            print(f"stale: {shown} (run python scripts/gen_docs.py)")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {shown}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
