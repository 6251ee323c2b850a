"""missing_configmap: a ConfigMap or one of its keys the kubelet cannot find, from the waiting
message or only the events, for env vars and volumes; never for a process."""

from __future__ import annotations

import pytest
from kube_support import apply, engine, warning

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.facts import KubeRef
from infraveil.core.diagnosis.finding import Specificity
from infraveil.core.diagnosis.rules import missing_configmap
from infraveil.core.diagnosis.rules.missing_configmap import rule

REFS = (
    KubeRef("ConfigMap", "api-env", "", "envFrom"),
    KubeRef("ConfigMap", "api-conf", "LOG_LEVEL", "env LOG_LEVEL"),
)


def test_a_missing_configmap_only_in_the_events() -> None:
    events = (warning("Failed", 'Error: configmap "api-env" not found', 12),)
    f = apply(rule, events=events, waiting_reason="CreateContainerConfigError", refs=REFS)
    assert f is not None and f.category is Category.MISSING_CONFIGMAP
    assert f.specificity is Specificity.PLATFORM
    assert [e.source for e in f.evidence] == ["event Warning Failed (x12)"]
    assert "ConfigMap api-env (its envFrom)" in f.summary
    assert "`kubectl -n shop create configmap api-env --from-file=FILE`" in f.fix


def test_a_missing_key_names_the_key_and_the_variable_and_patches_it_in() -> None:
    message = "couldn't find key LOG_LEVEL in ConfigMap shop/api-conf"
    f = apply(
        rule,
        waiting_reason="CreateContainerConfigError",
        waiting_message=message,
        refs=REFS,
    )
    assert f is not None and "key LOG_LEVEL of ConfigMap api-conf (its env LOG_LEVEL)" in f.summary
    assert f.evidence[0].source == "status.containerStatuses[api].state.waiting.message"
    assert """patch configmap api-conf --type merge -p '{"data":{"LOG_LEVEL":"VALUE"}}'""" in f.fix


def test_a_volume_that_will_not_mount() -> None:
    mount = 'MountVolume.SetUp failed for volume "conf" : configmap "locust-conf" not found'
    f = apply(rule, events=(warning("FailedMount", mount, 7),))
    assert f is not None and "mount it" in f.summary and "locust-conf" in f.fix


@pytest.mark.parametrize(
    "message",
    [
        'Error: secret "db" not found',  # a Secret is missing_secret's
        'configmap "x" is forbidden: User cannot get resource',
        "Back-off restarting failed container",
    ],
)
def test_other_words_are_not_a_missing_configmap(message: str) -> None:
    assert apply(rule, events=(warning("Failed", message),)) is None


def test_a_process_log_saying_it_is_not_this_rule() -> None:
    from diagnosis_support import apply as apply_process

    assert apply_process(missing_configmap.rule, 'configmap "x" not found') is None


def test_it_outranks_the_back_off_and_the_exit_status() -> None:
    events = (
        warning("BackOff", "Back-off restarting failed container", 40),
        warning("Failed", 'Error: configmaps "api-env" not found', 3),
    )
    d = engine(events=events, exit_code=1)
    assert d.finding.category is Category.MISSING_CONFIGMAP


def test_a_volume_only_another_container_mounts_is_not_this_ones() -> None:
    mount = 'MountVolume.SetUp failed for volume "conf" : configmap "locust-conf" not found'
    events = (warning("FailedMount", mount, 7),)
    assert apply(rule, events=events, mounts=(("data", "/data"),)) is None
    assert apply(rule, events=events, mounts=(("conf", "/etc/locust"),)) is not None


def test_an_old_kubelets_message_in_the_waiting_reason() -> None:
    # kubelets before ~1.8 put their message where the reason goes (no CreateContainerConfigError)
    f = apply(rule, waiting_reason='configmaps "nginx-conf" not found')
    assert f is not None and f.category is Category.MISSING_CONFIGMAP
    assert f.evidence[0].source == "status.containerStatuses[api].state.waiting.reason"
    assert f.evidence[0].text == 'configmaps "nginx-conf" not found'


def test_a_reason_word_is_not_read_as_a_message() -> None:
    assert apply(rule, waiting_reason="CreateContainerConfigError") is None
