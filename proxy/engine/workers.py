"""`mkp proxy --concurrency N`: N worker processes serving the same listeners, so one
proxy uses more than one core, as Envoy's N worker threads do.

Python runs one thread of Python at a time, so Envoy's worker threads become processes.
Each worker is a whole `mkp proxy` (started as `python -m proxy.engine.cli ... --worker-of
PID`): it binds every listener with SO_REUSEPORT (listener.py already does), so the
kernel spreads new connections over the workers, and nothing on the data path crosses a
process boundary. Each worker watches the config file itself (the file is the source of
truth), writes its own access log lines (O_APPEND, whole lines per write) and spans.

The parent (`Supervisor`) validates the config before any worker starts (a bad file fails
the command with the single-process message), serves the admin address (admin.py's
SupervisorAdmin: stats summed over the workers, as Envoy's are process-wide), forwards
SIGTERM/SIGINT to the workers and exits 0 after them, and restarts a worker that dies
(Envoy would abort the whole process; a restart is kinder to a learner poking at it).
Workers answer the parent on a private unix socket each (admin.AdminHandler). A worker
dies with its parent: PR_SET_PDEATHSIG sends it SIGTERM, and it drains.

Why new processes rather than fork: the parent runs an event loop (admin, supervision)
before and after it starts workers, and forking a process with a running loop (uvloop's
libuv state, the access log threads) is unsafe; a fresh interpreter costs a start-up
(~0.3 s) once per worker and carries nothing it does not need.

A listener on port 0 gets one port for all workers: the parent binds a placeholder
SO_REUSEPORT socket (never listening, so it takes no connections) to choose it, and the
workers are told it (`--listener-ports`), as Envoy binds port 0 once for all its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass, field, replace

from proxy.engine.config import Bootstrap

log = logging.getLogger("proxy.engine.workers")
PR_SET_PDEATHSIG = 1
RESTART_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds before restart number 1, 2, ... (last repeats)
QUERY_TIMEOUT = 5.0


class WorkerError(RuntimeError):
    """A worker could not start (a port taken, a file unreadable): the command fails."""


def die_with_parent(parent_pid: int) -> None:
    """In a worker: get SIGTERM when the parent dies (Linux), and exit at once if it
    already has (the race between its start and this call)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's SIGTERM is the only stop
        pass
    if os.getppid() != parent_pid:
        os._exit(0)


def _listener_key(index: int, lst: object) -> str:
    name = getattr(lst, "name", "") or f"#{index}"
    return f"{name}@{lst.address.socket_address.address}"  # type: ignore[attr-defined]


def pin_ports(boot: Bootstrap, ports: dict[str, int]) -> Bootstrap:
    """`boot` with its port-0 listeners on the ports the parent chose (by name and address)."""
    if not ports:
        return boot
    listeners = []
    for i, lst in enumerate(boot.static_resources.listeners):
        sa = lst.address.socket_address
        port = ports.get(_listener_key(i, lst)) if sa.port_value == 0 else None
        if port is not None:
            lst = replace(lst, address=replace(lst.address, socket_address=replace(sa, port_value=port)))
        listeners.append(lst)
    return replace(boot, static_resources=replace(boot.static_resources, listeners=tuple(listeners)))


def reserve_ports(boot: Bootstrap) -> tuple[dict[str, int], list[socket.socket]]:
    """Choose a port for each port-0 listener; the sockets keep it reserved until closed."""
    ports: dict[str, int] = {}
    held: list[socket.socket] = []
    for i, lst in enumerate(boot.static_resources.listeners):
        sa = lst.address.socket_address
        if sa.port_value != 0:
            continue
        family = socket.AF_INET6 if ":" in sa.address else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((sa.address, 0))
        held.append(s)
        ports[_listener_key(i, lst)] = s.getsockname()[1]
    return ports, held


async def query(path: str, method: str, target: str) -> tuple[int, bytes]:
    """One admin request to a worker's unix socket: (status, body)."""
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(f"{method} {target} HTTP/1.1\r\nhost: worker\r\ncontent-length: 0\r\n"
                     "connection: close\r\n\r\n".encode("latin-1"))
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), None)
        body = await (reader.readexactly(length) if length is not None else reader.read())
        return status, body
    finally:
        writer.close()


