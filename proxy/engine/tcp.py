"""The tcp_proxy network filter (envoy.filters.network.tcp_proxy): a downstream
connection relayed byte for byte to one upstream host, as Envoy does for non-HTTP
listeners and for Istio's TLS-terminating inbound chains.

One `TcpProxyFilter` per filter chain (its config, its `tcp.<stat_prefix>.*` stats);
one `TcpProxySession` per downstream connection. The session picks a cluster (`cluster`
or `weighted_clusters`, by weight), a host with the cluster's load balancer, connects
(with the cluster's upstream TLS when it has one; up to `max_connect_attempts`, each
on a newly picked host), then relays both ways. Flow control is the transports': a side
whose write buffer is over its high-water mark pauses reading on the other side, so a
slow reader never makes the proxy buffer without bound. Half-close is passed on
(write_eof) where the transport can; `idle_timeout` closes a connection with no bytes
either way. A connect that fails every attempt closes the downstream (flag UF; no
host: UH).

Telemetry hook: `observers` (objects with `opened(session)`, `data(session, received,
sent)`, `closed(session)`) see each connection; Istio's istio_tcp_* metrics and TCP
access logs hang there. `session.security` is the downstream's ConnectionSecurity
(peer principal, mutual_tls), `session.flags` Envoy's response flags.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Any, Protocol

from proxy.engine.config.listener import TcpProxy
from proxy.engine.lb import PickContext
from proxy.engine.outlier import LocalOrigin
from proxy.engine.runtime import ClusterRuntime
from proxy.engine.telemetry.stats import StatsStore
from proxy.engine.tls import PLAINTEXT, ConnectionSecurity, PeerVerificationError

log = logging.getLogger("proxy.engine.tcp")


def _is_tls(transport: asyncio.BaseTransport | None) -> bool:
    return transport is not None and transport.get_extra_info("sslcontext") is not None


class TcpObserver(Protocol):
    """What sees a tcp_proxy connection (Istio's TCP metrics, access logs)."""

    def opened(self, session: TcpProxySession) -> None: ...

    def data(self, session: TcpProxySession, received: int, sent: int) -> None: ...

    def closed(self, session: TcpProxySession) -> None: ...


class IstioTcpObserver:
    """Istio's istio_tcp_* metrics for a tcp_proxy: `reporters` maps each cluster the
    filter can pick to its observe.tcp_reporter (labels depend on the destination
    service); a session's TcpConnection lives in `session.istio`."""

    def __init__(self, reporters: dict[str, Any]) -> None:
        self.reporters = reporters

    def opened(self, session: TcpProxySession) -> None:
        r = self.reporters.get(session.cluster_name)
        session.istio = r.opened(session.security) if r is not None else None

    def data(self, session: TcpProxySession, received: int, sent: int) -> None:
        if session.istio is not None:
            session.istio.bytes(sent=sent, received=received)

    def closed(self, session: TcpProxySession) -> None:
        if session.istio is not None:
            session.istio.closed()


class TcpProxyFilter:
    """One filter chain's tcp_proxy: `filter(security)` is the protocol of a new connection."""

    def __init__(self, cfg: TcpProxy, clusters: dict[str, ClusterRuntime], store: StatsStore, *,
                 observers: Sequence[TcpObserver] = (), rng: random.Random | None = None) -> None:
        self.config = cfg
        self.clusters = clusters
        self.observers = list(observers)
        self.random = rng or random.Random()
        if cfg.weighted_clusters is not None:
            self.weighted = [(c.name, c.weight) for c in cfg.weighted_clusters.clusters]
        else:
            self.weighted = [(cfg.cluster or "", 1)]
        self.total_weight = sum(w for _, w in self.weighted)
        c = lambda stat: store.counter("tcp", cfg.stat_prefix, stat)  # noqa: E731
        g = lambda stat: store.gauge("tcp", cfg.stat_prefix, stat)  # noqa: E731
        self.downstream_cx_total = c("downstream_cx_total")
        self.downstream_cx_no_route = c("downstream_cx_no_route")
        self.downstream_cx_rx_bytes_total = c("downstream_cx_rx_bytes_total")
        self.downstream_cx_tx_bytes_total = c("downstream_cx_tx_bytes_total")
        self.downstream_flow_control_paused_reading_total = c("downstream_flow_control_paused_reading_total")
        self.downstream_flow_control_resumed_reading_total = c("downstream_flow_control_resumed_reading_total")
        self.idle_timeout = c("idle_timeout")
        self.upstream_flush_total = c("upstream_flush_total")
        self.upstream_flush_active = g("upstream_flush_active")

    def pick_cluster(self) -> str:
        if len(self.weighted) == 1:
            return self.weighted[0][0]
        n = self.random.randrange(self.total_weight)
        for name, weight in self.weighted:
            if n < weight:
                return name
            n -= weight
        return self.weighted[-1][0]

    def __call__(self, security: ConnectionSecurity = PLAINTEXT) -> TcpProxySession:
        return TcpProxySession(self, security)


class _Upstream(asyncio.Protocol):
    """The upstream side of a session; its callbacks go to the session."""

    def __init__(self, session: TcpProxySession) -> None:
        self.s = session
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.s._from_upstream(data)

    def eof_received(self) -> bool:
        keep = self.s._upstream_eof()
        return keep and not _is_tls(self.transport)

    def pause_writing(self) -> None:  # upstream is slow: stop reading downstream
        self.s._pause_downstream("upstream")

    def resume_writing(self) -> None:
        self.s._resume_downstream("upstream")

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.s.upstream is self:  # not a failed attempt (e.g. a refused certificate)
            self.s._upstream_lost()


class TcpProxySession(asyncio.Protocol):
    """One downstream connection relayed to one upstream connection."""

    def __init__(self, f: TcpProxyFilter, security: ConnectionSecurity) -> None:
        self.f = f
        self.security = security
        self.loop = asyncio.get_event_loop()
        self.transport: asyncio.Transport | None = None
        self.remote_address = ""
        self.cluster_name = ""
        self.cluster: ClusterRuntime | None = None
        self.upstream_host: tuple[str, int] | None = None
        self.upstream: _Upstream | None = None
        self.flags: list[str] = []
        self.istio: Any = None  # IstioTcpObserver's per-connection metrics
        self.bytes_received = 0  # from downstream
        self.bytes_sent = 0  # to downstream
        self.start_time = self.loop.time()
        self.closed = False
        self._early: list[bytes] = []
        self._paused: set[str] = set()
        self._eof = {"downstream": False, "upstream": False}
        self._last_activity = self.start_time
        self._idle_timer: asyncio.TimerHandle | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._flushing = False

    # -- downstream callbacks --------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote_address = f"{peer[0]}:{peer[1]}" if peer else ""
        self.f.downstream_cx_total.value += 1
        self._pause_downstream("connect")
        self.cluster_name = self.f.pick_cluster()
        self.cluster = self.f.clusters.get(self.cluster_name)
        for o in self.f.observers:
            o.opened(self)
        if self.cluster is None:
            self.f.downstream_cx_no_route.value += 1
            self.flags.append("NR")
            self.close()
            return
        self._connect_task = self.loop.create_task(self._connect(self.cluster))
        if self.f.config.idle_timeout:
            self._idle_timer = self.loop.call_later(self.f.config.idle_timeout, self._idle_check)

    def data_received(self, data: bytes) -> None:
        n = len(data)
        self.bytes_received += n
        self.f.downstream_cx_rx_bytes_total.value += n
        self._last_activity = self.loop.time()
        up = self.upstream
        if up is None or up.transport is None:
            self._early.append(data)  # before the upstream is there (reading is paused)
        else:
            up.transport.write(data)
            if self.cluster is not None:
                self.cluster.stats.upstream_cx_tx_bytes_total.value += n
        for o in self.f.observers:
            o.data(self, n, 0)

    def eof_received(self) -> bool:
        self._eof["downstream"] = True
        # A TLS transport closes after the peer's close_notify whatever we return, so the
        # upstream's answer after a TLS client's half-close is lost (asyncio's limit).
        keep = not _is_tls(self.transport)
        up = self.upstream
        if up is None or up.transport is None:
            return keep  # passed on once connected
        if up.transport.can_write_eof() and not self._eof["upstream"]:
            up.transport.write_eof()
            return keep
        up.transport.close()
        return False

    def pause_writing(self) -> None:  # downstream is slow: stop reading upstream
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.pause_reading()

    def resume_writing(self) -> None:
        up = self.upstream
        if up is not None and up.transport is not None and not up.transport.is_closing():
            up.transport.resume_reading()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None
        if self._connect_task is not None:
            self._connect_task.cancel()
        up = self.upstream
        if up is not None and up.transport is not None and not up.transport.is_closing():
            if up.transport.get_write_buffer_size():
                self._flushing = True  # Envoy flushes what the downstream sent before closing
                self.f.upstream_flush_total.value += 1
                self.f.upstream_flush_active.value += 1
            up.transport.close()
        self._finish()

    # -- upstream --------------------------------------------------------------------
    async def _connect(self, c: ClusterRuntime) -> None:
        tried: set[object] = set()
        attempts = self.f.config.max_connect_attempts
        for _ in range(attempts):
            host = c.lb.pick(PickContext(avoid=tried))
            if host is None:
                c.stats.store.counter("cluster", c.name, "upstream_cx_none_healthy").value += 1
                self.flags.append("UH")
                self.close()
                return
            tried.add(host)
            self.upstream_host = (host.address, host.port)  # the host tried (logged even on UF)
            up = _Upstream(self)
            tls = c.tls
            kw = {} if tls is None else {"ssl": tls.context(), "server_hostname": tls.server_hostname(host.address)}
            try:
                transport, _ = await asyncio.wait_for(
                    self.loop.create_connection(lambda up=up: up, host.address, host.port, **kw),  # type: ignore[arg-type]
                    c.config.connect_timeout)
                if tls is not None:
                    try:
                        tls.verify(transport)
                    except PeerVerificationError as e:
                        transport.abort()
                        raise ConnectionRefusedError(str(e)) from None
            except (TimeoutError, OSError) as e:
                c.stats.upstream_cx_connect_fail.value += 1
                if isinstance(e, TimeoutError):
                    c.stats.upstream_cx_connect_timeout.value += 1
                c.report(host, local=LocalOrigin.CONNECT_FAILED)
                log.debug("tcp_proxy %s: connect to %s:%d failed: %s", self.f.config.stat_prefix,
                          host.address, host.port, e)
                continue
            if self.transport is None:  # the downstream left while we connected
                transport.close()
                return
            self._connected(c, host, up)
            return
        c.stats.store.counter("cluster", c.name, "upstream_cx_connect_attempts_exceeded").value += 1
        self.flags.append("UF")
        self.close()

    def _connected(self, c: ClusterRuntime, host: object, up: _Upstream) -> None:
        self.upstream = up
        self.upstream_host = (host.address, host.port)  # type: ignore[attr-defined]
        c.stats.upstream_cx_total.value += 1
        c.stats.upstream_cx_active.value += 1
        c.report(host, local=LocalOrigin.CONNECT_SUCCESS)
        assert up.transport is not None
        early, self._early = self._early, []
        for chunk in early:
            up.transport.write(chunk)
            c.stats.upstream_cx_tx_bytes_total.value += len(chunk)
        if self._eof["downstream"]:
            if up.transport.can_write_eof():
                up.transport.write_eof()
            else:
                up.transport.close()
        self._resume_downstream("connect")

    def _from_upstream(self, data: bytes) -> None:
        n = len(data)
        self.bytes_sent += n
        self.f.downstream_cx_tx_bytes_total.value += n
        if self.cluster is not None:
            self.cluster.stats.upstream_cx_rx_bytes_total.value += n
        self._last_activity = self.loop.time()
        if self.transport is not None:
            self.transport.write(data)
        for o in self.f.observers:
            o.data(self, 0, n)

    def _upstream_eof(self) -> bool:
        self._eof["upstream"] = True
        t = self.transport
        if t is None:
            return False
        if t.can_write_eof() and not self._eof["downstream"]:
            t.write_eof()
            return True
        t.close()
        return False

    def _upstream_lost(self) -> None:
        if self.cluster is not None and self.upstream is not None:
            self.cluster.stats.upstream_cx_active.value -= 1
            self.cluster.stats.upstream_cx_destroy.value += 1
        if self._flushing:
            self._flushing = False
            self.f.upstream_flush_active.value -= 1
        if self.transport is not None:
            self.transport.close()  # after what is buffered for the downstream
        self.upstream = None

    # -- flow control and timers -----------------------------------------------------
    def _pause_downstream(self, why: str) -> None:
        if not self._paused and self.transport is not None:
            self.transport.pause_reading()
            if why != "connect":
                self.f.downstream_flow_control_paused_reading_total.value += 1
        self._paused.add(why)

    def _resume_downstream(self, why: str) -> None:
        if why not in self._paused:
            return
        self._paused.discard(why)
        if not self._paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            if why != "connect":
                self.f.downstream_flow_control_resumed_reading_total.value += 1

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self.closed:
            return
        idle = self.f.config.idle_timeout
        due = self._last_activity + idle
        now = self.loop.time()
        if now < due:
            self._idle_timer = self.loop.call_later(due - now, self._idle_check)
            return
        self.f.idle_timeout.value += 1
        self.close()
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.close()

    def close(self) -> None:
        """Close the downstream (what is buffered for it is still written)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Close both sides now (the proxy is stopping)."""
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.abort()
        if self.transport is not None:
            self.transport.abort()

    def _finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        for o in self.f.observers:
            o.closed(self)
