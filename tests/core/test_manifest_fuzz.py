"""Hostile manifests, from disk: every input gives a Manifest or an InfraveilError that says what
is wrong and where, never another exception.

tests/core/test_manifest.py fuzzes `parse_manifest` with text and generated documents. This
module starts from the manifests people really write — the bundled example, and every TOML
block of the README and the docs — and breaks them the way editors, merges and attackers do:
lines dropped, doubled or swapped, values replaced by absurd ones (huge numbers, deep nesting,
NUL, control characters, wrong types), keys renamed, bytes that are not UTF-8, truncation. Each
case is written to a file and read with `load_manifest`, the path the agent and the CLI take.
Deterministic (derandomized, no example database) and bounded: a few seconds in all.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infraveil.core.errors import InfraveilError, ManifestError
from infraveil.core.fields import MINIMAL_EXAMPLE, SERVICE_FIELDS
from infraveil.core.spec import Manifest
from infraveil.runtime.manifest_file import load_manifest

ROOT = Path(__file__).resolve().parents[2]
_TOML_BLOCK = re.compile(r"```toml\n(.*?)```", re.S)


def bundled_manifests() -> list[str]:
    """The example manifest, and each TOML block of the README and docs that parses as TOML."""
    seeds = [MINIMAL_EXAMPLE, (ROOT / "examples" / "demo" / "infraveil.toml").read_text()]
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for block in _TOML_BLOCK.findall(doc.read_text()):
            try:
                tomllib.loads(block)
            except tomllib.TOMLDecodeError:
                continue  # a fragment, or a deliberate mistake shown in the docs
            seeds.append(block)
    return seeds


SEEDS = bundled_manifests()
FIELD_NAMES = [f.name for f in SERVICE_FIELDS]
ABSURD_VALUES = [
    '""',
    '"',
    "[",
    "{",
    "}",
    "'''",
    '"""',
    "1e999",
    "-0",
    "nan",
    "-inf",
    "0x7fffffffffffffff",
    "-9223372036854775808",
    "9" * 400,
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud800"',
    '"\x01\x7f"',
    '"\u202etxt.exe"',
    '"' + "x" * 20_000 + '"',
    "true",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "[1, 'a', 2.0, true]",
    "{ a = { b = { c = 1 } } }",
    '["sh", "-c", "rm -rf /"]',
    '"$(id)"',
    '"`id`"',
    '"../../../../etc/passwd"',
    '"~root"',
    "[" * 50 + "]" * 50,
    "[" * 500 + "]" * 500,
    "[" * 990 + "]" * 990,
    "[" * 5000 + "]" * 5000,
    "{a=" * 300 + "1" + "}" * 300,
]


@pytest.fixture(scope="module")
def manifest_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz") / "infraveil.toml"


def check_loads(path: Path, data: bytes) -> Manifest | None:
    """Write `data` to `path` and load it: a Manifest, or None after a ManifestError that says
    what is wrong and where. Any other exception fails the test."""
    path.write_bytes(data)
    try:
        manifest = load_manifest(path)
    except ManifestError as e:
        lines = max(1, data.count(b"\n") + 1)
        assert e.issues and str(e)
        for issue in e.issues:
            assert issue.file == str(path) and issue.message.strip()
            assert issue.line is None or 1 <= issue.line <= lines, issue
        return None
    except InfraveilError as e:  # pragma: no cover - load_manifest raises ManifestError only
        pytest.fail(f"{type(e).__name__} instead of a ManifestError: {e}")
    assert manifest.services, "a manifest without services must be refused"
    order = manifest.start_order()
    assert sorted(order) == sorted(manifest.services)
    for spec in manifest.services.values():
        assert spec.command
    return manifest


@st.composite
def mutated_manifests(draw: st.DrawFn) -> bytes:
    """A bundled manifest, broken in one to four ways."""
    lines = draw(st.sampled_from(SEEDS)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines = [""]
        at = draw(st.integers(0, len(lines) - 1))
        match draw(
            st.sampled_from(
                ["drop", "double", "swap", "value", "value", "key", "insert", "chars", "cut"]
            )
        ):
            case "drop":
                del lines[at]
            case "double":
                lines.insert(at, lines[at])
            case "swap":
                other = draw(st.integers(0, len(lines) - 1))
                lines[at], lines[other] = lines[other], lines[at]
            case "value" if "=" in lines[at]:
                key = lines[at].split("=", 1)[0]
                lines[at] = f"{key}= {draw(st.sampled_from(ABSURD_VALUES))}"
            case "key" if "=" in lines[at]:
                value = lines[at].split("=", 1)[1]
                key = draw(st.sampled_from([*FIELD_NAMES, "comand", "", '"a.b"', "services"]))
                lines[at] = f"{key} ={value}"
            case "insert":
                field = draw(st.sampled_from(FIELD_NAMES))
                row = f"{field} = {draw(st.sampled_from(ABSURD_VALUES))}"
                header = draw(st.sampled_from(["[services.x]", "[services]", "[[services]]", ""]))
                lines[at:at] = [header, row] if header else [row]
            case "chars":
                line = lines[at]
                cut = draw(st.integers(0, len(line)))
                junk = draw(st.text(max_size=5))
                lines[at] = line[:cut] + junk + line[cut + draw(st.integers(0, 3)) :]
            case "cut":
                lines = lines[:at]
            case _:
                pass
    data = "\n".join(lines).encode()
    if draw(st.integers(0, 9)) == 0:  # now and then, bytes that are not UTF-8
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    return data


FUZZ = settings(
    max_examples=500,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_the_bundled_manifests_are_seeds_worth_breaking(manifest_path: Path) -> None:
    """Keeps the test below honest: it starts from real, valid manifests."""
    assert len(SEEDS) >= 5
    valid = [s for s in SEEDS if check_loads(manifest_path, s.encode()) is not None]
    assert len(valid) >= 3, "most seeds should be whole, valid manifests"


@FUZZ
@given(mutated_manifests())
def test_broken_bundled_manifests_give_a_manifest_or_a_clear_error(
    manifest_path: Path, data: bytes
) -> None:
    check_loads(manifest_path, data)


SCALARS = (
    st.integers()
    | st.floats()
    | st.booleans()
    | st.text(max_size=20)
    | st.sampled_from(["TERM", "10s", "1h", "/srv", "8000", "a b", "~"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def toml_value(value: object) -> str:
    """A Python value as TOML (JSON's string escapes are TOML's; TOML also escapes DEL)."""
    import json
    import math

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


@st.composite
def arbitrary_toml_manifests(draw: st.DrawFn) -> bytes:
    """Valid TOML whose services have real field names with values of any type."""
    rows = []
    for name in draw(st.lists(st.text(min_size=1, max_size=8), max_size=3, unique=True)):
        rows.append(f"[services.{toml_value(name)}]")
        keys = draw(st.lists(st.sampled_from([*FIELD_NAMES, "zz"]), max_size=6, unique=True))
        for key in keys:
            rows.append(f"{key} = {toml_value(draw(VALUES))}")
    return "\n".join(rows).encode()


@settings(FUZZ, max_examples=250)  # ~7 ms each: TOML documents are bigger than mutations
@given(arbitrary_toml_manifests())
def test_arbitrary_toml_gives_a_manifest_or_a_clear_error(manifest_path: Path, data: bytes) -> None:
    tomllib.loads(data.decode())  # the generator writes valid TOML: the parser's rules are hit
    check_loads(manifest_path, data)
