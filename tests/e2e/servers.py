"""The real servers and clients the e2e tests run, as Debian 12 packages them.

`.ci/run` installs them (postgresql, postgresql-client, redis-server, nginx,
prometheus-alertmanager). On a machine without one, the test that needs it is skipped with
the package to install; under CI (the environment variable CI is set) a missing program is a
failure instead, so that a broken install can never pass as a skipped test.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path
from typing import NoReturn

import pytest

# nginx is in /usr/sbin, which a non-root PATH may lack
_SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI, where `.ci/run` must have provided everything."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: .ci/run should have installed it)", pytrace=False)
    pytest.skip(reason)


def program(name: str, package: str) -> str:
    """The absolute path of `name`, from the Debian package `package`."""
    found = shutil.which(name, path=_SEARCH)
    if found is None:
        unavailable(f"{name} is not installed (Debian: apt-get install {package})")
    return found


def postgres_program(name: str) -> str:
    """`postgres` or `initdb` of the newest PostgreSQL in /usr/lib/postgresql/VERSION/bin.

    Debian keeps the server binaries out of PATH (only its wrappers are there).
    """
    found = glob(f"/usr/lib/postgresql/*/bin/{name}")
    if not found:
        unavailable(f"no /usr/lib/postgresql/*/bin/{name} (Debian: apt-get install postgresql)")
    return max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parts[-3])])


def postgres() -> str:
    return postgres_program("postgres")


def initdb() -> str:
    return postgres_program("initdb")


def psql() -> str:
    return program("psql", "postgresql-client")


def redis_server() -> str:
    return program("redis-server", "redis-server")


def nginx() -> str:
    return program("nginx", "nginx")


def alertmanager() -> str:
    return program("prometheus-alertmanager", "prometheus-alertmanager")


def root(why: str) -> None:
    """Require running as root (to run a service as another user, to chown)."""
    if os.geteuid() != 0:
        unavailable(f"needs root: {why}")


def account(name: str, package: str) -> pwd.struct_passwd:
    """The system user `name`, which installing `package` creates."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        unavailable(f"no user {name!r} on this host (Debian: apt-get install {package})")


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def shared_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory that every user can enter, for a service run as another user.

    pytest's `tmp_path` sits under a directory only its owner may enter (mode 0700), where a
    server run as `postgres` could not even read its configuration.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
