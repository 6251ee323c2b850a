"""Generated docs are committed; these tests fail when one no longer matches its declaration."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from infraveil.core.docgen_manifest import render_manifest_reference
from infraveil.core.fields import MINIMAL_EXAMPLE, SERVICE_FIELDS

ROOT = Path(__file__).resolve().parents[2]


def load_gen_docs() -> ModuleType:
    # scripts/ is not a package; load the script itself so its OUTPUTS is the one list checked.
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OUTPUTS: dict[str, Callable[[], str]] = load_gen_docs().OUTPUTS


@pytest.mark.parametrize(("relative", "render"), OUTPUTS.items(), ids=OUTPUTS.keys())
def test_generated_doc_is_fresh(relative: str, render: Callable[[], str]) -> None:
    path = ROOT / relative
    current = path.read_text(encoding="utf-8") if path.exists() else None
    assert current == render(), f"{relative} is stale: run `python scripts/gen_docs.py`"


def test_manifest_reference_is_one_of_the_outputs() -> None:
    assert OUTPUTS["docs/reference/manifest.md"] is render_manifest_reference


def test_manifest_reference_shows_every_field() -> None:
    text = render_manifest_reference()
    assert MINIMAL_EXAMPLE in text
    for field in SERVICE_FIELDS:
        section = text.split(f"### `{field.name}`\n", 1)[1].split("\n### ", 1)[0]
        for part in (field.type, field.description, field.example):
            assert part in section, (field.name, part)
        default = "required" if field.required else field.default
        assert f"- Default: {default}\n" in section
