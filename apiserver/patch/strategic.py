"""Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds.

kubectl's default patch type (`apply`'s 3-way patches, `edit`, `set image`, `rollout
restart|pause|resume`, `patch`). A JSON merge patch that knows from the schema how to merge
lists: a field whose `x-kubernetes-patch-strategy` includes `merge` is merged element by
element, keyed by `x-kubernetes-patch-merge-key` (containers by name, ports by
containerPort), or as a set for scalars (finalizers); other lists are replaced.
Directives: `$patch: replace|delete` on a map or as a list element, `$retainKeys` (union
types such as Deployment strategy and volume sources), `$setElementOrder/<list>` (the
resulting order), `$deleteFromPrimitiveList/<list>`, and `null` to delete a field.

This follows k8s.io/apimachinery's strategicpatch as Kubernetes 1.32 ships it, including
what users can see: merged elements new to the list go *before* the ones the patch did
not mention, directives are stripped from values the patch adds, errors carry the
library's wording (Go `%v` renderings included). Fields without schema information
(unknown, or preserve-unknown-fields) merge like a JSON merge patch: maps merge, lists are
replaced. Two deliberate differences: null map members inside values the patch sets
wholesale are dropped (Kubernetes decodes them to zero values that a typed object omits;
a stored dict would keep the null), and a `$deleteFromPrimitiveList` runs after the
field's additions (Kubernetes' order there is Go map order, i.e. random).

Error codes follow kube-apiserver's interpretStrategicMergePatchError: malformed
directives 400, lists of lists 422, anything else (missing merge key, unknown `$patch`
value) an unclassified 500 carrying the library's message.
"""

from __future__ import annotations

from typing import Any

from apiserver.errors import StatusError, bad_request
from apiserver.patch.jsonpatch import unprocessable
from apiserver.patch.mergepatch import go_s, go_type, go_value, json_copy, json_type, prune_nulls
from apiserver.schema import SchemaNode

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder"
DELETE_FROM_LIST = "$deleteFromPrimitiveList"

# k8s.io/apimachinery/pkg/util/mergepatch sentinel errors kube-apiserver answers with 400.
BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
BAD_SET_ORDER = "invalid patch format of setElementOrder list"
NO_LIST_OF_LISTS = "lists of lists are not supported"


class PatchError(Exception):
    """A strategic merge patch that cannot be applied, with its HTTP status code."""

    def __init__(self, message: str, code: int = 500) -> None:
        super().__init__(message)
        self.code = code

    def status(self) -> StatusError:
        if self.code == 400:
            return bad_request(str(self))
        if self.code == 422:
            return unprocessable(str(self))
        # Not a Kubernetes API error: the server reports it with an empty reason.
        return StatusError(500, "", str(self))


def strategic_merge_patch(doc: dict[str, Any], patch: Any, schema: SchemaNode | None) -> dict[str, Any]:
    """Apply `patch` (the decoded body) to `doc`, typed by `schema` (the kind's root
    node); return the new object, leaving both arguments untouched.

    `schema` must not be None: Kubernetes refuses strategic merge patches for custom
    resources (415) before getting here."""
    assert schema is not None, "strategic merge patch needs a built-in kind's schema"
    if patch is None:  # a JSON `null` body decodes to an empty patch
        return json_copy(doc)
    if not isinstance(patch, dict):
        raise bad_request(f"json: cannot unmarshal {json_type(patch)} into Go value of type map[string]interface {{}}")
    try:
        return _merge_map(json_copy(doc), json_copy(patch), schema)
    except PatchError as error:
        raise error.status() from None


# --- schema lookups -----------------------------------------------------------------
def _field(node: SchemaNode | None, key: str) -> SchemaNode | None:
    """The schema of field (or map value) `key`; None where there is no type info."""
    sub = node.field(key) if node is not None else None
    return None if sub is None or sub.preserve_unknown_fields else sub


def _items(node: SchemaNode | None) -> SchemaNode | None:
    items = node.items() if node is not None else None
    return None if items is None or items.preserve_unknown_fields else items


def _strategy(node: SchemaNode | None) -> str:
    """The patch strategy besides retainKeys ('merge', 'replace' or '')."""
    strategies = node.patch_strategy.split(",") if node is not None and node.patch_strategy else []
    rest = [s for s in strategies if s != "retainKeys"]
    if len(strategies) > 2 or len(rest) > 1:
        raise PatchError(f"unexpected patch strategy: {go_value(strategies)}")
    return rest[0] if rest else ""


