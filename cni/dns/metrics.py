"""CoreDNS's Prometheus metrics, health and readiness, on one small HTTP listener.

The names and labels are CoreDNS's (plugin/metrics), so dashboards and alerts written
for a real cluster read these too:

    coredns_dns_requests_total{server, zone, view, proto, family, type}
    coredns_dns_responses_total{server, zone, view, rcode, plugin}
    coredns_dns_request_duration_seconds{server, zone, view, type}   histogram, buckets
        0.25 ms doubling to 8.192 s (CoreDNS's plugin.TimeBuckets)

`type` is the query type for the types CoreDNS names, `other` for the rest. Every query
enters the server block ".", so `zone` is "."; `plugin` is "kubernetes" for what the
cluster zone answered and empty for the SERVFAIL at the end of the chain.

CoreDNS serves /health (health plugin, :8080) and /ready (ready plugin, :8181) apart from
/metrics (:9153); `mkp dns` runs on the host, not in a pod, so one address serves all
three. /ready is 503 naming the `kubernetes` plugin until the caches have synced.

Counting is a dict increment per query; the text is rendered only when scraped.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from aiohttp import web

from cni.dns import wire

BUCKETS = tuple(0.00025 * 2 ** i for i in range(16))
TYPE_NAMES = {wire.A: "A", wire.AAAA: "AAAA", wire.MX: "MX", wire.SOA: "SOA", wire.CNAME: "CNAME",
              wire.PTR: "PTR", wire.TXT: "TXT", wire.NS: "NS", wire.SRV: "SRV", 43: "DS", 48: "DNSKEY",
              46: "RRSIG", 47: "NSEC", 50: "NSEC3", 65: "HTTPS", wire.IXFR: "IXFR", wire.AXFR: "AXFR",
              wire.ANY: "ANY"}
ZONE = "."


class Metrics:
    """The counters of one server process."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, str], int] = {}  # server, proto, family, type
        self.responses: dict[tuple[str, str, str], int] = {}  # server, rcode, plugin
        self.durations: dict[tuple[str, str], list[float]] = {}  # server, type -> buckets.., +Inf, sum

    def observe(self, server: str, proto: str, family: str, qtype: int, rcode: int, plugin: str,
                seconds: float) -> None:
        name = TYPE_NAMES.get(qtype, "other")
        key = (server, proto, family, name)
        self.requests[key] = self.requests.get(key, 0) + 1
        rkey = (server, wire.RCODE_NAMES.get(rcode, str(rcode)), plugin)
        self.responses[rkey] = self.responses.get(rkey, 0) + 1
        hist = self.durations.get((server, name))
        if hist is None:
            hist = self.durations[(server, name)] = [0.0] * (len(BUCKETS) + 2)
        hist[bisect.bisect_left(BUCKETS, seconds)] += 1
        hist[-1] += seconds

    def total_requests(self) -> int:
        return sum(self.requests.values())

    def render(self) -> str:
        lines = ["# HELP coredns_dns_requests_total Counter of DNS requests made per zone, protocol and family.",
                 "# TYPE coredns_dns_requests_total counter"]
        for (server, proto, family, qtype), n in sorted(self.requests.items()):
            lines.append(f'coredns_dns_requests_total{{family="{family}",proto="{proto}",server="{server}",'
                         f'type="{qtype}",view="",zone="{ZONE}"}} {n}')
        lines += ["# HELP coredns_dns_responses_total Counter of response status codes.",
                  "# TYPE coredns_dns_responses_total counter"]
        for (server, rcode, plugin), n in sorted(self.responses.items()):
            lines.append(f'coredns_dns_responses_total{{plugin="{plugin}",rcode="{rcode}",server="{server}",'
                         f'view="",zone="{ZONE}"}} {n}')
        lines += ["# HELP coredns_dns_request_duration_seconds Histogram of the time (in seconds) each request took "
                  "per zone.", "# TYPE coredns_dns_request_duration_seconds histogram"]
        for (server, qtype), hist in sorted(self.durations.items()):
            labels = f'server="{server}",type="{qtype}",view="",zone="{ZONE}"'
            cumulative = 0.0
            for bound, count in zip(BUCKETS, hist, strict=False):
                cumulative += count
                lines.append(f'coredns_dns_request_duration_seconds_bucket{{{labels},le="{bound:g}"}} {cumulative:g}')
            cumulative += hist[len(BUCKETS)]
            lines.append(f'coredns_dns_request_duration_seconds_bucket{{{labels},le="+Inf"}} {cumulative:g}')
            lines.append(f"coredns_dns_request_duration_seconds_sum{{{labels}}} {hist[-1]:.9g}")
            lines.append(f"coredns_dns_request_duration_seconds_count{{{labels}}} {cumulative:g}")
        return "\n".join(lines) + "\n"


def http_app(metrics: Metrics, ready: Callable[[], bool]) -> web.Application:
    """/metrics, /health ("OK" while the process serves) and /ready (200 "OK" once synced)."""

    async def get_metrics(_: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def get_health(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def get_ready(_: web.Request) -> web.Response:
        if ready():
            return web.Response(text="OK")
        return web.Response(status=503, text="kubernetes")

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/health", get_health)
    app.router.add_get("/ready", get_ready)
    return app
