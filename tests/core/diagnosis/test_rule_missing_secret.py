"""missing_secret: a Secret or a key of it the kubelet cannot find (the same words as a
ConfigMap's, read by missing_configmap.missing_ref)."""

from __future__ import annotations

from kube_support import apply, warning

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.facts import KubeRef
from infraveil.core.diagnosis.rules.missing_secret import rule


def test_a_missing_secret() -> None:
    events = (warning("Failed", 'Error: secret "secrets-2.16.4-1" not found', 6),)
    f = apply(rule, events=events, waiting_reason="CreateContainerConfigError")
    assert f is not None and f.category is Category.MISSING_SECRET
    assert f.evidence[0].text == 'Error: secret "secrets-2.16.4-1" not found'
    assert "kubectl -n shop create secret generic secrets-2.16.4-1 --from-literal" in f.fix


def test_a_missing_key_of_a_secret_in_another_namespace() -> None:
    message = "Error: couldn't find key VALUE in Secret default/aegis-secret"
    refs = (KubeRef("Secret", "aegis-secret", "VALUE", "env VALUE"),)
    f = apply(rule, events=(warning("Failed", message, 5),), refs=refs)
    assert f is not None and "key VALUE of Secret aegis-secret (its env VALUE)" in f.summary
    assert "kubectl -n default patch secret aegis-secret" in f.fix
    assert '{"stringData":{"VALUE":"VALUE"}}' in f.fix


def test_a_secret_volume_that_will_not_mount() -> None:
    mount = 'MountVolume.SetUp failed for volume "tls" : secret "api-tls" not found'
    f = apply(rule, events=(warning("FailedMount", mount, 3),))
    assert f is not None and "api-tls" in f.summary


def test_a_configmap_is_not_a_secret() -> None:
    assert apply(rule, events=(warning("Failed", 'Error: configmap "x" not found'),)) is None
