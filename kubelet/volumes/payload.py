"""What the configMap, secret, downwardAPI and projected volume plugins write: the
payload (relative path -> bytes and mode) handed to the atomic writer.

Each follows its kubelet plugin's MakePayload / CollectData: without `items` every key
of the object becomes a file (ConfigMap `data` and `binaryData`, Secret `data`
base64-decoded); with `items` only those keys, at `path`, with the item's `mode` or the
volume's `defaultMode` (0644 when unset, the API default). A missing object is an error
(`configmap "x" not found`) unless `optional`, when it counts as empty; a missing key
named in `items` is an error unless `optional`. Errors of several projected sources are
joined the way apimachinery's error aggregate prints them.
"""

from __future__ import annotations

import base64
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubelet.envvars import ConfigError, ObjectSource, extract_field, resource_field_value
from kubelet.volumes.atomic import FileProjection

Obj = dict[str, Any]
DEFAULT_MODE = 0o644
# token_source(pod, audience or None, expirationSeconds or None) -> the token (or awaitable)
TokenSource = Callable[[Obj, str | None, int | None], "str | Awaitable[str]"]


class SetupError(Exception):
    """A volume could not be set up; the message is the kubelet's error text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message as is, several de-duplicated in []."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _mode(value: Any, default: int) -> int:
    return int(value) if value is not None else default


def _files(data: Mapping[str, bytes], items: list[Obj] | None, default_mode: int, optional: bool,
           missing: str) -> dict[str, FileProjection]:
    if not items:
        return {key: FileProjection(value, default_mode) for key, value in data.items()}
    out: dict[str, FileProjection] = {}
    for item in items:
        key = item.get("key") or ""
        if key not in data:
            if optional:
                continue
            raise SetupError(f"{missing}: {key}")
        out[item.get("path") or key] = FileProjection(data[key], _mode(item.get("mode"), default_mode))
    return out


def configmap_data(configmap: Obj) -> dict[str, bytes]:
    data = {k: str(v).encode() for k, v in (configmap.get("data") or {}).items()}
    for key, value in (configmap.get("binaryData") or {}).items():
        data[key] = base64.b64decode(value or "")
    return data


def secret_bytes(secret: Obj) -> dict[str, bytes]:
    return {k: base64.b64decode(v or "") for k, v in (secret.get("data") or {}).items()}


async def _fetch(source: ObjectSource, kind: str, namespace: str, name: str, optional: bool) -> Obj:
    obj = await source.get(kind, namespace, name)
    if obj is None:
        if not optional:
            raise SetupError(f'{"configmap" if kind == "configmaps" else "secret"} "{name}" not found')
        return {}
    return obj


async def configmap_payload(ref: Obj, namespace: str, source: ObjectSource,
                            default_mode: int) -> dict[str, FileProjection]:
    optional = bool(ref.get("optional"))
    obj = await _fetch(source, "configmaps", namespace, ref.get("name") or "", optional)
    return _files(configmap_data(obj), ref.get("items"), default_mode, optional,
                  "configmap references non-existent config key")


async def secret_payload(ref: Obj, namespace: str, source: ObjectSource,
                         default_mode: int) -> dict[str, FileProjection]:
    optional = bool(ref.get("optional"))
    name = ref.get("secretName") or ref.get("name") or ""
    obj = await _fetch(source, "secrets", namespace, name, optional)
    return _files(secret_bytes(obj), ref.get("items"), default_mode, optional,
                  "references non-existent secret key")


def downward_payload(items: list[Obj], pod: Obj, default_mode: int,
                     allocatable: Mapping[str, Any] | None) -> dict[str, FileProjection]:
    """CollectData: metadata fields and container resources; errors are collected."""
    out: dict[str, FileProjection] = {}
    errors: list[str] = []
    for item in items or []:
        mode = _mode(item.get("mode"), default_mode)
        try:
            if isinstance(item.get("fieldRef"), dict):
                value = extract_field(pod, item["fieldRef"].get("fieldPath") or "")
            elif isinstance(item.get("resourceFieldRef"), dict):
                value = resource_field_value(item["resourceFieldRef"], pod, None, allocatable)
            else:
                continue
        except ConfigError as exc:
            errors.append(exc.message)
            continue
        out[item.get("path") or ""] = FileProjection(value.encode(), mode)
    if errors:
        raise SetupError(aggregate(errors))
    return out


class TokenCache:
    """Service account tokens per (pod uid, volume, path), renewed once 80% of their
    lifetime has passed (or after 24 h), as the kubelet's token manager does."""

    def __init__(self, token_source: TokenSource | None, clock: Callable[[], float]) -> None:
        self.token_source, self.clock = token_source, clock
        self.tokens: dict[tuple[str, str, str], tuple[str, float]] = {}  # -> (token, renew at)

    async def get(self, pod: Obj, volume: str, projection: Obj) -> str:
        if self.token_source is None:
            raise SetupError("cannot write a serviceAccountToken projection: this kubelet was given no token source")
        key = (str(pod["metadata"].get("uid")), volume, projection.get("path") or "")
        cached = self.tokens.get(key)
        now = self.clock()
        if cached is not None and now < cached[1]:
            return cached[0]
        expiration = projection.get("expirationSeconds")
        token = self.token_source(pod, projection.get("audience") or None, expiration)
        if inspect.isawaitable(token):
            token = await token
        lifetime = float(expiration or 3600)
        self.tokens[key] = (str(token), now + min(0.8 * lifetime, 24 * 3600))
        return str(token)

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self.tokens if k[0] == pod_uid]:
            del self.tokens[key]


async def projected_payload(volume: Obj, pod: Obj, source: ObjectSource, tokens: TokenCache,
                            allocatable: Mapping[str, Any] | None) -> dict[str, FileProjection]:
    """collectData of the projected plugin: sources in order, later paths win."""
    spec = volume["projected"]
    default_mode = _mode(spec.get("defaultMode"), DEFAULT_MODE)
    namespace = pod["metadata"].get("namespace") or "default"
    out: dict[str, FileProjection] = {}
    errors: list[str] = []
    for projection in spec.get("sources") or []:
        try:
            if isinstance(projection.get("configMap"), dict):
                out.update(await configmap_payload(projection["configMap"], namespace, source, default_mode))
            elif isinstance(projection.get("secret"), dict):
                out.update(await secret_payload(projection["secret"], namespace, source, default_mode))
            elif isinstance(projection.get("downwardAPI"), dict):
                out.update(downward_payload(projection["downwardAPI"].get("items") or [], pod, default_mode,
                                            allocatable))
            elif isinstance(projection.get("serviceAccountToken"), dict):
                token_spec = projection["serviceAccountToken"]
                token = await tokens.get(pod, volume["name"], token_spec)
                out[token_spec.get("path") or ""] = FileProjection(token.encode(), default_mode)
            elif isinstance(projection.get("clusterTrustBundle"), dict):
                errors.append("clusterTrustBundle projections are not supported by this kubelet")
        except SetupError as exc:
            errors.append(exc.message)
    if errors:
        raise SetupError(aggregate(errors))
    return out
