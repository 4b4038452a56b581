"""ControllerRevisions: immutable snapshots of a workload's pod template (pkg/controller/history).

StatefulSets and DaemonSets record each distinct pod template they have run as an apps/v1
ControllerRevision owned by them. A revision's `data` is a patch that, applied to the
parent, restores that template (`kubectl rollout undo` applies it); `revision` is a number
that grows with every new template (and is bumped when an old template comes back).

Naming and hashing follow Kubernetes exactly, over the data's JSON text:
  - the hash is FNV-32 (Go's `fnv.New32`, i.e. FNV-1, *not* FNV-1a) over the data's bytes,
    then, when a collision count is given, over its decimal digits; the 32-bit sum is
    printed in decimal and mapped through rand.SafeEncodeString (see common/hashing.py);
  - the name is `<parent name>-<hash>` (the parent name cut to 223 characters);
  - the label `controller.kubernetes.io/hash` carries the hash.
The data's bytes are Go's `json.Marshal` of a map: keys sorted, no spaces, `<`, `>`, `&`
escaped as \\u003c \\u003e \\u0026. Kubernetes hashes the bytes it marshalled from its Go
struct, so a real cluster's hash for the same StatefulSet can differ from ours (field
order and defaulted fields); nothing relies on that equality, only on names being
deterministic for equal data.

This module is pure (no API calls); `api.py` holds the calls (create with collision
handling, adopt, release, delete, renumber).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from typing import Any

from controllers.common import objects, ownership
from controllers.common.hashing import safe_encode_string

Obj = dict[str, Any]

HASH_LABEL = "controller.kubernetes.io/hash"
MAX_PREFIX = 223  # 253 (DNS subdomain) minus room for "-" and the hash

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193
_GO_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def fnv32(data: bytes, start: int = _FNV32_OFFSET) -> int:
    """FNV-1, 32 bits (Go's hash/fnv New32): multiply, then xor."""
    value = start
    for byte in data:
        value = ((value * _FNV32_PRIME) & 0xFFFFFFFF) ^ byte
    return value


def raw_data(data: Any) -> bytes:
    """The bytes Go's json.Marshal produces for `data` decoded into maps (sorted keys)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _GO_HTML_ESCAPES.items():
        text = text.replace(char, escaped)
    return text.encode()


def revision_hash(data: Any, collision_count: int | None) -> str:
    """HashControllerRevision: the hash label (and name suffix) of a revision with `data`."""
    value = fnv32(raw_data(data)) if data is not None else _FNV32_OFFSET
    if collision_count is not None:
        value = fnv32(str(int(collision_count)).encode(), value)
    return safe_encode_string(str(value))


def revision_name(prefix: str, hash_value: str) -> str:
    """ControllerRevisionName: `<prefix>-<hash>`, the prefix cut to 223 characters."""
    return f"{prefix[:MAX_PREFIX]}-{hash_value}"


def new_revision(parent: Obj, data: Any, revision: int, collision_count: int | None, labels: dict[str, str],
                 *, api_version: str | None = None, kind: str | None = None,
                 annotations: dict[str, str] | None = None) -> Obj:
    """NewControllerRevision: the body of a revision of `parent` holding `data`.

    `labels` are the parent's pod-template labels (the revision is found again with the
    parent's selector); the controller reference's apiVersion/kind default to the
    parent's own. `annotations` (StatefulSets copy their own) are set when given.
    """
    hash_value = revision_hash(data, collision_count)
    metadata: Obj = {
        "name": revision_name(objects.name(parent), hash_value),
        "labels": {**labels, HASH_LABEL: hash_value},
        "ownerReferences": [ownership.controller_ref(parent, api_version=api_version or parent.get("apiVersion", ""),
                                                     kind=kind or parent.get("kind", ""))],
    }
    if objects.namespace(parent):
        metadata["namespace"] = objects.namespace(parent)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": metadata,
            "data": copy.deepcopy(data), "revision": int(revision)}


def revision_number(revision: Obj) -> int:
    return int(revision.get("revision") or 0)


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """SortControllerRevisions: by revision number, then creation time, then name (stable)."""
    return sorted(revisions, key=lambda r: (revision_number(r), objects.creation_time(r), objects.name(r)))


def next_revision(revisions: Sequence[Obj]) -> int:
    """NextRevision: one more than the last of `revisions` (sorted), or 1 for none."""
    if not revisions:
        return 1
    return revision_number(revisions[-1]) + 1


def _numeric_hash(revision: Obj) -> int | None:
    """The hash label read as Kubernetes reads it (strconv.ParseInt, base 10, 32 bits).

    SafeEncodeString output usually contains letters, so this is mostly None and the
    comparison falls back to the data; we keep the quirk rather than invent a rule.
    """
    text = objects.labels(revision).get(HASH_LABEL)
    if text is None:
        return None
    try:
        value = int(text, 10)
    except ValueError:
        return None
    if not -(2**31) <= value < 2**31 or text.strip() != text or text.startswith("+"):
        return None
    return value & 0xFFFFFFFF


def equal_revision(a: Obj | None, b: Obj | None) -> bool:
    """EqualRevision: both None, or semantically equal data (and no differing numeric hashes)."""
    if a is None or b is None:
        return a is b
    hash_a, hash_b = _numeric_hash(a), _numeric_hash(b)
    if hash_a is not None and hash_b is not None and hash_a != hash_b:
        return False
    return objects.drop_empty(a.get("data")) == objects.drop_empty(b.get("data"))


def find_equal_revisions(revisions: Iterable[Obj], needle: Obj) -> list[Obj]:
    """FindEqualRevisions: those of `revisions` equal to `needle`, in their order."""
    return [r for r in revisions if equal_revision(r, needle)]


def owned_or_orphaned(parent: Obj, revisions: Iterable[Obj]) -> list[Obj]:
    """ListControllerRevisions' filter: revisions controlled by `parent`, or by nobody.

    Pass the revisions of the parent's namespace that match its selector (from a lister).
    """
    kept = []
    for revision in revisions:
        ref = ownership.controller_of(revision)
        if ref is None or ref.get("uid") == objects.uid(parent):
            kept.append(revision)
    return kept


def adopt_patch(parent: Obj, revision: Obj, *, api_version: str, kind: str) -> Obj:
    """AdoptControllerRevision's strategic-merge patch (guarded by the revision's uid)."""
    return ownership.adopt_patch(revision, ownership.controller_ref(parent, api_version=api_version, kind=kind))


def release_patch(parent: Obj, revision: Obj) -> Obj:
    """ReleaseControllerRevision's strategic-merge patch."""
    return ownership.release_patch(revision, parent)
