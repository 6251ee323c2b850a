"""Preflight: what can be known to fail before a service is started, checked before every start.

Each check looks at the files, users and ports a start depends on, and reports what it found as
a `PreflightProblem` (the evidence in plain words, and the fix) in the category the crash would
have been diagnosed as: the command (`command_not_found`, `not_executable`, `wrong_arch`, a
missing ELF loader as `missing_module`), the working directory, the env_file and the config
files named in the command (`config_missing`, `data_dir`), the user (`config_invalid`), the
variables in `required_env` (`missing_env`) and the ports (`port_in_use`).

It runs on the agent's path to every spawn, so it stays cheap (a few dozen stat calls, one
4 KiB read, one bind per port; no subprocess, no DNS) and never raises: a check that cannot
tell reports nothing, and the spawn then reports whatever really happens.

"Readable by the service's user" is computed from modes, owners and groups when the service
runs as another user than the agent (the agent is root and the service `nobody`), counting the
search permission of every parent directory; ACLs and capabilities are not considered there.
For the agent's own user, the kernel is asked (`os.access`), which counts them.
"""

from __future__ import annotations

import errno
import grp
import os
import platform
import pwd
import re
import socket
import stat
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from infraveil.core.checks import CheckKind
from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.facts import PreflightProblem
from infraveil.core.spec import ServiceSpec
from infraveil.runtime.processes import account_of

CONFIG_SUFFIXES = (
    ".conf",
    ".cfg",
    ".ini",
    ".toml",
    ".yml",
    ".yaml",
    ".json",
    ".xml",
    ".properties",
    ".env",
)
"""Arguments naming a file with one of these endings are config files, which must exist."""

_OUTPUT_FLAGS = frozenset({"o", "out", "output", "outfile", "output-file", "dump", "save", "write"})
"""Flags whose value is written, not read: a `--output=/tmp/report.json` need not exist yet."""

_HEAD = 4096
"""Bytes of the command read to recognise it: a #! line, or an ELF header and its PT_INTERP."""

# e_machine values of the ELF programs each `uname -m` runs natively (32-bit ones included
# where the 64-bit kernel usually runs them too). A machine not listed here is not checked.
_EM_386, _EM_ARM, _EM_X86_64, _EM_AARCH64 = 3, 40, 62, 183
_NATIVE: dict[str, frozenset[int]] = {
    "x86_64": frozenset({_EM_X86_64, _EM_386}),
    "amd64": frozenset({_EM_X86_64, _EM_386}),
    "i386": frozenset({_EM_386}),
    "i686": frozenset({_EM_386}),
    "aarch64": frozenset({_EM_AARCH64, _EM_ARM}),
    "arm64": frozenset({_EM_AARCH64, _EM_ARM}),
    "armv7l": frozenset({_EM_ARM}),
    "armv6l": frozenset({_EM_ARM}),
    "ppc64le": frozenset({21}),
    "ppc64": frozenset({21}),
    "s390x": frozenset({22}),
    "riscv64": frozenset({243}),
    "loongarch64": frozenset({258}),
}
_MACHINE_NAMES = {
    _EM_386: "x86 (32-bit)",
    _EM_ARM: "ARM (32-bit)",
    _EM_X86_64: "x86_64",
    _EM_AARCH64: "ARM64 (aarch64)",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC 64",
    22: "s390x",
    243: "RISC-V",
    258: "LoongArch",
}
_FOREIGN_FORMATS = (
    (b"MZ", "a Windows program (PE/.exe)"),
    (b"\xcf\xfa\xed\xfe", "a macOS program (Mach-O)"),
    (b"\xce\xfa\xed\xfe", "a macOS program (Mach-O)"),
    (b"\xca\xfe\xba\xbe", "a macOS universal program (or a Java class file)"),
    (b"PK\x03\x04", "a zip archive (a .jar? run it with java -jar)"),
    (b"\x1f\x8b", "a gzip archive (unpack it first)"),
)
_BINFMT_DIR = "/proc/sys/fs/binfmt_misc"

