"""mkp-shim: building it, starting it, reading what it leaves in a state directory.

The shim (`mkp-shim.c`, next to this file) is the parent of one container attempt, like
conmon or containerd-shim: it survives the kubelet, logs the container's output in the
CRI format, and records its exit in `<state>/exit`. It is compiled on first use with gcc
into `$MKP_HOME/bin/mkp-shim-<sha256 of the source, 12 hex>`, so an edited source gets a
new binary and running shims keep theirs. Compiling goes to a temporary name and is
renamed into place, so threads and processes racing to build it all end with a whole file.

`spawn()` runs the shim and waits for its verdict: it prints one line, `ok <pid>` once
the container's program has been exec'd, or `error <message>` when it could not be
started (a CRI StartError, exit code 128). Both runtimes (`process`, `namespaces`) start
containers through `spawn()` with `ShimOptions`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from minikube_py.config import mkp_home

SOURCE = Path(__file__).with_name("mkp-shim.c")
CFLAGS = ["-O2", "-Wall"]
START_ERROR_EXIT_CODE = 128

_build_lock = threading.Lock()


class ShimBuildError(Exception):
    """The shim could not be compiled (no gcc, or a compiler error)."""


def shim_path() -> Path:
    """The compiled shim for the current source, building it if needed."""
    source = SOURCE.read_bytes()
    target = mkp_home() / "bin" / f"mkp-shim-{hashlib.sha256(source).hexdigest()[:12]}"
    if os.access(target, os.X_OK):
        return target
    with _build_lock:
        if os.access(target, os.X_OK):
            return target
        gcc = shutil.which("gcc") or shutil.which("cc")
        if gcc is None:
            raise ShimBuildError("cannot build mkp-shim: no C compiler (install gcc)")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        try:
            result = subprocess.run([gcc, *CFLAGS, "-o", tmp, str(SOURCE)], capture_output=True, text=True,
                                    check=False)
            if result.returncode != 0:
                raise ShimBuildError(f"cannot build mkp-shim: gcc exited {result.returncode}:\n{result.stderr}")
            os.chmod(tmp, 0o755)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target


@dataclass
class ShimOptions:
    """The command line of one shim; field names follow its options."""

    state: Path
    log: Path
    argv: list[str]
    env_file: Path | None = None
    cwd: str | None = None
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    unshare: list[str] = field(default_factory=list)  # pid, mount, uts, ipc
    netns: str | None = None
    hostname: str | None = None
    rootfs: Path | None = None
    mounts: list[tuple[str, str, bool]] = field(default_factory=list)  # (src, dst, read_only)
    cgroups: list[Path] = field(default_factory=list)
    uid: int | None = None
    gid: int | None = None
    readonly_rootfs: bool = False

    def command(self, shim: Path) -> list[str]:
        args = [str(shim), "--state", str(self.state), "--log", str(self.log)]
        for flag, value in (("--env-file", self.env_file), ("--cwd", self.cwd), ("--netns", self.netns),
                            ("--hostname", self.hostname), ("--rootfs", self.rootfs), ("--uid", self.uid),
                            ("--gid", self.gid)):
            if value is not None:
                args += [flag, str(value)]
        if self.unshare:
            args += ["--unshare", ",".join(self.unshare)]
        for src, dst, ro in self.mounts:
            args += ["--mount", f"{src}:{dst}{':ro' if ro else ''}"]
        for cgroup in self.cgroups:
            args += ["--cgroup", str(cgroup)]
        for flag, on in (("--stdin", self.stdin), ("--stdin-once", self.stdin_once), ("--tty", self.tty),
                         ("--readonly-rootfs", self.readonly_rootfs)):
            if on:
                args.append(flag)
        return [*args, "--", *self.argv]


class ShimStartError(Exception):
    """The container's program could not be started; `error` is the runc-style core
    message (say `exec: "foo": executable file not found in $PATH`)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """The environment as the shim reads it: NUL-separated KEY=VALUE entries."""
    for key in env:
        if not key or "=" in key or "\0" in key or "\0" in env[key]:
            raise ValueError(f"invalid environment variable name or value: {key!r}")
    data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items())
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)  # it may hold secrets
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


async def spawn(options: ShimOptions) -> int:
    """Start a shim; return the container's host pid once its program runs. Raises
    ShimStartError when it could not be started (the shim has then written `exit`),
    or OSError/ShimBuildError when the shim itself could not run."""
    shim = await asyncio.to_thread(shim_path)
    # The standard library's fork+exec, in a thread: it closes every other descriptor
    # in the child (uvloop's subprocess transport leaks some into the shim, and so into
    # the container, which then holds this pipe open and `communicate` never ends).
    proc = await asyncio.to_thread(subprocess.run, options.command(shim), stdin=subprocess.DEVNULL,
                                   capture_output=True, close_fds=True, check=False)
    out, err = proc.stdout, proc.stderr
    line = out.decode(errors="replace").strip()
    if line.startswith("ok "):
        return int(line[3:])
    if line.startswith("error "):
        raise ShimStartError(line[6:])
    raise OSError(f"mkp-shim failed (exit {proc.returncode}): {err.decode(errors='replace').strip() or line}")


def start_error_message(error: str) -> str:
    """The StartError message Kubernetes shows for a container that could not start,
    in the words of containerd and runc (what a learner will search for)."""
    return ("failed to create containerd task: failed to create shim task: OCI runtime create failed: "
            f"runc create failed: unable to start container process: error during container init: {error}: unknown")


@dataclass(frozen=True)
class ExitRecord:
    """`<state>/exit` parsed. `started` is None for a container that never started."""

    exit_code: int
    signal: int
    started: datetime | None
    finished: datetime
    error: str | None


def _from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


def read_exit(state_dir: Path) -> ExitRecord | None:
    """The exit record, or None while the container runs (or if no shim ever ran)."""
    try:
        text = (state_dir / "exit").read_text()
    except FileNotFoundError:
        return None
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    started = int(fields.get("started", "0"))
    return ExitRecord(exit_code=int(fields["exit_code"]), signal=int(fields.get("signal", "0")),
                      started=_from_ns(started) if started else None,
                      finished=_from_ns(int(fields["finished"])), error=fields.get("error"))


def read_pid(state_dir: Path, name: str = "pid") -> int | None:
    try:
        return int((state_dir / name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
