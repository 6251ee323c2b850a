"""The one error root of infraveil, with stable string codes.

    InfraveilError                    code            (what a person did or must do)
    ├── ManifestError                 manifest_invalid   the manifest has one or more problems
    ├── UnknownServiceError           unknown_service    a name that is not in the manifest
    ├── NotFoundError                 not_found          no such instance (or log) of a service
    ├── AgentNotRunningError          agent_not_running  no agent answers on the state directory
    ├── AgentAlreadyRunningError      agent_running      a second agent on one state directory
    ├── StateDirError                 state_dir          the state directory cannot be used
    ├── CommandRefusedError           refused            refused in the service's current state
    ├── PayloadError                  payload_invalid    a release payload that cannot be used
    └── ApiError                      api_error          the agent answered with an unexpected error

Codes are part of the interface: the CLI maps them to exit codes in exactly one place
(`infraveil.cli.errors`), the API maps them to HTTP statuses in exactly one place
(`infraveil.api.errors`). Nothing below the CLI prints or exits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class InfraveilError(Exception):
    """Root of every error a person can cause or fix."""

    code = "error"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


@dataclass(frozen=True)
class ManifestIssue:
    """One problem in a manifest, located at file:line."""

    file: str
    line: int | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}" + (f" ({self.hint})" if self.hint else "")


class ManifestError(InfraveilError):
    """The manifest cannot be used; `issues` lists every problem found, each with its line."""

    code = "manifest_invalid"

    def __init__(self, issues: Sequence[ManifestIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class UnknownServiceError(InfraveilError):
    code = "unknown_service"

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        names = ", ".join(sorted(known)) or "none"
        super().__init__(f"no service named {name!r}", hint=f"known services: {names}")


class NotFoundError(InfraveilError):
    code = "not_found"


class AgentNotRunningError(InfraveilError):
    code = "agent_not_running"


class AgentAlreadyRunningError(InfraveilError):
    code = "agent_running"


class StateDirError(InfraveilError):
    code = "state_dir"


class CommandRefusedError(InfraveilError):
    code = "refused"

    def __init__(self, message: str, *, hint: str = "", state: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.state = state
        """The service's state when the agent refused (a caller need not ask again)."""


class PayloadError(InfraveilError):
    """A release payload is not an archive, is corrupt, does not match its sha256, or would
    write outside its release directory; nothing was started or changed."""

    code = "payload_invalid"


class ApiError(InfraveilError):
    code = "api_error"
