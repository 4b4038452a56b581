"""The `mkp` command line: cluster lifecycle (`up`, `down`, `status`, `version`) and the
entry point of every component process (`mkp apiserver`, ...).

Every command is a short-lived Python process, and `mkp up` waits for one more (the API
server) to start, so start-up time is user-visible twice. Hence the rule here: import
only click and `minikube_py.config` at module level; a command imports what it needs
when it runs (the API server's aiohttp stack is never loaded by `mkp up` itself).

Components are sub-commands rather than separate scripts so a learner can run and kill
them one by one with the same tool, and `mkp up` starts them as `python -m
minikube_py.cli <component> ...` (see `minikube_py.cluster.COMPONENTS`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from minikube_py.config import DEFAULT_NAME, KUBERNETES_VERSION, ClusterPaths, ClusterState, validate_name

if TYPE_CHECKING:
    from minikube_py.cluster import Status, UpResult

PORT_HELP = (
    "API server port. Default: a free port picked on first start and then remembered, so "
    "a resumed cluster keeps its address (a new one is picked if it was taken meanwhile). "
    "Not 6443 by default: that clashes with kind, k3s, kubeadm and a second mkp cluster."
)


def _paths(name: str) -> ClusterPaths:
    try:
        return ClusterPaths.for_name(validate_name(name))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--name") from e


def _name_option(f):  # type: ignore[no-untyped-def]
    return click.option("--name", default=DEFAULT_NAME, show_default=True, help="Cluster name.")(f)


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"mkp: {message}", err=True)
    raise SystemExit(code)


# Components whose command lives with their code, imported only when invoked.
LAZY_COMMANDS = {
    "kube-proxy": ("proxy.service.cli", "proxy_command"),
    "proxy": ("proxy.engine.cli", "proxy_command"),
    "dns": ("cni.dns.cli", "dns_command"),
    "ingress": ("proxy.ingress.cli", "ingress_command"),
}


class LazyGroup(click.Group):
    """A group that imports a sub-command's module only when that command runs (or when
    help lists it), so `mkp up` does not pay for the proxy's or DNS server's imports."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *(c for c in LAZY_COMMANDS if self.get_command(ctx, c))])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            import importlib
            import importlib.util
            module, attr = LAZY_COMMANDS[cmd_name]
            try:
                if importlib.util.find_spec(module) is None:
                    return None  # not built yet: the command is simply absent
            except ModuleNotFoundError:  # its package is missing
                return None
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """mkp: a small but real local Kubernetes."""


# --- cluster lifecycle -------------------------------------------------------------


@cli.command()
@_name_option
@click.option("--port", type=click.IntRange(0, 65535), default=None, help=PORT_HELP)
@click.option("--no-merge", is_flag=True, help="Do not touch the user's kubeconfig ($KUBECONFIG or ~/.kube/config).")
@click.option("--single-process", is_flag=True, help="Run all components in one (detached) process.")
@click.option("--nodes", type=click.IntRange(0), default=None,
              help="Run N real nodes (process kubelets; default 1, kept across restarts; 0: none).")
@click.option("--fake-nodes", type=click.IntRange(0), default=None,
              help="Run N kwok-style fake nodes (kept across restarts; 0 removes them).")
@click.option("--runtime", type=click.Choice(["process", "namespaces", "fake"]), default=None,
              help="Container runtime of the real nodes (default: namespaces as root, else process).")
@click.option("--network", "network_mode", type=click.Choice(["loopback", "bridge"]), default=None,
              help="Pod network, chosen when the cluster is created (default: bridge as root with the "
                   "namespaces runtime, else loopback).")
@click.option("--ingress-ports", default=None, metavar="HTTP,HTTPS",
              help="Ports of the Ingress controller on 127.0.0.1 (default 80,443 as root, else 8080,8443).")
