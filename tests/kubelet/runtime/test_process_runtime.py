"""The `process` runtime with real shims: lifecycle and reasons, env/cwd/PATH, signals,
StartError, re-adoption by a fresh runtime after the starting Python process died, exec
(pipes and tty), attach to stdin, /proc stats, removal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from kubelet.runtime.base import (
    COMPLETED,
    ERROR,
    EXITED,
    RUNNING,
    START_ERROR,
    ContainerConfig,
    ContainerNotFound,
    Mount,
    RuntimeError_,
    Sandbox,
)
from kubelet.runtime.logs import read_log
from kubelet.runtime.process import PREFIX, ProcessRuntime, mount_paths
from kubelet.runtime.shim import read_pid
from tests.conftest import REPO_ROOT

IMAGE = SimpleNamespace(env={"PATH": "/image/only/bin"}, process_path=os.environ["PATH"])


def make_config(root: Path, argv: list[str], name: str = "c", attempt: int = 0, **kw) -> ContainerConfig:
    sandbox = Sandbox(pod_uid="uid-1", namespace="default", name="pod", hostname="pod",
                      state_dir=root / "pods/uid-1/sandbox")
    env = kw.pop("env", {"PATH": "/image/only/bin"})
    return ContainerConfig(sandbox=sandbox, name=name, attempt=attempt, argv=argv, env=env, image=IMAGE,
                           log_path=root / f"logs/default_pod_uid-1/{name}/{attempt}.log",
                           state_dir=root / f"pods/uid-1/containers/{name}/{attempt}",
                           labels={"io.kubernetes.container.name": name}, **kw)


async def output(path: Path) -> bytes:
    return b"".join([chunk async for chunk in read_log(path)])


@pytest.fixture
def runtime(clean_shims: Path) -> ProcessRuntime:
    return ProcessRuntime(clean_shims / "node")


async def test_completed_and_error_exits(runtime):
    ok = await runtime.start_container(make_config(runtime.root, ["sh", "-c", "echo hi"]))
    assert ok.id.startswith(PREFIX) and len(ok.id) == len(PREFIX) + 64
    done = await runtime.wait(ok.id)
    assert (done.state, done.exit_code, done.reason, done.name, done.attempt) == (EXITED, 0, COMPLETED, "c", 0)
    assert done.started_at <= done.finished_at
    assert await output(done.log_path) == b"hi\n"
    bad = await runtime.start_container(make_config(runtime.root, ["sh", "-c", "exit 3"], name="bad"))
    assert (await runtime.wait(bad.id)).exit_code == 3
    assert (await runtime.status(bad.id)).reason == ERROR


async def test_missing_command_is_start_error(runtime):
    with pytest.raises(RuntimeError_) as info:
        await runtime.start_container(make_config(runtime.root, ["no-such-command"]))
    assert info.value.reason == START_ERROR
    assert info.value.message == (
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create "
        "failed: unable to start container process: error during container init: "
        'exec: "no-such-command": executable file not found in $PATH: unknown')
    [state] = await runtime.list_containers()
    assert (state.state, state.exit_code, state.reason, state.started_at) == (EXITED, 128, START_ERROR, None)
    assert state.message == info.value.message


async def test_env_cwd_and_the_process_path(runtime, tmp_path):
    config = make_config(runtime.root, ["sh", "-c", 'echo "$A|$PATH"; pwd'],
                         env={"A": "1", "PATH": "/image/only/bin"}, working_dir=str(tmp_path))
    state = await runtime.wait((await runtime.start_container(config)).id)
    assert await output(state.log_path) == f"1|{os.environ['PATH']}\n{tmp_path}\n".encode()
    own = make_config(runtime.root, ["/bin/sh", "-c", 'echo "$PATH"; pwd'], name="own", env={"PATH": "/custom"})
    state = await runtime.wait((await runtime.start_container(own)).id)
    assert await output(state.log_path) == b"/custom\n/\n"  # a PATH of the pod spec is kept; cwd defaults to /


async def test_kill_signals_the_group(runtime):
    state = await runtime.start_container(make_config(runtime.root, ["sh", "-c", "sleep 60 & wait"]))
    assert state.state == RUNNING and os.getpgid(state.pid) == state.pid
    await runtime.kill(state.id, signal.SIGTERM)
    done = await runtime.wait(state.id)
    assert (done.exit_code, done.reason) == (143, ERROR)
    await runtime.kill(state.id, signal.SIGKILL)  # already exited: no error


async def test_fresh_runtime_readopts_containers_after_the_starter_died(runtime, clean_shims):
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from kubelet.runtime.process import ProcessRuntime
        from test_process_runtime import make_config
        async def main():
            rt = ProcessRuntime(Path({str(runtime.root)!r}))
            a = await rt.start_container(make_config(rt.root, ["sleep", "60"], name="long"))
            b = await rt.start_container(make_config(rt.root, ["sh", "-c", "exit 4"], name="short"))
            print(a.id, a.pid, b.id, flush=True)
            os.kill(os.getpid(), 9)
        asyncio.run(main())
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == -9, result.stderr
    long_id, pid, short_id = result.stdout.split()
    fresh = ProcessRuntime(runtime.root)
    short = await fresh.wait(short_id)
    states = {s.id: s for s in await fresh.list_containers()}
    assert states[long_id].state == RUNNING and states[long_id].pid == int(pid)
    assert (states[short_id].exit_code, short.exit_code) == (4, 4)
    assert states[long_id].labels == {"io.kubernetes.container.name": "long"}
    waiter = asyncio.create_task(fresh.wait(long_id))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    started = time.monotonic()
    await fresh.kill(long_id, signal.SIGKILL)
    assert (await asyncio.wait_for(waiter, 5)).exit_code == 137
    assert time.monotonic() - started < 1


async def test_exec_with_pipes_and_exit_code(runtime):
    state = await runtime.start_container(make_config(runtime.root, ["sleep", "60"], env={"A": "x", "PATH": "/usr/bin:/bin"}))
    proc = await runtime.exec(state.id, ["sh", "-c", "cat; echo $A $B; echo err >&2; exit 7"], stdin=True, tty=False,
                              env={"B": "y"})
    proc.stdin.write(b"in\n")
    await proc.stdin.drain()
    proc.stdin.close()
    out, err = await asyncio.gather(proc.stdout.read(), proc.stderr.read())
    assert (await proc.wait(), out, err) == (7, b"in\nx y\n", b"err\n")
    with pytest.raises(RuntimeError_, match='exec: "nope": executable file not found in \\$PATH'):
        await runtime.exec(state.id, ["nope"], stdin=False, tty=False)
    await runtime.kill(state.id, signal.SIGKILL)
    await runtime.wait(state.id)
    with pytest.raises(RuntimeError_, match="stopped"):
        await runtime.exec(state.id, ["true"], stdin=False, tty=False)


async def test_exec_with_a_tty(runtime):
    state = await runtime.start_container(make_config(runtime.root, ["sleep", "60"]))
    proc = await runtime.exec(state.id, ["sh", "-c", "test -t 0 && echo tty; read x; stty size"], stdin=True, tty=True)
    assert proc.stderr is None
    proc.resize(120, 40)
    first = await asyncio.wait_for(proc.stdout.readuntil(b"tty\r\n"), 5)  # before typing: the tty echoes
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    assert await proc.wait() == 0
    out = first + await proc.stdout.read()
    assert out.replace(b"\r\n", b"\n") == b"tty\ngo\n40 120\n"
    await runtime.kill(state.id, signal.SIGKILL)
    await runtime.wait(state.id)


async def test_attach_stdin_and_resize(runtime):
    config = make_config(runtime.root, ["sh", "-c", "read x; echo got $x"], stdin=True, stdin_once=True)
    state = await runtime.start_container(config)
    writer = await runtime.attach_stdin(state.id)
    writer.write(b"hello\n")
    await writer.drain()
    writer.close()
    done = await runtime.wait(state.id)
    assert await output(done.log_path) == b"got hello\n"
    with pytest.raises(RuntimeError_):
        await runtime.attach_stdin(done.id)
    tty = await runtime.start_container(make_config(runtime.root, ["sh", "-c", "read x; stty size"], name="t",
                                                    stdin=True, tty=True))
    runtime.resize(tty.id, 90, 30)
    writer = await runtime.attach_stdin(tty.id)
    writer.write(b"x\n")
    await writer.drain()
    writer.close()
    done = await runtime.wait(tty.id)
    assert (await output(done.log_path)).splitlines()[-1] == b"30 90"


async def test_stats_from_proc(runtime):
    state = await runtime.start_container(make_config(
        runtime.root, [sys.executable, "-c", "import time\nx = bytearray(30 << 20)\n"
                       "while time.process_time() < 0.3: pass\nprint('ok', flush=True)\ntime.sleep(60)"]))
    await asyncio.sleep(0.1)
    for _ in range(200):
        if (await output(state.log_path)) == b"ok\n":
            break
        await asyncio.sleep(0.05)
    stats = runtime.stats(state.id)
    assert stats["cpu_usage_nanos"] >= 250_000_000  # 0.3 s of CPU, counted in 10 ms ticks
    assert stats["memory_rss_bytes"] >= 30 << 20
    assert stats["memory_working_set_bytes"] >= stats["memory_rss_bytes"]
    await runtime.kill(state.id, signal.SIGKILL)
    await runtime.wait(state.id)
    assert runtime.stats(state.id) is None


async def test_remove_container(runtime):
    state = await runtime.start_container(make_config(runtime.root, ["sleep", "60"]))
    with pytest.raises(RuntimeError_):
        await runtime.remove_container(state.id)
    await runtime.kill(state.id, signal.SIGKILL)
    await runtime.wait(state.id)
    await runtime.remove_container(state.id)
    with pytest.raises(ContainerNotFound):
        await runtime.status(state.id)
    assert await runtime.list_containers() == []
    assert state.log_path.exists()  # logs stay until the pod goes
    with pytest.raises(ContainerNotFound):
        await runtime.status("process://" + "0" * 64)


def test_mount_paths_maps_container_paths_to_host_paths(tmp_path):
    config = make_config(tmp_path, ["true"], mounts=[Mount("/host/a", "/data"), Mount("/host/b", "/etc/x", True)])
    assert mount_paths(config) == {"/data": "/host/a", "/etc/x": "/host/b"}


async def test_without_a_compiler_nothing_is_left_behind(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("MKP_HOME", str(tmp_path / "fresh-home"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcc, no cc
    with pytest.raises(RuntimeError_, match="no C compiler") as info:
        await runtime.start_container(make_config(runtime.root, ["true"]))
    assert info.value.reason == "RunContainerError"
    assert await runtime.list_containers() == []


async def test_a_killed_shim_takes_its_container_and_says_so(runtime):
    state = await runtime.start_container(make_config(runtime.root, ["sleep", "60"]))
    shim = read_pid(runtime.root / "pods/uid-1/containers/c/0", "shim.pid")
    os.kill(shim, signal.SIGKILL)
    done = await asyncio.wait_for(runtime.wait(state.id), 5)
    assert (done.exit_code, done.reason) == (255, ERROR)
    assert "without recording its exit status" in done.message
