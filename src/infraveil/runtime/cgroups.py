"""A memory cgroup per instance: the limit, the exact peak, OOM kills, and killing a whole tree.

When the agent can create cgroups, every instance runs in its own one, with or without a
`memory` limit: that gives an exact peak, an exact count of OOM kills, and a kill that reaches
every process of the instance, even one that left the process group with `setsid`. The child
joins its cgroup before it executes the command (`Launch.cgroup_procs`), so every byte it
allocates is charged to it.

Layout: all instance cgroups of one agent live under one parent, `infraveil-<hash of the state
directory>`, so two agents with different state directories never touch each other's:

- cgroup v1 (the memory hierarchy): the parent is a child of the agent's own memory cgroup.
- cgroup v2: see `plan_v2` for where the parent goes and why (the "no internal processes" rule).

Instance cgroups are named `<service>@<instance>`; `@` occurs in no interface file name, so a
service called "memory" cannot collide with `memory.*` files.

Errors: `CgroupError` (a cgroup cannot be created or set up); reads never raise, they return
None or 0 for a cgroup that is gone. `Cgroups.detect` never raises: when cgroups cannot be
used it says why in `why_not`, a sentence for a person, and the daemon falls back to watching
RSS.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import signal
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

UNLIMITED = 1 << 62
"""v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages); anything above is no limit."""

KILL_ROUNDS = 100
"""How many read-and-kill passes `InstanceCgroup.kill` makes at most on cgroup v1."""

KMSG_SLACK = 1.0
"""Seconds of tolerance between the kernel log's clock and time.monotonic()."""

LEAF = "infraveil-leaf"
"""cgroup v2, container case: where the processes of the container's cgroup are moved."""


class CgroupError(Exception):
    """A cgroup could not be created or configured; the message says which file and why."""


@dataclass(frozen=True)
class Mount:
    """One mounted cgroup file system: where, which version, and which part of the tree."""

    point: str
    fstype: str  # "cgroup" (v1) or "cgroup2"
    root: str  # the cgroup path shown at `point` ("/" unless a subtree is bind-mounted)
    options: frozenset[str]  # for v1 these name the controllers ("memory", ...)


def parse_mounts(text: str) -> list[Mount]:
    """The cgroup mounts in /proc/self/mountinfo or /proc/self/mounts text (either format).

    mountinfo is better: it has the root of each mount, without which a container's view of
    a bind-mounted subtree cannot be matched with /proc/self/cgroup. /proc/self/mounts has no
    root; "/" is assumed.
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if " - " in line:  # mountinfo: id parent dev root point opts [tags] - fstype src superopts
            left, right = line.split(" - ", 1)
            lf, rf = left.split(), right.split()
            if len(lf) < 5 or len(rf) < 3:
                continue
            root, point, fstype, options = lf[3], lf[4], rf[0], rf[2]
        elif len(fields) >= 4:  # mounts: src point fstype opts dump pass
            root, point, fstype, options = "/", fields[1], fields[2], fields[3]
        else:
            continue
        if fstype in ("cgroup", "cgroup2"):
            mounts.append(
                Mount(
                    point=_unescape(point),
                    fstype=fstype,
                    root=_unescape(root),
                    options=frozenset(options.split(",")),
                )
            )
    return mounts


def _unescape(field: str) -> str:
    """Undo the kernel's octal escapes in mount fields (`\\040` for a space, ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_self_cgroup(text: str) -> tuple[str | None, str | None]:
    """(the v2 path, the v1 memory path) of a process, from /proc/<pid>/cgroup text."""
    v2 = v1_memory = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        path = path.removesuffix(" (deleted)")
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1_memory = path
    return v2, v1_memory


def _directory(mount: Mount, path: str) -> str | None:
    """The directory of cgroup `path` under `mount`, or None if the mount does not show it."""
    root = mount.root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        return None
    return os.path.normpath(mount.point + path[len(root) :])


