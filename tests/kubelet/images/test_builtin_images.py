"""The built-in busybox, pause and python images run what their references promise,
from their materialised layers (busybox) or the host (python)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from kubelet.images import IF_NOT_PRESENT
from kubelet.images.builtin.python import host_python
from tests.conftest import wait_until


def _run(argv: list[str], image, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {**image.env, "PATH": image.process_path}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=20, check=False, **kwargs)


async def test_busybox_layer_has_a_shell_and_the_tutorial_tools(store):
    image, _ = await store.pull("busybox:1.36", IF_NOT_PRESENT)
    assert image.cmd == ["sh"] and image.entrypoint == []
    assert image.env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    bin_dir = image.layers[0] / "bin"
    assert image.process_path == str(bin_dir)
    for applet in ("sh", "echo", "sleep", "wget", "nslookup", "cat", "ls", "tar", "nc"):
        assert os.readlink(bin_dir / applet) == "busybox", applet
    done = _run([str(bin_dir / "sh"), "-c", "echo hi; echo $0; which sleep"], image)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["hi", str(bin_dir / "sh"), str(bin_dir / "sleep")]
    assert "root:x:0:0:" in (image.layers[0] / "etc" / "passwd").read_text()
    assert "nobody:x:65534:" in (image.layers[0] / "etc" / "group").read_text()
    assert image.host_path("/bin/sh") == str(bin_dir / "sh")
    assert (image.layers[0].stat().st_mode & 0o7777, bin_dir.stat().st_mode & 0o7777) == (0o755, 0o755)
    assert (image.layers[0] / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert image.host_path("/nonexistent") is None


async def test_busybox_tar_and_wget_are_busybox_applets(store):
    image, _ = await store.pull("busybox", IF_NOT_PRESENT)
    done = _run(["sh", "-c", "tar --help 2>&1 | head -1; wget --help 2>&1 | head -1"], image)
    assert done.stdout.count("BusyBox") == 2, done.stdout


async def test_pause_waits_for_sigterm_and_exits_zero(store, processes):
    image, _ = await store.pull("registry.k8s.io/pause:3.10", IF_NOT_PRESENT)
    assert image.entrypoint == ["/pause"]
    pause = processes.start([image.host_path("/pause")], env={**image.env, "PATH": image.process_path})
    wait_until(lambda: _children(pause.pid), timeout=10, what="pause's sleep")
    assert pause.poll() is None
    os.kill(pause.pid, signal.SIGTERM)
    assert pause.wait(timeout=10) == 0


def _children(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return handle.read().split()
    except OSError:
        return []


async def test_python_image_is_the_hosts_python(store):
    path, version = host_python()
    minor = ".".join(version.split(".")[:2])
    image, pulled = await store.pull(f"python:{minor}-slim", IF_NOT_PRESENT)
    assert pulled and image.cmd == ["python3"] and image.entrypoint == []
    assert image.env["PYTHON_VERSION"] == version
    assert ("/usr/bin", "/usr/bin") in image.host_binds and ("/usr/lib", "/usr/lib") in image.host_binds
    assert not any(inside in ("/usr", "/usr/local") for _, inside in image.host_binds) or path.startswith("/usr/local")
    assert all(host == inside for host, inside in image.host_binds)
    done = _run(["python", "-c", "import platform, sys; print(platform.python_version(), sys.executable)"], image)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == version
    # the base layer has the root's symlinks as the host has them, so /bin/sh maps to the host's
    if os.path.islink("/bin"):
        assert os.readlink(image.layers[-1] / "bin") == os.readlink("/bin")
    assert image.host_path("/bin/sh") is not None
    assert image.host_path(path) == path
    assert sys.version_info[0] == 3


async def test_curl_image_gives_options_and_urls_to_curl_and_runs_commands(store):
    from tests.conftest import require_tool
    require_tool("curl")
    image, _ = await store.pull("curlimages/curl:8.11.1", IF_NOT_PRESENT)
    assert image.entrypoint == ["/entrypoint.sh"] and image.cmd == ["curl"]
    entrypoint = image.host_path("/entrypoint.sh")
    version = _run([entrypoint, "--version"], image)
    assert version.returncode == 0 and version.stdout.startswith("curl "), version.stderr
    assert _run([entrypoint, "curl", "--version"], image).stdout == version.stdout
    refused = _run([entrypoint, "-s", "http://127.0.0.1:1/"], image)  # a URL, nothing listening
    assert refused.returncode == 7  # curl's "failed to connect"
    assert _run([entrypoint, "sh", "-c", "echo from a shell"], image).stdout == "from a shell\n"
    assert image.env["CURL_VERSION"] == version.stdout.split()[1]
