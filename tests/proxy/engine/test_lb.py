"""Load balancer distributions, avoidance of previous hosts and hash stability."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from proxy.engine.cluster import Cluster, Endpoint
from proxy.engine.lb import (
    HashPolicy,
    LeastRequestLoadBalancer,
    MaglevLbConfig,
    MaglevLoadBalancer,
    PickContext,
    RingHashLoadBalancer,
    RoundRobinLoadBalancer,
    compute_hash_key,
    hash64,
    new_load_balancer,
)


def cluster(weights: list[int]) -> Cluster:
    return Cluster("c", [Endpoint(f"127.0.0.{i + 1}", 80, w) for i, w in enumerate(weights)])


def shares(lb, n: int, ctx_fn=lambda i: None) -> Counter:
    return Counter(lb.pick(ctx_fn(i)).address for i in range(n))


def test_round_robin_equal_weights_rotates_exactly():
    lb = RoundRobinLoadBalancer(cluster([1, 1, 1]), random=random.Random(1))
    picks = [lb.pick().address for _ in range(9)]
    assert Counter(picks) == {"127.0.0.1": 3, "127.0.0.2": 3, "127.0.0.3": 3}
    assert picks[:3] == picks[3:6]


def test_round_robin_weighted_is_exact_and_smooth():
    lb = RoundRobinLoadBalancer(cluster([9, 1]), random=random.Random(1))
    picks = [lb.pick().address for _ in range(1000)]
    assert abs(Counter(picks)["127.0.0.2"] - 100) <= 1
    # smooth: the light host comes back every 10th pick, never in bursts
    light = [i for i, a in enumerate(picks) if a == "127.0.0.2"]
    assert {b - a for a, b in zip(light, light[1:], strict=False)} == {10}


def test_random_weighted_distribution():
    lb = new_load_balancer("RANDOM", cluster([3, 1]), random=random.Random(7))
    c = shares(lb, 20000)
    assert abs(c["127.0.0.1"] / 20000 - 0.75) < 0.015


def test_least_request_prefers_idle_hosts():
    cl = cluster([1, 1, 1, 1])
    cl.hosts[0].active_requests = 10
    lb = LeastRequestLoadBalancer(cl, random=random.Random(3))
    c = shares(lb, 4000)
    # P2C: the busy host wins only when drawn twice: 1/16 of picks
    assert c["127.0.0.1"] / 4000 < 0.09
    for a in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        assert 0.27 < c[a] / 4000 < 0.36


def test_least_request_weighted_uses_active_request_bias():
    cl = cluster([2, 1])
    lb = LeastRequestLoadBalancer(cl, random=random.Random(3))
    assert abs(shares(lb, 3000)["127.0.0.1"] / 3000 - 2 / 3) < 0.01
    cl.hosts[0].active_requests = 3  # effective weight 2/4 < 1/1
    cl.changed()
    assert shares(lb, 3000)["127.0.0.1"] / 3000 < 0.4


def test_unknown_policy_is_named():
    with pytest.raises(ValueError, match="lb_policy: 'LEAST_CONN'"):
        new_load_balancer("LEAST_CONN", cluster([1]))


def test_no_usable_host_gives_none():
    cl = Cluster("c", [])
    assert new_load_balancer("ROUND_ROBIN", cl).pick() is None


@pytest.mark.parametrize("policy", ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"])
def test_retry_avoids_previous_hosts(policy):
    cl = cluster([1, 1, 1])
    lb = new_load_balancer(policy, cl, random=random.Random(5))
    same = 0
    for i in range(1000):
        first = lb.pick(PickContext(hash_key=hash64(str(i))))
        ctx = PickContext(hash_key=hash64(str(i)), avoid={first}, host_selection_retry_max_attempts=5)
        same += lb.pick(ctx) is first
    # re-picks at random give up after 5 more tries: (1/3)^5, about 4 in 1000
    assert same <= 12


def test_avoid_gives_up_after_max_attempts():
    cl = cluster([1])
    lb = new_load_balancer("ROUND_ROBIN", cl)
    only = cl.hosts[0]
    assert lb.pick(PickContext(avoid={only}, host_selection_retry_max_attempts=3)) is only


@pytest.mark.parametrize("policy", ["RING_HASH", "MAGLEV"])
def test_hash_policies_are_sticky_and_spread(policy):
    lb = new_load_balancer(policy, cluster([1, 1, 1, 1]), random=random.Random(1))
    keys = [hash64(f"user-{i}") for i in range(4000)]
    first = [lb.pick(PickContext(hash_key=k)).address for k in keys]
    assert first == [lb.pick(PickContext(hash_key=k)).address for k in keys]
    c = Counter(first)
    assert all(0.18 < v / 4000 < 0.32 for v in c.values()), c


@pytest.mark.parametrize("policy", ["RING_HASH", "MAGLEV"])
def test_hash_weights_and_minimal_disruption(policy):
    cl = cluster([3, 1])
    lb = new_load_balancer(policy, cl, random=random.Random(1))
    keys = [hash64(f"k{i}") for i in range(4000)]
    c = Counter(lb.pick(PickContext(hash_key=k)).address for k in keys)
    assert abs(c["127.0.0.1"] / 4000 - 0.75) < 0.06
    cl.update([Endpoint("127.0.0.1", 80, 1), Endpoint("127.0.0.2", 80, 1), Endpoint("127.0.0.3", 80, 1),
               Endpoint("127.0.0.4", 80, 1)])
    before = [lb.pick(PickContext(hash_key=k)).address for k in keys]
    cl.update([Endpoint(f"127.0.0.{i}", 80, 1) for i in (1, 2, 3)])
    after = [lb.pick(PickContext(hash_key=k)).address for k in keys]
    moved = sum(1 for b, a in zip(before, after, strict=True) if b != a and b != "127.0.0.4")
    # mostly the removed host's keys move; the ring grows each host's share of points
    # (as Envoy's does), Maglev's table refills a few slots
    assert moved / 4000 < (0.12 if policy == "RING_HASH" else 0.05)


def test_ring_size_at_least_minimum():
    lb = RingHashLoadBalancer(cluster([1, 2, 5]))
    lb.pick()
    assert lb.ring_size >= 1024


def test_maglev_table_build_is_fast_and_prime_checked():
    cl = cluster([1] * 20)
    t = time.perf_counter()
    MaglevLoadBalancer(cl).pick()
    assert time.perf_counter() - t < 1.0
    with pytest.raises(ValueError, match="table_size"):
        MaglevLbConfig(table_size=65536)


def test_compute_hash_key_from_header_cookie_query_and_source_ip():
    headers = {"x-user": "alice"}
    def k(*policies, ip="10.0.0.1"):
        return compute_hash_key(policies, headers=headers.get, cookies={"sid": "s1"}.get,
                                query={"u": "q"}.get, source_ip=ip)
    assert k(HashPolicy(header_name="X-User")) == hash64("alice")
    assert k(HashPolicy(cookie_name="sid")) == hash64("s1")
    assert k(HashPolicy(query_parameter_name="u")) == hash64("q")
    assert k(HashPolicy(source_ip=True)) == hash64("10.0.0.1")
    assert k(HashPolicy(header_name="absent")) is None
    assert k(HashPolicy(header_name="x-user", terminal=True), HashPolicy(source_ip=True)) == hash64("alice")
    both = k(HashPolicy(header_name="x-user"), HashPolicy(source_ip=True))
    assert both not in (hash64("alice"), hash64("10.0.0.1"))
    with pytest.raises(ValueError, match="exactly one"):
        HashPolicy(header_name="a", source_ip=True)
