"""The server's Prometheus metrics: one registry per app, every metric named here.

Each app gets its own `CollectorRegistry`, so several apps in one process
(tests, or replicas behind one port) never share or double-register metrics.
Counts that must agree across replicas (runs and jobs by status) are read
from the database at scrape time by `StatusCollector`, not kept in one
process's memory, so every replica reports the same truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from conveyor.core.values import frozen
from conveyor.store.tallies import StatusCounts

# The status counts of this moment; None until the server's database is open.
CountSource = Callable[[], StatusCounts]


class StatusCollector(Collector):
    """`conveyor_runs` and `conveyor_jobs` by status, counted in the database at each scrape."""

    def __init__(self) -> None:
        self._source: CountSource | None = None

    def attach(self, source: CountSource | None) -> None:
        """Read counts from `source` from now on (None: report no samples)."""
        self._source = source

    def collect(self) -> Iterator[Metric]:
        counts = self._source() if self._source is not None else StatusCounts({}, {})
        for name, doc, found in (
            ("conveyor_runs", "Runs by status.", counts.runs),
            ("conveyor_jobs", "Jobs by status.", counts.jobs),
        ):
            family = GaugeMetricFamily(name, doc, labels=("status",))
            for status, count in sorted(found.items()):
                family.add_metric((status,), count)
            yield family


# Seconds; from a cached job restored in milliseconds to a long build.
_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# Seconds in the queue; the goal is p95 under 250 ms while agents are free.
_QUEUE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


@frozen
class Metrics:
    """The registry `/metrics` exposes and the metrics others feed."""

    registry: CollectorRegistry
    http_request_duration: Histogram
    status_counts: StatusCollector
    job_duration: Histogram
    job_queue_time: Histogram
    agents_connected: Gauge
    leases_expired: Counter


def create_metrics() -> Metrics:
    """A fresh registry holding every metric of the server."""
    registry = CollectorRegistry()
    status_counts = StatusCollector()
    registry.register(status_counts)
    return Metrics(
        registry=registry,
        http_request_duration=Histogram(
            "conveyor_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status.",
            ("route", "method", "status"),
            registry=registry,
        ),
        status_counts=status_counts,
        job_duration=Histogram(
            "conveyor_job_duration_seconds",
            "Time a job ran, from start to finish.",
            buckets=_DURATION_BUCKETS,
            registry=registry,
        ),
        job_queue_time=Histogram(
            "conveyor_job_queue_seconds",
            "Time a job waited, from created to started.",
            buckets=_QUEUE_BUCKETS,
            registry=registry,
        ),
        agents_connected=Gauge(
            "conveyor_agents_connected", "Agents holding a connection now.", registry=registry
        ),
        leases_expired=Counter(
            "conveyor_leases_expired",
            "Job leases that expired (the agent stopped heartbeating).",
            registry=registry,
        ),
    )
