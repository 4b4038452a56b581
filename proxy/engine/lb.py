"""Load balancers over a cluster's usable hosts, as Envoy's lb_policy values.

ROUND_ROBIN: equal weights rotate through the hosts; unequal weights use an
  earliest-deadline-first schedule (Envoy's EDF scheduler): a host of weight w is due
  every 1/w, so picks interleave smoothly in proportion to weight.
LEAST_REQUEST (Istio's default): equal weights -> power of `choice_count` (2) random
  choices, the one with fewer active requests wins; unequal weights -> EDF over
  weight / (active_requests + 1) ** active_request_bias (bias 1.0), as Envoy does.
RANDOM: uniform over hosts (weighted by load_balancing_weight).
RING_HASH: a ring of at least min_ring_size (1024) points, each host owning points in
  proportion to its weight; a request goes to the first point at or after its hash.
MAGLEV: a 65537-entry lookup table filled by each host's permutation (Maglev paper),
  weighted; a request goes to table[hash % 65537].

The 64-bit hash for rings, tables and request keys is BLAKE2b with an 8-byte digest
(hashlib, C speed, stable across processes and platforms) rather than Envoy's xxHash64:
placements therefore differ from real Envoy's, but are stable and uniform.

Retries on another host (Envoy's `envoy.retry_host_predicates.previous_hosts`, Istio's
retryIgnorePreviousHosts, default true): `pick(ctx)` re-picks while the choice is in
`ctx.avoid`, at most `ctx.host_selection_retry_max_attempts` extra times, then uses the
last choice (Envoy's rule). Rebuilt structures follow `Cluster.version`.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
import random as _random
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field

from proxy.engine.cluster import Cluster, Host

LB_POLICIES = ("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV")
MAGLEV_TABLE_SIZE = 65537


def hash64(data: str | bytes, *, seed: bytes = b"") -> int:
    """The stable 64-bit hash used for keys, ring points and Maglev permutations."""
    if isinstance(data, str):
        data = data.encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, salt=seed[:16]).digest(), "little")


@dataclass(frozen=True)
class PickContext:
    """What a request tells the load balancer: its hash key and the hosts to avoid."""

    hash_key: int | None = None
    avoid: Container[Host] = field(default_factory=frozenset)
    host_selection_retry_max_attempts: int = 1


@dataclass(frozen=True)
class LeastRequestLbConfig:
    choice_count: int = 2
    active_request_bias: float = 1.0

    def __post_init__(self) -> None:
        if self.choice_count < 2:
            raise ValueError(f"least_request_lb_config.choice_count: {self.choice_count} must be >= 2")
        if self.active_request_bias < 0:
            raise ValueError("least_request_lb_config.active_request_bias: must be >= 0")


@dataclass(frozen=True)
class RingHashLbConfig:
    minimum_ring_size: int = 1024
    maximum_ring_size: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 1 <= self.minimum_ring_size <= self.maximum_ring_size:
            raise ValueError("ring_hash_lb_config: minimum_ring_size must be in 1..maximum_ring_size")


@dataclass(frozen=True)
class MaglevLbConfig:
    table_size: int = MAGLEV_TABLE_SIZE

    def __post_init__(self) -> None:
        n = self.table_size
        if n < 2 or any(n % d == 0 for d in range(2, math.isqrt(n) + 1)):
            raise ValueError(f"maglev_lb_config.table_size: {n} must be a prime number")


class LoadBalancer:
    """Base: caches per-host-set structures by cluster version; `pick` applies avoidance."""

    def __init__(self, cluster: Cluster, *, random: _random.Random | None = None) -> None:
        self.cluster = cluster
        self.random = random or _random.Random()
        self._built_version = -1

    def pick(self, ctx: PickContext | None = None) -> Host | None:
        """A host for this request, or None when the cluster has none usable (UH)."""
        ctx = ctx or PickContext()
        hosts, _panic = self.cluster.lb_hosts()
        if not hosts:
            return None
        if self._built_version != self.cluster.version:
            self._rebuild(hosts)
            self._built_version = self.cluster.version
        host = self._choose(hosts, ctx, 0)
        for attempt in range(1, ctx.host_selection_retry_max_attempts + 1):
            if host not in ctx.avoid:
                break
            host = self._choose(hosts, ctx, attempt)
        return host

    def _rebuild(self, hosts: Sequence[Host]) -> None:
        pass

    def _choose(self, hosts: Sequence[Host], ctx: PickContext, attempt: int) -> Host:
        raise NotImplementedError


class _Edf:
    """Earliest deadline first: each pick takes the smallest deadline, then re-queues it."""

    def __init__(self, hosts: Sequence[Host], weight: Callable[[Host], float], offset: float = 0.0) -> None:
        self.weight = weight
        self.now = 0.0
        self.heap = [(offset / weight(h) + 1.0 / weight(h), i, h) for i, h in enumerate(hosts)]
        heapq.heapify(self.heap)

    def pick(self) -> Host:
        deadline, i, host = heapq.heappop(self.heap)
        self.now = deadline
        heapq.heappush(self.heap, (deadline + 1.0 / self.weight(host), i, host))
        return host


class RoundRobinLoadBalancer(LoadBalancer):
    def _rebuild(self, hosts: Sequence[Host]) -> None:
        self._weighted = len({h.weight for h in hosts}) > 1
        self._next = self.random.randrange(len(hosts))  # Envoy starts at a random offset
        if self._weighted:
            self._edf = _Edf(hosts, lambda h: float(h.weight), offset=self.random.random())

    def _choose(self, hosts: Sequence[Host], ctx: PickContext, attempt: int) -> Host:
        if self._weighted:
            return self._edf.pick()
        host = hosts[self._next % len(hosts)]
        self._next += 1
        return host


class LeastRequestLoadBalancer(LoadBalancer):
    def __init__(
        self, cluster: Cluster, config: LeastRequestLbConfig | None = None, *, random: _random.Random | None = None
    ) -> None:
        super().__init__(cluster, random=random)
        self.config = config or LeastRequestLbConfig()

    def _rebuild(self, hosts: Sequence[Host]) -> None:
        self._weighted = len({h.weight for h in hosts}) > 1
        if self._weighted:
            bias = self.config.active_request_bias
            self._edf = _Edf(hosts, lambda h: h.weight / (h.active_requests + 1) ** bias)

    def _choose(self, hosts: Sequence[Host], ctx: PickContext, attempt: int) -> Host:
        if self._weighted:
            return self._edf.pick()
        n = len(hosts)
        best = hosts[self.random.randrange(n)]
        for _ in range(self.config.choice_count - 1):
            other = hosts[self.random.randrange(n)]
            if other.active_requests < best.active_requests:
                best = other
        return best


class RandomLoadBalancer(LoadBalancer):
    def _rebuild(self, hosts: Sequence[Host]) -> None:
        self._cum = list(_cumulative(h.weight for h in hosts))

    def _choose(self, hosts: Sequence[Host], ctx: PickContext, attempt: int) -> Host:
        r = self.random.random() * self._cum[-1]
        return hosts[bisect.bisect_right(self._cum, r)]


def _cumulative(weights: object) -> list[float]:
    out, total = [], 0.0
    for w in weights:  # type: ignore[attr-defined]
        total += w
        out.append(total)
    return out


class _HashLoadBalancer(LoadBalancer):
    """Hash key -> host; without a key (or on a re-pick) a random point, as Envoy does."""

    def _key(self, ctx: PickContext, attempt: int) -> int:
        if ctx.hash_key is None:
            return self.random.getrandbits(64)
        if attempt == 0:
            return ctx.hash_key
        # Envoy re-hashes on host-selection retries so the next choice differs but is stable.
        return hash64(ctx.hash_key.to_bytes(8, "little") + attempt.to_bytes(4, "little"))


class RingHashLoadBalancer(_HashLoadBalancer):
    def __init__(
        self, cluster: Cluster, config: RingHashLbConfig | None = None, *, random: _random.Random | None = None
    ) -> None:
        super().__init__(cluster, random=random)
        self.config = config or RingHashLbConfig()

    def _rebuild(self, hosts: Sequence[Host]) -> None:
        total = sum(h.weight for h in hosts)
        min_norm = min(h.weight for h in hosts) / total
        scale = min(math.ceil(min_norm * self.config.minimum_ring_size) / min_norm, self.config.maximum_ring_size)
        ring: list[tuple[int, int]] = []
        for i, h in enumerate(hosts):
            count = math.ceil(h.weight / total * scale)
            prefix = f"{h.address}:{h.port}_"
            ring.extend((hash64(prefix + str(j)), i) for j in range(count))
        ring.sort()
        self._points = [p for p, _ in ring]
        self._owners = [hosts[i] for _, i in ring]

    def _choose(self, hosts: Sequence[Host], ctx: PickContext, attempt: int) -> Host:
        i = bisect.bisect_left(self._points, self._key(ctx, attempt))
        return self._owners[i if i < len(self._owners) else 0]

    @property
    def ring_size(self) -> int:
        return len(self._points)


class MaglevLoadBalancer(_HashLoadBalancer):
    def __init__(
        self, cluster: Cluster, config: MaglevLbConfig | None = None, *, random: _random.Random | None = None
    ) -> None:
        super().__init__(cluster, random=random)
        self.config = config or MaglevLbConfig()

    def _rebuild(self, hosts: Sequence[Host]) -> None:
        # Pure Python: about 0.1 s for 65537 entries, paid on each change of the host set
        # (an ejection too); RING_HASH, Istio's default consistent hash, builds in ~2 ms.
        m = self.config.table_size
        n = len(hosts)
        table = [-1] * m
        skips = [hash64(f"{h.address}:{h.port}", seed=b"maglev-skip") % (m - 1) + 1 for h in hosts]
        pos = [hash64(f"{h.address}:{h.port}", seed=b"maglev-offset") % m for h in hosts]  # offset + j*skip
        max_w = max(h.weight for h in hosts)
        norm = [h.weight / max_w for h in hosts]
        target = [0.0] * n
        filled = 0
        while True:
            for i in range(n):
                # Weighted Maglev: a host takes a turn only when its share of turns is due.
                target[i] += norm[i]
                while target[i] >= 1.0:
                    target[i] -= 1.0
                    c, s = pos[i], skips[i]
                    while table[c] >= 0:
                        c += s
                        if c >= m:
                            c -= m
                    table[c] = i
                    c += s
                    pos[i] = c - m if c >= m else c
                    filled += 1
                    if filled == m:
                        self._table = [hosts[j] for j in table]
                        return

    def _choose(self, hosts: Sequence[Host], ctx: PickContext, attempt: int) -> Host:
        return self._table[self._key(ctx, attempt) % self.config.table_size]


def new_load_balancer(
    lb_policy: str,
    cluster: Cluster,
    *,
    least_request_lb_config: LeastRequestLbConfig | None = None,
    ring_hash_lb_config: RingHashLbConfig | None = None,
    maglev_lb_config: MaglevLbConfig | None = None,
    random: _random.Random | None = None,
) -> LoadBalancer:
    """The load balancer for a cluster's lb_policy (Envoy's default is ROUND_ROBIN;
    Istio's translation of an unset loadBalancer is LEAST_REQUEST)."""
    if lb_policy == "ROUND_ROBIN":
        return RoundRobinLoadBalancer(cluster, random=random)
    if lb_policy == "LEAST_REQUEST":
        return LeastRequestLoadBalancer(cluster, least_request_lb_config, random=random)
    if lb_policy == "RANDOM":
        return RandomLoadBalancer(cluster, random=random)
    if lb_policy == "RING_HASH":
        return RingHashLoadBalancer(cluster, ring_hash_lb_config, random=random)
    if lb_policy == "MAGLEV":
        return MaglevLoadBalancer(cluster, maglev_lb_config, random=random)
    raise ValueError(f"lb_policy: {lb_policy!r} is not one of {', '.join(LB_POLICIES)}")


