"""The key locator: the line of every key and table, never fooled by strings or arrays."""

from __future__ import annotations

import re
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infraveil.core.tomlpos import KeyPath, locate


def toml(*rows: str) -> str:
    return "\n".join(rows) + "\n"


CASES: dict[str, tuple[str, KeyPath, int | None]] = {
    "table header": (toml("# x", "[services.api]", 'command = "a"'), ("services", "api"), 2),
    "key under a header": (
        toml("[services.api]", "", 'command = "a"'),
        ("services", "api", "command"),
        3,
    ),
    "table implied by a header": (toml("", "[services.api]"), ("services",), 2),
    "explicit table after it was implied": (
        toml("[services.api]", "[services]", "x = 1"),
        ("services",),
        2,
    ),
    "header with spaces": (toml("[ services . api ]", "a = 1"), ("services", "api", "a"), 2),
    "quoted header": (toml('[services."my-svc"]', "a = 1"), ("services", "my-svc"), 1),
    "quoted header with a dot": (toml('[services."a.b"]', "a = 1"), ("services", "a.b", "a"), 2),
    "literal quoted header": (toml("[services.'x y']", "a = 1"), ("services", "x y"), 1),
    "quoted header with escapes": (toml('[services."a\\u0042"]'), ("services", "aB"), 1),
    "quoted key": (toml("[t]", "a = 1", '"key" = 2'), ("t", "key"), 3),
    "top-level dotted key": (
        toml("x = 1", "services.api.port = 1"),
        ("services", "api", "port"),
        2,
    ),
    "table implied by a dotted key": (toml("x = 1", "services.api.port = 1"), ("services",), 2),
    "dotted key in a table": (
        toml("[services.api]", 'env.FOO = "x"', 'env.BAR = "y"'),
        ("services", "api", "env", "BAR"),
        3,
    ),
    "dotted key's table at its first line": (
        toml("[services.api]", 'env.FOO = "x"', 'env.BAR = "y"'),
        ("services", "api", "env"),
        2,
    ),
    "dotted key with spaces and quotes": (
        toml("[t]", 'a . "b c" . d = 1'),
        ("t", "a", "b c", "d"),
        2,
    ),
    "inline table key": (
        toml("[services.api]", 'env = { A = "1", "B" = "2" }'),
        ("services", "api", "env", "B"),
        2,
    ),
    "nested inline table key": (
        toml("x = 0", "services = { api = { env = { A = 1 } } }"),
        ("services", "api", "env", "A"),
        2,
    ),
    "dotted key in an inline table": (
        toml("x = 0", "t = { a.b = 1 }"),
        ("t", "a", "b"),
        2,
    ),
    "key after a multi-line array": (
        toml("[t]", "a = [", '  "x = 1",', "  # b = 2", "  [1, 2],", "]", "b = 3"),
        ("t", "b"),
        7,
    ),
    "array content is not a key": (
        toml("[t]", "a = [", '  "x",', "  { c = 1 },", "]"),
        ("t", "a", "c"),
        2,
    ),
    "multi-line string content is not a header": (
        toml('a = """', "[services.fake]", "x = 1", '"""', "[services.real]"),
        ("services", "fake"),
        5,
    ),
    "key after a multi-line basic string": (
        toml('a = """', "x = 1", 'an \\""" escaped delimiter', '"""', "b = 1"),
        ("b",),
        5,
    ),
    "escaped delimiter does not end a multi-line string": (
        toml('a = """', 'an \\"""', "b = 1", '"""', "c = 1"),
        ("b",),
        None,
    ),
    "key after a multi-line literal string": (
        toml("a = '''", "[x]", "'''", "b = 1"),
        ("b",),
        4,
    ),
    "multi-line string ending in quotes": (
        toml('a = """x"""""', "b = 1"),
        ("b",),
        2,
    ),
    "multi-line string ending in a quote, then another": (
        toml('a = ["""x"""", """', "[t.fake]", '"""]', "b = 1"),
        ("b",),
        4,
    ),
    "string holding a comment sign and a quote": (
        toml('a = "x # \\" y = 1"', "b = 2"),
        ("b",),
        2,
    ),
    "commented key": (
        toml("[services.web] # a = 0", "# a = 1", "a = 2 # a = 3"),
        ("services", "web", "a"),
        3,
    ),
    "commented header": (toml("# [x]", "[services.web] # [x]", "a = 1"), ("x",), None),
    "date-time with a space": (toml("d = 1979-05-27 07:32:00Z", "e = 1"), ("e",), 2),
    "arrays of tables": (
        toml("[[services]]", "name = 1", "[[services]]", "name = 2", "[x]", "y = 1"),
        ("x", "y"),
        6,
    ),
    "first array of tables": (
        toml("[[services]]", "name = 1", "[[services]]", "name = 2"),
        ("services",),
        1,
    ),
    "windows line endings": (
        "[services.api]\r\ncommand = 'a'\r\n\r\nport = 1\r\n",
        ("services", "api", "port"),
        4,
    ),
    "unknown key falls back to its table": (
        toml("[services.api]", 'command = "a"'),
        ("services", "api", "nope"),
        1,
    ),
    "unknown env key falls back to env": (
        toml("[services.api]", 'command = "a"', 'env = { A = "1" }'),
        ("services", "api", "env", "X"),
        3,
    ),
    "nothing known": (toml("a = 1"), ("b", "c"), None),
    "empty path": (toml("a = 1"), (), None),
}


