"""JSON patch (RFC 6902), as `application/json-patch+json` PATCH requests apply it.

Kubernetes 1.32 applies JSON patches with evanphx/json-patch v4, and what kubectl users
rely on is that library's behaviour rather than the letter of the RFC, so it is kept:

- `replace` of a missing *object member* adds it (the RFC says it must fail); a missing
  array index or a missing parent still fails;
- negative array indices count from the end (`/-1` is the last element; for `add`,
  `/-1` appends);
- `copy` from a missing object member writes `null`;
- `replace` of the whole document (path "") with an object swaps it; with a scalar it
  does nothing;
- a JSON `null` member is as good as a missing one when walking a path.

Failures carry the library's own wording ("testing value /spec/replicas failed: test
failed") because kube-apiserver passes it through: a patch that does not apply is a 422
`Invalid` whose message is "the server rejected our request due to an error in our
request" and whose single cause (reason `UnexpectedServerResponse`) is that wording. A
body that is not a list of operations is a 400; more than 10000 operations a 413.
"""

from __future__ import annotations

import re
from typing import Any

from apiserver.errors import StatusError, bad_request, too_large
from apiserver.patch.mergepatch import json_copy, json_type, not_an_object

MAX_OPERATIONS = 10000
_ATOI = re.compile(r"[+-]?[0-9]+")
_INT64 = 2**63


class PatchFailed(Exception):
    """An operation that does not apply; the message is evanphx/json-patch's."""


def unprocessable(message: str) -> StatusError:
    """The 422 kube-apiserver builds (NewGenericServerResponse) for a patch that does not
    apply: a fixed message, the library's error as the one cause."""
    return StatusError(
        422, "Invalid", "the server rejected our request due to an error in our request",
        details={"causes": [{"reason": "UnexpectedServerResponse", "message": message}]},
    )


def json_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    """Apply the JSON patch `ops` (the decoded request body) to `doc`; return the new
    object, leaving `doc` untouched."""
    _check_ops(ops)
    root: Any = json_copy(doc)
    for op in ops:
        try:
            root = _apply(root, json_copy(op) if op is not None else {})
        except PatchFailed as failure:
            raise unprocessable(str(failure)) from None
    if not isinstance(root, dict):
        raise not_an_object(root)
    return root


