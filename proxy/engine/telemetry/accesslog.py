"""Envoy's access log: command-operator formats (text and JSON) and a non-blocking writer.

A format is compiled once into a list of literals and getters (one small function per
`%OPERATOR%`), so logging a request is one pass over that list. Values follow Envoy:
a missing value is `-` in text and `null` in JSON, where numbers stay numbers. Unknown
operators are rejected when the format is compiled, naming the operator.

The writer appends lines to a buffer and writes it out when it holds `buffer_bytes` or
`flush_interval` passed, in a worker thread, so a slow disk or a full stdout pipe never
blocks the event loop; beyond `max_pending_bytes` lines are dropped and counted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

log = logging.getLogger("proxy.engine.telemetry.accesslog")

# Envoy's default format (text), verbatim in meaning: the request line, code, flags, sizes,
# durations, then quoted headers and the upstream host.
ENVOY_DEFAULT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n'
)

# The fields of Istio's JSON access log (meshConfig accessLogEncoding: JSON).
ISTIO_JSON_FORMAT: dict[str, str] = {
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
    "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "route_name": "%ROUTE_NAME%",
}


class AccessLogFormatError(ValueError):
    """A format that cannot be compiled; the message names the operator."""


@dataclass(slots=True)
class LogRecord:
    """What one request (or TCP connection) leaves for the access log.

    `request_headers`/`response_headers` map lower-case names to values (any Mapping with
    `.get`; `telemetry.headers.HeaderView` wraps the engine's byte-pair lists without
    copying); the pseudo-headers `:method`, `:path`, `:authority`, `:scheme` come from the
    fields below."""

    start_time: float  # epoch seconds
    method: str = ""
    path: str = ""
    authority: str = ""
    scheme: str = "http"
    protocol: str = "HTTP/1.1"
    response_code: int = 0
    response_flags: str = "-"
    response_code_details: str = ""
    connection_termination_details: str = ""
    bytes_received: int = 0
    bytes_sent: int = 0
    duration_ms: int | None = None
    request_headers: Mapping[str, str] = field(default_factory=dict)
    response_headers: Mapping[str, str] = field(default_factory=dict)
    upstream_host: str = ""
    upstream_cluster: str = ""
    upstream_local_address: str = ""
    upstream_transport_failure_reason: str = ""
    downstream_remote_address: str = ""
    downstream_local_address: str = ""
    downstream_peer_uri_san: str = ""
    downstream_tls_version: str = ""
    requested_server_name: str = ""
    route_name: str = ""
    connection_id: int = 0


_HOSTNAME = socket.gethostname()

# Operator -> a Python expression over the record `r`.
_SIMPLE: dict[str, str] = {
    "PROTOCOL": "r.protocol",
    "RESPONSE_CODE": "r.response_code",
    "RESPONSE_FLAGS": "r.response_flags",
    "RESPONSE_CODE_DETAILS": "r.response_code_details",
    "CONNECTION_TERMINATION_DETAILS": "r.connection_termination_details",
    "BYTES_RECEIVED": "r.bytes_received",
    "BYTES_SENT": "r.bytes_sent",
    "DURATION": "r.duration_ms",
    "UPSTREAM_HOST": "r.upstream_host",
    "UPSTREAM_CLUSTER": "r.upstream_cluster",
    "UPSTREAM_LOCAL_ADDRESS": "r.upstream_local_address",
    "UPSTREAM_TRANSPORT_FAILURE_REASON": "r.upstream_transport_failure_reason",
    "DOWNSTREAM_REMOTE_ADDRESS": "r.downstream_remote_address",
    "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": "_without_port(r.downstream_remote_address)",
    "DOWNSTREAM_LOCAL_ADDRESS": "r.downstream_local_address",
    "DOWNSTREAM_PEER_URI_SAN": "r.downstream_peer_uri_san",
    "DOWNSTREAM_TLS_VERSION": "r.downstream_tls_version",
    "REQUESTED_SERVER_NAME": "r.requested_server_name",
    "ROUTE_NAME": "r.route_name",
    "CONNECTION_ID": "r.connection_id",
    "HOSTNAME": "_HOSTNAME",
}
_PSEUDO = {":method": "r.method", ":path": "r.path", ":authority": "r.authority", ":scheme": "r.scheme"}
_OPERATOR = re.compile(r"%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::(\d+))?%")


def _without_port(addr: str) -> str:
    host, sep, port = addr.rpartition(":")
    return host.strip("[]") if sep and port.isdigit() else addr


def _text(v: Any, missing: str = "-") -> str:
    """A value as text: `-` for missing (`omit_empty_values`: nothing)."""
    return v if v.__class__ is str and v else missing if v is None or v == "" else str(v)


def _json(v: Any) -> Any:
    """A value as JSON: null for missing."""
    return None if v == "" else v


def _truncate(v: Any, n: int) -> Any:
    return v[:n] if isinstance(v, str) else v


def _header_expr(which: str, arg: str) -> str:
    names = [n.strip().lower() for n in arg.split("?")]
    if not 1 <= len(names) <= 2 or not all(names):
        raise AccessLogFormatError(f"%{which}({arg})%: expected HEADER or HEADER?ALTERNATIVE")
    attr = "r.request_headers" if which == "REQ" else "r.response_headers"
    exprs = [_PSEUDO[n] if which == "REQ" and n in _PSEUDO else f"{attr}.get({n!r})" for n in names]
    return exprs[0] if len(exprs) == 1 else f"({exprs[0]} or {exprs[1]})"


_DEFAULT_TIME = "%Y-%m-%dT%H:%M:%E3SZ"  # Envoy's default START_TIME: UTC, milliseconds


class _StartTime:
    """%START_TIME% / %START_TIME(fmt)%: strftime plus Envoy's %<n>f and %E3S (ms); the
    second-resolution prefix is cached, since many requests share a second."""

    def __init__(self, fmt: str | None) -> None:
        self.fmt = fmt or _DEFAULT_TIME
        self._second = -1
        self._prefix = self._last = ""
        self._ms = -1
        self._default = self.fmt == _DEFAULT_TIME
        self._parts: tuple[str, ...] = ()

    def __call__(self, r: LogRecord) -> str:
        us = round(r.start_time * 1_000_000)  # integer µs: no 0.122999 for .123
        sec = us // 1_000_000
        if self._default:  # the common case, kept cheap: cached per millisecond and per second
            ms = us // 1000
            if ms == self._ms:
                return self._last
            if sec != self._second:
                self._prefix = datetime.datetime.fromtimestamp(sec, datetime.UTC).strftime("%Y-%m-%dT%H:%M:")
                self._second = sec
            self._ms = ms
            self._last = f"{self._prefix}{sec % 60:02d}.{ms % 1000:03d}Z"
            return self._last
        if sec != self._second:
            dt = datetime.datetime.fromtimestamp(sec, datetime.UTC)
            pieces = re.split(r"(%E3S|%\d?f|%s)", self.fmt)
            self._parts = tuple(p if p in ("%E3S", "%s") or re.fullmatch(r"%\d?f", p) else dt.strftime(p)
                                for p in pieces)
            self._second = sec
        frac = f"{us % 1_000_000:06d}000"  # nine digits, the last three always 0
        out = []
        for p in self._parts:
            if p == "%E3S":
                out.append(f"{sec % 60:02d}.{frac[:3]}")
            elif p == "%s":
                out.append(str(sec))
            elif p.startswith("%") and p.endswith("f"):
                out.append(frac[: int(p[1:-1] or 9)])
            else:
                out.append(p)
        return "".join(out)


def operator_expr(op: str, arg: str | None, length: str | None, namespace: dict[str, Any]) -> str:
    """The expression for one command operator, e.g. ("REQ", "USER-AGENT", "10"); helper
    objects it needs are added to `namespace`."""
    if op in ("REQ", "RESP"):
        if arg is None:
            raise AccessLogFormatError(f"%{op}%: needs a header name, %{op}(NAME)%")
        expr = _header_expr(op, arg)
    elif op == "START_TIME":
        name = f"_start_time{len(namespace)}"
        namespace[name] = _StartTime(arg)
        expr = f"{name}(r)"
    elif op in _SIMPLE and arg is None:
        expr = _SIMPLE[op]
    else:
        raise AccessLogFormatError(f"unknown or malformed access log command operator %{op}%")
    return f"_truncate({expr}, {int(length)})" if length is not None else expr


def _parts(fmt: str, namespace: dict[str, Any]) -> list[tuple[bool, str]]:
    """[(is_operator, literal text or expression)]."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _OPERATOR.finditer(fmt):
        if m.start() > pos:
            parts.append((False, fmt[pos : m.start()]))
        parts.append((True, operator_expr(m.group(1), m.group(2), m.group(3), namespace)))
        pos = m.end()
    if pos < len(fmt):
        parts.append((False, fmt[pos:]))
    return parts


