"""The cluster supervisor behind `mkp up`, `mkp down` and `mkp status`.

A cluster is a fixed list of components (`COMPONENTS`), each a separate `mkp <component>`
process that `up` starts detached and then forgets: the processes outlive `mkp up`, so
every later command works from the state directory alone (pid files, `cluster.json`,
logs; see `minikube_py.config`). `up` is idempotent: it starts what is not running,
resumes a stopped cluster on its old data (and old port when free), and leaves a running
one alone. The API server comes first; components that talk to it start once /readyz
answers and the cluster kubeconfig exists.

Adding a component is one line in `COMPONENTS`: a name (also the `mkp` sub-command and
the log/pid file name) and a function from `Launch` to its arguments. `--single-process`
replaces the list by one `mkp all-in-one` process that runs every component in-process.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from minikube_py import kubeconfig, network, process
from minikube_py.config import (
    LOOPBACK,
    READY_TIMEOUT_SECONDS,
    STOP_GRACE_SECONDS,
    ClusterPaths,
    ClusterState,
    now_iso,
)


@dataclass(frozen=True)
class Launch:
    """What a component's argv may depend on. `server` is None until the API is ready."""

    paths: ClusterPaths
    port: int
    server: str | None = None
    fake_nodes: int = 0
    network: str = "loopback"


@dataclass(frozen=True)
class Component:
    """`name` is the `mkp` sub-command and names the log and pid files; `argv` gives its
    arguments."""

    name: str
    argv: Callable[[Launch], list[str]]


def _apiserver_args(launch: Launch) -> list[str]:
    p = launch.paths
    return ["--data-dir", str(p.data_dir), "--bind-address", LOOPBACK,
            "--port", str(launch.port), "--port-file", str(p.port_file),
            "--service-cluster-ip-range", network.addressing.service_cidr(launch.network)]


def _kubeconfig_args(launch: Launch) -> list[str]:
    return ["--kubeconfig", str(launch.paths.kubeconfig)]


# Start order. The first entry serves the API; the others start once it answers /readyz,
# with `launch.server` set and the cluster kubeconfig written, and talk to it only
# through that kubeconfig.
COMPONENTS: tuple[Component, ...] = (
    Component("apiserver", lambda launch: ["apiserver", *_apiserver_args(launch)]),
    Component("controller-manager", lambda launch: ["controller-manager", *_kubeconfig_args(launch)]),
    Component("scheduler", lambda launch: ["scheduler", *_kubeconfig_args(launch)]),
)
FAKE_NODE_PREFIX = "fake-node-"  # `mkp kubelet --fake --nodes N` names them fake-node-1..N


def fake_node_names(count: int) -> list[str]:
    """The nodes of the shared fake-nodes component for `--fake-nodes count`."""
    return [f"{FAKE_NODE_PREFIX}{i}" for i in range(1, count + 1)]


FAKE_NODES = Component("kubelet", lambda launch: [
    "kubelet", "--fake", "--nodes", str(launch.fake_nodes), *_kubeconfig_args(launch)])
SINGLE_PROCESS: tuple[Component, ...] = (
    Component("all-in-one", lambda launch: ["all-in-one", *_apiserver_args(launch),
                                            "--fake-nodes", str(launch.fake_nodes)]),
)
MODES = {"multi-process": COMPONENTS, "single-process": SINGLE_PROCESS}


def real_node_names(cluster: str, count: int) -> list[str]:
    """Names of the real nodes of `mkp up --nodes count`, minikube's way: the first is
    named after the cluster, the others <cluster>-m02, <cluster>-m03, ..."""
    return [cluster if i == 1 else f"{cluster}-m{i:02d}" for i in range(1, count + 1)]


KUBELET_PREFIX = process.KUBELET_COMPONENT_PREFIX  # component (process, log, pid file) of a real node