def _check_ops(ops: Any) -> None:
    """What jsonpatch.DecodePatch rejects (400), and the operation count limit (413)."""
    if not isinstance(ops, list):
        raise bad_request(f"json: cannot unmarshal {json_type(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if op is not None and not isinstance(op, dict):
            raise bad_request(f"json: cannot unmarshal {json_type(op)} into Go value of type jsonpatch.Operation")
    if len(ops) > MAX_OPERATIONS:
        raise too_large(
            f"Request entity too large: The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(ops)}"
        )


def _apply(root: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    kind = kind if isinstance(kind, str) else "unknown"
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise PatchFailed(f"Unexpected kind: {kind}")
    return handler(root, op)


# --- reading an operation -----------------------------------------------------------
class _Undecodable(Exception):
    pass


def _member(op: dict[str, Any], name: str) -> str:
    """The `path` or `from` string of an operation, or _Undecodable with Go's reason."""
    value = op.get(name)
    if value is None:
        missing = "operation missing path field" if name == "path" else "operation, missing from field"
        raise _Undecodable(f"{missing}: missing value")
    if not isinstance(value, str):
        raise _Undecodable(f"json: cannot unmarshal {json_type(value)} into Go value of type string")
    return value


def _decode(op: dict[str, Any], name: str, context: str, *, detailed: bool = True) -> str:
    try:
        return _member(op, name)
    except _Undecodable as reason:
        # Some operations report why, others only that the value is missing.
        raise PatchFailed(f"{context}: {reason if detailed else 'missing value'}") from None


# --- JSON pointers and containers ---------------------------------------------------
def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~") if "~" in token else token


def _atoi(key: str) -> int:
    """strconv.Atoi, errors worded as Go's."""
    quoted = '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if not _ATOI.fullmatch(key):
        raise PatchFailed(f"strconv.Atoi: parsing {quoted}: invalid syntax")
    value = int(key)
    if not -_INT64 <= value < _INT64:
        raise PatchFailed(f"strconv.Atoi: parsing {quoted}: value out of range")
    return value


def _invalid_index(index: int) -> PatchFailed:
    return PatchFailed(f"Unable to access invalid index: {index}: invalid index referenced")


def _find(root: Any, path: str) -> tuple[Any, str] | None:
    """The container holding `path`'s last token, and that token; None when the path
    does not lead anywhere. Like the library, only the tokens after the first "/" count."""
    tokens = path.split("/")
    if len(tokens) < 2:
        return None
    node = root
    for token in tokens[1:-1]:
        try:
            node = _get(node, _unescape(token))
        except PatchFailed:
            return None
        if not isinstance(node, dict | list):
            return None
    return node, _unescape(tokens[-1])


def _position(container: list[Any], key: str, *, extra: int = 0) -> int:
    """An existing index of `container` (or, with extra=1, an insertion point)."""
    size = len(container) + extra
    index = _atoi(key)
    if index >= size or index < -size:
        raise _invalid_index(index)
    return index + size if index < 0 else index


def _get(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key)
    return container[_position(container, key)]


def _add(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    elif key == "-":
        container.append(value)
    else:
        try:
            index = _position(container, key, extra=1)
        except PatchFailed as failure:
            if str(failure).startswith("strconv"):
                raise PatchFailed(f"value was not a proper array index: '{key}': {failure}") from None
            raise
        container.insert(index, value)


def _remove(container: Any, key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise PatchFailed(f"Unable to remove nonexistent key: {key}: missing value")
        del container[key]
    else:
        del container[_position(container, key)]


# --- the six operations -------------------------------------------------------------
def _op_add(root: Any, op: dict[str, Any]) -> Any:
    path = _decode(op, "path", "add operation failed to decode path", detailed=False)
    found = _find(root, path)
    if found is None:
        raise PatchFailed(f'add operation does not apply: doc is missing path: "{path}": missing value')
    try:
        _add(*found, op.get("value"))
    except PatchFailed as failure:
        raise PatchFailed(f"error in add for path: '{path}': {failure}") from None
    return root


def _op_remove(root: Any, op: dict[str, Any]) -> Any:
    path = _decode(op, "path", "remove operation failed to decode path", detailed=False)
    found = _find(root, path)
    if found is None:
        raise PatchFailed(f'remove operation does not apply: doc is missing path: "{path}": missing value')
    try:
        _remove(*found)
    except PatchFailed as failure:
        raise PatchFailed(f"error in remove for path: '{path}': {failure}") from None
    return root


def _op_replace(root: Any, op: dict[str, Any]) -> Any:
    path = _decode(op, "path", "replace operation failed to decode path")
    if path == "":
        value = op.get("value")
        return json_copy(value) if isinstance(value, dict | list) else root
    found = _find(root, path)
    if found is None:
        raise PatchFailed(f"replace operation does not apply: doc is missing path: {path}: missing value")
    container, key = found
    try:
        _get(container, key)
    except PatchFailed:
        raise PatchFailed(f"replace operation does not apply: doc is missing key: {path}: missing value") from None
    if isinstance(container, dict):
        container[key] = op.get("value")  # a missing member is simply added (library quirk)
    else:
        container[_position(container, key)] = op.get("value")
    return root


def _op_move(root: Any, op: dict[str, Any]) -> Any:
    source = _decode(op, "from", "move operation failed to decode from")
    found = _find(root, source)
    if found is None:
        raise PatchFailed(f"move operation does not apply: doc is missing from path: {source}: missing value")
    container, key = found
    try:
        value = _get(container, key)
        _remove(container, key)
    except PatchFailed as failure:
        raise PatchFailed(f"error in move for path: '{key}': {failure}") from None
    path = _decode(op, "path", "move operation failed to decode path")
    found = _find(root, path)
    if found is None:
        raise PatchFailed(f"move operation does not apply: doc is missing destination path: {path}: missing value")
    try:
        _add(*found, value)
    except PatchFailed as failure:
        raise PatchFailed(f"error in move for path: '{path}': {failure}") from None
    return root


def _op_copy(root: Any, op: dict[str, Any]) -> Any:
    source = _decode(op, "from", "copy operation failed to decode from")
    found = _find(root, source)
    if found is None:
        raise PatchFailed(f"copy operation does not apply: doc is missing from path: {source}: missing value")
    try:
        value = json_copy(_get(*found))
    except PatchFailed as failure:
        raise PatchFailed(f"error in copy for from: '{source}': {failure}") from None
    path = _decode(op, "path", "copy operation failed to decode path", detailed=False)
    found = _find(root, path)
    if found is None:
        raise PatchFailed(f"copy operation does not apply: doc is missing destination path: {path}: missing value")
    try:
        _add(*found, value)
    except PatchFailed as failure:
        raise PatchFailed(f"error while adding value during copy: {failure}") from None
    return root


def _op_test(root: Any, op: dict[str, Any]) -> Any:
    path = _decode(op, "path", "test operation failed to decode path")
    failed = PatchFailed(f"testing value {path} failed: test failed")
    if path == "":
        if not _equal(root, op.get("value")):
            raise failed
        return root
    found = _find(root, path)
    if found is None:
        raise PatchFailed(f"test operation does not apply: is missing path: {path}: missing value")
    try:
        actual = _get(*found)
    except PatchFailed as failure:
        raise PatchFailed(f"error in test for path: '{path}': {failure}") from None
    # A missing member and a null one both match a null (or absent) value.
    if actual is None and op.get("value") is None:
        return root
    if actual is None or not _equal(actual, op.get("value")):
        raise failed
    return root


def _equal(left: Any, right: Any) -> bool:
    """Structural JSON equality: booleans are not numbers, 1 equals 1.0."""
    if isinstance(left, dict) or isinstance(right, dict):
        return (isinstance(left, dict) and isinstance(right, dict) and left.keys() == right.keys()
                and all(_equal(left[key], right[key]) for key in left))
    if isinstance(left, list) or isinstance(right, list):
        return (isinstance(left, list) and isinstance(right, list) and len(left) == len(right)
                and all(_equal(a, b) for a, b in zip(left, right, strict=True)))
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    return left == right


_HANDLERS = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}
