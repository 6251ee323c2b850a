"""Reading /proc: memory of whole process groups in one pass, and process start times.

Every service runs in its own process group, so the memory of its whole tree is the sum over
the processes whose group is the service's. One pass over /proc/*/stat gives the group and the
resident size of every process at once; psutil would need several reads per process (it has
no process-group attribute), which matters when 500 services are sampled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import psutil

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_by_group(groups: Iterable[int]) -> dict[int, int]:
    """Resident bytes of every process group in `groups` (absent groups are left out)."""
    wanted = set(groups)
    totals: dict[int, int] = {}
    if not wanted:
        return totals
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the process exited while we looked
            continue
        # the command name (field 2) may contain spaces and parentheses: split after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        pgrp, rss_pages = int(fields[2]), int(fields[21])
        if pgrp in wanted:
            totals[pgrp] = totals.get(pgrp, 0) + rss_pages * _PAGE
    return totals


def process_start_time(pid: int) -> float | None:
    """When `pid` started (seconds since the epoch), or None if there is no such process.

    Stored with each instance so that a pid reused by another program is never mistaken for
    the service after an agent restart.
    """
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
