"""Request counts and latencies per route, for ``GET /metrics``; optional OpenTelemetry spans.

>>> m = Metrics()
>>> m.record("/search", 200, 0.004); m.record("/search", 400, 0.001)
>>> s = m.snapshot()["routes"]["/search"]
>>> s["count"], s["errors"], s["by_status"]
(2, 1, {'200': 1, '400': 1})
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

WINDOW = 4096  # latencies kept per route for the percentiles (the newest)


class _Route:
    __slots__ = ("count", "errors", "by_status", "seconds", "recent")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.by_status: dict[str, int] = {}
        self.seconds = 0.0
        self.recent: deque[float] = deque(maxlen=WINDOW)


class Metrics:
    """Thread-safe counters: per route, requests by status, total time, p50/p90/p99 of the
    newest :data:`WINDOW` requests."""

    def __init__(self) -> None:
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        self.started = time.time()

    def record(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            r = self._routes.get(route)
            if r is None:
                r = self._routes[route] = _Route()
            r.count += 1
            r.errors += status >= 400
            r.by_status[str(status)] = r.by_status.get(str(status), 0) + 1
            r.seconds += seconds
            r.recent.append(seconds)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            routes = {}
            for name, r in sorted(self._routes.items()):
                lat = np.array(r.recent) * 1000.0
                p50, p90, p99 = (
                    np.percentile(lat, [50, 90, 99]).round(3).tolist()
                    if len(lat)
                    else (None, None, None)
                )
                routes[name] = {
                    "count": r.count,
                    "errors": r.errors,
                    "by_status": dict(sorted(r.by_status.items())),
                    "mean_ms": round(r.seconds / r.count * 1000.0, 3),
                    "p50_ms": p50,
                    "p90_ms": p90,
                    "p99_ms": p99,
                }
        return {"uptime_s": round(time.time() - self.started, 3), "routes": routes}


@contextlib.contextmanager
def span(tr: Any, name: str, **attributes: Any) -> Iterator[None]:
    """A span named ``name`` (no-op without a tracer)."""
    if tr is None:
        yield
        return
    with tr.start_as_current_span(
        name, attributes={k: v for k, v in attributes.items() if v is not None}
    ):
        yield
