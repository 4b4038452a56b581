"""The controller's Prometheus metrics and health check, on their own listener
(--metrics-bind-address, default 127.0.0.1:10254 as ingress-nginx's /metrics and /healthz).

Names and labels follow ingress-nginx, so its dashboards' queries read the same:
nginx_ingress_controller_requests{controller_class, namespace, ingress, service, status,
method, host, path} (path is the matched Ingress path, not the request's: bounded
cardinality), nginx_ingress_controller_request_duration_seconds, and the configuration
reload counters (here: routing table rebuilds).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LABELS = ("controller_class", "namespace", "ingress", "service", "status", "method", "host", "path")


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    parts = [f'{n}="{esc(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


@dataclass
class Metrics:
    controller_class: str
    requests: dict[tuple[str, ...], int] = field(default_factory=lambda: defaultdict(int))
    durations: dict[tuple[str, ...], list[float]] = field(default_factory=dict)  # buckets..., sum, count
    reloads: int = 0
    reload_errors: int = 0
    last_reload_ok: bool = True
    last_reload_time: float = 0.0

    def observe(self, *, namespace: str, ingress: str, service: str, status: int, method: str, host: str,
                path: str, seconds: float) -> None:
        key = (self.controller_class, namespace, ingress, service, str(status), method, host, path)
        self.requests[key] += 1
        series = self.durations.setdefault(key[:4] + key[5:], [0.0] * (len(BUCKETS) + 2))
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                series[i] += 1
        series[-2] += seconds
        series[-1] += 1

    def reloaded(self, ok: bool) -> None:
        self.reloads += 1
        self.reload_errors += 0 if ok else 1
        self.last_reload_ok = ok
        self.last_reload_time = time.time()

    def render(self) -> str:
        out = ["# HELP nginx_ingress_controller_requests The total number of client requests",
               "# TYPE nginx_ingress_controller_requests counter"]
        out += [f"nginx_ingress_controller_requests{_labels(LABELS, k)} {v}" for k, v in sorted(self.requests.items())]
        name = "nginx_ingress_controller_request_duration_seconds"
        names = LABELS[:4] + LABELS[5:]
        out += [f"# HELP {name} The request processing time in seconds", f"# TYPE {name} histogram"]
        for key, series in sorted(self.durations.items()):
            bounds = [*(str(b) for b in BUCKETS), "+Inf"]
            counts = [*series[:len(BUCKETS)], series[-1]]
            for bound, count in zip(bounds, counts, strict=True):
                le = f'le="{bound}"'
                out.append(f"{name}_bucket{_labels(names, key, le)} {count:g}")
            out.append(f"{name}_sum{_labels(names, key)} {series[-2]}")
            out.append(f"{name}_count{_labels(names, key)} {series[-1]:g}")
        out += [
            "# HELP nginx_ingress_controller_success Cumulative number of successful configuration reloads",
            "# TYPE nginx_ingress_controller_success counter",
            f"nginx_ingress_controller_success {self.reloads - self.reload_errors}",
            "# HELP nginx_ingress_controller_errors Cumulative number of failed configuration reloads",
            "# TYPE nginx_ingress_controller_errors counter",
            f"nginx_ingress_controller_errors {self.reload_errors}",
            "# HELP nginx_ingress_controller_config_last_reload_successful Whether the last reload succeeded",
            "# TYPE nginx_ingress_controller_config_last_reload_successful gauge",
            f"nginx_ingress_controller_config_last_reload_successful {int(self.last_reload_ok)}",
            "# HELP nginx_ingress_controller_config_last_reload_successful_timestamp_seconds Time of the last reload",
            "# TYPE nginx_ingress_controller_config_last_reload_successful_timestamp_seconds gauge",
            f"nginx_ingress_controller_config_last_reload_successful_timestamp_seconds {self.last_reload_time:.3f}",
        ]
        return "\n".join(out) + "\n"


def metrics_app(metrics: Metrics, healthy: Callable[[], bool]) -> web.Application:
    """/healthz (200 once the caches synced and the listeners are up, else 500) and /metrics."""
    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok") if healthy() else web.Response(status=500, text="not ready")

    async def render(_request: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", render)
    return app
