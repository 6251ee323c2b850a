"""Facts of a Kubernetes container for the Kubernetes rules' tests (what `doctor k8s` fills in)."""

from __future__ import annotations

from typing import Any

from infraveil.core.diagnosis.clues import Clues
from infraveil.core.diagnosis.engine import diagnose
from infraveil.core.diagnosis.facts import EventFact, Facts, KubeFacts, lines_of
from infraveil.core.diagnosis.finding import Diagnosis, Finding
from infraveil.core.diagnosis.rules import Rule


def warning(reason: str, message: str, count: int = 1) -> EventFact:
    source = f"event Warning {reason}" + (f" (x{count})" if count > 1 else "")
    return EventFact(reason, message, source, count, True)


def kube_facts(
    log: str = "",
    *,
    events: tuple[EventFact, ...] = (),
    node_events: tuple[EventFact, ...] = (),
    exit_code: int | None = None,
    **kube: Any,
) -> Facts:
    kube.setdefault("container", "api")
    kube.setdefault("status_path", f"status.containerStatuses[{kube['container']}]")
    kube.setdefault("terminated_path", f"{kube['status_path']}.lastState.terminated")
    return Facts(
        exit_code=exit_code,
        log=lines_of(log),
        log_source=f"logs --previous -c {kube['container']}",
        events=events,
        kube=KubeFacts(
            pod="api-7c9d8b6f4d-x7k2p", namespace="shop", node_events=node_events, **kube
        ),
    )


def apply(rule: Rule, log: str = "", **kw: Any) -> Finding | None:
    return rule(Clues(kube_facts(log, **kw)))


def engine(log: str = "", **kw: Any) -> Diagnosis:
    return diagnose(kube_facts(log, **kw))
