"""The proxy's /metrics (Prometheus text format 0.0.4) and /healthz.

Sync metrics carry kube-proxy's names, so a dashboard or a learner's PromQL written for
kube-proxy reads them: kubeproxy_sync_proxy_rules_duration_seconds (a histogram of one
Service's reconcile here, the whole rule set there), ..._last_timestamp_seconds,
..._endpoint_changes_total and ..._service_changes_total, and
kubeproxy_network_programming_duration_seconds: from the change that triggered an
EndpointSlice write (its endpoints.kubernetes.io/last-change-trigger-time, e.g. a pod
turning unready) to the proxy using the new endpoints, the networking SLI of Kubernetes. What only a userspace proxy
has is under mkp_proxy_*: open listeners, connections (TCP) or flows (UDP) per Service
port, refusals by reason, active connections.

/healthz answers as kube-proxy's health server does: JSON with lastUpdated and
currentTime, 200 once the caches have synced and a sync has run, 503 before.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from datetime import UTC, datetime

SYNC_BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
                8.192, 16.384)  # kube-proxy's: exponential from 1 ms
PROGRAMMING_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)  # coarser than
# kube-proxy's 0.25 s steps: a userspace proxy is programmed in milliseconds, not seconds


class Histogram:
    """Cumulative buckets, sum and count, as Prometheus histograms are exposed."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.sum += value
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            self.counts[index] += 1

    def samples(self, name: str) -> list[tuple[str, dict[str, str], float]]:
        cumulative, out = 0, []
        for bound, count in zip(self.buckets, self.counts, strict=True):
            cumulative += count
            out.append((f"{name}_bucket", {"le": _number(bound)}, float(cumulative)))
        return out + [(f"{name}_bucket", {"le": "+Inf"}, float(self.count)), (f"{name}_sum", {}, self.sum),
                      (f"{name}_count", {}, float(self.count))]


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(pairs.items()))
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class ProxyMetrics:
    """Counters the proxy updates as it works; `render()` is the /metrics body."""

    def __init__(self) -> None:
        self.sync = Histogram(SYNC_BUCKETS)
        self.programming = Histogram(PROGRAMMING_BUCKETS)
        self.last_sync: float | None = None  # wall clock, seconds
        self.endpoint_changes = 0
        self.service_changes = 0
        self.listeners = 0
        self.listener_failures: dict[str, int] = defaultdict(int)  # by protocol
        self.connections: dict[tuple[str, str], int] = defaultdict(int)  # (service port, protocol)
        self.refused: dict[tuple[str, str], int] = defaultdict(int)  # (service port, reason)
        self.active_connections: dict[str, int] = defaultdict(int)

    # -- updates --------------------------------------------------------------------------
    def synced(self, seconds: float) -> None:
        self.sync.observe(seconds)
        self.last_sync = time.time()

    def connection(self, service: str, protocol: str) -> None:
        self.connections[(service, protocol)] += 1

    def rejected(self, service: str, reason: str) -> None:
        self.refused[(service, reason)] += 1

    def active(self, service: str, delta: int) -> None:
        self.active_connections[service] += delta

    # -- exposition -----------------------------------------------------------------------
    def render(self) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[tuple[str, dict[str, str], float]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{sample}{_labels(labels)} {_number(value)}" for sample, labels, value in samples)

        name = "kubeproxy_sync_proxy_rules_duration_seconds"
        family(name, "histogram", "[ALPHA] SyncProxyRules latency in seconds", self.sync.samples(name))
        name = "kubeproxy_network_programming_duration_seconds"
        family(name, "histogram", "[ALPHA] In Cluster Network Programming Latency in seconds",
               self.programming.samples(name))
        name = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
        family(name, "gauge", "[ALPHA] The last time proxy rules were successfully synced",
               [(name, {}, self.last_sync or 0.0)])
        name = "kubeproxy_sync_proxy_rules_endpoint_changes_total"
        family(name, "counter", "[ALPHA] Cumulative proxy rules Endpoint changes",
               [(name, {}, float(self.endpoint_changes))])
        name = "kubeproxy_sync_proxy_rules_service_changes_total"
        family(name, "counter", "[ALPHA] Cumulative proxy rules Service changes",
               [(name, {}, float(self.service_changes))])
        name = "mkp_proxy_listeners"
        family(name, "gauge", "Open listening sockets (frontends)", [(name, {}, float(self.listeners))])
        name = "mkp_proxy_listener_failures_total"
        family(name, "counter", "Frontends that could not be bound",
               [(name, {"protocol": p}, float(n)) for p, n in sorted(self.listener_failures.items())])
        name = "mkp_proxy_connections_total"
        family(name, "counter", "Connections (TCP) and flows (UDP) sent to an endpoint, per Service port",
               [(name, {"service": s, "protocol": p}, float(n)) for (s, p), n in sorted(self.connections.items())])
        name = "mkp_proxy_connections_refused_total"
        family(name, "counter", "Connections and flows not forwarded, by reason",
               [(name, {"service": s, "reason": r}, float(n)) for (s, r), n in sorted(self.refused.items())])
        name = "mkp_proxy_active_connections"
        family(name, "gauge", "Connections and flows open now, per Service port",
               [(name, {"service": s}, float(n)) for s, n in sorted(self.active_connections.items())])
        return "\n".join(out) + "\n"

    def healthz(self, synced: bool) -> tuple[int, dict[str, str]]:
        """(status code, body) as kube-proxy's /healthz."""
        now = datetime.now(UTC)
        last = datetime.fromtimestamp(self.last_sync, UTC) if self.last_sync else None
        body = {"lastUpdated": (last or now).isoformat(), "currentTime": now.isoformat()}
        return (200 if synced and last is not None else 503), body


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
