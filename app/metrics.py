"""Prometheus metrics: the compute gate, requests by route and status, latency by route and
format, cache sizes, and the process (memory, CPU, file descriptors).

Each app has its own `CollectorRegistry` (two apps in one process, as in the tests, count
apart). The gate and the caches are read when /metrics is scraped, not counted as they
change, so nothing on a request's path pays for them. Requests are counted by `Measure`, a
middleware outside the one that refuses foreign pages and hosts (so its 403s are counted)
and inside main.HeadAsGet (so a HEAD is counted as the GET it is answered as, on its
route). Labels take a bounded set of values: a route's template, never the path a client
sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Gate numbers (ComputeGate.snapshot keys) exported as onebyone_admission_<name>.
ADMISSION = {
    "admitted": ("admitted", "Requests admitted now: receiving, waiting, computing or sending."),
    "computing": ("computing", "Threads computing now (at most slots)."),
    "waiting": ("waiting_for_slot", "Jobs queued for a compute thread."),
    "capacity": ("capacity", "Requests admitted at most (ONEBYONE_COMPUTE_SLOTS + QUEUE_LIMIT)."),
    "slots": ("slots", "Compute threads (ONEBYONE_COMPUTE_SLOTS)."),
    "abandoned": ("abandoned", "Requests over whose thread is still finishing a step."),
}

# Seconds: a small JSON comparison takes milliseconds, a fit up to the time budget (60 s).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
FORMATS = {
    "application/json": "json",
    "image/png": "png",
    "application/x-npz": "npz",
    "text/event-stream": "sse",
    "text/html": "html",
    "text/plain": "text",  # /metrics itself
    "application/openmetrics-text": "text",
}


class Measured(Protocol):
    size: int  # bytes held
    limit: int  # bytes allowed

    def __len__(self) -> int: ...


# The caches (anything with `size` and `limit` in bytes and a length), each found from the
# app's state: one line here per cache.
CACHES: dict[str, Callable[[Any], Measured | None]] = {
    "generated": lambda state: state.sources.generated,
    "network": lambda state: state.sources.trained and state.sources.trained.cache,
}


class _Live(Collector):
    """The gate and the caches, as they are at the scrape."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        gate = getattr(self.state, "gate", None)  # None before the lifespan has started
        if gate is not None:
            snap = gate.snapshot()
            for name, (key, text) in ADMISSION.items():
                yield GaugeMetricFamily(f"onebyone_admission_{name}", text, value=snap[key])
            draining = "1 while shutting down: nothing more is admitted (app.drain)."
            yield GaugeMetricFamily("onebyone_draining", draining, value=int(snap["draining"]))
        held = GaugeMetricFamily("onebyone_cache_bytes", "Bytes a cache holds.", labels=["cache"])
        limit = GaugeMetricFamily(
            "onebyone_cache_limit_bytes", "Bytes a cache may hold.", labels=["cache"]
        )
        entries = GaugeMetricFamily("onebyone_cache_entries", "Items in a cache.", labels=["cache"])
        sources = getattr(self.state, "sources", None)  # None before the lifespan has started
        for name, find in CACHES.items():
            cache = None if sources is None else find(self.state)
            if cache is not None:
                held.add_metric([name], cache.size)
                limit.add_metric([name], cache.limit)
                entries.add_metric([name], len(cache))
        yield from (held, limit, entries)


class Metrics:
    """One app's registry and the request metrics `Measure` records."""

    def __init__(self, state: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "onebyone_requests",
            "Requests answered, by route template, method and status (499: the client left "
            "before an answer started).",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "onebyone_request_duration_seconds",
            "Whole requests, from their head to their answer's last byte, by route template "
            "and the format answered (json, png, npz, sse, html, text, other; error for 4xx/5xx).",
            ["route", "format"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Live(state))
        ProcessCollector(registry=self.registry)


def _route(scope: Scope) -> str:
    """The template of the route that answered, as routing left it in the scope: bounded,
    unlike the path. A mount (static files) leaves its path as the root path; a request no
    route took (404, or refused before routing) is "unmatched"."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    if "app_root_path" in scope:
        return str(scope["root_path"])[len(scope["app_root_path"]) :]
    return "unmatched"


def _format(status: int, content_type: str) -> str:
    if status >= 400:
        return "error"
    return FORMATS.get(content_type.split(";")[0].strip().lower(), "other")


class Measure:
    """Count every HTTP request and time it to its last byte (the outermost middleware)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 499
        content_type = ""

        async def measured_send(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers", []))
                content_type = headers.get(b"content-type", b"").decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, measured_send)
        except Exception:
            status = 500
            raise
        finally:
            route = _route(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, _format(status, content_type)).observe(
                time.perf_counter() - started
            )


def instrument(app: Any) -> None:
    """Give `app` its metrics (app.state.metrics) and count its requests from here on the
    middleware stack (see the module doc)."""
    app.state.metrics = Metrics(app.state)
    app.add_middleware(Measure, metrics=app.state.metrics)
