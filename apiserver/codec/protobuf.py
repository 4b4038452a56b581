"""Decode Kubernetes protobuf request bodies into the JSON objects Go would produce.

Wire format (k8s.io/apimachinery runtime/serializer/protobuf): the magic bytes `k8s\\x00`,
then a `runtime.Unknown` message: 1 = TypeMeta{1 apiVersion, 2 kind}, 2 = the object's raw
bytes, 3 = contentEncoding, 4 = contentType. The raw object is a plain protobuf message whose
field numbers come from k8s.io/api generated.proto (tables in `proto_messages`).

`decode` returns the dict encoding/json would print for the same Go object, so the rest of
the API server sees exactly what a JSON client would have sent: omitempty zero values are
dropped, pointer fields keep explicit zeros, Secret data becomes base64 strings, IntOrString
an int or a string, metav1.Time an RFC 3339 string (null when zero).

The reader is generic (varint, fixed32/64, length-delimited; packed or unpacked repeated
scalars; map entries as {1: key, 2: value} messages). Unknown field numbers are skipped and
logged at debug level, as Go's unmarshaller does; malformed input raises a 400 BadRequest.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import struct
from collections.abc import Iterator
from typing import Any

from apiserver.codec.proto_messages import KINDS, MESSAGES, Field
from apiserver.errors import StatusError, bad_request

log = logging.getLogger(__name__)

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
_ZERO_TIME_SECONDS = -62135596800  # Go's zero time.Time as Unix seconds

Raw = tuple[int, int | bytes]  # (wire type, varint value / fixed value / bytes)


class ProtobufError(ValueError):
    """Malformed protobuf input."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Read an unsigned varint at `pos`; return (value, next position)."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint too long")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for every field of one message."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire == FIXED64:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == FIXED32:
            value, pos = buf[pos : pos + 4], pos + 4
        elif wire == LENGTH:
            size, pos = read_varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ProtobufError(f"unsupported wire type {wire} for field {number}")
        if pos > len(buf):
            raise ProtobufError(f"truncated field {number}")
        yield number, wire, value


def _signed(value: int, bits: int) -> int:
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    if bits == 32:
        value = (value + (1 << 31)) % (1 << 32) - (1 << 31)
    return value


def _scalar(typ: str, wire: int, value: int | bytes) -> Any:
    """Convert one wire value to the Python value of scalar type `typ`."""
    if typ in ("s", "y"):
        if wire != LENGTH:
            raise ProtobufError(f"expected bytes, got wire type {wire}")
        assert isinstance(value, bytes)
        if typ == "y":
            return base64.b64encode(value).decode("ascii")
        return value.decode("utf-8", errors="replace")
    if typ == "d":
        if wire == FIXED64:
            return struct.unpack("<d", value)[0]
        raise ProtobufError(f"expected fixed64, got wire type {wire}")
    if wire != VARINT:
        raise ProtobufError(f"expected varint, got wire type {wire}")
    assert isinstance(value, int)
    if typ == "b":
        return value != 0
    return _signed(value, 32 if typ == "i" else 64)


def _unpack(typ: str, data: bytes) -> list[Any]:
    """Values of a packed repeated scalar field."""
    out: list[Any] = []
    pos = 0
    while pos < len(data):
        if typ == "d":
            out.append(struct.unpack("<d", data[pos : pos + 8])[0])
            pos += 8
            continue
        value, pos = read_varint(data, pos)
        out.append(_scalar(typ, VARINT, value))
    return out


def _zero(typ: str) -> Any:
    return {"s": "", "y": "", "b": False, "i": 0, "l": 0, "d": 0.0}.get(typ)


def _is_zero(value: Any) -> bool:
    return value == "" if isinstance(value, str) else value == 0


# --- messages with a custom JSON form --------------------------------------------------------


def _fields_by_number(buf: bytes) -> dict[int, tuple[int, int | bytes]]:
    return {number: (wire, value) for number, wire, value in iter_fields(buf)}


def _get(fields: dict[int, tuple[int, int | bytes]], number: int, typ: str) -> Any:
    if number not in fields:
        return _zero(typ)
    return _scalar(typ, *fields[number])


def _format_time(seconds: int, nanos: int, micro: bool) -> str | None:
    if (seconds == 0 and nanos == 0) or seconds == _ZERO_TIME_SECONDS:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    if not micro:  # metav1.Time keeps whole seconds only
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"


