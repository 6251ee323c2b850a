"""`infraveil doctor k8s` end to end: the real CLI as a subprocess, KUBECONFIG pointing the
real `kubernetes` client at the stand-in API server, as a person runs it against a cluster."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from standin import USER, StandIn, recorded, shop

API_POD = "api-7c9d8b6f4d-x7k2p"
_SCRIPT = Path(sys.executable).with_name("infraveil")
INFRAVEIL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "infraveil"]
# the same CLI with the optional `kubernetes` package made unimportable
WITHOUT_CLIENT = [
    sys.executable,
    "-c",
    "import sys; sys.modules['kubernetes'] = None; sys.argv[0] = 'infraveil';"
    " from infraveil.cli.main import main; main()",
]


@pytest.fixture(scope="module")
def api() -> Iterator[StandIn]:
    with StandIn() as server:
        shop(server)
        shop(server, "nologs")
        for pod in recorded("shop-pods.json")["items"]:
            name = pod["metadata"]["name"]
            server.forbid(f"/api/v1/namespaces/nologs/pods/{name}/log", "get", "pods/log", "nologs")
        server.forbid("/api/v1/namespaces/locked/pods", "list", "pods", "locked")
        # a pod that is really called "collect", like the subcommand
        web = next(
            p for p in recorded("shop-pods.json")["items"] if p["metadata"]["name"][:3] == "web"
        )
        web["metadata"].update(name="collect", namespace="odd")
        # a pod that crash-loops and left no log and no event: its cause cannot be known
        mute = next(
            p for p in recorded("shop-pods.json")["items"] if p["metadata"]["name"][:3] == "api"
        )
        mute["metadata"].update(name="mute", namespace="odd")
        server.add_pods("odd", [web, mute])
        yield server


@pytest.fixture(scope="module")
def kubeconfig(api: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return api.kubeconfig(tmp_path_factory.mktemp("kube") / "config")


def run(
    *args: str, kubeconfig: Path | str, argv: list[str] = INFRAVEIL, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run(
        [*argv, "doctor", "k8s", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=cwd,
    )


def reports(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.stdout, result.stderr
    out = json.loads(result.stdout)
    assert out["schema"] == "infraveil/v1/k8s_pods"
    pods: list[dict[str, Any]] = out["pods"]
    return pods


def container(report: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in report["containers"] if c["name"] == name)
    return found


def evidence_texts(c: dict[str, Any]) -> list[str]:
    return [e["text"] for e in c["diagnosis"]["evidence"]]


def test_a_crash_looping_pod_is_explained_with_its_log_line(kubeconfig: Path) -> None:
    result = run(API_POD, "-o", "json", kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr
    [report] = reports(result)
    assert (report["namespace"], report["name"], report["healthy"]) == ("shop", API_POD, False)
    assert report["owners"] == ["ReplicaSet/api-7c9d8b6f4d", "Deployment/api"]
    assert report["source"] == "cluster standin"
    api = container(report, "api")
    assert api["failing"] and api["restarts"] == 6
    assert api["last_termination"]["exit_code"] == 1
    assert api["diagnosis"]["category"] == "missing_env"
    assert "KeyError: 'DATABASE_URL'" in evidence_texts(api)


def test_the_human_report_and_the_kubectl_pod_form(kubeconfig: Path) -> None:
    result = run(f"pod/{API_POD}", "-n", "shop", kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr
    assert "missing_env" in result.stdout
    assert "KeyError: 'DATABASE_URL'" in result.stdout
    assert "Traceback" not in result.stderr


def test_selector_all_init_container_and_healthy_pod(kubeconfig: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        by_label, everything = pool.map(
            lambda args: run(*args, "-o", "json", kubeconfig=kubeconfig),
            [("-l", "app=api"), ("--all", "-n", "shop", "--context", "standin")],
        )
    assert by_label.returncode == 0, by_label.stderr
    assert [r["name"] for r in reports(by_label)] == ["api-7c9d8b6f4d-q4m8n", API_POD]
    assert everything.returncode == 0, everything.stderr
    pods = {r["name"]: r for r in reports(everything)}
    assert sorted(pods) == ["api-7c9d8b6f4d-q4m8n", API_POD, "db-0", "web-6d5f7c8b9-h2j4k"]
    db = pods["db-0"]
    init = container(db, "init-schema")
    assert init["init"] and init["failing"] and not db["healthy"]
    assert init["diagnosis"]["category"] != "unknown"
    assert any("could not translate host name" in t for t in evidence_texts(init))
    assert container(db, "postgres")["diagnosis"] is None  # it only waits for the init container
    web = pods["web-6d5f7c8b9-h2j4k"]
    assert web["healthy"] and not container(web, "web")["failing"]
    assert container(web, "web")["last_termination"]["reason"] == "OOMKilled"
    assert "OOMKilled" in web["summary"]


def test_forbidden_logs_are_said_and_the_diagnosis_goes_on(kubeconfig: Path) -> None:
    result = run(API_POD, "-n", "nologs", "-o", "json", kubeconfig=kubeconfig)
    [report] = reports(result)
    assert report["problems"] == [
        f"read previous logs of container api of pod {API_POD}: forbidden; your user ({USER})"
        " needs `get` on `pods/log` in namespace nologs"
        " (check: kubectl auth can-i get pods --subresource=log -n nologs)"
    ]
    api = container(report, "api")
    assert api["failing"] and api["diagnosis"] is not None
    # still explained from the events and the exit status, or said to be unknown: exit 1
    assert result.returncode == (1 if api["diagnosis"]["category"] == "unknown" else 0)


def test_forbidden_pods_exit_11_with_the_permission(kubeconfig: Path) -> None:
    result = run("--all", "-n", "locked", kubeconfig=kubeconfig)
    assert result.returncode == 11
    assert result.stderr == (
        f"error: cannot list pods in namespace locked: your user ({USER}) needs `list` on"
        " `pods` in namespace locked (check: kubectl auth can-i list pods -n locked)\n"
    )


def test_rejected_credentials_exit_11(api: StandIn, tmp_path: Path) -> None:
    config = api.kubeconfig(tmp_path / "config", token="expired-token")
    result = run(API_POD, kubeconfig=config)
    assert result.returncode == 11
    assert f"the API server at {api.url} rejected the credentials" in result.stderr
    assert "hint: " in result.stderr


def test_pod_not_found_exits_4_and_names_pods_that_are_there(kubeconfig: Path) -> None:
    result = run("api-7c9d8b6f4d", kubeconfig=kubeconfig)
    assert result.returncode == 4
    assert "error: no pod 'api-7c9d8b6f4d' in namespace shop\n" in result.stderr
    [hint] = [line for line in result.stderr.splitlines() if line.startswith("hint: pods there:")]
    assert API_POD in hint and "api-7c9d8b6f4d-q4m8n" in hint


def test_unreachable_cluster_exits_10_naming_the_server(api: StandIn, tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        result = run(API_POD, kubeconfig=api.kubeconfig(tmp_path / "c", server=url))
    assert result.returncode == 10
    assert f"error: cannot reach the Kubernetes API server at {url}: " in result.stderr
    assert "Connection refused" in result.stderr


def test_no_kubeconfig_and_unknown_context_exit_9(kubeconfig: Path, tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    result = run(API_POD, kubeconfig=missing)
    assert result.returncode == 9
    assert f"error: no kubeconfig found: looked at {missing} ($KUBECONFIG)\n" in result.stderr
    result = run(API_POD, "--context", "prod", kubeconfig=kubeconfig)
    assert result.returncode == 9
    assert "hint: known contexts: standin, other" in result.stderr


def test_without_the_kubernetes_package_live_says_how_to_install(kubeconfig: Path) -> None:
    result = run(API_POD, kubeconfig=kubeconfig, argv=WITHOUT_CLIENT)
    assert result.returncode == 9, result.stderr
    assert "pip install 'infraveil[k8s]'" in result.stderr


def test_collect_then_bundle_gives_the_same_report(kubeconfig: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "api.tar.gz"
    collected = run("collect", API_POD, "-n", "shop", "-o", str(bundle), kubeconfig=kubeconfig)
    assert collected.returncode == 0, collected.stderr
    assert f"wrote {bundle}: pod shop/{API_POD}, 5 events, 2 node events" in collected.stdout
    assert bundle.is_file()
    live = run(API_POD, "-o", "json", kubeconfig=kubeconfig)
    # offline: no cluster, and no kubernetes package needed
    offline = run("--bundle", str(bundle), "-o", "json", kubeconfig="", argv=WITHOUT_CLIENT)
    assert offline.returncode == live.returncode == 0, offline.stderr
    [from_cluster], [from_bundle] = reports(live), reports(offline)
    from_cluster.pop("source"), from_bundle.pop("source")
    assert from_bundle == from_cluster


def test_a_pod_called_collect_and_the_collect_subcommand(kubeconfig: Path) -> None:
    result = run("pod/collect", "-n", "odd", "-o", "json", kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr
    assert [r["name"] for r in reports(result)] == ["collect"]
    result = run("collect", "-n", "odd", kubeconfig=kubeconfig)
    assert result.returncode == 2
    assert "Missing argument 'POD'" in result.stderr


def test_help_shows_examples_and_wrong_use_exits_2(kubeconfig: Path) -> None:
    helped = run("--help", kubeconfig=kubeconfig)
    assert helped.returncode == 0
    assert "infraveil doctor k8s -l app=api -n shop" in helped.stdout
    assert "collect" in helped.stdout
    collect_help = run("collect", "--help", kubeconfig=kubeconfig)
    assert "infraveil doctor k8s collect api-7c9d8b6f4d-x7k2p -n shop -o api.tar.gz" in (
        collect_help.stdout
    )
    for args in ([], [API_POD, "--all"], ["--logs", __file__, API_POD], ["deploy/api"]):
        result = run(*args, kubeconfig=kubeconfig)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_describe_text_from_a_file_or_stdin_and_a_bad_bundle(tmp_path: Path) -> None:
    paste = Path(__file__).parent / "fixtures" / "describe" / "k8s-94216-init-crashloop-2020.txt"
    from_file = run("--describe", str(paste), "-o", "json", kubeconfig="", argv=WITHOUT_CLIENT)
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    from_stdin = subprocess.run(
        [*INFRAVEIL, "doctor", "k8s", "--describe", "-", "-o", "json"],
        input=paste.read_text(),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert from_file.returncode == from_stdin.returncode, from_stdin.stderr
    [by_file], [by_stdin] = reports(from_file), reports(from_stdin)
    assert (by_file["source"], by_stdin["source"]) == (str(paste), "stdin")
    by_file.pop("source"), by_stdin.pop("source")
    assert by_file == by_stdin
    init = container(by_file, "init")
    assert init["init"] and init["failing"]
    empty = tmp_path / "empty"
    empty.mkdir()
    for bad in (empty, Path(__file__)):
        result = run("--bundle", str(bad), kubeconfig="")
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"error: {bad}: "), result.stderr
        assert "Traceback" not in result.stderr


def test_a_failure_whose_cause_is_unknown_exits_1(kubeconfig: Path) -> None:
    result = run("mute", "-n", "odd", "-o", "json", kubeconfig=kubeconfig)
    assert result.returncode == 1, result.stderr
    [report] = reports(result)
    api = container(report, "api")
    assert api["failing"] and api["diagnosis"]["category"] == "unknown"
    assert report["problems"] == [
        'read previous logs of container api of pod mute: previous terminated container "api"'
        ' in pod "mute" not found'
    ]
