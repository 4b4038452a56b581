"""Istio's stats filter at run time: who reports (source or destination), both sides'
workload labels, the destination service, and the metadata exchange on HTTP headers.

The reporter follows the listener, as Istio's filter infers it: INBOUND listeners are
the destination's sidecar, everything else (OUTBOUND, and gateways with reporter
SERVER_GATEWAY) reports as the source. The local side's labels come from the bootstrap's
node metadata (telemetry.peer); the peer's from `x-envoy-peer-metadata` (the source adds
its own on requests, the destination on responses, each strips the peer's).

The destination service is the cluster's `metadata.filter_metadata.istio.services[0]`
({host, name, namespace}, as istiod writes it on every service cluster); without it, the
Host header (port removed) unless `disable_host_header_fallback`, as Istio falls back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.engine.config import Bootstrap
from proxy.engine.config.http_filters import IstioStats
from proxy.engine.config.listener import Listener
from proxy.engine.headers import Headers
from proxy.engine.telemetry import peer
from proxy.engine.telemetry.metrics import (
    UNKNOWN,
    UNKNOWN_SERVICE,
    HttpCells,
    IstioMetrics,
    RequestRecord,
    Service,
)

_NO_SERVICE = Service(host="", name="", namespace="")  # "the cluster says nothing" (cached)


def reporter_name(listener: Listener, cfg: IstioStats | None) -> str:
    if cfg is not None and cfg.reporter == "SERVER_GATEWAY":
        return "source"
    return "destination" if listener.traffic_direction == "INBOUND" else "source"


def cluster_service(cluster: Any) -> Service | None:
    """The Istio service of a cluster config, from `metadata.filter_metadata.istio.services`."""
    md = getattr(cluster, "metadata", None)
    fm = md.get("filter_metadata") if isinstance(md, dict) else getattr(md, "filter_metadata", None)
    istio = fm.get("istio") if isinstance(fm, dict) else None
    services = istio.get("services") if isinstance(istio, dict) else None
    if not services or not isinstance(services[0], dict):
        return None
    s = services[0]
    return Service(host=s.get("host") or UNKNOWN, name=s.get("name") or UNKNOWN, namespace=s.get("namespace") or UNKNOWN)


def _without_port(authority: str) -> str:
    host, sep, port = authority.rpartition(":")
    return host.strip("[]") if sep and port.isdigit() else authority


class IstioReporter:
    """One connection manager's Istio metrics and metadata exchange."""

    def __init__(self, cfg: IstioStats, reporter: str, boot: Bootstrap, metrics: IstioMetrics,
                 peers: peer.PeerCache) -> None:
        self.reporter = reporter
        self.destination = reporter == "destination"
        self.metrics, self.peers = metrics, peers
        node = boot.node
        md = peer.exchanged(node.metadata if node is not None else None)
        self.local = peer.workload(md)
        self.own: list[tuple[bytes, bytes]] = [
            (peer.PEER_METADATA, peer.encode(md)),
            (peer.PEER_METADATA_ID, (node.id if node is not None else "").encode("latin-1"))] if md else []
        self.host_fallback = not cfg.disable_host_header_fallback
        self._services: dict[str, Service] = {}
        self._hosts: dict[str, Service] = {}
        # (peer metadata value, principal, mTLS, cluster, authority, code, flags, gRPC) ->
        # the request's four series: a request alike to an earlier one costs one lookup
        self._cells: dict[tuple[Any, ...], HttpCells] = {}

    @staticmethod
    def _take_peer(headers: Headers) -> tuple[Headers, bytes | None]:
        """(headers without the peer's metadata, the peer's x-envoy-peer-metadata)."""
        names = peer.PEER_HEADERS
        for n, _ in headers:
            if n in names:
                break
        else:
            return headers, None
        value = next((v for n, v in headers if n == peer.PEER_METADATA), None)
        headers[:] = [p for p in headers if p[0] not in names]
        return headers, value

    def request(self, headers: Headers) -> bytes | None:
        """A request on its way in: any peer metadata is taken off; the destination
        returns the source's. (The source adds its own in `upstream`, after the
        connection manager's x-envoy-* sanitizing.)"""
        _, value = self._take_peer(headers)
        return value if self.destination else None

    @property
    def adds_upstream(self) -> bool:
        """Whether `upstream` edits anything (a source with node metadata to send)."""
        return not self.destination and bool(self.own)

    def upstream(self, headers: Headers) -> Headers:
        """The request headers going upstream: the source adds its metadata."""
        if not self.destination:
            headers.extend(self.own)
        return headers

    def response(self, headers: Headers) -> tuple[Headers, bytes | None]:
        """An upstream response on its way down: the destination adds its metadata; the
        source takes the destination's (returned)."""
        headers, value = self._take_peer(headers)
        if self.destination:
            headers.extend(self.own)
            return headers, None
        return headers, value

    def service(self, cluster: Any, authority: str) -> Service:
        if cluster is not None:
            name = cluster.config.name
            s = self._services.get(name)
            if s is None:
                s = self._services[name] = cluster_service(cluster.config) or _NO_SERVICE
            if s is not _NO_SERVICE:
                return s
        if not self.host_fallback or not authority:
            return UNKNOWN_SERVICE
        s = self._hosts.get(authority)
        if s is None:
            if len(self._hosts) > 1024:
                self._hosts.clear()
            host = _without_port(authority)
            s = self._hosts[authority] = Service(host=host, name=host, namespace=UNKNOWN)
        return s

    def record(self, flow: Any, peer_value: bytes | None, request_headers: Mapping[bytes, bytes] | None) -> None:
        """The finished request in istio_requests_total and the three histograms.
        `request_headers`: the request's headers by name (first value), for content-type."""
        stream = flow.stream
        cluster = flow.cluster
        sec = getattr(stream.conn, "security", None)
        mtls = self.destination and sec is not None and bool(sec.mutual)
        principal = sec.peer_principal if mtls else None
        name = cluster.config.name if cluster is not None else None
        authority = None
        if name is None or self._services.get(name, _NO_SERVICE) is _NO_SERVICE:
            authority = flow.request.authority if hasattr(flow, "request") else ""
        ctype = request_headers.get(b"content-type") if request_headers is not None else None
        flags = flow.flags
        key = (peer_value, principal, mtls, name, authority, flow.status, ",".join(flags) if flags else "-",
               ctype is not None and ctype.startswith(b"application/grpc"))
        cells = self._cells.get(key)
        if cells is None:
            cells = self._cells_of(key, cluster)
        self.metrics.record_cells(cells, (flow.end_time - stream.start_time) * 1000.0, stream.received,
                                  stream.body_bytes_sent)

    def _cells_of(self, key: tuple[Any, ...], cluster: Any) -> HttpCells:
        peer_value, principal, mtls, _, authority, code, flags, grpc = key
        if self.destination:
            source = self.peers.get(peer_value, principal)
            destination, policy = self.local, "mutual_tls" if mtls else "none"
        else:
            source, destination, policy = self.local, self.peers.get(peer_value), UNKNOWN
        labels = self.metrics.http_labels(RequestRecord(
            self.reporter, source, destination, self.service(cluster, authority or ""), code, 0.0,
            response_flags=flags, request_protocol="grpc" if grpc else "http", connection_security_policy=policy))
        if len(self._cells) >= 4096:  # peers, hosts or codes churn: start over (the series stay)
            self._cells.clear()
        cells = self._cells[key] = self.metrics.http_cells(labels)
        return cells


