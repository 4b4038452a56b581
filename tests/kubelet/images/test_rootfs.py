"""The images as the `namespaces` runtime will use them: an overlay of the layers (top
first) with the host binds mounted read-only at their paths, then chroot. Checked in a
private mount namespace (`unshare -m`, root only), so nothing leaks to the host."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess

import pytest

from kubelet.images import IF_NOT_PRESENT
from tests.conftest import require_tool, wait_until


def _run_in_root(image, tmp_path, command: str, cwd: str = "/") -> subprocess.CompletedProcess[str]:
    return subprocess.run(_root_argv(image, tmp_path, command, cwd), capture_output=True, text=True, timeout=30,
                          check=False)


def _root_argv(image, tmp_path, command: str, cwd: str = "/", env: dict[str, str] | None = None) -> list[str]:
    upper, work, merged = (tmp_path / name for name in ("upper", "work", "merged"))
    for path in (upper, work, merged):
        path.mkdir(exist_ok=True)
    lower = ":".join(str(layer) for layer in image.layers)
    script = [f"mount -t overlay overlay -o lowerdir={lower},upperdir={upper},workdir={work} {merged}"]
    for host, inside in image.host_binds:
        target = f"{merged}{inside}"
        script.append(f"mkdir -p {shlex.quote(target)} && mount --bind -o ro {shlex.quote(host)} {shlex.quote(target)}")
    variables = " ".join(shlex.quote(f"{k}={v}") for k, v in {**image.env, **(env or {})}.items())
    script.append(f"exec chroot {merged} /bin/env -i {variables} /bin/sh -c {shlex.quote(f'cd {cwd} && {command}')}")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-ec", "\n".join(script)]


@pytest.fixture(autouse=True)
def _root_only():
    require_tool("unshare")
    if os.geteuid() != 0:
        pytest.skip("mounting an overlay root needs root")


async def test_busybox_root_runs_its_own_shell(store, tmp_path):
    image, _ = await store.pull("busybox:1.36", IF_NOT_PRESENT)
    done = _run_in_root(image, tmp_path, "echo hi; readlink /bin/sh; ls -d /tmp /root; id -u")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == ["hi", "busybox", "/root", "/tmp", "0"]


async def test_python_root_runs_the_hosts_python(store, tmp_path):
    image, _ = await store.pull("python:3", IF_NOT_PRESENT)
    done = _run_in_root(image, tmp_path, "python -c 'import platform; print(platform.python_version())'")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == image.env["PYTHON_VERSION"]


async def test_podinfo_root_runs_the_launcher_from_its_working_dir(store, tmp_path):
    image, _ = await store.pull("ghcr.io/stefanprodan/podinfo:6.5.4", IF_NOT_PRESENT)
    done = _run_in_root(image, tmp_path, "./podinfo --version", cwd=image.working_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "6.5.4\n"


async def test_nginx_root_serves_the_welcome_page(store, tmp_path, processes):
    require_tool("nginx")
    from tests.kubelet.images.test_nginx import _fetch, _free_pod_ip

    image, _ = await store.pull("nginx", IF_NOT_PRESENT)
    pod_ip = _free_pod_ip()
    command = " ".join(shlex.quote(arg) for arg in [*image.entrypoint, *image.cmd])
    nginx = processes.start(_root_argv(image, tmp_path, f"exec {command}", env={"MKP_POD_IP": pod_ip}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    page = wait_until(lambda: nginx.poll() is not None or _fetch(f"http://{pod_ip}/"), timeout=20, interval=0.05,
                      what="nginx's welcome page")
    assert nginx.poll() is None, nginx.communicate()
    assert "<title>Welcome to nginx!</title>" in page
    assert (tmp_path / "upper" / "tmp").is_dir()  # its private config copy went to the container's own /tmp
    os.killpg(nginx.pid, signal.SIGTERM)  # nginx's master reaps its workers on a graceful stop
    assert nginx.wait(timeout=10) == 0
