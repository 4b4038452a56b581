"""Workload identity for Istio's metrics: the local proxy's (bootstrap `node.metadata`)
and the peer's (Istio's HTTP metadata exchange).

Istio's injector writes the pod's identity into the sidecar's node metadata: `NAME`
(the pod), `NAMESPACE`, `WORKLOAD_NAME` (the Deployment), `LABELS` (the pod's labels:
`app`, `version`, `service.istio.io/canonical-name`, `service.istio.io/canonical-
revision`), `CLUSTER_ID`, `SERVICE_ACCOUNT`, `OWNER`, `MESH_ID`. On HTTP, Istio's proxies
exchange that identity in-band: the source proxy adds `x-envoy-peer-metadata` (its
metadata) and `x-envoy-peer-metadata-id` (its node id) to requests, the destination
proxy adds its own to responses, and each side removes the peer's before forwarding, so
the application never sees them.

Our encoding of `x-envoy-peer-metadata` is base64 of the JSON object of the exchanged
keys. Istio's is base64 of a serialized protobuf Struct (or, since 1.22, a flat
key=value list); our proxies only exchange metadata with each other, so the simpler
encoding loses nothing and stays readable with `base64 -d`.

Decoding a header value costs a base64 and a JSON parse, so `PeerCache` keeps the
Workload made from each distinct value (a mesh has few peers; the cache is bounded).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from proxy.engine.telemetry.metrics import UNKNOWN, UNKNOWN_WORKLOAD, Workload

PEER_METADATA = b"x-envoy-peer-metadata"
PEER_METADATA_ID = b"x-envoy-peer-metadata-id"
PEER_HEADERS = frozenset((PEER_METADATA, PEER_METADATA_ID))
EXCHANGED_KEYS = ("NAME", "NAMESPACE", "WORKLOAD_NAME", "LABELS", "CLUSTER_ID", "SERVICE_ACCOUNT", "OWNER",
                  "MESH_ID", "PLATFORM_METADATA", "APP_CONTAINERS", "INSTANCE_IPS", "ISTIO_VERSION")
CANONICAL_NAME = "service.istio.io/canonical-name"
CANONICAL_REVISION = "service.istio.io/canonical-revision"


def exchanged(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The part of a node's metadata that travels to the peer."""
    return {k: metadata[k] for k in EXCHANGED_KEYS if metadata and k in metadata}


def encode(metadata: Mapping[str, Any]) -> bytes:
    """The `x-envoy-peer-metadata` value for `metadata` (base64 JSON; see the module docstring)."""
    return base64.b64encode(orjson.dumps(dict(metadata)))


def decode(value: bytes) -> dict[str, Any] | None:
    """The metadata in an `x-envoy-peer-metadata` value; None when it is not ours or malformed."""
    try:
        doc = orjson.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _str(v: Any) -> str:
    return v if isinstance(v, str) and v else UNKNOWN


def workload(metadata: Mapping[str, Any] | None, principal: str | None = None) -> Workload:
    """Istio's labels of one side from its node metadata. App and version fall back to the
    Kubernetes recommended labels; the canonical service to the app and then the workload
    name, the canonical revision to the version and then `latest`, as Istio derives them."""
    if not metadata:
        return Workload(principal=principal) if principal else UNKNOWN_WORKLOAD
    labels = metadata.get("LABELS")
    labels = labels if isinstance(labels, dict) else {}
    name = _str(metadata.get("WORKLOAD_NAME"))
    app = labels.get("app") or labels.get("app.kubernetes.io/name")
    version = labels.get("version") or labels.get("app.kubernetes.io/version")
    canonical = labels.get(CANONICAL_NAME) or app or (name if name != UNKNOWN else None)
    revision = labels.get(CANONICAL_REVISION) or version or "latest"
    return Workload(workload=name, namespace=_str(metadata.get("NAMESPACE")), principal=principal or UNKNOWN,
                    app=_str(app), version=_str(version), canonical_service=_str(canonical),
                    canonical_revision=_str(revision), cluster=_str(metadata.get("CLUSTER_ID")))


class PeerCache:
    """Header value (and principal) -> Workload, bounded to `size` entries (then cleared:
    a mesh's peers are few, so a full cache means churn, and refilling is cheap)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._cache: dict[tuple[bytes, str | None], Workload] = {}

    def get(self, value: bytes | None, principal: str | None = None) -> Workload:
        if value is None:
            return Workload(principal=principal) if principal else UNKNOWN_WORKLOAD
        key = (value, principal)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= self.size:
                self._cache.clear()
            found = self._cache[key] = workload(decode(value), principal)
        return found