def _merge_key(node: SchemaNode | None) -> str:
    return node.patch_merge_key if node is not None else ""


# --- maps ---------------------------------------------------------------------------
def _merge_map(original: dict[str, Any], patch: dict[str, Any], node: SchemaNode | None) -> dict[str, Any]:
    """Merge `patch` into `original` (both owned by the caller, edited in place)."""
    if DIRECTIVE in patch:
        return _map_directive(patch)
    _apply_retain_keys(original, patch)
    _apply_element_orders(original, patch, node)
    deletions = [key for key in patch if key.startswith(DELETE_FROM_LIST)]
    for key, value in patch.items():
        if key not in deletions:
            _merge_field(original, key, value, node, delete_list=False)
    for key in deletions:
        _merge_field(original, _extract_key(key, DELETE_FROM_LIST), patch[key], node, delete_list=True)
    return original


def _map_directive(patch: dict[str, Any]) -> dict[str, Any]:
    directive = patch.pop(DIRECTIVE)
    if directive == "replace":
        return prune_nulls(patch)
    if directive == "delete":
        return {}
    patch[DIRECTIVE] = directive
    raise PatchError(_bad_patch_type(directive, patch))


def _merge_field(original: dict[str, Any], key: str, value: Any, node: SchemaNode | None, *, delete_list: bool) -> None:
    if value is None:
        original.pop(key, None)
        return
    current = original.get(key)
    if key not in original or type(current) is not type(value):
        # A new field or a type change: take the patch value minus its directives (a
        # deletion list for a missing field is a no-op).
        if not delete_list:
            _set_clean(original, key, value)
        return
    sub = _field(node, key)
    if isinstance(current, dict):
        original[key] = prune_nulls(value) if _strategy(sub) == "replace" else _merge_map(current, value, sub)
    elif isinstance(current, list):
        original[key] = _merge_list_field(current, value, sub, delete_list=delete_list)
    else:
        _set_clean(original, key, value)


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """`$retainKeys`: every key the patch sets must be listed; unlisted keys of the
    original are cleared."""
    if RETAIN_KEYS not in patch:
        return
    listed = patch.pop(RETAIN_KEYS)
    if not isinstance(listed, list):
        raise PatchError(BAD_RETAIN_KEYS, 400)
    keep = {key for key in listed if isinstance(key, str)}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_LIST, SET_ORDER)):
            continue
        if key not in keep:
            raise PatchError(BAD_RETAIN_KEYS, 400)
    for key in [k for k in original if k not in keep]:
        del original[key]


def _extract_key(key: str, prefix: str) -> str:
    parts = key.split("/", 1)
    if len(parts) < 2 or parts[0] != prefix:
        raise PatchError(BAD_PRIMITIVE_LIST if prefix == DELETE_FROM_LIST else BAD_SET_ORDER, 400)
    return parts[1]


# --- lists --------------------------------------------------------------------------
def _merge_list_field(original: list[Any], patch: list[Any], node: SchemaNode | None, *, delete_list: bool) -> list[Any]:
    # A deletion list deletes whatever the field's strategy (kubernetes#110472).
    if _strategy(node) == "merge" or delete_list:
        return _merge_list(original, patch, _items(node), _merge_key(node), delete_list=delete_list)
    return prune_nulls(patch)


def _merge_list(original: list[Any], patch: list[Any], items: SchemaNode | None, merge_key: str,
                *, delete_list: bool) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    if kind != "map":
        if delete_list:
            remove = {_scalar_key(item) for item in patch}
            return [item for item in original if _scalar_key(item) not in remove]
        server_order, merged = original, _dedupe(original + patch)
    else:
        if not merge_key:
            name = (items.ref_name or "").rsplit(".", 1)[-1] if items is not None else ""
            raise PatchError(f"cannot merge lists without merge key for {name}")
        server_order, patch, merged = _merge_keyed(original, patch, merge_key, items)
    patch_items, server_only = _partition(merged, patch, merge_key)
    return _normalize_order(patch_items, server_only, patch, server_order, merge_key, kind)