_INTS = ("r.response_code", "r.bytes_received", "r.bytes_sent", "r.connection_id")


def _text_item(expr: str, missing: str) -> str:
    """Text of one operator, inlined by type: ints never miss, strings miss when empty."""
    if expr in _INTS:
        return f"str({expr})"
    if expr == "r.duration_ms" or expr.startswith("_truncate("):
        return f"_text({expr}, {missing!r})"
    return f"({expr} or {missing!r})"  # strings and header lookups (None when absent)


def _json_item(expr: str) -> str:
    """JSON value of one operator, inlined by type: ints as numbers, missing as null."""
    if expr in _INTS or expr == "r.duration_ms":
        return expr
    if expr.startswith("_truncate("):
        return f"_json({expr})"
    return f"({expr} or None)"


def _text_expr(parts: list[tuple[bool, str]], missing: str = "-") -> str:
    items = [_text_item(e, missing) if is_op else repr(e) for is_op, e in parts]
    return '"".join((' + ", ".join(items) + ",))" if items else "''"


def _function(body: str, namespace: dict[str, Any]) -> Callable[[LogRecord], Any]:
    """Compile `lambda r: <body>`: the format becomes one Python function, so a line is one
    call, with attribute reads inline rather than a getter call per operator."""
    namespace.update(_HOSTNAME=_HOSTNAME, _text=_text, _json=_json, _truncate=_truncate,
                     _without_port=_without_port)
    return eval(compile(f"lambda r: {body}", "<access log format>", "eval"), namespace)  # noqa: S307


