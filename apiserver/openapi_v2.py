"""The Swagger 2.0 document served at /openapi/v2, derived from the v3 documents.

kubectl 1.32 prefers OpenAPI v3 for `explain`, strict validation and patch metadata; it
reads /openapi/v2 only when v3 is missing or does not advertise `fieldValidation` (and it
asks for protobuf there), and other clients still read the JSON. Building it from the
cached v3 group-version documents keeps the two consistent: the same schemas, paths and
extensions, rewritten into Swagger 2.0 form (`#/definitions/` refs with sibling
descriptions instead of `allOf` wrappers, IntOrString as `type: string, format:
int-or-string`, Quantity as a string, body parameters instead of `requestBody`,
`consumes`/`produces` lists).
"""

from __future__ import annotations

import hashlib
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


# The key is the tuple of the v3 group-version hashes the document was built from.
_cache: dict[str, tuple[tuple[str, ...], dict[str, Any], bytes, str]] = {}


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
