"""Per-instance cgroups with the real kernel: joining, limits, OOM kills, killing a tree.

Tests that need a usable memory cgroup tree take the `cgroups` fixture, which skips (saying
why) where the agent could not use one, and removes every cgroup it made even when the test
fails. The "not available" paths and the cgroup v2 layout decisions run everywhere, on fake
trees and as plain data.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from infraveil.runtime.cgroups import (
    LEAF,
    CgroupError,
    Cgroups,
    InstanceCgroup,
    KernelLog,
    V2Plan,
    oom_kill_pids,
    parse_mounts,
    parse_self_cgroup,
    plan_v2,
)
from infraveil.runtime.processes import Exit, ExitWatcher, SpawnError
from waiting import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(1000)"]


def _tear_down(directory: str, version: int) -> None:
    """Kill whatever is left in `directory` and remove it with all its cgroups."""
    if not os.path.isdir(directory):
        return
    cgroup = InstanceCgroup(directory, version)
    cgroup.kill()
    wait_for(cgroup.remove, 10, f"{directory} to be empty and removed")


@pytest.fixture
def cgroups(tmp_path: Path) -> Iterator[Cgroups]:
    found = Cgroups.detect(tmp_path / "state")
    if not found.available:
        pytest.skip(f"cgroups are not usable here: {found.why_not}")
    assert found.parent is not None and found.version is not None
    try:
        yield found
    finally:
        _tear_down(found.parent, found.version)


def _membership(pid: int, version: int) -> str:
    """The cgroup path of `pid` in the memory hierarchy (v1) or the unified one (v2)."""
    v2, v1 = parse_self_cgroup(Path(f"/proc/{pid}/cgroup").read_text())
    path = v1 if version == 1 else v2
    assert path is not None
    return path


def _kmsg_readable() -> bool:
    try:
        os.close(os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK))
    except OSError:
        return False
    return True


# -- with the real kernel ---------------------------------------------------------------------


def test_detect_finds_a_usable_tree_with_one_parent_per_state_directory(
    cgroups: Cgroups, tmp_path: Path
) -> None:
    assert cgroups.version in (1, 2)
    assert cgroups.why_not == ""
    assert cgroups.parent is not None
    assert os.path.basename(cgroups.parent).startswith("infraveil-")
    if cgroups.version == 1:  # v1: right under the agent's own memory cgroup
        own = os.path.join(os.path.dirname(cgroups.parent), "cgroup.procs")
        assert str(os.getpid()) in Path(own).read_text().split()
    again = Cgroups.detect(tmp_path / "state")
    assert again.parent == cgroups.parent, "the same state directory must give the same parent"
    other = Cgroups.detect(tmp_path / "other-state")
    assert other.parent is not None
    try:
        assert other.parent != cgroups.parent
        assert os.path.dirname(other.parent) == os.path.dirname(cgroups.parent)
    finally:
        _tear_down(other.parent, cgroups.version)


def test_a_child_is_in_its_cgroup_from_its_first_instruction(
    cgroups: Cgroups, children, watch_exit, tmp_path: Path
) -> None:
    cgroup = cgroups.create("api", 1, None)
    seen = tmp_path / "seen"
    code = f"open({str(seen)!r}, 'w').write(open('/proc/self/cgroup').read())"

    async def main() -> Exit:
        watcher = ExitWatcher(asyncio.get_running_loop())
        try:
            launch = replace(
                children.launch([sys.executable, "-c", code]), cgroup_procs=cgroup.procs_file
            )
            return await asyncio.wait_for(await watch_exit(watcher, children.spawn(launch)), 10)
        finally:
            watcher.close()

    assert asyncio.run(main()).status.code == 0
    v2, v1 = parse_self_cgroup(seen.read_text())
    member = v1 if cgroups.version == 1 else v2
    assert member is not None
    assert member.endswith(f"/{os.path.basename(str(cgroups.parent))}/api@1")
    peak = cgroup.peak_memory()
    if peak is not None:  # the interpreter's own start-up was charged here, not to the agent
        assert peak > 1 << 20
    assert cgroup.pids() == []
    assert cgroup.limit() is None


def test_a_running_child_is_listed_and_shown_in_proc(cgroups: Cgroups, children) -> None:
    cgroup = cgroups.create("web", 3, None)
    child = children.spawn(replace(children.launch(SLEEPER), cgroup_procs=cgroup.procs_file))
    assert cgroup.pids() == [child.pid]
    assert _membership(child.pid, cgroups.version or 0).endswith("/web@3")
    assert cgroups.open(cgroup.path) == cgroup


def test_the_kernel_kills_an_instance_over_its_limit_and_it_is_counted(
    cgroups: Cgroups, children, watch_exit
) -> None:
    limit = 64 << 20
    cgroup = cgroups.create("hog", 1, limit)
    assert cgroup.limit() == limit
    hog = "data = b'x' * (300 << 20); print(len(data))"  # every page written, so charged
    started = time.monotonic()
    kernel_log = KernelLog()  # from now on: the kill is logged after this

    async def main() -> tuple[int, Exit]:
        watcher = ExitWatcher(asyncio.get_running_loop())
        try:
            launch = replace(
                children.launch([sys.executable, "-c", hog]), cgroup_procs=cgroup.procs_file
            )
            child = children.spawn(launch)
            return child.pid, await asyncio.wait_for(await watch_exit(watcher, child), 60)
        finally:
            watcher.close()

    pid, exit = asyncio.run(main())
    assert exit.status.signal == signal.SIGKILL
    assert cgroup.oom_kills() == 1
    peak = cgroup.peak_memory()
    if cgroups.version == 1 or peak is not None:  # v2 has memory.peak from Linux 5.19
        assert peak is not None
        assert limit * 3 // 4 <= peak <= limit, f"peak {peak} for a limit of {limit}"
    victim = kernel_log.oom_killed(pid, since=started)
    kernel_log.close()
    if _kmsg_readable():
        assert victim is True
    else:
        assert victim is None


def test_kill_reaches_a_grandchild_that_left_the_process_group(
    cgroups: Cgroups, children, tmp_path: Path, alive: Callable[[int], bool]
) -> None:
    cgroup = cgroups.create("tree", 1, None)
    pidfile = tmp_path / "grandchild.pid"
    script = f"setsid sleep 1000 & echo $! > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; wait"
    launch = replace(children.launch(["sh", "-c", script]), cgroup_procs=cgroup.procs_file)
    child = children.spawn(launch)
    wait_for(pidfile.exists, 10, "the grandchild to write its pid")
    grandchild = int(pidfile.read_text())
    wait_for(lambda: os.getsid(grandchild) == grandchild, 10, "the grandchild to call setsid")
    assert os.getpgid(grandchild) != os.getpgid(child.pid), "it must have left the group"
    assert cgroup.pids() == sorted([child.pid, grandchild])
    assert not cgroup.remove(), "a cgroup with processes cannot be removed"

    assert cgroup.kill() == 2
    wait_for(lambda: not alive(grandchild), 10, f"grandchild {grandchild} to die")
    wait_for(lambda: not alive(child.pid), 10, f"child {child.pid} to die")
    wait_for(cgroup.remove, 10, "the emptied cgroup to be removed")
    assert not os.path.exists(cgroup.path)
    assert cgroups.open(cgroup.path) is None
    assert cgroup.pids() == []
    assert cgroup.oom_kills() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_a_service_of_another_user_still_joins_its_cgroup(cgroups: Cgroups, children) -> None:
    nobody = pwd.getpwnam("nobody")
    cgroup = cgroups.create("unprivileged", 1, None)
    launch = replace(
        children.launch(["/bin/sleep", "1000"], cwd="/"),
        user="nobody",
        cgroup_procs=cgroup.procs_file,
    )
    child = children.spawn(launch)  # Popen returns after the exec: the switch is done
    assert cgroup.pids() == [child.pid]
    status = {
        key: value.split()
        for key, _, value in (
            line.partition(":")
            for line in Path(f"/proc/{child.pid}/status").read_text().splitlines()
        )
    }
    assert status["Uid"] == [str(nobody.pw_uid)] * 4
    assert status["Gid"] == [str(nobody.pw_gid)] * 4
    expected_groups = {str(g) for g in os.getgrouplist("nobody", nobody.pw_gid)}
    assert set(status["Groups"]) == expected_groups


def test_a_leftover_cgroup_is_replaced_if_empty_and_refused_if_busy(
    cgroups: Cgroups, children
) -> None:
    first = cgroups.create("db", 7, 32 << 20)
    second = cgroups.create("db", 7, 48 << 20)
    assert second.path == first.path
    assert second.limit() == 48 << 20
    children.spawn(replace(children.launch(SLEEPER), cgroup_procs=second.procs_file))
    with pytest.raises(CgroupError, match="still has processes"):
        cgroups.create("db", 7, None)


def test_prune_removes_only_empty_cgroups_that_are_not_kept(cgroups: Cgroups, children) -> None:
    kept = cgroups.create("a", 1, None)
    empty = cgroups.create("b", 1, None)
    busy = cgroups.create("c", 1, None)
    children.spawn(replace(children.launch(SLEEPER), cgroup_procs=busy.procs_file))

    assert cgroups.prune([kept.path]) == [empty.path]
    assert os.path.isdir(kept.path)
    assert os.path.isdir(busy.path)
    assert not os.path.exists(empty.path)


def test_open_refuses_a_path_outside_its_parent(cgroups: Cgroups, tmp_path: Path) -> None:
    assert cgroups.open(str(tmp_path)) is None
    assert cgroups.open(os.path.join(str(cgroups.parent), "gone@1")) is None


# -- cgroup v2 mechanics, where a cgroup2 hierarchy is writable (without memory if need be) ----


@pytest.fixture
def v2_cgroup() -> Iterator[InstanceCgroup]:
    """A fresh cgroup in the unified hierarchy, even one without the memory controller."""
    v2_path, _ = parse_self_cgroup(Path("/proc/self/cgroup").read_text())
    mounts = parse_mounts(Path("/proc/self/mountinfo").read_text())
    unified = [m for m in mounts if m.fstype == "cgroup2" and m.root == "/"]
    if v2_path is None or not unified:
        pytest.skip("no cgroup v2 hierarchy is mounted here")
    path = os.path.join(unified[0].point + v2_path, f"ivl-test-{os.getpid()}")
    try:
        os.mkdir(path)
    except OSError as e:
        pytest.skip(f"cannot create a cgroup v2 directory here: {e}")
    try:
        yield InstanceCgroup(path, 2)
    finally:
        _tear_down(path, 2)


def test_v2_join_list_and_kill_with_cgroup_kill(
    v2_cgroup: InstanceCgroup, children, tmp_path: Path, alive: Callable[[int], bool]
) -> None:
    if not os.path.exists(os.path.join(v2_cgroup.path, "cgroup.kill")):
        pytest.skip("this kernel has no cgroup.kill (Linux < 5.14)")
    pidfile = tmp_path / "grandchild.pid"
    script = f"setsid sleep 1000 & echo $! > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; wait"
    launch = replace(children.launch(["sh", "-c", script]), cgroup_procs=v2_cgroup.procs_file)
    child = children.spawn(launch)
    wait_for(pidfile.exists, 10, "the grandchild to write its pid")
    grandchild = int(pidfile.read_text())
    assert v2_cgroup.pids() == sorted([child.pid, grandchild])
    assert _membership(child.pid, 2).endswith(os.path.basename(v2_cgroup.path))

    assert v2_cgroup.kill() == 2
    wait_for(lambda: not alive(grandchild) and not alive(child.pid), 10, "both to die")
    wait_for(v2_cgroup.remove, 10, "the emptied cgroup to be removed")
    if "memory" not in Path(os.path.dirname(v2_cgroup.path), "cgroup.subtree_control").read_text():
        assert v2_cgroup.peak_memory() is None
        assert v2_cgroup.limit() is None
        assert v2_cgroup.oom_kills() == 0


# -- joining failures -------------------------------------------------------------------------


def test_a_cgroup_that_cannot_be_joined_is_a_transient_spawn_error(
    children, tmp_path: Path
) -> None:
    missing = tmp_path / "gone@1" / "cgroup.procs"
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(SpawnError) as caught:
        children.spawn(replace(children.launch(SLEEPER), cgroup_procs=str(missing)))
    assert str(caught.value) == (
        f"cannot put the instance in its cgroup {missing.parent}: No such file or directory"
    )
    assert not caught.value.deterministic
    assert set(os.listdir("/proc/self/fd")) == before


def test_create_without_cgroups_says_why() -> None:
    none = Cgroups(version=None, parent=None, why_not="no cgroup file system is mounted")
    assert not none.available
    with pytest.raises(CgroupError, match="no cgroup file system is mounted"):
        none.create("api", 1, None)
    assert none.open("/sys/fs/cgroup/x") is None
    assert none.prune([]) == []


# -- detection on fake trees: the "not available" paths ---------------------------------------


def _detect(tmp_path: Path, mounts: str, self_cgroup: str) -> Cgroups:
    (tmp_path / "mounts.txt").write_text(mounts)
    (tmp_path / "self-cgroup.txt").write_text(self_cgroup)
    return Cgroups.detect(
        tmp_path / "state",
        mounts=str(tmp_path / "mounts.txt"),
        self_cgroup=str(tmp_path / "self-cgroup.txt"),
    )


def test_no_cgroup_mounted_is_not_available(tmp_path: Path) -> None:
    found = _detect(tmp_path, "proc /proc proc rw 0 0\n", "0::/\n")
    assert not found.available
    assert found.version is None
    assert found.why_not.startswith("no cgroup file system with the memory controller is mounted")
    assert str(tmp_path / "mounts.txt") in found.why_not


def test_an_unreadable_mount_table_is_not_available(tmp_path: Path) -> None:
    found = Cgroups.detect(tmp_path, mounts=str(tmp_path / "nothing"))
    assert not found.available
    assert found.why_not == f"cannot read {tmp_path / 'nothing'}: no such file or directory"


def test_a_v1_memory_cgroup_that_cannot_be_created_is_not_available(tmp_path: Path) -> None:
    point = tmp_path / "memory"  # not there: mkdir fails as it would on a read-only mount
    found = _detect(tmp_path, f"cgroup {point} cgroup rw,memory 0 0\n", "4:memory:/agent\n")
    assert not found.available
    assert found.why_not.startswith(f"cannot create {point}/agent/infraveil-")
    assert found.why_not.endswith(": no such file or directory")


def test_a_v1_tree_without_the_memory_files_is_not_available(tmp_path: Path) -> None:
    point = tmp_path / "memory"
    (point / "agent").mkdir(parents=True)  # a plain directory: mkdir works, no memory files
    found = _detect(tmp_path, f"cgroup {point} cgroup rw,memory 0 0\n", "4:memory:/agent\n")
    assert not found.available
    assert "has no memory.limit_in_bytes: the memory controller is not active there" in (
        found.why_not
    )
    assert os.listdir(point / "agent") == [], "a failed probe leaves nothing behind"


def test_v2_without_the_memory_controller_is_not_available(tmp_path: Path) -> None:
    point = tmp_path / "unified"  # like this hybrid host: the controllers are bound to v1
    point.mkdir()
    (point / "cgroup.controllers").write_text("hugetlb\n")
    found = _detect(tmp_path, f"cgroup2 {point} cgroup2 rw 0 0\n", "0::/\n")
    assert not found.available
    assert found.why_not.startswith(
        f"cgroup v2 is mounted at {point} but its memory controller is not available"
    )


def test_v2_beside_a_unit_without_memory_accounting_says_what_to_set(tmp_path: Path) -> None:
    point = tmp_path / "cgroup"
    own = point / "system.slice" / "agent.service"
    own.mkdir(parents=True)
    (own / "cgroup.type").write_text("domain\n")
    (own / "cgroup.controllers").write_text("cpu pids\n")
    found = _detect(
        tmp_path, f"cgroup2 {point} cgroup2 rw 0 0\n", "0::/system.slice/agent.service\n"
    )
    assert not found.available
    assert f"not enabled for the children of {point / 'system.slice'}" in found.why_not
    assert "MemoryAccounting=yes" in found.why_not


def test_v2_in_a_container_without_delegation_says_what_to_set(tmp_path: Path) -> None:
    point = tmp_path / "cgroup"  # a cgroup namespace: the container's cgroup is "/" here
    point.mkdir()
    (point / "cgroup.type").write_text("domain\n")
    (point / "cgroup.controllers").write_text("cpu\n")
    mountinfo = f"40 31 0:38 / {point} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    found = _detect(tmp_path, mountinfo, "0::/\n")
    assert not found.available
    assert f"the memory controller is not delegated to {point}" in found.why_not
    assert "Delegate=yes" in found.why_not


def test_both_versions_failing_gives_both_reasons(tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("")
    mounts = (
        f"cgroup2 {unified} cgroup2 rw 0 0\ncgroup {tmp_path / 'memory'} cgroup rw,memory 0 0\n"
    )
    found = _detect(tmp_path, mounts, "4:memory:/x\n0::/\n")
    assert not found.available
    v2, v1 = found.why_not.split("; ")
    assert "memory controller is not available" in v2
    assert v1.startswith("cannot create")


# -- parsing and the v2 layout, as plain data -------------------------------------------------


def test_parse_mounts_reads_mountinfo_and_mounts_formats() -> None:
    mountinfo = (
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "41 31 0:38 /docker/abc /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw\n"
        "22 1 0:21 / /proc rw - proc proc rw\n"
        "50 31 0:40 / /mnt/with\\040space rw - cgroup2 none rw\n"
    )
    found = parse_mounts(mountinfo)
    assert [(m.point, m.fstype, m.root) for m in found] == [
        ("/sys/fs/cgroup/memory", "cgroup", "/"),
        ("/sys/fs/cgroup", "cgroup2", "/docker/abc"),
        ("/mnt/with space", "cgroup2", "/"),
    ]
    assert "memory" in found[0].options
    mounts = "cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,memory 0 0\nproc /proc proc rw 0 0\n"
    (only,) = parse_mounts(mounts)
    assert (only.point, only.fstype, only.root) == ("/sys/fs/cgroup/memory", "cgroup", "/")
    assert "memory" in only.options


def test_parse_self_cgroup_finds_the_v2_and_the_v1_memory_paths() -> None:
    text = "9:name=systemd:/\n5:cpu,cpuacct:/a\n4:memory:/process_api/xyz\n0::/\n"
    assert parse_self_cgroup(text) == ("/", "/process_api/xyz")
    assert parse_self_cgroup("0::/system.slice/x.service (deleted)\n") == (
        "/system.slice/x.service",
        None,
    )


def _plan(own: str, **facts: object) -> V2Plan | str:
    defaults: dict[str, object] = {
        "name": "infraveil-abc",
        "true_root": False,
        "top_of_view": False,
        "controllers": frozenset({"cpu", "memory"}),
        "subtree_control": frozenset(),
        "procs": (),
    }
    return plan_v2(own, **{**defaults, **facts})  # type: ignore[arg-type]


def test_plan_v2_root_puts_the_parent_right_under_it() -> None:
    assert _plan("/cg", true_root=True) == V2Plan(parent="/cg/infraveil-abc", enable_above=("/cg",))
    enabled = _plan("/cg", true_root=True, subtree_control=frozenset({"memory"}))
    assert enabled == V2Plan(parent="/cg/infraveil-abc")
    assert isinstance(_plan("/cg", true_root=True, controllers=frozenset({"cpu"})), str)


def test_plan_v2_an_ordinary_cgroup_gets_its_parent_beside_it_and_moves_nothing() -> None:
    plan = _plan("/cg/system.slice/infraveil.service", procs=(1, 2))
    assert plan == V2Plan(parent="/cg/system.slice/infraveil-abc")
    assert isinstance(_plan("/cg/a.service", controllers=frozenset({"cpu"})), str)


def test_plan_v2_a_container_moves_its_processes_into_a_leaf_once() -> None:
    plan = _plan("/cg", top_of_view=True, procs=(1, 42))
    assert plan == V2Plan(
        parent="/cg/infraveil-abc",
        leaf=f"/cg/{LEAF}",
        move=(1, 42),
        enable_above=("/cg",),
    )
    again = _plan("/cg", top_of_view=True, subtree_control=frozenset({"memory"}))
    assert again == V2Plan(parent="/cg/infraveil-abc")
    # and an agent restarted inside the leaf lands on the same parent, by the "beside" rule
    assert _plan(f"/cg/{LEAF}") == V2Plan(parent="/cg/infraveil-abc")


# -- the kernel log ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "pids"),
    [
        (
            "Out of memory: Killed process 1234 (python3) total-vm:331524kB, anon-rss:65236kB, "
            "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:700kB oom_score_adj:0",
            {1234},
        ),
        ("Memory cgroup out of memory: Killed process 4321 (java) total-vm:1kB, ...", {4321}),
        ("Killed process 99 (sh) total-vm:1kB, anon-rss:1kB, file-rss:0kB", {99}),  # < 4.19
        (
            "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
            "oom_memcg=/x,task_memcg=/x,task=python3,pid=777,uid=0",
            {777},
        ),
        ("oom_reaper: reaped process 1234 (python3), now anon-rss:0kB, file-rss:0kB", set()),
        ("python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0", set()),
        ("Kill process 55 (x) sharing same memory", set()),
    ],
)
def test_oom_kill_pids_reads_the_kernels_formats(message: str, pids: set[int]) -> None:
    assert oom_kill_pids(message) == pids


def test_the_kernel_log_is_read_from_the_agents_start_and_only_as_it_grows(
    tmp_path: Path,
) -> None:
    kmsg = tmp_path / "kmsg"
    kmsg.write_text("3,1,1000000,-;Out of memory: Killed process 111 (old) total-vm:1kB\n")
    log = KernelLog(str(kmsg))
    try:
        assert log.oom_killed(111) is False  # before the agent started: not ours to judge
        with kmsg.open("a") as f:
            f.write("3,2,9000000,-;Memory cgroup out of memory: Killed process 222 (x) a:1kB\n")
        assert log.oom_killed(222) is True
        assert log.oom_killed(222, since=100.0) is False  # a reused pid, killed long before
        assert log.oom_killed(333) is False
    finally:
        log.close()
    assert KernelLog(str(tmp_path / "none")).oom_killed(222) is None
