"""Durations ("10s", "1m30s", 2.5), sizes ("512M", "2GiB") and their human rendering."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{u: 1 << 10 for u in ("k", "kb", "ki", "kib")},
    **{u: 1 << 20 for u in ("m", "mb", "mi", "mib")},
    **{u: 1 << 30 for u in ("g", "gb", "gi", "gib")},
    **{u: 1 << 40 for u in ("t", "tb", "ti", "tib")},
}


def parse_duration(text: str) -> float:
    """Seconds in `text` such as "500ms", "10s", "1m30s", "2h" or a bare number of seconds.

    Raises ValueError with a message a person can act on.
    """
    s = text.strip().lower()
    if not s:
        raise ValueError("empty duration")
    try:
        return float(s)
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"{text!r} is not a duration; write e.g. 500ms, 10s, 1m30s or 2h")
    return total


def parse_size(text: str) -> int:
    """Bytes in `text` such as "512M", "1.5G", "256MiB" or "1048576".

    Units are binary, as in Docker, systemd and Kubernetes' Mi/Gi: K, M, G and T are 1024,
    1024², … and the spellings KB, KiB, Ki (any case) mean the same. Raises ValueError with a
    message a person can act on.
    """
    m = _SIZE.fullmatch(text.strip().lower())
    if m is None or m.group(2) not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size; write e.g. 512M, 1.5G or 256MiB")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def format_duration(seconds: float) -> str:
    """Short human form: 0.8s, 12s, 3m04s, 2h05m, 3d04h."""
    if seconds < 0:
        seconds = 0.0
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"
