"""Service networking on one real node: the service proxy's cost, DNS, and how fast
traffic follows an endpoint change (issue 5's benchmark).

Starts `mkp up --nodes 1` (the bridge network as root, else loopback) in a temporary
MKP_HOME and measures, in one run:

1. HTTP through a ClusterIP against the same pod directly: `wrk` (Debian) from the host,
   one nginx pod (Debian's nginx image) as the only endpoint, 10 s per target, the same
   connections and threads; requests/s and p99 for both, and their ratio (target >= 0.6).
   The host is the client: its connections reach the ClusterIP through the first node's
   proxy, as a pod's would through its node's proxy.
2. DNS: queries/s and p99 latency of A queries for a Service name, sent by an asyncio UDP
   client with 64 queries in flight for 5 s, to kube-dns's ClusterIP (through the proxy)
   and to the DNS server's own address.
3. Endpoint change to traffic change: two podinfo pods behind a ClusterIP, a client
   opening a new connection per request (~200/s), and one pod deleted. Reported: the
   moment the EndpointSlice shows that pod's endpoint terminating (seen by a watch),
   and the last answer from that pod after it, relative to the delete call.

    python bench/network_bench.py [--duration 10] [--network bridge|loopback]

Everything is addressed on this machine only (loopback, the node bridge); the cluster is
torn down at the end, also on errors. Output: one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import dns.message
import dns.rdatatype

ROOT = Path(__file__).resolve().parent.parent

NGINX = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
"""

