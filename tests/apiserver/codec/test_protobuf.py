"""Unit tests of the protobuf decoder: the wire reader, the custom JSON types, and captured
kubectl bodies (fixtures/) decoded to exactly what kubectl's dry run prints."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from apiserver.codec import protobuf
from apiserver.codec.proto_messages import KINDS, MESSAGES, parse_fields, unresolved_types
from apiserver.codec.protobuf import decode, decode_message, format_duration
from apiserver.errors import StatusError

FIXTURES = Path(__file__).parent / "fixtures"


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return tag(number, 2) + varint(len(payload)) + payload


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = ld(1, api_version.encode()) + ld(2, kind.encode())
    return protobuf.MAGIC + ld(1, type_meta) + ld(2, raw) + ld(3, b"") + ld(4, b"")


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.pb")))
def test_captured_kubectl_body_decodes_to_its_json(name: str) -> None:
    body = (FIXTURES / f"{name}.pb").read_bytes()
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    assert decode(body) == expected


def test_every_field_type_is_defined() -> None:
    assert unresolved_types() == set()
    assert all(message in MESSAGES for message in KINDS.values())


@pytest.mark.parametrize(
    ("value", "wire_value"),
    [
        pytest.param(0, 0, id="zero"),
        pytest.param(300, 300, id="two-bytes"),
        pytest.param(-1, -1, id="negative-int32-is-ten-bytes"),
        pytest.param(2**31 - 1, 2**31 - 1, id="int32-max"),
        pytest.param(-(2**31), -(2**31), id="int32-min"),
    ],
)
def test_int32_varints_round_trip(value: int, wire_value: int) -> None:
    raw = tag(2, 0) + varint(wire_value)
    assert decode_message("PriorityClass", raw)["value"] == value


def test_int64_keeps_large_values() -> None:
    raw = ld(2, tag(4, 0) + varint(2**40))  # spec.terminationGracePeriodSeconds
    assert decode_message("PodTemplateSpec", raw)["spec"]["terminationGracePeriodSeconds"] == 2**40


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(tag(4, 0) + varint(1) + tag(4, 0) + varint(2), id="unpacked"),
        pytest.param(ld(4, varint(1) + varint(2)), id="packed"),
    ],
)
def test_repeated_scalars_accept_packed_and_unpacked(raw: bytes) -> None:
    assert decode_message("PodSecurityContext", raw)["supplementalGroups"] == [1, 2]


def test_map_entries_and_bytes_values_become_base64() -> None:
    entry = ld(1, b"tls.key") + ld(2, b"\x00\xff")
    raw = ld(2, entry) + ld(2, ld(1, b"empty"))
    assert decode_message("Secret", raw)["data"] == {"tls.key": "AP8=", "empty": ""}


def test_map_of_quantities() -> None:
    raw = ld(1, ld(1, b"cpu") + ld(2, ld(1, b"250m")))
    assert decode_message("ResourceRequirements", raw) == {"limits": {"cpu": "250m"}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(tag(1, 0) + varint(0) + tag(2, 0) + varint(8080), 8080, id="int"),
        pytest.param(tag(1, 0) + varint(1) + ld(3, b"http"), "http", id="string"),
        pytest.param(b"", 0, id="zero-value"),
    ],
)
def test_int_or_string(raw: bytes, expected: int | str) -> None:
    assert decode_message("ServicePort", ld(4, raw))["targetPort"] == expected


@pytest.mark.parametrize(
    ("message", "raw", "expected"),
    [
        pytest.param("Time", tag(1, 0) + varint(1704164645), "2024-01-02T03:04:05Z", id="time"),
        pytest.param("Time", tag(1, 0) + varint(1704164645) + tag(2, 0) + varint(5), "2024-01-02T03:04:05Z",
                     id="time-drops-nanos"),
        pytest.param("Time", b"", None, id="zero-time-is-null"),
        pytest.param("Time", tag(1, 0) + varint(-62135596800), None, id="go-zero-time-is-null"),
        pytest.param("MicroTime", tag(1, 0) + varint(1704164645) + tag(2, 0) + varint(123456789),
                     "2024-01-02T03:04:05.123456Z", id="microtime"),
    ],
)
def test_times_format_like_metav1(message: str, raw: bytes, expected: str | None) -> None:
    assert protobuf._decode_builtin(message, raw) == expected


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(1500, "1.5µs", id="micro"),
        pytest.param(1_500_000, "1.5ms", id="milli"),
        pytest.param(90_000_000_000, "1m30s", id="minutes"),
        pytest.param(3_723_500_000_000, "1h2m3.5s", id="hours"),
        pytest.param(3_600_000_000_000, "1h0m0s", id="hour"),
        pytest.param(-2_000_000_000, "-2s", id="negative"),
    ],
)
def test_duration_formats_like_go(nanoseconds: int, text: str) -> None:
    assert format_duration(nanoseconds) == text


def test_omitempty_drops_zero_but_pointer_keeps_it() -> None:
    spec = tag(1, 0) + varint(0) + tag(5, 0) + varint(0)  # replicas *int32, minReadySeconds int32
    assert decode_message("DeploymentSpec", spec) == {"replicas": 0, "selector": None}


def test_nil_slice_without_omitempty_is_null() -> None:
    assert decode_message("Role", b"") == {"rules": None}


def test_inline_struct_is_merged_into_parent() -> None:
    volume = ld(1, b"data") + ld(2, ld(2, b""))  # name, volumeSource{emptyDir{}}
    assert decode_message("Volume", volume) == {"name": "data", "emptyDir": {}}


def test_unknown_fields_are_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    raw = ld(99, b"future") + ld(1, ld(1, b"ns1"))
    with caplog.at_level(logging.DEBUG, logger="apiserver.codec.protobuf"):
        obj = decode(envelope("v1", "Namespace", raw))
    assert obj["metadata"] == {"name": "ns1", "creationTimestamp": None}
    assert "unknown field 99" in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"kind": "Namespace"}', id="json-not-protobuf"),
        pytest.param(protobuf.MAGIC + ld(2, b"\x0a\x05ab"), id="truncated-field"),
        pytest.param(protobuf.MAGIC + b"\x0a\xff", id="truncated-varint"),
        pytest.param(envelope("v1", "Namespace", tag(1, 0) + varint(3)), id="wrong-wire-type"),
        pytest.param(envelope("v1", "Namespace", b"\x0b"), id="group-wire-type"),
        pytest.param(envelope("v1", "Gadget", b""), id="unknown-kind"),
    ],
)
def test_malformed_bodies_are_bad_requests(body: bytes) -> None:
    with pytest.raises(StatusError) as info:
        decode(body)
    assert info.value.code == 400
    assert info.value.reason == "BadRequest"


def test_content_encoding_is_rejected() -> None:
    body = protobuf.MAGIC + ld(1, ld(1, b"v1") + ld(2, b"Namespace")) + ld(2, b"") + ld(3, b"gzip")
    with pytest.raises(StatusError, match="contentEncoding"):
        decode(body)


def test_expected_kind_fills_an_empty_envelope() -> None:
    body = protobuf.MAGIC + ld(2, ld(1, ld(1, b"sa1")))
    assert decode(body, expected=("v1", "ServiceAccount"))["kind"] == "ServiceAccount"


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("name=1:s, other=1:s", id="duplicate-number"),
        pytest.param("name:1", id="malformed"),
    ],
)
def test_bad_table_entries_are_rejected(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fields(spec)
