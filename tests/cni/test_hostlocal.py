"""host-local IPAM: the reference plugin's file layout, order, release, persistence,
exhaustion, concurrency between processes, and sharing a directory with the binary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cni.ipam.hostlocal import HostLocal, Range
from cni.types import ERR_INVALID_NETWORK_CONFIG, CNIError, IPConfig

REPO = Path(__file__).resolve().parents[2]


def store(tmp_path: Path, ranges=None, network: str = "net") -> HostLocal:
    return HostLocal(tmp_path, network, ranges or [{"subnet": "127.244.3.0/24"}])


def test_first_address_skips_network_and_gateway_and_files_match_the_plugin_layout(tmp_path):
    ips = store(tmp_path).allocate("c1", "eth0")
    assert ips == [IPConfig("127.244.3.2/24", "127.244.3.1")]
    directory = tmp_path / "networks" / "net"
    assert (directory / "127.244.3.2").read_bytes() == b"c1\r\neth0"
    assert (directory / "last_reserved_ip.0").read_text() == "127.244.3.2"
    assert (directory / "lock").exists()


def test_allocation_is_round_robin_after_the_last_reserved_address(tmp_path):
    ipam = store(tmp_path)
    assert ipam.allocate("c1")[0].ip == "127.244.3.2"
    assert ipam.allocate("c2")[0].ip == "127.244.3.3"
    assert ipam.release("c1") == ["127.244.3.2"]
    assert ipam.allocate("c3")[0].ip == "127.244.3.4"  # .2 is free but not reused at once


def test_allocation_wraps_around_to_free_addresses(tmp_path):
    ipam = store(tmp_path, [{"subnet": "127.244.3.0/24", "rangeStart": "127.244.3.10", "rangeEnd": "127.244.3.12"}])
    assert [ipam.allocate(f"c{i}")[0].ip for i in range(3)] == ["127.244.3.10", "127.244.3.11", "127.244.3.12"]
    ipam.release("c1")
    assert ipam.allocate("c9")[0].ip == "127.244.3.11"


def test_add_for_the_same_container_and_ifname_returns_the_same_address(tmp_path):
    ipam = store(tmp_path)
    first = ipam.allocate("c1", "eth0")
    assert ipam.allocate("c1", "eth0") == first
    assert ipam.allocate("c1", "net1") != first  # another interface of the container
    assert len(ipam.allocations()) == 2


def test_release_frees_only_that_container_and_is_idempotent(tmp_path):
    ipam = store(tmp_path)
    ipam.allocate("c1")
    ipam.allocate("c2")
    assert ipam.release("c1") == ["127.244.3.2"]
    assert ipam.release("c1") == []
    assert ipam.allocations() == {"127.244.3.3": ("c2", "eth0")}


def test_allocations_survive_a_new_instance(tmp_path):
    store(tmp_path).allocate("c1")
    store(tmp_path).allocate("c2")
    again = store(tmp_path)
    assert again.get_by_id("c1") == ["127.244.3.2"]
    assert again.allocate("c3")[0].ip == "127.244.3.4"


def test_exhaustion_gives_the_reference_plugins_message(tmp_path):
    ipam = store(tmp_path, [{"subnet": "127.244.3.0/30"}])
    assert ipam.allocate("c1")[0].ip == "127.244.3.2"
    with pytest.raises(CNIError) as info:
        ipam.allocate("c2")
    assert str(info.value) == ("failed to allocate for range 0: "
                               "no IP addresses available in range set: 127.244.3.1-127.244.3.2")


def test_one_address_per_range_set_and_explicit_gateway(tmp_path):
    ipam = store(tmp_path, [[{"subnet": "127.244.3.0/24", "gateway": "127.244.3.254"}],
                            [{"subnet": "fd00:10:244:3::/64"}]])
    ips = ipam.allocate("c1")
    assert ips == [IPConfig("127.244.3.1/24", "127.244.3.254"), IPConfig("fd00:10:244:3::2/64", "fd00:10:244:3::1")]
    assert (tmp_path / "networks" / "net" / "last_reserved_ip.1").read_text() == "fd00:10:244:3::2"


@pytest.mark.parametrize("ranges, text", [
    pytest.param([{"subnet": "127.244.3.0/31"}], "too small to allocate from", id="too-small"),
    pytest.param([{"subnet": "127.244.3.0/24", "rangeStart": "127.244.4.1"}], "RangeStart 127.244.4.1 not in network",
                 id="start-outside"),
    pytest.param([{"subnet": "127.244.3.0/24", "rangeStart": "127.244.3.9", "rangeEnd": "127.244.3.5"}],
                 "is after RangeEnd", id="start-after-end"),
    pytest.param([{"subnet": "bogus"}], "invalid CIDR address: bogus", id="bad-subnet"),
    pytest.param([[{"subnet": "127.244.0.0/16"}], [{"subnet": "127.244.3.0/24"}]], "overlap", id="overlap"),
    pytest.param([], "no IP ranges specified", id="empty"),
])
def test_invalid_ranges_are_rejected(tmp_path, ranges, text):
    with pytest.raises(CNIError) as info:
        HostLocal(tmp_path, "net", ranges)
    assert info.value.code == ERR_INVALID_NETWORK_CONFIG and text in str(info.value)


def test_range_canonical_form():
    rng = Range.from_json({"subnet": "127.244.7.0/24"})
    assert rng.to_json() == {"subnet": "127.244.7.0/24", "rangeStart": "127.244.7.1",
                             "rangeEnd": "127.244.7.254", "gateway": "127.244.7.1"}
    assert str(rng) == "127.244.7.1-127.244.7.254"


_WORKER = """
import sys
from pathlib import Path
from cni.ipam.hostlocal import HostLocal
ipam = HostLocal(Path(sys.argv[1]), "net", [{"subnet": "127.244.3.0/24"}])
for i in range(int(sys.argv[3])):
    ipam.allocate(f"{sys.argv[2]}-{i}")
    ipam.allocate(f"shared-{i}")