@dataclass(frozen=True)
class V2Plan:
    """Where instance cgroups go on cgroup v2, and what must be done before."""

    parent: str
    leaf: str | None = None  # move `move` into this cgroup first
    move: tuple[int, ...] = ()
    enable_above: tuple[str, ...] = ()  # enable +memory here (top-down) before making parent


def plan_v2(
    own: str,
    *,
    name: str,
    true_root: bool,
    top_of_view: bool,
    controllers: frozenset[str],
    subtree_control: frozenset[str],
    procs: Sequence[int],
) -> V2Plan | str:
    """Decide where the parent of the instance cgroups goes on cgroup v2 (a str says why not).

    `own` is the agent's own cgroup directory. cgroup v2 forbids a non-root cgroup with
    processes from enabling a domain controller such as memory for its children (the "no
    internal process" rule), and the agent's own cgroup holds the agent. So:

    - own cgroup is the real root (no cgroup.type file; the root is exempt): the parent goes
      right under it.
    - own cgroup is an ordinary cgroup (e.g. /system.slice/infraveil.service): the parent goes
      *beside* it, `<parent of own>/infraveil-<hash>`. This needs only that memory is enabled
      for the children of own's parent, i.e. that `memory` is in own's cgroup.controllers
      (systemd does this for `MemoryAccounting=yes`; `Delegate=yes` is not needed). Moving the
      agent into a leaf instead was rejected: then own cgroup has memory enabled and children,
      so a service manager that restarts the agent cannot put the new agent process back in
      own cgroup (EBUSY, systemd's "219/CGROUP") while the old instances still run; yet an
      agent restart must not take services down. Docker's cgroupfs driver and kubelet keep
      their workloads outside their own cgroup for the same reason. The price: the agent's
      systemd unit does not account for (or stop) its services' memory, which is what "the
      agent can die without taking services down" asks for anyway.
    - own cgroup is the top of what we can see but not the real root (a container with its own
      cgroup namespace): nothing is beside it, so every process in it moves into a leaf
      `infraveil-leaf` and memory is enabled in own cgroup (what Docker's dind entrypoint
      does; the container's cgroup belongs to the container). Processes the agent starts
      later are born in the leaf, and a restarted agent then finds itself in the leaf and
      lands on the same parent by the "beside" rule.
    """
    if true_root:
        if "memory" not in controllers:
            return (
                f"cgroup v2 is mounted at {own} but its memory controller is not available "
                "(the host binds it to a cgroup v1 hierarchy, or it is disabled on the kernel "
                "command line with cgroup_disable=memory)"
            )
        above = () if "memory" in subtree_control else (own,)
        return V2Plan(parent=os.path.join(own, name), enable_above=above)
    if not top_of_view:
        above_own = os.path.dirname(own)
        if "memory" not in controllers:
            return (
                f"cgroup v2: the memory controller is not enabled for the children of "
                f"{above_own}, where infraveil puts its cgroups beside the agent's own {own} "
                "(turn on memory accounting for the agent, e.g. MemoryAccounting=yes in its "
                "systemd unit)"
            )
        return V2Plan(parent=os.path.join(above_own, name))
    if "memory" not in controllers:
        return (
            f"cgroup v2 is mounted but the memory controller is not delegated to {own} "
            "(its parent must enable memory in cgroup.subtree_control; with systemd set "
            "Delegate=yes, with a container runtime give the container its own cgroup)"
        )
    parent = os.path.join(own, name)
    if "memory" in subtree_control:  # a previous agent already moved everything to the leaf
        return V2Plan(parent=parent)
    return V2Plan(
        parent=parent, leaf=os.path.join(own, LEAF), move=tuple(procs), enable_above=(own,)
    )


