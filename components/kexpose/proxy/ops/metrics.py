"""Request metrics: counted in plain dicts on the hot path, exported to Prometheus on scrape.

A ``prometheus_client`` Counter takes a lock and walks label dicts on every ``inc``; at tens of
thousands of requests a second that is a measurable share of the proxy's time. So the data plane
increments integers in dicts, and a custom collector turns a snapshot into metric families
when ``/metrics`` is scraped. Snapshots are plain data, so the ``--workers`` supervisor can
gather them from each worker and add them up.

Exported (all prefixed ``kexpose_proxy_``):
``requests_total{ingress,service,status}``, ``request_duration_seconds{ingress}`` (histogram),
``upstream_errors_total{ingress,service,kind}``, ``active_connections``,
``route_table_reloads_total``, ``mirror_requests_total{outcome}`` (request mirrors' copies:
``sent``, ``failed``, ``dropped``) and ``mirror_requests_in_flight``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

__all__ = [
    "LATENCY_BUCKETS",
    "Metrics",
    "MetricsCollector",
    "MetricsSnapshot",
    "MirrorCounters",
    "Series",
]

#: Upper bounds in seconds: prometheus_client's default buckets.
LATENCY_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
_N: Final = len(LATENCY_BUCKETS)


@dataclass(slots=True)
class MirrorCounters:
    """What became of request mirrors' copies (``HTTPRequestMirrorFilter``). The data plane's
    ``Mirrors`` is one of these; its responses are discarded, so these counters are the only
    sign an operator has that copies reach the mirror backend at all."""

    in_flight: int = 0
    sent: int = 0
    """Copies whose request went out whole."""
    dropped: int = 0
    """Copies never started or cut off by a limit (in flight, buffered, no endpoint)."""
    failed: int = 0
    """Copies whose endpoint refused, reset or timed out."""

    def add(self, other: MirrorCounters) -> None:
        self.in_flight += other.in_flight
        self.sent += other.sent
        self.dropped += other.dropped
        self.failed += other.failed


@dataclass(slots=True)
class MetricsSnapshot:
    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    latency: dict[str, list[float]] = field(default_factory=dict)
    """Per ingress: counts per bucket (non-cumulative, last one +Inf), then the sum."""
    upstream_errors: dict[tuple[str, str, str], int] = field(default_factory=dict)
    active_connections: int = 0
    reloads: int = 0
    mirrors: MirrorCounters = field(default_factory=MirrorCounters)

    def add(self, other: MetricsSnapshot) -> None:
        for key, n in other.requests.items():
            self.requests[key] = self.requests.get(key, 0) + n
        for ekey, n in other.upstream_errors.items():
            self.upstream_errors[ekey] = self.upstream_errors.get(ekey, 0) + n
        for ingress, counts in other.latency.items():
            mine = self.latency.setdefault(ingress, [0.0] * (_N + 2))
            for i, v in enumerate(counts):
                mine[i] += v
        self.active_connections += other.active_connections
        self.reloads = max(self.reloads, other.reloads)
        self.mirrors.add(other.mirrors)


class Series:
    """Counters of one (Ingress, Service) pair; the data plane keeps one per route."""

    __slots__ = ("counts", "histogram")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.histogram = [0.0] * (_N + 2)

    def observe(self, status: int, seconds: float) -> None:
        counts = self.counts
        counts[status] = counts.get(status, 0) + 1
        histogram = self.histogram
        histogram[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        histogram[-1] += seconds


class Metrics:
    """The live counters of one process."""

    __slots__ = ("_data", "_series", "mirrors")

    def __init__(self) -> None:
        self._data = MetricsSnapshot()
        self._series: dict[tuple[str, str], Series] = {}
        self.mirrors = MirrorCounters()
        """The counters of the data plane's request mirrors (it hands its own ``Mirrors`` in)."""

    def series(self, ingress: str, service: str) -> Series:
        """The counters for a pair, made on first use and kept for the process's life."""
        key = (ingress, service)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = Series()
        return found

    def observe(self, ingress: str, service: str, status: int, seconds: float) -> None:
        self.series(ingress, service).observe(status, seconds)

    def upstream_error(self, ingress: str, service: str, kind: str) -> None:
        errors = self._data.upstream_errors
        key = (ingress, service, kind)
        errors[key] = errors.get(key, 0) + 1

    def connection_opened(self) -> None:
        self._data.active_connections += 1

    def connection_closed(self) -> None:
        self._data.active_connections -= 1

    def reloaded(self) -> None:
        self._data.reloads += 1

    def snapshot(self) -> MetricsSnapshot:
        d = self._data
        requests: dict[tuple[str, str, int], int] = {}
        latency: dict[str, list[float]] = {}
        for (ingress, service), series in self._series.items():
            for status, n in series.counts.items():
                requests[(ingress, service, status)] = n
            mine = latency.setdefault(ingress, [0.0] * (_N + 2))
            for i, v in enumerate(series.histogram):
                mine[i] += v
        m = self.mirrors
        return MetricsSnapshot(
            requests,
            latency,
            dict(d.upstream_errors),
            d.active_connections,
            d.reloads,
            MirrorCounters(m.in_flight, m.sent, m.dropped, m.failed),
        )