def up(name: str, port: int | None, no_merge: bool, single_process: bool, nodes: int | None,
       fake_nodes: int | None, runtime: str | None, network_mode: str | None, ingress_ports: str | None) -> None:
    """Start the cluster (or resume it, or confirm it is running) and return."""
    from minikube_py import cluster

    paths = _paths(name)
    began = time.monotonic()
    try:
        result = cluster.up(paths, port=port, merge=not no_merge, single_process=single_process,
                            fake_nodes=fake_nodes, nodes=nodes, runtime=runtime, network_mode=network_mode,
                            ingress_ports=ingress_ports)
    except cluster.ClusterError as e:
        _fail(str(e))
    elapsed = time.monotonic() - began
    headline = "is already running" if result.already_running else f"is up (ready in {elapsed:.2f}s)"
    click.echo(f'Cluster "{name}" {headline}.')
    for note in result.notes:
        click.echo(f"  note: {note}")
    _print_up(paths, result)


def _print_up(paths: ClusterPaths, result: UpResult) -> None:
    for comp, pid in result.pids.items():
        click.echo(f"  {comp:<24}pid {pid:<8} log {paths.log(comp)}")
    click.echo(f"  {'server':<24}{result.state.server}")
    _print_network(result)
    click.echo(f"  {'kubeconfig':<24}{paths.kubeconfig}")
    if result.merged_into:
        click.echo(f'  {"context":<24}"{paths.name}" merged into {result.merged_into} (current-context)')
    click.echo(f"  {'state':<24}{paths.home}")
    name_flag = "" if paths.name == DEFAULT_NAME else f" --name {paths.name}"
    reach = f"--context {paths.name}" if result.merged_into else f"--kubeconfig {paths.kubeconfig}"
    click.echo(f"\nReach it:  kubectl {reach} get pods")
    click.echo(f"Stop it:   mkp down{name_flag}   (add --purge to delete its state)")


def _print_network(result: UpResult) -> None:
    for line in _network_lines(result.state):
        click.echo("  " + line)


def _network_lines(state: ClusterState) -> list[str]:
    """The pod network and the Ingress address, for clusters with real nodes."""
    from minikube_py import cluster, network

    if state.mode != "multi-process" or not state.nodes:
        return []
    plan = cluster.network_plan(state)
    http, https = (network.parse_ingress_ports(state.ingress_ports) if state.ingress_ports
                   else network.default_ingress_ports())
    return [f"{'network':<24}{plan.network}: pods {', '.join(n.pod_cidr for n in plan.nodes)}; "
            f"services {plan.service_cidr}; DNS {plan.dns_ip}",
            f"{'ingress':<24}http://127.0.0.1:{http}  https://127.0.0.1:{https}"]


@cli.command()
@_name_option
@click.option("--purge", is_flag=True, help="Also delete the state directory and the kubeconfig entries.")
def down(name: str, purge: bool) -> None:
    """Stop every component and every process of the cluster."""
    from minikube_py import cluster

    paths = _paths(name)
    try:
        result = cluster.down(paths, purge=purge)
    except cluster.ClusterError as e:
        _fail(str(e))
    if not result.existed:
        click.echo(f'Cluster "{name}" does not exist ({paths.home}); nothing to do.')
        return
    killed = f", {len(result.killed)} needed SIGKILL" if result.killed else ""
    n = len(result.stopped)
    click.echo(f'Cluster "{name}" stopped ({n} process{"" if n == 1 else "es"}{killed}).')
    if result.purged:
        click.echo(f"  deleted {paths.home}")
        for path in result.kubeconfigs_cleaned:
            click.echo(f'  removed context "{name}" from {path}')
    else:
        click.echo(f"  state kept in {paths.home}; `mkp up{'' if name == DEFAULT_NAME else ' --name ' + name}` resumes it")


@cli.command()
@_name_option
def status(name: str) -> None:
    """Show the cluster's components and health; exit 1 unless it is running and ready."""
    from minikube_py import cluster

    st = cluster.status(_paths(name))
    _print_status(st)
    if not st.running:
        raise SystemExit(1)