def real_node(plan: network.NetworkPlan, node: network.NodeAddresses, runtime: str = "") -> Component:
    """The process kubelet of a real node (component `kubelet-<name>`). Its pod CIDR,
    InternalIP and bridge are fixed by its number (cni.addressing), as a node-IPAM
    controller would hand them out, so kubelets started together never pick the same ones."""
    def argv(launch: Launch) -> list[str]:
        extra = ["--runtime", runtime] if runtime else []
        return ["kubelet", "--node", node.name, *plan.kubelet_args(node), *extra, *_kubeconfig_args(launch)]
    return Component(f"{KUBELET_PREFIX}{node.name}", argv)


def node_proxy(plan: network.NetworkPlan, node: network.NodeAddresses) -> Component:
    """The service proxy of a real node (component `kube-proxy-<name>`)."""
    return Component(f"{process.PROXY_COMPONENT_PREFIX}{node.name}",
                     lambda launch: ["kube-proxy", *plan.proxy_args(node), *_kubeconfig_args(launch)])


def networking(state: ClusterState, plan: network.NetworkPlan) -> tuple[Component, ...]:
    """What comes with real nodes: their service proxies, the cluster DNS, the Ingress
    controller (see minikube_py.network)."""
    if not state.nodes:
        return ()
    proxies = tuple(node_proxy(plan, n) for n in plan.nodes)
    ports = network.parse_ingress_ports(state.ingress_ports) if state.ingress_ports else network.default_ingress_ports()
    return (*proxies,
            Component("coredns", lambda launch: ["dns", *plan.dns_args(), *_kubeconfig_args(launch)]),
            Component("ingress-controller", lambda launch: ["ingress", *network.ingress_args(ports),
                                                            *_kubeconfig_args(launch)]))


def network_plan(state: ClusterState) -> network.NetworkPlan:
    return network.NetworkPlan.of(state.network or network.default_network(), real_node_names(state.name, state.nodes))


def added_node(name: str, capacity: str = "") -> Component:
    """The process of one node added by `mkp node add --fake` (component `node-<name>`)."""
    def argv(launch: Launch) -> list[str]:
        extra = ["--capacity", capacity] if capacity else []
        return ["kubelet", "--fake", "--node", name, *extra, *_kubeconfig_args(launch)]
    return Component(f"{process.NODE_COMPONENT_PREFIX}{name}", argv)


def _without_service_lb(argv: Callable[[Launch], list[str]]) -> Callable[[Launch], list[str]]:
    return lambda launch: [*argv(launch), "--controllers", "*,-service-lb-controller"]


def components_for(state: ClusterState) -> tuple[Component, ...]:
    """The components of a cluster as configured (mode, fake nodes, added nodes that are
    not stopped)."""
    base = MODES[state.mode]
    if state.mode != "multi-process":
        return base
    if not state.nodes:
        # No node runs a service proxy, so nothing would serve a load-balancer address:
        # LoadBalancer Services stay <pending>, as on minikube without `minikube tunnel`.
        base = tuple(Component(c.name, _without_service_lb(c.argv)) if c.name == "controller-manager" else c
                     for c in base)
    plan = network_plan(state)
    real = tuple(real_node(plan, n, state.runtime) for n in plan.nodes)
    fake = (FAKE_NODES,) if state.fake_nodes else ()
    added = tuple(added_node(n["name"], n.get("capacity", "")) for n in state.added_nodes
                  if n["name"] not in state.stopped_nodes)
    return (*base, *real, *networking(state, plan), *fake, *added)


class ClusterError(Exception):
    """A failure `mkp` reports to the user as one message (no traceback)."""


@dataclass
class UpResult:
    state: ClusterState
    pids: dict[str, int]
    already_running: bool = False
    merged_into: Path | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ComponentStatus:
    name: str
    pid: int | None
    log: Path


@dataclass
class Status:
    paths: ClusterPaths
    state: ClusterState | None
    components: list[ComponentStatus]
    ready: bool

    @property
    def running(self) -> bool:
        return bool(self.components) and self.ready and all(c.pid for c in self.components)


