"""Envoy's access log: command-operator formats (text and JSON) and a non-blocking writer.

A format is compiled once into one Python function whose body reads each operator's
value inline (no call per `%OPERATOR%`). What it reads from is a `Fields`: a LogRecord
by default; proxy.engine.observe compiles the same formats over the finished flow, so an
HTTP request's line is made without building a LogRecord. Values follow Envoy: a missing
value is `-` in text and `null` in JSON, where numbers stay numbers. Unknown operators
are rejected when the format is compiled, naming the operator.

The writer appends lines to a buffer and writes it out when it holds `buffer_bytes` or
`flush_interval` passed, from the event loop, without ever waiting on a full pipe or a
slow disk (see AccessLogWriter); beyond `max_pending_bytes` lines are dropped and counted.
"""

from __future__ import annotations

import datetime
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.engine.telemetry.logwriter import AccessLogWriter

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

# Operator -> (LogRecord field, kind). Kinds decide how a value is inlined: "int" never
# misses, "opt" (an int or None) and "str" (missing when empty) do.
_SIMPLE: dict[str, tuple[str, str]] = {
    "PROTOCOL": ("protocol", "str"),
    "RESPONSE_CODE": ("response_code", "int"),
    "RESPONSE_FLAGS": ("response_flags", "str"),
    "RESPONSE_CODE_DETAILS": ("response_code_details", "str"),
    "CONNECTION_TERMINATION_DETAILS": ("connection_termination_details", "str"),
    "BYTES_RECEIVED": ("bytes_received", "int"),
    "BYTES_SENT": ("bytes_sent", "int"),
    "DURATION": ("duration_ms", "opt"),
    "UPSTREAM_HOST": ("upstream_host", "str"),
    "UPSTREAM_CLUSTER": ("upstream_cluster", "str"),
    "UPSTREAM_LOCAL_ADDRESS": ("upstream_local_address", "str"),
    "UPSTREAM_TRANSPORT_FAILURE_REASON": ("upstream_transport_failure_reason", "str"),
    "DOWNSTREAM_REMOTE_ADDRESS": ("downstream_remote_address", "str"),
    "DOWNSTREAM_LOCAL_ADDRESS": ("downstream_local_address", "str"),
    "DOWNSTREAM_PEER_URI_SAN": ("downstream_peer_uri_san", "str"),
    "DOWNSTREAM_TLS_VERSION": ("downstream_tls_version", "str"),
    "REQUESTED_SERVER_NAME": ("requested_server_name", "str"),
    "ROUTE_NAME": ("route_name", "str"),
    "CONNECTION_ID": ("connection_id", "int"),
}
_PSEUDO = {":method": "method", ":path": "path", ":authority": "authority", ":scheme": "scheme"}
_OPERATOR = re.compile(r"%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::(\d+))?%")


class Fields:
    """Where a compiled format reads its values. This one reads a LogRecord `r`; a
    subclass may read the engine's objects directly (proxy.engine.observe does, so a
    request's line is made without building a LogRecord first). `value(field)` is a
    Python expression for a LogRecord field; `header(which, name)` for a header value
    (str, empty or None when absent); `prologue(body)` the statements the function runs
    before its `return` (bindings the body uses)."""

    params = "r"

    def value(self, name: str) -> str:
        return f"r.{name}"

    def start_time(self) -> str:
        """The request's start, epoch seconds (a float)."""
        return "r.start_time"

    def header(self, which: str, name: str) -> str:
        if which == "REQ" and name in _PSEUDO:
            return f"r.{_PSEUDO[name]}"
        return f"r.{'request' if which == 'REQ' else 'response'}_headers.get({name!r})"

    def prologue(self, body: str) -> list[str]:
        return []

    def namespace(self) -> dict[str, Any]:
        """Helpers the expressions above call."""
        return {}


RECORD_FIELDS = Fields()


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


