"""cgroups: limits land in the kernel's files, the kernel enforces them (an allocation
over the memory limit is OOM-killed and counted), usage is read back, and removal kills
what is left and leaves no directory behind. Real cgroups: root only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kubelet.runtime.base import Resources
from kubelet.runtime.cgroups import CgroupError, CgroupManager, Hierarchy, cpu_shares, cpu_weight
from tests.conftest import wait_until

needs_root = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                                reason="cgroups need root")


@pytest.mark.parametrize(("request_millis", "shares"), [
    pytest.param(None, 2, id="no-request"),
    pytest.param(1, 2, id="tiny-request-min-2"),
    pytest.param(250, 256, id="quarter-core"),
    pytest.param(1000, 1024, id="one-core"),
    pytest.param(1_000_000, 262144, id="capped"),
])
def test_cpu_shares_follow_the_kubelet_formula(request_millis, shares):
    assert cpu_shares(request_millis) == shares


def test_cpu_weight_maps_shares_range_onto_weight_range():
    assert cpu_weight(2) == 1
    assert cpu_weight(1024) == 39
    assert cpu_weight(262144) == 10000


def test_detect_prefers_v1_when_the_unified_mount_has_no_memory_controller(tmp_path):
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("hugetlb\n")
    info = (f"30 25 0:26 / {unified} rw - cgroup2 cgroup2 rw\n"
            "31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
            "32 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    h = Hierarchy.detect(info)
    assert h.version == 1
    assert h.mounts == {"cpu": Path("/sys/fs/cgroup/cpu"), "memory": Path("/sys/fs/cgroup/memory")}
    (unified / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    h2 = Hierarchy.detect(info)
    assert h2.version == 2 and set(h2.mounts) == {"memory", "cpu", "pids"}


def test_detect_without_any_memory_controller_is_a_clear_error():
    with pytest.raises(CgroupError, match="no usable memory cgroup controller"):
        Hierarchy.detect("31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n")


@pytest.fixture
def manager():
    node = f"test-{uuid.uuid4().hex[:8]}"
    m = CgroupManager(node)
    yield m
    for uid in m.pod_uids():
        m.remove_pod(uid)
    m.remove_node()
    assert not any((mount / m.node_path).exists() for mount in m.hierarchy.mounts.values())


def _spawn_in(group, code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], preexec_fn=lambda: group.add(os.getpid()),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


@needs_root
def test_limits_are_written(manager):
    group = manager.create_container("u1", "c" * 64, Resources(
        memory_limit=50 << 20, cpu_limit_millis=500, cpu_request_millis=250))
    assert group.memory_limit() == 50 << 20
    if group.version == 1:
        cpu = group.dirs["cpu"]
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert (cpu / "cpu.shares").read_text().strip() == "256"
        memsw = group.dirs["memory"] / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            assert memsw.read_text().strip() == str(50 << 20)
    else:
        assert (group.dirs["cpu"] / "cpu.max").read_text().split() == ["50000", "100000"]
        assert (group.dirs["cpu"] / "cpu.weight").read_text().strip() == str(cpu_weight(256))
    unlimited = manager.create_container("u1", "d" * 64, Resources())
    assert unlimited.memory_limit() is None


@needs_root
def test_allocation_over_the_memory_limit_is_oom_killed_and_counted(manager):
    group = manager.create_container("u2", "e" * 64, Resources(memory_limit=50 << 20))
    proc = _spawn_in(group, "b = bytearray(200 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('survived')")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, out
    assert group.oom_kills() == 1
    assert group.oom_killed(sigkilled=True)


@needs_root
def test_usage_is_read_from_the_group(manager):
    group = manager.create_container("u3", "f" * 64, Resources(memory_limit=200 << 20))
    proc = _spawn_in(group, "import sys, time\nb = bytearray(30 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
                            "x = sum(range(3_000_000))\nprint('ok', flush=True)\ntime.sleep(60)")
    try:
        assert proc.stdout.readline().strip() == b"ok"
        usage = group.usage()
        assert usage.memory_usage_bytes >= 30 << 20
        assert usage.memory_rss_bytes >= 30 << 20
        assert 0 < usage.memory_working_set_bytes <= usage.memory_usage_bytes
        assert usage.cpu_usage_nanos > 10_000_000
        assert group.oom_kills() == 0 and not group.oom_killed(sigkilled=True)
        assert group.pids() == [proc.pid]
    finally:
        proc.kill()
        proc.wait()


@needs_root
def test_remove_kills_stragglers_and_removes_the_directories(manager):
    group = manager.create_container("u4", "a" * 64, Resources())
    proc = _spawn_in(group, "import time\nprint('up', flush=True)\ntime.sleep(60)")
    try:
        assert proc.stdout.readline().strip() == b"up"
        manager.remove_pod("u4")
        wait_until(lambda: proc.poll() is not None, timeout=5, what="the straggler killed")
        assert not group.exists() and not manager.pod("u4").exists()
        assert manager.pod_uids() == []
    finally:
        proc.kill()
        proc.wait()


def _v2_files(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in {"memory.max": "max\n", "memory.swap.max": "max\n", "cpu.weight": "100\n",
                       "cpu.max": "max 100000\n", "cgroup.subtree_control": "", "cgroup.procs": "",
                       "memory.current": "52428800\n", "cpu.stat": "usage_usec 2500\nuser_usec 2000\n",
                       "memory.stat": "anon 41943040\ninactive_file 4194304\npgfault 7\npgmajfault 1\n",
                       "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"}.items():
        (d / name).write_text(text)


def test_v2_file_names_and_values(tmp_path):
    """cgroup v2 cannot get the memory controller on this machine (v1 holds it), so its
    interface files are exercised on a directory laid out like a v2 group."""
    mount = tmp_path / "unified"
    _v2_files(mount)
    manager = CgroupManager("n1", hierarchy=Hierarchy(2, {"memory": mount, "cpu": mount, "pids": mount}))
    _v2_files(mount / "mkpods" / "n1" / "podu" / ("c" * 64))
    for d in (mount / "mkpods", mount / "mkpods" / "n1", mount / "mkpods" / "n1" / "podu"):
        (d / "cgroup.subtree_control").write_text("")
    group = manager.create_container("u", "c" * 64, Resources(memory_limit=50 << 20, cpu_limit_millis=250,
                                                              cpu_request_millis=500))
    assert group.paths == [mount / "mkpods" / "n1" / "podu" / ("c" * 64)]
    leaf = group.paths[0]
    assert (leaf / "memory.max").read_text() == str(50 << 20)
    assert (leaf / "memory.swap.max").read_text() == "0"
    assert (leaf / "cpu.max").read_text() == "25000 100000"
    assert (leaf / "cpu.weight").read_text() == str(cpu_weight(512))
    for d in (mount, mount / "mkpods", mount / "mkpods" / "n1", mount / "mkpods" / "n1" / "podu"):
        assert (d / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"  # delegated down to the pod
    assert group.memory_limit() == 50 << 20
    assert group.oom_kills() == 1 and group.oom_killed(sigkilled=False)
    usage = group.usage()
    assert (usage.cpu_usage_nanos, usage.memory_usage_bytes, usage.memory_working_set_bytes,
            usage.memory_rss_bytes, usage.page_faults) == (2_500_000, 50 << 20, 46 << 20, 40 << 20, 7)
