"""Storage keys and continue tokens.

Objects live at `/registry/<resource>[.<group>]/<namespace>/<name>` (namespaced) or
`/registry/<resource>[.<group>]/<name>` (cluster-scoped), the layout kube-apiserver uses
in etcd. A list of one namespace is a prefix scan of `.../<namespace>/`; a list across
namespaces a scan of `.../`. Continue tokens carry the list's revision and the last key
returned, base64-encoded JSON as Kubernetes does, so a paged list is one consistent
snapshot.
"""

from __future__ import annotations

import base64
import binascii

import orjson

from apiserver import errors

PREFIX = "/registry/"


def object_key(storage_resource: str, namespace: str | None, name: str) -> str:
    if namespace:
        return f"{PREFIX}{storage_resource}/{namespace}/{name}"
    return f"{PREFIX}{storage_resource}/{name}"


def list_prefix(storage_resource: str, namespace: str | None) -> str:
    if namespace:
        return f"{PREFIX}{storage_resource}/{namespace}/"
    return f"{PREFIX}{storage_resource}/"


def encode_continue(revision: int, last_key: str, prefix: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": revision, "start": last_key[len(prefix):] + "\x00"}
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[int, str]:
    """Returns (revision, key to start after)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError("version")
        revision = int(data["rv"])
        start = str(data["start"])
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from None
    if revision <= 0 or start.startswith("/") or ".." in start.split("/"):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    return revision, prefix + start.rstrip("\x00")