def _header_expr(which: str, arg: str, fields: Fields) -> str:
    names = [n.strip().lower() for n in arg.split("?")]
    if not 1 <= len(names) <= 2 or not all(names):
        raise AccessLogFormatError(f"%{which}({arg})%: expected HEADER or HEADER?ALTERNATIVE")
    exprs = [fields.header(which, n) for n in names]
    return exprs[0] if len(exprs) == 1 else f"({exprs[0]} or {exprs[1]})"


_DEFAULT_TIME = "%Y-%m-%dT%H:%M:%E3SZ"  # Envoy's default START_TIME: UTC, milliseconds


class _StartTime:
    """%START_TIME% / %START_TIME(fmt)% of an epoch time: strftime plus Envoy's %<n>f and
    %E3S (ms); the second-resolution prefix is cached, since many requests share a second,
    and the default format's whole text per millisecond."""

    def __init__(self, fmt: str | None) -> None:
        self.fmt = fmt or _DEFAULT_TIME
        self._second = -1
        self._prefix = self._last = ""
        self._ms = -1
        self._default = self.fmt == _DEFAULT_TIME
        self._parts: tuple[str, ...] = ()

    def __call__(self, t: float) -> str:
        us = round(t * 1_000_000)  # integer µs: no 0.122999 for .123
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


def operator_expr(op: str, arg: str | None, length: str | None, namespace: dict[str, Any],
                  fields: Fields = RECORD_FIELDS) -> tuple[str, str]:
    """(expression, kind) for one command operator, e.g. ("REQ", "USER-AGENT", "10");
    helper objects it needs are added to `namespace`."""
    if op in ("REQ", "RESP"):
        if arg is None:
            raise AccessLogFormatError(f"%{op}%: needs a header name, %{op}(NAME)%")
        expr, kind = _header_expr(op, arg, fields), "str"
    elif op == "START_TIME":
        name = f"_start_time{len(namespace)}"
        namespace[name] = _StartTime(arg)
        expr, kind = f"{name}({fields.start_time()})", "str"
    elif op == "HOSTNAME" and arg is None:
        expr, kind = "_HOSTNAME", "str"
    elif op == "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" and arg is None:
        expr, kind = f"_without_port({fields.value('downstream_remote_address')})", "str"
    elif op in _SIMPLE and arg is None:
        attr, kind = _SIMPLE[op]
        expr = fields.value(attr)
    else:
        raise AccessLogFormatError(f"unknown or malformed access log command operator %{op}%")
    return (f"_truncate({expr}, {int(length)})", "trunc") if length is not None else (expr, kind)


def _parts(fmt: str, namespace: dict[str, Any], fields: Fields) -> list[tuple[str | None, str]]:
    """[(kind of an operator or None for literal text, expression or the text)]."""
    parts: list[tuple[str | None, str]] = []
    pos = 0
    for m in _OPERATOR.finditer(fmt):
        if m.start() > pos:
            parts.append((None, fmt[pos : m.start()]))
        expr, kind = operator_expr(m.group(1), m.group(2), m.group(3), namespace, fields)
        parts.append((kind, expr))
        pos = m.end()
    if pos < len(fmt):
        parts.append((None, fmt[pos:]))
    return parts


def _text_item(kind: str, expr: str, missing: str) -> str:
    """Text of one operator, inlined by kind: ints never miss, strings miss when empty."""
    if kind == "int":
        return f"str({expr})"
    if kind in ("opt", "trunc"):
        return f"_text({expr}, {missing!r})"
    return f"({expr} or {missing!r})"  # strings and header lookups (None or "" when absent)


def _json_item(kind: str, expr: str) -> str:
    """JSON value of one operator, inlined by kind: ints as numbers, missing as null."""
    if kind in ("int", "opt"):
        return expr
    if kind == "trunc":
        return f"_json({expr})"
    return f"({expr} or None)"