def _print_status(st: Status) -> None:
    if st.state is None:
        click.echo(f'cluster     {st.paths.name}: not found ({st.paths.home})')
        return
    overall = "running" if st.running else ("degraded" if any(c.pid for c in st.components) else "stopped")
    click.echo(f"{'cluster':<24}{st.paths.name}: {overall}")
    for c in st.components:
        state = f"pid {c.pid:<8} running" if c.pid else "not running"
        click.echo(f"{c.name:<24}{state:<22} log {c.log}")
    health = "ready (/readyz 200)" if st.ready else "not answering /readyz"
    click.echo(f"{'server':<24}{st.state.server}  {health}")
    for line in _network_lines(st.state):
        click.echo(line)
    click.echo(f"{'kubeconfig':<24}{st.paths.kubeconfig}")
    if st.state.merged_kubeconfig:
        click.echo(f'{"context":<24}"{st.paths.name}" in {st.state.merged_kubeconfig}')
    click.echo(f"{'state':<24}{st.paths.home}")


@cli.command()
@_name_option
def version(name: str) -> None:
    """Print mkp's version and the Kubernetes version it serves."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        mine = dist_version("minikube_py")
    except PackageNotFoundError:
        mine = "unknown (not installed)"
    click.echo(f"mkp version: {mine}")
    click.echo(f"Kubernetes version: {KUBERNETES_VERSION}")
    served = _served_version(_paths(name))
    if served:
        click.echo(f'Server version (cluster "{name}"): {served}')


def _served_version(paths: ClusterPaths) -> str | None:
    """gitVersion from a running cluster's /version, if one is up."""
    import http.client
    import json

    from minikube_py.config import LOOPBACK, ClusterState

    state = ClusterState.load(paths)
    if not state or not state.port:
        return None
    conn = http.client.HTTPConnection(LOOPBACK, state.port, timeout=1)
    try:
        conn.request("GET", "/version")
        return json.loads(conn.getresponse().read()).get("gitVersion")
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


# --- component entry points --------------------------------------------------------


def _apiserver_options(f):  # type: ignore[no-untyped-def]
    f = click.option("--service-cluster-ip-range", default="10.96.0.0/12", show_default=True,
                     help="CIDR that Service clusterIPs are allocated from.")(f)
    f = click.option("--port-file", default=None, help="Write the bound port here once listening.")(f)
    f = click.option("--port", type=click.IntRange(0, 65535), default=6443, show_default=True,
                     help="0 picks a free port (see --port-file).")(f)
    f = click.option("--bind-address", default="127.0.0.1", show_default=True)(f)
    return click.option("--data-dir", required=True, help="Directory of the store.")(f)


@cli.command()
@_apiserver_options
def apiserver(data_dir: str, bind_address: str, port: int, port_file: str | None, service_cluster_ip_range: str) -> None:
    """Run the Kubernetes API server in the foreground."""
    from apiserver.server import main as serve

    serve(data_dir, host=bind_address, port=port, port_file=port_file, service_cidr=service_cluster_ip_range)


@cli.command(name="all-in-one", hidden=True)
@_apiserver_options
@click.option("--fake-nodes", type=click.IntRange(0), default=0, show_default=True,
              help="Also run N fake nodes in this process.")
def all_in_one(data_dir: str, bind_address: str, port: int, port_file: str | None,
               service_cluster_ip_range: str, fake_nodes: int) -> None:
    """Every component in this one process (`mkp up --single-process`): the API server,
    and the controller-manager, scheduler and fake nodes as clients of it."""
    from minikube_py.allinone import main as serve_all

    serve_all(data_dir, bind_address, port, port_file, service_cluster_ip_range, fake_nodes)


def _target_options(f):  # type: ignore[no-untyped-def]
    f = click.option("--master", "--server", "server", default=None,
                     help="API server URL; overrides the kubeconfig's server.")(f)
    return click.option("--kubeconfig", default=None, help="kubeconfig of the cluster to join.")(f)