@dataclass(frozen=True)
class InstanceCgroup:
    """The cgroup of one instance. Reads return None/0/[] once it is gone; they never raise."""

    path: str
    version: int

    @property
    def procs_file(self) -> str:
        """The file a process writes "0" to, to join this cgroup."""
        return os.path.join(self.path, "cgroup.procs")

    def peak_memory(self) -> int | None:
        """The highest memory use since it was created (None on v2 kernels before 5.19)."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        return _read_int(os.path.join(self.path, name))

    def current_memory(self) -> int | None:
        name = "memory.usage_in_bytes" if self.version == 1 else "memory.current"
        return _read_int(os.path.join(self.path, name))

    def limit(self) -> int | None:
        """The memory limit in bytes, None when there is none."""
        name = "memory.limit_in_bytes" if self.version == 1 else "memory.max"
        value = _read_int(os.path.join(self.path, name))  # v2 "max" reads as None
        return None if value is None or value >= UNLIMITED else value

    def oom_kills(self) -> int:
        """How many of its processes the kernel's OOM killer has killed."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        return _read_keyed(os.path.join(self.path, name)).get("oom_kill", 0)

    def pids(self) -> list[int]:
        """Every process in it (and in any cgroup a service made below it), zombies excluded."""
        found: set[int] = set()
        for directory in self._directories():
            found.update(_read_pids(os.path.join(directory, "cgroup.procs")))
        return sorted(found)

    def kill(self) -> int:
        """SIGKILL every process in it; return how many there were.

        v2 has `cgroup.kill`, which the kernel makes safe against concurrent forks. v1 reads
        and kills until a pass finds no process it has not signalled yet: a process with
        SIGKILL pending cannot fork any more, so that ends (bounded by KILL_ROUNDS anyway).
        """
        if self.version == 2 and os.path.exists(os.path.join(self.path, "cgroup.kill")):
            victims = self.pids()
            try:
                _write(os.path.join(self.path, "cgroup.kill"), "1")
                return len(victims)
            except FileNotFoundError:  # the cgroup is gone, and so is everything in it
                return 0
            except OSError:  # e.g. EOPNOTSUPP in a threaded cgroup: kill them one by one
                pass
        signalled: set[int] = set()
        for _ in range(KILL_ROUNDS):
            fresh = [pid for pid in self.pids() if pid not in signalled]
            if not fresh:
                break
            for pid in fresh:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                signalled.add(pid)
        return len(signalled)

    def remove(self) -> bool:
        """Remove it once empty (its sub-cgroups too); False while a process is still in it."""
        for directory in reversed(self._directories()):  # deepest first
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno == errno.EBUSY:
                    return False
                raise CgroupError(f"cannot remove {directory}: {_reason(e)}") from e
        return True

    def _directories(self) -> list[str]:
        """This cgroup's directory and those below it, parents before children."""
        return [root for root, _dirs, _files in os.walk(self.path)]


