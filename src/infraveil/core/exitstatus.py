"""How an instance ended: exit code or signal, and the words for it."""

from __future__ import annotations

import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class ExitStatus:
    """The end of one instance.

    Exactly one of `code` and `signal` is set, unless the status could not be obtained
    (`unknown`): only a process's parent gets it, and an instance started by an earlier agent
    (adopted, or ended while no agent ran) is not this agent's child.
    """

    code: int | None = None
    signal: int | None = None
    core_dumped: bool = False
    unknown: bool = False

    @classmethod
    def from_wait_status(cls, status: int) -> ExitStatus:
        """Decode a raw `waitpid` status."""
        import os  # os.W* are pure bit arithmetic; no I/O happens here

        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status), core_dumped=os.WCOREDUMP(status))
        if os.WIFEXITED(status):
            return cls(code=os.WEXITSTATUS(status))
        return cls(unknown=True)

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    def describe(self) -> str:
        """`exited with code 1`, `killed by SIGKILL`, `killed by SIGSEGV (core dumped)`."""
        if self.unknown:
            return "exited (exit status unknown: it was started by an earlier agent)"
        if self.signal is not None:
            return f"killed by {self.signal_name}" + (" (core dumped)" if self.core_dumped else "")
        return f"exited with code {self.code}"

    def short(self) -> str:
        """For a table cell: `1`, `SIGKILL`, `?`."""
        if self.unknown:
            return "?"
        if self.signal is not None:
            return self.signal_name or "?"
        return str(self.code)

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "signal": self.signal_name,
            "core_dumped": self.core_dumped,
            "unknown": self.unknown,
            "text": self.describe(),
        }
