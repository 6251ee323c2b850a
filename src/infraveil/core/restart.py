"""The restart policy: no knobs, no backoff math for the user.

- The first failure after a stable run restarts at once (a crash is respawned in milliseconds).
- Each further failure without a stable run in between waits twice as long: 1 s, 2 s, 4 s, …
  capped at 5 min, with ±10 % jitter so that services that failed together do not retry in
  lock-step.
- A run is *stable* once the service has been running for `STABLE_RUN` seconds; the next
  failure after it starts the sequence over.

The jitter is derived from the service name and the failure count (a stable hash), not from a
random source, so the core stays a pure function and a test can replay it exactly.
"""

from __future__ import annotations

import zlib

FIRST_DELAY = 1.0
MAX_DELAY = 300.0
JITTER = 0.10
STABLE_RUN = 10.0
"""Seconds of running (after startup) after which the failure count starts over."""
HALTED_RETRY = 600.0
"""A failed (halted) service is still retried on its own this often: never dead forever."""


def backoff_delay(service: str, failures: int) -> float:
    """Seconds to wait before the next start, after `failures` consecutive failed runs."""
    if failures <= 1:
        return 0.0
    base = min(FIRST_DELAY * 2.0 ** (failures - 2), MAX_DELAY)
    spread = zlib.crc32(f"{service}:{failures}".encode()) / 0xFFFFFFFF  # 0 … 1
    return base * (1.0 - JITTER + 2 * JITTER * spread)
