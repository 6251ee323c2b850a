"""The rules, one per module: each takes the clues and returns a finding or None.

A rule reads facts and log lines and quotes what it relied on; it never decides between
itself and another rule (the engine ranks). Its tests live in tests/core/diagnosis/.
"""

from __future__ import annotations

from collections.abc import Callable

from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.finding import Finding
from infraveil.core.diagnosis.rules import (
    cni_failure,
    command_not_found,
    config_invalid,
    config_missing,
    data_dir,
    dependency_unreachable,
    disk_full,
    dns_failure,
    dns_loop,
    evicted,
    exited_zero,
    heap_exhausted,
    image_pull,
    kernel_setting,
    killed_by_signal,
    missing_configmap,
    missing_env,
    missing_module,
    missing_secret,
    not_executable,
    not_ready,
    oom_killed,
    port_in_use,
    preflight,
    probe_misconfigured,
    read_only_fs,
    security_context,
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
    # Kubernetes: the platform's own reasons (only `doctor k8s` facts carry them)
    missing_configmap.rule,
    missing_secret.rule,
    security_context.rule,
    image_pull.rule,
    evicted.rule,
    cni_failure.rule,
    dns_loop.rule,
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
