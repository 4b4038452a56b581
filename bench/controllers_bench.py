"""Control-plane scale: time for one Deployment's pods to be Running on fake nodes.

Starts `mkp up --fake-nodes N` in a temporary MKP_HOME, creates a Deployment with R
replicas, and follows the pods with a watch until all are Running, recording when each
pod was created, bound and Running. Reports the total time, pods/s scheduled, the API
server's mutating p99 during the run (from a probe writing a ConfigMap patch every
50 ms), and the RSS of each component. Everything started is stopped at the end.

    python bench/controllers_bench.py                 # 1,000 pods on 10 nodes
    python bench/controllers_bench.py --replicas 10000 --nodes 500
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


def deployment(replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scale"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "scale"}},
                     "template": {"metadata": {"labels": {"app": "scale"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.27",
                                                           "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}]}}}}


async def probe(session: aiohttp.ClientSession, server: str, stop: asyncio.Event, latencies: list[float]) -> None:
    """A steady mutating request stream: its latency is the API's mutating latency."""
    path = f"{server}/api/v1/namespaces/default/configmaps"
    await session.post(path, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe"}})
    i = 0
    while not stop.is_set():
        began = time.perf_counter()
        async with session.patch(f"{path}/probe", data=json.dumps({"data": {"i": str(i)}}),
                                 headers={"Content-Type": "application/merge-patch+json"}) as resp:
            await resp.read()
        latencies.append((time.perf_counter() - began) * 1000)
        i += 1
        await asyncio.sleep(0.05)


async def run(server: str, replicas: int) -> dict:
    stop = asyncio.Event()
    latencies: list[float] = []
    created: dict[str, float] = {}
    bound: dict[str, float] = {}
    running: dict[str, float] = {}
    async with aiohttp.ClientSession() as session:
        prober = asyncio.create_task(probe(session, server, stop, latencies))
        pods = f"{server}/api/v1/namespaces/default/pods"
        async with session.get(pods) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        began = time.perf_counter()
        async with session.post(f"{server}/apis/apps/v1/namespaces/default/deployments", json=deployment(replicas)) as r:
            assert r.status == 201, await r.text()
        params = {"watch": "true", "resourceVersion": rv, "labelSelector": "app=scale", "timeoutSeconds": "600"}
        async with session.get(pods, params=params, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    pod = json.loads(line)["object"]
                    name = pod["metadata"]["name"]
                    now = time.perf_counter() - began
                    created.setdefault(name, now)
                    if pod.get("spec", {}).get("nodeName"):
                        bound.setdefault(name, now)
                    if pod.get("status", {}).get("phase") == "Running":
                        running.setdefault(name, now)
                if len(running) >= replicas:
                    break
        total = time.perf_counter() - began
        stop.set()
        await prober
    latencies.sort()
    binds = sorted(bound.values())
    creates = sorted(created.values())
    return {
        "replicas": replicas, "all_running_s": round(total, 2),
        "last_created_s": round(creates[-1], 2), "pods_created_per_s": round(len(creates) / max(creates[-1], 1e-9), 1),
        "first_bound_s": round(binds[0], 2), "last_bound_s": round(binds[-1], 2),
        "pods_scheduled_per_s": round(len(binds) / max(binds[-1] - binds[0], 1e-9), 1),
        "api_mutating_p50_ms": round(latencies[len(latencies) // 2], 2),
        "api_mutating_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "api_mutating_max_ms": round(latencies[-1], 2), "probe_requests": len(latencies),
        # When 50% / 90% / all pods were created, bound and Running: where the pipeline lags.
        "timeline_s": {stage: [round(times[max(int(len(times) * q) - 1, 0)], 1) for q in (0.5, 0.9, 1.0)]
                       for stage, times in (("created", creates), ("bound", binds),
                                            ("running", sorted(running.values())))},
    }


async def wait_for_nodes(server: str, nodes: int, timeout: float = 300.0) -> float:
    """Until `nodes` nodes are Ready (fake nodes register one by one after `mkp up`
    returns: a run started earlier would schedule onto a growing cluster, with the
    registrations' CPU inside the measurement). Returns the seconds waited."""
    began = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{server}/api/v1/nodes") as resp:
                items = (await resp.json())["items"]
            ready = sum(1 for n in items for c in (n.get("status") or {}).get("conditions") or ()
                        if c.get("type") == "Ready" and c.get("status") == "True")
            if ready >= nodes:
                return time.perf_counter() - began
            if time.perf_counter() - began > timeout:
                raise TimeoutError(f"only {ready} of {nodes} nodes Ready after {timeout} s")
            await asyncio.sleep(0.5)


def cpu_seconds(home: Path) -> dict[str, float]:
    """User + system CPU time of each component so far (which one was the bottleneck)."""
    out = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for pid_file in (home / "pids").glob("*.pid"):
        try:
            fields = Path(f"/proc/{int(pid_file.read_text())}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue
        out[pid_file.stem] = round((int(fields[11]) + int(fields[12])) / ticks, 1)
    return out


def rss_mb(home: Path) -> dict[str, float]:
    out = {}
    for pid_file in (home / "pids").glob("*.pid"):
        try:
            status = Path(f"/proc/{int(pid_file.read_text())}/status").read_text()
        except (OSError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                out[pid_file.stem] = round(int(line.split()[1]) / 1024, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mkp-bench-") as tmp:
        env = {**os.environ, "MKP_HOME": tmp, "PYTHONPATH": str(ROOT)}
        mkp("up", "--name", "bench", "--port", "0", "--no-merge", "--nodes", "0", "--fake-nodes", str(args.nodes), env=env)
        home = Path(tmp) / "bench"
        try:
            import yaml

            server = yaml.safe_load((home / "kubeconfig").read_text())["clusters"][0]["cluster"]["server"]
            registered_s = asyncio.run(wait_for_nodes(server, args.nodes))
            time.sleep(1.0)  # let the components settle after the registrations
            before = cpu_seconds(home)
            result = asyncio.run(run(server, args.replicas))
            result["cpu_s"] = {name: round(spent - before.get(name, 0.0), 1)
                               for name, spent in cpu_seconds(home).items()}
            result["rss_mb"] = rss_mb(home)
            result["nodes_ready_after_up_s"] = round(registered_s, 1)
        finally:
            mkp("down", "--name", "bench", "--purge", env=env)
    result["nodes"] = args.nodes
    result["machine"] = {"nproc": os.cpu_count(), "python": platform.python_version(),
                         "date": time.strftime("%Y-%m-%d %H:%M")}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
