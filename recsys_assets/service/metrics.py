"""What the service exposes on `/metrics` (Prometheus text, prometheus-client), and the ASGI middleware that times requests.

Every app gets its own registry, so two apps in one process (tests) never share a counter.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Requests are answered in about a millisecond: the buckets resolve the 20 ms p99 target and what lies past it.
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Requests that matched no route share one label value: raw paths would make a label per scanner probe.
UNMATCHED = "unmatched"
# Any other method (HTTP allows made-up ones) is counted as "other", for the same reason.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """The service's counters, histograms and gauges, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Resident memory, CPU seconds and open files of the process, under the standard process_* names.
        ProcessCollector(registry=self.registry)
        labels = ("route", "method", "status")
        self.requests = Counter(
            "recsys_http_requests",
            "HTTP requests answered, by route template, method and status.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "recsys_http_request_duration_seconds",
            "Time from the request reaching the app to the end of its response, by route template, method and status.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "recsys_serving_model_info",
            "1 for the model version being served (labels say which); absent while none is.",
            ("model_name", "version", "family"),
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "recsys_serving_model_loaded_timestamp_seconds",
            "When the served version was swapped in (Unix time).",
            registry=self.registry,
        )
        self.reloads = Counter(
            "recsys_serving_reloads",
            "Champion loads: success (swapped in) or failure (refused, or the store unreachable).",
            ("outcome",),
            registry=self.registry,
        )
        self.catalogue_refreshes = Counter(
            "recsys_serving_catalogue_refreshes",
            "Reads of the day's catalogue snapshot (which postings are closed): success or failure.",
            ("outcome",),
            registry=self.registry,
        )
        self.closed_items = Gauge(
            "recsys_serving_closed_items",
            "Items of the served model never recommended because their posting is closed.",
            registry=self.registry,
        )
        self.lists = Counter(
            "recsys_serving_lists",
            "Lists returned, by route template and source (model or fallback).",
            ("route", "source"),
            registry=self.registry,
        )
        self.unknown_history_items = Counter(
            "recsys_serving_unknown_history_items",
            "Item ids in posted histories that the served model's catalogue does not hold (ignored).",
            registry=self.registry,
        )
        for outcome in ("success", "failure"):
            self.reloads.labels(outcome)
            self.catalogue_refreshes.labels(outcome)
        self._served: tuple[str, str, str] | None = None
        # Each request's series, looked up once per label set rather than per request (`labels()` validates
        # and locks). The label values are bounded: route templates, known methods, statuses, two sources.
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._list_series: dict[tuple[str, str], Any] = {}

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request: counted and timed under its route template, method and status."""
        series = self._request_series.get((route, method, status))
        if series is None:
            labels = (route, method, str(status))
            series = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._request_series[(route, method, status)] = series
        series[0].inc()
        series[1].observe(seconds)

    def listed(self, route: str, source: str) -> None:
        """One list returned by `route`, from `source` (model or fallback)."""
        series = self._list_series.get((route, source))
        if series is None:
            series = self._list_series[(route, source)] = self.lists.labels(route, source)
        series.inc()

    def serving(self, model_name: str, version: str, family: str) -> None:
        """The version now served: its info series replaces the previous one's."""
        if self._served is not None:
            self.model_info.remove(*self._served)
        self._served = (model_name, version, family)
        self.model_info.labels(*self._served).set(1)
        self.model_loaded.set(time.time())

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by its route template and status."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # Starlette's router leaves the matched route in the scope; its path is the template.
            route = getattr(scope.get("route"), "path", UNMATCHED)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.request(route, method, status, time.perf_counter() - started)
