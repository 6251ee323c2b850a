"""`/metrics`: the agent's snapshot in the Prometheus exposition format.

Built fresh from the immutable snapshot at every scrape (a custom collector), so there is no
second copy of the state to keep in sync.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from infraveil.core.lifecycle import State
from infraveil.daemon.agent import Snapshot


class _SnapshotCollector:
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "infraveil_service_state",
            "1 for the state the service is in",
            labels=["service", "state"],
        )
        ready = GaugeMetricFamily("infraveil_service_ready", "1 when ready", labels=["service"])
        restarts = CounterMetricFamily(
            "infraveil_service_restarts", "starts made by the restart policy", labels=["service"]
        )
        exit_code = GaugeMetricFamily(
            "infraveil_service_last_exit_code",
            "exit code of the previous instance (absent if none or killed by a signal)",
            labels=["service"],
        )
        exit_signal = GaugeMetricFamily(
            "infraveil_service_last_exit_signal",
            "signal that ended the previous instance (absent if it exited)",
            labels=["service"],
        )
        memory = GaugeMetricFamily(
            "infraveil_service_memory_bytes",
            "resident memory of the service's process group (sampled)",
            labels=["service"],
        )
        for name, view in self._snapshot.services.items():
            record = view.record
            for s in State:
                state.add_metric([name, str(s)], 1.0 if record.state is s else 0.0)
            ready.add_metric([name], 1.0 if record.ready else 0.0)
            restarts.add_metric([name], float(record.restarts))
            last = record.last_exit
            if last is not None and last.code is not None:
                exit_code.add_metric([name], float(last.code))
            if last is not None and last.signal is not None:
                exit_signal.add_metric([name], float(last.signal))
            if view.rss is not None:
                memory.add_metric([name], float(view.rss))
        yield from (state, ready, restarts, exit_code, exit_signal, memory)
        stats = self._snapshot.probes
        if stats is not None:
            yield CounterMetricFamily(
                "infraveil_probes", "health probes started", value=float(stats.started)
            )
            yield CounterMetricFamily(
                "infraveil_probes_late",
                "probes that started more than one period after they were due",
                value=float(stats.late),
            )
            yield GaugeMetricFamily(
                "infraveil_probe_max_lateness_seconds",
                "the most any probe started after it was due, since the agent started",
                value=stats.max_lateness,
            )


def render_metrics(snapshot: Snapshot) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry), CONTENT_TYPE_LATEST
