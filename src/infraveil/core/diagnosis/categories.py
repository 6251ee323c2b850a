"""The stable category ids a diagnosis reports (DESIGN.md §3); extend only by adding."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """What kind of failure a finding names. The values are what `-o json` reports."""

    OOM_KILLED = "oom_killed"
    """Killed by the kernel/cgroup or the agent for exceeding its memory limit."""
    HEAP_EXHAUSTED = "heap_exhausted"
    """The runtime's own heap ran out (JVM OutOfMemoryError, Node heap)."""
    STARTUP_EXCEPTION = "startup_exception"
    """An unhandled exception or panic while starting."""
    MISSING_MODULE = "missing_module"
    """A module, package, class or shared library missing from the build."""
    MISSING_ENV = "missing_env"
    """A required environment variable or secret value is not set."""
    CONFIG_INVALID = "config_invalid"
    """A config file exists but does not parse or validate."""
    CONFIG_MISSING = "config_missing"
    """A config or other required file is not there."""
    COMMAND_NOT_FOUND = "command_not_found"
    """The command does not exist."""
    NOT_EXECUTABLE = "not_executable"
    """Permission denied on exec, bad interpreter, noexec."""
    WRONG_ARCH = "wrong_arch"
    """Exec format error: built for another CPU or not a program at all."""
    EXITED_ZERO = "exited_zero"
    """A long-running service exited 0 (daemonized, no foreground process)."""
    SLOW_START_KILLED = "slow_start_killed"
    """A liveness check (or the startup deadline) ended a service that was still starting."""
    PROBE_MISCONFIGURED = "probe_misconfigured"
    """The check itself is wrong (404/401, wrong port, too strict)."""
    UNRESPONSIVE = "unresponsive"
    """Its liveness check failed after it had been running: it stopped answering (a hang, a
    deadlock, an overload); the check did its job."""
    NOT_READY = "not_ready"
    """Readiness failing; nothing is restarted."""
    DEPENDENCY_UNREACHABLE = "dependency_unreachable"
    """A dependency refused or timed out: this service is a victim."""
    DNS_FAILURE = "dns_failure"
    """A name did not resolve."""
    PORT_IN_USE = "port_in_use"
    """The address is already in use."""
    DATA_DIR = "data_dir"
    """A data directory with wrong ownership, permissions, or unexpected content."""
    READ_ONLY_FS = "read_only_fs"
    """Writing to a read-only filesystem."""
    DISK_FULL = "disk_full"
    """No space left on device."""
    TLS_ERROR = "tls_error"
    """Certificate validation failed."""
    SEGFAULT = "segfault"
    """SIGSEGV (139)."""
    KILLED_BY_SIGNAL = "killed_by_signal"
    """Another fatal signal (SIGABRT, an outside SIGKILL, ...)."""
    KERNEL_SETTING = "kernel_setting"
    """A host kernel setting is too low (vm.max_map_count, ...)."""
    MISSING_CONFIGMAP = "missing_configmap"
    """Kubernetes: a referenced ConfigMap (or key) does not exist."""
    MISSING_SECRET = "missing_secret"
    """Kubernetes: a referenced Secret (or key) does not exist."""
    SECURITY_CONTEXT = "security_context"
    """Kubernetes: e.g. runAsNonRoot and the image runs as root."""
    IMAGE_PULL = "image_pull"
    """Kubernetes: the image cannot be pulled."""
    INIT_CONTAINER = "init_container"
    """Kubernetes: an init container fails (the finding names its own cause too)."""
    DNS_LOOP = "dns_loop"
    """Kubernetes: CoreDNS forwarding loop."""
    CNI_FAILURE = "cni_failure"
    """Kubernetes: the pod network plugin (Flannel, Calico, sandbox) is failing."""
    EVICTED = "evicted"
    """Kubernetes: the node evicted the pod."""
    UNKNOWN = "unknown"
    """Not enough evidence; the finding says what evidence is missing."""


TRANSIENT = frozenset(
    {
        Category.DEPENDENCY_UNREACHABLE,
        Category.DNS_FAILURE,
        Category.NOT_READY,
        Category.KILLED_BY_SIGNAL,
        Category.DISK_FULL,
        Category.EVICTED,
        Category.UNKNOWN,
    }
)
"""Categories where trying again as-is can work: something outside the service may change.
Every other category is deterministic unless its rule says otherwise for one case."""