_T = TypeVar("_T")


def preflight(
    spec: ServiceSpec,
    env: Mapping[str, str],
    *,
    running_ok: bool = False,
    release_unknown: bool = False,
) -> list[PreflightProblem]:
    """Every problem that would make starting `spec` with environment `env` fail; never raises.

    `running_ok`: a port held by a running instance of this same service (its environment
    says INFRAVEIL_SERVICE=NAME) is not a problem. `infraveil check` sets it, since it runs
    beside an agent whose services hold their ports; before a start the agent does not, since
    an instance it stopped has no business holding the port any more.

    `release_unknown`: `spec.cwd` stands for a release directory that cannot be seen here (a
    service that runs in its release, checked by `infraveil check`), so what is relative to
    it is not checked: the working directory, a command with a relative path, and config
    files named by a relative path. The deploy preflights those against the release itself.
    """
    problems: list[PreflightProblem] = []
    who: _Who | None = _Who.agent()
    if spec.user is not None:
        who = _guarded(lambda: _service_user(spec.user or "", problems), None)
    cwd_ok = not release_unknown and _guarded(lambda: _check_cwd(spec, who, problems), False)
    name = spec.command[0]
    if cwd_ok or name.startswith("/") or "/" not in name:  # else: relative to a missing cwd
        _guarded(lambda: _check_command(spec, env, who, problems), None)
    _guarded(lambda: _check_env_file(spec, problems), None)
    _guarded(lambda: _check_required_env(spec, env, problems), None)
    _guarded(lambda: _check_config_files(spec, who, problems, absolute_only=release_unknown), None)
    _guarded(lambda: _check_ports(spec, running_ok, problems), None)
    return problems


def _guarded(check: Callable[[], _T], default: _T) -> _T:
    # A preflight that cannot tell must not stop a start: the spawn reports what really
    # happens. So an unexpected error in one check (a file vanishing mid-check, a /proc
    # oddity) only ends that check; whatever it found so far stays in `problems`.
    try:
        return check()
    except Exception:
        return default


def _problem(
    check: str, category: Category, detail: str, fix: str, subject: str
) -> PreflightProblem:
    return PreflightProblem(check, str(category), detail, fix, subject)


# ── who runs it ─────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class _Who:
    """Whose permissions decide: the service's user, or the agent's own."""

    name: str
    uid: int
    groups: frozenset[int]
    own: bool  # the agent's own user: ask the kernel instead of computing from modes

    @staticmethod
    def agent() -> _Who:
        uid = os.geteuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:  # a uid without a passwd entry (containers): its number names it
            name = str(uid)
        return _Who(name, uid, frozenset((os.getegid(), *os.getgroups())), own=True)


def _service_user(user: str, problems: list[PreflightProblem]) -> _Who | None:
    account = account_of(user)
    if account is None:
        problems.append(
            _problem(
                "user",
                Category.CONFIG_INVALID,
                f"the manifest says user = {user!r}, and no such user exists on this host",
                f"create it (useradd --system {user}) or change `user` in the manifest",
                user,
            )
        )
        return None
    if account.uid == os.geteuid():
        return _Who.agent()
    return _Who(account.name, account.uid, frozenset(account.groups or ()), own=False)


# ── permissions ─────────────────────────────────────────────────────────────────────────────

_WORDS = {os.R_OK: "readable", os.X_OK: "executable"}


def _blocker(path: str, who: _Who | None, want: int) -> str | None:
    """Why `who` may not `want` (R_OK or X_OK) `path`, in words; None if it may (or unknown).

    Every parent directory must be searchable, then `path` itself must allow `want`.
    """
    if who is None:  # the user does not exist: that is reported once, as such
        return None
    if who.own:
        if os.access(path, want):
            return None
        for parent in _parents(path):
            if not os.access(parent, os.X_OK):
                return f"{parent} ({_mode_owner(parent)}) is not searchable by {who.name}"
        return f"{path} ({_mode_owner(path)}) is not {_WORDS[want]} by {who.name}"
    for parent in _parents(path):
        if not _allowed(os.stat(parent), who, os.X_OK):
            return f"{parent} ({_mode_owner(parent)}) is not searchable by {who.name}"
    if not _allowed(os.stat(path), who, want):
        return f"{path} ({_mode_owner(path)}) is not {_WORDS[want]} by {who.name}"
    return None