class TextFormatter:
    """Envoy's `text_format` (default: ENVOY_DEFAULT_FORMAT); `-` for missing values, or
    nothing with `omit_empty_values`."""

    def __init__(self, fmt: str = ENVOY_DEFAULT_FORMAT, *, omit_empty_values: bool = False) -> None:
        namespace: dict[str, Any] = {}
        body = _text_expr(_parts(fmt, namespace), "" if omit_empty_values else "-")
        self.format: Callable[[LogRecord], str] = _function(body, namespace)


class JsonFormatter:
    """Envoy's `json_format`: a flat dict of key -> format string; a value that is a single
    operator keeps its type (numbers stay numbers; missing is null); one line each."""

    def __init__(self, fmt: Mapping[str, str] = ISTIO_JSON_FORMAT, *, omit_empty_values: bool = False) -> None:
        self.omit_empty_values = omit_empty_values
        namespace: dict[str, Any] = {}
        items = []
        for key, value in fmt.items():
            if not isinstance(value, str):
                raise AccessLogFormatError(f"json_format.{key}: only string values are supported")
            parts = _parts(value, namespace)
            expr = _json_item(parts[0][1]) if len(parts) == 1 and parts[0][0] else _text_expr(parts)
            items.append(f"{key!r}: {expr}")
        self._doc = _function("{" + ", ".join(items) + "}", namespace)

    def format(self, r: LogRecord) -> str:
        doc = self._doc(r)
        if self.omit_empty_values:
            doc = {k: v for k, v in doc.items() if v is not None}
        return orjson.dumps(doc).decode() + "\n"