PODINFO = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: info}
spec:
  replicas: 2
  selector: {matchLabels: {app: info}}
  template:
    metadata: {labels: {app: info}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:6.7.1
          command: ["./podinfo", "--port=8080"]
          readinessProbe: {httpGet: {path: /readyz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: info}
spec:
  selector: {app: info}
  ports: [{port: 80, targetPort: 8080}]
"""


class Cluster:
    def __init__(self, network: str | None) -> None:
        self.home = tempfile.mkdtemp(prefix="mkp-network-bench-")
        self.env = dict(os.environ, MKP_HOME=self.home, PYTHONPATH=str(ROOT))
        self.network = network

    def mkp(self, *args: str) -> str:
        return subprocess.run([sys.executable, "-m", "minikube_py.cli", *args], env=self.env, capture_output=True,
                              text=True, check=True, timeout=120).stdout

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return subprocess.run(["kubectl", "--kubeconfig", str(self.state / "kubeconfig"), *args], input=input,
                              capture_output=True, text=True, check=True, timeout=60).stdout

    @property
    def state(self) -> Path:
        return Path(self.home) / "mkp"

    @property
    def server(self) -> str:
        return f"http://127.0.0.1:{json.loads((self.state / 'cluster.json').read_text())['port']}"

    def up(self) -> None:
        self.mkp("up", "--port", "0", "--no-merge", "--nodes", "1",
                 *(["--network", self.network] if self.network else []))
        self.network = json.loads((self.state / "cluster.json").read_text())["network"]
        self.wait(lambda: " Ready " in self.kubectl("get", "nodes", "--no-headers"), "the node")

    def down(self) -> None:
        subprocess.run([sys.executable, "-m", "minikube_py.cli", "down", "--purge"], env=self.env,
                       capture_output=True, timeout=120)
        shutil.rmtree(self.home, ignore_errors=True)

    def wait(self, check: Any, what: str, timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = check()
            except subprocess.CalledProcessError:
                value = None
            if value:
                return value
            time.sleep(0.2)
        raise SystemExit(f"timed out waiting for {what}")

    def ready_ips(self, app: str, count: int) -> list[str]:
        def check() -> list[str] | None:
            pods = json.loads(self.kubectl("get", "pods", "-l", f"app={app}", "-o", "json"))["items"]
            ready = [p["status"]["podIP"] for p in pods if not p["metadata"].get("deletionTimestamp") and any(
                c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])]
            return ready if len(ready) == count else None
        return self.wait(check, f"{count} ready {app} pods")

    def cluster_ip(self, service: str, namespace: str = "default") -> str:
        return self.kubectl("get", "svc", "-n", namespace, service, "-o", "jsonpath={.spec.clusterIP}")


# --- 1. HTTP ----------------------------------------------------------------------------


def wrk(url: str, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url],
                         capture_output=True, text=True, timeout=duration + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": round(rps), "p99_ms": round(float(p99.group(1)) * scale[p99.group(2)], 2) if p99 else -1,
            "non_2xx": int(errors.group(1)) if errors else 0}


def http_phase(cluster: Cluster, duration: int) -> dict[str, Any]:
    cluster.kubectl("apply", "-f", "-", input=NGINX)
    [pod_ip] = cluster.ready_ips("web", 1)
    service_ip = cluster.cluster_ip("web")
    cluster.wait(lambda: subprocess.run(["curl", "-sf", "-o", "/dev/null", f"http://{service_ip}/"]).returncode == 0,
                 "the ClusterIP to answer")
    wrk(f"http://{pod_ip}/", 2, 16)  # warm-up
    direct = wrk(f"http://{pod_ip}/", duration, 16)
    proxied = wrk(f"http://{service_ip}/", duration, 16)
    return {"direct": direct, "cluster_ip": proxied, "ratio": round(proxied["rps"] / direct["rps"], 2),
            "connections": 16, "threads": 2, "duration_s": duration, "backend": "nginx (Debian), 1 pod"}


# --- 2. DNS -----------------------------------------------------------------------------


async def dns_load(server: str, port: int, name: str, seconds: float, inflight: int = 64) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    pending: dict[int, tuple[float, asyncio.Future[None]]] = {}
    wire = dns.message.make_query(name, dns.rdatatype.A).to_wire()
    answered_ok = 0

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            nonlocal answered_ok
            qid = int.from_bytes(data[:2], "big")
            entry = pending.pop(qid, None)
            if entry:
                latencies.append(time.perf_counter() - entry[0])
                answered_ok += (data[3] & 0x0F) == 0
                if not entry[1].done():
                    entry[1].set_result(None)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=(server, port))
    deadline = time.perf_counter() + seconds
    counter = 0
    lost = 0

    async def worker() -> None:
        nonlocal counter, lost
        while time.perf_counter() < deadline:
            counter = (counter + 1) % 65536
            qid = counter
            future: asyncio.Future[None] = loop.create_future()
            pending[qid] = (time.perf_counter(), future)
            transport.sendto(qid.to_bytes(2, "big") + wire[2:])
            try:
                await asyncio.wait_for(future, 1.0)
            except TimeoutError:
                pending.pop(qid, None)
                lost += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    elapsed = time.perf_counter() - began
    transport.close()
    latencies.sort()
    return {"qps": round(len(latencies) / elapsed), "p50_ms": round(latencies[len(latencies) // 2] * 1e3, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1e3, 2), "noerror": answered_ok, "lost": lost}


def dns_phase(cluster: Cluster) -> dict[str, Any]:
    dns_ip = cluster.cluster_ip("kube-dns", "kube-system")
    slices = json.loads(cluster.kubectl("get", "endpointslices", "-n", "kube-system", "-l",
                                        "kubernetes.io/service-name=kube-dns", "-o", "json"))["items"]
    direct_ip = slices[0]["endpoints"][0]["addresses"][0]
    direct_port = next(p["port"] for p in slices[0]["ports"] if p.get("protocol", "TCP") == "UDP")
    name = "web.default.svc.cluster.local."
    return {"query": f"A {name}", "inflight": 64,
            "via_cluster_ip": asyncio.run(dns_load(dns_ip, 53, name, 5.0)),
            "direct": asyncio.run(dns_load(direct_ip, direct_port, name, 5.0))}


# --- 3. endpoint change -----------------------------------------------------------------


async def endpoint_change(cluster: Cluster) -> dict[str, Any]:
    cluster.kubectl("apply", "-f", "-", input=PODINFO)
    cluster.ready_ips("info", 2)
    service_ip = cluster.cluster_ip("info")
    pods = json.loads(cluster.kubectl("get", "pods", "-l", "app=info", "-o", "json"))["items"]
    victim, victim_ip = pods[0]["metadata"]["name"], pods[0]["status"]["podIP"]
    answers: list[tuple[float, str]] = []
    stop = asyncio.Event()

    async def client() -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(service_ip, 80), 1.0)
                writer.write(b"GET / HTTP/1.0\r\nHost: info\r\n\r\n")
                body = await asyncio.wait_for(reader.read(), 2.0)
                writer.close()
                match = re.search(rb'"hostname": "([^"]+)"', body)
                if match:
                    answers.append((time.perf_counter(), match.group(1).decode()))
            except (TimeoutError, OSError):
                pass
            await asyncio.sleep(0.005)

    slice_changed: list[float] = []

    async def watch(session: aiohttp.ClientSession, rv: str) -> None:
        url = (f"{cluster.server}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?watch=true"
               f"&labelSelector=kubernetes.io%2Fservice-name%3Dinfo&resourceVersion={rv}")
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            async for line in resp.content:
                obj = json.loads(line)["object"]
                for ep in obj.get("endpoints") or []:
                    if victim_ip in ep["addresses"] and not (ep.get("conditions") or {}).get("ready", True):
                        slice_changed.append(time.perf_counter())
                        return
                if not any(victim_ip in ep["addresses"] for ep in obj.get("endpoints") or []) and answers:
                    slice_changed.append(time.perf_counter())
                    return

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{cluster.server}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        clients = [asyncio.create_task(client()) for _ in range(2)]
        watcher = asyncio.create_task(watch(session, rv))
        await asyncio.sleep(2.0)
        before = {name for _, name in answers}
        deleted = time.perf_counter()
        await asyncio.to_thread(cluster.kubectl, "delete", "pod", victim, "--wait=false")
        await asyncio.wait_for(watcher, 30)
        await asyncio.sleep(3.0)
        stop.set()
        await asyncio.gather(*clients)
    last_old = max((t for t, name in answers if name == victim), default=deleted)
    rate = len([t for t, _ in answers if t < deleted]) / 2.0
    return {"answering_before": sorted(before), "requests_per_s": round(rate),
            "slice_changed_after_delete_ms": round((slice_changed[0] - deleted) * 1e3),
            "last_answer_from_deleted_pod_after_slice_change_ms": round((last_old - slice_changed[0]) * 1e3),
            "traffic_changed_after_delete_ms": round((last_old - deleted) * 1e3)}


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return {"cpus": os.cpu_count(), "cpu": model, "kernel": platform.release(), "python": platform.python_version(),
            "host": socket.gethostname(), "commit": commit.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--network", choices=["bridge", "loopback"], default=None)
    args = parser.parse_args()
    for tool in ("wrk", "kubectl", "curl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (make test-deps installs it)")
    cluster = Cluster(args.network)
    try:
        cluster.up()
        result: dict[str, Any] = {"network": cluster.network}
        result["http"] = http_phase(cluster, args.duration)
        result["dns"] = dns_phase(cluster)
        result["endpoint_change"] = asyncio.run(endpoint_change(cluster))
        result["machine"] = machine()
        print(json.dumps(result, indent=2))
    finally:
        cluster.down()


if __name__ == "__main__":
    main()
