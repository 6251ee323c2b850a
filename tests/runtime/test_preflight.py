"""Preflight against real files, real users and real sockets: each check failing and passing.

The cases that switch users (what `nobody` may read while the agent is root) need root, as the
agent does to run a service as another user; CI runs as root.
"""

from __future__ import annotations

import os
import platform
import pwd
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infraveil.core.checks import CheckKind, CheckSpec
from infraveil.core.diagnosis.facts import PreflightProblem
from infraveil.core.spec import ServiceSpec
from infraveil.runtime.environment import service_env
from infraveil.runtime.preflight import config_arguments, declared_ports, preflight

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not ROOT, reason="running a service as `nobody` needs the agent (here: the tests) to be root"
)
ENV = {"PATH": os.environ.get("PATH", os.defpath)}


def spec(cwd: Path | str, *command: str, **fields: object) -> ServiceSpec:
    return ServiceSpec(name="svc", command=command, cwd=str(cwd), **fields)  # type: ignore[arg-type]


def only(problems: list[PreflightProblem]) -> PreflightProblem:
    assert len(problems) == 1, problems
    return problems[0]


def executable(path: Path, text: str | bytes, mode: int = 0o755) -> Path:
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    path.chmod(mode)
    return path


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user can enter (pytest's tmp_path sits under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="ivl-preflight-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ── the command ─────────────────────────────────────────────────────────────────────────────


def test_a_command_that_exists_passes(tmp_path: Path) -> None:
    assert preflight(spec(tmp_path, sys.executable, "-c", "pass"), ENV) == []
    assert preflight(spec(tmp_path, "sh", "-c", "true"), ENV) == []  # found on PATH


def test_a_missing_absolute_command_is_command_not_found(tmp_path: Path) -> None:
    p = only(preflight(spec(tmp_path, "/nonexistent/bin/app"), ENV))
    assert (p.check, p.category, p.subject) == (
        "command",
        "command_not_found",
        "/nonexistent/bin/app",
    )
    assert p.detail == "the command /nonexistent/bin/app does not exist"


def test_a_relative_command_is_looked_for_in_cwd(tmp_path: Path) -> None:
    p = only(preflight(spec(tmp_path, "./run.sh"), ENV))
    assert p.category == "command_not_found"
    assert p.detail == f"the command ./run.sh does not exist (looked for {tmp_path}/run.sh)"

    executable(tmp_path / "run.sh", "#!/bin/sh\nexec true\n")
    assert preflight(spec(tmp_path, "./run.sh"), ENV) == []


def test_a_name_not_on_path_is_command_not_found(tmp_path: Path) -> None:
    p = only(preflight(spec(tmp_path, "gunicorn"), {"PATH": f"{tmp_path}/bin:/nonexistent"}))
    assert p.category == "command_not_found"
    assert p.detail == (
        f"the command 'gunicorn' is not on the service's PATH ({tmp_path}/bin:/nonexistent)"
    )
    assert "install gunicorn" in p.fix

    (tmp_path / "bin").mkdir()
    executable(tmp_path / "bin" / "gunicorn", "#!/bin/sh\n")
    assert preflight(spec(tmp_path, "gunicorn"), {"PATH": f"{tmp_path}/bin:/nonexistent"}) == []


def test_a_file_without_x_bits_is_not_executable_with_mode_and_owner(tmp_path: Path) -> None:
    script = executable(tmp_path / "run.sh", "#!/bin/sh\n", mode=0o644)
    p = only(preflight(spec(tmp_path, str(script)), ENV))
    assert (p.check, p.category) == ("command", "not_executable")
    assert "mode 0644, owner " in p.detail
    assert p.fix == f"chmod +x {script}"


def test_a_name_on_path_without_x_bits_is_not_executable(tmp_path: Path) -> None:
    executable(tmp_path / "tool", "#!/bin/sh\n", mode=0o644)
    p = only(preflight(spec(tmp_path, "tool"), {"PATH": str(tmp_path)}))
    assert p.category == "not_executable"
    assert p.subject == f"{tmp_path}/tool"


def test_a_directory_is_not_executable(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    p = only(preflight(spec(tmp_path, "./app"), ENV))
    assert p.category == "not_executable"
    assert p.detail == f"the command {tmp_path}/app is a directory"


# ── scripts and their interpreters ──────────────────────────────────────────────────────────


def test_a_missing_interpreter_is_a_bad_interpreter(tmp_path: Path) -> None:
    script = executable(tmp_path / "run", "#!/opt/python9/bin/python -u\nprint(1)\n")
    p = only(preflight(spec(tmp_path, str(script)), ENV))
    assert (p.check, p.category, p.subject) == (
        "interpreter",
        "not_executable",
        "/opt/python9/bin/python",
    )
    assert p.detail == (
        f"bad interpreter: {script} starts with #!/opt/python9/bin/python -u, "
        "and /opt/python9/bin/python does not exist"
    )


def test_crlf_line_endings_are_named_as_such(tmp_path: Path) -> None:
    script = executable(tmp_path / "run.sh", b"#!/bin/bash\r\necho hi\r\n")
    p = only(preflight(spec(tmp_path, str(script)), ENV))
    assert (p.check, p.category) == ("interpreter", "not_executable")
    assert "Windows (CRLF) line endings" in p.detail
    assert "`/bin/bash^M: bad interpreter`" in p.detail
    assert (
        p.fix
        == f"convert it to Unix line endings: sed -i 's/\\r$//' {script} (or dos2unix {script})"
    )


def test_crlf_after_an_env_shebang_is_caught_too(tmp_path: Path) -> None:
    script = executable(tmp_path / "run", b"#!/usr/bin/env sh\r\necho hi\r\n")
    p = only(preflight(spec(tmp_path, str(script)), ENV))
    assert "CRLF" in p.detail
    assert "'sh'" in p.detail


@pytest.mark.skipif(not os.path.exists("/usr/bin/env"), reason="no /usr/bin/env here")
def test_an_env_shebang_resolves_its_program_on_the_service_path(tmp_path: Path) -> None:
    script = executable(tmp_path / "run", "#!/usr/bin/env -S python9 -u\nprint(1)\n")
    p = only(preflight(spec(tmp_path, str(script)), {"PATH": "/usr/bin:/bin"}))
    assert (p.check, p.category, p.subject) == ("interpreter", "not_executable", "python9")
    assert "'python9' is not on the service's PATH (/usr/bin:/bin)" in p.detail

    (tmp_path / "bin").mkdir()
    executable(tmp_path / "bin" / "python9", "#!/bin/sh\n")
    assert preflight(spec(tmp_path, str(script)), {"PATH": f"/usr/bin:{tmp_path}/bin"}) == []


def test_a_text_file_without_a_shebang_is_an_exec_format_error(tmp_path: Path) -> None:
    script = executable(tmp_path / "run", "echo hello\n")
    p = only(preflight(spec(tmp_path, str(script)), ENV))
    assert p.category == "wrong_arch"
    assert "without a #! line" in p.detail
    assert "#!/bin/sh" in p.fix


# ── binaries ────────────────────────────────────────────────────────────────────────────────


def elf_header(machine: int, size: int = 20) -> bytes:
    """The start of a 64-bit little-endian ELF executable for `machine` (e_machine)."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    return (ident + struct.pack("<HH", 2, machine)).ljust(size, b"\0")


NATIVE = {"x86_64": 62, "aarch64": 183}.get(platform.machine())
FOREIGN = 183 if platform.machine() == "x86_64" else 62


def test_the_agents_own_interpreter_passes_the_elf_check(tmp_path: Path) -> None:
    real = os.path.realpath(sys.executable)
    with open(real, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    assert preflight(spec(tmp_path, real, "-c", "pass"), ENV) == []


def test_an_elf_for_another_machine_is_wrong_arch(tmp_path: Path) -> None:
    binary = executable(tmp_path / "app", elf_header(FOREIGN))
    p = only(preflight(spec(tmp_path, str(binary)), ENV))
    assert (p.check, p.category) == ("command", "wrong_arch")
    built_for = "ARM64 (aarch64)" if FOREIGN == 183 else "x86_64"
    assert p.detail == (
        f"{binary} is a program for {built_for}, and this host is {platform.machine()}"
        " (exec format error)"
    )


@pytest.mark.skipif(NATIVE is None, reason="the test crafts ELF headers for x86_64 or aarch64")
def test_a_native_elf_whose_loader_is_missing_is_named(tmp_path: Path) -> None:
    # ELF header (64 bytes), one program header (56 bytes) of type PT_INTERP, then its path
    loader = b"/lib/ld-musl-nonexistent.so.1\0"
    header = elf_header(NATIVE or 0, 16 + 4)
    header += struct.pack("<IQQQIHHHHHH", 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 3, 4, 120, 0, 0, len(loader), len(loader), 1)
    binary = executable(tmp_path / "app", header + phdr + loader)
    p = only(preflight(spec(tmp_path, str(binary)), ENV))
    assert (p.check, p.category, p.subject) == (
        "interpreter",
        "missing_module",
        "/lib/ld-musl-nonexistent.so.1",
    )
    assert "needs the dynamic loader /lib/ld-musl-nonexistent.so.1" in p.detail


def test_a_binary_blob_is_wrong_arch(tmp_path: Path) -> None:
    blob = executable(tmp_path / "app", bytes(range(256)) * 4)
    p = only(preflight(spec(tmp_path, str(blob)), ENV))
    assert p.category == "wrong_arch"
    assert "starts with bytes 00 01 02 03 04 05 06 07" in p.detail
    assert p.fix == f"replace it with the {platform.machine()} Linux build of the program"


def test_a_downloaded_error_page_is_recognised(tmp_path: Path) -> None:
    page = executable(tmp_path / "app", "<html><body>404 Not Found</body></html>\n")
    p = only(preflight(spec(tmp_path, str(page)), ENV))
    assert p.category == "wrong_arch"
    assert "HTML or XML document (a failed download?)" in p.detail


# ── working directory, env_file, config files ──────────────────────────────────────────────


def test_a_missing_cwd_is_config_missing(tmp_path: Path) -> None:
    p = only(preflight(spec(tmp_path / "gone", "sh"), ENV))
    assert (p.check, p.category, p.subject) == ("cwd", "config_missing", f"{tmp_path}/gone")
    assert p.fix.startswith(f"create it (mkdir -p {tmp_path}/gone)")


def test_a_cwd_that_is_a_file_is_config_missing(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    p = only(preflight(spec(tmp_path / "file", "sh"), ENV))
    assert p.detail == f"the working directory {tmp_path}/file is not a directory"


def test_env_file_must_exist(tmp_path: Path) -> None:
    missing = str(tmp_path / "app.env")
    p = only(preflight(spec(tmp_path, "sh", env_file=missing), ENV))
    assert (p.check, p.category, p.subject) == ("env_file", "config_missing", missing)

    Path(missing).write_text("A=1\n")
    assert preflight(spec(tmp_path, "sh", env_file=missing), ENV) == []


def test_config_files_named_in_the_command_must_exist(tmp_path: Path) -> None:
    command = ("sh", "-c", "true", "--config=./app.yaml", "/etc/nonexistent/x.toml")
    problems = preflight(spec(tmp_path, *command), ENV)
    assert [(p.check, p.category, p.subject) for p in problems] == [
        ("file", "config_missing", f"{tmp_path}/app.yaml"),
        ("file", "config_missing", "/etc/nonexistent/x.toml"),
    ]
    assert problems[0].detail == (
        f"the command names the file ./app.yaml ({tmp_path}/app.yaml), which does not exist"
    )

    (tmp_path / "app.yaml").write_text("a: 1\n")
    assert len(preflight(spec(tmp_path, *command), ENV)) == 1


def test_only_config_like_paths_are_checked() -> None:
    command = [
        "app",
        "--config=/etc/app.yml",
        "-c",
        "./settings.INI",
        "--pidfile=/run/app.pid",  # not a config ending
        "config.yaml",  # not a path: the program may look for it anywhere
        "--output=/tmp/report.json",  # written, not read
        "-o",
        "/tmp/out.json",
        "../shared/.env",
    ]
    assert config_arguments(command) == ["/etc/app.yml", "./settings.INI", "../shared/.env"]


# ── the user ────────────────────────────────────────────────────────────────────────────────


def test_a_user_that_does_not_exist_is_config_invalid(tmp_path: Path) -> None:
    p = only(preflight(spec(tmp_path, "sh", user="ivl-no-such-user"), ENV))
    assert (p.check, p.category, p.subject) == ("user", "config_invalid", "ivl-no-such-user")
    assert "useradd --system ivl-no-such-user" in p.fix


@needs_root
def test_root_reads_what_nobody_cannot(open_dir: Path) -> None:
    private = open_dir / "private"
    private.mkdir(mode=0o700)
    secret = private / "app.conf"
    secret.write_text("x = 1\n")
    secret.chmod(0o600)
    command = ("sh", "-c", "true", str(secret))

    assert preflight(spec(open_dir, *command), ENV) == []  # the agent's own user: root
    assert preflight(spec(open_dir, *command, user="root"), ENV) == []
    p = only(preflight(spec(open_dir, *command, user="nobody"), ENV))
    assert (p.check, p.category, p.subject) == ("file", "config_missing", str(secret))
    assert p.detail.endswith(
        f"which it cannot read: {private} (mode 0700, owner root:root) is not searchable by nobody"
    )
    assert p.fix.startswith(f"let nobody through the directory: chmod o+x {private}")

    private.chmod(0o711)  # searchable now, but the file is still 0600
    p = only(preflight(spec(open_dir, *command, user="nobody"), ENV))
    assert f"{secret} (mode 0600, owner root:root) is not readable by nobody" in p.detail

    secret.chmod(0o644)
    assert preflight(spec(open_dir, *command, user="nobody"), ENV) == []


@needs_root
def test_group_bits_apply_to_members_of_the_files_group(open_dir: Path) -> None:
    nobody_group = pwd.getpwnam("nobody").pw_gid
    conf = open_dir / "app.conf"
    conf.write_text("")
    os.chown(conf, 0, nobody_group)
    command = ("sh", "-c", "true", str(conf))

    conf.chmod(0o640)  # readable through the group
    assert preflight(spec(open_dir, *command, user="nobody"), ENV) == []
    conf.chmod(0o604)  # others may read, but nobody is in the group, whose bits say no
    assert only(preflight(spec(open_dir, *command, user="nobody"), ENV)).check == "file"


@needs_root
def test_a_script_only_root_may_run_is_not_executable_for_nobody(open_dir: Path) -> None:
    script = executable(open_dir / "run.sh", "#!/bin/sh\n", mode=0o700)
    assert preflight(spec(open_dir, str(script)), ENV) == []
    p = only(preflight(spec(open_dir, str(script), user="nobody"), ENV))
    assert (p.check, p.category) == ("command", "not_executable")
    assert "(mode 0700, owner root:root) is not executable by nobody" in p.detail

    script.chmod(0o711)  # nobody may execute it, but sh, running as nobody, cannot read it
    p = only(preflight(spec(open_dir, str(script), user="nobody"), ENV))
    assert (p.check, p.category) == ("interpreter", "not_executable")
    assert "cannot be read by its interpreter" in p.detail


@needs_root
def test_a_cwd_nobody_cannot_enter_is_a_data_dir_problem(open_dir: Path) -> None:
    data = open_dir / "data"
    data.mkdir(mode=0o700)
    assert preflight(spec(data, "sh"), ENV) == []
    p = only(preflight(spec(data, "sh", user="nobody"), ENV))
    assert (p.check, p.category, p.subject) == ("cwd", "data_dir", str(data))
    assert p.fix == f"chown nobody {data}, or let others in: chmod o+x {data}"


@needs_root
def test_the_root_agent_reads_a_root_only_env_file_for_nobody(open_dir: Path) -> None:
    secrets = open_dir / "secrets.env"
    secrets.write_text("TOKEN=x\n")
    secrets.chmod(0o600)
    # the agent reads the env_file and hands the values on: nobody need not read it
    assert preflight(spec(open_dir, "sh", user="nobody", env_file=str(secrets)), ENV) == []


# ── required variables ──────────────────────────────────────────────────────────────────────


def test_required_variables_that_are_set_pass(tmp_path: Path) -> None:
    service = spec(tmp_path, "sh", required_env=("DATABASE_URL", "SECRET_KEY"))
    env = {**ENV, "DATABASE_URL": "postgres://db/app", "SECRET_KEY": "0"}
    assert preflight(service, env) == []


def test_an_unset_required_variable_is_missing_env(tmp_path: Path) -> None:
    service = spec(tmp_path, "sh", required_env=("DATABASE_URL",))
    p = only(preflight(service, ENV))
    assert (p.check, p.category, p.subject) == ("env", "missing_env", "DATABASE_URL")
    assert p.detail == "DATABASE_URL is not set (listed in required_env)"
    assert p.fix == (
        'set it: env = { DATABASE_URL = "..." } in [services.svc], '
        "or give the service an env_file that sets it"
    )


def test_an_empty_required_variable_is_missing_env_too(tmp_path: Path) -> None:
    service = spec(tmp_path, "sh", required_env=("TOKEN",))
    p = only(preflight(service, {**ENV, "TOKEN": ""}))
    assert (p.category, p.detail) == (
        "missing_env",
        "TOKEN is set but empty (listed in required_env)",
    )
    # Set to "" by the manifest itself: the fix says so.
    emptied = spec(tmp_path, "sh", required_env=("TOKEN",), env={"TOKEN": ""})
    p = only(preflight(emptied, service_env(emptied, 0, ENV)))
    assert p.fix == "give TOKEN a value in `env` in [services.svc]"


def test_every_missing_variable_is_reported_in_order(tmp_path: Path) -> None:
    service = spec(tmp_path, "sh", required_env=("B", "A", "C"))
    problems = preflight(service, {**ENV, "A": "1"})
    assert [(p.subject, p.detail.split(" ", 1)[1]) for p in problems] == [
        ("B", "is not set (listed in required_env)"),
        ("C", "is not set (listed in required_env)"),
    ]


def test_the_env_file_counts_and_the_fix_names_it(tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("LOG_LEVEL=info\n")
    service = spec(tmp_path, "sh", env_file=str(env_file), required_env=("DATABASE_URL",))
    p = only(preflight(service, service_env(service, 0, ENV)))
    assert p.fix == (
        f'set DATABASE_URL=... in {env_file}, or env = {{ DATABASE_URL = "..." }} in [services.svc]'
    )

    env_file.write_text("LOG_LEVEL=info\nDATABASE_URL=postgres://db/app\n")
    assert preflight(service, service_env(service, 0, ENV)) == []


def test_the_agents_environment_counts(tmp_path: Path) -> None:
    service = spec(tmp_path, "sh", required_env=("HOME_REGION",))
    assert preflight(service, service_env(service, 0, {**ENV, "HOME_REGION": "eu"})) == []


# ── a release that cannot be seen (`infraveil check` on a payload service) ─────────────────


def test_an_unseen_release_skips_what_is_relative_to_it(tmp_path: Path) -> None:
    release = tmp_path / "no-release-yet"
    command = ("./server", "--config=./app.yaml", "-c", "../shared/.env")
    service = spec(release, *command)
    assert [p.check for p in preflight(service, ENV)] == ["cwd", "file", "file"]
    assert preflight(service, ENV, release_unknown=True) == []


def test_an_unseen_release_still_checks_everything_else(tmp_path: Path) -> None:
    release = tmp_path / "no-release-yet"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        service = spec(
            release,
            "/nonexistent/bin/server",
            "--config=/etc/nonexistent/app.toml",
            env_file=str(tmp_path / "missing.env"),
            user="ivl-no-such-user",
            required_env=("DATABASE_URL",),
            port=port,
        )
        problems = preflight(service, ENV, release_unknown=True)
    assert [(p.check, p.category) for p in problems] == [
        ("user", "config_invalid"),
        ("command", "command_not_found"),
        ("env_file", "config_missing"),
        ("env", "missing_env"),
        ("file", "config_missing"),
        ("port", "port_in_use"),
    ]
    # A name looked up on PATH does not depend on the release either.
    p = only(preflight(spec(release, "ivl-no-such-program"), ENV, release_unknown=True))
    assert p.category == "command_not_found"


# ── ports ───────────────────────────────────────────────────────────────────────────────────


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_free_port_passes(tmp_path: Path) -> None:
    assert preflight(spec(tmp_path, "sh", port=free_port()), ENV) == []


def test_a_port_held_by_this_process_is_in_use_and_named(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        p = only(preflight(spec(tmp_path, "sh", port=port), ENV))
    assert (p.check, p.category, p.subject) == ("port", "port_in_use", str(port))
    assert p.detail.startswith(f"port {port} is already in use on 0.0.0.0: pid {os.getpid()} (")
    assert "python" in p.detail
    assert f"ss -ltnp 'sport = :{port}'" in p.fix


def test_a_check_port_is_a_declared_port_too(tmp_path: Path) -> None:
    health = CheckSpec(CheckKind.HTTP, port=9101, host="127.0.0.1", path="/healthz")
    ready = CheckSpec(CheckKind.EXEC, command=("true",))
    service = spec(tmp_path, "sh", port=9100, health=health, ready=ready)
    assert declared_ports(service) == {
        9100: ("0.0.0.0", "127.0.0.1"),
        9101: ("0.0.0.0", "127.0.0.1"),
    }
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        tcp = CheckSpec(CheckKind.TCP, port=port)
        p = only(preflight(spec(tmp_path, "sh", ready=tcp), ENV))
    assert p.subject == str(port)


def test_its_own_running_instance_holds_the_port_only_when_allowed(tmp_path: Path) -> None:
    port = free_port()
    code = (
        "import socket, sys, time\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('127.0.0.1', {port})); s.listen(); print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "INFRAVEIL_SERVICE": "svc"}
    with subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    ) as instance:
        try:
            assert instance.stdout is not None
            assert instance.stdout.readline() == "ready\n"
            service = spec(tmp_path, "sh", port=port)
            assert preflight(service, ENV, running_ok=True) == []
            p = only(preflight(service, ENV))
            assert f"pid {instance.pid} (" in p.detail
            other = ServiceSpec(name="other", command=("sh",), cwd=str(tmp_path), port=port)
            assert only(preflight(other, ENV, running_ok=True)).category == "port_in_use"
        finally:
            instance.kill()


# ── cost ────────────────────────────────────────────────────────────────────────────────────


def test_it_is_cheap_for_a_normal_service(tmp_path: Path) -> None:
    conf = tmp_path / "app.toml"
    conf.write_text("")
    service = spec(tmp_path, sys.executable, "-c", "pass", str(conf), port=free_port(), user="root")
    preflight(service, ENV)  # warm: the first call pays for imports and NSS lookups
    runs = 50
    started = time.perf_counter()
    for _ in range(runs):
        assert preflight(service, ENV) == []
    per_run = (time.perf_counter() - started) / runs
    assert per_run < 0.005, f"preflight took {per_run * 1000:.2f} ms per run"


def test_it_never_raises_on_odd_input(tmp_path: Path) -> None:
    # a PATH with an empty entry (the working directory) and a name with odd bytes in it
    problems = preflight(spec(tmp_path, "no\udcffthing"), {"PATH": ":/nonexistent"})
    assert [p.category for p in problems] == ["command_not_found"]