class AccessLogWriter:
    """Buffered lines to a file (appended) or `/dev/stdout`, written by a worker thread."""

    def __init__(self, path: str, *, flush_interval: float = 1.0, buffer_bytes: int = 64 * 1024,
                 max_pending_bytes: int = 8 * 1024 * 1024) -> None:
        self.path = path
        self.flush_interval, self.buffer_bytes, self.max_pending_bytes = flush_interval, buffer_bytes, max_pending_bytes
        self.dropped = 0
        self.written_lines = 0
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._buf: list[str] = []
        self._size = 0
        self._inflight = 0  # bytes handed to the thread, not yet written
        self._lock = threading.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="accesslog")
        self._last: concurrent.futures.Future[None] | None = None

    def write(self, line: str) -> None:
        if self._size + self._inflight > self.max_pending_bytes:
            with self._lock:
                self.dropped += 1
            return
        self._buf.append(line)
        self._size += len(line)
        if self._size >= self.buffer_bytes:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.flush_interval, self.flush)
            except RuntimeError:  # no loop (a script, a test): write through
                self.flush()

    def flush(self) -> None:
        """Hand the buffer to the writer thread (returns at once)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buf:
            return
        data = "".join(self._buf).encode()
        lines = len(self._buf)
        self._buf, self._size = [], 0
        with self._lock:
            self._inflight += len(data)
        self._last = self._pool.submit(self._write_all, data, lines)

    def _write_all(self, data: bytes, lines: int) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
            self.written_lines += lines
        except OSError as e:
            with self._lock:
                self.dropped += lines
            log.warning("access log %s: %d lines lost: %s", self.path, lines, e)
        finally:
            with self._lock:
                self._inflight -= len(data)

    def close(self) -> None:
        """Flush, wait for the writer thread, close the file."""
        self.flush()
        self._pool.shutdown(wait=True)
        os.close(self._fd)


class AccessLog:
    """A formatter and a writer: `log(record)` formats now and writes later."""

    def __init__(self, formatter: TextFormatter | JsonFormatter, writer: AccessLogWriter) -> None:
        self.formatter, self.writer = formatter, writer

    def log(self, record: LogRecord) -> None:
        self.writer.write(self.formatter.format(record))


def from_config(cfg: Any, where: str, *, writers: dict[str, AccessLogWriter] | None = None) -> AccessLog:
    """An AccessLog from the bootstrap model's `access_log[]` entry (proxy.engine.config.
    listener.AccessLog: file, stdout or stderr logger). `writers` shares one writer per
    path between loggers; `where` is the entry's path, used in errors."""
    typed = cfg.typed_config
    name = type(typed).__name__
    path = {"StdoutAccessLog": "/dev/stdout", "StderrAccessLog": "/dev/stderr"}.get(name) or typed.path
    fmt = typed.log_format
    where = f"{where}.typed_config"
    try:
        if fmt is None and getattr(typed, "json_format", None) is not None:
            formatter: TextFormatter | JsonFormatter = JsonFormatter(typed.json_format)
        elif fmt is None:
            formatter = TextFormatter(getattr(typed, "format", None) or ENVOY_DEFAULT_FORMAT)
        elif fmt.json_format is not None:
            formatter = JsonFormatter(fmt.json_format, omit_empty_values=fmt.omit_empty_values)
        else:
            text = fmt.text_format
            src = fmt.text_format_source
            if src is not None:
                text = src.inline_string if src.inline_string is not None else (
                    open(src.filename).read() if src.filename is not None else None)
                if text is None:
                    raise AccessLogFormatError("text_format_source: only inline_string or filename")
            formatter = TextFormatter(text or ENVOY_DEFAULT_FORMAT, omit_empty_values=fmt.omit_empty_values)
    except (AccessLogFormatError, OSError) as e:
        raise AccessLogFormatError(f"{where}.log_format: {e}") from e
    shared = writers if writers is not None else {}
    writer = shared.get(path)
    if writer is None:
        try:
            writer = shared[path] = AccessLogWriter(path)
        except OSError as e:
            raise AccessLogFormatError(f"{where}.path: cannot open {path}: {e}") from e
    return AccessLog(formatter, writer)