@dataclass(frozen=True)
class Cgroups:
    """The agent's cgroup support: where instance cgroups go, or why there are none."""

    version: int | None
    parent: str | None
    why_not: str = ""

    @property
    def available(self) -> bool:
        return self.parent is not None

    @classmethod
    def detect(
        cls,
        state_dir: Path,
        mounts: str = "/proc/self/mountinfo",
        self_cgroup: str = "/proc/self/cgroup",
    ) -> Cgroups:
        """Find a usable memory cgroup tree (v2 first, then v1) and set up our parent in it.

        Usable means proven: the parent is created and a probe child is made, shown to carry
        the memory controller's limit file, and removed again. Never raises.
        """
        name = (
            "infraveil-" + hashlib.sha256(os.fsencode(os.path.realpath(state_dir))).hexdigest()[:12]
        )
        try:
            with open(mounts, encoding="utf-8", errors="replace") as f:
                found = parse_mounts(f.read())
            with open(self_cgroup, encoding="utf-8", errors="replace") as f:
                v2_path, v1_path = parse_self_cgroup(f.read())
        except OSError as e:
            return cls(None, None, f"cannot read {e.filename}: {_reason(e)}")
        reasons = []
        for mount in (m for m in found if m.fstype == "cgroup2"):
            own = _directory(mount, v2_path) if v2_path is not None else None
            if own is None:
                continue
            parent, why = _set_up_v2(mount, own, name)
            if parent is not None:
                return cls(2, parent, "")
            reasons.append(why)
            break
        for mount in (m for m in found if m.fstype == "cgroup" and "memory" in m.options):
            if v1_path is None:
                reasons.append(f"the agent's memory cgroup is not listed in {self_cgroup}")
                break
            own = _directory(mount, v1_path)
            if own is None:
                reasons.append(
                    f"the agent's memory cgroup {v1_path} is not inside what is mounted at "
                    f"{mount.point} ({mount.root})"
                )
                continue
            parent = os.path.join(own, name)
            why = _make_parent(parent, version=1)
            if not why:
                return cls(1, parent, "")
            reasons.append(why)
            break
        if not reasons:
            reasons.append(
                f"no cgroup file system with the memory controller is mounted (see {mounts}); "
                "mount cgroup2 on /sys/fs/cgroup to have memory limits enforced by the kernel"
            )
        return cls(None, None, "; ".join(reasons))

    def create(self, service: str, instance: int, memory_limit: int | None) -> InstanceCgroup:
        """Make the cgroup of a new instance, with `memory_limit` bytes if given.

        A leftover cgroup of the same name (an instance number reused after a crash) is
        replaced if empty, so the peak and the OOM count start from zero.
        """
        if self.parent is None or self.version is None:
            raise CgroupError(f"cgroups cannot be used: {self.why_not}")
        if memory_limit is not None and memory_limit <= 0:
            raise ValueError(f"memory limit must be positive, not {memory_limit}")
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", service)
        cgroup = InstanceCgroup(os.path.join(self.parent, f"{safe}@{instance}"), self.version)
        try:
            os.mkdir(cgroup.path)
        except FileExistsError:
            if not cgroup.remove():
                raise CgroupError(
                    f"cgroup {cgroup.path} is left over from an earlier instance and still "
                    "has processes in it"
                ) from None
            try:
                os.mkdir(cgroup.path)
            except OSError as e:
                raise CgroupError(f"cannot create {cgroup.path}: {_reason(e)}") from e
        except OSError as e:
            raise CgroupError(f"cannot create {cgroup.path}: {_reason(e)}") from e
        try:
            if self.version == 1:
                _set_up_v1_instance(cgroup.path, memory_limit)
            else:
                _set_up_v2_instance(cgroup.path, memory_limit)
        except CgroupError:
            cgroup.remove()
            raise
        return cgroup

    def open(self, path: str) -> InstanceCgroup | None:
        """The cgroup of an adopted instance, by the path in its record; None if it is gone."""
        if self.parent is None or self.version is None:
            return None
        path = os.path.normpath(path)
        if os.path.dirname(path) != self.parent or not os.path.isdir(path):
            return None
        return InstanceCgroup(path, self.version)

    def prune(self, keep: Collection[str]) -> list[str]:
        """Remove the empty cgroups earlier agents left behind, except `keep`; return them.

        Only empty ones go: the kernel refuses to remove a cgroup with a live process in it.
        """
        if self.parent is None or self.version is None:
            return []
        kept = {os.path.normpath(p) for p in keep}
        removed = []
        try:
            entries = list(os.scandir(self.parent))
        except OSError:
            return []
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False) or entry.path in kept:
                continue
            try:
                if InstanceCgroup(entry.path, self.version).remove():
                    removed.append(entry.path)
            except CgroupError:
                pass
        return removed


def _set_up_v2(mount: Mount, own: str, name: str) -> tuple[str | None, str]:
    """Carry out `plan_v2`; (the parent, "") or (None, why not)."""
    procs_file = os.path.join(own, "cgroup.procs")
    plan = plan_v2(
        own,
        name=name,
        true_root=not os.path.exists(os.path.join(own, "cgroup.type")),
        top_of_view=own == os.path.normpath(mount.point),
        controllers=_read_words(os.path.join(own, "cgroup.controllers")),
        subtree_control=_read_words(os.path.join(own, "cgroup.subtree_control")),
        procs=_read_pids(procs_file),
    )
    if isinstance(plan, str):
        return None, plan
    if plan.leaf is not None:
        target = os.path.join(plan.leaf, "cgroup.procs")
        try:
            if not os.path.isdir(plan.leaf):
                os.mkdir(plan.leaf)
            for pid in plan.move:
                try:
                    _write(target, str(pid))
                except ProcessLookupError:
                    pass
        except OSError as e:
            return None, f"cannot move the processes of {own} into {plan.leaf}: {_reason(e)}"
    why = _make_parent(plan.parent, version=2, enable_above=plan.enable_above)
    return (None, why) if why else (plan.parent, "")


