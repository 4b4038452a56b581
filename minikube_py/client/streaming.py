"""Reading a watch: newline-delimited JSON events from a chunked HTTP response.

Each line of a watch response is one `{"type": ..., "object": ...}` event. aiohttp's
`readline()` refuses lines over its buffer limit (128 KiB by default), and objects can
be larger than that (a ConfigMap, a CRD, a Pod with many containers), so lines are
split out of raw chunks with our own buffer, which grows as a line needs.

`WatchStream` is both an async iterator of `(type, object)` and an async context
manager that releases the connection. An `ERROR` event (typically 410 Expired: the
requested resourceVersion was compacted) is raised as `ApiError`, so consumers treat a
failed watch like any failed call. The stream remembers the newest resourceVersion it
saw (objects and BOOKMARKs), which is where a re-watch resumes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from minikube_py.client.errors import ApiError

Obj = dict[str, Any]


class LineReader:
    """Splits a byte stream into lines, with no limit on a line's length."""

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._content = content
        self._buffer = bytearray()
        self._start = 0
        self._eof = False

    async def next_line(self) -> bytes | None:
        """The next non-empty line (without its newline), or None at end of stream."""
        while True:
            newline = self._buffer.find(b"\n", self._start)
            if newline >= 0:
                line = bytes(self._buffer[self._start:newline])
                self._start = newline + 1
                if line.strip():
                    return line
                continue
            del self._buffer[:self._start]  # keep only the unfinished line
            self._start = 0
            if self._eof:
                rest, self._buffer = bytes(self._buffer), bytearray()
                return rest if rest.strip() else None
            chunk = await self._content.readany()
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True


class WatchStream:
    """One watch request's events; opened on first iteration, closed at the end."""

    def __init__(self, opener: Callable[[], Awaitable[aiohttp.ClientResponse]]) -> None:
        self._opener = opener
        self._response: aiohttp.ClientResponse | None = None
        self._reader: LineReader | None = None
        self._closed = False
        self.resource_version: str | None = None

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> tuple[str, Obj]:
        if self._closed:
            raise StopAsyncIteration
        try:
            if self._reader is None:
                self._response = await self._opener()
                self._reader = LineReader(self._response.content)
            line = await self._reader.next_line()
        except BaseException:
            self.close()
            raise
        if line is None:
            self.close()
            raise StopAsyncIteration
        event = orjson.loads(line)
        event_type, obj = event.get("type", ""), event.get("object") or {}
        if event_type == "ERROR":
            self.close()
            raise ApiError.from_response(int(obj.get("code") or 500), obj)
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = rv
        return event_type, obj

    def close(self) -> None:
        """Drop the connection (a half-read stream cannot go back to the pool)."""
        self._closed = True
        if self._response is not None:
            self._response.close()
            self._response = None

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> WatchStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()
