"""evicted: the kubelet evicting the pod for node pressure, from the pod's status or an event,
with the resource and the container that used most beyond its request."""

from __future__ import annotations

from kube_support import apply, engine, warning

from infraveil.core.diagnosis.categories import Category
from infraveil.core.diagnosis.rules.evicted import rule

MEMORY = (
    "The node was low on resource: memory. Container proprietary-crawler was using 9402820Ki,"
    " which exceeds its request of 7G."
)
STORAGE = (
    "The node was low on resource: ephemeral-storage. Threshold quantity: 1Gi, available: 777784Ki."
)


def test_memory_pressure_names_the_container_and_its_request() -> None:
    f = apply(rule, pod_reason="Evicted", pod_message=MEMORY, pod_phase="Failed")
    assert f is not None and f.category is Category.EVICTED and not f.deterministic
    assert [e.text for e in f.evidence] == [MEMORY, "Evicted"]
    assert [e.source for e in f.evidence] == ["status.message", "status.reason"]
    assert "memory" in f.summary and "9402820Ki, beyond its request of 7G" in f.summary
    assert "requests.memory" in f.fix


def test_ephemeral_storage_pressure() -> None:
    f = apply(rule, pod_reason="Evicted", pod_message=STORAGE)
    assert f is not None and "ephemeral-storage" in f.summary and "ephemeral-storage" in f.fix


def test_only_the_event_says_it() -> None:
    message = (
        "The node was low on resource: ephemeral-storage. Container calico-node was using 92Ki,"
        " which exceeds its request of 0."
    )
    f = apply(rule, events=(warning("Evicted", message),))
    assert f is not None and f.evidence[0].text == message


def test_eviction_outranks_the_exit_code_of_the_killed_container() -> None:
    d = engine(exit_code=137, pod_reason="Evicted", pod_message=MEMORY)
    assert d.finding.category is Category.EVICTED
    assert Category.OOM_KILLED in [o.category for o in d.others]


def test_a_pod_that_was_not_evicted() -> None:
    assert apply(rule, pod_reason="", pod_message="") is None
    assert apply(rule, events=(warning("Failed", "Error: ErrImagePull"),)) is None
