"""`GET /containerLogs/{namespace}/{pod}/{container}`: a container's log, as the kubelet
serves it to the API server for `kubectl logs`.

The kubelet picks which attempt's log to read from the pod status it computed, with the
real kubelet's rules and messages (validateContainerLogStatus): the running container,
else the last terminated one; `previous=true` the one before; a container still waiting
answers 400 `container "c" in pod "p" is waiting to start: <reason>`.

Query options as PodLogOptions: follow, previous, timestamps, tailLines, limitBytes,
sinceSeconds, sinceTime. The CRI-format file is rendered by `kubelet.runtime.logs.read_log`;
a followed log streams (chunked, written as it grows) until the container exits (the
runtime's `wait`) or the client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from kubelet.runtime.logs import LogEntry, parse_line, parse_timestamp, read_log
from kubelet.server import PodProvider

POLL_INTERVAL = 0.05  # how often an attached container's log is checked for growth
DISCONNECT_CHECK = 1.0  # seconds between checks that a followed log's client is still there


def parse_time(raw: str) -> datetime:
    """An RFC 3339 time (sinceTime)."""
    ns = parse_timestamp(raw.strip().encode())
    return datetime.fromtimestamp(ns // 1000 / 1e6, UTC)


async def read_entries(path: Path, *, from_end: bool = True,
                       stop: asyncio.Event | None = None) -> AsyncIterator[LogEntry]:
    """The entries (with their stream) appended to a CRI log file from now on, until
    `stop` is set and what was written before is drained (attach uses this: it must
    tell stdout from stderr, which `read_log`'s rendered output no longer does)."""
    offset = path.stat().st_size if from_end and path.exists() else 0
    pending = b""
    while True:
        chunk = b""
        with contextlib.suppress(FileNotFoundError):
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read(1 << 20)
        offset += len(chunk)
        if chunk:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                with contextlib.suppress(ValueError):
                    yield parse_line(line)
            continue
        if stop is not None and stop.is_set():
            # the container is gone: one last look for what it wrote before exiting
            if not await _grew(path, offset):
                return
            continue
        await _sleep_or_stop(stop)


async def _grew(path: Path, offset: int) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return path.stat().st_size > offset
    return False


async def _sleep_or_stop(stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(POLL_INTERVAL)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), POLL_INTERVAL)


# ---- which container attempt (the kubelet's validateContainerLogStatus) ----

class LogRequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def container_status(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == name:
                return cs
    return None


def spec_has_container(pod: dict[str, Any], name: str) -> bool:
    spec = pod.get("spec") or {}
    return any(c.get("name") == name for key in ("initContainers", "containers", "ephemeralContainers")
               for c in spec.get(key) or [])


def log_container_id(pod: dict[str, Any], container: str, previous: bool) -> tuple[str, bool]:
    """(containerID whose log to read, whether it is running). Raises LogRequestError
    with the kubelet's messages."""
    pod_name = pod["metadata"]["name"]
    cs = container_status(pod, container)
    if cs is None:
        raise LogRequestError(400, f'container "{container}" in pod "{pod_name}" is not available')
    state, last = cs.get("state") or {}, (cs.get("lastState") or {}).get("terminated")
    running, terminated, waiting = state.get("running"), state.get("terminated"), state.get("waiting")
    if previous:
        if not last or not last.get("containerID"):
            raise LogRequestError(400, f'previous terminated container "{container}" in pod "{pod_name}" not found')
        return last["containerID"], False
    if running is not None:
        return cs.get("containerID", ""), True
    if terminated is not None:
        if terminated.get("containerID"):
            return terminated["containerID"], False
        if last and last.get("containerID"):
            return last["containerID"], False
        raise LogRequestError(400, f'container "{container}" in pod "{pod_name}" is terminated')
    if last is not None:
        if not last.get("containerID"):
            raise LogRequestError(400, f'container "{container}" in pod "{pod_name}" is terminated')
        return last["containerID"], False
    if waiting is not None:
        reason = waiting.get("reason", "")
        detail = {"ErrImagePull": "image can't be pulled",
                  "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
        raise LogRequestError(400, f'container "{container}" in pod "{pod_name}" is waiting to start: {detail}')
    raise LogRequestError(400, f'container "{container}" in pod "{pod_name}" is waiting to start - no logs yet')


# ---- query options (PodLogOptions) ----

@dataclass
class LogOptions:
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since: datetime | None = None


def _bool(query: Any, key: str) -> bool:
    value = query.get(key, "false").lower()
    if value in ("true", "1", "t"):
        return True
    if value in ("false", "0", "f", ""):
        return False
    raise LogRequestError(400, f'invalid value "{value}" for {key}: must be true or false')


def _int(query: Any, key: str) -> int | None:
    if key not in query:
        return None
    try:
        return int(query[key])
    except ValueError:
        raise LogRequestError(400, f'invalid value "{query[key]}" for {key}: must be an integer') from None


def parse_options(query: Any, now: datetime | None = None) -> LogOptions:
    opts = LogOptions(follow=_bool(query, "follow"), previous=_bool(query, "previous"),
                      timestamps=_bool(query, "timestamps"), tail_lines=_int(query, "tailLines"),
                      limit_bytes=_int(query, "limitBytes"))
    since_seconds = _int(query, "sinceSeconds")
    if since_seconds is not None and "sinceTime" in query:
        raise LogRequestError(422, "at most one of `sinceTime` or `sinceSeconds` may be specified")
    if opts.tail_lines is not None and opts.tail_lines < 0:
        raise LogRequestError(422, "tailLines: Invalid value: must be greater than or equal to 0")
    if opts.limit_bytes is not None and opts.limit_bytes < 1:
        raise LogRequestError(422, "limitBytes: Invalid value: must be greater than 0")
    if since_seconds is not None:
        if since_seconds < 1:
            raise LogRequestError(422, "sinceSeconds: Invalid value: must be greater than 0")
        opts.since = (now or datetime.now(UTC)) - timedelta(seconds=since_seconds)
    elif "sinceTime" in query:
        try:
            opts.since = parse_time(query["sinceTime"])
        except ValueError:
            raise LogRequestError(400, f'invalid value "{query["sinceTime"]}" for sinceTime') from None
    return opts


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message)


async def container_logs(request: web.Request) -> web.StreamResponse:
    provider: PodProvider = request.app["pods"]
    namespace, pod_name = request.match_info["namespace"], request.match_info["pod"]
    container = request.match_info["container"]
    pod = provider.find_pod(namespace, pod_name)
    if pod is None:
        return _text(404, f'pod "{pod_name}" does not exist')
    if not spec_has_container(pod, container):
        return _text(404, f'container "{container}" not found in pod "{pod_name}"')
    try:
        opts = parse_options(request.query)
        container_id, running = log_container_id(pod, container, opts.previous)
    except LogRequestError as exc:
        return _text(exc.status, exc.message)
    path = provider.log_path(pod, container, container_id)
    if path is None:
        return _text(400, f'container "{container}" in pod "{pod_name}" is not available')
    stop = asyncio.Event()
    watcher = _watch_exit(provider, container_id, stop) if opts.follow and running else None
    if not running:
        stop.set()
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    async def pump() -> None:
        while opts.follow and not path.exists() and not stop.is_set():  # nothing written yet
            await _sleep_or_stop(stop)
        if path.exists():
            async for data in read_log(path, follow=opts.follow, tail_lines=opts.tail_lines, since=opts.since,
                                       timestamps=opts.timestamps, limit_bytes=opts.limit_bytes, stop=stop):
                await response.write(data)
        await response.write_eof()

    streaming = asyncio.create_task(pump())
    try:
        # A followed log may stay quiet for long: notice a client that went away meanwhile.
        while not (await asyncio.wait([streaming], timeout=DISCONNECT_CHECK))[0]:
            if request.transport is None or request.transport.is_closing():
                break
    finally:
        streaming.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
            await streaming
        if watcher is not None:
            watcher.cancel()
    return response


def _watch_exit(provider: PodProvider, container_id: str, stop: asyncio.Event) -> asyncio.Task[None]:
    async def wait() -> None:
        try:
            await provider.runtime.wait(container_id)
        except Exception:  # noqa: BLE001 - an unknown container has nothing more to write
            pass
        stop.set()

    return asyncio.create_task(wait(), name=f"log-follow-{container_id}")
