"""Turn `infraveil.toml` into a `Manifest`, or into every problem it has, each at file:line.

Nothing starts from an invalid manifest, so the parser reports all it can find in one go
rather than making a person fix problems one run at a time. The fields themselves are declared
in `infraveil.core.fields`; this module checks the document's shape, runs each field's
`parse`, and does the checks that span services (duplicate ports, `depends_on`).

What needs the host (does `env_file` exist? does `user`?) is preflight's job, not this one's.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from infraveil.core.checks import CheckKind, CheckSpec
from infraveil.core.errors import ManifestError, ManifestIssue
from infraveil.core.fieldbase import InvalidValue, ParseContext, describe_value
from infraveil.core.fields import (
    MINIMAL_EXAMPLE,
    SERVICE_FIELDS,
    SERVICE_NAME,
    SERVICE_NAME_RULE,
)
from infraveil.core.spec import Manifest, ServiceSpec
from infraveil.core.tomlpos import KeyLines, KeyPath, locate

_FIELDS = {f.name: f for f in SERVICE_FIELDS}
_TOP_LEVEL_KEYS = ("services",)
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")
_EXAMPLE_HINT = "a manifest needs at least one service, e.g.\n" + MINIMAL_EXAMPLE.rstrip()


def parse_manifest(source: str, path: str) -> Manifest:
    """Parse manifest text read from `path` (used for messages and to resolve relative paths)."""
    file = os.path.abspath(path)
    try:
        document = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise _single(
            file,
            _toml_error_line(str(exc), source),
            f"not valid TOML: {exc}",
            "check the quotes, brackets and '=' there; strings need double quotes",
        ) from None
    except RecursionError:
        # tomllib recurses once per nesting level; absurd nesting must still be a ManifestError.
        raise _single(file, None, "values are nested too deeply", "flatten the arrays") from None
    return _Parser(file, source, document).manifest()


def _single(file: str, line: int | None, message: str, hint: str = "") -> ManifestError:
    return ManifestError([ManifestIssue(file, line, message, hint)])


def _toml_error_line(message: str, source: str) -> int | None:
    found = _TOML_POSITION.search(message)
    if found:
        return int(found.group(1))
    if "end of document" in message:
        # The problem (an unclosed string or array) is on the last line that has anything.
        # TOML ends lines at "\n" only (splitlines would also split at \v, \f, \x1c, ...).
        return max(1, source.rstrip().count("\n") + 1)
    return None


def _did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else None


class _Parser:
    def __init__(self, file: str, source: str, document: dict[str, Any]) -> None:
        self.file = file
        self.document = document
        self.lines: KeyLines = locate(source)
        self.context = ParseContext(base_dir=os.path.dirname(file))
        self.issues: list[ManifestIssue] = []

    def issue(self, path: KeyPath, message: str, hint: str = "") -> None:
        self.issues.append(ManifestIssue(self.file, self.lines.line(path), message, hint))

    def manifest(self) -> Manifest:
        for key in self.document:
            if key not in _TOP_LEVEL_KEYS:
                self.issue(
                    (key,),
                    f"unknown top-level key {key!r}",
                    _did_you_mean(key, _TOP_LEVEL_KEYS)
                    or "the only top-level table is services, as in [services.NAME]",
                )
        tables = self.service_tables()
        # Field values that parsed, per service, even for services with other problems: the
        # checks across services still run on them, so one run reports as much as it can.
        parsed = {name: self.fields(name, table) for name, table in tables.items()}
        self.check_ports(parsed)
        self.check_check_ports(parsed)
        self.check_dependencies(parsed, known=tables)
        if self.issues:
            # Stable sort: in file order, and in finding order on one line.
            raise ManifestError(sorted(self.issues, key=lambda i: i.line or 0))
        specs = {
            name: ServiceSpec(name=name, line=self.lines.line(("services", name)), **values)
            for name, values in parsed.items()
            if values is not None
        }
        return Manifest(path=self.file, services=MappingProxyType(specs))

    def service_tables(self) -> dict[str, object]:
        services = self.document.get("services")
        if services is None:
            self.issue((), "the manifest declares no services", _EXAMPLE_HINT)
            return {}
        if not isinstance(services, dict):
            self.issue(
                ("services",),
                f"'services' must be a table of [services.NAME] tables,"
                f" got {describe_value(services)}",
                _EXAMPLE_HINT,
            )
            return {}
        if not services:
            self.issue(("services",), "the manifest declares no services", _EXAMPLE_HINT)
        return services

    def fields(self, name: str, table: object) -> dict[str, Any] | None:
        """The parsed values of one service's fields that are valid; None if it is no table."""
        where = ("services", name)
        if not SERVICE_NAME.fullmatch(name):
            self.issue(
                where,
                f"service name {name!r} is not allowed",
                f"use {SERVICE_NAME_RULE}; names become file names",
            )
        if not isinstance(table, dict):
            self.issue(
                where,
                f"service {name!r} must be a table, got {describe_value(table)}",
                f'write [services.{name}] with command = "..." under it',
            )
            return None
        for key in table:
            if key not in _FIELDS:
                self.issue(
                    (*where, key),
                    f"unknown key {key!r} in service {name!r}",
                    _did_you_mean(key, _FIELDS) or "valid keys: " + ", ".join(_FIELDS),
                )
        values: dict[str, Any] = {}
        for field in SERVICE_FIELDS:
            if field.declared_flag is not None:
                values[field.declared_flag] = field.name in table
            if field.name not in table:
                if field.required:
                    self.issue(
                        where,
                        f"service {name!r} has no {field.name!r}",
                        f"add e.g. {field.example}",
                    )
                elif field.when_absent is not None:
                    values[field.name] = field.when_absent(self.context)
                continue
            try:
                values[field.name] = field.parse(table[field.name], self.context)
            except InvalidValue as exc:
                for problem in exc.problems:
                    self.issue(
                        (*where, field.name, *problem.key),
                        f"service {name!r}: {problem.message}",
                        problem.hint,
                    )
        return values

    def check_ports(self, parsed: Mapping[str, Mapping[str, Any] | None]) -> None:
        """Report every service whose port an earlier service already declared."""
        owners: dict[int, str] = {}
        for name, values in parsed.items():
            port = values.get("port") if values is not None else None
            if port is None:
                continue
            first = owners.setdefault(port, name)
            if first == name:
                continue
            first_line = self.lines.line(("services", first, "port"))
            at = f" (line {first_line})" if first_line is not None else ""
            self.issue(
                ("services", name, "port"),
                f"service {name!r}: port {port} is already used by service {first!r}{at}",
                "give each service its own port",
            )

    def check_check_ports(self, parsed: Mapping[str, dict[str, Any] | None]) -> None:
        """Give every http and tcp check a port: its own, or the service's."""
        for name, values in parsed.items():
            if values is None:
                continue
            for role in ("health", "ready"):
                check: CheckSpec | None = values.get(role)
                if check is None or check.kind not in (CheckKind.HTTP, CheckKind.TCP):
                    continue
                if check.port is not None:
                    continue
                port = values.get("port")
                if port is None:
                    self.issue(
                        ("services", name, role),
                        f"service {name!r}: the {check.kind} check in '{role}' has no port to"
                        " probe",
                        f"add port = N to the service, or write {role} = {_with_port(check)}",
                    )
                    values.pop(role)
                    continue
                values[role] = replace(check, port=port)

    def check_dependencies(
        self, parsed: Mapping[str, Mapping[str, Any] | None], known: Mapping[str, object]
    ) -> None:
        """Report unknown and self dependencies, then one issue per dependency cycle."""
        graph: dict[str, tuple[str, ...]] = {}
        for name, values in parsed.items():
            where = ("services", name, "depends_on")
            edges: list[str] = []
            deps: tuple[str, ...] = values.get("depends_on", ()) if values is not None else ()
            for dep in deps:
                if dep == name:
                    self.issue(
                        where,
                        f"service {name!r} depends on itself",
                        f"remove {dep!r} from its depends_on",
                    )
                elif dep not in known:
                    self.issue(
                        where,
                        f"service {name!r} depends on {dep!r}, which is not declared",
                        _did_you_mean(dep, known)
                        or "declared services: " + (", ".join(known) or "none"),
                    )
                else:
                    edges.append(dep)
            graph[name] = tuple(edges)
        for cycle in _cycles(graph):
            self.issue(
                ("services", cycle[0], "depends_on"),
                "dependency cycle: " + " -> ".join(cycle),
                "remove one of these dependencies",
            )


