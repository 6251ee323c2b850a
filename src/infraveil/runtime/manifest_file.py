"""Reading the manifest file from disk; the parsing itself is pure (`infraveil.core.manifest`)."""

from __future__ import annotations

import os

from infraveil.core.errors import ManifestError, ManifestIssue
from infraveil.core.manifest import parse_manifest
from infraveil.core.spec import Manifest


def _issue(file: str, line: int | None, message: str, hint: str) -> ManifestError:
    return ManifestError([ManifestIssue(file, line, message, hint)])


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and parse the manifest at `path`; every problem is raised as one ManifestError."""
    file = os.path.abspath(os.fspath(path))
    try:
        with open(file, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise _issue(
            file, None, f"no manifest at {file}", "create it, or pass the path of infraveil.toml"
        ) from None
    except IsADirectoryError:
        raise _issue(
            file, None, f"{file} is a directory", "pass the path of the manifest file inside it"
        ) from None
    except OSError as exc:
        raise _issue(
            file,
            None,
            f"cannot read {file}: {exc.strerror or exc}",
            "check that the file exists and that this user may read it",
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _issue(
            file,
            data.count(b"\n", 0, exc.start) + 1,
            f"the manifest is not UTF-8 text (byte 0x{data[exc.start]:02x})",
            "save the file as UTF-8",
        ) from None
    return parse_manifest(text, file)
