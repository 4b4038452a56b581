"""Pod startup latency on one real node, per container runtime, and the kubelet's RSS.

Starts `mkp up --nodes 1 --runtime R` in a temporary MKP_HOME, measures the kubelet's
RSS idle, creates a burst of N pods (busybox `sleep`, bound by the scheduler as usual)
as fast as the API takes them, and follows them with a watch. A pod's startup latency
is the Kubernetes SLI: from the pod's creation to the moment all its containers are
observed running, image pulls excluded (one warm-up pod pulls the image first) (the watch event in which every containerStatus is `running`; the
status timestamps have whole-second precision, so the client's clock is used at both
ends: the create call's return and the watch event's arrival). Reports p50/p99/max,
the kubelet's RSS with the N pods running, and tears everything down.

    python bench/kubelet_bench.py                          # both runtimes (namespaces needs root)
    python bench/kubelet_bench.py --runtime process --pods 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def mkp(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "minikube_py.cli", *args], env=env, capture_output=True,
                          text=True, check=True, timeout=120)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pod(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"burst-{i}", "labels": {"bench": "burst"}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def warm_up(server: str) -> None:
    """One pod of the image first: the SLI excludes image pulls, and the first pod also
    builds mkp-shim on this machine."""
    async with aiohttp.ClientSession() as session:
        body = pod(0)
        body["metadata"] = {"name": "warm-up"}
        async with session.post(f"{server}/api/v1/namespaces/default/pods", json=body) as resp:
            assert resp.status == 201, await resp.text()
        for _ in range(300):
            async with session.get(f"{server}/api/v1/namespaces/default/pods/warm-up") as resp:
                status = (await resp.json()).get("status") or {}
            if any("running" in s.get("state", {}) for s in status.get("containerStatuses") or []):
                break
            await asyncio.sleep(0.1)
        async with session.delete(f"{server}/api/v1/namespaces/default/pods/warm-up"):
            pass


async def burst(server: str, count: int) -> dict:
    created: dict[str, float] = {}
    bound: dict[str, float] = {}
    running: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server}/api/v1/namespaces/default/pods") as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        done = asyncio.Event()

        async def watch() -> None:
            url = f"{server}/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}&labelSelector=bench%3Dburst"
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
                async for line in resp.content:
                    event = json.loads(line)
                    obj = event["object"]
                    name = obj["metadata"]["name"]
                    if name not in bound and (obj.get("spec") or {}).get("nodeName"):
                        bound[name] = time.perf_counter()
                    statuses = (obj.get("status") or {}).get("containerStatuses") or []
                    if name not in running and statuses and all("running" in s.get("state", {}) for s in statuses):
                        running[name] = time.perf_counter()
                        if len(running) == count:
                            done.set()
                            return

        watcher = asyncio.create_task(watch())
        began = time.perf_counter()

        async def create(i: int) -> None:
            async with session.post(f"{server}/api/v1/namespaces/default/pods", json=pod(i)) as resp:
                assert resp.status == 201, await resp.text()
                created[f"burst-{i}"] = time.perf_counter()

        await asyncio.gather(*(create(i) for i in range(count)))
        await asyncio.wait_for(done.wait(), 300)
        total = time.perf_counter() - began
        watcher.cancel()
    latencies = [running[n] - created[n] for n in created]
    scheduling = [bound[n] - created[n] for n in created if n in bound]
    return {"pods": count, "total_s": round(total, 2), "p50_s": round(percentile(latencies, 0.5), 3),
            "p99_s": round(percentile(latencies, 0.99), 3), "max_s": round(max(latencies), 3),
            "bound_p50_s": round(percentile(scheduling, 0.5), 3), "bound_p99_s": round(percentile(scheduling, 0.99), 3)}


def run_one(runtime: str, count: int) -> dict:
    home = tempfile.mkdtemp(prefix="mkp-kubelet-bench-")
    env = dict(os.environ, MKP_HOME=home, PYTHONPATH=str(ROOT))
    try:
        mkp("up", "--port", "0", "--no-merge", "--nodes", "1", "--runtime", runtime, env=env)
        state = Path(home) / "mkp"
        server = f"http://127.0.0.1:{json.loads((state / 'cluster.json').read_text())['port']}"
        kubelet_pid = int((state / "pids" / "kubelet-mkp.pid").read_text())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(["kubectl", "--kubeconfig", str(state / "kubeconfig"), "get", "nodes", "--no-headers"],
                                 capture_output=True, text=True).stdout
            if " Ready " in out:
                break
            time.sleep(0.2)
        time.sleep(2)  # let the first status writes and heartbeats pass
        idle = rss_mb(kubelet_pid)
        asyncio.run(warm_up(server))
        time.sleep(3)  # the warm-up pod's termination is over
        result = asyncio.run(burst(server, count))
        time.sleep(1)
        result.update(runtime=runtime, kubelet_rss_idle_mb=round(idle, 1),
                      kubelet_rss_with_pods_mb=round(rss_mb(kubelet_pid), 1))
        return result
    finally:
        subprocess.run([sys.executable, "-m", "minikube_py.cli", "down", "--purge"], env=env, capture_output=True,
                       timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", choices=["process", "namespaces"], action="append")
    parser.add_argument("--pods", type=int, default=100)
    args = parser.parse_args()
    runtimes = args.runtime or (["process", "namespaces"] if os.geteuid() == 0 else ["process"])
    machine = {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
               "kernel": platform.release()}
    for runtime in runtimes:
        result = run_one(runtime, args.pods)
        print(json.dumps({**result, **machine}))


if __name__ == "__main__":
    main()
