"""The proxy engine's speed (issue 6): `mkp proxy -c FILE` against nginx as a reverse
proxy, in one run, on loopback.

Starts a fast backend (Debian nginx, one worker, a 100-byte static file), then measures
each target with `wrk` (closed loop) and with an open-loop client at a fixed rate:

    direct      the backend itself
    mkp         one `mkp proxy` (routing, access log, Istio stats filter when accepted)
    mkp-chain   two chained: outbound sidecar -> inbound sidecar -> backend, plaintext
    mkp-mtls    the same with mTLS between the sidecars (STRICT: client cert required,
                the server's SPIFFE ID checked); "not yet" when the engine refuses it
    mkp-c2      one `mkp proxy --concurrency 2` (two worker processes, SO_REUSEPORT)
    nginx       nginx as a reverse proxy (one worker, upstream keepalive)

Per target: requests/s, wrk's p50/p99, CPU seconds per 1,000 requests of the proxy
processes (utime+stime from /proc; = vCPU per 1,000 rps), RSS (VmRSS after the run and
VmHWM, the peak), and at a fixed 1,000 requests/s (uvloop client, 32 keep-alive
connections, request i sent at start + i/rate whatever the responses do) p50/p99 and
their difference with direct's (the added latency). Bootstraps: proxy_bench_config.py.

    python bench/proxy_bench.py [--duration 8] [--save] [--profile DIR]

Everything listens on 127.0.0.1; every process started is stopped at the end, also on an
error or Ctrl-C. Output: JSON on stdout, a markdown table on stderr (--save also writes
bench/results/proxy-<date>.json and .md). --profile records the single proxy with py-spy
during an extra wrk run, after the measurements, and prints its top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proxy_bench_config as bconf  # noqa: E402
import proxy_bench_report as report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT  # the code the proxies run (--tree: e.g. a `git archive` snapshot while others edit)
BODY = b"x" * 100
CLK = os.sysconf("SC_CLK_TCK")
TARGETS = ("direct", "mkp", "mkp-chain", "mkp-mtls", "mkp-c2", "nginx")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def start_nginx(tmp: Path, name: str, server: str) -> subprocess.Popen:
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
    return subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(conf)], stderr=subprocess.DEVNULL)


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of `pids` so far."""
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    return user / CLK, system / CLK


def cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_times(pids))


def machine_ticks() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of the whole machine, from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, steal = v[3] + v[4], v[7] if len(v) > 7 else 0
    return sum(v) - idle - steal, steal, sum(v)


def machine_load(t0: tuple[int, int, int], t1: tuple[int, int, int]) -> dict:
    """Cores busy on the whole machine (everything: target, wrk, backend, others) and stolen."""
    total = (t1[2] - t0[2]) or 1
    cores = os.cpu_count() or 1
    return {"machine_busy_cores": round((t1[0] - t0[0]) / total * cores, 2),
            "steal_cores": round((t1[1] - t0[1]) / total * cores, 2)}


def rss_mb(pids: list[int], key: str = "VmRSS") -> float:
    total = 0
    for pid in pids:
        m = re.search(rf"{key}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        total += int(m.group(1)) if m else 0
    return round(total / 1024, 1)


def wrk(port: int, threads: int, connections: int, duration: int) -> dict:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
                          "-H", f"Host: {bconf.HOST}", f"http://127.0.0.1:{port}/index.html"],
                         capture_output=True, text=True, check=True, timeout=duration + 30).stdout
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

    def __init__(self, lat: list[float], statuses: dict[int, int]) -> None:
        self.buf = b""
        self.busy = False
        self.sent_at = 0.0
        self.lat = lat
        self.statuses = statuses

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
            status = int(self.buf[9:12])
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.buf = b""
            self.busy = False


