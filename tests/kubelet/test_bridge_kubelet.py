"""Two process kubelets on the bridge pod network, against a real control plane: pods on
the two nodes talk with their own addresses, get the cluster's resolv.conf, hostNetwork
pods share the node's address, `mkp.dev/network: none` pods have only `lo`; and a
kubelet that dies leaves nothing once its node is cleaned up. The host side is set up as
`mkp up` does (cni.hostnet), with test-only ranges and `tb`-prefixed bridges; the pods'
namespaces are bound under the node roots, not /var/run/netns, so tests of other
clusters on this machine never see them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cni import hostnet
from cni.netns import is_netns_mount
from kubelet.cleanup import stop_pods
from kubelet.config import KubeletConfig
from tests.cni.conftest import reference_plugin
from tests.conftest import require_tool, start_mkp_cluster, wait_until

pytestmark = pytest.mark.e2e

CLUSTER, SERVICES, NODE_RANGE, TABLE = "10.237.0.0/16", "10.238.0.0/16", "192.168.237.0/24", 24737
DNS_IP = "10.238.0.10"

SERVER = ("import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
          "s.bind(('0.0.0.0',8080));s.listen()\nwhile True:\n c,p=s.accept();c.sendall(p[0].encode());c.close()")


def _pod(name: str, node: str, *, command: list[str], annotations: dict[str, str] | None = None,
         host_network: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": node, "terminationGracePeriodSeconds": 1,
                            "containers": [{"name": "c", "image": "python:3", "command": command}]}
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the bridge network needs root (CI=true: not skipped)")
        pytest.skip("the bridge network needs root")
    for tool in ("ip", "nsenter", "kubectl"):
        require_tool(tool)
    for plugin in ("bridge", "host-local", "loopback"):
        reference_plugin(plugin)
    tag = uuid.uuid4().hex[:5]
    nets = [hostnet.NodeNet(f"tbbr{tag}1", "10.237.255.0/24", "192.168.237.2"),
            hostnet.NodeNet(f"tbbr{tag}2", "10.237.254.0/24", "192.168.237.3")]
    with start_mkp_cluster(tmp_path_factory.mktemp("mkp")) as cluster:
        state = cluster.home / "tb-hostnet.json"
        kubelets: list[subprocess.Popen[bytes]] = []
        roots = [cluster.home / "nodes" / f"tb{i}" for i in (1, 2)]
        try:
            hostnet.setup_cluster(state, service_cidr=SERVICES, cluster_cidr=CLUSTER, node_cidr=NODE_RANGE,
                                  nodes=nets, table=TABLE, priority=TABLE)
            for i, (net, root) in enumerate(zip(nets, roots, strict=True), 1):
                root.mkdir(parents=True, exist_ok=True)
                log = open(root.parent / f"tb{i}.log", "wb")  # noqa: SIM115 - the kubelet's, closed with it
                kubelets.append(subprocess.Popen(
                    [sys.executable, "-m", "minikube_py.cli", "kubelet", "--node", f"tb{i}", "--network", "bridge",
                     "--bridge", net.bridge, "--pod-cidr", net.pod_cidr, "--node-ip", net.node_ip,
                     "--cluster-dns", DNS_IP, "--kubeconfig", str(cluster.kubeconfig), "--port", "0",
                     "--root-dir", str(root), "--netns-dir", str(root / "netns")],
                    env={**cluster.env, "MKP_CLUSTER_HOME": str(cluster.home)}, stdout=log, stderr=log))
                log.close()
            wait_until(lambda: cluster.kubectl("get", "nodes", "--no-headers", check=False).stdout.count(" Ready") == 2,
                       60, "both nodes Ready")
            cluster.nets, cluster.roots, cluster.kubelets = nets, roots, kubelets  # type: ignore[attr-defined]
            yield cluster
        finally:
            for kubelet in kubelets:
                kubelet.send_signal(signal.SIGTERM)
            for kubelet in kubelets:
                kubelet.wait(15)
            for root in roots:
                stop_pods(root, grace=1.0)
            hostnet.teardown_cluster(state)
    assert hostnet.leftovers(link_prefix=f"tbbr{tag}", table=TABLE, cluster_cidr=CLUSTER,
                             local_cidrs=(SERVICES, NODE_RANGE), netns_dir=Path("/nonexistent")) == []


def _running(cluster: Any, names: list[str]) -> dict[str, Any] | None:
    items = json.loads(cluster.kubectl("get", "pods", "-o", "json").stdout)["items"]
    pods = {p["metadata"]["name"]: p for p in items}
    if all((pods.get(n) or {}).get("status", {}).get("phase") == "Running" for n in names):
        return pods
    return None


def _exec(cluster: Any, pod: str, *argv: str) -> str:
    return cluster.kubectl("exec", pod, "--", *argv).stdout


def test_pods_on_two_nodes_dns_host_network_and_none(nodes: Any):
    one, two = nodes.nets
    manifests = [_pod("server", "tb2", command=["python3", "-c", SERVER]),
                 _pod("client", "tb1", command=["sleep", "3600"]),
                 _pod("lonely", "tb1", command=["sleep", "3600"], annotations={"mkp.dev/network": "none"}),
                 _pod("hostnet", "tb1", command=["sleep", "3600"], host_network=True)]
    nodes.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))
    pods = wait_until(lambda: _running(nodes, ["server", "client", "lonely", "hostnet"]), 60, "the pods to run")
    server, client = pods["server"]["status"]["podIP"], pods["client"]["status"]["podIP"]
    assert server.startswith("10.237.254.") and client.startswith("10.237.255.")
    probe = f"import socket;c=socket.create_connection(('{server}',8080),timeout=5);print(c.recv(100).decode())"
    assert _exec(nodes, "client", "python3", "-c", probe).strip() == client  # no NAT between nodes
    assert _exec(nodes, "client", "cat", "/etc/resolv.conf") == (
        f"search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver {DNS_IP}\noptions ndots:5\n")
    assert pods["hostnet"]["status"]["podIP"] == one.node_ip
    assert "nameserver " + DNS_IP not in _exec(nodes, "hostnet", "cat", "/etc/resolv.conf")  # Default: the host's
    assert "podIP" not in pods["lonely"]["status"]
    links = _exec(nodes, "lonely", "cat", "/proc/net/dev")
    assert "lo:" in links and "eth0" not in links
    nodes.kubectl("delete", "pod", "server", "client", "lonely", "hostnet", "--wait=true")
    wait_until(lambda: _ports(one.bridge) == "" and _ports(two.bridge) == "", 10, "the pods' veths to go")


def test_a_dead_kubelets_pods_lose_their_network_when_the_node_is_cleaned_up(nodes: Any):
    two = nodes.nets[1]
    nodes.kubectl("apply", "-f", "-", input=json.dumps(_pod("orphan", "tb2", command=["sleep", "3600"])))
    pod = wait_until(lambda: _running(nodes, ["orphan"]), 60, "the pod to run")["orphan"]
    netns = nodes.roots[1] / "netns" / f"cni-{pod['metadata']['uid']}"
    assert is_netns_mount(netns)
    nodes.kubelets[1].kill()  # as if it crashed: its pod keeps running
    nodes.kubelets[1].wait(10)
    stop_pods(nodes.roots[1], grace=1.0)  # what `mkp down` does for each node
    assert not netns.exists() and not is_netns_mount(netns)
    # the kernel destroys a namespace (and its veth pair) shortly after the last user goes
    wait_until(lambda: _ports(two.bridge) == "", 10, f"the veth to leave {two.bridge}")


def _ports(bridge: str) -> str:
    return subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize(("kwargs", "message"), [
    pytest.param({"runtime": "process"}, "needs the namespaces runtime", id="process-runtime"),
    pytest.param({"runtime": "fake"}, "needs the namespaces runtime", id="fake-runtime"),
])
def test_bridge_network_needs_a_runtime_that_joins_a_namespace(tmp_path: Path, kwargs: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        KubeletConfig(node="n", root=tmp_path, network="bridge", bridge="tbbr0", pod_cidr="10.237.1.0/24",
                      node_ip="192.168.237.9", **kwargs)


async def test_loopback_network_refuses_a_pod_without_network(tmp_path: Path):
    from kubelet.podnetwork import LoopbackPodNetwork, NetworkUnavailable
    network = LoopbackPodNetwork(tmp_path, lambda: "127.244.9.0/24")
    with pytest.raises(NetworkUnavailable, match="--network bridge"):
        await network.setup_isolated_pod("default", "p", "uid", "uid")