@dataclass(frozen=True)
class HashPolicy:
    """route.v3.RouteAction.HashPolicy: exactly one of header_name, cookie_name,
    source_ip (connection_properties), query_parameter_name; `terminal` stops the list
    at the first policy that yields a value. Istio's consistentHash httpHeaderName,
    httpCookie.name, useSourceIp and httpQueryParameterName map onto these 1:1."""

    header_name: str | None = None
    cookie_name: str | None = None
    source_ip: bool = False
    query_parameter_name: str | None = None
    terminal: bool = False

    def __post_init__(self) -> None:
        chosen = [self.header_name, self.cookie_name, self.source_ip or None, self.query_parameter_name]
        if sum(c is not None for c in chosen) != 1:
            raise ValueError("hash_policy: exactly one of header, cookie, connection_properties, query_parameter")


def compute_hash_key(
    policies: Sequence[HashPolicy],
    *,
    headers: Callable[[str], str | None],
    cookies: Callable[[str], str | None],
    query: Callable[[str], str | None],
    source_ip: str | None,
) -> int | None:
    """The request's hash key from the route's hash policies (None: no policy matched,
    so a hash balancer picks at random). Several values combine as Envoy's: rotate left
    by one bit, xor the next. Header names are looked up lower-case."""
    key: int | None = None
    for p in policies:
        if p.header_name is not None:
            value = headers(p.header_name.lower())
        elif p.cookie_name is not None:
            value = cookies(p.cookie_name)
        elif p.query_parameter_name is not None:
            value = query(p.query_parameter_name)
        else:
            value = source_ip
        if value is None:
            continue
        h = hash64(value)
        key = h if key is None else (((key << 1) | (key >> 63)) & 0xFFFFFFFFFFFFFFFF) ^ h
        if p.terminal:
            break
    return key
