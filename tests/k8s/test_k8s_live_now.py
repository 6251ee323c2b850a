"""The live path diagnoses a cluster as of the clock's now: the evidence's own latest moment
(which suits a bundle read later) is the container's start for a pod that has been running,
not ready, for a year without an event, and would make it look like it just started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from k8s_pods import container, pod, status
from standin import StandIn

_SCRIPT = Path(sys.executable).with_name("infraveil")
INFRAVEIL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "infraveil"]


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    stuck = pod(
        [container("api")],
        [status("api", {"running": {"startedAt": "2025-01-02T03:04:05Z"}}, ready=False)],
        name="api-stuck",
        namespace="clock",
    )
    with StandIn() as server:
        server.add_pods("clock", [stuck])
        yield server.kubeconfig(tmp_path_factory.mktemp("kube") / "config", namespace="clock")


def test_a_pod_not_ready_for_long_is_failing_when_diagnosed_live(kubeconfig: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env["KUBECONFIG"] = str(kubeconfig)
    result = subprocess.run(
        [*INFRAVEIL, "doctor", "k8s", "api-stuck", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.stdout, result.stderr
    [report] = json.loads(result.stdout)["pods"]
    [api] = report["containers"]
    assert api["state"] == "Running" and not api["ready"]
    assert api["failing"], report["summary"]  # as of now, not as of its start