@contextlib.contextmanager
def cluster_lock(paths: ClusterPaths) -> Iterator[None]:
    """Serialise up/down of one cluster (two racing `mkp up` must not both start it)."""
    paths.home.mkdir(parents=True, exist_ok=True)
    with open(paths.lock_file, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


# --- probing -----------------------------------------------------------------------


def readyz(port: int, timeout: float = 0.5) -> bool:
    if not port:
        return False
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def port_is_free(port: int) -> bool:
    # SO_REUSEADDR as aiohttp binds, so a port in TIME_WAIT counts as free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def log_tail(log: Path, offset: int = 0, lines: int = 20) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    tail = text.splitlines()[-lines:]
    return "\n".join("    " + line for line in tail) or "    (log is empty)"


def _running_pids(paths: ClusterPaths, components: tuple[Component, ...]) -> dict[str, int]:
    pids = {}
    for c in components:
        pid = process.running_component(paths.pid(c.name), paths.home, c.name)
        if pid is not None:
            pids[c.name] = pid
    return pids


def status(paths: ClusterPaths) -> Status:
    state = ClusterState.load(paths)
    names = state.components if state else []
    comps = []
    for name in names:
        pid = process.running_component(paths.pid(name), paths.home, name)
        comps.append(ComponentStatus(name, pid, paths.log(name)))
    ready = bool(state and comps and comps[0].pid and readyz(state.port))
    return Status(paths, state, comps, ready)


# --- starting ----------------------------------------------------------------------


def start_component(component: Component, launch: Launch) -> tuple[subprocess.Popen[bytes], int]:
    """Spawn one component; returns the process and the log offset its output starts at."""
    paths = launch.paths
    log = paths.log(component.name)
    with open(log, "ab") as f:
        f.write(f"--- {now_iso()} mkp up: starting {component.name}\n".encode())
        offset = f.tell()
    argv = process.cli_argv(*component.argv(launch))
    env = process.component_env(paths.home, component.name)
    proc = process.spawn_detached(argv, log=log, env=env, cwd=paths.home)
    process.write_pid(paths.pid(component.name), proc.pid)
    return proc, offset


def _start_api(component: Component, launch: Launch) -> tuple[int, int]:
    """Start the API-serving component and wait for /readyz; returns (pid, port). On any
    failure, Ctrl-C included, the half-started process is stopped again."""
    paths = launch.paths
    paths.port_file.unlink(missing_ok=True)
    proc, offset = start_component(component, launch)
    try:
        return proc.pid, _poll_ready(proc, component, paths)
    except BaseException as e:
        process.stop([proc.pid], grace=1.0)
        paths.pid(component.name).unlink(missing_ok=True)
        if isinstance(e, ClusterError):
            log = paths.log(component.name)
            raise ClusterError(f"{e}; last lines of {log}:\n{log_tail(log, offset)}") from None
        raise


def _poll_ready(proc: subprocess.Popen[bytes], component: Component, paths: ClusterPaths) -> int:
    """The port from the port file, once /readyz answers 200 on it."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    port = 0
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise ClusterError(f"{component.name} exited with code {code} before it was ready")
        if not port:
            port = process.read_pid(paths.port_file) or 0  # same one-integer format
        if port and readyz(port):
            return port
        time.sleep(0.02)
    raise ClusterError(f"{component.name} did not answer /readyz within {READY_TIMEOUT_SECONDS:.0f}s")


def _wait_running_api(pid: int, port: int) -> None:
    """An API server that is already running may still be starting: give it the timeout."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not readyz(port):
        if not process.is_alive(pid) or time.monotonic() > deadline:
            raise ClusterError(f"the API server (pid {pid}) is running but not ready on port {port}; "
                               "try `mkp down` then `mkp up`")
        time.sleep(0.05)


def _choose_port(requested: int | None, state: ClusterState, notes: list[str]) -> int:
    if requested is not None:
        return requested
    if state.port and port_is_free(state.port):
        return state.port
    if state.port:
        notes.append(f"port {state.port} is taken now; picked a new one (kubeconfigs updated)")
    return 0


def _clear_stale_pid_files(paths: ClusterPaths, running: dict[str, int], notes: list[str]) -> None:
    for pid_file in paths.pids_dir.glob("*.pid"):
        if pid_file.stem not in running:
            pid = process.read_pid(pid_file)
            pid_file.unlink(missing_ok=True)
            notes.append(f"removed stale pid file {pid_file.name} (pid {pid} is not {pid_file.stem})")


def _plan(state: ClusterState, single_process: bool, paths: ClusterPaths, notes: list[str]) -> str:
    """The mode to run in: the requested one, unless the cluster already runs another."""
    wanted = "single-process" if single_process else "multi-process"
    if state.mode != wanted and _running_pids(paths, MODES[state.mode]):
        notes.append(f"cluster is running in {state.mode} mode; run `mkp down` to switch")
        return state.mode
    return wanted


def up(paths: ClusterPaths, *, port: int | None = None, merge: bool = True,
       single_process: bool = False, fake_nodes: int | None = None, nodes: int | None = None,
       runtime: str | None = None, network_mode: str | None = None, ingress_ports: str | None = None) -> UpResult:
    """Start (or resume, or confirm) the cluster; returns once the API is ready."""
    paths.ensure()
    with cluster_lock(paths):
        state = ClusterState.load(paths) or ClusterState(name=paths.name)
        notes: list[str] = []
        state.mode = _plan(state, single_process, paths, notes)
        _choose_network(state, network_mode, runtime, notes)
        if ingress_ports is not None:
            try:
                network.parse_ingress_ports(ingress_ports)
            except ValueError as e:
                raise ClusterError(str(e)) from None
            state.ingress_ports = ingress_ports
        if fake_nodes is not None:
            _change_fake_nodes(paths, state, fake_nodes, notes)
        if nodes is not None or runtime is not None:
            _change_real_nodes(paths, state, state.nodes if nodes is None else nodes,
                               state.runtime if runtime is None else runtime)
        components = components_for(state)
        running = _running_pids(paths, components)
        if _move_ingress_off_taken_ports(state, components, running, notes):
            components = components_for(state)
        _clear_stale_pid_files(paths, running, notes)
        already = len(running) == len(components)
        api = components[0]
        if api.name in running:
            state.port = process.read_pid(paths.port_file) or state.port
            if port not in (None, 0, state.port):
                notes.append(f"already serving on port {state.port}; --port {port} ignored (`mkp down` first)")
            _wait_running_api(running[api.name], state.port)
        else:
            launch = Launch(paths, _choose_port(port, state, notes), fake_nodes=state.fake_nodes,
                            network=state.network)
            running[api.name], state.port = _start_api(api, launch)
        _write_cluster_kubeconfig(paths, state)
        if state.mode == "multi-process":
            try:
                network_plan(state).host_setup(_hostnet_file(paths))
            except Exception as e:  # noqa: BLE001 - hostnet errors, missing tools: one message
                raise ClusterError(f"setting up the bridge network failed: {e}") from e
        _start_rest(components, running, Launch(paths, state.port, state.server, state.fake_nodes, state.network))
        state.components = [c.name for c in components]
        if not already:
            state.started, state.stopped = now_iso(), ""
        state.save(paths)  # before merging: a broken user kubeconfig must not orphan the cluster
        result = UpResult(state, running, already_running=already, notes=notes)
        if merge:
            result.merged_into = _merge_user_kubeconfig(state)
            state.merged_kubeconfig = str(result.merged_into)
            state.save(paths)
        return result


def _move_ingress_off_taken_ports(state: ClusterState, components: tuple[Component, ...], running: dict[str, int],
                                  notes: list[str]) -> bool:
    """The Ingress controller's default ports (80 and 443 as root) may be taken by a web
    server on this machine: then it gets the next free pair of 8080/8443, 8081/8444, ...
    (kept for the cluster, said in a note). Ports given with --ingress-ports stay."""
    if state.ingress_ports or "ingress-controller" not in {c.name for c in components} \
            or "ingress-controller" in running:
        return False
    wanted = network.default_ingress_ports()
    if all(port_is_free(p) for p in wanted):
        return False
    pair = next(((8080 + i, 8443 + i) for i in range(20) if port_is_free(8080 + i) and port_is_free(8443 + i)), None)
    if pair is None:
        notes.append(f"ports {wanted[0]} and {wanted[1]} are taken: the Ingress controller will not start "
                     "(give free ones with --ingress-ports)")
        return False
    state.ingress_ports = f"{pair[0]},{pair[1]}"
    notes.append(f"port {wanted[0]} or {wanted[1]} is taken on 127.0.0.1: the Ingress controller uses "
                 f"{pair[0]} and {pair[1]} (--ingress-ports to choose)")
    return True


def _hostnet_file(paths: ClusterPaths) -> Path:
    return paths.home / "hostnet.json"


def _choose_network(state: ClusterState, wanted: str | None, runtime: str | None, notes: list[str]) -> None:
    """The pod network mode is chosen once, when the cluster is created: bridge as root
    (with the namespaces runtime and the CNI plugins installed), loopback otherwise."""
    runtime = state.runtime if runtime is None else runtime
    if state.network:
        if wanted and wanted != state.network:
            raise ClusterError(f"the cluster was created with --network {state.network}; "
                               f"`mkp down --purge` first to change it")
        chosen = state.network
    elif wanted:
        chosen = wanted
    else:
        chosen = network.default_network()
        if chosen == network.addressing.BRIDGE and runtime in ("process", "fake"):
            chosen = network.addressing.LOOPBACK
        elif chosen == network.addressing.BRIDGE and not Path(network.CNI_BIN_DIR, "bridge").exists():
            notes.append(f"no CNI plugins in {network.CNI_BIN_DIR} (Debian: containernetworking-plugins): "
                         "using the loopback network")
            chosen = network.addressing.LOOPBACK
    if chosen == network.addressing.BRIDGE:
        if not network.is_root():
            raise ClusterError("--network bridge needs root (network namespaces, links, routes)")
        if runtime == "process":
            raise ClusterError("--network bridge needs the namespaces runtime: the process runtime cannot "
                               "put a pod in a network namespace")
    state.network = chosen


def _change_fake_nodes(paths: ClusterPaths, state: ClusterState, wanted: int, notes: list[str]) -> None:
    """A new fake-node count restarts the fake-nodes component with it."""
    if wanted == state.fake_nodes:
        return
    clash = sorted(set(fake_node_names(wanted)) & {n["name"] for n in state.added_nodes})
    if clash:
        raise ClusterError(f"--fake-nodes {wanted} would start {', '.join(clash)}, already added with "
                           "`mkp node add`; `mkp node delete` them first")
    # Single-process: the fake nodes live in the all-in-one process, which restarts (the
    # store is on disk; clients reconnect).
    owner = FAKE_NODES if state.mode == "multi-process" else SINGLE_PROCESS[0]
    pid = process.running_component(paths.pid(owner.name), paths.home, owner.name)
    if pid is not None:
        process.stop([pid], grace=STOP_GRACE_SECONDS)
        paths.pid(owner.name).unlink(missing_ok=True)
    state.fake_nodes = wanted


def _change_real_nodes(paths: ClusterPaths, state: ClusterState, wanted: int, runtime: str) -> None:
    """Fewer real nodes: stop the kubelets of the ones that go (their Nodes stay and go
    NotReady, as when a machine leaves); another runtime restarts every kubelet."""
    keep = set(real_node_names(state.name, wanted)) if runtime == state.runtime else set()
    for name in real_node_names(state.name, state.nodes):
        if name in keep:
            continue
        component = f"{KUBELET_PREFIX}{name}"
        pid = process.running_component(paths.pid(component), paths.home, component)
        if pid is not None:
            process.stop([pid], grace=STOP_GRACE_SECONDS)
            paths.pid(component).unlink(missing_ok=True)
    state.nodes, state.runtime = wanted, runtime


def _start_rest(components: tuple[Component, ...], running: dict[str, int], launch: Launch) -> None:
    for c in components[1:]:
        if c.name not in running:
            running[c.name] = start_component(c, launch)[0].pid


def _write_cluster_kubeconfig(paths: ClusterPaths, state: ClusterState) -> None:
    config = kubeconfig.cluster_config(paths.name, state.server)
    if kubeconfig.load(paths.kubeconfig) != config:
        kubeconfig.write(paths.kubeconfig, config)


def _merge_user_kubeconfig(state: ClusterState) -> Path:
    try:
        return kubeconfig.merge_into_user_kubeconfig(kubeconfig.cluster_config(state.name, state.server))
    except (kubeconfig.KubeconfigError, OSError) as e:
        raise ClusterError(f"the cluster is running, but merging its context failed: {e}") from e


# --- stopping ----------------------------------------------------------------------


@dataclass
class DownResult:
    existed: bool
    stopped: list[int] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    purged: bool = False
    kubeconfigs_cleaned: list[Path] = field(default_factory=list)
    pod_processes: list[int] = field(default_factory=list)


def _stop_pods(paths: ClusterPaths) -> list[int]:
    """Pod processes outlive their kubelets (so a restarted kubelet re-adopts them):
    with the kubelets stopped, stop them and detach the nodes' mounts."""
    from kubelet.cleanup import stop_pods
    stopped: list[int] = []
    for root in sorted((paths.home / "nodes").glob("*")):
        if root.is_dir():
            stopped += stop_pods(root)
    return stopped


def _stop_all(paths: ClusterPaths, result: DownResult) -> None:
    """Components first (by pid file, so their groups go), then anything else marked
    with the cluster's home; repeat a few rounds in case something was spawned late."""
    for _ in range(5):
        pids = []
        for pid_file in sorted(paths.pids_dir.glob("*.pid")):
            pid = process.running_component(pid_file, paths.home, pid_file.stem)
            if pid is not None:
                pids.append(pid)
        pids += process.cluster_processes(paths.home)
        if not pids:
            return
        result.killed += process.stop(pids, grace=STOP_GRACE_SECONDS)
        result.stopped += [p for p in dict.fromkeys(pids) if p not in result.stopped]
    leftover = process.cluster_processes(paths.home)
    if leftover:
        raise ClusterError(f"processes of {paths.home} survived SIGKILL: {leftover}")


def down(paths: ClusterPaths, *, purge: bool = False) -> DownResult:
    if not paths.home.exists():
        return DownResult(existed=False)
    result = DownResult(existed=True)
    with cluster_lock(paths):
        _stop_all(paths, result)
        result.pod_processes = _stop_pods(paths)
        network.host_teardown(_hostnet_file(paths))
        for pid_file in paths.pids_dir.glob("*.pid"):
            pid_file.unlink(missing_ok=True)
        paths.port_file.unlink(missing_ok=True)
        state = ClusterState.load(paths)
        if purge:
            if state and state.merged_kubeconfig:
                result.kubeconfigs_cleaned = kubeconfig.remove_from_user_kubeconfig(
                    paths.name, paths=[Path(state.merged_kubeconfig)])
            from kubelet.cleanup import remove_run_dir
            for root in (paths.home / "nodes").glob("*"):
                remove_run_dir(root)
            shutil.rmtree(paths.home)
            result.purged = True
        elif state:
            state.stopped = now_iso()
            state.save(paths)
    return result
