"""The `process` runtime: each container a plain process under mkp-shim, no isolation.

What a container gets: its argv, exactly the environment of `ContainerConfig.env` (with
PATH from the image's `process_path` when the image's PATH would point into a root
filesystem that does not exist here), a working directory, stdout/stderr in the CRI log,
optional stdin and tty, its own session and process group (so signals reach all of its
processes and never the shim), and, when the kubelet runs as root, runAsUser/runAsGroup.
What it does not get: namespaces, a root filesystem, cgroup limits. The working directory
is `working_dir` (the pod's workingDir or the image's WorkingDir) as a *host* path, and
`/` when unset, as Kubernetes defaults it; a missing one is a StartError, as with runc.
Mounts cannot be remapped without a mount namespace: volumes are host paths; see
`mount_paths()` for the container path -> host path map the kubelet can expose.

State: the shim writes `pid`, `exit`, `shim.pid` and the FIFOs into `config.state_dir`;
this runtime adds `container.json` (identity, labels, cwd) and `env` there, and one index
entry per container under `<root>/runtime/process/<hex>` naming that state directory, so
a restarted kubelet lists running and exited containers and re-adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubelet.runtime import procfs
from kubelet.runtime.base import (
    COMPLETED,
    ERROR,
    EXITED,
    RUNNING,
    START_ERROR,
    ContainerConfig,
    ContainerNotFound,
    ContainerState,
    RuntimeError_,
    Sandbox,
)
from kubelet.runtime.execproc import ExecError, start_exec
from kubelet.runtime.shim import (
    START_ERROR_EXIT_CODE,
    ShimBuildError,
    ShimOptions,
    ShimStartError,
    read_exit,
    read_pid,
    spawn,
    start_error_message,
    write_env_file,
)

PREFIX = "process://"
POLL_SECONDS = 0.2  # only when no pidfd can be had (the shim is gone, the container orphaned)


def mount_paths(config: ContainerConfig) -> dict[str, str]:
    """container path -> host path of the container's mounts: under `process` a program
    must be told where its volumes really are."""
    return {m.container_path: m.host_path for m in config.mounts}


def reason_for(exit_code: int, error: str | None) -> tuple[str, str | None]:
    """(reason, message) of a terminated container, as the kubelet reports them."""
    if error is not None and exit_code == START_ERROR_EXIT_CODE:
        return START_ERROR, start_error_message(error)
    return (COMPLETED if exit_code == 0 else ERROR), None


def host_paths(config: ContainerConfig) -> tuple[str, list[str]]:
    """The working dir and argv to run with on the host: with no root filesystem, an
    image's own paths (its WorkingDir, an absolute or relative program path such as
    busybox's /bin/sh or podinfo's ./podinfo in /home/app) are the image layer's files
    on the host. Paths the image does not have are used as they are."""
    image = config.image
    lookup = getattr(image, "host_path", None)
    workdir = config.working_dir or "/"
    cwd = workdir
    argv = list(config.argv)
    if lookup is None:
        return cwd, argv
    if config.working_dir:
        cwd = lookup(config.working_dir) or config.working_dir
    if argv and "/" in argv[0]:
        inside = argv[0] if argv[0].startswith("/") else os.path.normpath(os.path.join(workdir, argv[0]))
        mapped = lookup(inside)
        if mapped is not None:
            argv[0] = mapped
    return cwd, argv


def container_path_env(env: Mapping[str, str], image: Any) -> dict[str, str]:
    """The environment to run with: the image's PATH (meant for its root filesystem) is
    swapped for its `process_path`; a PATH the pod spec set itself is kept."""
    result = dict(env)
    process_path = getattr(image, "process_path", None)
    image_path = (getattr(image, "env", None) or {}).get("PATH")
    if process_path and (result.get("PATH") is None or result.get("PATH") == image_path):
        result["PATH"] = process_path
    return result


class ProcessRuntime:
    """`base.Runtime` with plain processes. `root` is the node's root directory."""

    name = "process"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.index = self.root / "runtime" / "process"

    # ---- sandboxes ----

    async def create_sandbox(self, sandbox: Sandbox) -> None:
        sandbox.state_dir.mkdir(parents=True, exist_ok=True)

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        shutil.rmtree(sandbox.state_dir, ignore_errors=True)

    # ---- containers ----

    async def start_container(self, config: ContainerConfig) -> ContainerState:
        # File system work runs on a worker thread: on a slow disk a burst of pods would
        # otherwise queue every start behind each other's mkdir and fsync-free writes.
        hex_id, state_dir, options, meta = await asyncio.to_thread(self._prepare, config)
        try:
            pid = await spawn(options)
        except ShimStartError as exc:
            raise RuntimeError_(START_ERROR, start_error_message(exc.error)) from None
        except (OSError, ShimBuildError) as exc:  # nothing started: leave no trace of it
            (self.index / hex_id).unlink(missing_ok=True)
            (state_dir / "container.json").unlink(missing_ok=True)
            raise RuntimeError_("RunContainerError", f"cannot start mkp-shim: {exc}") from None
        return await asyncio.to_thread(self._record_start, hex_id, state_dir, meta, pid)

    def _prepare(self, config: ContainerConfig) -> tuple[str, Path, ShimOptions, dict[str, Any]]:
        """The container's state directory, env file, metadata and index entry."""
        state_dir = Path(config.state_dir).absolute()
        state_dir.mkdir(parents=True, exist_ok=True)
        if (state_dir / "container.json").exists():
            raise RuntimeError_("CreateContainerError",
                                f"container {config.name} attempt {config.attempt} already exists in {state_dir}")
        config.log_path.parent.mkdir(parents=True, exist_ok=True)
        hex_id = secrets.token_hex(32)
        env = container_path_env(config.env, config.image)
        cwd, argv = host_paths(config)
        meta = {"id": PREFIX + hex_id, "pod_uid": config.sandbox.pod_uid, "name": config.name,
                "attempt": config.attempt, "log_path": str(config.log_path), "labels": dict(config.labels),
                "cwd": cwd, "tty": config.tty, "stdin": bool(config.stdin), "state_dir": str(state_dir)}
        try:
            write_env_file(state_dir / "env", env)
        except ValueError as exc:
            raise RuntimeError_("CreateContainerConfigError", str(exc)) from None
        _write_json(state_dir / "container.json", meta)
        self.index.mkdir(parents=True, exist_ok=True)
        (self.index / hex_id).write_text(str(state_dir) + "\n")
        as_root = os.geteuid() == 0
        options = ShimOptions(state=state_dir, log=config.log_path, argv=argv,
                              env_file=state_dir / "env", cwd=cwd, stdin=config.stdin,
                              stdin_once=config.stdin and config.stdin_once, tty=config.tty,
                              uid=config.run_as_user if as_root else None,
                              gid=config.run_as_group if as_root else None)
        return hex_id, state_dir, options, meta

    def _record_start(self, hex_id: str, state_dir: Path, meta: dict[str, Any], pid: int) -> ContainerState:
        meta["pid_start"] = procfs.start_ticks(pid)
        _write_json(state_dir / "container.json", meta)
        return self._state(hex_id, state_dir)

    async def status(self, container_id: str) -> ContainerState:
        hex_id, state_dir = self._locate(container_id)
        return self._state(hex_id, state_dir)

    async def wait(self, container_id: str) -> ContainerState:
        hex_id, state_dir = self._locate(container_id)
        while True:
            state = self._state(hex_id, state_dir)
            if state.state == EXITED:
                return state
            if not await _wait_shim(state_dir):
                await asyncio.sleep(POLL_SECONDS)

    async def kill(self, container_id: str, signal: int) -> None:
        state = await self.status(container_id)
        if state.state == RUNNING and state.pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(state.pid, signal)

    async def remove_container(self, container_id: str) -> None:
        hex_id, state_dir = self._locate(container_id)
        if self._state(hex_id, state_dir).state == RUNNING:
            raise RuntimeError_("RemoveContainerError", f"container {container_id} is running; kill it first")
        shutil.rmtree(state_dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.index / hex_id).unlink()

    async def list_containers(self) -> list[ContainerState]:
        found = []
        for entry in sorted(self.index.glob("*")) if self.index.is_dir() else []:
            try:
                hex_id, state_dir = self._locate(PREFIX + entry.name)
                found.append(self._state(hex_id, state_dir))
            except ContainerNotFound:
                continue
        return found

    # ---- streams ----

    async def exec(self, container_id: str, argv: Sequence[str], *, stdin: bool, tty: bool,
                   env: Mapping[str, str] | None = None) -> Any:
        hex_id, state_dir = self._locate(container_id)
        state = self._state(hex_id, state_dir)
        if state.state != RUNNING:
            raise RuntimeError_("ContainerNotRunning", f"cannot exec in a stopped container: {container_id} has exited")
        meta = _read_json(state_dir / "container.json")
        run_env = _read_env(state_dir / "env")
        run_env.update(env or {})
        try:
            return await start_exec(list(argv), env=run_env, cwd=meta.get("cwd") or "/", stdin=stdin, tty=tty)
        except ExecError as exc:
            raise RuntimeError_("ExecError", f"failed to exec in container: failed to start exec in {container_id}: "
                                f"OCI runtime exec failed: exec failed: unable to start container process: "
                                f"{exc}: unknown") from None

    async def attach_stdin(self, container_id: str) -> asyncio.StreamWriter:
        hex_id, state_dir = self._locate(container_id)
        meta = _read_json(state_dir / "container.json")
        if not meta.get("stdin"):
            raise RuntimeError_("AttachError", f"container {meta.get('name')} was not started with stdin: true")
        if self._state(hex_id, state_dir).state != RUNNING:
            raise RuntimeError_("AttachError", f"container {meta.get('name')} is not running")
        try:
            fd = os.open(state_dir / "stdin", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:  # ENXIO: no reader any more (stdinOnce used up, or exiting)
            raise RuntimeError_("AttachError", f"container {meta.get('name')} stdin is closed: {exc}") from None
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(fd, "wb", buffering=0)
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
        return asyncio.StreamWriter(transport, protocol, None, loop)

    def resize(self, container_id: str, width: int, height: int) -> None:
        _, state_dir = self._locate(container_id)
        try:
            fd = os.open(state_dir / "resize", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return  # no tty, or exited
        try:
            os.write(fd, f"{int(width)} {int(height)}\n".encode())
        except OSError:
            pass
        finally:
            os.close(fd)

    def stats(self, container_id: str) -> dict[str, int] | None:
        hex_id, state_dir = self._locate(container_id)
        state = self._state(hex_id, state_dir)
        if state.state != RUNNING or not state.pid:
            return None
        return procfs.group_stats(state.pid)

    # ---- state ----

    def _locate(self, container_id: str) -> tuple[str, Path]:
        hex_id = container_id.removeprefix(PREFIX)
        if not container_id.startswith(PREFIX) or len(hex_id) != 64 or not _is_hex(hex_id):
            raise ContainerNotFound(container_id)
        try:
            state_dir = Path((self.index / hex_id).read_text().strip())
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None
        if not (state_dir / "container.json").exists():
            with contextlib.suppress(FileNotFoundError):
                (self.index / hex_id).unlink()  # state removed behind our back
            raise ContainerNotFound(container_id)
        return hex_id, state_dir

    @staticmethod
    def _exited(state: ContainerState, state_dir: Path) -> bool:
        record = read_exit(state_dir)
        if record is None:
            return False
        state.state = EXITED
        state.started_at, state.finished_at = record.started, record.finished
        state.exit_code = record.exit_code
        state.reason, state.message = reason_for(record.exit_code, record.error)
        return True

    def _state(self, hex_id: str, state_dir: Path) -> ContainerState:
        meta = _read_json(state_dir / "container.json")
        state = ContainerState(id=PREFIX + hex_id, pod_uid=meta["pod_uid"], name=meta["name"],
                               attempt=int(meta["attempt"]), state=RUNNING, log_path=Path(meta["log_path"]),
                               labels=dict(meta.get("labels") or {}))
        if self._exited(state, state_dir):
            return state
        pid = read_pid(state_dir)
        started = _mtime(state_dir / "pid")
        if pid and procfs.same_process(pid, meta.get("pid_start")):
            state.pid, state.started_at = pid, started
            return state
        if _shim_alive(state_dir):
            return state  # starting: the shim has not written `pid` yet
        if self._exited(state, state_dir):  # the shim recorded the exit and ended just now
            return state
        # The shim died without recording an exit (killed with SIGKILL) and so did the container.
        state.state, state.exit_code, state.reason = EXITED, 255, ERROR
        state.started_at, state.finished_at = started, datetime.now(UTC)
        state.message = "the container's mkp-shim ended without recording its exit status"
        return state


async def _wait_shim(state_dir: Path) -> bool:
    """Wait until the shim exits, with a pidfd (no polling). False if that is impossible."""
    shim = _shim_alive(state_dir)
    if not shim:
        return False
    try:
        fd = os.pidfd_open(shim)
    except OSError:
        return False
    try:
        if _shim_alive(state_dir) != shim:  # exited, or the pid was reused, before pidfd_open
            return True
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.add_reader(fd, lambda: done.done() or done.set_result(None))
        try:
            await done
        finally:
            loop.remove_reader(fd)
        return True
    finally:
        os.close(fd)


def _shim_alive(state_dir: Path) -> int | None:
    """The shim's pid if it still runs (checked by its command line, as pids get reused)."""
    pid = read_pid(state_dir, "shim.pid")
    if pid and procfs.option(procfs.cmdline(pid), "--state") == str(state_dir):
        return pid
    return None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime_ns / 1e9, UTC)
    except FileNotFoundError:
        return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ContainerNotFound(str(path.parent)) from None


def _read_env(path: Path) -> dict[str, str]:
    entries = path.read_bytes().split(b"\0")
    return dict(e.decode().split("=", 1) for e in entries if b"=" in e)