def _make_parent(parent: str, *, version: int, enable_above: Sequence[str] = ()) -> str:
    """Create `parent` (memory enabled for its children on v2) and prove it with a probe.

    Returns "" when it works, else why not. `enable_above` are v2 cgroups that must enable
    memory for their children first, top-down.
    """
    limit_file = "memory.limit_in_bytes" if version == 1 else "memory.max"
    for directory in enable_above:
        why = _enable_memory(directory)
        if why:
            return why
    try:
        os.mkdir(parent)  # not makedirs: the cgroups above are the system's, never ours to make
    except FileExistsError:
        pass
    except OSError as e:
        return f"cannot create {parent}: {_reason(e)}{_hint(e)}"
    why = _enable_memory(parent) if version == 2 else ""
    if not why:
        why = _probe(parent, limit_file)
    if why:
        try:
            os.rmdir(parent)  # fails, rightly, if an earlier agent's instances are in it
        except OSError:
            pass
    return why


def _probe(parent: str, limit_file: str) -> str:
    """Make and remove a child of `parent`, checking it has `limit_file`; "" or why not."""
    probe = os.path.join(parent, f"probe-{os.getpid()}")
    try:
        os.mkdir(probe)
    except FileExistsError:
        pass
    except OSError as e:
        return f"cannot create {probe}: {_reason(e)}{_hint(e)}"
    try:
        if not os.path.exists(os.path.join(probe, limit_file)):
            return f"{probe} has no {limit_file}: the memory controller is not active there"
    finally:
        try:
            os.rmdir(probe)
        except OSError:
            pass
    return ""


def _enable_memory(directory: str) -> str:
    """Enable the memory controller for the children of a v2 cgroup; "" or why not."""
    control = os.path.join(directory, "cgroup.subtree_control")
    if "memory" in _read_words(control):
        return ""
    try:
        _write(control, "+memory")
    except OSError as e:
        busy = " (it has processes of its own)" if e.errno == errno.EBUSY else ""
        return f"cannot enable the memory controller in {control}: {_reason(e)}{busy}"
    return ""


def _set_up_v1_instance(path: str, limit: int | None) -> None:
    if limit is None:
        return
    try:
        _write(os.path.join(path, "memory.limit_in_bytes"), str(limit))
    except OSError as e:
        raise CgroupError(f"cannot set the memory limit of {path} to {limit}: {_reason(e)}") from e
    # The memory+swap limit too, so that swapping cannot hide an overrun. It must stay >= the
    # memory limit, which is why it is written second (both start unlimited). It exists only
    # with swap accounting (swapaccount=1); without it there is nothing to hide behind.
    memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
    if os.path.exists(memsw):
        try:
            _write(memsw, str(limit))
        except OSError:
            pass  # best effort: the memory limit itself holds


def _set_up_v2_instance(path: str, limit: int | None) -> None:
    settings = [("memory.oom.group", "1")]  # an OOM kill takes the whole instance, not a part
    if limit is not None:
        settings.append(("memory.max", str(limit)))
        if os.path.exists(os.path.join(path, "memory.swap.max")):  # absent without swap support
            settings.append(("memory.swap.max", "0"))
    for name, value in settings:
        try:
            _write(os.path.join(path, name), value)
        except OSError as e:
            raise CgroupError(f"cannot write {value} to {path}/{name}: {_reason(e)}") from e


