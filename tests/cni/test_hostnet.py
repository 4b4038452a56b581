"""The host side of the bridge mode: setup is idempotent and recorded, teardown removes
exactly what setup made and restores sysctls, even after a setup that failed half way.
Host objects carry the prefix `tb`; the ranges are test-only ones."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from cni import hostnet
from tests.conftest import require_tool

CLUSTER = "10.235.0.0/16"
SERVICES = "10.236.0.0/16"
NODES = "192.168.235.0/24"
TABLE = 24735


@pytest.fixture(autouse=True)
def needs_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("host network setup needs root (CI=true: not skipped)")
        pytest.skip("host network setup needs root")
    require_tool("ip")


@pytest.fixture
def tag() -> str:
    return f"tbbr{uuid.uuid4().hex[:6]}"


def leftovers(tag: str) -> list[str]:
    return hostnet.leftovers(link_prefix=tag, table=TABLE, cluster_cidr=CLUSTER, local_cidrs=(SERVICES, NODES),
                             netns_dir=Path("/nonexistent"))


def setup(state: Path, nodes: list[hostnet.NodeNet]) -> None:
    hostnet.setup_cluster(state, service_cidr=SERVICES, cluster_cidr=CLUSTER, node_cidr=NODES, nodes=nodes,
                          table=TABLE, priority=TABLE)


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def test_setup_makes_bridges_local_routes_and_guards_and_teardown_removes_them(tmp_path: Path, tag: str):
    state = tmp_path / "hostnet.json"
    forward_before = hostnet.read_sysctl(hostnet.IP_FORWARD)
    nodes = [hostnet.NodeNet(f"{tag}1", "10.235.255.0/24", "192.168.235.2")]
    try:
        setup(state, nodes)
        assert "10.235.255.1/24" in ip("-br", "addr", "show", "dev", f"{tag}1")
        assert "local 10.236.0.0/16 dev lo" in ip("route", "show", "table", "local")
        assert "local 192.168.235.0/24 dev lo" in ip("route", "show", "table", "local")
        assert "unreachable 10.235.0.0/16" in ip("route", "show")
        guard = ip("route", "show", "table", str(TABLE))
        assert "unreachable default" in guard and f"10.235.255.0/24 dev {tag}1" in guard
        assert f"from {CLUSTER} lookup {TABLE}" in ip("rule", "show")
        assert hostnet.read_sysctl(hostnet.IP_FORWARD) == "1"
        assert hostnet.read_sysctl(hostnet.BRIDGE_NF) == "1"
        # a node IP and a ClusterIP are addresses of this machine
        assert ip("route", "get", "192.168.235.3").startswith("local ")
        found = leftovers(tag)
        assert f"link {tag}1" in found and f"route unreachable {CLUSTER}" in found and len(found) == 7
        # the second run changes nothing, a third with one more node adds only that node
        before = json.loads(state.read_text())["changes"]
        setup(state, nodes)
        assert json.loads(state.read_text())["changes"] == before
        setup(state, [*nodes, hostnet.NodeNet(f"{tag}2", "10.235.254.0/24", "192.168.235.3")])
        added = [c["key"] for c in json.loads(state.read_text())["changes"][len(before):]]
        assert added == [f"link {tag}2", f"route {TABLE} 10.235.254.0/24 dev {tag}2 src 10.235.254.1"]
    finally:
        hostnet.teardown_cluster(state)
    assert leftovers(tag) == []
    assert not state.exists()
    if not hostnet.sysctl_users():  # no other cluster on this machine holds them
        assert hostnet.read_sysctl(hostnet.IP_FORWARD) == forward_before
    hostnet.teardown_cluster(state)  # nothing recorded: nothing to do


def test_sysctls_go_back_when_the_last_cluster_using_them_is_torn_down(tmp_path: Path, tag: str):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    others = hostnet.sysctl_users()
    forward_before = hostnet.read_sysctl(hostnet.IP_FORWARD)
    try:
        setup(first, [hostnet.NodeNet(f"{tag}1", "10.235.255.0/24", "192.168.235.2")])
        hostnet.setup_cluster(second, service_cidr="10.239.0.0/16", cluster_cidr="10.240.0.0/16",
                              node_cidr="192.168.240.0/24", table=TABLE + 1, priority=TABLE + 1,
                              nodes=[hostnet.NodeNet(f"{tag}2", "10.240.255.0/24", "192.168.240.2")])
        assert {str(first), str(second)} <= set(hostnet.sysctl_users())
        hostnet.teardown_cluster(first)
        assert hostnet.read_sysctl(hostnet.IP_FORWARD) == "1"  # the second cluster still needs it
        assert str(first) not in hostnet.sysctl_users()
    finally:
        hostnet.teardown_cluster(first)
        hostnet.teardown_cluster(second)
    assert str(second) not in hostnet.sysctl_users()
    if not others and not hostnet.sysctl_users():
        assert hostnet.read_sysctl(hostnet.IP_FORWARD) == forward_before
    assert leftovers(tag) == []
    assert hostnet.leftovers(link_prefix=tag, table=TABLE + 1, cluster_cidr="10.240.0.0/16",
                             local_cidrs=("10.239.0.0/16", "192.168.240.0/24"), netns_dir=Path("/nonexistent")) == []


def test_setup_again_after_a_reboot_makes_what_is_recorded_but_gone(tmp_path: Path, tag: str):
    state = tmp_path / "hostnet.json"
    nodes = [hostnet.NodeNet(f"{tag}1", "10.235.255.0/24", "192.168.235.2")]
    try:
        setup(state, nodes)
        recorded = json.loads(state.read_text())["changes"]
        ip("link", "del", f"{tag}1")  # takes the guard table's route through it along
        ip("rule", "del", "priority", str(TABLE))
        assert f"link {tag}1" not in leftovers(tag)
        setup(state, nodes)
        assert json.loads(state.read_text())["changes"] == recorded
        assert "10.235.255.1/24" in ip("-br", "addr", "show", "dev", f"{tag}1")
        assert f"10.235.255.0/24 dev {tag}1" in ip("route", "show", "table", str(TABLE))
        assert f"from {CLUSTER} lookup {TABLE}" in ip("rule", "show")
    finally:
        hostnet.teardown_cluster(state)
    assert leftovers(tag) == []


def test_a_setup_that_fails_half_way_is_undone_by_teardown(tmp_path: Path, tag: str):
    state = tmp_path / "hostnet.json"
    subprocess.run(["ip", "link", "add", "name", f"{tag}x", "type", "bridge"], check=True)
    try:
        nodes = [hostnet.NodeNet(f"{tag}1", "10.235.255.0/24", "192.168.235.2"),
                 hostnet.NodeNet(f"{tag}x", "10.235.254.0/24", "192.168.235.3")]
        with pytest.raises(hostnet.HostNetError, match=f"link {tag}x already exists"):
            setup(state, nodes)
        assert state.exists()
        hostnet.teardown_cluster(state)
        assert leftovers(tag) == [f"link {tag}x"]  # not ours: left alone
    finally:
        subprocess.run(["ip", "link", "del", f"{tag}x"], check=False)
        hostnet.teardown_cluster(state)
    assert leftovers(tag) == []


@pytest.mark.parametrize(("nodes", "message"), [
    pytest.param([hostnet.NodeNet("tbbrz", "10.99.1.0/24", "192.168.235.2")], "not inside", id="pod-cidr-outside"),
    pytest.param([hostnet.NodeNet("tbbrz", "10.235.1.5/24", "192.168.235.2")], "invalid address", id="host-bits"),
    pytest.param([hostnet.NodeNet("tbbr-name-far-too-long", "10.235.1.0/24", "192.168.235.2")],
                 "invalid bridge name", id="long-name"),
    pytest.param([hostnet.NodeNet("tbbrz", "10.235.1.0/24", "nonsense")], "invalid address", id="node-ip"),
    pytest.param([hostnet.NodeNet("tbbrz", "10.235.1.0/24", "192.168.1.2")], "not inside 192.168.235.0/24",
                 id="node-ip-outside"),
])
def test_bad_input_is_refused_before_anything_changes(tmp_path: Path, nodes: list[hostnet.NodeNet], message: str):
    state = tmp_path / "hostnet.json"
    with pytest.raises(hostnet.HostNetError, match=message):
        setup(state, nodes)
    assert not state.exists()