@dataclass
class Worker:
    index: int
    socket_path: str
    proc: asyncio.subprocess.Process | None = None
    ready: bool = False
    restarts: int = 0
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    """Starts, watches, restarts and stops the workers; answers admin.Workers."""

    def __init__(self, config: str, concurrency: int, *, log_level: str, ports: dict[str, int],
                 drain_timeout: float = 5.0) -> None:
        self.config, self.log_level, self.ports = config, log_level, ports
        self.drain_timeout = drain_timeout
        self.dir = tempfile.mkdtemp(prefix="mkp-proxy-")  # 0700: only this user reaches the workers
        self.workers = [Worker(i, os.path.join(self.dir, f"worker-{i}.sock")) for i in range(concurrency)]
        self.stopping = False
        self.failed: str | None = None  # a worker that could not start: the command fails
        self.started = False  # every worker served once: from now on a dead worker is restarted
        self.changed = asyncio.Event()

    def _command(self, w: Worker) -> list[str]:
        return [sys.executable, "-m", "proxy.engine.cli", "--config", self.config, "--log-level", self.log_level,
                "--worker-of", str(os.getpid()), "--admin-socket", w.socket_path,
                "--listener-ports", json.dumps(self.ports)]

    async def _spawn(self, w: Worker) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(w.socket_path)
        w.ready = False
        w.proc = await asyncio.create_subprocess_exec(*self._command(w), stdin=asyncio.subprocess.DEVNULL)
        log.info("worker %d started (pid %d)", w.index, w.proc.pid)
        w.watcher = asyncio.get_running_loop().create_task(self._watch(w, w.proc))

    async def _watch(self, w: Worker, proc: asyncio.subprocess.Process) -> None:
        """Wait until the worker answers (ready), then until it exits; restart it unless stopping."""
        while proc.returncode is None and not w.ready:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                w.ready = (await asyncio.wait_for(query(w.socket_path, "GET", "/ready"), QUERY_TIMEOUT))[0] == 200
            if w.ready:
                log.info("worker %d (pid %d) serving", w.index, proc.pid)
                w.restarts = 0
                self.changed.set()
            else:
                await asyncio.sleep(0.05)
        code = await proc.wait()
        w.ready = False
        self.changed.set()
        if self.stopping:
            return
        if not self.started:  # during start: the command fails (a port taken, a file unreadable)
            self.failed = self.failed or f"worker {w.index} exited with code {code} before serving"
            self.changed.set()
            return
        delay = RESTART_BACKOFF[min(w.restarts, len(RESTART_BACKOFF) - 1)]
        log.error("worker %d (pid %d) exited unexpectedly with code %d; restarting it in %.1fs",
                  w.index, proc.pid, code, delay)
        w.restarts += 1
        await asyncio.sleep(delay)
        if not self.stopping:
            await self._spawn(w)

    async def start(self, timeout: float = 60.0) -> None:
        """Start every worker and wait until all serve; raises WorkerError if one cannot."""
        for w in self.workers:
            await self._spawn(w)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not all(w.ready for w in self.workers):
            if self.failed is not None:
                raise WorkerError(self.failed)
            if loop.time() > deadline:
                raise WorkerError(f"workers not serving after {timeout:.0f}s")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 0.5)
        self.started = True

    def state(self) -> str:
        """Envoy's server state for /ready: LIVE when every worker serves."""
        if self.stopping:
            return "DRAINING"
        return "LIVE" if all(w.ready for w in self.workers) else "INITIALIZING"

    async def fan_out(self, method: str, target: str) -> list[tuple[int, bytes]]:
        """The same admin request to every serving worker, their answers in worker order."""
        live = [w for w in self.workers if w.ready]

        async def one(w: Worker) -> tuple[int, bytes] | None:
            try:
                return await asyncio.wait_for(query(w.socket_path, method, target), QUERY_TIMEOUT)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
                log.warning("worker %d did not answer %s: %s", w.index, target, e)
                return None
        answers = await asyncio.gather(*(one(w) for w in live))
        return [a for a in answers if a is not None]

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc is not None and w.proc.returncode is None]

    async def stop(self) -> None:
        """SIGTERM to every worker (they drain and exit); SIGKILL to any still there after
        the drain timeout and a grace period; then the private directory goes."""
        self.stopping = True
        procs = [w.proc for w in self.workers if w.proc is not None and w.proc.returncode is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), self.drain_timeout + 5.0)
        except TimeoutError:
            for p in procs:
                if p.returncode is None:
                    log.error("worker pid %d did not stop; killing it", p.pid)
                    with contextlib.suppress(ProcessLookupError):
                        p.kill()
            await asyncio.gather(*(p.wait() for p in procs))
        for w in self.workers:
            if w.watcher is not None:
                w.watcher.cancel()
        shutil.rmtree(self.dir, ignore_errors=True)
