"""Resilience through a running ProxyServer, against real aiohttp backends on loopback:
retries, per-try and route timeouts, outlier ejection and its growing ejection time,
max_ejection_percent, circuit-breaker overflow (503 UO), mirrors, consistent hashing,
DNS clusters. Times are configured short (a 0.4 s base ejection time rather than 30 s);
the semantics are Envoy's whatever the scale."""

from __future__ import annotations

import asyncio
import random

import aiohttp
from aiohttp import web

from proxy.engine.config import from_dict
from tests.proxy.engine.test_server import Backend, bootstrap, serve


class Flaky(Backend):
    """Answers 503 to a `fail` share of requests (seeded), else 200."""

    def __init__(self, name: str, fail: float, seed: int = 1) -> None:
        super().__init__(name)
        self.fail = fail
        self.random = random.Random(seed)
        self.failed = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.random.random() < self.fail:
            self.failed += 1
            return web.Response(status=503, text="flaky")
        return web.Response(text=f"{self.name} {request.path}")


class Recorder(Backend):
    """Remembers each request's method, path, host header and body."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.seen: list[tuple[str, str, str, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        self.seen.append((request.method, request.path_qs, request.headers.get("host", ""), await request.read()))
        return web.Response(text=f"{self.name} {request.path}")


def flows(server) -> list:
    """Collect every finished flow's (status, flags) from the first listener."""
    seen: list = []
    server.current.handlers[0][1].observers.append(lambda f: seen.append((f.status, list(f.flags))))
    return seen


async def get_many(url: str, n: int, *, concurrency: int = 20, headers: dict | None = None) -> list[int]:
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as s:
        async def one() -> int:
            async with sem, s.get(url, headers=headers) as r:
                await r.read()
                return r.status
        return await asyncio.gather(*(one() for _ in range(n)))


def route(cluster: str, **extra: object) -> list[dict]:
    return [{"match": {"prefix": "/"}, "route": {"cluster": cluster, **extra}}]


def istio_retries(cfg: dict) -> dict:
    """max_retries as istiod writes it when a DestinationRule leaves maxRetries unset
    (2^32-1): Envoy's default of 3 concurrent retries would refuse most retries here."""
    for c in cfg["static_resources"]["clusters"]:
        c["circuit_breakers"] = {"thresholds": [{"max_retries": 4294967295}]}
    return cfg