def _merge_keyed(original: list[Any], patch: list[Any], merge_key: str,
                 items: SchemaNode | None) -> tuple[list[Any], list[Any], list[Any]]:
    """Merge keyed elements: `$patch: delete` elements delete, `$patch: replace` makes the
    other elements the whole list, the rest merge into (or are added after) the element
    with the same key. Returns (server order, plain patch elements, merged list).

    `original` is edited in place as Go edits the array behind the slice: deletions shift
    the elements left and the first additions land in the freed tail. A caller holding the
    list (the `$setElementOrder` step) orders by what it then sees, as Kubernetes does."""
    length, plain, replace = len(original), [], False
    for item in patch:
        directive = item.get(DIRECTIVE)
        if DIRECTIVE not in item:
            plain.append(item)
        elif directive == "delete":
            if merge_key not in item:
                raise PatchError(_no_merge_key(item, merge_key))
            while (index := _find_keyed(original[:length], merge_key, item[merge_key])) is not None:
                original[index:length - 1] = original[index + 1:length]
                length -= 1
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise PatchError(_bad_patch_type(directive, item))
    if replace:
        rest = [prune_nulls(item) for item in plain]
        return rest, [], rest
    merged = original[:length]
    for item in plain:
        if merge_key not in item:
            raise PatchError(_no_merge_key(item, merge_key))
        index = _find_keyed(merged, merge_key, item[merge_key])
        if index is not None:
            merged[index] = _merge_map(merged[index], item, items)
            continue
        if len(merged) < len(original):
            original[len(merged)] = item  # the slot a deletion freed
        merged.append(prune_nulls(item))
    return original[:length], plain, merged


def _find_keyed(items: list[Any], merge_key: str, value: Any) -> int | None:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise PatchError(f"value for key {index} is not a map.")
        if merge_key in item and _same(item[merge_key], value):
            return index
    return None


def _apply_element_orders(original: dict[str, Any], patch: dict[str, Any], node: SchemaNode | None) -> None:
    """`$setElementOrder/<field>`: merge the field's list now, then order it: listed
    elements as listed, the server's other elements around them in their old order."""
    for key in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise PatchError(_bad_arg_type([], order))
        field = _extract_key(key, SET_ORDER)
        current, changes = original.get(field), patch.get(field)
        for value, present in ((current, field in original), (changes, field in patch)):
            if present and not isinstance(value, list):
                raise PatchError(_bad_arg_type([], value))
        sub = _field(node, field)
        merge_key = _merge_key(sub)
        _check_order(changes or [], order, merge_key)
        if current is None and changes is None:
            continue
        if changes is None:
            merged = current
        elif current is None:
            merged = _remove_directives(prune_nulls(changes))[0]
        else:
            merged = _merge_list_field(current, changes, sub, delete_list=False)
        patch_items, server_only = _partition(merged, order, merge_key)
        kind = _element_kind(current or [], changes or [], required=True)
        original[field] = _normalize_order(patch_items, server_only, order, current or [], merge_key, kind)
        patch.pop(field, None)


