"""Request bodies in, responses out: JSON, YAML and Kubernetes protobuf.

kube-apiserver accepts JSON, YAML and protobuf bodies; kubectl 1.32's typed commands
send protobuf, the Python client sends JSON without any Content-Type. We decode all of
them to plain dicts, and always answer in JSON (or YAML when that is all the client
accepts): every client we serve accepts JSON.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from apiserver import errors

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's default request body limit

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply-cbor",
}


def media_type(content_type: str | None) -> str:
    if not content_type:
        return JSON
    return content_type.split(";", 1)[0].strip().lower()


def check_size(raw: bytes) -> None:
    if len(raw) > MAX_BODY_BYTES:
        raise errors.too_large("Request entity too large: limit is 3145728")


def decode_object(raw: bytes, content_type: str | None) -> Any:
    """Decode a create/update body. Errors are 400 BadRequest / 415 as Kubernetes."""
    check_size(raw)
    kind = media_type(content_type)
    if kind in (JSON, "*/*", "text/plain", "application/x-www-form-urlencoded"):
        return decode_json(raw)
    if kind in (YAML, "application/x-yaml", "text/yaml"):
        return decode_yaml(raw)
    if kind == PROTOBUF:
        from apiserver.codec.protobuf import decode

        return decode(raw)
    raise errors.unsupported_media_type(kind)


def decode_json(raw: bytes) -> Any:
    if not raw.strip():
        raise errors.bad_request("the body of the request was empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding body: json: {exc}") from None


def decode_yaml(raw: bytes) -> Any:
    if not raw.strip():
        raise errors.bad_request("the body of the request was empty")
    try:
        docs = [d for d in yaml.safe_load_all(raw) if d is not None]
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error converting YAML to JSON: {str(exc).splitlines()[0]}") from None
    if len(docs) != 1:
        raise errors.bad_request("yaml: the body must contain exactly one document")
    return _jsonable(docs[0])


def _jsonable(value: Any) -> Any:
    """YAML may produce dates and non-string keys; JSON cannot. Kubernetes converts YAML
    to JSON first, so do the same: timestamps become strings, keys become strings."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, bool) else str(k).lower(): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return value


def encode(obj: Any) -> bytes:
    return orjson.dumps(obj)


def encode_yaml(obj: Any) -> bytes:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False).encode()