def _allowed(st: os.stat_result, who: _Who, want: int) -> bool:
    """The permission bits that apply to `who` grant `want` (R_OK 4, W_OK 2 and X_OK 1 are
    the bits themselves)."""
    if who.uid == 0:
        # root reads, writes and searches anything, and executes a file with any x bit set
        return want != os.X_OK or stat.S_ISDIR(st.st_mode) or bool(st.st_mode & 0o111)
    if st.st_uid == who.uid:
        bits = st.st_mode >> 6
    elif st.st_gid in who.groups:
        bits = st.st_mode >> 3
    else:
        bits = st.st_mode
    return bits & want == want


def _parents(path: str) -> list[str]:
    """The directories on the way to `path`, literally and with symlinks resolved."""
    found: list[str] = []
    for p in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        parent = os.path.dirname(p)
        chain = []
        while True:
            chain.append(parent)
            if parent == "/":
                break
            parent = os.path.dirname(parent)
        found.extend(d for d in reversed(chain) if d not in found)
    return found


def _mode_owner(path: str) -> str:
    """ "mode 0644, owner root:root" """
    st = os.stat(path)
    return f"mode {stat.S_IMODE(st.st_mode):04o}, owner {_user_name(st.st_uid)}:{_group(st)}"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(st: os.stat_result) -> str:
    try:
        return grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        return str(st.st_gid)


def _fix_access(path: str, who: _Who, why: str, want: int) -> str:
    """What to run to give `who` the access `why` says it lacks."""
    target = why.split(" (", 1)[0]  # the path `why` names: `path` or one of its parents
    if target != path:
        return (
            f"let {who.name} through the directory: chmod o+x {target} "
            f"(or chown it, or chgrp it to a group of {who.name})"
        )
    if want == os.X_OK and os.path.isdir(path):
        return f"chown {who.name} {path}, or let others in: chmod o+x {path}"
    if want == os.X_OK:
        return f"chmod +x {path}"
    return f"chmod o+r {path}, or chown {who.name} {path} (or chgrp it to a group of {who.name})"


# ── the working directory ───────────────────────────────────────────────────────────────────


def _check_cwd(spec: ServiceSpec, who: _Who | None, problems: list[PreflightProblem]) -> bool:
    """Report the working directory's problems; True when the service can work in it."""
    cwd = spec.cwd
    if not os.path.exists(cwd):
        problems.append(
            _problem(
                "cwd",
                Category.CONFIG_MISSING,
                f"the working directory {cwd} does not exist",
                f"create it (mkdir -p {cwd}) or change `cwd` in the manifest",
                cwd,
            )
        )
        return False
    if not os.path.isdir(cwd):
        problems.append(
            _problem(
                "cwd",
                Category.CONFIG_MISSING,
                f"the working directory {cwd} is not a directory",
                "point `cwd` in the manifest at a directory",
                cwd,
            )
        )
        return False
    why = _blocker(cwd, who, os.X_OK)
    if why is not None and who is not None:
        problems.append(
            _problem(
                "cwd",
                Category.DATA_DIR,
                f"the working directory cannot be entered: {why}",
                _fix_access(cwd, who, why, os.X_OK),
                cwd,
            )
        )
    return True


# ── the command ─────────────────────────────────────────────────────────────────────────────


def _search_path(env: Mapping[str, str]) -> list[str]:
    # As subprocess does (os.get_exec_path): the env's PATH, else the C library's default.
    return env.get("PATH", os.defpath).split(os.pathsep)