async def test_retries_turn_a_pod_failing_30_percent_into_full_success():
    """The seed's policy (attempts 3, retryOn 5xx) over three pods, one of them bad:
    retries go to other hosts, so every request succeeds."""
    async with Flaky("bad", 0.3) as bad, Backend("g1") as g1, Backend("g2") as g2:
        policy = {"retry_on": "5xx,reset,connect-failure", "num_retries": 3, "per_try_timeout": "2s",
                  "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}]}
        server, url = await serve(istio_retries(bootstrap(route("svc", retry_policy=policy),
                                                          {"svc": [bad.port, g1.port, g2.port]})))
        try:
            codes = await get_many(url + "/", 600)
            assert bad.failed > 30  # the bad pod really failed
            assert codes.count(200) / len(codes) >= 0.995
            assert server.stats.value("cluster.svc.upstream_rq_retry") == bad.failed
        finally:
            await server.stop()


async def test_retries_on_one_backend_failing_30_percent_reach_99_5_percent():
    async with Flaky("only", 0.3, seed=7) as b:
        policy = {"retry_on": "5xx", "num_retries": 5,
                  "retry_back_off": {"base_interval": "0.001s", "max_interval": "0.005s"}}
        server, url = await serve(istio_retries(bootstrap(route("svc", retry_policy=policy), {"svc": [b.port]})))
        seen = flows(server)
        try:
            codes = await get_many(url + "/", 800)
            assert b.failed > 150
            assert codes.count(200) / len(codes) >= 0.995
            # a request still failing after every retry carries URX
            assert all("URX" in fl for st, fl in seen if st == 503)
        finally:
            await server.stop()


async def test_retry_limit_exceeded_is_urx_and_503():
    async with Backend("dead", status=503) as d:
        policy = {"retry_on": "5xx", "num_retries": 2, "retry_back_off": {"base_interval": "0.001s"}}
        server, url = await serve(bootstrap(route("svc", retry_policy=policy), {"svc": [d.port]}))
        seen = flows(server)
        try:
            assert await get_many(url + "/", 3) == [503] * 3
            assert d.hits == 9
            assert seen == [(503, ["URX"])] * 3
        finally:
            await server.stop()


async def test_per_try_timeout_retries_on_a_fast_host_and_route_timeout_is_ut():
    async with Backend("slow", delay=1.5) as slow, Backend("fast") as fast:
        policy = {"retry_on": "5xx", "num_retries": 2, "per_try_timeout": "0.2s",
                  "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts"}]}
        routes = [{"match": {"prefix": "/slow"}, "route": {"cluster": "slow", "timeout": "0.3s"}},
                  {"match": {"prefix": "/"}, "route": {"cluster": "both", "timeout": "5s", "retry_policy": policy}}]
        server, url = await serve(istio_retries(bootstrap(routes, {"both": [slow.port, fast.port],
                                                                   "slow": [slow.port]})))
        seen = flows(server)
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            codes = await get_many(url + "/", 10, concurrency=10)
            assert codes == [200] * 10
            assert loop.time() - t0 < 1.2  # nobody waited for the slow host's 1.5 s
            assert server.stats.value("cluster.both.upstream_rq_per_try_timeout") >= 1
            seen.clear()
            async with aiohttp.ClientSession() as s:
                t0 = loop.time()
                async with s.get(url + "/slow") as r:
                    assert r.status == 504 and await r.text() == "upstream request timeout"
                assert 0.25 < loop.time() - t0 < 1.0
            assert seen == [(504, ["UT"])]
        finally:
            await server.stop()


def _outlier_cluster(cfg: dict, name: str, **od: object) -> dict:
    for c in cfg["static_resources"]["clusters"]:
        if c["name"] == name:
            c["outlier_detection"] = od
    return cfg


def _ejected(server, name: str) -> list[int]:
    return [h.port for h in server.clusters[name].cluster.hosts if h.ejected]


async def test_five_consecutive_5xx_eject_for_base_time_then_twice_as_long():
    async with Backend("bad", status=500) as bad, Backend("good") as good:
        cfg = _outlier_cluster(bootstrap(route("svc"), {"svc": [bad.port, good.port]}), "svc",
                               consecutive_5xx=5, interval="0.1s", base_ejection_time="0.4s",
                               max_ejection_percent=50)
        server, url = await serve(cfg)
        loop = asyncio.get_running_loop()
        try:
            async def until_ejected() -> float:
                while not _ejected(server, "svc"):
                    await get_many(url + "/", 2, concurrency=1)
                return loop.time()

            await until_ejected()
            assert bad.hits == 5 and _ejected(server, "svc") == [bad.port]
            t0 = loop.time()
            hits = bad.hits
            while _ejected(server, "svc"):  # while ejected, nothing goes to it
                assert await get_many(url + "/", 1) == [200]
                await asyncio.sleep(0.02)
            first = loop.time() - t0
            assert bad.hits == hits
            assert 0.35 <= first < 0.75, first
            await until_ejected()  # 5 more consecutive errors: the second ejection
            t0 = loop.time()
            while _ejected(server, "svc"):
                await asyncio.sleep(0.02)
            second = loop.time() - t0
            assert 0.75 <= second < 1.3, second  # 2 x base ejection time
            host = next(h for h in server.clusters["svc"].cluster.hosts if h.port == bad.port)
            assert host.times_ejected == 2
            assert server.stats.value("cluster.svc.outlier_detection.ejections_enforced_total") == 2
        finally:
            await server.stop()


