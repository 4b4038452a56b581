"""Listening sockets: one per frontend, and the target each asks for endpoints.

Several node proxies share the host's network namespace in bridge mode, and every
ClusterIP is a local address there (an AnyIP route), so two nodes' proxies both listen
on 10.96.0.15:80. They can because each binds its socket to devices with
SO_BINDTODEVICE: a pod's connection arrives on its node's bridge, a host client's on
`lo`, and Linux delivers a packet only to the socket bound to its input device (two
sockets on one address and port conflict only if their devices do). The device must be
set before bind(). NodePort and load-balancer frontends are bound to no device: their
addresses already differ per node.

TCP listeners get SO_REUSEADDR (a listener closed and reopened must not wait for the
TIME_WAIT connections of its predecessor); UDP ones do not, since on UDP that option
would let a second proxy bind the same address silently and steal half the traffic.

A `Target` is what a listener's connections ask: the group's balancer picks an
endpoint, the optional policy hook may veto it (then the connection is dropped, not
sent elsewhere, as a packet filter would drop it), and metrics count the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Protocol

from proxy.service.balancer import Balancer
from proxy.service.endpoints import Endpoint
from proxy.service.metrics import ProxyMetrics
from proxy.service.model import Frontend, Route
from proxy.service.tcp import ClientSide
from proxy.service.udp import DEFAULT_IDLE_TIMEOUT, UdpFrontend

log = logging.getLogger("proxy.service")

BACKLOG = 1024


class ConnectionPolicy(Protocol):
    """A hook that may veto a proxied connection (NetworkPolicy in bridge mode)."""

    def allowed(self, src_ip: str, dst_ip: str, port: int, protocol: str) -> bool: ...


class Target:
    """The endpoint choice for one group of frontends (a Service port's internal or
    external traffic)."""

    def __init__(self, route: Route, balancer: Balancer, metrics: ProxyMetrics,
                 policy: ConnectionPolicy | None = None) -> None:
        self.route = route
        self.balancer = balancer
        self.metrics = metrics
        self.policy = policy
        self._service = str(route.service_port)

    def pick(self, client_ip: str) -> Endpoint | None:
        endpoint = self.balancer.pick(client_ip)
        if endpoint is None:
            self.metrics.rejected(self._service, "no-endpoints")
            return None
        protocol = self.route.service_port.protocol
        if self.policy is not None and not self._allowed(client_ip, endpoint, protocol):
            log.info("%s: connection from %s to %s dropped by policy", self._service, client_ip, endpoint)
            self.metrics.rejected(self._service, "policy")
            return None
        self.metrics.connection(self._service, protocol)
        return endpoint

    def _allowed(self, client_ip: str, endpoint: Endpoint, protocol: str) -> bool:
        assert self.policy is not None
        try:
            return self.policy.allowed(client_ip, endpoint.ip, endpoint.port, protocol)
        except Exception:  # noqa: BLE001 - a broken hook fails closed, and must not kill the listener
            log.exception("%s: the policy hook failed for %s -> %s", self._service, client_ip, endpoint)
            return False

    def dial_failed(self, client_ip: str, endpoint: Endpoint, error: BaseException) -> None:
        log.info("%s: dial %s for %s failed: %s", self._service, endpoint, client_ip, error or type(error).__name__)
        self.balancer.forget_client(client_ip)
        self.metrics.rejected(self._service, "dial-failed")

    def connection_opened(self) -> None:
        self.metrics.active(self._service, +1)

    def connection_closed(self) -> None:
        self.metrics.active(self._service, -1)


def bind_socket(frontend: Frontend) -> socket.socket:
    """A bound (and for TCP listening) non-blocking socket; OSError says why not."""
    family = socket.AF_INET6 if ":" in frontend.ip else socket.AF_INET
    kind = socket.SOCK_STREAM if frontend.protocol == "TCP" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if frontend.device:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, frontend.device.encode())
        sock.bind((frontend.ip, frontend.port))
        if kind == socket.SOCK_STREAM:
            sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class Listener:
    """An open frontend: its socket's server (TCP) or transport (UDP)."""

    frontend: Frontend
    route: Route
    owner: str  # the Service key
    target: Target
    server: asyncio.AbstractServer | None = None
    udp: UdpFrontend | None = None
    udp_transport: asyncio.BaseTransport | None = None

    @classmethod
    async def open(cls, frontend: Frontend, route: Route, owner: str, target: Target, *,
                   udp_idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> Listener:
        sock = bind_socket(frontend)
        loop = asyncio.get_running_loop()
        listener = cls(frontend, route, owner, target)
        try:
            if frontend.protocol == "TCP":
                listener.server = await loop.create_server(lambda: ClientSide(target), sock=sock)
            else:
                protocol = UdpFrontend(target, idle_timeout=udp_idle_timeout)
                listener.udp_transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
                listener.udp = protocol
        except BaseException:
            sock.close()
            raise
        return listener

    def endpoints_changed(self, usable: tuple[Endpoint, ...]) -> None:
        """UDP flows to endpoints no longer usable end now (kube-proxy clears their
        conntrack entries, or a resolver would keep asking a dead DNS pod)."""
        if self.udp is None:
            return
        keep = set(usable)
        for addr in [a for a, f in self.udp.flows.items() if f.endpoint not in keep]:
            self.udp.close_flow(addr)

    def close(self) -> None:
        """Stop accepting; established TCP connections carry on."""
        if self.server is not None:
            self.server.close()
        if self.udp_transport is not None:
            self.udp_transport.close()
