"""The rules, one per module: each takes the clues and returns a finding or None.

A rule reads facts and log lines and quotes what it relied on; it never decides between
itself and another rule (the engine ranks). Its tests live in tests/core/diagnosis/.
"""

from __future__ import annotations

from collections.abc import Callable

from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Finding
from infraveil.core.diagnosis.rules import (
    command_not_found,
    config_invalid,
    config_missing,
    data_dir,
    dependency_unreachable,
    disk_full,
    dns_failure,
    exited_zero,
    heap_exhausted,
    kernel_setting,
    killed_by_signal,
    missing_env,
    missing_module,
    not_executable,
    not_ready,
    oom_killed,
    port_in_use,
    preflight,
    probe_misconfigured,
    read_only_fs,
    segfault,
    slow_start_killed,
    startup_exception,
    tls_error,
    unresponsive,
    wrong_arch,
)

Rule = Callable[[Clues], Finding | None]

RULES: tuple[Rule, ...] = (
    preflight.rule,
    oom_killed.rule,
    heap_exhausted.rule,
    probe_misconfigured.rule,
    slow_start_killed.rule,
    unresponsive.rule,
    not_ready.rule,
    command_not_found.rule,
    not_executable.rule,
    wrong_arch.rule,
    missing_module.rule,
    missing_env.rule,
    config_invalid.rule,
    config_missing.rule,
    data_dir.rule,
    read_only_fs.rule,
    disk_full.rule,
    tls_error.rule,
    kernel_setting.rule,
    port_in_use.rule,
    dns_failure.rule,
    dependency_unreachable.rule,
    exited_zero.rule,
    segfault.rule,
    killed_by_signal.rule,
    startup_exception.rule,
)
