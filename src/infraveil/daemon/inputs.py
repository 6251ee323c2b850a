"""What a halted service depends on, watched so that it is retried when that changes.

A service halted after the same failure three times will fail the same way until something
changes: its manifest entry, its env file or secrets file, its command (a script replaced by a
deploy), or a file its failure names ("No such file or directory: '/etc/app/config.yml'"). These
are few paths, for few services, so they are polled (a stat each, every couple of seconds, only
while a service is halted) rather than watched with inotify, which needs a thread or a third-party
module and misses files that do not exist yet.

The working directory itself is not watched: other programs write there all the time. And a
path that keeps changing (a log file named in the failure) retries the service at most once
per `MIN_GAP`, so it cannot turn a halt back into a crash loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from infraveil.core.signature import files_named
from infraveil.core.spec import ServiceSpec

POLL_EVERY = 2.0
"""Seconds between looks at the watched paths."""
MAX_PATHS = 16
"""Paths watched per service at most (a failure message could name many)."""
MIN_GAP = 30.0
"""Seconds between two retries of one service for changed inputs."""


@dataclass(frozen=True)
class Fingerprint:
    exists: bool
    mtime_ns: int = 0
    size: int = 0
    inode: int = 0


def fingerprint(path: str) -> Fingerprint:
    try:
        st = os.stat(path)
    except OSError:
        return Fingerprint(False)
    return Fingerprint(True, st.st_mtime_ns, st.st_size, st.st_ino)


def inputs_of(spec: ServiceSpec, manifest_path: str, failure: str) -> list[str]:
    """The paths whose change may make a halted service start: see the module docstring."""
    paths = [manifest_path]
    for path in (spec.env_file, spec.secrets):  # (absolute: the parser made them so)
        if path is not None:
            paths.append(path)
    program = spec.command[0]
    if "/" in program:
        paths.append(os.path.normpath(os.path.join(spec.cwd, program)))
    for named in files_named(failure):
        paths.append(os.path.normpath(os.path.join(spec.cwd, named)))
    unique = list(dict.fromkeys(paths))
    return unique[:MAX_PATHS]


@dataclass
class InputWatch:
    _watched: dict[str, dict[str, Fingerprint]] = field(default_factory=dict)
    _retried: dict[str, float] = field(default_factory=dict)
    """When each service was last retried for a change (monotonic seconds)."""

    @property
    def watching(self) -> bool:
        return bool(self._watched)

    def watch(self, service: str, paths: Iterable[str]) -> None:
        """Remember how `paths` look now; a later difference is a change."""
        self._watched[service] = {path: fingerprint(path) for path in paths}

    def forget(self, service: str) -> None:
        self._watched.pop(service, None)

    def changed(self, now: float) -> list[tuple[str, str]]:
        """(service, path): the first watched path of each service that changed since it was
        last seen, for services not retried within the last `MIN_GAP` seconds."""
        found = []
        for service, paths in self._watched.items():
            if now - self._retried.get(service, -MIN_GAP) < MIN_GAP:
                continue  # seen once the gap is over: the baseline stays as it was
            for path, before in paths.items():
                current = fingerprint(path)
                if current != before:
                    paths[path] = current
                    found.append((service, path))
                    break
        return found

    def retried(self, service: str, now: float) -> None:
        """The service was retried because an input changed: the gap starts now."""
        self._retried[service] = now
