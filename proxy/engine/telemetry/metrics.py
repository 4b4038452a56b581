"""A small Prometheus registry and Istio's standard metrics.

Flagger and dashboards query Istio's metrics by exact name and label, so the names,
labels and unknown-values ("unknown") are Istio's. Histograms use Envoy's default
buckets, which is what Istio's stats filter reports for durations and sizes alike:
0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
600000, 1800000, 3600000.

Recording is on the request path: a series is a dict entry keyed by the label-value
tuple; a counter adds to it, a histogram bumps one bucket slot (found by bisect) and a
running sum. `http_cells(labels)` hands out a request's four series once, so a caller
that keeps them (telemetry.istio caches them per peer, cluster, code and flags) records
a request with `record_cells`: a few list increments, no label tuple. Cumulative bucket
counts and the text format are produced only when scraped.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from decimal import Decimal

ENVOY_DEFAULT_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
                         60000, 300000, 600000, 1800000, 3600000)
UNKNOWN = "unknown"


def format_value(v: float) -> str:
    """A number as Prometheus' Go clients print it (strconv 'g', shortest): 300000,
    3.6e+06, 0.5, +Inf."""
    if v == math.inf:
        return "+Inf"
    if v == -math.inf:
        return "-Inf"
    if v != v:
        return "NaN"
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    sign, digits, exp = Decimal(repr(float(v))).normalize().as_tuple()
    assert isinstance(exp, int)
    x = len(digits) + exp - 1  # decimal exponent of the first digit
    if -4 <= x < 6:
        return repr(float(v))
    d = "".join(map(str, digits))
    mant = d[0] + ("." + d[1:] if len(d) > 1 else "")
    return f"{'-' if sign else ''}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Counter:
    """A counter family: `inc(labels)` where labels is the tuple of label values; a series
    is a one-slot list so a caller may keep it and add to it directly."""

    kind = "counter"
    __slots__ = ("name", "help", "label_names", "series")

    def __init__(self, name: str, help: str, label_names: tuple[str, ...]) -> None:
        self.name, self.help, self.label_names = name, help, label_names
        self.series: dict[tuple[str, ...], list[float]] = {}

    def cell(self, labels: tuple[str, ...]) -> list[float]:
        s = self.series.get(labels)
        if s is None:
            s = self.series[labels] = [0]
        return s

    def inc(self, labels: tuple[str, ...], value: float = 1) -> None:
        self.cell(labels)[0] += value

    def value(self, labels: tuple[str, ...]) -> float:
        s = self.series.get(labels)
        return s[0] if s else 0

    def render(self) -> list[str]:
        return [f"{self.name}{_labels(self.label_names, k)} {format_value(v[0])}" for k, v in self.series.items()]


class Histogram:
    """A histogram family with fixed buckets; a series is [count per bucket..., +Inf, sum]."""

    kind = "histogram"
    __slots__ = ("name", "help", "label_names", "buckets", "series", "_width")

    def __init__(self, name: str, help: str, label_names: tuple[str, ...],
                 buckets: tuple[float, ...] = ENVOY_DEFAULT_BUCKETS) -> None:
        if list(buckets) != sorted(set(buckets)):
            raise ValueError(f"{name}: buckets must be strictly increasing")
        self.name, self.help, self.label_names, self.buckets = name, help, label_names, tuple(buckets)
        self.series: dict[tuple[str, ...], list[float]] = {}
        self._width = len(buckets) + 2

    def cell(self, labels: tuple[str, ...]) -> list[float]:
        s = self.series.get(labels)
        if s is None:
            s = self.series[labels] = [0] * self._width
        return s

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        s = self.cell(labels)
        s[bisect_left(self.buckets, value)] += 1  # first bucket whose bound >= value (le)
        s[-1] += value

    def count(self, labels: tuple[str, ...]) -> int:
        s = self.series.get(labels)
        return int(sum(s[:-1])) if s else 0

    def render(self) -> list[str]:
        out = []
        bounds = [format_value(b) for b in self.buckets] + ["+Inf"]
        for k, s in self.series.items():
            running = 0
            for bound, n in zip(bounds, s[:-1], strict=True):
                running += n
                le = 'le="' + bound + '"'
                out.append(f"{self.name}_bucket{_labels(self.label_names, k, le)} {running}")
            lab = _labels(self.label_names, k)
            out.append(f"{self.name}_sum{lab} {format_value(s[-1])}")
            out.append(f"{self.name}_count{lab} {running}")
        return out


class Registry:
    """Metric families by name; `render()` is the Prometheus text exposition (0.0.4)."""

    def __init__(self) -> None:
        self.families: dict[str, Counter | Histogram] = {}

    def _add(self, family: Counter | Histogram) -> Counter | Histogram:
        if family.name in self.families:
            raise ValueError(f"metric {family.name} is already registered")
        self.families[family.name] = family
        return family

    def counter(self, name: str, help: str, label_names: tuple[str, ...] = ()) -> Counter:
        return self._add(Counter(name, help, label_names))  # type: ignore[return-value]

    def histogram(self, name: str, help: str, label_names: tuple[str, ...] = (),
                  buckets: tuple[float, ...] = ENVOY_DEFAULT_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help, label_names, buckets))  # type: ignore[return-value]

    def render(self) -> str:
        lines: list[str] = []
        for fam in self.families.values():
            lines.append(f"# HELP {fam.name} {fam.help}")
            lines.append(f"# TYPE {fam.name} {fam.kind}")
            lines.extend(fam.render())
        return "\n".join(lines) + "\n"


WORKLOAD_LABELS = ("workload", "workload_namespace", "principal", "app", "version",
                   "canonical_service", "canonical_revision", "cluster")
SERVICE_LABELS = ("destination_service", "destination_service_name", "destination_service_namespace")
REQUEST_LABELS = ("request_protocol", "response_code", "grpc_response_status", "response_flags",
                  "connection_security_policy")
TCP_LABELS = ("request_protocol", "response_flags", "connection_security_policy")
HTTP_LABEL_NAMES = (("reporter",) + tuple(f"source_{n}" for n in WORKLOAD_LABELS)
                    + tuple(f"destination_{n}" for n in WORKLOAD_LABELS) + SERVICE_LABELS + REQUEST_LABELS)
TCP_LABEL_NAMES = HTTP_LABEL_NAMES[: -len(REQUEST_LABELS)] + TCP_LABELS
_CODES = {c: str(c) for c in range(0, 600)}
HttpCells = tuple[list[float], list[float], list[float], list[float]]


@dataclass(frozen=True)
class Workload:
    """One side's identity, as Istio labels it; `labels` is computed once."""

    workload: str = UNKNOWN
    namespace: str = UNKNOWN
    principal: str = UNKNOWN
    app: str = UNKNOWN
    version: str = UNKNOWN
    canonical_service: str = UNKNOWN
    canonical_revision: str = UNKNOWN
    cluster: str = UNKNOWN
    labels: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", (self.workload, self.namespace, self.principal, self.app,
                                            self.version, self.canonical_service,
                                            self.canonical_revision, self.cluster))


