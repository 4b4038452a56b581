"""ProxyServer end to end on loopback: real aiohttp backends, real sockets, the routing,
weights, retries, timeouts and local replies a bootstrap configures."""

from __future__ import annotations

import asyncio
import collections

import aiohttp
import pytest
from aiohttp import web

from proxy.engine.config import ConfigError, from_dict
from proxy.engine.server import ProxyServer

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def bootstrap(routes: list[dict], clusters: dict[str, list[int]], *, lb_policy: str = "ROUND_ROBIN") -> dict:
    return {"static_resources": {
        "listeners": [{"name": "http", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                       "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                       "typed_config": {
                                                           "@type": HCM, "stat_prefix": "ingress",
                                                           "route_config": {"name": "local", "virtual_hosts": [
                                                               {"name": "all", "domains": ["*"], "routes": routes}]},
                                                           "http_filters": [{"name": "envoy.filters.http.router",
                                                                             "typed_config": {"@type": ROUTER}}]}}]}]}],
        "clusters": [{"name": name, "connect_timeout": "1s", "lb_policy": lb_policy,
                      "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                          {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}
                          for p in ports]}]}}
                     for name, ports in clusters.items()],
    }}


class Backend:
    """An aiohttp server answering `name` (or `status`, after `delay`), counting hits."""

    def __init__(self, name: str, *, status: int = 200, delay: float = 0.0) -> None:
        self.name, self.status, self.delay, self.hits = name, status, delay, 0
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=self.status, text=f"{self.name} {request.path}")

    async def __aenter__(self) -> Backend:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def serve(cfg: dict) -> tuple[ProxyServer, str]:
    server = ProxyServer(from_dict(cfg))
    await server.start()
    host, port = server.addresses()[0]
    return server, f"http://{host}:{port}"


async def test_routes_by_path_and_header_and_counts_stats():
    async with Backend("a") as a, Backend("b") as b:
        routes = [{"match": {"prefix": "/", "headers": [{"name": "x-canary", "exact_match": "1"}]},
                   "route": {"cluster": "b"}},
                  {"match": {"prefix": "/b/"}, "route": {"cluster": "b", "prefix_rewrite": "/"}},
                  {"match": {"prefix": "/"}, "route": {"cluster": "a"}}]
        server, url = await serve(bootstrap(routes, {"a": [a.port], "b": [b.port]}))
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(url + "/x") as r:
                    assert (r.status, await r.text()) == (200, "a /x")
                async with s.get(url + "/b/y") as r:
                    assert (r.status, await r.text()) == (200, "b /y")
                async with s.get(url + "/x", headers={"x-canary": "1"}) as r:
                    assert await r.text() == "b /x"
            st = server.stats
            assert st.value("cluster.a.upstream_rq_total") == 1
            assert st.value("cluster.b.upstream_rq_2xx") == 2
            assert st.value("http.ingress.downstream_rq_total") == 3
        finally:
            await server.stop()


async def test_weighted_clusters_90_10_within_3_percent():
    async with Backend("a") as a, Backend("b") as b:
        routes = [{"match": {"prefix": "/"}, "route": {"weighted_clusters": {"clusters": [
            {"name": "a", "weight": 90}, {"name": "b", "weight": 10}]}}}]
        server, url = await serve(bootstrap(routes, {"a": [a.port], "b": [b.port]}))
        try:
            counts: collections.Counter[str] = collections.Counter()
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20)) as s:
                async def one() -> None:
                    async with s.get(url + "/") as r:
                        counts[(await r.text()).split()[0]] += 1
                for _ in range(10):
                    await asyncio.gather(*(one() for _ in range(200)))
            assert sum(counts.values()) == 2000
            assert abs(counts["b"] / 2000 - 0.10) <= 0.03, counts
        finally:
            await server.stop()


async def test_retry_on_503_goes_to_another_host():
    async with Backend("bad", status=503) as bad, Backend("good") as good:
        routes = [{"match": {"prefix": "/"}, "route": {"cluster": "c", "retry_policy": {
            "retry_on": "5xx", "num_retries": 2, "retry_host_predicate": [
                {"name": "envoy.retry_host_predicates.previous_hosts"}]}}}]
        server, url = await serve(bootstrap(routes, {"c": [bad.port, good.port]}))
        try:
            async with aiohttp.ClientSession() as s:
                for _ in range(4):
                    async with s.get(url + "/r") as r:
                        assert (r.status, await r.text()) == (200, "good /r")
            assert bad.hits >= 1
            assert server.stats.value("cluster.c.upstream_rq_retry") == bad.hits
            assert server.stats.value("cluster.c.upstream_rq_503") == bad.hits
        finally:
            await server.stop()


