"""The access log's writer: lines buffered and written in batches from the event loop,
never waiting on a slow reader or disk (see AccessLogWriter)."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import stat
import threading
import time
from typing import Any

log = logging.getLogger("proxy.engine.telemetry.accesslog")

_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16


class AccessLogWriter:
    """Buffered lines to a file (appended) or `/dev/stdout`, one write() per batch.

    A batch is written when it holds `buffer_bytes` or `flush_interval` passed, from the
    event loop itself: handing each batch to a worker thread cost the proxy more (~12 µs
    of CPU per request under load, in GIL hand-offs) than the write. The loop must still
    never wait on a slow reader or disk: a pipe or terminal is written non-blocking, and
    what does not fit waits for the descriptor to be writable (loop.add_writer); a
    regular file cannot be made non-blocking, so once a write takes longer than
    `slow_write` seconds this writer hands its batches to a worker thread from then on.
    Beyond `max_pending_bytes` waiting to be written, lines are dropped and counted."""

    def __init__(self, path: str, *, flush_interval: float = 1.0, buffer_bytes: int = 64 * 1024,
                 max_pending_bytes: int = 8 * 1024 * 1024, slow_write: float = 0.005) -> None:
        self.path = path
        self.flush_interval, self.buffer_bytes, self.max_pending_bytes = flush_interval, buffer_bytes, max_pending_bytes
        self.slow_write = slow_write
        self.dropped = 0
        self.written_lines = 0
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        # opening /dev/stdout makes a new open file description for a pipe or terminal, so
        # O_NONBLOCK here does not change the process's own fd 1
        self._regular = stat.S_ISREG(os.fstat(self._fd).st_mode)
        if not self._regular:
            os.set_blocking(self._fd, False)
        self._buf: list[bytes] = []
        self._size = 0
        self._inflight = 0  # bytes past the buffer, not yet written (waiting for the fd, or in the thread)
        self._waiting: collections.deque[list[Any]] = collections.deque()  # [memoryview, lines] for add_writer
        self._watching: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None  # once writes were slow
        self._last: concurrent.futures.Future[None] | None = None

    def write(self, line: bytes | str) -> None:
        """Buffer one line (bytes, or str encoded as UTF-8)."""
        if line.__class__ is str:
            line = line.encode()  # type: ignore[union-attr]
        if self._size + self._inflight > self.max_pending_bytes:
            with self._lock:
                self.dropped += 1
            return
        self._buf.append(line)  # type: ignore[arg-type]
        self._size += len(line)
        if self._size >= self.buffer_bytes:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self.flush)
            except RuntimeError:  # no loop (a script, a test): write through
                self.flush()

    def flush(self) -> None:
        """Write the buffer now, or queue it behind what waits (never blocks the loop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buf:
            return
        if self._regular and self._pool is None and not self._waiting and len(self._buf) <= _IOV_MAX:
            self._write_lines()
            return
        data = b"".join(self._buf)
        lines = len(self._buf)
        self._buf, self._size = [], 0
        if self._pool is not None:
            with self._lock:
                self._inflight += len(data)
            self._last = self._pool.submit(self._write_all, data, lines)
        elif self._waiting:
            self._inflight += len(data)
            self._waiting.append([memoryview(data), lines])
        elif self._regular:
            self._write_file(data, lines)
        else:
            self._write_nonblocking(data, lines)

    def _write_lines(self) -> None:
        """The buffer to a regular file with one writev(): no 64 kB join to allocate and free."""
        buf, size = self._buf, self._size
        self._buf, self._size = [], 0
        start = time.perf_counter()
        try:
            n = os.writev(self._fd, buf)
        except OSError as e:
            self._lost(len(buf), e)
            return
        if n < size:  # a short write (a full disk, a signal): the rest the plain way
            self._write_all(b"".join(buf)[n:], 0, inflight=False)
        self.written_lines += len(buf)
        self._check_slow(time.perf_counter() - start)

    def _check_slow(self, took: float) -> None:
        if took > self.slow_write:
            log.warning("access log %s: a write took %.1f ms; writing from a worker thread from now on",
                        self.path, took * 1000)
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="accesslog")

    def _write_file(self, data: bytes, lines: int) -> None:
        start = time.perf_counter()
        self._write_all(data, lines, inflight=False)
        self._check_slow(time.perf_counter() - start)

    def _write_nonblocking(self, data: bytes, lines: int) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: a plain blocking write
            os.set_blocking(self._fd, True)
            try:
                self._write_all(data, lines, inflight=False)
            finally:
                os.set_blocking(self._fd, False)
            return
        view = memoryview(data)
        try:
            view = view[os.write(self._fd, view):]
        except BlockingIOError:
            pass
        except OSError as e:
            self._lost(lines, e)
            return
        if not view:
            self.written_lines += lines
            return
        self._inflight += len(view)
        self._waiting.append([view, lines])
        loop.add_writer(self._fd, self._writable)
        self._watching = loop

    def _writable(self) -> None:
        """The pipe has room again: write what waits, in order."""
        while self._waiting:
            entry = self._waiting[0]
            view = entry[0]
            try:
                n = os.write(self._fd, view)
            except BlockingIOError:
                return
            except OSError as e:
                self._waiting.popleft()
                self._inflight -= len(view)
                self._lost(entry[1], e)
                continue
            self._inflight -= n
            entry[0] = view = view[n:]
            if view:
                return
            self._waiting.popleft()
            self.written_lines += entry[1]
        self._unwatch()

    def _unwatch(self) -> None:
        loop, self._watching = self._watching, None
        if loop is not None and not loop.is_closed():
            loop.remove_writer(self._fd)

    def _lost(self, lines: int, e: OSError) -> None:
        with self._lock:
            self.dropped += lines
        log.warning("access log %s: %d lines lost: %s", self.path, lines, e)

    def _write_all(self, data: bytes, lines: int, inflight: bool = True) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
            self.written_lines += lines
        except OSError as e:
            self._lost(lines, e)
        finally:
            if inflight:
                with self._lock:
                    self._inflight -= len(data)

    def close(self) -> None:
        """Flush, write what waits (blocking), wait for the worker thread, close the file.
        Call it on the loop's thread, or after `detach()` there."""
        self.flush()
        self.detach()
        if self._waiting:
            os.set_blocking(self._fd, True)
            while self._waiting:
                view, lines = self._waiting.popleft()
                self._inflight -= len(view)
                self._write_all(bytes(view), lines, inflight=False)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        os.close(self._fd)

    def detach(self) -> None:
        """Stop writing from the loop (what waits stays queued for close())."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._unwatch()
