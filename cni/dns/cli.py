"""`mkp dns`: the cluster DNS server process, and `run_dns` to run it from Python.

Start-up follows CoreDNS's: start the informers, wait for them to sync (at most 5 s,
then serve anyway and say SERVFAIL instead of NXDOMAIN until they have), listen on
UDP and TCP, then publish the endpoint (the kube-dns Service and slice) so the service
proxy sends queries here only once something answers. SIGTERM/SIGINT stop it cleanly:
the endpoint is marked terminating, the listeners close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence

import click
from aiohttp import web

from cni.addressing import BRIDGE_SERVICE_CIDR, CLUSTER_DOMAIN, cluster_dns_ip
from cni.dns.kubedns import KubeDns, KubeDnsController
from cni.dns.metrics import Metrics, http_app
from cni.dns.server import DnsHandler, DnsServer, Listen
from cni.dns.watch import ZoneSync
from cni.dns.zone import POD_MODES, ClusterZone
from minikube_py.client import (
    ApiClient,
    SharedInformerFactory,
    client_for,
    run_until_signalled,
    setup_process,
)

log = logging.getLogger("cni.dns")

FIELD_MANAGER = "mkp-dns"
USER_AGENT = "mkp-dns/minikube_py"
SYNC_WAIT = 5.0  # CoreDNS: "starting server with unsynced Kubernetes API" after 5 s
STOP_TIMEOUT = 3.0


async def run_dns(client: ApiClient, listens: Sequence[str], *, service_ip: str, cluster_domain: str = CLUSTER_DOMAIN,
                  metrics_address: str | None = None, pods: str = "insecure",
                  started: asyncio.Event | None = None) -> None:
    """Serve cluster DNS until cancelled. `started` is set once the listeners are up."""
    addresses = [Listen.parse(text) for text in listens]
    if not addresses:
        raise ValueError("give at least one --listen address")
    metrics_listen = Listen.parse(metrics_address) if metrics_address else None
    want = KubeDns(service_ip, addresses[0], metrics_listen)
    zone = ClusterZone(cluster_domain, [service_ip], pods=pods)
    factory = SharedInformerFactory(client)
    sync = ZoneSync(factory, zone)
    kube_dns = KubeDnsController(client, factory, want)
    metrics = Metrics()
    server = DnsServer(DnsHandler(zone, metrics), addresses)
    runner: web.AppRunner | None = None
    tasks: list[asyncio.Task[None]] = []
    factory.start()
    try:
        tasks.append(asyncio.create_task(sync.run(), name="dns zone"))
        if metrics_listen is not None:
            runner = await _serve_http(metrics, lambda: zone.synced, metrics_listen)
        try:
            await asyncio.wait_for(sync.wait_synced(), SYNC_WAIT)
        except TimeoutError:
            log.warning("starting server with unsynced Kubernetes API")
            tasks.append(asyncio.create_task(sync.wait_synced(), name="dns sync"))
        await server.start()
        tasks.append(asyncio.create_task(kube_dns.run(), name="kube-dns"))
        if started is not None:
            started.set()
        await asyncio.gather(*tasks)
    finally:
        await _stop(kube_dns, server, runner, tasks, factory)


async def _serve_http(metrics: Metrics, ready: object, listen: Listen) -> web.AppRunner:
    runner = web.AppRunner(http_app(metrics, ready), access_log=None)  # type: ignore[arg-type]
    await runner.setup()
    await web.TCPSite(runner, listen.host, listen.port).start()
    log.info("serving /metrics, /health and /ready on %s:%d", listen.host, listen.port)
    return runner


async def _stop(kube_dns: KubeDnsController, server: DnsServer, runner: web.AppRunner | None,
                tasks: list[asyncio.Task[None]], factory: SharedInformerFactory) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(kube_dns.mark_terminating(), STOP_TIMEOUT)
    await server.close()
    if runner is not None:
        await runner.cleanup()
    await factory.shutdown()


def main(kubeconfig: str | None, server: str | None, listens: Sequence[str], service_ip: str,
         cluster_domain: str = CLUSTER_DOMAIN, metrics_address: str | None = None, pods: str = "insecure") -> None:
    """Entry point of `mkp dns` (blocks until SIGTERM/SIGINT; exit 1 on bad arguments)."""
    import uvloop

    setup_process()
    try:
        client = client_for(kubeconfig, server, field_manager=FIELD_MANAGER, user_agent=USER_AGENT)
        for text in (*listens, *([metrics_address] if metrics_address else [])):
            Listen.parse(text)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        sys.exit(1)

    async def serve() -> None:
        await run_until_signalled(client, lambda: run_dns(
            client, listens, service_ip=service_ip, cluster_domain=cluster_domain,
            metrics_address=metrics_address, pods=pods), "dns")

    try:
        uvloop.run(serve())
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        sys.exit(1)


@click.command("dns")
@click.option("--kubeconfig", default=None, help="kubeconfig of the cluster to serve.")
@click.option("--master", "--server", "server", default=None, help="API server URL (overrides the kubeconfig's).")
@click.option("--listen", "listens", multiple=True, required=True,
              help="IP:PORT to serve DNS on, UDP and TCP (repeatable; the first is the kube-dns endpoint).")
@click.option("--service-ip", default=cluster_dns_ip(BRIDGE_SERVICE_CIDR), show_default=True,
              help="clusterIP of the kube-dns Service.")
@click.option("--cluster-domain", default=CLUSTER_DOMAIN, show_default=True, help="The cluster's DNS domain.")
@click.option("--metrics-bind-address", "metrics_address", default=None,
              help="IP:PORT for /metrics, /health and /ready (off when not given).")
@click.option("--pods", type=click.Choice(POD_MODES), default="insecure", show_default=True,
              help="Pod A records a-b-c-d.<ns>.pod.<domain>: for any address, only existing pods', or none.")
def dns_command(kubeconfig: str | None, server: str | None, listens: tuple[str, ...], service_ip: str,
                cluster_domain: str, metrics_address: str | None, pods: str) -> None:
    """Serve cluster DNS (CoreDNS's kubernetes plugin) for Services and pods."""
    main(kubeconfig, server, listens, service_ip, cluster_domain, metrics_address, pods)