def _with_port(check: CheckSpec) -> str:
    if check.kind is CheckKind.HTTP:
        return f'{{ http = "{check.path}", port = N }}'
    return "{ tcp = N }"


def _cycles(graph: Mapping[str, Sequence[str]]) -> list[tuple[str, ...]]:
    """One cycle for each group of services that depend on each other, first in graph order.

    A group can hold many cycles (a<->b<->c); naming one is enough to show what to break, and
    enumerating all of them can take exponential time.
    """
    reach = {name: _reachable(graph, name) for name in graph}
    placed: set[str] = set()
    cycles: list[tuple[str, ...]] = []
    for start in graph:
        if start in placed or start not in reach[start]:
            continue
        group = {n for n in reach[start] if start in reach.get(n, ())}
        placed |= group
        cycles.append(_shortest_cycle(graph, start, group))
    return cycles


def _reachable(graph: Mapping[str, Sequence[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def _shortest_cycle(
    graph: Mapping[str, Sequence[str]], start: str, group: set[str]
) -> tuple[str, ...]:
    # Breadth-first from `start` inside its group, until an edge leads back to `start`.
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for name in frontier:
            for dep in graph.get(name, ()):
                if dep == start:
                    path = [name]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return (*reversed(path), start)
                if dep in group and dep not in parent:
                    parent[dep] = name
                    following.append(dep)
        frontier = following
    return (start, start)  # unreachable: `start` is in its own group