class TcpConnection:
    """One TCP connection's Istio metrics: `bytes(sent=, received=)` whenever the proxy
    wants to report (Istio: every tcp_reporting_duration and at close), `closed()` once."""

    __slots__ = ("labels", "metrics", "_closed")

    def __init__(self, metrics: IstioMetrics, labels: tuple[str, ...]) -> None:
        self.metrics, self.labels, self._closed = metrics, labels, False
        metrics.tcp_connection_opened(labels)

    def bytes(self, *, sent: int = 0, received: int = 0) -> None:
        """`sent`: bytes sent to the downstream client since the last call; `received`:
        bytes received from it (istio_tcp_sent_bytes_total / _received_bytes_total)."""
        self.metrics.tcp_bytes(self.labels, sent=sent, received=received)

    def closed(self) -> None:
        if not self._closed:
            self._closed = True
            self.metrics.tcp_connection_closed(self.labels)


class TcpReporter:
    """Istio's TCP metrics for one tcp_proxy: `opened(security, response_flags)` per
    downstream connection returns its TcpConnection. There is no metadata exchange on
    plain TCP here (Istio's uses ALPN), so the peer is known only by its mTLS principal."""

    def __init__(self, metrics: IstioMetrics, reporter: str, boot: Bootstrap, cluster: str) -> None:
        self.metrics, self.reporter = metrics, reporter
        node = boot.node
        self.local = peer.workload(peer.exchanged(node.metadata if node is not None else None))
        config = next((c for c in boot.static_resources.clusters if c.name == cluster), None)
        self.service = cluster_service(config) or UNKNOWN_SERVICE

    def opened(self, security: Any = None, *, response_flags: str = "-") -> TcpConnection:
        mtls = security is not None and bool(getattr(security, "mutual", False))
        principal = security.peer_principal if mtls else None
        if self.reporter == "destination":
            source, destination = peer.workload(None, principal), self.local
            policy = "mutual_tls" if mtls else "none"
        else:
            source, destination, policy = self.local, peer.workload(None), UNKNOWN
        labels = self.metrics.tcp_labels(self.reporter, source, destination, self.service,
                                         response_flags=response_flags, connection_security_policy=policy)
        return TcpConnection(self.metrics, labels)