async def test_max_ejection_percent_caps_ejections():
    async with Backend("b1", status=503) as b1, Backend("b2", status=503) as b2, \
            Backend("b3", status=503) as b3, Backend("b4", status=503) as b4:
        ports = [b1.port, b2.port, b3.port, b4.port]
        cfg = _outlier_cluster(bootstrap(route("svc"), {"svc": ports}), "svc", consecutive_5xx=2,
                               interval="10s", base_ejection_time="30s", max_ejection_percent=25)
        server, url = await serve(cfg)
        try:
            await get_many(url + "/", 40, concurrency=1)
            assert len(_ejected(server, "svc")) == 1  # 1 of 4 is 25 %: no second one
            assert server.stats.value("cluster.svc.outlier_detection.ejections_active") == 1
        finally:
            await server.stop()


async def test_connection_pool_overflow_is_503_uo():
    async with Backend("slow", delay=0.5) as slow:
        cfg = bootstrap(route("svc"), {"svc": [slow.port]})
        cfg["static_resources"]["clusters"][0]["circuit_breakers"] = {
            "thresholds": [{"max_connections": 1, "max_pending_requests": 1}]}
        server, url = await serve(cfg)
        seen = flows(server)
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(url + "/") as r:  # the one connection is open (as Envoy, a request
                    assert r.status == 200          # waiting for a connect is already "pending")
                seen.clear()

                async def one() -> tuple[int, str | None]:
                    async with s.get(url + "/") as r:
                        await r.read()
                        return r.status, r.headers.get("x-envoy-overloaded")
                results = await asyncio.gather(*(one() for _ in range(4)))
            assert sorted(results, key=str) == sorted([(200, None)] * 2 + [(503, "true")] * 2, key=str), results
            assert sorted(fl for st, fl in seen if st == 503) == [["UO"], ["UO"]]
            assert server.stats.value("cluster.svc.upstream_rq_pending_overflow") == 2
        finally:
            await server.stop()


async def test_max_requests_overflow_is_503_uo():
    async with Backend("slow", delay=0.4) as slow:
        cfg = bootstrap(route("svc"), {"svc": [slow.port]})
        cfg["static_resources"]["clusters"][0]["circuit_breakers"] = {"thresholds": [{"max_requests": 2}]}
        server, url = await serve(cfg)
        try:
            codes = await get_many(url + "/", 5, concurrency=5)
            assert sorted(codes) == [200, 200, 503, 503, 503]
        finally:
            await server.stop()


async def test_mirror_sends_copies_with_shadow_host_and_body():
    async with Recorder("main") as main, Recorder("shadow") as shadow:
        cfg = bootstrap([{"match": {"prefix": "/"}, "route": {
            "cluster": "main", "request_mirror_policies": [{"cluster": "shadow"}]}}],
            {"main": [main.port], "shadow": [shadow.port]})
        server, url = await serve(cfg)
        try:
            async with aiohttp.ClientSession() as s:
                for i in range(5):
                    async with s.post(url + f"/orders?i={i}", data=b"payload-%d" % i,
                                      headers={"host": "orders.shop:8080"}) as r:
                        assert r.status == 200 and (await r.text()).startswith("main")
            for _ in range(100):
                if len(shadow.seen) == 5:
                    break
                await asyncio.sleep(0.02)
            assert sorted(shadow.seen) == sorted(
                ("POST", f"/orders?i={i}", "orders.shop-shadow:8080", b"payload-%d" % i) for i in range(5))
            assert [x[2] for x in main.seen] == ["orders.shop:8080"] * 5
        finally:
            await server.stop()


async def test_mirror_percentage_and_a_dead_mirror_does_not_hurt():
    async with Recorder("main") as main, Recorder("shadow") as shadow:
        cfg = bootstrap([{"match": {"prefix": "/"}, "route": {
            "cluster": "main", "request_mirror_policies": [
                {"cluster": "shadow", "runtime_fraction": {"default_value": {"numerator": 30, "denominator": "HUNDRED"}}},
                {"cluster": "dead"}]}}],
            {"main": [main.port], "shadow": [shadow.port], "dead": [1]})
        server, url = await serve(cfg)
        try:
            assert await get_many(url + "/", 400) == [200] * 400
            await asyncio.sleep(0.2)
            # 30 % of 400 = 120, sd ~9.2: 5 sd either side
            assert 74 <= len(shadow.seen) <= 166, len(shadow.seen)
        finally:
            await server.stop()


