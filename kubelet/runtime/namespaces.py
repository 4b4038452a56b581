"""The `namespaces` runtime: containers isolated the way a container runtime does it.

Each container attempt runs under the shim (`mkp-shim`, see `shim/`) in new pid, mount,
uts and ipc namespaces (it is pid 1 of its own pid namespace, its hostname is the pod's),
in the pod's network namespace when the network plugin made one, on an overlay root
filesystem built from its image (`rootfs.py`) with the pod's /etc/hosts, /etc/hostname,
/etc/resolv.conf and its volumes bound in, inside its own cgroup under the pod's, with
the memory and cpu limits of its resources (`cgroups.py`). When the kernel OOM-kills it,
the cgroup's OOM counter turns its exit into reason `OOMKilled`, exit code 137.

State lives in the container's attempt directory, so a restarted kubelet re-adopts what
runs: the shim's `pid`/`exit` files, and `namespaces.json` (id, pod, cgroup, rootfs,
user, what exec needs). Once a container is seen to have exited, its final status is
written to `status.json` and its rootfs and cgroup are released at once: nothing is left
mounted or accounted for an exited container, only its status and log.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import termios
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubelet.runtime import procfs, rootfs
from kubelet.runtime.base import (
    COMPLETED,
    ERROR,
    EXITED,
    OOM_KILLED,
    RUNNING,
    START_ERROR,
    ContainerConfig,
    ContainerNotFound,
    ContainerState,
    RuntimeError_,
    Sandbox,
)
from kubelet.runtime.cgroups import Cgroup, CgroupError, CgroupManager
from kubelet.runtime.execproc import ExecError, ExecProcess, look_path
from kubelet.runtime.shim import (
    ShimOptions,
    ShimStartError,
    read_exit,
    read_pid,
    spawn,
    start_error_message,
    write_env_file,
)

PREFIX = "namespaces://"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
META = "namespaces.json"
FINAL = "status.json"
UNSHARE = ["pid", "mount", "uts", "ipc"]


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class NamespacesRuntime:
    name = "namespaces"

    def __init__(self, root: Path, node_name: str, *, cgroups: CgroupManager | None = None) -> None:
        self.root = Path(root)
        self.cgroups = cgroups or CgroupManager(node_name)
        self._dirs: dict[str, Path] = {}  # container id -> its state dir

    # -- sandbox --------------------------------------------------------------------

    async def create_sandbox(self, sandbox: Sandbox) -> None:
        sandbox.state_dir.mkdir(parents=True, exist_ok=True)
        group = self.cgroups.create_pod(sandbox.pod_uid)
        sandbox.cgroup_parent = str(group.paths[0])
        rootfs.mount_shm(sandbox.state_dir / "shm")

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        containers = self.root / "pods" / sandbox.pod_uid / "containers"
        for meta in containers.glob(f"*/*/{META}"):
            await self.remove_container(json.loads(meta.read_text())["id"])
        self.cgroups.remove_pod(sandbox.pod_uid)
        rootfs.teardown(sandbox.state_dir)  # unmounts the pod's /dev/shm, or raises
        shutil.rmtree(sandbox.state_dir, ignore_errors=True)

    # -- containers -----------------------------------------------------------------

    async def start_container(self, config: ContainerConfig) -> ContainerState:
        hex_id = secrets.token_hex(32)
        cid, state = PREFIX + hex_id, config.state_dir
        # Synchronous on purpose: a few ms of syscalls; a thread per start measured slower.
        options, meta, group = self._create(config, hex_id)
        self._dirs[cid] = state
        try:
            pid = await spawn(options)
            meta["pid_start"] = procfs.start_ticks(pid)
            (state / META).write_text(json.dumps(meta))
        except ShimStartError as exc:  # the shim wrote `exit`: the container exists, as StartError
            self._release(state)
            raise RuntimeError_(START_ERROR, start_error_message(exc.error)) from exc
        except Exception as exc:
            self._undo(state, group)
            self._dirs.pop(cid, None)
            raise RuntimeError_("RunContainerError", f"cannot start mkp-shim: {exc}") from exc
        return ContainerState(id=cid, pod_uid=config.sandbox.pod_uid, name=config.name, attempt=config.attempt,
                              state=RUNNING, pid=pid, started_at=datetime.now(UTC),
                              log_path=config.log_path, labels=dict(config.labels))

    def _create(self, config: ContainerConfig, hex_id: str) -> tuple[ShimOptions, dict[str, Any], Cgroup]:
        """The container's cgroup with its limits, its root and its state files; the
        shim's options to start it. Undone on failure."""
        state, sandbox = config.state_dir, config.sandbox
        if (state / META).exists():
            raise RuntimeError_("CreateContainerError",
                                f"container {config.name} attempt {config.attempt} already exists in {state}")
        if state.exists():  # left by a try of this attempt that never got a container
            self._release(state)
            shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        config.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            group = self.cgroups.create_container(sandbox.pod_uid, hex_id, config.resources)
        except CgroupError as exc:
            raise RuntimeError_("CreateContainerError", str(exc)) from exc
        try:
            root = self._prepare_root(config)
            uid, gid = rootfs.resolve_user(config.image, root.path, config.run_as_user, config.run_as_group)
            cwd = config.working_dir or getattr(config.image, "working_dir", None) or "/"
            meta: dict[str, Any] = {"id": PREFIX + hex_id, "pod_uid": sandbox.pod_uid, "name": config.name,
                                    "attempt": config.attempt, "labels": config.labels,
                                    "log_path": str(config.log_path), "cgroup": group.to_json(),
                                    "netns": sandbox.netns, "cwd": cwd, "uid": uid, "gid": gid}
            write_env_file(state / "env", config.env)
            os.chmod(state / "env", 0o600)  # it may hold secrets
            (state / META).write_text(json.dumps(meta))
        except Exception as exc:
            self._undo(state, group)
            raise RuntimeError_("CreateContainerError", str(exc)) from exc
        options = ShimOptions(
            state=state, log=config.log_path, argv=list(config.argv), env_file=state / "env", cwd=cwd,
            stdin=config.stdin, stdin_once=config.stdin_once, tty=config.tty, unshare=list(UNSHARE),
            netns=sandbox.netns, hostname=_hostname(sandbox.hostname), rootfs=root.path,
            mounts=[(b.source, b.target, b.read_only) for b in root.binds], cgroups=group.paths,
            uid=uid, gid=gid, readonly_rootfs=config.read_only_root)
        return options, meta, group

    def _undo(self, state: Path, group: Cgroup) -> None:
        rootfs.teardown(state)
        group.remove()
        (state / META).unlink(missing_ok=True)

    def _prepare_root(self, config: ContainerConfig) -> rootfs.Rootfs:
        sandbox = config.sandbox
        hosts = sandbox.state_dir.parent / "etc-hosts"
        files = rootfs.pod_files(sandbox.state_dir, hostname=sandbox.hostname, pod_ip=sandbox.pod_ip,
                                 hosts_file=hosts)
        shm = sandbox.state_dir / "shm"
        return rootfs.prepare(config.state_dir, config.image, mounts=list(config.mounts), pod_files=files,
                              shm=shm if rootfs.mounts_under(shm) else None)

    def _release(self, state: Path) -> None:
        """Unmount the rootfs and remove the cgroup (killing what is left in it)."""
        rootfs.teardown(state)
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
            Cgroup.from_json(json.loads((state / META).read_text())["cgroup"]).remove()

    def _state_dir(self, container_id: str) -> Path:
        state = self._dirs.get(container_id)
        if state is not None and (state / META).exists():
            return state
        for meta in self.root.glob(f"pods/*/containers/*/*/{META}"):
            with contextlib.suppress(OSError, json.JSONDecodeError):
                if json.loads(meta.read_text()).get("id") == container_id:
                    self._dirs[container_id] = meta.parent
                    return meta.parent
        raise ContainerNotFound(container_id)

    def _state(self, state: Path) -> ContainerState:
        meta = json.loads((state / META).read_text())
        final = state / FINAL
        if final.exists():
            return self._from_final(meta, json.loads(final.read_text()))
        base = ContainerState(id=meta["id"], pod_uid=meta["pod_uid"], name=meta["name"], attempt=meta["attempt"],
                              state=RUNNING, log_path=Path(meta["log_path"]), labels=meta.get("labels") or {})
        record = read_exit(state)
        if record is None:
            pid = read_pid(state)
            if pid is not None and procfs.same_process(pid, meta.get("pid_start")):
                started = datetime.fromtimestamp((state / "pid").stat().st_mtime, UTC)
                return replace(base, pid=pid, started_at=started)
            if _shim_alive(state):
                return replace(base, pid=None)  # still starting, or reaping
            record = read_exit(state)  # the shim may have written it and gone meanwhile
            if record is None:
                return self._finish(state, meta, {"exit_code": 255, "reason": ERROR, "started_at": None,
                                                  "message": "the container's mkp-shim ended without recording "
                                                             "its exit status"})
        group = Cgroup.from_json(meta["cgroup"])
        if record.error:
            final = {"exit_code": record.exit_code, "reason": START_ERROR,
                     "message": start_error_message(record.error)}
        elif group.exists() and group.oom_killed(sigkilled=record.signal == signal.SIGKILL):
            final = {"exit_code": record.exit_code, "reason": OOM_KILLED, "message": None}
        else:
            final = {"exit_code": record.exit_code, "reason": COMPLETED if record.exit_code == 0 else ERROR,
                     "message": None}
        final.update(started_at=_iso(record.started), finished_at=_iso(record.finished))
        return self._finish(state, meta, final)

    def _finish(self, state: Path, meta: dict, final: dict) -> ContainerState:
        final.setdefault("finished_at", _iso(datetime.now(UTC)))
        tmp = state / (FINAL + ".tmp")
        tmp.write_text(json.dumps(final))
        os.replace(tmp, state / FINAL)
        self._release(state)
        return self._from_final(meta, final)

    @staticmethod
    def _from_final(meta: dict, final: dict) -> ContainerState:
        return ContainerState(id=meta["id"], pod_uid=meta["pod_uid"], name=meta["name"], attempt=meta["attempt"],
                              state=EXITED, started_at=_from_iso(final.get("started_at")),
                              finished_at=_from_iso(final.get("finished_at")), exit_code=final["exit_code"],
                              reason=final["reason"], message=final.get("message"),
                              log_path=Path(meta["log_path"]), labels=meta.get("labels") or {})

    async def status(self, container_id: str) -> ContainerState:
        return self._state(self._state_dir(container_id))

    async def wait(self, container_id: str) -> ContainerState:
        state = self._state_dir(container_id)
        while True:
            current = self._state(state)
            if current.state == EXITED:
                return current
            await _wait_exit(_shim_alive(state))

    async def kill(self, container_id: str, sig: int) -> None:
        state = self._state_dir(container_id)
        current = self._state(state)
        if current.state == EXITED or current.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(current.pid, sig)
        if sig == signal.SIGKILL:  # and whatever left the group (exec'd processes)
            meta = json.loads((state / META).read_text())
            Cgroup.from_json(meta["cgroup"]).kill()

    async def remove_container(self, container_id: str) -> None:
        try:
            state = self._state_dir(container_id)
        except ContainerNotFound:
            return
        if self._state(state).state == RUNNING:
            await self.kill(container_id, signal.SIGKILL)
            await asyncio.wait_for(self.wait(container_id), 10)
        self._release(state)
        shutil.rmtree(state, ignore_errors=True)
        self._dirs.pop(container_id, None)

    async def list_containers(self) -> list[ContainerState]:
        found = []
        for meta in sorted(self.root.glob(f"pods/*/containers/*/*/{META}")):
            with contextlib.suppress(OSError, json.JSONDecodeError, KeyError):
                self._dirs[json.loads(meta.read_text())["id"]] = meta.parent
                found.append(self._state(meta.parent))
        return found

    def purge(self) -> None:
        """Kill every container of this node and release everything the runtime holds:
        rootfs overlays, pods' /dev/shm, the node's cgroups. For `mkp down`, where the
        containers must not outlive the cluster (their state stays for the caller to
        delete)."""
        self.cgroups.remove_node()  # kills every process in the node's cgroups
        for meta in self.root.glob(f"pods/*/containers/*/*/{META}"):
            rootfs.teardown(meta.parent)
        for sandbox in self.root.glob("pods/*/sandbox"):
            rootfs.teardown(sandbox)
        self._dirs.clear()

    # -- exec, attach, stats --------------------------------------------------------

    async def exec(self, container_id: str, argv: Sequence[str], *, stdin: bool, tty: bool,
                   env: Mapping[str, str] | None = None) -> ExecProcess:
        state = self._state_dir(container_id)
        current = self._state(state)
        if current.state != RUNNING or current.pid is None:
            raise RuntimeError_("ContainerNotRunning", f"container {container_id} is not running")
        meta = json.loads((state / META).read_text())
        environ = _read_env(state / "env") | dict(env or {})
        cmd = ["nsenter", f"--target={current.pid}", "--mount", "--uts", "--ipc", "--pid", "--root",
               f"--wd=/proc/{current.pid}/root{meta.get('cwd') or '/'}"]
        if meta.get("netns"):
            cmd.append("--net")
        if meta.get("gid") is not None:
            cmd.append(f"--setgid={meta['gid']}")
        if meta.get("uid") is not None:
            cmd.append(f"--setuid={meta['uid']}")
        try:
            _check_program(current.pid, argv[0] if argv else "", environ.get("PATH"), meta.get("cwd") or "/")
        except ExecError as exc:
            raise RuntimeError_("ExecError", f"failed to exec in container: failed to start exec in {container_id}: "
                                f"OCI runtime exec failed: exec failed: unable to start container process: "
                                f"{exc}: unknown") from None
        return await _start_exec([*cmd, "--", *argv], environ, Cgroup.from_json(meta["cgroup"]), stdin, tty)

    async def attach_stdin(self, container_id: str) -> Any:
        state = self._state_dir(container_id)
        fifo = state / "stdin"
        if not fifo.exists() or self._state(state).state != RUNNING:
            raise RuntimeError_("AttachError", f"container {container_id} has no stdin open (stdin: false)")
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:  # ENXIO: no reader any more (stdinOnce used up, or exiting)
            raise RuntimeError_("AttachError", f"container {container_id} stdin is closed: {exc}") from None
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                                            os.fdopen(fd, "wb", buffering=0))
        return asyncio.StreamWriter(transport, protocol, None, loop)

    def resize(self, container_id: str, width: int, height: int) -> None:
        fifo = self._state_dir(container_id) / "resize"
        with contextlib.suppress(OSError):
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            try:
                os.write(fd, f"{width} {height}\n".encode())
            finally:
                os.close(fd)

    def stats(self, container_id: str) -> dict[str, int] | None:
        try:
            state = self._state_dir(container_id)
            meta = json.loads((state / META).read_text())
        except (ContainerNotFound, OSError):
            return None
        if (state / FINAL).exists() or (state / "exit").exists():
            return None
        group = Cgroup.from_json(meta["cgroup"])
        try:
            return group.usage().as_dict() | {"process_count": len(group.pids())}
        except (OSError, ValueError):
            return None