class MetricsCollector(Collector):
    """Turns snapshots from ``source`` into Prometheus metric families at scrape time."""

    def __init__(self, source: Callable[[], MetricsSnapshot]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        snap = self._source()
        requests = CounterMetricFamily(
            "kexpose_proxy_requests",
            "Requests answered, by Ingress, backend Service and status.",
            labels=["ingress", "service", "status"],
        )
        for (ingress, service, status), n in sorted(snap.requests.items()):
            requests.add_metric([ingress, service, str(status)], n)
        yield requests
        latency = HistogramMetricFamily(
            "kexpose_proxy_request_duration_seconds",
            "Time from the request head to the end of the response, by Ingress.",
            labels=["ingress"],
        )
        for ingress, counts in sorted(snap.latency.items()):
            latency.add_metric([ingress], _cumulative(counts[: _N + 1]), sum_value=counts[-1])
        yield latency
        errors = CounterMetricFamily(
            "kexpose_proxy_upstream_errors",
            "Failures talking to endpoints: connect_error, connect_timeout, read_timeout, reset, "
            "bad_response.",
            labels=["ingress", "service", "kind"],
        )
        for (ingress, service, kind), n in sorted(snap.upstream_errors.items()):
            errors.add_metric([ingress, service, kind], n)
        yield errors
        yield GaugeMetricFamily(
            "kexpose_proxy_active_connections",
            "Open client connections.",
            value=snap.active_connections,
        )
        yield CounterMetricFamily(
            "kexpose_proxy_route_table_reloads", "Route tables swapped in.", value=snap.reloads
        )
        mirrors = CounterMetricFamily(
            "kexpose_proxy_mirror_requests",
            "Request mirrors' copies by outcome: sent (went out whole), failed (the endpoint "
            "refused, reset or timed out), dropped (not started or cut off by a limit).",
            labels=["outcome"],
        )
        m = snap.mirrors
        for outcome, n in (("sent", m.sent), ("failed", m.failed), ("dropped", m.dropped)):
            mirrors.add_metric([outcome], n)
        yield mirrors
        yield GaugeMetricFamily(
            "kexpose_proxy_mirror_requests_in_flight",
            "Request mirrors' copies on their way.",
            value=m.in_flight,
        )


def _cumulative(counts: Iterable[float]) -> list[tuple[str, float]]:
    bounds = [*(repr(b) for b in LATENCY_BUCKETS), "+Inf"]
    out: list[tuple[str, float]] = []
    total = 0.0
    for bound, n in zip(bounds, counts, strict=True):
        total += n
        out.append((bound, total))
    return out
