"""The namespaces runtime on real namespaces, overlays and cgroups (root only): a
container is pid 1 with the pod's hostname on the image's root filesystem, its volumes
are bound in, readOnlyRootFilesystem holds, a memory hog is OOMKilled with exit code 137,
exec enters the same namespaces and cgroup, a new runtime re-adopts what runs, and
removal leaves no mount and no cgroup behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from kubelet.images import ImageStore
from kubelet.runtime.base import (
    COMPLETED,
    ERROR,
    EXITED,
    OOM_KILLED,
    RUNNING,
    START_ERROR,
    ContainerConfig,
    Mount,
    Resources,
    RuntimeError_,
    Sandbox,
)
from kubelet.runtime.namespaces import NamespacesRuntime
from kubelet.runtime.rootfs import RootfsError, resolve_user, secure_join
from kubelet.stats import SummaryBuilder
from tests.conftest import wait_until


def _require_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("namespaces, mounts and cgroups need root (CI=true: not a skip)")
        pytest.skip("namespaces, mounts and cgroups need root")


@pytest.fixture(scope="module")
def python_image(tmp_path_factory):
    _require_root()
    store = ImageStore(tmp_path_factory.mktemp("images"))
    image, _ = asyncio.run(store.pull("python:3", "IfNotPresent"))
    return image


def _mounts_under(path: Path) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text()
    return [line.split()[4] for line in text.splitlines() if line.split()[4].startswith(str(path))]


class Pod:
    def __init__(self, runtime: NamespacesRuntime, root: Path, image, name: str = "mypod") -> None:
        self.runtime, self.root, self.image = runtime, root, image
        self.uid = str(uuid.uuid4())
        self.sandbox = Sandbox(pod_uid=self.uid, namespace="default", name=name, hostname=name,
                               state_dir=root / "pods" / self.uid / "sandbox", pod_ip="127.244.0.9")
        self.attempts = 0

    def config(self, code: str, **kw) -> ContainerConfig:
        self.attempts += 1
        name = kw.pop("name", "main")
        return ContainerConfig(
            sandbox=self.sandbox, name=name, attempt=self.attempts, argv=["python3", "-c", code],
            env=dict(self.image.env) | kw.pop("env", {}), image=self.image,
            log_path=self.root / "logs" / f"default_{self.sandbox.name}_{self.uid}" / name / f"{self.attempts}.log",
            state_dir=self.root / "pods" / self.uid / "containers" / name / str(self.attempts), **kw)


@pytest.fixture
def pod(tmp_path, python_image):
    runtime = NamespacesRuntime(tmp_path / "node", f"ns-{uuid.uuid4().hex[:8]}")
    p = Pod(runtime, tmp_path / "node", python_image)

    async def cleanup():
        for c in await runtime.list_containers():
            await runtime.kill(c.id, signal.SIGKILL)
        await runtime.remove_sandbox(p.sandbox)

    asyncio.run(runtime.create_sandbox(p.sandbox))
    try:
        yield p
    finally:
        try:
            asyncio.run(cleanup())
        finally:
            node_group = runtime.cgroups.hierarchy.group(runtime.cgroups.node_path)
            runtime.cgroups.remove_node()
        assert _mounts_under(tmp_path) == []
        assert not node_group.exists()


async def _run(pod: Pod, code: str, **kw):
    runtime = pod.runtime
    config = pod.config(code, **kw)
    started = await runtime.start_container(config)
    assert started.state == RUNNING and started.id.startswith("namespaces://") and len(started.id) == 77
    done = await asyncio.wait_for(runtime.wait(started.id), 30)
    return done, config.log_path.read_text()


def test_container_is_pid_1_with_the_pod_hostname_and_files(pod):
    code = ("import os, socket; print(os.getpid(), socket.gethostname(), os.getcwd());"
            "print(open('/etc/hosts').read().splitlines()[-1]); print(open('/etc/hostname').read().strip());"
            "print(sorted(os.listdir('/dev')))")
    state, log = asyncio.run(_run(pod, code))
    assert (state.state, state.exit_code, state.reason) == (EXITED, 0, COMPLETED), log
    lines = [line.split(" ", 3)[3] for line in log.splitlines()]
    assert lines[0] == "1 mypod /"
    assert lines[1] == "127.244.0.9\tmypod"
    assert lines[2] == "mypod"
    assert all(f"'{d}'" in lines[3] for d in ("null", "zero", "urandom", "pts", "shm"))


def test_memory_hog_over_its_limit_is_oom_killed(pod):
    code = "b = bytearray(200 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('survived')"
    state, log = asyncio.run(_run(pod, code, resources=Resources(memory_limit=50 << 20)))
    assert (state.state, state.reason, state.exit_code) == (EXITED, OOM_KILLED, 137), log
    assert "survived" not in log


def test_read_only_root_and_a_writable_volume(pod, tmp_path):
    volume = tmp_path / "vol"
    volume.mkdir()
    (volume / "in").write_text("from the host")
    code = ("import errno\nprint(open('/data/in').read())\nopen('/data/out', 'w').write('from the pod')\n"
            "try:\n    open('/x', 'w')\nexcept OSError as e:\n    print('rootfs', errno.errorcode[e.errno])\n"
            "open('/tmp/t', 'w')")
    state, log = asyncio.run(_run(pod, code, mounts=[Mount(str(volume), "/data")], read_only_root=True))
    assert "from the host" in log and "rootfs EROFS" in log
    assert (volume / "out").read_text() == "from the pod"
    assert (state.exit_code, state.reason) == (1, ERROR)  # /tmp is part of the read-only root
    assert "Read-only file system: '/tmp/t'" in log


def test_run_as_user_and_group(pod):
    code = "import os; print(os.getuid(), os.getgid(), os.getgroups())"
    state, log = asyncio.run(_run(pod, code, run_as_user=1000, run_as_group=3000))
    assert state.exit_code == 0, log
    assert log.splitlines()[0].endswith(" 1000 3000 []")


def test_missing_program_is_a_start_error(pod):
    config = pod.config("")
    config.argv = ["no-such-program"]

    async def go():
        with pytest.raises(RuntimeError_) as err:
            await pod.runtime.start_container(config)
        return err.value

    err = asyncio.run(go())
    assert err.reason == START_ERROR
    assert 'exec: "no-such-program": executable file not found in $PATH' in err.message


def test_exec_stats_readoption_and_kill(pod):
    code = "import time; x = bytearray(20 << 20); print('ready', flush=True); time.sleep(600)"

    async def go():
        runtime = pod.runtime
        config = pod.config(code, env={"GREETING": "hello"}, working_dir="/var/tmp",
                            resources=Resources(memory_limit=100 << 20, cpu_limit_millis=500))
        t0 = time.monotonic()
        started = await runtime.start_container(config)
        latency = time.monotonic() - t0
        hex_id = started.id.removeprefix("namespaces://")
        proc = await runtime.exec(started.id, ["python3", "-c", "import os, socket; print(socket.gethostname(), "
                                               "os.environ['GREETING'], os.getpid() != 1, os.getcwd()); "
                                               "print(open('/proc/self/cgroup').read())"],
                                  stdin=False, tty=False)
        out = (await proc.stdout.read()).decode()
        assert await proc.wait() == 0, out
        assert out.splitlines()[0] == "mypod hello True /var/tmp"  # the container's working dir, in its root
        assert f"memory:/mkpods/{runtime.cgroups.node_path.split('/')[-1]}/pod{pod.uid}/{hex_id}" in out
        with pytest.raises(RuntimeError_, match='exec: "nope": executable file not found in \\$PATH'):
            await runtime.exec(started.id, ["nope"], stdin=False, tty=False)
        stats = runtime.stats(started.id)
        assert stats["memory_working_set_bytes"] > 10 << 20 and stats["cpu_usage_nanos"] > 0
        pod_object = {"metadata": {"name": "mypod", "namespace": "default", "uid": pod.uid},
                      "spec": {"containers": [{"name": "main", "resources": {"limits": {"memory": "100Mi"}}}]}}
        summary = SummaryBuilder("n").summary([(pod_object, [("main", runtime, started.id, started.started_at)])])
        (pod_stats,) = summary["pods"]
        assert pod_stats["process_stats"] == {"process_count": 1}
        assert pod_stats["containers"][0]["memory"]["workingSetBytes"] > 10 << 20
        assert pod_stats["memory"]["availableBytes"] < 90 << 20

        again = NamespacesRuntime(pod.root, runtime.cgroups.node_path.split("/")[-1])
        (listed,) = [c for c in await again.list_containers() if c.id == started.id]
        assert listed.state == RUNNING and listed.pid == started.pid
        await again.kill(started.id, signal.SIGTERM)  # pid 1 without a handler ignores it
        await asyncio.sleep(0.2)
        assert (await again.status(started.id)).state == RUNNING
        await again.kill(started.id, signal.SIGKILL)
        done = await asyncio.wait_for(again.wait(started.id), 10)
        assert (done.reason, done.exit_code) == (ERROR, 137)
        assert not list((pod.root / "pods" / pod.uid / "containers").rglob("rootfs/*"))
        assert runtime.stats(started.id) is None
        await again.remove_container(started.id)
        assert not config.state_dir.exists()
        return latency

    latency = asyncio.run(go())
    assert latency < 1.0


@pytest.fixture
def netns():
    name = f"mkp-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_pod_network_namespace_and_a_tty_exec(pod, netns):
    pod.sandbox.netns = netns
    code = ("import time; print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]),"
            " flush=True); time.sleep(600)")

    async def go():
        runtime = pod.runtime
        config = pod.config(code)
        started = await runtime.start_container(config)
        proc = await runtime.exec(started.id, ["python3", "-c", "import os, socket; print(os.isatty(0), "
                                               "len(open('/proc/net/dev').readlines()) - 2, socket.gethostname())"],
                                  stdin=True, tty=True)
        assert proc.stderr is None
        out = (await proc.stdout.read()).decode()
        assert await proc.wait() == 0
        await runtime.kill(started.id, signal.SIGKILL)
        await runtime.wait(started.id)
        return out, config.log_path.read_text()

    out, log = asyncio.run(go())
    assert out.strip() == "True 1 mypod"  # the exec joined the pod's netns: only lo
    assert "['lo']" in log


def test_secure_join_keeps_symlinks_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("/run")  # absolute: means <root>/run, not the host's
    (root / "up").symlink_to("../../../..")
    assert secure_join(root, "/var/run/x") == root / "run" / "x"
    assert secure_join(root, "/up/etc/passwd") == root / "etc" / "passwd"
    assert secure_join(root, "../../etc") == root / "etc"
    (root / "loop").symlink_to("loop")
    with pytest.raises(RootfsError, match="too many levels"):
        secure_join(root, "/loop/x")


@pytest.mark.parametrize(("user", "run_as_user", "run_as_group", "expected"), [
    pytest.param(None, None, None, (None, None), id="root-by-default"),
    pytest.param("app", None, None, (1001, 1002), id="name-from-passwd-with-primary-group"),
    pytest.param("1001", None, None, (1001, 1002), id="uid-from-passwd"),
    pytest.param("4242", None, None, (4242, 0), id="unknown-uid-gets-gid-0"),
    pytest.param("app:staff", None, None, (1001, 50), id="user-and-group-names"),
    pytest.param("app", 2000, 3000, (2000, 3000), id="runAsUser-and-runAsGroup-win"),
    pytest.param(None, None, 3000, (None, 3000), id="runAsGroup-alone"),
])
def test_resolve_user_like_runc(tmp_path, user, run_as_user, run_as_group, expected):
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n")
    (layer / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    image = SimpleNamespace(user=user, layers=[layer])
    assert resolve_user(image, layer, run_as_user, run_as_group) == expected


def test_unknown_user_name_is_a_clear_error(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    with pytest.raises(RootfsError, match="unable to find user nobody: no matching entries in passwd file"):
        resolve_user(SimpleNamespace(user="nobody", layers=[tmp_path]), tmp_path, None, None)


def test_attach_to_stdin(pod):
    async def go():
        runtime = pod.runtime
        config = pod.config("import sys; print('got', sys.stdin.readline().strip(), flush=True)",
                            stdin=True, stdin_once=True)
        started = await runtime.start_container(config)
        writer = await runtime.attach_stdin(started.id)
        writer.write(b"hello\n")
        await writer.drain()
        writer.close()
        return await asyncio.wait_for(runtime.wait(started.id), 10), config.log_path.read_text()

    state, log = asyncio.run(go())
    assert state.reason == COMPLETED and " stdout F got hello" in log


def test_purge_kills_everything_and_unmounts(pod):
    async def go():
        states = []
        for i in range(2):
            config = pod.config("import time; print('up', flush=True); time.sleep(600)", name=f"c{i}")
            states.append(await pod.runtime.start_container(config))
        return states

    states = asyncio.run(go())
    assert _mounts_under(pod.root)
    pod.runtime.purge()
    assert _mounts_under(pod.root) == []
    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    for state in states:  # reaped by its shim a moment later
        wait_until(lambda pid=state.pid: gone(pid), timeout=5, interval=0.02, what=f"pid {state.pid} to end")
    assert not pod.runtime.cgroups.hierarchy.group(pod.runtime.cgroups.node_path).exists()
