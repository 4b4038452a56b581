"""Envoy's own stats: counters and gauges by dotted name, `/stats` and `/stats/prometheus`.

Names are Envoy's (`cluster.<name>.upstream_rq_total`, `upstream_rq_200`,
`upstream_rq_2xx`, `upstream_cx_active`, `http.<stat_prefix>.downstream_rq_total` ...),
so what a learner reads in Envoy's docs is what our admin page shows. A stat is a small
slotted object created once and kept by its owner (`ClusterStats`, `HttpStats`), so the
request path only does `stat.value += 1`; no name is formatted per request.

`/stats/prometheus` names follow Envoy's default tag extraction for the common stats:
the cluster name (`envoy_cluster_name`), the HTTP connection manager's stat prefix
(`envoy_http_conn_manager_prefix`), the listener address (`envoy_listener_address`),
the response code (`upstream_rq_503` -> `envoy_cluster_upstream_rq{envoy_response_code=
"503"}`) and the code class (`upstream_rq_5xx` -> `envoy_cluster_upstream_rq_xx
{envoy_response_code_class="5"}`). Scope names are known when they are registered, so a
cluster name with dots (Istio's `outbound|80||a.b.svc.cluster.local`) is extracted whole,
which Envoy's default regex (first dot) would split.
"""

from __future__ import annotations

import re


class Stat:
    """One counter or gauge; `value` is updated in place by its owner."""

    __slots__ = ("name", "kind", "value", "prom_name", "tags")

    def __init__(self, name: str, kind: str, prom_name: str, tags: tuple[tuple[str, str], ...]) -> None:
        self.name, self.kind, self.value = name, kind, 0
        self.prom_name, self.tags = prom_name, tags

    def inc(self, n: int = 1) -> None:
        self.value += n

    def dec(self, n: int = 1) -> None:
        self.value -= n


_SCOPE_TAGS = {"cluster": "envoy_cluster_name", "http": "envoy_http_conn_manager_prefix",
               "listener": "envoy_listener_address", "tcp": "envoy_tcp_prefix"}
_CODE = re.compile(r"_rq_(\d{3})$")
_CLASS = re.compile(r"_rq_(\d)xx$")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


class StatsStore:
    """All counters and gauges of one proxy, by name."""

    def __init__(self) -> None:
        self.stats: dict[str, Stat] = {}

    def _get(self, kind: str, scope: str, scope_name: str, stat: str) -> Stat:
        name = f"{scope}.{scope_name}.{stat}" if scope_name else f"{scope}.{stat}"
        found = self.stats.get(name)
        if found is not None:
            if found.kind != kind:
                raise ValueError(f"stat {name} is a {found.kind}, not a {kind}")
            return found
        tags: list[tuple[str, str]] = []
        m = _CODE.search(stat) or _CLASS.search(stat)
        if m is not None:
            tag = "envoy_response_code" if m.re is _CODE else "envoy_response_code_class"
            tags.append((tag, m.group(1)))
            stat = stat[: m.start()] + ("_rq" if m.re is _CODE else "_rq_xx")
        if scope_name:
            tags.append((_SCOPE_TAGS.get(scope, f"envoy_{scope}_name"), scope_name))
        prom = "envoy_" + _UNSAFE.sub("_", f"{scope}.{stat}")
        s = self.stats[name] = Stat(name, kind, prom, tuple(tags))
        return s

    def counter(self, scope: str, scope_name: str, stat: str) -> Stat:
        """`counter("cluster", "backend", "upstream_rq_total")` is `cluster.backend.upstream_rq_total`;
        an empty scope_name gives `<scope>.<stat>` (e.g. `server.` stats)."""
        return self._get("counter", scope, scope_name, stat)

    def gauge(self, scope: str, scope_name: str, stat: str) -> Stat:
        return self._get("gauge", scope, scope_name, stat)

    def value(self, name: str) -> int:
        s = self.stats.get(name)
        return s.value if s is not None else 0

    def render_text(self, filter: str | None = None) -> str:
        """Envoy's `/stats`: `name: value` lines sorted by name (`filter` is a regex)."""
        rx = re.compile(filter) if filter else None
        return "".join(f"{n}: {s.value}\n" for n, s in sorted(self.stats.items())
                       if rx is None or rx.search(n))

    def render_prometheus(self) -> str:
        """Envoy's `/stats/prometheus`: one `# TYPE` per family, tags as labels."""
        families: dict[str, list[Stat]] = {}
        for s in self.stats.values():
            families.setdefault(s.prom_name, []).append(s)
        lines = []
        for prom in sorted(families):
            group = families[prom]
            lines.append(f"# TYPE {prom} {group[0].kind}")
            for s in group:
                labels = ",".join(f'{k}="{v}"' for k, v in s.tags)
                lines.append(f"{prom}{{{labels}}} {s.value}")
        return "\n".join(lines) + "\n" if lines else ""