def _hostname(name: str) -> str:
    """The kubelet truncates a hostname to 63 characters, then drops a trailing - or ."""
    return name[:63].rstrip("-.") if len(name) > 63 else name


def _shim_alive(state: Path) -> int | None:
    """The shim's pid while it runs (checked by its command line: pids are reused)."""
    pid = read_pid(state, "shim.pid")
    if pid and procfs.option(procfs.cmdline(pid), "--state") == str(state):
        return pid
    return None


async def _wait_exit(pid: int | None) -> None:
    """Until `pid` exits: a pidfd when possible, else a short sleep (the caller loops)."""
    try:
        fd = os.pidfd_open(pid) if pid else None
    except OSError:
        fd = None
    if fd is None:
        await asyncio.sleep(0.1)
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        await asyncio.wait_for(done, 5)  # bounded: the shim may already be gone and reused
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def _check_program(pid: int, name: str, path: str | None, cwd: str) -> None:
    """runc's lookup of the program in the container's PATH, through /proc/<pid>/root."""
    root = f"/proc/{pid}/root"
    if "/" not in name:
        look_path(name, ":".join(root + d for d in (path or DEFAULT_PATH).split(":")), root + cwd)
        return
    target = name if name.startswith("/") else os.path.join(cwd, name)
    try:
        look_path(root + target, None, "/")
    except ExecError as exc:
        raise ExecError(str(exc).replace(root + target, name)) from None


async def _start_exec(argv: list[str], env: dict[str, str], group: Cgroup, stdin: bool,
                      tty: bool) -> ExecProcess:
    """nsenter in its own session, moved into the container's cgroups before it runs."""
    def enter(take_terminal: bool) -> None:
        group.add(os.getpid())
        if take_terminal:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    if not tty:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, start_new_session=True, preexec_fn=lambda: enter(False),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        return ExecProcess(proc, None)
    master, slave = os.openpty()
    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.set_blocking(master, False)
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, start_new_session=True, preexec_fn=lambda: enter(True),
            stdin=slave, stdout=slave, stderr=slave)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return ExecProcess(proc, master)


def _read_env(path: Path) -> dict[str, str]:
    out = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in path.read_bytes().split(b"\0"):
            if entry:
                key, _, value = entry.decode().partition("=")
                out[key] = value
    return out
