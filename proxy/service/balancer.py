"""Round robin with ClientIP session affinity over one group's endpoints.

The shape is the userspace kube-proxy's LoadBalancerRR: per group an endpoint list, a
rotating index and an affinity map client IP -> (endpoint, last used). A new connection
from a client with a live affinity entry whose endpoint is still usable goes there (and
refreshes the entry); otherwise the next endpoint in turn, which is remembered when
affinity is on. An entry idle for longer than timeoutSeconds is forgotten, as the
`recent` match of kube-proxy's iptables rules forgets it.

`update` replaces the endpoint list at once: the next `pick` already sees it, which is
how an endpoint turning unready stops getting new connections. Connections already
established are not the balancer's business (they are left alone, as kube-proxy does).
Endpoints are kept in address order so the rotation is predictable; the index carries
over an update, so a change does not send the next connection to the first endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from minikube_py.client import Clock, RealClock
from proxy.service.endpoints import Endpoint


@dataclass
class _Affinity:
    endpoint: Endpoint
    last_used: float


class Balancer:
    """Picks an endpoint for each new connection of one group."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock = clock or RealClock()
        self.endpoints: tuple[Endpoint, ...] = ()
        self.affinity_timeout: float | None = None
        self._index = 0
        self._affinity: dict[str, _Affinity] = {}

    def update(self, endpoints: tuple[Endpoint, ...], affinity_timeout: float | None = None) -> bool:
        """Use these endpoints from now on; True if anything changed."""
        endpoints = tuple(sorted(endpoints))
        changed = endpoints != self.endpoints or affinity_timeout != self.affinity_timeout
        if affinity_timeout is None:
            self._affinity.clear()
        elif endpoints != self.endpoints:
            usable = set(endpoints)
            self._affinity = {ip: a for ip, a in self._affinity.items() if a.endpoint in usable}
        self.endpoints = endpoints
        self.affinity_timeout = affinity_timeout
        return changed

    def pick(self, client_ip: str) -> Endpoint | None:
        """The endpoint for a new connection from `client_ip`; None if there is none."""
        if not self.endpoints:
            return None
        now = self.clock.monotonic()
        if self.affinity_timeout is not None:
            sticky = self._affinity.get(client_ip)
            if sticky is not None and now - sticky.last_used <= self.affinity_timeout:
                sticky.last_used = now
                return sticky.endpoint
        endpoint = self.endpoints[self._index % len(self.endpoints)]
        self._index = (self._index + 1) % len(self.endpoints)
        if self.affinity_timeout is not None:
            self._affinity[client_ip] = _Affinity(endpoint, now)
            self._expire(now)
        return endpoint

    def forget_client(self, client_ip: str) -> None:
        """Drop a client's affinity (its endpoint could not be reached)."""
        self._affinity.pop(client_ip, None)

    def _expire(self, now: float) -> None:
        if len(self._affinity) < 1024 or self.affinity_timeout is None:
            return
        timeout = self.affinity_timeout
        self._affinity = {ip: a for ip, a in self._affinity.items() if now - a.last_used <= timeout}
