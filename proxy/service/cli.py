"""`mkp kube-proxy`: one node's service proxy as a process (kube-proxy's place in a cluster).

    mkp kube-proxy --kubeconfig K --hostname-override NODE
              [--cluster-ip-bind-device DEV ...] [--no-cluster-ips]
              [--nodeport-addresses 127.0.0.1,192.168.49.2]
              [--load-balancers/--no-load-balancers]
              [--metrics-bind-address 127.0.0.1:10249] [--udp-timeout 30s]
              [--network-policy/--no-network-policy] [--network-policy-nftables]

Only the click command and its flag parsing live here, importing nothing heavy, so
registering the command costs `mkp` nothing at start-up; the process itself is
proxy.service.process (`main`, `run_proxy`).
"""

from __future__ import annotations

import click

DEFAULT_METRICS_ADDRESS = "127.0.0.1:10249"
DEFAULT_UDP_TIMEOUT = "30s"


def parse_host_port(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[V6]:PORT` too); ValueError with the flag's name otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--metrics-bind-address {text!r}: give HOST:PORT, e.g. 127.0.0.1:10249")
    return host.strip("[]"), int(port)


def parse_duration(text: str) -> float:
    """`250ms`, `2s`, `1m` or plain seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for suffix in ("ms", "s", "m"):
        if text.endswith(suffix):
            number, scale = text[: -len(suffix)], units[suffix]
            break
    else:
        number, scale = text, 1.0
    try:
        value = float(number) * scale
    except ValueError:
        raise ValueError(f"--udp-timeout {text!r}: give a duration such as 250ms, 30s or 1m") from None
    if value <= 0:
        raise ValueError(f"--udp-timeout {text!r} must be greater than 0")
    return value


def _split_addresses(_: click.Context, __: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(a.strip() for v in value for a in v.split(",") if a.strip())


@click.command("kube-proxy")
@click.option("--kubeconfig", default=None, help="kubeconfig of the cluster to join.")
@click.option("--master", "--server", "server", default=None, help="API server URL; overrides the kubeconfig's.")
@click.option("--hostname-override", required=True, help="This proxy's node name (endpoints' nodeName, topology).")
@click.option("--cluster-ip-bind-device", "bind_devices", multiple=True, metavar="DEV",
              help="Bind ClusterIP and externalIP listeners to this device (repeatable); none: any device.")
@click.option("--cluster-ips/--no-cluster-ips", default=True, show_default=True,
              help="Serve Service ClusterIPs (off for other nodes sharing loopback).")
@click.option("--nodeport-addresses", multiple=True, callback=_split_addresses, default=("127.0.0.1",),
              show_default=True, help="Comma-separated addresses NodePorts listen on.")
@click.option("--load-balancers/--no-load-balancers", default=True, show_default=True,
              help="Listen on status.loadBalancer.ingress addresses.")
@click.option("--metrics-bind-address", default=DEFAULT_METRICS_ADDRESS, show_default=True,
              help="HOST:PORT of /metrics and /healthz; empty to serve none.")
@click.option("--udp-timeout", default=DEFAULT_UDP_TIMEOUT, show_default=True, help="Idle time after which a UDP flow ends.")
@click.option("--network-policy/--no-network-policy", default=True, show_default=True,
              help="Drop proxied connections NetworkPolicy denies (asks cni.netpol's agent, in this process).")
@click.option("--network-policy-nftables/--no-network-policy-nftables", default=False, show_default=True,
              help="The agent also enforces NetworkPolicy between this node's pods in the kernel (bridge network: "
                   "nftables table inet mkp_netpol_<node>).")
def proxy_command(kubeconfig: str | None, server: str | None, hostname_override: str, bind_devices: tuple[str, ...],
                  cluster_ips: bool, nodeport_addresses: tuple[str, ...], load_balancers: bool,
                  metrics_bind_address: str, udp_timeout: str, network_policy: bool,
                  network_policy_nftables: bool) -> None:
    """Run one node's service proxy (ClusterIP, NodePort, LoadBalancer) in the foreground."""
    if not kubeconfig and not server:
        raise click.UsageError("give --kubeconfig or --server")
    from proxy.service.model import ProxyConfig

    try:
        timeout = parse_duration(udp_timeout)
        if metrics_bind_address:
            parse_host_port(metrics_bind_address)
        ProxyConfig(hostname_override, bind_devices, cluster_ips, nodeport_addresses, load_balancers)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    from proxy.service.process import main

    main(kubeconfig, server, hostname_override, cluster_ip_bind_devices=bind_devices, cluster_ips=cluster_ips,
         nodeport_addresses=nodeport_addresses, load_balancers=load_balancers,
         metrics_bind_address=metrics_bind_address or None, udp_timeout=timeout, network_policy=network_policy,
         nftables=network_policy and network_policy_nftables)