async def test_without_retry_policy_the_503_passes_and_a_dead_host_is_503():
    async with Backend("bad", status=503) as bad:
        routes = [{"match": {"prefix": "/dead"}, "route": {"cluster": "dead"}},
                  {"match": {"prefix": "/"}, "route": {"cluster": "c"}}]
        server, url = await serve(bootstrap(routes, {"c": [bad.port], "dead": [1]}))
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(url + "/") as r:
                    assert r.status == 503 and await r.text() == "bad /"
                async with s.get(url + "/dead") as r:
                    assert r.status == 503
                    assert "connection failure" in await r.text()
        finally:
            await server.stop()


async def test_route_timeout_answers_504():
    async with Backend("slow", delay=1.0) as slow:
        routes = [{"match": {"prefix": "/"}, "route": {"cluster": "c", "timeout": "0.2s"}}]
        server, url = await serve(bootstrap(routes, {"c": [slow.port]}))
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            async with aiohttp.ClientSession() as s, s.get(url + "/") as r:
                assert r.status == 504 and await r.text() == "upstream request timeout"
            assert 0.15 < loop.time() - t0 < 1.0
            assert server.stats.value("cluster.c.upstream_rq_timeout") == 1
        finally:
            await server.stop()


async def test_direct_response_redirect_and_no_route():
    routes = [{"match": {"path": "/hi"}, "direct_response": {"status": 418, "body": {"inline_string": "tea"}}},
              {"match": {"path": "/old"}, "redirect": {"path_redirect": "/new"}}]
    server, url = await serve(bootstrap(routes, {}))
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/hi") as r:
                assert (r.status, await r.text()) == (418, "tea")
            async with s.get(url + "/old", allow_redirects=False) as r:
                assert r.status == 301 and r.headers["location"].endswith("/new")
            async with s.get(url + "/nothing") as r:
                assert r.status == 404
        assert server.stats.value("http.ingress.no_route") == 1
    finally:
        await server.stop()


def test_a_bad_cluster_is_refused_naming_the_field():
    cfg = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "c"}}], {"c": [1]})
    cfg["static_resources"]["clusters"][0]["maglev_lb_config"] = {"table_size": 1000}
    cfg["static_resources"]["clusters"][0]["lb_policy"] = "MAGLEV"
    with pytest.raises(ConfigError, match=r"clusters\[0\]"):
        ProxyServer(from_dict(cfg))


async def test_swap_serves_the_new_config_and_a_bad_one_keeps_the_old():
    async with Backend("a") as a, Backend("b") as b:
        cfg = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}], {"a": [a.port], "b": [b.port]})
        server, url = await serve(cfg)
        port = server.addresses()[0][1]
        try:
            cfg2 = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "b"}}], {"a": [a.port], "b": [b.port]})
            cfg2["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
            bad = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "b"}}], {"b": [b.port]})
            bad["static_resources"]["clusters"][0]["lb_policy"] = "MAGLEV"
            bad["static_resources"]["clusters"][0]["maglev_lb_config"] = {"table_size": 1000}
            async with aiohttp.ClientSession() as s:
                async with s.get(url + "/") as r:
                    assert (await r.text()).startswith("a")
                await server.swap(from_dict(cfg2))
            async with aiohttp.ClientSession() as s:
                async with s.get(url + "/") as r:
                    assert (await r.text()).startswith("b")
                with pytest.raises(ConfigError):
                    await server.swap(from_dict(bad))
                async with s.get(url + "/") as r:
                    assert (await r.text()).startswith("b")
        finally:
            await server.stop()


