"""End-to-end benchmark of the API server over HTTP, as clients see it.

    .venv/bin/python bench/apiserver_bench.py [--duration 10] [--profile DIR]

One run (about 90 s, never more than --time-limit, default 180 s) measures on
ConfigMaps in `default`, against clusters started with `mkp up --port 0 --no-merge`
in throw-away MKP_HOME directories:

  1. creates/s and gets/s with 1 and with 32 concurrent clients (wrk, closed loop,
     1 client = 1 keep-alive connection; creates carry unique names from a Lua counter);
  2. create and get latency p50/p99 at a fixed 200 req/s (open loop: an asyncio client
     sends each request at its scheduled time and measures from that time);
  3. watch delivery latency to 100 watchers for 200 creates at 50/s;
  4. `mkp up` wall clock on a fresh MKP_HOME (5 runs) and on a resumed cluster (3 runs);
  5. the API server's VmRSS after start-up and after the load.

It prints a markdown table against the targets of issue 2 and writes
bench/results/apiserver-<date>.json. With --profile DIR, py-spy (if installed:
`.venv/bin/pip install py-spy`) samples the API server during every load phase; the
collapsed stacks go to DIR and a summary of the hot spots is printed and added to the
JSON. Profiled numbers are perturbed by the sampler: take throughput and latency from a
run without --profile.

The load generator is wrk (Debian package `wrk`): C on epoll, one thread for up to 32
connections. It used 0.08-0.35 of a core here (0.35 at 21,600 gets/s), so it leaves the
second core mostly free, while the server saturates one core and cannot use more: the
generator is not the bottleneck. Its Lua hooks give unique names per request
(`request()` with a counter and the thread id) and a machine-readable summary
(`done()`). `hey` (Go) would do too. We did not measure it, but on a 2-core machine
whatever CPU the load generator uses is taken from the server, so we took the lighter
of the two.

Every process started here is stopped at the end (also on error, SIGINT, SIGTERM and
the time limit); all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
CM_PATH = "/api/v1/namespaces/default/configmaps"
PAYLOAD = "x" * 100  # ConfigMap data value: the object is ~0.4 KB stored, as small objects are

TARGETS = {  # issue 2
    "creates_per_s": 2000,
    "gets_per_s": 5000,
    "latency_p99_ms": 10.0,
    "watch_p99_ms": 20.0,
    "ready_s": 2.0,
    "idle_rss_mb": 100.0,
}

CHILDREN: list[subprocess.Popen[Any]] = []  # wrk / py-spy processes, stopped on exit


class BenchAbort(Exception):
    pass


def _on_signal(signum: int, _frame: Any) -> None:
    if signum == signal.SIGALRM:
        raise BenchAbort("time limit reached (--time-limit)")
    raise BenchAbort(f"stopped by signal {signal.Signals(signum).name}")


# --- small helpers -------------------------------------------------------------------


def pct(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of `samples` (sorted or not)."""
    if not samples:
        return float("nan")
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


