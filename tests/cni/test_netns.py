"""Per-pod network namespaces (what the bridge mode will use): created under a node
root and under /var/run/netns, given to a real plugin chain, and removed on teardown."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from cni import CNIConfig, NetworkConfigList, NetworkManager, PluginRegistry
from cni.netns import IP_NETNS_DIR, NetnsDir, NetnsError, is_netns_mount
from tests.cni.conftest import reference_plugin
from tests.conftest import require_tool


@pytest.fixture(autouse=True)
def needs_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("network namespaces need root (CI=true: not skipped)")
        pytest.skip("network namespaces need root")
    require_tool("unshare")
    require_tool("ip")


def links_in(path: Path) -> str:
    return subprocess.run(["nsenter", f"--net={path}", "ip", "-o", "link", "show"],
                          capture_output=True, text=True, check=True, timeout=10).stdout


def test_namespace_under_a_node_root_is_created_once_and_removed(tmp_path):
    netns = NetnsDir(tmp_path / "netns")
    path = netns.create("sb-1")
    try:
        assert path == tmp_path / "netns" / "cni-sb-1" and is_netns_mount(path)
        assert netns.create("sb-1") == path  # idempotent
        links = links_in(path)
        assert "lo:" in links and "<LOOPBACK>" in links and "eth0" not in links  # fresh: lo only, down
        assert netns.list() == [path]
    finally:
        netns.delete("sb-1")
    assert not path.exists() and not is_netns_mount(path)
    netns.delete("sb-1")  # idempotent


def test_namespace_in_var_run_netns_is_visible_to_ip_netns():
    netns = NetnsDir(IP_NETNS_DIR)
    sandbox = f"mkp-test-{uuid.uuid4().hex[:8]}"
    path = netns.create(sandbox)
    try:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert f"cni-{sandbox}" in listed and netns.exists(sandbox)
    finally:
        netns.delete(sandbox)
    assert not path.exists()


def test_bad_sandbox_ids_are_refused(tmp_path):
    with pytest.raises(NetnsError, match="invalid sandbox id"):
        NetnsDir(tmp_path).create("../escape")


async def test_manager_gives_each_sandbox_a_namespace_for_a_real_plugin_chain(tmp_path):
    loopback = reference_plugin("loopback")  # the CNI plugin that brings `lo` up in a netns
    net = NetworkConfigList.from_json({"cniVersion": "1.0.0", "name": "lo-only", "plugins": [{"type": "loopback"}]})
    manager = NetworkManager(CNIConfig(PluginRegistry([str(loopback.parent)]), tmp_path / "cni"), net,
                             netns_dir=NetnsDir(tmp_path / "netns"))
    pod = await manager.setup_pod("default", "a", "uid-a", "sb-a")
    try:
        assert pod.netns == str(tmp_path / "netns" / "cni-sb-a")
        assert pod.result.interfaces[0].name == "lo" and pod.ip == "127.0.0.1"
        assert "<LOOPBACK,UP," in links_in(Path(pod.netns))  # fresh namespaces have lo down
        assert (await manager.setup_pod("default", "a", "uid-a", "sb-a")).netns == pod.netns
        assert manager.pods()["sb-a"].netns == pod.netns
        orphan = manager.netns_dir.create("sb-orphan")  # a sandbox the kubelet forgot
        assert await manager.prune(keep={"sb-a"}) == ["sb-orphan"]
        assert not is_netns_mount(orphan) and not orphan.exists()
    finally:
        await manager.teardown_pod("default", "a", "uid-a", "sb-a")
    assert not Path(pod.netns).exists() and manager.pods() == {}