"""


def test_two_processes_allocating_at_once_never_share_or_duplicate_an_address(tmp_path):
    # Each process adds 60 containers of its own and the same 60 shared ones (as two
    # kubelets retrying one ADD would): the lock must make the shared ADDs idempotent.
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path), name, "60"], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}) for name in ("kubelet-a", "kubelet-b")]
    try:
        assert [p.wait(timeout=60) for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    allocations = store(tmp_path).allocations()
    owners = sorted(cid for cid, _ in allocations.values())
    assert len(owners) == 180 and len(set(owners)) == 180, "an address shared or a container given two"


def _run_binary(binary: Path, command: str, conf: dict, container: str) -> subprocess.CompletedProcess:
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": "/proc/self/ns/net",
           "CNI_IFNAME": "eth0", "CNI_PATH": str(binary.parent), "PATH": os.environ["PATH"]}
    return subprocess.run([str(binary)], input=json.dumps(conf).encode(), env=env, capture_output=True, timeout=30)


def test_the_reference_binary_and_this_module_share_one_directory(tmp_path, host_local_binary):
    conf = {"cniVersion": "1.0.0", "name": "net", "type": "host-local",
            "ipam": {"type": "host-local", "dataDir": str(tmp_path / "networks"),
                     "ranges": [[{"subnet": "127.244.3.0/24"}]]}}
    ipam = store(tmp_path)
    assert ipam.allocate("ours")[0].ip == "127.244.3.2"
    out = _run_binary(host_local_binary, "ADD", conf, "theirs")
    assert out.returncode == 0, out.stdout
    assert json.loads(out.stdout)["ips"][0]["address"] == "127.244.3.3/24"  # it honoured our last_reserved_ip
    assert ipam.get_by_id("theirs") == ["127.244.3.3"]
    assert ipam.allocate("ours-2")[0].ip == "127.244.3.4"
    assert _run_binary(host_local_binary, "DEL", conf, "ours").returncode == 0  # it releases our files
    assert ipam.get_by_id("ours") == []
