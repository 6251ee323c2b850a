"""Pastes in the forms the second blind corpus showed: events of several containers named by
field path (kubectl 1.33+), termination fields quoted as pasted, a mounted volume's path
refused, the kubelet's probes in the app's own access log. Other programs than the corpus
cases: these test the form, not a fixture."""

from __future__ import annotations

from typing import Any

from infraveil.k8s.describe import parse_describe
from infraveil.k8s.doctor import diagnose_pod
from infraveil.k8s.evidence import PodEvidence


def report(ev: PodEvidence) -> dict[str, Any]:
    return diagnose_pod(ev).as_dict()


def texts(c: dict[str, Any]) -> list[str]:
    return [e["text"] for e in c["diagnosis"]["evidence"]]


def test_events_of_several_containers_by_field_path_make_one_container_each() -> None:
    paste = (
        "Events:\n"
        "  Type     Reason   Age   From     Message\n"
        "  ----     ------   ----  ----     -------\n"
        "  Normal   Pulled   40s   kubelet  spec.containers{envoy}: Container image"
        ' "envoyproxy/envoy:v1.31.0" already present on machine\n'
        "  Normal   Created  40s   kubelet  spec.containers{envoy}: Container created\n"
        "  Normal   Started  40s   kubelet  spec.containers{envoy}: Container started\n"
        '  Normal   Pulling  39s   kubelet  spec.containers{billing}: Pulling image "acme/billing:9.9"\n'  # noqa: E501
        '  Warning  Failed   38s   kubelet  spec.containers{billing}: Failed to pull image "acme/billing:9.9": rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/acme/billing:9.9": not found\n'  # noqa: E501
        "  Warning  Failed   38s   kubelet  spec.containers{billing}: Error: ErrImagePull\n"
    )
    r = report(parse_describe(paste))
    names = {c["name"]: c for c in r["containers"]}
    assert set(names) == {"envoy", "billing"}  # not "created"/"started" from the messages
    billing = names["billing"]
    assert billing["failing"] and not names["envoy"]["failing"]
    assert billing["diagnosis"]["category"] == "image_pull"
    assert any("acme/billing:9.9" in t for t in texts(billing))


def test_the_exit_code_is_quoted_as_pasted() -> None:
    paste = (
        "    State:          Waiting\n"
        "      Reason:       CrashLoopBackOff\n"
        "    Last State:     Terminated\n"
        "      Reason:       Error\n"
        "      Exit Code:    132\n"
        "      Started:      Sat, 21 Nov 2026 08:00:00 +0000\n"
        "      Finished:     Sat, 21 Nov 2026 08:00:01 +0000\n"
        "    Ready:          False\n"
        "    Restart Count:  6\n"
    )
    r = report(parse_describe(paste))
    c = next(c for c in r["containers"] if c["failing"])
    assert c["last_termination"]["exit_code"] == 132
    assert any("Exit Code:    132" in t for t in texts(c))


def test_a_parsed_status_keeps_v1_fields_and_puts_the_pasted_lines_beside_them() -> None:
    paste = (
        "Name:         api-0\nNamespace:    shop\nStatus:       Running\n"
        "Containers:\n"
        "  api:\n"
        "    Image:          acme/api:1\n"
        "    State:          Running\n"
        "      Started:      Sat, 21 Nov 2026 08:00:05 +0000\n"
        "    Last State:     Terminated\n"
        "      Reason:       OOMKilled\n"
        "      Exit Code:    137\n"
        "      Started:      Sat, 21 Nov 2026 08:00:00 +0000\n"
        "      Finished:     Sat, 21 Nov 2026 08:00:04 +0000\n"
        "    Ready:          True\n"
        "    Restart Count:  1\n"
    )
    st = parse_describe(paste).pod["status"]["containerStatuses"][0]
    assert st["lastState"]["terminated"]["exitCode"] == 137
    assert "x-describe" not in st["lastState"]["terminated"]
    assert st["x-describe"]["lastState"]["exitCode"] == "Exit Code:    137"


def test_a_probe_answered_404_in_the_apps_access_log_names_the_probe_path() -> None:
    paste = "\n".join(
        f'10.42.0.1 - - [21/Nov/2026:08:00:{s:02d} +0000] "GET /status HTTP/1.1" 404 19'
        f' "-" "kube-probe/1.30"'
        for s in (0, 10, 20, 30)
    )
    c = next(c for c in report(parse_describe(paste))["containers"] if c["failing"])
    assert c["diagnosis"]["category"] == "probe_misconfigured"
    assert "/status" in c["diagnosis"]["summary"]


def test_an_oh_my_zsh_prompt_with_an_alias_and_get_pods_rows_without_header() -> None:
    paste = (
        "\u279c  ~ kc logs -p redis-master-0 -c volume-permissions -n cache\n"
        "mkdir: can't create directory '/data/appendonlydir': Permission denied\n"
        "\n"
        "cache   redis-master-0     0/1   Init:CrashLoopBackOff   7 (2m ago)   14m\n"
        "cache   redis-replicas-0   1/1   Running                 0            14m\n"
    )
    ev = parse_describe(paste)
    assert ev.name == "redis-master-0"
    assert "Running" not in ev.previous_logs["volume-permissions"]  # the rows are not logs
    c = next(c for c in report(ev)["containers"] if c["failing"])
    assert (c["name"], c["init"], c["restarts"]) == ("volume-permissions", True, 7)
    d = c["diagnosis"]
    assert d["category"] == "init_container" and d["cause"] == "data_dir"
    assert any("/data/appendonlydir" in t for t in texts(c))
