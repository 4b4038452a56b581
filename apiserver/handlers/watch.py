"""Watch: a chunked stream of ADDED / MODIFIED / DELETED / BOOKMARK / ERROR events.

Semantics as kube-apiserver's: resourceVersion unset or "0" first sends a synthetic
ADDED for every existing object, then changes; "N" sends the changes after N;
sendInitialEvents=true sends the initial ADDEDs and then a BOOKMARK annotated
`k8s.io/initial-events-end`. With a selector, an object that starts or stops
matching arrives as ADDED or DELETED, so a client's view is always its selection. A
revision that was compacted ends in an ERROR event carrying a 410 Expired Status. The
stream ends after timeoutSeconds (or the server's minRequestTimeout, randomised as
Kubernetes does), and when the client falls too far behind (it re-lists).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import OrderedDict
from typing import Any

import orjson
from aiohttp import web

from apiserver import errors
from apiserver.context import Ctx
from apiserver.handlers import reads
from apiserver.registry import conversion, keys
from apiserver.storage.interface import CompactedError, Event, KeyValue, WatchDroppedError

Obj = dict[str, Any]
MIN_REQUEST_TIMEOUT = 1800
BOOKMARK_INTERVAL = 60.0


def _timeout(ctx: Ctx) -> float:
    raw = ctx.params.get("timeoutSeconds")
    seconds = 0.0
    if raw:
        try:
            seconds = max(float(raw), 0.0)
        except ValueError:
            raise errors.bad_request(f"invalid timeoutSeconds: {raw}") from None
    # 0 (or unset) means the server's own limit, randomised as Kubernetes does.
    return seconds or MIN_REQUEST_TIMEOUT * (1 + random.random())


class _Recent:
    """The last few values computed per stored revision, for all watchers at once.

    Every watcher of a resource gets the same storage events, each in its own task, one
    shortly after another: the first decodes the stored JSON (and, for a plain stream,
    encodes the frame) and the others reuse it. Entries are found by the identity of the
    broadcast KeyValue (hashing a frozen dataclass costs more than the lookup saves)
    and keep it, so an id cannot be reused while its entry exists. Values are shared:
    never change one."""

    def __init__(self, size: int) -> None:
        self.size = size
        # OrderedDict: dropping the oldest is O(1), unlike del d[next(iter(d))] on a
        # dict that keeps deleting from its front (measured 2x slower).
        self.items: OrderedDict[Any, Any] = OrderedDict()

    def get(self, kv: KeyValue, variant: str = "") -> Any:
        entry = self.items.get((id(kv), variant))
        return entry[1] if entry is not None and entry[0] is kv else None

    def put(self, kv: KeyValue, value: Any, variant: str = "") -> Any:
        if len(self.items) >= self.size:
            self.items.popitem(last=False)  # the oldest
        self.items[(id(kv), variant)] = (kv, value)
        return value


_OBJECTS = _Recent(512)
_FRAMES = _Recent(512)


def _decoded(kv: KeyValue) -> Obj:
    """The stored object of `kv`, decoded once for every watcher (read-only)."""
    obj = _OBJECTS.get(kv)
    return obj if obj is not None else _OBJECTS.put(kv, orjson.loads(kv.value))


class WatchStream:
    def __init__(self, ctx: Ctx, response: web.StreamResponse, shape: reads.Shape) -> None:
        self.ctx = ctx
        self.response = response
        self.shape = shape
        self.match = reads.matcher(ctx)
        self.bookmarks = ctx.params.get("allowWatchBookmarks") in ("true", "1")
        self.revision = 0
        self._headers_sent = False

    def _convert(self, obj: Obj) -> Obj:
        return conversion.from_storage(self.ctx.info, obj, self.ctx.version)

    def _plain(self) -> bool:
        """Whether this stream's frames are the stored objects as they are (no version
        conversion, no Table or metadata-only view): then they are shared by watchers."""
        return not (self.shape.table or self.shape.partial
                    or conversion.needs_conversion(self.ctx.info, self.ctx.version))

    def _frame(self, event_type: str, obj: Obj) -> bytes:
        if event_type not in ("BOOKMARK", "ERROR"):
            obj = self._convert(obj)
            if self.shape.table:
                obj = reads.as_table(self.ctx, [obj], resource_version=obj["metadata"].get("resourceVersion", ""))
                if self._headers_sent:
                    obj["columnDefinitions"] = None  # as Kubernetes: headers with the first event only
                self._headers_sent = True
            elif self.shape.partial:
                obj = reads.partial(obj)
        return orjson.dumps({"type": event_type, "object": obj}) + b"\n"

    async def send(self, event_type: str, obj: Obj) -> None:
        await self.response.write(self._frame(event_type, obj))

    async def send_change(self, event: Event, event_type: str, obj: Obj) -> None:
        """Send a translated storage event; a plain stream's frame is encoded once for
        every watcher of the event."""
        if not self._plain():
            await self.send(event_type, obj)
            return
        frame = _FRAMES.get(event.kv, event_type)
        if frame is None:
            frame = _FRAMES.put(event.kv, self._frame(event_type, obj), event_type)
        await self.response.write(frame)

    async def bookmark(self, initial_end: bool = False) -> None:
        meta: Obj = {"resourceVersion": str(self.revision)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        await self.send("BOOKMARK", {"kind": self.ctx.info.kind, "apiVersion": self.ctx.api_version, "metadata": meta})

    def _matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        return self.match is None or self.match(obj)

    def translate(self, event: Event) -> tuple[str, Obj] | None:
        """Storage event -> (watch event type, object), seen through the selector."""
        new = _decoded(event.kv)
        if event.type == "DELETE":
            # The decoded object is shared by watchers: change a copy.
            new = {**new, "metadata": {**new["metadata"], "resourceVersion": str(event.revision)}}
            return ("DELETED", new) if self._matches(new) else None
        old = _decoded(event.prev) if event.prev is not None else None
        now_in, was_in = self._matches(new), self._matches(old) if old is not None else False
        if now_in and was_in:
            return "MODIFIED", new
        if now_in:
            return "ADDED", new
        if was_in:
            return "DELETED", new
        return None


async def serve_watch(ctx: Ctx) -> web.StreamResponse:
    shape = reads.Shape(ctx.request.headers.get("Accept", ""))
    timeout = _timeout(ctx)
    rv = ctx.params.get("resourceVersion", "")
    send_initial = ctx.params.get("sendInitialEvents") in ("true", "1")
    if send_initial and ctx.params.get("allowWatchBookmarks") not in ("true", "1"):
        raise errors.invalid_object("ListOptions", "meta.k8s.io", "", [
            errors.forbidden("allowWatchBookmarks", "allowWatchBookmarks must be set to true when sendInitialEvents is true")])
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"})
    response.enable_chunked_encoding()
    stream = WatchStream(ctx, response, shape)
    namespace = ctx.namespace if ctx.info.namespaced else None
    prefix = keys.list_prefix(ctx.info.storage_resource, namespace or None)
    initial: list[Obj] = []
    if not rv or rv == "0" or send_initial:
        page = await ctx.server.store.list(ctx.info, namespace or None, match=stream.match)
        initial, stream.revision = page.items, page.revision
    else:
        try:
            stream.revision = int(rv)
        except ValueError:
            raise errors.bad_request(f"invalid resource version: {rv}") from None
    try:
        watcher = ctx.server.storage.watch(prefix, revision=stream.revision)
    except CompactedError as exc:
        watcher = None
        compacted: CompactedError | None = exc
    else:
        compacted = None
    await response.prepare(ctx.request)
    if compacted is not None or watcher is None:
        await _send_expired(stream, compacted)
        return response
    try:
        for obj in initial:
            await stream.send("ADDED", obj)
        if send_initial:
            await stream.bookmark(initial_end=True)
        await asyncio.wait_for(_pump(stream, watcher), timeout=timeout)
    except (TimeoutError, ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watcher.close()
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await response.write_eof()
    return response


async def _send_expired(stream: WatchStream, exc: CompactedError | None) -> None:
    message = f"too old resource version: {stream.revision} ({exc.compacted if exc else 0})"
    await stream.send("ERROR", errors.expired(message).to_status())


async def _pump(stream: WatchStream, watcher: Any) -> None:
    """Forward events until the stream ends. With bookmarks on, a BOOKMARK goes out
    whenever nothing was sent for BOOKMARK_INTERVAL, also while events arrive that the
    selector filters out, so the client's resourceVersion keeps up with the store.
    Waiting uses asyncio.timeout, not a task per event: the storage watcher's next()
    loses nothing when a wait is cancelled."""
    iterator = watcher.__aiter__()
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    while True:
        try:
            if stream.bookmarks:
                async with asyncio.timeout(max(BOOKMARK_INTERVAL - (loop.time() - last_sent), 0.0)):
                    event = await iterator.__anext__()
            else:
                event = await iterator.__anext__()
        except TimeoutError:
            await stream.bookmark()
            last_sent = loop.time()
            continue
        except (StopAsyncIteration, WatchDroppedError):
            return  # the client re-lists, as after a dropped watch-cache watcher
        except CompactedError as exc:
            await _send_expired(stream, exc)
            return
        stream.revision = event.revision
        translated = stream.translate(event)
        if translated is not None:
            await stream.send_change(event, *translated)
            last_sent = loop.time()
        elif stream.bookmarks and loop.time() - last_sent >= BOOKMARK_INTERVAL:
            await stream.bookmark()
            last_sent = loop.time()