def format_duration(nanoseconds: int) -> str:
    """Go's time.Duration.String(): 1h2m3.5s, 1.5ms, 0s."""
    if nanoseconds == 0:
        return "0s"
    sign, n = ("-", -nanoseconds) if nanoseconds < 0 else ("", nanoseconds)
    if n < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if n >= size:
                return sign + _trim(n / size if size > 1 else n, size) + unit
    hours, rest = divmod(n, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _trim(rest / 1_000_000_000, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    return f"{sign}{minutes}m{seconds}" if minutes else sign + seconds


def _trim(value: float | int, size: int) -> str:
    if isinstance(value, int) or value == int(value):
        return str(int(value))
    digits = len(str(size)) - 1
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def _decode_builtin(typ: str, buf: bytes) -> Any:
    fields = _fields_by_number(buf)
    if typ in ("Time", "MicroTime"):
        return _format_time(_get(fields, 1, "l"), _get(fields, 2, "i"), typ == "MicroTime")
    if typ == "Duration":
        return format_duration(_get(fields, 1, "l"))
    if typ == "Quantity":
        # The sender writes Quantity.String(), i.e. already the canonical form.
        return _get(fields, 1, "s") or "0"
    if typ == "IntOrString":
        return _get(fields, 3, "s") if _get(fields, 1, "l") == 1 else _get(fields, 2, "i")
    if typ == "ExtraValue":
        return [_scalar("s", wire, value) for number, wire, value in iter_fields(buf) if number == 1]
    raw = fields.get(1, (LENGTH, b""))[1]  # FieldsV1 and RawExtension: raw JSON bytes
    if not isinstance(raw, bytes):
        raise ProtobufError(f"{typ}: expected bytes")
    try:
        return json.loads(raw) if raw else None
    except ValueError as exc:
        raise ProtobufError(f"{typ} does not hold JSON: {exc}") from exc


# --- generic messages ------------------------------------------------------------------------


def _decode_value(field: Field, wire: int, value: int | bytes) -> Any:
    if field.is_scalar:
        return _scalar(field.type, wire, value)
    if wire != LENGTH or not isinstance(value, bytes):
        raise ProtobufError(f"{field.json_name}: expected a message, got wire type {wire}")
    if field.type in MESSAGES:
        return decode_message(field.type, value)
    return _decode_builtin(field.type, value)


def _decode_map_entry(field: Field, data: bytes) -> tuple[str, Any]:
    key, value, seen = "", None, False
    for number, wire, raw in iter_fields(data):
        if number == 1:
            key = _scalar("s", wire, raw)
        elif number == 2:
            value, seen = _decode_value(field, wire, raw), True
    if not seen:  # Go leaves the zero value of the map's value type
        value = _zero(field.type) if field.is_scalar else _decode_value(field, LENGTH, b"")
    return key, value


def _collect(message: str, buf: bytes) -> dict[int, Any]:
    """Group the wire fields of `buf` by number, decoded per the table of `message`."""
    table = MESSAGES[message]
    found: dict[int, Any] = {}
    for number, wire, value in iter_fields(buf):
        field = table.get(number)
        if field is None:
            log.debug("protobuf %s: skipping unknown field %d (wire type %d)", message, number, wire)
            continue
        if field.is_map:
            if not isinstance(value, bytes):
                raise ProtobufError(f"{field.json_name}: map entry must be length-delimited")
            key, item = _decode_map_entry(field, value)
            found.setdefault(number, {})[key] = item
        elif field.repeated:
            items = found.setdefault(number, [])
            if field.is_scalar and wire == LENGTH and field.type not in ("s", "y"):
                assert isinstance(value, bytes)
                items.extend(_unpack(field.type, value))
            else:
                items.append(_decode_value(field, wire, value))
        else:
            found[number] = _decode_value(field, wire, value)  # last one wins, as in Go
    return found


def decode_message(message: str, buf: bytes) -> dict[str, Any]:
    """Decode one message of the tables into its JSON object, in field-table order."""
    found = _collect(message, buf)
    obj: dict[str, Any] = {}
    for number, field in MESSAGES[message].items():
        if number not in found:
            if field.keep and (field.repeated or field.is_map or not field.is_scalar):
                obj[field.json_name] = None  # nil slice/map/struct pointer without omitempty
            continue
        value = found[number]
        if field.inline:
            obj.update(value)
        elif field.is_scalar and not field.repeated and _is_zero(value) and not field.keep:
            continue  # omitempty on a non-pointer field
        else:
            obj[field.json_name] = value
    return obj


# --- the runtime.Unknown envelope ------------------------------------------------------------


def _envelope(body: bytes) -> tuple[str, str, bytes]:
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic bytes")
    api_version = kind = encoding = ""
    raw = b""
    for number, wire, value in iter_fields(body[len(MAGIC) :]):
        if number == 1:
            if not isinstance(value, bytes):
                raise ProtobufError("TypeMeta must be length-delimited")
            meta = _fields_by_number(value)
            api_version, kind = _get(meta, 1, "s"), _get(meta, 2, "s")
        elif number == 2:
            raw = value if isinstance(value, bytes) else b""
        elif number == 3:
            encoding = _scalar("s", wire, value)
    if encoding:
        raise ProtobufError(f"unsupported contentEncoding {encoding!r}")
    return api_version, kind, raw


def decode(body: bytes, *, expected: tuple[str, str] | None = None) -> dict[str, Any]:
    """Decode a `k8s\\x00` + runtime.Unknown body into a JSON-shaped object.

    `expected` is the (apiVersion, kind) to assume when the envelope leaves them empty.
    Raises a 400 `StatusError` for malformed input or a kind without a message table.
    """
    try:
        api_version, kind, raw = _envelope(body)
        if not kind and expected:
            api_version, kind = expected
        message = KINDS.get((api_version, kind))
        if message is None:
            raise StatusError(
                400, "BadRequest", f'no kind "{kind}" is registered for version "{api_version}"'
            )
        obj: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
        obj.update(decode_message(message, raw))
        return obj
    except ProtobufError as exc:
        raise bad_request(f"the body of the request could not be decoded as protobuf: {exc}") from exc