@dataclass(frozen=True)
class Service:
    """The destination service: host (`reviews.default.svc.cluster.local`), name, namespace."""

    host: str = UNKNOWN
    name: str = UNKNOWN
    namespace: str = UNKNOWN
    labels: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", (self.host, self.name, self.namespace))


UNKNOWN_WORKLOAD = Workload()
UNKNOWN_SERVICE = Service()


@dataclass(slots=True)
class RequestRecord:
    """One HTTP request as a reporter saw it. `reporter` is "source" (the client's sidecar)
    or "destination" (the server's); `connection_security_policy` is `mutual_tls` or
    `none` for the destination and `unknown` for the source, as Istio reports it."""

    reporter: str
    source: Workload
    destination: Workload
    service: Service
    response_code: int
    duration_ms: float
    request_bytes: int = 0
    response_bytes: int = 0
    response_flags: str = "-"
    request_protocol: str = "http"
    connection_security_policy: str = UNKNOWN
    grpc_response_status: str = ""


class IstioMetrics:
    """Istio's standard metrics in a registry, recorded from RequestRecords and TCP events."""

    def __init__(self, registry: Registry | None = None) -> None:
        r = self.registry = registry or Registry()
        h = HTTP_LABEL_NAMES
        self.requests_total = r.counter("istio_requests_total", "Total requests.", h)
        self.request_duration = r.histogram("istio_request_duration_milliseconds", "Request duration.", h)
        self.request_bytes = r.histogram("istio_request_bytes", "Request body sizes.", h)
        self.response_bytes = r.histogram("istio_response_bytes", "Response body sizes.", h)
        t = TCP_LABEL_NAMES
        self.tcp_sent = r.counter("istio_tcp_sent_bytes_total", "Bytes sent during TCP connections.", t)
        self.tcp_received = r.counter("istio_tcp_received_bytes_total",
                                      "Bytes received during TCP connections.", t)
        self.tcp_opened = r.counter("istio_tcp_connections_opened_total", "TCP connections opened.", t)
        self.tcp_closed = r.counter("istio_tcp_connections_closed_total", "TCP connections closed.", t)
        # label tuple -> the four HTTP series' cells: one hash per request, not four
        self._http: dict[tuple[str, ...], HttpCells] = {}

    def http_labels(self, rec: RequestRecord) -> tuple[str, ...]:
        """The label tuple of one request (callers that see many alike may cache it)."""
        code = _CODES.get(rec.response_code) or str(rec.response_code)
        return (rec.reporter, *rec.source.labels, *rec.destination.labels, *rec.service.labels,
                rec.request_protocol, code, rec.grpc_response_status, rec.response_flags,
                rec.connection_security_policy)

    def http_cells(self, labels: tuple[str, ...]) -> HttpCells:
        """The four HTTP series of one label tuple: istio_requests_total and the three histograms."""
        cells = self._http.get(labels)
        if cells is None:
            cells = self._http[labels] = (self.requests_total.cell(labels), self.request_duration.cell(labels),
                                          self.request_bytes.cell(labels), self.response_bytes.cell(labels))
        return cells

    @staticmethod
    def record_cells(cells: HttpCells, duration_ms: float, request_bytes: int, response_bytes: int) -> None:
        """One request in its series (from http_cells)."""
        total, duration, req, resp = cells
        total[0] += 1
        duration[bisect_left(ENVOY_DEFAULT_BUCKETS, duration_ms)] += 1
        duration[-1] += duration_ms
        req[bisect_left(ENVOY_DEFAULT_BUCKETS, request_bytes)] += 1
        req[-1] += request_bytes
        resp[bisect_left(ENVOY_DEFAULT_BUCKETS, response_bytes)] += 1
        resp[-1] += response_bytes

    def record_request(self, rec: RequestRecord) -> None:
        self.record_cells(self.http_cells(self.http_labels(rec)), rec.duration_ms, rec.request_bytes,
                          rec.response_bytes)

    @staticmethod
    def tcp_labels(reporter: str, source: Workload, destination: Workload, service: Service, *,
                   response_flags: str = "-", connection_security_policy: str = UNKNOWN) -> tuple[str, ...]:
        """The label tuple of one TCP connection: compute it once, at connection open."""
        return (reporter, *source.labels, *destination.labels, *service.labels, "tcp", response_flags,
                connection_security_policy)

    def tcp_connection_opened(self, labels: tuple[str, ...]) -> None:
        self.tcp_opened.inc(labels)

    def tcp_bytes(self, labels: tuple[str, ...], *, sent: int = 0, received: int = 0) -> None:
        """Bytes since the last report (Istio reports periodically and at close)."""
        if sent:
            self.tcp_sent.inc(labels, sent)
        if received:
            self.tcp_received.inc(labels, received)

    def tcp_connection_closed(self, labels: tuple[str, ...]) -> None:
        self.tcp_closed.inc(labels)

    def render(self) -> str:
        return self.registry.render()
