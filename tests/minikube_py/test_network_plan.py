"""The network plan `mkp up` lays out (minikube_py/network.py) and its choices."""

from __future__ import annotations

import socket

import pytest

from minikube_py import cluster, network
from minikube_py.config import ClusterPaths, ClusterState


def test_two_bridge_nodes_get_their_addresses_and_proxy_roles() -> None:
    plan = network.NetworkPlan.of("bridge", ["mkp", "mkp-m02"])
    first, second = plan.nodes
    assert (first.pod_cidr, first.node_ip, first.bridge) == ("10.244.255.0/24", "192.168.49.2", "mkpbr1")
    assert (second.pod_cidr, second.node_ip, second.bridge) == ("10.244.254.0/24", "192.168.49.3", "mkpbr2")
    assert plan.dns_ip == "10.96.0.10" and plan.service_cidr == "10.96.0.0/12"
    one, two = plan.proxy_args(first), plan.proxy_args(second)
    assert one.count("--cluster-ip-bind-device") == 2 and "lo" in one and "mkpbr1" in one
    assert "lo" not in two and "mkpbr2" in two and "--no-load-balancers" in two
    assert one[one.index("--nodeport-addresses") + 1] == "127.0.0.1,192.168.49.2"
    assert "--network-policy-nftables" in one
    assert plan.kubelet_args(second)[-2:] == ["--bridge", "mkpbr2"]


def test_loopback_nodes_share_one_cluster_ip_server() -> None:
    plan = network.NetworkPlan.of("loopback", ["a", "b"])
    assert plan.nodes[0].pod_cidr == "127.244.255.0/24" and plan.nodes[1].node_ip == "127.2.0.2"
    assert plan.dns_ip == "127.96.0.10"
    assert "--no-cluster-ips" not in plan.proxy_args(plan.nodes[0])
    assert "--no-cluster-ips" in plan.proxy_args(plan.nodes[1])
    assert "--network-policy-nftables" not in plan.proxy_args(plan.nodes[0])


@pytest.mark.parametrize("text", ["80", "80,80", "a,b", "0,443", "80,443,8443"])
def test_bad_ingress_ports_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--ingress-ports"):
        network.parse_ingress_ports(text)


def test_a_taken_ingress_port_moves_the_controller_to_a_free_pair() -> None:
    state = ClusterState(name="t", nodes=1, network="loopback")
    components = cluster.components_for(state)
    wanted = network.default_ingress_ports()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("127.0.0.1", wanted[0]))
        except OSError:
            pytest.skip(f"port {wanted[0]} is in use here already")
        holder.listen()
        notes: list[str] = []
        assert cluster._move_ingress_off_taken_ports(state, components, {}, notes)
    http, https = network.parse_ingress_ports(state.ingress_ports)
    assert http != wanted[0] and https != http and "Ingress controller uses" in notes[0]
    # Running already (it holds the port itself), or ports given by the user: left alone.
    state.ingress_ports = ""
    assert not cluster._move_ingress_off_taken_ports(state, components, {"ingress-controller": 1}, [])


def test_no_real_node_means_no_load_balancer_controller(tmp_path) -> None:
    manager = next(c for c in cluster.components_for(ClusterState(name="t", nodes=0)) if c.name == "controller-manager")
    launch = cluster.Launch(paths=ClusterPaths.for_name("t", base=tmp_path), port=1, server="http://127.0.0.1:1")
    assert manager.argv(launch)[-2:] == ["--controllers", "*,-service-lb-controller"]
    names = [c.name for c in cluster.components_for(ClusterState(name="t", nodes=0))]
    assert "coredns" not in names and not any(n.startswith("kube-proxy-") for n in names)