def _write(path: str, value: str) -> None:
    """One write(2) of `value`: cgroup files take exactly one value per write."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _read_int(path: str) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:  # "max"
        return None


def _read_words(path: str) -> frozenset[str]:
    return frozenset((_read(path) or "").split())


def _read_pids(path: str) -> list[int]:
    return [int(word) for word in (_read(path) or "").split() if word.isdigit()]


def _read_keyed(path: str) -> dict[str, int]:
    """A flat-keyed cgroup file ("key value" lines) as a dict."""
    values = {}
    for line in (_read(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def _reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def _hint(e: OSError) -> str:
    if e.errno == errno.EROFS:
        return " (the cgroup file system is mounted read-only, as in an unprivileged container)"
    if e.errno in (errno.EACCES, errno.EPERM):
        return " (run the agent as root, or delegate this cgroup to the agent's user)"
    return ""


_KILLED = re.compile(r"Killed process (\d+) \(")
_SUMMARY = re.compile(r"oom-kill:.*,pid=(\d+),")


def oom_kill_pids(message: str) -> set[int]:
    """The pids that a kernel log message says the OOM killer killed.

    mm/oom_kill.c logs each kill twice (the exact text varies a little across versions):
    `Out of memory: Killed process 1234 (python3) total-vm:…` (or `Memory cgroup out of
    memory: …`; before 4.19 no prefix), and a one-line summary
    `oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),…,task=python3,pid=1234,uid=0`.
    """
    return {int(p) for p in _KILLED.findall(message)} | {int(p) for p in _SUMMARY.findall(message)}


class KernelLog:
    """The kernel log from the agent's start on, read as it grows: whom the OOM killer killed.

    For instances without a cgroup, whose OOM kill looks like any SIGKILL otherwise. Reading
    all of /dev/kmsg at every SIGKILL costs milliseconds (its ring buffer is often full); this
    keeps the descriptor open at the end of the log and reads only new records.

    Best effort: its pids are those of the initial pid namespace, and unreadable without
    privilege (None then). The killer sends SIGKILL just before it logs the kill, so when the
    killer is another task, an exit noticed within microseconds may be checked before the line
    is written; when the victim is the task whose allocation failed (the usual case), it logs
    its own kill before it can die. `since` (time.monotonic() when the process started) keeps
    a reused pid from being blamed for an older kill: the log's timestamps follow the kernel's
    clock, within KMSG_SLACK of CLOCK_MONOTONIC.
    """

    KEEP = 1024
    """Victims remembered (newest)."""

    def __init__(self, kmsg: str = "/dev/kmsg") -> None:
        self._victims: dict[int, float | None] = {}
        try:
            self._fd: int | None = os.open(kmsg, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            os.lseek(self._fd, 0, os.SEEK_END)  # only what happens from now on
        except OSError:
            self._fd = None

    def oom_killed(self, pid: int, *, since: float | None = None) -> bool | None:
        """Whether the OOM killer killed `pid` (after `since`); None if the log is unreadable."""
        if self._fd is None:
            return None
        for logged, victims in _oom_records(self._fd):
            for victim in victims:
                self._victims[victim] = logged
        while len(self._victims) > self.KEEP:
            del self._victims[next(iter(self._victims))]
        if pid not in self._victims:
            return False
        logged = self._victims[pid]
        return since is None or logged is None or logged >= since - KMSG_SLACK

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _oom_records(fd: int) -> Iterator[tuple[float | None, set[int]]]:
    """(when, pids) of every OOM kill in the records readable from `fd`, up to the end."""
    while True:
        try:
            record = os.read(fd, 16384)
        except BlockingIOError:  # the end of the log
            return
        except BrokenPipeError:  # the record was overwritten while we read: go on
            continue
        except InterruptedError:
            continue
        except OSError:  # e.g. EINVAL for a record longer than the buffer: stop there
            return
        if not record:
            return
        header, _, message = record.decode("utf-8", "replace").partition(";")
        fields = header.split(",")  # priority,sequence,microseconds,flags[,...]
        logged = int(fields[2]) / 1e6 if len(fields) >= 3 and fields[2].isdigit() else None
        first_line = message.partition("\n")[0]  # continuation lines are KEY=value pairs
        victims = oom_kill_pids(first_line)
        if victims:
            yield logged, victims
