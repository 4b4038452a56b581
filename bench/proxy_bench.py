"""The HTTP/1.1 data path's speed (issue 6): the forwarding proxy (proxy.engine.forward)
against nginx as a reverse proxy, in one run, on loopback.

Starts a fast backend (Debian nginx, one worker, a small static body) on a free port,
then measures with `wrk` (closed loop, -c connections, 10 s) each target:

    direct      the backend itself
    proxy       one forward proxy process in front of it
    chain       two forward proxies chained (sidecar to sidecar, plain)
    nginx       nginx as a reverse proxy (one worker, upstream keepalive)

and for each: requests/s, wrk's p50/p99, the proxy processes' CPU seconds per 1,000
requests (utime+stime from /proc) and RSS (VmRSS after the run, VmHWM peak). Then the
added latency at a fixed 1,000 requests/s: a Python open-loop client (uvloop, 32 keep-alive
connections, requests sent on schedule whatever the responses do; latency measured from
each request's send to its response) for 10 s per target; p50/p99 minus direct's.

    python bench/proxy_bench.py [--duration 10] [--threads 1] [--connections 32]

Everything listens on 127.0.0.1; every process started is stopped at the end. Output:
one JSON document on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = b"x" * 100  # a small static body
CLK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def nginx_conf(tmp: Path, name: str, server: str) -> Path:
    prefix = tmp / name
    (prefix / "logs").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    conf.write_text(f"""worker_processes 1; daemon off; pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log; events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {prefix}/b; proxy_temp_path {prefix}/p; fastcgi_temp_path {prefix}/f;
  uwsgi_temp_path {prefix}/u; scgi_temp_path {prefix}/s;
  {server} }}