def _check_command(
    spec: ServiceSpec, env: Mapping[str, str], who: _Who | None, problems: list[PreflightProblem]
) -> None:
    name = spec.command[0]
    if "/" in name:
        path = os.path.normpath(os.path.join(spec.cwd, name))  # an absolute name stays as is
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            where = "" if path == name else f" (looked for {path})"
            problems.append(
                _problem(
                    "command",
                    Category.COMMAND_NOT_FOUND,
                    f"the command {name} does not exist{where}",
                    "fix the path in `command`, or install or build the program there",
                    path,
                )
            )
            return
        except PermissionError:  # the agent itself cannot look: the spawn will tell
            return
        _check_program(path, st, spec, env, who, problems)
        return
    found: tuple[str, os.stat_result] | None = None
    dirs = _search_path(env)
    for directory in dirs:
        candidate = os.path.join(directory or spec.cwd, name)  # "" in PATH: the working dir
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue  # execvp skips directories and the like, and goes on searching
        if _blocker(candidate, who, os.X_OK) is None:
            _check_program(candidate, st, spec, env, who, problems)
            return
        found = found or (candidate, st)
    if found is not None:  # on PATH, but not executable: what execvp's EACCES means
        _check_program(found[0], found[1], spec, env, who, problems)
        return
    shown = ":".join(dirs)
    problems.append(
        _problem(
            "command",
            Category.COMMAND_NOT_FOUND,
            f"the command {name!r} is not on the service's PATH ({_cut(shown, 200)})",
            f"install {name}, give its absolute path in `command`, "
            "or add its directory to PATH in the service's env",
            name,
        )
    )


def _check_program(
    path: str,
    st: os.stat_result,
    spec: ServiceSpec,
    env: Mapping[str, str],
    who: _Who | None,
    problems: list[PreflightProblem],
) -> None:
    """`path` (the resolved command) can be executed by `who`, and is for this machine."""

    def fail(detail: str, fix: str, category: Category = Category.NOT_EXECUTABLE) -> None:
        problems.append(_problem("command", category, detail, fix, path))

    if stat.S_ISDIR(st.st_mode):
        fail(f"the command {path} is a directory", "name the program inside it in `command`")
        return
    if not stat.S_ISREG(st.st_mode):
        fail(f"the command {path} is not a regular file", "name a program file in `command`")
        return
    why = _blocker(path, who, os.X_OK)
    if why is not None and who is not None:
        fail(f"the command is not executable: {why}", _fix_access(path, who, why, os.X_OK))
        return
    if os.statvfs(path).f_flag & os.ST_NOEXEC:
        fail(
            f"the command {path} is on a filesystem mounted noexec: nothing there can run",
            "move it to a filesystem mounted without noexec, or run it through its interpreter",
        )
        return
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError:  # the agent cannot read it (not root, mode 0711): the spawn will tell
        return
    if head.startswith(b"#!"):
        _check_script(path, head, spec, env, who, problems)
    elif head.startswith(b"\x7fELF"):
        _check_elf(path, head, problems)
    elif not _binfmt_handles(path, head):
        fail(f"{path} {_what_it_is(head)}", _fix_format(path, head), Category.WRONG_ARCH)


