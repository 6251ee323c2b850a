"""The agent's HTTP API on its Unix socket: /metrics, /openapi.json, and who may connect."""

from __future__ import annotations

import gc
import json
import os
import stat
import warnings

import pytest
from e2e_support import Infraveil, http_get, python

from infraveil.api.client import Client, service_path
from infraveil.core.errors import UnknownServiceError

pytestmark = pytest.mark.e2e


def test_metrics_openapi_and_the_socket_mode(infraveil: Infraveil) -> None:
    infraveil.up(
        {
            "web": {"command": python("import time; time.sleep(1000)"), "stop_timeout": "1s"},
            "ghost": {"command": "ivl-no-such-command-xyz"},
        }
    )
    sock = infraveil.state_dir / "agent.sock"
    mode = os.stat(sock).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600, oct(stat.S_IMODE(mode))

    status, headers, body = http_get(sock, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    metrics = body.decode().splitlines()
    assert 'infraveil_service_state{service="web",state="running"} 1.0' in metrics
    assert 'infraveil_service_state{service="web",state="stopped"} 0.0' in metrics
    assert 'infraveil_service_state{service="ghost",state="failed"} 1.0' in metrics
    assert 'infraveil_service_ready{service="web"} 1.0' in metrics
    assert 'infraveil_service_ready{service="ghost"} 0.0' in metrics
    assert "# TYPE infraveil_service_state gauge" in metrics
    states = [m for m in metrics if m.startswith('infraveil_service_state{service="web"')]
    assert len(states) == 7 and sum(float(m.rsplit(" ", 1)[1]) for m in states) == 1.0

    status, headers, body = http_get(sock, "/openapi.json")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    doc = json.loads(body)
    assert doc["openapi"].startswith("3.")
    assert "get" in doc["paths"]["/v1/status"]
    assert "/v1/services/{name}" in doc["paths"]
    assert "ServiceStatus" in doc["components"]["schemas"]

    status, _, body = http_get(sock, "/v1/services/nosuch")
    assert status == 404
    error = json.loads(body)["error"]
    assert error["code"] == "unknown_service"
    assert sorted(error["known"]) == ["ghost", "web"]

    status, _, body = http_get(sock, "/v1/events", limit="lots")
    assert status == 400
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_the_client_closes_every_connection_it_opens(infraveil: Infraveil) -> None:
    infraveil.up(
        {"web": {"command": python("print('hi', flush=True); import time; time.sleep(1000)")}}
    )
    client = Client(infraveil.state_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(3):
            assert client.get("/v1/status")["services"][0]["name"] == "web"
        rows = list(client.stream(service_path("web", "logs")))
        assert any(row["text"] == "hi" for row in rows)
        with pytest.raises(UnknownServiceError):
            client.get(service_path("nosuch"))
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []
