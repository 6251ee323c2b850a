"""The `infraveil` fixture: the real CLI against a real agent, in a state directory of its own.

Its teardown always runs `infraveil down` and then kills whatever this test started that is
still alive (see `e2e_support.Infraveil.cleanup`); the helpers themselves are in
`e2e_support`, so that test modules import them by a name no other conftest shares.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import Infraveil


@pytest.fixture
def infraveil(tmp_path: Path) -> Iterator[Infraveil]:
    # a short state dir: the agent's Unix socket path must stay under 108 bytes
    state_dir = Path(tempfile.mkdtemp(prefix="ivl-e2e-"))
    cli = Infraveil(tmp_path, state_dir, uuid.uuid4().hex)
    try:
        yield cli
    finally:
        try:
            leftovers = cli.cleanup()
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
        assert not leftovers, f"`infraveil down` exited 0 but left processes running: {leftovers}"