def _check_script(
    path: str,
    head: bytes,
    spec: ServiceSpec,
    env: Mapping[str, str],
    who: _Who | None,
    problems: list[PreflightProblem],
) -> None:
    """The #! line names an interpreter that exists and that `who` may execute."""

    def fail(detail: str, fix: str, subject: str = path) -> None:
        problems.append(_problem("interpreter", Category.NOT_EXECUTABLE, detail, fix, subject))

    line = head[2:].split(b"\n", 1)[0]
    shebang = "#!" + line.rstrip(b"\r").decode(errors="replace")
    if line.endswith(b"\r"):
        # The kernel splits the #! line at "\n" only, so the "\r" of a CRLF file ends up in
        # the interpreter's name (or in env's argument), which then does not exist.
        last = line.rstrip(b"\r").split()[-1].decode(errors="replace") if line.strip() else ""
        fail(
            f"{path} has Windows (CRLF) line endings: its #! line names {last!r} followed by a "
            f"carriage return, which does not exist (a shell says `{last}^M: bad interpreter`)",
            f"convert it to Unix line endings: sed -i 's/\\r$//' {path} (or dos2unix {path})",
        )
        return
    match = re.match(rb"[ \t]*([^ \t]*)[ \t]*(.*)", line)
    interpreter = match.group(1).decode(errors="replace") if match else ""
    argument = match.group(2).strip(b" \t").decode(errors="replace") if match else ""
    if not interpreter:
        fail(
            f"{path} starts with a #! line that names no interpreter",
            "write the interpreter after #!, e.g. #!/bin/sh",
        )
        return
    program = os.path.join(spec.cwd, interpreter)  # a relative one is found from the cwd
    reason = _unusable(program, who)
    if reason is not None:
        fail(
            f"bad interpreter: {path} starts with {shebang}, and {interpreter} {reason}",
            "install it, or change the #! line to an interpreter that exists "
            "(e.g. #!/usr/bin/env NAME, found on PATH)",
            interpreter,
        )
        return
    if os.path.basename(interpreter) == "env" and argument:
        _check_env_interpreter(path, shebang, argument, spec.cwd, env, who, fail)
    why = _blocker(path, who, os.R_OK)
    if why is not None and who is not None:
        # The kernel runs the interpreter with the script's path: it must read the file.
        fail(
            f"the script cannot be read by its interpreter: {why}",
            _fix_access(path, who, why, os.R_OK),
        )


def _check_env_interpreter(
    path: str,
    shebang: str,
    argument: str,
    cwd: str,
    env: Mapping[str, str],
    who: _Who | None,
    fail: Callable[[str, str, str], None],
) -> None:
    """`#!/usr/bin/env NAME`: NAME is found on the service's PATH, as env will look for it."""
    words = argument.split()
    # env's own options (-S splits the rest into words, -i, -u NAME...) and VAR=value come
    # before the program's name; -u and -C take a value.
    name = ""
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in ("-u", "--unset", "-C", "--chdir"):
            skip = True
        elif word.startswith("-") or "=" in word:
            continue
        else:
            name = word
            break
    if not name:
        return
    if "/" in name:
        reason = _unusable(os.path.join(cwd, name), who)
        if reason is not None:
            fail(
                f"bad interpreter: {path} starts with {shebang}, and {name} {reason}",
                "install it, or change the #! line",
                name,
            )
        return
    dirs = _search_path(env)
    for directory in dirs:
        if _unusable(os.path.join(directory or cwd, name), who) is None:
            return
    fail(
        f"bad interpreter: {path} starts with {shebang}, and {name!r} is not on the service's "
        f"PATH ({_cut(':'.join(dirs), 200)})",
        f"install {name}, or add its directory to PATH in the service's env, "
        "or write its absolute path on the #! line",
        name,
    )


def _unusable(program: str, who: _Who | None) -> str | None:
    """Why `program` cannot be executed by `who` ("does not exist", ...); None if it can."""
    try:
        st = os.stat(program)
    except (FileNotFoundError, NotADirectoryError):
        return "does not exist"
    except OSError:
        return None  # the agent cannot look: leave it to the spawn
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    why = _blocker(program, who, os.X_OK)
    if why is not None:
        return f"cannot be executed: {why}"
    return None