class ClusterStats:
    """`cluster.<name>.*`: what the upstream side of a route counts."""

    def __init__(self, store: StatsStore, name: str) -> None:
        self.store, self.name = store, name
        c = lambda stat: store.counter("cluster", name, stat)  # noqa: E731
        g = lambda stat: store.gauge("cluster", name, stat)  # noqa: E731
        self.upstream_rq_total = c("upstream_rq_total")
        self.upstream_rq_completed = c("upstream_rq_completed")
        self.upstream_rq_active = g("upstream_rq_active")
        self.upstream_rq_pending_active = g("upstream_rq_pending_active")
        self.upstream_rq_pending_overflow = c("upstream_rq_pending_overflow")
        self.upstream_rq_retry = c("upstream_rq_retry")
        self.upstream_rq_retry_overflow = c("upstream_rq_retry_overflow")
        self.upstream_rq_timeout = c("upstream_rq_timeout")
        self.upstream_rq_per_try_timeout = c("upstream_rq_per_try_timeout")
        self.upstream_cx_total = c("upstream_cx_total")
        self.upstream_cx_active = g("upstream_cx_active")
        self.upstream_cx_connect_fail = c("upstream_cx_connect_fail")
        self.upstream_cx_connect_timeout = c("upstream_cx_connect_timeout")
        self.upstream_cx_overflow = c("upstream_cx_overflow")
        self.upstream_cx_destroy = c("upstream_cx_destroy")
        self.upstream_cx_tx_bytes_total = c("upstream_cx_tx_bytes_total")
        self.upstream_cx_rx_bytes_total = c("upstream_cx_rx_bytes_total")
        self.outlier_detection_ejections_active = g("outlier_detection.ejections_active")
        self.outlier_detection_ejections_enforced_total = c("outlier_detection.ejections_enforced_total")
        self.membership_healthy = g("membership_healthy")
        self.membership_total = g("membership_total")
        self._codes: dict[int, tuple[Stat, Stat]] = {}

    def response(self, code: int) -> None:
        """A completed upstream response: `upstream_rq_<code>`, `upstream_rq_<c>xx`, completed."""
        pair = self._codes.get(code)
        if pair is None:
            pair = self._codes[code] = (self.store.counter("cluster", self.name, f"upstream_rq_{code}"),
                                        self.store.counter("cluster", self.name, f"upstream_rq_{code // 100}xx"))
        pair[0].value += 1
        pair[1].value += 1
        self.upstream_rq_completed.value += 1


class HttpStats:
    """`http.<stat_prefix>.*`: the HTTP connection manager's downstream side."""

    def __init__(self, store: StatsStore, stat_prefix: str) -> None:
        c = lambda stat: store.counter("http", stat_prefix, stat)  # noqa: E731
        g = lambda stat: store.gauge("http", stat_prefix, stat)  # noqa: E731
        self.downstream_rq_total = c("downstream_rq_total")
        self.downstream_rq_active = g("downstream_rq_active")
        self.downstream_rq_http1_total = c("downstream_rq_http1_total")
        self.downstream_rq_http2_total = c("downstream_rq_http2_total")
        self.downstream_cx_http1_total = c("downstream_cx_http1_total")
        self.downstream_cx_http1_active = g("downstream_cx_http1_active")
        self.downstream_cx_http2_total = c("downstream_cx_http2_total")
        self.downstream_cx_http2_active = g("downstream_cx_http2_active")
        self.downstream_rq_timeout = c("downstream_rq_timeout")
        self.downstream_cx_total = c("downstream_cx_total")
        self.downstream_cx_active = g("downstream_cx_active")
        self.downstream_cx_ssl_total = c("downstream_cx_ssl_total")
        self.downstream_cx_destroy = c("downstream_cx_destroy")
        self.rq_direct_response = c("rq_direct_response")
        self.rq_redirect = c("rq_redirect")
        self.no_route = c("no_route")
        self.rs_too_large = c("rs_too_large")
        self._classes = {k: c(f"downstream_rq_{k}xx") for k in range(1, 6)}

    def response(self, code: int) -> None:
        """A response sent downstream: `downstream_rq_<c>xx` (Envoy keeps no per-code stat here)."""
        stat = self._classes.get(code // 100)
        if stat is not None:
            stat.value += 1
