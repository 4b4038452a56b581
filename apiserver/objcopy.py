"""Deep copies of API objects, the hot path's most common allocation.

Objects are decoded JSON: plain dicts, lists and immutable scalars. Copying those with a
type switch costs about a third of copy.deepcopy, which keeps a memo and dispatches
through the copy protocol per value. Anything else (a dict subclass, a tuple, a date
decoded from YAML) still goes through copy.deepcopy, so the result is the same.
"""

from __future__ import annotations

import copy
from typing import Any

_IMMUTABLE = frozenset((str, int, float, bool, type(None)))


def deep_copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: deep_copy(item) for key, item in value.items()}
    if kind is list:
        return [deep_copy(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)
