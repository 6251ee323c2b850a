"""The manifest reference (docs/reference/manifest.md), rendered from `SERVICE_FIELDS`."""

from __future__ import annotations

from infraveil.core.checkfields import CHECK_KEYS
from infraveil.core.fields import MINIMAL_EXAMPLE, SERVICE_FIELDS, SERVICE_NAME_RULE, Field


def render_manifest_reference() -> str:
    """Markdown for docs/reference/manifest.md; a test fails when the file differs from it."""
    out = [
        "# Manifest reference",
        "",
        "<!-- Generated from src/infraveil/core/fields.py by `python scripts/gen_docs.py`;"
        " edit that file, not this one. -->",
        "",
        "This page is generated from the declaration of the manifest's fields; to change it, edit",
        "`src/infraveil/core/fields.py` and run `python scripts/gen_docs.py`.",
        "",
        "The manifest (`infraveil.toml`) is one TOML file. Each `[services.NAME]` table describes",
        f"one service; NAME is {SERVICE_NAME_RULE}, because it becomes a file name.",
        "Relative paths are resolved against the manifest's directory. Every problem in the",
        "file is reported at once, each with its file, line and a hint, and nothing starts from",
        "a manifest that has one.",
        "",
        "## A minimal manifest",
        "",
        "```toml",
        MINIMAL_EXAMPLE.rstrip("\n"),
        "```",
        "",
        "## Fields of `[services.NAME]`",
        "",
        "| Field | Type | Default |",
        "| --- | --- | --- |",
    ]
    for field in SERVICE_FIELDS:
        out.append(f"| [`{field.name}`](#{field.name}) | {field.type} | {_default(field)} |")
    for field in SERVICE_FIELDS:
        out += [
            "",
            f"### `{field.name}`",
            "",
            f"- Type: {field.type}",
            f"- Default: {_default(field)}",
            "",
            field.description,
            "",
            "```toml",
            field.example,
            "```",
        ]
    out += [
        "",
        "## Checks",
        "",
        '`health` and `ready` take an HTTP path (`"/healthz"`: a GET on the service\'s `port`)',
        "or a table that names exactly one kind of check (`http`, `tcp`, `exec` or `notify`)",
        "and, if needed, overrides a default. No check needs tuning; the defaults are what",
        "most services want.",
        "",
        "| Key | Type | Default | Meaning |",
        "| --- | --- | --- | --- |",
    ]
    for key in CHECK_KEYS:
        out.append(f"| `{key.name}` | {key.type} | {key.default} | {key.description} |")
    out += [
        "",
        "```toml",
        'health = { http = "/healthz", interval = "10s" }',
        "ready = { tcp = 5432 }",
        'health = { exec = "pg_isready -q" }',
        'health = { notify = true, watchdog = "30s" }',
        "```",
    ]
    return "\n".join(out) + "\n"


def _default(field: Field) -> str:
    return "required" if field.required else field.default