""")
    return conf


def start_nginx(tmp: Path, name: str, server: str) -> subprocess.Popen:
    conf = nginx_conf(tmp, name, server)
    return subprocess.Popen(["nginx", "-p", str(conf.parent), "-c", str(conf)], stderr=subprocess.DEVNULL)


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK


def rss_mb(pids: list[int], key: str = "VmRSS") -> float:
    total = 0
    for pid in pids:
        m = re.search(rf"{key}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        total += int(m.group(1)) if m else 0
    return round(total / 1024, 1)


def wrk(port: int, threads: int, connections: int, duration: int) -> dict:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
                          f"http://127.0.0.1:{port}/index.html"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return round(value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)

    return {"rps": round(rps), "requests": total, "p50_ms": pct("50"), "p99_ms": pct("99"),
            "errors": errors.group(1) if errors else None, "non_2xx": int(non2xx.group(1)) if non2xx else 0}


class _Client(asyncio.Protocol):
    """A keep-alive connection with one request in flight at most."""

    def __init__(self, sent: list[float], lat: list[float]) -> None:
        self.buf = b""
        self.busy = False
        self.sent_at = 0.0
        self.lat = lat

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        m = re.search(rb"content-length: (\d+)", self.buf[:end], re.I)
        if m and len(self.buf) - end - 4 >= int(m.group(1)):
            self.lat.append(time.perf_counter() - self.sent_at)
            self.buf = b""
            self.busy = False


async def fixed_rate(port: int, rate: int, seconds: float, connections: int = 32) -> dict:
    """Open loop: request i is sent at start + i/rate on a free connection."""
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    clients = []
    for _ in range(connections):
        _, c = await loop.create_connection(lambda: _Client([], lat), "127.0.0.1", port)
        clients.append(c)
    request = b"GET /index.html HTTP/1.1\r\nhost: bench\r\n\r\n"
    start = time.perf_counter()
    total, i, skipped = int(rate * seconds), 0, 0
    while i < total:
        now = time.perf_counter()
        while i < total and start + i / rate <= now:
            free = next((c for c in clients if not c.busy), None)
            if free is None:
                skipped += 1
            else:
                free.busy, free.sent_at = True, time.perf_counter()
                free.transport.write(request)
            i += 1
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
    await asyncio.sleep(0.5)
    for c in clients:
        c.transport.close()
    lat.sort()
    n = len(lat)
    return {"sent": total - skipped, "answered": n, "skipped_all_busy": skipped,
            "p50_ms": round(lat[n // 2] * 1000, 3), "p99_ms": round(lat[int(n * 0.99)] * 1000, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--rate-seconds", type=float, default=10.0)
    args = ap.parse_args()
    procs: list[subprocess.Popen] = []
    load_at_start = os.getloadavg()  # other work on the machine skews every number
    with tempfile.TemporaryDirectory(prefix="mkp-proxy-bench-") as tmpdir:
        tmp = Path(tmpdir)
        tmp.chmod(0o755)  # nginx's workers are not root
        (tmp / "www").mkdir()
        (tmp / "www" / "index.html").write_bytes(BODY)
        ports = {k: free_port() for k in ("direct", "proxy", "chain", "chain2", "nginx")}
        try:
            procs.append(start_nginx(tmp, "backend", f"server {{ listen 127.0.0.1:{ports['direct']}; "
                                                      f"root {tmp}/www; location / {{ }} }}"))
            procs.append(start_nginx(tmp, "rproxy", f"upstream b {{ server 127.0.0.1:{ports['direct']}; "
                                                     f"keepalive 64; }} server {{ listen 127.0.0.1:{ports['nginx']}; "
                                                     "location / { proxy_pass http://b; proxy_http_version 1.1; "
                                                     'proxy_set_header Connection ""; } }'))
            fwd = [sys.executable, "-m", "proxy.engine.forward"]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            pairs = {"proxy": ports["direct"], "chain2": ports["direct"], "chain": ports["chain2"]}
            mkp: dict[str, subprocess.Popen] = {}
            for name, upstream in pairs.items():
                mkp[name] = subprocess.Popen(fwd + ["--listen", f"127.0.0.1:{ports[name]}", "--upstream",
                                                    f"127.0.0.1:{upstream}"], env=env, cwd=ROOT,
                                             stdout=subprocess.DEVNULL)
                procs.append(mkp[name])
            for p in ports.values():
                wait_port(p)
            time.sleep(0.3)
            pids = {"direct": children(procs[0].pid), "nginx": children(procs[1].pid),
                    "proxy": [mkp["proxy"].pid], "chain": [mkp["chain"].pid, mkp["chain2"].pid]}
            results: dict = {"wrk": {}, "fixed_rate": {}}
            for name in ("direct", "proxy", "chain", "nginx"):
                print(f"wrk {name}", file=sys.stderr)
                wrk(ports[name], args.threads, args.connections, 1)  # warm-up
                cpu0 = cpu_seconds(pids[name])
                r = wrk(ports[name], args.threads, args.connections, args.duration)
                cpu = cpu_seconds(pids[name]) - cpu0
                r["cpu_s_per_1000_requests"] = round(cpu / r["requests"] * 1000, 4)
                r["cpu_cores_busy"] = round(cpu / args.duration, 2)
                r["rss_mb"] = rss_mb(pids[name])
                r["peak_rss_mb"] = rss_mb(pids[name], "VmHWM")
                results["wrk"][name] = r
            for name in ("direct", "proxy", "chain", "nginx"):
                print(f"{args.rate} rps {name}", file=sys.stderr)
                cpu0 = cpu_seconds(pids[name])
                r = asyncio.run(fixed_rate(ports[name], args.rate, args.rate_seconds))
                r["cpu_cores_busy"] = round((cpu_seconds(pids[name]) - cpu0) / args.rate_seconds, 3)
                results["fixed_rate"][name] = r
            direct = results["fixed_rate"]["direct"]
            for name in ("proxy", "chain", "nginx"):
                r = results["fixed_rate"][name]
                r["added_p50_ms"] = round(r["p50_ms"] - direct["p50_ms"], 3)
                r["added_p99_ms"] = round(r["p99_ms"] - direct["p99_ms"], 3)
            w = results["wrk"]
            results["summary"] = {
                "proxy_rps": w["proxy"]["rps"], "nginx_rps": w["nginx"]["rps"],
                "proxy_vs_nginx": round(w["proxy"]["rps"] / w["nginx"]["rps"], 2),
                "target_rps_20000": w["proxy"]["rps"] >= 20000,
                "target_0_8_of_nginx": w["proxy"]["rps"] >= 0.8 * w["nginx"]["rps"],
                "proxy_rss_mb": w["proxy"]["peak_rss_mb"], "target_rss_30mb": w["proxy"]["peak_rss_mb"] <= 30,
                "vcpu_per_1000_rps": results["fixed_rate"]["proxy"]["cpu_cores_busy"],
            }
            results["method"] = {"wrk": f"-t{args.threads} -c{args.connections} -d{args.duration}s",
                                 "fixed_rate": f"python open-loop client, {args.rate} rps, 32 keep-alive "
                                               "connections, latency from send to full response",
                                 "body_bytes": len(BODY), "cores": os.cpu_count(),
                                 "loadavg_at_start": load_at_start, "loadavg_at_end": os.getloadavg()}
            print(json.dumps(results, indent=2))
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    main()
