"""The Swagger 2.0 document served at /openapi/v2, derived from the v3 documents.

kubectl 1.32 prefers OpenAPI v3 for `explain`, strict validation and patch metadata; it
reads /openapi/v2 only when v3 is missing or does not advertise `fieldValidation` (and it
asks for protobuf there), and other clients still read the JSON. Building it from the
cached v3 group-version documents keeps the two consistent: the same schemas, paths and
extensions, rewritten into Swagger 2.0 form (`#/definitions/` refs with sibling
descriptions instead of `allOf` wrappers, IntOrString as `type: string, format:
int-or-string`, Quantity as a string, body parameters instead of `requestBody`,
`consumes`/`produces` lists).

kubectl asks for this document as protobuf (`application/com.github.proto-openapi.spec.
v2@v1.0+protobuf`, gnostic's openapi_v2.Document) and cannot read JSON there, so
`openapi_v2_protobuf` encodes the same document in that wire format; vendor extensions,
defaults, enums and examples travel as `Any{yaml}` with the value written as JSON (which
is YAML).
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import orjson

from apiserver.openapi import (
    REF_PREFIX,
    SERVER_VERSION,
    openapi_v3_group_version,
    openapi_v3_group_version_json,
    served_group_versions,
)
from apiserver.registry.resource import ResourceInfo

_V2_PREFIX = "#/definitions/"
# Schema keys Swagger 2.0 has no place for.
_V3_ONLY = ("oneOf", "anyOf", "not", "nullable")


def _schema(node: Any) -> Any:
    """One v3 schema node in Swagger 2.0 form."""
    if isinstance(node, list):
        return [_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {**node, "$ref": _V2_PREFIX + node["$ref"].removeprefix(REF_PREFIX)}
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        siblings = {k: _schema(v) for k, v in node.items() if k != "allOf"}
        return {"$ref": _V2_PREFIX + all_of[0]["$ref"].removeprefix(REF_PREFIX), **siblings}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _V3_ONLY or (key == "allOf"):
            continue
        if key == "properties":
            out[key] = {k: _schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _schema(value)
        else:
            out[key] = value
    if "type" not in out and node.get("oneOf"):
        # IntOrString (format int-or-string) and Quantity are strings in Swagger 2.0.
        out["type"] = "string"
    return out


def _parameter(param: dict[str, Any]) -> dict[str, Any]:
    schema = param.get("schema", {})
    out = {k: v for k, v in param.items() if k != "schema"}
    out["type"] = schema.get("type", "string")
    if schema.get("uniqueItems"):
        out["uniqueItems"] = True
    return out


def _operation(op: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in op.items() if k not in ("parameters", "requestBody", "responses")}
    params = [_parameter(p) for p in op.get("parameters", [])]
    body = op.get("requestBody")
    if body:
        content = body["content"]
        out["consumes"] = list(content)
        first = next(iter(content.values()))
        params.insert(0, {"name": "body", "in": "body", "required": True, "schema": _schema(first["schema"])})
    out["parameters"] = params
    produces: list[str] = []
    responses: dict[str, Any] = {}
    for code, response in op.get("responses", {}).items():
        responses[code] = {"description": response.get("description", "")}
        content = response.get("content") or {}
        if content:
            responses[code]["schema"] = _schema(next(iter(content.values()))["schema"])
            produces += [t for t in content if t not in produces]
    if produces:
        out["produces"] = produces
    out["schemes"] = ["https"]
    out["responses"] = responses
    return out


def _path_item(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        out[key] = [_parameter(p) for p in value] if key == "parameters" else _operation(value)
    return out


def _build(resources: list[ResourceInfo]) -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for group, version in served_group_versions(resources):
        doc = openapi_v3_group_version(resources, group, version)
        for name, schema in doc["components"]["schemas"].items():
            if name not in definitions:
                definitions[name] = _schema(schema)
        for path, item in doc["paths"].items():
            paths[path] = _path_item(item)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION},
        "paths": dict(sorted(paths.items())),
        "definitions": dict(sorted(definitions.items())),
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication",
                                                "type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    }


# --- protobuf (gnostic openapi_v2) -------------------------------------------------------
def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _msg(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _str(field: int, text: str) -> bytes:
    return _msg(field, text.encode()) if text else b""


def _flag(field: int, value: Any, always: bool = False) -> bytes:
    return _varint(field << 3) + (b"\x01" if value else b"\x00") if value or always else b""


def _any(field: int, value: Any) -> bytes:
    return _msg(field, _str(2, json.dumps(value, separators=(",", ":"))))


def _named(field: int, name: str, value: bytes) -> bytes:
    return _msg(field, _str(1, name) + _msg(2, value))


_SCHEMA_STRINGS = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13, "discriminator": 26}
_SCHEMA_DOUBLES = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_SCHEMA_FLAGS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_SCHEMA_INTS = {"maxLength": 11, "minLength": 12, "maxItems": 14, "minItems": 15, "maxProperties": 17,
                "minProperties": 18}


def _schema_pb(s: dict[str, Any]) -> bytes:
    out = bytearray()
    for k, v in s.items():
        if k in _SCHEMA_STRINGS:
            out += _str(_SCHEMA_STRINGS[k], v)
        elif k in _SCHEMA_DOUBLES:
            out += _varint(_SCHEMA_DOUBLES[k] << 3 | 1) + struct.pack("<d", float(v))
        elif k in _SCHEMA_FLAGS:
            out += _flag(_SCHEMA_FLAGS[k], v)
        elif k in _SCHEMA_INTS:
            out += _varint(_SCHEMA_INTS[k] << 3) + _varint(int(v))
        elif k in ("default", "example"):
            out += _any(5 if k == "default" else 30, v)
        elif k in ("required", "enum", "allOf"):
            out += b"".join(_str(19, r) if k == "required" else _any(20, r) if k == "enum" else _msg(24, _schema_pb(r))
                            for r in v)
        elif k == "additionalProperties":
            out += _msg(21, _msg(1, _schema_pb(v)) if isinstance(v, dict) else _flag(2, v, always=True))
        elif k == "type":
            out += _msg(22, b"".join(_str(1, t) for t in ([v] if isinstance(v, str) else v)))
        elif k == "items" and isinstance(v, dict):
            out += _msg(23, _msg(1, _schema_pb(v)))
        elif k == "properties":
            out += _msg(25, b"".join(_named(1, name, _schema_pb(p)) for name, p in v.items()))
        elif k.startswith("x-"):
            out += _named(31, k, _str(2, json.dumps(v, separators=(",", ":"))))
    return bytes(out)


def _parameter_pb(p: dict[str, Any]) -> bytes:
    if p.get("in") == "body":
        body = (_str(1, p.get("description", "")) + _str(2, p["name"]) + _str(3, "body") + _flag(4, p.get("required"))
                + _msg(5, _schema_pb(p.get("schema", {}))))
        return _msg(1, _msg(1, body))
    # QueryParameterSubSchema (3) and PathParameterSubSchema (4) share the first fields.
    sub, type_field, unique_field = (4, 5, 19) if p.get("in") == "path" else (3, 6, 20)
    fields = (_flag(1, p.get("required")) + _str(2, p.get("in", "")) + _str(3, p.get("description", ""))
              + _str(4, p["name"]) + _str(type_field, p.get("type", "")) + _flag(unique_field, p.get("uniqueItems")))
    return _msg(1, _msg(2, _msg(sub, fields)))


def _operation_pb(op: dict[str, Any]) -> bytes:
    out = bytearray(b"".join(_str(1, t) for t in op.get("tags", [])))
    out += _str(3, op.get("description", "")) + _str(5, op.get("operationId", ""))
    out += b"".join(_str(6, t) for t in op.get("produces", [])) + b"".join(_str(7, t) for t in op.get("consumes", []))
    out += b"".join(_msg(8, _parameter_pb(p)) for p in op.get("parameters", []))
    responses = b""
    for code, response in op.get("responses", {}).items():
        body = _str(1, response.get("description", ""))
        if "schema" in response:
            body += _msg(2, _msg(1, _schema_pb(response["schema"])))
        responses += _named(1, code, _msg(1, body))
    out += _msg(9, responses) + b"".join(_str(10, s) for s in op.get("schemes", []))
    out += b"".join(_named(13, k, _str(2, json.dumps(v, separators=(",", ":")))) for k, v in op.items()
                    if k.startswith("x-"))
    return bytes(out)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _document_pb(doc: dict[str, Any]) -> bytes:
    paths = bytearray()
    for path, item in doc["paths"].items():
        body = b"".join(_msg(_METHODS[m], _operation_pb(op)) for m, op in item.items() if m in _METHODS)
        body += b"".join(_msg(9, _parameter_pb(p)) for p in item.get("parameters", []))
        paths += _named(2, path, body)
    definitions = b"".join(_named(1, name, _schema_pb(s)) for name, s in doc["definitions"].items())
    info = _str(1, doc["info"]["title"]) + _str(2, doc["info"]["version"])
    return _str(1, doc["swagger"]) + _msg(2, info) + _msg(8, bytes(paths)) + _msg(9, definitions)


# The key is the tuple of the v3 group-version hashes the document was built from.
_cache: dict[str, tuple[tuple[str, ...], dict[str, Any], bytes, str]] = {}
_pb_cache: dict[str, tuple[str, bytes]] = {}


def _cached(resources: list[ResourceInfo]) -> tuple[dict[str, Any], bytes, str]:
    key = tuple(openapi_v3_group_version_json(resources, g, v)[1] for g, v in served_group_versions(resources))
    hit = _cache.get("v2")
    if hit is None or hit[0] != key:
        doc = _build(resources)
        body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        hit = (key, doc, body, hashlib.sha512(body).hexdigest().upper())
        _cache["v2"] = hit
    return hit[1], hit[2], hit[3]


def openapi_v2(resources: list[ResourceInfo]) -> dict[str, Any]:
    """The Swagger 2.0 document of everything served (cached; do not mutate it)."""
    return _cached(resources)[0]


def openapi_v2_json(resources: list[ResourceInfo]) -> tuple[bytes, str]:
    """The same document serialised, with its hash (for an ETag)."""
    _, body, digest = _cached(resources)
    return body, digest


def openapi_v2_protobuf(resources: list[ResourceInfo]) -> tuple[bytes, str]:
    """The same document as gnostic's openapi_v2.Document protobuf, with the JSON's hash."""
    _, _, digest = _cached(resources)
    hit = _pb_cache.get("v2")
    if hit is None or hit[0] != digest:
        hit = (digest, _document_pb(openapi_v2(resources)))
        _pb_cache["v2"] = hit
    return hit[1], digest
