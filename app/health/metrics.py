"""Prometheus metrics, correct under several gunicorn workers.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``gunicorn.conf.py`` sets it), every worker writes its
samples to files there and a scrape on any worker aggregates all of them; without it (the
development server, tests) the process's own registry is served.
"""

from __future__ import annotations

import os

# Empty means unset (.env.example leaves it empty): prometheus_client takes the mere presence of
# the name for multiprocess mode, and would write its sample files into the current directory.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# In multiprocess mode the metrics below open their sample files there as they are defined:
# a directory that is named but missing is made, rather than every command failing.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

LABELS = ("method", "endpoint", "status")

REQUESTS = Counter("http_requests_total", "HTTP requests handled.", LABELS)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time spent handling HTTP requests.",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
POOL_SIZE = Gauge("db_pool_size", "Connections the pool keeps.", multiprocess_mode="livesum")
POOL_CHECKED_OUT = Gauge("db_pool_checked_out", "Connections in use.", multiprocess_mode="livesum")
POOL_OVERFLOW = Gauge(
    "db_pool_overflow", "Connections opened beyond the pool size.", multiprocess_mode="livesum"
)


# the methods this API answers; any other (a client may send any token) is counted as "other",
# so that no client can add label values, and series, at will
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(method: str, endpoint: str, status: int, seconds: float) -> None:
    labels = (method if method in METHODS else "other", endpoint, str(status))
    REQUESTS.labels(*labels).inc()
    LATENCY.labels(*labels).observe(seconds)


def observe_pool() -> None:
    from app.extensions import db

    pool = db.engine.pool
    size = getattr(pool, "size", None)
    if size is None:  # pools without a fixed size (SQLite's) report nothing meaningful
        return
    POOL_SIZE.set(pool.size())
    POOL_CHECKED_OUT.set(pool.checkedout())
    POOL_OVERFLOW.set(max(pool.overflow(), 0))


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
