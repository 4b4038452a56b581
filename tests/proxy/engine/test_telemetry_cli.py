"""`mkp proxy -c FILE` as a process: Istio metrics at the admin's /stats/prometheus, and
access log lines written out when the process is told to stop (SIGTERM), not lost."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import yaml

from tests.proxy.engine.test_telemetry_server import FILE_LOG, Backend, bootstrap, cluster, node, series


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_mkp_proxy_serves_istio_metrics_and_flushes_the_access_log_on_sigterm(tmp_path: Path):
    log = tmp_path / "access.json"
    async with Backend() as backend:
        listen, admin = free_port(), free_port()
        cfg = bootstrap([cluster("reviews", backend.port)], identity=node("reviews-v2", "reviews", "v2"),
                        access_log=[{"name": "envoy.access_loggers.file", "typed_config": {
                            "@type": FILE_LOG, "path": str(log),
                            "log_format": {"json_format": {"code": "%RESPONSE_CODE%", "id": "%REQ(X-REQUEST-ID)%"}}}}])
        cfg["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = listen
        cfg["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}}
        path = tmp_path / "envoy.yaml"
        path.write_text(yaml.safe_dump(cfg))
        mkp = Path(sys.executable).parent / "mkp"
        proc = await asyncio.create_subprocess_exec(str(mkp), "proxy", "-c", str(path),
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
        try:
            async with aiohttp.ClientSession() as s:
                for _ in range(100):
                    try:
                        async with s.get(f"http://127.0.0.1:{admin}/ready") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.05)
                for _ in range(6):
                    async with s.get(f"http://127.0.0.1:{listen}/p") as r:
                        assert r.status == 200
                async with s.get(f"http://127.0.0.1:{admin}/stats/prometheus") as r:
                    text = await r.text()
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    got = series(text, "istio_requests_total", reporter="destination", destination_workload="reviews-v2",
                 response_code="200")
    assert [v for _, v in got] == [6]
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [x["code"] for x in lines] == [200] * 6
    assert [x["id"] for x in lines] == [h["x-request-id"] for h in backend.seen]
