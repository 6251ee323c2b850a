"""Writes `line N` (N = 0, 1, 2, ...) to stdout every INTERVAL seconds, one write per line.

    python numbered.py [INTERVAL] [COUNT_FILE]

Used to prove that no output is lost or duplicated across agent kills: the log must hold every
number once, in order. Each line is one `write(2)` (no stdio buffer that a kill could strand),
so every line reaches the pipe whole. After each line, the number just written goes to
COUNT_FILE (atomically, by rename), so a test can tell how far the service got while no agent
was reading its output.
"""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    interval = float(sys.argv[1]) if len(sys.argv) > 1 else 0.01
    count_file = sys.argv[2] if len(sys.argv) > 2 else None
    start = time.monotonic()
    n = 0
    while True:
        os.write(1, f"line {n}\n".encode())
        if count_file is not None:
            tmp = count_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(n))
            os.replace(tmp, count_file)
        n += 1
        # on a fixed schedule: a late wake-up does not slow the rate down
        time.sleep(max(0.0, start + n * interval - time.monotonic()))


if __name__ == "__main__":
    main()
