"""Summary API: the v1alpha1 shapes, node numbers from /proc, container numbers from a
real cgroup holding a real busy process (usageNanoCores near one core), pod totals,
volume and log usage from the node's directories, and /metrics/resource text."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from kubelet.runtime.base import Resources
from kubelet.runtime.cgroups import CgroupManager
from kubelet.stats import SummaryBuilder, resource_metrics
from tests.conftest import wait_until

needs_root = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                                reason="cgroups need root")


class CgroupStats:
    """The slice of a runtime the builder uses: stats() of one container, read from the
    container's real cgroup (what the namespaces runtime does)."""

    def __init__(self, groups):
        self.groups = groups

    def stats(self, container_id):
        group = self.groups.get(container_id)
        return group.usage().as_dict() if group is not None and group.exists() else None


def _pod(uid, limit="100Mi"):
    return {"metadata": {"name": "burner", "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": "burn", "resources": {"limits": {"memory": limit}}},
                                    {"name": "idle"}]},
            "status": {"startTime": "2026-01-01T00:00:00Z"}}


def test_node_part_has_the_summary_fields(tmp_path):
    builder = SummaryBuilder("node-a", root_dir=tmp_path, images_used=lambda: 1234)
    summary = builder.summary([])
    node = summary["node"]
    assert summary["pods"] == []
    assert node["nodeName"] == "node-a"
    assert node["cpu"]["usageCoreNanoSeconds"] > 0
    assert "usageNanoCores" not in node["cpu"]  # no previous sample yet
    mem = node["memory"]
    assert 0 < mem["workingSetBytes"] <= mem["usageBytes"]
    assert mem["availableBytes"] > 0 and "rssBytes" in mem and "pageFaults" in mem
    assert node["fs"]["capacityBytes"] >= node["fs"]["availableBytes"] > 0
    assert node["runtime"]["imageFs"]["usedBytes"] == 1234
    assert node["rlimit"]["maxpid"] > node["rlimit"]["curproc"] > 0
    assert [c["name"] for c in node["systemContainers"]] == ["kubelet", "pods"]
    only = builder.summary([], only_cpu_and_memory=True)["node"]
    assert "fs" not in only and "runtime" not in only and "cpu" in only and "memory" in only


def test_node_cpu_rate_comes_from_two_samples(tmp_path):
    builder = SummaryBuilder("node-a", root_dir=tmp_path, min_window=0.05)
    builder.summary([])
    burn_until = datetime.now(UTC).timestamp() + 0.2
    while datetime.now(UTC).timestamp() < burn_until:
        pass
    cpu = builder.summary([])["node"]["cpu"]
    assert cpu["usageNanoCores"] > 0


@needs_root
def test_container_and_pod_stats_from_a_cgroup(tmp_path):
    manager = CgroupManager(f"stats-{uuid.uuid4().hex[:8]}")
    uid = str(uuid.uuid4())
    burn = manager.create_container(uid, "b" * 64, Resources(memory_limit=100 << 20))
    idle = manager.create_container(uid, "i" * 64, Resources())
    code = ("b = bytearray(20 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
            "print('ok', flush=True)\nwhile True: pass")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            preexec_fn=lambda: burn.add(os.getpid()))
    logs = tmp_path / "logs" / f"default_burner_{uid}" / "burn"
    logs.mkdir(parents=True)
    (logs / "0.log").write_bytes(b"x" * 10000)
    vol = tmp_path / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / "scratch"
    vol.mkdir(parents=True)
    (vol / "data").write_bytes(b"y" * 50000)
    try:
        assert proc.stdout.readline().strip() == b"ok"
        runtime = CgroupStats({"c-burn": burn, "c-idle": idle})
        started = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
        refs = [("burn", runtime, "c-burn", started), ("idle", runtime, "c-idle", started),
                ("gone", runtime, "c-gone", started)]
        builder = SummaryBuilder("node-a", root_dir=tmp_path, min_window=0.3)
        builder.summary([(_pod(uid), refs)])
        wait_until(lambda: builder.summary([(_pod(uid), refs)])["pods"][0]["containers"][0]["cpu"]
                   .get("usageNanoCores"), timeout=5, interval=0.1, what="a cpu rate")
        (pod,) = builder.summary([(_pod(uid), refs)])["pods"]
        assert pod["podRef"] == {"name": "burner", "namespace": "default", "uid": uid}
        assert pod["startTime"] == "2026-01-01T00:00:00Z"
        burn_s, idle_s, gone_s = pod["containers"]
        assert burn_s["name"] == "burn" and burn_s["startTime"] == "2026-01-01T00:00:05Z"
        assert 0.5e9 < burn_s["cpu"]["usageNanoCores"] < 1.3e9  # one busy core
        assert burn_s["memory"]["workingSetBytes"] >= 20 << 20
        assert burn_s["memory"]["availableBytes"] == (100 << 20) - burn_s["memory"]["workingSetBytes"]
        assert "availableBytes" not in idle_s["memory"]  # no limit
        assert "cpu" not in gone_s and "memory" not in gone_s
        assert burn_s["logs"]["usedBytes"] >= 10000
        assert pod["memory"]["workingSetBytes"] == (burn_s["memory"]["workingSetBytes"]
                                                    + idle_s["memory"]["workingSetBytes"])
        assert "availableBytes" not in pod["memory"]  # one container has no limit
        assert pod["cpu"]["usageCoreNanoSeconds"] >= burn_s["cpu"]["usageCoreNanoSeconds"]
        (volume,) = pod["volume"]
        assert volume["name"] == "scratch" and volume["usedBytes"] >= 50000
        assert pod["ephemeral-storage"]["usedBytes"] >= 60000
        text = resource_metrics(builder.summary([(_pod(uid), refs)], only_cpu_and_memory=True))
        assert "# TYPE container_cpu_usage_seconds_total counter" in text
        assert 'container_memory_working_set_bytes{container="burn",namespace="default",pod="burner"} ' in text
        assert 'container_start_time_seconds{container="burn",namespace="default",pod="burner"} 1767225605.0' in text
        assert 'pod_memory_working_set_bytes{namespace="default",pod="burner"}' in text
        assert "node_cpu_usage_seconds_total " in text and "resource_scrape_error 0.0" in text
    finally:
        proc.kill()
        proc.wait()
        manager.remove_pod(uid)
        manager.remove_node()
