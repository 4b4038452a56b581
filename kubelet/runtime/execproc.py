"""`kubectl exec` for runtimes without namespaces: a subprocess with the container's env
and working directory, in a session of its own, with pipes or a pseudo-terminal.

The program is looked up in the container's PATH first, so a missing one fails with the
message runc gives (`exec: "foo": executable file not found in $PATH`) instead of
whatever the kubelet's own PATH would find. With a tty, the process gets the terminal's
slave side as stdin/stdout/stderr and as its controlling terminal; `stdout` then carries
both streams (`stderr` is None) and `resize()` sets the window size (SIGWINCH follows).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import signal
import stat
import struct
import subprocess
import termios
from collections.abc import Mapping

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ExecError(Exception):
    """The program could not be started; the message is runc-shaped."""


def look_path(name: str, path: str | None, cwd: str) -> str:
    """Go's exec.LookPath (what runc uses) over `path`, with its error messages."""
    def executable(candidate: str) -> int:
        try:
            mode = os.stat(candidate if os.path.isabs(candidate) else os.path.join(cwd, candidate)).st_mode
        except OSError as exc:
            return exc.errno or errno.ENOENT
        return 0 if not stat.S_ISDIR(mode) and mode & 0o111 else errno.EACCES

    if not name:
        raise ExecError('exec: "": executable file not found in $PATH')
    if "/" in name:
        err = executable(name)
        if err == errno.EACCES:
            raise ExecError(f'exec: "{name}": permission denied')
        if err:
            raise ExecError(f'exec: "{name}": stat {name}: {os.strerror(err).lower()}')
        return name
    for directory in (path if path is not None else DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        if executable(candidate) == 0:
            return candidate
    raise ExecError(f'exec: "{name}": executable file not found in $PATH')


class _PtyWriter:
    """The writing half of a pty master, StreamWriter-shaped (write, drain, close)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._closed = False

    def write(self, data: bytes) -> None:
        if not self._closed:
            self._buffer += data

    async def drain(self) -> None:
        while self._buffer and not self._closed:
            try:
                sent = os.write(self._fd, self._buffer)
                del self._buffer[:sent]
            except BlockingIOError:
                await asyncio.sleep(0.01)
            except OSError:
                self._buffer.clear()

    def close(self) -> None:
        self._closed = True

    def is_closing(self) -> bool:
        return self._closed

    async def wait_closed(self) -> None:
        return None


class ExecProcess:
    """A running exec: `stdin`, `stdout`, `stderr` streams, `wait()`, `resize()`, `kill()`."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int | None) -> None:
        self._proc = proc
        self._master = master
        self.pid = proc.pid
        if master is None:
            self.stdin, self.stdout, self.stderr = proc.stdin, proc.stdout, proc.stderr
            return
        loop = asyncio.get_running_loop()
        self._eof: asyncio.Future[None] = loop.create_future()
        self.stdout = asyncio.StreamReader()
        self.stderr = None
        self.stdin = _PtyWriter(master)
        loop.add_reader(master, self._read_master)

    def _read_master(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave side is closed
            data = b""
        if data:
            self.stdout.feed_data(data)
            return
        asyncio.get_running_loop().remove_reader(self._master)
        self.stdout.feed_eof()
        if not self._eof.done():
            self._eof.set_result(None)

    async def wait(self) -> int:
        code = await self._proc.wait()
        if self._master is not None:
            # Output still in the terminal is read until EIO (no slave left), for at most 1 s:
            # a background child may hold the terminal open forever.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._eof), 1.0)
            self._close_master()
        return 128 - code if code < 0 else code  # killed by a signal: 128+N, as a shell says

    def _close_master(self) -> None:
        if self._master is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._master)
            if not self.stdout.at_eof():
                self.stdout.feed_eof()
            self.stdin.close()
            os.close(self._master)
            self._master = None

    def resize(self, width: int, height: int) -> None:
        if self._master is not None:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # after setsid: the slave becomes the controlling tty


async def start_exec(argv: list[str], *, env: Mapping[str, str], cwd: str, stdin: bool, tty: bool) -> ExecProcess:
    """Start `argv` in its own session; raises ExecError as runc would."""
    if not argv:
        raise ExecError('exec: "": executable file not found in $PATH')
    if not os.path.isdir(cwd):
        raise ExecError(f'chdir to cwd ("{cwd}") set in config.json failed: no such file or directory')
    program = look_path(argv[0], env.get("PATH"), cwd)
    if not tty:
        proc = await asyncio.create_subprocess_exec(
            argv[0], *argv[1:], executable=program, env=dict(env), cwd=cwd, start_new_session=True,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return ExecProcess(proc, None)
    master, slave = os.openpty()
    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.set_blocking(master, False)
        proc = await asyncio.create_subprocess_exec(
            argv[0], *argv[1:], executable=program, env=dict(env), cwd=cwd, start_new_session=True, stdin=slave, stdout=slave,
            stderr=slave, preexec_fn=_take_terminal)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return ExecProcess(proc, master)