def _check_elf(path: str, head: bytes, problems: list[PreflightProblem]) -> None:
    """The ELF program is for this machine, and its dynamic loader (PT_INTERP) exists."""
    if len(head) < 20:
        problems.append(
            _problem(
                "command",
                Category.WRONG_ARCH,
                f"{path} is a truncated ELF file ({len(head)} bytes): not a complete program",
                "download or build it again",
                path,
            )
        )
        return
    order = "<" if head[5] == 1 else ">"  # EI_DATA: 1 little-endian, 2 big-endian
    (e_machine,) = struct.unpack_from(order + "H", head, 18)
    machine = platform.machine()
    native = _NATIVE.get(machine)
    if native is not None and e_machine not in native and not _binfmt_handles(path, head):
        built_for = _MACHINE_NAMES.get(e_machine, f"ELF machine {e_machine}")
        problems.append(
            _problem(
                "command",
                Category.WRONG_ARCH,
                f"{path} is a program for {built_for}, and this host is {machine}"
                " (exec format error)",
                f"install or build the {machine} version of it",
                path,
            )
        )
        return
    if len(head) < (64 if head[4] == 2 else 52):  # shorter than the ELF header itself
        problems.append(
            _problem(
                "command",
                Category.WRONG_ARCH,
                f"{path} is a truncated ELF file ({len(head)} bytes): not a complete program",
                "download or build it again",
                path,
            )
        )
        return
    loader = _elf_interpreter(head, order)
    if loader and not os.path.exists(loader):
        # execve then fails with ENOENT, which reads as "command not found" for a file
        # that is plainly there: a musl build on a glibc host, or the other way round.
        problems.append(
            _problem(
                "interpreter",
                Category.MISSING_MODULE,
                f"{path} needs the dynamic loader {loader}, which does not exist on this host "
                "(the program then fails with 'No such file or directory')",
                f"install the C library it was built for (the package providing {loader}), "
                "or use a build for this system (a static one, or one for its C library)",
                loader,
            )
        )


def _elf_interpreter(head: bytes, order: str) -> str:
    """The PT_INTERP path of the ELF program whose first bytes are `head`, "" if none is seen."""
    if head[4] == 2:  # ELFCLASS64
        (phoff,) = struct.unpack_from(order + "Q", head, 32)
        entsize, count = struct.unpack_from(order + "HH", head, 54)
        entry = order + "I4xQ16xQ"  # p_type, (p_flags), p_offset, (p_vaddr, p_paddr), p_filesz
    else:
        (phoff,) = struct.unpack_from(order + "I", head, 28)
        entsize, count = struct.unpack_from(order + "HH", head, 42)
        entry = order + "II8xI"  # p_type, p_offset, (p_vaddr, p_paddr), p_filesz
    for index in range(count):
        at = phoff + index * entsize
        if at + struct.calcsize(entry) > len(head):
            return ""  # the headers lie beyond what was read: not worth another read
        p_type, offset, size = struct.unpack_from(entry, head, at)
        if p_type == 3:  # PT_INTERP
            if offset + size > len(head):
                return ""
            return head[offset : offset + size].rstrip(b"\0").decode(errors="replace")
    return ""