def dist_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [x * 1e3 for x in samples_s]
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50_ms": round(pct(ms, 0.50), 3), "p90_ms": round(pct(ms, 0.90), 3),
            "p99_ms": round(pct(ms, 0.99), 3), "max_ms": round(max(ms), 3), "mean_ms": round(statistics.fmean(ms), 3)}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Share of one core the API server used over a phase."""

    def __init__(self, pid: int) -> None:
        self.pid, self.cpu, self.wall = pid, cpu_seconds(pid), time.perf_counter()

    def share(self) -> float:
        return round((cpu_seconds(self.pid) - self.cpu) / (time.perf_counter() - self.wall), 2)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    versions = {}
    for mod in ("aiohttp", "uvloop", "orjson"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[mod] = version(mod)
    import sqlite3

    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=5)
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "packages": versions, "wrk": (wrk.stdout + wrk.stderr).splitlines()[0].strip() if wrk.stdout + wrk.stderr else "",
        "git_commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True, timeout=5).stdout.strip(),
        # Uncommitted or untracked files in the tree the server ran from (0 = exactly the commit).
        "git_uncommitted_files": len(subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "apiserver", "minikube_py"],
            capture_output=True, text=True, timeout=5).stdout.splitlines()),
    }


# --- clusters ------------------------------------------------------------------------


def mkp_argv() -> list[str]:
    script = Path(sys.executable).parent / "mkp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "minikube_py.cli"]


class Cluster:
    """One `mkp` cluster in its own MKP_HOME. `live` holds those that may be running."""

    live: list[Cluster] = []

    def __init__(self, home: Path, name: str = "bench") -> None:
        self.home, self.name = home, name
        self.env = dict(os.environ, MKP_HOME=str(home))
        # The source checkout first, so the console script runs this tree's code.
        self.env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
        self.env.pop("KUBECONFIG", None)

    @property
    def state_dir(self) -> Path:
        return self.home / self.name

    def _mkp(self, *args: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*mkp_argv(), *args, "--name", self.name], env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def up(self) -> float:
        """Wall-clock seconds of `mkp up` (it returns once /readyz answers)."""
        if self not in Cluster.live:
            Cluster.live.append(self)
        began = time.perf_counter()
        done = self._mkp("up", "--port", "0", "--no-merge", "--nodes", "0")
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            raise BenchAbort(f"mkp up failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return elapsed

    def down(self, purge: bool) -> float:
        began = time.perf_counter()
        done = self._mkp("down", *(["--purge"] if purge else []))
        if done.returncode != 0:
            raise BenchAbort(f"mkp down failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        if purge and self in Cluster.live:
            Cluster.live.remove(self)
        return time.perf_counter() - began

    @property
    def server(self) -> str:
        text = (self.state_dir / "kubeconfig").read_text()
        m = re.search(r"server:\s*['\"]?(http://127\.0\.0\.1:\d+)", text)
        if not m:
            raise BenchAbort(f"no http://127.0.0.1 server in {self.state_dir / 'kubeconfig'}")
        return m.group(1)

    @property
    def pid(self) -> int:
        return int((self.state_dir / "pids" / "apiserver.pid").read_text().strip())

    def memory_mb(self) -> dict[str, float]:
        fields = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = round(int(rest.split()[0]) / 1024, 1)
        return fields


# --- wrk (closed-loop throughput) ------------------------------------------------------

WRK_LUA_COMMON = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean))
end

local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end
"""

WRK_CREATE_LUA = WRK_LUA_COMMON + r"""
-- POST a ConfigMap with a unique name: <prefix>-<thread id>-<counter>.
counter = 0
function init(args)
  prefix = args[1]
  payload = args[2]
  headers = {["Content-Type"] = "application/json"}
end
function request()
  counter = counter + 1
  local body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"' .. prefix .. '-' .. tid ..
    '-' .. counter .. '"},"data":{"k":"' .. payload .. '"}}'
  return wrk.format("POST", wrk.path, headers, body)
end
"""

WRK_GET_LUA = WRK_LUA_COMMON + r"""
-- GET the pre-created ConfigMaps <prefix>-0 .. <prefix>-(n-1) in turn.
counter = 0
function init(args)
  prefix = args[1]
  n = tonumber(args[2])
end
function request()
  counter = counter + 1
  return wrk.format("GET", wrk.path .. "/" .. prefix .. "-" .. ((counter + tid * 7) % n))
end
"""


