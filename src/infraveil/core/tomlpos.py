"""Where each key of a TOML document is: the line numbers stdlib `tomllib` does not give.

`locate` scans the text once, the way a TOML reader would, but keeps only key paths and lines:
table headers (`[services.api]`), dotted and quoted keys, and the keys of inline tables. It
steps over strings (multi-line ones too), arrays and comments without reading their contents
as keys. It is meant for text that `tomllib` has already accepted; on anything else it never
raises, it just knows fewer keys.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SCALAR_END = frozenset(",]}\n#")

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class KeyLines:
    """Lines of the key paths of one document."""

    defined: Mapping[KeyPath, int]
    """Where a key or table is written: `[a.b]`, `b = ...`, `b.c = ...` (for b.c)."""
    implied: Mapping[KeyPath, int]
    """Where a table is first implied without being written: `a` by `[a.b]` or `a.b = 1`."""

    def line(self, path: KeyPath) -> int | None:
        """1-based line of `path`, else of its nearest enclosing path that is known, else None."""
        for end in range(len(path), 0, -1):
            prefix = path[:end]
            found = self.defined.get(prefix, self.implied.get(prefix))
            if found is not None:
                return found
        return None


def locate(source: str) -> KeyLines:
    """Find the line of every key path and table in `source`."""
    scanner = _Scanner(source)
    scanner.document()
    return KeyLines(MappingProxyType(scanner.defined), MappingProxyType(scanner.implied))


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.table: KeyPath = ()
        self.defined: dict[KeyPath, int] = {}
        self.implied: dict[KeyPath, int] = {}

    # -- reading ------------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> str:
        i = self.pos + ahead
        return self.text[i] if i < len(self.text) else ""

    def at(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def advance(self, count: int = 1) -> None:
        end = min(self.pos + count, len(self.text))
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def eof(self) -> bool:
        return self.pos >= len(self.text)

    def skip_blank(self, *, newlines: bool) -> None:
        """Skip spaces and tabs; also newlines and comments when `newlines`."""
        while not self.eof():
            c = self.peek()
            if c in (" ", "\t", "\r") or (newlines and c == "\n"):
                self.advance()
            elif newlines and c == "#":
                self.skip_to_line_end()
            else:
                return

    def skip_to_line_end(self) -> None:
        end = self.text.find("\n", self.pos)
        self.advance((len(self.text) if end < 0 else end) - self.pos)

    # -- recording ----------------------------------------------------------------------------

    def record(self, path: KeyPath, line: int, *, implied_from: int = 1) -> None:
        # The first definition wins: a valid document defines a key once, and for arrays of
        # tables the first `[[x]]` is as good a place to point at as any.
        self.defined.setdefault(path, line)
        for end in range(implied_from, len(path)):
            self.implied.setdefault(path[:end], line)

    # -- grammar ------------------------------------------------------------------------------

    def document(self) -> None:
        while not self.eof():
            start = self.pos
            self.skip_blank(newlines=True)
            if self.eof():
                break
            if self.peek() == "[":
                self.header()
            else:
                self.key_value()
            # Only a comment (or, in broken text, junk) can follow on the same line.
            self.skip_to_line_end()
            if self.pos == start:
                self.advance()

    def header(self) -> None:
        line = self.line
        brackets = 2 if self.at("[[") else 1
        self.advance(brackets)
        keys = self.dotted_key()
        self.skip_blank(newlines=False)
        if self.at("]" * brackets):
            self.advance(brackets)
        if keys:
            self.table = keys
            self.record(keys, line)

    def key_value(self) -> None:
        line = self.line
        keys = self.dotted_key()
        if not keys:
            return
        path = self.table + keys
        self.record(path, line, implied_from=len(self.table) + 1)
        self.skip_blank(newlines=False)
        if self.peek() == "=":
            self.advance()
        self.value(path)

    def dotted_key(self) -> KeyPath:
        keys: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            key = self.simple_key()
            if key is None:
                break
            keys.append(key)
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                break
            self.advance()
        return tuple(keys)

    def simple_key(self) -> str | None:
        start = self.pos
        c = self.peek()
        if c in ('"', "'"):
            self.single_line_string(c)
            raw = self.text[start : self.pos]
            return _decode_quoted(raw)
        while self.peek() and self.peek() in _BARE_KEY_CHARS:
            self.advance()
        return self.text[start : self.pos] if self.pos > start else None

    def value(self, path: KeyPath | None) -> None:
        """Step over one value; record the keys of inline tables under `path` (None: don't)."""
        # Containers are tracked on an explicit stack, so deep nesting cannot overflow Python's.
        open_containers: list[tuple[str, KeyPath | None]] = []
        self.atom_or_open(path, open_containers)
        while open_containers and not self.eof():
            start = self.pos
            self.skip_blank(newlines=True)
            kind, container_path = open_containers[-1]
            c = self.peek()
            if c in ("]", "}"):
                self.advance()
                open_containers.pop()
            elif c == ",":
                self.advance()
            elif kind == "{":
                line = self.line
                keys = self.dotted_key()
                item_path = container_path + keys if container_path is not None else None
                if item_path is not None and keys:
                    self.record(item_path, line, implied_from=len(container_path or ()) + 1)
                self.skip_blank(newlines=False)
                if self.peek() == "=":
                    self.advance()
                self.atom_or_open(item_path if keys else None, open_containers)
            else:
                self.atom_or_open(None, open_containers)
            if self.pos == start:
                self.advance()

    def atom_or_open(
        self, path: KeyPath | None, open_containers: list[tuple[str, KeyPath | None]]
    ) -> None:
        self.skip_blank(newlines=False)
        c = self.peek()
        if c == "[":
            self.advance()
            open_containers.append(("[", None))
        elif c == "{":
            self.advance()
            open_containers.append(("{", path))
        elif self.at('"""') or self.at("'''"):
            self.multi_line_string(self.text[self.pos : self.pos + 3])
        elif c in ('"', "'"):
            self.single_line_string(c)
        else:
            # Numbers, booleans and dates: none holds a delimiter (a date may hold a space).
            while self.peek() and self.peek() not in _SCALAR_END:
                self.advance()

    def single_line_string(self, quote: str) -> None:
        self.advance()
        while not self.eof():
            c = self.peek()
            if c == "\n":
                return
            if c == "\\" and quote == '"':
                self.advance(2)
                continue
            self.advance()
            if c == quote:
                return

    def multi_line_string(self, delimiter: str) -> None:
        self.advance(3)
        while not self.eof():
            if self.at(delimiter):
                self.advance(3)
                # Up to two quotes right before the delimiter belong to the string: """a""""".
                for _ in range(2):
                    if self.peek() == delimiter[0]:
                        self.advance()
                return
            self.advance(2 if self.peek() == "\\" and delimiter == '"""' else 1)


def _decode_quoted(raw: str) -> str:
    # A quoted key has exactly the escapes of a string value, so tomllib decodes it for us.
    try:
        value = tomllib.loads(f"k = {raw}").get("k")
    except tomllib.TOMLDecodeError:
        value = None
    return value if isinstance(value, str) else raw[1:-1]
