"""The CLI loads a verb's module only when it runs; the table that says where each verb is
must name every command every verb module declares, and nothing else."""

from __future__ import annotations

import importlib
import pkgutil

import infraveil.cli.verbs
from infraveil.cli.main import VERBS, cli


def test_every_declared_command_is_reachable_by_its_name() -> None:
    declared: dict[str, str] = {}
    for info in pkgutil.iter_modules(infraveil.cli.verbs.__path__):
        module = importlib.import_module(f"infraveil.cli.verbs.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            declared[command.name] = info.name
    assert declared == VERBS


def test_a_verb_does_not_import_the_agent_or_the_engine() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from infraveil.cli.main import cli;"
        " cli.get_command(None, 'why');"
        " print(sorted(m for m in sys.modules if m.startswith(('aiohttp', 'infraveil.daemon',"
        " 'infraveil.core.diagnosis'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert cli.get_command(None, "no-such-verb") is None  # type: ignore[arg-type]