@cli.command(name="controller-manager")
@_target_options
@click.option("--controllers", default="*", show_default=True,
              help="Controllers to run: '*' for all, 'foo' to add, '-foo' to leave one out.")
@click.option("--leader-elect", type=click.BOOL, default=True, show_default=True,
              help="Elect a leader on Lease kube-system/kube-controller-manager before running.")
@click.option("--node-monitor-grace-period", envvar="MKP_NODE_MONITOR_GRACE_PERIOD", default="50s", show_default=True,
              help="How long a node may stop posting status before it is marked Unknown (env MKP_NODE_MONITOR_GRACE_PERIOD).")
@click.option("--node-startup-grace-period", envvar="MKP_NODE_STARTUP_GRACE_PERIOD", default="1m0s", show_default=True,
              help="The same for a node that never posted status (env MKP_NODE_STARTUP_GRACE_PERIOD).")
@click.option("--node-monitor-period", envvar="MKP_NODE_MONITOR_PERIOD", default="5s", show_default=True,
              help="How often node health is re-checked (env MKP_NODE_MONITOR_PERIOD).")
@click.option("--node-eviction-rate", type=float, default=0.1, show_default=True,
              help="Nodes per second tainted NoExecute per healthy zone.")
@click.option("--secondary-node-eviction-rate", type=float, default=0.01, show_default=True,
              help="The same for a partially disrupted zone of a large cluster.")
@click.option("--large-cluster-size-threshold", type=int, default=50, show_default=True,
              help="Zones with more nodes are large (see --secondary-node-eviction-rate).")
@click.option("--unhealthy-zone-threshold", type=float, default=0.55, show_default=True,
              help="Share of not-Ready nodes (at least 3) that makes a zone partially disrupted.")
