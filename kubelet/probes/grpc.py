"""grpc probes: the gRPC Health Checking Protocol over cleartext HTTP/2.

The kubelet dials the pod IP and port with grpc-go (blocking until the connection is
ready, retrying refused connections until the timeout), calls
`grpc.health.v1.Health/Check` with the probe's `service` and succeeds only on SERVING.
Its failure messages are specific and users search for them:

    timeout: failed to connect service "10.0.0.5:9090" within 1s: context deadline exceeded
    error: this server does not implement the grpc health protocol (grpc.health.v1.Health): ...
    timeout: health rpc did not complete within 1s
    service unhealthy (responded with "NOT_SERVING")
    error: health rpc probe failed: rpc error: code = NotFound desc = unknown service

HTTP/2 is `h2channel` (the pure-Python `h2` package, loaded only when a grpc probe
runs); the two protobuf messages involved (a string field, an enum field) are encoded
here by hand, so no protobuf runtime is needed.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING
from urllib.parse import unquote

from kubelet.probes.spec import FAILURE, SUCCESS, Outcome, go_duration, go_quote, join_host_port

if TYPE_CHECKING:
    from kubelet.probes.h2channel import Channel, Reply

CHECK_PATH = "/grpc.health.v1.Health/Check"
SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
CODES = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
         "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
         "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"]
UNIMPLEMENTED, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, UNKNOWN_CODE = 12, 4, 13, 14, 2
# grpc-go's mapping of a non-200 HTTP status to a gRPC code.
_HTTP_CODES = {400: INTERNAL, 401: 16, 403: 7, 404: UNIMPLEMENTED, 429: UNAVAILABLE, 502: UNAVAILABLE,
               503: UNAVAILABLE, 504: UNAVAILABLE}
_HTTP_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
              429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
              503: "Service Unavailable", 504: "Gateway Timeout"}
_BACKOFF_BASE, _BACKOFF_FACTOR, _BACKOFF_JITTER = 1.0, 1.6, 0.2  # grpc-go's connection backoff


class RpcError(Exception):
    """A gRPC status other than OK, worded as grpc-go's status error."""

    def __init__(self, code: int, message: str) -> None:
        name = CODES[code] if 0 <= code < len(CODES) else f"Code({code})"
        super().__init__(f"rpc error: code = {name} desc = {message}")
        self.code = code
        self.message = message


async def grpc_probe(host: str, port: int, service: str, timeout: float) -> Outcome:
    """One grpc probe (pkg/probe/grpc)."""
    address = join_host_port(host, port)
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        async with asyncio.timeout_at(deadline):
            channel = await _dial_blocking(host, port)
    except TimeoutError:
        return Outcome(FAILURE, f"timeout: failed to connect service {go_quote(address)} within "
                                f"{go_duration(timeout)}: context deadline exceeded")
    try:
        async with asyncio.timeout_at(deadline):
            reply = await channel.unary(CHECK_PATH, address, _check_request(service), _grpc_timeout(timeout))
        status = _serving_status(reply)
    except TimeoutError:
        return Outcome(FAILURE, f"timeout: health rpc did not complete within {go_duration(timeout)}")
    except RpcError as exc:
        if exc.code == UNIMPLEMENTED:
            return Outcome(FAILURE, "error: this server does not implement the grpc health protocol "
                                    f"(grpc.health.v1.Health): {exc.message}")
        if exc.code == DEADLINE_EXCEEDED:
            return Outcome(FAILURE, f"timeout: health rpc did not complete within {go_duration(timeout)}")
        return Outcome(FAILURE, f"error: health rpc probe failed: {exc}")
    finally:
        channel.close()
    if status != 1:
        return Outcome(FAILURE, f"service unhealthy (responded with {go_quote(SERVING_STATUS.get(status, str(status)))})")
    return Outcome(SUCCESS, "service healthy")


async def _dial_blocking(host: str, port: int) -> Channel:
    """Connect and finish the HTTP/2 handshake, retrying with grpc-go's backoff until
    the caller's deadline cancels us (grpc.WithBlock)."""
    from kubelet.probes.h2channel import Broken, Channel  # h2 is loaded only for grpc probes

    backoff = _BACKOFF_BASE
    while True:
        try:
            return await Channel.open(host, port)
        except Broken:
            pass
        await asyncio.sleep(backoff * random.uniform(1 - _BACKOFF_JITTER, 1 + _BACKOFF_JITTER))
        backoff *= _BACKOFF_FACTOR


def _grpc_timeout(seconds: float) -> str:
    """The grpc-timeout header: at most 8 digits and a unit."""
    for unit, scale in (("u", 1e6), ("m", 1e3), ("S", 1), ("M", 1 / 60)):
        value = max(int(seconds * scale), 1)
        if value < 10**8:
            return f"{value}{unit}"
    return "99999999H"


def _check_request(service: str) -> bytes:
    """HealthCheckRequest{service}: field 1, length-delimited (proto3 omits "")."""
    raw = service.encode("utf-8")
    return b"\x0a" + _varint(len(raw)) + raw if raw else b""


def _serving_status(reply: Reply) -> int:
    """The HealthCheckResponse status, or RpcError for a non-OK call."""
    http_status = reply.headers.get(":status", "")
    if http_status != "200":
        code = int(http_status) if http_status.isdigit() else 0
        text = _HTTP_TEXT.get(code, "")
        raise RpcError(_HTTP_CODES.get(code, UNKNOWN_CODE),
                       f"unexpected HTTP status code received from server: {code} ({text})")
    # A trailers-only response carries grpc-status in its headers.
    trailers = reply.trailers or reply.headers
    status = trailers.get("grpc-status")
    if status is None:
        raise RpcError(INTERNAL, "server closed the stream without sending trailers")
    if status != "0":
        code = int(status) if status.isdigit() else UNKNOWN_CODE
        raise RpcError(code, unquote(trailers.get("grpc-message", "")))
    data = bytes(reply.data)
    if len(data) < 5 or len(data) < 5 + int.from_bytes(data[1:5], "big"):
        raise RpcError(INTERNAL, "cardinality violation: received no response message from non-streaming RPC")
    if data[0] != 0:
        raise RpcError(INTERNAL, "grpc: compressed flag set with identity or empty encoding")
    return _decode_status(data[5:5 + int.from_bytes(data[1:5], "big")])


def _decode_status(message: bytes) -> int:
    """HealthCheckResponse.status (field 1, varint); other fields are skipped."""
    status, i = 0, 0
    try:
        while i < len(message):
            key, i = _read_varint(message, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, i = _read_varint(message, i)
                if number == 1:
                    status = value
            elif wire == 1:
                i += 8
            elif wire == 2:
                length, i = _read_varint(message, i)
                i += length
            elif wire == 5:
                i += 4
            else:
                raise ValueError(f"unknown wire type {wire}")
        if i > len(message):
            raise ValueError("unexpected EOF")
    except (ValueError, IndexError) as exc:
        raise RpcError(INTERNAL, f"grpc: failed to unmarshal the received message: {exc}") from None
    return status


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint overflow")