def _text_expr(parts: list[tuple[str | None, str]], missing: str = "-") -> str:
    items = [_text_item(k, e, missing) if k is not None else repr(e) for k, e in parts]
    return '"".join((' + ", ".join(items) + ",))" if items else "''"


def _function(body: str, namespace: dict[str, Any], fields: Fields) -> Callable[..., Any]:
    """Compile `def _format(<fields.params>): <prologue>; return <body>`: the format
    becomes one Python function, so a line is one call with its reads inline rather
    than a getter call per operator."""
    namespace.update(fields.namespace())
    namespace.update(_HOSTNAME=_HOSTNAME, _text=_text, _json=_json, _truncate=_truncate,
                     _without_port=_without_port, _dumps=orjson.dumps, _NL=orjson.OPT_APPEND_NEWLINE)
    lines = [f"def _format({fields.params}):", *(f"    {s}" for s in fields.prologue(body)), f"    return {body}"]
    exec(compile("\n".join(lines), "<access log format>", "exec"), namespace)  # noqa: S102
    return namespace["_format"]


class TextFormatter:
    """Envoy's `text_format` (default: ENVOY_DEFAULT_FORMAT); `-` for missing values, or
    nothing with `omit_empty_values`. `format(record)` is the line as str; `compile(fields)`
    a function of other inputs (see Fields) that returns it as bytes."""

    def __init__(self, fmt: str = ENVOY_DEFAULT_FORMAT, *, omit_empty_values: bool = False) -> None:
        self.fmt, self.omit_empty_values = fmt, omit_empty_values
        self.format: Callable[[LogRecord], str] = self._compile(RECORD_FIELDS, as_bytes=False)

    def _compile(self, fields: Fields, *, as_bytes: bool) -> Callable[..., Any]:
        namespace: dict[str, Any] = {}
        body = _text_expr(_parts(self.fmt, namespace, fields), "" if self.omit_empty_values else "-")
        return _function(f"{body}.encode()" if as_bytes else body, namespace, fields)

    def compile(self, fields: Fields = RECORD_FIELDS) -> Callable[..., bytes]:
        return self._compile(fields, as_bytes=True)


class JsonFormatter:
    """Envoy's `json_format`: a flat dict of key -> format string; a value that is a single
    operator keeps its type (numbers stay numbers; missing is null); one line each."""

    def __init__(self, fmt: Mapping[str, str] = ISTIO_JSON_FORMAT, *, omit_empty_values: bool = False) -> None:
        for key, value in fmt.items():
            if not isinstance(value, str):
                raise AccessLogFormatError(f"json_format.{key}: only string values are supported")
        self.fmt, self.omit_empty_values = dict(fmt), omit_empty_values
        self._line = self.compile(RECORD_FIELDS)

    def compile(self, fields: Fields = RECORD_FIELDS) -> Callable[..., bytes]:
        """A function of `fields.params` returning the line as bytes (newline included)."""
        namespace: dict[str, Any] = {}
        items = []
        for key, value in self.fmt.items():
            parts = _parts(value, namespace, fields)
            kind, expr = parts[0]
            expr = _json_item(kind, expr) if len(parts) == 1 and kind is not None else _text_expr(parts)
            items.append(f"{key!r}: {expr}")
        doc = "{" + ", ".join(items) + "}"
        if self.omit_empty_values:
            doc = f"{{k: v for k, v in {doc}.items() if v is not None}}"
        return _function(f"_dumps({doc}, option=_NL)", namespace, fields)

    def format(self, r: LogRecord) -> str:
        return self._line(r).decode()


class AccessLog:
    """A formatter and a writer: `log(record)` formats now and writes later."""

    def __init__(self, formatter: TextFormatter | JsonFormatter, writer: AccessLogWriter) -> None:
        self.formatter, self.writer = formatter, writer
        self._line = formatter.compile(RECORD_FIELDS)

    def log(self, record: LogRecord) -> None:
        self.writer.write(self._line(record))


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
