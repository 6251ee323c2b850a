"""Normalising a paste before the rules read it: quoted YAML values folded over lines, Markdown
emphasis around a log line, and text beside a container that never started (which is the
kubelet's words, not a log). Each input differs from the corpus case that revealed the gap
(tests/k8s_corpus 154, 165, 188), and each has a negative where the fix could over-fire.
"""

from __future__ import annotations

from typing import Any

from infraveil.k8s.describe import parse_describe
from infraveil.k8s.doctor import diagnose_pod
from infraveil.k8s.evidence import UNNAMED


def scored(paste: str) -> dict[str, Any]:
    r = diagnose_pod(parse_describe(paste)).as_dict()
    found: dict[str, Any] = next(c for c in r["containers"] if c["failing"])
    return found


def texts(c: dict[str, Any]) -> list[str]:
    return [e["text"] for e in c["diagnosis"]["evidence"]]


# --- a quoted value folded over lines is one line --------------------------------------------


def test_a_folded_double_quoted_message_is_read_as_one_line() -> None:
    paste = (
        '      message: "failed to create containerd task: failed to create shim task: OCI\n'
        "        runtime create failed: runc create failed: unable to start container process:\n"
        '        exec: \\"/usr/local/bin/server\\": stat /usr/local/bin/server: no such file\n'
        '        or directory: unknown"\n'
    )
    ev = parse_describe(paste)
    assert len(ev.previous_logs[UNNAMED].splitlines()) == 1
    c = scored(paste)
    assert c["diagnosis"]["category"] == "command_not_found"
    assert any("stat /usr/local/bin/server: no such file" in t for t in texts(c))


def test_a_quote_never_closed_leaves_the_lines_as_they_were() -> None:
    paste = "  message: 'the operator said\n    something that never ends\n    and goes on\n"
    log = parse_describe(paste).previous_logs[UNNAMED]
    assert log.splitlines() == ["message: 'the operator said", "  something that never ends",
                                "  and goes on"]  # fmt: skip


def test_lines_at_the_same_indentation_are_not_a_continuation() -> None:
    paste = "msg: 'a\nERROR: b'\n"
    log = parse_describe(paste).previous_logs[UNNAMED]
    assert log.splitlines() == ["msg: 'a", "ERROR: b'"]


# --- Markdown emphasis around a pasted line --------------------------------------------------


def test_a_bold_log_line_is_read_without_its_markup() -> None:
    paste = "__sh: /app/entrypoint.sh: Permission denied__\n"
    c = scored(paste)
    assert c["diagnosis"]["category"] == "not_executable"
    assert texts(c)[0] == "sh: /app/entrypoint.sh: Permission denied"


def test_an_italic_line_with_words_after_its_markup() -> None:
    paste = "*/bin/sh: 1: /opt/run.sh: Permission denied* (from the init container)\n"
    log = parse_describe(paste).previous_logs[UNNAMED]
    assert log == "/bin/sh: 1: /opt/run.sh: Permission denied (from the init container)"


def test_stars_that_are_the_programs_own_are_kept() -> None:
    paste = (
        "*** stack smashing detected ***: terminated\n"
        "* Starting service\n"
        "**kwargs were not accepted\n"
    )
    log = parse_describe(paste).previous_logs[UNNAMED]
    assert log.splitlines() == [
        "*** stack smashing detected ***: terminated",
        "* Starting service",
        "**kwargs were not accepted",
    ]


# --- a container that never started has no log -----------------------------------------------


def test_a_message_beside_a_get_row_of_a_container_never_created_is_the_kubelets() -> None:
    paste = (
        'Error: secret "payments-db" not found\n'
        "\n"
        "$ kubectl get pods -n pay\n"
        "NAME                        READY   STATUS                       RESTARTS   AGE\n"
        "payments-7d9f8c6b5-2xk4q    0/1     CreateContainerConfigError   0          2m\n"
    )
    ev = parse_describe(paste)
    assert ev.previous_logs == {}
    assert [e["message"] for e in ev.events] == ['Error: secret "payments-db" not found']
    c = scored(paste)
    assert c["diagnosis"]["category"] == "missing_secret"
    assert any('secret "payments-db" not found' in t for t in texts(c))


def test_text_beside_a_container_that_ran_before_is_still_its_log() -> None:
    # it restarted, so it has run: what is pasted can be its previous run's output
    paste = (
        "panic: runtime error: invalid memory address or nil pointer dereference\n"
        "\n"
        "$ kubectl get pods\n"
        "NAME                     READY   STATUS             RESTARTS   AGE\n"
        "api-5c7f9d8b6-abcde      0/1     CrashLoopBackOff   7          12m\n"
    )
    ev = parse_describe(paste)
    assert "panic: runtime error" in ev.previous_logs[UNNAMED]
    assert ev.events == []


def test_a_long_paste_beside_a_never_started_state_is_left_as_logs() -> None:
    lines = "".join(f"line {i}: something happened\n" for i in range(30))
    paste = (
        f"{lines}\n"
        "NAME        READY   STATUS              RESTARTS   AGE\n"
        "web-0       0/1     ImagePullBackOff    0          5m\n"
    )
    ev = parse_describe(paste)
    assert UNNAMED in ev.previous_logs and ev.events == []


def test_underscores_of_python_names_are_kept() -> None:
    paste = "__main__: ERROR could not load __init__ hooks\n"
    log = parse_describe(paste).previous_logs[UNNAMED]
    assert log == "__main__: ERROR could not load __init__ hooks"


def test_a_message_beside_a_yaml_status_of_a_container_never_created() -> None:
    paste = (
        "Error: couldn't find key DB_HOST in ConfigMap shop/app-settings\n"
        "\n"
        "status:\n"
        "  containerStatuses:\n"
        "  - name: shop\n"
        "    restartCount: 0\n"
        "    ready: false\n"
        "    state:\n"
        "      waiting:\n"
        "        reason: CreateContainerConfigError\n"
    )
    ev = parse_describe(paste)
    assert ev.previous_logs == {}
    assert ev.events[0]["involvedObject"]["fieldPath"] == "spec.containers{shop}"
    c = scored(paste)
    assert c["diagnosis"]["category"] == "missing_configmap"
    assert any("couldn't find key DB_HOST" in t for t in texts(c))
