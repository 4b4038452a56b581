"""`mkp proxy -c FILE --concurrency 2` as a process against an aiohttp backend: two
worker processes share the listeners (SO_REUSEPORT), the parent's admin sums their
stats, a bad config fails before any worker starts, SIGTERM drains everything, a
killed worker is restarted, a reload reaches every worker, workers die with the parent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from proxy.engine.admin import merge_clusters, merge_prometheus, merge_stats_text
from proxy.engine.workers import query
from tests.proxy.engine.test_telemetry_cli import free_port
from tests.proxy.engine.test_telemetry_server import FILE_LOG, Backend, bootstrap, cluster, node, series

MKP = str(Path(sys.executable).parent / "mkp")


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(x) for x in (task / "children").read_text().split()]
    return sorted(out)


def listening_ports(pid: int) -> set[int]:
    """TCP ports this process has a LISTEN socket on (its fds matched to /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    ports = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A" and f[9] in inodes:
            ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def admin_socket(worker: int) -> str:
    args = Path(f"/proc/{worker}/cmdline").read_bytes().split(b"\0")
    return args[args.index(b"--admin-socket") + 1].decode()


def stat(text: str, name: str) -> int:
    return sum(int(line.rpartition(": ")[2]) for line in text.splitlines() if line.rpartition(": ")[0] == name)


def write_config(path: Path, backend_port: int, listen: int, admin: int, log: Path) -> None:
    cfg = bootstrap([cluster("reviews", backend_port)], identity=node("reviews-v2", "reviews", "v2"),
                    access_log=[{"name": "envoy.access_loggers.file", "typed_config": {
                        "@type": FILE_LOG, "path": str(log),
                        "log_format": {"json_format": {"code": "%RESPONSE_CODE%", "id": "%REQ(X-REQUEST-ID)%"}}}}])
    lst = cfg["static_resources"]["listeners"][0]
    lst["address"]["socket_address"]["port_value"] = listen
    second = json.loads(json.dumps(lst))  # a port-0 listener: the parent chooses one port for both workers
    second["name"], second["address"]["socket_address"]["port_value"] = "any-port", 0
    cfg["static_resources"]["listeners"].append(second)
    cfg["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(cfg))
    tmp.replace(path)  # whole at once: the watchers never read half a file


class Proxy:
    """`mkp proxy --concurrency 2` started and, at the end, stopped (killed if it must be)."""

    def __init__(self, tmp: Path, backend_port: int) -> None:
        self.listen, self.admin = free_port(), free_port()
        self.log, self.path = tmp / "access.json", tmp / "envoy.yaml"
        write_config(self.path, backend_port, self.listen, self.admin, self.log)

    async def __aenter__(self) -> Proxy:
        self.proc = await asyncio.create_subprocess_exec(MKP, "proxy", "-c", str(self.path), "--concurrency", "2",
                                                         stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.PIPE)
        self.session = aiohttp.ClientSession()
        await self.until_live()
        return self

    async def until_live(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                if (await self.get_admin("/ready"))[0] == 200:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("the proxy's workers did not all become ready")

    async def get_admin(self, path: str, method: str = "GET") -> tuple[int, str]:
        async with self.session.request(method, f"http://127.0.0.1:{self.admin}{path}") as r:
            return r.status, await r.text()

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    async def requests(self, n: int, port: int | None = None) -> None:
        """n requests, each on a new connection (so SO_REUSEPORT gets to choose every time)."""
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            for _ in range(n):
                async with s.get(f"http://127.0.0.1:{port or self.listen}/p") as r:
                    assert r.status == 200

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        if self.proc.returncode is None:
            for pid in [self.proc.pid, *self.workers()]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await self.proc.wait()


async def eventually(check, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_two_workers_share_the_listeners_and_the_admin_sums_their_stats(tmp_path: Path):
    async with Backend() as backend, Proxy(tmp_path, backend.port) as proxy:
        workers = proxy.workers()
        assert len(workers) == 2
        ports = [listening_ports(w) for w in workers]
        assert ports[0] == ports[1] and proxy.listen in ports[0] and len(ports[0]) == 2  # port 0: one port
        assert not listening_ports(proxy.proc.pid) & ports[0]  # the parent serves no listener
        (any_port,) = ports[0] - {proxy.listen}
        await proxy.requests(40)
        await proxy.requests(4, any_port)
        own = [stat((await query(admin_socket(w), "GET", "/stats"))[1].decode(), "http.inbound.downstream_rq_total")
               for w in workers]
        assert sum(own) == 44 and min(own) > 0, own  # both served: 2 ** -43 odds of a false failure

        async def summed() -> None:
            _, text = await proxy.get_admin("/stats")
            assert stat(text, "http.inbound.downstream_rq_total") == 44
            assert stat(text, "cluster.reviews.upstream_rq_200") == 44
            _, prom = await proxy.get_admin("/stats/prometheus")
            got = series(prom, "istio_requests_total", reporter="destination", response_code="200")
            assert [v for _, v in got] == [44]
            assert 'envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="reviews"} 44' in prom
            _, clusters = await proxy.get_admin("/clusters")
            assert f"reviews::127.0.0.1:{backend.port}::rq_total::44" in clusters.splitlines()
        await eventually(summed)
        status, dump = await proxy.get_admin("/config_dump")
        assert status == 200 and "bootstrap" in dump
        proxy.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proxy.proc.wait(), 15) == 0
        for w in workers:
            assert not Path(f"/proc/{w}").exists()
    lines = [json.loads(x) for x in proxy.log.read_text().splitlines()]  # two writers, whole lines
    assert sorted(x["id"] for x in lines) == sorted(h["x-request-id"] for h in backend.seen)
    assert len(lines) == 44


async def test_a_bad_config_fails_before_any_worker_starts(tmp_path: Path):
    path = tmp_path / "envoy.yaml"
    cfg = bootstrap([cluster("reviews", free_port())])
    cfg["static_resources"]["clusters"][0]["lb_polcy"] = "ROUND_ROBIN"
    path.write_text(yaml.safe_dump(cfg))
    errors = []
    for n in ("1", "2"):
        proc = await asyncio.create_subprocess_exec(MKP, "proxy", "-c", str(path), "--concurrency", n,
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 1
        assert b"worker" not in err
        errors.append(err.decode().strip().splitlines()[-1])
    assert errors[0] == errors[1] and "lb_polcy" in errors[0]


async def test_a_taken_port_fails_the_command_and_no_worker_is_left(tmp_path: Path):
    path = tmp_path / "envoy.yaml"
    with socket.socket() as taken:  # no SO_REUSEPORT: the workers cannot share it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        write_config(path, free_port(), taken.getsockname()[1], free_port(), tmp_path / "access.json")
        proc = await asyncio.create_subprocess_exec(MKP, "proxy", "-c", str(path), "--concurrency", "2",
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    assert b"cannot listen" in err and b"exited with code 1 before serving" in err.splitlines()[-1]
    pids = [int(m) for m in re.findall(rb"worker \d started \(pid (\d+)\)", err)]
    assert len(pids) == 2 and not any(Path(f"/proc/{p}").exists() for p in pids)


async def test_a_killed_worker_is_restarted_and_serves_again(tmp_path: Path):
    async with Backend() as backend, Proxy(tmp_path, backend.port) as proxy:
        first, second = proxy.workers()
        os.kill(first, signal.SIGKILL)

        async def replaced() -> None:
            workers = proxy.workers()
            assert len(workers) == 2 and first not in workers and second in workers
            assert (await proxy.get_admin("/ready")) == (200, "LIVE\n")
        await eventually(replaced, 10)
        (new,) = set(proxy.workers()) - {second}
        assert proxy.listen in listening_ports(new)
        await proxy.requests(40)
        own = (await query(admin_socket(new), "GET", "/stats"))[1].decode()
        assert stat(own, "http.inbound.downstream_rq_total") > 0  # 2 ** -40 odds of a false failure
        proxy.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proxy.proc.wait(), 15) == 0
    assert b"worker 0 (pid %d) exited unexpectedly" % first in await proxy.proc.stderr.read()


async def test_a_config_reload_reaches_every_worker(tmp_path: Path):
    async with Backend() as old, Backend() as new, Proxy(tmp_path, old.port) as proxy:
        await proxy.requests(4)
        write_config(proxy.path, new.port, proxy.listen, proxy.admin, proxy.log)

        async def reloaded() -> None:
            for w in proxy.workers():
                dump = (await query(admin_socket(w), "GET", "/config_dump"))[1].decode()
                assert f'"port_value": {new.port}' in dump
        await eventually(reloaded)
        await proxy.requests(40)
        assert (len(old.seen), len(new.seen)) == (4, 40)


async def test_workers_do_not_outlive_a_killed_parent(tmp_path: Path):
    async with Backend() as backend, Proxy(tmp_path, backend.port) as proxy:
        workers = proxy.workers()
        os.kill(proxy.proc.pid, signal.SIGKILL)
        await proxy.proc.wait()

        async def gone() -> None:
            for w in workers:
                with contextlib.suppress(FileNotFoundError):
                    assert "State:\tZ" in Path(f"/proc/{w}/status").read_text()  # exited (reaped by init soon)
        await eventually(gone, 10)


@pytest.mark.parametrize(("merge", "bodies", "want"), [
    pytest.param(merge_stats_text, [b"a.b: 1\nc: 2\n", b"a.b: 3\nd: 1\n"], b"a.b: 4\nc: 2\nd: 1\n", id="stats"),
    pytest.param(merge_prometheus,
                 [b'# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 0.5\n# TYPE c counter\nc{a="1"} 2\n',
                  b'# TYPE c counter\nc{a="1"} 3\nc{a="2"} 1\n# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 2\n'
                  b'h_sum 1.25\n'],
                 b'# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 3\nh_sum 1.75\n# TYPE c counter\nc{a="1"} 5\n'
                 b'c{a="2"} 1\n', id="prometheus"),
    pytest.param(merge_clusters,
                 [b"r::default_priority::max_requests::1024\nr::h:1::rq_total::3\nr::h:1::weight::1\n"
                  b"r::h:1::health_flags::healthy\n",
                  b"r::default_priority::max_requests::1024\nr::h:1::rq_total::4\nr::h:1::weight::1\n"
                  b"r::h:1::health_flags::/failed_outlier_check\n"],
                 b"r::default_priority::max_requests::1024\nr::h:1::rq_total::7\nr::h:1::weight::1\n"
                 b"r::h:1::health_flags::/failed_outlier_check\n", id="clusters"),
])
def test_admin_merges_what_the_workers_answer(merge, bodies, want):  # noqa: ANN001
    assert merge(bodies) == want