async def test_admin_endpoints():
    from proxy.engine.admin import start_admin

    async with Backend("a") as a:
        server, url = await serve(bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}],
                                            {"a": [a.port, 1]}))
        runner, port = await start_admin(server, "127.0.0.1", 0)
        admin = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as s:
                for _ in range(4):  # round robin: 2 to a, 2 to the dead port 1
                    async with s.get(url + "/") as r:
                        await r.read()
                async with s.get(admin + "/ready") as r:
                    assert (r.status, await r.text()) == (200, "LIVE\n")
                async with s.get(admin + "/clusters") as r:
                    text = await r.text()
                assert f"a::127.0.0.1:{a.port}::rq_total::2" in text
                assert "a::127.0.0.1:1::rq_error::2" in text
                assert f"a::127.0.0.1:{a.port}::health_flags::healthy" in text
                async with s.get(admin + "/stats", params={"filter": "^cluster\\.a\\."}) as r:
                    text = await r.text()
                assert "cluster.a.upstream_rq_total: 4\n" in text and "http." not in text
                async with s.get(admin + "/stats/prometheus") as r:
                    assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="a"} 4' in await r.text()
                async with s.get(admin + "/config_dump") as r:
                    dump = await r.json()
                kinds = [c["@type"].rsplit(".", 1)[1] for c in dump["configs"]]
                assert "ClustersConfigDump" in kinds and "ListenersConfigDump" in kinds
        finally:
            await runner.cleanup()
            await server.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_cli_serves_reloads_keeps_old_on_bad_config_and_drains_on_sigterm(tmp_path):
    import json
    import signal
    import sys

    async with Backend("a") as a, Backend("b") as b:
        port, admin_port = _free_port(), _free_port()

        def write(cluster: str, *, broken: bool = False) -> None:
            cfg = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": cluster}}],
                            {"a": [a.port], "b": [b.port]})
            cfg["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
            cfg["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}}
            if broken:
                cfg["static_resources"]["clusters"][0]["lb_policy"] = "NOPE"
            (tmp_path / "envoy.yaml").write_text(json.dumps(cfg))

        write("a")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from proxy.engine.cli import proxy_command; proxy_command()",
            "--config", str(tmp_path / "envoy.yaml"), stderr=asyncio.subprocess.PIPE)
        lines: list[str] = []

        async def until(text: str) -> None:
            while not any(text in line for line in lines):
                line = await asyncio.wait_for(proc.stderr.readline(), 10)  # type: ignore[union-attr]
                assert line, "".join(lines)
                lines.append(line.decode())

        async def body(s: aiohttp.ClientSession) -> str:
            async with s.get(f"http://127.0.0.1:{port}/") as r:
                return await r.text()

        try:
            await until("serving")
            async with aiohttp.ClientSession() as s:
                assert (await body(s)).startswith("a")
                async with s.get(f"http://127.0.0.1:{admin_port}/ready") as r:
                    assert await r.text() == "LIVE\n"
            write("b", broken=True)
            await until("config reload failed")
            assert "lb_policy" in lines[-1]
            async with aiohttp.ClientSession() as s:
                assert (await body(s)).startswith("a")
            write("b")
            await until("config reloaded")
            async with aiohttp.ClientSession() as s:
                assert (await body(s)).startswith("b")
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_swap_under_load_drops_no_request():
    async with Backend("a") as a, Backend("b") as b:
        def cfg(cluster: str, port: int = 0) -> dict:
            c = bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": cluster}}], {"a": [a.port], "b": [b.port]})
            c["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
            return c

        server, url = await serve(cfg("a"))
        port = server.addresses()[0][1]
        seen: collections.Counter[str] = collections.Counter()
        errors: list[BaseException] = []
        done = asyncio.Event()

        async def client() -> None:
            async with aiohttp.ClientSession() as s:
                while not done.is_set():
                    try:
                        async with s.get(url + "/") as r:
                            assert r.status == 200
                            seen[(await r.text())[0]] += 1
                    except Exception as e:  # noqa: BLE001 - every failure is the test's finding
                        errors.append(e)
        try:
            clients = [asyncio.create_task(client()) for _ in range(8)]
            for i in range(6):
                await asyncio.sleep(0.1)
                await server.swap(from_dict(cfg("ab"[(i + 1) % 2], port)))
            await asyncio.sleep(0.1)
            done.set()
            await asyncio.gather(*clients)
            assert not errors, errors[:3]
            assert seen["a"] > 50 and seen["b"] > 50, seen
        finally:
            await server.stop()


async def test_a_client_leaving_mid_request_frees_the_host_for_least_request():
    async with Backend("slow", delay=0.5) as slow:
        server, url = await serve(bootstrap([{"match": {"prefix": "/"}, "route": {"cluster": "c", "timeout": "5s"}}],
                                            {"c": [slow.port]}, lb_policy="LEAST_REQUEST"))
        try:
            host, port = server.addresses()[0]
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            await writer.drain()
            h = server.clusters["c"].cluster.hosts[0]
            for _ in range(100):
                if h.active_requests == 1:
                    break
                await asyncio.sleep(0.01)
            assert h.active_requests == 1
            writer.close()
            for _ in range(100):
                if h.active_requests == 0:
                    break
                await asyncio.sleep(0.01)
            assert (h.active_requests, h.rq_total) == (0, 1)
        finally:
            await server.stop()