async def test_ring_hash_keeps_a_header_on_one_host():
    backends = [Backend(f"b{i}") for i in range(4)]
    for b in backends:
        await b.__aenter__()
    try:
        cfg = bootstrap([{"match": {"prefix": "/"}, "route": {
            "cluster": "svc", "hash_policy": [{"header": {"header_name": "x-user"}}]}}],
            {"svc": [b.port for b in backends]}, lb_policy="RING_HASH")
        server, url = await serve(cfg)
        try:
            async with aiohttp.ClientSession() as s:
                owners = {}
                for user in ("ann", "bob", "cy", "dee", "eve", "fay"):
                    names = set()
                    for _ in range(5):
                        async with s.get(url + "/", headers={"x-user": user}) as r:
                            names.add((await r.text()).split()[0])
                    assert len(names) == 1, (user, names)
                    owners[user] = names.pop()
            assert len(set(owners.values())) > 1  # users spread over hosts
        finally:
            await server.stop()
    finally:
        for b in backends:
            await b.__aexit__()


async def test_strict_dns_cluster_resolves_localhost():
    async with Backend("named") as b:
        cfg = bootstrap(route("svc"), {"svc": [b.port]})
        c = cfg["static_resources"]["clusters"][0]
        c["type"] = "STRICT_DNS"
        c["dns_lookup_family"] = "V4_ONLY"
        c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"][
            "address"] = "localhost"
        server = None
        from proxy.engine.server import ProxyServer
        server = ProxyServer(from_dict(cfg))
        await server.start()
        try:
            host, port = server.addresses()[0]
            for _ in range(100):
                if server.clusters["svc"].cluster.hosts:
                    break
                await asyncio.sleep(0.02)
            assert [(h.address, h.port) for h in server.clusters["svc"].cluster.hosts] == [("127.0.0.1", b.port)]
            assert await get_many(f"http://{host}:{port}/", 3) == [200] * 3
        finally:
            await server.stop()


async def test_a_header_match_wins_over_the_weighted_split():
    """The seed's canary shape: `x-canary: true` goes to v2 always; everyone else 90/10."""
    async with Backend("v1") as v1, Backend("v2") as v2:
        routes = [{"match": {"prefix": "/", "headers": [{"name": "x-canary", "string_match": {"exact": "true"}}]},
                   "route": {"cluster": "v2"}},
                  {"match": {"prefix": "/"}, "route": {"weighted_clusters": {"clusters": [
                      {"name": "v1", "weight": 90}, {"name": "v2", "weight": 10}]}}}]
        server, url = await serve(bootstrap(routes, {"v1": [v1.port], "v2": [v2.port]}))
        try:
            async with aiohttp.ClientSession() as s:
                canary = []
                for _ in range(200):
                    async with s.get(url + "/", headers={"x-canary": "true"}) as r:
                        canary.append((await r.text()).split()[0])
                assert canary == ["v2"] * 200
                others = []
                for _ in range(400):
                    async with s.get(url + "/", headers={"x-canary": "false"}) as r:
                        others.append((await r.text()).split()[0])
            # 10 % of 400 = 40, sd 6: within 4 sd
            assert 16 <= others.count("v2") <= 64, others.count("v2")
        finally:
            await server.stop()


class RequestIds(Backend):
    def __init__(self) -> None:
        super().__init__("ids")
        self.ids: list[str | None] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.ids.append(request.headers.get("x-request-id"))
        return web.Response(text="ok")


async def test_generate_request_id_false_sends_none_upstream():
    async with RequestIds() as b:
        cfg = bootstrap(route("svc"), {"svc": [b.port]})
        server, url = await serve(cfg)
        hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["generate_request_id"] = False
        off, off_url = await serve(cfg)
        try:
            async with aiohttp.ClientSession() as s:
                for u in (url, off_url):
                    async with s.get(u + "/") as r:
                        await r.read()
            assert b.ids[0] is not None and len(b.ids[0]) == 36 and b.ids[1] is None, b.ids
        finally:
            await server.stop()
            await off.stop()