@pytest.mark.parametrize(("source", "path", "line"), CASES.values(), ids=CASES.keys())
def test_line_of_each_key(source: str, path: KeyPath, line: int | None) -> None:
    tomllib.loads(source)  # every case is valid TOML, as the parser's input always is
    assert locate(source).line(path) == line


@pytest.mark.parametrize(
    "source",
    [
        "[services.api",
        '[services."unclosed',
        'a = "unclosed\nb = 1',
        "a = [1, 2\n[x]",
        'a = """never closed',
        "= 1",
        "a = { b = ",
        "]]]]}}}",
        "[[[[",
        "a." * 1000,
    ],
)
def test_broken_text_does_not_raise(source: str) -> None:
    lines = locate(source)
    assert lines.line(("a",)) in (None, 1)


def test_deep_nesting_does_not_overflow_the_stack() -> None:
    depth = 100_000
    source = "a = " + "[" * depth + "]" * depth + "\nb = 1\n"
    lines = locate(source)
    assert (lines.line(("a",)), lines.line(("b",))) == (1, 2)


@given(st.text())
def test_arbitrary_text_does_not_raise(source: str) -> None:
    lines = locate(source)
    for line in [*lines.defined.values(), *lines.implied.values()]:
        assert 1 <= line <= source.count("\n") + 1


# Generated documents: a writer that knows the line of every key it writes, with strings and
# arrays whose contents look like keys and headers.

KEYS = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=6
) | st.sampled_from(["a", "b-c", "_1", "1", "true", "x.y", "my svc", "π"])
DECOYS = st.lists(
    st.sampled_from(["x = 1", "[t.fake]", "[[t.fake]]", "# c", "{ k = 1 }", "]", ",", "'", ""]),
    max_size=4,
).map("\n".join)


def key(text: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_-]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, dict[KeyPath, int]]:
    rows: list[str] = []
    expected: dict[KeyPath, int] = {}
    for table in draw(st.lists(KEYS, unique=True, max_size=3)):
        rows.append(f"[t.{key(table)}]")
        expected[("t", table)] = len(rows)
        for name in draw(st.lists(KEYS, unique=True, max_size=4)):
            path = ("t", table, name)
            kind = draw(st.sampled_from(["int", "str", "ml", "lit", "array", "inline", "dotted"]))
            decoy = draw(DECOYS)
            line = len(rows) + 1
            if kind == "int":
                rows.append(f"{key(name)} = 1")
            elif kind == "str":
                rows.append(f'{key(name)} = "{decoy.replace(chr(10), " ")}"')
            elif kind == "ml":
                rows += f'{key(name)} = """\n{decoy}\n"""'.split("\n")
            elif kind == "lit":
                rows += f"{key(name)} = '''\n{decoy}'''".split("\n")
            elif kind == "array":
                items = [f'  "{d}",' for d in decoy.split("\n")]
                rows += [f"{key(name)} = [", "  # [t.fake]", *items, "]"]
            elif kind == "inline":
                rows.append(f'{key(name)} = {{ inner = 1, "q q" = [{{ deep = 2 }}] }}')
                expected[(*path, "inner")] = line
                expected[(*path, "q q")] = line
            else:
                rows.append(f"{key(name)}.sub = 1")
                expected[(*path, "sub")] = line
            expected[path] = line
    return "\n".join(rows) + "\n", expected


@given(documents())
def test_generated_documents_locate_every_key(document: tuple[str, dict[KeyPath, int]]) -> None:
    source, expected = document
    tomllib.loads(source)  # the writer writes valid TOML
    lines = locate(source)
    for path, line in expected.items():
        assert lines.line(path) == line, (path, source)
    # Nothing else is taken for a key: not the decoys in strings, not the keys inside arrays.
    assert set(lines.defined) <= set(expected), source