def _check_order(changes: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch list's elements must appear in `$setElementOrder`, in the same order."""
    if not changes or not order:
        return
    wanted = [c for c in changes if not (merge_key and _as_map(c).get(DIRECTIVE) == "delete")]
    i = j = 0
    while i < len(wanted) and j < len(order):
        if isinstance(wanted[i], dict) and DIRECTIVE in wanted[i]:
            i += 1
            continue
        if _key_equal(wanted[i], order[j], merge_key):
            i += 1
        j += 1
    if i < len(wanted):
        raise PatchError(f"The order in patch list:\n{go_value(changes)}\n doesn't match {SET_ORDER} list:\n{go_value(order)}\n")


# --- ordering (normalizeElementOrder and friends) --------------------------------------
def _partition(merged: list[Any], listed: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split merged elements into those `listed` (by merge key, or by value) and the rest."""
    if not merge_key:
        keys = {_scalar_key(item) for item in listed if not isinstance(item, dict | list)}
        inside = [_scalar_key(item) in keys if not isinstance(item, dict | list) else False for item in merged]
    else:
        inside = [_find_keyed(listed, merge_key, _keyed(item, merge_key)) is not None for item in merged]
    return ([m for m, i in zip(merged, inside, strict=True) if i],
            [m for m, i in zip(merged, inside, strict=True) if not i])


def _normalize_order(patch_items: list[Any], server_only: list[Any], patch_order: list[Any],
                     server_order: list[Any], merge_key: str, kind: str) -> list[Any]:
    patch_items = _sort_by(patch_items, patch_order, merge_key, kind)
    server_only = _sort_by(server_only, server_order, merge_key, kind)
    # Interleave: a server element goes first only when the server order puts it before
    # the next patch element; patch elements new to the server therefore come first.
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items):
            result.append(server_only[i])
            i += 1
        elif i < len(server_only) and 0 <= _index(server_order, server_only[i], merge_key, kind) < \
                _index(server_order, patch_items[j], merge_key, kind):
            result.append(server_only[i])
            i += 1
        else:
            result.append(patch_items[j])
            j += 1
    return result


def _sort_by(items: list[Any], order: list[Any], merge_key: str, kind: str) -> list[Any]:
    """Stable sort by position in `order`; elements deleted by `$patch` go last."""
    deleted: list[Any] = []
    if kind == "map":
        for item in (*items, *order):
            _keyed(item, merge_key)
        deleted = [item for item in items if item.get(DIRECTIVE) == "delete"]
        items = [item for item in items if item.get(DIRECTIVE) != "delete"]
    return sorted(items, key=lambda item: _index(order, item, merge_key, kind) % (len(order) + 1)) + deleted


def _index(items: list[Any], value: Any, merge_key: str, kind: str) -> int:
    """Position of `value` in `items` (by merge key for maps), -1 if absent."""
    def key_of(item: Any) -> Any:
        return (item.get(merge_key) if isinstance(item, dict) else None) if kind == "map" else item
    wanted = key_of(value)
    return next((i for i, item in enumerate(items) if _same(key_of(item), wanted)), -1)


# --- JSON values ----------------------------------------------------------------------
def _element_kind(*lists: list[Any], required: bool = False) -> str:
    """'map' or 'scalar': all elements must share one type, and none may be a list."""
    first: type | None = None
    for items in lists:
        for item in items:
            if first is None:
                first = type(item)
                if first is list:
                    raise PatchError(NO_LIST_OF_LISTS, 422)
            elif type(item) is not first:
                raise PatchError(f"list element types are not identical: {go_value(list(lists))}")
    if first is None and required:
        raise PatchError("no elements in any of the given slices")
    return "map" if first is dict else "scalar"


def _same(left: Any, right: Any) -> bool:
    """Go interface equality on JSON scalars: same type and value (1 is not 1.0, nor true)."""
    return type(left) is type(right) and left == right


def _scalar_key(value: Any) -> tuple[type, Any]:
    return type(value), value


def _dedupe(items: list[Any]) -> list[Any]:
    return list({_scalar_key(item): item for item in items}.values())


def _as_map(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PatchError(_bad_arg_type({}, value))
    return value


def _keyed(value: Any, merge_key: str) -> Any:
    """The merge key's value of a list element that must be a map carrying it."""
    item = _as_map(value)
    if merge_key not in item:
        raise PatchError(_no_merge_key(item, merge_key))
    return item[merge_key]


def _key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    return _same(_keyed(left, merge_key), _keyed(right, merge_key))


def _set_clean(target: dict[str, Any], key: str, value: Any) -> None:
    cleaned, keep = _remove_directives(prune_nulls(value))
    if keep:
        target[key] = cleaned
    else:
        target.pop(key, None)


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """Drop every map carrying `$patch` (and its list slot or field); (value, keep)."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        for key in list(value):
            value[key], keep = _remove_directives(value[key])
            if not keep:
                del value[key]
    elif isinstance(value, list):
        value = [v for v, keep in map(_remove_directives, value) if keep]
    return value, True


# --- the library's error messages --------------------------------------------------
def _bad_patch_type(directive: Any, item: dict[str, Any]) -> str:
    return f"unknown patch type: {go_s(directive)} in map: {go_value(item)}"


def _no_merge_key(item: dict[str, Any], merge_key: str) -> str:
    return f"map: {go_value(item)} does not contain declared merge key: {merge_key}"


def _bad_arg_type(expected: Any, actual: Any) -> str:
    """mergepatch.ErrBadArgType: reflect type names, %!s(<nil>) for null."""
    return f"expected a {go_type(expected)}, but received a {go_type(actual)}"
