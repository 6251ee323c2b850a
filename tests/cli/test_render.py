"""Tables as a person sees them: rendered into a StringIO at a fixed width."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from infraveil.cli.render import render_status

REASON = "exited with code 1 after 0.1s; last line: KeyError: 'QUEUE_URL'"
ROWS = [
    {
        "name": "worker", "state": "backoff", "retry_in": 2.0, "ready": False, "pid": None,
        "uptime": None, "restarts": 3, "last_exit": {"code": 1, "signal": None}, "memory": None,
        "reason": REASON,
    },
    {
        "name": "web", "state": "running", "retry_in": None, "ready": True, "pid": 123456,
        "uptime": 100.0, "restarts": 0, "last_exit": None, "memory": 12_345_678, "reason": "",
    },
]  # fmt: skip


def rendered(width: int) -> list[str]:
    out = Console(file=io.StringIO(), width=width, color_system=None)
    render_status(out, ROWS)
    return [line.rstrip() for line in out.file.getvalue().splitlines()]


@pytest.mark.parametrize("width", [100, 120, 250])
def test_status_is_one_line_per_service_and_only_the_reason_is_cut(width: int) -> None:
    header, worker, web = rendered(width)
    assert header.split() == [
        "NAME", "STATE", "READY", "PID", "UPTIME", "RESTARTS", "LAST", "EXIT", "MEMORY", "REASON",
    ]  # fmt: skip
    assert worker.split()[:8] == ["worker", "backoff", "(2.0s)", "no", "-", "-", "3", "exit"]
    assert web.split() == ["web", "running", "yes", "123456", "1m40s", "0", "-", "11.8MiB"]
    assert all(len(line) <= width for line in (header, worker, web))
    reason = worker[header.index("REASON") :]
    if width >= 250:
        assert reason == REASON
    else:
        assert reason.endswith("…") and REASON.startswith(reason[:-1])
