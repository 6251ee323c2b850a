"""The stable category ids a diagnosis reports (DESIGN.md §3); extend only by adding."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """What kind of failure a finding names. The values are what `-o json` reports; their
    meanings are in `MEANING` (and docs/reference/categories.md, generated from it)."""

    OOM_KILLED = "oom_killed"
    HEAP_EXHAUSTED = "heap_exhausted"
    STARTUP_EXCEPTION = "startup_exception"
    MISSING_MODULE = "missing_module"
    MISSING_ENV = "missing_env"
    CONFIG_INVALID = "config_invalid"
    CONFIG_MISSING = "config_missing"
    COMMAND_NOT_FOUND = "command_not_found"
    NOT_EXECUTABLE = "not_executable"
    WRONG_ARCH = "wrong_arch"
    EXITED_ZERO = "exited_zero"
    SLOW_START_KILLED = "slow_start_killed"
    PROBE_MISCONFIGURED = "probe_misconfigured"
    UNRESPONSIVE = "unresponsive"
    NOT_READY = "not_ready"
    DEPENDENCY_UNREACHABLE = "dependency_unreachable"
    DNS_FAILURE = "dns_failure"
    PORT_IN_USE = "port_in_use"
    DATA_DIR = "data_dir"
    READ_ONLY_FS = "read_only_fs"
    DISK_FULL = "disk_full"
    TLS_ERROR = "tls_error"
    SEGFAULT = "segfault"
    KILLED_BY_SIGNAL = "killed_by_signal"
    KERNEL_SETTING = "kernel_setting"
    MISSING_CONFIGMAP = "missing_configmap"
    MISSING_SECRET = "missing_secret"
    SECURITY_CONTEXT = "security_context"
    IMAGE_PULL = "image_pull"
    INIT_CONTAINER = "init_container"
    DNS_LOOP = "dns_loop"
    CNI_FAILURE = "cni_failure"
    EVICTED = "evicted"
    UNKNOWN = "unknown"


MEANING: dict[Category, str] = {
    Category.OOM_KILLED: "Killed by the kernel/cgroup or the agent for exceeding its memory limit.",
    Category.HEAP_EXHAUSTED: "The runtime's own heap ran out (JVM OutOfMemoryError, Node heap).",
    Category.STARTUP_EXCEPTION: "An unhandled exception or panic while starting.",
    Category.MISSING_MODULE: "A module, package, class or shared library missing from the build.",
    Category.MISSING_ENV: "A required environment variable or secret value is not set.",
    Category.CONFIG_INVALID: "A config file exists but does not parse or validate.",
    Category.CONFIG_MISSING: "A config or other required file is not there.",
    Category.COMMAND_NOT_FOUND: "The command does not exist.",
    Category.NOT_EXECUTABLE: "Permission denied on exec, bad interpreter, noexec.",
    Category.WRONG_ARCH: "Exec format error: built for another CPU or not a program at all.",
    Category.EXITED_ZERO: "A long-running service exited 0 (daemonized, no foreground process).",
    Category.SLOW_START_KILLED: (
        "A liveness check (or the startup deadline) ended a service that was still starting."
    ),
    Category.PROBE_MISCONFIGURED: "The check itself is wrong (404/401, wrong port, too strict).",
    Category.UNRESPONSIVE: (
        "Its liveness check failed after it had been running: it stopped answering (a hang,"
        " a deadlock, an overload); the check did its job."
    ),
    Category.NOT_READY: "Readiness failing; nothing is restarted.",
    Category.DEPENDENCY_UNREACHABLE: "A dependency refused or timed out: this service is a victim.",
    Category.DNS_FAILURE: "A name did not resolve.",
    Category.PORT_IN_USE: "The address is already in use.",
    Category.DATA_DIR: "A data directory with wrong ownership, permissions, or unexpected content.",
    Category.READ_ONLY_FS: "Writing to a read-only filesystem.",
    Category.DISK_FULL: "No space left on device.",
    Category.TLS_ERROR: "Certificate validation failed.",
    Category.SEGFAULT: "SIGSEGV (139).",
    Category.KILLED_BY_SIGNAL: "Another fatal signal (SIGABRT, an outside SIGKILL, ...).",
    Category.KERNEL_SETTING: "A host kernel setting is too low (vm.max_map_count, ...).",
    Category.MISSING_CONFIGMAP: "a referenced ConfigMap (or key) does not exist.",
    Category.MISSING_SECRET: "a referenced Secret (or key) does not exist.",
    Category.SECURITY_CONTEXT: "e.g. runAsNonRoot and the image runs as root.",
    Category.IMAGE_PULL: "the image cannot be pulled.",
    Category.INIT_CONTAINER: "an init container fails (the finding names its own cause too).",
    Category.DNS_LOOP: "CoreDNS forwarding loop.",
    Category.CNI_FAILURE: "the pod network plugin (Flannel, Calico, sandbox) is failing.",
    Category.EVICTED: "the node evicted the pod.",
    Category.UNKNOWN: "Not enough evidence; the finding says what evidence is missing.",
}
"""What each category means, in one line: for `why` readers and the reference docs."""

KUBERNETES = frozenset(
    {
        Category.MISSING_CONFIGMAP,
        Category.MISSING_SECRET,
        Category.SECURITY_CONTEXT,
        Category.IMAGE_PULL,
        Category.INIT_CONTAINER,
        Category.DNS_LOOP,
        Category.CNI_FAILURE,
        Category.EVICTED,
    }
)
"""Categories only Kubernetes pods have (`doctor k8s`)."""

TRANSIENT = frozenset(
    {
        Category.DEPENDENCY_UNREACHABLE,
        Category.DNS_FAILURE,
        Category.NOT_READY,
        Category.UNRESPONSIVE,
        Category.KILLED_BY_SIGNAL,
        Category.DISK_FULL,
        Category.EVICTED,
        Category.UNKNOWN,
    }
)
"""Categories where trying again as-is can work: something outside the service may change.
Every other category is deterministic unless its rule says otherwise for one case."""
