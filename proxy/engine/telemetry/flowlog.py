"""The finished flow as the access log reads it: `FlowFields` compiles a log format over
the flow itself (telemetry.accesslog.Fields), so an HTTP request's line is one function
call, with no LogRecord built first; plus the helpers it and observe.HcmTelemetry.record
share, so both give the same values."""

from __future__ import annotations

import time
from typing import Any

from proxy.engine.telemetry import accesslog

# Envoy's response flags -> its response code details (%RESPONSE_CODE_DETAILS%)
_DETAILS = {"NR": "route_not_found", "NC": "cluster_not_found", "UH": "no_healthy_upstream",
            "UF": "upstream_reset_before_response_started{connection_failure}",
            "UO": "upstream_reset_before_response_started{overflow}",
            "UC": "upstream_reset_before_response_started{connection_termination}",
            "UT": "response_timeout", "FI": "fault_filter_abort", "RL": "local_rate_limited",
            "DC": "downstream_remote_disconnect", "UR": "upstream_reset_after_response_started"}


class WallClock:
    """Epoch time of a loop time: `loop_time + offset`, the offset re-read from the system
    clock at most once a second (so a request costs no time.time() call, and a clock
    step shows within a second)."""

    __slots__ = ("offset", "_next")

    def __init__(self) -> None:
        self.offset = 0.0
        self._next = -1.0

    def refresh(self, now: float) -> None:
        """`now`: the loop's time() at this moment."""
        if now >= self._next:
            self.offset = time.time() - now
            self._next = now + 1.0

    def wall(self, loop_time: float) -> float:
        return loop_time + self.offset


def _address(transport: Any, which: str) -> str:
    addr = transport.get_extra_info(which) if transport is not None else None
    if not addr:
        return ""
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


def addresses(conn: Any) -> tuple[str, str]:
    """(remote, local) `address:port` of a downstream connection, kept on it after the
    first request (they do not change; asking the transport costs two system calls)."""
    try:
        return conn.telemetry_addresses  # type: ignore[no-any-return]
    except AttributeError:
        pass
    transport = getattr(conn, "transport", None)
    pair = (_address(transport, "peername"), _address(transport, "sockname"))
    if transport is not None:
        try:
            conn.telemetry_addresses = pair
        except AttributeError:  # a connection class with __slots__: ask each time
            pass
    return pair


def _security(conn: Any, attr: str) -> str:
    sec = getattr(conn, "security", None)
    return (getattr(sec, attr) or "") if sec is not None else ""


def cluster_name(flow: Any) -> str:
    if flow.cluster is not None:
        return flow.cluster.config.name  # type: ignore[no-any-return]
    r = flow.result
    return r.cluster if r is not None else ""


def details(flow: Any) -> str:
    """Envoy's %RESPONSE_CODE_DETAILS% of a finished flow."""
    for f in reversed(flow.flags):
        if f in _DETAILS:
            return _DETAILS[f]
    if flow.attempts and flow.status:
        return "via_upstream"
    r = flow.result
    return "direct_response" if r is not None and r.action in ("direct_response", "redirect") else ""


class HostText(dict):  # type: ignore[type-arg]
    """Host -> "address:port", made once per host."""

    def __missing__(self, host: Any) -> str:
        if host is None:
            return ""
        if len(self) > 4096:
            self.clear()
        text = self[host] = f"{host.address}:{host.port}"
        return text


class FlowFields(accesslog.Fields):
    """Access log values read straight from a finished flow (`f`), its notes (`n`) and its
    request headers by name (`hd`: bytes -> bytes, first value), so a line costs one
    function call and no LogRecord. Same values as HcmTelemetry.record gives."""

    params = "f, n, hd"
    _VALUES = {
        "method": "head.method.decode('latin-1')", "path": "head.path.decode('latin-1')",
        "authority": "(f.request.authority if hasattr(f, 'request') else '')", "scheme": "f.h.scheme.decode()",
        "protocol": "_protocol(head.version)", "response_code": "f.status",
        "response_flags": "(','.join(f.flags) or '-')", "response_code_details": "details(f)",
        "connection_termination_details": "''", "bytes_received": "s.received", "bytes_sent": "s.body_bytes_sent",
        "duration_ms": "int((f.end_time - s.start_time) * 1000)", "upstream_host": "_host_text[f.upstream_host]",
        "upstream_cluster": "cluster_name(f)", "upstream_local_address": "''",
        "upstream_transport_failure_reason": "''", "downstream_remote_address": "addresses(s.conn)[0]",
        "downstream_local_address": "addresses(s.conn)[1]",
        "downstream_peer_uri_san": "_security(s.conn, 'peer_principal')",
        "downstream_tls_version": "_security(s.conn, 'tls_version')",
        "requested_server_name": "_security(s.conn, 'sni')",
        "route_name": "(f.result.route.name if f.result is not None else '')", "connection_id": "0",
    }
    _PSEUDO = {":method": "method", ":path": "path", ":authority": "authority", ":scheme": "scheme"}

    def __init__(self, clock: WallClock) -> None:
        self.clock = clock
        self.request_headers_used = False  # does any format compiled with these read `hd`?

    def value(self, name: str) -> str:
        return self._VALUES[name]

    def start_time(self) -> str:
        return "(s.start_time + _clock.offset)"

    def header(self, which: str, name: str) -> str:
        if which == "REQ" and name in self._PSEUDO:
            return self._VALUES[self._PSEUDO[name]]
        table = "hd" if which == "REQ" else "rd"
        return f"({table}.get({name.encode('latin-1')!r}) or b'').decode('latin-1')"

    def prologue(self, body: str) -> list[str]:
        self.request_headers_used = self.request_headers_used or "hd." in body
        lines = ["s = f.stream", "head = s.head"]
        if "rd." in body:
            lines.append("rd = dict(reversed(n.response_headers)) if n.response_headers is not None else _EMPTY")
        return lines

    def namespace(self) -> dict[str, Any]:
        return {"_clock": self.clock, "_protocol": _PROTOCOL.__getitem__, "details": details,
                "_host_text": HostText(), "cluster_name": cluster_name, "addresses": addresses,
                "_security": _security, "_EMPTY": {}}


class _Protocol(dict):  # type: ignore[type-arg]
    def __missing__(self, version: str) -> str:
        text = self[version] = f"HTTP/{version}"
        return text


_PROTOCOL = _Protocol()