async def fixed_rate(port: int, rate: int, seconds: float, connections: int = 32) -> dict:
    """Open loop: request i is sent at start + i/rate on a free connection."""
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    statuses: dict[int, int] = {}
    clients = []
    for _ in range(connections):
        _, c = await loop.create_connection(lambda: _Client(lat, statuses), "127.0.0.1", port)
        clients.append(c)
    request = f"GET /index.html HTTP/1.1\r\nhost: {bconf.HOST}\r\nuser-agent: bench\r\n\r\n".encode()
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
    return {"sent": total - skipped, "answered": n, "skipped_all_busy": skipped, "statuses": statuses,
            "p50_ms": round(lat[n // 2] * 1000, 3) if n else None,
            "p99_ms": round(lat[int(n * 0.99)] * 1000, 3) if n else None}


def check_answers(port: int) -> str | None:
    """None when the target answers the bench's request with 200, else why not."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/index.html", headers={"Host": bconf.HOST})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return None if r.status == 200 and r.read() == BODY else f"status {r.status}"
    except Exception as e:  # noqa: BLE001 - any failure makes the row unusable; say which
        return f"{type(e).__name__}: {e}"


def prometheus(admin_port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/stats/prometheus", timeout=5) as r:
            return r.read().decode()
    except Exception:  # noqa: BLE001
        return ""


class Bench:
    """The processes of one run and what they are for; `stop()` ends them all."""

    def __init__(self, tmp: Path, args: argparse.Namespace) -> None:
        self.tmp, self.args = tmp, args
        self.procs: list[subprocess.Popen] = []
        self.ports: dict[str, int] = {}
        self.pids: dict[str, list[int]] = {}
        self.mkp: dict[str, dict] = {}  # proxy name -> {proc, admin, log, stderr}
        self.notes: dict[str, str] = {}  # target -> why it has no numbers
        self.features: dict = {}

    def start_backends(self) -> None:
        www = self.tmp / "www"
        www.mkdir()
        (www / "index.html").write_bytes(BODY)
        self.ports["direct"], self.ports["nginx"] = free_port(), free_port()
        backend = start_nginx(self.tmp, "backend", f"server {{ listen 127.0.0.1:{self.ports['direct']}; "
                                                   f"root {www}; location / {{ }} }}")
        rproxy = start_nginx(self.tmp, "rproxy", f"upstream b {{ server 127.0.0.1:{self.ports['direct']}; "
                                                 f"keepalive 64; }} server {{ listen 127.0.0.1:{self.ports['nginx']}; "
                                                 "location / { proxy_pass http://b; proxy_http_version 1.1; "
                                                 'proxy_set_header Connection ""; } }')
        self.procs += [backend, rproxy]
        for name, p in (("direct", backend), ("nginx", rproxy)):
            wait_port(self.ports[name], p)
            self.pids[name] = children(p.pid)

    def start_proxy(self, name: str, listen: int, upstream: int, concurrency: int = 1, **tls: dict) -> None:
        log = self.tmp / f"{name}-access.log"
        admin = free_port()
        cfg = bconf.bootstrap(listen=listen, upstream=upstream, admin=admin, log_path=str(log),
                              stats=self.features["istio_stats_filter"], **tls)
        path = self.tmp / f"{name}.yaml"
        import yaml

        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        err = open(self.tmp / f"{name}.stderr", "wb")  # noqa: SIM115 - closed with the process
        p = subprocess.Popen([sys.executable, "-m", "minikube_py.cli", "proxy", "-c", str(path), "-l", "warning",
                              "--concurrency", str(concurrency)],
                             cwd=TREE, env={**os.environ, "PYTHONPATH": str(TREE)},
                             stdout=subprocess.DEVNULL, stderr=err)
        self.procs.append(p)
        self.mkp[name] = {"proc": p, "admin": admin, "log": log, "stderr": self.tmp / f"{name}.stderr"}

    def start_proxies(self) -> None:
        probe = bconf.bootstrap(listen=0, upstream=1, admin=0, log_path=str(self.tmp / "probe.log"), stats=True)
        why = bconf.refusal(probe)
        self.features = {"istio_stats_filter": why is None, "istio_stats_filter_refused": why,
                         "access_log_configured": True}
        d = self.ports["direct"]
        for t in ("mkp", "mkp-chain", "mkp-mtls", "mkp-c2"):
            self.ports[t] = free_port()
        inner, inner_tls = free_port(), free_port()
        self.start_proxy("mkp", self.ports["mkp"], d)
        self.start_proxy("c2", self.ports["mkp-c2"], d, concurrency=2)
        self.start_proxy("chain-in", inner, d)
        self.start_proxy("chain-out", self.ports["mkp-chain"], inner)
        up, down = bconf.mtls_contexts(self.tmp / "pki")
        ok = bconf.bootstrap(listen=0, upstream=1, admin=0, log_path=None, stats=False, downstream_tls=down)
        refused = bconf.refusal(ok) or bconf.refusal(
            bconf.bootstrap(listen=0, upstream=1, admin=0, log_path=None, stats=False, upstream_tls=up))
        if refused:
            self.notes["mkp-mtls"] = f"not yet: {refused}"
        else:
            self.start_proxy("mtls-in", inner_tls, d, downstream_tls=down)
            self.start_proxy("mtls-out", self.ports["mkp-mtls"], inner_tls, upstream_tls=up)
        groups = {"mkp": ["mkp"], "mkp-chain": ["chain-in", "chain-out"], "mkp-mtls": ["mtls-in", "mtls-out"],
                  "mkp-c2": ["c2"]}
        for target, names in groups.items():
            if target in self.notes:
                continue
            try:
                for n in names:
                    wait_port(self.mkp[n]["admin"], self.mkp[n]["proc"])
                wait_port(self.ports[target], self.mkp[names[-1]]["proc"])
            except RuntimeError as e:
                tail = b"".join(Path(self.mkp[n]["stderr"]).read_bytes()[-400:] for n in names).decode(errors="replace")
                self.notes[target] = f"did not start: {e}: {tail.strip()}"
                continue
            self.pids[target] = [self.mkp[n]["proc"].pid for n in names]
            if target == "mkp-c2":  # the parent (admin only) and its workers
                self.pids[target] += children(self.mkp["c2"]["proc"].pid)
        for target in ("direct", "nginx", "mkp", "mkp-chain", "mkp-mtls", "mkp-c2"):
            if target not in self.notes and (why := check_answers(self.ports[target])):
                self.notes[target] = f"does not answer 200: {why}"

    def telemetry_seen(self) -> None:
        """Whether the access log and Istio metrics were really produced by `mkp`."""
        m = self.mkp["mkp"]
        log = m["log"]
        lines = log.read_text().splitlines() if log.exists() else []
        self.features["access_log_lines"] = len(lines)
        self.features["access_log_written"] = bool(lines)
        if lines:
            try:
                self.features["access_log_sample"] = json.loads(lines[-1])
            except ValueError:
                self.features["access_log_sample"] = lines[-1][:300]
        text = prometheus(m["admin"])
        totals = [ln for ln in text.splitlines() if ln.startswith("istio_requests_total")]
        self.features["istio_requests_total_series"] = len(totals)
        self.features["istio_metrics_recorded"] = bool(totals)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(8)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def measure(b: Bench, args: argparse.Namespace) -> dict:
    live = [t for t in TARGETS if t not in b.notes]
    results: dict = {"wrk": {}, "fixed_rate": {}}
    runs: dict[str, list[dict]] = {t: [] for t in live}
    for rnd in range(args.rounds):  # rounds interleave the targets: a burst of other work hits all alike
        for name in live:
            print(f"wrk {name} (round {rnd + 1}/{args.rounds})", file=sys.stderr)
            wrk(b.ports[name], args.threads, args.connections, 1)  # warm-up: connections, caches
            u0, s0 = cpu_times(b.pids[name])
            m0 = machine_ticks()
            r = wrk(b.ports[name], args.threads, args.connections, args.duration)
            u1, s1 = cpu_times(b.pids[name])
            r.update(machine_load(m0, machine_ticks()))
            cpu = u1 - u0 + s1 - s0
            r["cpu_system_share"] = round((s1 - s0) / cpu, 2) if cpu else None  # kernel: syscalls, loopback TCP
            r["cpu_s_per_1000_requests"] = round(cpu / r["requests"] * 1000, 4)
            r["cpu_cores_busy"] = round(cpu / args.duration, 2)
            r["rss_mb"] = rss_mb(b.pids[name])
            r["peak_rss_mb"] = rss_mb(b.pids[name], "VmHWM")
            runs[name].append(r)
    for name in live:  # the best round: the one least disturbed by anything else on the machine
        best = max(runs[name], key=lambda r: r["rps"])
        results["wrk"][name] = {**best, "rps_all_rounds": [r["rps"] for r in runs[name]],
                                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[name])}
    for name in live:
        print(f"{args.rate} rps {name}", file=sys.stderr)
        cpu0, m0 = cpu_seconds(b.pids[name]), machine_ticks()
        r = asyncio.run(fixed_rate(b.ports[name], args.rate, args.rate_seconds))
        r.update(machine_load(m0, machine_ticks()))
        busy = (cpu_seconds(b.pids[name]) - cpu0) / args.rate_seconds
        r["cpu_cores_busy"] = round(busy, 3)
        r["vcpu_per_1000_rps"] = round(busy / (args.rate / 1000), 3)
        results["fixed_rate"][name] = r
    direct = results["fixed_rate"].get("direct")
    for name in live:
        r = results["fixed_rate"][name]
        if name != "direct" and direct and r["p50_ms"] is not None:
            r["added_p50_ms"] = round(r["p50_ms"] - direct["p50_ms"], 3)
            r["added_p99_ms"] = round(r["p99_ms"] - direct["p99_ms"], 3)
    return results


def profile(b: Bench, args: argparse.Namespace, out: Path) -> dict:
    """py-spy on the single proxy during a wrk run; top functions by self/inclusive share."""
    out.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    raw = out / "mkp-proxy.collapsed"
    rec = subprocess.Popen([str(spy), "record", "-r", "200", "-f", "raw", "-o", str(raw), "-d",
                            str(args.duration + 1), "-p", str(b.pids["mkp"][0])],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    b.procs.append(rec)
    time.sleep(1.0)
    w = wrk(b.ports["mkp"], args.threads, args.connections, args.duration)
    rec.wait(30)
    return {"wrk_rps_while_profiled": w["rps"], "collapsed_stacks": str(raw), **report.top_functions(raw)}


def machine() -> dict:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    cpu = re.search(r"Model name:\s+(.*)", run("lscpu"))
    mem = re.search(r"Mem:\s+(\d+)", run("free", "-m"))
    return {"cpus": os.cpu_count(), "cpu": cpu.group(1).strip() if cpu else "", "mem_mb": int(mem.group(1)) if mem
            else None, "kernel": os.uname().release, "python": sys.version.split()[0],
            "nginx": run("nginx", "-v") or subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
            **tree_version()}


def tree_version() -> dict:
    """The commit the proxies ran: a --snapshot's, else the working tree's HEAD and how
    many files differ from it (0 = exactly the commit)."""
    mark = TREE / ".bench-commit"
    if mark.exists():
        return {"commit": mark.read_text().strip(), "uncommitted_files": 0, "proxy_tree": "git archive snapshot"}
    git = ["git", "-C", str(TREE)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout.splitlines()
    return {"commit": head or "unknown", "uncommitted_files": len(dirty) if head else None, "proxy_tree": str(TREE)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=2, help="wrk runs per target, interleaved; the best is kept")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--rate-seconds", type=float, default=8.0)
    ap.add_argument("--save", action="store_true", help="write bench/results/proxy-<date>.json and .md")
    ap.add_argument("--profile", metavar="DIR", help="py-spy the single proxy after the measurements")
    ap.add_argument("--tree", metavar="DIR", help="run the proxies from this source tree (default: this one)")
    ap.add_argument("--snapshot", metavar="REV", nargs="?", const="HEAD",
                    help="run the proxies from `git archive REV` (default HEAD) in a temporary directory: "
                         "a shared working tree being edited cannot break or skew the run")
    args = ap.parse_args()
    global TREE
    snap_dir = None
    if args.snapshot:
        snap_dir = tempfile.TemporaryDirectory(prefix="mkp-proxy-bench-tree-")
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.snapshot], capture_output=True,
                             text=True, check=True).stdout.strip()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", snap_dir.name], input=archive, check=True)
        (Path(snap_dir.name) / ".bench-commit").write_text(rev)
        args.tree = snap_dir.name
    if args.tree:
        TREE = Path(args.tree).resolve()
        sys.path.insert(0, str(TREE))  # the config probe imports the engine in-process
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = time.monotonic()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mkp-proxy-bench-") as tmpdir:
        tmp = Path(tmpdir)
        tmp.chmod(0o755)  # nginx's workers are not root
        b = Bench(tmp, args)
        try:
            b.start_backends()
            b.start_proxies()
            results = measure(b, args)
            if "mkp" not in b.notes:
                b.telemetry_seen()
            if args.profile and "mkp" not in b.notes:
                results["profile"] = profile(b, args, Path(args.profile))
        finally:
            b.stop()
    results["not_measured"] = b.notes
    results["features"] = b.features
    results["summary"] = report.summary(results)
    results["method"] = {"wrk": f"-t{args.threads} -c{args.connections} -d{args.duration}s, 1 s warm-up, "
                                f"best of {args.rounds} interleaved rounds",
                         "fixed_rate": f"python open-loop client (uvloop), {args.rate} rps for {args.rate_seconds}"
                                       " s, 32 keep-alive connections, latency from send to full response",
                         "body_bytes": len(BODY), "backend": "nginx (Debian), 1 worker, static file",
                         "loadavg_at_start": [round(x, 2) for x in load_start],
                         "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                         "wall_s": round(time.monotonic() - started, 1)}
    results["machine"] = machine()
    md = report.markdown(results)
    print(json.dumps(results, indent=2))
    print(md, file=sys.stderr)
    if args.save:
        day = datetime.date.today().isoformat()
        out = ROOT / "bench" / "results"
        (out / f"proxy-{day}.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / f"proxy-{day}.md").write_text(md + "\n")
    if snap_dir is not None:
        snap_dir.cleanup()


if __name__ == "__main__":
    main()
