"""The podinfo image end to end: its launcher started as the real image's `./podinfo`
in /home/app, on a free loopback port, and driven over HTTP like Flagger's tutorials
and probes drive it."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from kubelet.images import IF_NOT_PRESENT
from tests.conftest import wait_until

PODINFO = "ghcr.io/stefanprodan/podinfo:6.5.4"


def _get(url: str, *, method: str = "GET", data: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def _healthy(base: str) -> bool:
    try:
        return _get(base + "/healthz")[0] == 200
    except OSError:
        return False


@pytest.fixture
async def podinfo(store, processes, free_port):
    """start(*flags, env=...) -> (process, base URL, seconds to the first healthy /healthz)."""
    image, _ = await store.pull(PODINFO, IF_NOT_PRESENT)

    def start(*flags: str, env: dict[str, str] | None = None, base_host: str = "127.0.0.1"):
        environ = {**image.env, "PATH": image.process_path, "HOSTNAME": "podinfo-7d9c", "MKP_POD_IP": "127.0.0.1",
                   **(env or {})}
        began = time.monotonic()
        proc = processes.start(["./podinfo", f"--port={free_port}", *flags], cwd=image.host_path(image.working_dir),
                               env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        base = f"http://{base_host}:{free_port}"
        wait_until(lambda: proc.poll() is not None or _healthy(base), timeout=20, interval=0.02,
                   what="podinfo's /healthz")
        assert proc.poll() is None, proc.communicate()
        return proc, base, time.monotonic() - began

    return start


async def test_podinfo_serves_podinfos_api(podinfo):
    proc, base, startup = podinfo("--level=debug", "--ui-color=#ff0000",
                                  env={"PODINFO_UI_MESSAGE": "hello from mkp", "PODINFO_UI_COLOR": "#00ff00"})
    print(f"podinfo: first healthy /healthz {startup * 1000:.0f} ms after exec")
    assert startup < 5
    status, body, _ = _get(base + "/version")
    version = json.loads(body)
    assert status == 200 and version["version"] == "6.5.4" and len(version["commit"]) == 12
    info = json.loads(_get(base + "/")[1])
    assert list(info) == ["hostname", "version", "revision", "color", "logo", "message", "goos", "goarch",
                          "runtime", "num_goroutine", "num_cpu"]
    assert info["hostname"] == "podinfo-7d9c" and info["message"] == "hello from mkp"
    assert info["color"] == "#ff0000"  # a flag wins over PODINFO_UI_COLOR
    status, body, headers = _get(base + "/status/500")
    assert status == 500 and json.loads(body) == {"status": 500}
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert "PODINFO_UI_MESSAGE=hello from mkp" in json.loads(_get(base + "/env")[1])
    seen = json.loads(_get(base + "/headers", headers={"x-request-id": "abc"})[1])
    assert seen["X-Request-Id"] == ["abc"] and seen["X-Api-Version"] == ["6.5.4"]
    status, body, headers = _get(base + "/echo", method="POST", data=b"ping")
    assert (status, body, headers["X-Color"]) == (202, "ping", "#ff0000")
    assert json.loads(_get(base + "/delay/0")[1]) == {"delay": 0}
    assert _get(base + "/nope")[:2] == (404, "404 page not found\n")
    assert _get(base + "/readyz")[0] == 200
    assert _get(base + "/readyz/disable", method="POST")[0] == 202
    assert _get(base + "/readyz")[0] == 503
    assert _get(base + "/readyz/enable", method="POST")[0] == 202
    assert _get(base + "/healthz")[0] == 200
    metrics = _get(base + "/metrics")[1]
    assert 'http_requests_total{status="500"} 1' in metrics
    assert 'http_requests_total{status="503"} 1' in metrics
    assert 'http_request_duration_seconds_count{method="GET",path="status",status="500"} 1' in metrics
    assert 'http_request_duration_seconds_bucket{method="GET",path="version",status="200",le="+Inf"} 1' in metrics
    assert "path=\"nope\"" not in metrics and 'status="404"' not in metrics
    ok = int(next(line.split()[-1] for line in metrics.splitlines() if line.startswith('http_requests_total{status="200"}')))
    assert ok >= 8  # startup /healthz poll(s), /version, /, /env, /headers, /delay/0, /readyz, /healthz
    os.kill(proc.pid, signal.SIGTERM)  # --level=debug: no 3 s drain pause
    assert proc.wait(timeout=10) == 0
    logs = [json.loads(line) for line in proc.stderr.read().splitlines()]
    assert logs[0]["msg"] == "Starting podinfo" and logs[0]["version"] == "6.5.4" and logs[0]["level"] == "info"
    assert {"level", "ts", "caller", "msg"} <= set(logs[0])
    assert any(entry["msg"] == "request started" and entry.get("uri") == "/status/500" for entry in logs)
    assert logs[-1]["msg"] == "Shutting down HTTP/HTTPS server"


async def test_random_error_fails_about_a_third_of_requests(podinfo):
    _, base, _ = podinfo(env={"PODINFO_RANDOM_ERROR": "true"})
    codes = [_get(base + "/version")[0] for _ in range(60)]
    assert set(codes) <= {200, 500, 400, 409}
    failed = sum(code != 200 for code in codes)
    assert 5 <= failed <= 40, codes
    # /metrics itself fails one time in three, as in podinfo (its middlewares wrap every route)
    status, metrics, _ = wait_until(lambda: (r := _get(base + "/metrics"))[0] == 200 and r, timeout=10,
                                    interval=0.01, what="a /metrics that does not fail")
    counted = sum(int(line.split()[-1]) for line in metrics.splitlines() if line.startswith("http_requests_total{"))
    assert counted >= 60 + 1  # the 60 requests and the startup /healthz probe(s)
    failures = sum(int(line.split()[-1]) for line in metrics.splitlines()
                   if line.startswith("http_requests_total{") and 'status="200"' not in line)
    assert failures >= failed


async def test_random_delay_in_milliseconds(podinfo):
    _, base, _ = podinfo("--random-delay", "--random-delay-unit=ms", "--random-delay-min=150",
                         "--random-delay-max=200")
    began = time.monotonic()
    assert _get(base + "/version")[0] == 200
    assert time.monotonic() - began >= 0.15


async def test_metrics_port_serves_metrics_and_healthz(podinfo):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        metrics_port = sock.getsockname()[1]
    _, base, _ = podinfo(f"--port-metrics={metrics_port}")
    assert _get(base + "/version")[0] == 200
    status, body, _ = _get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert status == 200 and 'http_request_duration_seconds_count{method="GET",path="version",status="200"} 1' in body
    assert _get(f"http://127.0.0.1:{metrics_port}/healthz")[:2] == (200, "OK")


async def test_panic_exits_255(podinfo):
    proc, base, _ = podinfo()
    with pytest.raises(OSError):
        _get(base + "/panic")
    assert proc.wait(timeout=10) == 255


async def test_stress_cpu_burns_a_core_and_dies_with_the_app(podinfo):
    proc, _, _ = podinfo("--stress-cpu=1", "--stress-memory=20")
    spinners = wait_until(lambda: _children(proc.pid), timeout=10, what="the CPU spinner")
    spinner = int(spinners[0])
    before = _cpu_ticks(spinner)
    time.sleep(0.5)
    assert _cpu_ticks(spinner) - before >= 20  # at least 40% of a core over 0.5 s (100 ticks/s)
    assert _rss_kb(proc.pid) >= 20_000
    os.kill(proc.pid, signal.SIGKILL)  # only the app: the spinner must not outlive it
    proc.wait(timeout=10)
    wait_until(lambda: not os.path.exists(f"/proc/{spinner}") or _state(spinner) == "Z", timeout=10,
               what="the spinner's death")


async def test_podcli_checks_the_app_and_localhost_means_the_pod_ip(store, podinfo, free_port):
    pod_ip = f"127.88.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
    _, base, _ = podinfo(env={"MKP_POD_IP": pod_ip}, base_host=pod_ip)
    image, _ = await store.pull(PODINFO, IF_NOT_PRESENT)
    assert image.host_path("/usr/local/bin/podcli")
    env = {**image.env, "PATH": image.process_path, "MKP_POD_IP": pod_ip}

    def podcli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podcli", *args], env=env, capture_output=True, text=True, timeout=30)

    began = time.monotonic()
    done = podcli("check", "http", f"localhost:{free_port}/healthz")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began >= 1  # podcli waits --delay (1 s) before its first attempt too
    assert json.loads(done.stderr.splitlines()[-1])["msg"] == "check succeed"
    assert podcli("check", "http", f"localhost:{free_port}/status/500", "--delay=10ms").returncode == 1
    assert podcli("check", "tcp", f"localhost:{free_port}", "--delay=0s").returncode == 0
    assert podcli("version").stdout == "6.5.4\n"


async def test_flags_errors_and_version(store):
    image, _ = await store.pull("stefanprodan/podinfo:6.0.1", IF_NOT_PRESENT)
    cwd = image.host_path(image.working_dir)
    env = {"PATH": image.process_path}
    done = subprocess.run(["./podinfo", "--version"], cwd=cwd, env=env, capture_output=True, text=True, timeout=20)
    assert (done.returncode, done.stdout) == (0, "6.0.1\n")
    done = subprocess.run(["./podinfo", "--nope"], cwd=cwd, env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 2 and done.stderr.startswith("Error: unknown flag: --nope")


def _children(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return handle.read().split()
    except OSError:
        return []


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rpartition(")")[2].split()[0]


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