@click.option("--max-endpoints-per-slice", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Endpoints per EndpointSlice at most.")
def controller_manager(kubeconfig: str | None, server: str | None, controllers: str, leader_elect: bool,
                       node_monitor_grace_period: str, node_startup_grace_period: str, node_monitor_period: str,
                       node_eviction_rate: float, secondary_node_eviction_rate: float,
                       large_cluster_size_threshold: int, unhealthy_zone_threshold: float,
                       max_endpoints_per_slice: int) -> None:
    """Run the controller-manager (Deployment, ReplicaSet, ... controllers) in the foreground."""
    from controllers.manager.process import main as run
    from controllers.nodelifecycle.config import parse_duration

    _require_target(kubeconfig, server)
    try:
        options: dict[str, object] = {
            "node_monitor_grace_period": parse_duration(node_monitor_grace_period),
            "node_startup_grace_period": parse_duration(node_startup_grace_period),
            "node_monitor_period": parse_duration(node_monitor_period),
            "node_eviction_rate": node_eviction_rate, "secondary_node_eviction_rate": secondary_node_eviction_rate,
            "large_cluster_size_threshold": large_cluster_size_threshold,
            "unhealthy_zone_threshold": unhealthy_zone_threshold, "max_endpoints_per_slice": max_endpoints_per_slice}
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    run(kubeconfig, server, controllers, leader_elect, options)


@cli.command()
@_target_options
@click.option("--fake", is_flag=True, help="Run kwok-style fake nodes (status only, no processes).")
@click.option("--node", "nodes", multiple=True, metavar="NAME", help="A node's name (repeatable with --fake).")
@click.option("--nodes", "count", type=click.IntRange(0), default=0, help="N more nodes named PREFIX1..PREFIXN.")
@click.option("--node-prefix", default="fake-node-", show_default=True)
@click.option("--capacity", default="", metavar="cpu=8,memory=32Gi,...", help="Per-node capacity over the defaults.")
@click.option("--run-seconds", type=float, default=1.0, show_default=True,
              help="Run time of run-to-completion pods (annotation mkp.dev/fake-run-seconds overrides).")
@click.option("--no-events", is_flag=True, help="Record no Pulled/Created/Started/Killing events.")
@click.option("--runtime", type=click.Choice(["process", "namespaces", "fake"]), default=None,
              help="Container runtime (default: namespaces as root, else process; fake: no processes).")
@click.option("--root-dir", default=None, help="Node state: pods, logs, images ($MKP_CLUSTER_HOME/nodes/NAME).")
@click.option("--port", type=click.IntRange(0, 65535), default=10250, show_default=True,
              help="Kubelet server port on the node's InternalIP (0: any free port).")
@click.option("--pod-cidr", default=None, help="This node's pod range (default: the next free 127.244.<i>.0/24).")
@click.option("--node-ip", default=None, help="The node's InternalIP, a loopback address (default: by index).")
@click.option("--network", type=click.Choice(["loopback", "bridge"]), default="loopback", show_default=True,
              help="Pod network: loopback (127.x addresses, the host's namespace) or bridge (root, namespaces "
                   "runtime: a network namespace per pod on --bridge; needs --pod-cidr and --node-ip).")
@click.option("--bridge", default=None, help="The node's bridge (bridge network), e.g. mkpbr1.")
@click.option("--cluster-dns", multiple=True, metavar="IP[,IP]",
              help="Nameservers of ClusterFirst pods (repeatable; none: pods fall back to the host's resolv.conf).")
@click.option("--cluster-domain", default="cluster.local", show_default=True, help="The cluster's DNS domain.")
@click.option("--resolv-conf", default="/etc/resolv.conf", show_default=True,
              help="The host resolver configuration that Default-policy pods get.")
@click.option("--netns-dir", default="/var/run/netns", show_default=True,
              help="Where pods' network namespaces are bound (bridge network; the default is `ip netns`'s).")
def kubelet(kubeconfig: str | None, server: str | None, fake: bool, nodes: tuple[str, ...], count: int,
            node_prefix: str, capacity: str, run_seconds: float, no_events: bool, runtime: str | None,
            root_dir: str | None, port: int, pod_cidr: str | None, node_ip: str | None, network: str,
            bridge: str | None, cluster_dns: tuple[str, ...], cluster_domain: str, resolv_conf: str,
            netns_dir: str) -> None:
    """Run a node agent: a kubelet whose pods are real processes (`--node NAME`), or
    kwok-style fake nodes (`--fake`)."""
    from kubelet.fake.config import FakeNodeConfig, node_names, parse_capacity
    from kubelet.fake.runner import main as run

    _require_target(kubeconfig, server)
    if not fake:
        if len(nodes) != 1 or count:
            _fail("a kubelet runs one node: give --node NAME (several nodes: several kubelets, or --fake)")
        from kubelet.agent import main as run_kubelet
        from kubelet.config import KubeletConfig, default_root, default_runtime
        try:
            config = KubeletConfig(node=nodes[0], root=Path(root_dir) if root_dir else default_root(nodes[0]),
                                   runtime=runtime or default_runtime(), port=port, pod_cidr=pod_cidr,
                                   node_ip=node_ip, network=network, bridge=bridge, cluster_dns=list(cluster_dns),
                                   cluster_domain=cluster_domain, resolv_conf=Path(resolv_conf),
                                   netns_dir=Path(netns_dir))
        except ValueError as exc:
            _fail(str(exc))
        run_kubelet(config, kubeconfig=kubeconfig, server=server)
        return
    names = [*nodes, *node_names(count, node_prefix)]
    if not names:
        _fail("give --node NAME or --nodes N")
    config = FakeNodeConfig(capacity=parse_capacity(capacity) if capacity else {}, run_seconds=run_seconds,
                            record_events=not no_events)
    run(names=names, kubeconfig=kubeconfig, server=server, config=config)


@cli.command()
@_target_options
@click.option("--leader-elect", type=click.BOOL, default=True, show_default=True,
              help="Elect a leader on Lease kube-system/kube-scheduler before scheduling.")
def scheduler(kubeconfig: str | None, server: str | None, leader_elect: bool) -> None:
    """Run the scheduler (default-scheduler) in the foreground."""
    from controllers.scheduler.process import main as run

    _require_target(kubeconfig, server)
    run(kubeconfig, server, leader_elect)


@cli.group()
def node() -> None:
    """Add, stop, start and delete nodes of a running cluster one at a time."""


@node.command(name="add")
@_name_option
@click.argument("node_name", required=False, metavar="[NODE]")
@click.option("--fake", is_flag=True, help="A kwok-style fake node (the only kind so far).")
@click.option("--capacity", default="", metavar="cpu=8,memory=32Gi,...", help="Capacity over the defaults.")
def node_add(name: str, node_name: str | None, fake: bool, capacity: str) -> None:
    """Join a node (default name: the next free fake-node-N) and wait until it is Ready."""
    from minikube_py import nodes

    if not fake:
        _fail("only fake nodes (--fake) exist so far; the process kubelet comes with the kubelet issue")
    try:
        added = nodes.add(_paths(name), name=node_name, capacity=capacity)
    except nodes.ClusterError as e:
        _fail(str(e))
    click.echo(f"node/{added} added (Ready)")


@node.command(name="list")
@_name_option
def node_list(name: str) -> None:
    """Every Node, the mkp component that runs it and whether that process runs."""
    from minikube_py import nodes

    try:
        rows = nodes.rows(_paths(name))
    except nodes.ClusterError as e:
        _fail(str(e))
    width = max([len("NAME"), *(len(r.name) for r in rows)])
    cwidth = max([len("COMPONENT"), *(len(r.component) for r in rows)])
    click.echo(f"{'NAME':<{width}}   {'COMPONENT':<{cwidth}}   {'PROCESS':<8}   READY")
    for r in rows:
        click.echo(f"{r.name:<{width}}   {r.component or '-':<{cwidth}}   {r.process:<8}   {r.ready}")


NODE_DONE = {"stop": "stopped", "start": "started", "delete": "deleted"}


def _node_action(verb: str, help_text: str):  # type: ignore[no-untyped-def]
    @node.command(name=verb, help=help_text)
    @_name_option
    @click.argument("node_name", metavar="NODE")
    def command(name: str, node_name: str) -> None:
        from minikube_py import nodes

        try:
            getattr(nodes, verb)(_paths(name), node_name)
        except nodes.ClusterError as e:
            _fail(str(e))
        click.echo(f"node/{node_name} {NODE_DONE[verb]}")
    return command


_node_action("stop", "Stop an added node's process; its Node and Lease stay and go stale, as when a kubelet dies.")
_node_action("start", "Start a stopped node's process again.")
_node_action("delete", "Stop an added node's process and delete its Node.")


@cli.group()
def explain() -> None:
    """Say why the cluster did what it did."""


@explain.command(name="schedule")
@_name_option
@click.argument("pod")
@click.option("-n", "--namespace", default="default", show_default=True)
def explain_schedule(name: str, pod: str, namespace: str) -> None:
    """Every node's filter verdicts and scores for POD, as the scheduler sees it now."""
    import asyncio

    from controllers.scheduler.process import explain_pod
    from minikube_py.client import ApiClient, ApiError

    paths = _paths(name)
    if not paths.kubeconfig.exists():
        _fail(f'cluster "{name}" has no kubeconfig; is it up? (mkp up --name {name})')

    async def run() -> str:
        async with ApiClient.from_kubeconfig(str(paths.kubeconfig)) as client:
            return await explain_pod(client, namespace, pod)

    try:
        click.echo(asyncio.run(run()))
    except ApiError as exc:
        _fail(exc.message)
    except OSError as exc:
        _fail(f"cannot reach the API server: {exc}")


def _require_target(kubeconfig: str | None, server: str | None) -> None:
    if not kubeconfig and not server:
        _fail("give --kubeconfig PATH or --master URL")


def main() -> None:
    cli(prog_name="mkp")


if __name__ == "__main__":
    main()
