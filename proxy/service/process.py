"""The `mkp kube-proxy` process: the proxy plus its metrics server, on uvloop, until a signal.

`run_proxy` is the async core (tests and in-process callers use it); `main` is what the
CLI calls, and what a Python caller calls to run a node's proxy in the foreground.

NetworkPolicy applies to proxied connections by default: the proxy's own connection to
an endpoint comes from the host, which policy always lets through (traffic from a pod's
node), so the proxy asks cni.netpol's model about the real client first.

The proxy writes nothing to the API (its user agent says kube-proxy all the same),
raises its open-file limit to the hard limit (every proxied connection costs two
descriptors; Go programs such as kube-proxy get this from their runtime) and stops
cleanly on SIGTERM or SIGINT, closing its listeners.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import sys
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from minikube_py.client import (
    ApiClient,
    SharedInformerFactory,
    client_for,
    run_until_signalled,
    setup_process,
)
from proxy.service.cli import DEFAULT_METRICS_ADDRESS, parse_host_port
from proxy.service.listeners import ConnectionPolicy
from proxy.service.metrics import ProxyMetrics
from proxy.service.model import ProxyConfig
from proxy.service.proxier import ServiceProxy
from proxy.service.udp import DEFAULT_IDLE_TIMEOUT

log = logging.getLogger("proxy.service")

FIELD_MANAGER = "kube-proxy"
USER_AGENT = "kube-proxy/minikube_py"


@contextlib.asynccontextmanager
async def metrics_server(proxy: ServiceProxy, address: str | None) -> AsyncIterator[int | None]:
    """/metrics and /healthz on `address`; yields the bound port (None if not serving).
    A failed bind is logged, not fatal: the proxy itself still works."""
    if not address:
        yield None
        return

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=proxy.metrics.render().encode(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def healthz(_: web.Request) -> web.Response:
        code, body = proxy.metrics.healthz(proxy.synced())
        return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    host, port = parse_host_port(address)
    bound: int | None = None
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        log.info("serving /metrics and /healthz on %s:%d", host, bound)
    except OSError as exc:
        log.error("cannot serve metrics on %s: %s", address, exc)
    try:
        yield bound
    finally:
        await runner.cleanup()


async def run_proxy(client: ApiClient, config: ProxyConfig, *, metrics_bind_address: str | None = None,
                    policy: ConnectionPolicy | None = None, udp_idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                    metrics: ProxyMetrics | None = None, network_policy: bool = False,
                    nftables: bool = False) -> None:
    """Run one node's proxy (and its metrics server) until cancelled.

    `policy` vetoes connections; `network_policy=True` makes one in this process
    instead: cni.netpol's agent for this node, on the proxy's own informers, which
    answers for proxied connections and, with `nftables` (bridge network), also keeps
    the node's kernel rules for traffic between pods."""
    informers = SharedInformerFactory(client)
    agent = None
    if network_policy:
        from cni.netpol.agent import NetworkPolicyAgent

        agent = NetworkPolicyAgent(client, config.node_name, nftables_enabled=nftables, factory=informers)
        policy = agent
    proxy = ServiceProxy(informers, config, policy=policy, metrics=metrics, udp_idle_timeout=udp_idle_timeout)
    log.info("service proxy for node %s: cluster IPs %s, NodePorts on %s, load balancers %s",
             config.node_name,
             ("on " + ",".join(config.bind_devices) if config.bind_devices else "on any device")
             if config.cluster_ips else "off",
             ",".join(config.nodeport_addresses) or "nothing", "on" if config.load_balancers else "off")
    try:
        if agent is not None:
            informers.start()
            await agent.start()
        async with metrics_server(proxy, metrics_bind_address):
            await proxy.run()
    finally:
        if agent is not None:
            await agent.stop()
        await informers.shutdown()


def raise_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(kubeconfig: str | None, server: str | None, hostname_override: str, *,
         cluster_ip_bind_devices: tuple[str, ...] = (), cluster_ips: bool = True,
         nodeport_addresses: tuple[str, ...] = ("127.0.0.1",), load_balancers: bool = True,
         metrics_bind_address: str | None = DEFAULT_METRICS_ADDRESS, udp_timeout: float = DEFAULT_IDLE_TIMEOUT,
         policy: ConnectionPolicy | None = None, network_policy: bool = True, nftables: bool = False) -> None:
    """Entry point of `mkp kube-proxy` (blocks until SIGTERM/SIGINT); exit 1 on bad flags."""
    import uvloop

    setup_process()
    try:
        config = ProxyConfig(hostname_override, tuple(cluster_ip_bind_devices), cluster_ips,
                             tuple(nodeport_addresses), load_balancers)
        if metrics_bind_address:
            parse_host_port(metrics_bind_address)
        client = client_for(kubeconfig, server, field_manager=FIELD_MANAGER, user_agent=USER_AGENT)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        sys.exit(1)
    raise_open_file_limit()

    async def serve() -> None:
        await run_until_signalled(client, lambda: run_proxy(
            client, config, metrics_bind_address=metrics_bind_address, policy=policy,
            udp_idle_timeout=udp_timeout, network_policy=network_policy, nftables=nftables), "proxy")

    uvloop.run(serve())