def _binfmt_handles(path: str, head: bytes) -> bool:
    """An enabled binfmt_misc entry (qemu-user, wine, a jar runner) will run this file."""
    try:
        names = os.listdir(_BINFMT_DIR)
    except OSError:
        return False
    for name in names:
        if name in ("register", "status"):
            continue
        try:
            with open(os.path.join(_BINFMT_DIR, name), encoding="ascii", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        if "enabled" not in lines:
            continue
        fields = dict(line.split(" ", 1) for line in lines if " " in line)
        if "extension" in fields and path.endswith(fields["extension"].strip()):
            return True
        if "magic" in fields:
            try:
                magic = bytes.fromhex(fields["magic"].strip())
                mask = bytes.fromhex(fields.get("mask", "").strip()) or b"\xff" * len(magic)
                offset = int(fields.get("offset", "0"))
            except ValueError:
                continue
            data = head[offset : offset + len(magic)]
            if len(data) == len(magic) and all(
                (a ^ b) & m == 0 for a, b, m in zip(data, magic, mask, strict=False)
            ):
                return True
    return False


def _what_it_is(head: bytes) -> str:
    if not head:
        return "is empty (0 bytes): not a program"
    for magic, what in _FOREIGN_FORMATS:
        if head.startswith(magic):
            return f"is {what}, not a Linux program (exec format error)"
    if _is_text(head):
        if head.lstrip().startswith(b"<"):
            return "is an HTML or XML document (a failed download?), not a program"
        return "is a text file without a #! line, so the kernel cannot run it (exec format error)"
    return (
        f"is neither a script nor a program for this machine (it starts with bytes "
        f"{head[:8].hex(' ')}; exec format error)"
    )


def _fix_format(path: str, head: bytes) -> str:
    if head and _is_text(head) and not head.lstrip().startswith(b"<"):
        return f"add a #! line as its first line (e.g. #!/bin/sh), or run it as: sh {path}"
    return f"replace it with the {platform.machine()} Linux build of the program"


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\n\r\t\f" for c in text)


# ── files the service reads ─────────────────────────────────────────────────────────────────


def _check_env_file(spec: ServiceSpec, problems: list[PreflightProblem]) -> None:
    # The agent reads the env_file (see environment.service_env) and passes its values on, so
    # it is the agent's access that counts, not the service user's: a secrets file readable by
    # root only, for a service running as nobody, is the normal case and must not be refused.
    path = spec.env_file
    if path is None:
        return
    if not os.path.exists(path):
        problems.append(
            _problem(
                "env_file",
                Category.CONFIG_MISSING,
                f"the env_file {path} does not exist",
                "create it (KEY=VALUE lines) or remove `env_file` from the manifest",
                path,
            )
        )
    elif os.path.isdir(path):
        problems.append(
            _problem(
                "env_file",
                Category.CONFIG_MISSING,
                f"the env_file {path} is a directory",
                "point `env_file` at a KEY=VALUE file",
                path,
            )
        )
    else:
        why = _blocker(path, _Who.agent(), os.R_OK)
        if why is not None:
            problems.append(
                _problem(
                    "env_file",
                    Category.CONFIG_MISSING,
                    f"the agent cannot read the env_file: {why}",
                    f"let the agent's user read it: chown {_Who.agent().name} {path}",
                    path,
                )
            )


def _check_required_env(
    spec: ServiceSpec, env: Mapping[str, str], problems: list[PreflightProblem]
) -> None:
    for name in spec.required_env:
        value = env.get(name)
        if value:
            continue
        state = "is not set" if value is None else "is set but empty"
        problems.append(
            _problem(
                "env",
                Category.MISSING_ENV,
                f"{name} {state} (listed in required_env)",
                _fix_required_env(spec, name),
                name,
            )
        )


def _fix_required_env(spec: ServiceSpec, name: str) -> str:
    if name in spec.env:  # the manifest itself sets it to ""
        return f"give {name} a value in `env` in [services.{spec.name}]"
    in_manifest = f'env = {{ {name} = "..." }} in [services.{spec.name}]'
    if spec.env_file is not None:
        return f"set {name}=... in {spec.env_file}, or {in_manifest}"
    return f"set it: {in_manifest}, or give the service an env_file that sets it"


def config_arguments(command: Iterable[str]) -> list[str]:
    """The arguments of `command` that name a config file it will read (see CONFIG_SUFFIXES).

    Only an absolute or ./ ../ path, alone or as `--flag=PATH`, counts: anything else may be
    a name the program resolves itself. The value of an output flag (`-o`, `--output=`) is
    written, so it is never one.
    """
    found: list[str] = []
    previous = ""
    for index, arg in enumerate(command):
        value, flag = arg, previous
        if index == 0:
            previous = ""
            continue
        if arg.startswith("-") and "=" in arg:
            flag, value = arg.split("=", 1)
        previous = arg
        if flag.startswith("-") and flag.lstrip("-").lower() in _OUTPUT_FLAGS:
            continue
        if not value.startswith(("/", "./", "../")):
            continue
        if value.lower().endswith(CONFIG_SUFFIXES):
            found.append(value)
    return found


def _check_config_files(
    spec: ServiceSpec, who: _Who | None, problems: list[PreflightProblem], *, absolute_only: bool
) -> None:
    for value in config_arguments(spec.command):
        if absolute_only and not value.startswith("/"):
            continue
        path = os.path.normpath(os.path.join(spec.cwd, value))
        shown = value if path == value else f"{value} ({path})"
        if not os.path.exists(path):
            problems.append(
                _problem(
                    "file",
                    Category.CONFIG_MISSING,
                    f"the command names the file {shown}, which does not exist",
                    "create it, or fix its path in `command`",
                    path,
                )
            )
            continue
        if os.path.isdir(path):
            problems.append(
                _problem(
                    "file",
                    Category.CONFIG_MISSING,
                    f"the command names the file {shown}, which is a directory",
                    "fix its path in `command`",
                    path,
                )
            )
            continue
        why = _blocker(path, who, os.R_OK)
        if why is not None and who is not None:
            problems.append(
                _problem(
                    "file",
                    Category.CONFIG_MISSING,
                    f"the command names the file {shown}, which it cannot read: {why}",
                    _fix_access(path, who, why, os.R_OK),
                    path,
                )
            )


# ── ports ───────────────────────────────────────────────────────────────────────────────────


def declared_ports(spec: ServiceSpec) -> dict[int, tuple[str, ...]]:
    """Each port the service will listen on, with the addresses to try it on.

    `port`, and the port of an http or tcp check, tried on the check's host and on 0.0.0.0
    (a listener on either takes the port from a service binding the other).
    """
    ports: dict[int, list[str]] = {}
    if spec.port is not None:
        ports[spec.port] = ["0.0.0.0", "127.0.0.1"]
    for check in (spec.health, spec.ready):
        if check is None or check.kind not in (CheckKind.HTTP, CheckKind.TCP):
            continue
        if check.port is None:
            continue
        hosts = ports.setdefault(check.port, ["0.0.0.0"])
        if check.host not in hosts:
            hosts.append(check.host)
    return {port: tuple(hosts) for port, hosts in ports.items()}


def _check_ports(spec: ServiceSpec, running_ok: bool, problems: list[PreflightProblem]) -> None:
    for port, hosts in declared_ports(spec).items():
        host = next((h for h in hosts if _taken(h, port)), None)
        if host is None:
            continue
        holder = _holder(port)
        if holder is not None and running_ok and holder.service == spec.name:
            continue
        by = (
            f": pid {holder.pid} ({holder.describe()}) listens on it"
            if holder is not None
            else " by a process this user cannot see (run as root to name it)"
        )
        problems.append(
            _problem(
                "port",
                Category.PORT_IN_USE,
                f"port {port} is already in use on {host}{by}",
                f"see who holds it with ss -ltnp 'sport = :{port}', and stop it, "
                "or change `port` in the manifest",
                str(port),
            )
        )


def _taken(host: str, port: int) -> bool:
    """Binding `host`:`port` fails because the address is in use (other failures: no)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # SO_REUSEADDR, as servers set it: a port whose last connections linger in
            # TIME_WAIT is free for them, so it is free here too.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as e:
        return e.errno == errno.EADDRINUSE
    return False


@dataclass(frozen=True)
class _Holder:
    pid: int
    name: str
    cmdline: str
    service: str | None  # INFRAVEIL_SERVICE in its environment, when it can be read

    def describe(self) -> str:
        return f"{self.name}: {_cut(self.cmdline, 120)}" if self.cmdline else self.name


def _holder(port: int) -> _Holder | None:
    """The process listening on TCP `port`, when psutil can tell (root sees every one)."""
    import psutil  # only when a port is taken: its import is not free, and rarely needed

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for c in connections:
        if c.status != psutil.CONN_LISTEN or not c.laddr or c.laddr.port != port or not c.pid:
            continue
        try:
            process = psutil.Process(c.pid)
            name = process.name()
            cmdline = " ".join(process.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return _Holder(c.pid, "?", "", None)
        try:
            service = process.environ().get("INFRAVEIL_SERVICE")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            service = None
        return _Holder(c.pid, name, cmdline, service)
    return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
