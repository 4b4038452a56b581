"""The pod-template-hash: FNV-32a, collisionCount, SafeEncodeString, as Kubernetes does it.

controller.ComputeHash feeds an FNV-32a hasher with the pod template printed by
`dump.ForHash` (go-spew `%#v` with sorted map keys, methods disabled and no pointer
addresses), then, when the Deployment has a status.collisionCount, with that count as 8
bytes (uint32 little endian in the first four, four zero bytes after). The 32-bit sum is
printed in decimal and each digit is mapped through rand.SafeEncodeString's alphabet
`bcdfghjklmnpqrstvwxz2456789` (rune value modulo 27), so the label only ever contains
`4 5 6 7 8 9 b c d f` and no vowels (no accidental words).

Everything after the printing step is reproduced exactly here. The printed text itself is
not: spew prints the *Go struct* `v1.PodTemplateSpec` of the running Kubernetes version,
every field of it in declaration order with its Go type name, zero values included, and
resource.Quantity by its internal representation. Reproducing that byte for byte would need
the Go type definitions of one exact Kubernetes release; Kubernetes itself does not keep
the value stable across releases (a new API field changes every hash, which is why the
controller matches ReplicaSets to templates with EqualIgnoreHash, never by hash). So we
print the template canonically instead: JSON with sorted keys, no whitespace, and None /
empty lists / empty maps dropped (they mean the same as absent). The result is a stable,
deterministic label of the same shape and alphabet; it differs from the value a real
cluster would compute for the same template, and nothing depends on that equality.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from controllers.common.objects import drop_empty

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv32a(data: bytes, start: int = _FNV32_OFFSET) -> int:
    """FNV-1a, 32 bits (Go's hash/fnv New32a); `start` continues an earlier sum."""
    value = start
    for byte in data:
        value = ((value ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def safe_encode_string(text: str) -> str:
    """k8s.io/apimachinery/pkg/util/rand.SafeEncodeString."""
    return "".join(SAFE_ALPHABET[ord(ch) % len(SAFE_ALPHABET)] for ch in text)


def canonical_template(template: dict[str, Any]) -> bytes:
    """The printed form we hash (see the module docstring for why it is not spew's)."""
    return json.dumps(drop_empty(template), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def compute_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    """controller.ComputeHash: the `pod-template-hash` label value for `template`."""
    value = fnv32a(canonical_template(template))
    if collision_count is not None:
        value = fnv32a(struct.pack("<I", collision_count & 0xFFFFFFFF) + bytes(4), value)
    return safe_encode_string(str(value))