@dataclass
class Profiler:
    """py-spy attached to the API server for one phase (a no-op without --profile).
    Blocking mode (py-spy pauses the process for each sample): it cost 5-15% of
    throughput at 200 samples/s, where --nonblocking lost a third of the samples to
    torn stacks."""

    out_dir: Path | None
    rate: int = 200

    def start(self, pid: int, phase: str, seconds: int) -> tuple[subprocess.Popen[Any], Path, int] | None:
        if self.out_dir is None:
            return None
        out = self.out_dir / f"{phase}.txt"
        cmd = [py_spy(), "record", "--pid", str(pid), "--rate", str(self.rate), "--duration", str(seconds),
               "--format", "raw", "--function", "--output", str(out)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        CHILDREN.append(proc)
        time.sleep(0.3)  # attach before the load begins
        return proc, out, seconds

    def finish(self, handle: tuple[subprocess.Popen[Any], Path, int] | None, phase: str,
               profiles: dict[str, Any]) -> None:
        if handle is None:
            return
        proc, out, seconds = handle
        try:
            _, err = proc.communicate(timeout=seconds + 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        CHILDREN.remove(proc)
        if proc.returncode != 0 or not out.exists():
            log(f"py-spy failed for {phase}: {err.strip()[-400:]}")
            return
        profiles[phase] = summarize_profile(out, expected_samples=self.rate * seconds)


def py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else (shutil.which("py-spy") or "py-spy")


def run_wrk(url: str, lua: Path, connections: int, seconds: int, args: list[str],
            profiler: Profiler, pid: int, phase: str, profiles: dict[str, Any]) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(lua), url, "--", *args]
    prof = profiler.start(pid, phase, max(1, seconds - 1))
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    meter = CpuMeter(pid)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    CHILDREN.append(proc)
    try:
        out, err = proc.communicate(timeout=seconds + 15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        CHILDREN.remove(proc)
    server_cpu = meter.share()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (children_after.ru_utime + children_after.ru_stime
               - children_before.ru_utime - children_before.ru_stime)
    profiler.finish(prof, phase, profiles)
    m = re.search(r"^WRKJSON (\{.*\})$", out, re.M)
    if proc.returncode != 0 or not m:
        raise BenchAbort(f"wrk failed ({proc.returncode}): {out}{err}")
    raw = json.loads(m.group(1))
    secs = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    return {
        "connections": connections, "seconds": round(secs, 2), "requests": raw["requests"],
        "errors": errors, "non_2xx": raw["status"],
        "ok_per_s": round((raw["requests"] - raw["status"]) / secs, 1),
        "p50_ms": raw["p50_us"] / 1e3, "p99_ms": raw["p99_us"] / 1e3, "max_ms": raw["max_us"] / 1e3,
        "server_cpu_share": server_cpu, "wrk_cpu_share": round(wrk_cpu / secs, 2),
    }


# --- asyncio clients (open loop, watch) -------------------------------------------------


def cm_body(name: str, **data: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                       "data": {"k": PAYLOAD, **data}}, separators=(",", ":")).encode()


JSON_HEADERS = {"Content-Type": "application/json"}


async def create_targets(server: str, prefix: str, n: int) -> None:
    """Pre-create `n` ConfigMaps for the get phases (also warms the server up)."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for i in range(n):
            async with session.post(server + CM_PATH, data=cm_body(f"{prefix}-{i}"), headers=JSON_HEADERS) as r:
                await r.read()
                if r.status != 201:
                    raise BenchAbort(f"create {prefix}-{i}: HTTP {r.status}")
        for i in range(n):
            async with session.get(f"{server}{CM_PATH}/{prefix}-{i}") as r:
                await r.read()
                if r.status != 200:
                    raise BenchAbort(f"get {prefix}-{i}: HTTP {r.status}")


async def open_loop(server: str, kind: str, rate: float, seconds: float, target_prefix: str,
                    n_targets: int) -> dict[str, Any]:
    """Send request i at t0 + i/rate whatever happened to the earlier ones (requests
    overlap on a pool of keep-alive connections), and measure each from its scheduled
    time to the end of its response body: a slow response delays no later request, so
    queueing shows in the numbers (no coordinated omission)."""
    import aiohttp

    n = int(rate * seconds)
    from_sched: list[float] = []
    from_send: list[float] = []
    lag: list[float] = []
    failures: dict[str, int] = defaultdict(int)
    stamp = time.strftime("%H%M%S")

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256),
                                     timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one(i: int, scheduled: float) -> None:
            sent = time.perf_counter()
            try:
                if kind == "create":
                    ctx = session.post(server + CM_PATH, data=cm_body(f"ol-{stamp}-{i}"), headers=JSON_HEADERS)
                    want = 201
                elif kind == "get":
                    ctx = session.get(f"{server}{CM_PATH}/{target_prefix}-{i % n_targets}")
                    want = 200
                else:  # the HTTP floor: aiohttp server + client, no API machinery
                    ctx = session.get(server + "/readyz")
                    want = 200
                async with ctx as r:
                    await r.read()
                    status = r.status
            except (aiohttp.ClientError, TimeoutError) as e:
                failures[type(e).__name__] += 1
                return
            end = time.perf_counter()
            if status != want:
                failures[f"HTTP {status}"] += 1
                return
            from_sched.append(end - scheduled)
            from_send.append(end - sent)
            lag.append(sent - scheduled)

        tasks = []
        t0 = time.perf_counter() + 0.05
        for i in range(n):
            scheduled = t0 + i / rate
            # uvloop's timers have 1 ms granularity: sleep to just before the slot, then
            # yield to the loop (which keeps reading responses) until it comes.
            while (delay := scheduled - time.perf_counter()) > 0:
                await asyncio.sleep(delay - 0.0015 if delay > 0.002 else 0)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.wait(tasks, timeout=15)
        for t in tasks:
            t.cancel()
    achieved = len(from_sched) / (max(1e-9, (t0 + n / rate) - t0))
    return {"rate": rate, "seconds": seconds, "sent": n, "ok": len(from_sched), "failures": dict(failures),
            "achieved_ok_per_s": round(achieved, 1),
            "latency_from_schedule": dist_ms(from_sched), "latency_from_send": dist_ms(from_send),
            "client_send_lag": dist_ms(lag)}


async def watch_delivery(server: str, watchers: int, writes: int, rate: float) -> dict[str, Any]:
    """`watchers` watch streams from the current resourceVersion, then `writes` creates
    sent open-loop at `rate`/s; every event line is timestamped on arrival (parsed
    later, to keep the client's per-line work small). Latency per (watcher, write) from
    the moment the create request was sent, and from the moment its 201 arrived."""
    import aiohttp
    import orjson

    stamp = time.strftime("%H%M%S")
    lines: list[list[tuple[float, bytes]]] = [[] for _ in range(watchers)]
    sent: dict[str, float] = {}
    acked: dict[str, float] = {}
    opened = 0
    all_open = asyncio.Event()
    errors: dict[str, int] = defaultdict(int)

    async with aiohttp.ClientSession() as writer:
        async with writer.get(f"{server}{CM_PATH}?limit=1") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        url = f"{server}{CM_PATH}?watch=true&resourceVersion={rv}&timeoutSeconds=60"
        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as ws:

            async def watch(k: int) -> None:
                nonlocal opened
                async with ws.get(url) as r:
                    if r.status != 200:
                        errors[f"watch HTTP {r.status}"] += 1
                        return
                    opened += 1
                    if opened == watchers:
                        all_open.set()
                    got = lines[k]
                    while len(got) < writes:
                        line = await r.content.readline()
                        if not line:
                            return
                        got.append((time.perf_counter(), line))

            tasks = [asyncio.create_task(watch(k)) for k in range(watchers)]
            try:
                await asyncio.wait_for(all_open.wait(), timeout=20)
            except TimeoutError:
                raise BenchAbort(f"only {opened}/{watchers} watches opened ({dict(errors)})") from None
            await asyncio.sleep(0.2)

            async def create(i: int) -> None:
                name = f"w-{stamp}-{i}"
                sent[name] = time.perf_counter()
                async with writer.post(server + CM_PATH, data=cm_body(name), headers=JSON_HEADERS) as r:
                    await r.read()
                    if r.status != 201:
                        errors[f"create HTTP {r.status}"] += 1
                acked[name] = time.perf_counter()

            began = time.perf_counter()
            creates = []
            for i in range(writes):
                delay = began + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                creates.append(asyncio.create_task(create(i)))
            await asyncio.gather(*creates)
            done, pending = await asyncio.wait(tasks, timeout=10)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for t in done:
                if t.exception() is not None:
                    errors[f"watch {type(t.exception()).__name__}"] += 1

    from_send: list[float] = []
    from_ack: list[float] = []
    per_watcher_p99: list[float] = []
    missing = 0
    for got in lines:
        mine = []
        for t, line in got:
            event = orjson.loads(line)
            name = event["object"]["metadata"]["name"]
            if event["type"] == "ADDED" and name in sent:
                mine.append(t - sent[name])
                from_ack.append(t - acked[name])
        missing += writes - len(mine)
        from_send += mine
        if mine:
            per_watcher_p99.append(pct(mine, 0.99))
    return {"watchers": watchers, "writes": writes, "write_rate": rate, "events_expected": watchers * writes,
            "events_missing": missing, "errors": dict(errors),
            "delivery_from_send": dist_ms(from_send), "delivery_from_ack": dist_ms(from_ack),
            "worst_watcher_p99_ms": round(max(per_watcher_p99) * 1e3, 3) if per_watcher_p99 else None}


# --- profiles ---------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


_REPO_FILES: dict[str, list[str]] = {}


def _short(path: str) -> str:
    if "/" not in path and path.endswith(".py"):
        # py-spy prints some files (those of packages without __init__.py) by base name.
        if not _REPO_FILES:
            for f in REPO.glob("*/**/*.py"):
                if ".venv" not in f.parts:
                    _REPO_FILES.setdefault(f.name, []).append(str(f.relative_to(REPO)))
        found = _REPO_FILES.get(path, [])
        found = [f for f in found if f.startswith("apiserver/handlers/")] or found  # the package without __init__
        return found[0] if len(found) == 1 else path
    for marker in ("site-packages/", "/lib/python3."):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail if marker == "site-packages/" else "stdlib/" + tail.split("/", 1)[-1]
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(REPO))
    return path


def summarize_profile(path: Path, expected_samples: int, top: int = 15) -> dict[str, Any]:
    """Self and inclusive shares per function (file:function) from py-spy's collapsed
    stacks. Idle samples (the loop waiting in epoll) are not recorded by py-spy, so
    `busy` = samples / expected is roughly the share of one core the server used."""
    self_n: dict[str, int] = defaultdict(int)
    incl_n: dict[str, int] = defaultdict(int)
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        funcs = []
        for frame in stack.split(";"):
            m = _FRAME.match(frame)
            funcs.append(f"{_short(m['file'])}:{m['func']}" if m else frame)
        self_n[funcs[-1]] += n
        for f in set(funcs):
            incl_n[f] += n

    def table(counts: dict[str, int], only_repo: bool = False) -> list[list[Any]]:
        rows = sorted(counts.items(), key=lambda kv: -kv[1])
        if only_repo:
            rows = [kv for kv in rows if not kv[0].startswith(("stdlib/", "aiohttp/", "uvloop/", "<"))
                    and "/" in kv[0].split(":")[0] and not kv[0].startswith(("click/", "minikube_py/cli"))]
        return [[name, round(100 * n / total, 1)] for name, n in rows[:top]]

    return {"samples": total, "busy_share_of_one_core": round(total / expected_samples, 2) if expected_samples else None,
            "self_top": table(self_n), "inclusive_top_project": table(incl_n, only_repo=True)}


# --- report ---------------------------------------------------------------------------


def fmt(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def markdown(res: dict[str, Any]) -> str:
    r = res["results"]
    t = TARGETS
    rows: list[tuple[str, str, str, bool | None]] = []

    def row(what: str, value: str, target: str, ok: bool | None) -> None:
        rows.append((what, value, target, ok))

    th = r["throughput"]
    row("creates/s, 1 client", fmt(th["create_c1"]["ok_per_s"], 0), f"≥ {t['creates_per_s']:,}",
        th["create_c1"]["ok_per_s"] >= t["creates_per_s"])
    row("creates/s, 32 clients", fmt(th["create_c32"]["ok_per_s"], 0), f"≥ {t['creates_per_s']:,}",
        th["create_c32"]["ok_per_s"] >= t["creates_per_s"])
    row("gets/s, 1 client", fmt(th["get_c1"]["ok_per_s"], 0), f"≥ {t['gets_per_s']:,}",
        th["get_c1"]["ok_per_s"] >= t["gets_per_s"])
    row("gets/s, 32 clients", fmt(th["get_c32"]["ok_per_s"], 0), f"≥ {t['gets_per_s']:,}",
        th["get_c32"]["ok_per_s"] >= t["gets_per_s"])
    for kind in ("create", "get"):
        lat = r["latency_200rps"][kind]["latency_from_schedule"]
        row(f"{kind} latency at 200 req/s, p50 / p99", f"{fmt(lat['p50_ms'], 2)} / {fmt(lat['p99_ms'], 2)} ms",
            f"p99 ≤ {t['latency_p99_ms']:g} ms", lat["p99_ms"] <= t["latency_p99_ms"])
    w = r["watch"]
    d = w["delivery_from_send"]
    row(f"watch delivery, {w['watchers']} watchers, p50 / p99 / max",
        f"{fmt(d['p50_ms'], 2)} / {fmt(d['p99_ms'], 2)} / {fmt(d['max_ms'], 2)} ms"
        + (f" ({w['events_missing']} missing)" if w["events_missing"] else ""),
        f"p99 ≤ {t['watch_p99_ms']:g} ms", d["p99_ms"] <= t["watch_p99_ms"] and not w["events_missing"])
    up = r["ready"]
    row("`mkp up` to ready, fresh, median / max", f"{fmt(up['fresh_median_s'], 2)} / {fmt(up['fresh_max_s'], 2)} s",
        f"≤ {t['ready_s']:g} s", up["fresh_max_s"] <= t["ready_s"])
    row("`mkp up` to ready, resumed, median / max",
        f"{fmt(up['resumed_median_s'], 2)} / {fmt(up['resumed_max_s'], 2)} s", f"≤ {t['ready_s']:g} s",
        up["resumed_max_s"] <= t["ready_s"])
    mem = r["rss"]
    row("API server RSS, idle after start-up", f"{fmt(mem['after_startup']['VmRSS'])} MB",
        f"≤ {t['idle_rss_mb']:g} MB", mem["after_startup"]["VmRSS"] <= t["idle_rss_mb"])
    row("API server RSS, idle after the load (peak)",
        f"{fmt(mem['after_load']['VmRSS'])} MB ({fmt(mem['after_load']['VmHWM'])} MB)",
        f"≤ {t['idle_rss_mb']:g} MB", mem["after_load"]["VmRSS"] <= t["idle_rss_mb"])
    out = ["| Measurement | Result | Target | Met |", "|---|---|---|---|"]
    for what, value, target, ok in rows:
        out.append(f"| {what} | {value} | {target} | {'yes' if ok else 'no'} |")
    return "\n".join(out)


# --- main -----------------------------------------------------------------------------


def run(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    res: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "command": "python bench/apiserver_bench.py " + " ".join(sys.argv[1:]),
                           "machine": machine_info(), "targets": TARGETS, "results": {}}
    results = res["results"]
    profiles: dict[str, Any] = {}
    profiler = Profiler(args.profile)

    # 4a. `mkp up` on a fresh MKP_HOME, 5 times.
    fresh = []
    for i in range(args.ready_runs):
        c = Cluster(base / f"fresh-{i}")
        fresh.append(c.up())
        c.down(purge=True)
        log(f"fresh mkp up #{i + 1}: {fresh[-1]:.3f} s")

    # The cluster under load.
    cluster = Cluster(base / "main")
    main_up = cluster.up()
    server = cluster.server
    log(f"main cluster up in {main_up:.2f} s at {server}, apiserver pid {cluster.pid}")
    time.sleep(args.settle)
    rss_start = cluster.memory_mb()  # 5. idle after start-up
    log(f"RSS after start-up: {rss_start}")

    asyncio.run(create_targets(server, "get", args.get_targets))

    # 1. Throughput (closed loop, wrk).
    lua_dir = base / "lua"
    lua_dir.mkdir()
    (lua_dir / "create.lua").write_text(WRK_CREATE_LUA)
    (lua_dir / "get.lua").write_text(WRK_GET_LUA)
    throughput: dict[str, Any] = {}
    for kind in ("create", "get"):
        for conns in (1, 32):
            phase = f"{kind}_c{conns}"
            lua = lua_dir / f"{kind}.lua"
            wrk_args = [f"c{conns}", PAYLOAD] if kind == "create" else ["get", str(args.get_targets)]
            throughput[phase] = run_wrk(server + CM_PATH, lua, conns, args.duration, wrk_args,
                                        profiler, cluster.pid, phase, profiles)
            throughput[phase]["rss_after_mb"] = cluster.memory_mb()["VmRSS"]
            log(f"{phase}: {throughput[phase]}")
    results["throughput"] = throughput

    # 2. Latency at a fixed rate (open loop).
    latency: dict[str, Any] = {}
    for kind, seconds in (("http_floor", args.floor_seconds), ("create", args.latency_seconds),
                          ("get", args.latency_seconds)):
        prof = profiler.start(cluster.pid, f"latency_{kind}", max(1, int(seconds)))
        meter, client = CpuMeter(cluster.pid), CpuMeter(os.getpid())
        latency[kind] = asyncio.run(open_loop(server, kind, args.rate, seconds, "get", args.get_targets))
        latency[kind]["server_cpu_share"] = meter.share()
        latency[kind]["client_cpu_share"] = client.share()
        latency[kind]["rss_after_mb"] = cluster.memory_mb()["VmRSS"]
        profiler.finish(prof, f"latency_{kind}", profiles)
        log(f"latency {kind}: {latency[kind]['latency_from_schedule']} failures={latency[kind]['failures']}")
    results["latency_200rps"] = latency

    # 3. Watch delivery.
    seconds = int(args.watch_writes / args.watch_rate) + 1
    prof = profiler.start(cluster.pid, "watch", seconds)
    meter, client = CpuMeter(cluster.pid), CpuMeter(os.getpid())
    results["watch"] = asyncio.run(watch_delivery(server, args.watchers, args.watch_writes, args.watch_rate))
    results["watch"]["server_cpu_share"] = meter.share()
    results["watch"]["client_cpu_share"] = client.share()  # this process: the watchers and the writer
    results["watch"]["rss_after_mb"] = cluster.memory_mb()["VmRSS"]
    profiler.finish(prof, "watch", profiles)
    log(f"watch: {results['watch']['delivery_from_send']} missing={results['watch']['events_missing']}")

    # 5. Idle RSS after the load.
    time.sleep(args.settle + 1)
    rss_load = cluster.memory_mb()
    log(f"RSS after load: {rss_load}")

    # 4b. Resume: stop (keeping state) and `mkp up` again.
    revision = None
    with contextlib.suppress(Exception):
        import urllib.request

        with urllib.request.urlopen(f"{server}{CM_PATH}?limit=1", timeout=5) as r:
            revision = int(json.load(r)["metadata"]["resourceVersion"])
    resumed = []
    rss_resumed: dict[str, float] = {}
    for i in range(args.resume_runs):
        cluster.down(purge=False)
        resumed.append(cluster.up())
        log(f"resumed mkp up #{i + 1}: {resumed[-1]:.3f} s")
    time.sleep(args.settle)
    rss_resumed = cluster.memory_mb()
    db = cluster.state_dir / "data" / "state.db"
    db_mb = round(sum(p.stat().st_size for p in db.parent.glob("state.db*")) / 2**20, 1) if db.exists() else None
    cluster.down(purge=True)

    results["ready"] = {
        "fresh_runs_s": [round(x, 3) for x in fresh], "fresh_median_s": round(statistics.median(fresh), 3),
        "fresh_max_s": round(max(fresh), 3),
        "resumed_runs_s": [round(x, 3) for x in resumed], "resumed_median_s": round(statistics.median(resumed), 3),
        "resumed_max_s": round(max(resumed), 3), "resumed_store_revision": revision, "resumed_store_mb": db_mb,
    }
    results["rss"] = {"after_startup": rss_start, "after_load": rss_load, "after_resume": rss_resumed}
    res["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    if args.profile:
        res["profiles"] = profiles
    return res


def print_profiles(profiles: dict[str, Any]) -> None:
    for phase, p in profiles.items():
        print(f"\n### profile: {phase} ({p['samples']} samples, busy ≈ {p['busy_share_of_one_core']} of one core)")
        print("self:")
        for name, share in p["self_top"][:10]:
            print(f"  {share:5.1f}%  {name}")
        print("inclusive (project code):")
        for name, share in p["inclusive_top_project"][:12]:
            print(f"  {share:5.1f}%  {name}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (4 runs)")
    ap.add_argument("--rate", type=float, default=200.0, help="open-loop request rate")
    ap.add_argument("--latency-seconds", type=float, default=15.0, help="seconds per open-loop run")
    ap.add_argument("--floor-seconds", type=float, default=5.0, help="seconds of the /readyz open-loop run")
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--watch-writes", type=int, default=200)
    ap.add_argument("--watch-rate", type=float, default=50.0)
    ap.add_argument("--ready-runs", type=int, default=5)
    ap.add_argument("--resume-runs", type=int, default=3)
    ap.add_argument("--get-targets", type=int, default=200, help="ConfigMaps the get phases cycle over")
    ap.add_argument("--settle", type=float, default=1.0, help="idle seconds before reading RSS")
    ap.add_argument("--time-limit", type=int, default=180, help="abort (and clean up) after this many seconds")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR",
                    help="sample the API server with py-spy during each load phase; stacks go to DIR")
    ap.add_argument("--output", type=Path, default=None, help="JSON path (default bench/results/apiserver-<date>.json)")
    args = ap.parse_args()

    if shutil.which("wrk") is None:
        print("apiserver_bench: wrk is not installed. Install it with:\n"
              "    sudo apt-get install -y wrk        (Debian/Ubuntu; `make test-deps` does it too)",
              file=sys.stderr)
        return 2
    if args.profile is not None:
        if not (Path(py_spy()).exists() or shutil.which("py-spy")):
            print("apiserver_bench: --profile needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
            return 2
        args.profile.mkdir(parents=True, exist_ok=True)
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print("apiserver_bench: run it with the project's venv (.venv/bin/python), it needs aiohttp",
              file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGALRM, _on_signal)
    signal.alarm(args.time_limit)
    base = Path(tempfile.mkdtemp(prefix="mkp-bench-"))
    began = time.monotonic()
    try:
        res = run(args, base)
    except BenchAbort as e:
        print(f"apiserver_bench: aborted: {e}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in list(CHILDREN):
            with contextlib.suppress(Exception):
                proc.kill()
                proc.wait(timeout=5)
        for c in list(Cluster.live):
            try:
                c.down(purge=True)
            except Exception as e:  # noqa: BLE001 - report and keep cleaning
                print(f"apiserver_bench: cleanup of {c.state_dir} failed: {e}", file=sys.stderr)
        shutil.rmtree(base, ignore_errors=True)
    res["wall_seconds"] = round(time.monotonic() - began, 1)
    out = args.output or RESULTS_DIR / f"apiserver-{datetime.now(UTC).strftime('%Y-%m-%d')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    m = res["machine"]
    print(f"\nAPI server benchmark, {res['date']}, {m['nproc']} x {m['cpu']}, {m['mem_gib']} GiB, "
          f"Python {m['python']}, commit {m['git_commit']} ({res['wall_seconds']} s)\n")
    print(markdown(res))
    if args.profile:
        print_profiles(res["profiles"])
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
